"""Entry point for `python -m entra_gitops`."""

from entra_gitops.cli.main import main

main()
