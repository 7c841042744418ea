"""Where settings come from, as Spring Boot reads them: the location list, .properties and YAML.

A location entry is a file or a directory; `optional:` and `file:` prefixes are accepted and
`classpath:` is refused (jobexec has no classpath). YAML is flattened the way Spring flattens
it: nested keys joined with dots, list items as `key[i]`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import javaproperties
import yaml

from jobexec.core.config_error import ConfigError

_YAML_SUFFIXES = (".yml", ".yaml")
# What Spring reads from a directory location, lowest precedence first (.properties beats .yml
# within one location), plus jobexec's secrets file beside it.
_DIRECTORY_FILES = (
    "application.yaml",
    "application.yml",
    "application.properties",
    "secrets.yaml",
    "secrets.yml",
    "secrets.properties",
)
_INDEXED = re.compile(r"^(?P<name>.+)\[(?P<index>\d+)\]$")


def location_variable(environ: Mapping[str, str]) -> tuple[str, str]:
    """The variable that names the configuration files, and its value."""
    for name in ("EXECUTOR_CONFIG_LOCATION", "SPRING_CONFIG_LOCATION"):
        if environ.get(name):
            return name, environ[name]
    return "SPRING_CONFIG_LOCATION", ""


def config_files(environ: Mapping[str, str]) -> list[Path]:
    """The files of the location list, in the order they are read (later ones win)."""
    variable, raw = location_variable(environ)
    paths: list[Path] = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        optional = entry.startswith("optional:")
        entry = entry.removeprefix("optional:")
        if entry.startswith("classpath:"):
            problem = f"names {entry}: jobexec has no classpath; give a file path instead"
            raise ConfigError(variable, problem, "environment")
        path = Path(entry.removeprefix("file:"))
        if path.is_dir():
            found = [p for p in (path / name for name in _DIRECTORY_FILES) if p.is_file()]
            if not found and not optional:
                # A mistyped mount would otherwise run on defaults without a word.
                problem = f"names {entry}, a directory without any of " + ", ".join(
                    _DIRECTORY_FILES
                )
                raise ConfigError(variable, problem, "environment")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        elif not optional:
            raise ConfigError(variable, f"names {entry}, which does not exist", "environment")
    return paths


def read_file(path: Path) -> dict[str, str]:
    """One file's properties as flat `key=value` text, by its suffix: YAML or .properties."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"cannot be read: {type(exc).__name__}"
        raise ConfigError("configuration file", problem, str(path)) from None
    if path.suffix.lower() in _YAML_SUFFIXES:
        return read_yaml(text, str(path))
    try:
        props: dict[str, str] = javaproperties.loads(text)
    except ValueError as exc:
        problem = f"cannot be read: {type(exc).__name__}"
        raise ConfigError("configuration file", problem, str(path)) from None
    return props


def read_yaml(text: str, source: str) -> dict[str, str]:
    """Spring's flattening of a YAML file; documents are read in order, later keys winning.

    A document with a profile condition (`spring.config.activate.on-profile`, `spring.profiles`)
    is skipped: jobexec has no active profiles.
    """
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        problem = f"is not valid YAML{where}: {problem}"
        raise ConfigError("configuration file", problem, source) from None
    flat: dict[str, str] = {}
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ConfigError("configuration file", "is YAML but not a mapping of keys", source)
        props = dict(_flatten(document, ""))
        if "spring.config.activate.on-profile" in props or "spring.profiles" in props:
            continue
        flat.update(props)
    return flat


def _flatten(node: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        if not node and prefix:
            yield prefix, ""
        for key, value in node.items():
            name = _scalar(key)
            yield from _flatten(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(node, list):
        if not node:
            yield prefix, ""
        for index, value in enumerate(node):
            yield from _flatten(value, f"{prefix}[{index}]")
    else:
        yield prefix, _scalar(node)


def _scalar(value: Any) -> str:
    # As Spring prints them: YAML's booleans are `true`/`false`, a null is the empty string.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def join_lists(props: Mapping[str, str]) -> dict[str, str]:
    """Add `key=a,b` for each list `key[0]=a`, `key[1]=b` of one file.

    Spring binds either form to a list-valued setting (allowed-hosts, bootstrap servers);
    jobexec's settings are text, so the list becomes its comma-separated form. A list in a later
    file replaces the whole list of an earlier one, as in Spring.
    """
    lists: dict[str, dict[int, str]] = {}
    for key, value in props.items():
        found = _INDEXED.match(key)
        if found:
            lists.setdefault(found["name"], {})[int(found["index"])] = value
    joined = dict(props)
    for name, items in lists.items():
        joined[name] = ",".join(items[i] for i in sorted(items))
    return joined
