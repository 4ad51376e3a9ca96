"""hlcli: multi-task, parameter-efficient sequence labelling with hypernetworks.

The library API is importable without the CLI; every ``hl`` command is a thin wrapper
around a function in this package that returns a result object and prints nothing.
"""

__version__ = "0.1.0"
