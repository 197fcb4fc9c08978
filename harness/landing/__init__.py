"""Evidence, gathered by the harness itself, that a fault took effect (see watches.py)."""
