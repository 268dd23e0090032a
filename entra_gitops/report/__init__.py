"""The difference report: a backup's state against another (pure), and its renderings for terminals, pull
requests, machines and people. It may import the model and the state stage (for the values it compares),
never recovery, workflows or the command line.
"""
