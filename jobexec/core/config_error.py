"""The one error a bad setting raises; its message names the key and where the value came from."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the key and where it came from."""

    def __init__(self, key: str, problem: str, source: str) -> None:
        super().__init__(f"configuration error: {key} {problem} ({source})")
        self.key = key
