"""`jobexec` itself: how a command's end reaches the shell."""

from __future__ import annotations

import argparse

import pytest

from jobexec.cli import main as cli


def test_ctrl_c_in_a_short_command_exits_130_in_one_line_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(_args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_config", interrupted)

    code = cli.main(["config"])

    assert code == 130
    assert capsys.readouterr().err == "jobexec: interrupted\n"
