"""The command line: one module per command, each parsing its options and delegating (the top layer)."""
