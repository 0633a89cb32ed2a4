"""Broadcaster: self-hosted multi-channel crisis broadcast service."""

from importlib.metadata import PackageNotFoundError, version

try:
    #: the installed distribution's version: pyproject.toml's [project] version is the one source
    __version__ = version("broadcaster")
except PackageNotFoundError:  # pragma: no cover - a source tree on sys.path without any install
    __version__ = "0+unknown"
