"""`jobexec dlq list|replay`: the arguments and the output of the dead-letter operations
(`jobexec.operations.deadletters`): inspect the dead-letter topic and republish chosen records,
each at most once."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from jobexec.cli.commands import bad_input, command, load_settings, say
from jobexec.core.deadletter import DLT_HEADERS
from jobexec.core.masking import mask_text
from jobexec.core.printable import printable
from jobexec.operations.deadletters import DltReader, DltRecord, text, truncate
from jobexec.operations.replay import Replayer
from jobexec.operations.store import job_store

VALUE_WIDTH = 200
_POSITION = re.compile(r"^(?:(\d+):)?(\d+)$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlq` and its sub-commands to the `jobexec` parser."""
    dlq = subparsers.add_parser(
        "dlq",
        help="inspect and replay the dead-letter topic",
        description="The dead-letter topic (configs.kafka.topic.dead-letter).",
    )
    sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")

    listing = sub.add_parser(
        "list",
        help="print the dead-letter records, oldest first",
        description="Read the dead-letter topic from the beginning (no consumer group) and "
        "print each record: PARTITION:OFFSET, key, the kafka_dlt headers and the value.",
    )
    listing.add_argument("--limit", type=int, default=100, help="at most this many records [100]")
    listing.add_argument(
        "--json", action="store_true", help="one JSON object per line, untruncated"
    )
    listing.set_defaults(func=cmd_list)

    replay = sub.add_parser(
        "replay",
        help="republish dead-letter records to the job-events topic, each at most once",
        description="Republish the chosen records' values to the job-events topic, key "
        "unchanged, kafka_dlt headers dropped, header jobexec-replayed-from added. A record "
        "already replayed (table dlq_replays) is skipped. An exhausted-run record re-arms "
        "its FAILED job (RUNNING, attempts 1, a new run due now) and is published as attempt 1, "
        "only if its key is the job id of its value, the job failed by exhausting its tries and "
        "the record is not older than the job's failed_at; otherwise it is refused (exit 1). "
        "Any other record, a poison record above all, is republished unchanged and re-arms "
        "nothing.",
    )
    chosen = replay.add_mutually_exclusive_group(required=True)
    chosen.add_argument(
        "--offset",
        action="append",
        metavar="[PARTITION:]OFFSET",
        help="a record as `jobexec dlq list` shows it (repeatable); the partition may be left "
        "out when the topic has only one",
    )
    chosen.add_argument("--all", action="store_true", help="every record of the topic")
    replay.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    replay.set_defaults(func=cmd_replay)


# --- list -----------------------------------------------------------------------------------


@command
def cmd_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise bad_input("--limit must be positive")
    settings = load_settings()
    topic = settings.dead_letter_topic
    with DltReader(settings) as reader:
        records, more = reader.read_all(topic, args.limit)
    for record in records:
        if args.json:
            print(json.dumps(record_json(record), sort_keys=True))
        else:
            _print_record(record)
    if not records:
        say(f"dead-letter topic {topic} is empty")
    if more:
        say(f"showing the first {args.limit} records; use --limit for more")
    return 0


def record_json(record: DltRecord) -> dict[str, Any]:
    """A record as `dlq list --json` prints it: untruncated, its position flat."""
    return {
        "topic": record.origin.topic,
        "partition": record.origin.partition,
        "offset": record.origin.offset,
        "timestamp": record.timestamp.isoformat() if record.timestamp else None,
        "key": text(record.key),
        "headers": {name: text(raw) for name, raw in record.headers},
        "value": text(record.value),
    }


def _print_record(record: DltRecord) -> None:
    # Keys, headers and values come from whoever wrote the record: escaped, never raw.
    when = record.timestamp.strftime("%Y-%m-%d %H:%M:%S") if record.timestamp else "-"
    print(f"{record.position}  key={printable(text(record.key) or '')}  {when}")
    for name in DLT_HEADERS:
        value = record.header(name)
        shown = "-" if value is None else printable(truncate(mask_text(value), VALUE_WIDTH))
        print(f"  {name}: {shown}")
    print(f"  value: {printable(truncate(text(record.value) or '', VALUE_WIDTH))}")


# --- replay ---------------------------------------------------------------------------------


@command
def cmd_replay(args: argparse.Namespace) -> int:
    wanted = None if args.all else [parse_position(given) for given in args.offset]
    settings = load_settings()
    with job_store(settings) as store:
        replayer = Replayer(store, settings, args.dry_run)
        with DltReader(settings) as reader:
            if wanted is None:
                records, _ = reader.read_all(replayer.dlt, None)
            else:
                records = reader.read_positions(replayer.dlt, wanted)
        if not records:
            say(f"dead-letter topic {replayer.dlt} is empty: nothing to replay")
            return 0
        for outcome in replayer.replay(records):
            print(outcome.message)
    print(replayer.tally.message)
    return 0 if replayer.tally.ok else 1


def parse_position(given: str) -> tuple[int | None, int]:
    """`--offset` as `jobexec dlq list` shows it: OFFSET or PARTITION:OFFSET."""
    found = _POSITION.match(given.strip())
    if found is None:
        raise bad_input(f"--offset {given!r} is not OFFSET or PARTITION:OFFSET")
    partition = int(found.group(1)) if found.group(1) is not None else None
    return partition, int(found.group(2))
