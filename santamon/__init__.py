"""Santamon Backend: the server Santamon agents report to (layout: README.md)."""

__version__ = "0.1.0"
