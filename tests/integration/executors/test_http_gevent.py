"""The http executor's whole-call deadline and stop under gevent's monkey-patching, as in
`jobexec worker --pool gevent`: run in a child process, against servers in this one."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.executors.local_servers import Reply, ScriptedHttpServer

# Two calls at once in one process: one against a trickling server with a 1 s timeout, one
# against a slow server stopped after 0.5 s; a third greenlet ticks to show the hub never
# blocks while they wait.
CHILD = """
from gevent import monkey
monkey.patch_all()

import json, sys, time
import gevent
from executors import JobRun, Stopped, TransientError
from executors.http import HttpExecutor
from jobexec.core.config import Settings

trickle_url, slow_url = sys.argv[1], sys.argv[2]
executor = HttpExecutor(Settings.load({}))
result = {}

def call(name, run):
    started = time.monotonic()
    try:
        executor.execute(run)
        result[name] = ["ok", time.monotonic() - started]
    except (Stopped, TransientError) as exc:
        result[name] = [type(exc).__name__, time.monotonic() - started]

ticks = []
def tick():
    while len(ticks) < 20:
        ticks.append(time.monotonic())
        gevent.sleep(0.05)

stopped = JobRun("job_s", 1, "run-s", {"task": "http", "url": slow_url, "timeout_seconds": 30})
gevent.spawn_later(0.5, stopped.stop.set)
trickled = JobRun("job_t", 1, "run-t", {"task": "http", "url": trickle_url, "timeout_seconds": 1})
gevent.joinall([
    gevent.spawn(call, "trickle", trickled),
    gevent.spawn(call, "stop", stopped),
    gevent.spawn(tick),
])
result["largest_tick_gap"] = max(b - a for a, b in zip(ticks, ticks[1:]))
print(json.dumps(result))
"""


def test_given_the_gevent_pool_when_calls_trickle_or_are_stopped_then_both_end_in_time(
    http_server: ScriptedHttpServer,
) -> None:
    http_server.script(Reply(200, trickle=0.3))
    slow = ScriptedHttpServer()
    slow.script(Reply(200, delay=20))
    slow.start()
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD, http_server.url, slow.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        slow.stop()

    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["trickle"][0] == "TransientError"
    assert result["trickle"][1] < 1 + 0.5
    assert result["stop"][0] == "Stopped"
    assert result["stop"][1] - 0.5 < 1.0
    assert result["largest_tick_gap"] < 0.5  # the calls waited cooperatively
