"""Small shared utilities: atomic writes and media I/O."""
