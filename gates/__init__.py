"""Policy gates: an ordered chain of checks a model passes before it may be trusted."""
