"""Property tests of masking: no generated secret value appears in any output.

Secrets are drawn from upper-case letters, digits and URL punctuation (`@/:?#%&=+!$`); every
other part (schemes, hosts, users, keys) from lower-case letters, so a secret found in the
output is a leak, never a coincidence. Whitespace and quotes end a URL in free text and are
left out of URL passwords.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from jobexec.core.config import Settings
from jobexec.core.masking import SECRET_PARAMS, SECRET_WORDS, mask_text, mask_url, mask_value
from jobexec.testing.config_files import render_properties

BOUNDED = settings(max_examples=200, deadline=None)

SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@/:?#%&=+!$"
secrets_ = st.text(SECRET_ALPHABET, min_size=6, max_size=24).filter(
    lambda s: any(c.isalnum() for c in s)
)
plain_secrets = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=6, max_size=24)
lower = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
schemes = st.sampled_from(["redis", "rediss", "amqp", "amqps", "https", "postgresql+psycopg"])
users = st.one_of(st.just(""), lower, st.tuples(lower, lower).map("@".join))
hosts = st.tuples(lower, st.sampled_from(["", ":6379", ".test", ".test:5672"])).map("".join)
paths = st.sampled_from(["", "/", "//", "/0", "/vhost", "/a/b"])


@st.composite
def secret_keys(draw: st.DrawFn) -> str:
    """A key holding a secret word, with the casing and separators people write."""
    word = draw(st.sampled_from(sorted(SECRET_WORDS)))
    word = "".join(c.upper() if draw(st.booleans()) else c for c in word)
    before = draw(st.sampled_from(["", "x-", "api_", "ssl.", "my-", "X_", "credentials."]))
    after = draw(st.sampled_from(["", "s", "_id", "-value", ".pem", "word"]))
    return before + word + after


query_keys = secret_keys() | st.sampled_from(sorted(SECRET_PARAMS))


def leaked(secret: str, output: str) -> bool:
    return secret in output or quote(secret, safe="") in output


@BOUNDED
@given(
    scheme=schemes,
    user=users,
    password=secrets_,
    host=hosts,
    path=paths,
    key=query_keys,
    token=secrets_,
)
def test_no_url_password_or_secret_query_value_survives(
    scheme: str, user: str, password: str, host: str, path: str, key: str, token: str
) -> None:
    url = f"{scheme}://{user}:{password}@{host}{path}?page=2&{key}={quote(token, safe='')}"

    for output in (mask_url(url), mask_text(f"cannot connect to {url} (refused)")):
        assert not leaked(password, output), output
        assert not leaked(token, output), output


json_leaves = st.none() | st.integers() | lower


@st.composite
def payloads(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A nested payload and the secret values planted in it."""
    planted: list[str] = []

    def plant() -> str:
        value = draw(plain_secrets)
        planted.append(value)
        return value

    def build(depth: int) -> Any:
        kind = draw(st.integers(0, 5 if depth < 3 else 1))
        if kind == 0:
            return draw(json_leaves)
        if kind == 1:
            return {draw(secret_keys()): plant()}
        if kind == 2:
            return [[draw(secret_keys()), plant()], ["accept", draw(lower)]]
        if kind == 3:
            return {"name": draw(secret_keys()), "value": plant()}
        if kind == 4:
            return f"https://{draw(lower)}:{plant()}@{draw(hosts)}/x?{draw(query_keys)}={plant()}"
        return {draw(lower): build(depth + 1) for _ in range(draw(st.integers(1, 3)))}

    return build(0), planted


@BOUNDED
@given(generated=payloads())
def test_no_secret_planted_in_a_nested_payload_survives(generated: tuple[Any, list[str]]) -> None:
    payload, planted = generated

    output = json.dumps(mask_value(payload))

    for secret in planted:
        assert secret not in output, (secret, output)


@BOUNDED
@given(
    broker_user=users,
    broker_password=secrets_,
    db_password=secrets_,
    kafka_key=secret_keys(),
    kafka_value=plain_secrets,
    secret_value=plain_secrets,
)
def test_no_secret_survives_the_config_dump(
    broker_user: str,
    broker_password: str,
    db_password: str,
    kafka_key: str,
    kafka_value: str,
    secret_value: str,
) -> None:
    with tempfile.TemporaryDirectory(prefix="jobexec-fuzz-") as name:
        path = Path(name) / "application.properties"
        lines = {
            "configs.celery.broker-url": f"amqp://{broker_user}:{broker_password}@rabbit//",
            "configs.jobDb.url": f"postgresql+psycopg://u:{db_password}@db/jobs",
            f"configs.kafka.properties.{kafka_key.lower()}": kafka_value,
            "secrets.smtp.password": secret_value,
        }
        path.write_text(render_properties(lines), encoding="utf-8")
        dump = Settings.load({"EXECUTOR_CONFIG_LOCATION": str(path)}).masked()

    output = "\n".join(f"{k}={v}" for k, v in dump.items())
    for secret in (broker_password, db_password, kafka_value, secret_value):
        assert not leaked(secret, output), (secret, output)
