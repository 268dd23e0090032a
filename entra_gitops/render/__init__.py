"""Renderings of reports and plans: text for terminals, markdown for pull requests, JSON, HTML."""
