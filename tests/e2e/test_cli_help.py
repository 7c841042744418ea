"""`--help` of every command works without any configuration, and says what the command does."""

from __future__ import annotations

import pytest

from jobexec.cli.main import parser
from jobexec.testing.config_files import clean_environment
from jobexec.testing.processes import Cli


def _commands() -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []

    def walk(p: object, path: tuple[str, ...]) -> None:
        for action in getattr(p, "_actions", []):
            for name, sub in (getattr(action, "choices", None) or {}).items():
                if hasattr(sub, "_actions"):
                    found.append((*path, name))
                    walk(sub, (*path, name))

    walk(parser(), ())
    return found


COMMANDS = _commands()


def test_every_command_is_listed() -> None:
    assert {("worker",), ("flower",), ("bridge",), ("db", "upgrade"), ("jobs", "submit")} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_given_no_configuration_when_help_is_asked_then_it_prints_a_description_and_exits_0(
    command: tuple[str, ...], cli: Cli
) -> None:
    env = clean_environment()
    env.pop("SPRING_CONFIG_LOCATION", None)

    result = cli.run(*command, "--help", env=env, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration error" not in result.stdout + result.stderr
    assert result.stdout.startswith("usage: jobexec " + " ".join(command))
    description = result.stdout.split("\n\n")[1]
    assert len(description.split()) >= 3, result.stdout


@pytest.mark.parametrize(
    ("command", "passed_on"),
    [(("worker",), "--concurrency"), (("flower",), "--basic_auth")],
)
def test_help_of_worker_and_flower_shows_the_options_passed_on(
    command: tuple[str, ...], passed_on: str, cli: Cli
) -> None:
    env = clean_environment()
    env.pop("SPRING_CONFIG_LOCATION", None)

    result = cli.run(*command, "--help", env=env, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed on as it is" in result.stdout
    assert passed_on in result.stdout


def test_flower_help_does_not_print_the_random_default_cookie_secret(cli: Cli) -> None:
    env = clean_environment()
    env.pop("SPRING_CONFIG_LOCATION", None)

    result = cli.run("flower", "--help", env=env, timeout=60)

    cookie_line = next(line for line in result.stdout.splitlines() if "--cookie_secret" in line)
    assert cookie_line.split() == ["--cookie_secret", "secure", "cookie", "secret"]
