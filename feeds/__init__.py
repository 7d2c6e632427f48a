"""Publish RSS and Atom feeds from Markdown news articles."""

__version__ = "0.1.0"
