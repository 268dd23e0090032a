"""Running entra-gitops from a state repository's pipelines: the Graph permissions each job needs, GitHub
Actions conventions, and the demo's story. It may import every stage before it, never the command line.
"""
