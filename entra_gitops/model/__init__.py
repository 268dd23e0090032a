"""The model: what every stage shares. The registry of resource types read from schemas/, the immutable
tenant state values, settings, errors with their exit codes, object ids, and safe text. It imports nothing
of entra_gitops outside itself, and every other package may import it.
"""
