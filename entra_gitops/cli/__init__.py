"""The command line: parses options, calls the stages, prints. It is the only package that writes to the
terminal and holds the one error boundary that maps errors to exit codes; it may import every stage.
"""
