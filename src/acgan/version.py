"""The package's version, in a module of its own: every module may import it without importing the package."""

__version__ = "0.2.0"
