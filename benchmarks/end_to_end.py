"""starlite, Starlette and Falcon end to end: each under uvicorn, loaded by wrk, in one run.

Each app of benchmarks/end_to_end_apps.py (plaintext and JSON, written once per framework, plus a
hand-written ASGI app as the ceiling) is served by uvicorn on 127.0.0.1, one worker, with uvloop
and httptools and without access logs or lifespan, as a production deployment runs it. wrk (one
thread, 64 keep-alive connections) loads it for a warm-up, then for the measured window, and its
requests per second are read. The servers take turns, in a fresh order each round (ABCD, DCBA,
...), so that the machine's drift hits them alike; the table gives each one's median requests per
second and the median of its per-round ratios to Starlette's, with their min-max.

The server and wrk share the machine: on 2 cores each gets about one, so a figure here is what one
uvicorn worker serves with a core to itself, less what the kernel's loopback costs. Absolute
numbers vary with the machine and its load; the ratios, taken within a round, are what to read.

Needs wrk (Debian: ``apt-get install wrk``) and, in the environment, the ``bench`` extra with
uvicorn's speed-ups: ``pip install -e ".[bench]" "uvicorn[standard]"``. Run it from the repository
root: ``python benchmarks/end_to_end.py`` (``--rounds N``, ``--seconds S`` per measured window,
``--connections C``, ``--only plaintext|json``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("bare", "starlite", "starlette", "falcon")
REFERENCE = "starlette"
PATHS = {"plaintext": "/plaintext", "json": "/json"}
START_TIMEOUT = 10.0  # seconds for a server to accept connections
STOP_TIMEOUT = 5.0  # seconds for a graceful stop before SIGKILL
WARM_UP_SECONDS = 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(app: str, port: int) -> subprocess.Popen[bytes]:
    """uvicorn serving `app` of end_to_end_apps.py, once it accepts connections."""
    command = [sys.executable, "-m", "uvicorn", f"end_to_end_apps:{app}_app"]
    command += ["--app-dir", str(ROOT / "benchmarks"), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--loop", "uvloop", "--http", "httptools", "--lifespan", "off"]
    command += ["--no-access-log", "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the working starlite.py, not an installed copy
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"uvicorn serving {app} exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    stop_server(server)
    sys.exit(f"uvicorn serving {app} did not accept within {START_TIMEOUT} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=STOP_TIMEOUT)


def wrk(url: str, seconds: int, connections: int) -> float:
    """Requests per second wrk measured on `url`; exits if any answer was not a 2xx."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        sys.exit(f"wrk saw errors on {url}:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        sys.exit(f"wrk printed no Requests/sec:\n{output}")
    return float(match.group(1))


def measure(app: str, path: str, seconds: int, connections: int) -> float:
    port = free_port()
    server = start_server(app, port)
    try:
        url = f"http://127.0.0.1:{port}{path}"
        wrk(url, WARM_UP_SECONDS, connections)
        return wrk(url, seconds, connections)
    finally:
        stop_server(server)


def run(workload: str, rounds: int, seconds: int, connections: int) -> None:
    rates: dict[str, list[float]] = {app: [] for app in APPS}
    for number in range(rounds):
        order = APPS if number % 2 == 0 else tuple(reversed(APPS))
        for app in order:
            rates[app].append(measure(app, PATHS[workload], seconds, connections))
        print(f"{workload} round {number + 1}/{rounds} done", file=sys.stderr)
    print(f"\n{workload}: requests per second, and the ratio to Starlette (median, min-max)")
    for app in APPS:
        ratios = [mine / theirs for mine, theirs in zip(rates[app], rates[REFERENCE], strict=True)]
        low, high = min(ratios), max(ratios)
        rate = statistics.median(rates[app])
        ratio = statistics.median(ratios)
        print(f"  {app:<10} {rate:>9,.0f}/s  {ratio:.2f} ({low:.2f}-{high:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", choices=sorted(PATHS))
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("end_to_end.py needs wrk: apt-get install wrk (Debian), brew install wrk (macOS)")
    for workload in [arguments.only] if arguments.only else list(PATHS):
        run(workload, arguments.rounds, arguments.seconds, arguments.connections)


if __name__ == "__main__":
    main()
