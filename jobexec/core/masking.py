"""Masking of secrets in everything jobexec shows: config dumps, logs, job payloads, the console.

One rule set, so every output hides the same things:

- a key is secret when its name, lower-cased with `-`, `_` and `.` removed, contains one of
  `SECRET_WORDS` (`X-API_KEY`, `credentials.pass`, `ssl.key.pem`, `sasl.oauthbearer.config`);
- a URL's password is found by parsing: the authority ends at the LAST `@`, so a user name
  with `@` (`amqp://me@corp.test:pw@rabbit//`) or a password with `/` or `@` is still hidden;
- a `key=value` pair (a query parameter or a log message) whose key is secret has its value
  hidden, as has a quoted `"key": "value"` pair in text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
SECRET_WORDS = frozenset(
    {
        "key",
        "token",
        "secret",
        "pass",
        "pwd",
        "auth",
        "session",
        "signature",
        "cookie",
        "credential",
        "private",
        "pem",
    }
)
# Short query-parameter names that carry a secret but hold none of the words (signed URLs).
SECRET_PARAMS = frozenset({"sig", "pw", "sas"})

_SEPARATORS = str.maketrans("", "", "-_.")
# A URL in text: a scheme, `://`, then everything up to whitespace or a quote.
# Each pattern starts only at the beginning of its token (the look-behinds), so a long run of
# letters is scanned once, not once per position: masking stays linear in the text's length.
_URL = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")
# `name=value` in a query string or a message; the value ends at `&`, `;`, whitespace or quote.
_PAIR = re.compile(r"(?<![A-Za-z0-9_.\-\[\]])(?P<key>[A-Za-z0-9_.\-\[\]]+)=(?P<value>[^&;\s\"']*)")
# `"name": "value"` or `'name': 'value'` in text (a dict or JSON printed into a message).
_QUOTED = re.compile(
    r"(?P<q>[\"'])(?P<key>[^\"']{1,200})(?P=q)(?P<sep>\s*:\s*)(?P<vq>[\"'])(?P<value>.{0,2000}?)(?P=vq)"
)


def normalise_key(name: str) -> str:
    """The key as matched against the word set: lower-case, `-`, `_` and `.` removed."""
    return name.lower().translate(_SEPARATORS)


def is_secret_key(name: str) -> bool:
    """Whether values under this key (setting, header, payload field) are hidden."""
    canon = normalise_key(name)
    return canon in SECRET_PARAMS or any(word in canon for word in SECRET_WORDS)


def mask_url(url: str) -> str:
    """The URL with the password of its user info and its secret query values hidden."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _mask_pairs(url)
    # The authority runs to the last `@`: user names and passwords may hold `@` and `/`.
    userinfo, at, host_and_rest = rest.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        rest = f"{user}:{MASK}@{host_and_rest}"
    return f"{scheme}://{_mask_pairs(rest)}"


def mask_text(text: str) -> str:
    """Free text (a setting's value, a log message) with every secret in it hidden."""
    text = _URL.sub(lambda m: mask_url(m.group(0)), text)
    text = _QUOTED.sub(_quoted_pair, text)
    return _mask_pairs(text)


def mask_value(value: Any) -> Any:
    """A JSON-like value (payload, log extra) with secrets hidden, the structure kept.

    Secret keys of mappings are masked whole; lists of `[name, value]` pairs and of
    `{"name": ..., "value": ...}` objects (headers given as lists) are masked by name; text is
    masked by `mask_text`.
    """
    if isinstance(value, Mapping):
        named = _named_pair(value)
        if named is not None:
            return named
        return {
            k: MASK if isinstance(k, str) and is_secret_key(k) else mask_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        if len(value) == 2 and isinstance(value[0], str) and is_secret_key(value[0]):
            return [value[0], MASK]
        return [mask_value(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_setting(name: str, value: str) -> str:
    """The value of a configuration key as a dump shows it."""
    return MASK if is_secret_key(name) else mask_text(value)


def _named_pair(item: Mapping[Any, Any]) -> dict[Any, Any] | None:
    # {"name": "Authorization", "value": "Bearer ..."}: the secret is under "value".
    name = item.get("name", item.get("key"))
    if "value" in item and isinstance(name, str) and is_secret_key(name):
        return {k: (MASK if k == "value" else mask_value(v)) for k, v in item.items()}
    return None


def _mask_pairs(text: str) -> str:
    def replace(found: re.Match[str]) -> str:
        if found.group("value") and is_secret_key(found.group("key")):
            return f"{found.group('key')}={MASK}"
        return found.group(0)

    return _PAIR.sub(replace, text)


def _quoted_pair(found: re.Match[str]) -> str:
    if not is_secret_key(found.group("key")):
        return found.group(0)
    q, vq = found.group("q"), found.group("vq")
    return f"{q}{found.group('key')}{q}{found.group('sep')}{vq}{MASK}{vq}"


__all__ = [
    "MASK",
    "SECRET_WORDS",
    "is_secret_key",
    "mask_setting",
    "mask_text",
    "mask_url",
    "mask_value",
    "normalise_key",
]
