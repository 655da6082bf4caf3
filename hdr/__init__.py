"""hdr: a command-line experiment runner for handwritten-digit classifiers."""

__version__ = "0.1.0"
