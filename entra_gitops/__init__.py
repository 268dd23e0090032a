"""entra-gitops: a Microsoft Entra tenant's state as versioned, reviewable files."""

__version__ = "0.1.0"
