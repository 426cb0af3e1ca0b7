"""Validation of the service databases against the mapping of aurora (see sync.validate)."""
