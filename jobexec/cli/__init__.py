"""The `jobexec` command: the one place that wires settings to the processes and commands."""
