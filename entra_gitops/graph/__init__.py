"""The Graph edge: sign-in, msgraph-sdk's request adapter with retries, pacing and $batch, and the read of
the types in scope as raw JSON. It may import only the model; it knows nothing of files, git or plans.
"""
