"""nongyun (农云): agricultural digital-village monitoring service."""

__version__ = "0.1.0"
