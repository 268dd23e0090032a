"""entra-gitops: a Microsoft Entra tenant's state as versioned, reviewable files.

The packages, read top-down, are the data flow: `model` (what every stage shares: the registry of types
from schemas/, state values, settings, errors), `graph` (the Graph edge), `state` (normalize, canonical
files, the git store, snapshots), `report` (the difference report and its renderings), `recovery` (plan,
guards, apply), `workflow` (pipelines, permissions, the demo) and `cli` (the command line). A package
imports only from those before it; `emulator` is a Graph of its own and imports only the model.
"""

__version__ = "0.1.0"
