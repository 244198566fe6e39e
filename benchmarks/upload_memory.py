"""Peak memory of parsing a 50 MiB upload with ``request.form()``, starlite against Starlette.

One multipart body holding one 50 MiB file is sent to an app whose endpoint parses it with
``await request.form()``, and measures around the parse only:

- tracemalloc's peak of traced memory above what was traced before: every allocation Python makes,
  exactly, whatever the C allocator does with it. This is the figure to compare.
- on Linux, the growth of the process's peak resident set size (the kernel's ``VmHWM``, reset to
  the current size just before the parse, after the C heap's free memory is handed back). It
  counts all memory, tracemalloc's own bookkeeping too, and moves by a fraction of a MiB with the
  heap's layout (try ``PYTHONMALLOC=malloc``): a cross-check, not a ranking. ``ru_maxrss`` would
  not do: it cannot be reset, and the interpreter's start-up set it higher than a parse reaches.

The body is never whole in memory: ``receive()`` hands it over in 64 KiB chunks, made as they are
sent from one reused buffer. The app is called in-process as ASGI (no server, no sockets), after
a 2 MiB warm-up upload that loads python-multipart, starts the threadpool and makes a first
temporary file, so that none of these one-off costs is counted.

Each measurement runs in a fresh interpreter, so that one framework's peak cannot raise the
other's; the frameworks alternate (A B A B ...). Every interpreter imports both frameworks, so that
both parse on the same heap (compiling starlite.py alone, with no bytecode cached, leaves a heap
laid out differently, which moves the RSS figure by most of a MiB). After each parse the stored
file is checked (its size, and its first and last chunks), so that no figure comes from dropped
data.

Both frameworks keep an upload in memory up to the spool threshold (1 MiB), then move it to disk:
that much growth is expected. starlite's aim is a peak under 2 MiB beyond it.

Run it from the repository root: ``python benchmarks/upload_memory.py`` (needs the ``bench`` and
``multipart`` extras: ``pip install -e ".[bench,multipart]"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's starlite.py

import starlette.applications
import starlette.formparsers
import starlette.responses
import starlette.routing

import starlite

ROUNDS = 5
CHUNK_SIZE = 64 * 1024  # what a server typically hands over per receive()
CHUNKS = 800  # 800 x 64 KiB = 50 MiB
FILE_SIZE = CHUNK_SIZE * CHUNKS
# A 2 MiB upload first: past the spool threshold, so it takes the same path as the measured one.
WARM_UP_CHUNKS = 32
BOUNDARY = b"benchmark-boundary-7f3a"
MiB = 1024 * 1024
# The file's content: not all zeros, so that a check of its chunks means something.
BUFFER = bytes(range(256)) * (CHUNK_SIZE // 256)
# Each framework's application, route and plain-text response classes.
APP_CLASSES: dict[str, tuple[Any, Any, Any]] = {
    "starlite": (starlite.Starlite, starlite.Route, starlite.PlainTextResponse),
    "starlette": (
        starlette.applications.Starlette,
        starlette.routing.Route,
        starlette.responses.PlainTextResponse,
    ),
}
FRAMEWORKS = tuple(APP_CLASSES)


def body_parts(chunks: int) -> Iterator[bytes]:
    """The multipart body, one file of `chunks` x 64 KiB, as it is sent: nothing held whole."""
    yield (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    for _ in range(chunks):
        yield BUFFER  # the same object every time: the body costs no memory
    yield b"\r\n--" + BOUNDARY + b"--\r\n"


def body_length(chunks: int) -> int:
    return sum(len(part) for part in body_parts(chunks))


def reset_peak_rss() -> bool:
    """Set the kernel's record of this process's peak RSS to its current RSS, where it can be:
    ``/proc/<pid>/clear_refs`` takes "5" for that (Linux 4.0 and later)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def release_free_memory() -> None:
    """Hand the C heap's free memory back to the system (glibc's ``malloc_trim``), so that both
    frameworks start the parse from the same place: without it, memory freed earlier (compiling
    starlite.py when no bytecode is cached, say) stays resident and hides the parse's growth."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_rss() -> int:
    """The process's peak resident set size since the last reset, in bytes (Linux)."""
    match = re.search(r"^VmHWM:\s*(\d+) kB$", Path("/proc/self/status").read_text(), re.MULTILINE)
    assert match is not None, "no VmHWM in /proc/self/status"
    return int(match[1]) * 1024


def check_stored(upload: Any, size: int) -> None:
    """The parsed file holds every byte sent: its size, and its first and last chunks."""
    assert upload.size == size, f"UploadFile.size is {upload.size}, expected {size}"
    file = upload.file
    file.seek(0, os.SEEK_END)
    assert file.tell() == size, f"the stored file has {file.tell()} bytes, expected {size}"
    for offset in (0, size - CHUNK_SIZE):
        file.seek(offset)
        assert file.read(CHUNK_SIZE) == BUFFER, f"the stored file differs at byte {offset}"


def make_app(framework: str, results: dict[str, Any]) -> Any:
    """An app with one route, POST /upload, whose endpoint measures its ``request.form()``."""
    app_class, route_class, text_response = APP_CLASSES[framework]

    async def endpoint(request: Any) -> Any:
        gc.collect()
        tracemalloc.reset_peak()
        traced_before, _ = tracemalloc.get_traced_memory()
        release_free_memory()
        rss_measured = reset_peak_rss()
        rss_before = peak_rss() if rss_measured else 0
        form = await request.form()
        _, traced_peak = tracemalloc.get_traced_memory()
        results["peak_growth"] = traced_peak - traced_before
        results["rss_growth"] = peak_rss() - rss_before if rss_measured else None
        upload = form["file"]
        results["on_disk"] = getattr(upload.file, "_rolled", None)
        check_stored(upload, results["expected_size"])
        await form.close()
        return text_response("ok")

    return app_class(routes=[route_class("/upload", endpoint, methods=["POST"])])


async def upload(app: Any, chunks: int) -> int:
    """POST the body of `chunks` x 64 KiB to `app` as a server would; returns the status."""
    parts = body_parts(chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/upload",
        "raw_path": b"/upload",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"multipart/form-data; boundary=" + BOUNDARY),
            (b"content-length", str(body_length(chunks)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        part = next(parts, None)
        if part is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": part, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(framework: str) -> dict[str, Any]:
    """A warm-up upload, then the measured one; what the endpoint measured."""
    results: dict[str, Any] = {}
    app = make_app(framework, results)
    results["expected_size"] = CHUNK_SIZE * WARM_UP_CHUNKS
    assert await upload(app, WARM_UP_CHUNKS) == 200
    results["expected_size"] = FILE_SIZE
    tracemalloc.start()
    status = await upload(app, CHUNKS)
    tracemalloc.stop()
    assert status == 200, f"{framework} answered {status}"
    return results


def spool_thresholds() -> dict[str, int]:
    return {
        "starlite": starlite.MultiPartParser.spool_max_size,
        "starlette": starlette.formparsers.MultiPartParser.spool_max_size,
    }


def mib(size: float | None) -> str:
    return "  n/a" if size is None else f"{size / MiB:5.2f}"


def median_or_none(sizes: list[int | None]) -> float | None:
    """The median of `sizes`, or None where they could not be measured."""
    measured = [size for size in sizes if size is not None]
    return statistics.median(measured) if measured else None


def measure_in_fresh_interpreter(framework: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--measure", framework],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"measuring {framework} failed:\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    return result


def main() -> None:
    thresholds = spool_thresholds()
    print(
        f"One {FILE_SIZE // MiB} MiB file in a multipart body, sent in {CHUNK_SIZE // 1024} KiB "
        f"chunks, parsed by request.form(); {ROUNDS} rounds, each measurement in a fresh "
        "interpreter.\nSpool threshold (in memory up to, then on disk): "
        + ", ".join(f"{name} {size / MiB:.2f} MiB" for name, size in thresholds.items())
    )
    growth: dict[str, list[int]] = {name: [] for name in FRAMEWORKS}
    rss: dict[str, list[int | None]] = {name: [] for name in FRAMEWORKS}
    for round_number in range(1, ROUNDS + 1):
        for name in FRAMEWORKS:  # alternate, so that noise hits both alike
            result = measure_in_fresh_interpreter(name)
            growth[name].append(result["peak_growth"])
            rss[name].append(result["rss_growth"])
            print(
                f"round {round_number}  {name:<9}"
                f"  tracemalloc peak +{mib(result['peak_growth'])} MiB"
                f"  peak RSS +{mib(result['rss_growth'])} MiB"
                f"  stored {FILE_SIZE} bytes, checked (on disk: {result['on_disk']})"
            )
    print()
    for name in FRAMEWORKS:
        peak = statistics.median(growth[name])
        print(
            f"{name:<9}  tracemalloc peak growth: median {peak / MiB:.2f} MiB"
            f" (max {max(growth[name]) / MiB:.2f}), {(peak - thresholds[name]) / MiB:+.2f} MiB"
            f" beyond the spool threshold;  peak RSS growth: median"
            f" {mib(median_or_none(rss[name]))} MiB"
        )
    beyond = (max(growth["starlite"]) - thresholds["starlite"]) / MiB
    verdict = "met" if beyond < 2 else "NOT met"
    print(f"aim (starlite's peak under 2 MiB beyond the spool threshold): {verdict}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(asyncio.run(measure(sys.argv[2]))))
    else:
        main()
