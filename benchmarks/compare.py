"""starlite against Starlette (and Falcon where it has an equivalent) on every workload, in one run.

Each workload is an app written once against both frameworks' classes, called in-process as an
ASGI callable (no server, no sockets), on one asyncio event loop (anyio's asyncio backend):

- plaintext and JSON through a full app (the default middleware stack);
- a REST table of 120 routes and one of 4,000 (30 and 1,000 groups of ``/r{i}``,
  ``/r{i}/{id:int}``, ``/r{i}/{id:int}/items``, ``/r{i}/{id:int}/items/{item}``, from
  benchmarks/routing.py), each hit four ways: the last parameterised route, a static route, a
  miss (404) and a wrong method (405). Each table is built once per framework;
- three middlewares (CORS on a simple cross-origin request, GZip on a response below its minimum
  size, a pure-ASGI pass-through) and a ``BaseHTTPMiddleware`` that sets a header, before a
  plaintext route;
- path and query parameters echoed as JSON;
- a 20-field urlencoded form, and a multipart form with one 1 MiB file sent in 64 KiB chunks;
- a 1 MiB ``StreamingResponse`` in 64 KiB chunks, and a 1 MiB ``FileResponse``;
- a websocket: connect, accept, one text message echoed, close.

Falcon 4 (``falcon.asgi.App``) is a second reference, the pure-Python framework a user would pick
for speed, on the workloads it has an equivalent for: plaintext, JSON, both routing tables, path
and query parameters, and both forms. Each of its apps is written the Falcon way: a resource with
a responder per method (the table's routes share one, with GET only, so that a POST is Falcon's
own 405; Falcon's ``{id:int}`` converts as Starlette's does), ``req.get_param`` and
``get_param_as_int`` for the query, ``req.get_media()`` for both forms (the upload read whole from
its part's stream, as the others hold a 1 MiB file in memory). So that the bodies compare, its
errors are answered as Starlette's are, the status phrase in plain text (an error serializer), and
its JSON is as compact as Starlette's ``JSONResponse`` (a ``JSONHandler`` with compact
separators). It has no part in the middleware rows (Starlette's middleware classes, which Falcon
has no counterpart for) nor, for now, in the response and websocket rows. Installed from a wheel,
Falcon compiles three small helper modules (``falcon.cyutil``: its query-string parser and stream
reader among them), which its form rows lean on. Falcon comes with the ``bench`` extra; without
it, the table has no Falcon figures.

The driver makes each workload's scope once, as uvicorn would (ASGI 3.0, spec 2.3 for HTTP and
2.4 for websockets, host and other headers, client, server), and hands each request a shallow copy
with a fresh ``state``. ``receive`` gives the body (in one message, or in 64 KiB chunks), then,
as a server does, waits until the response is complete before it answers ``http.disconnect``
(answering at once would cancel Starlette's streaming responses, which listen for a disconnect).
``send`` keeps the status and headers and counts the body's bytes. Each app is called once before
anything is timed, and all must give the expected status and the same body size (and the
headers the workload is about), so that no broken workload can yield a fast wrong number. Each is
then warmed up, and the number of requests in a round is set, separately for each framework, to
take about 0.2 s (a fixed number for all the rounds): the 4,000-route table is far slower on
Starlette, and equal requests would make its rounds last minutes. Then the frameworks alternate
(A B C A B C ...) for ``--rounds`` rounds. The table gives each framework's median requests per
second, and the median of the rounds' ratios (starlite / Starlette and Falcon / Starlette, higher
is better) with their min-max. The driver's own cost (a microsecond or two a request, printed
first) is in every figure, so that every ratio slightly understates the difference. A workload
whose app raises or answers wrongly is marked FAILED, with the traceback on stderr, and the exit
status is 1. The import and memory rows are starlite's and Starlette's only.

Import time: ``import starlite`` against importing the Starlette modules whose features starlite
provides without an optional extra, each in a fresh interpreter (the time of the imports only, not
of the interpreter's start-up), alternating, with bytecode cached for both as after an install
(this environment sets ``PYTHONDONTWRITEBYTECODE``, so that starlite.py would be compiled on every
run: the children get a temporary ``PYTHONPYCACHEPREFIX`` instead, and one warm-up import each).
Left out of Starlette's set: ``starlette.testclient`` (imports httpx) and ``starlette.templating``
(imports jinja2), which starlite imports only when first used; ``starlette.middleware.sessions``
(needs itsdangerous, not a dependency here; leaving it out flatters Starlette);
``starlette.schemas``, ``starlette.middleware.wsgi`` and ``starlette.middleware.opentelemetry``,
which starlite has no counterpart for. ``starlette.formparsers`` is in, and imports python-multipart
whenever it is installed, as it is with the ``dev`` extra; starlite imports it on a first form.

Peak memory: a 50 MiB multipart upload parsed with ``request.form()``, measured as in
benchmarks/upload_memory.py (tracemalloc's peak, each in a fresh interpreter, alternating).

At the end come the comparison's targets and whether each is met.

Run it from the repository root: ``python benchmarks/compare.py`` (needs the ``bench`` and
``multipart`` extras, or ``dev`` and ``bench``: ``pip install -e ".[bench,multipart]"``).
Options: ``--rounds N``, ``--quick`` (a smoke run: fewer rounds, shorter rounds), ``--only NAME``
(the workloads whose name contains NAME), ``--markdown`` (the table in Markdown). Progress goes
to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's starlite.py

import anyio
import routing
import starlette
import starlette.applications
import starlette.middleware
import starlette.middleware.base
import starlette.middleware.cors
import starlette.middleware.gzip
import starlette.responses
import starlette.routing
import upload_memory

import starlite

try:  # the reference beside Starlette, installed by the bench extra: without it, no Falcon column
    import falcon
    import falcon.asgi
    import falcon.media
except ImportError:
    falcon = None

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 5
QUICK_ROUNDS = 3
ROUND_SECONDS = 0.2  # the length of one framework's round, in the default run
QUICK_ROUND_SECONDS = 0.04
MIN_REQUESTS = 5  # per round, however slow the requests
CHECK_TIMEOUT = 30.0  # seconds for the one checked call of each app
IMPORT_ROUNDS_PER_ROUND = 2  # imports are quick and noisy: twice as many rounds
KiB = 1024
MiB = 1024 * KiB
CHUNK = bytes(range(256)) * (64 * KiB // 256)  # 64 KiB, not all zeros
CHUNKS_PER_MIB = MiB // len(CHUNK)
HELLO = "Hello, world!"
ORIGIN = "https://example.com"
WEBSOCKET_TEXT = "Hello, websocket!"

FALCON = "falcon"  # the reference beside Starlette, on the workloads it has an equivalent for
STARLITE_MODULES = ("starlite",)
# The Starlette modules whose features starlite has without an optional extra (see above).
STARLETTE_MODULES = (
    "starlette.applications",
    "starlette.authentication",
    "starlette.background",
    "starlette.concurrency",
    "starlette.config",
    "starlette.convertors",
    "starlette.datastructures",
    "starlette.endpoints",
    "starlette.exceptions",
    "starlette.formparsers",
    "starlette.middleware",
    "starlette.middleware.authentication",
    "starlette.middleware.base",
    "starlette.middleware.body_limit",
    "starlette.middleware.cors",
    "starlette.middleware.errors",
    "starlette.middleware.exceptions",
    "starlette.middleware.gzip",
    "starlette.middleware.httpsredirect",
    "starlette.middleware.trustedhost",
    "starlette.requests",
    "starlette.responses",
    "starlette.routing",
    "starlette.staticfiles",
    "starlette.status",
    "starlette.types",
    "starlette.websockets",
)

# One request's outcome: status (a websocket's close code), body bytes (text echoed), and the
# response's headers (a websocket's message types).
Answer = tuple[int, int, list[Any]]
Exchange = Callable[[], Awaitable[Answer]]


@dataclass(frozen=True)
class Framework:
    """One framework's classes under common names, so that each app is written once."""

    name: str
    app: Any
    route: Any
    websocket_route: Any
    middleware: Any
    base_http_middleware: Any
    cors_middleware: Any
    gzip_middleware: Any
    plain_text_response: Any
    json_response: Any
    streaming_response: Any
    file_response: Any
    routing_app: Callable[[int], Any]  # the REST table of benchmarks/routing.py


FRAMEWORKS = (
    Framework(
        name="starlite",
        app=starlite.Starlite,
        route=starlite.Route,
        websocket_route=starlite.WebSocketRoute,
        middleware=starlite.Middleware,
        base_http_middleware=starlite.BaseHTTPMiddleware,
        cors_middleware=starlite.CORSMiddleware,
        gzip_middleware=starlite.GZipMiddleware,
        plain_text_response=starlite.PlainTextResponse,
        json_response=starlite.JSONResponse,
        streaming_response=starlite.StreamingResponse,
        file_response=starlite.FileResponse,
        routing_app=routing.starlite_app,
    ),
    Framework(
        name="starlette",
        app=starlette.applications.Starlette,
        route=starlette.routing.Route,
        websocket_route=starlette.routing.WebSocketRoute,
        middleware=starlette.middleware.Middleware,
        base_http_middleware=starlette.middleware.base.BaseHTTPMiddleware,
        cors_middleware=starlette.middleware.cors.CORSMiddleware,
        gzip_middleware=starlette.middleware.gzip.GZipMiddleware,
        plain_text_response=starlette.responses.PlainTextResponse,
        json_response=starlette.responses.JSONResponse,
        streaming_response=starlette.responses.StreamingResponse,
        file_response=starlette.responses.FileResponse,
        routing_app=routing.starlette_app,
    ),
)


# ---- The apps ----


def plaintext_app(fw: Framework, middleware: Sequence[Any] = ()) -> Any:
    async def plaintext(request: Any) -> Any:
        return fw.plain_text_response(HELLO)

    return fw.app(routes=[fw.route("/", plaintext)], middleware=list(middleware))


def json_app(fw: Framework) -> Any:
    async def message(request: Any) -> Any:
        return fw.json_response({"message": HELLO})

    return fw.app(routes=[fw.route("/json", message)])


class PassThrough:
    """A trivial pure-ASGI middleware: the same class in front of both frameworks."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def three_middleware_app(fw: Framework) -> Any:
    return plaintext_app(
        fw,
        [
            fw.middleware(fw.cors_middleware, allow_origins=[ORIGIN]),
            fw.middleware(fw.gzip_middleware, minimum_size=500),
            fw.middleware(PassThrough),
        ],
    )


def base_http_middleware_app(fw: Framework) -> Any:
    async def stamp(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["x-bench"] = "1"
        return response

    return plaintext_app(fw, [fw.middleware(fw.base_http_middleware, dispatch=stamp)])


def params_app(fw: Framework) -> Any:
    async def user(request: Any) -> Any:
        query = request.query_params
        return fw.json_response(
            {"user_id": request.path_params["user_id"], "q": query["q"], "page": int(query["page"])}
        )

    return fw.app(routes=[fw.route("/users/{user_id:int}", user)])


def form_app(fw: Framework) -> Any:
    async def fields(request: Any) -> Any:
        form = await request.form()
        count = len(form)
        await form.close()
        return fw.plain_text_response(str(count))

    async def upload(request: Any) -> Any:
        form = await request.form()
        size = form["file"].size
        await form.close()
        return fw.plain_text_response(str(size))

    return fw.app(
        routes=[
            fw.route("/fields", fields, methods=["POST"]),
            fw.route("/upload", upload, methods=["POST"]),
        ]
    )


def responses_app(fw: Framework, file_path: str) -> Any:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(CHUNKS_PER_MIB):
            yield CHUNK

    async def stream(request: Any) -> Any:
        return fw.streaming_response(chunks(), media_type="application/octet-stream")

    async def file(request: Any) -> Any:
        return fw.file_response(file_path)

    return fw.app(routes=[fw.route("/stream", stream), fw.route("/file", file)])


def routing_app(fw: Framework, groups: int) -> Any:
    return fw.routing_app(groups)


def websocket_app(fw: Framework) -> Any:
    async def echo(websocket: Any) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    return fw.app(routes=[fw.websocket_route("/ws", echo)])


# ---- Falcon's apps: the reference, on the workloads it has an equivalent for ----


def falcon_app() -> falcon.asgi.App:
    """A Falcon app whose answers compare with Starlette's: errors as their status phrase in plain
    text (Starlette's "Not Found"), JSON as compact as Starlette's JSONResponse writes it."""
    app = falcon.asgi.App()
    app.set_error_serializer(falcon_plain_text_error)
    compact = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(dumps=compact)
    return app


def falcon_plain_text_error(req: Any, resp: Any, error: Any) -> None:
    resp.content_type = falcon.MEDIA_TEXT
    resp.text = HTTPStatus(error.status_code).phrase


def falcon_text(resp: Any, text: str) -> None:
    resp.content_type = falcon.MEDIA_TEXT
    resp.text = text


class FalconHello:
    async def on_get(self, req: Any, resp: Any) -> None:
        falcon_text(resp, HELLO)


class FalconMessage:
    async def on_get(self, req: Any, resp: Any) -> None:
        resp.media = {"message": HELLO}


class FalconOk:
    """Every route of the REST table: GET only, so that a POST is a 405."""

    async def on_get(self, req: Any, resp: Any, **params: Any) -> None:
        falcon_text(resp, "ok")


class FalconUser:
    async def on_get(self, req: Any, resp: Any, user_id: int) -> None:
        resp.media = {
            "user_id": user_id,
            "q": req.get_param("q", required=True),
            "page": req.get_param_as_int("page", required=True),
        }


class FalconFields:
    async def on_post(self, req: Any, resp: Any) -> None:
        falcon_text(resp, str(len(await req.get_media())))


class FalconUpload:
    async def on_post(self, req: Any, resp: Any) -> None:
        size = 0
        async for part in await req.get_media():
            if part.name == "file":
                size = len(await part.stream.read())  # held whole, as the others hold 1 MiB
        falcon_text(resp, str(size))


def falcon_resource_app(path: str, resource: Any) -> falcon.asgi.App:
    app = falcon_app()
    app.add_route(path, resource)
    return app


def falcon_form_app() -> falcon.asgi.App:
    app = falcon_app()
    app.add_route("/fields", FalconFields())
    app.add_route("/upload", FalconUpload())
    return app


def falcon_routing_app(groups: int) -> falcon.asgi.App:
    app = falcon_app()
    resource = FalconOk()
    for path, _ in routing.table(lambda path, endpoint: (path, endpoint), groups, None):
        app.add_route(path, resource)  # Falcon's {id:int} converts as Starlette's does
    return app


# ---- The driver ----


def http_scope(
    method: str,
    path: str,
    query_string: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: Sequence[bytes] = (),
) -> dict[str, Any]:
    """An HTTP scope as uvicorn makes it; content-length too when there is a body."""
    all_headers = [
        (b"host", b"bench.example"),
        (b"user-agent", b"compare.py"),
        (b"accept", b"*/*"),
        *headers,
    ]
    if method in ("POST", "PUT", "PATCH"):
        all_headers.append((b"content-length", str(sum(map(len, body))).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": all_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def websocket_scope(path: str) -> dict[str, Any]:
    """A websocket scope as uvicorn makes it."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench.example"),
            (b"user-agent", b"compare.py"),
            (b"connection", b"Upgrade"),
            (b"upgrade", b"websocket"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            (b"sec-websocket-version", b"13"),
        ],
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {"websocket.http.response": {}},
    }


def http_exchange(app: Any, template: Mapping[str, Any], body: Sequence[bytes]) -> Exchange:
    """One request to `app` per call, its body in the messages `body` (at least one)."""
    body = tuple(body) or (b"",)
    last = len(body) - 1

    async def exchange() -> Answer:
        scope = dict(template)
        scope["state"] = {}
        position = 0
        status = 0
        size = 0
        headers: list[Any] = []
        complete = False
        done: anyio.Event | None = None

        async def receive() -> dict[str, Any]:
            nonlocal position, done
            if position <= last:
                chunk = body[position]
                position += 1
                return {"type": "http.request", "body": chunk, "more_body": position <= last}
            if not complete:  # as a server does: no disconnect before the response is sent
                if done is None:
                    done = anyio.Event()
                await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal status, size, headers, complete
            if message["type"] == "http.response.body":
                size += len(message.get("body", b""))
                if not message.get("more_body", False):
                    complete = True
                    if done is not None:
                        done.set()
            elif message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))

        await app(scope, receive, send)
        return status, size, headers

    return exchange


def websocket_exchange(app: Any, template: Mapping[str, Any]) -> Exchange:
    """One websocket session per call: connect, one text message, then disconnect."""

    async def exchange() -> Answer:
        scope = dict(template)
        scope["state"] = {}
        step = 0
        code = 0
        size = 0
        types: list[Any] = []

        async def receive() -> dict[str, Any]:
            nonlocal step
            step += 1
            if step == 1:
                return {"type": "websocket.connect"}
            if step == 2:
                return {"type": "websocket.receive", "text": WEBSOCKET_TEXT}
            return {"type": "websocket.disconnect", "code": 1000, "reason": ""}

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal code, size
            types.append(message["type"])
            if message["type"] == "websocket.send":
                size += len(message.get("text") or message.get("bytes") or "")
            elif message["type"] == "websocket.close":
                code = message.get("code", 1000)

        await app(scope, receive, send)
        return code, size, types

    return exchange


async def null_app(scope: Any, receive: Any, send: Any) -> None:
    """The least an ASGI app can do: what the driver costs on its own."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def seconds_per_request(exchange: Exchange, seconds: float) -> float:
    """Call `exchange` for about `seconds` (at least 3 times); the mean time of a call."""
    count = 0
    start = time.perf_counter()
    while True:
        await exchange()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= 3:
            return elapsed / count


async def requests_per_second(exchange: Exchange, count: int) -> float:
    gc.collect()  # every round starts from the same collector state
    start = time.perf_counter()
    for _ in range(count):
        await exchange()
    return count / (time.perf_counter() - start)


# ---- The workloads ----


@dataclass
class Workload:
    name: str
    app_key: str  # workloads with the same key share their apps, built once
    build: Callable[[Framework], Any]
    scope: dict[str, Any]
    body: tuple[bytes, ...] = ()
    status: int = 200
    size: int | None = None  # the body's expected size, when it is known
    has_headers: tuple[bytes, ...] = ()  # headers the response must have
    lacks_headers: tuple[bytes, ...] = ()  # ... and must not
    min_ratio: float = 1.0  # the target: starlite / Starlette at least this
    table: tuple[int, str] | None = None  # (routes, hit) for the routing workloads
    falcon: Callable[[], Any] | None = None  # builds Falcon's app, where it has an equivalent


def routing_goal(routes: int, hit: str) -> float:
    """The target ratio of a routing workload: issue 20's for the last parameter route, issue
    10's floor for the rest."""
    if hit == "last param route":
        return 12.0 if routes == 120 else 400.0
    return 5.0 if routes == 120 else 50.0


def workloads(file_path: str) -> list[Workload]:
    hello = len(HELLO)
    fields = urlencode({f"field{i}": f"value {i}" for i in range(20)}).encode()
    parts = tuple(upload_memory.body_parts(CHUNKS_PER_MIB))  # one file of 1 MiB, 64 KiB chunks
    multipart = b"multipart/form-data; boundary=" + upload_memory.BOUNDARY
    result = [
        Workload(
            "plaintext (full app)",
            "plaintext",
            plaintext_app,
            http_scope("GET", "/"),
            size=hello,
            min_ratio=1.7,
            falcon=lambda: falcon_resource_app("/", FalconHello()),
        ),
        Workload(
            "JSON (full app)",
            "json",
            json_app,
            http_scope("GET", "/json"),
            size=len(json.dumps({"message": HELLO}, separators=(",", ":"))),
            min_ratio=1.7,
            falcon=lambda: falcon_resource_app("/json", FalconMessage()),
        ),
    ]
    for groups in (30, 1000):
        routes = groups * 4
        for hit, (method, path, status) in routing.requests(groups).items():
            result.append(
                Workload(
                    f"routing {routes}: {hit}",
                    f"routing {routes}",
                    functools.partial(routing_app, groups=groups),
                    http_scope(method, path),
                    status=status,
                    min_ratio=routing_goal(routes, hit),
                    table=(routes, hit),
                    falcon=functools.partial(falcon_routing_app, groups),
                )
            )
    result += [
        Workload(
            "middleware: CORS + GZip + ASGI",
            "three middleware",
            three_middleware_app,
            http_scope(
                "GET", "/", headers=[(b"origin", ORIGIN.encode()), (b"accept-encoding", b"gzip")]
            ),
            size=hello,
            min_ratio=1.8,
            has_headers=(b"access-control-allow-origin",),
            lacks_headers=(b"content-encoding",),
        ),
        Workload(
            "middleware: BaseHTTPMiddleware",
            "base http middleware",
            base_http_middleware_app,
            http_scope("GET", "/"),
            size=hello,
            has_headers=(b"x-bench",),
        ),
        Workload(
            "path + query params (JSON)",
            "params",
            params_app,
            http_scope("GET", "/users/42", query_string=b"q=hello%20world&page=3"),
            size=len(
                json.dumps({"user_id": 42, "q": "hello world", "page": 3}, separators=(",", ":"))
            ),
            min_ratio=1.6,
            falcon=lambda: falcon_resource_app("/users/{user_id:int}", FalconUser()),
        ),
        Workload(
            "form: urlencoded, 20 fields",
            "forms",
            form_app,
            http_scope(
                "POST",
                "/fields",
                headers=[(b"content-type", b"application/x-www-form-urlencoded")],
                body=[fields],
            ),
            body=(fields,),
            size=len("20"),
            min_ratio=2.5,
            falcon=falcon_form_app,
        ),
        Workload(
            "form: multipart, 1 MiB file",
            "forms",
            form_app,
            http_scope("POST", "/upload", headers=[(b"content-type", multipart)], body=parts),
            body=parts,
            size=len(str(MiB)),
            min_ratio=1.1,
            falcon=falcon_form_app,
        ),
        Workload(
            "response: streaming 1 MiB",
            "responses",
            lambda fw: responses_app(fw, file_path),
            http_scope("GET", "/stream"),
            size=MiB,
        ),
        Workload(
            "response: file 1 MiB",
            "responses",
            lambda fw: responses_app(fw, file_path),
            http_scope("GET", "/file"),
            size=MiB,
        ),
        Workload(
            "websocket: connect, echo, close",
            "websocket",
            websocket_app,
            websocket_scope("/ws"),
            status=1000,
            size=len(WEBSOCKET_TEXT),
        ),
    ]
    return result


class WorkloadError(Exception):
    """A workload whose apps did not answer as expected: it is not timed."""


def check(workload: Workload, answers: Mapping[str, Answer]) -> None:
    """Both apps answered as `workload` expects, with bodies of the same size."""
    problems = []
    for name, (status, size, extra) in answers.items():
        if status != workload.status:
            problems.append(f"{name} answered {status}, expected {workload.status}")
        if workload.size is not None and size != workload.size:
            problems.append(f"{name} sent {size} body bytes, expected {workload.size}")
        if workload.scope["type"] == "websocket":
            expected = ["websocket.accept", "websocket.send", "websocket.close"]
            if extra != expected:
                problems.append(f"{name} sent {extra}, expected {expected}")
            continue
        names = {key.lower() for key, _ in extra}
        problems += [
            f"{name}'s response lacks {header.decode()}"
            for header in workload.has_headers
            if header not in names
        ]
        problems += [
            f"{name}'s response has {header.decode()}"
            for header in workload.lacks_headers
            if header in names
        ]
    sizes = {size for _, size, _ in answers.values()}
    if len(sizes) > 1:
        problems.append(f"the body sizes differ: {sorted(sizes)}")
    if problems:
        raise WorkloadError("; ".join(problems))


@dataclass
class Measured:
    """A workload's rounds: requests per second for each framework, or why there are none."""

    name: str
    workload: Workload | None = None
    rates: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    @property
    def ratios(self) -> list[float]:
        """starlite / Starlette, round by round."""
        return self.ratios_of("starlite")

    def ratios_of(self, framework: str) -> list[float]:
        """`framework` / Starlette, round by round."""
        pairs = zip(self.rates[framework], self.rates["starlette"], strict=True)
        return [a / b for a, b in pairs]

    def median(self, framework: str) -> float:
        return statistics.median(self.rates[framework])


@dataclass
class Settings:
    rounds: int
    round_seconds: float


async def measure(workload: Workload, apps: Mapping[str, Any], settings: Settings) -> Measured:
    exchanges: dict[str, Exchange] = {}
    for name, app in apps.items():
        if workload.scope["type"] == "websocket":
            exchanges[name] = websocket_exchange(app, workload.scope)
        else:
            exchanges[name] = http_exchange(app, workload.scope, workload.body)
    answers: dict[str, Answer] = {}
    raised: dict[str, str] = {}
    for name, exchange in exchanges.items():
        try:
            with anyio.fail_after(CHECK_TIMEOUT):
                answers[name] = await exchange()
        except Exception as exc:
            progress(f"{workload.name}: {name} raised\n{traceback.format_exc()}")
            raised[name] = f"{name} raised {exc!r}"
    if raised:
        others = [name for name in exchanges if name not in raised]
        note = f" ({', '.join(others)} did not)" if others else ""
        raise WorkloadError("; ".join(raised.values()) + note)
    check(workload, answers)
    counts = {}
    warm_up = settings.round_seconds / 2
    for name, exchange in exchanges.items():
        await seconds_per_request(exchange, warm_up)
        per_request = await seconds_per_request(exchange, warm_up)
        counts[name] = max(MIN_REQUESTS, round(settings.round_seconds / per_request))
    measured = Measured(workload.name, workload, {name: [] for name in exchanges})
    for _ in range(settings.rounds):
        for name, exchange in exchanges.items():  # alternate, so that noise hits all alike
            measured.rates[name].append(await requests_per_second(exchange, counts[name]))
    return measured


async def measure_all(selected: Sequence[Workload], settings: Settings) -> list[Measured]:
    apps: dict[tuple[str, str], Any] = {}
    results = []
    for workload in selected:
        try:
            for fw in FRAMEWORKS:
                if (workload.app_key, fw.name) not in apps:
                    start = time.perf_counter()
                    apps[workload.app_key, fw.name] = workload.build(fw)
                    elapsed = time.perf_counter() - start
                    if elapsed > 0.1:
                        progress(f"  built {fw.name}'s {workload.app_key} app in {elapsed:.2f} s")
            with_falcon = workload.falcon is not None and falcon is not None
            if with_falcon and (workload.app_key, FALCON) not in apps:
                apps[workload.app_key, FALCON] = workload.falcon()
            names = [fw.name for fw in FRAMEWORKS]
            if with_falcon:
                names.append(FALCON)
            chosen = {name: apps[workload.app_key, name] for name in names}
            result = await measure(workload, chosen, settings)
            falcon_note = ""
            if FALCON in result.rates:
                falcon_note = (
                    f"  falcon {result.median(FALCON):>9,.0f}/s"
                    f"  ratio {statistics.median(result.ratios_of(FALCON)):.2f}"
                )
            progress(
                f"{workload.name:<36} starlite {result.median('starlite'):>9,.0f}/s"
                f"  starlette {result.median('starlette'):>9,.0f}/s"
                f"  ratio {statistics.median(result.ratios):.2f}{falcon_note}"
            )
        except Exception as exc:
            message = str(exc) if isinstance(exc, WorkloadError) else traceback.format_exc()
            result = Measured(workload.name, workload, error=message)
            progress(f"{workload.name:<36} FAILED: {message}")
        results.append(result)
    return results


async def driver_cost(seconds: float) -> float:
    """Seconds per request of the driver with the least app."""
    exchange = http_exchange(null_app, http_scope("GET", "/"), ())
    await seconds_per_request(exchange, seconds)
    return await seconds_per_request(exchange, seconds)


# ---- Import time and peak memory, in fresh interpreters ----


def import_seconds(modules: Sequence[str], pycache: str) -> float:
    """The time to import `modules` in a fresh interpreter, bytecode cached under `pycache`."""
    code = (
        f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); start = time.perf_counter(); "
        f"import {', '.join(modules)}; print(time.perf_counter() - start)"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {modules} failed:\n{completed.stderr}")
    return float(completed.stdout)


def import_times(rounds: int) -> dict[str, list[float]]:
    modules = {"starlite": STARLITE_MODULES, "starlette": STARLETTE_MODULES}
    times: dict[str, list[float]] = {name: [] for name in modules}
    with tempfile.TemporaryDirectory(prefix="compare-pycache-") as pycache:
        for names in modules.values():
            import_seconds(names, pycache)  # writes the bytecode, warms the disk cache
        for _ in range(rounds):
            for name, names in modules.items():
                times[name].append(import_seconds(names, pycache))
    return times


def upload_peaks(rounds: int) -> dict[str, list[float]]:
    """tracemalloc's peak growth while parsing a 50 MiB upload (benchmarks/upload_memory.py)."""
    peaks: dict[str, list[float]] = {name: [] for name in upload_memory.FRAMEWORKS}
    for _ in range(rounds):
        for name in upload_memory.FRAMEWORKS:
            peaks[name].append(upload_memory.measure_in_fresh_interpreter(name)["peak_growth"])
    return peaks


# ---- Report ----

IMPORT_ROW = "import (lower is better)"
MEMORY_ROW = "upload 50 MiB: peak memory (lower is better)"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=True)]


@dataclass
class Target:
    """One of the comparison's targets: `ok` must hold for each of `values` (what was measured
    -> its figure)."""

    text: str
    values: dict[str, float]
    ok: Callable[[float], bool]
    higher_is_better: bool = True

    @property
    def met(self) -> bool | None:
        return all(map(self.ok, self.values.values())) if self.values else None

    def line(self) -> str:
        if not self.values:
            return f"{self.text}: not measured"
        failing = {name: value for name, value in self.values.items() if not self.ok(value)}
        if failing:
            shown = ", ".join(
                f"{name} {'failed' if math.isnan(value) else f'{value:.2f}'}"
                for name, value in failing.items()
            )
            return f"{self.text}: NOT met ({shown})"
        pick = max if not self.higher_is_better else min
        worst = pick(self.values, key=self.values.__getitem__)
        label = f"{worst} " if len(self.values) > 1 else ""
        return f"{self.text}: met (worst: {label}{self.values[worst]:.2f})"


# One line of the table: workload, starlite, Starlette, Falcon, starlite / Starlette, Falcon /
# Starlette.
Row = tuple[str, str, str, str, str, str]
NOT_RUN = "-"  # Falcon's cells where it has no equivalent


def table_rows(
    measured: Sequence[Measured],
    imports: Mapping[str, list[float]] | None,
    peaks: Mapping[str, list[float]] | None,
) -> list[Row]:
    rows: list[Row] = []
    for result in measured:
        if result.error is not None:
            first_line = result.error.splitlines()[0]
            rows.append((result.name, "FAILED", "FAILED", "FAILED", first_line, NOT_RUN))
            continue
        falcon_rate, falcon_ratio = NOT_RUN, NOT_RUN
        if FALCON in result.rates:
            falcon_rate = f"{result.median(FALCON):,.0f}/s"
            falcon_ratio = spread(result.ratios_of(FALCON))
        rows.append(
            (
                result.name,
                f"{result.median('starlite'):,.0f}/s",
                f"{result.median('starlette'):,.0f}/s",
                falcon_rate,
                spread(result.ratios),
                falcon_ratio,
            )
        )
    if imports is not None:
        rows.append(
            (
                IMPORT_ROW,
                f"{statistics.median(imports['starlite']) * 1000:.1f} ms",
                f"{statistics.median(imports['starlette']) * 1000:.1f} ms",
                NOT_RUN,
                spread(ratios(imports["starlite"], imports["starlette"])),
                NOT_RUN,
            )
        )
    if peaks is not None:
        rows.append(
            (
                MEMORY_ROW,
                f"{statistics.median(peaks['starlite']) / MiB:.2f} MiB",
                f"{statistics.median(peaks['starlette']) / MiB:.2f} MiB",
                NOT_RUN,
                spread(ratios(peaks["starlite"], peaks["starlette"])),
                NOT_RUN,
            )
        )
    return rows


def goal_groups(
    measured: Sequence[Measured], ratio: Mapping[str, float]
) -> dict[float, dict[str, float]]:
    """The measured ratios, grouped by their workload's target."""
    groups: dict[float, dict[str, float]] = {}
    for r in measured:
        if r.workload is not None and r.name in ratio:
            groups.setdefault(r.workload.min_ratio, {})[r.name] = ratio[r.name]
    return groups


def targets(
    measured: Sequence[Measured],
    imports: Mapping[str, list[float]] | None,
    peaks: Mapping[str, list[float]] | None,
) -> list[Target]:
    ratio = {r.name: statistics.median(r.ratios) for r in measured if r.error is None}
    failed = {r.name: math.nan for r in measured if r.error is not None}  # NaN meets nothing
    tables: dict[int, dict[str, Measured]] = {120: {}, 4000: {}}
    for r in measured:
        if r.error is None and r.workload and r.workload.table:
            routes, hit = r.workload.table
            tables[routes][hit] = r
    starlite_cost = {
        hit: small.median("starlite") / tables[4000][hit].median("starlite")
        for hit, small in tables[120].items()
        if hit in tables[4000]
    }
    goals = [
        Target("every workload: starlite / Starlette >= 1.0", ratio | failed, lambda r: r >= 1.0),
        *(
            Target(f"starlite / Starlette >= {goal:g}", values, lambda r, goal=goal: r >= goal)
            for goal, values in sorted(goal_groups(measured, ratio | failed).items())
            if goal > 1.0
        ),
        Target(
            "starlite's 4,000-route cost within 1.1x of its 120-route cost"
            " (its req/s on a hit in the 120-route table / in the 4,000-route table)",
            starlite_cost,
            lambda r: r <= 1.1,
            higher_is_better=False,
        ),
        Target(
            "import time <= 0.6x Starlette's",
            {}
            if imports is None
            else {"import": statistics.median(ratios(imports["starlite"], imports["starlette"]))},
            lambda r: r <= 0.6,
            higher_is_better=False,
        ),
    ]
    if peaks is not None:
        beyond = (max(peaks["starlite"]) - starlite.MultiPartParser.spool_max_size) / MiB
        goals.append(
            Target(
                "(benchmarks/upload_memory.py's aim) starlite's 50 MiB upload peaks under 2 MiB"
                " beyond its spool threshold",
                {"MiB beyond, in the worst round": beyond},
                lambda r: r < 2.0,
                higher_is_better=False,
            )
        )
    return goals


def print_report(rows: Sequence[Row], goals: Sequence[Target], markdown: bool) -> None:
    head: Row = (
        "workload",
        "starlite",
        "Starlette",
        "Falcon",
        "starlite / Starlette, median (min-max)",
        "Falcon / Starlette, median (min-max)",
    )
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|---|--:|--:|--:|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(5)]
        for name, *rates, ratio, falcon_ratio in [head, *rows]:
            cells = [f"{name:<{widths[0]}}"]
            cells += [f"{rate:>{width}}" for rate, width in zip(rates, widths[1:4], strict=True)]
            cells += [f"{ratio:<{widths[4]}}", falcon_ratio]
            print("  ".join(cells))
    print()
    print("Targets:")
    for goal in goals:
        print(("- " if markdown else "  ") + goal.line())


# ---- Command line ----


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rounds", type=int, help=f"rounds (default {ROUNDS}; {QUICK_ROUNDS} with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer, shorter rounds")
    parser.add_argument("--only", metavar="NAME", help="the workloads whose name contains NAME")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def write_file(path: Path, size: int) -> None:
    with path.open("wb") as file:
        for _ in range(size // len(CHUNK)):
            file.write(CHUNK)


async def run(args: argparse.Namespace) -> int:
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    settings = Settings(rounds, QUICK_ROUND_SECONDS if args.quick else ROUND_SECONDS)
    wanted = (args.only or "").lower()
    started = time.perf_counter()
    cost = await driver_cost(settings.round_seconds)
    progress(f"the driver with a minimal ASGI app: {cost * 1e6:.1f} us per request")
    if falcon is None:
        progress("Falcon is not installed (the bench extra installs it): no Falcon column")
    with tempfile.TemporaryDirectory(prefix="compare-") as directory:
        file_path = Path(directory) / "file.bin"
        await anyio.to_thread.run_sync(write_file, file_path, MiB)
        selected = [w for w in workloads(str(file_path)) if wanted in w.name.lower()]
        measured = await measure_all(selected, settings)
    imports = None
    if wanted in IMPORT_ROW.lower():
        progress("import time, in fresh interpreters...")
        imports = await anyio.to_thread.run_sync(import_times, rounds * IMPORT_ROUNDS_PER_ROUND)
    peaks = None
    if wanted in MEMORY_ROW.lower():
        progress("peak memory of a 50 MiB upload, in fresh interpreters...")
        peaks = await anyio.to_thread.run_sync(upload_peaks, 1 if args.quick else rounds)
    if not (measured or imports or peaks):
        progress(f"no workload's name contains {args.only!r}")
        return 2
    falcon_version = "" if falcon is None else f" (and Falcon {falcon.__version__})"
    print(
        f"starlite {starlite.__version__} against Starlette {starlette.__version__}"
        f"{falcon_version}, Python {sys.version.split()[0]}: in-process ASGI calls on one asyncio"
        f" loop, {rounds} rounds of about {settings.round_seconds:.2f} s for each framework,"
        f" alternating. The driver"
        f" with a minimal ASGI app costs {cost * 1e6:.1f} us per request."
    )
    print()
    print_report(
        table_rows(measured, imports, peaks), targets(measured, imports, peaks), args.markdown
    )
    progress(f"done in {time.perf_counter() - started:.0f} s")
    return 1 if any(result.error is not None for result in measured) else 0


def main() -> None:
    sys.exit(anyio.run(run, parse_arguments(), backend="asyncio"))


if __name__ == "__main__":
    main()
