"""Talking-head generation workflow: data, preprocessing, methods, metrics and survey tables."""

__version__ = "0.1.0"
