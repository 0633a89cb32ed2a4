"""Broadcaster: self-hosted multi-channel crisis broadcast service."""

__version__ = "0.1.0"
