"""Spring's `${name}` and `${name:default}` placeholders in setting values.

A name is looked up as Spring looks it up: the environment first (the name itself, then its
relaxed form `DB_HOST` for `db.host`, `CONFIGS_JOBDB_URL` for `configs.jobDb.url`), then the
files' settings, then jobexec's defaults. Looked-up values are resolved in turn, so placeholders
nest; `\\${` writes a literal `${`. A placeholder that refers back to itself is an error naming
the keys of the cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from jobexec.core.config_error import ConfigError

Canon = Callable[[str], str]


class _Unresolvable(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


class _Circular(Exception):
    def __init__(self, chain: list[str]) -> None:
        self.chain = chain


def _closing(text: str, start: int) -> int | None:
    """The index of the `}` that closes a placeholder whose content starts at `start`."""
    depth, i = 1, start
    while i < len(text):
        if text.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _split_default(content: str) -> tuple[str, str | None]:
    """`name:default` at the first `:` outside a nested placeholder."""
    depth, i = 0, 0
    while i < len(content):
        if content.startswith("${", i):
            depth, i = depth + 1, i + 2
            continue
        if content[i] == "}":
            depth -= 1
        elif content[i] == ":" and depth == 0:
            return content[:i], content[i + 1 :]
        i += 1
    return content, None


def env_names(name: str) -> tuple[str, ...]:
    """The environment variables that can hold property `name`, as Spring tries them."""
    upper = name.upper()
    return (
        name,
        upper.replace(".", "_").replace("-", ""),
        upper.replace(".", "_").replace("-", "_"),
        upper,
    )


class Placeholders:
    """Resolves the placeholders of one configuration's values."""

    def __init__(
        self,
        values: Mapping[str, str],
        defaults: Mapping[str, str],
        environ: Mapping[str, str],
        canon: Canon,
    ) -> None:
        self._values = values  # by canonical key
        self._defaults = defaults  # by canonical key
        self._environ = environ
        self._canon = canon

    def resolve(self, key: str, value: str, source: str) -> str:
        """`value` of setting `key` with every placeholder replaced, or a ConfigError."""
        if "${" not in value:
            return value
        try:
            return self._text(value, [key])
        except _Circular as exc:
            problem = "has a circular placeholder reference: " + " -> ".join(exc.chain)
            raise ConfigError(key, problem, source) from None
        except _Unresolvable as exc:
            problem = (
                f"refers to ${{{exc.name}}}, which is set in no file, nor the environment "
                "(give a default: ${name:default})"
            )
            raise ConfigError(key, problem, source) from None

    def _text(self, text: str, chain: list[str]) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("\\${", i):
                out.append("${")
                i += 3
            elif text.startswith("${", i):
                end = _closing(text, i + 2)
                if end is None:  # unterminated: kept as written, as Spring keeps it
                    out.append(text[i:])
                    break
                out.append(self._placeholder(text[i + 2 : end], chain))
                i = end + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _placeholder(self, content: str, chain: list[str]) -> str:
        name_part, default = _split_default(content)
        name = self._text(name_part, chain)
        if any(self._canon(seen) == self._canon(name) for seen in chain):
            raise _Circular([*chain, name])
        found = self._lookup(name)
        if found is not None:
            return self._text(found, [*chain, name])
        if default is not None:
            return self._text(default, chain)
        raise _Unresolvable(name)

    def _lookup(self, name: str) -> str | None:
        for env_name in env_names(name):
            if env_name in self._environ:
                return self._environ[env_name]
        canon = self._canon(name)
        if canon in self._values:
            return self._values[canon]
        return self._defaults.get(canon)
