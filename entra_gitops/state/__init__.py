"""The tenant as files: normalize Graph JSON into canonical objects, canonical YAML, file names and layout,
the git store with its backup tags and lock, and the snapshot that joins them. It may import the model and
the Graph edge, never reports, recovery, workflows or the command line.
"""
