"""The benchmark's size flags pick their profile; `--soak` is the million-event memory run."""

from __future__ import annotations

import pytest

from bench.__main__ import chosen_profile, parser


@pytest.mark.parametrize(
    ("flags", "name"),
    [([], "full"), (["--quick"], "quick"), (["--smoke"], "smoke"), (["--soak"], "soak")],
)
def test_given_a_size_flag_when_parsed_then_its_profile_is_chosen(
    flags: list[str], name: str
) -> None:
    assert chosen_profile(parser().parse_args(flags)).name == name


def test_given_the_soak_profile_then_a_million_events_pass_the_bridge_and_the_worker() -> None:
    soak = chosen_profile(parser().parse_args(["--soak", "--only", "bridge", "memory"]))
    assert (soak.bridge_events, soak.memory_events) == (1_000_000, 1_000_000)


def test_given_two_size_flags_when_parsed_then_the_harness_refuses() -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["--quick", "--soak"])
    assert exited.value.code == 2
