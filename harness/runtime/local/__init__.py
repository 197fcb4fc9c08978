"""The local backend: every instance a process group on 127.0.0.1."""

from .backend import LocalBackend

__all__ = ["LocalBackend"]
