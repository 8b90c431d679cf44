"""redline: RED metrics for services and USE metrics for nodes."""

__version__ = "0.1.0"
