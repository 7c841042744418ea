"""Property tests of the properties loader: any file text loads or raises ConfigError, never
another exception (the CLI turns ConfigError into one line and exit 2)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobexec.core.config import KEYS, ConfigError, Settings

BOUNDED = settings(max_examples=200, deadline=None)

key_names = st.sampled_from([k.name for k in KEYS]) | st.sampled_from(
    ["configs.kafka.properties.ssl.key.pem", "secrets.kafka.properties.sasl.password"]
)
values = st.text(max_size=30) | st.integers().map(str) | st.sampled_from(["0", "-1", "99999"])
escapes = st.sampled_from(["\\", "\\u", "\\uZZZZ", "\\u00", "\\\n", "\\t", "=", ":", "#", "!"])
line = st.tuples(key_names, st.sampled_from(["=", ":", " "]), values).map("".join) | escapes
properties_text = st.lists(line | st.text(max_size=40), max_size=12).map("\n".join)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="jobexec-fuzz-") as name:
        yield Path(name)


def load(path: Path) -> None:
    """Load the file; when it loads, its masked dump must be printable too."""
    try:
        loaded = Settings.load({"EXECUTOR_CONFIG_LOCATION": str(path)})
    except ConfigError:
        return
    for key, value in loaded.masked().items():
        assert isinstance(key, str) and isinstance(value, str)


@BOUNDED
@given(text=properties_text)
def test_generated_properties_load_or_raise_config_error_only(workdir: Path, text: str) -> None:
    path = workdir / "application.properties"
    path.write_text(text, encoding="utf-8")
    load(path)


@BOUNDED
@given(text=st.text(max_size=300))
def test_arbitrary_text_loads_or_raises_config_error_only(workdir: Path, text: str) -> None:
    path = workdir / "application.properties"
    path.write_text(text, encoding="utf-8")
    load(path)


@BOUNDED
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_load_or_raise_config_error_only(workdir: Path, raw: bytes) -> None:
    path = workdir / "bytes.properties"
    path.write_bytes(raw)
    load(path)
