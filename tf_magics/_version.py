"""The package version (one place, read by the package and by the client's user agent)."""

__version__ = "0.1.0.dev0"
