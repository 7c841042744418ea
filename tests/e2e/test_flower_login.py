"""`jobexec flower` logins as Flower checks them: a password with `,` is one login, not two.

The real `jobexec flower` process on a free port, Redis as its broker; no worker needed.
"""

from __future__ import annotations

import pytest

from jobexec.testing.commands import status_of
from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.network import free_port
from jobexec.testing.processes import Cli
from jobexec.testing.redis_queue import RedisBroker
from jobexec.testing.waiting import wait_until

USER, PASSWORD = "admin", "Xk9q,7:z"


def test_given_a_password_with_a_comma_then_only_the_whole_login_is_accepted(
    cli: Cli, config_files: ConfigFiles, redis_broker: RedisBroker
) -> None:
    # Given Flower started by jobexec with a password holding `,` and `:`
    port = free_port()
    env = config_files.write(
        {**redis_broker.properties(), "configs.flower.port": str(port)},
        {"secrets.flower.username": USER, "secrets.flower.password": PASSWORD},
    )
    env["FLOWER_BASIC_AUTH"] = "stray:login"  # must not add a login either
    flower = cli.start("flower", env=env, name="flower")
    base = f"http://127.0.0.1:{port}/"
    wait_until(lambda: status_of(base, (USER, PASSWORD)) == 200, 60, message=flower.log)

    # Then the pieces a split on `,` would make, and the stray login, are refused
    for user, password in ((USER, "Xk9q"), ("7", "z"), (USER, "")):
        assert status_of(base, (user, password)) == 401, (user, password)
    assert status_of(base, ("stray", "login")) == 401
    assert status_of(base, None) == 401
    assert PASSWORD not in flower.log()


@pytest.mark.parametrize(
    ("secrets", "key"),
    [
        ({"secrets.flower.username": "ad:min", "secrets.flower.password": "p"}, "username"),
        ({"secrets.flower.username": "admin", "secrets.flower.password": "pässwörd"}, "password"),
        ({"secrets.flower.username": "admin"}, "password"),
    ],
)
def test_given_a_login_flower_cannot_check_then_it_exits_2_naming_the_key(
    cli: Cli, config_files: ConfigFiles, secrets: dict[str, str], key: str
) -> None:
    env = config_files.write({"configs.flower.port": str(free_port())}, secrets)

    done = cli.run("flower", env=env, timeout=30)

    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"secrets.flower.{key}" in line and str(config_files.secrets_path) in line
    assert "pässwörd" not in line and "ad:min" not in line
