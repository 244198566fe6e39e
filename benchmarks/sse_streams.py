"""Server-sent events under uvicorn: server CPU per event and memory per open stream, starlite's
``EventSourceResponse`` against Starlette's with sse-starlette's, in one run.

What: each framework serves one route, ``/events``, whose ``EventSourceResponse`` streams events
from an async generator at a steady rate (one every ``--interval`` seconds per stream, a dict
with ``data`` and ``id``, the same generator for both; the first event comes after a random part
of an interval, so that the streams' events are spread over time). Pings stay at both
frameworks' default, every 15 s.

How: for each framework in turn, a uvicorn server (its default protocols, 127.0.0.1 only, on a
free port) runs in a process of its own, and a client in another process (asyncio, raw sockets)
opens ``--streams`` streams and keeps them all open, reading and counting events. Once every
stream has had its first event and the streams have run for ``--settle`` seconds, a window of
``--window`` seconds is measured: the server process's CPU time (user + system, from
``/proc/<pid>/stat``) over the window, divided by the events the client received in it, gives
the CPU per event; the growth of its resident memory (``/proc/<pid>/status``) from before the
streams opened (after one warm-up stream) to the end of the window, divided by the streams,
gives the memory per stream. The client then closes its streams and the server is stopped
(interrupted, then killed if it is still up after a few seconds). The frameworks alternate,
A B B A, for ``--rounds`` rounds; the table gives each one's median and the median of the
rounds' ratios (starlite / Starlette, lower is better) with their min-max. The events per second
delivered are shown too: a server that cannot keep up delivers fewer than streams / interval.

The CPU figure is the server's whole cost of an event: the generator's timer, the framework,
uvicorn's protocol and the socket write. On a shared machine the absolute figures move with the
load; the ratio of one run is what holds.

Run it from the repository root: ``python benchmarks/sse_streams.py`` (Linux only, for /proc;
needs uvicorn, starlette and sse-starlette installed beside starlite). Options: ``--streams N``
(default 1,000), ``--interval S``, ``--window S``, ``--settle S``, ``--rounds N``, ``--markdown``.
Progress goes to stderr, the table to stdout. Every process it starts is stopped before it ends,
also when it fails or is interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's starlite.py, in the server process

FRAMEWORKS = ("starlite", "starlette")
HOST = "127.0.0.1"
# What each framework's generator yields, counted by the client: one per event.
DATA_MARK = b"data: tick "
# Time bounds, so that a hung server or client cannot hang the run.
START_SECONDS = 20.0
STOP_SECONDS = 5.0
OPEN_CONCURRENCY = 100  # connections the client opens at once: well under uvicorn's backlog


# ---- The apps, in the server process ----


async def ticks(interval: float) -> AsyncIterator[dict[str, str]]:
    """An endless stream of events, one every `interval` seconds, starting at a random phase."""
    await asyncio.sleep(random.uniform(0, interval))
    number = 0
    while True:
        yield {"data": f"tick {number}", "id": str(number)}
        number += 1
        await asyncio.sleep(interval)


def starlite_app(interval: float) -> Any:
    import starlite

    def events(request: starlite.Request) -> starlite.EventSourceResponse:
        return starlite.EventSourceResponse(ticks(interval))

    return starlite.Starlite(routes=[starlite.Route("/events", events)])


def starlette_app(interval: float) -> Any:
    from sse_starlette import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    def events(request: Request) -> EventSourceResponse:
        return EventSourceResponse(ticks(interval))

    return Starlette(routes=[Route("/events", events)])


def serve(framework: str, port: int, interval: float) -> None:
    import uvicorn

    app = starlite_app(interval) if framework == "starlite" else starlette_app(interval)
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    # uvicorn re-raises the interrupt that stops it, once it has shut down.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()


# ---- The client, in a process of its own ----


class Streams:
    """Open event streams, counting the events they receive."""

    def __init__(self, port: int, streams: int) -> None:
        self.port = port
        self.events = 0
        self.waiting = streams  # streams yet to have their first event
        self.all_started = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(HOST, self.port)
        writer.write(
            f"GET /events HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self.writers.append(writer)
        return reader, writer

    async def read(self, reader: asyncio.StreamReader) -> None:
        # A mark may straddle two reads: keep the bytes that could begin one.
        tail = b""
        started = False
        while data := await reader.read(65536):
            data = tail + data
            count = data.count(DATA_MARK)
            self.events += count
            if count and not started:
                started = True
                self.waiting -= 1
                if not self.waiting:
                    self.all_started.set()
            tail = data[-(len(DATA_MARK) - 1) :]

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


async def run_client(port: int, streams: int) -> None:
    """Open `streams` streams, say "ready" once each has had an event, then answer each line
    on stdin with the events counted so far, until stdin closes."""
    client = Streams(port, streams)
    limit = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_then_read() -> None:
        async with limit:
            reader, _ = await client.open()
        await client.read(reader)

    readers = [asyncio.create_task(open_then_read()) for _ in range(streams)]
    await asyncio.wait_for(client.all_started.wait(), START_SECONDS)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(client.events, flush=True)
    client.close()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


# ---- The driver ----


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        # After the command name in brackets (which may hold spaces): utime and stime are the
        # 12th and 13th fields, in clock ticks.
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def started(command: list[str], **options: Any) -> Iterator[subprocess.Popen[Any]]:
    process = subprocess.Popen(command, **options)
    try:
        yield process
    finally:
        stop(process)


def wait_until_listening(process: subprocess.Popen[Any], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on port {port} in {START_SECONDS} s")


def warm_up(port: int) -> None:
    """One stream until its first event: imports and first-call work happen before the memory
    baseline is read."""
    with socket.create_connection((HOST, port), timeout=START_SECONDS) as connection:
        connection.sendall(f"GET /events HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
        received = b""
        while DATA_MARK not in received:
            chunk = connection.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the warm-up stream")
            received += chunk


def read_line(stream: IO[str], what: str) -> str:
    line = stream.readline()
    if not line:
        raise RuntimeError(f"the client ended before {what}")
    return line.strip()


@dataclass
class Measurement:
    cpu_per_event: float  # seconds
    memory_per_stream: float  # bytes
    events_per_second: float


def measure(framework: str, args: argparse.Namespace) -> Measurement:
    port = free_port()
    this = str(Path(__file__).resolve())
    server_command = [sys.executable, this, "--serve", framework, "--port", str(port)]
    server_command += ["--interval", str(args.interval)]
    client_command = [sys.executable, this, "--client", "--port", str(port)]
    client_command += ["--streams", str(args.streams)]
    with started(server_command) as server:
        wait_until_listening(server, port)
        warm_up(port)
        time.sleep(0.5)
        memory_before = rss_bytes(server.pid)
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
        with started(client_command, **pipes) as client:
            assert client.stdin is not None
            assert client.stdout is not None
            if read_line(client.stdout, "its streams opened") != "ready":
                raise RuntimeError("the client did not open its streams")
            time.sleep(args.settle)
            client.stdin.write("\n")
            client.stdin.flush()
            cpu_before = cpu_seconds(server.pid)
            events_before = int(read_line(client.stdout, "counting"))
            started_at = time.monotonic()
            time.sleep(args.window)
            client.stdin.write("\n")
            client.stdin.flush()
            cpu_after = cpu_seconds(server.pid)
            events_after = int(read_line(client.stdout, "counting"))
            seconds = time.monotonic() - started_at
            memory_after = rss_bytes(server.pid)
            client.stdin.close()
            client.wait(STOP_SECONDS)
    events = events_after - events_before
    if events <= 0:
        raise RuntimeError(f"{framework}: no event delivered in the window")
    return Measurement(
        (cpu_after - cpu_before) / events,
        (memory_after - memory_before) / args.streams,
        events / seconds,
    )


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def print_table(results: dict[str, list[Measurement]], args: argparse.Namespace) -> None:
    def median(framework: str, figure: str) -> float:
        return float(statistics.median(getattr(m, figure) for m in results[framework]))

    def ratios(figure: str) -> list[float]:
        pairs = zip(results["starlite"], results["starlette"], strict=True)
        return [getattr(a, figure) / getattr(b, figure) for a, b in pairs]

    head = ("figure", "starlite", "Starlette + sse-starlette", "starlite / Starlette")
    rows = [
        head,
        (
            "server CPU per event",
            f"{median('starlite', 'cpu_per_event') * 1e6:.1f} us",
            f"{median('starlette', 'cpu_per_event') * 1e6:.1f} us",
            spread(ratios("cpu_per_event")),
        ),
        (
            "memory per stream",
            f"{median('starlite', 'memory_per_stream') / 1024:.1f} KiB",
            f"{median('starlette', 'memory_per_stream') / 1024:.1f} KiB",
            spread(ratios("memory_per_stream")),
        ),
        (
            "events delivered per second",
            f"{median('starlite', 'events_per_second'):,.0f}",
            f"{median('starlette', 'events_per_second'):,.0f}",
            spread(ratios("events_per_second")),
        ),
    ]
    import sse_starlette
    import starlette
    import uvicorn

    import starlite

    print(
        f"starlite {starlite.__version__} against Starlette {starlette.__version__} with"
        f" sse-starlette {sse_starlette.__version__}, uvicorn {uvicorn.__version__}, Python"
        f" {sys.version.split()[0]}: {args.streams:,} streams, an event every {args.interval} s"
        f" on each ({args.streams / args.interval:,.0f} a second), {args.rounds} rounds of a"
        f" {args.window} s window, alternating. Median (min-max of the rounds' ratios); lower"
        " is better for CPU and memory."
    )
    print()
    if args.markdown:
        for row in rows:
            print("| " + " | ".join(row) + " |")
            if row is head:
                print("|---|--:|--:|---|")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for name, a, b, ratio in rows:
        print(f"{name:<{widths[0]}}  {a:>{widths[1]}}  {b:>{widths[2]}}  {ratio}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=1000, help="open streams (default 1000)")
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between a stream's events (0.5)"
    )
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured (10)")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds before the window opens (2)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    # The two roles this script plays in its child processes.
    parser.add_argument("--serve", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.streams < 1 or args.rounds < 1 or min(args.interval, args.window) <= 0:
        parser.error("--streams and --rounds must be at least 1, --interval and --window above 0")
    return args


def main() -> None:
    args = parse_arguments()
    if args.serve:
        serve(args.serve, args.port, args.interval)
        return
    if args.client:
        asyncio.run(run_client(args.port, args.streams))
        return
    results: dict[str, list[Measurement]] = {name: [] for name in FRAMEWORKS}
    for round_number in range(args.rounds):
        order = FRAMEWORKS if round_number % 2 == 0 else FRAMEWORKS[::-1]
        for framework in order:
            result = measure(framework, args)
            results[framework].append(result)
            print(
                f"round {round_number + 1}, {framework}: {result.cpu_per_event * 1e6:.1f} us per"
                f" event, {result.memory_per_stream / 1024:.1f} KiB per stream,"
                f" {result.events_per_second:,.0f} events/s",
                file=sys.stderr,
                flush=True,
            )
    print_table(results, args)


if __name__ == "__main__":
    main()
