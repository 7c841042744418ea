"""RetryPolicy: how many tries a run gets and how long to wait between them."""

from __future__ import annotations

import itertools
import random

import pytest

from jobexec.core.config import Settings
from workers import retry
from workers.retry import RetryPolicy

DRAWS = 5000


@pytest.fixture(autouse=True)
def seeded_random(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reproducible draws: a failure here is the policy's, not bad luck.
    monkeypatch.setattr(retry, "random", random.Random(20251129))


def draws(policy: RetryPolicy, attempt: int) -> list[float]:
    return [policy.backoff(attempt) for _ in range(DRAWS)]


def test_from_settings_uses_the_contract_defaults() -> None:
    policy = RetryPolicy.from_settings(Settings.load({}))

    assert policy == RetryPolicy(max_attempts=3, initial_backoff=1.0, max_backoff=60.0)


def test_from_settings_reads_milliseconds_as_seconds() -> None:
    settings = Settings.load(
        {
            "CONFIGS_RETRY_MAXATTEMPTS": "5",
            "CONFIGS_RETRY_INITIALBACKOFFMS": "250",
            "CONFIGS_RETRY_MAXBACKOFFMS": "4000",
        }
    )

    policy = RetryPolicy.from_settings(settings)

    assert policy == RetryPolicy(max_attempts=5, initial_backoff=0.25, max_backoff=4.0)


@pytest.mark.parametrize(
    ("attempt", "exhausted"), [(1, False), (2, False), (3, True), (4, True), (10, True)]
)
def test_exhausted_once_attempt_reaches_max_attempts(attempt: int, exhausted: bool) -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff=1.0, max_backoff=60.0)

    assert policy.exhausted(attempt) is exhausted


def test_single_attempt_policy_is_exhausted_after_the_first_try() -> None:
    assert RetryPolicy(max_attempts=1, initial_backoff=1.0, max_backoff=60.0).exhausted(1)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 32.0), (7, 60.0), (8, 60.0), (20, 60.0)],
)
def test_backoff_lies_between_half_the_ceiling_and_the_ceiling(
    attempt: int, ceiling: float
) -> None:
    policy = RetryPolicy(max_attempts=30, initial_backoff=1.0, max_backoff=60.0)

    delays = draws(policy, attempt)

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)


@pytest.mark.parametrize("attempt", [1, 3, 7])
def test_backoff_jitter_spreads_over_the_whole_range(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=30, initial_backoff=1.0, max_backoff=60.0)
    ceiling = min(60.0, 2.0 ** (attempt - 1))

    delays = draws(policy, attempt)

    # Uniform over [ceiling/2, ceiling]: both ends are reached and the mean sits in the middle.
    spread = ceiling / 2
    assert min(delays) < ceiling / 2 + 0.02 * spread
    assert max(delays) > ceiling - 0.02 * spread
    assert abs(sum(delays) / len(delays) - 0.75 * ceiling) < 0.03 * spread
    assert len(set(delays)) > DRAWS * 0.99  # not lockstep


def test_backoff_grows_exponentially_until_the_cap() -> None:
    policy = RetryPolicy(max_attempts=30, initial_backoff=0.5, max_backoff=10.0)

    means = [sum(draws(policy, attempt)) / DRAWS for attempt in range(1, 8)]

    assert means[0] == pytest.approx(0.375, rel=0.05)
    for earlier, later in itertools.pairwise(means[:5]):
        assert later == pytest.approx(2 * earlier, rel=0.1)
    assert means[5] == pytest.approx(7.5, rel=0.05)
    assert means[6] == pytest.approx(7.5, rel=0.05)


@pytest.mark.parametrize("attempt", [1, 2, 5, 10, 30, 64, 100, 1100, 10_000])
def test_backoff_never_exceeds_max_backoff(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=20_000, initial_backoff=1.0, max_backoff=60.0)

    assert all(policy.backoff(attempt) <= 60.0 for _ in range(200))


def test_backoff_is_never_zero() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=60.0)

    assert min(draws(policy, 1)) >= 0.0005


def test_retry_after_longer_than_the_backoff_is_waited_out() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=60.0)
    assert policy.delay(1, retry_after=30.0) == 30.0


def test_retry_after_is_capped_at_the_longest_backoff() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=60.0)
    assert policy.delay(1, retry_after=3600.0) == 60.0


def test_retry_after_shorter_than_the_backoff_changes_nothing() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff=8.0, max_backoff=60.0)
    assert 4.0 <= policy.delay(1, retry_after=0.5) <= 8.0
