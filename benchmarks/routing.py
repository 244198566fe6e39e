"""Routing cost, starlite against Starlette, on the same route tables in one run.

Each table has `groups` groups of four routes (``/r{i}``, ``/r{i}/{id:int}``,
``/r{i}/{id:int}/items``, ``/r{i}/{id:int}/items/{item}``). Each request kind is sent to both
apps in alternating rounds (A B A B ...), in-process as ASGI calls with no server and no sockets,
and the ratio of starlite's requests per second to Starlette's is printed with its min-max over
rounds. Run it from the repository root: ``python benchmarks/routing.py`` (needs the ``bench``
extra: ``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's starlite.py

import starlette.applications
import starlette.responses
import starlette.routing

import starlite

ROUNDS = 7
REQUESTS_PER_ROUND = 2000
TABLE_SIZES = (5, 30, 1000)  # groups of four routes: 20, 120 and 4,000 routes


def starlite_app(groups: int) -> Any:
    async def endpoint(request: starlite.Request) -> starlite.Response:
        return starlite.PlainTextResponse("ok")

    return starlite.Starlite(routes=table(starlite.Route, groups, endpoint))


def starlette_app(groups: int) -> Any:
    async def endpoint(request: Any) -> Any:
        return starlette.responses.PlainTextResponse("ok")

    return starlette.applications.Starlette(routes=table(starlette.routing.Route, groups, endpoint))


def table(route: Callable[..., Any], groups: int, endpoint: Any) -> list[Any]:
    routes = []
    for i in range(groups):
        routes += [
            route(f"/r{i}", endpoint),
            route(f"/r{i}/{{id:int}}", endpoint),
            route(f"/r{i}/{{id:int}}/items", endpoint),
            route(f"/r{i}/{{id:int}}/items/{{item}}", endpoint),
        ]
    return routes


def requests(groups: int) -> dict[str, tuple[str, str, int]]:
    """Request kind -> (method, path, expected status)."""
    last = groups - 1
    return {
        "last param route": ("GET", f"/r{last}/123/items/abc", 200),
        "static route": ("GET", f"/r{last}", 200),
        "miss (404)": ("GET", "/nowhere/at/all", 404),
        "wrong method (405)": ("POST", f"/r{last}/123", 405),
    }


async def call(app: Any, method: str, path: str) -> int:
    """One request through `app`, as a server would make it; returns the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def requests_per_second(app: Any, method: str, path: str) -> float:
    start = time.perf_counter()
    for _ in range(REQUESTS_PER_ROUND):
        await call(app, method, path)
    return REQUESTS_PER_ROUND / (time.perf_counter() - start)


async def compare(groups: int) -> None:
    apps = {"starlite": starlite_app(groups), "starlette": starlette_app(groups)}
    for kind, (method, path, expected) in requests(groups).items():
        for name, app in apps.items():
            status = await call(app, method, path)
            assert status == expected, f"{name} answered {status} to {method} {path}"
        rates: dict[str, list[float]] = {"starlite": [], "starlette": []}
        for _ in range(ROUNDS):
            for name, app in apps.items():  # alternate, so that noise hits both alike
                rates[name].append(await requests_per_second(app, method, path))
        ratios = [a / b for a, b in zip(rates["starlite"], rates["starlette"], strict=True)]
        print(
            f"{groups * 4:>5} routes  {kind:<20}"
            f"  starlite {statistics.median(rates['starlite']):>8.0f}/s"
            f"  starlette {statistics.median(rates['starlette']):>8.0f}/s"
            f"  ratio {statistics.median(ratios):6.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        )


async def main() -> None:
    for groups in TABLE_SIZES:
        await compare(groups)


if __name__ == "__main__":
    asyncio.run(main())
