"""The installed distribution's version (``pyproject.toml``), so there is one place to bump it.

Its own module at the bottom of the package: ``hlcli.__version__`` and every checkpoint's recorded
versions read it, and neither may import the other (docs/ARCHITECTURE.md).
"""

from __future__ import annotations


def version() -> str:
    """``importlib.metadata.version("hlcli")``; ``0+unknown`` for a source tree on sys.path, not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("hlcli")
    except PackageNotFoundError:
        return "0+unknown"
