"""An HTTP endpoint on 127.0.0.1 that answers every request `200 ok` after a fixed delay.

asyncio, HTTP/1.1 with keep-alive and a listen backlog of 4096, so hundreds of concurrent
calls wait side by side: the I/O-bound measurement's stand-in for a slow webhook receiver.
Run in its own process, so that serving costs the harness no GIL time:

    python -m bench.slow_endpoint --port PORT --delay-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
MAX_HEAD_BYTES = 64 * 1024


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Answer each request of one connection in turn until the client closes it."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            length = 0
            closing = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip() or 0)
                elif name == b"connection" and value.strip().lower() == b"close":
                    closing = True
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(delay)
            writer.write(REPLY)
            await writer.drain()
            if closing:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve(port: int, delay: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: serve_connection(r, w, delay),
        "127.0.0.1",
        port,
        backlog=4096,
        limit=MAX_HEAD_BYTES,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on 127.0.0.1:{port}, answering after {delay * 1000:g} ms", flush=True)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.slow_endpoint")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay-ms", type=float, default=50.0)
    args = p.parse_args(argv)
    asyncio.run(serve(args.port, args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
