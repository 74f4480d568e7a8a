"""The BCC API level this drop-in mirrors."""
__version__ = "0.26.0"
