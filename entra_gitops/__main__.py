"""Entry point for `python -m entra_gitops`."""

from entra_gitops.cli import main

main()
