"""The console's Starlette application: pages and actions.

Pages read through `JobBrowser` and the dead-letter reader of `jobexec dlq list`; actions are
the operations `jobexec jobs` and `jobexec dlq replay` run (`jobexec.operations`): the same
checks, the same statements, the same messages, shown on the page. Every request passes basic
auth first; every POST must come from one of the console's own pages (guard.py).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from jobexec.console.guard import (
    CSRF_FIELD,
    BasicAuth,
    CrossSiteRequest,
    SecurityHeaders,
    check_same_origin,
    csrf_token,
    set_csrf_cookie,
)
from jobexec.core.config import ConfigError, Settings
from jobexec.core.db.admin import JobAdmin
from jobexec.core.db.browse import Cursor, JobBrowser, JobFilter, parse_statuses
from jobexec.core.db.states import JobStatus, JobType
from jobexec.core.db.store import JobStore
from jobexec.core.deadletter import DLT_HEADERS
from jobexec.core.masking import mask_text, mask_value
from jobexec.core.printable import printable
from jobexec.core.sections import KafkaSection, ListenSection
from jobexec.operations.deadletters import DltReader, DltRecord
from jobexec.operations.errors import SERVICE_ERRORS, OperationError, service_failure
from jobexec.operations.jobs import JobChange, JobOperations
from jobexec.operations.replay import Replayer

log = logging.getLogger("jobexec.console")

HERE = Path(__file__).parent
PAGE_SIZE = 50
RUNS_SHOWN = 100
DEAD_LETTERS_SHOWN = 200
FLASH_COOKIE = "jobexec_flash"
# Which action a job's status allows, as the operations check it; they have the last word.
ALLOWED = {
    "retry": {JobStatus.FAILED},
    "cancel": {
        JobStatus.SCHEDULED,
        JobStatus.PAUSED,
        JobStatus.FAILED,
        JobStatus.RUNNING,
        JobStatus.DISPATCHED,
    },
    "pause": {JobStatus.SCHEDULED},
    "resume": {JobStatus.PAUSED},
}
ACTIONS: dict[str, Callable[[JobOperations, str], JobChange]] = {
    "retry": JobOperations.retry,
    "cancel": JobOperations.cancel,
    "pause": JobOperations.pause,
    "resume": JobOperations.resume,
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """An action's result as the next page shows it: done or refused, and the words why."""

    ok: bool
    message: str


class Console:
    """The state every page shares: settings, the job database, the templates."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.browser = JobBrowser(store.engine)
        environment = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        environment.filters["when"] = _when
        environment.filters["path"] = _quote
        environment.filters["masked"] = masked_text
        self.templates = Jinja2Templates(env=environment)

    def render(
        self, request: Request, name: str, context: Mapping[str, Any], status: int = 200
    ) -> Response:
        token, new = csrf_token(request)
        flash = _read_flash(request)
        response = self.templates.TemplateResponse(
            request,
            name,
            {"csrf_field": CSRF_FIELD, "csrf_token": token, "flash": flash, **context},
            status_code=status,
        )
        if new:
            set_csrf_cookie(response, token)
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    # --- pages ------------------------------------------------------------------------------

    def jobs_page(self, request: Request) -> Response:
        query = request.query_params
        wanted = JobFilter(
            statuses=parse_statuses(query.getlist("status")),
            job_types=tuple(t for t in query.getlist("type") if t in set(JobType)),
            task=query.get("task", "").strip(),
            id_prefix=query.get("id", "").strip(),
        )
        after = _cursor(query.get("after_at"), query.get("after_id"))
        page = self.browser.jobs_page(wanted, after, PAGE_SIZE)
        next_link = None
        if page.next is not None:
            params = [(k, v) for k, v in query.multi_items() if not k.startswith("after_")]
            params += [
                ("after_at", page.next.next_run_at.isoformat()),
                ("after_id", page.next.job_id),
            ]
            next_link = "/jobs?" + urlencode(params)
        return self.render(
            request,
            "jobs.html",
            {
                "page": page,
                "wanted": wanted,
                "statuses": list(JobStatus),
                "types": list(JobType),
                "next_link": next_link,
                "first_link": "/jobs?"
                + urlencode([(k, v) for k, v in query.multi_items() if not k.startswith("after_")]),
                "paged": after is not None,
            },
        )

    def job_page(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        row = self.store.job_row(job_id)
        if row is None:
            return self.render(request, "missing.html", {"job_id": job_id}, status=404)
        payload = masked_text(json.dumps(mask_value(row["payload"]), indent=2, sort_keys=True))
        actions = [a for a in ACTIONS if row["status"] in ALLOWED[a]]
        return self.render(
            request,
            "job.html",
            {
                "job": row,
                "payload": payload,
                "runs": self.browser.latest_runs(job_id, RUNS_SHOWN),
                "runs_shown": RUNS_SHOWN,
                "actions": actions,
            },
        )

    def dead_letters_page(self, request: Request) -> Response:
        records: list[dict[str, Any]] = []
        problem = None
        more = False
        try:
            topic = self.settings.dead_letter_topic
            with DltReader(self.settings) as reader:
                found, more = reader.read_all(topic, DEAD_LETTERS_SHOWN)
            done = JobAdmin(self.store).replayed(topic)
            records = [
                _dead_letter(r, done.get((r.origin.partition, r.origin.offset))) for r in found
            ]
        except (OperationError, ConfigError) as exc:
            problem = str(exc).removeprefix("configuration error: ")
        except Exception as exc:  # Kafka away: say so on the page, keep serving the rest
            problem = f"the dead-letter topic cannot be read: {type(exc).__name__}"
        return self.render(
            request,
            "dead_letters.html",
            {
                "records": records,
                "problem": problem,
                "more": more,
                "shown": DEAD_LETTERS_SHOWN,
                "topic": KafkaSection.from_settings(self.settings).dead_letter_topic,
            },
        )

    # --- actions ----------------------------------------------------------------------------

    async def job_action(self, request: Request) -> Response:
        form = await request.form()
        check_same_origin(request, form)
        job_id = request.path_params["job_id"]
        action = request.path_params["action"]
        if action not in ACTIONS:
            return PlainTextResponse("no such action\n", status_code=404)
        outcome = await run_in_threadpool(self.change_job, action, job_id)
        log.info(
            "console %s of job %s: %s",
            action,
            job_id,
            "done" if outcome.ok else "refused",
            extra={"action": f"console_{action}", "job_id": job_id, "ok": outcome.ok},
        )
        return _redirect(f"/jobs/{_quote(job_id)}", outcome)

    async def replay(self, request: Request) -> Response:
        form = await request.form()
        check_same_origin(request, form)
        try:
            partition = int(str(form.get("partition", "")))
            offset = int(str(form.get("offset", "")))
        except ValueError:
            return PlainTextResponse("partition and offset must be numbers\n", status_code=400)
        outcome = await run_in_threadpool(self.replay_record, partition, offset)
        log.info(
            "console replay of %s:%s: %s",
            partition,
            offset,
            "done" if outcome.ok else "refused",
            extra={"action": "console_replay", "ok": outcome.ok},
        )
        return _redirect("/dead-letters", outcome)

    def change_job(self, action: str, job_id: str) -> Outcome:
        """Retry, cancel, pause or resume a job, as `jobexec jobs ACTION JOB_ID` does."""
        return _attempt(
            lambda: Outcome(True, ACTIONS[action](JobOperations(self.store), job_id).message)
        )

    def replay_record(self, partition: int, offset: int) -> Outcome:
        """Replay one dead letter, as `jobexec dlq replay --offset PARTITION:OFFSET` does."""

        def replay() -> Outcome:
            replayer = Replayer(self.store, self.settings, dry_run=False)
            with DltReader(self.settings) as reader:
                records = reader.read_positions(replayer.dlt, [(partition, offset)])
            lines = [outcome.message for outcome in replayer.replay(records)]
            return Outcome(replayer.tally.ok, "\n".join([*lines, replayer.tally.message]))

        return _attempt(replay)


def create_app(settings: Settings, store: JobStore) -> Starlette:
    """The console app; refuses (ConfigError) without both console credentials."""
    username: str = settings.require("secrets.console.username")
    password: str = settings.require("secrets.console.password")
    console = Console(settings, store)

    async def refuse_cross_site(_request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"cross-site request refused: {exc}\n", status_code=403)

    return Starlette(
        routes=[
            Route("/", lambda _r: RedirectResponse("/jobs", status_code=303)),
            Route("/jobs", console.jobs_page),
            Route("/jobs/{job_id:path}/{action}", console.job_action, methods=["POST"]),
            Route("/jobs/{job_id:path}", console.job_page),
            Route("/dead-letters", console.dead_letters_page),
            Route("/dead-letters/replay", console.replay, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(BasicAuth, username=username, password=password),
        ],
        exception_handlers={CrossSiteRequest: refuse_cross_site},
    )


def serve(settings: Settings) -> int:
    """Run the console with uvicorn until SIGTERM or SIGINT."""
    import uvicorn

    from jobexec.core.db.engine import database_url, make_engine

    store = JobStore(make_engine(database_url(settings)))
    app = create_app(settings, store)
    host, port = ListenSection.console(settings).address
    log.info("console on http://%s:%s", host, port, extra={"action": "console_started"})
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, server_header=False)
    finally:
        store.engine.dispose()
    return 0


# --- helpers --------------------------------------------------------------------------------


def _attempt(action: Callable[[], Outcome]) -> Outcome:
    """Run an operation; a refusal, a service away or a setting missing is a refused Outcome."""
    try:
        return action()
    except OperationError as exc:
        return Outcome(False, printable(str(exc)))
    except SERVICE_ERRORS as exc:
        return Outcome(False, printable(service_failure(exc)))
    except ConfigError as exc:  # the settings an action needs, as `jobexec` itself reports them
        return Outcome(False, str(exc))


def _dead_letter(record: DltRecord, replayed_at: datetime | None) -> dict[str, Any]:
    return {
        "partition": record.origin.partition,
        "offset": record.origin.offset,
        "timestamp": record.timestamp,
        "key": _shown(record.key),
        "headers": {name: record.header(name) for name in DLT_HEADERS},
        "value": _masked_value(record.value),
        "replayed_at": replayed_at,
    }


def masked_text(text: str | None) -> str:
    """Free text as pages show it (failure reasons, errors): secrets in it hidden."""
    return mask_text(text or "")


def _masked_value(raw: bytes | None) -> str:
    text = _shown(raw)
    with contextlib.suppress(ValueError):  # a poison record: shown as text, escaped
        text = json.dumps(mask_value(json.loads(text)), sort_keys=True)
    return masked_text(text)


def _shown(raw: bytes | None) -> str:
    return "" if raw is None else raw.decode("utf-8", errors="replace")


def _cursor(at: str | None, job_id: str | None) -> Cursor | None:
    if not at or job_id is None:
        return None
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return None
    return Cursor(when if when.tzinfo else when.replace(tzinfo=UTC), job_id)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _quote(job_id: str) -> str:
    return quote(job_id, safe="")


def _redirect(location: str, outcome: Outcome) -> Response:
    response = RedirectResponse(location, status_code=303)
    flash = json.dumps({"ok": outcome.ok, "message": outcome.message[:2000]})
    response.set_cookie(
        FLASH_COOKIE,
        base64.urlsafe_b64encode(flash.encode()).decode(),
        max_age=60,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return response


def _read_flash(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        flash = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, binascii.Error):
        return None
    return flash if isinstance(flash, dict) else None
