"""Text from records and the database made safe for a terminal: non-printable characters escaped.

A poison record's key, a job id or a failure reason may carry terminal escape sequences
(`\\x1b]0;...`, cursor moves, bidi overrides); printed raw they would rewrite the operator's
screen. Every place that prints such text goes through `printable`.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """The text with every non-printable character (controls, format marks, lone surrogates,
    line separators) shown as a Python-style escape; printable text is returned unchanged."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def printable_lines(text: str) -> str:
    """Like `printable`, but keeps the line breaks: for multi-line text such as a traceback."""
    return "\n".join(printable(line) for line in text.split("\n"))


__all__ = ["printable", "printable_lines"]
