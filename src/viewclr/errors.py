"""Errors a user can act on. The CLI prints them as one line and exits with `exit_code`."""

from __future__ import annotations


class ViewCLRError(Exception):
    """Base class: a problem with the user's input, reported without a traceback."""

    exit_code = 1


class ConfigError(ViewCLRError):
    """A config file, key or value is wrong. Raised before any work starts."""

    exit_code = 2

    def __init__(self, key: str | None, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}" if key else message)


class DatasetError(ViewCLRError):
    """A dataset root, names file or labels CSV cannot be used as given."""


class VideoError(ViewCLRError):
    """One video (or frame folder) cannot be decoded. Loaders skip and count these."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")
