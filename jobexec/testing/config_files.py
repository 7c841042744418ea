"""Configuration files for a jobexec subprocess, written the way a deployment writes them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import javaproperties

# Variables that would override or replace the files under test if inherited from the caller.
OVERRIDING_PREFIXES = ("CONFIGS_", "SECRETS_", "EXECUTOR_CONFIG_LOCATION")


def _escape_value(value: str) -> str:
    # Only what a .properties reader would otherwise misread; URLs stay readable.
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return "\\" + escaped if escaped.startswith((" ", "\t")) else escaped


def render_properties(props: Mapping[str, str]) -> str:
    """`key=value` lines, one per entry, in the given order."""
    return "".join(f"{javaproperties.escape(k)}={_escape_value(v)}\n" for k, v in props.items())


def clean_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment without configuration overrides."""
    source = os.environ if base is None else base
    return {k: v for k, v in source.items() if not k.startswith(OVERRIDING_PREFIXES)}


class ConfigFiles:
    """Writes application.properties and secrets.properties into one directory."""

    def __init__(self, directory: Path) -> None:
        self.app_path = directory / "application.properties"
        self.secrets_path = directory / "secrets.properties"

    def write(
        self, app: Mapping[str, str], secrets: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Write both files (secrets may be empty) and return the environment naming them.

        The environment is a copy of os.environ with SPRING_CONFIG_LOCATION set to both files,
        PYTHONUNBUFFERED=1, and no CONFIGS_*, SECRETS_* or EXECUTOR_CONFIG_LOCATION variable.
        """
        self.app_path.write_text(render_properties(app))
        self.secrets_path.write_text(render_properties(secrets or {}))
        env = clean_environment()
        env["SPRING_CONFIG_LOCATION"] = f"file:{self.app_path},file:{self.secrets_path}"
        env["PYTHONUNBUFFERED"] = "1"
        return env
