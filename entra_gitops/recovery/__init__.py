"""Recovery: the plan that brings live objects back to a source, its guards (thresholds, protected objects,
lockout), its renderings, and apply with its journal. It may import the model, the Graph edge, the state
stage and reports; never workflows or the command line.
"""
