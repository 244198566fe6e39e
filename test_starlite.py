"""Tests of starlite.py, in the order of its sections."""

from __future__ import annotations

import ast
import asyncio
import base64
import codecs
import concurrent.futures
import contextlib
import contextvars
import copy
import email.utils
import errno
import functools
import gc
import gzip
import html
import importlib.metadata
import importlib.util
import inspect
import io
import itertools
import json
import linecache
import logging
import math
import mimetypes
import os
import pickle
import re
import shlex
import socket
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import threading
import time
import tomllib
import tracemalloc
import uuid
import venv
import warnings
import zipfile
import zlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import IO, TYPE_CHECKING, Any, Literal, cast
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urljoin, urlsplit

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import httpx
import jinja2
import pytest
from blockbuster import BlockBuster, BlockingError, blockbuster_ctx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import starlite
from starlite import (
    CONVERTOR_TYPES,
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    MAX_BODY_SIZE_SCOPE_KEY,
    URL,
    Address,
    AsyncTestClient,
    AsyncWebSocketTestSession,
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    AuthenticationMiddleware,
    BackgroundTask,
    BackgroundTasks,
    BaseHTTPMiddleware,
    BaseRoute,
    BaseUser,
    ClientDisconnect,
    CommaSeparatedStrings,
    Config,
    Convertor,
    CORSMiddleware,
    CSRFMiddleware,
    DispatchFunction,
    Environ,
    EnvironError,
    EventSourceResponse,
    ExceptionMiddleware,
    FileResponse,
    FloatConvertor,
    FormData,
    FormMessage,
    FormParser,
    GZipMiddleware,
    GZipResponder,
    Headers,
    Host,
    HTMLResponse,
    HTTPConnection,
    HTTPEndpoint,
    HTTPException,
    HTTPSRedirectMiddleware,
    ImmutableMultiDict,
    IntegerConvertor,
    Jinja2Templates,
    JSONResponse,
    Match,
    Message,
    Middleware,
    Mount,
    MultiDict,
    MultiPartException,
    MultiPartParser,
    MutableHeaders,
    NoMatchFound,
    NotModifiedResponse,
    PathConvertor,
    PlainTextResponse,
    QueryParams,
    Receive,
    RedirectResponse,
    Request,
    RequestBodyLimitMiddleware,
    RequestResponseEndpoint,
    Response,
    Route,
    Router,
    Scope,
    Secret,
    Send,
    ServerErrorMiddleware,
    ServerSentEvent,
    Session,
    SessionMiddleware,
    SimpleUser,
    StarletteDeprecationWarning,
    Starlite,
    State,
    StaticFiles,
    StreamingResponse,
    StringConvertor,
    TestClient,
    TrustedHostMiddleware,
    UnauthenticatedUser,
    UploadFile,
    URLPath,
    UUIDConvertor,
    WebSocket,
    WebSocketClose,
    WebSocketDenialResponse,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketEndpoint,
    WebSocketException,
    WebSocketRoute,
    WebSocketState,
    WebSocketTestSession,
    compile_path,
    cookie_parser,
    get_name,
    has_required_scope,
    iterate_in_threadpool,
    register_url_convertor,
    replace_params,
    request_response,
    requires,
    run_in_threadpool,
    run_until_first_complete,
    status,
    websocket_session,
)

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

PROJECT_ROOT = Path(__file__).resolve().parent

Backend = Literal["asyncio", "trio"]
ASGIApp = Callable[[Scope, Receive, Send], Any]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on both of anyio's backends."""
    return str(request.param)


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The event loop a TestClient runs the app on."""
    return cast(Backend, request.param)


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test that makes a blocking call on an event loop."""
    with blockbuster_ctx() as detector:
        yield detector


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter that imports this repository's starlite.py."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )


def run_mypy_strict(source: Path, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    """`mypy --strict` on `source`, where ``import starlite`` finds the starlite.py under test;
    errors inside starlite.py itself are left to the check of starlite.py."""
    starlite_dir = Path(starlite.__file__).resolve().parent
    command = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent"]
    command += ["--cache-dir", str(cache_dir), str(source)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=starlite_dir,
        env={**os.environ, "MYPYPATH": str(starlite_dir)},
        timeout=120,
        check=False,
    )


def install_set(requirements: Iterable[str]) -> set[str]:
    """The distributions `pip install` of `requirements` ("." for this project) installs, of those
    in the test's environment: each with its dependencies, their markers and extras evaluated."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(re.sub(r"^\.", "starlite-asgi", text)) for text in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in seen:
            continue
        seen.add((name, frozenset(requirement.extras)))
        if name == "starlite-asgi":
            optional = project["optional-dependencies"]
            dependencies = [*project["dependencies"]]
            dependencies += [text for extra in requirement.extras for text in optional[extra]]
        else:
            try:
                dependencies = importlib.metadata.requires(name) or []
            except importlib.metadata.PackageNotFoundError:
                # Not installed here (uvicorn[standard]'s speed-ups: uvloop, httptools, ...):
                # left out, as the server runs without them.
                continue
            names.add(name)
        for dependency in map(Requirement, dependencies):
            extras = requirement.extras or {""}
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(dependency)
    return names


def venv_with(requirements: Iterable[str], path: Path) -> Path:
    """A virtual environment at `path` holding only what `pip install` of `requirements` would
    install, linked from the test's environment (nothing is downloaded); returns its python."""
    venv.create(path, symlinks=True)
    site_packages = venv_path(path, "purelib")
    for name in install_set(requirements):
        distribution = importlib.metadata.distribution(name)
        tops = {file.parts[0] for file in distribution.files or ()} - {"..", "__pycache__"}
        for top in tops - {entry.name for entry in site_packages.iterdir()}:
            (site_packages / top).symlink_to(Path(str(distribution.locate_file(top))))
    return venv_path(path, "scripts") / "python"


def venv_path(venv_dir: Path, name: str) -> Path:
    """The directory `name` ("purelib", "scripts") of the virtual environment at `venv_dir`."""
    paths = sysconfig.get_paths(
        scheme="venv", vars={"base": str(venv_dir), "platbase": str(venv_dir)}
    )
    return Path(paths[name])


def make_scope(
    path: str = "/",
    *,
    method: str = "GET",
    query_string: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] | Mapping[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
    **extra: Any,
) -> Scope:
    """A complete HTTP scope as a server would give it; `extra` overrides or adds any key.

    `headers` is raw byte pairs (kept as given, list or tuple) or a str mapping (encoded and
    lower-cased); by default the only header is `host: example.org`. The scope has an
    "extensions" key only when `extensions` is given, and no "state" unless `extra` adds one.
    """
    if headers is None:
        raw_headers: Any = [(b"host", b"example.org")]
    elif isinstance(headers, Mapping):
        raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]
    else:
        raw_headers = headers
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": raw_headers,
        "client": ("127.0.0.1", 12345),
        "server": ("example.org", 80),
    }
    if extensions is not None:
        scope["extensions"] = extensions
    scope.update(extra)
    return scope


# The server's side of ASGI, shared by every section that calls an app directly: the scopes and
# messages a server gives an app, and Server, which plays the server for one call of an app.

DENIAL_EXTENSION: dict[str, dict[str, Any]] = {"websocket.http.response": {}}


def ws_scope(path: str = "/", *, deny: bool = True, subprotocols: Sequence[str] = ()) -> Scope:
    """A websocket scope as a server gives it; `deny` offers the websocket.http.response
    extension."""
    scope = make_scope(
        path,
        type="websocket",
        scheme="ws",
        subprotocols=list(subprotocols),
        extensions=dict(DENIAL_EXTENSION) if deny else {},
    )
    del scope["method"]
    return scope


def http_request(body: bytes = b"", *, more_body: bool = False) -> Message:
    return {"type": "http.request", "body": body, "more_body": more_body}


def connect() -> Message:
    return {"type": "websocket.connect"}


def text_frame(text: str) -> Message:
    return {"type": "websocket.receive", "text": text}


def bytes_frame(data: bytes) -> Message:
    return {"type": "websocket.receive", "bytes": data}


def disconnect(code: int = 1000, reason: str = "") -> Message:
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


def close_message(code: int = 1000, reason: object = "") -> Message:
    return {"type": "websocket.close", "code": code, "reason": reason}


class Server:
    """The server's side of one call of an ASGI app (HTTP, websocket or lifespan), played by
    the test; `run` calls the app with a bounded wait, and the read-outs describe what it sent.

    `receive` hands the app the `incoming` messages in order (or is the test's own `receive`
    channel, such as StreamedBody). After the last message the client does what `then` says:
    "fail" (the test gave too few: asking for more fails it), "wait" (a client that says nothing
    more: receive waits for ever) or "disconnect" (receive waits until the client has gone, then
    says so: it goes once the response is complete, or after `disconnect_after` non-empty body
    chunks). `send` records each message, noted in `log` if given; once the client has gone it
    raises OSError if the scope promises ASGI 2.4, as the spec has a server do. An exception of a
    type in `raises` that the app raises is kept in `raised`; an HTTPException raised before
    anything was sent is read as the response it stands for (StaticFiles outside an app).
    """

    def __init__(
        self,
        *incoming: Message,
        then: Literal["fail", "wait", "disconnect"] = "fail",
        disconnect_after: int | None = None,
        receive: Receive | None = None,
        log: list[str] | None = None,
        raises: type[Exception] | tuple[type[Exception], ...] = (),
    ) -> None:
        self.incoming = list(incoming)
        self.then = then
        self.disconnect_after = disconnect_after
        self.channel = receive
        self.log = log
        self.raises = raises
        self.scope: Scope = {}
        self.sent: list[Message] = []
        self.raised: Exception | None = None
        self.gone = anyio.Event()
        self.chunks_sent = 0

    async def receive(self) -> Message:
        if self.channel is not None:
            return await self.channel()
        if self.incoming:
            return self.incoming.pop(0)
        if self.then == "fail":
            raise AssertionError("the app asked for more messages than the test gave")
        if self.then == "wait":
            await anyio.sleep_forever()
        await self.gone.wait()
        if self.scope["type"] == "websocket":
            return disconnect()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone.is_set() and self.scope.get("asgi", {}).get("spec_version") == "2.4":
            raise OSError("the client has gone")
        if self.log is not None:
            self.log.append("server gets " + message["type"])
        self.sent.append(message)
        kind = message["type"]
        if kind == "http.response.body" and message.get("body"):
            self.chunks_sent += 1
        if self.then != "disconnect":
            return
        if self.disconnect_after is not None:
            if self.chunks_sent == self.disconnect_after:
                self.gone.set()
        elif kind == "http.response.pathsend" or (
            kind == "http.response.body" and not message.get("more_body", False)
        ):
            self.gone.set()

    def websocket(self, scope: Scope | None = None) -> WebSocket:
        """A WebSocket on this server's channels, for a test to drive directly."""
        self.scope = ws_scope() if scope is None else scope
        return WebSocket(self.scope, self.receive, self.send)

    async def run(self, app: ASGIApp, scope: Scope) -> Server:
        """Call `app` with `scope` as a server would, with a bounded wait; this server."""
        self.scope = scope
        with anyio.fail_after(30):
            try:
                await app(scope, self.receive, self.send)
            except self.raises as exc:
                if isinstance(exc, HTTPException):  # it stands for a response only if none began
                    assert self.sent == [], "the app raised an HTTPException after it had sent"
                self.raised = exc
        return self

    @property
    def sent_types(self) -> list[str]:
        return [message["type"] for message in self.sent]

    def _response_messages(self, kind: str) -> list[Message]:
        """The messages of the response of type `kind` (a websocket's denial response too)."""
        return [m for m in self.sent if m["type"].removeprefix("websocket.") == kind]

    @property
    def start(self) -> Message:
        """The response's start message: there must be exactly one."""
        starts = self._response_messages("http.response.start")
        assert len(starts) == 1, self.sent_types
        return starts[0]

    @property
    def status(self) -> int:
        if isinstance(self.raised, HTTPException):
            return self.raised.status_code
        return int(self.start["status"])

    @property
    def headers(self) -> Headers:
        if isinstance(self.raised, HTTPException):
            return Headers(self.raised.headers)
        return Headers(raw=list(self.start.get("headers", [])))

    @property
    def body(self) -> bytes:
        """The response's body chunks, joined."""
        if isinstance(self.raised, HTTPException):
            return self.raised.detail.encode()
        return b"".join(
            bytes(m.get("body", b"")) for m in self._response_messages("http.response.body")
        )


# Bodies, receive channels and apps shared by the form and body-limit tests: Requests (Forms),
# Middleware (Body limits) and Forms.

URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY = "boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
SPOOL_MAX_SIZE = MultiPartParser.spool_max_size


def _encoded(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


def part(
    name: str | bytes,
    value: bytes = b"",
    *,
    filename: str | bytes | None = None,
    content_type: str | None = None,
    headers: Sequence[bytes] = (),
) -> bytes:
    """One part of a multipart body: its header lines, a blank line, and its content. Names go
    between quotes exactly as given (a str as UTF-8), as browsers send them."""
    disposition = b'Content-Disposition: form-data; name="' + _encoded(name) + b'"'
    if filename is not None:
        disposition += b'; filename="' + _encoded(filename) + b'"'
    lines = [disposition, *headers]
    if content_type is not None:
        lines.append(b"Content-Type: " + content_type.encode())
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n" + value


def multipart(*parts: bytes, boundary: str = BOUNDARY, final: bool = True) -> bytes:
    """A multipart body of `parts`; without `final`, the closing delimiter never comes."""
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + b"\r\n" + each + b"\r\n" for each in parts)
    return body + delimiter + b"--\r\n" if final else body


def chunked(data: bytes, size: int) -> list[bytes]:
    """`data` in pieces of `size` bytes."""
    return [data[start : start + size] for start in range(0, len(data), size)]


class StreamedBody:
    """An ASGI `receive` giving the request body as `chunks` (any iterable, even an endless one),
    one per call, then ``http.disconnect``. The last chunk has ``more_body=False`` unless
    `empty_final_chunk`, when an empty message ends the body. Counts calls and bytes given."""

    def __init__(self, chunks: Iterable[bytes], *, empty_final_chunk: bool = False) -> None:
        self._chunks = iter(chunks)
        self._next = next(self._chunks, None)
        self._ended = False
        self.empty_final_chunk = empty_final_chunk
        self.calls = 0
        self.bytes_given = 0

    async def __call__(self) -> Message:
        self.calls += 1
        if self._ended:
            return {"type": "http.disconnect"}
        if self._next is None:
            self._ended = True
            return {"type": "http.request", "body": b"", "more_body": False}
        chunk = self._next
        self._next = next(self._chunks, None)
        self._ended = self._next is None and not self.empty_final_chunk
        self.bytes_given += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": not self._ended}


def form_scope(
    content_type: str | None = MULTIPART,
    *,
    content_length: int | bytes | None = None,
    path: str = "/",
) -> Scope:
    """A POST scope with the given Content-Type and Content-Length headers."""
    headers = [(b"host", b"example.org")]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode("latin-1")))
    if content_length is not None:
        length = content_length if isinstance(content_length, bytes) else b"%d" % content_length
        headers.append((b"content-length", length))
    return make_scope(path, method="POST", headers=headers)


def form_request(body: bytes | Iterable[bytes], content_type: str | None = MULTIPART) -> Request:
    """A Request outside any app whose body is `body` (bytes: one message; else its chunks)."""
    return Request(
        form_scope(content_type), StreamedBody([body] if isinstance(body, bytes) else body)
    )


async def describe_form(form: FormData) -> list[list[Any]]:
    """The form's items as JSON-able lists; a file as a dict, its data as latin-1 text."""
    described: list[list[Any]] = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            described.append([name, value])
            continue
        data = await value.read()
        file = {
            "filename": value.filename,
            "content_type": value.content_type,
            "size": value.size,
            "data": data.decode("latin-1"),
        }
        described.append([name, file])
    return described


def form_app(**limits: Any) -> Starlite:
    """An app whose ``POST /`` answers with the described form, parsed with `limits`."""

    async def echo(request: Request) -> Response:
        async with request.form(**limits) as form:
            return JSONResponse(await describe_form(form))

    return Starlite(routes=[Route("/", echo, methods=["POST"])])


def on_disk(file: IO[bytes]) -> bool:
    """Whether a SpooledTemporaryFile's data has rolled over to disk (a private attribute that
    starlite reads too: the standard library has no public one)."""
    return bool(cast(Any, file)._rolled)


# An endpoint describing its websocket connection, for the sections from WebSockets on.


async def describe(websocket: WebSocket) -> None:
    """Accept and send back what the websocket knows of its connection, as JSON."""
    await websocket.accept()
    await websocket.send_json(
        {
            "url": str(websocket.url),
            "base_url": str(websocket.base_url),
            "path_params": websocket.path_params,
            "query": list(websocket.query_params.multi_items()),
            "token": websocket.headers.get("x-token"),
            "cookies": websocket.cookies,
            "root_path": websocket.scope.get("root_path", ""),
            "subprotocols": websocket.scope["subprotocols"],
            "client": list(websocket.client or ()),
        }
    )
    await websocket.close()


def described(client: TestClient, url: str, **kwargs: Any) -> dict[str, Any]:
    with client.websocket_connect(url, **kwargs) as websocket:
        return cast(dict[str, Any], websocket.receive_json())


# Endpoints, exception handlers and middleware shared by the sections from Routing on.


class Boom(Exception):
    """An exception that no handler expects unless a test registers one."""


def raise_boom(request: Request) -> Response:
    raise Boom("kaboom-detail")


def text_endpoint(body: str) -> Callable[[Request], Response]:
    """A sync endpoint answering `body` as text."""

    def endpoint(request: Request) -> Response:
        return PlainTextResponse(body)

    return endpoint


def raising_endpoint(exc: BaseException) -> Callable[[Request], Awaitable[Response]]:
    """An async endpoint that raises `exc`."""

    async def endpoint(request: Request) -> Response:
        raise exc

    return endpoint


class Items(HTTPEndpoint):
    """GET is async, POST is sync: the two ways an endpoint method may be written."""

    async def get(self, request: Request) -> Response:
        return PlainTextResponse("get items")

    def post(self, request: Request) -> Response:
        return PlainTextResponse("post items")


def error_app(debug: bool = False, **kwargs: Any) -> Starlite:
    """An app whose "/" raises Boom("kaboom-detail"); `kwargs` go to Starlite."""
    return Starlite(debug=debug, routes=[Route("/", raise_boom)], **kwargs)


def allow_set(response: Any) -> set[str]:
    """The methods of an `Allow` header as a set: the header's order is not part of the contract."""
    return {method.strip() for method in response.headers["allow"].split(",")}


class AddHeader:
    """Pure ASGI middleware adding an ``x-middleware: <value>`` header to each response."""

    def __init__(self, app: ASGIApp, value: str = "on") -> None:
        self.app = app
        self.value = value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-middleware", self.value.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)


class LoopThread:
    """Pure ASGI middleware putting the event loop's thread id in ``scope["loop_thread"]``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["loop_thread"] = threading.get_ident()
        await self.app(scope, receive, send)


def in_worker_thread(request: Request) -> bool:
    """Whether the calling code runs off the event loop (needs LoopThread in the stack)."""
    loop_thread: int = request.scope["loop_thread"]
    return threading.get_ident() != loop_thread


def text_handler(body: str, status_code: int = 200) -> Callable[[Request, Exception], Response]:
    """A sync exception handler answering `body` with `status_code`."""

    def handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(body, status_code=status_code)

    return handler


def async_text_handler(body: str, status_code: int = 200) -> Callable[[Request, Exception], Any]:
    """An async exception handler answering `body` with `status_code`."""

    async def handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(body, status_code=status_code)

    return handler


# Websocket middleware and test-client helpers shared by the sections from Routing on.


class AcceptHeader:
    """Pure ASGI middleware adding an ``x-mw`` header to a websocket's accept message and
    recording its label in ``scope["seen_by"]``."""

    def __init__(self, app: ASGIApp, label: str) -> None:
        self.app = app
        self.label = label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("seen_by", []).append(self.label)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "websocket.accept":
                headers = [*message.get("headers", []), (b"x-mw", self.label.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)


def refusal_at(client: TestClient, url: str) -> WebSocketDisconnect:
    """The WebSocketDisconnect that opening a websocket to `url` raises."""
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(url):
        pass  # pragma: no cover - entering raises
    return info.value


def closes_then_raises(
    client: TestClient,
    url: str,
    raise_server_exceptions: bool,
    error: type[Exception],
    *frames: str,
) -> int:
    """Send `frames` over a websocket to `url`: the code it is closed with. With
    `raise_server_exceptions` the app's `error` must come out of the ``with`` block."""
    codes: list[int] = []
    with contextlib.ExitStack() as stack:
        if raise_server_exceptions:
            stack.enter_context(pytest.raises(error))
        websocket = stack.enter_context(client.websocket_connect(url))
        for frame in frames:
            websocket.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
        codes.append(info.value.code)
    return codes[0]


# ==== Types and helpers ====


def test_every_name_in_all_is_importable() -> None:
    missing = [name for name in starlite.__all__ if not hasattr(starlite, name)]
    assert missing == []


def test_all_has_no_duplicates() -> None:
    assert len(starlite.__all__) == len(set(starlite.__all__))


def test_version_is_a_dotted_string() -> None:
    assert all(part.isdigit() for part in starlite.__version__.split("."))


def test_import_starlite_does_not_import_optional_extras() -> None:
    result = run_python(
        "import sys, starlite\n"
        "print(sorted(m for m in ('httpx', 'httpx2', 'multipart', 'python_multipart', 'jinja2')"
        " if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("feature", "module"),
    [
        ("the test client", "anyio.from_thread"),
        ("the test client", "concurrent.futures"),
        ("uploads", "tempfile"),
        ("dates of files and cookies", "email.utils"),
        ("sessions", "hmac"),
        ("nothing any more", "secrets"),
    ],
)
def test_import_starlite_leaves_the_standard_library_modules_of_one_feature_for_later(
    feature: str, module: str
) -> None:
    result = run_python(f"import sys, starlite\nprint({module!r} in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", f"import starlite imported {module}, for {feature}"


def test_unknown_module_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = starlite.NoSuchName


TESTCLIENT_MISSING = (
    "This feature needs httpx: pip install 'starlite-asgi[testclient]', or, for a copied"
    " starlite.py, pip install httpx"
)


def test_httpx_classes_import_without_httpx_and_name_what_to_install_when_made() -> None:
    # A None entry in sys.modules makes an import fail as if the module were not installed:
    # without any extra, every name in __all__ imports, and the test clients fail when made.
    result = run_python(
        textwrap.dedent(
            """
            import sys
            for extra in ('httpx', 'httpx2', 'multipart', 'python_multipart', 'jinja2'):
                sys.modules[extra] = None
            import starlite
            print(all(hasattr(starlite, name) for name in starlite.__all__))
            from starlite import *
            from starlite import TestClient as Imported
            print(Imported is TestClient)

            class MyClient(TestClient):
                pass

            try:
                raise WebSocketDisconnect()
            except WebSocketDenialResponse:
                print("a disconnect was taken for a denial")
            except WebSocketDisconnect:
                pass
            for cls in (TestClient, AsyncTestClient, WebSocketDenialResponse, MyClient):
                try:
                    cls(PlainTextResponse("never"))
                except ImportError as exc:
                    print(cls.__name__, exc)
            """
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True",
        "True",
        f"TestClient {TESTCLIENT_MISSING}",
        f"AsyncTestClient {TESTCLIENT_MISSING}",
        f"WebSocketDenialResponse {TESTCLIENT_MISSING}",
        f"MyClient {TESTCLIENT_MISSING}",
    ]


def test_test_client_falls_back_to_httpx2_when_httpx_is_missing() -> None:
    pytest.importorskip("httpx2", reason="httpx2 is in the dev extra")
    result = run_python(
        "import sys\n"
        "sys.modules['httpx'] = None\n"
        "from starlite import PlainTextResponse, TestClient\n"
        "response = TestClient(PlainTextResponse('via httpx2')).get('/')\n"
        "print(type(response).__module__.split('.')[0], response.text)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["httpx2", "via", "httpx2"]


def test_cached_property_computes_once_per_instance_as_functools_does() -> None:
    made: list[object] = []

    class Thing:
        @starlite._CachedProperty
        def value(self) -> list[int]:
            """The value."""
            made.append(self)
            return [len(made)]

    first, second = Thing(), Thing()
    assert first.value is first.value
    assert (first.value, second.value) == ([1], [2])
    assert made == [first, second]
    assert Thing.value.__doc__ == "The value."
    first.value = [9]  # set, and deleted to be computed again, as with functools.cached_property
    assert first.value == [9]
    del first.value
    assert first.value == [3]
    request = Request({"type": "http", "query_string": b"a=1", "headers": []})
    assert request.query_params is request.query_params
    assert vars(request)["query_params"] is request.query_params
    assert request.query_params["a"] == "1"


def test_import_extra_reraises_a_missing_dependency_of_an_installed_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed extra that is itself broken must not be reported as "not installed".
    (tmp_path / "broken_extra.py").write_text("import no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_module_anywhere"):
        starlite._import_extra("testclient", "broken-extra", "broken_extra")


VENDORING_USER = """
from starlite import Jinja2Templates, PlainTextResponse, TestClient

templates = Jinja2Templates(directory="templates")


def test_page() -> None:
    with TestClient(PlainTextResponse("hi")) as client:
        assert client.get("/").text == "hi"


wrong = PlainTextResponse("hi", status_code="200")
"""


def test_a_copied_starlite_py_passes_mypy_strict_in_a_project_without_httpx_or_jinja2(
    tmp_path: Path,
) -> None:
    python = venv_with(["anyio"], tmp_path / "venv")
    project = tmp_path / "project"
    project.mkdir()
    (project / "starlite.py").write_bytes((PROJECT_ROOT / "starlite.py").read_bytes())
    (project / "user.py").write_text(VENDORING_USER)
    command = [sys.executable, "-m", "mypy", "--strict", "--python-executable", str(python)]
    command += ["--cache-dir", str(tmp_path / "cache"), "starlite.py", "user.py"]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=project, timeout=120, check=False
    )
    # starlite.py checks cleanly, and its types still check the user's code.
    assert result.stdout.splitlines()[:-1] == [
        'user.py:12: error: Argument "status_code" to "PlainTextResponse" has incompatible type'
        ' "str"; expected "int"  [arg-type]'
    ], result.stdout
    # The project's environment has anyio and none of the extras.
    probe = "import anyio, importlib.util as u\n"
    probe += "print([name for name in ('httpx', 'httpx2', 'jinja2') if u.find_spec(name)])"
    found = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert (found.returncode, found.stdout) == (0, "[]\n"), found.stderr


def test_an_editable_install_imports_the_working_starlite_py_and_a_wheel_a_typed_package(
    tmp_path: Path,
) -> None:
    from hatchling.builders.wheel import WheelBuilder

    builder = WheelBuilder(str(PROJECT_ROOT))
    (editable,) = builder.build(directory=str(tmp_path / "editable"), versions=["editable"])
    (standard,) = builder.build(directory=str(tmp_path / "standard"), versions=["standard"])
    with zipfile.ZipFile(standard) as wheel:
        installed = [name for name in wheel.namelist() if ".dist-info/" not in name]
    assert sorted(installed) == ["starlite/__init__.py", "starlite/py.typed"]
    # Installed as pip would (a wheel is a zip of what goes in site-packages), the editable wheel
    # imports the repository's file from anywhere, its edits included.
    python = venv_with(["anyio"], tmp_path / "venv")
    with zipfile.ZipFile(editable) as wheel:
        assert not [name for name in wheel.namelist() if name.startswith("starlite/")]
        wheel.extractall(venv_path(tmp_path / "venv", "purelib"))
    result = subprocess.run(
        [python, "-c", "import starlite; print(starlite.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.stdout == f"{PROJECT_ROOT / 'starlite.py'}\n", result.stderr


# ==== Datastructures ====
# URL


def test_url_exposes_every_component_of_a_string_url() -> None:
    url = URL("https://user:pw@example.org:8443/path/to?abc=123&x=y#anchor")
    assert url.scheme == "https"
    assert url.netloc == "user:pw@example.org:8443"
    assert url.path == "/path/to"
    assert url.query == "abc=123&x=y"
    assert url.fragment == "anchor"
    assert url.username == "user"
    assert url.password == "pw"
    assert url.hostname == "example.org"
    assert url.port == 8443


def test_url_without_explicit_port_or_credentials_has_none_for_them() -> None:
    url = URL("http://example.org/")
    assert url.port is None
    assert url.username is None
    assert url.password is None


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("http://example.org/", False),
        ("https://example.org/", True),
        ("ws://example.org/", False),
        ("wss://example.org/", True),
    ],
)
def test_url_is_secure_only_for_https_and_wss(url: str, secure: bool) -> None:
    assert URL(url).is_secure is secure


def test_url_equals_its_string_form() -> None:
    url = URL("http://example.org/a?b=1")
    assert url == "http://example.org/a?b=1"
    assert url == URL("http://example.org/a?b=1")
    assert url != "http://example.org/a?b=2"
    assert str(url) == "http://example.org/a?b=1"


def test_url_repr_hides_the_password() -> None:
    url = URL("https://user:s3cr3t@example.org/")
    assert "s3cr3t" not in repr(url)
    assert repr(url) == "URL('https://user:********@example.org/')"
    assert str(url) == "https://user:s3cr3t@example.org/"


def test_url_can_be_built_from_components() -> None:
    url = URL(scheme="https", netloc="example.org", path="/x", query="a=1")
    assert url == "https://example.org/x?a=1"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"scheme": "https"}, "https://user:pw@example.org:8000/p?q=1"),
        ({"path": "/other"}, "http://user:pw@example.org:8000/other?q=1"),
        ({"query": "z=9"}, "http://user:pw@example.org:8000/p?z=9"),
        ({"port": 9000}, "http://user:pw@example.org:9000/p?q=1"),
        ({"hostname": "other.org"}, "http://user:pw@other.org:8000/p?q=1"),
        ({"username": "bob"}, "http://bob:pw@example.org:8000/p?q=1"),
        ({"password": "new"}, "http://user:new@example.org:8000/p?q=1"),
        ({"netloc": "plain.org"}, "http://plain.org/p?q=1"),
        ({"fragment": "top"}, "http://user:pw@example.org:8000/p?q=1#top"),
    ],
)
def test_url_replace_changes_one_component_and_keeps_the_rest(
    changes: dict[str, Any], expected: str
) -> None:
    url = URL("http://user:pw@example.org:8000/p?q=1")
    assert url.replace(**changes) == expected


def test_url_replace_returns_a_new_url_and_leaves_the_original_alone() -> None:
    url = URL("http://example.org/p")
    replaced = url.replace(path="/q")
    assert isinstance(replaced, URL)
    assert url == "http://example.org/p"


def test_url_with_ipv6_host_reports_unbracketed_hostname_and_port() -> None:
    url = URL("http://[::1]:8080/p")
    assert url.hostname == "::1"
    assert url.port == 8080
    assert url.netloc == "[::1]:8080"


def test_url_replace_hostname_with_ipv6_address_adds_brackets() -> None:
    assert URL("http://example.org/p").replace(hostname="::1") == "http://[::1]/p"
    assert (
        URL("http://example.org:8000/p").replace(hostname="2001:db8::1")
        == "http://[2001:db8::1]:8000/p"
    )


def test_url_replace_hostname_with_a_port_or_brackets_is_taken_as_written() -> None:
    url = URL("https://example.org:8443/path")
    assert url.replace(hostname="[::1]") == "https://[::1]:8443/path"
    assert url.replace(hostname="[::1]:8080", port=None) == "https://[::1]:8080/path"
    assert url.replace(hostname="example.org:8080", port=None) == "https://example.org:8080/path"
    assert url.replace(hostname="fe80::1%eth0", port=None) == "https://[fe80::1%eth0]/path"


def test_url_replace_port_of_a_url_without_a_host_keeps_the_host_empty() -> None:
    url = URL("/path?a=1").replace(port=8080)
    assert url == "//:8080/path?a=1"
    assert url.replace(port=9090) == "//:9090/path?a=1"
    assert url.replace(port=9090).port == 9090


def test_url_replace_port_keeps_ipv6_brackets() -> None:
    assert URL("http://[::1]/p").replace(port=9000) == "http://[::1]:9000/p"
    assert URL("http://[::1]:8000/p").replace(port=9000) == "http://[::1]:9000/p"


def test_url_include_query_params_adds_new_and_overrides_existing_keys() -> None:
    url = URL("http://example.org/p?a=1&b=2")
    assert url.include_query_params(b=3, c=4) == "http://example.org/p?a=1&b=3&c=4"


def test_url_include_query_params_replaces_every_value_of_a_repeated_key() -> None:
    url = URL("http://example.org/p?a=1&a=2&b=x")
    assert url.include_query_params(a="z") == "http://example.org/p?b=x&a=z"


def test_url_include_query_params_keeps_blank_values_and_encodes_new_ones() -> None:
    url = URL("http://example.org/p?empty=")
    assert url.include_query_params(q="a b&c") == "http://example.org/p?empty=&q=a+b%26c"


def test_url_replace_query_params_drops_all_existing_params() -> None:
    url = URL("http://example.org/p?a=1&b=2")
    assert url.replace_query_params(x=1) == "http://example.org/p?x=1"


def test_url_remove_query_params_accepts_one_key_or_a_list() -> None:
    url = URL("http://example.org/p?a=1&a=2&b=2&c=3")
    assert url.remove_query_params("a") == "http://example.org/p?b=2&c=3"
    assert url.remove_query_params(["a", "c"]) == "http://example.org/p?b=2"
    assert url.remove_query_params(["a", "b", "c"]) == "http://example.org/p"
    assert url.remove_query_params("missing") == "http://example.org/p?a=1&a=2&b=2&c=3"


def test_url_keeps_invalid_percent_encoding_verbatim() -> None:
    url = URL("http://example.org/a%zz/%?q=%GG&r=%")
    assert url.path == "/a%zz/%"
    assert url.query == "q=%GG&r=%"


# URL built from a scope


def test_url_from_scope_uses_the_host_header() -> None:
    scope = make_scope(
        "/path",
        query_string=b"a=1",
        headers=[(b"host", b"example.org:8000")],
        server=("10.0.0.1", 9000),
    )
    assert URL(scope=scope) == "http://example.org:8000/path?a=1"


@pytest.mark.parametrize(
    ("scheme", "server", "expected"),
    [
        ("http", ("example.org", 80), "http://example.org/p?q=1"),
        ("http", ("example.org", 8080), "http://example.org:8080/p?q=1"),
        ("https", ("example.org", 443), "https://example.org/p?q=1"),
        ("https", ("example.org", 80), "https://example.org:80/p?q=1"),
        ("ws", ("example.org", 80), "ws://example.org/p?q=1"),
        ("wss", ("example.org", 443), "wss://example.org/p?q=1"),
        ("http", ("::1", 8000), "http://[::1]:8000/p?q=1"),
        ("https", ("2001:db8::1", 443), "https://[2001:db8::1]/p?q=1"),
    ],
)
def test_url_from_scope_without_host_header_uses_server_and_omits_default_port(
    scheme: str, server: tuple[str, int], expected: str
) -> None:
    scope = make_scope("/p", query_string=b"q=1", headers=[], scheme=scheme, server=server)
    assert URL(scope=scope) == expected


@pytest.mark.parametrize(
    ("host", "hostname", "port"),
    [
        (b"[::1]", "::1", None),
        (b"[::1]:8000", "::1", 8000),
        (b"[2001:db8::a:1]:443", "2001:db8::a:1", 443),
        (b"127.0.0.1:5000", "127.0.0.1", 5000),
        (b"Example.ORG", "example.org", None),
        (b"example.org:000080", "example.org", 80),  # RFC 3986: a port is any run of digits
        (b"[v1.foo]", "v1.foo", None),  # an IPvFuture literal
        (b"[v1f.a:b]:81", "v1f.a:b", 81),
        (b"[fe80::1%25eth0]", "fe80::1%25eth0", None),  # an IPv6 zone id (RFC 6874)
        (b"[::ffff:1.2.3.4]", "::ffff:1.2.3.4", None),
    ],
)
def test_url_from_scope_accepts_ipv6_ipv4_and_named_hosts(
    host: bytes, hostname: str, port: int | None
) -> None:
    url = URL(scope=make_scope("/p", headers=[(b"host", host)]))
    assert url.hostname == hostname
    assert url.port == port
    assert url.path == "/p"


@pytest.mark.parametrize(
    "host",
    [
        b"exa mple.com",
        b"[::1",
        b"::1",
        b"[::g]",
        b"host:port",
        b"host:99999",
        b"host:65536",
        b"host:0000065536",
        b"host:" + b"9" * 5000,  # far past what int() converts
        b"[:::]",
        b"[::ffff:999.999.999.999]",
        b"[1:2:3:4:5:6:7:8:9]",
        b"[V1.foo]",  # urlsplit takes only a lower-case "v"
        b"[v1.]",
        b"[vz.foo]",
        b"[v1.foo/x]",
        b"[::1]evil.com",
        b"[::1]:",
        b"example.org:",
        b"example.org:80:80",
        b"",
        b"example.org/evil",
        b"user@example.org",
        b"example.org?x=1",
        b"example.org#frag",
        b"example.org\\evil",
        b"exa\tmple.org",
        b"example.org\r\nx: y",
        b"\xff\xfe",
    ],
)
def test_url_from_scope_ignores_malformed_host_header_and_falls_back_to_server(host: bytes) -> None:
    scope = make_scope(
        "/p", query_string=b"q=1", headers=[(b"host", host)], server=("server.internal", 8000)
    )
    url = URL(scope=scope)
    assert url == "http://server.internal:8000/p?q=1"
    assert url.path == "/p"


def test_url_from_scope_without_host_or_server_is_a_relative_url() -> None:
    scope = make_scope("/p", query_string=b"q=1", headers=[], server=None)
    url = URL(scope=scope)
    assert url.path == "/p"
    assert url.query == "q=1"
    assert url.netloc == ""


def test_url_from_scope_includes_root_path_already_in_the_path() -> None:
    scope = make_scope("/sub/items", headers=[(b"host", b"example.org")], root_path="/sub")
    assert URL(scope=scope) == "http://example.org/sub/items"


def test_url_from_scope_escapes_question_mark_and_hash_in_the_decoded_path() -> None:
    scope = make_scope("/a?b#c", query_string=b"q=1")
    url = URL(scope=scope)
    assert url.path == "/a%3Fb%23c"
    assert url.query == "q=1"
    assert url.fragment == ""


def test_url_from_scope_keeps_invalid_percent_encoding_in_path_and_query() -> None:
    scope = make_scope("/a%zz/%", query_string=b"q=%GG&r=%")
    url = URL(scope=scope)
    assert url.path == "/a%zz/%"
    assert url.query == "q=%GG&r=%"


@given(host=st.binary(max_size=40))
def test_url_from_scope_never_raises_on_arbitrary_host_header_bytes(host: bytes) -> None:
    scope = make_scope(
        "/p", query_string=b"q=1", headers=[(b"host", host)], server=("server.internal", 8000)
    )
    url = URL(scope=scope)
    # Whatever the Host header says, it can never move the path or the query.
    assert url.path == "/p"
    assert url.query == "q=1"
    assert url.scheme == "http"


# URLPath


def test_urlpath_is_a_str_carrying_protocol_and_host() -> None:
    path = URLPath("/users/1", protocol="http", host="api.example.org")
    assert isinstance(path, str)
    assert path == "/users/1"
    assert path.protocol == "http"
    assert path.host == "api.example.org"


@pytest.mark.parametrize(
    ("protocol", "base", "expected"),
    [
        ("http", "http://example.org", "http://example.org/users/1"),
        ("http", "https://example.org", "https://example.org/users/1"),
        ("websocket", "http://example.org", "ws://example.org/users/1"),
        ("websocket", "https://example.org", "wss://example.org/users/1"),
        ("", "https://example.org", "https://example.org/users/1"),
        ("http", "http://example.org/root/", "http://example.org/root/users/1"),
        ("http", "http://example.org/root", "http://example.org/root/users/1"),
    ],
)
def test_urlpath_make_absolute_url_picks_scheme_from_protocol_and_base(
    protocol: Any, base: str, expected: str
) -> None:
    url = URLPath("/users/1", protocol=protocol).make_absolute_url(base)
    assert isinstance(url, URL)
    assert url == expected


def test_urlpath_make_absolute_url_prefers_its_own_host_and_accepts_url_base() -> None:
    url = URLPath("/x", protocol="http", host="api.example.org").make_absolute_url(
        URL("http://example.org/")
    )
    assert url == "http://api.example.org/x"


def test_urlpath_with_leading_double_slash_cannot_become_an_authority() -> None:
    url = URLPath("//evil.example/x").make_absolute_url("http://example.org")
    assert url.netloc == "example.org"
    assert url.path.endswith("evil.example/x")


# Headers


def test_headers_lookup_is_case_insensitive() -> None:
    headers = Headers({"Content-Type": "text/plain"})
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert "Content-Type" in headers
    assert "content-TYPE" in headers
    assert headers.get("X-Missing") is None
    assert headers.get("x-missing", "d") == "d"


def test_headers_missing_key_raises_key_error() -> None:
    with pytest.raises(KeyError):
        Headers()["x-missing"]


def test_headers_keep_every_value_of_a_repeated_name_in_order() -> None:
    headers = Headers(raw=[(b"set-cookie", b"a=1"), (b"x-other", b"o"), (b"set-cookie", b"b=2")])
    assert headers["set-cookie"] == "a=1"
    assert headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert headers.getlist("x-missing") == []
    assert len(headers) == 3
    assert headers.keys() == ["set-cookie", "x-other", "set-cookie"]
    assert headers.values() == ["a=1", "o", "b=2"]
    assert headers.items() == [("set-cookie", "a=1"), ("x-other", "o"), ("set-cookie", "b=2")]
    assert list(headers) == ["set-cookie", "x-other", "set-cookie"]


def test_headers_from_mapping_lower_case_names_and_expose_raw_bytes() -> None:
    headers = Headers({"X-Token": "abc", "Accept": "*/*"})
    assert headers.raw == [(b"x-token", b"abc"), (b"accept", b"*/*")]


def test_headers_raw_of_immutable_headers_is_a_copy() -> None:
    headers = Headers({"a": "1"})
    headers.raw.append((b"b", b"2"))
    assert "b" not in headers


def test_headers_from_scope_read_the_scope_headers() -> None:
    scope = make_scope(headers=[(b"host", b"example.org"), (b"accept", b"text/html")])
    headers = Headers(scope=scope)
    assert headers["accept"] == "text/html"
    assert headers["host"] == "example.org"


def test_headers_decode_non_utf8_bytes_as_latin1_without_raising() -> None:
    headers = Headers(raw=[(b"x-name", b"caf\xe9 \xff\xfe"), (b"x-\xe9", b"v")])
    assert headers["x-name"] == "café \xff\xfe"
    assert headers["X-\xe9"] == "v"
    assert headers.items() == [("x-name", "café \xff\xfe"), ("x-\xe9", "v")]


def test_headers_equality_ignores_order_but_not_content() -> None:
    one = Headers(raw=[(b"a", b"1"), (b"b", b"2")])
    assert one == Headers(raw=[(b"b", b"2"), (b"a", b"1")])
    assert one != Headers(raw=[(b"a", b"1")])
    assert one != {"a": "1", "b": "2"}


def test_headers_repr_shows_a_dict_or_raw_list_when_names_repeat() -> None:
    assert repr(Headers({"a": "1"})) == "Headers({'a': '1'})"
    assert (
        repr(Headers(raw=[(b"a", b"1"), (b"a", b"2")]))
        == "Headers(raw=[(b'a', b'1'), (b'a', b'2')])"
    )


def test_headers_mutablecopy_is_independent_of_the_original() -> None:
    headers = Headers({"a": "1"})
    copy = headers.mutablecopy()
    assert isinstance(copy, MutableHeaders)
    copy["a"] = "2"
    copy["b"] = "3"
    assert headers["a"] == "1"
    assert "b" not in headers


# MutableHeaders


def test_mutable_headers_set_replaces_every_duplicate_and_keeps_first_position() -> None:
    headers = MutableHeaders(raw=[(b"a", b"1"), (b"x", b"x"), (b"a", b"2")])
    headers["A"] = "3"
    assert headers.raw == [(b"a", b"3"), (b"x", b"x")]


def test_mutable_headers_set_adds_a_new_header_at_the_end() -> None:
    headers = MutableHeaders({"a": "1"})
    headers["B"] = "2"
    assert headers.raw == [(b"a", b"1"), (b"b", b"2")]


def test_mutable_headers_append_keeps_existing_values() -> None:
    headers = MutableHeaders({"set-cookie": "a=1"})
    headers.append("Set-Cookie", "b=2")
    assert headers.getlist("set-cookie") == ["a=1", "b=2"]


def test_mutable_headers_delete_removes_every_value_of_the_name() -> None:
    headers = MutableHeaders(raw=[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")])
    del headers["A"]
    assert headers.raw == [(b"b", b"2")]


def test_mutable_headers_setdefault_only_sets_a_missing_header() -> None:
    headers = MutableHeaders({"a": "1"})
    assert headers.setdefault("A", "2") == "1"
    assert headers.setdefault("b", "3") == "3"
    assert headers.raw == [(b"a", b"1"), (b"b", b"3")]


def test_mutable_headers_update_sets_each_given_header() -> None:
    headers = MutableHeaders(raw=[(b"a", b"1"), (b"a", b"2"), (b"b", b"2")])
    headers.update({"A": "9", "c": "3"})
    assert headers.raw == [(b"a", b"9"), (b"b", b"2"), (b"c", b"3")]


def test_mutable_headers_or_operators_merge_mappings() -> None:
    headers = MutableHeaders({"a": "1"})
    merged = headers | {"b": "2"}
    assert merged.raw == [(b"a", b"1"), (b"b", b"2")]
    assert headers.raw == [(b"a", b"1")]
    headers |= {"a": "3"}
    assert headers.raw == [(b"a", b"3")]


def test_mutable_headers_or_with_a_non_mapping_raises_type_error() -> None:
    headers = MutableHeaders()
    with pytest.raises(TypeError):
        headers | [("a", "1")]  # type: ignore[operator]
    with pytest.raises(TypeError):
        headers |= [("a", "1")]  # type: ignore[arg-type]


def test_mutable_headers_from_scope_write_through_to_the_scope() -> None:
    scope = make_scope(headers=[(b"host", b"example.org")])
    headers = MutableHeaders(scope=scope)
    headers["x-added"] = "yes"
    assert (b"x-added", b"yes") in scope["headers"]


def test_mutable_headers_raw_is_the_live_list() -> None:
    headers = MutableHeaders()
    headers.raw.append((b"a", b"1"))
    assert headers["a"] == "1"


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], "Origin"),
        ([(b"vary", b"Accept-Encoding")], "Accept-Encoding, Origin"),
        ([(b"vary", b"Accept-Encoding, Cookie")], "Accept-Encoding, Cookie, Origin"),
        (
            [(b"vary", b"Accept-Encoding"), (b"x", b"y"), (b"Vary", b"Cookie")],
            "Accept-Encoding, Cookie, Origin",
        ),
    ],
)
def test_add_vary_header_keeps_every_existing_vary_value(
    existing: list[tuple[bytes, bytes]], expected: str
) -> None:
    headers = MutableHeaders(raw=[(key.lower(), value) for key, value in existing])
    headers.add_vary_header("Origin")
    assert headers.getlist("vary") == [expected]


SET_HEADER_OPERATIONS: dict[str, Callable[[MutableHeaders, str, str], object]] = {
    "setitem": lambda headers, name, value: headers.__setitem__(name, value),
    "append": lambda headers, name, value: headers.append(name, value),
    "setdefault": lambda headers, name, value: headers.setdefault(name, value),
    "update": lambda headers, name, value: headers.update({name: value}),
}


@pytest.mark.parametrize("bad", ["a\r\nb", "a\nb", "a\rb", "a\x00b", "\r\nSet-Cookie: x=1"])
@pytest.mark.parametrize("operation", SET_HEADER_OPERATIONS)
def test_mutable_headers_refuse_cr_lf_or_nul_in_a_value(operation: str, bad: str) -> None:
    headers = MutableHeaders({"keep": "1"})
    set_header = SET_HEADER_OPERATIONS[operation]
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        set_header(headers, "x-bad", bad)
    assert "x-bad" not in headers
    assert headers.raw == [(b"keep", b"1")]


@pytest.mark.parametrize("bad_name", ["x-bad\r\nInjected", "x\nbad", "x\x00bad"])
@pytest.mark.parametrize("operation", SET_HEADER_OPERATIONS)
def test_mutable_headers_refuse_cr_lf_or_nul_in_a_name(operation: str, bad_name: str) -> None:
    headers = MutableHeaders()
    set_header = SET_HEADER_OPERATIONS[operation]
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        set_header(headers, bad_name, "value")
    assert headers.raw == []


def test_mutable_headers_refuse_a_value_that_is_not_latin1() -> None:
    headers = MutableHeaders()
    # UnicodeEncodeError is a ValueError: the header cannot be written as latin-1 bytes.
    with pytest.raises(ValueError, match="latin-1"):
        headers["x-euro"] = "€"


def test_add_vary_header_names_each_value_once_whatever_its_case() -> None:
    headers = MutableHeaders(raw=[(b"vary", b"Accept-Encoding"), (b"vary", b"origin")])
    headers.add_vary_header("Origin, Cookie")
    assert headers.getlist("vary") == ["Accept-Encoding, origin, Cookie"]


def test_add_vary_header_keeps_a_lone_star() -> None:
    headers = MutableHeaders({"Vary": "*"})
    headers.add_vary_header("Origin")
    assert headers.getlist("vary") == ["*"]


# QueryParams


@pytest.mark.parametrize(
    "source",
    [
        "a=1&a=2&b=3",
        b"a=1&a=2&b=3",
        [("a", "1"), ("a", "2"), ("b", "3")],
        QueryParams("a=1&a=2&b=3"),
    ],
)
def test_query_params_accept_string_bytes_pairs_or_query_params(source: Any) -> None:
    params = QueryParams(source)
    assert params["a"] == "2"
    assert params.getlist("a") == ["1", "2"]
    assert params.multi_items() == [("a", "1"), ("a", "2"), ("b", "3")]
    assert list(params.keys()) == ["a", "b"]
    assert len(params) == 2
    assert str(params) == "a=1&a=2&b=3"


def test_query_params_from_mapping_and_keywords_stringify_values() -> None:
    params = QueryParams({"a": 1}, b=2)
    assert params.multi_items() == [("a", "1"), ("b", "2")]
    assert dict(params) == {"a": "1", "b": "2"}


def test_query_params_decode_percent_escapes_and_plus_signs() -> None:
    params = QueryParams("q=a+b%20c&euro=%E2%82%AC&amp=%26")
    assert params["q"] == "a b c"
    assert params["euro"] == "€"
    assert params["amp"] == "&"


def test_query_params_keep_blank_values_and_valueless_keys() -> None:
    params = QueryParams("a=&b&c=1")
    assert params.multi_items() == [("a", ""), ("b", ""), ("c", "1")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=%zz", {"a": "%zz"}),
        ("a=%", {"a": "%"}),
        ("a=%4", {"a": "%4"}),
        ("%GG=1", {"%GG": "1"}),
        ("a=%ff", {"a": "\ufffd"}),
        (b"a=%ff%fe", {"a": "\ufffd\ufffd"}),
    ],
)
def test_query_params_never_raise_on_invalid_percent_encoding(
    query: str | bytes, expected: dict[str, str]
) -> None:
    assert dict(QueryParams(query)) == expected


def test_query_params_str_and_repr_reencode_the_query() -> None:
    params = QueryParams([("q", "a b"), ("x", "&=")])
    assert str(params) == "q=a+b&x=%26%3D"
    assert repr(params) == "QueryParams('q=a+b&x=%26%3D')"


def test_query_params_are_immutable() -> None:
    params = QueryParams("a=1")
    with pytest.raises(TypeError):
        params["a"] = "2"  # type: ignore[index]


def test_query_params_equality_ignores_the_order_of_distinct_keys() -> None:
    assert QueryParams("a=1&b=2") == QueryParams("b=2&a=1")
    assert QueryParams("a=1&b=2") != QueryParams("a=1&b=3")


_query_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)


@given(pairs=st.lists(st.tuples(_query_text, _query_text), max_size=8))
def test_query_params_survive_a_round_trip_through_their_string_form(
    pairs: list[tuple[str, str]],
) -> None:
    params = QueryParams(pairs)
    assert QueryParams(str(params)).multi_items() == pairs


# ImmutableMultiDict


def test_immutable_multidict_returns_last_value_and_lists_all_values() -> None:
    data: ImmutableMultiDict[str, str] = ImmutableMultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    assert data["a"] == "3"
    assert data.get("a") == "3"
    assert data.getlist("a") == ["1", "3"]
    assert data.getlist("missing") == []
    assert list(data.keys()) == ["a", "b"]
    assert list(data.values()) == ["3", "2"]
    assert list(data.items()) == [("a", "3"), ("b", "2")]
    assert data.multi_items() == [("a", "1"), ("b", "2"), ("a", "3")]
    assert len(data) == 2
    assert "a" in data
    assert "z" not in data
    assert list(data) == ["a", "b"]


def test_immutable_multidict_accepts_mapping_multidict_and_keywords() -> None:
    assert ImmutableMultiDict({"a": 1}).multi_items() == [("a", 1)]
    source: ImmutableMultiDict[str, int] = ImmutableMultiDict([("a", 1), ("a", 2)])
    assert ImmutableMultiDict(source).multi_items() == [("a", 1), ("a", 2)]
    assert ImmutableMultiDict(source, b=3).multi_items() == [("a", 1), ("a", 2), ("b", 3)]
    assert ImmutableMultiDict().multi_items() == []


def test_immutable_multidict_equality_compares_all_values() -> None:
    assert ImmutableMultiDict([("a", 1), ("b", 2)]) == ImmutableMultiDict([("b", 2), ("a", 1)])
    assert ImmutableMultiDict([("a", 1), ("a", 2)]) != ImmutableMultiDict([("a", 2)])


def test_immutable_multidict_equality_needs_no_comparable_values_and_keeps_value_order() -> None:
    first, second = object(), object()  # values that cannot be ordered, as UploadFiles
    data = ImmutableMultiDict([("f", first), ("f", second), ("name", "x")])
    assert data == ImmutableMultiDict(data)
    assert data == ImmutableMultiDict([("name", "x"), ("f", first), ("f", second)])
    assert data != ImmutableMultiDict([("f", second), ("f", first), ("name", "x")])


def test_immutable_multidict_repr_shows_every_item() -> None:
    assert (
        repr(ImmutableMultiDict([("a", "1"), ("a", "2")]))
        == "ImmutableMultiDict([('a', '1'), ('a', '2')])"
    )


def test_immutable_multidict_cannot_be_assigned_to() -> None:
    data: ImmutableMultiDict[str, str] = ImmutableMultiDict([("a", "1")])
    with pytest.raises(TypeError):
        data["a"] = "2"  # type: ignore[index]


def test_multi_items_returns_a_copy() -> None:
    data: ImmutableMultiDict[str, str] = ImmutableMultiDict([("a", "1")])
    data.multi_items().append(("b", "2"))
    assert data.multi_items() == [("a", "1")]


# MultiDict


def test_multidict_setitem_replaces_every_value_of_the_key() -> None:
    data = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    data["a"] = 9
    assert data.multi_items() == [("b", 2), ("a", 9)]
    assert data["a"] == 9


def test_multidict_delitem_removes_every_value_and_missing_key_raises() -> None:
    data = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    del data["a"]
    assert data.multi_items() == [("b", 2)]
    with pytest.raises(KeyError):
        del data["a"]


def test_multidict_pop_popitem_and_poplist_remove_all_values() -> None:
    data = MultiDict([("a", 1), ("a", 2), ("b", 3), ("c", 4)])
    assert data.pop("a") == 2
    assert data.pop("a", "default") == "default"
    assert data.poplist("b") == [3]
    assert data.popitem() == ("c", 4)
    assert data.multi_items() == []


def test_multidict_setdefault_append_and_setlist() -> None:
    data = MultiDict()
    assert data.setdefault("a", 1) == 1
    assert data.setdefault("a", 2) == 1
    data.append("a", 5)
    assert data.getlist("a") == [1, 5]
    data.setlist("b", [1, 2])
    assert data.getlist("b") == [1, 2]
    assert data["b"] == 2
    data.setlist("b", [])
    assert "b" not in data
    data.clear()
    assert len(data) == 0
    assert data.multi_items() == []


def test_multidict_update_replaces_keys_it_names_and_keeps_the_others() -> None:
    data = MultiDict([("a", 1), ("a", 2), ("b", 3)])
    data.update([("a", 9), ("a", 10)], c=4)
    assert data.multi_items() == [("b", 3), ("a", 9), ("a", 10), ("c", 4)]
    assert data["a"] == 10


# State, Address, Secret, CommaSeparatedStrings


def test_state_stores_attributes_in_the_given_dict() -> None:
    backing: dict[str, Any] = {"existing": 1}
    state = State(backing)
    state.added = 2
    assert state.existing == 1
    assert backing == {"existing": 1, "added": 2}
    del state.existing
    assert backing == {"added": 2}


def test_state_missing_attribute_raises_attribute_error_naming_it() -> None:
    state = State()
    with pytest.raises(AttributeError, match="missing"):
        _ = state.missing
    assert getattr(state, "missing", "default") == "default"


def test_state_supports_item_access_iteration_and_len() -> None:
    state = State()
    state["a"] = 1
    assert state.a == 1
    assert state["a"] == 1
    assert list(state) == ["a"]
    assert len(state) == 1
    del state["a"]
    assert len(state) == 0


def test_state_is_a_mapping_of_what_it_holds_writing_through_to_its_dict() -> None:
    backing: dict[str, Any] = {"greeting": "hello"}
    state = State(backing)
    assert state.get("greeting") == "hello"
    assert state.get("missing") is None
    assert state.get("missing", 0) == 0
    assert list(state.keys()) == ["greeting"]
    assert list(state.values()) == ["hello"]
    assert list(state.items()) == [("greeting", "hello")]
    assert "greeting" in state
    assert "missing" not in state
    assert dict(state) == {"greeting": "hello"}
    assert state | {"n": 1} == {"greeting": "hello", "n": 1}
    assert {"n": 1, "greeting": "hi"} | state == {"n": 1, "greeting": "hello"}
    copied = state.copy()
    copied["n"] = 2
    assert "n" not in backing  # a copy, not the state
    assert state.setdefault("count", 1) == 1
    assert state.setdefault("count", 5) == 1
    state.update({"a": 1}, b=2)
    state |= {"c": 3}
    assert backing == {"greeting": "hello", "count": 1, "a": 1, "b": 2, "c": 3}
    assert state.pop("a") == 1
    assert state.pop("a", "gone") == "gone"
    with pytest.raises(KeyError):
        state.pop("a")
    assert backing == {"greeting": "hello", "count": 1, "b": 2, "c": 3}


@pytest.mark.parametrize(
    "name", ["get", "keys", "values", "items", "copy", "setdefault", "pop", "update"]
)
def test_state_value_stored_under_a_method_name_reads_back_as_stored(name: str) -> None:
    state = State()
    assert callable(getattr(state, name))
    setattr(state, name, [1])
    getattr(state, name).append(2)  # as Starlette's own tests do with `state.items`
    assert getattr(state, name) == [1, 2]
    assert state[name] == [1, 2]
    delattr(state, name)
    assert callable(getattr(state, name))


def test_state_copies_and_pickles_without_recursing() -> None:
    state = State({"a": [1]})
    for clone in (copy.copy(state), copy.deepcopy(state), pickle.loads(pickle.dumps(state))):
        assert isinstance(clone, State)
        assert dict(clone) == {"a": [1]}
    assert copy.deepcopy(state).a is not state.a


def test_session_starts_untouched_and_reading_it_only_marks_it_accessed() -> None:
    session = Session({"a": "1"})
    assert session == {"a": "1"}
    assert (session.accessed, session.modified) == (False, False)
    assert session["a"] == "1"
    assert session.get("b") is None
    assert (session.accessed, session.modified) == (False, False)  # only request.session marks
    session.mark_accessed()
    assert (session.accessed, session.modified) == (True, False)


@pytest.mark.parametrize(
    ("change", "modified"),
    [
        (lambda s: s.__setitem__("c", "3"), True),
        (lambda s: s.__delitem__("a"), True),
        (lambda s: s.clear(), True),
        (lambda s: s.pop("a"), True),
        (lambda s: s.pop("missing", None), False),
        (lambda s: s.popitem(), True),
        (lambda s: s.setdefault("b", "2"), True),
        (lambda s: s.setdefault("a", "2"), False),
        (lambda s: s.update(b="2"), True),
        (lambda s: s.__ior__({"b": "2"}), True),
        (lambda s: s.mark_modified(), True),
    ],
    ids=[
        "setitem",
        "delitem",
        "clear",
        "pop",
        "pop-missing",
        "popitem",
        "setdefault-missing",
        "setdefault-present",
        "update",
        "ior",
        "mark-modified",
    ],
)
def test_session_notes_each_write_as_modified_and_accessed(
    change: Callable[[Session], object], modified: bool
) -> None:
    session = Session({"a": "1"})
    change(session)
    assert session.modified is modified
    assert session.accessed is modified  # a write is a read too


def test_session_in_place_or_returns_the_session_itself() -> None:
    session = Session({"a": "1"})
    session |= {"b": "2"}
    assert isinstance(session, Session)
    assert session == {"a": "1", "b": "2"}
    assert session.modified


def test_address_is_a_named_host_port_tuple() -> None:
    address = Address("127.0.0.1", 8000)
    assert address.host == "127.0.0.1"
    assert address.port == 8000
    host, port = address
    assert (host, port) == ("127.0.0.1", 8000)
    assert address == ("127.0.0.1", 8000)


def test_secret_hides_its_value_in_repr_but_not_in_str() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert repr(secret) == "Secret('**********')"
    assert str(secret) == "hunter2"
    assert bool(secret) is True
    assert bool(Secret("")) is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a,b,c", ["a", "b", "c"]),
        ("a, b , c", ["a", "b", "c"]),
        ("'a,b', c", ["a,b", "c"]),
        ('"x, y",z', ["x, y", "z"]),
        ("single", ["single"]),
        ("", []),
        (["x", "y"], ["x", "y"]),
    ],
)
def test_comma_separated_strings_split_on_commas_and_honour_quotes(
    value: Any, expected: list[str]
) -> None:
    assert list(CommaSeparatedStrings(value)) == expected


def test_comma_separated_strings_behave_as_a_sequence() -> None:
    items = CommaSeparatedStrings("a, b, c")
    assert len(items) == 3
    assert items[0] == "a"
    assert items[-1] == "c"
    assert items[1:] == ["b", "c"]
    assert "b" in items
    assert str(items) == "'a', 'b', 'c'"
    assert repr(items) == "CommaSeparatedStrings(['a', 'b', 'c'])"


# ---- Query strings against parse_qsl, and multidicts built from a list ----


QUERY_CHUNKS = [
    "&", "&&", "=", "==", "+", "++", "%", "%2", "%20", "%2B", "%26", "%3D", "%e9", "%C3%A9",
    "%E9", "%zz", "%G1", "%%", "%+", "a", "b", "key", "1", "0", "f", "F", " ", ";", ";a=1",
    "é", "☃", "😀", "\x00", "\t", "#", "?", "a=", "=b",
]  # fmt: skip
query_pairs = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "a+b", "%C3%A9", ""]), st.sampled_from(["", "1", "x+y", "%"])
    ),
    max_size=6,
).map(lambda pairs: "&".join(f"{k}={v}" if v else k for k, v in pairs))
query_text = st.one_of(
    query_pairs,
    st.lists(st.sampled_from(QUERY_CHUNKS), max_size=20).map("".join),
    st.text(
        alphabet=st.sampled_from(list("&=+%; \t0123456789abcdefABCDEFgzé☃\U0001f600")), max_size=40
    ),
    st.text(max_size=30),
)


@pytest.mark.parametrize(
    "text",
    [
        "", "&", "a", "a=", "=", "=1", "a=1&&b=2", "a=1&a=2&a=", "a=b=c", "+%2B+", "a+b=c+d",
        "%", "%4", "%zz", "%C3%A9=%E9", "%E9%", "a=1;b=2", ";", "é=☃", "%F0%9F%98%80",
        "a=%20&%20=b", "&&a&&", "%2", "%%41", "%C3a%A9", "%c3%a9=%e2%98", "a%2Bb=%26%3D",
        "é%C3%A9", "%C3é%A9", "%FF%FE",
    ],
)  # fmt: skip
def test_parse_query_examples_equal_parse_qsl(text: str) -> None:
    assert starlite._parse_query(text) == parse_qsl(text, keep_blank_values=True)


@settings(max_examples=400, deadline=None)
@given(text=query_text)
def test_parse_query_equals_parse_qsl_keeping_blank_values(text: str) -> None:
    assert starlite._parse_query(text) == parse_qsl(text, keep_blank_values=True)


query_bytes = st.one_of(
    st.binary(max_size=40),
    st.lists(
        st.one_of(
            st.sampled_from(QUERY_CHUNKS).map(lambda s: s.encode("utf-8")),
            st.sampled_from([b"\xe9", b"\xff", b"\x80", b"\xc3\xa9", b"\xf0\x9f\x98\x80"]),
        ),
        max_size=15,
    ).map(b"".join),
)


@settings(max_examples=300, deadline=None)
@given(raw=query_bytes)
def test_query_params_from_bytes_str_and_request_equal_parse_qsl_of_latin_1(raw: bytes) -> None:
    text = raw.decode("latin-1")
    expected = parse_qsl(text, keep_blank_values=True)
    assert QueryParams(raw).multi_items() == expected
    assert QueryParams(text).multi_items() == expected
    request = Request(make_scope("/", query_string=raw))
    assert request.query_params.multi_items() == expected
    params = QueryParams(raw)
    for key, _ in expected:
        assert params.getlist(key) == [v for k, v in expected if k == key]
        assert params[key] == [v for k, v in expected if k == key][-1]


def test_query_params_from_raw_utf_8_and_non_utf_8_bytes() -> None:
    assert QueryParams(b"a=%C3%A9&b=\xc3\xa9&c=\xe9").multi_items() == [
        ("a", "é"),
        ("b", "Ã©"),  # raw bytes are read as latin-1, as parse_qsl of the decoded text does
        ("c", "é"),
    ]
    assert QueryParams(b"x=%E9").multi_items() == [("x", "\ufffd")]
    assert QueryParams(b"a+b=c+d&e=%2B").multi_items() == [("a b", "c d"), ("e", "+")]


def test_query_params_with_kwargs_after_text() -> None:
    params = QueryParams("a=1&b=", c=3)
    assert params.multi_items() == [("a", "1"), ("b", ""), ("c", "3")]


def test_include_query_params_keeps_blank_values_and_repeated_keys_in_order() -> None:
    url = URL("http://example.org/p?a=1&b=&a=2&c&d=x+y")
    assert url.include_query_params(e="5").query == "a=1&b=&a=2&c=&d=x+y&e=5"
    assert url.include_query_params(a="9").query == "b=&c=&d=x+y&a=9"
    assert url.include_query_params(b="", z=0).query == "a=1&a=2&c=&d=x+y&b=&z=0"
    assert url.remove_query_params("a").query == "b=&c=&d=x+y"
    assert url.remove_query_params(["b", "c"]).query == "a=1&a=2&d=x+y"
    assert url.remove_query_params("nothing").query == "a=1&b=&a=2&c=&d=x+y"
    assert str(url.remove_query_params("a")) == "http://example.org/p?b=&c=&d=x+y"


@settings(max_examples=200, deadline=None)
@given(
    text=query_text,
    added=st.dictionaries(st.sampled_from(["a", "b", "key", "é"]), st.text(max_size=5)),
    removed=st.lists(st.sampled_from(["a", "b", "key", "é", "", " "]), max_size=3),
)
def test_include_and_remove_query_params_act_on_every_pair_in_order(
    text: str, added: dict[str, str], removed: list[str]
) -> None:
    url = URL("http://example.org/p?" + text.replace("#", "%23"))
    pairs = parse_qsl(url.query, keep_blank_values=True)
    included = [(k, v) for k, v in pairs if k not in added] + list(added.items())
    assert url.include_query_params(**added).query == urlencode(included)
    kept = [(k, v) for k, v in pairs if k not in removed]
    assert url.remove_query_params(removed).query == urlencode(kept)


@pytest.mark.parametrize("cls", [ImmutableMultiDict, MultiDict, QueryParams])
def test_a_multidict_built_from_a_list_does_not_alias_it(
    cls: type[ImmutableMultiDict[Any, Any]],
) -> None:
    items = [("a", "1"), ("b", "2")]
    params = cls(items)
    items.append(("a", "3"))
    items[1] = ("c", "4")
    del items[0]
    assert params.multi_items() == [("a", "1"), ("b", "2")]
    assert params.getlist("a") == ["1"]
    assert params["b"] == "2"
    assert "c" not in params
    assert len(params) == 2


def test_a_mutable_multidict_built_from_a_list_leaves_the_list_alone() -> None:
    items = [("a", "1"), ("a", "2")]
    params = MultiDict(items)
    params.append("a", "3")
    params["b"] = "4"
    params.setdefault("c", "5")
    assert items == [("a", "1"), ("a", "2")]
    params.clear()
    assert items == [("a", "1"), ("a", "2")]
    assert MultiDict(items).getlist("a") == ["1", "2"]


def test_multi_items_is_a_copy() -> None:
    params: ImmutableMultiDict[str, str] = ImmutableMultiDict([("a", "1")])
    params.multi_items().append(("a", "2"))
    assert params.getlist("a") == ["1"]


@pytest.mark.parametrize("cls", [ImmutableMultiDict, MultiDict, QueryParams])
def test_a_multidict_from_a_tuple_dict_multidict_generator_or_kwargs(
    cls: type[ImmutableMultiDict[Any, Any]],
) -> None:
    expected = [("a", "1"), ("b", "2"), ("a", "3")]
    assert cls(tuple(expected)).multi_items() == expected
    assert cls(iter(expected)).multi_items() == expected
    assert cls(pair for pair in expected).multi_items() == expected
    assert cls(ImmutableMultiDict(expected)).multi_items() == expected
    assert cls(MultiDict(expected)).multi_items() == expected
    assert cls({"a": "1", "b": "2"}).multi_items() == [("a", "1"), ("b", "2")]
    assert cls(a="1", b="2").multi_items() == [("a", "1"), ("b", "2")]
    assert cls(expected, c="4").multi_items() == [*expected, ("c", "4")]
    assert cls(tuple(expected), c="4").multi_items() == [*expected, ("c", "4")]
    assert cls().multi_items() == []
    built = cls(expected)
    assert built["a"] == "3"
    assert built.getlist("a") == ["1", "3"]
    assert list(built) == ["a", "b"]


def test_a_multidict_built_from_another_does_not_alias_it() -> None:
    source = MultiDict([("a", "1")])
    copy: ImmutableMultiDict[str, str] = ImmutableMultiDict(source)
    source.append("a", "2")
    source["b"] = "3"
    assert copy.multi_items() == [("a", "1")]
    mutable = MultiDict(copy)
    mutable.append("a", "9")
    assert copy.multi_items() == [("a", "1")]


def test_query_params_from_a_list_of_non_strings_makes_strings() -> None:
    items: list[tuple[Any, Any]] = [("a", 1), (2, None)]
    params = QueryParams(items)
    items.append(("z", 0))
    assert params.multi_items() == [("a", "1"), ("2", "None")]
    assert params["2"] == "None"


# ==== Exceptions ====


@pytest.mark.parametrize(
    ("status_code", "detail"),
    [
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (418, HTTPStatus(418).phrase),
        (503, "Service Unavailable"),
    ],
)
def test_http_exception_detail_defaults_to_the_status_phrase(status_code: int, detail: str) -> None:
    assert HTTPException(status_code).detail == detail


def test_http_exception_detail_of_an_unknown_status_is_empty() -> None:
    assert HTTPException(599).detail == ""


def test_starlette_deprecation_warning_is_a_user_warning_that_filters_can_name() -> None:
    assert issubclass(StarletteDeprecationWarning, UserWarning)  # shown by default, as Starlette's
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=StarletteDeprecationWarning)
        warnings.warn("quiet", StarletteDeprecationWarning, stacklevel=1)  # filtered: no error


def test_http_exception_keeps_status_detail_and_headers() -> None:
    exc = HTTPException(403, detail="members only", headers={"X-Reason": "tier"})
    assert exc.status_code == 403
    assert exc.detail == "members only"
    assert exc.headers == {"X-Reason": "tier"}


def test_http_exception_headers_default_to_none() -> None:
    assert HTTPException(404).headers is None


def test_http_exception_is_an_exception() -> None:
    assert isinstance(HTTPException(500), Exception)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((404,), "404: Not Found"),
        ((403, "members only"), "403: members only"),
        ((599,), "599: "),
    ],
)
def test_http_exception_str_is_status_and_detail(args: tuple[Any, ...], expected: str) -> None:
    assert str(HTTPException(*args)) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((404,), "HTTPException(status_code=404, detail='Not Found')"),
        ((400, "bad 'id'"), "HTTPException(status_code=400, detail=\"bad 'id'\")"),
    ],
)
def test_http_exception_repr(args: tuple[Any, ...], expected: str) -> None:
    assert repr(HTTPException(*args)) == expected


def test_http_exception_subclass_repr_names_the_subclass() -> None:
    class NotAllowed(HTTPException):
        pass

    assert repr(NotAllowed(403)) == "NotAllowed(status_code=403, detail='Forbidden')"


def test_websocket_exception_keeps_code_and_reason() -> None:
    exc = WebSocketException(1008, reason="no token")
    assert (exc.code, exc.reason) == (1008, "no token")
    assert isinstance(exc, Exception)


def test_websocket_exception_reason_defaults_to_empty() -> None:
    assert WebSocketException(1000).reason == ""


@pytest.mark.parametrize(
    ("args", "text", "representation"),
    [
        ((1008, "no token"), "1008: no token", "WebSocketException(code=1008, reason='no token')"),
        ((1011,), "1011: ", "WebSocketException(code=1011, reason='')"),
    ],
)
def test_websocket_exception_str_and_repr(
    args: tuple[Any, ...], text: str, representation: str
) -> None:
    exc = WebSocketException(*args)
    assert str(exc) == text
    assert repr(exc) == representation


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_100_CONTINUE", 100),
        ("HTTP_200_OK", 200),
        ("HTTP_204_NO_CONTENT", 204),
        ("HTTP_304_NOT_MODIFIED", 304),
        ("HTTP_307_TEMPORARY_REDIRECT", 307),
        ("HTTP_404_NOT_FOUND", 404),
        ("HTTP_405_METHOD_NOT_ALLOWED", 405),
        ("HTTP_413_CONTENT_TOO_LARGE", 413),
        ("HTTP_416_RANGE_NOT_SATISFIABLE", 416),
        ("HTTP_418_IM_A_TEAPOT", 418),
        ("HTTP_422_UNPROCESSABLE_CONTENT", 422),
        ("HTTP_500_INTERNAL_SERVER_ERROR", 500),
        ("HTTP_511_NETWORK_AUTHENTICATION_REQUIRED", 511),
        ("WS_1000_NORMAL_CLOSURE", 1000),
        ("WS_1008_POLICY_VIOLATION", 1008),
        ("WS_1011_INTERNAL_ERROR", 1011),
        ("WS_1015_TLS_HANDSHAKE", 1015),
    ],
)
def test_status_constant(name: str, value: int) -> None:
    assert getattr(status, name) == value


# starlette.status's current names (its deprecated aliases left out).
STATUS_NAMES_TEXT = """
HTTP_100_CONTINUE HTTP_101_SWITCHING_PROTOCOLS HTTP_102_PROCESSING HTTP_103_EARLY_HINTS HTTP_200_OK
HTTP_201_CREATED HTTP_202_ACCEPTED HTTP_203_NON_AUTHORITATIVE_INFORMATION HTTP_204_NO_CONTENT
HTTP_205_RESET_CONTENT HTTP_206_PARTIAL_CONTENT HTTP_207_MULTI_STATUS HTTP_208_ALREADY_REPORTED
HTTP_226_IM_USED HTTP_300_MULTIPLE_CHOICES HTTP_301_MOVED_PERMANENTLY HTTP_302_FOUND
HTTP_303_SEE_OTHER HTTP_304_NOT_MODIFIED HTTP_305_USE_PROXY HTTP_306_RESERVED
HTTP_307_TEMPORARY_REDIRECT HTTP_308_PERMANENT_REDIRECT HTTP_400_BAD_REQUEST HTTP_401_UNAUTHORIZED
HTTP_402_PAYMENT_REQUIRED HTTP_403_FORBIDDEN HTTP_404_NOT_FOUND HTTP_405_METHOD_NOT_ALLOWED
HTTP_406_NOT_ACCEPTABLE HTTP_407_PROXY_AUTHENTICATION_REQUIRED HTTP_408_REQUEST_TIMEOUT
HTTP_409_CONFLICT HTTP_410_GONE HTTP_411_LENGTH_REQUIRED HTTP_412_PRECONDITION_FAILED
HTTP_413_CONTENT_TOO_LARGE HTTP_414_URI_TOO_LONG HTTP_415_UNSUPPORTED_MEDIA_TYPE
HTTP_416_RANGE_NOT_SATISFIABLE HTTP_417_EXPECTATION_FAILED HTTP_418_IM_A_TEAPOT
HTTP_421_MISDIRECTED_REQUEST HTTP_422_UNPROCESSABLE_CONTENT HTTP_423_LOCKED
HTTP_424_FAILED_DEPENDENCY HTTP_425_TOO_EARLY HTTP_426_UPGRADE_REQUIRED
HTTP_428_PRECONDITION_REQUIRED HTTP_429_TOO_MANY_REQUESTS HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE
HTTP_451_UNAVAILABLE_FOR_LEGAL_REASONS HTTP_500_INTERNAL_SERVER_ERROR HTTP_501_NOT_IMPLEMENTED
HTTP_502_BAD_GATEWAY HTTP_503_SERVICE_UNAVAILABLE HTTP_504_GATEWAY_TIMEOUT
HTTP_505_HTTP_VERSION_NOT_SUPPORTED HTTP_506_VARIANT_ALSO_NEGOTIATES HTTP_507_INSUFFICIENT_STORAGE
HTTP_508_LOOP_DETECTED HTTP_510_NOT_EXTENDED HTTP_511_NETWORK_AUTHENTICATION_REQUIRED
WS_1000_NORMAL_CLOSURE WS_1001_GOING_AWAY WS_1002_PROTOCOL_ERROR WS_1003_UNSUPPORTED_DATA
WS_1005_NO_STATUS_RCVD WS_1006_ABNORMAL_CLOSURE WS_1007_INVALID_FRAME_PAYLOAD_DATA
WS_1008_POLICY_VIOLATION WS_1009_MESSAGE_TOO_BIG WS_1010_MANDATORY_EXT WS_1011_INTERNAL_ERROR
WS_1012_SERVICE_RESTART WS_1013_TRY_AGAIN_LATER WS_1014_BAD_GATEWAY WS_1015_TLS_HANDSHAKE
"""
STATUS_NAMES = STATUS_NAMES_TEXT.split()


def test_status_has_every_starlette_constant_name() -> None:
    assert [name for name in STATUS_NAMES if not hasattr(status, name)] == []


def test_status_constants_equal_the_number_in_their_name() -> None:
    assert {name: getattr(status, name) for name in STATUS_NAMES} == {
        name: int(name.split("_")[1]) for name in STATUS_NAMES
    }


@pytest.mark.parametrize(
    ("retired", "current"),
    [
        ("HTTP_413_REQUEST_ENTITY_TOO_LARGE", "HTTP_413_CONTENT_TOO_LARGE"),
        ("HTTP_414_REQUEST_URI_TOO_LONG", "HTTP_414_URI_TOO_LONG"),
        ("HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE", "HTTP_416_RANGE_NOT_SATISFIABLE"),
        ("HTTP_422_UNPROCESSABLE_ENTITY", "HTTP_422_UNPROCESSABLE_CONTENT"),
    ],
)
def test_status_names_rfc_9110_retired_still_work_with_a_deprecation_warning(
    retired: str, current: str
) -> None:
    with pytest.warns(StarletteDeprecationWarning) as warned:
        assert getattr(status, retired) == getattr(status, current)
    assert [str(warning.message) for warning in warned] == [
        f"'{retired}' is deprecated. Use '{current}' instead."
    ]
    assert warned[0].filename == __file__  # it points at the code that used the name


def test_status_has_no_name_it_does_not_define_and_its_codes_cannot_be_changed() -> None:
    with pytest.raises(AttributeError, match="HTTP_999_UNKNOWN"):
        status.HTTP_999_UNKNOWN  # type: ignore[attr-defined] # noqa: B018
    with pytest.raises(AttributeError):
        status.HTTP_200_OK = 201  # type: ignore[misc]
    assert status.HTTP_200_OK == 200


MISSPELT_STATUS_USER = """\
from starlite import status

found: int = status.HTTP_404_NOT_FOUND
misspelt: int = status.HTTP_404_NOT_FUOND
"""


def test_a_misspelt_status_name_fails_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "misspelt_status_user.py"
    source.write_text(MISSPELT_STATUS_USER)
    result = run_mypy_strict(source, tmp_path / "mypy_cache")
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert f"{source.name}:4: error: " in errors[0]
    assert '"HTTP_404_NOT_FUOND"' in errors[0]


# ==== Concurrency ====


@pytest.mark.anyio
async def test_run_in_threadpool_runs_the_function_in_a_worker_thread_with_args() -> None:
    def work(a: int, b: int, *, scale: int) -> tuple[int, int]:
        return (a + b) * scale, threading.get_ident()

    result, thread_id = await run_in_threadpool(work, 1, 2, scale=10)
    assert result == 30
    assert thread_id != threading.get_ident()


@pytest.mark.anyio
async def test_run_in_threadpool_propagates_the_exception() -> None:
    def fail() -> None:
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await run_in_threadpool(fail)


@pytest.mark.anyio
async def test_iterate_in_threadpool_yields_each_item_from_a_worker_thread() -> None:
    threads: list[int] = []

    def numbers() -> Any:
        for number in range(3):
            threads.append(threading.get_ident())
            yield number

    assert [item async for item in iterate_in_threadpool(numbers())] == [0, 1, 2]
    assert len(threads) == 3
    assert threading.get_ident() not in threads


@pytest.mark.anyio
async def test_iterate_in_threadpool_accepts_a_plain_iterable_and_an_empty_one() -> None:
    assert [item async for item in iterate_in_threadpool(["a", "b"])] == ["a", "b"]
    nothing: list[str] = []
    assert [item async for item in iterate_in_threadpool(nothing)] == []
    # Starlette's keyword, for code that names it
    assert [item async for item in iterate_in_threadpool(iterator=iter("ab"))] == ["a", "b"]


@pytest.mark.anyio
async def test_iterate_in_threadpool_propagates_an_error_raised_by_the_iterator() -> None:
    def broken() -> Any:
        yield 1
        raise LookupError("bad item")

    received: list[int] = []

    async def consume() -> None:
        async for item in iterate_in_threadpool(broken()):
            received.append(item)

    with pytest.raises(LookupError, match="bad item"):
        await consume()
    assert received == [1]


@pytest.mark.anyio
async def test_run_until_first_complete_cancels_the_others_when_one_returns() -> None:
    finished: list[str] = []

    async def quick(name: str) -> None:
        finished.append(name)

    async def slow(name: str) -> None:
        await anyio.sleep(10)
        finished.append(name)  # pragma: no cover - cancelled

    with (
        anyio.fail_after(5),
        pytest.warns(StarletteDeprecationWarning, match="run_until_first_complete is deprecated"),
    ):
        await run_until_first_complete((slow, {"name": "slow"}), (quick, {"name": "quick"}))
    assert finished == ["quick"]


@pytest.mark.anyio
async def test_run_until_first_complete_raises_what_a_function_raised() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    async def waits() -> None:
        await anyio.sleep(10)

    with (
        pytest.warns(StarletteDeprecationWarning),
        pytest.raises(ExceptionGroup) as raised,
    ):
        await run_until_first_complete((waits, {}), (fails, {}))
    assert [str(error) for error in raised.value.exceptions] == ["boom"]


# ==== Background tasks ====


@pytest.mark.anyio
async def test_background_task_awaits_an_async_function_with_its_arguments() -> None:
    calls: list[Any] = []

    async def record(a: int, *, b: int) -> None:
        calls.append((a, b))

    task = BackgroundTask(record, 1, b=2)
    await task()
    assert calls == [(1, 2)]


@pytest.mark.anyio
async def test_background_task_runs_a_sync_function_in_the_threadpool() -> None:
    threads: list[int] = []

    def record(value: str) -> None:
        threads.append(threading.get_ident())

    await BackgroundTask(record, "x")()
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


@pytest.mark.anyio
async def test_background_tasks_run_in_the_order_they_were_added() -> None:
    calls: list[str] = []

    async def async_record(value: str) -> None:
        calls.append(value)

    def sync_record(value: str) -> None:
        calls.append(value)

    tasks = BackgroundTasks([BackgroundTask(async_record, "first")])
    tasks.add_task(sync_record, "second")
    tasks.add_task(async_record, value="third")
    await tasks()
    assert calls == ["first", "second", "third"]


@pytest.mark.anyio
async def test_background_tasks_stop_at_the_first_failing_task() -> None:
    calls: list[str] = []

    async def fail() -> None:
        raise LookupError("task failed")

    async def record() -> None:
        calls.append("ran")

    tasks = BackgroundTasks()
    tasks.add_task(fail)
    tasks.add_task(record)
    with pytest.raises(LookupError, match="task failed"):
        await tasks()
    assert calls == []


def test_background_task_runs_after_the_response_is_sent() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                events.append("response sent")
            await send(message)

        response = Response("ok", background=BackgroundTask(events.append, "background ran"))
        await response(scope, receive, recording_send)

    response = TestClient(app).get("/")
    assert response.text == "ok"
    assert events == ["response sent", "background ran"]


# ==== Forms ====


async def form_items(
    body: bytes | Iterable[bytes], content_type: str = MULTIPART, **limits: Any
) -> list[list[Any]]:
    """The described form that a Request outside any app parses from `body` (files closed)."""
    async with form_request(body, content_type).form(**limits) as form:
        return await describe_form(form)


class RecordingSpool(SpooledTemporaryFile[bytes]):
    """A SpooledTemporaryFile recording each read, write, seek and close as (method, thread id,
    on disk before the call, on disk after it)."""

    _rolled: bool

    def __init__(self, max_size: int = 0) -> None:
        super().__init__(max_size=max_size)
        self.calls: list[tuple[str, int, bool, bool]] = []

    def _record(self, method: str, on_disk_before: bool) -> None:
        self.calls.append((method, threading.get_ident(), on_disk_before, self._rolled))

    def write(self, s: Any) -> int:
        before = self._rolled
        written = super().write(s)
        self._record("write", before)
        return written

    def rollover(self) -> None:
        before = self._rolled
        super().rollover()
        self._record("rollover", before)

    def read(self, n: int = -1, /) -> bytes:
        before = self._rolled
        data = super().read(n)
        self._record("read", before)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        before = self._rolled
        position = super().seek(offset, whence)
        self._record("seek", before)
        return position

    def close(self) -> None:
        if not self.closed:
            before = self._rolled
            super().close()
            self._record("close", before)

    def disk_io_off(self, loop_thread: int) -> bool:
        """Whether every call that touched the disk ran outside `loop_thread`; the write that
        rolls over counts (it writes the whole file to disk)."""
        return all(
            thread != loop_thread for _, thread, before, after in self.calls if before or after
        )


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> list[RecordingSpool]:
    """Every SpooledTemporaryFile that starlite's multipart parser creates, kept for the test."""
    created: list[RecordingSpool] = []

    def recording_spool(max_size: int = 0) -> RecordingSpool:
        spool = RecordingSpool(max_size=max_size)
        created.append(spool)
        return spool

    # starlite imports it from tempfile when it first parses a multipart form.
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", recording_spool)
    return created


# UploadFile


def test_upload_file_exposes_filename_headers_content_type_and_size() -> None:
    headers = Headers({"content-type": "image/png", "x-extra": "1"})
    upload = UploadFile(io.BytesIO(b"png"), size=3, filename="a.png", headers=headers)
    assert (upload.filename, upload.content_type, upload.size) == ("a.png", "image/png", 3)
    assert upload.headers["x-extra"] == "1"
    assert "a.png" in repr(upload)
    bare = UploadFile(io.BytesIO())
    assert (bare.filename, bare.content_type, bare.size) == (None, None, None)
    assert list(bare.headers.items()) == []


@pytest.mark.anyio
async def test_upload_file_io_below_the_spool_size_stays_in_memory() -> None:
    spool = RecordingSpool(max_size=1024)
    upload = UploadFile(spool, size=0)
    await upload.write(b"hello ")
    await upload.write(b"x" * 1018)  # exactly at the spool size: still in memory
    assert upload.size == 1024
    await upload.seek(0)
    assert await upload.read(5) == b"hello"
    await upload.seek(1023)
    assert await upload.read() == b"x"
    await upload.close()
    await upload.close()  # twice is harmless
    assert [call[0] for call in spool.calls] == [
        "write",
        "write",
        "seek",
        "read",
        "seek",
        "read",
        "close",
    ]
    assert not any(before or after for _, _, before, after in spool.calls)
    uncounted = UploadFile(RecordingSpool(max_size=10))
    await uncounted.write(b"abc")
    assert uncounted.size is None  # only a size given is counted
    await uncounted.close()


@pytest.mark.anyio
async def test_upload_file_rolls_over_to_disk_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    spool = RecordingSpool(max_size=1024)
    upload = UploadFile(spool, size=0)
    await upload.write(b"a" * 1000)
    assert not on_disk(spool)
    await upload.write(b"b" * 25)  # one byte past the spool size: the file moves to disk first
    assert on_disk(spool)
    await upload.write(b"c" * 10)
    await upload.seek(0)
    assert await upload.read() == b"a" * 1000 + b"b" * 25 + b"c" * 10
    await upload.close()
    await upload.close()  # twice is harmless
    assert upload.file.closed
    assert upload.size == 1035
    methods = [call[0] for call in spool.calls]
    assert methods == ["write", "rollover", "write", "write", "seek", "read", "close"]
    assert spool.calls[1][2:] == (False, True)  # the move to disk
    assert spool.calls[2][2:] == (True, True)  # then the write, straight to disk
    assert all(thread != loop_thread for _, thread, _, _ in spool.calls[1:])
    assert spool.disk_io_off(loop_thread)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_blockbuster_catches_disk_io_on_the_event_loop() -> None:
    # Proof that the autouse blockbuster watches these tests (on asyncio): the write UploadFile
    # hands to the threadpool fails when made on the loop, so tests that pass never made it.
    with SpooledTemporaryFile(max_size=8) as spool, pytest.raises(BlockingError):
        spool.write(b"x" * 16)


# FormData


def test_form_data_keeps_every_item_in_order() -> None:
    upload = UploadFile(io.BytesIO(), filename="a")
    form = FormData([("a", "1"), ("f", upload), ("a", "2")])
    assert isinstance(form, ImmutableMultiDict)
    assert form["a"] == "2"  # the last value, as in Starlette
    assert form.getlist("a") == ["1", "2"]
    assert form["f"] is upload
    assert list(form.multi_items()) == [("a", "1"), ("f", upload), ("a", "2")]
    assert list(FormData().multi_items()) == []


@pytest.mark.anyio
async def test_form_data_close_closes_every_file() -> None:
    uploads = [UploadFile(RecordingSpool(max_size=8), size=0) for _ in range(3)]
    await uploads[2].write(b"x" * 100)  # one of them on disk
    form = FormData([("f", uploads[0]), ("f", uploads[1]), ("text", "v"), ("g", uploads[2])])
    await form.close()
    assert all(upload.file.closed for upload in uploads)
    await form.close()


def test_form_message_is_deprecated_when_looked_up_by_value() -> None:
    assert [message.value for message in FormMessage] == [1, 2, 3, 4, 5]
    assert FormMessage.FIELD_END.name == "FIELD_END"  # naming a member does not warn
    with pytest.warns(StarletteDeprecationWarning) as warned:
        assert FormMessage(5) is FormMessage.END
    assert [str(warning.message) for warning in warned] == [
        "`FormMessage` is deprecated and will be removed in a future version."
    ]
    assert warned[0].filename == __file__
    with pytest.warns(StarletteDeprecationWarning), pytest.raises(ValueError, match="6"):
        FormMessage(6)


# FormParser (urlencoded), through request.form()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "items"),
    [
        pytest.param(b"a=1&b=2&a=3", [["a", "1"], ["b", "2"], ["a", "3"]], id="repeated-keys"),
        pytest.param(
            b"q=a+b&p%2Bq=%C3%A9t%C3%A9&bad=%ZZ%4&twice=%2526",
            [["q", "a b"], ["p+q", "été"], ["bad", "%ZZ%4"], ["twice", "%26"]],
            id="plus-and-percent",
        ),
        pytest.param(b"v=\xe9t\xe9&w=\xc3\xa9", [["v", "été"], ["w", "Ã©"]], id="raw-bytes"),
        pytest.param(b"&a=1&&b=2&&&", [["a", "1"], ["b", "2"]], id="empty-fields"),
        pytest.param(
            b"c&=v&a=&e=1=2",
            [["c", ""], ["", "v"], ["a", ""], ["e", "1=2"]],
            id="without-equals-and-empty-parts",
        ),
        pytest.param(b"", [], id="empty-body"),
    ],
)
async def test_form_parser_parses_fields(body: bytes, items: list[list[str]]) -> None:
    assert await form_items(body, URLENCODED) == items


@pytest.mark.anyio
@pytest.mark.parametrize("empty_final_chunk", [False, True])
async def test_form_parser_joins_fields_split_over_one_byte_chunks(empty_final_chunk: bool) -> None:
    # Without an empty final chunk, the last field ends with the body's last byte.
    body = b"first=hello+world&second=%C3%A9t%C3%A9&&flag&last=end"
    receive = StreamedBody(chunked(body, 1), empty_final_chunk=empty_final_chunk)
    form = await Request(form_scope(URLENCODED), receive).form()
    assert list(form.multi_items()) == [
        ("first", "hello world"),
        ("second", "été"),
        ("flag", ""),
        ("last", "end"),
    ]
    assert receive.calls == len(body) + empty_final_chunk


@settings(max_examples=300, deadline=None)
@given(
    body=st.lists(st.sampled_from([b"a", b"b=", b"=", b"&", b"%41", b"+", b"\xe9"])).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_form_parser_gives_the_same_fields_however_the_body_is_split(
    body: bytes, cuts: list[int]
) -> None:
    # Empty chunks too: a cut repeated, or past the end.
    bounds = [0, *sorted(min(cut, len(body)) for cut in cuts), len(body)]
    chunks = [body[start:end] for start, end in itertools.pairwise(bounds)]
    whole, split = (anyio.run(form_items, parts, URLENCODED) for parts in ([body], chunks))
    assert split == whole


@pytest.mark.anyio
async def test_form_parser_max_fields() -> None:
    # Empty fields do not count; the field after the last allowed one is refused.
    assert len(await form_items(b"a=1&&&b=2&", URLENCODED, max_fields=2)) == 2
    with pytest.raises(MultiPartException) as info:
        await form_items(chunked(b"a=1&b=2&c", 1), URLENCODED, max_fields=2)
    assert info.value.message == "Too many fields. Maximum number of fields is 2."


@pytest.mark.anyio
@pytest.mark.parametrize("chunk_size", [None, 1], ids=["one-chunk", "1-byte-chunks"])
async def test_form_parser_max_part_size(chunk_size: int | None) -> None:
    def body(field_size: int, trailing: bytes = b"&b=2") -> list[bytes]:
        data = b"a=" + b"x" * (field_size - 2) + trailing
        return [data] if chunk_size is None else chunked(data, chunk_size)

    assert (await form_items(body(1024), URLENCODED, max_part_size=1024))[0] == ["a", "x" * 1022]
    for trailing in (b"&b=2", b""):  # the field over the limit is the last one, or not
        with pytest.raises(MultiPartException) as info:
            await form_items(body(1025, trailing), URLENCODED, max_part_size=1024)
        assert info.value.message == "Field exceeded maximum size of 1KB."


def test_form_parser_limits_in_an_app_answer_400_with_their_message(backend: Backend) -> None:
    client = TestClient(form_app(max_fields=2, max_part_size=1024), backend=backend)
    answers = [
        (response.status_code, response.text)
        for response in (
            client.post("/", content=b"a=1&b=2&c=3", headers={"content-type": URLENCODED}),
            client.post("/", content=b"a=" + b"x" * 2000, headers={"content-type": URLENCODED}),
        )
    ]
    assert answers == [
        (400, "Too many fields. Maximum number of fields is 2."),
        (400, "Field exceeded maximum size of 1KB."),
    ]


@pytest.mark.anyio
async def test_form_parser_refuses_a_huge_field_while_it_streams() -> None:
    # A 4 MiB field in 1 KiB chunks: refused once it passes 10 KiB, so the parser never holds
    # more than the limit and a chunk, and never reads the rest.
    receive = StreamedBody(itertools.chain([b"a="], itertools.repeat(b"x" * 1024, 4096)))
    request = Request(form_scope(URLENCODED), receive)
    with pytest.raises(MultiPartException, match="Field exceeded maximum size of 10KB"):
        await request.form(max_part_size=10 * 1024)
    assert receive.calls <= 1 + 10 + 1


def test_form_parser_refuses_a_huge_field_in_one_chunk_before_a_copy() -> None:
    body = b"a=" + b"x" * (8 * 1024 * 1024)

    async def parse() -> str:
        try:
            await form_items(body, URLENCODED, max_part_size=1024)
        except MultiPartException as exc:
            return exc.message
        return "parsed"  # pragma: no cover - refused

    message, peak = traced_peak_growth(parse)
    assert message == "Field exceeded maximum size of 1KB."
    assert peak < 1024 * 1024  # a copy of the field would be 8 MiB


@pytest.mark.anyio
async def test_form_parser_stops_at_the_field_past_max_fields_inside_one_chunk() -> None:
    async def one_chunk() -> AsyncGenerator[bytes]:
        yield b"&".join(b"f%d=" % number for number in range(100_000))

    stream = one_chunk()
    parser = FormParser(Headers({"content-type": URLENCODED}), stream, max_fields=10)
    with pytest.raises(MultiPartException, match="Too many fields"):
        await parser.parse()
    await stream.aclose()
    assert parser._current_fields == 11  # the fields after it were never decoded


def test_urlencoded_form_works_without_python_multipart() -> None:
    result = run_python(
        textwrap.dedent(
            """
            import sys
            sys.modules['python_multipart'] = sys.modules['multipart'] = None
            from starlite import JSONResponse, Route, Starlite, TestClient

            async def echo(request):
                form = await request.form()
                return JSONResponse(list(form.multi_items()))

            app = Starlite(routes=[Route('/', echo, methods=['POST'])])
            print(TestClient(app).post('/', data={'a': '1', 'b': 'x+y'}).text)
            """
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[["a","1"],["b","x+y"]]'


def test_multipart_form_without_python_multipart_names_the_extra() -> None:
    result = run_python(
        textwrap.dedent(
            """
            import sys
            sys.modules['python_multipart'] = None
            import anyio
            from starlite import Request

            async def main():
                body = (b'--b\\r\\nContent-Disposition: form-data; name="a"\\r\\n\\r\\n'
                        b'1\\r\\n--b--\\r\\n')
                messages = [{'type': 'http.request', 'body': body}]
                async def receive():
                    return messages.pop(0)
                scope = {'type': 'http', 'method': 'POST', 'path': '/', 'query_string': b'',
                         'headers': [(b'content-type', b'multipart/form-data; boundary=b')]}
                try:
                    await Request(scope, receive).form()
                except ImportError as exc:
                    print(exc)

            anyio.run(main)
            """
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "This feature needs python-multipart: pip install 'starlite-asgi[multipart]', or, for a"
        " copied starlite.py, pip install python-multipart"
    )


# MultiPartParser, through request.form()


def test_multipart_form_has_fields_and_files(backend: Backend) -> None:
    client = TestClient(form_app(), backend=backend)
    response = client.post(
        "/",
        data={"title": "two files", "tags": ["a", "b"]},
        files=[
            ("docs", ("a.txt", b"first file", "text/plain")),
            ("docs", ("b.bin", b"\x00\x01\xff", "application/octet-stream")),
            ("image", ("c.png", b"\x89PNG", "image/png")),
        ],
    )
    assert response.status_code == 200
    docs_a = {"filename": "a.txt", "content_type": "text/plain", "size": 10, "data": "first file"}
    docs_b = {
        "filename": "b.bin",
        "content_type": "application/octet-stream",
        "size": 3,
        "data": "\x00\x01\xff",
    }
    image = {"filename": "c.png", "content_type": "image/png", "size": 4, "data": "\x89PNG"}
    assert response.json() == [
        ["title", "two files"],
        ["tags", "a"],
        ["tags", "b"],
        ["docs", docs_a],
        ["docs", docs_b],
        ["image", image],
    ]


@pytest.mark.anyio
async def test_multipart_part_headers_are_kept_and_files_start_at_zero() -> None:
    body = multipart(
        part("f", b"data", filename="f.txt", content_type="text/csv", headers=[b"X-Custom: yes"]),
        part("g", b"raw", filename="g"),
        part("text", b"value", content_type="text/plain"),
        b'content-disposition: FORM-DATA; NAME="h"; FileName="h.txt"\r\n\r\nh',
    )
    async with form_request(body).form() as form:
        f, g = form["f"], form["g"]
        assert isinstance(f, UploadFile)
        assert isinstance(g, UploadFile)
        assert (f.content_type, f.headers["x-custom"]) == ("text/csv", "yes")
        assert 'filename="f.txt"' in f.headers["content-disposition"]
        assert g.content_type is None
        assert (f.file.tell(), f.size, await f.read()) == (0, 4, b"data")
        assert form["text"] == "value"  # a part without a filename is a field, whatever its type
        h = form["h"]  # header and parameter names are case-insensitive
        assert isinstance(h, UploadFile)
        assert h.filename == "h.txt"


@pytest.mark.anyio
async def test_multipart_parser_calls_its_public_on_methods_so_a_subclass_may_override_one() -> (
    None
):
    seen: list[bytes] = []

    class Noting(MultiPartParser):
        def on_part_data(self, data: bytes, start: int, end: int) -> None:
            seen.append(bytes(data[start:end]))
            super().on_part_data(data, start, end)

    async def stream() -> AsyncIterator[bytes]:
        yield multipart(part("a", b"1"), part("f", b"xyz", filename="f.txt"))

    parser = Noting(Headers({"content-type": MULTIPART}), stream())
    form = await parser.parse()
    try:
        assert b"".join(seen) == b"1xyz"
        assert parser.items == form.multi_items()  # Starlette's public attribute
    finally:
        await form.close()
    assert MultiPartParser.max_part_size == parser.max_part_size == 1024 * 1024


def traced_peak_growth(parse: Callable[[], Awaitable[Any]]) -> tuple[Any, int]:
    """What `parse()` returns (run on asyncio) and the most memory it held at once, in bytes."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = anyio.run(parse)
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_multipart_file_sent_in_one_large_chunk_is_copied_only_into_its_file() -> None:
    size = 8 * 1024 * 1024
    body = multipart(part("f", b"x" * size, filename="big.bin"))

    async def parse() -> int:
        async with form_request(body).form() as form:
            upload = form["f"]
            assert isinstance(upload, UploadFile)
            return upload.size or 0

    parsed_size, peak = traced_peak_growth(parse)
    assert parsed_size == size
    # The spool (1 MiB in memory, then on disk) and small change; a copy of the data: 8 MiB.
    assert peak < 3 * 1024 * 1024


def test_multipart_field_over_its_limit_in_one_large_chunk_is_refused_before_a_copy() -> None:
    body = multipart(part("text", b"x" * (8 * 1024 * 1024)))

    async def parse() -> str:
        try:
            await form_request(body).form(max_part_size=1024 * 1024)
        except MultiPartException as exc:
            return exc.message
        return "parsed"

    message, peak = traced_peak_growth(parse)
    assert message == "Part exceeded maximum size of 1024KB."
    assert peak < 2 * 1024 * 1024


@pytest.mark.anyio
async def test_multipart_empty_file_empty_field_and_empty_form() -> None:
    empty_file = {"filename": "", "content_type": None, "size": 0, "data": ""}
    body = multipart(part("f", b"", filename=""), part("t", b""))
    assert await form_items(body) == [["f", empty_file], ["t", ""]]
    assert await form_items(multipart()) == []  # the closing delimiter alone


@pytest.mark.anyio
@pytest.mark.parametrize("chunks", [[], [b""], [b"", b""]], ids=["none", "one", "two"])
async def test_an_empty_multipart_body_is_an_empty_form(chunks: list[bytes]) -> None:
    assert await form_items(chunks) == []
    answer = await Server(receive=StreamedBody(chunks)).run(form_app(), form_scope(MULTIPART))
    assert answer.status == 200
    assert json.loads(answer.body) == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        pytest.param(
            [
                part("before", b"caf\xc3\xa9"),
                part("_charset_", b"iso-8859-1"),
                part("after", b"caf\xc3\xa9"),
                part("latin", b"caf\xe9"),
                part(b"nom-\xe9", b"x", filename=b"f-\xe9"),
            ],
            [
                ["before", "café"],
                ["_charset_", "iso-8859-1"],
                ["after", "cafÃ©"],
                ["latin", "café"],
                ["nom-é", {"filename": "f-é", "content_type": None, "size": 1, "data": "x"}],
            ],
            id="latin-1-for-values-names-and-filenames-after-it",
        ),
        pytest.param(
            [part("_charset_", b"no-such-charset"), part("name", b"caf\xc3\xa9")],
            [["_charset_", "no-such-charset"], ["name", "café"]],
            id="unknown-charset-is-utf-8",
        ),
        pytest.param(
            [part(b"n\xe9", b"v\xe9\xff"), part("ok", "é".encode())],
            [["né", "vé\xff"], ["ok", "é"]],
            id="no-charset-non-utf-8-falls-back-to-latin-1",
        ),
    ],
)
async def test_multipart_charset_field_sets_the_encoding(
    parts: list[bytes], expected: list[list[Any]]
) -> None:
    assert await form_items(multipart(*parts)) == expected


@pytest.mark.anyio
async def test_multipart_content_type_charset_decodes_names_values_and_filenames() -> None:
    body = multipart(part(b"nom-\xe9", b"caf\xe9"), part("f", b"x", filename=b"f-\xe9"))
    items = await form_items(body, MULTIPART + "; charset=iso-8859-1")
    assert items == [
        ["nom-é", "café"],
        ["f", {"filename": "f-é", "content_type": None, "size": 1, "data": "x"}],
    ]
    # A charset Python does not know is UTF-8, and what fails to decode there is latin-1.
    body = multipart(part("a", "é".encode()), part("b", b"\xe9"))
    items = await form_items(body, MULTIPART + "; charset=no-such-charset")
    assert items == [["a", "é"], ["b", "é"]]


@pytest.mark.anyio
async def test_multipart_content_type_charset_is_looked_up_once() -> None:
    searched: list[str] = []

    def search(name: str) -> None:
        searched.append(name)

    body = multipart(part("one", b"1"), part("two", b"2"), part("three", b"3"))
    codecs.register(search)
    try:
        items = await form_items(body, MULTIPART + "; charset=starlite-unknown-charset")
    finally:
        codecs.unregister(search)
    assert items == [["one", "1"], ["two", "2"], ["three", "3"]]
    assert searched == ["starlite_unknown_charset"]


# Sent (between the quotes of filename="...") and what the app must see.
PATH_LIKE_FILENAMES = {
    b"../../etc/passwd": "../../etc/passwd",
    b"/etc/passwd": "/etc/passwd",
    b"..": "..",
    rb"C:\\evil\\x.txt": "C:\\evil\\x.txt",  # RFC 9110 quoted-pairs
    b"a;b.txt": "a;b.txt",
    b'a; name="other".txt': 'a; name="other".txt',
    rb"a\"b.txt": 'a"b.txt',
    b"we%22ird.txt": "we%22ird.txt",  # as browsers escape a quote: kept as sent
    "café ✓.txt".encode(): "café ✓.txt",
    b"caf\xe9.txt": "café.txt",  # not UTF-8: latin-1
}


@pytest.mark.anyio
async def test_multipart_path_like_and_odd_filenames_are_kept_as_data() -> None:
    body = multipart(*(part("f", b"content", filename=sent) for sent in PATH_LIKE_FILENAMES))
    async with form_request(body).form() as form:
        uploads = [upload for upload in form.getlist("f") if isinstance(upload, UploadFile)]
        assert [upload.filename for upload in uploads] == list(PATH_LIKE_FILENAMES.values())
        assert [await upload.read() for upload in uploads] == [b"content"] * len(uploads)


@pytest.mark.anyio
async def test_multipart_windows_path_filename_as_browsers_send_it_keeps_its_backslashes() -> None:
    # Browsers do not escape a backslash in a filename (WHATWG multipart/form-data encoding:
    # only '"', CR and LF are escaped, as %22, %0D, %0A), so a Windows path arrives raw.
    body = multipart(part("f", b"content", filename=rb"C:\evil\x.txt"))
    items = await form_items(body)
    assert items[0][1]["filename"] == "C:\\evil\\x.txt"


def test_path_like_filename_never_creates_a_file_there(backend: Backend, tmp_path: Path) -> None:
    target = tmp_path / "uploads" / ".." / "planted.txt"
    client = TestClient(form_app(), backend=backend)
    response = client.post("/", files={"f": (str(target), b"x" * (SPOOL_MAX_SIZE + 10))})
    assert response.status_code == 200
    assert response.json()[0][1]["filename"] == str(target)
    assert list(tmp_path.iterdir()) == []  # the data went to an anonymous temporary file


# Content that contains the boundary's text, without being a delimiter (CRLF "--boundary"
# followed by CRLF or "--").
CONTENT_LIKE_BOUNDARIES = [
    b"--boundar",
    b"\r\n--boundar\r\n",
    b"--boundary",
    b"x\r\n--boundaryX\r\ny",
    b"a--boundary--b\r\n--boundar--",
    b"\r\n\r\n--\r\n-",
]


@pytest.mark.anyio
@pytest.mark.parametrize("chunk_size", [None, 1], ids=["one-chunk", "one-byte-chunks"])
async def test_multipart_boundary_text_inside_content_is_data(chunk_size: int | None) -> None:
    body = multipart(
        *(part("f", content, filename="f") for content in CONTENT_LIKE_BOUNDARIES),
        *(part("t", content) for content in CONTENT_LIKE_BOUNDARIES),
    )
    items = await form_items(body if chunk_size is None else chunked(body, chunk_size))
    files = [value["data"].encode("latin-1") for name, value in items if name == "f"]
    fields = [value.encode() for name, value in items if name == "t"]
    assert files == fields == CONTENT_LIKE_BOUNDARIES


@pytest.mark.anyio
async def test_multipart_valid_boundaries() -> None:
    for boundary in ("b", "x" * 70, "----WebKitFormBoundary7MA4YWxkTrZu0gW", "a'()+_,-./:=? b"):
        body = multipart(part("a", b"1"), boundary=boundary)
        assert await form_items(body, f'multipart/form-data; boundary="{boundary}"') == [["a", "1"]]
    # A quoted parameter may hold ";" and what looks like another parameter.
    content_type = 'Multipart/Form-Data; x="a; boundary=evil"; Boundary=real'
    assert await form_items(multipart(part("a", b"1"), boundary="real"), content_type) == [
        ["a", "1"]
    ]


# More headers than starlite allows in one part, each short enough for python-multipart.
TOO_MANY_HEADER_BYTES = [b"X-Big-%d: " % n + b"h" * 4000 for n in range(5)]

# Every error of decisions6: (body, content type, limits, message).
MULTIPART_ERRORS = [
    pytest.param(
        multipart(part("a", b"1")),
        'multipart/form-data; x="boundary=b"',
        {},
        "Missing boundary in multipart.",
        id="missing-boundary",
    ),
    pytest.param(
        b"--\r\n",
        'multipart/form-data; boundary=""',
        {},
        "Invalid multipart data.",
        id="empty",
    ),
    pytest.param(
        multipart(part("a", b"1"), boundary="x" * 71),
        "multipart/form-data; boundary=" + "x" * 71,
        {},
        "Invalid multipart data.",
        id="boundary-of-71-chars",
    ),
    pytest.param(
        multipart(part("a", b"1"), final=False),
        MULTIPART,
        {},
        "The multipart body ended before its final boundary.",
        id="no-final-boundary",
    ),
    pytest.param(
        multipart(part("f", b"abcdef", filename="f"))[:-20],
        MULTIPART,
        {},
        "The multipart body ended before its final boundary.",
        id="truncated-in-a-part",
    ),
    pytest.param(
        b"-",
        MULTIPART,
        {},
        "The multipart body ended before its final boundary.",
        id="one-byte",
    ),
    pytest.param(
        f"--{BOUNDARY}".encode(),
        MULTIPART,
        {},
        "The multipart body ended before its final boundary.",
        id="first-delimiter-alone",
    ),
    pytest.param(
        multipart(b"\r\nvalue"),
        MULTIPART,
        {},
        'The Content-Disposition header field "name" must be provided.',
        id="part-without-headers",
    ),
    pytest.param(
        multipart(b'Content-Disposition: form-data; filename="f"\r\n\r\nx'),
        MULTIPART,
        {},
        'The Content-Disposition header field "name" must be provided.',
        id="part-without-name",
    ),
    pytest.param(
        multipart(*(part("f", b"x", filename=f"{n}.txt") for n in range(3))),
        MULTIPART,
        {"max_files": 2},
        "Too many files. Maximum number of files is 2.",
        id="too-many-files",
    ),
    pytest.param(
        multipart(*(part(f"f{n}", b"x") for n in range(3))),
        MULTIPART,
        {"max_fields": 2},
        "Too many fields. Maximum number of fields is 2.",
        id="too-many-fields",
    ),
    pytest.param(
        multipart(part("a", b"x" * 1025)),
        MULTIPART,
        {"max_part_size": 1024},
        "Part exceeded maximum size of 1KB.",
        id="part-too-large",
    ),
    pytest.param(
        multipart(part("a", b"1", headers=TOO_MANY_HEADER_BYTES)),
        MULTIPART,
        {},
        "A part's headers are too large.",
        id="headers-too-large",
    ),
    pytest.param(
        multipart(b"Bad Header Line\r\n\r\nx"),
        MULTIPART,
        {},
        "Invalid multipart data.",
        id="invalid-data",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("body", "content_type", "limits", "message"), MULTIPART_ERRORS)
async def test_multipart_error_is_400_in_an_app_and_multipart_exception_outside(
    body: bytes, content_type: str, limits: dict[str, Any], message: str
) -> None:
    with pytest.raises(MultiPartException) as info:
        await form_items(body, content_type, **limits)
    server = Server(receive=StreamedBody([body]))
    answer = await server.run(form_app(**limits), form_scope(content_type))
    assert answer.status == 400
    assert answer.body.decode() == info.value.message
    assert info.value.message == message


# Bodies python-multipart refuses, each with words of its own that name its state and offsets.
MALFORMED_MULTIPART = {
    "bad-boundary-char": (b"--bogus\r\n", "Expected boundary character"),
    "no-cr-after-boundary": (f"--{BOUNDARY}X\r\n".encode(), "Did not find CR at end of boundary"),
    "space-in-header-name": (multipart(b"Bad Header: x\r\n\r\nv"), "Found invalid character"),
    "header-without-lf": (
        multipart(b'Content-Disposition: form-data; name="a"\rX\r\n\r\nv'),
        "Did not find LF character at end of header",
    ),
    "empty-header-name": (multipart(b": x\r\n\r\nv"), "Found 0-length header"),
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "parser_words"), list(MALFORMED_MULTIPART.values()), ids=list(MALFORMED_MULTIPART)
)
async def test_malformed_multipart_is_a_fixed_400_and_the_parsers_words_go_to_the_log(
    body: bytes, parser_words: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="starlite.forms"):
        server = Server(receive=StreamedBody([body]))
        answer = await server.run(form_app(), form_scope(MULTIPART))
    assert answer.status == 400
    assert answer.body == b"Invalid multipart data."  # nothing of the parser's own
    (record,) = [record for record in caplog.records if record.name == "starlite.forms"]
    assert record.levelno == logging.INFO
    assert parser_words in record.getMessage()


@pytest.mark.anyio
async def test_multipart_limits_at_exactly_their_value_pass() -> None:
    body = multipart(
        part("f1", b"x" * 5000, filename="1"),  # max_part_size is not for files
        part("f2", b"x", filename="2"),
        part("a", b"x" * 1024),
        part("b", b"y"),
    )
    items = await form_items(body, max_files=2, max_fields=2, max_part_size=1024)
    assert [name for name, _ in items] == ["f1", "f2", "a", "b"]
    assert items[0][1]["size"] == 5000


@pytest.mark.anyio
async def test_multipart_oversized_field_is_refused_while_it_streams() -> None:
    # A 50 MiB field in 64 KiB chunks: refused once it passes max_part_size (1 MiB), having read
    # no more than the limit and a couple of chunks, never the rest of the body.
    chunk = 64 * 1024
    head = b'--boundary\r\nContent-Disposition: form-data; name="big"\r\n\r\n'
    fifty_mib = itertools.chain([head], itertools.repeat(b"x" * chunk, 50 * 1024 * 1024 // chunk))
    receive = StreamedBody(fifty_mib)
    with pytest.raises(MultiPartException, match="Part exceeded maximum size of 1024KB"):
        await Request(form_scope(), receive).form()
    assert receive.bytes_given <= len(head) + 1024 * 1024 + 2 * chunk
    assert receive.calls <= 1 + 1024 * 1024 // chunk + 2


@pytest.mark.anyio
async def test_multipart_large_file_rolls_over_to_disk_off_the_loop(
    spools: list[RecordingSpool],
) -> None:
    loop_thread = threading.get_ident()
    data = bytes(range(256)) * (3 * SPOOL_MAX_SIZE // 256)
    body = multipart(part("small", b"s", filename="s"), part("big", data, filename="b"))
    request = form_request(chunked(body, 100_000))
    form = await request.form()
    small, big = form["small"], form["big"]
    assert isinstance(small, UploadFile)
    assert isinstance(big, UploadFile)
    assert (on_disk(small.file), on_disk(big.file)) == (False, True)
    assert big.size == len(data)
    assert await big.read() == data
    await request.close()
    assert [spool.closed for spool in spools] == [True, True]
    assert any(before != after for _, _, before, after in spools[1].calls)  # it rolled over
    assert all(spool.disk_io_off(loop_thread) for spool in spools)


# Content-Type headers of 200 KB crafted to make a backtracking parameter parser slow.
SLOW_CONTENT_TYPES = [
    "multipart/form-data; boundary=x" + '";' * 100_000,
    'multipart/form-data; boundary="' + "\\" * 200_000,
    'multipart/form-data; a="' * 40_000,
    "multipart/form-data; " + "a=b; " * 40_000,
    "multipart/form-data" + ";" * 200_000,
]


@pytest.mark.anyio
async def test_content_type_crafted_to_be_slow_is_answered_400_in_bounded_time() -> None:
    # Bounded by Server's wait, far above the milliseconds each takes: no timing threshold.
    for content_type in SLOW_CONTENT_TYPES:
        body = multipart(part("a", b"1"))
        server = Server(receive=StreamedBody([body]))
        answer = await server.run(form_app(), form_scope(content_type))
        assert answer.status == 400


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "limits"),
    [
        pytest.param(
            multipart(part("f", b"1", filename="1"), part("g", b"2", filename="2")),
            {"max_files": 1},
            id="too-many-files",
        ),
        pytest.param(
            multipart(
                part("f", b"x" * (SPOOL_MAX_SIZE + 1), filename="1"),
                part("t", b"x" * 2000),
            ),
            {"max_part_size": 1024},
            id="part-too-large-after-a-file-on-disk",
        ),
    ],
)
async def test_multipart_error_closes_the_files_already_created(
    spools: list[RecordingSpool], body: bytes, limits: dict[str, Any]
) -> None:
    with pytest.raises(MultiPartException):
        await form_items(chunked(body, 4096), **limits)
    assert spools
    assert all(spool.closed for spool in spools)


def test_multipart_error_in_an_app_closes_the_files(
    backend: Backend, spools: list[RecordingSpool]
) -> None:
    body = multipart(part("f", b"1", filename="1"), b"Bad Header\r\n\r\nx")
    client = TestClient(form_app(), backend=backend)
    response = client.post("/", content=body, headers={"content-type": MULTIPART})
    assert response.status_code == 400
    assert len(spools) == 1
    assert spools[0].closed


@pytest.mark.anyio
async def test_multipart_files_are_closed_when_parsing_is_cancelled(
    spools: list[RecordingSpool],
) -> None:
    head = multipart(part("f", b"x" * 100, filename="f"), final=False)
    waiting = anyio.Event()

    async def receive() -> Message:
        if not waiting.is_set():
            waiting.set()
            return {"type": "http.request", "body": head, "more_body": True}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def parse() -> None:
        await Request(form_scope(), receive).form()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(parse)
            await waiting.wait()
            await anyio.wait_all_tasks_blocked()
            task_group.cancel_scope.cancel()
    assert len(spools) == 1
    assert spools[0].closed


# ==== Requests ====


class ScriptedReceive:
    """An ASGI `receive` that returns the given messages in order and counts the calls."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.messages = list(messages)
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if not self.messages:
            raise AssertionError("receive() called after the scripted messages ran out")
        return self.messages.pop(0)


def body_message(body: bytes, more_body: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more_body}


DISCONNECT = {"type": "http.disconnect"}


async def drain(stream: AsyncIterator[bytes], into: list[bytes] | None = None) -> None:
    """Read `stream` to its end, keeping the chunks in `into` if given."""
    async for chunk in stream:
        if into is not None:
            into.append(chunk)


async def receive_nothing_yet() -> dict[str, Any]:
    """A `receive` whose next message has not arrived: it blocks until cancelled."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")  # pragma: no cover


class ArrivingReceive:
    """An ASGI `receive` whose messages arrive when the test says (`arrive`): a message that
    has arrived is returned at once, and with none it waits, taking nothing, until cancelled."""

    def __init__(self, *messages: Message) -> None:
        self.messages = list(messages)

    def arrive(self, message: Message) -> None:
        self.messages.append(message)

    async def __call__(self) -> Message:
        if not self.messages:
            await receive_nothing_yet()
        return self.messages.pop(0)


def json_app(handler: Any) -> Any:
    """A plain ASGI app answering with JSONResponse(await handler(request))."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        response = JSONResponse(await handler(request))
        await response(scope, receive, send)

    return app


# cookie_parser


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ("a=1;b=2", {"a": "1", "b": "2"}),
        ("a=1; junk", {"a": "1", "": "junk"}),
        ('a="quoted value"', {"a": "quoted value"}),
        ("a=1=2", {"a": "1=2"}),
        ("a=; b=2", {"a": "", "b": "2"}),
        ("  a  =  1  ;  ", {"a": "1"}),
        ("a=1; a=2", {"a": "2"}),
        ("key:term=value:term", {"key:term": "value:term"}),
        ("name=café", {"name": "café"}),
        ("", {}),
        (";;; ;", {}),
        ("=", {}),
        ("a=1; =; b=2", {"a": "1", "b": "2"}),
        ("a b=c d", {"a b": "c d"}),
        ('a="unterminated', {"a": '"unterminated'}),
        ("a=\x00\x01; b=2", {"a": "\x00\x01", "b": "2"}),
    ],
)
def test_cookie_parser_parses_like_a_browser_and_skips_bad_chunks(
    cookie: str, expected: dict[str, str]
) -> None:
    assert cookie_parser(cookie) == expected


@given(st.text())
def test_cookie_parser_never_raises_on_arbitrary_text(cookie: str) -> None:
    result = cookie_parser(cookie)
    assert isinstance(result, dict)
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in result.items())
    assert all(";" not in key and "=" not in key for key in result)


# HTTPConnection


def test_http_connection_is_a_read_only_mapping_over_the_scope() -> None:
    scope = make_scope("/p")
    connection = HTTPConnection(scope)
    assert connection.scope is scope
    assert connection["path"] == "/p"
    assert len(connection) == len(scope)
    assert set(connection) == set(scope)


def test_http_connections_are_equal_only_to_themselves() -> None:
    scope = make_scope("/p")
    first, second = HTTPConnection(scope), HTTPConnection(scope)
    assert first == first
    assert first != second
    assert len({first, second}) == 2


def test_http_connection_accepts_a_websocket_scope() -> None:
    scope = make_scope("/ws", type="websocket", scheme="ws")
    connection = HTTPConnection(scope)
    assert connection.url == "ws://example.org/ws"


def test_request_exposes_method_app_and_receive() -> None:
    app = object()
    receive = ScriptedReceive()
    request = Request(make_scope("/p", method="PATCH", app=app), receive)
    assert request.method == "PATCH"
    assert request.app is app
    assert request.receive is receive


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
def test_request_refuses_a_scope_that_is_not_http(scope_type: str) -> None:
    with pytest.raises(ValueError, match="'http' scope"):
        Request(make_scope(type=scope_type))


def test_http_connection_refuses_a_lifespan_scope() -> None:
    with pytest.raises(ValueError, match="'http' or 'websocket'"):
        HTTPConnection({"type": "lifespan"})


# url, base_url, headers, query_params, path_params, client, state


def test_request_url_and_base_url_include_the_root_path() -> None:
    scope = make_scope("/sub/items/1", query_string=b"x=1", root_path="/sub")
    request = Request(scope)
    assert request.url == "http://example.org/sub/items/1?x=1"
    assert request.base_url == "http://example.org/sub/"


def test_request_base_url_without_root_path_is_the_site_root() -> None:
    request = Request(
        make_scope(
            "/items", query_string=b"x=1", headers=[(b"host", b"example.org:8000")], scheme="https"
        )
    )
    assert request.base_url == "https://example.org:8000/"
    assert request.base_url.query == ""


def test_request_url_keeps_invalid_percent_encoding_in_path_and_query() -> None:
    request = Request(make_scope("/caf%zz/%", query_string=b"q=%zz&r=%E2%82%AC&s=%"))
    assert request.url.path == "/caf%zz/%"
    assert request.url.query == "q=%zz&r=%E2%82%AC&s=%"
    assert dict(request.query_params) == {"q": "%zz", "r": "€", "s": "%"}


@pytest.mark.parametrize(
    "host", [b"exa mple.com", b"[::1", b"host:port", b"host:99999", b"", b"\xff"]
)
def test_request_url_ignores_a_malformed_host_header(host: bytes) -> None:
    request = Request(make_scope("/p", headers=[(b"host", host)], server=("10.1.2.3", 8080)))
    assert request.url == "http://10.1.2.3:8080/p"
    assert request.base_url == "http://10.1.2.3:8080/"


def test_request_url_with_absent_host_header_uses_the_server() -> None:
    request = Request(make_scope("/p", headers=[], server=("10.1.2.3", 80)))
    assert request.url == "http://10.1.2.3/p"


def test_request_url_with_ipv6_host_header() -> None:
    request = Request(make_scope("/p", headers=[(b"host", b"[2001:db8::1]:8443")], scheme="https"))
    assert request.url == "https://[2001:db8::1]:8443/p"
    assert request.url.hostname == "2001:db8::1"
    assert request.url.port == 8443


def test_request_headers_decode_non_utf8_bytes_as_latin1() -> None:
    scope = make_scope(headers=[(b"host", b"example.org"), (b"x-raw", b"\xff\xfe\xe9")])
    assert Request(scope).headers["x-raw"] == "\xff\xfe\xe9"


def test_request_headers_accept_a_tuple_of_headers_in_the_scope() -> None:
    scope = make_scope(headers=((b"host", b"example.org"), (b"accept", b"a"), (b"accept", b"b")))
    assert Request(scope).headers.getlist("accept") == ["a", "b"]


def test_request_query_params_keep_repeated_and_blank_values() -> None:
    request = Request(make_scope("/", query_string=b"a=1&a=2&b=&c"))
    assert request.query_params.getlist("a") == ["1", "2"]
    assert request.query_params["b"] == ""
    assert request.query_params["c"] == ""


def test_request_path_params_default_to_empty_and_come_from_the_scope() -> None:
    assert Request(make_scope()).path_params == {}
    assert Request(make_scope(path_params={"id": 7})).path_params == {"id": 7}


def test_request_client_is_an_address_or_none() -> None:
    request = Request(make_scope(client=("10.0.0.7", 4321)))
    assert request.client == Address("10.0.0.7", 4321)
    assert request.client is not None
    assert request.client.host == "10.0.0.7"
    assert request.client.port == 4321
    assert Request(make_scope(client=None)).client is None
    scope = make_scope()
    del scope["client"]
    assert Request(scope).client is None


def test_request_state_is_stored_in_the_scope_state_dict() -> None:
    scope = make_scope(state={"shared": 1})
    request = Request(scope)
    assert request.state.shared == 1
    request.state.added = 2
    assert scope["state"] == {"shared": 1, "added": 2}
    assert Request(scope).state.added == 2


def test_request_state_is_created_when_the_scope_has_none() -> None:
    scope = make_scope()
    request = Request(scope)
    request.state.value = "x"
    assert scope["state"] == {"value": "x"}


# cookies


def test_request_cookies_merge_every_cookie_header_and_skip_bad_chunks() -> None:
    scope = make_scope(
        headers=[
            (b"host", b"example.org"),
            (b"cookie", b'a=1; junk; b="quoted"'),
            (b"cookie", b"c=3; ;=; a=override"),
        ]
    )
    assert Request(scope).cookies == {"a": "override", "": "junk", "b": "quoted", "c": "3"}


def test_request_cookies_with_non_utf8_bytes_do_not_raise() -> None:
    scope = make_scope(
        headers=[(b"host", b"example.org"), (b"cookie", b"name=caf\xe9; other=\xff")]
    )
    assert Request(scope).cookies == {"name": "café", "other": "\xff"}


def test_request_without_cookie_header_has_no_cookies() -> None:
    assert Request(make_scope()).cookies == {}


def test_cookies_from_several_cookie_headers_are_all_read() -> None:
    # HTTP/2 lets a client split its cookies over several Cookie fields (RFC 9113 §8.2.3).
    scope = make_scope(headers=[(b"cookie", b"a=1; b=2"), (b"cookie", b"c=3")])
    assert Request(scope).cookies == {"a": "1", "b": "2", "c": "3"}


# body, stream, json


@pytest.mark.anyio
async def test_request_body_joins_every_chunk() -> None:
    receive = ScriptedReceive(
        body_message(b"hel", True), body_message(b"", True), body_message(b"lo")
    )
    request = Request(make_scope(method="POST"), receive)
    assert await request.body() == b"hello"


@pytest.mark.anyio
async def test_request_body_is_cached_and_read_only_once() -> None:
    receive = ScriptedReceive(body_message(b"data"))
    request = Request(make_scope(method="POST"), receive)
    assert await request.body() == b"data"
    assert await request.body() == b"data"
    assert receive.calls == 1


@pytest.mark.anyio
async def test_request_body_of_a_message_without_body_key_is_empty() -> None:
    request = Request(make_scope(), ScriptedReceive({"type": "http.request"}))
    assert await request.body() == b""


@pytest.mark.anyio
async def test_request_stream_yields_chunks_as_they_arrive() -> None:
    receive = ScriptedReceive(
        body_message(b"a", True), body_message(b"b", True), body_message(b"c")
    )
    request = Request(make_scope(method="POST"), receive)
    chunks = [chunk async for chunk in request.stream()]
    assert b"".join(chunks) == b"abc"
    assert [chunk for chunk in chunks if chunk] == [b"a", b"b", b"c"]


@pytest.mark.anyio
async def test_request_stream_after_body_replays_the_cached_body() -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(b"cached")))
    await request.body()
    assert b"".join([chunk async for chunk in request.stream()]) == b"cached"


@pytest.mark.anyio
async def test_request_stream_ends_with_an_empty_chunk_when_read_and_when_replayed() -> None:
    receive = ScriptedReceive(body_message(b"a", True), body_message(b"", True), body_message(b"b"))
    request = Request(make_scope(method="POST"), receive)
    assert [chunk async for chunk in request.stream()] == [b"a", b"b", b""]
    cached = Request(make_scope(method="POST"), ScriptedReceive(body_message(b"ab")))
    await cached.body()
    assert [chunk async for chunk in cached.stream()] == [b"ab", b""]
    empty = Request(make_scope(), ScriptedReceive(body_message(b"")))
    await empty.body()
    assert [chunk async for chunk in empty.stream()] == [b""]


@pytest.mark.anyio
async def test_request_stream_consumed_twice_raises_runtime_error() -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(b"once")))
    assert b"".join([chunk async for chunk in request.stream()]) == b"once"
    with pytest.raises(RuntimeError, match=r"^Stream consumed$"):
        await drain(request.stream())


@pytest.mark.anyio
async def test_two_streams_of_one_request_share_its_body_and_both_see_its_end() -> None:
    receive = ScriptedReceive(
        body_message(b"1", True), body_message(b"2", True), body_message(b"3")
    )
    request = Request(make_scope(method="POST"), receive)
    first, second = request.stream(), request.stream()
    assert [await anext(first), await anext(second), await anext(first)] == [b"1", b"2", b"3"]
    # The body has ended: neither waits for more (the receive would fail if asked).
    assert [await anext(first), await anext(second)] == [b"", b""]
    for stream in (first, second):
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
    assert receive.calls == 3


@pytest.mark.anyio
async def test_request_body_after_consuming_the_stream_raises_runtime_error() -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(b"once")))
    await drain(request.stream())
    with pytest.raises(RuntimeError, match=r"(?i)consumed"):
        await request.body()


@pytest.mark.anyio
async def test_request_has_no_body_attribute_until_the_body_is_read() -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(b"data")))
    assert not hasattr(request, "_body")  # as in Starlette, which subclasses rely on
    assert await request.body() == b"data"
    assert request._body == b"data"


class GzipRequest(Request):
    """FastAPI's documented custom request class ("Custom Request and APIRoute class"), as the
    docs write it: the body decompressed when the client sent it gzipped."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            body = await super().body()
            if "gzip" in self.headers.getlist("Content-Encoding"):
                body = gzip.decompress(body)
            self._body = body
        return self._body


def with_gzip_request(endpoint: Callable[[Request], Awaitable[Response]]) -> Endpoint:
    """`endpoint` given a GzipRequest of each request (what FastAPI's route_class does)."""

    async def wrapper(request: Request) -> Response:
        return await endpoint(GzipRequest(request.scope, request.receive))

    return wrapper


async def gzip_json(request: Request) -> Response:
    return JSONResponse(await request.json())


async def gzip_form(request: Request) -> Response:
    await request.body()  # decompressed: what form() then reads
    return JSONResponse(list((await request.form()).multi_items()))


async def gzip_stream(request: Request) -> Response:
    await request.body()
    return Response(b"".join([chunk async for chunk in request.stream()]))


class ReadsBodyFirst(BaseHTTPMiddleware):
    """Reads the raw body in dispatch, for the app below to read again."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        await request.body()
        return await call_next(request)


@pytest.mark.parametrize("middleware", [[], [Middleware(ReadsBodyFirst)]], ids=["bare", "bhm"])
def test_the_gzip_request_recipe_decompresses_for_json_form_and_stream(
    middleware: list[Middleware], backend: Backend
) -> None:
    routes = [
        Route(path, with_gzip_request(endpoint), methods=["POST"])
        for path, endpoint in [("/json", gzip_json), ("/form", gzip_form), ("/stream", gzip_stream)]
    ]
    client = TestClient(Starlite(routes=routes, middleware=middleware), backend=backend)
    gzipped = {"content-encoding": "gzip"}
    response = client.post("/json", content=gzip.compress(b'{"a": [1, 2]}'), headers=gzipped)
    assert response.json() == {"a": [1, 2]}
    assert client.post("/json", content=b'{"plain": true}').json() == {"plain": True}
    form_headers = {**gzipped, "content-type": "application/x-www-form-urlencoded"}
    response = client.post("/form", content=gzip.compress(b"a=1&b=2"), headers=form_headers)
    assert response.json() == [["a", "1"], ["b", "2"]]
    response = client.post("/stream", content=gzip.compress(b"x" * 1000), headers=gzipped)
    assert response.content == b"x" * 1000


@pytest.mark.anyio
async def test_a_body_a_subclass_sets_is_what_body_json_form_and_stream_read() -> None:
    class GivenBody(Request):
        """Sets its body itself, before anything is read."""

        def __init__(self, scope: Scope, receive: Receive) -> None:
            super().__init__(scope, receive)
            self._body = b"a=1&b=%7B%7D"

    headers = {"content-type": "application/x-www-form-urlencoded"}
    receive = ScriptedReceive()  # fails the test if asked: the body is never received
    request = GivenBody(make_scope(method="POST", headers=headers), receive)
    assert await request.body() == b"a=1&b=%7B%7D"
    assert [chunk async for chunk in request.stream()] == [b"a=1&b=%7B%7D", b""]
    assert list((await request.form()).multi_items()) == [("a", "1"), ("b", "{}")]
    json_request = GivenBody(make_scope(method="POST"), receive)
    json_request._body = b'{"given": 1}'
    assert await json_request.json() == {"given": 1}
    assert receive.calls == 0


@pytest.mark.anyio
async def test_request_json_parses_the_body_and_caches_it() -> None:
    receive = ScriptedReceive(
        body_message(b'{"a": [1, 2', True), body_message(b'], "b": "\xc3\xa9"}')
    )
    request = Request(make_scope(method="POST"), receive)
    assert await request.json() == {"a": [1, 2], "b": "é"}
    assert await request.json() == {"a": [1, 2], "b": "é"}
    assert receive.calls == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"{'a': 1}", b"[1, 2", b"NaNs", b'{"a": 1} trailing']
)
async def test_request_json_on_invalid_body_raises_json_decode_error(body: bytes) -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(body)))
    with pytest.raises(json.JSONDecodeError):
        await request.json()


# What I-JSON (RFC 7493) forbids, though Python's json reads it, with the error's message.
NOT_I_JSON = {
    "nan": (b'{"a": NaN}', "NaN is not JSON"),
    "infinity": (b"[Infinity]", "Infinity is not JSON"),
    "minus-infinity": (b"-Infinity", "-Infinity is not JSON"),
    "overflow": (b"[1e400]", "Number out of range: 1e400"),
    "minus-overflow": (b'{"n": -1.5e309}', "Number out of range: -1.5e309"),
    "lone-high-surrogate": (b'["\\ud800"]', "Lone UTF-16 surrogate"),
    "lone-low-surrogate": (b'"a\\uDC00b"', "Lone UTF-16 surrogate"),
    "lone-surrogate-in-a-key": (b'{"\\udbff": 1}', "Lone UTF-16 surrogate"),
    "surrogates-reversed": (b'"\\ude00\\ud83d"', "Lone UTF-16 surrogate"),
    "surrogate-after-escaped-backslash": (b'"\\\\\\ud800"', "Lone UTF-16 surrogate"),
    "repeated-name": (b'{"a": 1, "b": {"a": 2, "a": 3}}', "Repeated name in an object"),
    "not-utf8": (b'{"a": "\xff\xfe\xfd"}', "Invalid UTF-8"),
    "surrogate-in-utf8": (b'"\xed\xa0\x80"', "Invalid UTF-8"),
    "utf16": ('{"a": 1}'.encode("utf-16"), "Invalid UTF-8"),
    "too-deep": (b"[" * 513 + b"]" * 513, "Nested deeper than 512 levels"),
    "too-deep-objects": (b'{"a":' * 513 + b"1" + b"}" * 513, "Nested deeper than 512 levels"),
    "int-over-4300-digits": (b"1" * 4301, "Exceeds the limit"),
}


@pytest.mark.anyio
@pytest.mark.parametrize(("body", "message"), NOT_I_JSON.values(), ids=NOT_I_JSON.keys())
async def test_request_json_refuses_what_i_json_forbids_with_a_json_decode_error(
    body: bytes, message: str
) -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(body)))
    with pytest.raises(json.JSONDecodeError, match=re.escape(message)) as info:
        await request.json()
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, HTTPException)
    assert (info.value.status_code, info.value.detail) == (
        400,
        "The request body is not valid JSON.",
    )


@pytest.mark.anyio
async def test_request_json_error_says_where_a_refused_number_or_constant_stands() -> None:
    body = b'{"NaN": "1e400", "a\\"1e400": [11e400, 1e400]}'
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(body)))
    with pytest.raises(json.JSONDecodeError) as info:
        await request.json()
    assert (info.value.msg, info.value.pos) == ("Number out of range: 11e400", body.index(b"11e"))
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(b'["NaN", NaN]')))
    with pytest.raises(json.JSONDecodeError) as info:
        await request.json()
    assert (info.value.msg, info.value.pos, info.value.colno) == ("NaN is not JSON", 8, 9)


def json_depth(value: Any) -> int:
    """How deep arrays and objects nest in `value` (a scalar is at depth 0)."""
    if isinstance(value, list):
        return 1 + max(map(json_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(json_depth, value.values()), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\u/ é', max_size=6)
json_values = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ensure_ascii=st.booleans())
def test_json_depth_check_reads_strings_and_escapes_as_json_does(
    value: Any, ensure_ascii: bool
) -> None:
    data = json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8")
    for limit in range(5):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(starlite, "_MAX_JSON_DEPTH", limit)
            assert starlite._json_too_deep(data) == (json_depth(value) > limit)


# Valid I-JSON at its edges, and what it parses to.
I_JSON = {
    "big-int": (
        b"[123456789012345678901234567890, -9007199254740993]",
        [123456789012345678901234567890, -9007199254740993],
    ),
    "int-of-4300-digits": (b"7" * 4300, int("7" * 4300)),
    "unicode": ('{"caf\u00e9": "\u65e5\u672c \U0001f600"}'.encode(), {"café": "日本 😀"}),
    "escaped-surrogate-pair": (b'{"\\ud83d\\ude00": "\\uD83D\\uDE00"}', {"😀": "😀"}),
    "escaped-backslash-then-u": (b'"\\\\ud800"', "\\ud800"),
    "other-escapes": (b'"\\"\\/\\b\\n\\u00e9"', '"/\b\né'),
    "byte-order-mark": (b"\xef\xbb\xbf[1]", [1]),
    "depth-512": (b"[" * 512 + b"]" * 512, json.loads("[" * 512 + "]" * 512)),
    "brackets-in-strings": (
        b'["' + b"[{" * 600 + b'", "\\"[[", "\\\\", {"a": "]]"}]',
        ["[{" * 600, '"[[', "\\", {"a": "]]"}],
    ),
    "underflow-is-zero": (b"[1e-400, 1.5, -0.0]", [0.0, 1.5, -0.0]),
    "same-name-at-two-levels": (b'{"a": {"a": 1}}', {"a": {"a": 1}}),
    "scalar": (b" null ", None),
}


@pytest.mark.anyio
@pytest.mark.parametrize(("body", "value"), I_JSON.values(), ids=I_JSON.keys())
async def test_request_json_reads_valid_i_json(body: bytes, value: Any) -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(body)))
    assert await request.json() == value


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000_000,
        b'{"a":[' * 1_000_000,
        b'["\\\\",' * 1_000_000,  # escaped backslashes, each before a bracket
    ],
    ids=["arrays", "objects", "escaped-backslashes"],
)
async def test_request_json_of_a_huge_hostile_body_is_refused_in_bounded_time(body: bytes) -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(body)))
    started = time.perf_counter()
    with pytest.raises(json.JSONDecodeError):  # never RecursionError
        await request.json()
    assert time.perf_counter() - started < 5  # about 0.3 s; quadratic time would take hours


@pytest.mark.anyio
async def test_request_json_with_a_million_escaped_brackets_in_a_string_is_read_at_once() -> None:
    body = b'["' + b'\\"[' * 1_000_000 + b'"]'  # \" keeps the brackets in the string
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(body)))
    started = time.perf_counter()
    assert await request.json() == ['"[' * 1_000_000]
    assert time.perf_counter() - started < 5


@pytest.mark.anyio
async def test_request_without_receive_channel_raises_runtime_error_on_body() -> None:
    request = Request(make_scope(method="POST"))
    with pytest.raises(RuntimeError, match=r"^Receive channel has not been made available$"):
        await request.body()


# disconnects


def test_client_disconnect_is_an_exception() -> None:
    assert issubclass(ClientDisconnect, Exception)


@pytest.mark.anyio
async def test_request_body_raises_client_disconnect_when_client_leaves_mid_body() -> None:
    receive = ScriptedReceive(body_message(b"partial", True), DISCONNECT)
    request = Request(make_scope(method="POST"), receive)
    with pytest.raises(ClientDisconnect):
        await request.body()
    assert await request.is_disconnected() is True
    assert receive.calls == 2


@pytest.mark.anyio
async def test_request_stream_yields_received_chunks_then_raises_client_disconnect() -> None:
    receive = ScriptedReceive(body_message(b"one", True), body_message(b"two", True), DISCONNECT)
    request = Request(make_scope(method="POST"), receive)
    chunks: list[bytes] = []
    with pytest.raises(ClientDisconnect):
        await drain(request.stream(), into=chunks)
    assert b"".join(chunks) == b"onetwo"


@pytest.mark.anyio
async def test_request_json_raises_client_disconnect_before_any_body() -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(DISCONNECT))
    with pytest.raises(ClientDisconnect):
        await request.json()


@pytest.mark.anyio
async def test_is_disconnected_is_false_while_no_message_is_waiting() -> None:
    request = Request(make_scope(), receive_nothing_yet)
    with anyio.fail_after(1):
        assert await request.is_disconnected() is False


@pytest.mark.anyio
async def test_is_disconnected_is_true_after_a_disconnect_message_and_stays_true() -> None:
    receive = ScriptedReceive(DISCONNECT)
    request = Request(make_scope(), receive)
    assert await request.is_disconnected() is True
    assert await request.is_disconnected() is True
    assert receive.calls == 1


@pytest.mark.anyio
async def test_is_disconnected_is_true_once_the_client_leaves_after_sending_the_body() -> None:
    receive = ScriptedReceive(body_message(b"done"), DISCONNECT)
    request = Request(make_scope(method="POST"), receive)
    assert await request.body() == b"done"
    assert await request.is_disconnected() is True


@pytest.mark.anyio
async def test_is_disconnected_is_false_when_the_next_message_is_body() -> None:
    request = Request(make_scope(), ScriptedReceive(body_message(b"x")))
    assert await request.is_disconnected() is False


@pytest.mark.anyio
async def test_is_disconnected_after_a_poll_took_the_empty_body_of_a_get_still_asks() -> None:
    receive = ArrivingReceive(body_message(b""))
    request = Request(make_scope(), receive)
    assert await request.is_disconnected() is False  # took the body: nothing says the client left
    assert await request.is_disconnected() is False  # nothing new yet
    receive.arrive(DISCONNECT)
    assert await request.is_disconnected() is True
    assert await request.body() == b""


@pytest.mark.anyio
@pytest.mark.parametrize("chunks_read", [0, 1, 2, 3], ids=["unread", "part", "all", "end"])
async def test_is_disconnected_sees_the_client_leave_however_much_of_the_body_was_read(
    chunks_read: int,
) -> None:
    receive = ArrivingReceive(body_message(b"a", True), body_message(b"b"))
    request = Request(make_scope(method="POST"), receive)
    stream = request.stream()
    read = [await anext(stream) for _ in range(chunks_read)]
    assert await request.is_disconnected() is False  # a poll may take what is left of the body
    receive.arrive(DISCONNECT)
    polls = [await request.is_disconnected() for _ in range(3)]
    assert polls[-1] is True
    # Each chunk a poll took is still there for the stream, and the stream still ends.
    assert b"".join(read) + b"".join([chunk async for chunk in stream]) == b"ab"


@pytest.mark.anyio
async def test_is_disconnected_keeps_a_body_chunk_it_reads_for_the_stream() -> None:
    # A server may hand over a buffered body chunk without waiting: polling must not lose it.
    receive = ScriptedReceive(body_message(b"first", more_body=True), body_message(b"second"))
    request = Request(make_scope(method="POST"), receive)
    assert await request.is_disconnected() is False
    assert await request.body() == b"firstsecond"


@pytest.mark.anyio
async def test_is_disconnected_sees_the_disconnect_of_a_receive_checking_cancellation_first() -> (
    None
):
    # As a trio memory channel does (hypercorn's receive under trio): a receive called in a
    # scope already cancelled raises before it looks, even with a message ready.
    ready: list[Message] = []
    arrived = anyio.Event()

    async def receive() -> Message:
        await anyio.lowlevel.checkpoint_if_cancelled()
        if not ready:
            await arrived.wait()
        return ready.pop(0)

    request = Request(make_scope(), receive)
    with anyio.fail_after(1):
        assert await request.is_disconnected() is False
        ready.append(DISCONNECT)
        arrived.set()
        assert await request.is_disconnected() is True


@pytest.mark.anyio
async def test_is_disconnected_raises_what_the_receive_raises() -> None:
    async def receive() -> Message:
        raise RuntimeError("the server's receive failed")

    with pytest.raises(RuntimeError, match="the server's receive failed"):
        await Request(make_scope(), receive).is_disconnected()


# early hints, server push


@pytest.mark.anyio
async def test_send_early_hints_sends_every_link_when_the_server_offers_the_extension() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = make_scope(extensions={"http.response.early_hint": {}})
    request = Request(scope, ScriptedReceive(), send)
    await request.send_early_hints(
        "</style.css>; rel=preload; as=style", "</app.js>; rel=preload; as=script"
    )
    assert sent == [
        {
            "type": "http.response.early_hint",
            "links": [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"],
        }
    ]


@pytest.mark.anyio
async def test_send_early_hints_without_a_send_channel_raises_runtime_error() -> None:
    request = Request(make_scope(extensions={"http.response.early_hint": {}}))
    with pytest.raises(RuntimeError, match=r"^Send channel has not been made available$"):
        await request.send_early_hints("</a.css>; rel=preload")


@pytest.mark.anyio
@pytest.mark.parametrize("extensions", [None, {}, {"http.response.push": {}}])
async def test_send_early_hints_does_nothing_without_the_extension(
    extensions: dict[str, Any] | None,
) -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)  # pragma: no cover

    scope = make_scope() if extensions is None else make_scope(extensions=extensions)
    await Request(scope, ScriptedReceive(), send).send_early_hints("</a.css>; rel=preload")
    assert sent == []


@pytest.mark.anyio
async def test_send_push_promise_copies_request_headers_when_push_is_offered() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = make_scope(
        headers=[(b"host", b"example.org"), (b"accept", b"text/css"), (b"cookie", b"secret=1")],
        extensions={"http.response.push": {}},
    )
    await Request(scope, ScriptedReceive(), send).send_push_promise("/style.css")
    assert len(sent) == 1
    assert sent[0]["type"] == "http.response.push"
    assert sent[0]["path"] == "/style.css"
    assert sent[0]["headers"] == [(b"accept", b"text/css")]


@pytest.mark.anyio
async def test_send_push_promise_does_nothing_without_the_extension() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)  # pragma: no cover

    await Request(make_scope(), ScriptedReceive(), send).send_push_promise("/style.css")
    assert sent == []


# Requests end to end through the TestClient


def test_request_attributes_seen_through_the_test_client() -> None:
    async def handler(request: Request) -> Any:
        return {
            "method": request.method,
            "url": str(request.url),
            "base_url": str(request.base_url),
            "path": request.url.path,
            "query": request.query_params.multi_items(),
            "header": request.headers["x-token"],
            "cookies": request.cookies,
            "client": list(request.client) if request.client else None,
        }

    client = TestClient(json_app(handler))
    response = client.get("/items/1?a=1&a=2&b=", headers={"X-Token": "abc", "Cookie": "s=1; junk"})
    assert response.json() == {
        "method": "GET",
        "url": "http://testserver/items/1?a=1&a=2&b=",
        "base_url": "http://testserver/",
        "path": "/items/1",
        "query": [["a", "1"], ["a", "2"], ["b", ""]],
        "header": "abc",
        "cookies": {"s": "1", "": "junk"},
        "client": ["testclient", 50000],
    }


def test_request_url_through_the_test_client_uses_root_path_for_base_url() -> None:
    async def handler(request: Request) -> Any:
        return {
            "url": str(request.url),
            "base_url": str(request.base_url),
            "root_path": request.scope["root_path"],
        }

    response = TestClient(json_app(handler), root_path="/sub").get("/sub/items")
    assert response.json() == {
        "url": "http://testserver/sub/items",
        "base_url": "http://testserver/sub/",
        "root_path": "/sub",
    }


def test_request_url_through_the_test_client_with_custom_base_url() -> None:
    async def handler(request: Request) -> Any:
        return {"url": str(request.url), "secure": request.url.is_secure}

    response = TestClient(json_app(handler), base_url="https://example.org:8443").get("/x")
    assert response.json() == {"url": "https://example.org:8443/x", "secure": True}


def test_request_json_body_posted_through_the_test_client() -> None:
    async def handler(request: Request) -> Any:
        return {"echo": await request.json(), "length": len(await request.body())}

    response = TestClient(json_app(handler)).post("/", json={"name": "café", "n": [1, 2]})
    assert response.status_code == 200
    assert response.json()["echo"] == {"name": "café", "n": [1, 2]}
    assert response.json()["length"] > 0


def test_request_invalid_json_through_the_test_client_raises_json_decode_error() -> None:
    async def handler(request: Request) -> Any:
        return await request.json()

    client = TestClient(json_app(handler))
    with pytest.raises(json.JSONDecodeError):
        client.post("/", content=b"{broken", headers={"content-type": "application/json"})


async def echo_json(request: Request) -> Response:
    return JSONResponse(await request.json())


@pytest.mark.parametrize(
    "body", [b"{broken", b"[NaN]", b'"\\ud800"', b"[1e400]", b"[" * 100_000, b'{"a":1,"a":2}']
)
def test_invalid_json_the_app_does_not_catch_is_a_400_with_a_short_fixed_text(
    body: bytes, backend: Backend
) -> None:
    client = TestClient(Starlite(routes=[Route("/", echo_json, methods=["POST"])]), backend=backend)
    response = client.post("/", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.text == "The request body is not valid JSON."


def test_valid_json_at_its_edges_is_echoed_through_an_app(backend: Backend) -> None:
    client = TestClient(Starlite(routes=[Route("/", echo_json, methods=["POST"])]), backend=backend)
    body = '{"n": 123456789012345678901234567890, "s": "caf\u00e9 \\ud83d\\ude00", "d": [[[]]]}'
    response = client.post("/", content=body.encode())
    assert response.status_code == 200
    assert response.json() == {"n": 123456789012345678901234567890, "s": "café 😀", "d": [[[]]]}


@pytest.mark.parametrize("caught", [ValueError, json.JSONDecodeError])
def test_an_apps_own_handler_for_value_error_answers_invalid_json(
    caught: type[Exception], backend: Backend
) -> None:
    def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=422)

    app = Starlite(
        routes=[Route("/", echo_json, methods=["POST"])], exception_handlers={caught: handler}
    )
    response = TestClient(app, backend=backend).post("/", content=b"[NaN]")
    assert response.status_code == 422
    assert response.json() == {"error": "NaN is not JSON: line 1 column 2 (char 1)"}


def test_an_app_that_catches_value_error_from_request_json_still_does(backend: Backend) -> None:
    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await request.json())
        except ValueError as exc:
            return PlainTextResponse(f"bad: {exc.msg}", status_code=422)  # type: ignore[attr-defined]

    app = Starlite(routes=[Route("/", endpoint, methods=["POST"])])
    response = TestClient(app, backend=backend).post("/", content=b'{"x": 1e999}')
    assert (response.status_code, response.text) == (422, "bad: Number out of range: 1e999")


def test_request_stream_through_the_test_client_collects_the_whole_body() -> None:
    async def handler(request: Request) -> Any:
        chunks = [chunk async for chunk in request.stream()]
        return {"body": b"".join(chunks).decode()}

    response = TestClient(json_app(handler)).post("/", content=b"x" * 10_000)
    assert response.json() == {"body": "x" * 10_000}


def test_request_state_sees_the_scope_state_given_by_the_test_client() -> None:
    async def handler(request: Request) -> Any:
        request.state.seen = True
        return {"state": dict(request.scope["state"])}

    response = TestClient(json_app(handler)).get("/")
    assert response.json() == {"state": {"seen": True}}


def test_request_is_not_disconnected_while_the_test_client_waits_for_the_response() -> None:
    async def handler(request: Request) -> Any:
        await request.body()
        return {"disconnected": await request.is_disconnected()}

    response = TestClient(json_app(handler)).post("/", content=b"abc")
    assert response.json() == {"disconnected": False}


# ---- Forms ----


def keep_upload_endpoint(stored: list[UploadFile]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that parses the form, keeps its upload "f" in `stored`, and answers
    whether that file is on disk."""

    async def keep_upload(request: Request) -> Response:
        upload = (await request.form())["f"]
        assert isinstance(upload, UploadFile)
        stored.append(upload)
        return PlainTextResponse(f"on disk: {on_disk(upload.file)}")

    return keep_upload


@pytest.mark.anyio
async def test_request_form_is_parsed_once_and_cached() -> None:
    receive = StreamedBody([b"a=1"])
    request = Request(form_scope(URLENCODED), receive)
    first = await request.form()
    calls = receive.calls
    second = await request.form(max_fields=0)  # the cached form: new limits change nothing
    assert second is first
    assert receive.calls == calls
    assert list(second.multi_items()) == [("a", "1")]


@pytest.mark.anyio
async def test_request_form_picks_the_parser_by_media_type_only() -> None:
    parsed = {
        "Application/X-WWW-Form-Urlencoded": [("a", "1")],
        ' application/x-www-form-urlencoded ; charset=utf-8; x="a;b"': [("a", "1")],
        "text/plain": [],
        "application/json": [],
        "application/x-www-form-urlencoded-not": [],
    }
    for content_type, items in parsed.items():
        form = await form_request(b"a=1", content_type).form()
        assert list(form.multi_items()) == items, content_type
    assert list((await form_request(b"a=1", None).form()).multi_items()) == []


@pytest.mark.anyio
async def test_async_with_request_form_closes_its_files_on_exit_even_on_error() -> None:
    body = multipart(part("a", b"1"), part("f", b"data", filename="f.txt"))
    async with form_request(body).form() as form:
        upload = form["f"]
        assert isinstance(upload, UploadFile)
        assert not upload.file.closed
        assert await upload.read() == b"data"
    assert upload.file.closed

    uploads: list[UploadFile | str] = []

    async def keep_upload_then_fail() -> None:
        async with form_request(body).form() as form:
            uploads.append(form["f"])
            raise LookupError

    with pytest.raises(LookupError):
        await keep_upload_then_fail()
    assert isinstance(uploads[0], UploadFile)
    assert uploads[0].file.closed


@pytest.mark.anyio
async def test_request_close_closes_the_files_of_the_parsed_form() -> None:
    request = form_request(multipart(part("f", b"1", filename="a"), part("f", b"2", filename="b")))
    await request.close()  # nothing parsed yet: nothing to do
    form = await request.form()
    uploads = [value for value in form.getlist("f") if isinstance(value, UploadFile)]
    assert len(uploads) == 2
    await request.close()
    assert all(upload.file.closed for upload in uploads)
    await request.close()  # twice is harmless


def test_form_files_are_closed_when_the_request_ends(backend: Backend) -> None:
    stored: list[UploadFile] = []
    app = Starlite(routes=[Route("/", keep_upload_endpoint(stored), methods=["POST"])])
    client = TestClient(app, backend=backend)
    response = client.post("/", files={"f": ("big", b"x" * (SPOOL_MAX_SIZE + 1))})
    assert response.text == "on disk: True"  # so closing it ran in the threadpool
    assert stored[0].file.closed


def test_form_files_are_closed_when_the_endpoint_raises(backend: Backend) -> None:
    stored: list[UploadFile] = []
    keep_upload = keep_upload_endpoint(stored)

    async def keep_then_fail(request: Request) -> Response:
        await keep_upload(request)
        raise HTTPException(status_code=422, detail="rejected")

    app = Starlite(routes=[Route("/", keep_then_fail, methods=["POST"])])
    response = TestClient(app, backend=backend).post("/", files={"f": ("a", b"x")})
    assert (response.status_code, response.text) == (422, "rejected")
    assert stored[0].file.closed


def test_form_files_are_closed_when_an_http_endpoint_request_ends(backend: Backend) -> None:
    stored: list[UploadFile] = []

    class Upload(HTTPEndpoint):
        post = staticmethod(keep_upload_endpoint(stored))

    app = Starlite(routes=[Route("/", Upload)])
    response = TestClient(app, backend=backend).post("/", files={"f": ("a", b"x")})
    assert response.text == "on disk: False"
    assert stored[0].file.closed


def test_form_error_goes_through_the_apps_http_exception_handlers(backend: Backend) -> None:
    def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    app = form_app(max_files=0)
    app.add_exception_handler(400, handler)
    body = multipart(part("f", b"x", filename="f"))
    response = TestClient(app, backend=backend).post(
        "/", content=body, headers={"content-type": MULTIPART}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Too many files. Maximum number of files is 0."}


TYPED_STATE_USER = """
from typing import TypedDict, assert_type

from starlite import PlainTextResponse, Request, Response, State, WebSocket


class Database:
    name = "db"


class AppState(TypedDict):
    database: Database
    greeting: str


class AppAttributes(State):
    database: Database


async def by_key(request: Request[AppState]) -> Response:
    assert_type(request.state["database"], Database)
    return PlainTextResponse(request.state["greeting"])


async def by_attribute(request: Request[AppAttributes]) -> Response:
    assert_type(request.state.database, Database)
    return PlainTextResponse(request.state.database.name)


async def on_socket(websocket: WebSocket[AppState]) -> None:
    await websocket.send_text(websocket.state["greeting"])


async def untyped(request: Request) -> Response:
    assert_type(request.state, State)
    return PlainTextResponse(request.state.anything)


async def as_mapping(request: Request[AppState]) -> Response:
    greeting = request.state.get("greeting", "hello")
    names = sorted(request.state.keys()) + [str(value) for value in request.state.values()]
    merged = request.state | {"greeting": "hi"}
    return PlainTextResponse(f"{greeting} {names} {dict(request.state)} {merged}")


async def misspelled(request: Request[AppState]) -> Response:
    return PlainTextResponse(request.state["greting"])
"""


def test_request_state_is_typed_by_the_requests_type_argument(tmp_path: Path) -> None:
    source = tmp_path / "typed_state_user.py"
    source.write_text(TYPED_STATE_USER)
    result = run_mypy_strict(source, tmp_path / "mypy_cache")
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    misspelled_line = TYPED_STATE_USER.splitlines().index(
        '    return PlainTextResponse(request.state["greting"])'
    )
    assert len(errors) == 1, result.stdout + result.stderr
    assert f"{source.name}:{misspelled_line + 1}: error: " in errors[0]
    assert '"greting"' in errors[0]


def test_a_typed_dict_states_mapping_use_that_passes_mypy_runs(backend: Backend) -> None:
    # The uses TYPED_STATE_USER's `as_mapping` type-checks (see the test above), run for real.
    namespace: dict[str, Any] = {}
    exec(compile(TYPED_STATE_USER, "typed_state_user", "exec"), namespace)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hey", "database": "db"}

    app = Starlite(routes=[Route("/", namespace["as_mapping"])], lifespan=lifespan)
    with TestClient(app, backend=backend) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == (
        "hey ['database', 'greeting', 'hey', 'db'] {'greeting': 'hey', 'database': 'db'} "
        "{'greeting': 'hi', 'database': 'db'}"
    )


@pytest.mark.parametrize("connection_class", [Request, WebSocket])
def test_connection_type_argument_changes_nothing_at_run_time(
    connection_class: type[Request] | type[WebSocket],
) -> None:
    scope = make_scope(state={"greeting": "hello"})
    if connection_class is WebSocket:
        scope["type"] = "websocket"

    async def unused_channel(*args: Any) -> Any:
        raise AssertionError("not called")

    typed_class = connection_class[dict[str, str]]  # type: ignore[index]
    connection = typed_class(scope, unused_channel, unused_channel)
    assert isinstance(connection, connection_class)
    assert isinstance(connection.state, State)
    assert connection.state["greeting"] == connection.state.greeting == "hello"


# ==== Responses ====


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str | bool]]:
    """Split a Set-Cookie value into name, value and lower-cased attributes (flags map to True)."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attributes: dict[str, str | bool] = {}
    for part in rest:
        key, sep, attr_value = part.partition("=")
        attributes[key.strip().lower()] = attr_value.strip() if sep else True
    return name, value, attributes


def set_cookie_headers(response: Response) -> list[str]:
    return [v.decode("latin-1") for k, v in response.raw_headers if k.lower() == b"set-cookie"]


# ---- Response: body, content-length and content-type ----


def test_response_bytes_body_sets_content_length_and_no_content_type() -> None:
    response = TestClient(Response(b"xyz")).get("/")
    assert response.status_code == 200
    assert response.content == b"xyz"
    assert response.headers["content-length"] == "3"
    assert "content-type" not in response.headers


def test_response_str_body_is_encoded_with_charset_and_length_counts_bytes() -> None:
    response = TestClient(Response("héllo", media_type="text/plain")).get("/")
    assert response.content == "héllo".encode()
    assert response.headers["content-length"] == str(len("héllo".encode()))


def test_response_memoryview_body_is_sent_as_bytes() -> None:
    response = TestClient(Response(memoryview(b"abcdef")[1:4])).get("/")
    assert response.content == b"bcd"
    assert response.headers["content-length"] == "3"


def test_response_none_content_gives_empty_body_and_zero_length() -> None:
    response = TestClient(Response()).get("/")
    assert response.content == b""
    assert response.headers["content-length"] == "0"


def test_response_status_code_is_sent() -> None:
    response = TestClient(Response(b"gone", status_code=410)).get("/")
    assert response.status_code == 410
    assert response.content == b"gone"


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("text/plain", "text/plain; charset=utf-8"),
        ("text/html", "text/html; charset=utf-8"),
        ("text/csv", "text/csv; charset=utf-8"),
        ("text/html; charset=latin-1", "text/html; charset=latin-1"),
        ("text/plain; CHARSET=ascii", "text/plain; CHARSET=ascii"),
        ("application/json", "application/json"),
        ("image/png", "image/png"),
    ],
)
def test_response_charset_appended_only_to_text_types_without_one(
    media_type: str, expected: str
) -> None:
    response = TestClient(Response(b"x", media_type=media_type)).get("/")
    assert response.headers["content-type"] == expected


def test_response_subclass_charset_is_used_for_encoding_and_content_type() -> None:
    class Latin1Response(PlainTextResponse):
        charset = "latin-1"

    response = TestClient(Latin1Response("é")).get("/")
    assert response.content == b"\xe9"
    assert response.headers["content-type"] == "text/plain; charset=latin-1"


def test_html_response_has_html_content_type() -> None:
    response = TestClient(HTMLResponse("<h1>hi</h1>")).get("/")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == "<h1>hi</h1>"


def test_plain_text_response_has_plain_text_content_type() -> None:
    response = TestClient(PlainTextResponse("hi")).get("/")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "hi"


def test_response_custom_headers_are_sent() -> None:
    response = TestClient(
        PlainTextResponse("x", headers={"X-Custom": "yes", "Cache-Control": "no-store"})
    ).get("/")
    assert response.headers["x-custom"] == "yes"
    assert response.headers["cache-control"] == "no-store"


def test_response_explicit_content_type_and_length_are_not_overridden() -> None:
    headers = {"Content-Type": "application/x-custom", "Content-Length": "5"}
    response = Response(b"12345", media_type="text/plain", headers=headers)
    assert response.headers.getlist("content-type") == ["application/x-custom"]
    assert response.headers.getlist("content-length") == ["5"]


def test_response_headers_set_after_init_are_sent() -> None:
    response = PlainTextResponse("x")
    response.headers["x-late"] = "1"
    response.headers.append("x-multi", "a")
    response.headers.append("x-multi", "b")
    sent = TestClient(response).get("/")
    assert sent.headers["x-late"] == "1"
    assert sent.headers.get_list("x-multi") == ["a", "b"]


def test_response_head_request_keeps_get_content_length() -> None:
    response = TestClient(PlainTextResponse("hello")).head("/")
    assert response.status_code == 200
    assert response.headers["content-length"] == "5"
    assert response.content == b""


@pytest.mark.anyio
async def test_response_sends_no_body_bytes_for_head() -> None:
    answer = await Server(http_request(), then="disconnect").run(
        PlainTextResponse("hello"), make_scope(method="HEAD")
    )
    assert answer.headers["content-length"] == "5"
    assert answer.body == b""


@pytest.mark.parametrize("status_code", [100, 101, 103, 204, 304])
def test_response_has_no_content_length_for_1xx_204_304(status_code: int) -> None:
    response = Response(b"ignored", status_code=status_code)
    assert "content-length" not in response.headers


@pytest.mark.anyio
@pytest.mark.parametrize("status_code", [103, 204, 304])
async def test_response_sends_no_body_for_1xx_204_304(status_code: int) -> None:
    answer = await Server(http_request(), then="disconnect").run(
        Response(b"ignored", status_code=status_code), make_scope()
    )
    assert answer.status == status_code
    assert "content-length" not in answer.headers
    assert answer.body == b""


def test_response_204_without_content_is_empty() -> None:
    response = TestClient(Response(status_code=204)).get("/")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-length" not in response.headers


# ---- Response: header injection (decisions item 1) ----


@pytest.mark.parametrize("bad", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\x00b"])
def test_response_header_value_with_control_character_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        Response(b"x", headers={"X-Injected": bad})


@pytest.mark.parametrize("bad", ["X-A\r\nX-B", "X-A\nB", "X\x00A"])
def test_response_header_name_with_control_character_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        Response(b"x", headers={bad: "value"})


def test_response_headers_setitem_with_crlf_raises_value_error() -> None:
    response = Response(b"x")
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        response.headers["x-injected"] = "a\r\nb"


def test_redirect_response_url_with_crlf_never_reaches_location_raw() -> None:
    # Percent-quoting or refusing the URL are both safe; a raw CR or LF in Location is not.
    try:
        response = RedirectResponse("/next\r\nSet-Cookie: evil=1")
    except ValueError:
        return
    location = response.headers["location"]
    assert "\r" not in location
    assert "\n" not in location


# ---- Response: cookies ----


def test_set_cookie_defaults_to_path_root_and_samesite_lax() -> None:
    response = Response()
    response.set_cookie("session", "abc")
    (header,) = set_cookie_headers(response)
    name, value, attrs = parse_set_cookie(header)
    assert (name, value) == ("session", "abc")
    assert attrs["path"] == "/"
    assert str(attrs["samesite"]).lower() == "lax"
    for absent in ("secure", "httponly", "max-age", "expires", "domain", "partitioned"):
        assert absent not in attrs


def test_set_cookie_with_every_attribute() -> None:
    response = Response()
    response.set_cookie(
        "mycookie",
        "myvalue",
        max_age=10,
        expires="Thu, 01 Jan 2037 00:00:00 GMT",
        path="/app",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="none",
    )
    (header,) = set_cookie_headers(response)
    name, value, attrs = parse_set_cookie(header)
    assert (name, value) == ("mycookie", "myvalue")
    assert attrs["max-age"] == "10"
    assert attrs["expires"] == "Thu, 01 Jan 2037 00:00:00 GMT"
    assert attrs["path"] == "/app"
    assert attrs["domain"] == "example.com"
    assert attrs["secure"] is True
    assert attrs["httponly"] is True
    assert str(attrs["samesite"]).lower() == "none"


@pytest.mark.parametrize("samesite", ["strict", "lax", "none", "Strict", "LAX"])
def test_set_cookie_samesite_values_are_case_insensitive(samesite: str) -> None:
    response = Response()
    response.set_cookie("k", "v", samesite=samesite)  # type: ignore[arg-type]
    _, _, attrs = parse_set_cookie(set_cookie_headers(response)[0])
    assert str(attrs["samesite"]).lower() == samesite.lower()


def test_set_cookie_samesite_none_value_omits_attribute() -> None:
    response = Response()
    response.set_cookie("k", "v", samesite=None)
    _, _, attrs = parse_set_cookie(set_cookie_headers(response)[0])
    assert "samesite" not in attrs


def test_set_cookie_invalid_samesite_raises_value_error() -> None:
    with pytest.raises(ValueError, match="samesite must be"):
        Response().set_cookie("k", "v", samesite="sometimes")  # type: ignore[arg-type]


def test_set_cookie_partitioned_appends_partitioned_flag() -> None:
    response = Response()
    response.set_cookie("k", "v", secure=True, samesite="none", partitioned=True)
    _, _, attrs = parse_set_cookie(set_cookie_headers(response)[0])
    assert attrs["partitioned"] is True


def test_set_cookie_expires_int_is_seconds_from_now() -> None:
    response = Response()
    before = datetime.now(UTC).replace(microsecond=0)
    response.set_cookie("k", "v", expires=3600)
    after = datetime.now(UTC)
    _, _, attrs = parse_set_cookie(set_cookie_headers(response)[0])
    expires = email.utils.parsedate_to_datetime(str(attrs["expires"]))
    assert before + timedelta(seconds=3600) <= expires <= after + timedelta(seconds=3601)
    assert str(attrs["expires"]).endswith("GMT")


def test_set_cookie_expires_aware_datetime_is_formatted_as_http_date() -> None:
    response = Response()
    response.set_cookie("k", "v", expires=datetime(2037, 1, 1, 12, 30, 5, tzinfo=UTC))
    _, _, attrs = parse_set_cookie(set_cookie_headers(response)[0])
    assert attrs["expires"] == "Thu, 01 Jan 2037 12:30:05 GMT"


def test_set_cookie_expires_in_another_timezone_is_written_in_gmt() -> None:
    response = Response()
    paris_summer = timezone(timedelta(hours=2))
    response.set_cookie("a", "1", expires=datetime(2030, 6, 1, 14, 0, tzinfo=paris_summer))
    assert "expires=Sat, 01 Jun 2030 12:00:00 GMT" in response.headers["set-cookie"]


def test_set_cookie_with_a_naive_expires_datetime_raises_value_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Response().set_cookie("a", "1", expires=datetime(2030, 6, 1, 12, 0))


def test_set_cookie_expires_string_is_kept_verbatim() -> None:
    response = Response()
    response.set_cookie("k", "v", expires="Fri, 02 Jan 2037 00:00:00 GMT")
    _, _, attrs = parse_set_cookie(set_cookie_headers(response)[0])
    assert attrs["expires"] == "Fri, 02 Jan 2037 00:00:00 GMT"


def test_set_cookie_twice_sends_two_set_cookie_headers() -> None:
    response = PlainTextResponse("x")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    sent = TestClient(response).get("/")
    names = [parse_set_cookie(h)[0] for h in sent.headers.get_list("set-cookie")]
    assert names == ["a", "b"]


def test_set_cookie_value_with_crlf_is_quoted_not_written_raw() -> None:
    response = Response()
    response.set_cookie("k", "a\r\nSet-Cookie: evil=1")
    (header,) = set_cookie_headers(response)
    assert "\r" not in header
    assert "\n" not in header


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path": "/a;b"},
        {"path": "/a\r\nX-Evil: 1"},
        {"path": "/a\x00"},
        {"domain": "example.com; Secure"},
        {"domain": "example.com\nX: y"},
        {"expires": "Thu, 01 Jan 2037 00:00:00 GMT\r\nX-Evil: 1"},
        {"expires": "Thu, 01 Jan 2037; HttpOnly"},
    ],
    ids=[
        "path-semicolon",
        "path-crlf",
        "path-nul",
        "domain-semicolon",
        "domain-lf",
        "expires-crlf",
        "expires-semi",
    ],
)
def test_set_cookie_attribute_with_separator_or_control_character_raises_value_error(
    kwargs: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="control character"):
        Response().set_cookie("k", "v", **kwargs)


@pytest.mark.parametrize("key", ["bad name", "a;b", "a\r\nb", "a=b", ""])
def test_set_cookie_invalid_name_raises_value_error(key: str) -> None:
    with pytest.raises(ValueError, match="Invalid cookie name"):
        Response().set_cookie(key, "v")


def test_delete_cookie_expires_it_now() -> None:
    response = Response()
    response.delete_cookie("session", path="/app", domain="example.com", secure=True, httponly=True)
    (header,) = set_cookie_headers(response)
    name, value, attrs = parse_set_cookie(header)
    assert name == "session"
    assert value in ("", '""')
    assert attrs["max-age"] == "0"
    expires = email.utils.parsedate_to_datetime(str(attrs["expires"]))
    assert expires <= datetime.now(UTC) + timedelta(seconds=2)
    assert attrs["path"] == "/app"
    assert attrs["domain"] == "example.com"
    assert attrs["secure"] is True
    assert attrs["httponly"] is True


def test_delete_cookie_removes_cookie_from_test_client_jar() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = PlainTextResponse("ok")
        if scope["path"] == "/set":
            response.set_cookie("session", "abc")
        else:
            response.delete_cookie("session")
        await response(scope, receive, send)

    client = TestClient(app)
    client.get("/set")
    assert client.cookies.get("session") == "abc"
    client.get("/delete")
    assert client.cookies.get("session") is None


# ---- Response: background tasks ----


@pytest.mark.anyio
async def test_background_task_runs_after_the_body_was_sent() -> None:
    seen: list[int] = []
    server = Server(http_request(), then="wait")

    async def task() -> None:
        seen.append(server.sent_types.count("http.response.body"))

    await server.run(PlainTextResponse("x", background=BackgroundTask(task)), make_scope())
    assert seen == [1]


def test_background_tasks_run_in_order_with_arguments() -> None:
    order: list[str] = []

    async def async_task(name: str) -> None:
        order.append(name)

    def sync_task(name: str, *, suffix: str) -> None:
        order.append(name + suffix)

    tasks = BackgroundTasks()
    tasks.add_task(async_task, "first")
    tasks.add_task(sync_task, "second", suffix="!")
    response = TestClient(PlainTextResponse("x", background=tasks)).get("/")
    assert response.text == "x"
    assert order == ["first", "second!"]


# ---- JSONResponse ----


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"a": 1, "b": [1, 2]}, b'{"a":1,"b":[1,2]}'),
        ({"name": "é☃"}, '{"name":"é☃"}'.encode()),
        ([], b"[]"),
        (None, b"null"),
        ("text", b'"text"'),
        (1.5, b"1.5"),
    ],
)
def test_json_response_is_compact_utf8_with_non_ascii_kept(content: Any, expected: bytes) -> None:
    response = TestClient(JSONResponse(content)).get("/")
    assert response.content == expected
    assert response.headers["content-length"] == str(len(expected))
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_json_response_nan_or_infinity_raises_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        JSONResponse({"value": bad})


def test_json_response_custom_status_headers_and_media_type() -> None:
    response = TestClient(
        JSONResponse(
            {"error": "x"},
            status_code=422,
            headers={"X-A": "1"},
            media_type="application/problem+json",
        )
    ).get("/")
    assert response.status_code == 422
    assert response.headers["x-a"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"error": "x"}


# ---- RedirectResponse ----


def test_redirect_response_defaults_to_307_with_empty_body() -> None:
    response = TestClient(RedirectResponse("/target"), follow_redirects=False).get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/target"
    assert response.content == b""
    assert response.headers["content-length"] == "0"


@pytest.mark.parametrize("status_code", [301, 302, 303, 308])
def test_redirect_response_custom_status(status_code: int) -> None:
    response = TestClient(
        RedirectResponse("/t", status_code=status_code), follow_redirects=False
    ).get("/")
    assert response.status_code == status_code
    assert response.headers["location"] == "/t"


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/path with space", "/path%20with%20space"),
        ("/ünï/☃", "/%C3%BCn%C3%AF/%E2%98%83"),
        ("/already%20encoded", "/already%20encoded"),
        ("/search?q=a&b=c", "/search?q=a&b=c"),
        ("https://example.com:8080/x?y=1#frag", "https://example.com:8080/x?y=1#frag"),
        ("/a?q=x y", "/a?q=x%20y"),
    ],
)
def test_redirect_response_quotes_location(url: str, location: str) -> None:
    assert RedirectResponse(url).headers["location"] == location


def test_redirect_response_accepts_url_object_and_custom_headers() -> None:
    response = RedirectResponse(URL("https://example.org/next"), headers={"X-A": "1"})
    assert response.headers["location"] == "https://example.org/next"
    assert response.headers["x-a"] == "1"


# ---- StreamingResponse ----


def test_streaming_response_async_iterator_chunks_are_joined() -> None:
    async def numbers() -> Any:
        for i in range(5):
            yield str(i)
            await anyio.lowlevel.checkpoint()

    response = TestClient(StreamingResponse(numbers(), media_type="text/plain")).get("/")
    assert response.text == "01234"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "content-length" not in response.headers


def test_streaming_response_mixes_str_bytes_and_memoryview_chunks() -> None:
    async def chunks() -> Any:
        yield "é"
        yield b"-bytes-"
        yield memoryview(b"view")

    response = TestClient(StreamingResponse(chunks())).get("/")
    assert response.content == "é".encode() + b"-bytes-view"


def test_streaming_response_sync_iterator_is_supported(backend: Backend) -> None:
    chunks: list[str | bytes | memoryview] = ["a", b"b", memoryview(b"c")]
    response = TestClient(StreamingResponse(iter(chunks)), backend=backend).get("/")
    assert response.content == b"abc"


@pytest.mark.anyio
async def test_streaming_response_sync_iterator_runs_in_worker_thread() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def chunks() -> Any:
        for chunk in (b"a", b"b", b"c"):
            threads.append(threading.get_ident())
            yield chunk

    answer = await Server(http_request(), then="disconnect").run(
        StreamingResponse(chunks()), make_scope()
    )
    assert answer.body == b"abc"
    assert len(threads) == 3
    assert loop_thread not in threads


def test_streaming_response_status_and_headers(backend: Backend) -> None:
    async def chunks() -> Any:
        yield b"x"

    response = TestClient(
        StreamingResponse(
            chunks(), status_code=201, headers={"X-Stream": "1"}, media_type="application/x-ndjson"
        ),
        backend=backend,
    ).get("/")
    assert response.status_code == 201
    assert response.headers["x-stream"] == "1"
    assert response.headers["content-type"] == "application/x-ndjson"


def test_streaming_response_background_runs_after_stream(backend: Backend) -> None:
    events: list[str] = []

    async def chunks() -> Any:
        events.append("chunk")
        yield b"x"

    async def task() -> None:
        events.append("background")

    response = TestClient(
        StreamingResponse(chunks(), background=BackgroundTask(task)), backend=backend
    ).get("/")
    assert response.content == b"x"
    assert events == ["chunk", "background"]


async def _stream_until_disconnect() -> tuple[list[str], Server]:
    """Stream an endless response to a client that goes after the first chunk."""
    events: list[str] = []

    async def endless() -> Any:
        try:
            yield b"first"
            await anyio.sleep_forever()
            yield b"never"  # pragma: no cover
        finally:
            events.append("generator finally")

    server = Server(then="disconnect", disconnect_after=1)
    await server.run(StreamingResponse(endless()), make_scope())
    return events, server


@pytest.mark.anyio
async def test_streaming_response_stops_when_client_disconnects() -> None:
    events, server = await _stream_until_disconnect()
    assert events == ["generator finally"]
    assert server.body == b"first"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_streaming_response_leaves_no_task_behind_after_disconnect() -> None:
    tasks_before = asyncio.all_tasks()
    await _stream_until_disconnect()
    for _ in range(3):
        await asyncio.sleep(0)
    assert asyncio.all_tasks() - tasks_before == set()


async def _never_receive() -> Message:
    raise AssertionError("the response listened for a disconnect")


@pytest.mark.anyio
async def test_streaming_response_raises_client_disconnect_when_an_asgi_2_4_send_fails() -> None:
    events: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"chunk"
                await anyio.lowlevel.checkpoint()
        finally:
            events.append("generator finally")

    bodies: list[bytes] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            if bodies:
                raise OSError("the client is gone")  # as an ASGI 2.4 server's send does
            bodies.append(message["body"])

    response = StreamingResponse(endless(), background=BackgroundTask(events.append, "background"))
    scope = make_scope(asgi={"version": "3.0", "spec_version": "2.4"})
    with anyio.fail_after(2), pytest.raises(ClientDisconnect):
        await response(scope, _never_receive, send)
    assert bodies == [b"chunk"]
    assert events == ["generator finally"]  # closed at once; no background for a cut response


@pytest.mark.anyio
async def test_streaming_response_on_asgi_2_4_raises_its_iterators_own_oserror_as_itself() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"chunk"
        raise OSError("the iterator's own disk error")

    server = Server()  # asking for a message fails: the response must not listen
    scope = make_scope(asgi={"version": "3.0", "spec_version": "2.4"})
    with pytest.raises(OSError, match="the iterator's own disk error") as info:
        await server.run(StreamingResponse(broken()), scope)
    assert not isinstance(info.value, ClientDisconnect)
    assert server.body == b"chunk"


@pytest.mark.anyio
async def test_streaming_response_on_a_websocket_sends_a_denial_and_runs_its_background() -> None:
    ran: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b"chunk"

    response = StreamingResponse(chunks(), background=BackgroundTask(ran.append, True))
    server = Server()  # asking for a message fails: a denial does not listen
    await server.run(response, {"type": "websocket", "path": "/", "headers": []})
    assert server.sent_types == [
        "websocket.http.response.start",
        "websocket.http.response.body",
        "websocket.http.response.body",
    ]
    assert [m.get("body") for m in server.sent[1:]] == [b"chunk", b""]
    assert ran == [True]


class LoggedStream(StreamingResponse):
    """A StreamingResponse that logs the hooks a subclass may override as they are called."""

    log: list[str]

    async def stream_response(self, send: Send) -> None:
        self.log.append("stream_response")
        await super().stream_response(send)

    async def listen_for_disconnect(self, receive: Receive) -> None:
        self.log.append("listen_for_disconnect")
        await super().listen_for_disconnect(receive)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("spec_version", "hooks"),
    [("2.3", ["listen_for_disconnect", "stream_response"]), ("2.4", ["stream_response"])],
)
async def test_streaming_response_calls_the_hooks_a_subclass_overrides(
    spec_version: str, hooks: list[str]
) -> None:
    response = LoggedStream([b"a", b"b"])
    response.log = []
    server = Server(then="wait")  # the listener is cancelled once the body is sent
    scope = make_scope(asgi={"version": "3.0", "spec_version": spec_version})
    await server.run(response, scope)
    assert sorted(response.log) == hooks
    assert server.body == b"ab"


# ---- FileResponse: basics ----

FILE_DATA = bytes((i * 7 + 3) % 256 for i in range(1000))


def stat_with_mtime(real: os.stat_result, mtime: int) -> os.stat_result:
    """A copy of `real` whose modification time is `mtime` seconds after the epoch."""
    return os.stat_result(
        (*tuple(real)[:8], mtime, real.st_ctime),
        {"st_mtime": float(mtime), "st_mtime_ns": mtime * 10**9},
    )


def file_app(path: Any, **kwargs: Any) -> Any:
    """A plain ASGI app that answers every request with a fresh FileResponse."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await FileResponse(path, **kwargs)(scope, receive, send)

    return app


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.txt"
    path.write_bytes(FILE_DATA)
    return path


@pytest.fixture(scope="module")
def shared_data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("range") / "data.txt"
    path.write_bytes(FILE_DATA)
    return path


def test_file_response_sends_file_with_length_type_etag_and_last_modified(
    data_file: Path, backend: Backend
) -> None:
    response = TestClient(file_app(data_file), backend=backend).get("/")
    assert response.status_code == 200
    assert response.content == FILE_DATA
    assert response.headers["content-length"] == "1000"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["accept-ranges"] == "bytes"
    assert re.fullmatch(r'"[^"]+"', response.headers["etag"])
    mtime = os.stat(data_file).st_mtime
    assert response.headers["last-modified"] == email.utils.formatdate(mtime, usegmt=True)


def test_file_response_large_file_spanning_many_chunks_is_complete(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    response = TestClient(file_app(path)).get("/")
    assert response.content == data
    assert response.headers["content-length"] == "300000"


def test_file_response_etag_is_stable_and_changes_with_the_file(data_file: Path) -> None:
    client = TestClient(file_app(data_file))
    first = client.get("/").headers["etag"]
    assert client.get("/").headers["etag"] == first
    data_file.write_bytes(FILE_DATA + b"more")
    os.utime(data_file, (1_000_000_000, 1_000_000_000))
    assert client.get("/").headers["etag"] != first


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("example.txt", 'attachment; filename="example.txt"'),
        ("report-2024_v1.pdf", 'attachment; filename="report-2024_v1.pdf"'),
        ("été.txt", "attachment; filename*=utf-8''%C3%A9t%C3%A9.txt"),
        ("日本.txt", "attachment; filename*=utf-8''%E6%97%A5%E6%9C%AC.txt"),
    ],
)
def test_file_response_content_disposition_for_ascii_and_non_ascii_names(
    data_file: Path, filename: str, expected: str
) -> None:
    response = TestClient(file_app(data_file, filename=filename)).get("/")
    assert response.headers["content-disposition"] == expected


def test_file_response_content_disposition_inline(data_file: Path) -> None:
    response = TestClient(
        file_app(data_file, filename="view.txt", content_disposition_type="inline")
    ).get("/")
    assert response.headers["content-disposition"] == 'inline; filename="view.txt"'


def test_file_response_without_filename_has_no_content_disposition(data_file: Path) -> None:
    assert "content-disposition" not in TestClient(file_app(data_file)).get("/").headers


@pytest.mark.parametrize(
    ("name", "filename", "media_type"),
    [
        ("a.png", None, "image/png"),
        ("a.json", None, "application/json"),
        ("a.html", None, "text/html; charset=utf-8"),
        ("a.unknownext", None, "application/octet-stream"),
        ("blob", "picture.png", "image/png"),
    ],
)
def test_file_response_media_type_guessed_from_filename(
    tmp_path: Path, name: str, filename: str | None, media_type: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"data")
    response = TestClient(file_app(path, filename=filename)).get("/")
    assert response.headers["content-type"] == media_type


def test_file_response_explicit_media_type_wins(data_file: Path) -> None:
    response = TestClient(file_app(data_file, media_type="application/x-custom")).get("/")
    assert response.headers["content-type"] == "application/x-custom"


def test_file_response_missing_file_raises_runtime_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        TestClient(file_app(tmp_path / "missing.txt")).get("/")


def test_file_response_directory_raises_runtime_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        TestClient(file_app(tmp_path)).get("/")


def test_file_response_with_stat_result_uses_it_for_headers(data_file: Path) -> None:
    fake = stat_with_mtime(os.stat(data_file), 86400)
    response = FileResponse(data_file, stat_result=fake)
    # Headers are known as soon as the response is built: no stat is needed later.
    assert response.headers["content-length"] == "1000"
    assert response.headers["last-modified"] == "Fri, 02 Jan 1970 00:00:00 GMT"
    sent = TestClient(response).get("/")
    assert sent.headers["last-modified"] == "Fri, 02 Jan 1970 00:00:00 GMT"
    assert sent.content == FILE_DATA


def test_file_response_with_stat_result_does_not_stat_the_path_again(tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_bytes(b"12345")
    # The path does not exist: only the given stat_result can answer a HEAD request.
    response = FileResponse(tmp_path / "gone.txt", stat_result=os.stat(other))
    sent = TestClient(response).head("/")
    assert sent.status_code == 200
    assert sent.headers["content-length"] == "5"


def test_file_response_stats_the_file_at_most_once(
    data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_stat = os.stat

    def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.fspath(path) == os.fspath(data_file):
            calls.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    response = TestClient(file_app(data_file)).get("/")
    assert response.content == FILE_DATA
    assert len(calls) <= 1


def test_file_response_empty_file_has_zero_length(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    response = TestClient(file_app(path), backend=backend).get("/")
    assert response.status_code == 200
    assert response.headers["content-length"] == "0"
    assert response.content == b""


def test_file_response_head_sends_headers_only(data_file: Path) -> None:
    response = TestClient(file_app(data_file)).head("/")
    assert response.status_code == 200
    assert response.headers["content-length"] == "1000"
    assert "etag" in response.headers
    assert response.content == b""


@pytest.mark.anyio
async def test_file_response_head_sends_no_body_bytes(data_file: Path) -> None:
    answer = await Server(http_request(), then="disconnect").run(
        FileResponse(data_file), make_scope(method="HEAD")
    )
    assert answer.headers["content-length"] == "1000"
    assert answer.body == b""


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["HEAD", "head", "Head"])
async def test_file_response_head_in_any_case_ends_the_body_at_once(
    data_file: Path, method: str
) -> None:
    answer = await Server(http_request(), then="disconnect").run(
        FileResponse(data_file), make_scope(method=method)
    )
    assert answer.sent_types == ["http.response.start", "http.response.body"]
    assert answer.sent[1] == {"type": "http.response.body", "body": b"", "more_body": False}


@pytest.mark.anyio
async def test_file_response_honours_a_range_for_a_lower_case_get(data_file: Path) -> None:
    response = FileResponse(data_file)
    answer = await Server(http_request(), then="disconnect").run(
        response, make_scope(method="get", headers={"range": "bytes=5-9"})
    )
    assert answer.status == 206
    assert answer.body == FILE_DATA[5:10]


@pytest.mark.anyio
async def test_file_response_uses_pathsend_when_offered(data_file: Path) -> None:
    answer = await Server(http_request(), then="disconnect").run(
        FileResponse(data_file), make_scope(extensions={"http.response.pathsend": {}})
    )
    assert answer.sent_types == ["http.response.start", "http.response.pathsend"]
    assert answer.sent[1]["path"] == str(data_file)
    assert answer.headers["content-length"] == "1000"


@pytest.fixture
def file_in_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file in the working directory, set up before the event loop runs (chdir calls getcwd)."""
    path = tmp_path / "relative.txt"
    path.write_bytes(b"data")
    monkeypatch.chdir(tmp_path)
    return path


@pytest.mark.anyio
async def test_file_response_pathsend_gives_an_absolute_path_for_a_relative_one(
    file_in_working_directory: Path,
) -> None:
    answer = await Server(http_request(), then="disconnect").run(
        FileResponse(file_in_working_directory.name),
        make_scope(extensions={"http.response.pathsend": {}}),
    )
    pathsend = [m for m in answer.sent if m["type"] == "http.response.pathsend"]
    assert pathsend == [{"type": "http.response.pathsend", "path": str(file_in_working_directory)}]


@pytest.mark.anyio
async def test_file_response_does_not_use_pathsend_for_head(data_file: Path) -> None:
    answer = await Server(http_request(), then="disconnect").run(
        FileResponse(data_file),
        make_scope(method="HEAD", extensions={"http.response.pathsend": {}}),
    )
    assert "http.response.pathsend" not in answer.sent_types
    assert answer.body == b""


@pytest.mark.anyio
async def test_file_response_does_not_use_pathsend_for_ranges(data_file: Path) -> None:
    answer = await Server(http_request(), then="disconnect").run(
        FileResponse(data_file),
        make_scope(headers={"range": "bytes=10-19"}, extensions={"http.response.pathsend": {}}),
    )
    assert "http.response.pathsend" not in answer.sent_types
    assert answer.status == 206
    assert answer.body == FILE_DATA[10:20]


@pytest.mark.anyio
async def test_file_response_without_pathsend_extension_streams_body(data_file: Path) -> None:
    answer = await Server(http_request(), then="disconnect").run(
        FileResponse(data_file), make_scope()
    )
    assert "http.response.pathsend" not in answer.sent_types
    assert answer.body == FILE_DATA


HUGE_FILE_SIZE = 4 * 1024 * 1024  # 64 chunks of FileResponse's 64 KiB


@pytest.fixture
def huge_file(tmp_path: Path) -> Path:
    path = tmp_path / "huge.bin"
    path.write_bytes(b"\0" * HUGE_FILE_SIZE)
    return path


@pytest.mark.anyio
async def test_file_response_stops_reading_once_client_disconnects(huge_file: Path) -> None:
    path, size = huge_file, HUGE_FILE_SIZE
    sent = 0
    first_chunk_sent = anyio.Event()

    async def receive() -> Message:
        await first_chunk_sent.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal sent
        sent += len(message.get("body", b""))
        if sent:
            first_chunk_sent.set()
        await anyio.lowlevel.checkpoint()

    with anyio.fail_after(5):
        await FileResponse(path)(make_scope(), receive, send)
    assert 0 < sent < size


@pytest.fixture
def opened_files(monkeypatch: pytest.MonkeyPatch) -> list[anyio.AsyncFile[bytes]]:
    """Every file FileResponse opens, to check it is closed."""
    files: list[anyio.AsyncFile[bytes]] = []
    open_file = anyio.open_file

    async def tracked_open_file(*args: Any, **kwargs: Any) -> anyio.AsyncFile[bytes]:
        file = await open_file(*args, **kwargs)
        files.append(file)
        return file

    monkeypatch.setattr(anyio, "open_file", tracked_open_file)
    return files


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
@pytest.mark.parametrize("range_header", [None, "bytes=0-9", "bytes=0-9,500-509"])
async def test_file_response_raises_the_servers_send_error_as_itself_and_closes_the_file(
    data_file: Path,
    opened_files: list[anyio.AsyncFile[bytes]],
    spec_version: str,
    range_header: str | None,
) -> None:
    error = OSError("the client is gone")

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise error

    headers = {} if range_header is None else {"range": range_header}
    scope = make_scope(headers=headers, asgi={"version": "3.0", "spec_version": spec_version})
    with anyio.fail_after(2), pytest.raises(OSError, match="the client is gone") as info:
        await FileResponse(data_file)(scope, receive, send)
    assert info.value is error
    assert len(opened_files) == 1
    assert opened_files[0].closed


@pytest.fixture
def shrunk_file(tmp_path: Path) -> tuple[Path, os.stat_result]:
    """A file and its status from before it shrank from 10 bytes to 3."""
    path = tmp_path / "shrinking.txt"
    path.write_bytes(b"0123456789")
    stat_result = path.stat()
    path.write_bytes(b"012")
    return path, stat_result


@pytest.mark.anyio
@pytest.mark.parametrize("range_header", [None, "bytes=0-2,5-7"])
async def test_file_response_raises_when_the_file_is_shorter_than_its_stat(
    shrunk_file: tuple[Path, os.stat_result], range_header: str | None
) -> None:
    path, stat_result = shrunk_file
    response = FileResponse(path, stat_result=stat_result)
    headers = None if range_header is None else {"range": range_header}
    with pytest.raises(RuntimeError, match=re.escape(f"File at path {path} is shorter than")):
        await Server(http_request(), then="disconnect").run(response, make_scope(headers=headers))


def test_file_response_background_runs_after_file(data_file: Path) -> None:
    ran: list[bool] = []
    response = TestClient(FileResponse(data_file, background=BackgroundTask(ran.append, True))).get(
        "/"
    )
    assert response.content == FILE_DATA
    assert ran == [True]


# ---- FileResponse: Range requests (decisions item 5) ----


def parse_byteranges(response: httpx.Response) -> list[tuple[int, int, int, str | None, bytes]]:
    """Parse a multipart/byteranges body into (first, last, size, content-type, bytes) per part."""
    match = re.fullmatch(
        r'multipart/byteranges;\s*boundary="?([^";]+)"?', response.headers["content-type"]
    )
    assert match, response.headers["content-type"]
    delimiter = b"--" + match.group(1).encode()
    body = response.content
    assert response.headers["content-length"] == str(len(body))
    pos = 2 if body.startswith(b"\r\n") else 0
    parts: list[tuple[int, int, int, str | None, bytes]] = []
    while True:
        assert body.startswith(delimiter, pos), body[pos : pos + 80]
        pos += len(delimiter)
        if body.startswith(b"--", pos):
            assert body[pos + 2 :].strip(b"\r\n") == b""
            return parts
        assert body.startswith(b"\r\n", pos)
        header_end = body.index(b"\r\n\r\n", pos)
        part_headers = {}
        for line in body[pos + 2 : header_end].split(b"\r\n"):
            name, _, value = line.partition(b":")
            part_headers[name.strip().lower().decode()] = value.strip().decode()
        pos = header_end + 4
        range_match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", part_headers["content-range"])
        assert range_match, part_headers
        first, last, size = map(int, range_match.groups())
        content = body[pos : pos + last - first + 1]
        pos += last - first + 1
        assert body.startswith(b"\r\n", pos)
        pos += 2
        parts.append((first, last, size, part_headers.get("content-type"), content))


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge inclusive (first, last) ranges that overlap or touch."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def assert_partial_content_matches(response: httpx.Response, data: bytes) -> list[tuple[int, int]]:
    """Check a 206 body against the file bytes; return the inclusive ranges it carries, in order."""
    assert response.status_code == 206
    if response.headers["content-type"].startswith("multipart/byteranges"):
        assert "content-range" not in response.headers
        parts = parse_byteranges(response)
        assert len(parts) >= 2
        for first, last, size, _, content in parts:
            assert size == len(data)
            assert content == data[first : last + 1]
        return [(first, last) for first, last, *_ in parts]
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers["content-range"])
    assert match, response.headers["content-range"]
    first, last, size = map(int, match.groups())
    assert size == len(data)
    assert response.content == data[first : last + 1]
    assert response.headers["content-length"] == str(last - first + 1)
    return [(first, last)]


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=0-0", 0, 0),
        ("bytes=999-999", 999, 999),
        ("bytes=500-", 500, 999),
        ("bytes=0-", 0, 999),
        ("bytes=-100", 900, 999),
        ("bytes=-1", 999, 999),
        ("bytes=-1000", 0, 999),
        ("bytes=-5000", 0, 999),
        ("bytes=900-5000", 900, 999),
    ],
    ids=[
        "first-100",
        "first-byte",
        "last-byte",
        "open-ended",
        "whole-open",
        "suffix",
        "suffix-1",
        "suffix-whole",
        "suffix-larger-than-file",
        "last-pos-clamped",
    ],
)
def test_range_request_single_range_gives_206_with_content_range(
    data_file: Path, range_header: str, first: int, last: int
) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/1000"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.content == FILE_DATA[first : last + 1]


def test_range_request_single_range_on_both_backends(data_file: Path, backend: Backend) -> None:
    response = TestClient(file_app(data_file), backend=backend).get(
        "/", headers={"Range": "bytes=10-19"}
    )
    assert response.status_code == 206
    assert response.content == FILE_DATA[10:20]


def test_range_request_spanning_many_chunks(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    response = TestClient(file_app(path)).get("/", headers={"Range": "bytes=1000-150000"})
    assert response.status_code == 206
    assert response.content == data[1000:150001]


def test_range_request_multiple_ranges_give_multipart_byteranges(data_file: Path) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": "bytes=0-9, 20-29,-5"})
    assert response.status_code == 206
    parts = parse_byteranges(response)
    assert [(first, last) for first, last, *_ in parts] == [(0, 9), (20, 29), (995, 999)]
    for first, last, size, content_type, content in parts:
        assert size == 1000
        assert content_type == "text/plain; charset=utf-8"
        assert content == FILE_DATA[first : last + 1]


@pytest.mark.anyio
async def test_range_request_multipart_sends_each_part_header_bytes_and_crlf_as_messages(
    data_file: Path,
) -> None:
    class SmallChunks(FileResponse):
        chunk_size = 8

    answer = await Server(http_request(), then="disconnect").run(
        SmallChunks(data_file), make_scope(headers={"range": "bytes=20-24,0-9"})
    )
    headers = answer.headers
    boundary = headers["content-type"].removeprefix("multipart/byteranges; boundary=")

    def part_header(first: int, last: int) -> bytes:
        return (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Range: bytes {first}-{last}/1000\r\n\r\n"
        ).encode()

    bodies = [m for m in answer.sent if m["type"] == "http.response.body"]
    assert [m["body"] for m in bodies] == [
        part_header(0, 9),
        FILE_DATA[0:8],
        FILE_DATA[8:10],
        b"\r\n",
        part_header(20, 24),
        FILE_DATA[20:25],
        b"\r\n",
        f"--{boundary}--".encode(),
    ]
    assert [m.get("more_body", False) for m in bodies] == [True] * 7 + [False]
    assert headers["content-length"] == str(len(answer.body))


class LabelledParts(FileResponse):
    """A FileResponse whose multipart part headers carry one more field."""

    def generate_multipart(
        self,
        ranges: Sequence[tuple[int, int]],
        boundary: str,
        max_size: int,
        content_type: str,
    ) -> tuple[int, Callable[[int, int], bytes]]:
        length, part_header = super().generate_multipart(ranges, boundary, max_size, content_type)

        def labelled(start: int, end: int) -> bytes:
            return part_header(start, end)[:-2] + b"X-Part: labelled\r\n\r\n"

        return length + len(ranges) * len(b"X-Part: labelled\r\n"), labelled


def test_range_request_multipart_uses_an_overridden_generate_multipart(data_file: Path) -> None:
    response = TestClient(LabelledParts(data_file)).get("/", headers={"Range": "bytes=0-9,20-29"})
    assert response.status_code == 206
    assert response.content.count(b"\r\nX-Part: labelled\r\n\r\n") == 2
    assert [content for *_, content in parse_byteranges(response)] == [
        FILE_DATA[0:10],
        FILE_DATA[20:30],
    ]


@pytest.mark.parametrize(
    "range_header", ["bytes=500-509,0-9", "bytes=0-9,500-509", "bytes=990-,0-0,10-19"]
)
def test_range_request_parts_in_any_order_each_hold_their_own_bytes(
    data_file: Path, range_header: str
) -> None:
    # The file is read forward and seeked only between parts that do not follow each other.
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    parts = parse_byteranges(response)
    assert len(parts) == range_header.count(",") + 1
    for first, last, _, _, content in parts:
        assert content == FILE_DATA[first : last + 1]


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-50,20-80", 0, 80),
        ("bytes=20-80,0-50", 0, 80),
        ("bytes=0-9,10-19", 0, 19),
        ("bytes=10-19,0-9", 0, 19),
        ("bytes=0-100,10-20", 0, 100),
        ("bytes=0-9,5-14,10-19,15-24", 0, 24),
        ("bytes=900-,-50", 900, 999),
    ],
    ids=[
        "overlap",
        "overlap-unordered",
        "adjacent",
        "adjacent-unordered",
        "contained",
        "chain",
        "suffix-overlap",
    ],
)
def test_range_request_with_overlapping_or_adjacent_ranges_is_merged(
    data_file: Path, range_header: str, first: int, last: int
) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/1000"
    assert response.content == FILE_DATA[first : last + 1]


def test_range_request_with_100_ranges_is_honoured(data_file: Path) -> None:
    header = "bytes=" + ",".join(f"{i * 2}-{i * 2}" for i in range(100))
    response = TestClient(file_app(data_file)).get("/", headers={"Range": header})
    assert response.status_code == 206
    parts = parse_byteranges(response)
    assert [(first, last) for first, last, *_ in parts] == [(i * 2, i * 2) for i in range(100)]


def test_range_request_with_100_overlapping_ranges_merges_to_one(data_file: Path) -> None:
    header = "bytes=" + ",".join(f"{i}-{i + 10}" for i in reversed(range(100)))
    response = TestClient(file_app(data_file)).get("/", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 0-109/1000"
    assert response.content == FILE_DATA[:110]


@pytest.mark.parametrize("count", [101, 10_000])
def test_range_request_with_more_than_100_ranges_is_ignored(data_file: Path, count: int) -> None:
    header = "bytes=" + ",".join(f"{i % 500 * 2}-{i % 500 * 2}" for i in range(count))
    response = TestClient(file_app(data_file)).get("/", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == FILE_DATA
    assert "content-range" not in response.headers


def test_range_request_with_huge_range_list_is_answered_quickly(data_file: Path) -> None:
    header = "bytes=" + ",".join(f"{i}-{i + 1}" for i in range(200_000))
    client = TestClient(file_app(data_file))
    started = time.perf_counter()
    response = client.get("/", headers={"Range": header})
    assert time.perf_counter() - started < 2.0
    assert response.status_code == 200


@pytest.mark.parametrize(
    "range_header",
    [
        "bytes=abc",
        "bytes=1-2-3",
        "bytes=",
        "bytes=a-b",
        "bytes=-",
        "bytes=1.5-2",
        "bytes=0x10-20",
        "bytes=,",
    ],
)
def test_range_request_with_garbage_range_gives_400(data_file: Path, range_header: str) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("range_header", "text"),
    [
        ("bytes 0-5", "Malformed range header."),
        ("bytes=", "Range header: range must be requested"),
        ("bytes=abc, x-y", "Range header: range must be requested"),
        ("bytes= , ,", "Range header: range must be requested"),
        ("bytes=5-2", "Range header: start must be less than end"),
    ],
)
def test_range_request_400_says_what_is_wrong_in_starlettes_words(
    data_file: Path, range_header: str, text: str
) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert (response.status_code, response.text) == (400, text)


@pytest.mark.parametrize(
    "range_header", ["bytes=100, 0-9", "bytes= - , 0-9", "bytes=abc-def, 0-9", "bytes=1-2-3,0-9,,"]
)
def test_range_request_skips_elements_that_are_not_ranges(
    data_file: Path, range_header: str
) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 0-9/1000"
    assert response.content == FILE_DATA[:10]


def test_range_request_with_garbage_beside_a_range_past_the_end_gives_416(data_file: Path) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": "bytes=abc, 5000-"})
    assert response.status_code == 416


@pytest.mark.parametrize("range_header", ["bytes=5-2", "bytes=100-99", "bytes=0-9,50-20"])
def test_range_request_with_inverted_range_gives_400(data_file: Path, range_header: str) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert response.status_code == 400


@pytest.mark.parametrize("range_header", ["items=0-5", "pages=1-2", "chars=0-0"])
def test_range_request_with_unknown_unit_is_ignored(data_file: Path, range_header: str) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert response.status_code == 200
    assert response.content == FILE_DATA


@pytest.mark.parametrize(
    "range_header", ["bytes=1000-", "bytes=1000-2000", "bytes=5000-", "bytes=1000-1000,2000-3000"]
)
def test_range_request_unsatisfiable_gives_416_with_content_range(
    data_file: Path, range_header: str
) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1000"


@pytest.mark.parametrize(
    ("range_header", "status_code"),
    [
        ("bytes=0-" + "9" * 30, 206),
        ("bytes=" + "9" * 30 + "-", 416),
        ("bytes=-" + "9" * 30, 206),
        ("bytes=0-" + "9" * 5000, 206),
        ("bytes=" + "9" * 5000 + "-", 416),
        ("bytes=-" + "9" * 5000, 206),
    ],
    ids=[
        "30-digit-last",
        "30-digit-first",
        "30-digit-suffix",
        "huge-last",
        "huge-first",
        "huge-suffix",
    ],
)
def test_range_request_with_huge_positions_is_clamped_or_unsatisfiable(
    data_file: Path, range_header: str, status_code: int
) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": range_header})
    assert response.status_code == status_code
    if status_code == 206:
        assert response.headers["content-range"] == "bytes 0-999/1000"
        assert response.content == FILE_DATA


@pytest.mark.parametrize("range_header", ["bytes=0-", "bytes=0-0", "bytes=-5"])
def test_range_request_on_empty_file_gives_416(tmp_path: Path, range_header: str) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    response = TestClient(file_app(path)).get("/", headers={"Range": range_header})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"


def test_range_request_drops_ranges_starting_past_the_end(data_file: Path) -> None:
    response = TestClient(file_app(data_file)).get("/", headers={"Range": "bytes=0-9,5000-6000"})
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 0-9/1000"
    assert response.content == FILE_DATA[:10]


def test_range_request_with_if_range_matching_etag_is_honoured(data_file: Path) -> None:
    client = TestClient(file_app(data_file))
    etag = client.get("/").headers["etag"]
    response = client.get("/", headers={"Range": "bytes=0-9", "If-Range": etag})
    assert response.status_code == 206
    assert response.content == FILE_DATA[:10]


def test_range_request_with_if_range_matching_last_modified_is_honoured(data_file: Path) -> None:
    client = TestClient(file_app(data_file))
    last_modified = client.get("/").headers["last-modified"]
    response = client.get("/", headers={"Range": "bytes=0-9", "If-Range": last_modified})
    assert response.status_code == 206
    assert response.content == FILE_DATA[:10]


@pytest.mark.parametrize(
    "if_range", ['"not-the-etag"', "Mon, 01 Jan 2001 00:00:00 GMT", "weak-of-current"]
)
def test_range_request_with_stale_or_weak_if_range_sends_whole_file(
    data_file: Path, if_range: str
) -> None:
    client = TestClient(file_app(data_file))
    if if_range == "weak-of-current":
        if_range = "W/" + client.get("/").headers["etag"]
    response = client.get("/", headers={"Range": "bytes=0-9", "If-Range": if_range})
    assert response.status_code == 200
    assert response.content == FILE_DATA


def test_range_request_with_if_range_equal_to_a_weak_etag_still_sends_whole_file(
    data_file: Path,
) -> None:
    app = file_app(data_file, headers={"ETag": 'W/"v1"'})
    response = TestClient(app).get("/", headers={"Range": "bytes=0-9", "If-Range": 'W/"v1"'})
    assert response.status_code == 200
    assert response.content == FILE_DATA


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_range_request_ignored_for_methods_other_than_get_and_head(
    data_file: Path, method: str
) -> None:
    response = TestClient(file_app(data_file)).request(method, "/", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.content == FILE_DATA


def test_range_request_ignored_when_status_is_not_200(data_file: Path) -> None:
    response = TestClient(file_app(data_file, status_code=404)).get(
        "/", headers={"Range": "bytes=0-9"}
    )
    assert response.status_code == 404
    assert response.content == FILE_DATA


def test_range_request_head_single_range_sends_range_headers_only(data_file: Path) -> None:
    response = TestClient(file_app(data_file)).head("/", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 10-19/1000"
    assert response.headers["content-length"] == "10"
    assert response.content == b""


def test_range_request_head_multiple_ranges_sends_multipart_headers_only(data_file: Path) -> None:
    client = TestClient(file_app(data_file))
    get = client.get("/", headers={"Range": "bytes=0-9,20-29"})
    head = client.head("/", headers={"Range": "bytes=0-9,20-29"})
    assert head.status_code == 206
    assert head.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.content == b""


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    range_header=st.one_of(
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
        st.text(st.sampled_from("0123456789-,= abxX"), max_size=30).map(lambda s: "bytes=" + s),
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.integers(0, 1200)),
                st.one_of(st.none(), st.integers(0, 1200)),
            ),
            min_size=1,
            max_size=8,
        ).map(
            lambda rs: (
                "bytes="
                + ",".join(f"{'' if a is None else a}-{'' if b is None else b}" for a, b in rs)
            )
        ),
    )
)
def test_range_parser_never_crashes_on_arbitrary_header_text(
    shared_data_file: Path, range_header: str
) -> None:
    response = TestClient(file_app(shared_data_file)).get("/", headers={"Range": range_header})
    assert response.status_code in (200, 206, 400, 416)
    if response.status_code == 200:
        assert response.content == FILE_DATA
    elif response.status_code == 206:
        assert_partial_content_matches(response, FILE_DATA)
    elif response.status_code == 416:
        assert response.headers["content-range"] == "bytes */1000"


def _range_spec_strategy() -> Any:
    """One satisfiable range-spec for a 1000-byte file: (header text, first, last), inclusive."""
    bounded = st.tuples(st.integers(0, 999), st.integers(0, 1500)).filter(lambda r: r[0] <= r[1])
    return st.one_of(
        bounded.map(lambda r: (f"{r[0]}-{r[1]}", r[0], min(r[1], 999))),
        st.integers(0, 999).map(lambda first: (f"{first}-", first, 999)),
        st.integers(1, 1500).map(lambda n: (f"-{n}", max(1000 - n, 0), 999)),
    )


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=st.lists(_range_spec_strategy(), min_size=1, max_size=12))
def test_range_request_body_equals_bytes_of_the_merged_ranges(
    shared_data_file: Path, specs: list[tuple[str, int, int]]
) -> None:
    header = "bytes=" + ",".join(text for text, _, _ in specs)
    response = TestClient(file_app(shared_data_file)).get("/", headers={"Range": header})
    carried = assert_partial_content_matches(response, FILE_DATA)
    assert sorted(carried) == merge_ranges([(first, last) for _, first, last in specs])


# Server-sent events


# ---- Server-sent events: a reference parser, a server harness, generators ----

# The keep-alive comment EventSourceResponse sends after `ping` seconds of silence.
SSE_PING = b": ping\n\n"
# The line ends of the event-stream format (WHATWG HTML §9.2.5), and only those.
EVENT_STREAM_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass
class DispatchedEvent:
    """An event as a browser's EventSource dispatches it."""

    type: str
    data: str
    last_event_id: str


@dataclass
class ParsedEventStream:
    """What a browser makes of an event stream: the events it dispatches, and besides them the
    comments (which it ignores) and the last reconnection time it was told."""

    events: list[DispatchedEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


def parse_sse(stream: bytes) -> ParsedEventStream:
    """Parse `stream` following the WHATWG "interpreting an event stream" algorithm: UTF-8, one
    leading BOM dropped, lines split on CRLF, CR or LF, ``field:value`` with one optional space
    stripped, an event dispatched on a blank line when it has data; a last incomplete line and
    an undispatched event at the end of the stream are discarded."""
    text = stream.decode("utf-8", errors="replace").removeprefix("\ufeff")
    *lines, _incomplete = EVENT_STREAM_LINE_END.split(text)
    parsed = ParsedEventStream()
    data = event_type = last_event_id = ""
    for line in lines:
        if line == "":
            if data:
                parsed.events.append(
                    DispatchedEvent(event_type or "message", data.removesuffix("\n"), last_event_id)
                )
            data = event_type = ""
            continue
        if line.startswith(":"):
            parsed.comments.append(line[1:].removeprefix(" "))
            continue
        name, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else ""
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                last_event_id = value
        elif name == "retry" and re.fullmatch(r"[0-9]+", value):
            parsed.retry = int(value)
    return parsed


def receive_events(chunks: Iterator[bytes], count: int) -> list[DispatchedEvent]:
    """Read raw chunks of an event stream until `count` events have been dispatched."""
    received = b""
    events: list[DispatchedEvent] = []
    for chunk in chunks:
        received += chunk
        events = parse_sse(received).events
        if len(events) >= count:
            return events
    raise AssertionError(f"the stream ended after {len(events)} of {count} events")


class EventStreamServer(Server):
    """The server's side of one event-stream response: a Server whose client sends an empty
    request and is gone once the response is complete or `gone_after_events` events (pings
    aside) have been sent, with read-outs of the stream. `send_delay` makes each body message
    take that long to send (a slow client); a send cancelled midway is counted in
    `cancelled_sends`. With `spec_version` 2.4, a client gone mid-stream makes the response raise
    ClientDisconnect (as Starlette's does), kept in `raised`.
    """

    def __init__(
        self,
        spec_version: str = "2.3",
        *,
        gone_after_events: int | None = None,
        send_delay: float = 0,
    ) -> None:
        super().__init__(http_request(), then="disconnect", raises=ClientDisconnect)
        self.spec_version = spec_version
        self.gone_after_events = gone_after_events
        self.send_delay = send_delay
        self.cancelled_sends = 0

    async def send(self, message: Message) -> None:
        if self.send_delay and message["type"] == "http.response.body":
            try:
                await anyio.sleep(self.send_delay)
            except anyio.get_cancelled_exc_class():
                self.cancelled_sends += 1
                raise
        await super().send(message)
        events_sent = len(self.event_chunks)
        if self.gone_after_events is not None and events_sent >= self.gone_after_events:
            self.gone.set()

    async def stream(
        self, app: ASGIApp, *, method: str = "GET", headers: Mapping[str, str] | None = None
    ) -> Server:
        """Run `app` for a request of `method`, as a server of `spec_version` does."""
        asgi = {"version": "3.0", "spec_version": self.spec_version}
        await super().run(app, make_scope(method=method, headers=headers, asgi=asgi))
        if self.raised is not None:
            assert (self.spec_version, self.gone.is_set()) == ("2.4", True)
        return self

    @property
    def chunks(self) -> list[bytes]:
        """The body messages' bodies, empty ones left out."""
        return [
            bytes(m["body"])
            for m in self.sent
            if m["type"] == "http.response.body" and m.get("body")
        ]

    @property
    def event_chunks(self) -> list[bytes]:
        return [chunk for chunk in self.chunks if chunk != SSE_PING]

    @property
    def complete(self) -> bool:
        """Whether the body was ended by a message without ``more_body``."""
        bodies = [m for m in self.sent if m["type"] == "http.response.body"]
        return bool(bodies) and not bodies[-1].get("more_body", False)

    @property
    def events(self) -> list[DispatchedEvent]:
        return parse_sse(b"".join(self.chunks)).events


class EventStreamBroke(Exception):
    """Raised by an event generator in the middle of its stream."""


# How many events endless_events gives at most: far more than any test reads, so that only a
# response that wrongly buffers them (never sending the first) ever gets to the end.
ENDLESS_EVENTS_LIMIT = 1000


def endless_events(finished: list[str], kind: str) -> Any:
    """An event generator (`kind` "async" or "sync") that does not end (before
    ENDLESS_EVENTS_LIMIT events) and never waits between events, so that it is always suspended
    at a yield; appends "finally" to `finished` when it is closed or runs out."""

    async def async_events() -> AsyncIterator[str]:
        try:
            for number in range(ENDLESS_EVENTS_LIMIT):
                yield f"event {number}"
        finally:
            finished.append("finally")

    def sync_events() -> Iterator[str]:
        try:
            for number in range(ENDLESS_EVENTS_LIMIT):
                yield f"event {number}"
        finally:
            finished.append("finally")

    return async_events() if kind == "async" else sync_events()


def resumable_events_app() -> Starlite:
    """An app whose ``/events`` streams events 0 to 4 (data "event N", id "N"), resuming after
    the client's ``Last-Event-ID`` when it reconnects with one."""

    async def stream(request: Request) -> EventSourceResponse:
        last_event_id = request.headers.get("last-event-id")
        first = 0 if last_event_id is None else int(last_event_id) + 1

        async def events() -> AsyncIterator[ServerSentEvent]:
            for number in range(first, 5):
                yield ServerSentEvent(f"event {number}", id=str(number))

        return EventSourceResponse(events())

    return Starlite(routes=[Route("/events", stream)])


# ---- ServerSentEvent ----


def test_server_sent_event_encodes_comment_event_data_id_and_retry_in_that_order() -> None:
    event = ServerSentEvent("hello", event="greeting", id="7", retry=2500, comment="note")
    assert event.encode() == (b": note\nevent: greeting\ndata: hello\nid: 7\nretry: 2500\n\n")


@pytest.mark.parametrize(
    ("event", "encoded"),
    [
        (ServerSentEvent("x"), b"data: x\n\n"),
        (ServerSentEvent(""), b"data: \n\n"),
        (ServerSentEvent(data="x", id="1"), b"data: x\nid: 1\n\n"),
        (ServerSentEvent(comment="keep"), b": keep\n\n"),
        (ServerSentEvent(retry=0), b"retry: 0\n\n"),
        (ServerSentEvent("é ☃"), "data: é ☃\n\n".encode()),
        (ServerSentEvent(" padded ", event=" type"), b"event:  type\ndata:  padded \n\n"),
    ],
)
def test_server_sent_event_encodes_only_the_fields_set(
    event: ServerSentEvent, encoded: bytes
) -> None:
    assert event.encode() == encoded


class _Temperature:
    def __str__(self) -> str:
        return "21.5 C"


@pytest.mark.parametrize(
    ("data", "encoded"),
    [(42, b"data: 42\n\n"), (1.5, b"data: 1.5\n\n"), (_Temperature(), b"data: 21.5 C\n\n")],
)
def test_server_sent_event_data_that_is_not_a_str_is_converted_with_str(
    data: Any, encoded: bytes
) -> None:
    event = ServerSentEvent(data)
    assert event.data == str(data)
    assert event.encode() == encoded


def test_server_sent_event_takes_data_by_position_and_the_other_fields_by_keyword_only() -> None:
    with pytest.raises(TypeError):
        cast(Any, ServerSentEvent)("x", "greeting")
    assert ServerSentEvent(data="x").encode() == ServerSentEvent("x").encode()


def test_server_sent_event_repr_shows_the_fields_set() -> None:
    full = ServerSentEvent("x", event="e", id="1", retry=5, comment="c")
    assert repr(full) == "ServerSentEvent(data='x', event='e', id='1', retry=5, comment='c')"
    assert repr(ServerSentEvent("x")) == "ServerSentEvent(data='x')"
    assert repr(ServerSentEvent(comment="c", id="2")) == "ServerSentEvent(id='2', comment='c')"


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        ("a\nb", b"data: a\ndata: b\n\n"),
        ("a\rb", b"data: a\ndata: b\n\n"),
        ("a\r\nb", b"data: a\ndata: b\n\n"),
        ("a\n\rb", b"data: a\ndata: \ndata: b\n\n"),
        ("a\r\n\r\nb", b"data: a\ndata: \ndata: b\n\n"),
        ("a\n", b"data: a\ndata: \n\n"),
        ("\r", b"data: \ndata: \n\n"),
        (
            "\n\nevent: injected\nid: 99\n\ndata: x",
            b"data: \ndata: \ndata: event: injected\ndata: id: 99\ndata: \ndata: data: x\n\n",
        ),
    ],
)
def test_server_sent_event_splits_data_into_one_data_line_per_line(
    data: str, encoded: bytes
) -> None:
    assert ServerSentEvent(data).encode() == encoded


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x0b", "\x0c", "\x85", "\x1c", "\x1e"])
def test_server_sent_event_splits_lines_only_on_cr_and_lf(separator: str) -> None:
    # str.splitlines() would split on these too, but the event-stream format does not.
    text = f"a{separator}b"
    assert ServerSentEvent(text).encode() == f"data: {text}\n\n".encode()
    assert ServerSentEvent(comment=text).encode() == f": {text}\n\n".encode()


def test_server_sent_event_splits_a_comment_into_one_comment_line_per_line() -> None:
    event = ServerSentEvent("x", comment="one\ntwo\r\nthree\rdata: injected")
    assert event.encode() == b": one\n: two\n: three\n: data: injected\ndata: x\n\n"
    assert parse_sse(event.encode()).events == [DispatchedEvent("message", "x", "")]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\r\nb", "\n", "end\r"])
@pytest.mark.parametrize("name", ["event", "id"])
def test_server_sent_event_refuses_a_line_break_in_event_or_id(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        ServerSentEvent("x", **{name: value})


def test_server_sent_event_refuses_an_id_with_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        ServerSentEvent("x", id="a\0b")


@pytest.mark.parametrize("retry", [-1, 1.5, "10", math.inf])
def test_server_sent_event_retry_must_be_a_non_negative_int(retry: Any) -> None:
    with pytest.raises(ValueError, match="retry"):
        ServerSentEvent("x", retry=retry)


def test_server_sent_event_refuses_a_bool_retry() -> None:
    with pytest.raises(ValueError, match="retry"):
        ServerSentEvent("x", retry=cast(Any, True))


# Pieces of text that could break an event stream: line ends, colons, spaces, NUL, the line
# separators the format does not know, and what looks like a field.
_SSE_PIECES = ("\r", "\n", "\r\n", ":", " ", "\0", "\u2028", "\x0b", "\x85", "data: x", "id: 1")


def _sse_text_of(excluded: str) -> st.SearchStrategy[str]:
    """Text made of _SSE_PIECES and any other characters, none of `excluded`."""
    pieces = [piece for piece in _SSE_PIECES if not set(piece) & set(excluded)]
    others = st.text(st.characters(codec="utf-8", exclude_characters=excluded), max_size=3)
    return st.lists(st.sampled_from(pieces) | others, max_size=8).map("".join)


_sse_text = _sse_text_of("")
_sse_line = _sse_text_of("\r\n")
_sse_id = _sse_text_of("\r\n\0")


@given(
    data=_sse_text,
    comment=st.none() | _sse_text,
    event=st.none() | _sse_line,
    id=st.none() | _sse_id,
    retry=st.none() | st.integers(min_value=0, max_value=10**12),
)
def test_server_sent_event_is_parsed_back_as_exactly_the_event_given(
    data: str, comment: str | None, event: str | None, id: str | None, retry: int | None
) -> None:
    encoded = ServerSentEvent(data, event=event, id=id, retry=retry, comment=comment).encode()
    parsed = parse_sse(encoded)
    normalised = EVENT_STREAM_LINE_END.sub("\n", data)
    assert parsed.events == [DispatchedEvent(event or "message", normalised, id or "")]
    assert parsed.comments == ([] if comment is None else EVENT_STREAM_LINE_END.split(comment))
    assert parsed.retry == retry


@given(
    st.lists(
        st.tuples(_sse_text, st.none() | _sse_line, st.none() | _sse_id, st.none() | _sse_text),
        max_size=6,
    )
)
def test_server_sent_events_in_a_row_are_parsed_back_one_for_one(
    fields: list[tuple[str, str | None, str | None, str | None]],
) -> None:
    stream = b"".join(
        ServerSentEvent(data, event=event, id=id, comment=comment).encode()
        for data, event, id, comment in fields
    )
    expected: list[DispatchedEvent] = []
    last_event_id = ""  # kept from event to event until an id changes it
    for data, event, id, _ in fields:
        last_event_id = last_event_id if id is None else id
        normalised = EVENT_STREAM_LINE_END.sub("\n", data)
        expected.append(DispatchedEvent(event or "message", normalised, last_event_id))
    assert parse_sse(stream).events == expected


def test_the_keep_alive_ping_is_a_comment_that_dispatches_nothing() -> None:
    parsed = parse_sse(SSE_PING)
    assert parsed.events == []
    assert parsed.comments == ["ping"]


# ---- EventSourceResponse: items, headers ----


def test_event_source_response_sends_events_dicts_and_strings(backend: Backend) -> None:
    items = [
        ServerSentEvent("a", id="1"),
        {"data": "b", "event": "update", "retry": 3000},
        "c\nd",
        {"data": 4, "comment": "four"},
        ServerSentEvent(comment="just a comment"),
    ]

    async def events() -> AsyncIterator[Any]:
        for item in items:
            yield item

    response = TestClient(EventSourceResponse(events()), backend=backend).get("/")
    assert response.status_code == 200
    assert response.content == (
        b"data: a\nid: 1\n\n"
        b"event: update\ndata: b\nretry: 3000\n\n"
        b"data: c\ndata: d\n\n"
        b": four\ndata: 4\n\n"
        b": just a comment\n\n"
    )
    assert parse_sse(response.content).events == [
        DispatchedEvent("message", "a", "1"),
        DispatchedEvent("update", "b", "1"),
        DispatchedEvent("message", "c\nd", "1"),
        DispatchedEvent("message", "4", "1"),
    ]


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_event_source_response_accepts_sync_iterables(backend: Backend, kind: str) -> None:
    items: list[Any] = ["one", {"data": "two", "id": "2"}, ServerSentEvent("three")]

    def events() -> Iterator[Any]:
        yield from items

    content = items if kind == "list" else events()
    response = TestClient(EventSourceResponse(content), backend=backend).get("/")
    assert [event.data for event in parse_sse(response.content).events] == [
        "one",
        "two",
        "three",
    ]


@pytest.mark.anyio
async def test_event_source_response_iterates_a_sync_generator_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def events() -> Iterator[str]:
        for number in range(3):
            threads.append(threading.get_ident())
            yield str(number)

    server = EventStreamServer()
    await server.stream(EventSourceResponse(events(), ping=None))
    assert [event.data for event in server.events] == ["0", "1", "2"]
    assert len(threads) == 3
    assert loop_thread not in threads


@pytest.mark.parametrize(
    ("item", "type_name"),
    [(42, "int"), (b"bytes", "bytes"), (None, "NoneType"), (["a"], "list"), (("a",), "tuple")],
)
def test_event_source_response_refuses_other_items_with_a_type_error_naming_the_type(
    backend: Backend, item: Any, type_name: str
) -> None:
    async def events() -> AsyncIterator[Any]:
        yield "fine"
        yield item

    client = TestClient(EventSourceResponse(events()), backend=backend)
    with pytest.raises(TypeError, match=rf"\b{type_name}\b"):
        client.get("/")


def test_event_source_response_refuses_a_dict_item_that_would_inject_a_field(
    backend: Backend,
) -> None:
    async def events() -> AsyncIterator[Any]:
        yield {"data": "x", "event": "update\ndata: injected"}

    with pytest.raises(ValueError, match="event"):
        TestClient(EventSourceResponse(events()), backend=backend).get("/")


def test_event_source_response_headers(backend: Backend) -> None:
    response = TestClient(EventSourceResponse(["x"]), backend=backend).get("/")
    assert response.headers.get_list("content-type") == ["text/event-stream; charset=utf-8"]
    assert response.headers.get_list("cache-control") == ["no-cache"]
    assert response.headers.get_list("x-accel-buffering") == ["no"]
    assert "content-length" not in response.headers


def test_event_source_response_given_headers_override_the_defaults(backend: Backend) -> None:
    given_headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "yes", "X-Stream": "1"}
    response = EventSourceResponse(["x"], status_code=201, headers=given_headers)
    names = [name for name, _ in response.raw_headers]
    assert names.count(b"cache-control") == 1
    assert names.count(b"x-accel-buffering") == 1
    sent = TestClient(response, backend=backend).get("/")
    assert sent.status_code == 201
    assert sent.headers.get_list("cache-control") == ["no-store"]
    assert sent.headers.get_list("x-accel-buffering") == ["yes"]
    assert sent.headers["x-stream"] == "1"
    assert sent.headers["content-type"] == "text/event-stream; charset=utf-8"


@pytest.mark.anyio
async def test_event_source_response_head_sends_the_headers_without_running_the_generator() -> None:
    produced: list[str] = []

    async def events() -> AsyncIterator[str]:
        produced.append("started")
        yield "never sent"

    server = EventStreamServer()
    await server.stream(EventSourceResponse(events()), method="HEAD")
    assert server.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert server.headers["cache-control"] == "no-cache"
    assert server.chunks == []
    assert server.complete
    assert produced == []


class ClosableEvents:
    """Three events from an iterator, async or sync, that records being closed (as a
    subscription to a message broker would unsubscribe)."""

    def __init__(self) -> None:
        self.left = 3
        self.closed = False

    def __aiter__(self) -> ClosableEvents:
        return self

    async def __anext__(self) -> str:
        try:
            return next(self)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed = True

    def __iter__(self) -> ClosableEvents:
        return self

    def __next__(self) -> str:
        if self.left == 0:
            raise StopIteration
        self.left -= 1
        return "event"

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_event_source_response_head_closes_the_iterator(backend: Backend, kind: str) -> None:
    events = ClosableEvents()
    content: Any = events if kind == "async" else iter(events)
    response = TestClient(EventSourceResponse(content), backend=backend).head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert events.closed


@pytest.mark.anyio
async def test_event_source_response_runs_its_background_task_after_the_stream_ends() -> None:
    complete_at_background: list[bool] = []
    server = EventStreamServer()

    async def events() -> AsyncIterator[str]:
        yield "one"
        yield "two"

    async def task() -> None:
        complete_at_background.append(server.complete)

    await server.stream(EventSourceResponse(events(), background=BackgroundTask(task)))
    assert [event.data for event in server.events] == ["one", "two"]
    assert complete_at_background == [True]


# Set by an event generator, to see which context it runs in.
event_generator_mark: contextvars.ContextVar[str] = contextvars.ContextVar(
    "event_generator_mark", default="unset"
)


@pytest.mark.anyio
@pytest.mark.parametrize("ping", [0.05, None])
async def test_event_source_response_keeps_what_its_generator_sets_in_a_context_of_its_own(
    ping: float | None,
) -> None:
    # The generator runs in a task of its own: a context variable it sets is not seen by the
    # response's background task, with pings or without.
    seen_by_background: list[str] = []

    async def events() -> AsyncIterator[str]:
        event_generator_mark.set("set by the generator")
        yield "one"

    async def task() -> None:
        seen_by_background.append(event_generator_mark.get())

    server = EventStreamServer()
    await server.stream(EventSourceResponse(events(), ping=ping, background=BackgroundTask(task)))
    assert [event.data for event in server.events] == ["one"]
    assert seen_by_background == ["unset"]


@pytest.mark.anyio
# With ASGI 2.4 only a send notices that the client has gone: a ping, here.
@pytest.mark.parametrize(("spec_version", "ping"), [("2.3", None), ("2.3", 0.05), ("2.4", 0.05)])
async def test_event_source_response_closes_its_generator_in_the_context_it_ran_in(
    spec_version: str, ping: float | None
) -> None:
    # Closed early (the client went away), a generator that resets in its `finally` a context
    # variable it set can: it is closed in the context it ran in, where the reset is allowed.
    steps: list[str] = []

    async def events() -> AsyncIterator[str]:
        token = event_generator_mark.set("set by the generator")
        try:
            yield "first"
            await anyio.sleep_forever()
        finally:
            event_generator_mark.reset(token)
            steps.append("reset")

    server = EventStreamServer(spec_version, gone_after_events=1)
    await server.stream(EventSourceResponse(events(), ping=ping))
    assert [event.data for event in server.events] == ["first"]
    assert steps == ["reset"]


# ---- EventSourceResponse: streaming, keep-alive pings ----


def test_event_source_response_sends_each_event_as_soon_as_it_is_produced(
    backend: Backend,
) -> None:
    released = threading.Event()
    waits: list[bool] = []

    def events() -> Iterator[str]:
        yield "first"
        waits.append(released.wait(5))
        yield "second"

    client = TestClient(EventSourceResponse(events()), backend=backend)
    with client.stream("GET", "/") as response:
        chunks = response.iter_raw()
        assert receive_events(chunks, 1) == [DispatchedEvent("message", "first", "")]
        assert waits == []  # the generator is still held before its second event
        released.set()
        assert receive_events(chunks, 1) == [DispatchedEvent("message", "second", "")]
    assert waits == [True]


def test_event_source_response_is_never_gzipped_and_stays_streamed(backend: Backend) -> None:
    assert "text/event-stream" in DEFAULT_EXCLUDED_CONTENT_TYPES
    released = threading.Event()
    waits: list[bool] = []

    def events() -> Iterator[str]:
        yield "first " * 100
        waits.append(released.wait(5))
        yield "second"

    def stream(request: Request) -> EventSourceResponse:
        return EventSourceResponse(events())

    app = Starlite(
        routes=[Route("/", stream)], middleware=[Middleware(GZipMiddleware, minimum_size=0)]
    )
    client = TestClient(app, backend=backend)
    with client.stream("GET", "/", headers={"Accept-Encoding": "gzip"}) as response:
        assert "content-encoding" not in response.headers
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        chunks = response.iter_raw()
        assert [event.data for event in receive_events(chunks, 1)] == ["first " * 100]
        assert waits == []
        released.set()
        assert [event.data for event in receive_events(chunks, 1)] == ["second"]
    assert waits == [True]


@pytest.mark.anyio
async def test_event_source_response_pings_while_the_generator_is_silent() -> None:
    first = ServerSentEvent("line 1\nline 2", id="1")
    second = ServerSentEvent("line 3\rline 4", event="update", id="2")

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield first
        await anyio.sleep(0.2)
        yield second

    server = EventStreamServer()
    await server.stream(EventSourceResponse(events(), ping=0.05))
    # Every chunk is a ping or a whole event: a ping never splits an event.
    assert server.chunks[0] == first.encode()
    assert server.chunks[-1] == second.encode()
    between = server.chunks[1:-1]
    assert len(between) >= 2
    assert set(between) == {SSE_PING}
    assert server.events == [
        DispatchedEvent("message", "line 1\nline 2", "1"),
        DispatchedEvent("update", "line 3\nline 4", "2"),
    ]


@pytest.mark.anyio
async def test_event_source_response_pings_only_after_silence() -> None:
    async def events() -> AsyncIterator[str]:
        for number in range(20):
            yield str(number)
            await anyio.sleep(0.01)

    server = EventStreamServer()
    await server.stream(EventSourceResponse(events(), ping=0.15))
    assert SSE_PING not in server.chunks
    assert len(server.events) == 20


@pytest.mark.anyio
async def test_event_source_response_without_ping_sends_no_pings() -> None:
    async def events() -> AsyncIterator[str]:
        yield "first"
        await anyio.sleep(0.2)
        yield "second"

    server = EventStreamServer()
    await server.stream(EventSourceResponse(events(), ping=None))
    assert server.chunks == [b"data: first\n\n", b"data: second\n\n"]


@pytest.mark.anyio
async def test_event_source_response_never_cancels_a_slow_send_for_a_ping() -> None:
    async def events() -> AsyncIterator[str]:
        yield "first"
        yield "second"
        yield "third"

    server = EventStreamServer(send_delay=0.06)
    await server.stream(EventSourceResponse(events(), ping=0.02))
    assert server.cancelled_sends == 0
    assert [event.data for event in server.events] == ["first", "second", "third"]
    assert all(chunk == SSE_PING or chunk.endswith(b"\n\n") for chunk in server.chunks)
    assert server.complete


@pytest.mark.parametrize("ping", [0, 0.0, -1, -0.5, math.nan])
def test_event_source_response_refuses_a_ping_interval_that_is_not_positive(ping: float) -> None:
    with pytest.raises(ValueError, match="ping"):
        EventSourceResponse([], ping=ping)


# ---- EventSourceResponse: disconnects and errors ----


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_event_source_response_closes_the_generator_when_the_client_stops_reading(
    backend: Backend, kind: str
) -> None:
    finished: list[str] = []
    events = endless_events(finished, kind)

    def stream(request: Request) -> EventSourceResponse:
        return EventSourceResponse(events)

    # In a `with` block the event loop outlives the request: its shutdown, which finalizes
    # forgotten async generators, cannot be what closes this one.
    with TestClient(Starlite(routes=[Route("/", stream)]), backend=backend) as client:
        with client.stream("GET", "/") as response:
            assert receive_events(response.iter_raw(), 1)[0].data == "event 0"
            assert finished == []
        assert finished == ["finally"]


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_event_source_response_stops_the_generator_when_the_client_disconnects(
    spec_version: str,
) -> None:
    steps: list[str] = []

    async def events() -> AsyncIterator[str]:
        try:
            yield "first"
            await anyio.sleep(0.05)
            yield "second"
            await anyio.sleep_forever()
        finally:
            steps.append("finally")

    generator = events()
    server = EventStreamServer(spec_version, gone_after_events=1)
    await server.stream(EventSourceResponse(generator, ping=None))
    assert [event.data for event in server.events] == ["first"]
    assert steps == ["finally"]
    assert not server.complete


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_event_source_response_stops_an_endless_generator_when_the_client_disconnects(
    anyio_backend: str, spec_version: str, kind: str
) -> None:
    # However many events went out before the client went, and whichever task runs first.
    for gone_after_events in [*range(1, 9)] * 2:
        finished: list[str] = []
        server = EventStreamServer(spec_version, gone_after_events=gone_after_events)
        await server.stream(EventSourceResponse(endless_events(finished, kind), ping=None))
        assert finished == ["finally"]
        expected = [f"event {number}" for number in range(gone_after_events)]
        assert [event.data for event in server.events[:gone_after_events]] == expected
        assert len(server.events) < ENDLESS_EVENTS_LIMIT
        assert not server.complete


@pytest.mark.anyio
async def test_event_source_response_pings_notice_a_client_gone_on_asgi_2_4() -> None:
    finished: list[str] = []

    async def events() -> AsyncIterator[str]:
        try:
            yield "first"
            await anyio.sleep_forever()
            yield "never"  # pragma: no cover
        finally:
            finished.append("finally")

    generator = events()
    server = EventStreamServer("2.4", gone_after_events=1)
    await server.stream(EventSourceResponse(generator, ping=0.05))
    assert [event.data for event in server.events] == ["first"]
    assert finished == ["finally"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_event_source_response_raises_what_the_generator_raised(
    spec_version: str, kind: str
) -> None:
    async def async_events() -> AsyncIterator[str]:
        yield "first"
        raise EventStreamBroke("mid-stream")

    def sync_events() -> Iterator[str]:
        yield "first"
        raise EventStreamBroke("mid-stream")

    events: Any = async_events() if kind == "async" else sync_events()
    server = EventStreamServer(spec_version)
    with pytest.raises(EventStreamBroke, match="mid-stream"):
        await server.stream(EventSourceResponse(events, ping=0.05))
    assert [event.data for event in server.events] == ["first"]


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_event_source_response_error_reaches_the_test_client_as_itself(
    backend: Backend, kind: str
) -> None:
    async def async_events() -> AsyncIterator[str]:
        yield "first"
        raise EventStreamBroke("mid-stream")

    def sync_events() -> Iterator[str]:
        yield "first"
        raise EventStreamBroke("mid-stream")

    def stream(request: Request) -> EventSourceResponse:
        return EventSourceResponse(async_events() if kind == "async" else sync_events())

    client = TestClient(Starlite(routes=[Route("/", stream)]), backend=backend)
    with pytest.raises(EventStreamBroke, match="mid-stream"):
        client.get("/")


# ---- EventSourceResponse: resuming with Last-Event-ID ----


def test_event_source_response_client_resumes_after_its_last_event_id(backend: Backend) -> None:
    client = TestClient(resumable_events_app(), backend=backend)
    with client.stream("GET", "/events") as response:
        seen = receive_events(response.iter_raw(), 2)[:2]
    assert [event.data for event in seen] == ["event 0", "event 1"]
    last_event_id = seen[-1].last_event_id
    assert last_event_id == "1"

    resumed = client.get("/events", headers={"Last-Event-ID": last_event_id})
    assert parse_sse(resumed.content).events == [
        DispatchedEvent("message", "event 2", "2"),
        DispatchedEvent("message", "event 3", "3"),
        DispatchedEvent("message", "event 4", "4"),
    ]
    assert len(parse_sse(client.get("/events").content).events) == 5


# ---- JSONResponse's shared encoder ----


def test_json_response_is_compact_utf_8() -> None:
    response = JSONResponse({"a": [1, 2.5, {"b": None, "c": True}], "d": "x y", "e": {}})
    assert response.body == b'{"a":[1,2.5,{"b":null,"c":true}],"d":"x y","e":{}}'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.body))


def test_json_response_keeps_non_ascii_as_utf_8() -> None:
    content = {"café": "☃ \U0001f600", "ключ": ["é", "\u2028"]}
    response = JSONResponse(content)
    assert response.body == '{"café":"☃ \U0001f600","ключ":["é","\u2028"]}'.encode()
    assert b"\\u" not in response.body
    assert json.loads(bytes(response.body)) == content


def test_json_response_escapes_what_json_must_escape() -> None:
    response = JSONResponse({"q": 'a"b\\c\n\x00'})
    assert response.body == b'{"q":"a\\"b\\\\c\\n\\u0000"}'


@pytest.mark.parametrize("content", [None, 0, "text", [], "é"])
def test_json_response_of_a_scalar(content: Any) -> None:
    expected = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    assert JSONResponse(content).body == expected


def test_json_response_tells_a_deep_cycle_from_deep_nesting_as_json_dumps_does() -> None:
    looped: dict[str, Any] = {"list": [1, {}]}
    looped["list"][1]["back"] = looped
    with pytest.raises(ValueError, match="Circular reference"):
        JSONResponse({"outer": [looped]})
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):
        json.dumps(deep)
    with pytest.raises(RecursionError):
        JSONResponse(deep)
    assert JSONResponse([[1], {"a": looped["list"][0]}]).body == b'[[1],{"a":1}]'


def test_json_response_encodes_one_object_from_many_threads_at_once() -> None:
    # The encoder is shared: with a cycle check's dict shared too, a thread would see the
    # containers another is encoding as a cycle.
    shared = {
        "rows": [{"id": n, "tags": ["a", "b"], "nested": {"x": [n] * 20}} for n in range(200)]
    }
    expected = json.dumps(shared, separators=(",", ":")).encode()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: JSONResponse(shared).body, range(400)))
    assert set(bodies) == {expected}


@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, -math.inf, [1, math.nan], {"x": {"y": math.inf}}]
)
def test_json_response_refuses_nan_and_infinity(bad: Any) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        JSONResponse(bad)


def test_json_response_refuses_a_circular_structure_and_an_unknown_type() -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular reference"):
        JSONResponse(circular)
    with pytest.raises(TypeError):
        JSONResponse({"when": object()})
    assert JSONResponse({"ok": 1}).body == b'{"ok":1}'  # a failure leaves the encoder usable


@pytest.mark.parametrize("accelerated", [True, False], ids=["C encoder", "no C encoder"])
def test_json_response_writes_the_same_json_with_or_without_the_c_encoder(
    accelerated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not accelerated:
        monkeypatch.setattr(starlite, "_encode_compact", None)
    content = {"text": 'é "q"\n', "list": [1, 2.5, None, True], "nested": {"": []}}
    assert JSONResponse(content).body == json.dumps(
        content, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        JSONResponse(looped)
    with pytest.raises(ValueError, match="not JSON compliant"):
        JSONResponse({"x": math.inf})


def test_json_response_subclass_overriding_render_still_works() -> None:
    class PrettyJSON(JSONResponse):
        def render(self, content: Any) -> bytes:
            return json.dumps(content, indent=2, sort_keys=True).encode()

    class Wrapped(JSONResponse):
        def render(self, content: Any) -> bytes:
            return super().render({"data": content})

    assert PrettyJSON({"b": 1, "a": [2]}).body == b'{\n  "a": [\n    2\n  ],\n  "b": 1\n}'
    assert PrettyJSON(math.nan).body == b"NaN"  # its own rules, not the shared encoder's
    assert Wrapped([1, "é"]).body == '{"data":[1,"é"]}'.encode()
    assert JSONResponse({"b": 1, "a": 2}).body == b'{"b":1,"a":2}'  # the base class unchanged
    client = TestClient(Router([Route("/", lambda request: Wrapped({"x": 1}))]))
    response = client.get("/")
    assert response.json() == {"data": {"x": 1}}
    assert response.headers["content-type"] == "application/json"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(content=json_values)
def test_json_response_body_equals_json_dumps_compact(content: Any) -> None:
    expected = json.dumps(
        content, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
    assert JSONResponse(content).body == expected


def test_json_responses_rendered_in_many_threads_at_once_are_each_right() -> None:
    threads, per_thread = 8, 200
    barrier = threading.Barrier(threads)
    failures: list[str] = []

    def content_of(t: int, i: int) -> dict[str, Any]:
        return {
            "thread": t,
            "i": i,
            "name": f"é-{t}-{i}" * (i % 5 + 1),
            "nested": {"list": list(range(i % 17)), "deep": {"t": [t, {"i": i, "x": None}]}},
            "id": str(uuid.UUID(int=t * 1000 + i)),
        }

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            content = content_of(t, i)
            body = JSONResponse(content).body
            expected = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
            if body != expected:
                failures.append(f"thread {t} response {i}: {body[:80]!r}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []


# ==== WebSockets ====
# WebSocket driven directly through ASGI messages (Server, at the top of the file, plays the
# server), then the connection details a websocket sees through the test client.


async def accepted(*incoming: Message) -> tuple[WebSocket, Server]:
    """A websocket already accepted, with `incoming` still to come from the client."""
    server = Server(connect(), *incoming)
    websocket = server.websocket()
    await websocket.accept()
    server.sent.clear()
    return websocket, server


def test_websocket_and_websocket_endpoint_refuse_an_http_scope() -> None:
    server = Server()
    with pytest.raises(ValueError, match="websocket"):
        WebSocket(make_scope(), server.receive, server.send)
    with pytest.raises(ValueError, match="websocket"):
        WebSocketEndpoint(make_scope(), server.receive, server.send)


@pytest.mark.anyio
@pytest.mark.parametrize("character", ["\r", "\n", "\0"], ids=["CR", "LF", "NUL"])
@pytest.mark.parametrize("where", ["header name", "header value", "subprotocol"])
async def test_accept_refuses_cr_lf_and_nul_in_its_headers_and_subprotocol(
    character: str, where: str
) -> None:
    # The handshake's answer is an HTTP response: each would start a header of the app's choosing.
    injected = f"x{character}set-cookie: stolen=1"
    headers = {
        "header name": [(injected.encode(), b"lobby")],
        "header value": [(b"x-room", injected.encode())],
        "subprotocol": [],
    }[where]
    subprotocol = injected if where == "subprotocol" else None
    server = Server(connect())
    websocket = server.websocket(ws_scope(subprotocols=[injected]))
    with pytest.raises(ValueError, match="contains CR, LF or NUL"):
        await websocket.accept(subprotocol, [(b"x-ok", b"fine"), *headers])
    assert server.sent == []  # nothing reached the server


def test_accept_that_refuses_a_header_ends_the_connection_without_a_handshake(
    backend: Backend,
) -> None:
    async def app(websocket: WebSocket) -> None:
        await websocket.accept(headers=[(b"x-room", b"lobby\r\nx-evil: 1")])

    client = TestClient(Starlite(routes=[WebSocketRoute("/", app)]), backend=backend)
    with pytest.raises(ValueError, match="contains CR, LF or NUL"), client.websocket_connect("/"):
        pass  # the handshake never completes: websocket_connect raises the app's error


def test_websocket_disconnect_defaults_and_exception_kinds() -> None:
    cases: list[tuple[tuple[Any, ...], int, str]] = [
        ((), 1000, ""),
        ((1001,), 1001, ""),
        ((4000, "bye"), 4000, "bye"),
        ((1000, None), 1000, ""),
    ]
    for args, code, reason in cases:
        exc = WebSocketDisconnect(*args)
        assert (exc.code, exc.reason) == (code, reason), args
    assert not issubclass(WebSocketDisconnect, RuntimeError)
    assert issubclass(WebSocketDisconnected, RuntimeError)


@pytest.mark.anyio
async def test_accept_and_raw_receive_and_send() -> None:
    plain = Server(connect())
    websocket = plain.websocket()
    await websocket.accept()
    assert plain.sent == [{"type": "websocket.accept", "subprotocol": None, "headers": []}]
    chosen = Server(connect())
    websocket = chosen.websocket(ws_scope(subprotocols=["v1", "chat.v2"]))
    await websocket.accept("chat.v2", [(b"x-room", b"lobby"), (b"x-room", b"hall")])
    assert chosen.sent == [
        {
            "type": "websocket.accept",
            "subprotocol": "chat.v2",
            "headers": [(b"x-room", b"lobby"), (b"x-room", b"hall")],
        }
    ]
    assert chosen.incoming == []
    # After a raw receive of the connect message, accept does not read again.
    server = Server(connect(), text_frame("hi"), disconnect(1001, "away"))
    websocket = server.websocket()
    assert await websocket.receive() == connect()
    await websocket.accept()  # the connect was read already: accept does not read again
    assert await websocket.receive() == text_frame("hi")
    await websocket.send({"type": "websocket.send", "bytes": b"\x01"})
    assert server.sent[1:] == [{"type": "websocket.send", "bytes": b"\x01"}]
    assert await websocket.receive() == disconnect(1001, "away")


@pytest.mark.anyio
async def test_receive_methods_return_the_payload() -> None:
    websocket, _ = await accepted(
        text_frame("h\u00e9llo \U0001f600"),
        text_frame(""),
        bytes_frame(b"\x00\xff"),
        bytes_frame(b""),
        text_frame('{"a": [1, 2], "b": null}'),
        bytes_frame('{"a": "\u00e9"}'.encode()),
    )
    assert await websocket.receive_text() == "h\u00e9llo \U0001f600"
    assert await websocket.receive_text() == ""
    assert await websocket.receive_bytes() == b"\x00\xff"
    assert await websocket.receive_bytes() == b""
    assert await websocket.receive_json() == {"a": [1, 2], "b": None}
    assert await websocket.receive_json(mode="binary") == {"a": "\u00e9"}


@pytest.mark.anyio
async def test_receive_json_of_invalid_json_raises_and_mode_is_checked() -> None:
    websocket, server = await accepted(text_frame("{not json"), bytes_frame(b"[1, 2"))
    with pytest.raises(json.JSONDecodeError):
        await websocket.receive_json()
    with pytest.raises(json.JSONDecodeError):
        await websocket.receive_json(mode="binary")
    with pytest.raises(RuntimeError, match='The "mode" argument should be "text" or "binary"'):
        await websocket.receive_json(mode="xml")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match='The "mode" argument should be "text" or "binary"'):
        await websocket.send_json(1, mode="xml")  # type: ignore[arg-type]
    assert server.sent == []


@pytest.mark.anyio
@pytest.mark.parametrize(("payload", "message"), NOT_I_JSON.values(), ids=NOT_I_JSON.keys())
async def test_receive_json_refuses_what_i_json_forbids_with_an_error_that_closes_1007(
    payload: bytes, message: str
) -> None:
    frames = [bytes_frame(payload)]
    with contextlib.suppress(UnicodeDecodeError):
        frames.append(text_frame(payload.decode("utf-8")))
    websocket, server = await accepted(*frames)
    for mode in ("binary", "text")[: len(frames)]:
        with pytest.raises(json.JSONDecodeError, match=re.escape(message)) as info:
            await websocket.receive_json(mode=mode)  # type: ignore[arg-type]
        assert isinstance(info.value, WebSocketException)
        assert (info.value.code, info.value.reason) == (1007, "The message is not valid JSON.")
    assert server.sent == []  # the exception handlers close, unless the app catches it


@pytest.mark.anyio
async def test_send_methods_send_one_frame_each() -> None:
    websocket, server = await accepted()
    await websocket.send_text("h\u00e9")
    await websocket.send_bytes(b"\x00\x01")
    await websocket.send_json({"a": "\u00e9", "b": [1, 2]})
    await websocket.send_json({"a": "\u00e9"}, mode="binary")
    assert server.sent == [
        {"type": "websocket.send", "text": "h\u00e9"},
        {"type": "websocket.send", "bytes": b"\x00\x01"},
        {"type": "websocket.send", "text": '{"a":"\u00e9","b":[1,2]}'},  # compact, UTF-8
        {"type": "websocket.send", "bytes": '{"a":"\u00e9"}'.encode()},
    ]


@pytest.mark.anyio
async def test_iterators_end_when_the_client_disconnects() -> None:
    cases: list[tuple[str, list[Message], list[Any]]] = [
        ("iter_text", [text_frame("a"), text_frame("")], ["a", ""]),
        ("iter_bytes", [bytes_frame(b"a"), bytes_frame(b"")], [b"a", b""]),
        ("iter_json", [text_frame("1"), text_frame('{"k": "v"}')], [1, {"k": "v"}]),
        ("iter_text", [], []),
    ]
    for method, frames, expected in cases:
        websocket, _ = await accepted(*frames, disconnect(1001))
        assert [item async for item in getattr(websocket, method)()] == expected
        assert websocket.client_state is WebSocketState.DISCONNECTED


@pytest.mark.anyio
async def test_close_sends_code_and_reason_and_refuses_before_accept() -> None:
    cases: list[tuple[tuple[Any, ...], Message]] = [
        ((), close_message(1000, "")),
        ((1001,), close_message(1001, "")),
        ((4000, "bye"), close_message(4000, "bye")),
        ((1000, None), close_message(1000, "")),
    ]
    for args, message in cases:
        websocket, server = await accepted()
        await websocket.close(*args)
        assert server.sent == [message]
        assert websocket.application_state is WebSocketState.DISCONNECTED
    refusing = Server()
    websocket = refusing.websocket()
    await websocket.close(status.WS_1008_POLICY_VIOLATION, "no token")  # no connect read first
    assert refusing.sent == [close_message(1008, "no token")]
    assert websocket.application_state is WebSocketState.DISCONNECTED


@pytest.mark.anyio
async def test_states_through_a_whole_connection() -> None:
    server = Server(connect(), text_frame("x"), disconnect())
    websocket = server.websocket()
    states = [(websocket.client_state, websocket.application_state)]
    await websocket.accept()
    states.append((websocket.client_state, websocket.application_state))
    await websocket.receive_text()
    await websocket.send_text("y")
    states.append((websocket.client_state, websocket.application_state))
    with pytest.raises(WebSocketDisconnect):
        await websocket.receive_text()
    states.append((websocket.client_state, websocket.application_state))
    await websocket.close()
    states.append((websocket.client_state, websocket.application_state))
    s = WebSocketState
    assert states == [
        (s.CONNECTING, s.CONNECTING),
        (s.CONNECTED, s.CONNECTED),
        (s.CONNECTED, s.CONNECTED),
        (s.DISCONNECTED, s.CONNECTED),
        (s.DISCONNECTED, s.DISCONNECTED),
    ]


# Each wrong-state case: what brings the socket to its state, the operation, and the error: a
# RuntimeError naming the message the state expects, or WebSocketDisconnected once it is over.
# The server always has a connect and then a disconnect to give.


async def _nothing(websocket: WebSocket) -> None:
    pass


async def _accept(websocket: WebSocket) -> None:
    await websocket.accept()


async def _accept_then_close(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close()


async def _refuse(websocket: WebSocket) -> None:
    await websocket.close(1008)


async def _accept_until_client_leaves(websocket: WebSocket) -> None:
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.receive_text()


async def _deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("no", status_code=403))


async def _start_denial(websocket: WebSocket) -> None:
    await websocket.send({"type": "websocket.http.response.start", "status": 403, "headers": []})


SEND_AFTER_CLOSE = 'Cannot call "send" once a close message has been sent.'
NOT_CONNECTED = 'WebSocket is not connected. Need to call "accept" first.'
WRONG_STATE_CASES: dict[str, tuple[Any, Callable[[WebSocket], Awaitable[Any]], Any]] = {
    "send-before-accept": (
        _nothing,
        lambda ws: ws.send_text("x"),
        (RuntimeError, "websocket.accept"),
    ),
    "accept-twice": (_accept, lambda ws: ws.accept(), (RuntimeError, "websocket.send")),
    "close-during-denial": (
        _start_denial,
        lambda ws: ws.close(),
        (RuntimeError, "websocket.http.response.body"),
    ),
    "send-after-close": (
        _accept_then_close,
        lambda ws: ws.send_text("late"),
        (WebSocketDisconnected, SEND_AFTER_CLOSE),
    ),
    "receive-text-after-close": (
        _accept_then_close,
        lambda ws: ws.receive_text(),
        (WebSocketDisconnected, NOT_CONNECTED),
    ),
    "accept-after-refusal": (
        _refuse,
        lambda ws: ws.accept(),
        (WebSocketDisconnected, SEND_AFTER_CLOSE),
    ),
    "send-after-denial": (
        _deny,
        lambda ws: ws.send(close_message()),
        (WebSocketDisconnected, SEND_AFTER_CLOSE),
    ),
    "receive-after-disconnect": (
        _accept_until_client_leaves,
        lambda ws: ws.receive(),
        (
            WebSocketDisconnected,
            'Cannot call "receive" once a disconnect message has been received.',
        ),
    ),
    "receive-text-before-accept": (
        _nothing,
        lambda ws: ws.receive_text(),
        (WebSocketDisconnected, NOT_CONNECTED),
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("before", "operation", "error"), list(WRONG_STATE_CASES.values()), ids=list(WRONG_STATE_CASES)
)
async def test_operation_in_the_wrong_state_raises_a_clear_error(
    before: Callable[[WebSocket], Awaitable[None]],
    operation: Callable[[WebSocket], Awaitable[Any]],
    error: tuple[type[Exception], str],
) -> None:
    server = Server(connect(), disconnect())
    websocket = server.websocket()
    await before(websocket)
    sent = list(server.sent)
    error_type, text = error
    with pytest.raises(error_type) as info:
        await operation(websocket)
    if error_type is WebSocketDisconnected:  # Starlette's words
        assert str(info.value) == text
    else:  # the message the state expects is named
        assert text in str(info.value)
        assert not isinstance(info.value, WebSocketDisconnected)
    assert server.sent == sent  # nothing more reached the server


@pytest.mark.anyio
async def test_receiving_a_message_the_state_does_not_allow_raises() -> None:
    websocket = Server(text_frame("too early")).websocket()
    with pytest.raises(RuntimeError, match=r"websocket\.connect"):
        await websocket.receive()
    websocket = Server(connect(), connect()).websocket()
    await websocket.accept()
    with pytest.raises(RuntimeError, match=r"websocket\.receive"):
        await websocket.receive()


@pytest.mark.anyio
async def test_a_close_reason_too_long_for_a_frame_raises_and_leaves_the_socket_usable() -> None:
    websocket, server = await accepted()
    closes: list[Callable[[], Awaitable[None]]] = [
        lambda: websocket.close(1000, "x" * 124),
        lambda: websocket.send(close_message(1000, "\u00e9" * 62)),  # 124 UTF-8 bytes
    ]
    for send_close in closes:
        with pytest.raises(ValueError, match="123"):
            await send_close()
    assert server.sent == []
    assert websocket.application_state is WebSocketState.CONNECTED
    await websocket.close(4999, "x" * 123)
    assert server.sent == [close_message(4999, "x" * 123)]


# What FastAPI's websocket validation handler closes with: the errors, as a list.
VALIDATION_ERRORS = [{"loc": ["query", "token"], "msg": "Field required", "type": "missing"}]


@pytest.mark.anyio
@pytest.mark.parametrize("code", [1006, 1005, 1015, 999, 5000, 0])
@pytest.mark.parametrize("reason", ["", "bye", VALIDATION_ERRORS, {"detail": 1}])
async def test_close_passes_any_code_and_a_reason_of_any_type_to_the_server(
    code: int, reason: Any
) -> None:
    websocket, server = await accepted()
    await websocket.close(code, reason)
    assert server.sent == [close_message(code, reason)]
    assert websocket.application_state is WebSocketState.DISCONNECTED
    refusing = Server(connect())  # before accept: a refusal, passed on the same way
    await refusing.websocket().close(code, reason)
    assert refusing.sent == [close_message(code, reason)]


@pytest.mark.anyio
@pytest.mark.parametrize("code", [999, 1005, 1006, 1015, 5000])
async def test_websocket_close_takes_any_code(code: int) -> None:
    assert WebSocketClose(code).code == code
    assert (await Server().run(WebSocketClose(code, "r"), ws_scope())).sent == [
        close_message(code, "r")
    ]


def test_websocket_close_reasons_are_checked_at_the_limit() -> None:
    for reason in ["x" * 123, "\u00e9" * 61 + "x"]:  # 123 UTF-8 bytes
        assert WebSocketClose(1000, reason).reason == reason
    for reason in ["x" * 124, "\u00e9" * 62]:  # 124 UTF-8 bytes
        with pytest.raises(ValueError, match="123"):
            WebSocketClose(1000, reason)


@pytest.mark.anyio
async def test_websocket_close_is_an_asgi_app() -> None:
    assert (await Server().run(WebSocketClose(), ws_scope())).sent == [close_message(1000, "")]
    closed = await Server().run(WebSocketClose(4001, "gone"), ws_scope())
    assert closed.sent == [close_message(4001, "gone")]


@pytest.mark.anyio
async def test_send_denial_response_sends_the_response_through_the_extension() -> None:
    server = Server(connect())
    websocket = server.websocket()
    response = PlainTextResponse("go away", status_code=403, headers={"x-why": "token"})
    await websocket.send_denial_response(response)
    assert server.sent_types == ["websocket.http.response.start", "websocket.http.response.body"]
    start, body = server.sent
    assert start["status"] == 403
    assert (b"x-why", b"token") in start["headers"]
    assert body["body"] == b"go away"
    assert websocket.application_state is WebSocketState.DISCONNECTED


@pytest.mark.anyio
async def test_streamed_denial_response_stays_in_the_response_state_until_its_last_part() -> None:
    server = Server(connect(), then="wait")
    websocket = server.websocket()

    async def parts() -> AsyncIterator[bytes]:
        yield b"one,"
        assert websocket.application_state is WebSocketState.RESPONSE
        yield b"two"

    with anyio.fail_after(5):
        await websocket.send_denial_response(StreamingResponse(parts(), status_code=401))
    assert server.sent_types[0] == "websocket.http.response.start"
    assert set(server.sent_types[1:]) == {"websocket.http.response.body"}
    assert server.body == b"one,two"
    assert websocket.application_state is WebSocketState.DISCONNECTED


@pytest.mark.anyio
async def test_send_denial_response_without_the_extension_or_after_accept_raises() -> None:
    denied = PlainTextResponse("no", status_code=403)
    server = Server(connect())
    websocket = server.websocket(ws_scope(deny=False))
    with pytest.raises(
        RuntimeError, match="doesn't support the Websocket Denial Response extension"
    ):
        await websocket.send_denial_response(denied)
    assert websocket.application_state is WebSocketState.CONNECTING
    assert server.sent == []
    websocket, server = await accepted()
    with pytest.raises(RuntimeError, match=r"websocket\.send"):
        await websocket.send_denial_response(denied)
    assert server.sent == []


@pytest.mark.anyio
async def test_a_message_the_state_does_not_allow_is_named_with_the_allowed_ones() -> None:
    start = {"type": "websocket.http.response.start", "status": 403, "headers": []}
    websocket = Server(connect()).websocket(ws_scope())
    with pytest.raises(RuntimeError) as refused:
        await websocket.send({"type": "websocket.send", "text": "early"})
    assert str(refused.value) == (
        'Expected ASGI message "websocket.accept", "websocket.close" or '
        "\"websocket.http.response.start\", but got 'websocket.send'"
    )
    await websocket.send(start)
    with pytest.raises(RuntimeError) as twice:
        await websocket.send(start)
    assert str(twice.value) == (
        'Expected ASGI message "websocket.http.response.body", '
        "but got 'websocket.http.response.start'"
    )


# ---- What a websocket sees of its connection (through the test client) ----

HUGE = 10 * 1024 * 1024  # 10 MB: far past any frame a chat app sends


class PassThrough:
    """Pure ASGI middleware that only forwards: the frames go through one more layer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def test_websocket_sees_its_path_params_query_headers_cookies_and_url(backend: Backend) -> None:
    app = Starlite(routes=[WebSocketRoute("/rooms/{room}", describe)])
    client = TestClient(app, backend=backend, cookies={"session": "s1"})
    seen = described(client, "/rooms/lobby?a=1&a=2&b=x", headers={"x-token": "t0k"})
    assert seen == {
        "url": "ws://testserver/rooms/lobby?a=1&a=2&b=x",
        "base_url": "ws://testserver/",
        "path_params": {"room": "lobby"},
        "query": [["a", "1"], ["a", "2"], ["b", "x"]],
        "token": "t0k",
        "cookies": {"session": "s1"},
        "root_path": "",
        "subprotocols": [],
        "client": ["testclient", 50000],
    }
    secure = TestClient(app, base_url="https://testserver", backend=backend)
    assert described(secure, "/rooms/x")["url"] == "wss://testserver/rooms/x"


def test_huge_text_frame_passes_through_intact(backend: Backend) -> None:
    async def echo_once(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    text = "\u00e9" + "x" * (HUGE - 2) + "\U0001f600"
    client = TestClient(Starlite(routes=[WebSocketRoute("/", echo_once)]), backend=backend)
    with client.websocket_connect("/") as websocket:
        websocket.send_text(text)
        assert websocket.receive_text() == text


@pytest.mark.anyio
async def test_huge_text_frame_reaches_the_endpoint_without_being_copied() -> None:
    received: list[str] = []

    async def echo_once(websocket: WebSocket) -> None:
        await websocket.accept()
        received.append(await websocket.receive_text())
        await websocket.send_text(received[0])
        await websocket.close()

    text = "x" * HUGE
    app = Starlite(routes=[WebSocketRoute("/", echo_once)], middleware=[Middleware(PassThrough)])
    server = Server(connect(), text_frame(text))
    await server.run(app, ws_scope())
    assert received[0] is text
    assert server.sent_types == ["websocket.accept", "websocket.send", "websocket.close"]
    assert server.sent[1]["text"] is text


# ==== Error handling ====


def started_then_raises(exc: Exception) -> ASGIApp:
    """A raw ASGI app that starts a 200 response, sends part of its body, then raises `exc`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise exc

    return app


class Recorder:
    """Pure ASGI middleware that logs "<name> in" and "<name> out" around each HTTP request."""

    def __init__(self, app: ASGIApp, name: str, log: list[str]) -> None:
        self.app = app
        self.name = name
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.log.append(f"{self.name} in")
        await self.app(scope, receive, send)
        self.log.append(f"{self.name} out")


# ---- ServerErrorMiddleware ----


def test_unhandled_exception_is_500_internal_server_error_without_detail(backend: Backend) -> None:
    client = TestClient(error_app(), raise_server_exceptions=False, backend=backend)
    response = client.get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_route_raising_in_its_handler_answers_500_without_traceback(backend: Backend) -> None:
    def broken(request: Request) -> Response:
        return PlainTextResponse(str(1 / 0))

    app = Starlite(routes=[Route("/", broken)])
    response = TestClient(app, raise_server_exceptions=False, backend=backend).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert "ZeroDivisionError" not in response.text


@pytest.mark.parametrize("accept", ["text/html", "*/*", "application/json", None])
def test_debug_off_error_page_never_shows_the_traceback(accept: str | None) -> None:
    headers = {"accept": accept} if accept is not None else {}
    response = TestClient(error_app(), raise_server_exceptions=False).get("/", headers=headers)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert "kaboom" not in response.text
    assert "Traceback" not in response.text


def test_debug_error_page_is_html_when_the_client_accepts_html(backend: Backend) -> None:
    client = TestClient(error_app(debug=True), raise_server_exceptions=False, backend=backend)
    response = client.get("/", headers={"accept": "text/html,application/xhtml+xml;q=0.9"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Boom" in response.text
    assert "kaboom-detail" in response.text
    assert "raise_boom" in response.text


def test_debug_html_error_page_escapes_the_exception_message() -> None:
    app = Starlite(
        debug=True, routes=[Route("/", raising_endpoint(Boom("<script>alert(1)</script>")))]
    )
    response = TestClient(app, raise_server_exceptions=False).get(
        "/", headers={"accept": "text/html"}
    )
    assert response.status_code == 500
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;" in response.text


@pytest.mark.parametrize("accept", ["*/*", "application/json", "text/plain"])
def test_debug_error_page_is_a_plain_text_traceback_otherwise(accept: str) -> None:
    client = TestClient(error_app(debug=True), raise_server_exceptions=False)
    response = client.get("/", headers={"accept": accept})
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "Traceback" in response.text
    assert "raise_boom" in response.text
    assert "Boom: kaboom-detail" in response.text


@pytest.mark.parametrize("debug", [False, True])
def test_unhandled_exception_is_re_raised_to_the_server(backend: Backend, debug: bool) -> None:
    with pytest.raises(Boom, match="kaboom-detail"):
        TestClient(error_app(debug=debug), backend=backend).get("/")


@pytest.mark.parametrize("key", [500, Exception])
@pytest.mark.parametrize("make_handler", [text_handler, async_text_handler])
def test_500_or_exception_handler_gives_the_error_response(
    key: int | type[Exception], make_handler: Callable[..., Any]
) -> None:
    app = error_app(exception_handlers={key: make_handler("custom error page", 500)})
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "custom error page"


def test_500_handler_receives_the_request_and_the_exception() -> None:
    seen: list[Any] = []

    def handler(request: Request, exc: Exception) -> Response:
        seen.extend([type(request), request.url.path, exc])
        return PlainTextResponse("handled", status_code=500)

    app = Starlite(routes=[Route("/fails", raise_boom)], exception_handlers={500: handler})
    TestClient(app, raise_server_exceptions=False).get("/fails")
    assert seen[:2] == [Request, "/fails"]
    assert isinstance(seen[2], Boom)


def test_500_handler_response_is_sent_and_the_exception_still_re_raised() -> None:
    app = error_app(exception_handlers={500: text_handler("custom", 500)})
    with pytest.raises(Boom):
        TestClient(app).get("/")


@pytest.mark.parametrize("debug", [False, True])
def test_exception_after_response_started_sends_no_second_response(debug: bool) -> None:
    app = Starlite(debug=debug, routes=[Mount("/raw", app=started_then_raises(Boom("late")))])
    response = TestClient(app, raise_server_exceptions=False).get(
        "/raw/", headers={"accept": "text/html"}
    )
    assert response.status_code == 200
    assert "Internal Server Error" not in response.text
    assert "Boom" not in response.text


def test_exception_after_response_started_is_still_re_raised(backend: Backend) -> None:
    app = Starlite(routes=[Mount("/raw", app=started_then_raises(Boom("late")))])
    with pytest.raises(Boom, match="late"):
        TestClient(app, backend=backend).get("/raw/")


def test_server_error_middleware_alone_answers_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("bare")

    response = TestClient(ServerErrorMiddleware(app), raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_server_error_middleware_alone_uses_its_handler() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("bare")

    middleware = ServerErrorMiddleware(app, handler=text_handler("from handler", 503))
    response = TestClient(middleware, raise_server_exceptions=False).get("/")
    assert (response.status_code, response.text) == (503, "from handler")


def test_server_error_middleware_alone_in_debug_gives_a_traceback() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("bare-debug")

    middleware = ServerErrorMiddleware(app, debug=True)
    response = TestClient(middleware, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert "Boom: bare-debug" in response.text


def test_server_error_middleware_passes_a_working_app_through() -> None:
    middleware = ServerErrorMiddleware(PlainTextResponse("fine"))
    assert TestClient(middleware).get("/").text == "fine"


# The debug page: frames with their source, collapsible, the app's own marked, the chain.


class Leak(Exception):
    """Raised by the debug-page app, its message full of markup."""


def debug_page_inner(secret_value: str) -> None:
    marker = "<script>source-marker</script>"  # a source line with markup, shown escaped
    assert marker
    raise Leak(f"<b>leaked-message</b> {secret_value}")  # the failing line


def debug_page_outer() -> None:
    try:
        debug_page_inner("secret-value-42")
    except Leak as exc:
        raise Boom("while-wrapping") from exc


def debug_page_app(debug: bool) -> Starlite:
    """An app whose "/" fails with RuntimeError raised while handling Boom, caused by Leak."""

    def endpoint(request: Request) -> Response:
        try:
            debug_page_outer()
        except Boom:
            raise RuntimeError("raised-during-handling")  # noqa: B904 (the chain is the test)
        return PlainTextResponse("unreachable")

    return Starlite(debug=debug, routes=[Route("/", endpoint)])


def source_line(function: Callable[..., Any], text: str) -> tuple[int, str]:
    """The line number and text of the line of `function` containing `text`."""
    lines, first = inspect.getsourcelines(function)
    index = next(i for i, line in enumerate(lines) if text in line)
    return first + index, lines[index].rstrip()


def test_debug_page_shows_each_frame_with_its_source_around_the_failing_line(
    backend: Backend,
) -> None:
    linecache.clearcache()  # so the page reads the source files afresh
    client = TestClient(debug_page_app(True), raise_server_exceptions=False, backend=backend)
    response = client.get("/", headers={"accept": "text/html"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    failing, text = source_line(debug_page_inner, "# the failing line")
    assert html.escape(f"{failing:>5} {text}") in page
    source = Path(__file__).read_text().splitlines()
    for number in range(failing - 3, failing + 4):  # three each side at the default limit of 7
        assert html.escape(f"{number:>5} {source[number - 1]}".rstrip()) in page
    for name in ("debug_page_inner", "debug_page_outer", "endpoint"):
        assert f"in {name}</code>" in page
    assert page.count("<details") >= 4  # every frame is a collapsible <details>, starlite's too
    assert "starlite.py" in page
    assert "<script" not in page.split("<body>")[1]  # no markup from source or message gets out
    assert html.escape("<script>source-marker</script>") in page
    assert html.escape("<b>leaked-message</b> secret-value-42") in page


def test_debug_page_shows_the_whole_exception_chain_in_order(backend: Backend) -> None:
    client = TestClient(debug_page_app(True), raise_server_exceptions=False, backend=backend)
    page = client.get("/", headers={"accept": "text/html"}).text.split("<section>", 1)[1]
    headings = ["<h3>Exception</h3>", "<h3>Raised while handling</h3>", "<h3>Its direct cause</h3>"]
    messages = ["raised-during-handling", "while-wrapping", "leaked-message"]
    positions = [page.index(text) for pair in zip(headings, messages, strict=True) for text in pair]
    assert positions == sorted(positions)


def test_debug_page_marks_and_opens_the_apps_own_frames_only() -> None:
    try:
        debug_page_outer()
    except Boom as exc:
        page = ServerErrorMiddleware(PlainTextResponse("x"), debug=True).generate_html(exc)
    frames = re.findall(r"<details([^>]*)><summary>(.*?)</summary>", page)
    own = [attrs for attrs, summary in frames if "test_starlite.py" in summary]
    assert own
    assert all("class='app' open" in attrs for attrs in own)
    try:
        json.loads("{")  # the failing frame is the standard library's: open, not marked
    except ValueError as exc:
        page = ServerErrorMiddleware(PlainTextResponse("x"), debug=True).generate_html(exc)
    frames = re.findall(r"<details([^>]*)><summary>(.*?)</summary>", page)
    library = [attrs for attrs, summary in frames if "json" + os.sep in summary]
    assert library[0] == " open"
    assert all("app" not in attrs for attrs in library)


def test_debug_page_is_built_off_the_event_loop(backend: Backend) -> None:
    # building it reads source files (linecache), which blockbuster does not flag: check the thread
    threads: dict[str, int] = {}

    class Recording(ServerErrorMiddleware):
        def generate_html(self, exc: Exception, limit: int = 7) -> str:
            threads["page"] = threading.get_ident()
            return super().generate_html(exc, limit)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        threads["loop"] = threading.get_ident()
        raise Boom("off-loop")

    client = TestClient(Recording(app, debug=True), raise_server_exceptions=False, backend=backend)
    response = client.get("/", headers={"accept": "text/html"})
    assert "off-loop" in response.text
    assert threads["page"] != threads["loop"]


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_debug_page_shows_limit_lines_of_source_per_frame(limit: int) -> None:
    try:
        debug_page_inner("x")
    except Leak as exc:
        page = ServerErrorMiddleware(PlainTextResponse("x"), debug=True).generate_html(exc, limit)
    failing, _ = source_line(debug_page_inner, "# the failing line")
    innermost = page.split("</details>")[0].split("<pre>")[-1]
    lines = [re.sub("<[^>]*>", "", line) for line in innermost.splitlines()]
    numbers = [int(line.split()[0]) for line in lines]
    assert len(numbers) == limit
    assert failing in numbers
    assert numbers == list(range(numbers[0], numbers[0] + limit))


def test_debug_page_escapes_file_and_function_names_and_survives_a_failing_str() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    code = compile("def f():\n    raise exc\n", "<a&b>", "exec")
    namespace: dict[str, Any] = {"exc": Unprintable()}
    exec(code, namespace)
    try:
        namespace["f"]()
    except Unprintable as exc:
        page = ServerErrorMiddleware(PlainTextResponse("x"), debug=True).generate_html(exc)
    assert "&lt;a&amp;b&gt;, line 2, in f" in page
    assert "Unprintable" in page
    assert "<a&b>" not in page


def test_debug_page_shows_a_deep_recursion_in_bounded_size() -> None:
    def recurse(depth: int) -> None:
        if depth:
            recurse(depth - 1)
        raise Boom("bottom")

    try:
        recurse(500)
    except Boom as exc:
        page = ServerErrorMiddleware(PlainTextResponse("x"), debug=True).generate_html(exc)
    assert page.count("in recurse</code>") == 1 + 3  # the raising frame, then three callers
    assert "(the same frame repeats)" in page
    assert len(page) < 20_000


def test_debug_page_shows_an_exception_groups_members_within_bounds() -> None:
    members: list[Exception] = []
    for n in range(20):
        try:
            raise Leak(f"<member-{n}>")
        except Leak as exc:
            members.append(exc)
    nested: Exception = ExceptionGroup("innermost", [Boom("deep")])
    for _ in range(12):
        nested = ExceptionGroup("<nested>", [nested])
    group = ExceptionGroup("<outer>", [*members, nested])
    page = ServerErrorMiddleware(PlainTextResponse("x"), debug=True).generate_html(group)
    assert "&lt;outer&gt;" in page
    assert all(html.escape(f"<member-{n}>") in page for n in range(15))
    assert "member-15" not in page
    assert "(and 6 more members)" in page
    assert "<member" not in page
    nested_page = ServerErrorMiddleware(PlainTextResponse("x"), debug=True).generate_html(nested)
    # the title, the group, then members ten levels deep
    assert nested_page.count("&lt;nested&gt;") == 1 + 1 + 10
    assert "(more nested exception groups)" in nested_page
    assert "deep" not in nested_page


@pytest.mark.parametrize("accept", ["*/*", "application/json", "text/plain"])
def test_debug_page_is_plain_text_with_the_chain_for_a_non_html_client(
    backend: Backend, accept: str
) -> None:
    client = TestClient(debug_page_app(True), raise_server_exceptions=False, backend=backend)
    response = client.get("/", headers={"accept": accept})
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    text = response.text
    assert "<b>leaked-message</b> secret-value-42" in text  # text as it is: not HTML
    assert "The above exception was the direct cause" in text
    assert "During handling of the above exception" in text
    assert "debug_page_inner" in text
    assert "# the failing line" in text


@pytest.mark.parametrize("accept", ["text/html", "*/*", "text/plain", None])
def test_debug_off_500_leaks_no_source_message_or_value(
    backend: Backend, accept: str | None
) -> None:
    headers = {"accept": accept} if accept is not None else {}
    client = TestClient(debug_page_app(False), raise_server_exceptions=False, backend=backend)
    response = client.get("/", headers=headers)
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


# ---- ExceptionMiddleware ----


class Base(Exception):
    pass


class Child(Base):
    pass


class GrandChild(Child):
    pass


class Mixin(Exception):
    pass


class MixinFirst(Mixin, Base):
    pass


class BaseFirst(Base, Mixin):
    pass


@pytest.mark.parametrize(
    ("registered", "raised", "winner"),
    [
        ([Base], Base, "Base"),
        ([Base], Child, "Base"),
        ([Base], GrandChild, "Base"),
        ([Base, Child], Child, "Child"),
        ([Child, Base], Child, "Child"),
        ([Base, Child], Base, "Base"),
        ([Base, Child], GrandChild, "Child"),
        ([Base, GrandChild], Child, "Base"),
        ([Base, Mixin], MixinFirst, "Mixin"),
        ([Base, Mixin], BaseFirst, "Base"),
        ([Exception, Base], GrandChild, "Base"),
    ],
)
def test_exception_handler_for_the_most_specific_class_in_the_mro_wins(
    registered: list[type[Exception]], raised: type[Exception], winner: str
) -> None:
    handlers = {cls: text_handler(cls.__name__) for cls in registered}
    app = Starlite(routes=[Route("/", raising_endpoint(raised()))], exception_handlers=handlers)
    response = TestClient(app).get("/")
    assert response.status_code == 200
    assert response.text == winner


def test_handled_exception_is_not_re_raised(backend: Backend) -> None:
    app = error_app(exception_handlers={Boom: text_handler("handled", 400)})
    response = TestClient(app, backend=backend).get("/")
    assert (response.status_code, response.text) == (400, "handled")


@pytest.mark.parametrize("make_handler", [text_handler, async_text_handler])
def test_exception_handler_may_be_sync_or_async(
    backend: Backend, make_handler: Callable[..., Any]
) -> None:
    app = error_app(exception_handlers={Boom: make_handler("handled", 409)})
    response = TestClient(app, backend=backend).get("/")
    assert (response.status_code, response.text) == (409, "handled")


def test_sync_exception_handler_runs_in_a_worker_thread(backend: Backend) -> None:
    def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"in_worker": in_worker_thread(request)})

    app = error_app(exception_handlers={Boom: handler}, middleware=[Middleware(LoopThread)])
    assert TestClient(app, backend=backend).get("/").json() == {"in_worker": True}


def test_exception_handler_receives_the_request_and_the_exception() -> None:
    async def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"type": type(exc).__name__, "message": str(exc), "path": request.url.path}
        )

    app = Starlite(routes=[Route("/where", raise_boom)], exception_handlers={Boom: handler})
    assert TestClient(app).get("/where").json() == {
        "type": "Boom",
        "message": "kaboom-detail",
        "path": "/where",
    }


@pytest.mark.parametrize("status_code", [400, 403, 418, 503])
def test_status_code_handler_handles_http_exceptions_with_that_status(status_code: int) -> None:
    app = Starlite(
        routes=[Route("/", raising_endpoint(HTTPException(status_code)))],
        exception_handlers={status_code: text_handler(f"custom {status_code}", status_code)},
    )
    response = TestClient(app).get("/")
    assert (response.status_code, response.text) == (status_code, f"custom {status_code}")


def test_status_code_handler_handles_the_routers_404() -> None:
    app = Starlite(
        routes=[Route("/", text_endpoint("home"))],
        exception_handlers={404: text_handler("nothing here", 404)},
    )
    response = TestClient(app).get("/missing")
    assert (response.status_code, response.text) == (404, "nothing here")


def test_status_code_handler_handles_the_routers_405() -> None:
    app = Starlite(
        routes=[Route("/", text_endpoint("home"), methods=["GET"])],
        exception_handlers={405: text_handler("wrong verb", 405)},
    )
    response = TestClient(app).post("/")
    assert (response.status_code, response.text) == (405, "wrong verb")


def test_status_code_handler_wins_over_a_class_handler() -> None:
    handlers = {HTTPException: text_handler("by class"), 418: text_handler("by status")}
    app = Starlite(
        routes=[
            Route("/teapot", raising_endpoint(HTTPException(418))),
            Route("/bad", raising_endpoint(HTTPException(400))),
        ],
        exception_handlers=handlers,
    )
    client = TestClient(app)
    assert client.get("/teapot").text == "by status"
    assert client.get("/bad").text == "by class"


def test_status_code_handler_handles_http_exception_subclasses() -> None:
    class PaymentRequired(HTTPException):
        def __init__(self) -> None:
            super().__init__(402, detail="pay first")

    app = Starlite(
        routes=[Route("/", raising_endpoint(PaymentRequired()))],
        exception_handlers={402: text_handler("status handler", 402)},
    )
    assert TestClient(app).get("/").text == "status handler"


def test_status_code_handler_ignores_exceptions_that_are_not_http_exceptions() -> None:
    app = error_app(exception_handlers={400: text_handler("never", 400)})
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert (response.status_code, response.text) == (500, "Internal Server Error")


@pytest.mark.parametrize(
    ("status_code", "detail", "body"),
    [
        (400, None, "Bad Request"),
        (403, "members only", "members only"),
        (404, None, "Not Found"),
        (418, None, HTTPStatus(418).phrase),
        (422, "bad field: name", "bad field: name"),
        (503, "try later", "try later"),
    ],
)
def test_http_exception_default_response_is_plain_text_detail(
    backend: Backend, status_code: int, detail: str | None, body: str
) -> None:
    app = Starlite(routes=[Route("/", raising_endpoint(HTTPException(status_code, detail)))])
    response = TestClient(app, backend=backend).get("/")
    assert response.status_code == status_code
    assert response.text == body
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_http_exception_default_handler_does_not_use_the_threadpool(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_threadpool(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("run_in_threadpool called")  # pragma: no cover

    async def endpoint(request: Request) -> Response:
        raise HTTPException(406)

    monkeypatch.setattr(starlite, "run_in_threadpool", no_threadpool)
    app = Starlite(routes=[Route("/", endpoint)])
    assert TestClient(app, backend=backend).get("/").status_code == 406


@pytest.mark.parametrize(
    ("status_code", "headers"),
    [
        (401, {"WWW-Authenticate": 'Bearer realm="api"'}),
        (429, {"Retry-After": "30"}),
        (405, {"Allow": "GET, HEAD"}),
        (400, {"X-One": "1", "X-Two": "2"}),
    ],
)
def test_http_exception_headers_reach_the_response(
    status_code: int, headers: dict[str, str]
) -> None:
    app = Starlite(
        routes=[Route("/", raising_endpoint(HTTPException(status_code, headers=headers)))]
    )
    response = TestClient(app).get("/")
    assert response.status_code == status_code
    for name, value in headers.items():
        assert response.headers[name] == value


@pytest.mark.parametrize("status_code", [204, 304])
def test_http_exception_204_and_304_have_no_body(status_code: int) -> None:
    exc = HTTPException(status_code, headers={"x-reason": "nothing to send"})
    app = Starlite(routes=[Route("/", raising_endpoint(exc))])
    response = TestClient(app).get("/")
    assert response.status_code == status_code
    assert response.content == b""
    assert response.headers["x-reason"] == "nothing to send"
    assert "content-type" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Bad": "value\r\nSet-Cookie: session=stolen"},
        {"X-Bad": "value\nSet-Cookie: session=stolen"},
        {"X-Bad\r\nSet-Cookie": "session=stolen"},
    ],
)
def test_http_exception_header_with_crlf_raises_value_error(headers: dict[str, str]) -> None:
    def endpoint(request: Request) -> Response:
        raise HTTPException(400, headers=headers)

    with pytest.raises(ValueError, match=r"(?i)header|CR|LF"):
        TestClient(Starlite(routes=[Route("/", endpoint)])).get("/")


def test_http_exception_header_with_crlf_never_reaches_the_wire() -> None:
    def endpoint(request: Request) -> Response:
        raise HTTPException(400, headers={"X-Bad": "v\r\nSet-Cookie: session=stolen"})

    client = TestClient(Starlite(routes=[Route("/", endpoint)]), raise_server_exceptions=False)
    response = client.get("/")
    assert response.status_code == 500
    assert "set-cookie" not in response.headers
    assert "x-bad" not in response.headers


def test_handled_exception_after_response_started_is_a_runtime_error() -> None:
    app = Starlite(routes=[Mount("/raw", app=started_then_raises(HTTPException(400)))])
    with pytest.raises(
        RuntimeError, match="Caught handled exception, but response already started"
    ):
        TestClient(app).get("/raw/")


def test_class_handled_exception_after_response_started_is_a_runtime_error() -> None:
    app = Starlite(
        routes=[Mount("/raw", app=started_then_raises(Boom("late")))],
        exception_handlers={Boom: text_handler("too late")},
    )
    with pytest.raises(
        RuntimeError, match="Caught handled exception, but response already started"
    ):
        TestClient(app).get("/raw/")


def test_handled_exception_after_response_started_sends_no_second_response() -> None:
    app = Starlite(routes=[Mount("/raw", app=started_then_raises(HTTPException(400)))])
    response = TestClient(app, raise_server_exceptions=False).get("/raw/")
    assert response.status_code == 200
    assert "Bad Request" not in response.text


def test_handled_exception_traceback_is_cleared_for_reuse() -> None:
    reused = Boom("shared instance")
    app = Starlite(
        routes=[Route("/", raising_endpoint(reused))],
        exception_handlers={Boom: text_handler("handled")},
    )
    client = TestClient(app)
    assert client.get("/").text == "handled"
    assert client.get("/").text == "handled"
    assert reused.__traceback__ is None


def test_exception_middleware_alone_answers_http_exceptions() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(403, detail="forbidden here")

    response = TestClient(ExceptionMiddleware(app)).get("/")
    assert (response.status_code, response.text) == (403, "forbidden here")


def test_exception_middleware_alone_uses_its_handlers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Child("x")

    middleware = ExceptionMiddleware(app, handlers={Base: text_handler("base handler", 400)})
    response = TestClient(middleware).get("/")
    assert (response.status_code, response.text) == (400, "base handler")


def test_exception_middleware_alone_lets_unhandled_exceptions_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise Boom("unhandled")

    with pytest.raises(Boom):
        TestClient(ExceptionMiddleware(app)).get("/")


def test_exception_handler_that_raises_gives_500(backend: Backend) -> None:
    def handler(request: Request, exc: Exception) -> Response:
        raise KeyError("handler is broken")

    app = error_app(exception_handlers={Boom: handler})
    response = TestClient(app, raise_server_exceptions=False, backend=backend).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_exception_handler_that_raises_reaches_the_server() -> None:
    def handler(request: Request, exc: Exception) -> Response:
        raise KeyError("handler is broken")

    with pytest.raises(KeyError, match="handler is broken"):
        TestClient(error_app(exception_handlers={Boom: handler})).get("/")


def test_http_exception_handler_that_raises_gives_500() -> None:
    async def handler(request: Request, exc: Exception) -> Response:
        raise ValueError("broken 404 handler")

    app = Starlite(exception_handlers={404: handler})
    response = TestClient(app, raise_server_exceptions=False).get("/missing")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_500_handler_that_raises_still_gives_500() -> None:
    def handler(request: Request, exc: Exception) -> Response:
        raise ValueError("broken 500 handler")

    app = error_app(exception_handlers={500: handler})
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500


# ---- WebSockets ----
# ServerErrorMiddleware ending a failed websocket, ExceptionMiddleware turning exceptions into
# closes (or denials), and user middleware seeing websocket scopes.


def failing(where: str, exc: Exception) -> Callable[[WebSocket], Awaitable[None]]:
    """A websocket endpoint that raises `exc` "before" or "after" accepting."""

    async def endpoint(websocket: WebSocket) -> None:
        if where == "after":
            await websocket.accept()
        raise exc

    return endpoint


def websocket_app(endpoint: Callable[[WebSocket], Awaitable[None]]) -> ASGIApp:
    """An ASGI app running `endpoint` with no exception handling around it."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await endpoint(WebSocket(scope, receive, send))

    return app


def close_of(client: TestClient, url: str) -> WebSocketDisconnect:
    """How the websocket at `url` is closed: on entry (refused) or at the first receive."""
    with contextlib.ExitStack() as stack:
        info = stack.enter_context(pytest.raises(WebSocketDisconnect))
        websocket = stack.enter_context(client.websocket_connect(url))
        websocket.receive_text()
    return info.value


class MessageLog:
    """Pure ASGI middleware logging the type (and close code) of what the app sends."""

    def __init__(self, app: ASGIApp, log: list[Any]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_logged(message: Message) -> None:
            self.log.append((message["type"], message.get("code")))
            await send(message)

        await self.app(scope, receive, send_logged)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("where", "deny", "expected"),
    [
        ("before", True, ["websocket.http.response.start", "websocket.http.response.body"]),
        ("before", False, ["websocket.close"]),
        ("after", True, ["websocket.accept", "websocket.close"]),
    ],
    ids=["before-accept-with-extension", "before-accept-without", "after-accept"],
)
async def test_server_error_middleware_ends_a_failed_websocket(
    where: str, deny: bool, expected: list[str]
) -> None:
    app = ServerErrorMiddleware(websocket_app(failing(where, Boom("boom"))))
    server = Server(connect())
    with pytest.raises(Boom, match="boom"):
        await server.run(app, ws_scope(deny=deny))
    assert server.sent_types == expected
    if expected[-1] == "websocket.close":
        assert server.sent[-1]["code"] == status.WS_1011_INTERNAL_ERROR
    else:
        assert server.sent[0]["status"] == 500
        assert server.sent[-1]["body"] == b"Internal Server Error"


@pytest.mark.anyio
async def test_server_error_middleware_ends_a_websocket_failing_as_it_is_cancelled() -> None:
    # A session ended by the client cancels the app, whose clean-up may fail: the close still goes
    # out, and the failure, not the cancellation, is what is raised.
    accepted = anyio.Event()
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})
        accepted.set()
        try:
            await anyio.sleep_forever()
        finally:
            raise Boom("clean-up failed")

    async def send(message: Message) -> None:
        await anyio.lowlevel.checkpoint()  # as a server's send: where a cancellation lands
        sent.append(message)

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def serve_then_cancel() -> None:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(ServerErrorMiddleware(app), ws_scope(), receive, send)
            await accepted.wait()
            task_group.cancel_scope.cancel()

    with pytest.raises(ExceptionGroup) as info:
        await serve_then_cancel()
    assert [type(exc) for exc in info.value.exceptions] == [Boom]
    assert sent[-1] == {"type": "websocket.close", "code": 1011, "reason": ""}


@pytest.mark.anyio
async def test_server_error_middleware_sends_nothing_once_the_socket_is_ended() -> None:
    async def close_then_fail(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4000)
        raise Boom("late")

    async def deny_then_fail(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("no", status_code=403))
        raise Boom("late")

    closed = Server(connect())
    with pytest.raises(Boom):
        await closed.run(ServerErrorMiddleware(websocket_app(close_then_fail)), ws_scope())
    assert closed.sent_types == ["websocket.accept", "websocket.close"]
    assert closed.sent[-1]["code"] == 4000
    denied = Server(connect())
    with pytest.raises(Boom):
        await denied.run(ServerErrorMiddleware(websocket_app(deny_then_fail)), ws_scope())
    assert denied.sent_types == ["websocket.http.response.start", "websocket.http.response.body"]
    assert denied.sent[0]["status"] == 403


@pytest.mark.parametrize("raise_server_exceptions", [True, False])
def test_unhandled_exception_before_accept(raise_server_exceptions: bool, backend: Backend) -> None:
    app = Starlite(routes=[WebSocketRoute("/", failing("before", Boom("early")))])
    client = TestClient(app, backend=backend, raise_server_exceptions=raise_server_exceptions)
    if raise_server_exceptions:
        with pytest.raises(Boom, match="early"), client.websocket_connect("/"):
            pass  # pragma: no cover - entering raises
        return
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/"):
        pass  # pragma: no cover - entering raises
    assert (info.value.status_code, info.value.text) == (500, "Internal Server Error")


@pytest.mark.parametrize("raise_server_exceptions", [True, False])
def test_unhandled_exception_after_accept_closes_with_1011(
    raise_server_exceptions: bool, backend: Backend
) -> None:
    app = Starlite(routes=[WebSocketRoute("/", failing("after", Boom("late")))])
    client = TestClient(app, backend=backend, raise_server_exceptions=raise_server_exceptions)
    code = closes_then_raises(client, "/", raise_server_exceptions, Boom)
    assert code == status.WS_1011_INTERNAL_ERROR


@pytest.mark.parametrize(
    ("where", "code", "reason"), [("before", 1008, "no token"), ("after", 4404, "")]
)
def test_websocket_exception_closes_with_its_code_and_reason(
    where: str, code: int, reason: str, backend: Backend
) -> None:
    exc = WebSocketException(code, reason or None)
    client = TestClient(
        Starlite(routes=[WebSocketRoute("/", failing(where, exc))]), backend=backend
    )
    close = close_of(client, "/")
    assert (close.code, close.reason) == (code, reason)


def sync_close_handler(websocket: WebSocket, exc: Exception) -> None:
    """A sync websocket exception handler: it runs in the threadpool, so it closes through the
    event loop."""
    assert threading.current_thread() is not threading.main_thread()
    anyio.from_thread.run(websocket.close, 4100, f"sync: {exc}")


async def async_close_handler(websocket: WebSocket, exc: Exception) -> None:
    await websocket.close(4200, f"async: {exc}")


class RoomFull(Exception):
    """An application's own exception, with a websocket handler registered for it."""

    def __str__(self) -> str:
        return "room full"


@pytest.mark.parametrize(
    ("handler", "key", "exc", "where", "expected"),
    [
        (
            sync_close_handler,
            WebSocketException,
            WebSocketException(1008, "why"),
            "before",
            (4100, "sync: 1008: why"),
        ),
        (async_close_handler, RoomFull, RoomFull(), "after", (4200, "async: room full")),
    ],
    ids=["sync-websocket-exception-before-accept", "async-own-exception-after-accept"],
)
def test_custom_exception_handlers_close_the_websocket(
    handler: Callable[..., Any],
    key: type[Exception],
    exc: Exception,
    where: str,
    expected: tuple[int, str],
    backend: Backend,
) -> None:
    app = Starlite(routes=[WebSocketRoute("/", failing(where, exc))])
    app.add_exception_handler(key, handler)
    close = close_of(TestClient(app, backend=backend), "/")
    assert (close.code, close.reason) == expected


def test_http_exception_before_accept_becomes_a_denial_response(backend: Backend) -> None:
    endpoint = failing("before", HTTPException(403, "members only", headers={"x-why": "login"}))
    app = Starlite(routes=[WebSocketRoute("/", endpoint)])
    denial = refusal_at(TestClient(app, backend=backend), "/")
    assert isinstance(denial, WebSocketDenialResponse)
    assert (denial.status_code, denial.text) == (403, "members only")
    assert denial.headers["x-why"] == "login"


def test_middleware_sees_websocket_scopes_and_the_close_an_exception_became(
    backend: Backend,
) -> None:
    route_log: list[Any] = []
    app_log: list[Any] = []
    app = Starlite(
        routes=[
            WebSocketRoute(
                "/",
                failing("after", WebSocketException(4005)),
                middleware=[Middleware(MessageLog, route_log)],
            )
        ],
        middleware=[Middleware(AcceptHeader, "app"), Middleware(MessageLog, app_log)],
    )
    with TestClient(app, backend=backend).websocket_connect("/") as websocket:
        assert websocket.extra_headers == [(b"x-mw", b"app")]
        with pytest.raises(WebSocketDisconnect):
            websocket.receive_text()
    # The route's middleware sees the close, not the exception, as the app's middleware does.
    assert route_log == [("websocket.accept", None), ("websocket.close", 4005)]
    assert app_log == route_log


# ==== Body limit ====

LimitLevel = Literal["app", "router", "mount", "route"]
LEVELS: list[LimitLevel] = ["app", "router", "mount", "route"]


async def body_length(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


def limited_app(
    level: LimitLevel, max_body_size: int, endpoint: Callable[..., Any] = body_length
) -> Starlite:
    """An app whose ``POST /up`` runs `endpoint`, with `max_body_size` set at `level` only."""
    at = {level: max_body_size}
    route = Route("/up", endpoint, methods=["POST"], max_body_size=at.get("route"))
    if level == "router":  # a Router holding the route, mounted at the root
        return Starlite(routes=[Mount("", app=Router([route], max_body_size=max_body_size))])
    mount = Mount("", routes=[route], max_body_size=at.get("mount"))
    return Starlite(routes=[mount], max_body_size=at.get("app"))


async def post_raw(
    app: ASGIApp,
    body: bytes,
    *,
    chunk_size: int | None = None,
    content_length: int | bytes | None = None,
    path: str = "/up",
) -> tuple[int, bytes, StreamedBody]:
    """POST `body` to `app` through a raw ASGI server: one message, or `chunk_size` pieces.
    The status, the response body, and the receive channel (to count what was read)."""
    receive = StreamedBody([body] if chunk_size is None else chunked(body, chunk_size))
    scope = form_scope(None, content_length=content_length, path=path)
    answer = await Server(receive=receive).run(app, scope)
    return answer.status, answer.body, receive


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: RequestBodyLimitMiddleware(PlainTextResponse(""), -1), id="middleware"
        ),
        pytest.param(lambda: Route("/", body_length, max_body_size=-1), id="route"),
        pytest.param(lambda: Mount("/m", routes=[], max_body_size=-1), id="mount"),
        pytest.param(lambda: Router([], max_body_size=-10), id="router"),
    ],
)
def test_negative_max_body_size_raises_value_error(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        make()


def test_negative_max_body_size_of_the_app_raises_value_error_at_once() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        Starlite(max_body_size=-1)


@pytest.mark.anyio
@pytest.mark.parametrize("level", LEVELS)
async def test_content_length_over_max_body_size_is_refused_before_any_body_is_read(
    level: LimitLevel,
) -> None:
    app = limited_app(level, 100)
    assert (await post_raw(app, b"x" * 100, content_length=100))[:2] == (200, b"100")
    status, body, receive = await post_raw(app, b"x" * 101, content_length=101)
    assert (status, body) == (413, b"Content Too Large")
    assert receive.calls == 0


def test_the_app_reads_the_innermost_limit_under_starlettes_scope_key(backend: Backend) -> None:
    async def limit_in_scope(request: Request) -> Response:
        return PlainTextResponse(str(request.scope[MAX_BODY_SIZE_SCOPE_KEY]))

    route = Route("/up", limit_in_scope, methods=["POST"], max_body_size=20)
    app = Starlite(routes=[Mount("/m", routes=[route], max_body_size=1000)], max_body_size=50)
    assert MAX_BODY_SIZE_SCOPE_KEY == "starlette.max_body_size"
    assert TestClient(app, backend=backend).post("/m/up", content=b"x").text == "20"


@pytest.mark.anyio
@pytest.mark.parametrize("outer", [{MAX_BODY_SIZE_SCOPE_KEY: 10}, {}], ids=["set", "unset"])
async def test_the_scopes_own_limit_is_put_back_when_the_app_returns(outer: Scope) -> None:
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope[MAX_BODY_SIZE_SCOPE_KEY])
        await PlainTextResponse("ok")(scope, receive, send)

    scope = make_scope("/", method="POST", **outer)
    await Server(http_request(), then="wait").run(
        RequestBodyLimitMiddleware(app, max_body_size=5), scope
    )
    assert seen == [5]
    assert {key: scope[key] for key in outer} == outer
    assert (MAX_BODY_SIZE_SCOPE_KEY in scope) is bool(outer)


@pytest.mark.anyio
async def test_the_scopes_own_limit_is_put_back_when_the_app_fails() -> None:
    async def refusing(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    scope = make_scope("/", method="POST", headers={"content-length": "9"})
    scope[MAX_BODY_SIZE_SCOPE_KEY] = 100
    answer = await Server(http_request(), then="wait").run(
        RequestBodyLimitMiddleware(refusing, max_body_size=5), scope
    )
    assert answer.status == 413
    assert scope[MAX_BODY_SIZE_SCOPE_KEY] == 100


@pytest.mark.anyio
async def test_content_length_over_limit_fails_the_apps_first_receive() -> None:
    received: list[Message] = []

    async def reader(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())
        raise AssertionError("receive returned a body over the limit")  # pragma: no cover

    app = RequestBodyLimitMiddleware(reader, 10)
    status, body, receive = await post_raw(app, b"x" * 11, content_length=11)
    assert (status, body) == (413, b"Content Too Large")
    assert (received, receive.calls) == ([], 0)


@pytest.mark.anyio
@pytest.mark.parametrize("level", ["app", "route"])
async def test_response_of_an_app_that_never_reads_an_oversized_body_is_replaced_by_413(
    level: LimitLevel,
) -> None:
    async def ignore_body(request: Request) -> Response:
        return PlainTextResponse("ignored the body")

    app = limited_app(level, 10, ignore_body)
    status, body, receive = await post_raw(app, b"x" * 11, content_length=11)
    assert (status, body) == (413, b"Content Too Large")
    assert receive.calls == 0
    assert (await post_raw(app, b"x" * 10, content_length=10))[:2] == (200, b"ignored the body")


@pytest.mark.anyio
@pytest.mark.parametrize("level", LEVELS)
async def test_streamed_body_crossing_the_limit_is_refused_and_later_chunks_are_never_read(
    level: LimitLevel,
) -> None:
    # No Content-Length: ten chunks of 10 bytes against a limit of 25 bytes.
    status, body, receive = await post_raw(limited_app(level, 25), b"x" * 100, chunk_size=10)
    assert (status, body) == (413, b"Content Too Large")
    assert (receive.calls, receive.bytes_given) == (3, 30)
    # Exactly at the limit, even one byte at a time, passes.
    assert (await post_raw(limited_app(level, 25), b"x" * 25, chunk_size=1))[:2] == (200, b"25")


@pytest.mark.anyio
async def test_non_numeric_content_length_is_ignored_but_the_streamed_count_applies() -> None:
    app = limited_app("app", 10)
    arabic_five = b"\xd9\xa5"
    for content_length in (b"abc", b"-5", b" 5", b"5.0", arabic_five):
        small = await post_raw(app, b"x" * 5, content_length=content_length)
        assert small[:2] == (200, b"5"), content_length
        large = await post_raw(app, b"x" * 50, chunk_size=5, content_length=content_length)
        assert (large[0], large[2].calls) == (413, 3), content_length


@pytest.mark.anyio
async def test_huge_content_length_is_refused() -> None:
    status, _, receive = await post_raw(limited_app("app", 10), b"x", content_length=b"9" * 40)
    assert (status, receive.calls) == (413, 0)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("outer", "inner", "status"),
    [
        pytest.param(10, 1000, 200, id="outer-smaller-than-inner"),
        pytest.param(1000, 10, 413, id="outer-larger-than-inner"),
    ],
)
async def test_innermost_body_limit_wins(outer: int, inner: int, status: int) -> None:
    route = Route("/up", body_length, methods=["POST"], max_body_size=inner)
    app = Starlite(routes=[route], max_body_size=outer)
    assert (await post_raw(app, b"x" * 500, content_length=500))[0] == status
    assert (await post_raw(app, b"x" * 500, chunk_size=50))[0] == status


@pytest.mark.anyio
async def test_innermost_of_three_nested_limits_wins() -> None:
    route = Route("/up", body_length, methods=["POST"], max_body_size=20)
    mount = Mount("/m", routes=[route], max_body_size=1000)
    app = Starlite(routes=[mount], max_body_size=10)
    statuses = [
        (await post_raw(app, b"x" * size, content_length=size, path="/m/up"))[0]
        for size in (20, 21, 500)
    ]
    assert statuses == [200, 413, 413]


@pytest.mark.parametrize("kind", ["file", "stream"])
def test_a_declared_body_over_the_limit_to_a_streamed_response_that_never_reads_it_is_a_413(
    kind: str, tmp_path: Path, backend: Backend
) -> None:
    # The response listens for the client's going while it streams: its listener's first receive
    # is refused, beside the response the limit replaces. The client gets the whole 413.
    (tmp_path / "page.txt").write_text("a page")

    async def page(request: Request) -> Response:
        if kind == "file":
            return FileResponse(tmp_path / "page.txt")
        return StreamingResponse(iter([b"a ", b"page"]))

    app = Starlite(routes=[Route("/page", page)], max_body_size=0)
    with TestClient(app, backend=backend) as client:
        response = client.request("GET", "/page", content=b"x")
    assert (response.status_code, response.text) == (413, "Content Too Large")


@pytest.mark.anyio
async def test_a_middle_limit_below_the_declared_length_defers_to_the_innermost() -> None:
    # FastAPI nests three: its app's and its router's limit, then a route's own, which wins.
    route = Route("/up", body_length, methods=["POST"], max_body_size=1000)
    mount = Mount("/m", routes=[route], max_body_size=100)
    app = Starlite(routes=[mount], max_body_size=100)
    for size in (500, 1000):
        answer = await post_raw(app, b"x" * size, content_length=size, path="/m/up")
        assert answer[:2] == (200, str(size).encode())
    assert (await post_raw(app, b"x" * 1001, content_length=1001, path="/m/up"))[0] == 413


@pytest.mark.anyio
async def test_limit_applies_only_to_the_routes_below_it() -> None:
    limited = Route("/up", body_length, methods=["POST"], max_body_size=10)
    free = Route("/free", body_length, methods=["POST"])
    app = Starlite(routes=[limited, free])
    assert (await post_raw(app, b"x" * 50, content_length=50))[0] == 413
    assert (await post_raw(app, b"x" * 50, content_length=50, path="/free"))[:2] == (200, b"50")


@pytest.mark.parametrize(
    ("app_limit", "route_limit"),
    [(10, None), (None, 10), (1000, 10)],
    ids=["app", "route", "route-inside-app"],
)
def test_custom_http_exception_handler_renders_the_413(
    backend: Backend, app_limit: int | None, route_limit: int | None
) -> None:
    def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"custom": exc.status_code}, status_code=exc.status_code)

    route = Route("/up", body_length, methods=["POST"], max_body_size=route_limit)
    app = Starlite(routes=[route], max_body_size=app_limit)
    app.add_exception_handler(HTTPException, handler)

    def streamed() -> Iterator[bytes]:  # no Content-Length: the body is counted as it comes
        yield b"x" * 6
        yield b"x" * 6

    client = TestClient(app, backend=backend)
    for content in (b"x" * 11, streamed()):  # with a Content-Length, then without
        response = client.post("/up", content=content)
        assert response.status_code == 413
        assert response.json() == {"custom": 413}


def test_oversized_upload_gets_413_not_400(backend: Backend) -> None:
    app = form_app()
    app.max_body_size = 100
    client = TestClient(app, backend=backend)
    response = client.post("/", files={"f": ("big.bin", b"x" * 1000)})
    assert (response.status_code, response.text) == (413, "Content Too Large")


@pytest.mark.anyio
async def test_body_over_the_limit_after_the_response_started_raises() -> None:
    async def start_then_read(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await Request(scope, receive).body()

    app = RequestBodyLimitMiddleware(start_then_read, 5)
    with pytest.raises(HTTPException) as info:
        await post_raw(app, b"x" * 10, chunk_size=3)
    assert info.value.status_code == 413


@pytest.mark.anyio
async def test_body_limit_middleware_passes_websocket_scopes_through() -> None:
    seen: list[str] = []

    async def websocket_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        await send({"type": "websocket.close", "code": 1000, "reason": ""})

    scope = make_scope(type="websocket", scheme="ws", subprotocols=[])
    server = Server(receive=StreamedBody([]))
    await server.run(RequestBodyLimitMiddleware(websocket_app, 0), scope)
    assert seen == ["websocket"]
    assert server.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


def test_websocket_route_and_lifespan_under_a_zero_body_limit_work(backend: Backend) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    mount = Mount("/m", routes=[WebSocketRoute("/ws", echo)], max_body_size=0)
    app = Starlite(routes=[mount], max_body_size=0)
    with TestClient(app, backend=backend) as client, client.websocket_connect("/m/ws") as ws:
        ws.send_text("a message much longer than zero bytes")
        assert ws.receive_text() == "a message much longer than zero bytes"


# ==== Routing ====

Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(label: str) -> Endpoint:
    """An endpoint named `label` that answers with its label, in the body and in `x-endpoint`."""

    async def answer(request: Request) -> Response:
        return PlainTextResponse(label, headers={"x-endpoint": label})

    answer.__name__ = answer.__qualname__ = label
    return answer


async def echo_params(request: Request) -> Response:
    """Each path parameter as [type name, str(value)]."""
    params = {key: [type(value).__name__, str(value)] for key, value in request.path_params.items()}
    return JSONResponse(params)


def echo_endpoint(label: str) -> Endpoint:
    """An endpoint named `label` that answers its path parameters (as echo_params does)."""

    async def answer(request: Request) -> Response:
        response = await echo_params(request)
        response.headers["x-endpoint"] = label
        return response

    answer.__name__ = answer.__qualname__ = label
    return answer


async def echo_urls(request: Request) -> Response:
    """What a handler sees of where it is mounted."""
    return JSONResponse(
        {
            "path": request.scope["path"],
            "root_path": request.scope["root_path"],
            "url": str(request.url),
            "base_url": str(request.base_url),
            "path_params": {key: str(value) for key, value in request.path_params.items()},
        }
    )


class TagMiddleware:
    """Pure ASGI middleware that appends an `x-tag` header to every response it passes."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], tag: str) -> None:
        self.app = app
        self.tag = tag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-tag", self.tag.encode())]
            await send(message)

        await self.app(scope, receive, send_tagged)


# ---- Convertors ----


@pytest.mark.parametrize(
    ("convertor_name", "text", "value"),
    [
        ("str", "alice", "alice"),
        ("str", "caf\u00e9", "caf\u00e9"),
        ("path", "a/b/c.txt", "a/b/c.txt"),
        ("path", "", ""),
        ("int", "0", 0),
        ("int", "42", 42),
        ("float", "3.5", 3.5),
        ("float", "0.25", 0.25),
        (
            "uuid",
            "4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6d",
            uuid.UUID("4e8bd30f8b5a4d6c9a8e1f2f3a4b5c6d"),
        ),
    ],
)
def test_builtin_convertor_converts_and_round_trips(
    convertor_name: str, text: str, value: Any
) -> None:
    convertor = CONVERTOR_TYPES[convertor_name]
    assert re.fullmatch(convertor.regex, text)
    converted = convertor.convert(text)
    assert converted == value
    assert type(converted) is type(value)
    if text:
        assert convertor.to_string(converted) == text


@pytest.mark.parametrize(
    ("convertor_name", "text", "matches"),
    [
        ("str", "a/b", False),
        ("str", "", False),
        ("path", "a/b/", True),
        ("int", "-1", False),
        ("int", "1.5", False),
        ("int", "\u0661\u0662", False),  # Arabic-Indic digits: str.isdigit, but not [0-9]
        ("int", "007", True),
        ("float", "2", True),
        ("float", "1e5", False),
        ("float", "nan", False),
        ("float", "inf", False),
        ("float", ".5", False),
        ("float", "-1.5", False),
        ("uuid", "4E8BD30F-8B5A-4D6C-9A8E-1F2F3A4B5C6D", True),
        ("uuid", "4e8bd30f8b5a4d6c9a8e1f2f3a4b5c6d", True),
        ("uuid", "4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6", False),
        ("uuid", "not-a-uuid", False),
    ],
)
def test_builtin_convertor_regex_accepts_only_its_syntax(
    convertor_name: str, text: str, matches: bool
) -> None:
    assert bool(re.fullmatch(CONVERTOR_TYPES[convertor_name].regex, text)) is matches


def test_convertor_types_maps_names_to_the_builtin_classes() -> None:
    expected = {
        "str": StringConvertor,
        "path": PathConvertor,
        "int": IntegerConvertor,
        "float": FloatConvertor,
        "uuid": UUIDConvertor,
    }
    for name, cls in expected.items():
        assert isinstance(CONVERTOR_TYPES[name], cls)
        assert isinstance(CONVERTOR_TYPES[name], Convertor)


@pytest.mark.parametrize(
    ("value", "text"), [(2.0, "2"), (1.5, "1.5"), (0.0, "0"), (10, "10"), (0.25, "0.25")]
)
def test_float_convertor_to_string_drops_trailing_zeros(value: float, text: str) -> None:
    assert FloatConvertor().to_string(value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.5])
def test_float_convertor_to_string_refuses_nan_infinity_and_negatives(value: float) -> None:
    # No URL path can carry these: the convertor's regex would never match them back.
    with pytest.raises((AssertionError, ValueError)):
        FloatConvertor().to_string(value)


@pytest.mark.parametrize(
    ("convertor", "value"),
    [(StringConvertor(), "a/b"), (StringConvertor(), ""), (IntegerConvertor(), -1)],
)
def test_convertor_to_string_refuses_values_its_regex_cannot_match(
    convertor: Convertor[Any], value: Any
) -> None:
    with pytest.raises((AssertionError, ValueError)):
        convertor.to_string(value)


def test_integer_and_uuid_convertors_format_values() -> None:
    # url_path_for passes a value as the caller gave it: a str of digits formats too.
    assert IntegerConvertor().to_string("12") == "12"  # type: ignore[arg-type]
    value = uuid.UUID("4e8bd30f8b5a4d6c9a8e1f2f3a4b5c6d")
    assert UUIDConvertor().to_string(value) == "4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6d"


class HexConvertor(Convertor[int]):
    regex = "[0-9a-f]+"

    def convert(self, value: str) -> int:
        return int(value, 16)

    def to_string(self, value: int) -> str:
        return format(value, "x")


@pytest.fixture
def hex_convertor() -> Iterator[HexConvertor]:
    """`hex` registered as a URL convertor for one test."""
    convertor = HexConvertor()
    register_url_convertor("hex", convertor)
    yield convertor
    CONVERTOR_TYPES.pop("hex", None)


def test_register_url_convertor_adds_a_named_convertor(hex_convertor: HexConvertor) -> None:
    assert CONVERTOR_TYPES["hex"] is hex_convertor
    regex, path_format, convertors = compile_path("/color/{c:hex}")
    assert convertors == {"c": hex_convertor}
    assert path_format == "/color/{c}"
    assert regex.match("/color/ff0")
    assert not regex.match("/color/xyz")


def test_custom_convertor_converts_in_requests_and_formats_in_urls(
    hex_convertor: HexConvertor, backend: Backend
) -> None:
    router = Router([Route("/color/{c:hex}", echo_params, name="color")])
    client = TestClient(router, backend=backend)
    assert client.get("/color/ff").json() == {"c": ["int", "255"]}
    assert client.get("/color/zz").status_code == 404
    assert router.url_path_for("color", c=4095) == "/color/fff"


# ---- compile_path ----


@pytest.mark.parametrize(
    ("path", "path_format", "convertor_types", "matching", "params", "not_matching"),
    [
        ("/", "/", {}, "/", {}, ["", "/x"]),
        ("/users", "/users", {}, "/users", {}, ["/users/", "/users/1", "/user"]),
        (
            "/users/{name}",
            "/users/{name}",
            {"name": StringConvertor},
            "/users/alice",
            {"name": "alice"},
            ["/users/", "/users/a/b"],
        ),
        (
            "/users/{id:int}/posts/{slug:str}",
            "/users/{id}/posts/{slug}",
            {"id": IntegerConvertor, "slug": StringConvertor},
            "/users/7/posts/hello",
            {"id": "7", "slug": "hello"},
            ["/users/x/posts/hello", "/users/7/posts/"],
        ),
        (
            "/files/{rest:path}",
            "/files/{rest}",
            {"rest": PathConvertor},
            "/files/a/b.txt",
            {"rest": "a/b.txt"},
            ["/files", "/file/a"],
        ),
        (
            "/price/{value:float}",
            "/price/{value}",
            {"value": FloatConvertor},
            "/price/9.99",
            {"value": "9.99"},
            ["/price/9.", "/price/abc"],
        ),
        (
            "/items/{key:uuid}",
            "/items/{key}",
            {"key": UUIDConvertor},
            "/items/4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6d",
            {"key": "4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6d"},
            ["/items/4e8bd30f"],
        ),
        # Regex metacharacters in the literal text are literal.
        ("/a.b/(c)+", "/a.b/(c)+", {}, "/a.b/(c)+", {}, ["/aXb/(c)+", "/a.b/cc"]),
        (
            "/v{version:int}.json",
            "/v{version}.json",
            {"version": IntegerConvertor},
            "/v2.json",
            {"version": "2"},
            ["/v2xjson", "/vx.json"],
        ),
    ],
)
def test_compile_path_returns_regex_format_and_convertors(
    path: str,
    path_format: str,
    convertor_types: dict[str, type],
    matching: str,
    params: dict[str, str],
    not_matching: list[str],
) -> None:
    regex, compiled_format, convertors = compile_path(path)
    assert compiled_format == path_format
    assert {key: type(value) for key, value in convertors.items()} == convertor_types
    match = regex.match(matching)
    assert match is not None
    assert match.groupdict() == params
    for other in not_matching:
        assert regex.match(other) is None, other


def test_compile_path_for_a_host_matches_case_insensitively() -> None:
    regex, path_format, convertors = compile_path("{subdomain}.example.org")
    assert path_format == "{subdomain}.example.org"
    assert set(convertors) == {"subdomain"}
    match = regex.match("API.Example.ORG")
    assert match is not None
    assert match.groupdict() == {"subdomain": "API"}
    assert regex.match("api.example.org.evil.com") is None
    assert regex.match("api.exampleXorg") is None


# ---- Start-up errors ----


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: Route("users", endpoint("e")), ["/"]),
        (lambda: Route("", endpoint("e")), ["/"]),
        (lambda: Mount("static", app=Router()), ["/"]),
        (lambda: Route("/users/{id:nope}", endpoint("e")), ["nope"]),
        (lambda: compile_path("/{x:nope}"), ["nope"]),
        (lambda: Route("/{a}/{a}", endpoint("e")), ["a"]),
        (lambda: Route("/{a}/{b:int}/{a:int}", endpoint("e")), ["a"]),
        (lambda: compile_path("/{a}/x/{a}"), ["a"]),
        (lambda: Mount("/m"), ["app", "routes"]),
        (lambda: Mount("/m", app=Router(), routes=[]), ["app", "routes"]),
    ],
    ids=[
        "route-without-slash",
        "route-empty",
        "mount-without-slash",
        "unknown-convertor",
        "compile-path-unknown-convertor",
        "duplicate-param",
        "duplicate-param-different-convertors",
        "compile-path-duplicate",
        "mount-without-app-or-routes",
        "mount-with-app-and-routes",
    ],
)
def test_configuration_mistake_raises_value_error_at_start_up(
    build: Callable[[], object], names: list[str]
) -> None:
    with pytest.raises(ValueError, match=r"\w") as info:
        build()
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/{id}/{id}", "Duplicated param name id at path /{id}/{id}"),
        ("/{id}/{x}/{id}/{x}", "Duplicated param names id, x at path /{id}/{x}/{id}/{x}"),
        ("{sub}.{sub}.example.org", "Duplicated param name sub at path {sub}.{sub}.example.org"),
    ],
)
def test_duplicated_param_names_are_all_named_in_starlettes_words(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        compile_path(path)


# ---- Route ----


def test_route_with_function_endpoint_answers_get_and_head(backend: Backend) -> None:
    client = TestClient(Router([Route("/", endpoint("home"))]), backend=backend)
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "home"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    head = client.head("/")
    assert head.status_code == 200
    assert head.content == b""


def test_route_method_not_allowed_answers_405_with_allow(backend: Backend) -> None:
    client = TestClient(Router([Route("/", endpoint("home"))]), backend=backend)
    response = client.post("/")
    assert response.status_code == 405
    assert response.text == "Method Not Allowed"
    assert allow_set(response) == {"GET", "HEAD"}


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        (None, {"GET", "HEAD"}),
        (["GET"], {"GET", "HEAD"}),
        (["get", "Post"], {"GET", "HEAD", "POST"}),
        (["POST", "PUT"], {"POST", "PUT"}),
        (("DELETE",), {"DELETE"}),
        ({"HEAD"}, {"HEAD"}),
    ],
)
def test_route_methods_are_upper_cased_and_get_adds_head(
    methods: Sequence[str] | None, expected: set[str]
) -> None:
    assert Route("/", endpoint("e"), methods=methods).methods == expected


def test_route_with_post_only_rejects_get_and_head(backend: Backend) -> None:
    client = TestClient(Router([Route("/x", endpoint("x"), methods=["POST"])]), backend=backend)
    assert client.post("/x").text == "x"
    for method in ("GET", "HEAD", "PUT"):
        response = client.request(method, "/x")
        assert response.status_code == 405
        assert allow_set(response) == {"POST"}


def test_sync_endpoint_runs_in_a_worker_thread(backend: Backend) -> None:
    threads: dict[str, int] = {}

    def sync_endpoint(request: Request) -> Response:
        threads["handler"] = threading.get_ident()
        # Only a worker thread started by anyio can call back into the event loop's thread.
        threads["loop"] = anyio.from_thread.run_sync(threading.get_ident)
        return PlainTextResponse("sync")

    client = TestClient(Router([Route("/", sync_endpoint)]), backend=backend)
    assert client.get("/").text == "sync"
    assert threads["handler"] != threads["loop"]


def test_route_path_params_are_converted(backend: Backend) -> None:
    router = Router(
        [
            Route("/users/{id:int}/files/{rest:path}", echo_params),
            Route("/price/{value:float}", echo_params),
            Route("/items/{key:uuid}", echo_params),
        ]
    )
    client = TestClient(router, backend=backend)
    assert client.get("/users/12/files/a/b.txt").json() == {
        "id": ["int", "12"],
        "rest": ["str", "a/b.txt"],
    }
    assert client.get("/price/2.50").json() == {"value": ["float", "2.5"]}
    key = "4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6d"
    assert client.get(f"/items/{key.upper()}").json() == {"key": ["UUID", key]}


def test_route_path_params_are_percent_decoded(backend: Backend) -> None:
    client = TestClient(Router([Route("/users/{name}", echo_params)]), backend=backend)
    assert client.get("/users/caf%C3%A9%20au%20lait").json() == {
        "name": ["str", "caf\u00e9 au lait"]
    }


class ItemsEndpoint(HTTPEndpoint):
    async def get(self, request: Request) -> Response:
        return PlainTextResponse("list")

    async def post(self, request: Request) -> Response:
        return PlainTextResponse("create", status_code=201)


def test_route_with_http_endpoint_class_dispatches_by_method(backend: Backend) -> None:
    route = Route("/items", ItemsEndpoint)
    assert route.methods is None
    assert route.name == "ItemsEndpoint"
    client = TestClient(Router([route]), backend=backend)
    assert client.get("/items").text == "list"
    assert client.post("/items").status_code == 201
    assert client.head("/items").status_code == 200
    response = client.delete("/items")
    assert response.status_code == 405
    assert allow_set(response) == {"GET", "HEAD", "POST"}


def test_route_with_http_endpoint_class_and_methods_filters_first(backend: Backend) -> None:
    client = TestClient(Router([Route("/items", ItemsEndpoint, methods=["GET"])]), backend=backend)
    assert client.get("/items").text == "list"
    response = client.post("/items")
    assert response.status_code == 405
    assert allow_set(response) == {"GET", "HEAD"}


class RawApp:
    """An ASGI app instance: any method reaches it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"raw {scope['method']}")(scope, receive, send)


def test_route_with_asgi_instance_endpoint_accepts_every_method(backend: Backend) -> None:
    client = TestClient(Router([Route("/raw", RawApp())]), backend=backend)
    assert client.get("/raw").text == "raw GET"
    assert client.request("PURGE", "/raw").text == "raw PURGE"


def test_route_with_partial_endpoint_is_a_request_response_function(backend: Backend) -> None:
    async def greet(request: Request, greeting: str) -> Response:
        return PlainTextResponse(greeting)

    route = Route("/hi", functools.partial(greet, greeting="hello"))
    assert route.methods == {"GET", "HEAD"}
    assert TestClient(Router([route]), backend=backend).get("/hi").text == "hello"


def test_route_with_bound_method_endpoint(backend: Backend) -> None:
    class Greeter:
        def __init__(self, word: str) -> None:
            self.word = word

        async def greet(self, request: Request) -> Response:
            return PlainTextResponse(self.word)

    route = Route("/hi", Greeter("hey").greet)
    assert route.name == "greet"
    assert TestClient(Router([route]), backend=backend).get("/hi").text == "hey"


async def plain_function(request: Request) -> Response:
    return PlainTextResponse("")


class PlainClass:
    pass


def test_get_name_uses_dunder_name_or_the_class_name() -> None:
    assert get_name(plain_function) == "plain_function"
    assert get_name(PlainClass) == "PlainClass"
    assert get_name(RawApp()) == "RawApp"
    assert get_name(ItemsEndpoint) == "ItemsEndpoint"


def test_route_name_defaults_to_endpoint_name_and_can_be_given() -> None:
    assert Route("/", plain_function).name == "plain_function"
    assert Route("/", RawApp()).name == "RawApp"
    assert Route("/", plain_function, name="home").name == "home"
    assert Route("/users/{id}", plain_function).path == "/users/{id}"


def test_route_middleware_wraps_only_that_route_outermost_first(backend: Backend) -> None:
    router = Router(
        [
            Route(
                "/wrapped",
                endpoint("wrapped"),
                middleware=[
                    Middleware(TagMiddleware, tag="outer"),
                    Middleware(TagMiddleware, "in"),
                ],
            ),
            Route("/bare", endpoint("bare")),
        ]
    )
    client = TestClient(router, backend=backend)
    # The inner middleware sees the response first, so its header comes first.
    assert client.get("/wrapped").headers.get_list("x-tag") == ["in", "outer"]
    assert client.get("/bare").headers.get_list("x-tag") == []


def test_route_is_an_asgi_app_on_its_own(backend: Backend) -> None:
    client = TestClient(Route("/only", endpoint("only")), backend=backend)
    assert client.get("/only").text == "only"
    response = client.get("/other")
    assert response.status_code == 404
    assert response.text == "Not Found"


def test_request_response_turns_a_function_into_an_asgi_app(backend: Backend) -> None:
    def sync_page(request: Request) -> Response:
        return PlainTextResponse(f"page {request.url.path}")

    client = TestClient(request_response(sync_page), backend=backend)
    assert client.get("/anything").text == "page /anything"


def test_route_matches_reports_full_partial_and_none() -> None:
    route = Route("/users/{id:int}", plain_function, methods=["GET"])
    match, child_scope = route.matches(make_scope("/users/3"))
    assert match is Match.FULL
    assert child_scope["path_params"] == {"id": 3}
    assert child_scope["endpoint"] is plain_function
    match, child_scope = route.matches(make_scope("/users/3", method="DELETE"))
    assert match is Match.PARTIAL
    assert child_scope["path_params"] == {"id": 3}
    assert route.matches(make_scope("/users/x"))[0] is Match.NONE
    assert route.matches({"type": "websocket", "path": "/users/3", "headers": []})[0] is Match.NONE
    assert [member.name for member in Match] == ["NONE", "PARTIAL", "FULL"]


def test_route_url_path_for_needs_the_name_and_exactly_its_params() -> None:
    route = Route("/users/{id:int}", plain_function, name="user")
    path = route.url_path_for("user", id=4)
    assert path == "/users/4"
    assert isinstance(path, URLPath)
    assert path.protocol == "http"
    with pytest.raises(NoMatchFound, match="other"):
        route.url_path_for("other", id=4)
    with pytest.raises(NoMatchFound, match="user"):
        route.url_path_for("user")
    with pytest.raises(NoMatchFound, match="user"):
        route.url_path_for("user", id=4, extra=1)


def test_no_match_found_is_an_exception_naming_route_and_params() -> None:
    error = NoMatchFound("user", {"id": 1, "slug": "x"})
    assert isinstance(error, Exception)
    assert "user" in str(error)
    assert "id" in str(error)
    assert "slug" in str(error)


# ---- Mount ----


def test_mount_with_routes_routes_the_remaining_path(backend: Backend) -> None:
    router = Router(
        [Mount("/api", routes=[Route("/users/{id:int}", echo_urls), Route("/", endpoint("idx"))])]
    )
    client = TestClient(router, backend=backend)
    assert client.get("/api/users/3").json() == {
        "path": "/api/users/3",
        "root_path": "/api",
        "url": "http://testserver/api/users/3",
        "base_url": "http://testserver/",
        "path_params": {"id": "3"},
    }
    assert client.get("/api/").text == "idx"
    assert client.get("/api/nope").status_code == 404


def test_mount_with_app_gives_it_root_path_and_whole_path(backend: Backend) -> None:
    seen: list[tuple[str, str]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["root_path"], scope["path"]))
        await PlainTextResponse("app")(scope, receive, send)

    client = TestClient(Router([Mount("/static", app=app)]), backend=backend)
    assert client.get("/static/css/site.css").text == "app"
    assert client.get("/static/").text == "app"
    assert seen == [("/static", "/static/css/site.css"), ("/static", "/static/")]


def test_mount_does_not_match_a_longer_segment(backend: Backend) -> None:
    router = Router([Mount("/static", app=RawApp()), Route("/staticfoo", endpoint("foo"))])
    client = TestClient(router, backend=backend, follow_redirects=False)
    assert client.get("/staticfoo").text == "foo"
    # The bare prefix is not the mount: the router redirects to the slashed form.
    response = client.get("/static")
    assert response.status_code == 307
    assert response.headers["location"] == "http://testserver/static/"


def test_mount_path_trailing_slash_is_ignored(backend: Backend) -> None:
    mount = Mount("/api/", routes=[Route("/x", endpoint("x"))])
    assert mount.path == "/api"
    assert TestClient(Router([mount]), backend=backend).get("/api/x").text == "x"


def test_nested_mounts_append_root_path_and_merge_path_params(backend: Backend) -> None:
    router = Router(
        [
            Mount(
                "/org/{org}",
                routes=[Mount("/team/{team}", routes=[Route("/users/{uid:int}", echo_urls)])],
            )
        ]
    )
    data = TestClient(router, backend=backend).get("/org/acme/team/red/users/9").json()
    assert data == {
        "path": "/org/acme/team/red/users/9",
        "root_path": "/org/acme/team/red",
        "url": "http://testserver/org/acme/team/red/users/9",
        "base_url": "http://testserver/",
        "path_params": {"org": "acme", "team": "red", "uid": "9"},
    }


def test_mount_under_an_app_root_path_keeps_url_and_base_url(backend: Backend) -> None:
    router = Router([Mount("/api", routes=[Route("/users/{id}", echo_urls)])])
    client = TestClient(router, backend=backend, root_path="/root")
    assert client.get("/root/api/users/5").json() == {
        "path": "/root/api/users/5",
        "root_path": "/root/api",
        "url": "http://testserver/root/api/users/5",
        "base_url": "http://testserver/root/",
        "path_params": {"id": "5"},
    }


def test_url_for_inside_nested_mounts_is_absolute_from_the_app_root(backend: Backend) -> None:
    async def links(request: Request) -> Response:
        return JSONResponse(
            {
                "self": str(request.url_for("api:v1:user", id=7)),
                "home": str(request.url_for("home")),
                "file": str(request.url_for("static", path="/css/a.css")),
            }
        )

    router = Router(
        [
            Route("/", endpoint("home"), name="home"),
            Mount(
                "/api",
                name="api",
                routes=[
                    Mount("/v1", name="v1", routes=[Route("/users/{id:int}", links, name="user")])
                ],
            ),
            Mount("/static", app=RawApp(), name="static"),
        ]
    )
    expected = {
        "self": "http://testserver{root}/api/v1/users/7",
        "home": "http://testserver{root}/",
        "file": "http://testserver{root}/static/css/a.css",
    }
    client = TestClient(router, backend=backend)
    data = client.get("/api/v1/users/1").json()
    assert data == {key: value.format(root="") for key, value in expected.items()}
    rooted = TestClient(router, backend=backend, root_path="/root")
    data = rooted.get("/root/api/v1/users/1").json()
    assert data == {key: value.format(root="/root") for key, value in expected.items()}


def test_url_for_returns_a_url(backend: Backend) -> None:
    seen: list[object] = []

    async def page(request: Request) -> Response:
        seen.append(request.url_for("page"))
        return PlainTextResponse("")

    TestClient(Router([Route("/page", page)]), backend=backend).get("/page")
    assert isinstance(seen[0], URL)
    assert seen[0] == "http://testserver/page"


def test_mount_url_path_for_names_the_mount_or_its_children() -> None:
    router = Router(
        [
            Mount("/static", app=RawApp(), name="static"),
            Mount(
                "/api", name="api", routes=[Route("/users/{id:int}", plain_function, name="user")]
            ),
            Mount("/anon", routes=[Route("/about", plain_function, name="about")]),
        ]
    )
    assert router.url_path_for("static", path="/img/logo.png") == "/static/img/logo.png"
    assert router.url_path_for("static", path="img/logo.png") == "/static/img/logo.png"
    assert router.url_path_for("api:user", id=3) == "/api/users/3"
    assert router.url_path_for("about") == "/anon/about"
    with pytest.raises(NoMatchFound):
        router.url_path_for("user", id=3)
    with pytest.raises(NoMatchFound):
        router.url_path_for("api:user")
    with pytest.raises(NoMatchFound):
        router.url_path_for("static")


def test_mount_url_path_for_keeps_a_prefix_parameter_not_given_as_a_placeholder() -> None:
    mount = Mount("/{tenant}", routes=[Route("/users", plain_function, name="users")])
    assert mount.url_path_for("users") == "/{tenant}/users"
    assert mount.url_path_for("users", tenant="acme") == "/acme/users"
    with pytest.raises(NoMatchFound):
        mount.url_path_for("users", tenant="acme", extra="x")


def test_mount_routes_exposes_the_child_routes() -> None:
    child = Route("/x", plain_function)
    assert Mount("/m", routes=[child]).routes == [child]
    inner = Router([child])
    assert Mount("/m", app=inner).routes == [child]
    assert Mount("/m", app=RawApp()).routes == []


def test_mount_middleware_wraps_everything_inside_the_mount(backend: Backend) -> None:
    router = Router(
        [
            Mount(
                "/m",
                routes=[Route("/x", endpoint("x"))],
                middleware=[Middleware(TagMiddleware, tag="mount")],
            ),
            Route("/y", endpoint("y")),
        ]
    )
    client = TestClient(router, backend=backend)
    assert client.get("/m/x").headers.get_list("x-tag") == ["mount"]
    missing = client.get("/m/missing")
    assert missing.status_code == 404
    assert missing.headers.get_list("x-tag") == ["mount"]
    assert client.get("/y").headers.get_list("x-tag") == []


def test_mount_path_param_is_converted(backend: Backend) -> None:
    router = Router([Mount("/v{version:int}", routes=[Route("/info", echo_params)])])
    client = TestClient(router, backend=backend)
    assert client.get("/v2/info").json() == {"version": ["int", "2"]}
    assert client.get("/vX/info").status_code == 404


# ---- Host ----


def host_router() -> Router:
    api = Router([Route("/", echo_params, name="root"), Route("/users", endpoint("api-users"))])
    return Router(
        [
            Host("{sub}.example.org", app=api, name="sub"),
            Host("[::1]", app=Router([Route("/", endpoint("ipv6"))])),
            Host("localhost:8000", app=Router([Route("/", endpoint("local"))])),
            Route("/", endpoint("fallback")),
        ]
    )


@pytest.mark.parametrize(
    ("host", "path", "status", "body"),
    [
        ("api.example.org", "/", 200, '{"sub":["str","api"]}'),
        ("API.Example.ORG", "/", 200, '{"sub":["str","api"]}'),
        ("api.example.org:8443", "/", 200, '{"sub":["str","api"]}'),
        ("api.example.org", "/users", 200, "api-users"),
        ("api.example.org", "/nope", 404, "Not Found"),
        ("[::1]", "/", 200, "ipv6"),
        ("[::1]:8000", "/", 200, "ipv6"),
        ("[::2]", "/", 200, "fallback"),
        ("localhost", "/", 200, "local"),
        ("localhost:9999", "/", 200, "local"),
        ("example.org", "/", 200, "fallback"),
        ("a.b.example.org", "/", 200, '{"sub":["str","a.b"]}'),  # `{sub}` is any non-slash text
        ("testserver", "/", 200, "fallback"),
        ("testserver", "/users", 404, "Not Found"),
    ],
)
def test_host_matches_hostname_case_insensitively_ignoring_port(
    host: str, path: str, status: int, body: str, backend: Backend
) -> None:
    response = TestClient(host_router(), backend=backend).get(path, headers={"host": host})
    assert response.status_code == status
    assert response.text == body


@pytest.mark.parametrize(
    "host", ["api.example.org:000080", "api.example.org:65536", "api.example.org:100000"]
)
def test_host_route_ignores_any_port_rfc_3986_allows(host: str, backend: Backend) -> None:
    response = TestClient(host_router(), backend=backend).get("/users", headers={"host": host})
    assert response.text == "api-users"


def test_host_route_matches_ipv6_and_ipvfuture_literals(backend: Backend) -> None:
    router = Router(
        [
            Host("[2001:db8::1]", app=PlainTextResponse("documentation")),
            Host("[v1.foo]", app=PlainTextResponse("future")),
            Route("/", endpoint("fallback")),
        ]
    )
    client = TestClient(router, backend=backend)
    assert client.get("/", headers={"host": "[2001:DB8::1]:8000"}).text == "documentation"
    assert client.get("/", headers={"host": "[v1.foo]"}).text == "future"
    assert client.get("/", headers={"host": "[v1.foo]:81"}).text == "future"


@pytest.mark.parametrize(
    "host",
    [None, "evil.com/x", "[::1", "a b", "api.example.org:port", "[:::]", "[::1]x", "[V1.foo]"],
)
def test_host_route_ignores_a_missing_or_malformed_host_header(
    host: str | None, backend: Backend
) -> None:
    headers = {} if host is None else {"host": host}
    server = Server(http_request(), then="wait")
    answer = anyio.run(server.run, host_router(), make_scope("/", headers=headers), backend=backend)
    assert answer.body == b"fallback"


def test_host_url_path_for_carries_the_host() -> None:
    router = host_router()
    path = router.url_path_for("sub:root", sub="api")
    assert path == "/"
    assert path.host == "api.example.org"
    assert path.make_absolute_url("https://www.example.org/") == "https://api.example.org/"
    whole = router.url_path_for("sub", sub="www", path="/about")
    assert whole == "/about"
    assert whole.host == "www.example.org"


def test_host_url_path_for_keeps_the_port_of_the_host_pattern() -> None:
    router = Router(
        [
            Host("port.example.org:3600", app=Router([Route("/", plain_function, name="home")])),
            Host("{sub}.example.org:8443", app=Router([Route("/x", plain_function, name="x")])),
        ]
    )
    home = router.url_path_for("home")
    assert home.host == "port.example.org:3600"
    assert home.make_absolute_url("https://whatever") == "https://port.example.org:3600/"
    assert router.url_path_for("x", sub="api").host == "api.example.org:8443"


def test_host_url_path_for_keeps_a_host_parameter_not_given_as_a_placeholder() -> None:
    router = Router([Host("{sub}.example.org", app=Router([Route("/", plain_function, name="r")]))])
    assert router.url_path_for("r").host == "{sub}.example.org"


def test_url_for_inside_a_host_points_at_that_host(backend: Backend) -> None:
    async def link(request: Request) -> Response:
        return PlainTextResponse(str(request.url_for("tenant:page", tenant="b", id=2)))

    app = Router([Route("/page/{id:int}", link, name="page")])
    router = Router([Host("{tenant}.example.org", app=app, name="tenant")])
    response = TestClient(router, backend=backend).get("/page/1", headers={"host": "a.example.org"})
    assert response.text == "http://b.example.org/page/2"


def test_host_matches_reports_path_params_and_endpoint() -> None:
    app = Router()
    host = Host("{sub}.example.org", app=app)
    match, child_scope = host.matches(make_scope("/", headers={"host": "Docs.Example.org"}))
    assert match is Match.FULL
    assert child_scope["path_params"] == {"sub": "docs"}
    assert host.matches(make_scope("/", headers={"host": "example.com"}))[0] is Match.NONE
    assert host.routes == []


# ---- Router ----


def test_router_default_is_404_not_found(backend: Backend) -> None:
    response = TestClient(Router(), backend=backend).get("/anything")
    assert response.status_code == 404
    assert response.text == "Not Found"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_router_default_app_answers_unmatched_requests(backend: Backend) -> None:
    router = Router([Route("/", endpoint("home"))], default=RawApp())
    client = TestClient(router, backend=backend)
    assert client.get("/").text == "home"
    assert client.post("/missing").text == "raw POST"


def test_router_not_found_override_answers_unmatched_requests(backend: Backend) -> None:
    class CustomNotFound(Router):
        async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
            await PlainTextResponse("nothing here", status_code=404)(scope, receive, send)

    client = TestClient(CustomNotFound([Route("/", endpoint("home"))]), backend=backend)
    assert client.get("/").text == "home"
    missing = client.get("/missing")
    assert (missing.status_code, missing.text) == (404, "nothing here")


def test_router_app_overridden_in_a_subclass_and_awaited_routes_each_kind_of_request(
    backend: Backend,
) -> None:
    # Router.app returns the awaitable it chose (a plain method, a frame fewer): a subclass that
    # awaits super().app still routes hits, 405s, redirects, 404s and the lifespan.
    seen: list[str] = []

    class Noting(Router):
        async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["type"])
            await super().app(scope, receive, send)

    routes = [Route("/", endpoint("home")), Route("/users/{id:int}", endpoint("user"))]
    with TestClient(Noting(routes), backend=backend, follow_redirects=False) as client:
        assert client.get("/").text == "home"
        assert client.get("/users/3").text == "user"
        assert client.post("/").status_code == 405
        assert client.get("/users/3/").headers["location"] == "http://testserver/users/3"
        assert client.get("/missing").status_code == 404
    assert seen == ["lifespan"] + ["http"] * 5


def test_app_answers_404_and_405_like_the_router(backend: Backend) -> None:
    client = TestClient(Starlite(routes=[Route("/", endpoint("home"))]), backend=backend)
    missing = client.get("/missing")
    assert (missing.status_code, missing.text) == (404, "Not Found")
    wrong = client.put("/")
    assert (wrong.status_code, wrong.text) == (405, "Method Not Allowed")
    assert allow_set(wrong) == {"GET", "HEAD"}


@pytest.mark.parametrize(
    ("routes", "path", "location"),
    [
        (["/users"], "/users/", "http://testserver/users"),
        (["/users"], "/users///", "http://testserver/users"),
        (["/users/"], "/users", "http://testserver/users/"),
        (["/users/{id:int}"], "/users/3/", "http://testserver/users/3"),
        (["/users/{id:int}/"], "/users/3", "http://testserver/users/3/"),
        (["/users"], "/users/?page=2&q=a", "http://testserver/users?page=2&q=a"),
    ],
)
def test_redirect_slashes_redirects_to_the_other_form(
    routes: list[str], path: str, location: str, backend: Backend
) -> None:
    router = Router([Route(route, endpoint("e"), methods=["GET", "POST"]) for route in routes])
    client = TestClient(router, backend=backend, follow_redirects=False)
    for method in ("GET", "POST"):
        response = client.request(method, path)
        assert response.status_code == 307
        assert response.headers["location"] == location


def test_redirect_slashes_into_a_mount(backend: Backend) -> None:
    router = Router(
        [Mount("/m", routes=[Route("/", endpoint("m-root")), Route("/x", endpoint("x"))])]
    )
    client = TestClient(router, backend=backend, follow_redirects=False)
    assert client.get("/m").headers["location"] == "http://testserver/m/"
    # Inside the mount, its own router redirects, keeping the whole path.
    assert client.get("/m/x/").headers["location"] == "http://testserver/m/x"
    assert client.get("/m/", follow_redirects=True).text == "m-root"


def test_redirect_slashes_can_be_turned_off(backend: Backend) -> None:
    router = Router([Route("/users", endpoint("u"))], redirect_slashes=False)
    client = TestClient(router, backend=backend, follow_redirects=False)
    assert client.get("/users/").status_code == 404


def test_redirect_slashes_never_redirects_the_root(backend: Backend) -> None:
    router = Router([Route("/{name}/", endpoint("e"))])
    client = TestClient(router, backend=backend, follow_redirects=False)
    assert client.get("/").status_code == 404


def test_router_middleware_wraps_matches_and_misses(backend: Backend) -> None:
    router = Router([Route("/", endpoint("home"))], middleware=[Middleware(TagMiddleware, "r")])
    client = TestClient(router, backend=backend)
    assert client.get("/").headers.get_list("x-tag") == ["r"]
    assert client.get("/missing").headers.get_list("x-tag") == ["r"]
    assert client.post("/").headers.get_list("x-tag") == ["r"]


def test_router_url_path_for_searches_routes_in_order() -> None:
    router = Router(
        [
            Route("/first/{id}", plain_function, name="dup"),
            Route("/second/{id}", plain_function, name="dup"),
            Route("/other", plain_function, name="other"),
        ]
    )
    assert router.url_path_for("dup", id="a") == "/first/a"
    assert router.url_path_for("other") == "/other"
    with pytest.raises(NoMatchFound, match="missing"):
        router.url_path_for("missing")


def test_app_url_path_for_and_request_url_for(backend: Backend) -> None:
    async def link(request: Request) -> Response:
        return PlainTextResponse(str(request.url_for("user", id=5)))

    app = Starlite(routes=[Route("/users/{id:int}", link, name="user")])
    assert app.url_path_for("user", id=1) == "/users/1"
    assert TestClient(app, backend=backend).get("/users/1").text == "http://testserver/users/5"


def test_scope_has_route_endpoint_router_and_path_params(backend: Backend) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: Request) -> Response:
        seen.update(request.scope)
        return PlainTextResponse("")

    route = Route("/items/{id:int}", handler)
    mount = Mount("/shop/{shop}", routes=[route])
    router = Router([Route("/", endpoint("home")), mount])
    TestClient(router, backend=backend).get("/shop/main/items/4")
    assert seen["route"] is route
    assert seen["endpoint"] is handler
    assert seen["router"] is router
    assert seen["path_params"] == {"shop": "main", "id": 4}


def test_scope_route_is_the_matched_route_of_an_app(backend: Backend) -> None:
    seen: list[Scope] = []

    async def handler(request: Request) -> Response:
        seen.append(request.scope)
        return PlainTextResponse("")

    routes = [Route("/a", handler), Route("/{x}", handler)]
    app = Starlite(routes=routes)
    client = TestClient(app, backend=backend)
    client.get("/b")
    client.get("/a")
    assert [scope["route"] for scope in seen] == [routes[1], routes[0]]
    assert seen[0]["route"] is routes[1]
    assert seen[0]["app"] is app
    assert seen[0]["router"] is app.router


def test_routes_added_after_construction_are_matched_in_order(backend: Backend) -> None:
    router = Router([Route("/a", endpoint("a"))])
    client = TestClient(router, backend=backend)
    assert client.get("/b").status_code == 404
    router.routes.append(Route("/b", endpoint("b")))
    assert client.get("/b").text == "b"
    router.routes.insert(0, Route("/{anything}", endpoint("catch-all")))
    assert client.get("/a").text == "catch-all"
    del router.routes[0]
    assert client.get("/a").text == "a"


def test_app_add_route_mount_and_host_after_first_request(backend: Backend) -> None:
    app = Starlite(routes=[Route("/", endpoint("home"))])
    client = TestClient(app, backend=backend)
    assert client.get("/late").status_code == 404
    app.add_route("/late", endpoint("late"))
    app.mount("/sub", app=Router([Route("/x", endpoint("sub-x"))]), name="sub")
    app.host("admin.example.org", app=Router([Route("/", endpoint("admin"))]), name="admin")
    assert client.get("/late").text == "late"
    assert client.get("/sub/x").text == "sub-x"
    assert client.get("/", headers={"host": "admin.example.org"}).text == "home"
    assert app.url_path_for("sub", path="/x") == "/sub/x"
    assert [type(route) for route in app.routes] == [Route, Route, Mount, Host]


# ---- url_path_for and URLPath ----


def test_url_path_for_keeps_a_value_that_looks_like_a_placeholder() -> None:
    router = Router([Route("/{a}/{b}", plain_function, name="ab")])
    assert router.url_path_for("ab", a="{b}", b="x") == "/{b}/x"
    assert router.url_path_for("ab", a="x", b="{a}") == "/x/{a}"


def test_replace_params_fills_a_format_and_pops_the_values_it_used() -> None:
    _, path_format, convertors = compile_path("/users/{id:int}/posts/{slug}")
    params: dict[str, Any] = {"id": 7, "slug": "{id}", "page": 2}
    path, remaining = replace_params(path_format, convertors, params)
    assert path == "/users/7/posts/{id}"  # one pass: the value is not filled in again
    assert remaining is params  # Starlette's contract: the given dict, the values used popped
    assert params == {"page": 2}


def test_replace_params_leaves_a_placeholder_without_a_value() -> None:
    _, path_format, convertors = compile_path("/{org}/{repo:path}")
    assert replace_params(path_format, convertors, {"repo": "a/b"}) == ("/{org}/a/b", {})
    assert replace_params(path_format, convertors, {}) == ("/{org}/{repo}", {})
    assert replace_params("/static", {}, {"x": 1}) == ("/static", {"x": 1})


def test_replace_params_writes_each_value_with_its_convertor() -> None:
    _, path_format, convertors = compile_path("/{n:int}/{f:float}/{u:uuid}")
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    path, _ = replace_params(path_format, convertors, {"n": 3, "f": 1.5, "u": value})
    assert path == f"/3/1.5/{value}"
    with pytest.raises(AssertionError):  # a value the route could not match, as in Starlette
        replace_params(path_format, convertors, {"n": -1})


def test_a_host_or_a_mount_names_every_param_it_could_not_use() -> None:
    inner = Router([Route("/", plain_function)])
    host = Host("{sub}.example.org", app=inner)
    with pytest.raises(NoMatchFound, match='"path, sub"'):
        host.url_path_for("nothing", sub="api", path="/x")
    mount = Mount("/{tenant}", app=inner, name="m")
    with pytest.raises(NoMatchFound, match='"extra, path, tenant"'):
        mount.url_path_for("m", tenant="a", path="/x", extra=1)


@pytest.mark.parametrize(
    ("route_path", "params", "expected"),
    [
        ("/files/{name}", {"name": "a\\b"}, "/files/a%5Cb"),
        ("/{rest:path}", {"rest": "/evil.com"}, "/%2Fevil.com"),
        ("/{rest:path}", {"rest": "//evil.com/x"}, "/%2F/evil.com/x"),
        ("/{rest:path}", {"rest": "\\evil.com"}, "/%5Cevil.com"),
        ("/{rest:path}", {"rest": "a//b"}, "/a//b"),
    ],
)
def test_url_path_for_encodes_backslash_and_a_leading_double_slash(
    route_path: str, params: dict[str, str], expected: str
) -> None:
    path = Router([Route(route_path, plain_function, name="r")]).url_path_for("r", **params)
    assert path == expected
    absolute = path.make_absolute_url("http://example.org")
    assert absolute.netloc == "example.org"
    assert urlsplit(str(absolute)).netloc == "example.org"


@pytest.mark.parametrize(
    ("route_path", "params", "expected"),
    [
        ("/users/{id:int}", {"id": 5}, "/users/5"),
        ("/users/{id:int}", {"id": "12"}, "/users/12"),
        ("/price/{v:float}", {"v": 2.0}, "/price/2"),
        ("/price/{v:float}", {"v": 2.5}, "/price/2.5"),
        (
            "/items/{k:uuid}",
            {"k": uuid.UUID("4e8bd30f8b5a4d6c9a8e1f2f3a4b5c6d")},
            "/items/4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6d",
        ),
        ("/files/{p:path}", {"p": "a/b/c"}, "/files/a/b/c"),
        ("/u/{name}", {"name": 42}, "/u/42"),
    ],
)
def test_url_path_for_formats_params_with_their_convertor(
    route_path: str, params: dict[str, Any], expected: str
) -> None:
    assert Router([Route(route_path, plain_function, name="r")]).url_path_for("r", **params) == (
        expected
    )


@pytest.mark.parametrize(
    ("route_path", "params"),
    [
        ("/price/{v:float}", {"v": math.nan}),
        ("/price/{v:float}", {"v": math.inf}),
        ("/users/{id:int}", {"id": -1}),
        ("/u/{name}", {"name": "a/b"}),
        ("/u/{name}", {"name": ""}),
    ],
)
def test_url_path_for_refuses_values_the_route_could_not_match(
    route_path: str, params: dict[str, Any]
) -> None:
    router = Router([Route(route_path, plain_function, name="r")])
    with pytest.raises(AssertionError):  # Starlette's convertors assert
        router.url_path_for("r", **params)


def test_url_path_for_refuses_a_value_the_route_could_not_match_under_python_o() -> None:
    # Raised, not asserted: `python -O` strips assert statements, and would build "/u/a/b".
    code = (
        "import starlite\n"
        "router = starlite.Router([starlite.Route('/u/{name}', lambda r: None, name='r')])\n"
        "try:\n"
        "    router.url_path_for('r', name='a/b')\n"
        "except AssertionError:\n"
        "    print('refused')\n"
    )
    result = subprocess.run(
        [sys.executable, "-O", "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "refused\n"


def test_url_path_for_through_host_and_mount_combines_host_and_prefix() -> None:
    inner = Router(
        [
            Mount(
                "/v{version:int}",
                name="v",
                routes=[Route("/items/{id:int}", plain_function, name="item")],
            )
        ]
    )
    router = Router([Host("{region}.api.example.org", app=inner, name="api")])
    path = router.url_path_for("api:v:item", region="eu", version=2, id=9)
    assert path == "/v2/items/9"
    assert path.host == "eu.api.example.org"
    assert path.protocol == "http"
    assert path.make_absolute_url("https://example.org/") == "https://eu.api.example.org/v2/items/9"


@pytest.mark.parametrize(
    ("path", "protocol", "host", "base", "expected"),
    [
        ("/a", "http", "", "http://example.org", "http://example.org/a"),
        ("/a", "http", "", "https://example.org/root/", "https://example.org/root/a"),
        ("/a", "", "", "ftp://example.org", "ftp://example.org/a"),
        ("/a", "http", "api.example.org", "https://example.org", "https://api.example.org/a"),
        ("/a", "websocket", "", "http://example.org:8000", "ws://example.org:8000/a"),
    ],
)
def test_urlpath_make_absolute_url(
    path: str, protocol: Any, host: str, base: str, expected: str
) -> None:
    absolute = URLPath(path, protocol=protocol, host=host).make_absolute_url(base)
    assert absolute == expected
    assert absolute == URLPath(path, protocol=protocol, host=host).make_absolute_url(URL(base))


# ---- Order semantics ----
# First FULL match in declaration order wins; else the first PARTIAL answers 405 with its own Allow;
# else a trailing-slash redirect; else 404.


class PrefixRoute(BaseRoute):
    """A custom route that claims every path under `prefix`: no path index can predict it."""

    def __init__(self, prefix: str, label: str, methods: set[str] | None = None) -> None:
        self.prefix = prefix
        self.name = label
        self.methods = methods

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return Match.NONE, {}
        child_scope = {"endpoint": self.handle, "path_params": {}}
        if self.methods is not None and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods is not None and scope["method"] not in self.methods:
            response = PlainTextResponse(
                f"{self.name} refuses", status_code=405, headers={"Allow": ", ".join(self.methods)}
            )
        else:
            response = PlainTextResponse(self.name, headers={"x-endpoint": self.name})
        await response(scope, receive, send)


class QueryRoute(Route):
    """A Route that matches only when the query string holds `v=2`."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if b"v=2" not in scope.get("query_string", b""):
            return Match.NONE, {}
        return super().matches(scope)


class HeaderRoute(Route):
    """A Route that matches only requests carrying an `x-beta` header."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not any(name == b"x-beta" for name, _ in scope["headers"]):
            return Match.NONE, {}
        return super().matches(scope)


def r(path: str, label: str, methods: Sequence[str] | None = None) -> Route:
    return Route(path, endpoint(label), methods=methods)


# Each case: (routes, method, path, expected) where expected is the answering endpoint's label,
# ("405", allowed methods), ("307", location) or "404".
ORDER_CASES: dict[str, tuple[Callable[[], list[BaseRoute]], str, str, Any]] = {
    "param-before-static": (
        lambda: [r("/users/{name}", "param"), r("/users/me", "static")],
        "GET",
        "/users/me",
        "param",
    ),
    "static-before-param": (
        lambda: [r("/users/me", "static"), r("/users/{name}", "param")],
        "GET",
        "/users/me",
        "static",
    ),
    "static-before-param-other-value": (
        lambda: [r("/users/me", "static"), r("/users/{name}", "param")],
        "GET",
        "/users/you",
        "param",
    ),
    "int-before-str": (
        lambda: [r("/items/{id:int}", "int"), r("/items/{id}", "str")],
        "GET",
        "/items/5",
        "int",
    ),
    "int-fails-falls-to-str": (
        lambda: [r("/items/{id:int}", "int"), r("/items/{id}", "str")],
        "GET",
        "/items/five",
        "str",
    ),
    "str-before-int": (
        lambda: [r("/items/{id}", "str"), r("/items/{id:int}", "int")],
        "GET",
        "/items/5",
        "str",
    ),
    "float-before-int": (
        lambda: [r("/n/{v:float}", "float"), r("/n/{v:int}", "int")],
        "GET",
        "/n/3",
        "float",
    ),
    "int-before-float": (
        lambda: [r("/n/{v:int}", "int"), r("/n/{v:float}", "float")],
        "GET",
        "/n/3",
        "int",
    ),
    "int-before-float-decimal": (
        lambda: [r("/n/{v:int}", "int"), r("/n/{v:float}", "float")],
        "GET",
        "/n/3.5",
        "float",
    ),
    "catch-all-first-shadows": (
        lambda: [r("/{rest:path}", "catch-all"), r("/x", "x")],
        "GET",
        "/x",
        "catch-all",
    ),
    "catch-all-last": (
        lambda: [r("/x", "x"), r("/{rest:path}", "catch-all")],
        "GET",
        "/x",
        "x",
    ),
    "catch-all-last-miss": (
        lambda: [r("/x", "x"), r("/{rest:path}", "catch-all")],
        "GET",
        "/y/z/",
        "catch-all",
    ),
    "path-param-in-middle": (
        lambda: [r("/files/{p:path}/raw", "raw"), r("/files/{p:path}", "file")],
        "GET",
        "/files/a/b/raw",
        "raw",
    ),
    "duplicate-first-wins": (
        lambda: [r("/same", "first"), r("/same", "second")],
        "GET",
        "/same",
        "first",
    ),
    "partial-before-full": (
        lambda: [r("/x", "post", ["POST"]), r("/x", "get", ["GET"])],
        "GET",
        "/x",
        "get",
    ),
    "partial-param-before-full-static": (
        lambda: [r("/u/{id}", "post", ["POST"]), r("/u/me", "get")],
        "GET",
        "/u/me",
        "get",
    ),
    "full-param-before-partial-static": (
        lambda: [r("/u/{id}", "get"), r("/u/me", "post", ["POST"])],
        "GET",
        "/u/me",
        "get",
    ),
    "partial-get-param-then-full-post-static": (
        lambda: [r("/u/{id}", "get"), r("/u/me", "post", ["POST"])],
        "POST",
        "/u/me",
        "post",
    ),
    "two-partials-first-allow": (
        lambda: [r("/x", "post", ["POST"]), r("/x", "put", ["PUT", "PATCH"])],
        "GET",
        "/x",
        ("405", {"POST"}),
    ),
    "two-partials-other-order": (
        lambda: [r("/x", "put", ["PUT", "PATCH"]), r("/x", "post", ["POST"])],
        "GET",
        "/x",
        ("405", {"PUT", "PATCH"}),
    ),
    "partial-param-then-partial-static": (
        lambda: [r("/x/{y}", "param", ["DELETE"]), r("/x/y", "static", ["POST"])],
        "GET",
        "/x/y",
        ("405", {"DELETE"}),
    ),
    "partial-allow-includes-head": (
        lambda: [r("/x", "get", ["GET"]), r("/y", "post", ["POST"])],
        "POST",
        "/x",
        ("405", {"GET", "HEAD"}),
    ),
    "head-uses-get-route": (
        lambda: [r("/x", "post", ["POST"]), r("/x", "get")],
        "HEAD",
        "/x",
        "get",
    ),
    "partial-beats-redirect": (
        lambda: [r("/x", "post", ["POST"]), r("/x/", "slash")],
        "GET",
        "/x",
        ("405", {"POST"}),
    ),
    "redirect-to-partial-route": (
        lambda: [r("/x/", "post", ["POST"])],
        "GET",
        "/x",
        ("307", "http://testserver/x/"),
    ),
    "full-beats-redirect": (
        lambda: [r("/x/", "slash"), r("/x", "bare")],
        "GET",
        "/x",
        "bare",
    ),
    "mount-before-route-shadows": (
        lambda: [Mount("/api", routes=[r("/a", "mounted-a")]), r("/api/b", "b")],
        "GET",
        "/api/b",
        "404",
    ),
    "mount-before-route-hit": (
        lambda: [Mount("/api", routes=[r("/a", "mounted-a")]), r("/api/a", "a")],
        "GET",
        "/api/a",
        "mounted-a",
    ),
    "route-before-mount": (
        lambda: [r("/api/b", "b"), Mount("/api", routes=[r("/a", "mounted-a")])],
        "GET",
        "/api/b",
        "b",
    ),
    "mount-405-shadows-later-route": (
        lambda: [Mount("/api", routes=[r("/a", "post", ["POST"])]), r("/api/a", "get")],
        "GET",
        "/api/a",
        ("405", {"POST"}),
    ),
    "partial-route-before-mount": (
        lambda: [r("/api/a", "post", ["POST"]), Mount("/api", routes=[r("/a", "mounted-get")])],
        "GET",
        "/api/a",
        "mounted-get",
    ),
    "param-mount-shadows-static-route": (
        lambda: [Mount("/{org}", routes=[r("/info", "org-info")]), r("/static/info", "static")],
        "GET",
        "/static/info",
        "org-info",
    ),
    "mount-not-matching-bare-prefix": (
        lambda: [Mount("/api", routes=[r("/", "api-root")]), r("/api", "bare")],
        "GET",
        "/api",
        "bare",
    ),
    "mount-inner-first-match": (
        lambda: [Mount("/m", routes=[r("/{x}", "inner-param"), r("/me", "inner-static")])],
        "GET",
        "/m/me",
        "inner-param",
    ),
    "no-match-404": (
        lambda: [r("/a", "a"), r("/b/{x:int}", "b")],
        "GET",
        "/b/x",
        "404",
    ),
}


@pytest.mark.parametrize(
    ("build", "method", "path", "expected"), list(ORDER_CASES.values()), ids=list(ORDER_CASES)
)
def test_first_declared_match_wins(
    build: Callable[[], list[BaseRoute]], method: str, path: str, expected: Any, backend: Backend
) -> None:
    client = TestClient(Router(build()), backend=backend, follow_redirects=False)
    response = client.request(method, path)
    if expected == "404":
        assert (response.status_code, response.text) == (404, "Not Found")
    elif isinstance(expected, tuple) and expected[0] == "405":
        assert response.status_code == 405
        assert allow_set(response) == expected[1]
    elif isinstance(expected, tuple):
        assert response.status_code == 307
        assert response.headers["location"] == expected[1]
    else:
        assert response.status_code == 200
        assert response.headers["x-endpoint"] == expected


HOST_TABLE_CASES = [
    ("api.example.org", "/", "api-home"),
    ("api.example.org", "/about", "404"),  # the Host matched: later path routes are not tried
    ("www.example.org", "/", "site-home"),
    ("www.example.org", "/about", "about"),
]


@pytest.mark.parametrize(("host", "path", "expected"), HOST_TABLE_CASES)
def test_host_before_path_routes_shadows_them_for_its_host(
    host: str, path: str, expected: str, backend: Backend
) -> None:
    router = Router(
        [
            Host("api.example.org", app=Router([r("/", "api-home")])),
            r("/", "site-home"),
            r("/about", "about"),
        ]
    )
    response = TestClient(router, backend=backend).get(path, headers={"host": host})
    if expected == "404":
        assert response.status_code == 404
    else:
        assert response.headers["x-endpoint"] == expected


def test_path_route_before_host_wins_for_every_host(backend: Backend) -> None:
    router = Router([r("/", "site-home"), Host("api.example.org", app=Router([r("/", "api")]))])
    response = TestClient(router, backend=backend).get("/", headers={"host": "api.example.org"})
    assert response.headers["x-endpoint"] == "site-home"


@pytest.mark.parametrize(
    ("routes", "path", "expected"),
    [
        (lambda: [PrefixRoute("/v2", "custom"), r("/v2/users", "users")], "/v2/users", "custom"),
        (lambda: [r("/v2/users", "users"), PrefixRoute("/v2", "custom")], "/v2/users", "users"),
        (lambda: [r("/v2/users", "users"), PrefixRoute("/v2", "custom")], "/v2/other", "custom"),
        (lambda: [PrefixRoute("/v", "custom"), r("/{x}", "param")], "/version", "custom"),
        (lambda: [r("/{x}", "param"), PrefixRoute("/v", "custom")], "/version", "param"),
        (lambda: [r("/{x}", "param"), PrefixRoute("/v", "custom")], "/v/1", "custom"),
        (
            lambda: [PrefixRoute("/x", "custom", {"POST"}), r("/x/{y}", "get")],
            "/x/1",
            "get",
        ),
    ],
)
def test_custom_base_route_matches_is_consulted_in_order(
    routes: Callable[[], list[BaseRoute]], path: str, expected: str, backend: Backend
) -> None:
    response = TestClient(Router(routes()), backend=backend).get(path)
    assert response.status_code == 200
    assert response.headers["x-endpoint"] == expected


def test_first_partial_custom_route_handles_the_405(backend: Backend) -> None:
    router = Router([PrefixRoute("/x", "custom", {"POST"}), r("/x/{y}", "put", ["PUT"])])
    response = TestClient(router, backend=backend).get("/x/1")
    assert response.status_code == 405
    assert response.text == "custom refuses"
    assert allow_set(response) == {"POST"}
    router = Router([r("/x/{y}", "put", ["PUT"]), PrefixRoute("/x", "custom", {"POST"})])
    response = TestClient(router, backend=backend).get("/x/1")
    assert response.text == "Method Not Allowed"
    assert allow_set(response) == {"PUT"}


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ("v=2", {}, "query"),
        ("v=1", {}, "plain"),
        ("", {"x-beta": "1"}, "header"),
        ("v=2", {"x-beta": "1"}, "query"),
    ],
)
def test_route_subclass_overriding_matches_keeps_its_place(
    query: str, headers: dict[str, str], expected: str, backend: Backend
) -> None:
    router = Router(
        [
            QueryRoute("/x", endpoint("query")),
            HeaderRoute("/x", endpoint("header")),
            Route("/x", endpoint("plain")),
        ]
    )
    response = TestClient(router, backend=backend).get(f"/x?{query}", headers=headers)
    assert response.headers["x-endpoint"] == expected


def test_route_subclass_with_a_different_path_rule() -> None:
    class AnyCaseRoute(Route):
        """Matches its path whatever the case of the request path."""

        def matches(self, scope: Scope) -> tuple[Match, Scope]:
            return super().matches({**scope, "path": scope["path"].lower()})

    router = Router([AnyCaseRoute("/about", endpoint("about")), r("/{page}", "page")])
    for path, label in [("/ABOUT", "about"), ("/Other", "page")]:
        answer = anyio.run(Server(http_request(), then="wait").run, router, make_scope(path))
        assert answer.headers["x-endpoint"] == label


class HandMadeRoute(Route):
    """A Route set up attribute by attribute, without Route.__init__, as FastAPI's APIRoute is:
    `methods` without the HEAD that __init__ adds, and no `path` (Route.matches needs none)."""

    def __init__(self, path: str, endpoint: Endpoint, methods: Collection[str]) -> None:
        self.endpoint = endpoint
        self.name = get_name(endpoint)
        self.path_regex, self.path_format, self.param_convertors = compile_path(path)
        self.methods = {method.upper() for method in methods}
        self.app = request_response(endpoint)


def test_route_subclass_setting_methods_without_init_answers_405_with_allow(
    backend: Backend,
) -> None:
    route = HandMadeRoute("/items/{id:int}", endpoint("item"), ["get", "PUT"])
    for app in (Router([route]), Starlite(routes=[route])):
        client = TestClient(app, backend=backend)
        assert client.get("/items/1").headers["x-endpoint"] == "item"
        response = client.post("/items/1")
        assert response.status_code == 405
        assert response.text == "Method Not Allowed"
        assert response.headers["allow"] == "GET, PUT"
        assert client.post("/items/x").status_code == 404


def test_allow_follows_methods_set_after_the_route_was_made(backend: Backend) -> None:
    hand_made = HandMadeRoute("/a", endpoint("a"), ["GET"])
    made = Route("/b", endpoint("b"), methods=["GET"])
    client = TestClient(Router([hand_made, made]), backend=backend)
    assert client.post("/a").headers["allow"] == "GET"
    assert client.post("/b").headers["allow"] == "GET, HEAD"
    hand_made.methods = {"POST", "DELETE"}
    made.methods = {"PATCH"}
    assert client.post("/a").headers["x-endpoint"] == "a"
    assert client.get("/a").headers["allow"] == "DELETE, POST"
    assert client.post("/b").headers["allow"] == "PATCH"


def test_hand_made_routes_of_every_kind_route_as_starlettes_do(backend: Backend) -> None:
    class HandMadeWebSocketRoute(WebSocketRoute):
        """As FastAPI's APIWebSocketRoute: every attribute set by hand."""

        def __init__(self, path: str, session: Callable[[WebSocket], Awaitable[None]]) -> None:
            self.path = path
            self.endpoint = session
            self.name = get_name(session)
            self.path_regex, self.path_format, self.param_convertors = compile_path(path)
            self.app = websocket_session(session)

    # As FastAPI moves a mounted app under an included router's prefix: a copy, its path and
    # regex set anew.
    moved = copy.copy(Mount("/old", app=label_app("mounted")))
    moved.path = "/new/{tenant}"
    moved.path_regex, moved.path_format, moved.param_convertors = compile_path(
        moved.path + "/{path:path}"
    )
    websocket_route = HandMadeWebSocketRoute("/ws/{room}", ws_endpoint("room"))
    http_route = HandMadeRoute("/users/{id}", endpoint("user"), ["GET"])
    router = Router([http_route, websocket_route, moved], redirect_slashes=False)
    client = TestClient(router, backend=backend)
    assert client.get("/users/7").headers["x-endpoint"] == "user"
    assert client.delete("/users/7").headers["allow"] == "GET"
    with client.websocket_connect("/ws/lobby") as session:
        assert session.receive_text() == "room"
    assert client.get("/new/acme/file").text == "mounted"
    assert client.get("/old/file").status_code == 404
    # Each is indexed by what it matches: a candidate only where it may match.
    assert router._candidates("/users/7") == [http_route]
    assert router._candidates("/ws/lobby") == [websocket_route]
    assert router._candidates("/new/acme/file") == [moved]
    assert router._candidates("/elsewhere") == []


def test_a_hand_made_mount_serves_and_names_its_routes(backend: Backend) -> None:
    class HandMadeMount(Mount):
        """A Mount set up attribute by attribute, without Mount.__init__."""

        def __init__(self, path: str, app: ASGIApp, name: str) -> None:
            self.path, self.app, self.name = path, app, name
            self.path_regex, self.path_format, self.param_convertors = compile_path(
                path + "/{path:path}"
            )

    inner = Router([Route("/items/{id:int}", endpoint("item"), name="item")])
    router = Router([HandMadeMount("/api", inner, "api"), r("/other", "other", ["GET"])])
    client = TestClient(router, backend=backend)
    assert client.get("/api/items/3").headers["x-endpoint"] == "item"
    assert [route.name for route in router.routes[0].routes] == ["item"]  # type: ignore[attr-defined]
    assert router.url_path_for("api:item", id=3) == "/api/items/3"
    assert router.url_path_for("other") == "/other"


def test_a_route_with_a_regex_of_its_own_is_tried_for_every_path(backend: Backend) -> None:
    class AnyCaseRoute(Route):
        """Compiles its path ignoring case, keeping Route.matches."""

        def __init__(self, path: str, endpoint: Endpoint) -> None:
            super().__init__(path, endpoint)
            self.path_regex = re.compile(self.path_regex.pattern, re.IGNORECASE)

    class PrefixRegexRoute(Route):
        """Sets a regex unrelated to its path: any path under /docs."""

        def __init__(self, endpoint: Endpoint) -> None:
            super().__init__("/docs", endpoint)
            self.path_regex = re.compile(r"^/docs(?:/.*)?\Z")

    any_case, prefix = AnyCaseRoute("/about", endpoint("about")), PrefixRegexRoute(endpoint("docs"))
    router = Router([any_case, prefix, r("/{page}", "page")], redirect_slashes=False)
    client = TestClient(router, backend=backend)
    assert client.get("/ABOUT").headers["x-endpoint"] == "about"
    assert client.get("/docs/a/b").headers["x-endpoint"] == "docs"
    assert client.get("/other").headers["x-endpoint"] == "page"
    assert router._candidates("/x/y/z") == [any_case, prefix]


def test_a_route_missing_what_the_index_reads_is_tried_for_every_path(backend: Backend) -> None:
    class NoFormatRoute(HandMadeRoute):
        """Sets no path_format (Route.matches does not need one)."""

        def __init__(self, path: str, endpoint: Endpoint) -> None:
            super().__init__(path, endpoint, ["GET"])
            del self.path_format

    class UnknownParameterRoute(HandMadeRoute):
        """A format naming a parameter it has no convertor for."""

        def __init__(self, path: str, endpoint: Endpoint) -> None:
            super().__init__(path, endpoint, ["GET"])
            self.path_format = "/p/{missing}"

    no_format = NoFormatRoute("/n/{x}", endpoint("no-format"))
    unknown = UnknownParameterRoute("/p", endpoint("unknown"))
    router = Router([no_format, unknown, r("/n/{x}", "plain")], redirect_slashes=False)
    client = TestClient(router, backend=backend)
    assert client.get("/n/1").headers["x-endpoint"] == "no-format"
    assert client.get("/p").headers["x-endpoint"] == "unknown"
    assert router._candidates("/q") == [no_format, unknown]


# ---- the property: the router answers what in-order matching answers ----


def route_path(scope: Scope) -> str:
    """The part of the path a router matches on: `path` without the `root_path` prefix."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        if path == root_path:
            return ""
        if path[len(root_path)] == "/":
            return path[len(root_path) :]
    return path


Outcome = tuple[str, Any, str | None]


def sub_router(route: BaseRoute) -> Router | None:
    """The Router a Mount or a Host hands its requests to, if it is one."""
    app = getattr(route, "app", None)
    return app if isinstance(app, Router) else None


def linear_scan(router: Router, scope: Scope, labels: dict[int, str]) -> Outcome:
    """What trying every route in order answers, using nothing but each route's `matches()`:
    (status or "ws"/"close", label or detail, label of the innermost route entered)."""
    first_partial: tuple[BaseRoute, Scope] | None = None
    chosen: tuple[BaseRoute, Scope] | None = None
    for route in router.routes:
        match, child_scope = route.matches(scope)
        if match is Match.FULL:
            chosen = (route, child_scope)
            break
        if match is Match.PARTIAL and first_partial is None:
            first_partial = (route, child_scope)
    chosen = chosen or first_partial
    if chosen is not None:
        route, child_scope = chosen
        label = labels[id(route)]
        inner = sub_router(route)
        if inner is not None:
            kind, detail, entered = linear_scan(inner, {**scope, **child_scope}, labels)
            return (kind, detail, entered or label)
        if isinstance(route, Route) and route.methods and scope["method"] not in route.methods:
            return ("405", frozenset(route.methods), label)
        return ("200" if scope["type"] == "http" else "ws", label, label)
    redirect = scope["type"] == "http" and router.redirect_slashes and route_path(scope) != "/"
    if redirect:
        path = scope["path"]
        other = path.rstrip("/") if route_path(scope).endswith("/") else path + "/"
        toggled = {**scope, "path": other}
        if any(route.matches(toggled)[0] is not Match.NONE for route in router.routes):
            return ("307", other, None)
    return ("404" if scope["type"] == "http" else "close", None, None)


def outcome(server: Server) -> tuple[str, Any]:
    """What a router answered, read from what it sent: (status or "ws"/"close", detail). The
    detail of a 200 or a websocket is the route's label (its x-endpoint header, or else its body
    or first text frame), of a 405 the allowed methods, of a 307 the path it redirects to on the
    request's own host."""
    if server.scope["type"] == "websocket":
        if server.sent[0]["type"] == "websocket.accept":
            return ("ws", server.sent[1]["text"])
        assert server.sent[0]["type"] == "websocket.close"
        return ("close", None)
    status = server.status
    if status == 200:
        return ("200", server.headers.get("x-endpoint", server.body.decode()))
    if status == 405:
        return ("405", frozenset(allow_set(server)))
    if status == 307:
        location = urlsplit(server.headers["location"])
        host = Headers(scope=server.scope)["host"]
        assert (location.scheme, location.netloc) == ("http", host)
        return ("307", location.path)
    return (str(status), None)


def run_all(
    router: Router, scopes: list[Scope], backend: Backend = "asyncio"
) -> list[tuple[str, Any]]:
    """The outcome of each scope, sent to `router` one after the other."""

    async def main() -> list[tuple[str, Any]]:
        outcomes = []
        for scope in scopes:
            if scope["type"] == "websocket":
                server = Server(connect(), disconnect())
            else:
                server = Server(http_request(), then="wait")
            outcomes.append(outcome(await server.run(router, scope)))
        return outcomes

    return anyio.run(main, backend=backend)


def check_answers(
    router: Router, scopes: list[Scope], labels: dict[Any, str], backend: Backend = "asyncio"
) -> None:
    """The router answers each scope as `linear_scan` says, and leaves the innermost route it
    entered in the scope."""
    expected = [linear_scan(router, dict(scope), labels) for scope in scopes]
    observed = run_all(router, scopes, backend)
    for scope, (kind, detail, entered), answer in zip(scopes, expected, observed, strict=True):
        route = scope.get("route")
        where = (scope["type"], scope.get("method"), scope["path"], scope["headers"])
        assert answer == (kind, detail), where
        assert (labels[id(route)] if route is not None else None) == entered, where


LEAF_TEMPLATES = [
    "/",
    "/a",
    "/a/",
    "/b",
    "/a/b",
    "/{x}",
    "/{x}/",
    "/a/{x}",
    "/{x}/b",
    "/{x:int}",
    "/a/{x:int}",
    "/a/{x}/{y:int}",
    "/a/{p:path}",
    "/{p:path}",
    "/{p:path}/b",
]
METHOD_CHOICES: list[tuple[str, ...] | None] = [
    None,
    ("GET",),
    ("POST",),
    ("GET", "POST"),
    ("PUT",),
]
MOUNT_PREFIXES = ["/a", "/b", "/{m}", "/{m:int}"]

leaf_spec = st.tuples(
    st.just("route"), st.sampled_from(LEAF_TEMPLATES), st.sampled_from(METHOD_CHOICES)
)
mount_spec = st.tuples(
    st.just("mount"),
    st.sampled_from(MOUNT_PREFIXES),
    st.lists(
        st.tuples(st.sampled_from(LEAF_TEMPLATES), st.sampled_from(METHOD_CHOICES)), max_size=4
    ),
)
table_spec = st.lists(st.one_of(leaf_spec, leaf_spec, mount_spec), max_size=9)
request_path = st.builds(
    lambda segments, slash: "/" + "/".join(segments) + ("/" if slash and segments else ""),
    st.lists(st.sampled_from(["a", "b", "1", "22", "x"]), max_size=4),
    st.booleans(),
)
request_method = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE"])


def build_table(spec: list[Any], labels: dict[Any, str]) -> list[BaseRoute]:
    """Routes labelled by position: "r3" is the fourth entry, "r3.1" the second route inside it;
    `labels` gets each route's label by its id."""
    routes: list[BaseRoute] = []
    for index, entry in enumerate(spec):
        route: BaseRoute
        if entry[0] == "route":
            _, template, methods = entry
            route = Route(template, endpoint(f"r{index}"), methods=methods)
        else:
            _, prefix, children = entry
            inner = [
                Route(template, endpoint(f"r{index}.{child}"), methods=methods)
                for child, (template, methods) in enumerate(children)
            ]
            labels.update((id(child), str(child.name)) for child in inner)
            route = Mount(prefix, routes=inner)
        labels[id(route)] = f"r{index}"
        routes.append(route)
    return routes


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spec=table_spec,
    requests=st.lists(st.tuples(request_method, request_path), min_size=1, max_size=8),
)
def test_router_answers_what_in_order_matching_answers(
    spec: list[Any], requests: list[tuple[str, str]], backend: Backend
) -> None:
    labels: dict[Any, str] = {}
    router = Router(build_table(spec, labels))
    scopes = [make_scope(path, method=method) for method, path in requests]
    check_answers(router, scopes, labels, backend)


# ---- scale: the benchmark's table shape ----


def build_benchmark_routes(groups: int = 1000) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for i in range(groups):
        routes += [
            Route(f"/r{i}", endpoint(f"list{i}")),
            Route(f"/r{i}/{{id:int}}", echo_endpoint(f"get{i}"), methods=["GET", "DELETE"]),
            Route(f"/r{i}/{{id:int}}/items", endpoint(f"items{i}"), methods=["POST"]),
            Route(f"/r{i}/{{id:int}}/items/{{item}}", echo_endpoint(f"item{i}")),
        ]
    # Late additions that only in-order matching places right.
    routes += [
        Route("/r3", endpoint("shadowed-duplicate")),
        Route("/r7/{id:int}", endpoint("late-post"), methods=["POST"]),
        Route("/r7/special", endpoint("late-static")),
        Route("/r5/{id:int}/items", endpoint("late-items-put"), methods=["PUT"]),
    ]
    return routes


@pytest.fixture(scope="module")
def benchmark_routes() -> list[BaseRoute]:
    return build_benchmark_routes()


def test_benchmark_table_has_4000_routes(benchmark_routes: list[BaseRoute]) -> None:
    assert len(benchmark_routes) == 4004


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        ("GET", "/r0", 200, "list0"),
        ("GET", "/r999", 200, "list999"),
        ("HEAD", "/r500", 200, "list500"),
        ("GET", "/r3", 200, "list3"),
        ("GET", "/r998/42", 200, {"id": ["int", "42"]}),
        ("DELETE", "/r1/0", 200, {"id": ["int", "0"]}),
        ("POST", "/r500/7/items", 200, "items500"),
        ("GET", "/r500/7/items/abc", 200, {"id": ["int", "7"], "item": ["str", "abc"]}),
        ("POST", "/r7/3", 200, "late-post"),
        ("GET", "/r7/special", 200, "late-static"),
        ("PUT", "/r5/1/items", 200, "late-items-put"),
        ("GET", "/r1000", 404, None),
        ("GET", "/r5/x", 404, None),
        ("GET", "/r5/7/other", 404, None),
        ("GET", "/r5/7/items/a/b", 404, None),
        ("GET", "/r", 404, None),
        ("GET", "/x5", 404, None),
        ("GET", "/r01", 404, None),
        ("POST", "/r5", 405, {"GET", "HEAD"}),
        ("PUT", "/r9/1", 405, {"GET", "HEAD", "DELETE"}),
        ("GET", "/r9/1/items", 405, {"POST"}),
        ("GET", "/r5/1/items", 405, {"POST"}),
        ("DELETE", "/r9/1/items/x", 405, {"GET", "HEAD"}),
        ("GET", "/r5/", 307, "http://testserver/r5"),
        ("GET", "/r5/7/items/x/", 307, "http://testserver/r5/7/items/x"),
    ],
)
def test_benchmark_table_answers_hits_misses_and_405(
    benchmark_routes: list[BaseRoute],
    method: str,
    path: str,
    status: int,
    expected: Any,
    backend: Backend,
) -> None:
    client = TestClient(Router(benchmark_routes), backend=backend, follow_redirects=False)
    response = client.request(method, path)
    assert response.status_code == status
    if status == 405:
        assert allow_set(response) == expected
    elif status == 307:
        assert response.headers["location"] == expected
    elif isinstance(expected, dict):
        assert response.json() == expected
    elif expected is not None:
        assert response.headers["x-endpoint"] == expected


def test_benchmark_table_matches_in_order_reference_on_a_sample(
    benchmark_routes: list[BaseRoute],
) -> None:
    router = Router(benchmark_routes)
    scopes = [
        make_scope(path, method=method)
        for i in (0, 3, 5, 7, 499, 999, 1000)
        for method in ("GET", "POST", "PUT", "DELETE")
        for path in (f"/r{i}", f"/r{i}/", f"/r{i}/12", f"/r{i}/12/items", f"/r{i}/1/items/z")
    ]
    labels: dict[Any, str] = {id(route): cast(Route, route).name for route in benchmark_routes}
    check_answers(router, scopes, labels)


def test_benchmark_table_url_path_for_finds_late_names(benchmark_routes: list[BaseRoute]) -> None:
    router = Router(benchmark_routes)
    assert router.url_path_for("item999", id=3, item="x") == "/r999/3/items/x"
    assert router.url_path_for("get0", id=1) == "/r0/1"


# ---- Bad input ----


@pytest.mark.parametrize(
    "path",
    ["/nope", "/users/1/extra", "/users/", "/USERS/1", "/users/%00", "/%2e%2e/users/1", "/users"],
)
def test_unknown_paths_are_404(path: str, backend: Backend) -> None:
    router = Router([Route("/users/{id:int}", endpoint("user"))], redirect_slashes=False)
    response = TestClient(router, backend=backend).get(path)
    assert response.status_code == 404
    assert response.text == "Not Found"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"])
def test_wrong_method_is_405_with_allow(method: str, backend: Backend) -> None:
    app = Starlite(routes=[Route("/users/{id:int}", endpoint("user"), methods=["GET"])])
    response = TestClient(app, backend=backend).request(method, "/users/1")
    assert response.status_code == 405
    assert allow_set(response) == {"GET", "HEAD"}


@pytest.mark.parametrize(
    "path",
    [
        "/int/" + "9" * 5000,
        "/int/-1",
        "/int/1.0",
        "/int/%D9%A1",
        "/float/nan",
        "/float/inf",
        "/float/1e10",
        "/float/-2.0",
        "/uuid/not-a-uuid",
        "/uuid/4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6z",
        "/uuid/" + "a" * 33,
    ],
)
def test_params_failing_conversion_are_404_never_500(path: str, backend: Backend) -> None:
    app = Starlite(
        routes=[
            Route("/int/{v:int}", echo_params),
            Route("/float/{v:float}", echo_params),
            Route("/uuid/{v:uuid}", echo_params),
        ]
    )
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get(path)
    assert response.status_code == 404


def test_huge_int_param_falls_through_to_a_later_route(backend: Backend) -> None:
    digits = "9" * 5000
    router = Router([Route("/n/{v:int}", echo_params), Route("/n/{v}", endpoint("text"))])
    response = TestClient(router, backend=backend).get(f"/n/{digits}")
    assert response.status_code == 200
    assert response.text == "text"


def test_percent_encoded_slash_is_a_separator_for_matching(backend: Backend) -> None:
    router = Router([Route("/files/{name}", echo_params), Route("/paths/{name:path}", echo_params)])
    client = TestClient(router, backend=backend)
    assert client.get("/files/a%2Fb").status_code == 404
    assert client.get("/paths/a%2Fb").json() == {"name": ["str", "a/b"]}
    # A literal "%2F" in the decoded path (the client sent "%252F") is ordinary text.
    server = Server(http_request(), then="wait")
    answer = anyio.run(server.run, router, make_scope("/files/a%2Fb"), backend=backend)
    assert json.loads(answer.body) == {"name": ["str", "a%2Fb"]}


def test_very_long_path_is_404(backend: Backend) -> None:
    router = Router(
        [
            Route("/users/{id:int}", endpoint("user")),
            Route("/files/{p:path}/raw", endpoint("raw")),
            Mount("/api", routes=[Route("/x", endpoint("x"))]),
            *build_benchmark_routes(50),
        ]
    )
    long_path = "/" + "a/" * 50_000  # 100 KB
    for path in (long_path, "/users/" + "x" * 100_000, "/files/" + "b" * 100_000):
        server = Server(http_request(), then="wait")
        assert anyio.run(server.run, router, make_scope(path), backend=backend).status == 404


def test_very_long_int_param_is_404(backend: Backend) -> None:
    router = Router([Route("/users/{id:int}", endpoint("user"))])
    server = Server(http_request(), then="wait")
    scope = make_scope("/users/" + "1" * 100_000)
    assert anyio.run(server.run, router, scope, backend=backend).status == 404


def test_very_long_path_reaches_a_path_route(backend: Backend) -> None:
    router = Router([Route("/files/{p:path}", echo_params)])
    server = Server(http_request(), then="wait")
    answer = anyio.run(server.run, router, make_scope("/files/" + "a/" * 50_000), backend=backend)
    assert answer.status == 200
    assert len(json.loads(answer.body)["p"][1]) == 100_000


REDIRECT_BAIT_PATHS = ["//evil.com/", "/\\evil.com/", "///evil.com/", "//evil.com", "/\\evil.com"]


def location_host(answer: Server) -> str | None:
    """The host a browser would go to after the redirect, or None without one."""
    location = answer.headers.get("location")
    if location is None:
        return None
    # Browsers treat `\` like `/` in special URLs: resolve as they would.
    resolved = urljoin("http://example.org/current", location.replace("\\", "/"))
    return urlsplit(resolved).netloc


@pytest.mark.parametrize("path", REDIRECT_BAIT_PATHS)
def test_trailing_slash_redirect_is_never_an_open_redirect(path: str, backend: Backend) -> None:
    # A route that matches the bait only with its trailing slash removed (or added): in-order
    # matching would redirect there.
    template = "/{rest:path}.com" if path.endswith("/") else "/{rest:path}.com/"
    server = Server(http_request(), then="wait")
    answer = anyio.run(
        server.run, Router([Route(template, endpoint("com"))]), make_scope(path), backend=backend
    )
    assert answer.status in (307, 404)
    if answer.status == 307:
        assert location_host(answer) == "example.org"
        assert not answer.headers["location"].startswith(("//", "/\\", "\\"))


@pytest.mark.parametrize("path", REDIRECT_BAIT_PATHS)
def test_redirect_bait_on_a_plain_table_stays_on_our_host(path: str, backend: Backend) -> None:
    router = Router([Route("/users", endpoint("users")), Route("/{name}", endpoint("name"))])
    server = Server(http_request(), then="wait")
    answer = anyio.run(server.run, router, make_scope(path), backend=backend)
    assert answer.status in (200, 307, 404)
    if answer.status == 307:
        assert location_host(answer) == "example.org"


@pytest.mark.parametrize("path", ["//evil.com/", "///evil.com/"])
def test_redirect_bait_inside_a_mount_stays_on_our_host(path: str, backend: Backend) -> None:
    router = Router([Mount("/", routes=[Route("/{rest:path}.com", endpoint("com"))])])
    server = Server(http_request(), then="wait")
    answer = anyio.run(server.run, router, make_scope(path), backend=backend)
    assert answer.status in (307, 404)
    if answer.status == 307:
        assert location_host(answer) == "example.org"


# ---- WebSockets ----
# WebSocketRoute on its own, in Mount and Host, beside HTTP routes, and url_path_for / url_for.


def ws_label(label: str) -> Callable[[WebSocket], Awaitable[None]]:
    """A websocket endpoint named `label` that sends its label, then closes."""

    async def answer(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(label)
        await websocket.close()

    answer.__name__ = answer.__qualname__ = label
    return answer


def ws_route(path: str, label: str) -> WebSocketRoute:
    return WebSocketRoute(path, ws_label(label))


def http_route(path: str, label: str, methods: Sequence[str] | None = None) -> Route:
    return Route(path, endpoint(label), methods=methods)


def label_at(client: TestClient, url: str) -> str:
    """The label the websocket endpoint at `url` sends."""
    with client.websocket_connect(url) as websocket:
        return websocket.receive_text()


async def typed_params(websocket: WebSocket) -> None:
    """Accept and send each path parameter as [type name, str(value)]."""
    await websocket.accept()
    params = websocket.path_params
    await websocket.send_json({key: [type(v).__name__, str(v)] for key, v in params.items()})
    await websocket.close()


UUID_TEXT = "5b8f8c8e-1c43-4c58-9a55-3d6f0f4f2d6a"


def url_routes() -> list[BaseRoute]:
    return [
        WebSocketRoute("/ws/{id:int}", ws_label("feed"), name="feed"),
        Mount(
            "/chat", routes=[WebSocketRoute("/{room}", ws_label("room"), name="room")], name="chat"
        ),
        Host("live.example.org", app=Router([ws_route("/scores", "scores")]), name="live"),
        http_route("/page", "page"),
    ]


async def seen_by(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(websocket.scope.get("seen_by", []))
    await websocket.close()


def test_websocket_route_converts_path_params(backend: Backend) -> None:
    cases = [
        ("/str/{room}", "/str/lobby", {"room": ["str", "lobby"]}),
        ("/int/{id:int}", "/int/42", {"id": ["int", "42"]}),
        ("/float/{x:float}", "/float/1.5", {"x": ["float", "1.5"]}),
        ("/uuid/{key:uuid}", f"/uuid/{UUID_TEXT}", {"key": ["UUID", UUID_TEXT]}),
        ("/path/{rest:path}", "/path/a/b/c", {"rest": ["str", "a/b/c"]}),
        ("/two/{org}/{id:int}", "/two/acme/7", {"org": ["str", "acme"], "id": ["int", "7"]}),
    ]
    app = Starlite(routes=[WebSocketRoute(path, typed_params) for path, _, _ in cases])
    client = TestClient(app, backend=backend)
    for _, url, params in cases:
        with client.websocket_connect(url) as websocket:
            assert websocket.receive_json() == params, url


def test_websocket_no_route_matches_is_closed_with_1000(backend: Backend) -> None:
    app = Starlite(routes=[WebSocketRoute("/ws/{id:int}", typed_params), http_route("/page", "p")])
    client = TestClient(app, backend=backend)
    for url in ["/ws/abc", "/ws/1/2", "/other", "/page"]:
        refusal = refusal_at(client, url)
        assert (refusal.code, refusal.reason) == (status.WS_1000_NORMAL_CLOSURE, ""), url


def test_websocket_route_inside_mount(backend: Backend) -> None:
    app = Starlite(
        routes=[Mount("/orgs/{org}", routes=[WebSocketRoute("/rooms/{room}", describe)])]
    )
    seen = described(TestClient(app, backend=backend), "/orgs/acme/rooms/lobby")
    assert seen["path_params"] == {"org": "acme", "room": "lobby"}
    assert seen["root_path"] == "/orgs/acme"
    assert seen["url"] == "ws://testserver/orgs/acme/rooms/lobby"


def test_websocket_route_inside_host(backend: Backend) -> None:
    app = Starlite(
        routes=[
            Host("{sub}.example.org", app=Router([WebSocketRoute("/ws", typed_params)])),
            ws_route("/ws", "fallback"),
        ]
    )
    client = TestClient(app, backend=backend)
    for url in ["ws://chat.example.org/ws", "ws://CHAT.example.org:8000/ws"]:
        with client.websocket_connect(url) as websocket:
            assert websocket.receive_json() == {"sub": ["str", "chat"]}, url
    assert label_at(client, "ws://example.org/ws") == "fallback"


def test_websocket_route_url_path_for_has_the_websocket_protocol() -> None:
    router = Router(url_routes())
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("feed", {"id": 3}, "/ws/3", ""),
        ("chat:room", {"room": "lobby"}, "/chat/lobby", ""),
        ("live:scores", {}, "/scores", "live.example.org"),
    ]
    for name, params, path, host in cases:
        url = router.url_path_for(name, **params)
        assert (url, url.protocol, url.host) == (path, "websocket", host), name
    route = WebSocketRoute("/ws/{id:int}", ws_label("feed"))
    assert route.url_path_for("feed", id=1) == URLPath("/ws/1", protocol="websocket")
    for name, params in [("other", {"id": 1}), ("feed", {}), ("feed", {"id": 1, "x": 2})]:
        with pytest.raises(starlite.NoMatchFound):
            route.url_path_for(name, **params)


def test_url_for_gives_absolute_websocket_urls(backend: Backend) -> None:
    async def links(websocket: WebSocket) -> None:
        await websocket.accept()
        room = websocket.url_for("chat:room", room="lobby")
        await websocket.send_json([str(room), str(websocket.url_for("page"))])
        await websocket.close()

    async def link(request: Request) -> Response:
        return PlainTextResponse(str(request.url_for("feed", id=5)))

    app = Starlite(routes=[WebSocketRoute("/links", links), Route("/link", link), *url_routes()])
    client = TestClient(app, backend=backend)
    with client.websocket_connect("/links") as websocket:
        assert websocket.receive_json() == ["ws://testserver/chat/lobby", "http://testserver/page"]
    assert client.get("/link").text == "ws://testserver/ws/5"
    secure = TestClient(app, base_url="https://testserver", backend=backend)
    with secure.websocket_connect("/links") as websocket:
        assert websocket.receive_json() == [
            "wss://testserver/chat/lobby",
            "https://testserver/page",
        ]
    assert secure.get("/link").text == "wss://testserver/ws/5"


def test_route_kinds_match_only_their_own_scope_type() -> None:
    websocket_route = ws_route("/x", "ws")
    route = http_route("/x", "http")
    assert websocket_route.matches(make_scope("/x"))[0] is Match.NONE
    assert route.matches(ws_scope("/x"))[0] is Match.NONE
    assert websocket_route.matches(ws_scope("/x"))[0] is Match.FULL
    assert route.matches(make_scope("/x"))[0] is Match.FULL


def test_websocket_route_and_route_with_the_same_path_coexist(backend: Backend) -> None:
    for routes in (
        [ws_route("/live", "websocket"), http_route("/live", "http")],
        [http_route("/live", "http"), ws_route("/live", "websocket")],
    ):
        client = TestClient(Starlite(routes=routes), backend=backend)
        assert client.get("/live").text == "http"
        assert label_at(client, "/live") == "websocket"


# Each case: (routes, path, expected) for an HTTP GET, expected being the answering endpoint's
# label, ("405", allowed methods) or "404": the websocket routes must make no difference.
HTTP_ORDER_CASES: dict[str, tuple[Callable[[], list[BaseRoute]], str, Any]] = {
    "ws-param-before-static": (
        lambda: [ws_route("/users/{name}", "ws"), http_route("/users/me", "static")],
        "/users/me",
        "static",
    ),
    "ws-before-partial": (
        lambda: [ws_route("/form", "ws"), http_route("/form", "post", ["POST"])],
        "/form",
        ("405", {"POST"}),
    ),
    "ws-only": (lambda: [ws_route("/ws", "ws"), ws_route("/{rest:path}", "all")], "/ws", "404"),
}


@pytest.mark.parametrize(
    ("build", "path", "expected"), list(HTTP_ORDER_CASES.values()), ids=list(HTTP_ORDER_CASES)
)
def test_websocket_routes_are_ignored_by_http_requests_in_route_order(
    build: Callable[[], list[BaseRoute]], path: str, expected: Any, backend: Backend
) -> None:
    response = TestClient(Router(build()), backend=backend, follow_redirects=False).get(path)
    if expected == "404":
        assert (response.status_code, response.text) == (404, "Not Found")
    elif isinstance(expected, tuple):
        assert response.status_code == 405
        assert allow_set(response) == expected[1]
    else:
        assert response.status_code == 200
        assert response.headers["x-endpoint"] == expected


WEBSOCKET_ORDER_CASES: dict[str, tuple[Callable[[], list[BaseRoute]], str, str]] = {
    "param-before-static": (
        lambda: [ws_route("/users/{name}", "param"), ws_route("/users/me", "static")],
        "/users/me",
        "param",
    ),
    "http-routes-ignored": (
        lambda: [
            http_route("/chat", "http"),
            Mount("/chat", routes=[http_route("/", "mounted-http")]),
            ws_route("/{room}", "room"),
        ],
        "/chat",
        "room",
    ),
}


@pytest.mark.parametrize(
    ("build", "path", "expected"),
    list(WEBSOCKET_ORDER_CASES.values()),
    ids=list(WEBSOCKET_ORDER_CASES),
)
def test_first_matching_websocket_route_in_declaration_order_wins(
    build: Callable[[], list[BaseRoute]], path: str, expected: str, backend: Backend
) -> None:
    assert label_at(TestClient(Router(build()), backend=backend), path) == expected


@pytest.mark.anyio
async def test_websocket_route_used_alone_as_an_asgi_app() -> None:
    route = WebSocketRoute("/ws/{id:int}", typed_params)
    server = Server(connect())
    await server.run(route, ws_scope("/ws/9"))
    assert server.sent[1] == {"type": "websocket.send", "text": '{"id":["int","9"]}'}
    assert (await Server().run(route, ws_scope("/ws/x"))).sent == [close_message(1000, "")]


def test_websocket_route_middleware_wraps_only_its_route(backend: Backend) -> None:
    middleware = [Middleware(AcceptHeader, "outer"), Middleware(AcceptHeader, "inner")]
    app = Starlite(
        routes=[
            WebSocketRoute("/wrapped", seen_by, middleware=middleware),
            WebSocketRoute("/plain", seen_by),
        ]
    )
    client = TestClient(app, backend=backend)
    with client.websocket_connect("/wrapped") as websocket:
        assert websocket.receive_json() == ["outer", "inner"]
        assert websocket.extra_headers == [(b"x-mw", b"inner"), (b"x-mw", b"outer")]
    with client.websocket_connect("/plain") as websocket:
        assert websocket.receive_json() == []
        assert websocket.extra_headers == []


@pytest.mark.parametrize(("target", "name"), [("router", None), ("app", "live")])
def test_add_websocket_route_adds_a_websocket_route(
    target: str, name: str | None, backend: Backend
) -> None:
    app = Starlite()
    owner: Router | Starlite = app.router if target == "router" else app
    endpoint = ws_label("feed")
    owner.add_websocket_route("/feed/{id:int}", endpoint, name=name)
    (route,) = app.routes
    assert isinstance(route, WebSocketRoute)
    assert (route.path, route.endpoint, route.name) == ("/feed/{id:int}", endpoint, name or "feed")
    url = app.url_path_for(name or "feed", id=2)
    assert (url, url.protocol) == ("/feed/2", "websocket")
    assert label_at(TestClient(app, backend=backend), "/feed/2") == "feed"


@pytest.mark.parametrize(
    "make",
    [
        lambda: WebSocketRoute("ws", ws_label("ws")),
        lambda: Router().add_websocket_route("ws/{id}", ws_label("ws")),
        lambda: Starlite().add_websocket_route("", ws_label("ws")),
    ],
    ids=["route", "router", "app"],
)
def test_websocket_route_path_without_leading_slash_is_refused(make: Callable[[], Any]) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        make()


def test_websocket_route_name_equality_and_repr() -> None:
    class Feed(WebSocketEndpoint):
        pass

    live = ws_label("live")
    assert WebSocketRoute("/ws", live).name == "live"
    assert WebSocketRoute("/ws", Feed).name == "Feed"
    assert WebSocketRoute("/ws", live) == WebSocketRoute("/ws", live)
    assert WebSocketRoute("/ws", live) != WebSocketRoute("/other", live)
    assert WebSocketRoute("/ws", live) != Route("/ws", endpoint("live"))
    assert repr(WebSocketRoute("/ws", live)) == "WebSocketRoute(path='/ws', name='live')"


def test_websocket_function_ends_quietly_when_the_client_closes(backend: Backend) -> None:
    returned: list[str] = []

    async def reader(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:  # the usual loop: WebSocketDisconnect ends it
                await websocket.receive_text()
        finally:
            returned.append("left")

    client = TestClient(Starlite(routes=[WebSocketRoute("/ws", reader)]), backend=backend)
    with client.websocket_connect("/ws") as session:  # exiting would raise if the app had
        session.send_text("hello")
    assert returned == ["left"]


# ---- The route index against a linear scan of the routes ----


INDEX_EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def index_scope(
    path: str,
    *,
    kind: str = "http",
    method: str = "GET",
    host: str = "example.org",
    query_string: bytes = b"",
) -> Scope:
    """An http or websocket scope as a server would give it."""
    scope: Scope = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": query_string,
        "headers": [(b"host", host.encode("latin-1"))],
        "client": ("127.0.0.1", 12345),
        "server": ("example.org", 80),
    }
    if kind == "http":
        scope["method"] = method
    else:
        scope["subprotocols"] = []
    return scope


def label_app(label: str) -> Any:
    """A raw ASGI app answering `label`: a 200 body, or a websocket accepted and sent it."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await PlainTextResponse(label)(scope, receive, send)
        else:
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": label})
            await send({"type": "websocket.close", "code": 1000})

    return app


def http_endpoint(label: str) -> Any:
    async def answer(request: Request) -> PlainTextResponse:
        return PlainTextResponse(label)

    answer.__name__ = answer.__qualname__ = label
    return answer


def ws_endpoint(label: str) -> Any:
    async def session(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(label)
        await websocket.close()

    session.__name__ = session.__qualname__ = label
    return session


class DepthRoute(BaseRoute):
    """A route of its own kind, which the index cannot describe: it takes any path with `depth`
    slashes; fully for GET and websockets, partially (by path only) for other methods."""

    def __init__(self, depth: int, label: str) -> None:
        self.depth = depth
        self.label = label
        self.name = label

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        if route_path(scope).count("/") != self.depth:
            return Match.NONE, {}
        if scope["type"] == "http" and scope["method"] != "GET":
            return Match.PARTIAL, {}
        return Match.FULL, {}

    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        await label_app(self.label)(scope, receive, send)


class LowerCaseRoute(Route):
    """A Route subclass with its own `matches`: its path whatever the case of the request."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return super().matches({**scope, "path": scope["path"].lower()})


def check_index(router: Router, scope: Scope, labels: dict[int, str]) -> None:
    """The candidates of the scope's path hold every route that matches, in declaration order,
    each once; and so do those of every router behind a matching Mount or Host."""
    routes = router.routes
    position = {id(route): index for index, route in enumerate(routes)}
    path = route_path(scope)
    candidates = router._candidates(path)
    indices = [position.get(id(route), -1) for route in candidates]
    assert -1 not in indices, f"a candidate is not one of the routes, for {path!r}"
    assert indices == sorted(set(indices)), (
        f"candidates of {path!r} out of declaration order or repeated: "
        f"{[labels[id(route)] for route in candidates]}"
    )
    chosen = set(indices)
    for index, route in enumerate(routes):
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        assert index in chosen, (
            f"{labels[id(route)]} ({match.name}) matches {scope['type']} {path!r} "
            f"but is not a candidate: {[labels[id(r)] for r in candidates]}"
        )
        inner = sub_router(route)
        if inner is not None and match is Match.FULL:
            check_index(inner, {**scope, **child_scope}, labels)


TEMPLATE_SEGMENTS = [
    "users",
    "me",
    "a",
    "b",
    "static",
    "special",
    "settings",
    "posts",
    "",
    "{NAME}",
    "{NAME:int}",
    "{NAME:float}",
    "{NAME:uuid}",
    "{NAME:path}",
    "file-{NAME:int}.txt",
    "v{NAME}",
]
INDEX_MOUNT_PREFIXES = ["", "/static", "/users", "/users/{uid}", "/{m:int}", "/a/b", "/users/me"]
HOST_PATTERNS = ["example.org", "api.example.org", "{sub}.example.org"]
REQUEST_HOSTS = ["example.org", "api.example.org", "other.net"]
INDEX_METHOD_CHOICES: list[tuple[str, ...] | None] = [None, ("GET",), ("POST",), ("PUT", "POST")]
INDEX_UUID_TEXT = "4e8bd30f-8b5a-4d6c-9a8e-1f2f3a4b5c6d"
PATH_SEGMENTS = [
    "users",
    "me",
    "Me",
    "a",
    "b",
    "static",
    "special",
    "settings",
    "posts",
    "",
    "1",
    "22",
    "1.5",
    "file-3.txt",
    "file-x.txt",
    "v1",
    "x",
    INDEX_UUID_TEXT,
    INDEX_UUID_TEXT.replace("-", ""),
]

template = st.lists(st.sampled_from(TEMPLATE_SEGMENTS), max_size=3)
leaf = st.one_of(
    st.tuples(st.just("route"), template, st.sampled_from(INDEX_METHOD_CHOICES)),
    st.tuples(st.just("route"), template, st.sampled_from(INDEX_METHOD_CHOICES)),
    st.tuples(st.just("ws"), template),
    st.tuples(st.just("depth"), st.integers(0, 4)),
    st.tuples(st.just("lower"), st.lists(st.sampled_from(["users", "me", "a", "b"]), max_size=2)),
)
outer = st.one_of(
    leaf,
    leaf,
    st.tuples(
        st.just("mount"),
        st.sampled_from(INDEX_MOUNT_PREFIXES),
        st.one_of(st.none(), st.lists(leaf, max_size=4)),  # None: a plain ASGI app
        st.booleans(),  # the sub-router's redirect_slashes
    ),
    st.tuples(st.just("host"), st.sampled_from(HOST_PATTERNS), st.lists(leaf, max_size=3)),
)
table = st.lists(outer, max_size=10)
index_request_path = st.builds(
    lambda segments, slash: "/" + "/".join(segments) + ("/" if slash and segments else ""),
    st.lists(st.sampled_from(PATH_SEGMENTS), max_size=4),
    st.booleans(),
)


def fill(segments: list[str]) -> str:
    """A route path of these template segments, each parameter named after its position."""
    return "/" + "/".join(s.replace("NAME", f"p{i}") for i, s in enumerate(segments))


def build_leaf(spec: tuple[Any, ...], label: str, labels: dict[Any, str]) -> BaseRoute:
    kind = spec[0]
    route: BaseRoute
    if kind == "route":
        route = Route(fill(spec[1]), http_endpoint(label), methods=spec[2])
    elif kind == "ws":
        route = WebSocketRoute(fill(spec[1]), ws_endpoint(label))
    elif kind == "depth":
        route = DepthRoute(spec[1], label)
    else:
        route = LowerCaseRoute(fill(spec[1]), http_endpoint(label))
    labels[id(route)] = label
    return route


def build_index_table(spec: list[Any], labels: dict[Any, str], redirect_slashes: bool) -> Router:
    """A router of the table; labels["r3"] is the fourth entry, "r3.1" the second inside it.
    Inner routers redirect if the spec says so, or never when `redirect_slashes` is False."""
    routes: list[BaseRoute] = []
    for index, entry in enumerate(spec):
        label = f"r{index}"
        route: BaseRoute
        if entry[0] == "mount":
            _, prefix, children, inner_redirect = entry
            if children is None:
                route = Mount(prefix, app=label_app(label))
            else:
                inner = [build_leaf(c, f"{label}.{i}", labels) for i, c in enumerate(children)]
                if redirect_slashes and inner_redirect:
                    route = Mount(prefix, routes=inner)  # a Router with the default redirects
                else:
                    route = Mount(prefix, app=Router(inner, redirect_slashes=False))
        elif entry[0] == "host":
            _, pattern, children = entry
            inner = [build_leaf(c, f"{label}.{i}", labels) for i, c in enumerate(children)]
            route = Host(pattern, app=Router(inner, redirect_slashes=redirect_slashes))
        else:
            route = build_leaf(entry, label, labels)
        labels[id(route)] = label
        routes.append(route)
    return Router(routes, redirect_slashes=redirect_slashes)


# Values that fit each parameter, to build paths that reach the routes of a table.
SEGMENT_SAMPLES = {
    "{NAME}": ["x", "me", "users"],
    "{NAME:int}": ["1", "22"],
    "{NAME:float}": ["1.5", "3"],
    "{NAME:uuid}": [INDEX_UUID_TEXT],
    "{NAME:path}": ["", "a", "a/b", "me/", "static/special"],
    "file-{NAME:int}.txt": ["file-3.txt"],
    "v{NAME}": ["v1"],
}
PREFIX_SAMPLES = {"/users/{uid}": ["/users/7", "/users/me"], "/{m:int}": ["/5"]}


def path_to(segments: list[str]) -> st.SearchStrategy[str]:
    """Paths that the route with these template segments (may) match."""
    parts = [st.sampled_from(SEGMENT_SAMPLES.get(segment, [segment])) for segment in segments]
    return st.tuples(*parts).map(lambda values: "/" + "/".join(values))


def paths_into(spec: list[Any]) -> st.SearchStrategy[str]:
    """Paths aimed at the routes of a table (inside its Mounts too), the slash sometimes toggled."""
    aimed: list[st.SearchStrategy[str]] = []
    for entry in spec:
        children: list[Any] = []
        if entry[0] in ("route", "ws"):
            aimed.append(path_to(entry[1]))
        elif entry[0] == "lower":  # its path in another case
            aimed.append(path_to(entry[1]).map(str.upper))
        elif entry[0] == "mount":
            prefix = st.sampled_from(PREFIX_SAMPLES.get(entry[1], [entry[1]]))
            children = entry[2] if entry[2] is not None else [("route", ["x", "y"], None)]
            for child in children:
                if child[0] in ("route", "ws", "lower"):
                    aimed.append(st.tuples(prefix, path_to(child[1])).map("".join))
        elif entry[0] == "host":
            aimed += [path_to(c[1]) for c in entry[2] if c[0] in ("route", "ws", "lower")]
    if not aimed:
        return index_request_path

    def toggle(path: str) -> str:
        return (path.rstrip("/") or "/") if path.endswith("/") else path + "/"

    return st.tuples(st.one_of(aimed), st.integers(0, 2)).map(
        lambda aimed_path: toggle(aimed_path[0]) if aimed_path[1] == 0 else aimed_path[0]
    )


def requests_for(spec: list[Any], data: st.DataObject, max_size: int) -> list[tuple[str, str]]:
    paths = st.one_of(index_request_path, paths_into(spec), paths_into(spec))
    requests = st.tuples(paths, st.sampled_from(REQUEST_HOSTS))
    return data.draw(st.lists(requests, min_size=1, max_size=max_size), label="requests")


SCOPE_KINDS = [("http", "GET"), ("http", "POST"), ("http", "PUT"), ("websocket", "GET")]


@INDEX_EXAMPLES
@given(spec=table, data=st.data())
def test_index_candidates_hold_every_matching_route_in_declaration_order_once(
    spec: list[Any], data: st.DataObject
) -> None:
    requests = requests_for(spec, data, max_size=6)
    labels: dict[Any, str] = {}
    router = build_index_table(spec, labels, redirect_slashes=False)
    for path, host in requests:
        for kind, method in SCOPE_KINDS:
            check_index(router, index_scope(path, kind=kind, method=method, host=host), labels)


@pytest.mark.parametrize("redirect_slashes", [False, True])
@INDEX_EXAMPLES
@given(spec=table, data=st.data())
def test_router_answers_as_a_linear_scan_full_match_then_partial_then_slash_redirect_then_404(
    redirect_slashes: bool, spec: list[Any], data: st.DataObject
) -> None:
    requests = requests_for(spec, data, max_size=5)
    labels: dict[Any, str] = {}
    router = build_index_table(spec, labels, redirect_slashes=redirect_slashes)
    scopes = [
        index_scope(path, kind=kind, method=method, host=host)
        for path, host in requests
        for kind, method in SCOPE_KINDS
    ]
    check_answers(router, scopes, labels)


def names(routes: Sequence[BaseRoute]) -> list[str]:
    return [str(getattr(route, "name", None) or getattr(route, "path", "?")) for route in routes]


def answer_of(router: Router, path: str, method: str = "GET") -> tuple[str, Any]:
    return run_all(router, [index_scope(path, method=method)])[0]


def test_users_me_declared_after_users_id_is_shadowed_by_it() -> None:
    router = Router(
        [Route("/users/{id}", http_endpoint("by-id")), Route("/users/me", http_endpoint("me"))]
    )
    assert names(router._candidates("/users/me")) == ["by-id", "me"]
    client = TestClient(router)
    assert client.get("/users/me").text == "by-id"
    assert client.get("/users/7").text == "by-id"


def test_a_plain_route_matched_by_the_router_itself_sets_the_scope_keys_route_matches_gives() -> (
    None
):
    """The router matches a plain Route itself (a dict hit for a static path): the scope it hands
    the endpoint holds what Route.matches and Router would put there."""
    seen: list[dict[str, Any]] = []

    async def note(request: Request) -> Response:
        scope = request.scope
        seen.append({key: scope[key] for key in ("route", "endpoint", "path_params")})
        return PlainTextResponse("ok")

    static, with_param, top = (
        Route("/static", note),
        Route("/items/{id:int}", note),
        Route("/top", note),
    )
    client = TestClient(Router([Mount("/org/{org}", app=Router([static, with_param])), top]))
    assert client.get("/org/acme/static").text == "ok"
    assert client.get("/org/acme/items/7").text == "ok"
    assert client.get("/top").text == "ok"
    assert seen == [
        {"route": static, "endpoint": note, "path_params": {"org": "acme"}},
        {"route": with_param, "endpoint": note, "path_params": {"org": "acme", "id": 7}},
        {"route": top, "endpoint": note, "path_params": {}},
    ]


def test_a_route_whose_regex_was_replaced_is_not_taken_for_its_path_by_the_router() -> None:
    odd = Route("/about", http_endpoint("odd"))
    odd.path_regex = re.compile("^/elsewhere\\Z")  # its path format says /about, its regex not
    client = TestClient(Router([odd, Route("/about", http_endpoint("about"))]))
    assert client.get("/about").text == "about"
    assert client.get("/elsewhere").text == "odd"


def test_a_static_path_matched_by_method_falls_through_to_a_later_route() -> None:
    router = Router(
        [
            Route("/x", http_endpoint("get"), methods=["GET"]),
            Route("/x", http_endpoint("post"), methods=["POST"]),
        ]
    )
    client = TestClient(router)
    assert client.get("/x").text == "get"
    assert client.post("/x").text == "post"
    response = client.put("/x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_users_me_declared_before_users_id_wins_over_it() -> None:
    router = Router(
        [Route("/users/me", http_endpoint("me")), Route("/users/{id}", http_endpoint("by-id"))]
    )
    assert names(router._candidates("/users/me")) == ["me", "by-id"]
    client = TestClient(router)
    assert client.get("/users/me").text == "me"
    assert client.get("/users/7").text == "by-id"
    response = client.get("/users/me/", follow_redirects=False)
    assert response.status_code == 307
    assert urlsplit(response.headers["location"]).path == "/users/me"


def test_users_me_with_a_405_route_first_still_lets_a_later_full_match_answer() -> None:
    router = Router(
        [
            Route("/users/me", http_endpoint("me-post"), methods=["POST"]),
            Route("/users/{id}", http_endpoint("by-id")),
        ]
    )
    client = TestClient(router)
    assert client.get("/users/me").text == "by-id"
    assert client.post("/users/me").text == "me-post"
    response = client.delete("/users/me")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_users_me_settings_and_users_id_posts_each_take_their_own_branch() -> None:
    router = Router(
        [
            Route("/users/me/settings", http_endpoint("settings")),
            Route("/users/{id}/posts", http_endpoint("posts")),
        ],
        redirect_slashes=False,
    )
    client = TestClient(router)
    assert client.get("/users/me/settings").text == "settings"
    assert client.get("/users/me/posts").text == "posts"  # the "me" edge leads nowhere for it
    assert client.get("/users/7/posts").text == "posts"
    assert client.get("/users/7/settings").status_code == 404
    assert client.get("/users/me").status_code == 404
    assert "posts" in names(router._candidates("/users/me/posts"))


def test_a_literal_edge_to_a_dead_end_does_not_hide_the_parameter_edge() -> None:
    router = Router(
        [Route("/a/b/c", http_endpoint("abc")), Route("/a/{x}/d", http_endpoint("axd"))],
        redirect_slashes=False,
    )
    assert "axd" in names(router._candidates("/a/b/d"))
    client = TestClient(router)
    assert client.get("/a/b/d").text == "axd"
    assert client.get("/a/b/c").text == "abc"
    assert client.get("/a/z/d").text == "axd"
    assert client.get("/a/z/c").status_code == 404


def test_a_path_parameter_above_a_literal_branch_is_a_candidate_below_it() -> None:
    router = Router(
        [
            Route("/files/{rest:path}", http_endpoint("rest")),
            Route("/files/a/{x}", http_endpoint("ax")),
            Route("/files/{y}/b", http_endpoint("yb")),
        ],
        redirect_slashes=False,
    )
    for path in ("/files/a/b", "/files/a/b/c", "/files/a/", "/files/", "/files/q/b"):
        candidates = names(router._candidates(path))
        assert candidates[0] == "rest", path
        assert answer_of(router, path) == ("200", "rest"), path


def test_a_route_below_a_root_mount_never_answers_before_the_mount() -> None:
    router = Router(
        [
            Mount("", app=label_app("root")),
            Route("/files/{rest:path}", http_endpoint("rest")),
            Route("/files/a", http_endpoint("a")),
        ],
        redirect_slashes=False,
    )
    for path in ("/files/a", "/files/a/b", "/files/x", "/files/", "/"):
        assert names(router._candidates(path))[0] == "", path  # the Mount has no name
        assert answer_of(router, path) == ("200", "root"), path


def test_a_route_subclass_with_its_own_matches_is_tried_for_every_path() -> None:
    router = Router(
        [
            LowerCaseRoute("/users/me/settings", http_endpoint("lower")),
            Route("/users/{id}/settings", http_endpoint("by-id")),
        ],
        redirect_slashes=False,
    )
    assert answer_of(router, "/USERS/ME/SETTINGS") == ("200", "lower")
    assert answer_of(router, "/users/Me/settings") == ("200", "lower")
    assert answer_of(router, "/users/you/settings") == ("200", "by-id")
    assert answer_of(router, "/Users/you/settings") == ("404", None)


@pytest.mark.parametrize("mount_first", [True, False])
def test_mount_static_and_route_static_special_follow_declaration_order(mount_first: bool) -> None:
    mount = Mount("/static", app=label_app("mount"))
    special = Route("/static/special", http_endpoint("special"))
    router = Router([mount, special] if mount_first else [special, mount])
    client = TestClient(router)
    assert client.get("/static/special").text == ("mount" if mount_first else "special")
    assert client.get("/static/other").text == "mount"
    assert client.get("/static/special/deeper").text == "mount"
    assert client.get("/static/").text == "mount"
    response = client.get("/static", follow_redirects=False)  # the mount takes only "/static/..."
    assert response.status_code == 307
    assert urlsplit(response.headers["location"]).path == "/static/"
    expected = [mount, special] if mount_first else [special, mount]
    assert router._candidates("/static/special") == expected


def test_mount_with_a_parameter_and_a_sibling_literal_route() -> None:
    inner = Router([Route("/posts", http_endpoint("posts"))])
    router = Router(
        [Route("/users/me/posts", http_endpoint("mine")), Mount("/users/{uid}", app=inner)],
        redirect_slashes=False,
    )
    assert answer_of(router, "/users/me/posts") == ("200", "mine")
    assert answer_of(router, "/users/7/posts") == ("200", "posts")
    assert answer_of(router, "/users/me/other") == ("404", None)


def test_routes_changed_after_the_first_request_are_indexed_again() -> None:
    router = Router([Route("/users/{id}", http_endpoint("by-id"))], redirect_slashes=False)
    client = TestClient(router)
    assert client.get("/users/me").text == "by-id"
    assert client.get("/late").status_code == 404

    router.routes.append(Route("/late", http_endpoint("late")))
    assert client.get("/late").text == "late"

    router.routes.insert(0, Route("/users/me", http_endpoint("me")))
    assert client.get("/users/me").text == "me"

    router.routes[0] = Route("/users/me", http_endpoint("me-again"))
    assert client.get("/users/me").text == "me-again"

    del router.routes[0]
    assert client.get("/users/me").text == "by-id"

    router.routes += [Route("/later/{x:int}", http_endpoint("later"))]
    assert client.get("/later/3").text == "later"

    router.routes.extend([Mount("/m", app=label_app("m"))])
    assert client.get("/m/anything").text == "m"

    router.routes.remove(router.routes[0])
    assert client.get("/users/me").status_code == 404
    assert client.get("/late").text == "late"

    router.routes.pop()
    assert client.get("/m/anything").status_code == 404

    router.routes.reverse()
    router.routes.insert(0, Route("/{anything}", http_endpoint("any")))
    assert client.get("/late").text == "any"

    router.routes = [Route("/late", http_endpoint("replaced"))]
    assert client.get("/late").text == "replaced"
    assert client.get("/later/3").status_code == 404

    router.routes.clear()
    assert client.get("/late").status_code == 404
    assert router._candidates("/late") == []


def test_routes_added_to_a_mounted_router_after_a_request_are_indexed() -> None:
    inner = Router([Route("/a", http_endpoint("a"))], redirect_slashes=False)
    router = Router([Mount("/m", app=inner)], redirect_slashes=False)
    assert answer_of(router, "/m/b") == ("404", None)
    inner.routes.append(Route("/b", http_endpoint("b")))
    assert answer_of(router, "/m/b") == ("200", "b")


@pytest.mark.parametrize("path", ["/", "", "//", "/a", "/a/", "/users/me", "/x/y/z"])
def test_an_empty_router_has_no_candidates_and_answers_404(path: str) -> None:
    router = Router([])
    assert router._candidates(path) == []
    if path:
        assert answer_of(router, path) == ("404", None)
        scope = index_scope(path, kind="websocket")
        assert run_all(router, [scope]) == [("close", None)]


def test_routes_the_index_cannot_describe_are_candidates_for_every_path() -> None:
    depth = DepthRoute(1, "depth")
    host = Host("api.example.org", app=label_app("api"))
    router = Router([depth, host], redirect_slashes=False)
    for path in ("/", "/a", "/a/b", "/users/me"):
        assert router._candidates(path) == [depth, host]
    assert answer_of(router, "/a") == ("200", "depth")
    assert answer_of(router, "/a/b") == ("404", None)
    scope = index_scope("/a/b", host="api.example.org")
    assert run_all(router, [scope]) == [("200", "api")]


def test_websocket_and_http_routes_on_the_same_path_each_take_their_scope() -> None:
    router = Router(
        [
            WebSocketRoute("/users/me", ws_endpoint("ws-me")),
            Route("/users/{id}", http_endpoint("http-id")),
            WebSocketRoute("/users/{id}", ws_endpoint("ws-id")),
        ],
        redirect_slashes=False,
    )
    answers = run_all(
        router,
        [
            index_scope("/users/me", kind="websocket"),
            index_scope("/users/7", kind="websocket"),
            index_scope("/users/me"),
        ],
    )
    assert answers == [("ws", "ws-me"), ("ws", "ws-id"), ("200", "http-id")]


def test_mixed_segment_parameters_match_and_are_converted() -> None:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({k: repr(v) for k, v in request.path_params.items()})

    router = Router(
        [
            Route("/files/file-{n:int}.txt", echo),
            Route("/files/latest.txt", http_endpoint("latest")),
            Route("/files/{name}", http_endpoint("name")),
        ],
        redirect_slashes=False,
    )
    client = TestClient(router)
    assert client.get("/files/file-12.txt").json() == {"n": "12"}
    assert client.get("/files/latest.txt").text == "latest"
    assert client.get("/files/file-x.txt").text == "name"


# ---- what a linear scan and the index once disagreed on ----


def test_a_path_ending_in_a_newline_matches_no_route() -> None:
    # "$" would match before the final newline: "/a%0A" would have reached Route("/a").
    route = Route("/a", http_endpoint("a"))
    files = Route("/files/{rest:path}", http_endpoint("files"))
    router = Router([route, files], redirect_slashes=False)
    assert route.matches(index_scope("/a\n"))[0] is Match.NONE
    assert files.matches(index_scope("/files/x\n"))[0] is Match.NONE
    assert answer_of(router, "/a\n") == ("404", None)
    assert answer_of(router, "/files/x\n") == ("404", None)
    assert answer_of(router, "/a") == ("200", "a")


class SlashSpanningConvertor(StringConvertor):
    """A str convertor whose values may hold "/": a route index must not take it as one segment."""

    regex = ".+"


def test_a_registered_convertor_subclass_that_spans_slashes_is_a_candidate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(CONVERTOR_TYPES, "spanning", SlashSpanningConvertor())
    route = Route("/f/{p:spanning}", http_endpoint("f"))
    router = Router([route], redirect_slashes=False)
    assert route.matches(index_scope("/f/x/y"))[0] is Match.FULL
    assert route in router._candidates("/f/x/y")
    assert answer_of(router, "/f/x/y") == ("200", "f")


def test_the_index_uses_the_convertor_a_route_was_compiled_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(CONVERTOR_TYPES, "later", SlashSpanningConvertor())
    route = Route("/g/{p:later}", http_endpoint("g"))  # compiled with a "/"-spanning regex
    monkeypatch.setitem(CONVERTOR_TYPES, "later", CONVERTOR_TYPES["str"])  # then replaced
    router = Router([route], redirect_slashes=False)
    assert route.matches(index_scope("/g/x/y"))[0] is Match.FULL
    assert answer_of(router, "/g/x/y") == ("200", "g")  # as the route itself answers


def test_register_url_convertor_is_the_documented_way_and_works_for_one_segment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Hex(StringConvertor):
        regex = "[0-9a-f]+"

        def convert(self, value: str) -> Any:
            return int(value, 16)

    monkeypatch.setitem(CONVERTOR_TYPES, "hex_number", CONVERTOR_TYPES["str"])
    register_url_convertor("hex_number", Hex())
    router = Router([Route("/h/{n:hex_number}/x", http_endpoint("hex"))], redirect_slashes=False)
    assert answer_of(router, "/h/ff/x") == ("200", "hex")
    assert answer_of(router, "/h/zz/x") == ("404", None)


def test_a_generator_function_lifespan_still_works_with_a_deprecation_warning(
    backend: Backend,
) -> None:
    events: list[str] = []

    def sync_lifespan(app: Starlite) -> Iterator[dict[str, str]]:
        events.append("sync start-up")
        yield {"kind": "sync"}
        events.append("sync shut-down")

    async def async_lifespan(app: Starlite) -> AsyncIterator[dict[str, str]]:
        events.append("async start-up")
        yield {"kind": "async"}
        events.append("async shut-down")

    def state(request: Request) -> Response:
        return PlainTextResponse(request.state.kind)

    for kind, lifespan in [("sync", sync_lifespan), ("async", async_lifespan)]:
        prefix = "" if kind == "sync" else "async "
        with pytest.warns(StarletteDeprecationWarning) as warned:
            app = Starlite(routes=[Route("/", state)], lifespan=lifespan)  # type: ignore[arg-type]
        assert [str(warning.message) for warning in warned] == [
            f"{prefix}generator function lifespans are deprecated, "
            "use an @contextlib.asynccontextmanager function instead"
        ]
        with TestClient(app, backend=backend) as client:
            assert events[-1] == f"{kind} start-up"
            assert client.get("/").text == kind
        assert events[-1] == f"{kind} shut-down"


@pytest.mark.anyio
async def test_a_sync_generator_function_lifespan_sees_an_error_raised_while_it_is_open() -> None:
    seen: list[str] = []

    def lifespan(app: Router) -> Iterator[None]:
        try:
            yield
        except LookupError as error:
            seen.append(str(error))
            raise

    with pytest.warns(StarletteDeprecationWarning):
        router = Router(lifespan=lifespan)  # type: ignore[arg-type]
    with pytest.raises(LookupError, match="inside"):
        async with router.lifespan_context(router):
            raise LookupError("inside")
    assert seen == ["inside"]


# ==== Endpoints ====


@pytest.mark.parametrize(
    ("endpoint", "scope", "wanted", "got"),
    [
        (Items, ws_scope(), "http", "websocket"),
        (WebSocketEndpoint, make_scope(), "websocket", "http"),
        (Items, {"type": "lifespan"}, "http", "lifespan"),
    ],
    ids=["http-endpoint-websocket", "websocket-endpoint-http", "http-endpoint-lifespan"],
)
def test_endpoint_made_for_a_scope_of_another_type_raises_naming_both(
    endpoint: type[HTTPEndpoint | WebSocketEndpoint], scope: Scope, wanted: str, got: str
) -> None:
    server = Server()
    message = f"{endpoint.__name__} needs a scope of type '{wanted}', got '{got}'"
    with pytest.raises(ValueError, match=re.escape(message)):
        endpoint(scope, server.receive, server.send)


class ThreadReport(HTTPEndpoint):
    """Answers whether each method ran off the event loop (needs LoopThread in the stack)."""

    async def get(self, request: Request) -> Response:
        return JSONResponse({"in_worker": in_worker_thread(request)})

    def post(self, request: Request) -> Response:
        return JSONResponse({"in_worker": in_worker_thread(request)})


class EveryMethod(HTTPEndpoint):
    """Defines a handler for every standard method, each answering its own name."""

    async def get(self, request: Request) -> Response:
        return PlainTextResponse("get")

    async def head(self, request: Request) -> Response:
        return PlainTextResponse("head", headers={"x-handler": "head"})

    async def post(self, request: Request) -> Response:
        return PlainTextResponse("post")

    async def put(self, request: Request) -> Response:
        return PlainTextResponse("put")

    async def patch(self, request: Request) -> Response:
        return PlainTextResponse("patch")

    async def delete(self, request: Request) -> Response:
        return PlainTextResponse("delete")

    async def options(self, request: Request) -> Response:
        return PlainTextResponse("options")

    async def query(self, request: Request) -> Response:
        return PlainTextResponse("query " + (await request.body()).decode())


class NonStandard(HTTPEndpoint):
    """Has GET, and methods named like non-standard verbs, which must never be dispatched."""

    async def get(self, request: Request) -> Response:
        return PlainTextResponse("get")

    async def foo(self, request: Request) -> Response:
        return PlainTextResponse("foo")

    async def connect(self, request: Request) -> Response:
        return PlainTextResponse("connect")

    async def trace(self, request: Request) -> Response:
        return PlainTextResponse("trace")

    async def propfind(self, request: Request) -> Response:
        return PlainTextResponse("propfind")


class PostOnly(HTTPEndpoint):
    def post(self, request: Request) -> Response:
        return PlainTextResponse("post")


def endpoint_client(endpoint: type[HTTPEndpoint], backend: Backend = "asyncio") -> TestClient:
    app = Starlite(routes=[Route("/", endpoint)], middleware=[Middleware(LoopThread)])
    return TestClient(app, backend=backend)


@pytest.mark.parametrize(("method", "body"), [("GET", "get items"), ("POST", "post items")])
def test_http_endpoint_dispatches_async_and_sync_methods(
    backend: Backend, method: str, body: str
) -> None:
    response = endpoint_client(Items, backend).request(method, "/")
    assert response.status_code == 200
    assert response.text == body


def test_http_endpoint_sync_method_runs_in_a_worker_thread(backend: Backend) -> None:
    assert endpoint_client(ThreadReport, backend).post("/").json() == {"in_worker": True}


def test_http_endpoint_async_method_runs_on_the_event_loop(backend: Backend) -> None:
    assert endpoint_client(ThreadReport, backend).get("/").json() == {"in_worker": False}


def test_http_endpoint_head_falls_back_to_get() -> None:
    response = endpoint_client(Items).head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len("get items"))


def test_http_endpoint_own_head_is_used_over_get() -> None:
    response = endpoint_client(EveryMethod).head("/")
    assert response.headers["x-handler"] == "head"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_http_endpoint_dispatches_every_standard_method(method: str) -> None:
    response = endpoint_client(EveryMethod).request(method, "/")
    assert response.status_code == 200
    assert response.text == method.lower()


def test_http_endpoint_dispatches_query_with_its_body(backend: Backend) -> None:
    response = endpoint_client(EveryMethod, backend).request("QUERY", "/", content=b"name=ada")
    assert response.status_code == 200
    assert response.text == "query name=ada"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "QUERY"])
def test_http_endpoint_undefined_method_is_405_with_allow(method: str) -> None:
    response = endpoint_client(Items).request(method, "/")
    assert response.status_code == 405
    assert response.text == "Method Not Allowed"
    assert allow_set(response) == {"GET", "HEAD", "POST"}


def test_http_endpoint_allow_has_no_head_without_get() -> None:
    response = endpoint_client(PostOnly).get("/")
    assert response.status_code == 405
    assert allow_set(response) == {"POST"}


def test_http_endpoint_head_without_get_is_405() -> None:
    assert endpoint_client(PostOnly).head("/").status_code == 405


def test_http_endpoint_allow_lists_every_defined_standard_method() -> None:
    response = endpoint_client(EveryMethod).request("FOO", "/")
    assert response.status_code == 405
    assert allow_set(response) == {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "QUERY",
    }


@pytest.mark.parametrize("method", ["FOO", "CONNECT", "TRACE", "PROPFIND"])
def test_http_endpoint_never_dispatches_non_standard_methods(method: str) -> None:
    response = endpoint_client(NonStandard).request(method, "/")
    assert response.status_code == 405
    assert allow_set(response) == {"GET", "HEAD"}


def test_http_endpoint_receives_path_params(backend: Backend) -> None:
    class Item(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            item_id = request.path_params["item_id"]
            return JSONResponse({"id": item_id, "is_int": isinstance(item_id, int)})

    app = Starlite(routes=[Route("/items/{item_id:int}", Item)])
    response = TestClient(app, backend=backend).get("/items/42")
    assert response.json() == {"id": 42, "is_int": True}


def test_http_endpoint_reads_the_request_body(backend: Backend) -> None:
    class Echo(HTTPEndpoint):
        async def post(self, request: Request) -> Response:
            return JSONResponse(await request.json())

    app = Starlite(routes=[Route("/", Echo)])
    assert TestClient(app, backend=backend).post("/", json={"a": [1]}).json() == {"a": [1]}


def test_http_endpoint_405_goes_through_the_apps_405_handler() -> None:
    def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return PlainTextResponse("custom 405", status_code=405, headers=exc.headers)

    app = Starlite(routes=[Route("/", Items)], exception_handlers={405: handler})
    response = TestClient(app).delete("/")
    assert response.status_code == 405
    assert response.text == "custom 405"
    assert allow_set(response) == {"GET", "HEAD", "POST"}


def test_http_endpoint_as_a_bare_asgi_app_answers_405_itself() -> None:
    response = TestClient(Items).put("/")
    assert response.status_code == 405
    assert response.text == "Method Not Allowed"
    assert allow_set(response) == {"GET", "HEAD", "POST"}


def test_http_endpoint_as_a_bare_asgi_app_dispatches() -> None:
    assert TestClient(Items).get("/").text == "get items"


@pytest.mark.anyio
async def test_http_endpoint_request_sends_early_hints_through_the_send_channel() -> None:
    class Hinting(HTTPEndpoint):
        async def get(self, request: Request) -> Response:
            await request.send_early_hints("</style.css>; rel=preload; as=style")
            return PlainTextResponse("hinted")

    scope = make_scope(extensions={"http.response.early_hint": {}})
    sent = (await Server(receive=ScriptedReceive()).run(Hinting, scope)).sent
    assert sent[0] == {
        "type": "http.response.early_hint",
        "links": [b"</style.css>; rel=preload; as=style"],
    }
    assert [message["type"] for message in sent[1:]] == [
        "http.response.start",
        "http.response.body",
    ]


def test_http_endpoint_exception_reaches_the_apps_handler() -> None:
    class Failing(HTTPEndpoint):
        def get(self, request: Request) -> Response:
            raise Boom("from endpoint")

    app = Starlite(routes=[Route("/", Failing)], exception_handlers={Boom: text_handler("caught")})
    assert TestClient(app).get("/").text == "caught"


def returns_a_dict(request: Request) -> Any:
    return {"not": "a response"}


async def async_returns_none(request: Request) -> Any:
    return None


def returns_a_string(request: Request) -> Any:
    return "plain string"


@pytest.mark.parametrize("endpoint", [returns_a_dict, async_returns_none, returns_a_string])
def test_endpoint_returning_a_non_response_raises_type_error_naming_it(
    endpoint: Callable[[Request], Any],
) -> None:
    app = Starlite(routes=[Route("/", endpoint)])
    with pytest.raises(TypeError) as excinfo:
        TestClient(app).get("/")
    message = str(excinfo.value)
    assert endpoint.__name__ in message
    assert "Response" in message


@pytest.mark.parametrize("endpoint", [returns_a_dict, async_returns_none, returns_a_string])
def test_endpoint_returning_a_non_response_is_500_without_detail(
    endpoint: Callable[[Request], Any],
) -> None:
    app = Starlite(routes=[Route("/", endpoint)])
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


def test_http_endpoint_method_returning_a_non_response_raises_type_error() -> None:
    class Bad(HTTPEndpoint):
        async def get(self, request: Request) -> Any:
            return {"not": "a response"}

    with pytest.raises(TypeError):
        TestClient(Starlite(routes=[Route("/", Bad)])).get("/")


# ---- WebSockets ----
# WebSocketEndpoint: decoding per `encoding`, the order of its events, and how it closes.


def recording_endpoint(
    encoding: str | None, events: list[Any], **overrides: Any
) -> type[WebSocketEndpoint]:
    """A WebSocketEndpoint that logs its events to `events` and echoes what it decodes as JSON
    ([type name, value], bytes as latin-1 text); `overrides` replace its methods."""

    class Recorder(WebSocketEndpoint):
        async def on_connect(self, websocket: WebSocket) -> None:
            events.append("connect")
            await websocket.accept()

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            events.append(("receive", data))
            shown = data.decode("latin-1") if isinstance(data, bytes) else data
            await websocket.send_json([type(data).__name__, shown])

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            events.append(("disconnect", close_code))

    Recorder.encoding = cast(Any, encoding)
    for name, method in overrides.items():
        setattr(Recorder, name, method)
    return Recorder


def ws_endpoint_client(
    endpoint: type[WebSocketEndpoint], backend: Backend, **kwargs: Any
) -> TestClient:
    return TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend, **kwargs)


# Per encoding: frames and what on_receive gets for each, as [type name, value]; empty payloads
# are frames like any other.
ENCODING_CASES: dict[str, tuple[str | None, list[tuple[Message, list[Any]]]]] = {
    "text": ("text", [(text_frame("h\u00e9"), ["str", "h\u00e9"]), (text_frame(""), ["str", ""])]),
    "bytes": (
        "bytes",
        [(bytes_frame(b"\x00\xff"), ["bytes", "\x00\xff"]), (bytes_frame(b""), ["bytes", ""])],
    ),
    "json": (
        "json",
        [
            (text_frame('{"a": [1]}'), ["dict", {"a": [1]}]),
            (bytes_frame(b'{"a": [1]}'), ["dict", {"a": [1]}]),
            (text_frame("null"), ["NoneType", None]),
        ],
    ),
    "none": (
        None,
        [
            (text_frame("t"), ["str", "t"]),
            (bytes_frame(b"b"), ["bytes", "b"]),
            (text_frame(""), ["str", ""]),
            (bytes_frame(b""), ["bytes", ""]),
        ],
    ),
}


@pytest.mark.parametrize(
    ("encoding", "frames"), list(ENCODING_CASES.values()), ids=list(ENCODING_CASES)
)
def test_websocket_endpoint_decodes_frames_by_encoding(
    encoding: str | None, frames: list[tuple[Message, list[Any]]], backend: Backend
) -> None:
    events: list[Any] = []
    client = ws_endpoint_client(recording_endpoint(encoding, events), backend)
    with client.websocket_connect("/") as ws:
        for message, echo in frames:
            ws.send(dict(message))
            assert ws.receive_json() == echo
    assert events[0] == "connect"
    assert len(events) == len(frames) + 2
    assert events[-1] == ("disconnect", 1000)


@pytest.mark.parametrize(
    ("encoding", "message", "error"),
    [
        ("text", bytes_frame(b"x"), "Expected text websocket messages, but got bytes"),
        ("bytes", text_frame("x"), "Expected bytes websocket messages, but got text"),
        ("json", text_frame("{not json"), "Malformed JSON data received."),
        ("json", bytes_frame(b"\xff"), "Malformed JSON data received."),
        ("json", text_frame("[NaN]"), "Malformed JSON data received."),
        (None, {"type": "websocket.receive"}, "Expected a websocket message with text or bytes"),
    ],
    ids=[
        "bytes-to-text",
        "text-to-bytes",
        "invalid-json",
        "json-not-utf8",
        "not-i-json",
        "no-payload",
    ],
)
def test_websocket_endpoint_closes_with_1003_and_raises_on_a_frame_it_cannot_decode(
    encoding: str | None, message: Message, error: str, backend: Backend
) -> None:
    events: list[Any] = []
    codes: list[int] = []
    client = ws_endpoint_client(recording_endpoint(encoding, events), backend)
    with contextlib.ExitStack() as stack:
        stack.enter_context(pytest.raises(RuntimeError, match=re.escape(error)))
        websocket = stack.enter_context(client.websocket_connect("/"))
        websocket.send(message)
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
        codes.append(info.value.code)
    assert codes == [status.WS_1003_UNSUPPORTED_DATA]
    # The endpoint raised, so on_disconnect hears 1011, as for any exception of a handler.
    assert events == ["connect", ("disconnect", 1011)]


def test_websocket_endpoint_events_come_in_order_with_the_client_close_code(
    backend: Backend,
) -> None:
    events: list[Any] = []
    client = ws_endpoint_client(recording_endpoint("text", events), backend)
    with client.websocket_connect("/") as ws:
        ws.send_text("a")
        assert ws.receive_json() == ["str", "a"]
        ws.send_text("b")
        assert ws.receive_json() == ["str", "b"]
        ws.close(4000, "tab closed")
    assert events == ["connect", ("receive", "a"), ("receive", "b"), ("disconnect", 4000)]


def test_websocket_exception_in_on_receive_closes_with_its_code(backend: Backend) -> None:
    events: list[Any] = []

    async def on_receive(self: WebSocketEndpoint, websocket: WebSocket, data: Any) -> None:
        raise WebSocketException(4001, "bad request")

    endpoint = recording_endpoint("text", events, on_receive=on_receive)
    with ws_endpoint_client(endpoint, backend).websocket_connect("/") as websocket:
        websocket.send_text("x")
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
        assert (info.value.code, info.value.reason) == (4001, "bad request")
    assert events == ["connect", ("disconnect", 4001)]


@pytest.mark.parametrize("raise_server_exceptions", [True, False])
def test_other_exception_in_on_receive_disconnects_with_1011_and_is_raised(
    raise_server_exceptions: bool, backend: Backend
) -> None:
    events: list[Any] = []

    async def on_receive(self: WebSocketEndpoint, websocket: WebSocket, data: Any) -> None:
        raise Boom("in on_receive")

    endpoint = recording_endpoint("text", events, on_receive=on_receive)
    client = ws_endpoint_client(endpoint, backend, raise_server_exceptions=raise_server_exceptions)
    assert closes_then_raises(client, "/", raise_server_exceptions, Boom, "x") == 1011
    assert events == ["connect", ("disconnect", 1011)]


def test_websocket_endpoint_on_connect_can_refuse(backend: Backend) -> None:
    events: list[Any] = []

    async def on_connect(self: WebSocketEndpoint, websocket: WebSocket) -> None:
        events.append("connect")
        await websocket.close(status.WS_1008_POLICY_VIOLATION, "no token")

    client = ws_endpoint_client(recording_endpoint("text", events, on_connect=on_connect), backend)
    refusal = refusal_at(client, "/")
    assert type(refusal) is WebSocketDisconnect  # not an error the app raised
    assert (refusal.code, refusal.reason) == (1008, "no token")
    assert events[0] == "connect"
    assert events[-1][0] == "disconnect"


def test_websocket_endpoint_on_connect_can_pick_a_subprotocol(backend: Backend) -> None:
    events: list[Any] = []

    async def on_connect(self: WebSocketEndpoint, websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=websocket.scope["subprotocols"][-1])

    client = ws_endpoint_client(recording_endpoint("text", events, on_connect=on_connect), backend)
    with client.websocket_connect("/", subprotocols=["v1", "v2"]) as websocket:
        assert websocket.accepted_subprotocol == "v2"
        websocket.send_text("hello")
        assert websocket.receive_json() == ["str", "hello"]


def test_websocket_endpoint_gets_the_close_code_of_a_receive_in_its_handler(
    backend: Backend,
) -> None:
    codes: list[int] = []

    class Waiter(WebSocketEndpoint):
        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            await websocket.receive_text()  # the client closes meanwhile

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            codes.append(close_code)

    client = TestClient(Starlite(routes=[WebSocketRoute("/ws", Waiter)]), backend=backend)
    with client.websocket_connect("/ws") as session:
        session.send_text("first")
        session.close(4002)
    assert codes == [4002]


@pytest.mark.anyio
@pytest.mark.parametrize("close_in", ["on_receive", "on_connect"])
async def test_websocket_endpoint_dispatches_nothing_after_the_app_closed(close_in: str) -> None:
    # The client's frames sent before it saw the close still arrive; none is for the app.
    received: list[Any] = []
    disconnected: list[int] = []

    class ClosesEarly(WebSocketEndpoint):
        encoding = "text"

        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.accept()
            if close_in == "on_connect":
                await websocket.close(4003, "not now")

        async def on_receive(self, websocket: WebSocket, data: Any) -> None:
            received.append(data)
            await websocket.close(4003, "enough")

        async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
            disconnected.append(close_code)

    server = Server(connect(), text_frame("first"), text_frame("late"), disconnect(4003))
    await server.run(ClosesEarly, ws_scope())
    assert received == ([] if close_in == "on_connect" else ["first"])
    assert disconnected == [4003]  # the code the app closed with
    assert server.sent_types == ["websocket.accept", "websocket.close"]


# ==== Middleware ====


class StatusSpy:
    """Pure ASGI middleware logging the status of each response it sees start."""

    def __init__(self, app: ASGIApp, statuses: list[int]) -> None:
        self.app = app
        self.statuses = statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def spying_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses.append(message["status"])
            await send(message)

        await self.app(scope, receive, spying_send)


def test_middleware_keeps_class_args_and_kwargs() -> None:
    log: list[str] = []
    middleware = Middleware(Recorder, "outer", log=log)
    # mypy types `cls` as the factory protocol, which it cannot compare with a class.
    assert middleware.cls is Recorder  # type: ignore[comparison-overlap]
    assert middleware.args == ("outer",)
    assert middleware.kwargs == {"log": log}


def test_middleware_unpacks_as_class_args_kwargs() -> None:
    cls, args, kwargs = Middleware(AddHeader, "v", extra=1)  # type: ignore[call-arg]
    assert (cls, args, kwargs) == (AddHeader, ("v",), {"extra": 1})
    assert list(Middleware(AddHeader)) == [AddHeader, (), {}]


@pytest.mark.parametrize(
    ("cls", "args", "kwargs", "expected"),
    [
        (AddHeader, (), {}, "Middleware(AddHeader)"),
        (AddHeader, ("v",), {}, "Middleware(AddHeader, 'v')"),
        (AddHeader, (), {"value": "v"}, "Middleware(AddHeader, value='v')"),
        (Recorder, ("a",), {"log": []}, "Middleware(Recorder, 'a', log=[])"),
    ],
)
def test_middleware_repr(
    cls: Callable[..., ASGIApp], args: tuple[Any, ...], kwargs: dict[str, Any], expected: str
) -> None:
    assert repr(Middleware(cls, *args, **kwargs)) == expected


def test_middleware_args_and_kwargs_reach_the_constructor() -> None:
    app = Starlite(
        routes=[Route("/", text_endpoint("ok"))],
        middleware=[Middleware(AddHeader, "positional"), Middleware(AddHeader, value="keyword")],
    )
    assert TestClient(app).get("/").headers.get_list("x-middleware") == ["keyword", "positional"]


def test_middleware_accepts_a_factory_function() -> None:
    def factory(app: ASGIApp, value: str) -> ASGIApp:
        return AddHeader(app, value=f"made by factory: {value}")

    app = Starlite(routes=[Route("/", text_endpoint("ok"))], middleware=[Middleware(factory, "x")])
    assert TestClient(app).get("/").headers["x-middleware"] == "made by factory: x"


def test_middleware_first_in_the_list_is_outermost(backend: Backend) -> None:
    log: list[str] = []

    def endpoint(request: Request) -> Response:
        log.append("endpoint")
        return PlainTextResponse("ok")

    app = Starlite(
        routes=[Route("/", endpoint)],
        middleware=[
            Middleware(Recorder, "first", log),
            Middleware(Recorder, "second", log),
            Middleware(Recorder, "third", log),
        ],
    )
    TestClient(app, backend=backend).get("/")
    assert log == [
        "first in",
        "second in",
        "third in",
        "endpoint",
        "third out",
        "second out",
        "first out",
    ]


def test_add_middleware_puts_the_new_middleware_outermost() -> None:
    log: list[str] = []
    app = Starlite(
        routes=[Route("/", text_endpoint("ok"))], middleware=[Middleware(Recorder, "given", log)]
    )
    app.add_middleware(Recorder, "added", log)
    TestClient(app).get("/")
    assert log == ["added in", "given in", "given out", "added out"]


def test_user_middleware_sees_the_lifespan_scope() -> None:
    scope_types: list[str] = []

    class ScopeTypes:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            scope_types.append(scope["type"])
            await self.app(scope, receive, send)

    app = Starlite(routes=[Route("/", text_endpoint("ok"))], middleware=[Middleware(ScopeTypes)])
    with TestClient(app) as client:
        client.get("/")
    assert scope_types == ["lifespan", "http"]


def test_user_middleware_sits_outside_the_exception_middleware() -> None:
    # A handled HTTPException is already a response by the time it passes user middleware.
    statuses: list[int] = []
    app = Starlite(
        routes=[Route("/", raising_endpoint(HTTPException(418)))],
        middleware=[Middleware(StatusSpy, statuses)],
    )
    assert TestClient(app).get("/").status_code == 418
    assert statuses == [418]


def test_user_middleware_sits_inside_the_server_error_middleware() -> None:
    class Broken:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                raise Boom("middleware broke")
            await self.app(scope, receive, send)

    app = Starlite(routes=[Route("/", text_endpoint("ok"))], middleware=[Middleware(Broken)])
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


# ---- Per-route and per-Mount middleware ----


def test_route_middleware_applies_to_its_route_only() -> None:
    app = Starlite(
        routes=[
            Route("/with", text_endpoint("with"), middleware=[Middleware(AddHeader, "route")]),
            Route("/without", text_endpoint("without")),
        ]
    )
    client = TestClient(app)
    assert client.get("/with").headers["x-middleware"] == "route"
    assert "x-middleware" not in client.get("/without").headers


def test_route_middleware_first_in_the_list_is_outermost() -> None:
    log: list[str] = []
    route = Route(
        "/",
        text_endpoint("ok"),
        middleware=[Middleware(Recorder, "first", log), Middleware(Recorder, "second", log)],
    )
    TestClient(Starlite(routes=[route])).get("/")
    assert log == ["first in", "second in", "second out", "first out"]


def test_route_middleware_runs_inside_app_middleware() -> None:
    log: list[str] = []
    route = Route("/", text_endpoint("ok"), middleware=[Middleware(Recorder, "route", log)])
    app = Starlite(routes=[route], middleware=[Middleware(Recorder, "app", log)])
    TestClient(app).get("/")
    assert log == ["app in", "route in", "route out", "app out"]


def test_route_middleware_sees_the_path_params(backend: Backend) -> None:
    seen: list[dict[str, Any]] = []

    class PathParamsSpy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(dict(scope["path_params"]))
            await self.app(scope, receive, send)

    route = Route("/users/{id:int}", text_endpoint("ok"), middleware=[Middleware(PathParamsSpy)])
    TestClient(Starlite(routes=[route]), backend=backend).get("/users/7")
    assert seen == [{"id": 7}]


def test_route_middleware_wraps_an_http_endpoint() -> None:
    route = Route("/", Items, middleware=[Middleware(AddHeader, "endpoint")])
    response = TestClient(Starlite(routes=[route])).post("/")
    assert response.text == "post items"
    assert response.headers["x-middleware"] == "endpoint"


def test_mount_middleware_applies_to_mounted_routes_only() -> None:
    app = Starlite(
        routes=[
            Mount(
                "/api",
                routes=[Route("/users", text_endpoint("users"))],
                middleware=[Middleware(AddHeader, "mount")],
            ),
            Route("/home", text_endpoint("home")),
        ]
    )
    client = TestClient(app)
    api = client.get("/api/users")
    assert (api.text, api.headers["x-middleware"]) == ("users", "mount")
    assert "x-middleware" not in client.get("/home").headers


def test_mount_middleware_wraps_a_mounted_app() -> None:
    mount = Mount("/sub", app=PlainTextResponse("sub app"), middleware=[Middleware(AddHeader)])
    response = TestClient(Starlite(routes=[mount])).get("/sub/anything")
    assert response.text == "sub app"
    assert response.headers["x-middleware"] == "on"


def test_mount_middleware_is_outside_its_routes_middleware() -> None:
    log: list[str] = []
    mount = Mount(
        "/api",
        routes=[Route("/x", text_endpoint("x"), middleware=[Middleware(Recorder, "route", log)])],
        middleware=[Middleware(Recorder, "mount", log)],
    )
    TestClient(Starlite(routes=[mount])).get("/api/x")
    assert log == ["mount in", "route in", "route out", "mount out"]


# ==== Hosts and HTTPS ====
# ---- Trusted hosts ----
# TrustedHostMiddleware, HTTPSRedirectMiddleware, CORSMiddleware and GZipMiddleware (issue 7).
# Ordinary cases go through the TestClient; paths httpx would read as another host ("//evil.com/"),
# websockets and the order of ASGI messages are driven as raw ASGI with a scope of our own. The
# app and the server's side of ASGI below are shared by these four sub-parts.


class RecordingApp:
    """An ASGI app that notes each scope it is called with and answers HTTP with a fresh
    `respond()`; a websocket is accepted and closed."""

    def __init__(self, respond: Callable[[], Response] | None = None) -> None:
        self.respond = respond or (lambda: PlainTextResponse("ok"))
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
        elif scope["type"] == "http":
            await self.respond()(scope, receive, send)


def vary_names(values: Sequence[str]) -> list[str]:
    """The names in one or more Vary header values, lower-cased, in order."""
    return [name.strip().lower() for value in values for name in value.split(",") if name.strip()]


HOSTS = ["example.com", "*.example.com", "[::1]", "[v1.foo]"]


@pytest.mark.parametrize(
    ("host", "status_code"),
    [
        ("example.com", 200),
        ("EXAMPLE.COM", 200),
        ("example.com:8000", 200),
        ("A.B.Example.Com", 200),
        ("[::1]:8000", 200),
        ("[0:0::1]", 400),  # the pattern is compared as written
        ("[v1.foo]", 200),
        ("[v1.foo]:81", 200),
        ("example.com:000080", 200),  # RFC 3986: a port is any run of digits, and it is ignored
        ("example.com:65536", 200),
        ("example.com:100000", 200),
        ("[:::]", 400),
        ("[::ffff:999.999.999.999]", 400),
        ("[::1]:", 400),
        ("[::1]@evil.com", 400),
        ("[V1.foo]", 400),
        ("evil.com", 400),
        ("example.com.evil.com", 400),
        ("notexample.com", 400),
        ("example.com:bad", 400),
        ("", 400),
    ],
)
def test_trusted_host_allows_listed_hosts_and_wildcard_subdomains_only(
    host: str, status_code: int
) -> None:
    endpoint = RecordingApp()
    client = TestClient(TrustedHostMiddleware(endpoint, allowed_hosts=HOSTS))
    response = client.get("/", headers={"host": host})
    assert response.status_code == status_code
    if status_code == 400:
        assert response.text == "Invalid host header"
        assert endpoint.scopes == []
    else:
        assert response.text == "ok"


def test_trusted_host_patterns_are_case_insensitive(backend: Backend) -> None:
    middleware = TrustedHostMiddleware(RecordingApp(), allowed_hosts=["Example.COM", "*.API.Test"])
    client = TestClient(middleware, backend=backend)
    assert client.get("/", headers={"host": "example.com"}).status_code == 200
    assert client.get("/", headers={"host": "v1.api.test"}).status_code == 200


def test_trusted_host_wildcard_subdomain_does_not_cover_the_bare_domain() -> None:
    client = TestClient(TrustedHostMiddleware(RecordingApp(), allowed_hosts=["*.example.com"]))
    assert client.get("/", headers={"host": "example.com"}).status_code == 400
    assert client.get("/", headers={"host": "www.example.com"}).status_code == 200


@pytest.mark.parametrize("allowed_hosts", [None, ["example.com", "*"]])
def test_trusted_host_star_allows_any_host(allowed_hosts: list[str] | None) -> None:
    client = TestClient(TrustedHostMiddleware(RecordingApp(), allowed_hosts=allowed_hosts))
    assert client.get("/", headers={"host": "anything.invalid"}).text == "ok"


@pytest.mark.parametrize("pattern", ["*example.com", "a.*.com", "*.*.example.com"])
def test_trusted_host_rejects_a_misplaced_wildcard_at_start_up(pattern: str) -> None:
    with pytest.raises(ValueError, match="wildcard"):
        TrustedHostMiddleware(RecordingApp(), allowed_hosts=["example.com", pattern])


@pytest.mark.anyio
async def test_trusted_host_refuses_a_request_without_a_host_header() -> None:
    endpoint = RecordingApp()
    middleware = TrustedHostMiddleware(endpoint, allowed_hosts=["example.org"])
    answer = await Server(http_request(), then="wait").run(middleware, make_scope(headers=[]))
    assert answer.status == 400
    assert answer.body == b"Invalid host header"
    assert endpoint.scopes == []


def test_trusted_host_redirects_the_bare_domain_to_its_www_host() -> None:
    client = TestClient(
        TrustedHostMiddleware(RecordingApp(), allowed_hosts=["www.example.com"]),
        follow_redirects=False,
    )
    response = client.get("/a/b?x=1", headers={"host": "Example.com:8000"})
    assert response.status_code == 307
    assert response.headers["location"] == "http://www.Example.com:8000/a/b?x=1"


def test_trusted_host_without_www_redirect_refuses_the_bare_domain() -> None:
    middleware = TrustedHostMiddleware(
        RecordingApp(), allowed_hosts=["www.example.com"], www_redirect=False
    )
    response = TestClient(middleware, follow_redirects=False).get(
        "/", headers={"host": "example.com"}
    )
    assert response.status_code == 400
    assert "location" not in response.headers


def test_trusted_host_www_redirect_applies_only_to_the_listed_www_host() -> None:
    client = TestClient(
        TrustedHostMiddleware(RecordingApp(), allowed_hosts=["www.example.com"]),
        follow_redirects=False,
    )
    for host in ("api.example.com", "evil.com", "www.www.example.com"):
        assert client.get("/", headers={"host": host}).status_code == 400


@pytest.mark.anyio
async def test_trusted_host_www_redirect_of_an_odd_path_stays_on_our_host() -> None:
    middleware = TrustedHostMiddleware(RecordingApp(), allowed_hosts=["www.example.com"])
    for path in ("//evil.com/", "/\\evil.com"):
        answer = await Server(http_request(), then="wait").run(
            middleware, make_scope(path, headers={"host": "example.com"})
        )
        location = answer.headers["location"]
        assert answer.status == 307
        assert urlsplit(location).netloc == "www.example.com"
        assert location.startswith("http://www.example.com/")


@pytest.mark.anyio
async def test_trusted_host_denies_a_websocket_with_a_400_response_when_the_server_can() -> None:
    endpoint = RecordingApp()
    middleware = TrustedHostMiddleware(endpoint, allowed_hosts=["example.com"])
    for host in ("evil.com", ""):
        scope = {**ws_scope(), "headers": [(b"host", host.encode())]}
        answer = await Server(connect(), then="wait").run(middleware, scope)
        assert answer.sent_types == [
            "websocket.http.response.start",
            "websocket.http.response.body",
        ]
        assert answer.status == 400
        assert answer.sent[1]["body"] == b"Invalid host header"
    assert endpoint.scopes == []


@pytest.mark.anyio
async def test_trusted_host_closes_a_websocket_with_1008_without_the_denial_extension() -> None:
    endpoint = RecordingApp()
    middleware = TrustedHostMiddleware(endpoint, allowed_hosts=["example.com"])
    scope = {**ws_scope(deny=False), "headers": [(b"host", b"evil.com")]}
    answer = await Server(connect(), then="wait").run(middleware, scope)
    assert answer.sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    assert endpoint.scopes == []


@pytest.mark.anyio
async def test_trusted_host_lets_a_websocket_to_an_allowed_host_through() -> None:
    endpoint = RecordingApp()
    middleware = TrustedHostMiddleware(endpoint, allowed_hosts=["*.example.com"])
    scope = {**ws_scope(), "headers": [(b"host", b"chat.example.com:8443")]}
    answer = await Server(connect(), then="wait").run(middleware, scope)
    assert answer.sent_types == ["websocket.accept", "websocket.close"]
    assert len(endpoint.scopes) == 1


# ---- HTTPS redirects ----


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("http://example.com/a/b?x=1&y=%2F", "https://example.com/a/b?x=1&y=%2F"),
        ("http://example.com:80/", "https://example.com/"),
        ("http://example.com:8080/p", "https://example.com:8080/p"),
        ("http://[::1]:8000/", "https://[::1]:8000/"),
        ("http://example.com/caf%C3%A9%20x", "https://example.com/caf%C3%A9%20x"),
    ],
)
def test_https_redirect_sends_http_to_https_with_307(url: str, location: str) -> None:
    endpoint = RecordingApp()
    client = TestClient(HTTPSRedirectMiddleware(endpoint), follow_redirects=False)
    response = client.post(url, content=b"data")
    assert response.status_code == 307  # the method and body are kept
    assert response.headers["location"] == location
    assert endpoint.scopes == []


def test_https_redirect_lets_https_requests_through(backend: Backend) -> None:
    client = TestClient(
        HTTPSRedirectMiddleware(RecordingApp()), base_url="https://example.com", backend=backend
    )
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "ok"


@pytest.mark.anyio
async def test_https_redirect_denies_ws_with_a_307_to_wss() -> None:
    endpoint = RecordingApp()
    expected = {
        "example.com": "wss://example.com/chat?room=1",
        "example.com:80": "wss://example.com/chat?room=1",
        "example.com:8080": "wss://example.com:8080/chat?room=1",
    }
    for host, location in expected.items():
        scope = {
            **ws_scope("/chat"),
            "query_string": b"room=1",
            "headers": [(b"host", host.encode())],
        }
        answer = await Server(connect(), then="wait").run(HTTPSRedirectMiddleware(endpoint), scope)
        assert answer.sent_types == [
            "websocket.http.response.start",
            "websocket.http.response.body",
        ]
        assert answer.status == 307
        assert answer.headers["location"] == location
    assert endpoint.scopes == []


@pytest.mark.anyio
async def test_https_redirect_closes_ws_with_1008_without_the_denial_extension() -> None:
    endpoint = RecordingApp()
    answer = await Server(connect(), then="wait").run(
        HTTPSRedirectMiddleware(endpoint), ws_scope(deny=False)
    )
    assert answer.sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    assert endpoint.scopes == []


@pytest.mark.anyio
async def test_https_redirect_lets_wss_through() -> None:
    endpoint = RecordingApp()
    answer = await Server(connect(), then="wait").run(
        HTTPSRedirectMiddleware(endpoint), {**ws_scope(), "scheme": "wss"}
    )
    assert answer.sent_types == ["websocket.accept", "websocket.close"]


@pytest.mark.anyio
async def test_https_redirect_of_an_odd_path_is_never_an_open_redirect() -> None:
    for path in ("//evil.com/", "/\\evil.com", "///evil.com/x", "/\\/evil.com"):
        scope = make_scope(path, headers={"host": "example.com"})
        answer = await Server(http_request(), then="wait").run(
            HTTPSRedirectMiddleware(RecordingApp()), scope
        )
        location = answer.headers["location"]
        assert answer.status == 307
        assert location.startswith("https://example.com/")
        assert urlsplit(location).netloc == "example.com"


@pytest.mark.anyio
async def test_https_redirect_answers_400_without_any_host_to_redirect_to() -> None:
    endpoint = RecordingApp()
    scope = make_scope("//evil.com/", headers=[], server=None)
    answer = await Server(http_request(), then="wait").run(HTTPSRedirectMiddleware(endpoint), scope)
    assert answer.status == 400
    assert answer.body == b"Invalid host header"
    assert "location" not in answer.headers
    assert endpoint.scopes == []


@pytest.mark.anyio
async def test_https_redirect_reads_a_port_with_leading_zeros_as_its_number() -> None:
    for host, location in [
        (b"example.com:000080", "https://example.com/"),
        (b"example.com:0443", "https://example.com/"),
        (b"example.com:08080", "https://example.com:08080/"),
        (b"[v1.foo]:80", "https://[v1.foo]/"),  # an IPvFuture literal, which httpx cannot send
    ]:
        scope = make_scope("/", headers=[(b"host", host)])
        answer = await Server(http_request(), then="wait").run(
            HTTPSRedirectMiddleware(RecordingApp()), scope
        )
        assert (host, answer.headers["location"]) == (host, location)


@pytest.mark.anyio
async def test_https_redirect_answers_400_for_a_malformed_host_as_documented() -> None:
    # The docstring: "a request without a valid Host gets 400", even when the scope names a
    # server whose address a redirect could fall back to.
    endpoint = RecordingApp()
    # A port out of range, or an IPv6 literal that is no address, cannot be put in a URL either.
    for host in (b"example.com:bad", b"", b"evil.com/x", b"user@evil.com", b"a:65536", b"[:::]"):
        scope = make_scope("/", headers=[(b"host", host)], server=("example.org", 80))
        answer = await Server(http_request(), then="wait").run(
            HTTPSRedirectMiddleware(endpoint), scope
        )
        assert (host, answer.status) == (host, 400)
        assert "location" not in answer.headers
    assert endpoint.scopes == []


@pytest.mark.anyio
async def test_suite_middleware_pass_other_scope_types_through() -> None:
    factories: list[Callable[[ASGIApp], ASGIApp]] = [
        lambda app: TrustedHostMiddleware(app, allowed_hosts=["example.com"]),
        HTTPSRedirectMiddleware,
        lambda app: CORSMiddleware(app, allow_origins=["*"]),
        GZipMiddleware,
        CSRFMiddleware,
    ]
    for factory in factories:
        endpoint = RecordingApp()
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        assert (await Server(then="wait").run(factory(endpoint), scope)).sent == []
        assert endpoint.scopes == [scope]


# ==== CORS ====

ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://other.example.net"


def cors_client(endpoint: ASGIApp | None = None, **options: Any) -> TestClient:
    """A TestClient for CORSMiddleware(**options) around `endpoint` (a plain "ok" app)."""
    return TestClient(CORSMiddleware(endpoint or RecordingApp(), **options))


def preflight_headers(origin: str = ORIGIN, method: str = "POST", **extra: str) -> dict[str, str]:
    """The headers of a browser's preflight; `extra` names use underscores for dashes."""
    headers = {"origin": origin, "access-control-request-method": method}
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers


def listed_names(value: str) -> set[str]:
    """A comma-separated header value as a set of lower-cased names."""
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def test_cors_preflight_response_takes_the_request_headers_and_a_subclass_may_override_it() -> None:
    seen: list[str] = []

    class Logged(CORSMiddleware):
        def preflight_response(self, request_headers: Headers) -> Response:
            seen.append(request_headers["access-control-request-method"])
            return super().preflight_response(request_headers)

    client = TestClient(Logged(RecordingApp(), allow_origins=[ORIGIN], allow_methods=["POST"]))
    response = client.options("/", headers=preflight_headers(method="POST"))
    assert (response.status_code, response.text) == (200, "OK")
    assert response.headers["access-control-allow-origin"] == ORIGIN
    refused = client.options("/", headers=preflight_headers(method="PATCH"))
    assert (refused.status_code, refused.text) == (400, "Disallowed CORS method")
    assert seen == ["POST", "PATCH"]


def test_cors_simple_request_from_an_allowed_origin_gets_its_origin_back() -> None:
    response = cors_client(allow_origins=[ORIGIN]).get("/", headers={"origin": ORIGIN})
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert vary_names(response.headers.get_list("vary")) == ["origin"]
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("origin", [OTHER_ORIGIN, None], ids=["disallowed-origin", "no-origin"])
def test_cors_response_without_an_allowed_origin_still_varies_on_origin(
    origin: str | None,
) -> None:
    headers = {} if origin is None else {"origin": origin}
    client = cors_client(allow_origins=[ORIGIN], allow_credentials=True, expose_headers=["X-Total"])
    response = client.get("/", headers=headers)
    assert response.status_code == 200
    assert response.text == "ok"
    assert vary_names(response.headers.get_list("vary")) == ["origin"]
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_cors_wildcard_without_credentials_answers_star() -> None:
    response = cors_client(allow_origins=["*"]).get("/", headers={"origin": OTHER_ORIGIN})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "origin" in vary_names(response.headers.get_list("vary"))


def test_cors_wildcard_with_credentials_never_answers_star(backend: Backend) -> None:
    client = TestClient(
        CORSMiddleware(RecordingApp(), allow_origins=["*"], allow_credentials=True), backend=backend
    )
    simple = client.get("/", headers={"origin": OTHER_ORIGIN, "cookie": "session=1"})
    assert simple.headers["access-control-allow-origin"] == OTHER_ORIGIN
    assert simple.headers["access-control-allow-credentials"] == "true"
    assert "origin" in vary_names(simple.headers.get_list("vary"))
    preflight = client.options("/", headers=preflight_headers(OTHER_ORIGIN, "GET"))
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == OTHER_ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"


def make_list(items: list[str]) -> Collection[str]:
    return list(items)


def make_tuple(items: list[str]) -> Collection[str]:
    return tuple(items)


def make_set(items: list[str]) -> Collection[str]:
    return set(items)


def make_frozenset(items: list[str]) -> Collection[str]:
    return frozenset(items)


def make_dict_keys(items: list[str]) -> Collection[str]:
    return dict.fromkeys(items).keys()


@pytest.mark.parametrize(
    "kind",
    [make_list, make_tuple, make_set, make_frozenset, make_dict_keys],
    ids=["list", "tuple", "set", "frozenset", "dict_keys"],
)
def test_cors_accepts_any_collection_type_for_its_options(
    kind: Callable[[list[str]], Collection[str]],
) -> None:
    client = cors_client(
        allow_origins=kind([ORIGIN, "https://second.example.com"]),
        allow_methods=kind(["GET", "PUT"]),
        allow_headers=kind(["X-Token", "X-Trace"]),
        expose_headers=kind(["X-Total", "X-Page"]),
    )
    preflight = client.options(
        "/", headers=preflight_headers(method="PUT", access_control_request_headers="x-token")
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert listed_names(preflight.headers["access-control-allow-methods"]) == {"get", "put"}
    assert {"x-token", "x-trace"} <= listed_names(preflight.headers["access-control-allow-headers"])
    simple = client.get("/", headers={"origin": "https://second.example.com"})
    assert simple.headers["access-control-allow-origin"] == "https://second.example.com"
    assert listed_names(simple.headers["access-control-expose-headers"]) == {"x-total", "x-page"}
    assert (
        client.get("/", headers={"origin": OTHER_ORIGIN}).headers.get("access-control-allow-origin")
        is None
    )


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://example.com", True),
        ("https://api.example.com", True),
        ("https://example.com.evil.com", False),
        ("https://evilexample.com", False),
    ],
)
def test_cors_origin_regex_must_match_the_whole_origin(origin: str, allowed: bool) -> None:
    middleware = CORSMiddleware(
        RecordingApp(), allow_origin_regex=r"https://([a-z]+\.)?example\.com"
    )
    assert middleware.is_allowed_origin(origin) is allowed
    response = TestClient(middleware).get("/", headers={"origin": origin})
    assert response.headers.get("access-control-allow-origin") == (origin if allowed else None)


def test_cors_origin_regex_lookalike_is_refused_in_a_preflight() -> None:
    client = cors_client(allow_origin_regex=r"https://example\.com", allow_methods=["POST"])
    response = client.options("/", headers=preflight_headers("https://example.com.evil.com"))
    assert response.status_code == 400
    assert response.text == "Disallowed CORS origin"
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "options",
    [
        {"allow_origins": ["*"]},
        {"allow_origins": ["*"], "allow_credentials": True},
        {"allow_origin_regex": ".*"},
        {"allow_origins": [ORIGIN]},
    ],
    ids=["wildcard", "wildcard-credentials", "match-all-regex", "listed-origins"],
)
def test_cors_null_origin_is_refused_unless_listed_by_name(options: dict[str, Any]) -> None:
    client = cors_client(allow_methods=["POST"], **options)
    simple = client.get("/", headers={"origin": "null"})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    preflight = client.options("/", headers=preflight_headers("null"))
    assert preflight.status_code == 400
    assert preflight.text == "Disallowed CORS origin"
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_null_origin_listed_by_name_is_allowed() -> None:
    client = cors_client(allow_origins=["null"], allow_methods=["POST"])
    assert (
        client.get("/", headers={"origin": "null"}).headers["access-control-allow-origin"] == "null"
    )
    preflight = client.options("/", headers=preflight_headers("null"))
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "null"


def test_cors_preflight_for_an_allowed_request_is_answered_without_the_app() -> None:
    endpoint = RecordingApp()
    client = cors_client(endpoint, allow_origins=[ORIGIN], allow_methods=["GET", "POST"])
    response = client.options(
        "/anything", headers=preflight_headers(access_control_request_headers="Content-Type")
    )
    assert response.status_code == 200
    assert response.text == "OK"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert listed_names(response.headers["access-control-allow-methods"]) == {"get", "post"}
    assert response.headers["access-control-max-age"] == "600"
    assert listed_names(response.headers["access-control-allow-headers"]) == {
        "accept",
        "accept-language",
        "content-language",
        "content-type",
    }
    assert set(vary_names(response.headers.get_list("vary"))) == {
        "origin",
        "access-control-request-method",
        "access-control-request-headers",
        "access-control-request-private-network",
    }
    assert "access-control-allow-credentials" not in response.headers
    assert endpoint.scopes == []


def test_cors_preflight_of_a_wildcard_without_credentials_answers_star() -> None:
    response = cors_client(allow_origins=["*"]).options(
        "/", headers=preflight_headers(OTHER_ORIGIN, "GET")
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("headers", "failure"),
    [
        (preflight_headers(OTHER_ORIGIN), "origin"),
        (preflight_headers(method="DELETE"), "method"),
        (preflight_headers(access_control_request_headers="X-Secret"), "headers"),
        (preflight_headers(access_control_request_headers="content-type, x-secret"), "headers"),
        (
            preflight_headers(OTHER_ORIGIN, "DELETE", access_control_request_headers="X-Secret"),
            "origin, method, headers",
        ),
    ],
    ids=["origin", "method", "header", "one-of-headers", "all-three"],
)
def test_cors_preflight_names_what_is_disallowed_with_400(
    headers: dict[str, str], failure: str
) -> None:
    endpoint = RecordingApp()
    client = cors_client(
        endpoint, allow_origins=[ORIGIN], allow_methods=["GET", "POST"], allow_headers=["X-Token"]
    )
    response = client.options("/", headers=headers)
    assert response.status_code == 400
    assert response.text == f"Disallowed CORS {failure}"
    if "origin" in failure:
        assert "access-control-allow-origin" not in response.headers
    assert endpoint.scopes == []


def test_cors_preflight_allows_listed_headers_in_any_case_and_spacing() -> None:
    client = cors_client(allow_origins=[ORIGIN], allow_methods=["POST"], allow_headers=["X-Token"])
    response = client.options(
        "/",
        headers=preflight_headers(access_control_request_headers=" x-TOKEN ,Content-Type,accept"),
    )
    assert response.status_code == 200
    assert "x-token" in listed_names(response.headers["access-control-allow-headers"])


def test_cors_allow_headers_star_echoes_the_requested_headers() -> None:
    client = cors_client(allow_origins=[ORIGIN], allow_methods=["POST"], allow_headers=["*"])
    requested = "X-Anything, X-Other-Thing"
    response = client.options(
        "/", headers=preflight_headers(access_control_request_headers=requested)
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-headers"] == requested


def test_cors_allow_methods_star_allows_every_method() -> None:
    client = cors_client(allow_origins=[ORIGIN], allow_methods=["*"])
    expected = {"delete", "get", "head", "options", "patch", "post", "put", "query"}
    for method in ("DELETE", "PATCH", "QUERY", "PUT"):
        response = client.options("/", headers=preflight_headers(method=method))
        assert response.status_code == 200
        assert listed_names(response.headers["access-control-allow-methods"]) == expected


def test_cors_preflight_lists_allowed_headers_once_each_in_their_given_spelling() -> None:
    client = cors_client(allow_origins=[ORIGIN], allow_headers=["X-Example", "content-type"])
    response = client.options("/", headers=preflight_headers(method="GET"))
    assert response.headers["access-control-allow-headers"] == (
        "Accept, Accept-Language, Content-Language, Content-Type, X-Example"
    )


def test_cors_options_are_kept_as_given_and_the_worked_out_headers_are_public() -> None:
    origins, methods = [ORIGIN], ("GET", "PUT")
    middleware = CORSMiddleware(
        RecordingApp(),
        allow_origins=origins,
        allow_methods=methods,
        allow_headers=["X-Token"],
        allow_credentials=True,
        expose_headers=["X-Total"],
        max_age=60,
    )
    assert middleware.allow_origins is origins
    assert middleware.allow_methods is methods
    assert middleware.allow_all_origins is False
    assert middleware.allow_all_headers is False
    assert middleware.preflight_explicit_allow_origin is True
    assert middleware.allow_headers == [
        "accept", "accept-language", "content-language", "content-type", "x-token"
    ]  # fmt: skip
    assert middleware.simple_headers == {
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Expose-Headers": "X-Total",
    }
    assert middleware.preflight_headers == {
        "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
        "Access-Control-Request-Private-Network",
        "Access-Control-Allow-Methods": "GET, PUT",
        "Access-Control-Max-Age": "60",
        "Access-Control-Allow-Headers": "Accept, Accept-Language, Content-Language, "
        "Content-Type, X-Token",
        "Access-Control-Allow-Credentials": "true",
    }
    assert CORSMiddleware(RecordingApp(), allow_methods=["*"]).allow_methods == (
        "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY"
    )  # fmt: skip


def test_cors_any_origin_without_credentials_is_answered_star_from_the_public_headers() -> None:
    middleware = CORSMiddleware(RecordingApp(), allow_origins=["*"])
    assert middleware.preflight_explicit_allow_origin is False
    assert middleware.simple_headers == {"Access-Control-Allow-Origin": "*"}
    assert middleware.preflight_headers["Access-Control-Allow-Origin"] == "*"
    client = TestClient(middleware)
    assert client.get("/", headers={"origin": ORIGIN}).headers["access-control-allow-origin"] == "*"
    preflight = client.options("/", headers=preflight_headers(method="GET"))
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_cors_null_origin_is_refused_through_star_even_in_a_preflight() -> None:
    client = cors_client(allow_origins=["*"])
    simple = client.get("/", headers={"origin": "null"})
    assert "access-control-allow-origin" not in simple.headers
    preflight = client.options("/", headers=preflight_headers("null", method="GET"))
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_credentials_with_any_origin_answer_the_origin_not_the_public_star() -> None:
    client = cors_client(allow_origins=["*"], allow_credentials=True)
    simple = client.get("/", headers={"origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert simple.headers["access-control-allow-credentials"] == "true"


def test_cors_a_subclass_may_change_the_public_headers() -> None:
    class BrandedCORS(CORSMiddleware):
        def __init__(self, app: ASGIApp) -> None:
            super().__init__(app, allow_origins=[ORIGIN])
            self.simple_headers["X-CORS"] = "branded"
            self.preflight_headers["X-CORS"] = "preflight"

    client = TestClient(BrandedCORS(RecordingApp()))
    assert client.get("/", headers={"origin": ORIGIN}).headers["x-cors"] == "branded"
    preflight = client.options("/", headers=preflight_headers(method="GET"))
    assert preflight.headers["x-cors"] == "preflight"


def test_cors_public_headers_changed_after_a_request_are_sent_from_the_next() -> None:
    middleware = CORSMiddleware(RecordingApp(), allow_origins=["*"], allow_credentials=True)
    client = TestClient(middleware)
    assert "x-cors" not in client.get("/", headers={"origin": ORIGIN}).headers
    middleware.simple_headers["X-CORS"] = "later"
    response = client.get("/", headers={"origin": ORIGIN})
    assert response.headers["x-cors"] == "later"
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_cors_replaces_an_allow_origin_header_the_app_set_itself() -> None:
    endpoint = RecordingApp(
        lambda: PlainTextResponse("ok", headers={"Access-Control-Allow-Origin": "*"})
    )
    response = cors_client(endpoint, allow_origins=[ORIGIN]).get("/", headers={"origin": ORIGIN})
    assert response.headers.get_list("access-control-allow-origin") == [ORIGIN]
    assert vary_names(response.headers.get_list("vary")) == ["origin"]


def test_cors_methods_are_matched_as_given_since_http_methods_are_case_sensitive() -> None:
    client = cors_client(allow_origins=[ORIGIN], allow_methods=["patch"])
    assert client.options("/", headers=preflight_headers(method="patch")).status_code == 200
    response = client.options("/", headers=preflight_headers(method="PATCH"))
    assert response.status_code == 400
    assert response.text == "Disallowed CORS method"


def test_cors_max_age_is_sent_in_the_preflight() -> None:
    response = cors_client(allow_origins=[ORIGIN], allow_methods=["POST"], max_age=86400).options(
        "/", headers=preflight_headers()
    )
    assert response.headers["access-control-max-age"] == "86400"


def test_cors_expose_headers_go_on_simple_responses_only() -> None:
    client = cors_client(
        allow_origins=[ORIGIN], allow_methods=["POST"], expose_headers=["X-Total", "X-Page"]
    )
    simple = client.get("/", headers={"origin": ORIGIN})
    assert listed_names(simple.headers["access-control-expose-headers"]) == {"x-total", "x-page"}
    preflight = client.options("/", headers=preflight_headers())
    assert "access-control-expose-headers" not in preflight.headers


def test_cors_credentials_are_announced_for_an_allowed_origin() -> None:
    client = cors_client(allow_origins=[ORIGIN], allow_methods=["POST"], allow_credentials=True)
    simple = client.get("/", headers={"origin": ORIGIN, "cookie": "a=b"})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert simple.headers["access-control-allow-credentials"] == "true"
    preflight = client.options("/", headers=preflight_headers())
    assert preflight.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize(("allow_private_network", "status_code"), [(True, 200), (False, 400)])
def test_cors_private_network_preflight_is_allowed_only_when_configured(
    allow_private_network: bool, status_code: int
) -> None:
    client = cors_client(
        allow_origins=[ORIGIN],
        allow_methods=["POST"],
        allow_private_network=allow_private_network,
    )
    response = client.options(
        "/", headers=preflight_headers(access_control_request_private_network="true")
    )
    assert response.status_code == status_code
    if allow_private_network:
        assert response.headers["access-control-allow-private-network"] == "true"
    else:
        assert response.text == "Disallowed CORS private-network"
        assert "access-control-allow-private-network" not in response.headers


def test_cors_without_a_private_network_request_sends_no_private_network_header() -> None:
    client = cors_client(allow_origins=[ORIGIN], allow_methods=["POST"], allow_private_network=True)
    response = client.options("/", headers=preflight_headers())
    assert response.status_code == 200
    assert "access-control-allow-private-network" not in response.headers


@pytest.mark.parametrize(
    ("app_vary", "expected"),
    [
        ("Accept-Encoding", ["accept-encoding", "origin"]),
        ("Cookie, origin", ["cookie", "origin"]),
        ("*", ["*"]),
    ],
)
def test_cors_vary_is_merged_with_the_apps_own(app_vary: str, expected: list[str]) -> None:
    endpoint = RecordingApp(lambda: PlainTextResponse("ok", headers={"Vary": app_vary}))
    response = cors_client(endpoint, allow_origins=[ORIGIN]).get("/", headers={"origin": ORIGIN})
    assert vary_names(response.headers.get_list("vary")) == expected
    assert response.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize(
    "headers",
    [{"origin": ORIGIN}, {"access-control-request-method": "POST"}],
    ids=["without-request-method", "without-origin"],
)
def test_cors_options_request_that_is_not_a_preflight_reaches_the_app(
    headers: dict[str, str],
) -> None:
    endpoint = RecordingApp()
    response = cors_client(endpoint, allow_origins=[ORIGIN]).options("/", headers=headers)
    assert response.text == "ok"
    assert len(endpoint.scopes) == 1
    assert "origin" in vary_names(response.headers.get_list("vary"))


def test_cors_leaves_a_reused_responses_headers_alone() -> None:
    shared = PlainTextResponse("ok", headers={"Vary": "Cookie"})
    before = list(shared.raw_headers)
    client = TestClient(CORSMiddleware(shared, allow_origins=[ORIGIN]))
    first = client.get("/", headers={"origin": ORIGIN})
    second = client.get("/", headers={"origin": OTHER_ORIGIN})
    assert shared.raw_headers == before
    assert first.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in second.headers
    assert vary_names(second.headers.get_list("vary")) == ["cookie", "origin"]


@pytest.mark.anyio
async def test_cors_passes_a_websocket_through_untouched() -> None:
    endpoint = RecordingApp()
    scope = {
        **ws_scope(),
        "headers": [(b"host", b"example.org"), (b"origin", OTHER_ORIGIN.encode())],
    }
    answer = await Server(connect(), then="wait").run(
        CORSMiddleware(endpoint, allow_origins=[ORIGIN]), scope
    )
    assert answer.sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": 1000, "reason": ""},
    ]


# ==== GZip ====

TEXT = b"".join(b"line %d of a body that compresses well\n" % number for number in range(300))


def gzip_scope(accept_encoding: str | None = "gzip", **extra: Any) -> Scope:
    """An HTTP scope whose client accepts `accept_encoding` (no header when None)."""
    headers = {"host": "example.org"}
    if accept_encoding is not None:
        headers["accept-encoding"] = accept_encoding
    return make_scope(headers=headers, **extra)


def response_start_message(
    status: int = 200, headers: Mapping[str, str] | None = None, **extra: Any
) -> Message:
    """An http.response.start message; headers default to a text/plain content type."""
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if headers is None:
        raw = [(b"content-type", b"text/plain; charset=utf-8")]
    return {"type": "http.response.start", "status": status, "headers": raw, **extra}


def response_body_message(data: bytes, more_body: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more_body}


def scripted_app(*messages: Message, log: list[str] | None = None) -> ASGIApp:
    """An ASGI app that sends `messages` in order, noting each in `log` before sending it."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            if log is not None:
                log.append("app sends " + message["type"])
            await send(message)

    return app


def gunzip(data: bytes) -> bytes:
    return zlib.decompress(data, 31)


def text_response(**kwargs: Any) -> Callable[[], Response]:
    """A factory of fresh PlainTextResponses holding TEXT."""
    return lambda: PlainTextResponse(TEXT, **kwargs)


@pytest.mark.anyio
async def test_gzip_compresses_a_large_response_and_sets_its_headers() -> None:
    app = scripted_app(
        response_start_message(
            headers={"content-type": "text/html", "content-length": str(len(TEXT))}
        ),
        response_body_message(TEXT),
    )
    answer = await Server(http_request(), then="wait").run(GZipMiddleware(app), gzip_scope())
    headers = answer.headers
    assert headers["content-encoding"] == "gzip"
    assert vary_names(headers.getlist("vary")) == ["accept-encoding"]
    assert headers["content-length"] == str(len(answer.sent[1]["body"]))
    assert len(headers.getlist("content-length")) == 1
    assert headers["content-type"] == "text/html"
    assert len(answer.sent[1]["body"]) < len(TEXT)
    assert gunzip(answer.body) == TEXT


def test_gzip_response_decompresses_in_a_client(backend: Backend) -> None:
    client = TestClient(GZipMiddleware(RecordingApp(text_response())), backend=backend)
    response = client.get("/", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == TEXT


@pytest.mark.parametrize(
    ("accept_encoding", "compressed"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("*;q=0.5", True),
        ("*;q=0, gzip", True),
        ("gzip;q=0", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("gzip;q=abc", False),
    ],
)
def test_gzip_follows_accept_encoding_and_its_q_values(
    accept_encoding: str, compressed: bool
) -> None:
    client = TestClient(GZipMiddleware(RecordingApp(text_response())))
    response = client.get("/", headers={"accept-encoding": accept_encoding})
    assert (response.headers.get("content-encoding") == "gzip") is compressed
    assert response.content == TEXT


@pytest.mark.anyio
async def test_gzip_leaves_the_body_alone_without_accept_encoding_but_adds_vary() -> None:
    app = scripted_app(response_start_message(), response_body_message(TEXT))
    answer = await Server(http_request(), then="wait").run(GZipMiddleware(app), gzip_scope(None))
    vary_start = response_start_message(
        headers={"content-type": "text/plain; charset=utf-8", "vary": "Accept-Encoding"}
    )
    assert answer.sent == [vary_start, response_body_message(TEXT)]


def test_gzip_response_a_client_could_have_compressed_still_varies_on_accept_encoding() -> None:
    # A cache must not give this identity response to a client that accepts gzip, or the other
    # way round: the answer depends on Accept-Encoding whichever way it went (RFC 9110 §12.5.5).
    client = TestClient(GZipMiddleware(RecordingApp(text_response())))
    response = client.get("/", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in response.headers
    assert vary_names(response.headers.get_list("vary")) == ["accept-encoding"]


@pytest.mark.parametrize(
    ("size", "minimum_size", "compressed"),
    [
        (499, 500, False),
        (500, 500, True),
        (0, 500, False),
        (10, 10, True),
    ],
)
def test_gzip_compresses_from_minimum_size_on(
    size: int, minimum_size: int, compressed: bool
) -> None:
    content = (TEXT * 2)[:size]
    endpoint = RecordingApp(lambda: PlainTextResponse(content))
    client = TestClient(GZipMiddleware(endpoint, minimum_size=minimum_size))
    response = client.get("/", headers={"accept-encoding": "gzip"})
    assert (response.headers.get("content-encoding") == "gzip") is compressed
    assert response.content == content
    if not compressed:
        assert response.headers["content-length"] == str(size)
        assert "vary" not in response.headers


def test_gzip_streamed_response_is_compressed_however_small_its_first_chunk() -> None:
    app = scripted_app(
        response_start_message(),
        response_body_message(b"a", more_body=True),
        response_body_message(b"b"),
    )
    response = TestClient(GZipMiddleware(app)).get("/", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == b"ab"


def test_gzip_compresslevel_is_passed_to_the_compressor(monkeypatch: pytest.MonkeyPatch) -> None:
    levels: list[int] = []
    real_compressobj = zlib.compressobj

    def compressobj(level: int = -1, *args: Any, **kwargs: Any) -> Any:
        levels.append(level)
        return real_compressobj(level, *args, **kwargs)

    monkeypatch.setattr(zlib, "compressobj", compressobj)
    client = TestClient(GZipMiddleware(RecordingApp(text_response()), compresslevel=1))
    response = client.get("/", headers={"accept-encoding": "gzip"})
    assert response.content == TEXT
    assert levels == [1]


@pytest.mark.parametrize(
    ("media_type", "compressed"),
    [
        ("text/event-stream", False),
        ("application/grpc", False),
        ("application/grpc+proto", False),
        ("IMAGE/JPEG", False),
        ("audio/mpeg", False),
        ("image/svg+xml", True),
        ("application/grpc-web-text", True),
    ],
)
def test_gzip_skips_starlettes_default_excluded_content_types(
    media_type: str, compressed: bool
) -> None:
    endpoint = RecordingApp(lambda: Response(TEXT, media_type=media_type))
    response = TestClient(GZipMiddleware(endpoint)).get("/", headers={"accept-encoding": "gzip"})
    assert (response.headers.get("content-encoding") == "gzip") is compressed
    assert response.content == TEXT


def test_gzip_default_exclusions_are_starlettes() -> None:
    assert GZipMiddleware(RecordingApp()).exclude_content_types == frozenset(
        DEFAULT_EXCLUDED_CONTENT_TYPES
    )
    assert {"text/event-stream", "application/grpc"} <= set(DEFAULT_EXCLUDED_CONTENT_TYPES)


@pytest.mark.parametrize(
    ("exclude", "media_type", "compressed"),
    [
        (("text/plain",), "text/plain", False),
        (("text/plain; charset=utf-8",), "text/plain", False),
        (("text/plain",), "text/event-stream", True),
        ((), "image/png", True),
    ],
)
def test_gzip_custom_exclusions_replace_the_defaults(
    exclude: tuple[str, ...], media_type: str, compressed: bool
) -> None:
    endpoint = RecordingApp(lambda: Response(TEXT, media_type=media_type))
    middleware = GZipMiddleware(endpoint, exclude_content_types=exclude)
    response = TestClient(middleware).get("/", headers={"accept-encoding": "gzip"})
    assert (response.headers.get("content-encoding") == "gzip") is compressed
    assert response.content == TEXT


@pytest.mark.anyio
async def test_gzip_passes_an_uncompressible_response_through_starting_it_at_once() -> None:
    uncompressible = {
        "partial": response_start_message(
            206, {"content-type": "text/plain", "content-range": "bytes 0-9/99"}
        ),
        "content-encoding": response_start_message(
            200, {"content-type": "text/plain", "content-encoding": "br"}
        ),
        "excluded-type": response_start_message(200, {"content-type": "text/event-stream"}),
    }
    for reason, response_start in uncompressible.items():
        log: list[str] = []
        app = scripted_app(
            response_start,
            response_body_message(TEXT, more_body=True),
            response_body_message(b"end"),
            log=log,
        )
        answer = await Server(http_request(), then="wait", log=log).run(
            GZipMiddleware(app), gzip_scope()
        )
        assert answer.sent == [
            response_start,
            response_body_message(TEXT, more_body=True),
            response_body_message(b"end"),
        ], reason
        assert log[:3] == [
            "app sends http.response.start",
            "server gets http.response.start",
            "app sends http.response.body",
        ], reason


@pytest.mark.anyio
async def test_gzip_holds_a_compressible_start_until_the_first_body() -> None:
    log: list[str] = []
    app = scripted_app(
        response_start_message(),
        response_body_message(TEXT, more_body=True),
        response_body_message(b""),
        log=log,
    )
    await Server(http_request(), then="wait", log=log).run(GZipMiddleware(app), gzip_scope())
    assert log[:4] == [
        "app sends http.response.start",
        "app sends http.response.body",
        "server gets http.response.start",
        "server gets http.response.body",
    ]


@pytest.mark.anyio
async def test_gzip_flushes_each_streamed_chunk_so_it_decompresses_on_arrival() -> None:
    chunks = [b"first", TEXT, b"", b"x" * 3000, b"tail"]
    messages = [response_body_message(chunk, more_body=True) for chunk in chunks]
    app = scripted_app(
        response_start_message(headers={"content-type": "text/plain", "content-length": "99999"}),
        *messages,
        response_body_message(b""),
    )
    answer = await Server(http_request(), then="wait").run(GZipMiddleware(app), gzip_scope())
    headers = answer.headers
    assert headers["content-encoding"] == "gzip"
    assert "content-length" not in headers
    assert vary_names(headers.getlist("vary")) == ["accept-encoding"]
    assert [m.get("more_body", False) for m in answer.sent[1:]] == [True] * len(chunks) + [False]
    decompressor = zlib.decompressobj(31)
    for chunk, message in zip(chunks, answer.sent[1:], strict=False):
        assert decompressor.decompress(message["body"]) == chunk
    assert decompressor.decompress(answer.sent[-1]["body"]) == b""
    assert decompressor.eof


@pytest.mark.anyio
async def test_gzip_keeps_trailers_and_drops_content_length() -> None:
    trailers: Message = {
        "type": "http.response.trailers",
        "headers": [(b"x-checksum", b"abc123")],
        "more_trailers": False,
    }
    response_start = response_start_message(
        headers={"content-type": "text/plain", "content-length": str(len(TEXT))}, trailers=True
    )
    for chunks in ([TEXT], [TEXT[:1000], TEXT[1000:]]):  # in one body message, then streamed
        messages = [
            response_body_message(chunk, more_body=n < len(chunks) - 1)
            for n, chunk in enumerate(chunks)
        ]
        app = scripted_app(response_start, *messages, trailers)
        answer = await Server(http_request(), then="wait").run(GZipMiddleware(app), gzip_scope())
        assert answer.sent_types == [
            "http.response.start",
            *["http.response.body"] * len(chunks),
            "http.response.trailers",
        ]
        headers = answer.headers
        assert answer.sent[0]["trailers"] is True
        assert headers["content-encoding"] == "gzip"
        assert "content-length" not in headers
        assert answer.sent[-1] == trailers
        assert gunzip(answer.body) == TEXT


@pytest.mark.anyio
async def test_gzip_responder_compresses_without_asking_accept_encoding() -> None:
    app = scripted_app(response_start_message(), response_body_message(TEXT))
    responder = GZipResponder(app, 500)
    for accept_encoding in ("gzip", "identity", None):
        answer = await Server(http_request(), then="wait").run(
            responder, gzip_scope(accept_encoding)
        )
        assert answer.headers["content-encoding"] == "gzip"
        assert gunzip(answer.body) == TEXT
    small = await Server(http_request(), then="wait").run(
        GZipResponder(app, len(TEXT) + 1), gzip_scope()
    )
    assert "content-encoding" not in small.headers
    assert small.body == TEXT


@pytest.mark.anyio
async def test_gzip_responder_excludes_content_types_written_in_any_case_with_parameters() -> None:
    zipped = response_start_message(headers={"content-type": "application/zip"})
    app = scripted_app(zipped, response_body_message(TEXT))
    responder = GZipResponder(app, 500, exclude_content_types=("Application/ZIP; charset=utf-8",))
    assert responder.exclude_content_types == frozenset({"application/zip"})
    answer = await Server(http_request(), then="wait").run(responder, gzip_scope())
    assert "content-encoding" not in answer.headers
    assert answer.body == TEXT


@pytest.mark.anyio
async def test_gzip_sends_the_held_start_before_a_pathsend() -> None:
    response_start = response_start_message(
        headers={"content-type": "text/plain", "content-length": "5000"}
    )
    pathsend: Message = {"type": "http.response.pathsend", "path": "/srv/file.txt"}
    answer = await Server(http_request(), then="wait").run(
        GZipMiddleware(scripted_app(response_start, pathsend)), gzip_scope()
    )
    assert answer.sent == [response_start, pathsend]


class ThreadNotingCompressor:
    """A zlib compressor that notes the thread each chunk is compressed in."""

    def __init__(self, real: Any, threads: list[int]) -> None:
        self.real = real
        self.threads = threads

    def compress(self, data: bytes) -> bytes:
        self.threads.append(threading.get_ident())
        return cast(bytes, self.real.compress(data))

    def flush(self, mode: int = zlib.Z_FINISH) -> bytes:
        return cast(bytes, self.real.flush(mode))


@pytest.mark.anyio
async def test_gzip_compresses_a_large_chunk_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    real_compressobj = zlib.compressobj
    monkeypatch.setattr(
        zlib,
        "compressobj",
        lambda *args: ThreadNotingCompressor(real_compressobj(*args), threads),
    )
    threshold = GZipMiddleware(RecordingApp()).thread_minimum_size
    assert threshold == 128 * 1024
    small, large = TEXT[:1000], (TEXT * 30)[:threshold]
    app = scripted_app(
        response_start_message(),
        response_body_message(small, more_body=True),
        response_body_message(large[:-1], more_body=True),
        response_body_message(large, more_body=True),
        response_body_message(small),
    )
    loop_thread = threading.get_ident()
    answer = await Server(http_request(), then="wait").run(GZipMiddleware(app), gzip_scope())
    assert gunzip(answer.body) == small + large[:-1] + large + small
    assert threads[0] == threads[1] == threads[3] == loop_thread
    assert threads[2] != loop_thread


@pytest.mark.parametrize(
    ("respond", "accept_encoding"),
    [
        (lambda: PlainTextResponse("tiny"), "gzip"),
        (text_response(), "identity"),
        (lambda: Response(TEXT, media_type="image/png"), "gzip"),
        (text_response(status_code=206, headers={"content-range": "bytes 0-1/2"}), "gzip"),
        (text_response(headers={"content-encoding": "br"}), "gzip"),
    ],
    ids=["small", "not-accepted", "excluded-type", "partial", "content-encoding"],
)
def test_gzip_creates_no_compressor_for_a_response_it_does_not_compress(
    monkeypatch: pytest.MonkeyPatch, respond: Callable[[], Response], accept_encoding: str
) -> None:
    created: list[Any] = []
    real_compressobj = zlib.compressobj

    def compressobj(*args: Any) -> Any:
        created.append(args)
        return real_compressobj(*args)

    monkeypatch.setattr(zlib, "compressobj", compressobj)
    client = TestClient(GZipMiddleware(RecordingApp(respond)))
    response = client.get("/", headers={"accept-encoding": accept_encoding})
    assert response.headers.get("content-encoding") in (None, "br")
    assert created == []


def test_gzip_leaves_a_reused_responses_raw_headers_alone() -> None:
    shared = PlainTextResponse(TEXT, headers={"Vary": "Cookie"})
    before = list(shared.raw_headers)
    client = TestClient(GZipMiddleware(shared))
    for _ in range(2):
        response = client.get("/", headers={"accept-encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert response.content == TEXT
        assert vary_names(response.headers.get_list("vary")) == ["cookie", "accept-encoding"]
        assert len(response.headers.get_list("content-length")) == 1
    assert shared.raw_headers == before
    identity = client.get("/", headers={"accept-encoding": "identity"})
    assert identity.headers["content-length"] == str(len(TEXT))


def test_gzip_and_cors_together_vary_on_both_and_keep_a_reused_response_clean(
    backend: Backend,
) -> None:
    shared = PlainTextResponse(TEXT)
    before = list(shared.raw_headers)
    app = CORSMiddleware(GZipMiddleware(shared), allow_origins=[ORIGIN])
    client = TestClient(app, backend=backend)
    for origin in (ORIGIN, OTHER_ORIGIN):
        response = client.get("/", headers={"accept-encoding": "gzip", "origin": origin})
        assert response.content == TEXT
        assert sorted(vary_names(response.headers.get_list("vary"))) == [
            "accept-encoding",
            "origin",
        ]
    assert response.headers.get("access-control-allow-origin") is None
    assert shared.raw_headers == before


# ==== Sessions ====
# SessionMiddleware (issue 7): the session, a JSON dict, in a cookie signed and timestamped with
# HMAC-SHA256. Most tests go through the TestClient and session_app. Bad cookies are built with
# the middleware's own signer (a private class), so that each one that carries a valid signature
# fails at the step it names (base64, JSON, dict, timestamp), not at the signature.

SESSION_SECRET = "session-test-secret"
FOURTEEN_DAYS = 14 * 24 * 60 * 60
A_TIME = 1_700_000_000  # a fixed "now" for the tests that set the clock


def session_app(**options: Any) -> Starlite:
    """An app under ``SessionMiddleware(secret_key=SESSION_SECRET, **options)``.

    ``/read`` answers the session as JSON (``/read-vary`` also sends ``Vary: Accept-Encoding``),
    ``POST /set`` merges the JSON body into it, ``POST /append`` appends the body's "item" to its
    "items" list in place, ``POST /replace`` puts the JSON body in ``scope["session"]``,
    ``/clear`` empties it, ``/untouched`` never looks at it, and the websocket ``/ws`` sends it.
    """

    def read(request: Request) -> Response:
        return JSONResponse(request.session)

    def read_vary(request: Request) -> Response:
        return JSONResponse(request.session, headers={"Vary": "Accept-Encoding"})

    async def set_values(request: Request) -> Response:
        request.session.update(await request.json())
        return JSONResponse(request.session)

    async def append(request: Request) -> Response:
        items = request.session["items"]
        items.append((await request.json())["item"])
        return JSONResponse(request.session)

    async def replace(request: Request) -> Response:
        request.scope["session"] = await request.json()
        return PlainTextResponse("replaced")

    def clear(request: Request) -> Response:
        request.session.clear()
        return PlainTextResponse("cleared")

    async def websocket_session(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(websocket.session)
        await websocket.close()

    routes: list[BaseRoute] = [
        Route("/read", read),
        Route("/read-vary", read_vary),
        Route("/set", set_values, methods=["POST"]),
        Route("/append", append, methods=["POST"]),
        Route("/replace", replace, methods=["POST"]),
        Route("/clear", clear),
        Route("/untouched", text_endpoint("untouched")),
        WebSocketRoute("/ws", websocket_session),
    ]
    middleware = [Middleware(SessionMiddleware, **{"secret_key": SESSION_SECRET, **options})]
    return Starlite(routes=routes, middleware=middleware)


def session_signer(
    secret: str = SESSION_SECRET, max_age: int | None = FOURTEEN_DAYS
) -> starlite._SessionSigner:
    """The signer a SessionMiddleware with this secret and max_age uses."""
    return starlite._SessionSigner(secret, max_age)


def b64(data: bytes) -> str:
    """`data` in unpadded base64url, as a session cookie holds its payload."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed(payload: str, timestamp: str | None = None) -> str:
    """A cookie of `payload` and `timestamp` (now by default) with a valid signature for
    SESSION_SECRET, whatever the two hold."""
    signed_part = f"{payload}.{int(time.time()) if timestamp is None else timestamp}"
    return f"{signed_part}.{session_signer()._signature(signed_part)}"


def alice_cookie() -> str:
    return session_signer().sign({"user": "alice"})


def flipped(text: str, index: int) -> str:
    """`text` with the character at `index` replaced by another base64url character."""
    replacement = "B" if text[index] == "A" else "A"
    return text[:index] + replacement + text[index + 1 :]


def with_session_cookie(value: str | bytes, name: str = "session") -> dict[bytes, bytes]:
    """Request headers sending `value` as the cookie `name` (bytes are sent as they are)."""
    if isinstance(value, str):
        value = value.encode("latin-1")
    return {b"cookie": name.encode() + b"=" + value}


def signed_without_timestamp() -> str:
    """A validly signed cookie of a payload alone, with no timestamp between them."""
    payload = b64(b'{"user":"alice"}')
    return f"{payload}.{session_signer()._signature(payload)}"


def session_set_cookie(response: httpx.Response) -> tuple[str, str, dict[str, str | bool]]:
    """The one Set-Cookie of `response`, parsed (attribute names lower-cased)."""
    (header,) = response.headers.get_list("set-cookie")
    return parse_set_cookie(header)


def test_session_round_trip_login_then_a_later_request_reads_it(backend: Backend) -> None:
    client = TestClient(session_app(), backend=backend)
    assert client.get("/read").json() == {}
    login = client.post("/set", json={"user": "alice", "roles": ["admin"], "prefs": {"n": 1}})
    assert "set-cookie" in login.headers
    later = client.get("/read")
    assert later.json() == {"user": "alice", "roles": ["admin"], "prefs": {"n": 1}}
    assert "set-cookie" not in later.headers


@pytest.mark.parametrize(
    "session",
    [
        {"name": "Zoë ✓ 日本"},
        {"nested": {"list": [1, 2.5, True, None, "x"], "empty": {}}},
        {'quote"and;semicolon': "a=b; c,d \\ \n"},
    ],
    ids=["non-ascii", "nested", "cookie-special-characters"],
)
def test_session_values_json_can_hold_survive_the_cookie(session: dict[str, Any]) -> None:
    client = TestClient(session_app())
    client.post("/set", json=session)
    assert client.get("/read").json() == session


def test_session_cookie_is_base64_json_a_timestamp_and_a_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The session is signed, not encrypted: anyone holding the cookie can read it.
    monkeypatch.setattr("starlite.time.time", lambda: A_TIME + 0.75)
    response = TestClient(session_app()).post("/set", json={"user": "alice"})
    _, value, _ = session_set_cookie(response)
    payload, timestamp, signature = value.split(".")
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == {
        "user": "alice"
    }
    assert timestamp == str(A_TIME)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", signature)  # 32 bytes of SHA-256, unpadded


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {"path": "/", "samesite": "lax", "max-age": str(FOURTEEN_DAYS)}),
        ({"path": "/admin"}, {"path": "/admin"}),
        ({"domain": "example.com"}, {"domain": "example.com"}),
        ({"same_site": "strict"}, {"samesite": "strict"}),
        ({"same_site": "none"}, {"samesite": "none"}),
        ({"https_only": True}, {"secure": True}),
        ({"max_age": 60}, {"max-age": "60"}),
        ({"partitioned": True}, {"partitioned": True}),
    ],
    ids=["defaults", "path", "domain", "strict", "none", "https-only", "max-age", "partitioned"],
)
def test_session_cookie_attributes_follow_the_options(
    options: dict[str, Any], expected: dict[str, str | bool]
) -> None:
    response = TestClient(session_app(**options)).post("/set", json={"user": "alice"})
    name, _, attributes = session_set_cookie(response)
    assert name == "session"
    assert attributes["httponly"] is True  # always: scripts never see the session
    found = {key: attributes.get(key) for key in expected}
    if "samesite" in found:
        found["samesite"] = str(found["samesite"]).lower()
    assert found == expected


@pytest.mark.parametrize(
    ("options", "attributes"),
    [
        ({}, "path=/; Max-Age=1209600; httponly; samesite=lax"),
        ({"path": "/second_app", "max_age": None}, "path=/second_app; httponly; samesite=lax"),
        (
            {"same_site": "none", "https_only": True, "domain": ".a.org", "partitioned": True},
            "path=/; Max-Age=1209600; httponly; samesite=none; secure; domain=.a.org; partitioned",
        ),
    ],
    ids=["defaults", "path-no-max-age", "every-flag"],
)
def test_session_cookie_attributes_are_written_as_starlette_writes_them(
    options: dict[str, Any], attributes: str
) -> None:
    response = TestClient(session_app(**options)).post("/set", json={"user": "alice"})
    (header,) = response.headers.get_list("set-cookie")
    name_and_value, _, written = header.partition("; ")
    assert name_and_value.startswith("session=")
    assert written == attributes


def test_session_cookie_of_a_mounted_app_keeps_its_own_path() -> None:
    inner = session_app(path="/second_app")
    app = Starlite(routes=[Mount("/second_app", app=inner)])
    client = TestClient(app, base_url="http://testserver/second_app")
    response = client.post("/set", json={"user": "alice"})
    assert "; path=/second_app;" in response.headers["set-cookie"]
    assert client.get("/read").json() == {"user": "alice"}


@pytest.mark.parametrize(
    "options",
    [
        {"session_cookie": "bad name"},
        {"session_cookie": "a;b"},
        {"session_cookie": "expires"},
        {"path": "/a; Domain=evil.com"},
        {"domain": "example.com\r\nX-Evil: 1"},
        {"same_site": "sometimes"},
    ],
    ids=["name-space", "name-semicolon", "name-reserved", "path", "domain", "samesite"],
)
def test_session_options_that_would_break_the_cookie_raise_value_error_at_start_up(
    options: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match=r"[Cc]ookie|samesite"):
        SessionMiddleware(RecordingApp(), secret_key=SESSION_SECRET, **options)


def test_session_in_the_scope_is_a_session_that_a_subclass_can_mark_modified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refresh(request: Request) -> Response:
        session = request.session
        assert isinstance(session, Session)
        session.mark_modified()  # nothing changed, but send the cookie anew
        return PlainTextResponse("refreshed")

    app = Starlite(
        routes=[Route("/refresh", refresh)],
        middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET)],
    )
    monkeypatch.setattr("starlite.time.time", lambda: A_TIME)
    response = TestClient(app).get("/refresh", headers=with_session_cookie(alice_cookie()))
    _, value, _ = session_set_cookie(response)
    assert value == session_signer().sign({"user": "alice"})


def test_session_cookie_defaults_leave_out_secure_domain_partitioned_and_expires() -> None:
    response = TestClient(session_app()).post("/set", json={"user": "alice"})
    _, _, attributes = session_set_cookie(response)
    for absent in ("secure", "domain", "partitioned", "expires"):
        assert absent not in attributes


def test_session_without_max_age_is_a_browser_session_cookie() -> None:
    response = TestClient(session_app(max_age=None)).post("/set", json={"user": "alice"})
    _, _, attributes = session_set_cookie(response)
    assert "max-age" not in attributes
    assert "expires" not in attributes


def test_session_with_https_only_round_trips_over_https() -> None:
    client = TestClient(session_app(https_only=True), base_url="https://testserver")
    client.post("/set", json={"user": "alice"})
    assert client.get("/read").json() == {"user": "alice"}


def test_session_custom_cookie_name_is_written_and_read() -> None:
    client = TestClient(session_app(session_cookie="sid"))
    name, _, _ = session_set_cookie(client.post("/set", json={"user": "alice"}))
    assert name == "sid"
    assert client.get("/read").json() == {"user": "alice"}
    other = TestClient(session_app(session_cookie="sid"))
    assert other.get("/read", headers=with_session_cookie(alice_cookie())).json() == {}


def test_session_secret_key_may_be_a_secret_and_signs_as_its_string() -> None:
    client = TestClient(session_app(secret_key=Secret(SESSION_SECRET)))
    response = client.get("/read", headers=with_session_cookie(alice_cookie()))
    assert response.json() == {"user": "alice"}


def test_sessions_of_two_clients_are_kept_apart() -> None:
    app = session_app()
    alice, bob = TestClient(app), TestClient(app)
    alice.post("/set", json={"user": "alice"})
    assert bob.get("/read").json() == {}
    bob.post("/set", json={"user": "bob"})
    assert alice.get("/read").json() == {"user": "alice"}


# Written only when modified.


@pytest.mark.parametrize("path", ["/read", "/untouched"])
def test_session_request_that_does_not_change_it_gets_no_set_cookie(path: str) -> None:
    client = TestClient(session_app())
    client.post("/set", json={"user": "alice"})
    assert "set-cookie" not in client.get(path).headers


def test_session_written_to_sends_the_cookie_again_even_with_the_same_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in Starlette: a write signs the session anew, so that its max_age starts over.
    client = TestClient(session_app())
    monkeypatch.setattr("starlite.time.time", lambda: A_TIME)
    client.post("/set", json={"user": "alice"})
    monkeypatch.setattr("starlite.time.time", lambda: A_TIME + 60)
    response = client.post("/set", json={"user": "alice"})
    _, value, _ = session_set_cookie(response)
    assert value.split(".")[1] == str(A_TIME + 60)


def test_session_nested_change_in_place_is_written() -> None:
    client = TestClient(session_app())
    client.post("/set", json={"items": ["a"]})
    response = client.post("/append", json={"item": "b"})
    assert "set-cookie" in response.headers
    assert client.get("/read").json() == {"items": ["a", "b"]}


@pytest.mark.parametrize(
    ("replacement", "written"),
    [
        ({"user": "alice", "n": 1}, False),
        ({"n": 1, "user": "alice"}, False),  # key order is not a change
        ({"user": "bob", "n": 1}, True),
        ({"user": "alice", "n": 1, "extra": True}, True),
    ],
)
def test_session_replaced_in_the_scope_is_written_only_if_it_differs(
    replacement: dict[str, Any], written: bool
) -> None:
    client = TestClient(session_app())
    client.post("/set", json={"user": "alice", "n": 1})
    response = client.post("/replace", json=replacement)
    assert ("set-cookie" in response.headers) is written
    assert client.get("/read").json() == replacement


def test_session_emptied_sends_a_clearing_cookie_and_the_next_request_is_empty() -> None:
    client = TestClient(session_app())
    client.post("/set", json={"user": "alice"})
    response = client.get("/clear")
    name, _, attributes = session_set_cookie(response)
    assert name == "session"
    assert attributes["max-age"] == "0"
    expires = email.utils.parsedate_to_datetime(str(attributes["expires"]))
    assert expires <= datetime.now(UTC)
    assert "session" not in client.cookies
    assert client.get("/read").json() == {}


def test_session_clearing_cookie_keeps_the_attributes_that_name_the_cookie() -> None:
    # A browser clears a cookie only when its path and domain match the cookie it holds.
    options: dict[str, Any] = {
        "path": "/",
        "domain": "example.com",
        "same_site": "strict",
        "https_only": True,
        "partitioned": True,
    }
    response = TestClient(session_app(**options)).get(
        "/clear", headers=with_session_cookie(alice_cookie())
    )
    _, _, attributes = session_set_cookie(response)
    assert attributes["max-age"] == "0"
    assert attributes["domain"] == "example.com"
    assert attributes["path"] == "/"
    assert str(attributes["samesite"]).lower() == "strict"
    assert attributes["secure"] is attributes["httponly"] is attributes["partitioned"] is True


@pytest.mark.parametrize("cookie", [None, "not-a-session"], ids=["no-cookie", "bad-cookie"])
def test_session_emptying_an_empty_session_sends_no_cookie(cookie: str | None) -> None:
    headers = None if cookie is None else with_session_cookie(cookie)
    response = TestClient(session_app()).get("/clear", headers=headers)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


def test_session_cookie_comes_beside_the_handlers_own_cookies() -> None:
    async def login(request: Request) -> Response:
        request.session["user"] = "alice"
        response = PlainTextResponse("ok")
        response.set_cookie("theme", "dark")
        return response

    app = Starlite(
        routes=[Route("/", login)],
        middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET)],
    )
    response = TestClient(app).get("/")
    names = [parse_set_cookie(h)[0] for h in response.headers.get_list("set-cookie")]
    assert sorted(names) == ["session", "theme"]


# Vary: Cookie when the session was read.


@pytest.mark.parametrize(
    ("method", "path", "vary"),
    [
        ("GET", "/read", ["cookie"]),
        ("POST", "/set", ["cookie"]),
        ("GET", "/clear", ["cookie"]),
        ("GET", "/read-vary", ["accept-encoding", "cookie"]),
        ("GET", "/untouched", []),
        ("POST", "/replace", []),  # the scope was written, request.session never read
    ],
)
def test_session_response_varies_by_cookie_only_when_the_session_was_read(
    method: str, path: str, vary: list[str]
) -> None:
    client = TestClient(session_app())
    response = client.request(method, path, json={"user": "alice"})
    assert response.status_code == 200
    assert vary_names(response.headers.get_list("vary")) == vary


def test_session_read_inside_a_mount_still_varies_by_cookie() -> None:
    app = Starlite(
        routes=[Mount("/sub", routes=[Route("/read", lambda r: JSONResponse(r.session))])],
        middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET)],
    )
    response = TestClient(app).get("/sub/read", headers=with_session_cookie(alice_cookie()))
    assert response.json() == {"user": "alice"}
    assert vary_names(response.headers.get_list("vary")) == ["cookie"]


# Bad cookies: each gives an empty session and a 200, never an error.

BAD_SESSION_COOKIES = [
    pytest.param(lambda: flipped(alice_cookie(), -10), id="flipped-signature-byte"),
    pytest.param(lambda: flipped(alice_cookie(), 3), id="flipped-payload-byte"),
    pytest.param(lambda: session_signer("another-key").sign({"user": "alice"}), id="other-key"),
    pytest.param(lambda: alice_cookie().rpartition(".")[0], id="signature-cut-off"),
    pytest.param(lambda: alice_cookie() + "A", id="signature-too-long"),
    pytest.param(lambda: alice_cookie().replace(".", "", 1), id="first-dot-dropped"),
    pytest.param(lambda: signed("x"), id="not-base64-signed"),
    pytest.param(lambda: signed("*!*!"), id="not-base64-alphabet-signed"),
    pytest.param(lambda: signed(b64(b"not json")), id="base64-not-json-signed"),
    pytest.param(lambda: signed(b64(b'{"user": "\xff"}')), id="not-utf8-signed"),
    pytest.param(lambda: signed(b64(b'["user", "alice"]')), id="json-list-signed"),
    pytest.param(lambda: signed(b64(b'"alice"')), id="json-string-signed"),
    pytest.param(lambda: signed(b64(b"null")), id="json-null-signed"),
    pytest.param(lambda: "no-dots-at-all", id="no-dots"),
    pytest.param(lambda: "..", id="only-dots"),
    pytest.param(signed_without_timestamp, id="no-timestamp-signed"),
    pytest.param(lambda: signed(b64(b"{}"), "12a"), id="timestamp-not-digits-signed"),
    pytest.param(lambda: signed(b64(b"{}"), "-5"), id="timestamp-negative-signed"),
    pytest.param(lambda: signed(b64(b"{}"), "9" * 13), id="timestamp-13-digits-signed"),
    pytest.param(lambda: signed(b64(b"{}"), "9" * 400), id="timestamp-huge-signed"),
    pytest.param(lambda: "", id="empty"),
]


@pytest.mark.parametrize("make_cookie", BAD_SESSION_COOKIES)
def test_session_bad_cookie_gives_an_empty_session_and_a_200(
    make_cookie: Callable[[], str],
) -> None:
    client = TestClient(session_app(), raise_server_exceptions=False)
    response = client.get("/read", headers=with_session_cookie(make_cookie()))
    assert response.status_code == 200
    assert response.json() == {}
    assert "set-cookie" not in response.headers


def test_session_bad_cookie_is_replaced_when_the_session_is_written(backend: Backend) -> None:
    client = TestClient(session_app(), backend=backend)
    bad = with_session_cookie(flipped(alice_cookie(), -10))
    response = client.post("/set", json={"user": "bob"}, headers=bad)
    _, value, _ = session_set_cookie(response)
    assert session_signer().load(value) == {"user": "bob"}


@pytest.mark.parametrize(
    "cookie",
    [
        b"caf\xc3\xa9.1700000000.signature",
        b"e30.17\xc2\xb2.signature",
        b"e30.1700000000.sign\xc3\xa9",
        b"\xff\xfe\xfd",
    ],
    ids=["in-payload", "in-timestamp", "in-signature", "only-high-bytes"],
)
def test_session_cookie_with_non_ascii_bytes_gives_an_empty_session(cookie: bytes) -> None:
    client = TestClient(session_app(), raise_server_exceptions=False)
    response = client.get("/read", headers=with_session_cookie(cookie))
    assert response.status_code == 200
    assert response.json() == {}


@pytest.mark.parametrize(
    ("max_age", "age", "kept"),
    [
        (60, 0, True),
        (60, 60, True),
        (60, 61, False),
        (FOURTEEN_DAYS, FOURTEEN_DAYS + 1, False),
        (None, 100 * 365 * 24 * 60 * 60, True),
    ],
    ids=["fresh", "at-max-age", "expired", "expired-default", "no-max-age"],
)
def test_session_cookie_older_than_max_age_gives_an_empty_session(
    monkeypatch: pytest.MonkeyPatch, max_age: int | None, age: int, kept: bool
) -> None:
    clock = [float(A_TIME)]
    monkeypatch.setattr("starlite.time.time", lambda: clock[0])
    cookie = session_signer(max_age=max_age).sign({"user": "alice"})
    clock[0] += age
    client = TestClient(session_app(max_age=max_age))
    response = client.get("/read", headers=with_session_cookie(cookie))
    assert response.status_code == 200
    assert response.json() == ({"user": "alice"} if kept else {})


@given(st.text())
def test_session_signer_never_raises_on_arbitrary_text(cookie: str) -> None:
    assert session_signer().load(cookie) == {}


@given(index=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_session_cookie_changed_at_any_one_place_gives_an_empty_session(
    index: int, replacement: str
) -> None:
    cookie = signed(b64(b'{"user":"alice"}'), str(A_TIME))
    index %= len(cookie)
    if cookie[index] == replacement:
        return
    tampered = cookie[:index] + replacement + cookie[index + 1 :]
    assert session_signer(max_age=None).load(tampered) == {}


# Limits and misuse.


def test_session_too_large_for_a_cookie_raises_value_error_naming_its_size() -> None:
    client = TestClient(session_app())
    with pytest.raises(ValueError, match=r"too large for a cookie \(\d+ bytes.*4096"):
        client.post("/set", json={"data": "x" * 4000})


def test_session_too_large_for_a_cookie_is_a_500_without_a_cookie() -> None:
    client = TestClient(session_app(), raise_server_exceptions=False)
    response = client.post("/set", json={"data": "x" * 4000})
    assert response.status_code == 500
    assert "set-cookie" not in response.headers


def test_session_cookie_of_exactly_4096_bytes_is_written_and_one_more_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # RFC 6265 §6.1's 4096 bytes, counted as "name=value": the cookie name's length sets the
    # total to the byte.
    monkeypatch.setattr("starlite.time.time", lambda: float(A_TIME))
    session = {"data": "x" * 3000}
    name = "s" * (4096 - len("=") - len(session_signer().sign(session)))
    response = TestClient(session_app(session_cookie=name)).post("/set", json=session)
    cookie_name, value, _ = session_set_cookie(response)
    assert len(f"{cookie_name}={value}") == 4096
    with pytest.raises(ValueError, match="too large"):
        TestClient(session_app(session_cookie=name + "s")).post("/set", json=session)


@pytest.mark.parametrize("scope", [make_scope(), ws_scope()], ids=["http", "websocket"])
def test_session_without_the_middleware_raises_assertion_error_naming_it(scope: Scope) -> None:
    with pytest.raises(AssertionError, match="SessionMiddleware"):
        _ = HTTPConnection(scope).session


def test_session_read_in_an_app_without_the_middleware_raises_assertion_error() -> None:
    app = Starlite(routes=[Route("/", lambda request: JSONResponse(request.session))])
    with pytest.raises(AssertionError, match="SessionMiddleware must be installed"):
        TestClient(app).get("/")


# WebSockets and other scope types.


def test_session_is_read_in_a_websocket_endpoint(backend: Backend) -> None:
    client = TestClient(session_app(), backend=backend)
    client.post("/set", json={"user": "alice"})
    with client.websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == {"user": "alice"}


@pytest.mark.parametrize(
    ("cookie", "session"),
    [
        (alice_cookie, {"user": "alice"}),
        (lambda: flipped(alice_cookie(), -10), {}),
        (lambda: "", {}),
    ],
    ids=["valid", "tampered", "empty"],
)
def test_session_cookie_in_the_websocket_handshake_headers(
    cookie: Callable[[], str], session: dict[str, Any]
) -> None:
    client = TestClient(session_app())
    with client.websocket_connect("/ws", headers=with_session_cookie(cookie())) as websocket:
        assert websocket.receive_json() == session


@pytest.mark.anyio
async def test_session_changed_by_a_websocket_leaves_its_messages_alone() -> None:
    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        websocket.session["seen"] = True
        await websocket.accept()
        await websocket.close()

    scope = ws_scope()
    scope["headers"] = [*scope["headers"], *with_session_cookie(alice_cookie()).items()]
    server = Server(connect())
    await server.run(SessionMiddleware(endpoint, secret_key=SESSION_SECRET), scope)
    assert server.sent_types == ["websocket.accept", "websocket.close"]
    assert all(b"set-cookie" not in dict(m.get("headers", [])) for m in server.sent)
    assert scope["session"] == {"user": "alice", "seen": True}


@pytest.mark.anyio
@pytest.mark.parametrize("scope_type", ["lifespan", "custom"])
async def test_session_middleware_passes_other_scope_types_through(scope_type: str) -> None:
    endpoint = RecordingApp()
    scope: Scope = {"type": scope_type, "asgi": {"version": "3.0"}, "state": {}}
    middleware = SessionMiddleware(endpoint, secret_key=SESSION_SECRET)
    assert (await Server(then="wait").run(middleware, scope)).sent == []
    assert endpoint.scopes == [scope]
    assert "session" not in scope


def test_session_app_runs_its_lifespan(backend: Backend) -> None:
    started: list[bool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[None]:
        started.append(True)
        yield

    app = Starlite(
        routes=[Route("/", lambda request: JSONResponse(request.session))],
        middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET)],
        lifespan=lifespan,
    )
    with TestClient(app, backend=backend) as client:
        assert client.get("/").json() == {}
    assert started == [True]


# ==== Authentication ====
# AuthenticationMiddleware, the user types and @requires. Most tests go through auth_app, whose
# backend reads HTTP Basic credentials (RFC 7617) and gives each user the scopes AUTH_USERS
# lists; the websocket side checks that a refusal is a close (1008), never an HTTP answer.

AUTH_USERS = {
    "alice": ["authenticated", "admin"],
    "bob": ["authenticated"],
    "carol": ["admin"],  # holds "admin" without "authenticated"
}
BAD_BASIC_CREDENTIALS = "Invalid basic auth credentials"


class BasicAuthBackend(AuthenticationBackend):
    """Reads ``Authorization: Basic``; the password is not checked, the scopes are the user's in
    AUTH_USERS (["authenticated"] for anyone else). Another scheme, or none, is anonymous."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        scheme, _, encoded = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
            raise AuthenticationError(BAD_BASIC_CREDENTIALS) from exc
        username, colon, _ = decoded.partition(":")
        if not colon:
            raise AuthenticationError(BAD_BASIC_CREDENTIALS)
        return AuthCredentials(AUTH_USERS.get(username, ["authenticated"])), SimpleUser(username)


class FixedBackend(AuthenticationBackend):
    """Gives every connection `result` (or raises it) and keeps each connection it sees."""

    def __init__(self, result: tuple[AuthCredentials, BaseUser] | Exception | None) -> None:
        self.result = result
        self.seen: list[HTTPConnection] = []

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        self.seen.append(conn)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def basic(username: str, password: str = "secret") -> dict[str, str]:
    """Request headers sending `username` and `password` as HTTP Basic credentials."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"authorization": f"Basic {token}"}


def whoami(conn: HTTPConnection) -> dict[str, Any]:
    """What the connection's user and credentials say, as JSON."""
    return {
        "user": conn.user.display_name,
        "user_type": type(conn.user).__name__,
        "authenticated": conn.user.is_authenticated,
        "scopes": conn.auth.scopes,
    }


class AuthItems(HTTPEndpoint):
    """GET (async) needs "authenticated", POST (sync) needs "admin"."""

    @requires("authenticated")
    async def get(self, request: Request) -> Response:
        return JSONResponse(whoami(request))

    @requires("admin")
    def post(self, request: Request) -> Response:
        return JSONResponse({**whoami(request), "worker_thread": in_worker_thread(request)})


class AuthFeed(WebSocketEndpoint):
    """A WebSocketEndpoint whose on_connect needs "authenticated"; it sends whoami."""

    @requires("authenticated")
    async def on_connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(whoami(websocket))
        await websocket.close()


def auth_app(**options: Any) -> Starlite:
    """An app under ``AuthenticationMiddleware(BasicAuthBackend(), **options)`` (inside
    LoopThread).

    ``/`` answers whoami to anyone; ``/dashboard`` (async) needs "authenticated", ``/admin``
    (sync) needs ["authenticated", "admin"], both answering whoami and "worker_thread";
    ``/private`` needs "authenticated" and redirects to ``/login`` (named "login"); ``/items`` is
    AuthItems; the websockets ``/ws`` (a function) and ``/ws-endpoint`` (AuthFeed) need
    "authenticated" and send whoami.
    """

    async def homepage(request: Request) -> Response:
        return JSONResponse(whoami(request))

    @requires("authenticated")
    async def dashboard(request: Request) -> Response:
        return JSONResponse({**whoami(request), "worker_thread": in_worker_thread(request)})

    @requires(["authenticated", "admin"])
    def admin(request: Request) -> Response:
        return JSONResponse({**whoami(request), "worker_thread": in_worker_thread(request)})

    @requires("authenticated", redirect="login")
    async def private(request: Request) -> Response:
        return PlainTextResponse("private page")

    @requires("authenticated")
    async def websocket_whoami(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(whoami(websocket))
        await websocket.close()

    routes: list[BaseRoute] = [
        Route("/", homepage),
        Route("/dashboard", dashboard),
        Route("/admin", admin),
        Route("/private", private),
        Route("/login", text_endpoint("login page"), name="login"),
        Route("/items", AuthItems, methods=["GET", "POST"]),
        WebSocketRoute("/ws", websocket_whoami),
        WebSocketRoute("/ws-endpoint", AuthFeed),
    ]
    middleware = [
        Middleware(LoopThread),
        Middleware(AuthenticationMiddleware, **{"backend": BasicAuthBackend(), **options}),
    ]
    return Starlite(routes=routes, middleware=middleware)


def auth_client(user: str | None = None, **kwargs: Any) -> TestClient:
    """A TestClient of auth_app() sending `user`'s Basic credentials (none for None) with every
    request and websocket; `kwargs` go to TestClient."""
    return TestClient(auth_app(), headers=None if user is None else basic(user), **kwargs)


def anonymous() -> dict[str, Any]:
    return {"user": "", "user_type": "UnauthenticatedUser", "authenticated": False, "scopes": []}


def signed_in(user: str, scopes: list[str]) -> dict[str, Any]:
    return {"user": user, "user_type": "SimpleUser", "authenticated": True, "scopes": scopes}


# Functions @requires cannot guard: none takes a request or a websocket.


def _page_without_a_connection(user: str) -> Response:
    return PlainTextResponse(user)  # pragma: no cover - never called


def _page_with_no_arguments() -> Response:
    return PlainTextResponse("")  # pragma: no cover - never called


async def _page_with_a_misnamed_connection(req: Request) -> Response:
    return PlainTextResponse("")  # pragma: no cover - never called


# The types.


@pytest.mark.parametrize("name", ["is_authenticated", "display_name", "identity"])
def test_base_user_properties_raise_not_implemented_error(name: str) -> None:
    with pytest.raises(NotImplementedError):
        getattr(BaseUser(), name)


def test_simple_user_is_authenticated_and_displays_and_is_identified_by_its_username() -> None:
    user = SimpleUser("alice")
    assert isinstance(user, BaseUser)
    assert user.username == "alice"
    assert user.is_authenticated is True
    assert user.display_name == "alice"
    assert user.identity == "alice"


def test_unauthenticated_user_is_not_authenticated_and_has_an_empty_name_and_identity() -> None:
    user = UnauthenticatedUser()
    assert isinstance(user, BaseUser)
    assert user.is_authenticated is False
    assert user.display_name == ""
    assert user.identity == ""


@pytest.mark.parametrize(
    ("given", "scopes"),
    [(None, []), ([], []), (["authenticated"], ["authenticated"]), (("a", "b"), ["a", "b"])],
    ids=["default", "empty", "list", "tuple"],
)
def test_auth_credentials_hold_their_scopes_as_a_list(
    given: Sequence[str] | None, scopes: list[str]
) -> None:
    credentials = AuthCredentials() if given is None else AuthCredentials(given)
    assert credentials.scopes == scopes
    assert isinstance(credentials.scopes, list)


def test_auth_credentials_default_scopes_are_not_shared() -> None:
    first, second = AuthCredentials(), AuthCredentials()
    first.scopes.append("admin")
    assert second.scopes == []


@pytest.mark.anyio
async def test_authentication_backend_authenticate_raises_not_implemented_error() -> None:
    with pytest.raises(NotImplementedError):
        await AuthenticationBackend().authenticate(HTTPConnection(make_scope()))


@pytest.mark.parametrize(
    ("held", "required", "expected"),
    [
        (["a", "b"], ["a"], True),
        (["a", "b"], ("b", "a"), True),
        (["a"], ["a", "b"], False),
        (["b"], ["a"], False),
        ([], ["a"], False),
        (["a"], [], True),
        ([], [], True),
    ],
)
def test_has_required_scope_needs_every_scope(
    held: list[str], required: Sequence[str], expected: bool
) -> None:
    connection = HTTPConnection(make_scope(auth=AuthCredentials(held)))
    assert has_required_scope(connection, required) is expected


@pytest.mark.parametrize("scope", [make_scope(), ws_scope()], ids=["http", "websocket"])
@pytest.mark.parametrize("name", ["auth", "user"])
def test_auth_and_user_without_the_middleware_raise_assertion_error_naming_it(
    scope: Scope, name: str
) -> None:
    # AssertionError, as in Starlette: code written for it catches exactly that.
    with pytest.raises(AssertionError, match=f"AuthenticationMiddleware.*request.{name}"):
        getattr(HTTPConnection(scope), name)


def test_user_read_in_an_app_without_the_middleware_raises_assertion_error() -> None:
    app = Starlite(routes=[Route("/", lambda request: JSONResponse(whoami(request)))])
    with pytest.raises(AssertionError, match="AuthenticationMiddleware must be installed"):
        TestClient(app).get("/")


# The middleware.


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, anonymous()),
        ({"authorization": "Bearer some-token"}, anonymous()),
        (basic("alice"), signed_in("alice", ["authenticated", "admin"])),
        (basic("dave", "pass:with:colons"), signed_in("dave", ["authenticated"])),
        (basic("Zoë"), signed_in("Zoë", ["authenticated"])),
    ],
    ids=["no-credentials", "other-scheme", "alice", "colons-in-password", "non-ascii-user"],
)
def test_authentication_sets_request_auth_and_user_from_the_backend(
    backend: Backend, headers: dict[str, str] | None, expected: dict[str, Any]
) -> None:
    response = TestClient(auth_app(), backend=backend).get("/", headers=headers)
    assert response.status_code == 200
    assert response.json() == expected


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!not-base64!!",
        "Basic YWxpY2U",  # "alice" without its padding
        "Basic " + base64.b64encode(b"alice").decode(),  # no colon
        "Basic ",
        "Basic " + base64.b64encode(b"\xff\xfe:secret").decode(),  # not UTF-8
    ],
    ids=["not-base64", "bad-padding", "no-colon", "empty", "not-utf8"],
)
def test_authentication_error_is_a_400_with_the_error_text(
    backend: Backend, authorization: str
) -> None:
    client = TestClient(auth_app(), backend=backend)
    for path in ("/", "/dashboard", "/admin"):
        response = client.get(path, headers={"authorization": authorization})
        assert response.status_code == 400, path
        assert response.text == BAD_BASIC_CREDENTIALS
        assert response.headers["content-type"].startswith("text/plain")


def test_authentication_error_is_answered_by_a_custom_on_error(backend: Backend) -> None:
    errors: list[tuple[str, str]] = []

    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        errors.append((type(conn).__name__, str(exc)))
        return JSONResponse(
            {"error": str(exc), "path": conn.url.path},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="starlite"'},
        )

    client = TestClient(auth_app(on_error=on_error), backend=backend)
    response = client.get("/dashboard?x=1", headers={"authorization": "Basic !!"})
    assert response.status_code == 401
    assert response.json() == {"error": BAD_BASIC_CREDENTIALS, "path": "/dashboard"}
    assert response.headers["www-authenticate"] == 'Basic realm="starlite"'
    assert errors == [("HTTPConnection", BAD_BASIC_CREDENTIALS)]


def test_authentication_default_on_error_is_a_static_method_a_subclass_can_override() -> None:
    answer = AuthenticationMiddleware.default_on_error(
        HTTPConnection(make_scope()), AuthenticationError("no")
    )
    assert (answer.status_code, answer.body) == (400, b"no")

    class Teapot(AuthenticationMiddleware):
        @staticmethod
        def default_on_error(conn: HTTPConnection, exc: Exception) -> Response:
            return PlainTextResponse(f"teapot: {exc}", status_code=418)

    app = Starlite(
        routes=[Route("/", text_endpoint("home"))],
        middleware=[Middleware(Teapot, backend=BasicAuthBackend())],
    )
    response = TestClient(app).get("/", headers={"authorization": "Basic !!"})
    assert (response.status_code, response.text) == (418, "teapot: " + BAD_BASIC_CREDENTIALS)


@pytest.mark.parametrize("path", ["/ws", "/ws-endpoint"])
def test_authentication_error_closes_a_websocket_with_1008_without_on_error(
    backend: Backend, path: str
) -> None:
    errors: list[AuthenticationError] = []

    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        errors.append(exc)  # pragma: no cover - never called for a websocket
        return PlainTextResponse("not for websockets", status_code=401)  # pragma: no cover

    client = TestClient(
        auth_app(on_error=on_error), backend=backend, headers={"authorization": "Basic !!"}
    )
    assert refusal_at(client, path).code == 1008
    assert errors == []


@pytest.mark.anyio
async def test_authentication_error_on_a_websocket_sends_only_a_close_even_with_denial() -> None:
    # The server offers the websocket.http.response extension: still a close, not an HTTP answer.
    endpoint = RecordingApp()
    middleware = AuthenticationMiddleware(endpoint, FixedBackend(AuthenticationError("bad")))
    server = await Server(connect()).run(middleware, ws_scope(deny=True))
    assert server.sent == [close_message(1008)]
    assert endpoint.scopes == []


@pytest.mark.anyio
@pytest.mark.parametrize("scope", [make_scope(), ws_scope()], ids=["http", "websocket"])
async def test_authentication_puts_the_backends_own_objects_in_the_scope(scope: Scope) -> None:
    credentials, user = AuthCredentials(["authenticated"]), SimpleUser("alice")
    backend = FixedBackend((credentials, user))
    endpoint = RecordingApp()
    first_message = http_request() if scope["type"] == "http" else connect()
    await Server(first_message, then="wait").run(AuthenticationMiddleware(endpoint, backend), scope)
    assert [conn.scope for conn in backend.seen] == [scope]
    assert endpoint.scopes == [scope]
    assert scope["auth"] is credentials
    assert scope["user"] is user


@pytest.mark.anyio
async def test_authentication_without_a_result_gives_fresh_empty_credentials() -> None:
    endpoint = RecordingApp()
    middleware = AuthenticationMiddleware(endpoint, FixedBackend(None))
    first, second = make_scope(), make_scope()
    await Server(http_request(), then="wait").run(middleware, first)
    await Server(http_request(), then="wait").run(middleware, second)
    assert isinstance(first["user"], UnauthenticatedUser)
    assert first["auth"].scopes == second["auth"].scopes == []
    assert first["auth"] is not second["auth"]


def test_authentication_backend_error_other_than_authentication_error_is_not_caught() -> None:
    middleware = [Middleware(AuthenticationMiddleware, backend=FixedBackend(Boom("backend down")))]
    app = Starlite(routes=[Route("/", text_endpoint("ok"))], middleware=middleware)
    with pytest.raises(Boom, match="backend down"):
        TestClient(app).get("/")
    assert TestClient(app, raise_server_exceptions=False).get("/").status_code == 500


@pytest.mark.anyio
@pytest.mark.parametrize("scope_type", ["lifespan", "custom"])
async def test_authentication_middleware_passes_other_scope_types_through(
    scope_type: str,
) -> None:
    endpoint = RecordingApp()
    backend = FixedBackend(AuthenticationError("must not be asked"))
    scope: Scope = {"type": scope_type, "asgi": {"version": "3.0"}, "state": {}}
    assert (
        await Server(then="wait").run(AuthenticationMiddleware(endpoint, backend), scope)
    ).sent == []
    assert endpoint.scopes == [scope]
    assert backend.seen == []
    assert "auth" not in scope
    assert "user" not in scope


def test_authentication_app_runs_its_lifespan(backend: Backend) -> None:
    started: list[bool] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[None]:
        started.append(True)
        yield

    app = Starlite(
        routes=[Route("/", lambda request: JSONResponse(whoami(request)))],
        middleware=[Middleware(AuthenticationMiddleware, backend=BasicAuthBackend())],
        lifespan=lifespan,
    )
    with TestClient(app, backend=backend) as client:
        assert client.get("/", headers=basic("bob")).json() == signed_in("bob", ["authenticated"])
    assert started == [True]


# @requires over HTTP.


@pytest.mark.parametrize(
    ("path", "user", "status_code"),
    [
        ("/dashboard", None, 403),
        ("/dashboard", "bob", 200),
        ("/dashboard", "carol", 403),
        ("/admin", None, 403),
        ("/admin", "bob", 403),  # "authenticated" alone is not enough
        ("/admin", "carol", 403),  # nor "admin" alone
        ("/admin", "alice", 200),
    ],
)
def test_requires_lets_in_only_connections_holding_every_scope(
    backend: Backend, path: str, user: str | None, status_code: int
) -> None:
    response = auth_client(user, backend=backend).get(path)
    assert response.status_code == status_code
    if status_code == 403:
        assert response.text == "Forbidden"
    else:
        assert response.json()["user"] == user


@pytest.mark.parametrize(
    ("path", "worker_thread"), [("/admin", True), ("/dashboard", False)], ids=["sync", "async"]
)
def test_requires_keeps_a_sync_endpoint_in_the_threadpool_and_an_async_one_on_the_loop(
    backend: Backend, path: str, worker_thread: bool
) -> None:
    response = auth_client("alice", backend=backend).get(path)
    assert response.json()["worker_thread"] is worker_thread


def test_requires_keeps_a_sync_function_sync_and_an_async_one_async() -> None:
    def sync_page(request: Request) -> Response:
        return PlainTextResponse("sync")  # pragma: no cover - never called

    async def async_page(request: Request) -> Response:
        return PlainTextResponse("async")  # pragma: no cover - never called

    assert not inspect.iscoroutinefunction(requires("a")(sync_page))
    assert inspect.iscoroutinefunction(requires("a")(async_page))


@pytest.mark.parametrize("status_code", [401, 404, 418])
def test_requires_refuses_with_the_given_status_code(backend: Backend, status_code: int) -> None:
    @requires("admin", status_code=status_code)
    async def page(request: Request) -> Response:
        return PlainTextResponse("admin page")  # pragma: no cover - refused

    app = Starlite(
        routes=[Route("/", page)],
        middleware=[Middleware(AuthenticationMiddleware, backend=BasicAuthBackend())],
    )
    response = TestClient(app, backend=backend).get("/", headers=basic("bob"))
    assert response.status_code == status_code
    assert response.text == HTTPStatus(status_code).phrase


def test_requires_refusal_is_an_http_exception_the_app_handlers_answer() -> None:
    app = auth_app()
    app.add_exception_handler(403, text_handler("members only", 403))
    response = TestClient(app).get("/dashboard")
    assert (response.status_code, response.text) == (403, "members only")


@pytest.mark.parametrize("query", ["", "?page=2&sort=name", "?q=a%20b&q=c"])
def test_requires_redirect_is_a_303_to_the_named_route_with_next_keeping_the_query(
    backend: Backend, query: str
) -> None:
    client = auth_client(backend=backend, follow_redirects=False)
    response = client.get("/private" + query)
    assert response.status_code == 303
    next_url = "http://testserver/private" + query
    assert response.headers["location"] == "http://testserver/login?" + urlencode(
        {"next": next_url}
    )
    assert parse_qs(urlsplit(response.headers["location"]).query) == {"next": [next_url]}


def test_requires_redirect_followed_lands_on_the_named_route() -> None:
    response = auth_client().get("/private")
    assert response.text == "login page"
    assert response.url.path == "/login"


def test_requires_redirect_lets_an_allowed_connection_in() -> None:
    response = auth_client("bob", follow_redirects=False).get("/private")
    assert (response.status_code, response.text) == (200, "private page")


@pytest.mark.parametrize(
    ("method", "user", "status_code"),
    [
        ("GET", None, 403),
        ("GET", "bob", 200),
        ("POST", "bob", 403),
        ("POST", "carol", 200),
    ],
)
def test_requires_on_http_endpoint_methods_sync_and_async(
    backend: Backend, method: str, user: str | None, status_code: int
) -> None:
    response = auth_client(user, backend=backend).request(method, "/items")
    assert response.status_code == status_code
    if status_code == 200:
        assert response.json()["user"] == user
    if method == "POST" and status_code == 200:
        assert response.json()["worker_thread"] is True


def test_requires_keeps_the_name_docstring_and_wrapped_function() -> None:
    def sync_page(request: Request) -> Response:
        """A sync page."""
        return PlainTextResponse("sync")  # pragma: no cover - never called

    async def async_page(request: Request) -> Response:
        """An async page."""
        return PlainTextResponse("async")  # pragma: no cover - never called

    async def socket(websocket: WebSocket) -> None:
        """A websocket."""

    for func in (sync_page, async_page, socket):
        wrapped: Any = requires("authenticated")(func)
        assert wrapped.__name__ == func.__name__
        assert wrapped.__qualname__ == func.__qualname__
        assert wrapped.__doc__ == func.__doc__
        assert wrapped.__wrapped__ is func
        assert get_name(wrapped) == func.__name__


def test_requires_takes_a_string_as_one_scope_not_as_its_letters() -> None:
    @requires("admin")
    def page(request: Request) -> Response:
        return PlainTextResponse("admin page")  # pragma: no cover - refused

    request = Request(make_scope(auth=AuthCredentials(list("admin"))))
    with pytest.raises(HTTPException) as info:
        page(request)
    assert info.value.status_code == 403


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_requires_finds_a_request_passed_by_keyword(kind: str) -> None:
    def sync_page(prefix: str, request: Request) -> Response:
        return PlainTextResponse(f"{prefix} {request.user.display_name}")

    async def async_page(prefix: str, request: Request) -> Response:
        return sync_page(prefix, request)

    page: Any = requires("admin")(sync_page if kind == "sync" else async_page)

    async def call(request: Request) -> Response:
        result = page("hello", request=request)
        return cast(Response, await result if kind == "async" else result)

    allowed = Request(make_scope(auth=AuthCredentials(["admin"]), user=SimpleUser("alice")))
    assert (await call(allowed)).body == b"hello alice"
    refused = Request(make_scope(auth=AuthCredentials(["authenticated"])))
    with pytest.raises(HTTPException) as info:
        await call(refused)
    assert info.value.status_code == 403


@pytest.mark.parametrize(
    "func",
    [_page_without_a_connection, _page_with_no_arguments, _page_with_a_misnamed_connection],
)
def test_requires_on_a_function_without_request_or_websocket_raises_type_error_at_once(
    func: Callable[..., Any],
) -> None:
    message = f"{func.__name__} has no 'request' or 'websocket' argument"
    with pytest.raises(TypeError, match=message):
        requires("authenticated")(func)


# @requires over websockets.


@pytest.mark.parametrize("path", ["/ws", "/ws-endpoint"], ids=["function", "endpoint"])
def test_requires_lets_an_allowed_websocket_in(backend: Backend, path: str) -> None:
    with auth_client("bob", backend=backend).websocket_connect(path) as websocket:
        assert websocket.receive_json() == signed_in("bob", ["authenticated"])


@pytest.mark.parametrize("user", [None, "carol"], ids=["anonymous", "without-the-scope"])
@pytest.mark.parametrize("path", ["/ws", "/ws-endpoint"], ids=["function", "endpoint"])
def test_requires_closes_a_refused_websocket_with_1008(
    backend: Backend, path: str, user: str | None
) -> None:
    assert refusal_at(auth_client(user, backend=backend), path).code == 1008


@pytest.mark.anyio
async def test_requires_refusing_a_websocket_sends_only_a_close_even_with_denial() -> None:
    # A redirect or status_code is for HTTP: a websocket is closed whatever the server offers.
    @requires("admin", status_code=401, redirect="login")
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()  # pragma: no cover - refused

    server = Server(connect())
    scope = ws_scope(deny=True)
    scope["auth"] = AuthCredentials(["authenticated"])
    await socket(server.websocket(scope))
    assert server.sent == [close_message(1008)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "argument", "message"),
    [
        ("request", None, "was not given a request"),
        ("request", "not a request", "was not given a request"),
        ("websocket", None, "was not given a websocket"),
        ("websocket", "request", "was not given a WebSocket"),
    ],
)
async def test_requires_called_without_its_connection_raises_type_error(
    kind: str, argument: str | None, message: str
) -> None:
    async def page(request: Request) -> Response:
        return PlainTextResponse("")  # pragma: no cover - never called

    async def socket(websocket: WebSocket) -> None:
        pass  # pragma: no cover - never called

    wrapped: Any = requires("authenticated")(page if kind == "request" else socket)
    if argument == "request":
        args: tuple[Any, ...] = (Request(make_scope(auth=AuthCredentials(["authenticated"]))),)
    else:
        args = () if argument is None else (argument,)
    with pytest.raises(TypeError, match=message):
        await wrapped(*args)


# ==== CSRF ====
# CSRFMiddleware: forged cross-site posts as a browser sends them (Sec-Fetch-Site, or only an
# Origin in an older browser or over plain http), against the site's own pages, clients that are
# not browsers, and the exemptions. Websocket handshakes are checked as raw ASGI and through the
# test client.

FORGED = "Cross-site request refused"


def csrf_client(backend: Backend = "asyncio", **options: Any) -> tuple[TestClient, RecordingApp]:
    """A TestClient on http://testserver for an app behind CSRFMiddleware(**options)."""
    endpoint = RecordingApp()
    return TestClient(CSRFMiddleware(endpoint, **options), backend=backend), endpoint


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "QUERY", "post"])
@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site", "Same-Origin", "bogus", ""])
def test_csrf_refuses_a_forged_request_by_sec_fetch_site(
    method: str, fetch_site: str, backend: Backend
) -> None:
    client, endpoint = csrf_client(backend)
    # Sec-Fetch-Site is believed over Origin: a same-site page is not the site itself.
    headers = {"sec-fetch-site": fetch_site, "origin": "http://testserver"}
    response = client.request(method, "/transfer", data={"to": "mallory"}, headers=headers)
    assert (response.status_code, response.text) == (403, FORGED)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert endpoint.scopes == []


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://testserver.evil.example",
        "http://blog.testserver",  # a sibling subdomain is same-site, not the same origin
        "http://evil.example/testserver",
        "https://testserver",  # another scheme is another origin
        "http://testserver:8080",  # another port too
        "http://testserver:65536",
        "http://testserver/",  # not how a browser writes an origin
        "http://user@testserver",
        "testserver",
        "null",  # a sandboxed page, or a post redirected from another site
        "",
    ],
)
def test_csrf_refuses_a_foreign_origin_without_sec_fetch_site(
    origin: str, backend: Backend
) -> None:
    client, endpoint = csrf_client(backend)
    response = client.post("/transfer", data={"to": "mallory"}, headers={"origin": origin})
    assert (response.status_code, response.text) == (403, FORGED)
    assert endpoint.scopes == []


@pytest.mark.parametrize(
    ("base_url", "headers"),
    [
        ("http://testserver", {"sec-fetch-site": "same-origin"}),
        ("http://testserver", {"sec-fetch-site": "none"}),  # a bookmark, a typed URL
        ("http://testserver", {"origin": "http://testserver"}),
        ("http://testserver", {"origin": "HTTP://TestServer"}),
        ("http://testserver", {"origin": "http://testserver:80"}),
        ("https://example.com", {"origin": "https://example.com"}),
        ("https://example.com", {"origin": "https://example.com:443"}),
        ("https://example.com:443", {"origin": "https://example.com"}),
        ("https://example.com:8443", {"origin": "https://example.com:8443"}),
        ("http://[::1]:8000", {"origin": "http://[::1]:8000"}),
    ],
)
def test_csrf_allows_the_sites_own_pages(
    base_url: str, headers: dict[str, str], backend: Backend
) -> None:
    endpoint = RecordingApp()
    client = TestClient(CSRFMiddleware(endpoint), base_url=base_url, backend=backend)
    response = client.post("/transfer", data={"to": "alice"}, headers=headers)
    assert (response.status_code, response.text) == (200, "ok")
    assert len(endpoint.scopes) == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_csrf_allows_clients_that_are_not_browsers(method: str, backend: Backend) -> None:
    client, endpoint = csrf_client(backend)
    response = client.request(method, "/api/items", json={"name": "x"})
    assert (response.status_code, response.text) == (200, "ok")
    assert [scope["method"] for scope in endpoint.scopes] == [method]


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_csrf_lets_safe_methods_through_from_anywhere(method: str, backend: Backend) -> None:
    client, endpoint = csrf_client(backend)
    headers = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}
    response = client.request(method, "/", headers=headers)
    assert response.status_code == 200
    assert len(endpoint.scopes) == 1


@pytest.mark.parametrize(
    ("headers", "status_code"),
    [
        ({"sec-fetch-site": "same-site", "origin": "https://app.example.com"}, 200),
        ({"sec-fetch-site": "cross-site", "origin": "https://APP.example.com:443"}, 200),
        ({"origin": "https://app.example.com"}, 200),  # an older browser
        ({"sec-fetch-site": "cross-site", "origin": "http://localhost:3000"}, 200),
        ({"sec-fetch-site": "cross-site", "origin": "http://localhost:3001"}, 403),
        ({"sec-fetch-site": "cross-site", "origin": "http://app.example.com"}, 403),
        ({"sec-fetch-site": "same-site", "origin": "https://evil.example.com"}, 403),
        ({"sec-fetch-site": "cross-site"}, 403),  # a trusted origin must be named
        ({"sec-fetch-site": "cross-site", "origin": "null"}, 403),
    ],
)
def test_csrf_trusted_origins_pass_and_only_they(
    headers: dict[str, str], status_code: int, backend: Backend
) -> None:
    trusted = ["https://app.example.com", "http://localhost:3000"]
    client, endpoint = csrf_client(backend, trusted_origins=trusted)
    response = client.post("/", content=b"x", headers=headers)
    assert response.status_code == status_code
    assert len(endpoint.scopes) == (status_code == 200)


@pytest.mark.parametrize(
    ("path", "status_code"),
    [
        ("/webhook", 200),
        ("/webhook/", 403),  # an exact path is exact
        ("/webhooks", 403),
        ("/hooks/", 200),
        ("/hooks/stripe", 200),
        ("/hooks/a/b", 200),
        ("/hooks", 403),
        ("/hooksx/a", 403),
        ("/", 403),
    ],
)
def test_csrf_exempt_paths_are_exact_or_a_prefix_ending_in_a_slash(
    path: str, status_code: int, backend: Backend
) -> None:
    client, endpoint = csrf_client(backend, exempt_paths=["/webhook", "/hooks/"])
    headers = {"sec-fetch-site": "cross-site", "origin": "https://payments.example"}
    response = client.post(path, content=b"{}", headers=headers)
    assert response.status_code == status_code
    assert len(endpoint.scopes) == (status_code == 200)


@pytest.mark.anyio
async def test_csrf_exempt_paths_are_matched_without_the_root_path() -> None:
    middleware = CSRFMiddleware(RecordingApp(), exempt_paths=["/webhook"])
    headers = {"host": "example.org", "sec-fetch-site": "cross-site"}
    for path, root_path, status_code in [
        ("/app/webhook", "/app", 200),
        ("/webhook", "/app", 200),  # a server that leaves the root path out of path
        ("/app/webhook", "", 403),
    ]:
        scope = make_scope(path, method="POST", headers=headers, root_path=root_path)
        answer = await Server(http_request(), then="wait").run(middleware, scope)
        assert (path, root_path, answer.status) == (path, root_path, status_code)


@pytest.mark.anyio
async def test_csrf_compares_origin_with_the_host_header_or_else_the_server() -> None:
    middleware = CSRFMiddleware(RecordingApp())
    origin = (b"origin", b"http://example.org")
    for headers, server, status_code in [
        ([(b"host", b"EXAMPLE.org:000080"), origin], ("10.0.0.1", 8000), 200),
        ([(b"host", b"example.org:8000"), origin], ("example.org", 80), 403),
        ([origin], ("example.org", 80), 200),  # HTTP/1.0: no Host, the server it reached
        ([(b"host", b"bad host"), origin], ("example.org", 80), 200),  # malformed: ignored
        ([(b"host", b"bad host"), origin], None, 403),  # nothing to compare with
        ([origin], None, 403),
        ([(b"origin", b"null")], None, 403),  # two unknown origins are not the same one
        ([(b"host", b"bad host")], None, 200),  # no Origin: not a browser
    ]:
        scope = make_scope("/", method="POST", headers=headers, server=server)
        answer = await Server(http_request(), then="wait").run(middleware, scope)
        assert (headers, server, answer.status) == (headers, server, status_code)


@pytest.mark.anyio
async def test_csrf_checks_a_websocket_handshake_for_cross_site_hijacking() -> None:
    for headers, scheme, accepted in [
        ({"origin": "https://evil.example"}, "ws", False),
        ({"origin": "null"}, "ws", False),
        ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, "wss", False),
        ({"origin": "http://example.org"}, "ws", True),  # the page's origin is http(s)
        ({"origin": "https://example.org"}, "wss", True),
        ({"origin": "http://example.org"}, "wss", False),
        ({"sec-fetch-site": "same-origin", "origin": "https://example.org"}, "wss", True),
        ({}, "ws", True),  # a client that is not a browser
    ]:
        endpoint = RecordingApp()
        scope = {
            **ws_scope("/chat"),
            "scheme": scheme,
            "headers": [(b"host", b"example.org")]
            + [(name.encode(), value.encode()) for name, value in headers.items()],
        }
        answer = await Server(connect(), then="wait").run(CSRFMiddleware(endpoint), scope)
        if accepted:
            assert answer.sent_types == ["websocket.accept", "websocket.close"]
            continue
        assert endpoint.scopes == []
        assert answer.sent_types == [
            "websocket.http.response.start",
            "websocket.http.response.body",
        ]
        assert (answer.status, answer.sent[1]["body"]) == (403, FORGED.encode())


@pytest.mark.anyio
async def test_csrf_closes_a_refused_websocket_with_1008_without_the_denial_extension() -> None:
    endpoint = RecordingApp()
    scope = ws_scope(deny=False)
    scope["headers"] = [(b"host", b"example.org"), (b"origin", b"https://evil.example")]
    answer = await Server(connect(), then="wait").run(CSRFMiddleware(endpoint), scope)
    assert answer.sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    assert endpoint.scopes == []


def test_csrf_denies_a_cross_site_websocket_through_the_test_client(backend: Backend) -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = Starlite(routes=[WebSocketRoute("/ws", echo)], middleware=[Middleware(CSRFMiddleware)])
    with TestClient(app, backend=backend) as client:
        forged = {"origin": "https://evil.example"}
        with (
            pytest.raises(WebSocketDenialResponse) as info,
            client.websocket_connect("/ws", headers=forged),
        ):
            pass  # pragma: no cover - entering raises
        with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
            ws.send_text("hi")
            echoed = ws.receive_text()
    assert (info.value.status_code, info.value.text) == (403, FORGED)
    assert echoed == "hi"


def test_csrf_refuses_before_the_app_as_trusted_host_middleware_does(backend: Backend) -> None:
    # Like TrustedHostMiddleware's 400, the 403 is answered outside the app: its exception
    # handlers are not asked, and nothing of the request reaches a route.
    async def forbidden(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("app's own 403", 403)  # pragma: no cover - never asked

    app = Starlite(
        routes=[Route("/transfer", text_endpoint("sent"), methods=["POST"])],
        middleware=[Middleware(CSRFMiddleware)],
        exception_handlers={403: forbidden},
    )
    with TestClient(app, backend=backend) as client:
        forged = client.post("/transfer", headers={"sec-fetch-site": "cross-site"})
        own = client.post("/transfer", headers={"sec-fetch-site": "same-origin"})
    assert (forged.status_code, forged.text) == (403, FORGED)
    assert (own.status_code, own.text) == (200, "sent")


@pytest.mark.parametrize(
    "origin",
    [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://*.example.com",
        "*",
        "null",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://app.example.com:",
        "https://",
        "",
    ],
)
def test_csrf_refuses_a_trusted_origin_that_is_not_one_at_start_up(origin: str) -> None:
    with pytest.raises(ValueError, match=r"Trusted origin .* is not scheme://host\[:port\]"):
        CSRFMiddleware(RecordingApp(), trusted_origins=["https://ok.example", origin])


@pytest.mark.parametrize("path", ["webhook", "", "*"])
def test_csrf_refuses_an_exempt_path_without_a_leading_slash_at_start_up(path: str) -> None:
    with pytest.raises(ValueError, match="Exempt path must start with '/'"):
        CSRFMiddleware(RecordingApp(), exempt_paths=[path])


def test_csrf_refuses_one_string_for_a_list_at_start_up() -> None:
    with pytest.raises(TypeError, match=r"trusted_origins takes a list of strings: \['https://a"):
        CSRFMiddleware(RecordingApp(), trusted_origins="https://app.example.com")
    with pytest.raises(TypeError, match=r"exempt_paths takes a list of strings: \['/webhook'\]"):
        CSRFMiddleware(RecordingApp(), exempt_paths="/webhook")


# ==== BaseHTTPMiddleware ====


def without_final_chunk(receive: StreamedBody) -> Receive:
    """`receive` with its body's closing empty message turned into a disconnect."""

    async def disconnecting() -> Message:
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            return {"type": "http.disconnect"}
        return message

    return disconnecting


class CallNext(BaseHTTPMiddleware):
    """Answers with the app's response, untouched."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


class TagResponse(BaseHTTPMiddleware):
    """Adds an ``x-tag: <tag>`` header to the app's response."""

    def __init__(self, app: ASGIApp, tag: str) -> None:
        super().__init__(app)
        self.tag = tag

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.append("x-tag", self.tag)
        return response


class ReadBody(BaseHTTPMiddleware):
    """Reads the request body before calling the app, and logs it as ``(name, body)``."""

    def __init__(self, app: ASGIApp, name: str, log: list[tuple[str, bytes]]) -> None:
        super().__init__(app)
        self.name = name
        self.log = log

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        self.log.append((self.name, await request.body()))
        return await call_next(request)


def with_dispatch(dispatch: DispatchFunction) -> Middleware:
    """A BaseHTTPMiddleware built with the `dispatch` function."""
    return Middleware(BaseHTTPMiddleware, dispatch=dispatch)


def app_with(
    endpoint: Callable[[Request], Any], *middleware: Middleware, **kwargs: Any
) -> Starlite:
    """An app answering any method at "/" with `endpoint`, behind `middleware`."""
    methods = ["GET", "HEAD", "POST"]
    routes = [Route("/", endpoint, methods=methods)]
    return Starlite(routes=routes, middleware=list(middleware), **kwargs)


async def echo_body(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


TRAILERS: Message = {
    "type": "http.response.trailers",
    "headers": [(b"x-checksum", b"abc")],
    "more_trailers": False,
}


# construction


def test_base_http_middleware_subclass_dispatch_wraps_the_app(backend: Backend) -> None:
    app = app_with(text_endpoint("ok"), Middleware(TagResponse, "sub"))
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "ok"
    assert response.headers["x-tag"] == "sub"


def test_base_http_middleware_dispatch_function_wraps_the_app(backend: Backend) -> None:
    seen: list[str] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        seen.append(request.url.path)
        response = await call_next(request)
        response.headers["x-dispatch"] = "function"
        return response

    app = app_with(text_endpoint("ok"), with_dispatch(dispatch))
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "ok"
    assert response.headers["x-dispatch"] == "function"
    assert seen == ["/"]


def test_base_http_middleware_dispatch_function_wins_over_the_method(backend: Backend) -> None:
    class Method(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            return PlainTextResponse("from the method")  # pragma: no cover - never called

    async def function(request: Request, call_next: RequestResponseEndpoint) -> Response:
        return PlainTextResponse("from the function")

    app = app_with(text_endpoint("ok"), Middleware(Method, dispatch=function))
    assert TestClient(app, backend=backend).get("/").text == "from the function"


def test_base_http_middleware_without_dispatch_is_a_type_error_naming_the_class() -> None:
    class NoDispatch(BaseHTTPMiddleware):
        pass

    with pytest.raises(TypeError, match="BaseHTTPMiddleware"):
        BaseHTTPMiddleware(PlainTextResponse("ok"))
    with pytest.raises(TypeError, match="NoDispatch"):
        NoDispatch(PlainTextResponse("ok"))


def test_base_http_middleware_without_dispatch_fails_the_app_at_start_up() -> None:
    class NoDispatch(BaseHTTPMiddleware):
        pass

    app = app_with(text_endpoint("ok"), Middleware(NoDispatch))
    with pytest.raises(TypeError, match="NoDispatch"), TestClient(app):
        pass  # pragma: no cover - start-up raises
    with pytest.raises(TypeError, match="NoDispatch"):
        Route("/", text_endpoint("ok"), middleware=[Middleware(NoDispatch)])


def test_base_http_middleware_type_aliases_are_exported() -> None:
    assert {"BaseHTTPMiddleware", "DispatchFunction", "RequestResponseEndpoint"} <= set(
        starlite.__all__
    )
    assert starlite.RequestResponseEndpoint is RequestResponseEndpoint
    assert starlite.DispatchFunction is DispatchFunction


def test_base_http_middleware_per_route_and_per_mount(backend: Backend) -> None:
    app = Starlite(
        routes=[
            Route("/route", text_endpoint("route"), middleware=[Middleware(TagResponse, "r")]),
            Route("/plain", text_endpoint("plain")),
            Mount(
                "/mount",
                routes=[Route("/inner", text_endpoint("mounted"))],
                middleware=[Middleware(TagResponse, "m")],
            ),
        ],
        middleware=[Middleware(TagResponse, "app")],
    )
    client = TestClient(app, backend=backend)
    route = client.get("/route")
    assert route.text == "route"
    assert route.headers.get_list("x-tag") == ["r", "app"]
    assert client.get("/plain").headers.get_list("x-tag") == ["app"]
    mounted = client.get("/mount/inner")
    assert mounted.text == "mounted"
    assert mounted.headers.get_list("x-tag") == ["m", "app"]


# scopes other than http


def test_base_http_middleware_lets_a_websocket_through(backend: Backend) -> None:
    dispatched: list[str] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        dispatched.append(request.url.path)  # pragma: no cover - never called for a websocket
        return await call_next(request)  # pragma: no cover

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("echo: " + await websocket.receive_text())
        await websocket.close()

    app = Starlite(routes=[WebSocketRoute("/ws", echo)], middleware=[with_dispatch(dispatch)])
    with TestClient(app, backend=backend).websocket_connect("/ws") as websocket:
        websocket.send_text("hi")
        assert websocket.receive_text() == "echo: hi"
    assert dispatched == []


def test_base_http_middleware_lets_the_lifespan_through(backend: Backend) -> None:
    log: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[dict[str, str]]:
        log.append("start-up")
        yield {"resource": "ready"}
        log.append("shut-down")

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        log.append(f"dispatch {request.state.resource}")
        return await call_next(request)

    app = Starlite(
        routes=[Route("/", text_endpoint("ok"))],
        middleware=[with_dispatch(dispatch)],
        lifespan=lifespan,
    )
    with TestClient(app, backend=backend) as client:
        assert client.get("/").text == "ok"
    assert log == ["start-up", "dispatch ready", "shut-down"]


# the response


@pytest.mark.anyio
async def test_base_http_middleware_relays_a_response_as_starlette_sends_it() -> None:
    server = Server(http_request(), then="wait")
    sent = (await server.run(CallNext(PlainTextResponse("hi")), make_scope())).sent
    # No trailers key without trailers, and an explicit end of the body.
    assert sent[0].keys() == {"type", "status", "headers"}
    assert sent[1:] == [
        {"type": "http.response.body", "body": b"hi", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]


@pytest.mark.anyio
async def test_base_http_middleware_body_iterator_aclose_stops_it() -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            await anyio.lowlevel.checkpoint()
            yield b"chunk"

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        chunks = response.body_iterator  # type: ignore[attr-defined]
        first = await anext(chunks)
        await chunks.aclose()
        rest = [chunk async for chunk in chunks]
        return PlainTextResponse(f"{first!r} then {rest!r}")

    server = Server(http_request(), then="wait")
    await server.run(BaseHTTPMiddleware(StreamingResponse(endless()), dispatch), make_scope())
    assert server.body == b"b'chunk' then []"


def test_base_http_middleware_streams_body_as_produced(backend: Backend) -> None:
    released = threading.Event()
    waited: list[bool] = []

    def chunks() -> Iterator[bytes]:
        yield b"first"
        waited.append(released.wait(5))  # until the test has read the first chunk
        yield b"second"

    def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks(), media_type="text/plain")

    client = TestClient(app_with(endpoint, Middleware(CallNext)), backend=backend)
    with client.stream("GET", "/") as response:
        assert response.status_code == 200
        body = response.iter_bytes()
        assert next(body) == b"first"
        released.set()
        assert b"".join(body) == b"second"
    assert waited == [True]


@pytest.mark.anyio
async def test_base_http_middleware_response_starts_before_the_body_is_produced() -> None:
    produced = anyio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        with anyio.fail_after(5):
            await produced.wait()  # set only once call_next has returned
        yield b"second"

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        produced.set()
        return response

    server = Server(http_request(), then="wait")
    await server.run(
        BaseHTTPMiddleware(StreamingResponse(chunks()), dispatch=dispatch), make_scope()
    )
    assert server.body == b"firstsecond"


def test_base_http_middleware_passes_status_and_headers_through(backend: Backend) -> None:
    def endpoint(request: Request) -> Response:
        return PlainTextResponse("created", status_code=201, headers={"x-custom": "1"})

    response = TestClient(app_with(endpoint, Middleware(CallNext)), backend=backend).get("/")
    assert response.status_code == 201
    assert response.text == "created"
    assert response.headers["content-length"] == "7"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-custom"] == "1"


def test_base_http_middleware_can_change_status_and_headers(backend: Backend) -> None:
    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.status_code = 202
        response.headers["x-added"] = "yes"
        del response.headers["x-removed"]
        return response

    def endpoint(request: Request) -> Response:
        return PlainTextResponse("body", headers={"x-removed": "1"})

    response = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend).get("/")
    assert response.status_code == 202
    assert response.text == "body"
    assert response.headers["x-added"] == "yes"
    assert "x-removed" not in response.headers
    assert response.headers["content-length"] == "4"


def test_base_http_middleware_can_answer_without_calling_the_app(backend: Backend) -> None:
    called: list[str] = []

    def endpoint(request: Request) -> Response:
        called.append("endpoint")  # pragma: no cover - never called
        return PlainTextResponse("app")  # pragma: no cover

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        return JSONResponse({"refused": True}, status_code=403)

    response = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend).get("/")
    assert response.status_code == 403
    assert response.json() == {"refused": True}
    assert called == []


def test_base_http_middleware_can_read_the_body_and_answer_with_a_new_response(
    backend: Backend,
) -> None:
    async def chunks() -> AsyncIterator[str]:
        for word in ("one", "two", "three"):
            yield word

    def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks(), headers={"x-app": "1"}, media_type="text/plain")

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        read = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
        body = b"".join(c if isinstance(c, bytes) else str(c).encode() for c in read)
        return Response(body.upper(), status_code=response.status_code, headers=response.headers)

    response = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend).get("/")
    assert response.text == "ONETWOTHREE"
    assert response.headers["x-app"] == "1"


def test_base_http_middleware_answers_head_with_headers_and_no_body(backend: Backend) -> None:
    def endpoint(request: Request) -> Response:
        return PlainTextResponse("hello world", headers={"x-custom": "1"})

    client = TestClient(app_with(endpoint, Middleware(TagResponse, "t")), backend=backend)
    response = client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "11"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-custom"] == "1"
    assert response.headers["x-tag"] == "t"


# the request body


async def form_echo(request: Request) -> Response:
    form = await request.form()
    return JSONResponse({name: str(value) for name, value in form.multi_items()})


@pytest.mark.parametrize(
    "reader",
    [
        "body",
        "json",
        "body, then form",
        "form",
    ],
)
def test_base_http_middleware_body_read_in_dispatch_is_read_again_by_the_endpoint(
    backend: Backend, reader: str
) -> None:
    read_in_dispatch: list[Any] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        if reader == "body":
            read_in_dispatch.append(await request.body())
        elif reader == "json":
            read_in_dispatch.append(await request.json())
        else:
            if reader == "body, then form":
                await request.body()
            form = await request.form()
            read_in_dispatch.append(dict(form))
        return await call_next(request)

    endpoint = echo_body if reader in ("body", "json") else form_echo
    client = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend)
    if reader in ("body", "json"):
        response = client.post("/", content=b'{"k": [1, 2]}')
        assert response.content == b'{"k": [1, 2]}'
        expected = {"k": [1, 2]} if reader == "json" else b'{"k": [1, 2]}'
        assert read_in_dispatch == [expected]
    else:
        response = client.post("/", data={"name": "Ada", "lang": "en"})
        assert read_in_dispatch == [{"name": "Ada", "lang": "en"}]
        assert response.json() == {"name": "Ada", "lang": "en"}


@pytest.mark.parametrize(
    "read_body_first",
    [True, False],
)
def test_base_http_middleware_multipart_form_read_in_dispatch_is_read_again(
    backend: Backend, read_body_first: bool
) -> None:
    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        if read_body_first:  # the body is replayed: the endpoint parses a form of its own
            await request.body()
            async with request.form() as form:
                upload = form["file"]
                assert not isinstance(upload, str)
                names = f"{form['field']}+{upload.filename}"
        else:  # the body is gone: the endpoint gets this form, its files still open
            form = await request.form()
            upload = form["file"]
            assert not isinstance(upload, str)
            names = f"{form['field']}+{upload.filename}"
        response = await call_next(request)
        response.headers["x-seen"] = names
        return response

    async def endpoint(request: Request) -> Response:
        async with request.form() as form:
            upload = form["file"]
            assert not isinstance(upload, str)
            return PlainTextResponse(f"{form['field']}:{(await upload.read()).decode()}")

    client = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend)
    response = client.post("/", data={"field": "v"}, files={"file": ("a.txt", b"contents")})
    assert response.headers["x-seen"] == "v+a.txt"
    assert response.text == "v:contents"


@pytest.mark.anyio
async def test_base_http_middleware_unread_body_streams_to_the_endpoint_chunk_by_chunk() -> None:
    receive = StreamedBody([b"one", b"two", b"three"])
    seen: list[tuple[bytes, int]] = []

    async def endpoint(request: Request) -> Response:
        async for chunk in request.stream():
            seen.append((chunk, receive.calls))
        return PlainTextResponse("done")

    scope = make_scope(method="POST")
    answer = await Server(receive=receive).run(
        CallNext(Route("/", endpoint, methods=["POST"])), scope
    )
    # Each chunk reaches the endpoint as it is received, not after the whole body; an empty
    # chunk marks the end, as for any stream.
    assert seen == [(b"one", 1), (b"two", 2), (b"three", 3), (b"", 3)]
    assert answer.body == b"done"


def test_base_http_middleware_body_streamed_away_in_dispatch_is_empty_for_the_endpoint(
    backend: Backend,
) -> None:
    streamed: list[bytes] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        streamed.extend([chunk async for chunk in request.stream()])
        return await call_next(request)

    client = TestClient(app_with(echo_body, with_dispatch(dispatch)), backend=backend)
    response = client.post("/", content=b"payload")
    assert response.status_code == 200
    assert response.content == b""
    assert streamed == [b"payload", b""]


@pytest.mark.anyio
async def test_base_http_middleware_body_streamed_away_does_not_leave_the_endpoint_waiting() -> (
    None
):
    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        async for _ in request.stream():
            pass
        return await call_next(request)

    # After the body, receive waits for a disconnect that never comes.
    server = Server(http_request(b"payload"), then="wait")
    app = BaseHTTPMiddleware(Route("/", echo_body, methods=["POST"]), dispatch=dispatch)
    await server.run(app, make_scope(method="POST"))
    assert server.sent[0]["status"] == 200
    assert server.body == b""


@pytest.mark.parametrize("count", [2, 3])
def test_stacked_base_http_middlewares_each_reading_the_body_give_it_to_the_endpoint(
    backend: Backend, count: int
) -> None:
    log: list[tuple[str, bytes]] = []
    middleware = [Middleware(ReadBody, f"mw{n}", log) for n in range(count)]
    client = TestClient(app_with(echo_body, *middleware), backend=backend)
    assert client.post("/", content=b"the body").content == b"the body"
    assert log == [(f"mw{n}", b"the body") for n in range(count)]


@pytest.mark.anyio
async def test_stacked_base_http_middlewares_pass_a_streamed_body_on() -> None:
    log: list[tuple[str, bytes]] = []
    app: ASGIApp = Route("/", echo_body, methods=["POST"])
    app = ReadBody(CallNext(ReadBody(app, "inner", log)), "outer", log)
    server = Server(receive=StreamedBody([b"a", b"b", b"c"]))
    assert (await server.run(app, make_scope(method="POST"))).body == b"abc"
    assert log == [("outer", b"abc"), ("inner", b"abc")]


@pytest.mark.parametrize("cache_first", [True, False])
def test_base_http_middleware_call_next_twice_replays_only_a_cached_body(
    backend: Backend, cache_first: bool
) -> None:
    bodies: list[bytes] = []

    async def endpoint(request: Request) -> Response:
        bodies.append(await request.body())
        if len(bodies) == 1:
            raise Boom("first attempt")
        return PlainTextResponse("second attempt")

    async def retry(request: Request, call_next: RequestResponseEndpoint) -> Response:
        if cache_first:
            await request.body()
        try:
            return await call_next(request)
        except Boom:
            return await call_next(request)

    client = TestClient(app_with(endpoint, with_dispatch(retry)), backend=backend)
    assert client.post("/", content=b"data").text == "second attempt"
    # Uncached, the first call took the body: the second reads it as empty, and does not wait.
    assert bodies == [b"data", b"data" if cache_first else b""]


@pytest.mark.anyio
async def test_base_http_middleware_dispatch_and_the_app_each_read_part_of_one_body() -> None:
    app_chunks: list[bytes] = []
    dispatch_chunks: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async with contextlib.aclosing(Request(scope, receive).stream()) as stream:
            app_chunks.append(await anext(stream))
        await Response()(scope, receive, send)

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        async with contextlib.aclosing(request.stream()) as stream:
            dispatch_chunks.append(await anext(stream))
            response = await call_next(request)
            dispatch_chunks.extend([chunk async for chunk in stream])
        return response

    receive = ScriptedReceive(
        body_message(b"1", True), body_message(b"2", True), body_message(b"3")
    )
    server = Server(receive=receive)
    answer = await server.run(BaseHTTPMiddleware(app, dispatch), make_scope(method="POST"))
    assert (app_chunks, dispatch_chunks) == ([b"2"], [b"1", b"3", b""])
    assert receive.calls == 3  # nobody waited for a disconnect
    assert answer.sent[0]["status"] == 200


def test_base_http_middleware_stream_in_dispatch_after_the_app_read_the_body_is_consumed(
    backend: Backend,
) -> None:
    errors: list[str] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        try:
            await drain(request.stream())
        except RuntimeError as exc:
            errors.append(str(exc))
        return response

    client = TestClient(app_with(echo_body, with_dispatch(dispatch)), backend=backend)
    assert client.post("/", content=b"payload").content == b"payload"
    assert errors == ["Stream consumed"]


@pytest.mark.anyio
@pytest.mark.parametrize("body", [[], [b"hello"]], ids=["no-body", "body"])
async def test_base_http_middleware_app_hears_the_disconnect_each_time_it_asks(
    body: list[bytes],
) -> None:
    heard: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        heard.extend([(await receive())["type"] for _ in range(len(body) + 4)])
        await Response(b"good")(scope, receive, send)

    messages = [body_message(chunk, True) for chunk in body]
    receive = ScriptedReceive(*messages, body_message(b""), DISCONNECT)  # one disconnect only
    answer = await Server(receive=receive).run(CallNext(app), make_scope())
    assert heard == ["http.request"] * (len(body) + 1) + ["http.disconnect"] * 3
    assert answer.body == b"good"


@pytest.mark.anyio
async def test_base_http_middleware_app_after_dispatch_saw_the_disconnect_does_not_wait() -> None:
    heard: list[Message] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await request.body()
        assert await request.is_disconnected() is True
        return await call_next(request)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        heard.extend([await receive(), await receive()])
        await Response()(scope, receive, send)

    receive = ScriptedReceive(body_message(b"hi"), DISCONNECT)  # fails if asked a third time
    await Server(receive=receive).run(BaseHTTPMiddleware(app, dispatch), make_scope(method="POST"))
    assert heard == [body_message(b"hi"), DISCONNECT]


# background tasks


def test_base_http_middleware_runs_background_task_after_the_response_is_sent(
    backend: Backend,
) -> None:
    log: list[str] = []
    released = threading.Event()

    def chunks() -> Iterator[bytes]:
        yield b"first"
        released.wait(5)
        yield b"second"

    def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks(), background=BackgroundTask(log.append, "background"))

    client = TestClient(app_with(endpoint, Middleware(CallNext)), backend=backend)
    with client.stream("GET", "/") as response:
        body = response.iter_bytes()
        assert next(body) == b"first"
        assert log == []
        released.set()
        assert b"".join(body) == b"second"
    assert log == ["background"]


@pytest.mark.anyio
async def test_base_http_middleware_background_task_waits_for_the_last_body_message() -> None:
    log: list[str] = []

    async def slow_send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            await anyio.sleep(0.02)  # a slow client: the background task must still wait
            log.append("response sent")

    app = PlainTextResponse("ok", background=BackgroundTask(log.append, "background"))
    with anyio.fail_after(5):
        await CallNext(app)(make_scope(), StreamedBody([]), slow_send)
    assert log == ["response sent", "background"]


def finished_app(kind: str, log: list[str]) -> ASGIApp:
    """An app answering b"body" that logs "finished" once done: with a response's background
    task, or (a raw app) after its trailers."""
    background = BackgroundTask(log.append, "finished")
    if kind == "plain":
        return PlainTextResponse("body", background=background)
    if kind == "streaming":

        async def chunks() -> AsyncIterator[bytes]:
            yield b"bo"
            yield b"dy"

        return StreamingResponse(chunks(), background=background)
    messages = [
        response_body_message(b"bo", more_body=True),
        response_body_message(b"dy"),
        TRAILERS,
    ]
    app = scripted_app(response_start_message(trailers=True), *messages)

    async def trailing_app(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        log.append("finished")

    return trailing_app


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["plain", "streaming", "trailers"])
async def test_base_http_middleware_lets_the_app_finish_when_send_never_waits(kind: str) -> None:
    log: list[str] = []
    # Its send returns at once, as a server's usually does.
    server = Server(http_request(), then="wait")
    scope = make_scope(extensions={"http.response.trailers": {}})
    await server.run(CallNext(finished_app(kind, log)), scope)
    assert server.body == b"body"
    assert log == ["finished"]


@pytest.mark.parametrize(
    "backend",
    [
        "asyncio",
        "trio",
    ],
)
def test_base_http_middleware_runs_the_background_of_every_streamed_response(
    backend: Backend,
) -> None:
    log: list[str] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks(), background=BackgroundTask(log.append, "background"))

    with TestClient(app_with(endpoint, Middleware(CallNext)), backend=backend) as client:
        for _ in range(30):  # on trio about 4 in 10 are lost
            assert client.get("/").content == b"ab"
    assert log == ["background"] * 30


def test_base_http_middleware_replaced_response_cancels_the_app_and_its_background(
    backend: Backend,
) -> None:
    log: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"original "
                await anyio.lowlevel.checkpoint()
        finally:
            log.append("generator closed")

    async def endpoint(request: Request) -> Response:
        return StreamingResponse(endless(), background=BackgroundTask(log.append, "background"))

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        return PlainTextResponse("replaced", status_code=response.status_code)

    response = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend).get("/")
    assert response.text == "replaced"
    assert log == ["generator closed"]


def test_base_http_middleware_replaced_plain_response_skips_its_background(
    backend: Backend,
) -> None:
    log: list[str] = []

    def endpoint(request: Request) -> Response:
        return PlainTextResponse("original", background=BackgroundTask(log.append, "background"))

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await call_next(request)
        return PlainTextResponse("replaced")

    response = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend).get("/")
    assert response.text == "replaced"
    assert log == []


@pytest.mark.parametrize("raise_server_exceptions", [True, False])
def test_base_http_middleware_dispatch_raising_after_call_next_skips_the_background(
    backend: Backend, raise_server_exceptions: bool
) -> None:
    log: list[str] = []

    def endpoint(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(log.append, "background"))

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await call_next(request)
        raise Boom("after call_next")

    app = app_with(endpoint, with_dispatch(dispatch))
    client = TestClient(app, backend=backend, raise_server_exceptions=raise_server_exceptions)
    if raise_server_exceptions:
        with pytest.raises(Boom, match="after call_next"):
            client.get("/")
    else:
        response = client.get("/")
        assert response.status_code == 500
        assert response.text == "Internal Server Error"
    assert log == []


def test_base_http_middleware_background_set_in_dispatch_runs_with_the_app_background(
    backend: Backend,
) -> None:
    log: list[str] = []

    def endpoint(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(log.append, "app"))

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.background = BackgroundTask(log.append, "middleware")
        return response

    response = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend).get("/")
    assert response.text == "ok"
    assert sorted(log) == ["app", "middleware"]


# exceptions


@pytest.mark.parametrize("chain", ["none", "context", "cause"])
def test_base_http_middleware_raises_the_app_error_with_its_own_chain(
    backend: Backend, chain: str
) -> None:
    def endpoint(request: Request) -> Response:
        if chain == "none":
            raise Boom("outer")
        try:
            raise ValueError("inner")
        except ValueError as exc:
            if chain == "cause":
                raise Boom("outer") from exc
            raise Boom("outer")  # noqa: B904 (the implicit context is the point)

    client = TestClient(app_with(endpoint, Middleware(CallNext)), backend=backend)
    with pytest.raises(Boom) as info:
        client.get("/")
    # What the middleware waited on (anyio's EndOfStream) stays out of the traceback: an error
    # with a context or a cause shows it as its cause, one without shows none.
    if chain == "none":
        assert (info.value.__cause__, info.value.__suppress_context__) == (None, True)
    else:
        assert repr(info.value.__cause__) == "ValueError('inner')"


def test_base_http_middleware_call_next_raises_the_endpoint_exception(backend: Backend) -> None:
    caught: list[Exception] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            return await call_next(request)
        except Boom as exc:
            caught.append(exc)
            return PlainTextResponse("unavailable", status_code=503)

    app = app_with(raising_endpoint(Boom("endpoint failed")), with_dispatch(dispatch))
    response = TestClient(app, backend=backend).get("/")
    assert response.status_code == 503
    assert response.text == "unavailable"
    assert [type(exc) for exc in caught] == [Boom]
    assert str(caught[0]) == "endpoint failed"


@pytest.mark.parametrize("key", [500, Exception])
def test_base_http_middleware_uncaught_endpoint_exception_reaches_the_error_handler(
    backend: Backend, key: Any
) -> None:
    seen: list[Exception] = []

    def handler(request: Request, exc: Exception) -> Response:
        seen.append(exc)
        return PlainTextResponse("handled", status_code=500)

    app = app_with(
        raising_endpoint(Boom("endpoint failed")),
        Middleware(CallNext),
        exception_handlers={key: handler},
    )
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "handled"
    assert [type(exc) for exc in seen] == [Boom]


def test_base_http_middleware_uncaught_endpoint_exception_is_a_500(backend: Backend) -> None:
    app = app_with(raising_endpoint(Boom("endpoint failed")), Middleware(CallNext))
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


@pytest.mark.parametrize("count", [1, 3])
def test_base_http_middleware_endpoint_exception_reaches_the_test_as_itself(
    backend: Backend, count: int
) -> None:
    middleware = [Middleware(CallNext) for _ in range(count)]
    app = app_with(raising_endpoint(Boom("endpoint failed")), *middleware)
    with pytest.raises(Boom, match="endpoint failed") as info:
        TestClient(app, backend=backend).get("/")
    assert type(info.value) is Boom


@pytest.mark.parametrize("status_code", [404, 418])
def test_base_http_middleware_sees_an_http_exception_as_a_response(
    backend: Backend, status_code: int
) -> None:
    statuses: list[int] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        statuses.append(response.status_code)
        return response

    app = app_with(raising_endpoint(HTTPException(status_code, "nope")), with_dispatch(dispatch))
    response = TestClient(app, backend=backend).get("/")
    assert response.status_code == status_code
    assert response.text == "nope"
    assert statuses == [status_code]


def test_base_http_middleware_dispatch_exception_reaches_server_error_middleware(
    backend: Backend,
) -> None:
    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        raise Boom("dispatch failed")

    app = app_with(text_endpoint("ok"), with_dispatch(dispatch))
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    with pytest.raises(Boom, match="dispatch failed") as info:
        TestClient(app, backend=backend).get("/")
    assert type(info.value) is Boom


def test_base_http_middleware_background_task_exception_reaches_the_test(
    backend: Backend,
) -> None:
    def fail() -> None:
        raise Boom("background failed")

    def endpoint(request: Request) -> Response:
        return PlainTextResponse("sent", background=BackgroundTask(fail))

    app = app_with(endpoint, Middleware(CallNext))
    with pytest.raises(Boom, match="background failed") as info:
        TestClient(app, backend=backend).get("/")
    assert type(info.value) is Boom
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.status_code == 200
    assert response.text == "sent"


def test_base_http_middleware_streaming_body_exception_reaches_the_test(backend: Backend) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise Boom("generator failed")

    def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks())

    app = app_with(endpoint, Middleware(CallNext))
    with pytest.raises(Boom, match="generator failed") as info:
        TestClient(app, backend=backend).get("/")
    assert type(info.value) is Boom


@pytest.mark.anyio
async def test_base_http_middleware_body_exception_comes_out_of_the_middleware_call() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise Boom("generator failed")

    server = Server(http_request(), then="wait")
    with pytest.raises(Boom, match="generator failed"):
        await server.run(CallNext(StreamingResponse(chunks())), make_scope())
    assert server.sent_types[0] == "http.response.start"
    assert server.body == b"partial"


def test_base_http_middleware_app_without_a_response_is_a_runtime_error(
    backend: Backend,
) -> None:
    caught: list[str] = []

    async def silent_app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            return await call_next(request)
        except RuntimeError as exc:
            caught.append(str(exc))
            return PlainTextResponse("no response", status_code=502)

    response = TestClient(BaseHTTPMiddleware(silent_app, dispatch), backend=backend).get("/")
    assert response.status_code == 502
    assert caught == ["No response returned."]
    with pytest.raises(RuntimeError, match=r"^No response returned\.$"):
        TestClient(CallNext(silent_app), backend=backend).get("/")


# client disconnects


def test_base_http_middleware_client_closing_the_stream_closes_the_generator(
    backend: Backend,
) -> None:
    log: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"chunk"
                await anyio.lowlevel.checkpoint()
        finally:
            log.append("generator closed")

    def endpoint(request: Request) -> Response:
        return StreamingResponse(endless(), background=BackgroundTask(log.append, "background"))

    client = TestClient(app_with(endpoint, Middleware(CallNext)), backend=backend)
    for _ in range(2):
        with client.stream("GET", "/") as response:
            assert next(response.iter_bytes()) == b"chunk"
    assert log == ["generator closed"] * 2


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_base_http_middleware_stops_the_app_when_the_client_disconnects(
    spec_version: str,
) -> None:
    log: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"chunk"
                await anyio.lowlevel.checkpoint()
        finally:
            log.append("generator closed")

    server = Server(http_request(), then="disconnect", disconnect_after=1)
    await server.run(
        CallNext(StreamingResponse(endless())),
        make_scope(asgi={"version": "3.0", "spec_version": spec_version}),
    )
    assert log == ["generator closed"]
    assert server.sent_types[0] == "http.response.start"
    assert server.gone.is_set()


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_base_http_middleware_stops_its_own_response_when_the_client_disconnects(
    spec_version: str,
) -> None:
    log: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"chunk"
                await anyio.lowlevel.checkpoint()
        finally:
            log.append("generator closed")

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await call_next(request)
        return StreamingResponse(endless())

    server = Server(http_request(), then="disconnect", disconnect_after=1)
    app = BaseHTTPMiddleware(PlainTextResponse("app"), dispatch)
    if spec_version == "2.4":  # the server's OSError, as a StreamingResponse raises it
        with pytest.raises(ClientDisconnect):
            await server.run(app, make_scope(asgi={"version": "3.0", "spec_version": spec_version}))
    else:
        await server.run(app, make_scope(asgi={"version": "3.0", "spec_version": spec_version}))
    assert log == ["generator closed"]
    assert server.body.startswith(b"chunk")


# context variables

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def test_base_http_middleware_sees_a_context_variable_the_endpoint_set(backend: Backend) -> None:
    async def endpoint(request: Request) -> Response:
        request_id.set("set by the endpoint")
        return PlainTextResponse("ok")

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        assert request_id.get() == "unset"
        response = await call_next(request)
        response.headers["x-request-id"] = request_id.get()
        return response

    response = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend).get("/")
    assert response.headers["x-request-id"] == "set by the endpoint"


def test_base_http_middleware_context_variable_set_in_dispatch_reaches_the_endpoint(
    backend: Backend,
) -> None:
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(request_id.get())

    def sync_endpoint(request: Request) -> Response:
        return PlainTextResponse(request_id.get())

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id.set("set in dispatch")
        return await call_next(request)

    app = Starlite(
        routes=[Route("/", endpoint), Route("/sync", sync_endpoint)],
        middleware=[with_dispatch(dispatch)],
    )
    client = TestClient(app, backend=backend)
    assert client.get("/").text == "set in dispatch"
    assert client.get("/sync").text == "set in dispatch"


class ContextSpy:
    """Pure ASGI middleware logging `request_id` once the app inside it has returned."""

    def __init__(self, app: ASGIApp, log: list[str]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.log.append(request_id.get())


@pytest.mark.parametrize("count", [1, 2])
def test_base_http_middleware_hands_the_endpoint_context_variables_outwards(
    backend: Backend, count: int
) -> None:
    log: list[str] = []

    async def endpoint(request: Request) -> Response:
        request_id.set("set by the endpoint")
        return PlainTextResponse("ok")

    middleware = [Middleware(CallNext) for _ in range(count)]
    app = app_with(endpoint, Middleware(ContextSpy, log), *middleware)
    assert TestClient(app, backend=backend).get("/").text == "ok"
    assert log == ["set by the endpoint"]


def test_base_http_middleware_context_variable_reset_by_the_endpoint_stays_reset(
    backend: Backend,
) -> None:
    async def endpoint(request: Request) -> Response:
        request_id.set("unset")  # back to the value the middleware had
        return PlainTextResponse("ok")

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        request_id.set("set in dispatch")
        response = await call_next(request)
        response.headers["x-request-id"] = request_id.get()
        return response

    response = TestClient(app_with(endpoint, with_dispatch(dispatch)), backend=backend).get("/")
    assert response.headers["x-request-id"] == "unset"


# garbage


def test_stacked_base_http_middlewares_leave_no_noise_for_the_garbage_collector(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"chunk"
            await anyio.lowlevel.checkpoint()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"chunk"
            await anyio.lowlevel.checkpoint()

    async def finite(request: Request) -> Response:
        return StreamingResponse(chunks(), background=BackgroundTask(anyio.lowlevel.checkpoint))

    async def endless_endpoint(request: Request) -> Response:
        await request.body()
        return StreamingResponse(endless())

    log: list[tuple[str, bytes]] = []
    app = Starlite(
        routes=[Route("/", finite), Route("/endless", endless_endpoint, methods=["POST"])],
        middleware=[
            Middleware(ReadBody, "outer", log),
            Middleware(TagResponse, "middle"),
            Middleware(ReadBody, "inner", log),
        ],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with TestClient(app, backend=backend) as client:  # one event loop for every request
            for _ in range(5):
                assert client.get("/").content == b"chunk" * 3
                with client.stream("POST", "/endless", content=b"body") as response:
                    assert next(response.iter_bytes()) == b"chunk"
        client = TestClient(app, backend=backend)  # one event loop for each request
        for _ in range(5):
            assert client.get("/").headers["x-tag"] == "middle"
            with client.stream("POST", "/endless", content=b"body") as response:
                assert next(response.iter_bytes()) == b"chunk"
        gc.collect()
    assert unraisable == []
    assert [str(warning.message) for warning in caught] == []
    assert set(log) == {("outer", b""), ("inner", b""), ("outer", b"body"), ("inner", b"body")}


# ASGI extensions and debug messages


async def template_app(scope: Scope, receive: Receive, send: Send) -> None:
    info = {"template": "page.html", "context": {"name": "Ada"}}
    await send({"type": "http.response.debug", "info": info})
    await send(response_start_message())
    await send(response_body_message(b"rendered"))


def test_base_http_middleware_passes_the_debug_info_on(backend: Backend) -> None:
    response = TestClient(CallNext(template_app), backend=backend).get("/")
    assert response.text == "rendered"
    assert response.template == "page.html"  # type: ignore[attr-defined]
    assert response.context == {"name": "Ada"}  # type: ignore[attr-defined]


def test_base_http_middleware_drops_the_debug_info_of_a_replaced_response(
    backend: Backend,
) -> None:
    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        await call_next(request)
        return PlainTextResponse("replaced")

    response = TestClient(BaseHTTPMiddleware(template_app, dispatch), backend=backend).get("/")
    assert response.text == "replaced"
    assert not hasattr(response, "template")


@pytest.mark.anyio
@pytest.mark.parametrize("chunks", [[b"whole body"], [b"whole", b" body"]])
async def test_base_http_middleware_passes_trailers_on(chunks: list[bytes]) -> None:
    body = [
        response_body_message(chunk, more_body=n < len(chunks) - 1)
        for n, chunk in enumerate(chunks)
    ]
    app = scripted_app(response_start_message(trailers=True), *body, TRAILERS)
    server = Server(http_request(), then="wait")
    scope = make_scope(extensions={"http.response.trailers": {}})
    await server.run(CallNext(app), scope)
    start, *rest = server.sent
    assert start["type"] == "http.response.start"
    assert start["trailers"] is True
    assert [m["type"] for m in rest[:-1]] == ["http.response.body"] * (len(rest) - 1)
    assert not rest[-2].get("more_body", False)
    assert server.body == b"whole body"
    assert rest[-1]["type"] == "http.response.trailers"
    assert rest[-1]["headers"] == [(b"x-checksum", b"abc")]
    assert not rest[-1].get("more_trailers", False)
    assert server.sent_types.count("http.response.trailers") == 1


@pytest.mark.anyio
async def test_base_http_middleware_gathers_split_trailers() -> None:
    first = {**TRAILERS, "headers": [(b"x-one", b"1")], "more_trailers": True}
    second = {**TRAILERS, "headers": [(b"x-two", b"2")]}
    app = scripted_app(
        response_start_message(trailers=True), response_body_message(b"body"), first, second
    )
    server = Server(http_request(), then="wait")
    scope = make_scope(extensions={"http.response.trailers": {}})
    await server.run(CallNext(app), scope)
    assert server.body == b"body"
    trailers = [m for m in server.sent if m["type"] == "http.response.trailers"]
    assert [m["headers"] for m in trailers] == [[(b"x-one", b"1"), (b"x-two", b"2")]]


@pytest.mark.anyio
async def test_base_http_middleware_passes_a_pathsend_on_for_the_server_to_send(
    data_file: Path,
) -> None:
    background_ran: list[str] = []

    async def endpoint(request: Request) -> Response:
        task = BackgroundTask(background_ran.append, "after the file")
        return FileResponse(data_file, background=task)

    server = Server(http_request(), then="wait")
    scope = make_scope(extensions={"http.response.pathsend": {}})
    app = Starlite(routes=[Route("/", endpoint)], middleware=[Middleware(CallNext)])
    await server.run(app, scope)
    assert server.sent_types == ["http.response.start", "http.response.pathsend"]
    assert server.sent[1]["path"] == str(data_file)
    assert background_ran == ["after the file"]


@pytest.mark.anyio
async def test_base_http_middleware_body_iterator_yields_a_pathsend_message(
    data_file: Path,
) -> None:
    read: list[Any] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        read.extend([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        return Response(b"replaced")

    server = Server(http_request(), then="wait")
    scope = make_scope(extensions={"http.response.pathsend": {}})
    await server.run(BaseHTTPMiddleware(FileResponse(data_file), dispatch), scope)
    assert read == [{"type": "http.response.pathsend", "path": str(data_file)}]
    assert server.body == b"replaced"


@pytest.mark.anyio
async def test_base_http_middleware_forwards_early_hints_before_the_response() -> None:
    hint: Message = {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]}
    released = anyio.Event()
    order: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(hint)
        with anyio.fail_after(5):
            await released.wait()  # the hint is on its way before the app answers
        await send(response_start_message())
        await send(response_body_message(b"ok"))

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        order.append("dispatch")
        return await call_next(request)

    async def send(message: Message) -> None:
        order.append(message["type"])
        released.set()

    scope = make_scope(extensions={"http.response.early_hint": {}})
    with anyio.fail_after(5):
        await BaseHTTPMiddleware(app, dispatch)(scope, StreamedBody([]), send)
    assert order == [
        "dispatch",
        "http.response.early_hint",
        "http.response.start",
        "http.response.body",
        "http.response.body",
    ]


# bad input


@pytest.mark.parametrize("reader", ["dispatch", "endpoint"])
def test_base_http_middleware_body_over_the_app_limit_is_413(backend: Backend, reader: str) -> None:
    log: list[tuple[str, bytes]] = []
    middleware = Middleware(ReadBody, "mw", log) if reader == "dispatch" else Middleware(CallNext)
    client = TestClient(app_with(echo_body, middleware, max_body_size=10), backend=backend)
    response = client.post("/", content=b"x" * 100)
    assert response.status_code == 413
    assert response.text == "Content Too Large"
    assert client.post("/", content=b"small").content == b"small"
    assert log == ([("mw", b"small")] if reader == "dispatch" else [])


@pytest.mark.anyio
async def test_base_http_middleware_streamed_body_over_the_app_limit_is_413() -> None:
    log: list[tuple[str, bytes]] = []
    app = app_with(echo_body, Middleware(ReadBody, "mw", log), max_body_size=10)
    receive = StreamedBody([b"x" * 6] * 5)  # no Content-Length: the limit counts what comes
    answer = await Server(receive=receive).run(app, make_scope(method="POST"))
    assert answer.sent[0]["status"] == 413
    assert answer.body == b"Content Too Large"
    assert receive.bytes_given == 12  # nothing read past the limit
    assert log == []


@pytest.mark.anyio
async def test_base_http_middleware_client_gone_mid_body_is_client_disconnect_in_dispatch() -> None:
    seen: list[str] = []

    async def endpoint(request: Request) -> Response:
        seen.append("endpoint")  # pragma: no cover - never reached
        return PlainTextResponse("ok")  # pragma: no cover

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            await request.body()
        except ClientDisconnect:
            seen.append("ClientDisconnect")
            raise
        return await call_next(request)  # pragma: no cover

    receive = StreamedBody([b"part"], empty_final_chunk=True)  # then a disconnect
    app = BaseHTTPMiddleware(Route("/", endpoint, methods=["POST"]), dispatch)
    with pytest.raises(ClientDisconnect):
        await Server(receive=without_final_chunk(receive)).run(app, make_scope(method="POST"))
    assert seen == ["ClientDisconnect"]


@pytest.mark.anyio
async def test_base_http_middleware_client_gone_mid_body_raises_from_call_next() -> None:
    caught: list[str] = []

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            return await call_next(request)
        except ClientDisconnect:
            caught.append("ClientDisconnect")
            raise

    receive = without_final_chunk(StreamedBody([b"part"], empty_final_chunk=True))
    app = BaseHTTPMiddleware(Route("/", echo_body, methods=["POST"]), dispatch)
    with pytest.raises(ClientDisconnect):
        await Server(receive=receive).run(app, make_scope(method="POST"))
    assert caught == ["ClientDisconnect"]


@pytest.mark.anyio
async def test_base_http_middleware_app_sending_after_its_response_ends_fails_not_hangs() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await send({"type": "http.response.body", "body": b"one message too many"})

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)

    server = Server(http_request(), then="wait")
    with pytest.raises(anyio.BrokenResourceError):
        await server.run(BaseHTTPMiddleware(app, dispatch), make_scope())
    assert server.body == b"done"  # the response went out whole before the error


@pytest.mark.anyio
async def test_base_http_middleware_relays_every_message_of_a_long_stream_in_order() -> None:
    chunks = [b"%d," % number for number in range(300)]

    async def numbers() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)

    server = Server(http_request(), then="wait")
    await server.run(BaseHTTPMiddleware(StreamingResponse(numbers()), dispatch), make_scope())
    assert server.body == b"".join(chunks)


# ==== Application ====


class SendLog:
    """Pure ASGI middleware logging "response sent" once the last body message has gone out."""

    def __init__(self, app: ASGIApp, log: list[str]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def logging_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.log.append("response sent")

        await self.app(scope, receive, logging_send)


class CountingMiddleware:
    """Pure ASGI middleware counting how many times it is constructed."""

    instances = 0

    def __init__(self, app: ASGIApp) -> None:
        type(self).instances += 1
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture
def counting_middleware() -> type[CountingMiddleware]:
    class Counting(CountingMiddleware):
        instances = 0

    return Counting


def test_middleware_stack_is_built_lazily(counting_middleware: type[CountingMiddleware]) -> None:
    app = Starlite(
        routes=[Route("/", text_endpoint("ok"))], middleware=[Middleware(counting_middleware)]
    )
    assert app.middleware_stack is None
    assert counting_middleware.instances == 0
    TestClient(app).get("/")
    assert app.middleware_stack is not None
    assert counting_middleware.instances == 1


def test_middleware_stack_is_built_once_across_requests(
    backend: Backend, counting_middleware: type[CountingMiddleware]
) -> None:
    app = Starlite(
        routes=[Route("/", text_endpoint("ok"))], middleware=[Middleware(counting_middleware)]
    )
    client = TestClient(app, backend=backend)
    for _ in range(3):
        assert client.get("/").text == "ok"
    with TestClient(app, backend=backend) as lifespan_client:
        lifespan_client.get("/")
        lifespan_client.get("/")
    assert counting_middleware.instances == 1


def test_middleware_stack_is_built_once_for_route_middleware(
    counting_middleware: type[CountingMiddleware],
) -> None:
    route = Route("/", text_endpoint("ok"), middleware=[Middleware(counting_middleware)])
    client = TestClient(Starlite(routes=[route]))
    for _ in range(3):
        client.get("/")
    assert counting_middleware.instances == 1


def test_build_middleware_stack_wraps_server_errors_user_middleware_exceptions_router() -> None:
    app = Starlite(middleware=[Middleware(AddHeader, "user")])
    stack = app.build_middleware_stack()
    assert isinstance(stack, ServerErrorMiddleware)
    user = stack.app
    assert isinstance(user, AddHeader)
    assert isinstance(user.app, ExceptionMiddleware)
    assert isinstance(user.app.app, Router)


def test_user_middleware_lists_the_given_then_added_middleware_outermost_first() -> None:
    given = Middleware(AddHeader, "given")
    app = Starlite(middleware=[given])
    app.add_middleware(AddHeader, "added")
    assert [list(m) for m in app.user_middleware] == [
        [AddHeader, ("added",), {}],
        [AddHeader, ("given",), {}],
    ]


def test_add_middleware_after_a_request_raises() -> None:
    app = Starlite(routes=[Route("/", text_endpoint("ok"))])
    TestClient(app).get("/")
    with pytest.raises(
        RuntimeError, match="Cannot add middleware after an application has started"
    ):
        app.add_middleware(AddHeader)


def test_add_middleware_after_lifespan_start_up_raises() -> None:
    app = Starlite()
    with TestClient(app), pytest.raises(RuntimeError, match="after an application has started"):
        app.add_middleware(AddHeader)


def test_add_middleware_before_start_is_used() -> None:
    app = Starlite(routes=[Route("/", text_endpoint("ok"))])
    app.add_middleware(AddHeader, value="added")
    assert TestClient(app).get("/").headers["x-middleware"] == "added"


@pytest.mark.parametrize(
    ("key", "path", "endpoint"),
    [
        (Boom, "/", raise_boom),
        (418, "/", raising_endpoint(HTTPException(418))),
        (404, "/elsewhere", text_endpoint("elsewhere")),
    ],
)
def test_add_exception_handler_registers_by_class_or_status(
    key: int | type[Exception], path: str, endpoint: Callable[[Request], Response]
) -> None:
    app = Starlite(routes=[Route(path, endpoint)])
    app.add_exception_handler(key, async_text_handler("added handler", 299))
    response = TestClient(app).get("/")
    assert (response.status_code, response.text) == (299, "added handler")


def test_add_exception_handler_for_500_is_the_error_handler() -> None:
    app = error_app()
    app.add_exception_handler(500, text_handler("added 500", 500))
    assert TestClient(app, raise_server_exceptions=False).get("/").text == "added 500"


def test_add_route_serves_the_endpoint(backend: Backend) -> None:
    app = Starlite()
    app.add_route("/hello", text_endpoint("hello"))
    assert TestClient(app, backend=backend).get("/hello").text == "hello"


def test_add_route_with_methods_and_name() -> None:
    app = Starlite()
    app.add_route("/submit", text_endpoint("submitted"), methods=["POST"], name="submit")
    client = TestClient(app)
    assert client.post("/submit").text == "submitted"
    rejected = client.get("/submit")
    assert rejected.status_code == 405
    assert allow_set(rejected) == {"POST"}
    assert app.url_path_for("submit") == "/submit"


def test_add_route_appends_to_routes() -> None:
    first = Route("/first", text_endpoint("first"))
    app = Starlite(routes=[first])
    app.add_route("/second", text_endpoint("second"))
    assert len(app.routes) == 2
    assert app.routes[0] is first
    assert isinstance(app.routes[1], Route)
    assert app.routes[1].path == "/second"


def test_mount_serves_an_asgi_app_with_root_path_extended(backend: Backend) -> None:
    async def sub_app(scope: Scope, receive: Receive, send: Send) -> None:
        data = {"path": scope["path"], "root_path": scope["root_path"]}
        await JSONResponse(data)(scope, receive, send)

    app = Starlite()
    app.mount("/sub", sub_app, name="sub")
    response = TestClient(app, backend=backend).get("/sub/a/b")
    assert response.json() == {"path": "/sub/a/b", "root_path": "/sub"}
    assert app.url_path_for("sub", path="/a/b") == "/sub/a/b"


def test_mount_serves_a_sub_application() -> None:
    sub = Starlite(routes=[Route("/users", text_endpoint("sub users"))])
    app = Starlite()
    app.mount("/v1", sub)
    client = TestClient(app)
    assert client.get("/v1/users").text == "sub users"
    assert client.get("/v1/missing").status_code == 404


def test_host_routes_by_the_host_header() -> None:
    app = Starlite()
    app.host("api.example.org", Router(routes=[Route("/", text_endpoint("api"))]), name="api")
    app.add_route("/", text_endpoint("main site"))
    client = TestClient(app)
    assert client.get("/", headers={"host": "api.example.org"}).text == "api"
    assert client.get("/").text == "main site"


def test_url_path_for_builds_a_url_path() -> None:
    app = Starlite(routes=[Route("/users/{user_id:int}", text_endpoint("user"), name="user")])
    path = app.url_path_for("user", user_id=42)
    assert isinstance(path, URLPath)
    assert path == "/users/42"


def test_url_path_for_through_a_named_mount() -> None:
    app = Starlite(
        routes=[Mount("/api", name="api", routes=[Route("/items/{id}", Items, name="item")])]
    )
    assert app.url_path_for("api:item", id="x1") == "/api/items/x1"


@pytest.mark.parametrize(
    ("name", "params"),
    [("missing", {}), ("user", {}), ("user", {"user_id": 1, "extra": 2})],
)
def test_url_path_for_without_a_match_raises_no_match_found(
    name: str, params: dict[str, Any]
) -> None:
    app = Starlite(routes=[Route("/users/{user_id:int}", text_endpoint("user"), name="user")])
    with pytest.raises(NoMatchFound):
        app.url_path_for(name, **params)


def test_state_is_a_state_shared_through_request_app() -> None:
    def endpoint(request: Request) -> Response:
        return PlainTextResponse(request.app.state.greeting)

    app = Starlite(routes=[Route("/", endpoint)])
    assert isinstance(app.state, State)
    app.state.greeting = "set on the app"
    assert TestClient(app).get("/").text == "set on the app"


def test_routes_are_the_given_routes() -> None:
    routes = [Route("/a", text_endpoint("a")), Mount("/b", app=PlainTextResponse("b"))]
    app = Starlite(routes=routes)
    assert len(app.routes) == 2
    assert all(got is given for got, given in zip(app.routes, routes, strict=True))


def test_routes_default_to_empty() -> None:
    assert list(Starlite().routes) == []


def test_app_without_routes_answers_404() -> None:
    response = TestClient(Starlite()).get("/")
    assert (response.status_code, response.text) == (404, "Not Found")


@pytest.mark.parametrize("debug", [False, True])
def test_debug_is_readable(debug: bool) -> None:
    assert Starlite(debug=debug).debug is debug


def test_debug_defaults_to_false() -> None:
    assert Starlite().debug is False


def test_debug_set_before_the_first_request_switches_the_error_page() -> None:
    app = error_app()
    app.debug = True
    assert app.debug is True
    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert "Boom: kaboom-detail" in response.text


def test_scope_app_and_request_app_are_the_app(backend: Backend) -> None:
    seen: list[Any] = []

    def endpoint(request: Request) -> Response:
        seen.extend([request.scope["app"], request.app])
        return PlainTextResponse("ok")

    app = Starlite(routes=[Route("/", endpoint)])
    TestClient(app, backend=backend).get("/")
    assert seen == [app, app]
    assert all(got is app for got in seen)


def test_scope_has_the_matched_route_and_endpoint() -> None:
    seen: dict[str, Any] = {}

    def endpoint(request: Request) -> Response:
        seen.update(route=request.scope["route"], endpoint=request.scope["endpoint"])
        return PlainTextResponse("ok")

    route = Route("/", endpoint)
    TestClient(Starlite(routes=[route])).get("/")
    assert seen["route"] is route
    assert seen["endpoint"] is endpoint


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://testserver", "http://testserver/users/7"),
        ("https://example.org", "https://example.org/users/7"),
        ("http://example.org:8080", "http://example.org:8080/users/7"),
    ],
)
def test_request_url_for_is_an_absolute_url(base_url: str, expected: str) -> None:
    def endpoint(request: Request) -> Response:
        url = request.url_for("user", user_id=7)
        assert isinstance(url, URL)
        return PlainTextResponse(str(url))

    app = Starlite(
        routes=[
            Route("/", endpoint),
            Route("/users/{user_id:int}", text_endpoint("user"), name="user"),
        ]
    )
    assert TestClient(app, base_url=base_url).get("/").text == expected


def test_request_url_for_through_a_mount() -> None:
    def endpoint(request: Request) -> Response:
        return PlainTextResponse(str(request.url_for("api:item", id="abc")))

    app = Starlite(
        routes=[
            Route("/", endpoint),
            Mount("/api", name="api", routes=[Route("/items/{id}", Items, name="item")]),
        ]
    )
    assert TestClient(app).get("/").text == "http://testserver/api/items/abc"


def test_request_url_for_an_unknown_name_raises_no_match_found() -> None:
    def endpoint(request: Request) -> Response:
        request.url_for("nope")
        return PlainTextResponse("unreachable")

    with pytest.raises(NoMatchFound):
        TestClient(Starlite(routes=[Route("/", endpoint)])).get("/")


def test_request_url_for_outside_an_app_or_router_raises_runtime_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        Request(scope, receive).url_for("index")

    message = (
        "The `url_for` method can only be used inside a Starlette application or with a router."
    )
    with pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"):
        TestClient(app).get("/")


# ---- Lifespan ----


def state_endpoint(request: Request) -> Response:
    """Answers the lifespan state's "value" and "items" as this request sees them."""
    return JSONResponse({"value": request.state.value, "items": request.state.items})


def rebind_endpoint(request: Request) -> Response:
    request.state.value = "rebound by a request"
    request.state.items = ["replaced"]
    return PlainTextResponse("rebound")


def mutate_endpoint(request: Request) -> Response:
    request.state.items.append("appended")
    return PlainTextResponse("mutated")


def app_with_lifespan(
    events: list[str] | None = None, state: dict[str, Any] | None = None
) -> Starlite:
    """An app whose lifespan logs start-up and shut-down and yields `state`."""
    log = [] if events is None else events

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[dict[str, Any] | None]:
        log.append("startup")
        yield state
        log.append("shutdown")

    def endpoint(request: Request) -> Response:
        log.append("request")
        return PlainTextResponse("ok")

    return Starlite(
        routes=[
            Route("/", endpoint),
            Route("/state", state_endpoint),
            Route("/rebind", rebind_endpoint),
            Route("/mutate", mutate_endpoint),
        ],
        lifespan=lifespan,
    )


def test_lifespan_runs_around_the_requests(backend: Backend) -> None:
    events: list[str] = []
    with TestClient(app_with_lifespan(events), backend=backend) as client:
        assert events == ["startup"]
        client.get("/")
    assert events == ["startup", "request", "shutdown"]


def test_lifespan_factory_is_called_with_the_app() -> None:
    received: list[Any] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[None]:
        received.append(app)
        yield

    app = Starlite(lifespan=lifespan)
    with TestClient(app):
        pass
    assert len(received) == 1
    assert received[0] is app


def test_lifespan_state_is_readable_as_request_state(backend: Backend) -> None:
    app = app_with_lifespan(state={"value": "from lifespan", "items": []})
    with TestClient(app, backend=backend) as client:
        assert client.get("/state").json() == {"value": "from lifespan", "items": []}


def test_lifespan_state_rebinding_in_a_request_does_not_leak(backend: Backend) -> None:
    app = app_with_lifespan(state={"value": "original", "items": []})
    with TestClient(app, backend=backend) as client:
        assert client.get("/rebind").text == "rebound"
        assert client.get("/state").json() == {"value": "original", "items": []}


def test_lifespan_state_is_copied_shallowly(backend: Backend) -> None:
    # Each request gets its own mapping, but the values in it are the lifespan's own objects.
    items: list[str] = []
    app = app_with_lifespan(state={"value": "original", "items": items})
    with TestClient(app, backend=backend) as client:
        client.get("/mutate")
        assert client.get("/state").json() == {"value": "original", "items": ["appended"]}
    assert items == ["appended"]


def test_lifespan_yielding_none_leaves_requests_working() -> None:
    events: list[str] = []
    with TestClient(app_with_lifespan(events, state=None)) as client:
        assert client.get("/").text == "ok"
    assert events == ["startup", "request", "shutdown"]


class StartupError(Exception):
    pass


class ShutdownError(Exception):
    pass


@contextlib.asynccontextmanager
async def failing_startup(app: Starlite) -> AsyncIterator[None]:
    raise StartupError("database unreachable")
    yield  # pragma: no cover


@contextlib.asynccontextmanager
async def failing_shutdown(app: Starlite) -> AsyncIterator[None]:
    yield
    raise ShutdownError("could not flush")


def test_lifespan_startup_failure_raises_in_the_test(backend: Backend) -> None:
    entered = False
    with (
        pytest.raises(StartupError, match="database unreachable"),
        TestClient(Starlite(lifespan=failing_startup), backend=backend),
    ):
        entered = True  # pragma: no cover
    assert not entered


def test_lifespan_shutdown_failure_raises_in_the_test(backend: Backend) -> None:
    log: list[str] = []
    app = Starlite(routes=[Route("/", text_endpoint("ok"))], lifespan=failing_shutdown)
    app.add_middleware(SendLog, log)
    client = TestClient(app, backend=backend)
    with pytest.raises(ShutdownError, match="could not flush"), client:
        client.get("/")
    assert log == ["response sent"]


def test_app_without_lifespan_starts_and_stops(backend: Backend) -> None:
    app = Starlite(routes=[Route("/", text_endpoint("ok"))])
    with TestClient(app, backend=backend) as client:
        assert client.get("/").text == "ok"


def lifespan_scope() -> Scope:
    """A lifespan scope as a server gives it, with a state for the app to fill."""
    return {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}


STARTUP_THEN_SHUTDOWN: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]


@pytest.mark.anyio
async def test_lifespan_protocol_without_lifespan_completes_both_events() -> None:
    server = await Server(*STARTUP_THEN_SHUTDOWN).run(Starlite(), lifespan_scope())
    assert server.sent_types == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


@pytest.mark.anyio
async def test_lifespan_protocol_puts_the_yielded_state_in_the_scope() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": "ready"}

    scope = lifespan_scope()
    server = await Server(*STARTUP_THEN_SHUTDOWN).run(Starlite(lifespan=lifespan), scope)
    assert scope["state"] == {"pool": "ready"}
    assert server.sent_types[-1] == "lifespan.shutdown.complete"


@pytest.mark.anyio
async def test_lifespan_state_on_a_server_without_state_fails_startup_in_starlettes_words() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[dict[str, Any]]:
        yield {"pool": "ready"}

    server = Server({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}  # no "state": an older server
    message = 'The server does not support "state" in the lifespan scope.'
    with pytest.raises(RuntimeError, match=re.escape(message)):
        await server.run(Starlite(lifespan=lifespan), scope)
    assert server.sent_types == ["lifespan.startup.failed"]


@pytest.mark.anyio
async def test_lifespan_protocol_startup_failure_sends_failed_with_the_message() -> None:
    server = Server({"type": "lifespan.startup"})
    with pytest.raises(StartupError):
        await server.run(Starlite(lifespan=failing_startup), lifespan_scope())
    assert server.sent_types == ["lifespan.startup.failed"]
    assert "database unreachable" in server.sent[0]["message"]


@pytest.mark.anyio
async def test_lifespan_protocol_shutdown_failure_sends_failed_with_the_message() -> None:
    server = Server(*STARTUP_THEN_SHUTDOWN)
    with pytest.raises(ShutdownError):
        await server.run(Starlite(lifespan=failing_shutdown), lifespan_scope())
    assert server.sent_types == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "could not flush" in server.sent[1]["message"]


# ---- Background tasks through the app ----


def test_background_task_runs_with_its_arguments(backend: Backend) -> None:
    calls: list[tuple[Any, ...]] = []

    def record(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))

    def endpoint(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(record, 1, "two", three=3))

    response = TestClient(Starlite(routes=[Route("/", endpoint)]), backend=backend).get("/")
    assert response.text == "ok"
    assert calls == [((1, "two"), {"three": 3})]


@pytest.mark.parametrize("task_kind", ["sync", "async"])
def test_endpoint_background_task_runs_after_the_response_is_sent(
    backend: Backend, task_kind: str
) -> None:
    log: list[str] = []

    def sync_task() -> None:
        log.append("task")

    async def async_task() -> None:
        log.append("task")

    task = sync_task if task_kind == "sync" else async_task

    def endpoint(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(task))

    app = Starlite(routes=[Route("/", endpoint)], middleware=[Middleware(SendLog, log)])
    TestClient(app, backend=backend).get("/")
    assert log == ["response sent", "task"]


def test_sync_background_task_runs_in_a_worker_thread(backend: Backend) -> None:
    where: list[bool] = []

    def task(request: Request) -> None:
        where.append(in_worker_thread(request))

    async def async_task(request: Request) -> None:
        where.append(in_worker_thread(request))

    async def endpoint(request: Request) -> Response:
        tasks = BackgroundTasks()
        tasks.add_task(task, request)
        tasks.add_task(async_task, request)
        return PlainTextResponse("ok", background=tasks)

    app = Starlite(routes=[Route("/", endpoint)], middleware=[Middleware(LoopThread)])
    TestClient(app, backend=backend).get("/")
    assert where == [True, False]


def test_background_tasks_run_in_order(backend: Backend) -> None:
    log: list[str] = []

    def sync_step(name: str) -> None:
        log.append(name)

    async def async_step(name: str) -> None:
        log.append(name)

    def endpoint(request: Request) -> Response:
        tasks = BackgroundTasks()
        tasks.add_task(sync_step, "one")
        tasks.add_task(async_step, "two")
        tasks.add_task(sync_step, name="three")
        tasks.add_task(async_step, name="four")
        return JSONResponse({"queued": 4}, background=tasks)

    app = Starlite(routes=[Route("/", endpoint)], middleware=[Middleware(SendLog, log)])
    assert TestClient(app, backend=backend).get("/").json() == {"queued": 4}
    assert log == ["response sent", "one", "two", "three", "four"]


def test_background_tasks_built_from_a_list_run_in_order() -> None:
    log: list[str] = []

    def endpoint(request: Request) -> Response:
        tasks = BackgroundTasks([BackgroundTask(log.append, "a"), BackgroundTask(log.append, "b")])
        return PlainTextResponse("ok", background=tasks)

    TestClient(Starlite(routes=[Route("/", endpoint)])).get("/")
    assert log == ["a", "b"]


def test_background_task_on_a_streaming_response_runs_after_the_stream() -> None:
    log: list[str] = []

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"a", b"b"):
            log.append(f"chunk {chunk.decode()}")
            yield chunk

    def endpoint(request: Request) -> Response:
        return StreamingResponse(chunks(), background=BackgroundTask(log.append, "task"))

    response = TestClient(Starlite(routes=[Route("/", endpoint)])).get("/")
    assert response.text == "ab"
    assert log == ["chunk a", "chunk b", "task"]


def test_background_task_on_an_exception_handlers_response_runs() -> None:
    log: list[str] = []

    def handler(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("handled", background=BackgroundTask(log.append, "cleanup"))

    TestClient(error_app(exception_handlers={Boom: handler})).get("/")
    assert log == ["cleanup"]


class TaskError(Exception):
    pass


def failing_tasks_app(log: list[str], task_kind: str = "sync") -> Starlite:
    """An app whose "/" answers "done", then runs a task that fails and one that never runs."""

    def sync_fail() -> None:
        log.append("failing task")
        raise TaskError("task failed")

    async def async_fail() -> None:
        log.append("failing task")
        raise TaskError("task failed")

    def endpoint(request: Request) -> Response:
        tasks = BackgroundTasks()
        tasks.add_task(sync_fail if task_kind == "sync" else async_fail)
        tasks.add_task(log.append, "later task")
        return PlainTextResponse("done", background=tasks)

    return Starlite(routes=[Route("/", endpoint)], middleware=[Middleware(SendLog, log)])


@pytest.mark.parametrize("task_kind", ["sync", "async"])
def test_background_task_exception_reaches_the_test_after_the_response(
    backend: Backend, task_kind: str
) -> None:
    log: list[str] = []
    client = TestClient(failing_tasks_app(log, task_kind), backend=backend)
    with pytest.raises(TaskError, match="task failed"):
        client.get("/")
    assert log == ["response sent", "failing task"]


def test_background_task_exception_leaves_the_sent_response_intact(backend: Backend) -> None:
    log: list[str] = []
    client = TestClient(failing_tasks_app(log), raise_server_exceptions=False, backend=backend)
    response = client.get("/")
    assert (response.status_code, response.text) == (200, "done")
    assert log == ["response sent", "failing task"]


# ==== Config ====


def write_env_file(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """A .env file in `tmp_path` holding `text` (dedented), encoded with `encoding`."""
    path = tmp_path / ".env"
    path.write_bytes(textwrap.dedent(text).encode(encoding))
    return path


def unique_variable() -> str:
    """An environment variable name no other test reads: `starlite.environ` remembers forever
    which names have been read."""
    return f"STARLITE_TEST_{uuid.uuid4().hex.upper()}"


# Lookups, defaults and casts


def test_config_reads_a_setting_from_the_given_environ() -> None:
    config = Config(environ={"DATABASE_URL": "sqlite://"})
    assert config("DATABASE_URL") == "sqlite://"
    assert config.get("DATABASE_URL") == "sqlite://"
    assert config("DATABASE_URL", cast=str) == "sqlite://"


def test_config_takes_its_arguments_in_starlettes_order(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "APP_NAME=caf\xe9\n", encoding="latin-1")
    positional = Config(path, {"APP_PORT": "80"}, "APP_", "latin-1")
    keywords = Config(
        env_file=path, environ={"APP_PORT": "80"}, env_prefix="APP_", encoding="latin-1"
    )
    for config in (positional, keywords):
        assert config("NAME") == "caf\xe9"
        assert config("PORT", cast=int) == 80


def test_config_casts_the_setting_with_the_given_callable() -> None:
    config = Config(environ={"PORT": "8000", "RATIO": "0.5", "NAMES": "a b"})
    assert config("PORT", cast=int) == 8000
    assert config("RATIO", cast=float) == 0.5
    assert config("NAMES", cast=str.split) == ["a", "b"]
    assert config.get("PORT", int) == 8000


def test_config_setting_that_is_set_wins_over_the_default_even_when_empty() -> None:
    config = Config(environ={"PORT": "8000", "NAME": ""})
    assert config("PORT", cast=int, default=1) == 8000
    assert config("NAME", default="fallback") == ""


def test_config_default_is_returned_and_cast_when_the_key_is_missing() -> None:
    config = Config(environ={})
    assert config("PORT", default="8000") == "8000"
    assert config("PORT", cast=int, default="8000") == 8000
    assert config.get("PORT", int, "8000") == 8000
    assert config("DEBUG", cast=bool, default="yes") is True


def test_config_default_none_is_returned_without_casting() -> None:
    calls: list[Any] = []

    def recording_cast(value: Any) -> str:
        calls.append(value)
        return "cast"

    config = Config(environ={})
    assert config("PORT", cast=int, default=None) is None
    assert config("DEBUG", cast=bool, default=None) is None
    assert config("NAME", default=None) is None
    assert config("OTHER", cast=recording_cast, default=None) is None
    assert calls == []


def test_config_default_that_fails_its_cast_raises_value_error_naming_the_key() -> None:
    config = Config(environ={})
    with pytest.raises(ValueError, match="'PORT'"):
        config("PORT", cast=int, default="eighty")


@pytest.mark.parametrize("env_prefix", ["", "APP_"])
def test_config_missing_key_without_default_raises_key_error_naming_it(env_prefix: str) -> None:
    config = Config(environ={"OTHER": "1"}, env_prefix=env_prefix)
    with pytest.raises(KeyError, match=f"'{env_prefix}SECRET_KEY'"):
        config("SECRET_KEY")
    with pytest.raises(KeyError, match=f"'{env_prefix}SECRET_KEY'"):
        config.get("SECRET_KEY", cast=int)


# bool


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("Yes", True),
        ("on", True),
        ("ON", True),
        ("  true  ", True),
        ("\tyes\n", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("NO", False),
        ("off", False),
        ("Off", False),
        (" 0 ", False),
        ("\toff\n", False),
    ],
)
def test_config_bool_accepts_the_usual_spellings(value: str, expected: bool) -> None:
    config = Config(environ={"DEBUG": value})
    assert config("DEBUG", cast=bool) is expected
    assert config("DEBUG", cast=bool, default=not expected) is expected


@pytest.mark.parametrize(
    "value", ["", " ", "maybe", "2", "-1", "truthy", "t", "y", "n", "nope", "o n", "true!"]
)
def test_config_bool_rejects_other_strings_with_a_value_error_naming_the_key(value: str) -> None:
    config = Config(environ={"DEBUG_MODE": value})
    with pytest.raises(ValueError, match="'DEBUG_MODE'"):
        config("DEBUG_MODE", cast=bool)
    with pytest.raises(ValueError, match="'DEBUG_MODE'"):
        config("DEBUG_MODE", cast=bool, default=True)


def test_config_bool_error_does_not_show_the_value() -> None:
    config = Config(environ={"FEATURE_FLAG": "hunter2-not-a-bool"})
    with pytest.raises(ValueError, match="'FEATURE_FLAG'") as info:
        config("FEATURE_FLAG", cast=bool)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("default", "expected"), [(True, True), (False, False), (1, True), (0, False), ([], False)]
)
def test_config_bool_default_that_is_not_a_string_goes_through_bool(
    default: Any, expected: bool
) -> None:
    config = Config(environ={})
    assert config("DEBUG", cast=bool, default=default) is expected


# Cast errors


def test_config_failed_int_cast_names_the_key_and_cast_but_not_the_value() -> None:
    config = Config(environ={"PORT": "abc-hunter2"})
    with pytest.raises(ValueError, match="'PORT'") as info:
        config("PORT", cast=int)
    assert "int" in str(info.value)
    assert "abc-hunter2" not in str(info.value)


@pytest.mark.parametrize("error", [ValueError, TypeError])
def test_config_custom_cast_error_becomes_value_error_naming_key_and_cast(
    error: type[Exception],
) -> None:
    def parse_token(value: str) -> str:
        raise error(f"bad token {value}")

    config = Config(environ={"API_TOKEN": "tok-hunter2"})
    with pytest.raises(ValueError, match="'API_TOKEN'") as info:
        config("API_TOKEN", cast=parse_token)
    assert type(info.value) is ValueError
    assert "parse_token" in str(info.value)
    assert "tok-hunter2" not in str(info.value)


def test_config_cast_without_a_name_still_raises_value_error_naming_the_key() -> None:
    config = Config(environ={"MASK": "zz"})
    assert Config(environ={"MASK": "ff"})("MASK", cast=functools.partial(int, base=16)) == 255
    with pytest.raises(ValueError, match="'MASK'"):
        config("MASK", cast=functools.partial(int, base=16))


def test_config_cast_errors_other_than_value_and_type_errors_propagate() -> None:
    def lookup(value: str) -> int:
        return {"a": 1}[value]

    config = Config(environ={"CHOICE": "b"})
    with pytest.raises(KeyError):
        config("CHOICE", cast=lookup)


# Secret and CommaSeparatedStrings as casts


def test_config_secret_cast_hides_the_value_from_every_repr() -> None:
    config = Config(environ={"API_KEY": "hunter2-api-key"})
    api_key = config("API_KEY", cast=Secret)
    assert isinstance(api_key, Secret)
    assert str(api_key) == "hunter2-api-key"
    assert f"{api_key}" == "hunter2-api-key"
    for shown in (
        repr(api_key),
        f"{api_key!r}",
        repr([api_key]),
        repr({"key": api_key}),
        repr((api_key,)),
        str([api_key]),
    ):
        assert "hunter2" not in shown
    assert "Secret(" in repr(api_key)


def test_config_secret_cast_applies_to_file_values_and_defaults(tmp_path: Path) -> None:
    config = Config(write_env_file(tmp_path, "API_KEY='from-file'\n"), environ={})
    assert str(config("API_KEY", cast=Secret)) == "from-file"
    fallback = config("OTHER_KEY", cast=Secret, default="from-default")
    assert isinstance(fallback, Secret)
    assert str(fallback) == "from-default"
    assert "from-default" not in repr(fallback)


def test_config_comma_separated_strings_cast_splits_the_setting(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, 'HOSTS="example.org, *.example.org"\n')
    config = Config(path, environ={"ORIGINS": "a.com, b.com,'c, d'"})
    origins = config("ORIGINS", cast=CommaSeparatedStrings)
    assert isinstance(origins, CommaSeparatedStrings)
    assert list(origins) == ["a.com", "b.com", "c, d"]
    assert list(config("HOSTS", cast=CommaSeparatedStrings)) == ["example.org", "*.example.org"]
    assert list(config("EMPTY", cast=CommaSeparatedStrings, default="")) == []
    assert list(config("LISTED", cast=CommaSeparatedStrings, default=["x", "y"])) == ["x", "y"]


# The .env file


def test_config_env_file_skips_comments_and_blank_lines_and_allows_export(tmp_path: Path) -> None:
    path = write_env_file(
        tmp_path,
        """\
        # A comment without an equals sign
        # COMMENTED=out

           # an indented comment
        export EXPORTED=1
        PLAIN=2
        export=3
        """,
    )
    config = Config(path, environ={})
    assert config.file_values == {"EXPORTED": "1", "PLAIN": "2", "export": "3"}
    assert config("EXPORTED") == "1"
    assert config("export") == "3"
    with pytest.raises(KeyError, match="COMMENTED"):
        config("COMMENTED")


def test_config_env_file_strips_spaces_around_keys_equals_and_values(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "A = 1\n  B=  two words  \nC\t=\tthree\nexport  D = 4\n E=\n")
    config = Config(path, environ={})
    assert config.file_values == {"A": "1", "B": "two words", "C": "three", "D": "4", "E": ""}


def test_config_env_file_accepts_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\r\nB='two'\r\n\r\n# note\r\nC=3")
    assert Config(path, environ={}).file_values == {"A": "1", "B": "two", "C": "3"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"a"', "a"),
        ("'a'", "a"),
        ("\"a'", "\"a'"),
        ("'a\"", "'a\""),
        ('""', ""),
        ("''", ""),
        ("\"'a'\"", "'a'"),
        ("'\"a\"'", '"a"'),
        ('"a"b"', 'a"b'),
        ('"a', '"a'),
        ('a"', 'a"'),
        ('"', '"'),
        ("'", "'"),
        ('"  spaced  "', "  spaced  "),
        ('"with # hash"', "with # hash"),
        ('"a" # comment', '"a" # comment'),
        ("it's", "it's"),
    ],
)
def test_config_env_file_strips_one_pair_of_matching_quotes(
    tmp_path: Path, raw: str, expected: str
) -> None:
    config = Config(write_env_file(tmp_path, f"VALUE={raw}\n"), environ={})
    assert config("VALUE") == expected


def test_config_env_file_keeps_equals_and_hash_signs_in_values(tmp_path: Path) -> None:
    path = write_env_file(
        tmp_path,
        """\
        DATABASE_URL=postgres://user:p=ss@host/db?sslmode=require
        COLOR=#fff
        NOTE=keep # this too
        TOKEN=abc==
        """,
    )
    config = Config(path, environ={})
    assert config("DATABASE_URL") == "postgres://user:p=ss@host/db?sslmode=require"
    assert config("COLOR") == "#fff"
    assert config("NOTE") == "keep # this too"
    assert config("TOKEN") == "abc=="


def test_config_env_file_later_duplicate_key_wins(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "MODE=first\nOTHER=x\nMODE=second\nexport MODE='third'\n")
    assert Config(path, environ={})("MODE") == "third"


def test_config_env_file_is_read_with_the_given_encoding(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "GREETING=caf\xe9 \xfcber\n", encoding="latin-1")
    assert Config(path, environ={}, encoding="latin-1")("GREETING") == "caf\xe9 \xfcber"
    with pytest.raises(UnicodeDecodeError):
        Config(path, environ={})


def test_config_env_file_is_utf8_by_default(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "GREETING=caf\xe9 \u2603\n")
    assert Config(path, environ={})("GREETING") == "caf\xe9 \u2603"


def test_config_env_file_may_be_a_str_or_a_path(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "A=1\n")
    assert Config(str(path), environ={})("A", cast=int) == 1
    assert Config(path, environ={})("A", cast=int) == 1


def test_config_env_file_values_are_cast(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "PORT=8000\nDEBUG=yes\nRATIO = '0.25'\n")
    config = Config(path, environ={})
    assert config("PORT", cast=int) == 8000
    assert config("DEBUG", cast=bool) is True
    assert config("RATIO", cast=float) == 0.25


def test_config_env_file_is_read_once_at_construction(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "MODE=before\n")
    config = Config(path, environ={})
    path.write_text("MODE=after\n")
    assert config("MODE") == "before"
    path.unlink()
    assert config("MODE") == "before"


def test_config_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "MODE=file\nONLY_FILE=file\n")
    config = Config(path, environ={"MODE": "environ", "ONLY_ENV": "environ"})
    assert config("MODE") == "environ"
    assert config("ONLY_FILE") == "file"
    assert config("ONLY_ENV") == "environ"
    assert config("MODE", default="default") == "environ"
    assert config("ONLY_FILE", default="default") == "file"


def test_config_missing_env_file_warns_naming_it_and_still_reads_the_environ(
    tmp_path: Path,
) -> None:
    path = tmp_path / "missing.env"
    with pytest.warns(UserWarning, match=re.escape(str(path))) as record:
        config = Config(path, environ={"MODE": "environ"})
    assert [warning.filename for warning in record] == [__file__]
    assert config.file_values == {}
    assert config("MODE") == "environ"
    assert config("OTHER", default="x") == "x"


def test_config_env_file_that_is_a_directory_warns_as_missing(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=re.escape(str(tmp_path))):
        config = Config(tmp_path, environ={"MODE": "environ"})
    assert config("MODE") == "environ"


def test_config_without_env_file_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = Config(environ={"A": "1"})
    assert config("A") == "1"


def test_config_env_prefix_is_prepended_to_every_key(tmp_path: Path) -> None:
    path = write_env_file(tmp_path, "APP_FROM_FILE=file\nUNPREFIXED=file\nAPP_BOTH=file\n")
    config = Config(
        path,
        environ={"APP_FROM_ENV": "environ", "APP_BOTH": "environ", "PLAIN": "environ"},
        env_prefix="APP_",
    )
    assert config("FROM_ENV") == "environ"
    assert config("FROM_FILE") == "file"
    assert config("BOTH") == "environ"
    with pytest.raises(KeyError, match="'APP_UNPREFIXED'"):
        config("UNPREFIXED")
    with pytest.raises(KeyError, match="'APP_PLAIN'"):
        config("PLAIN")
    assert config("PLAIN", default="default") == "default"


@pytest.mark.parametrize(
    "line",
    [
        "hunter2secretline",
        "=hunter2secretvalue",
        "   =   hunter2secretvalue",
        "export hunter2secretline",
        "export =hunter2secretvalue",
    ],
)
def test_config_malformed_env_file_line_raises_naming_file_and_line_not_its_text(
    tmp_path: Path, line: str
) -> None:
    path = write_env_file(tmp_path, f"# settings\n\nGOOD=1\n{line}\nLATER=2\n")
    with pytest.raises(ValueError, match=re.escape(str(path))) as info:
        Config(path, environ={})
    message = str(info.value)
    assert re.search(r"\bline 4\b", message)
    assert "hunter2" not in message


# Environ


def test_environ_is_a_mutable_mapping_over_the_given_dict() -> None:
    backing = {"A": "1", "B": "2"}
    env = Environ(backing)
    assert isinstance(env, MutableMapping)
    assert env["A"] == "1"
    assert env.get("B") == "2"
    assert env.get("MISSING") is None
    assert "A" in env
    assert "MISSING" not in env
    assert sorted(env) == ["A", "B"]
    assert len(env) == 2
    with pytest.raises(KeyError):
        env["MISSING"]


def test_environ_sets_and_deletes_keys_not_yet_read() -> None:
    backing = {"A": "1", "B": "2"}
    env = Environ(backing)
    env["C"] = "3"
    env["A"] = "changed"
    del env["B"]
    assert backing == {"A": "changed", "C": "3"}
    assert len(env) == 2
    assert env["A"] == "changed"


@pytest.mark.parametrize("read", ["getitem", "get", "contains"])
def test_environ_refuses_to_set_or_delete_a_key_already_read(read: str) -> None:
    backing = {"SECRET_KEY": "old"}
    env = Environ(backing)
    if read == "getitem":
        _ = env["SECRET_KEY"]
    elif read == "get":
        env.get("SECRET_KEY")
    else:
        assert "SECRET_KEY" in env
    with pytest.raises(EnvironError, match="'SECRET_KEY'"):
        env["SECRET_KEY"] = "new"
    with pytest.raises(EnvironError, match="'SECRET_KEY'"):
        del env["SECRET_KEY"]
    assert backing == {"SECRET_KEY": "old"}
    env["OTHER"] = "fine"
    assert backing == {"SECRET_KEY": "old", "OTHER": "fine"}


def test_environ_refuses_to_set_a_key_config_looked_up_even_when_missing() -> None:
    backing = {"PORT": "80"}
    env = Environ(backing)
    config = Config(environ=env)
    assert config("PORT", cast=int) == 80
    assert config("DEBUG", cast=bool, default=False) is False
    with pytest.raises(EnvironError, match="'PORT'"):
        env["PORT"] = "81"
    with pytest.raises(EnvironError, match="'DEBUG'"):
        env["DEBUG"] = "true"
    assert backing == {"PORT": "80"}


def test_module_environ_is_an_environ_over_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_variable()
    monkeypatch.setenv(name, "from-os")
    assert isinstance(starlite.environ, Environ)
    assert name in list(starlite.environ)
    assert len(starlite.environ) == len(os.environ)
    starlite.environ[name] = "set-before-read"
    assert os.environ[name] == "set-before-read"
    assert starlite.environ[name] == "set-before-read"
    with pytest.raises(EnvironError, match=name):
        starlite.environ[name] = "set-after-read"
    assert os.environ[name] == "set-before-read"


def test_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_variable()
    monkeypatch.setenv(name, "from-os")
    assert Environ()[name] == "from-os"


def test_config_reads_the_module_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_variable()
    monkeypatch.setenv(name, "8080")
    config = Config()
    assert config.environ is starlite.environ
    assert config(name, cast=int) == 8080
    with pytest.raises(EnvironError, match=name):
        starlite.environ[name] = "9090"


# Typing

TYPED_CONFIG_USER = """\
from typing import assert_type

from starlite import CommaSeparatedStrings, Config, Secret

config = Config(environ={})
assert_type(config("A"), str)
assert_type(config("A", cast=int), int)
assert_type(config("A", default=None), str | None)
assert_type(config("A", default="x"), str)
assert_type(config("A", cast=bool, default=False), bool)
assert_type(config("A", cast=Secret), Secret)
assert_type(config("A", cast=CommaSeparatedStrings), CommaSeparatedStrings)
name: str = config("A")
port: int = config("A", cast=int)
maybe: str | None = config("A", default=None)
debug: bool = config("A", cast=bool, default=False)
wrong: int = config("A")  # type: ignore[assignment]
"""


def test_config_call_overloads_give_the_cast_type_under_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "typed_config_user.py"
    source.write_text(TYPED_CONFIG_USER)
    # The assert_type lines pass, and the `type: ignore[assignment]` line must hold that error:
    # --strict warns of unused ignores, so an ignore with nothing to ignore is an error too.
    result = run_mypy_strict(source, tmp_path / "mypy_cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout

    source.write_text(TYPED_CONFIG_USER.replace("  # type: ignore[assignment]", ""))
    result = run_mypy_strict(source, tmp_path / "mypy_cache")
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout
    wrong_line = TYPED_CONFIG_USER.splitlines().index(
        'wrong: int = config("A")  # type: ignore[assignment]'
    )
    assert f"{source.name}:{wrong_line + 1}: error: Incompatible types in assignment" in errors[0]
    assert '(expression has type "str", variable has type "int")' in errors[0]


# ==== Static files and templates ====


# Static files: a directory to serve, and secrets beside it that no request may reach.

SECRET = "TOP-SECRET-OUTSIDE"
# A fixed modification time with a fraction of a second: Last-Modified has whole seconds only.
MTIME = 1_700_000_000.75


@dataclass
class Tree:
    """`root` is served; `outside` holds files that must never be: `secret` (a file),
    `outside_dir` (a directory with a secret index.html), and an index.html beside them."""

    outside: Path
    root: Path
    secret: Path
    outside_dir: Path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (MTIME, MTIME))
    return path


def make_tree(base: Path) -> Tree:
    """The served directory `base/static` and secrets outside it, with symlinks both ways."""
    secret = write(base / "secret.txt", SECRET)
    write(base / "index.html", f"<p>{SECRET} index</p>")
    outside_dir = base / "outside"
    write(outside_dir / "secret.txt", SECRET + " in a directory")
    write(outside_dir / "index.html", f"<p>{SECRET} outside index</p>")
    # A sibling whose name starts with the served directory's: outside all the same.
    sibling = write(base / "static_sibling" / "secret.txt", SECRET + " in a sibling")
    root = base / "static"
    write(root / "a.txt", "hello static")
    write(root / "style.css", "body { color: red }")
    write(root / "script.js", "console.log('hi')")
    write(root / "bundle.bin", "export default 1")
    write(root / "sub" / "index.html", "<p>sub index</p>")
    write(root / "sub" / "page.txt", "sub page")
    (root / "empty").mkdir()
    (root / "link_in.txt").symlink_to("a.txt")  # inside, relative
    (root / "alias").symlink_to(root / "sub", target_is_directory=True)  # inside, absolute
    (root / "app.js").symlink_to("bundle.bin")
    (root / "link_out.txt").symlink_to(secret)
    (root / "dir_out").symlink_to(outside_dir, target_is_directory=True)
    (root / "up").symlink_to("..", target_is_directory=True)
    (root / "sibling.txt").symlink_to(sibling)
    (root / "sibling_dir").symlink_to(sibling.parent, target_is_directory=True)
    write(root / "back\\slash.txt", "a backslash in its name")
    return Tree(base, root, secret, outside_dir)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """A tree shared by the tests that only read it."""
    return make_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture
def fresh_tree(tmp_path: Path) -> Tree:
    """A tree of the test's own, to change."""
    return make_tree(tmp_path)


async def static_files(**options: Any) -> StaticFiles:
    """StaticFiles built off the event loop: building it checks its directory on disk."""
    return await anyio.to_thread.run_sync(functools.partial(StaticFiles, **options))


def static_app(static: StaticFiles, **kwargs: Any) -> Starlite:
    """An app serving `static` at /static; `kwargs` go to Starlite."""
    return Starlite(routes=[Mount("/static", static, name="static")], **kwargs)


def status_echo(request: Request, exc: Exception) -> Response:
    """An exception handler answering "custom <status>" with the exception's status and headers."""
    assert isinstance(exc, HTTPException)
    return PlainTextResponse(f"custom {exc.status_code}", exc.status_code, exc.headers)


# StaticFiles: no path leaves the directory

# (id, path under the mount, raw path under the mount or None for the path encoded)
TRAVERSALS = [
    ("dot-dot", "/../secret.txt", None),
    ("dot-dot-deep", "/sub/../../secret.txt", None),
    ("dot-dot-to-a-directory", "/../outside/secret.txt", None),
    ("dot-dot-directory-index", "/../outside/", None),
    ("dot-dot-alone", "/..", None),
    ("dot-dot-slash", "/../", None),
    ("percent-encoded-dots", "/../secret.txt", b"/%2e%2e/secret.txt"),
    ("encoded-slashes", "/sub/../../secret.txt", b"/sub/..%2f..%2fsecret.txt"),
    ("absolute-path", "/{secret}", None),
    ("absolute-directory", "/{outside_dir}/secret.txt", None),
    ("backslashes", "/..\\secret.txt", None),
    ("backslashes-deep", "/sub\\..\\..\\secret.txt", None),
    ("nul-byte", "/a.txt\x00", None),
    ("nul-byte-then-dot-dot", "/a.txt\x00/../../secret.txt", None),
    ("name-too-long", "/" + "a" * 5000, None),
    ("path-too-long", "/" + "a/" * 3000 + "secret.txt", None),
]

SYMLINKS_OUT = [
    "/link_out.txt",
    "/dir_out/secret.txt",
    "/dir_out/",
    "/dir_out",
    "/up/secret.txt",
    "/up/",
    "/sibling.txt",
    "/sibling_dir/secret.txt",
]


def traversal_path(tree: Tree, template: str) -> str:
    return template.format(secret=tree.secret, outside_dir=tree.outside_dir)


@pytest.mark.anyio
@pytest.mark.parametrize("html", [False, True], ids=["files", "html"])
@pytest.mark.parametrize(
    ("path", "raw_path"), [t[1:] for t in TRAVERSALS], ids=[t[0] for t in TRAVERSALS]
)
async def test_static_files_refuses_every_path_out_of_the_directory_with_404(
    tree: Tree, path: str, raw_path: bytes | None, html: bool
) -> None:
    path = traversal_path(tree, path)
    for follow_symlink in (False, True):
        static = await static_files(directory=tree.root, html=html, follow_symlink=follow_symlink)
        for mounted in (False, True):
            prefix = "/static" if mounted else ""
            raw = {} if raw_path is None else {"raw_path": prefix.encode() + raw_path}
            answer = await Server(http_request(), then="wait", raises=HTTPException).run(
                static_app(static) if mounted else static, make_scope(prefix + path, **raw)
            )
            case = f"follow_symlink={follow_symlink}, mounted={mounted}"
            assert answer.status == 404, case
            assert SECRET.encode() not in answer.body, case
            assert answer.body == b"Not Found", case


@pytest.mark.anyio
@pytest.mark.parametrize("html", [False, True], ids=["files", "html"])
@pytest.mark.parametrize("path", SYMLINKS_OUT)
async def test_static_files_refuses_a_symlink_out_of_the_directory_with_404(
    tree: Tree, path: str, html: bool
) -> None:
    static = await static_files(directory=tree.root, html=html)
    for app, prefix in [(static, ""), (static_app(static), "/static")]:
        answer = await Server(http_request(), then="wait", raises=HTTPException).run(
            app, make_scope(prefix + path)
        )
        assert answer.status == 404, prefix
        assert SECRET.encode() not in answer.body, prefix


@pytest.fixture
def linked_404(fresh_tree: Tree) -> Tree:
    (fresh_tree.root / "404.html").symlink_to(fresh_tree.secret)
    return fresh_tree


@pytest.mark.anyio
async def test_static_files_refuses_a_404_page_that_links_out_of_the_directory(
    linked_404: Tree,
) -> None:
    tree = linked_404
    answer = await Server(http_request(), then="wait", raises=HTTPException).run(
        await static_files(directory=tree.root, html=True), make_scope("/missing")
    )
    assert answer.status == 404
    assert answer.body == b"Not Found"


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/sub/../a.txt", "/./sub/../a.txt", "/sub/..", "/empty/../"])
async def test_static_files_refuses_dot_dot_segments_that_resolve_inside(
    tree: Tree, path: str
) -> None:
    static = await static_files(directory=tree.root, html=True)
    answer = await Server(http_request(), then="wait", raises=HTTPException).run(
        static, make_scope(path)
    )
    assert answer.status == 404


@pytest.mark.anyio
async def test_static_files_refuses_a_backslash_even_in_a_real_file_name(tree: Tree) -> None:
    # On POSIX a backslash is an ordinary character, but on Windows a separator: never looked up.
    answer = await Server(http_request(), then="wait", raises=HTTPException).run(
        await static_files(directory=tree.root), make_scope("/back\\slash.txt")
    )
    assert (answer.status, answer.body) == (404, b"Not Found")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/./a.txt", b"hello static"),
        ("//a.txt", b"hello static"),
        ("/sub//page.txt", b"sub page"),
        ("/sub/./page.txt", b"sub page"),
    ],
)
async def test_static_files_ignores_empty_and_dot_segments(
    tree: Tree, path: str, content: bytes
) -> None:
    answer = await Server(http_request(), then="wait", raises=HTTPException).run(
        await static_files(directory=tree.root), make_scope(path)
    )
    assert (answer.status, answer.body) == (200, content)


def test_static_files_serves_a_symlink_to_a_file_inside_the_directory(
    tree: Tree, backend: Backend
) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    response = client.get("/static/link_in.txt")
    assert (response.status_code, response.text) == (200, "hello static")
    response = client.get("/static/alias/page.txt")
    assert (response.status_code, response.text) == (200, "sub page")


@pytest.mark.parametrize(
    ("path", "content"),
    [("/static/link_out.txt", SECRET), ("/static/dir_out/secret.txt", SECRET + " in a directory")],
)
def test_static_files_follows_a_symlink_out_of_the_directory_when_asked(
    tree: Tree, backend: Backend, path: str, content: str
) -> None:
    static = StaticFiles(directory=tree.root, follow_symlink=True)
    client = TestClient(static_app(static), backend=backend)
    response = client.get(path)
    assert (response.status_code, response.text) == (200, content)


# StaticFiles: methods, websockets, errors


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_static_files_answers_other_methods_with_405_through_the_apps_handlers(
    tree: Tree, backend: Backend, method: str
) -> None:
    app = static_app(StaticFiles(directory=tree.root), exception_handlers={405: status_echo})
    response = TestClient(app, backend=backend).request(method, "/static/a.txt")
    assert response.status_code == 405
    assert response.text == "custom 405"
    assert response.headers["allow"] == "GET, HEAD"


def test_static_files_405_inside_an_app_without_handlers_says_allow(
    tree: Tree, backend: Backend
) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    response = client.post("/static/a.txt")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/a.txt", "/missing"])
async def test_bare_static_files_raises_405_for_other_methods(
    tree: Tree, method: str, path: str
) -> None:
    answer = await Server(http_request(), then="wait", raises=HTTPException).run(
        await static_files(directory=tree.root), make_scope(path, method=method)
    )
    assert answer.raised is not None
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD"


def test_static_files_missing_file_reaches_the_apps_404_handler(
    tree: Tree, backend: Backend
) -> None:
    app = static_app(StaticFiles(directory=tree.root), exception_handlers={404: status_echo})
    response = TestClient(app, backend=backend).get("/static/missing.txt")
    assert (response.status_code, response.text) == (404, "custom 404")


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_bare_static_files_raises_404_for_a_missing_file(tree: Tree, method: str) -> None:
    answer = await Server(http_request(), then="wait", raises=HTTPException).run(
        await static_files(directory=tree.root), make_scope("/missing", method=method)
    )
    assert answer.raised is not None
    assert (answer.status, answer.body) == (404, b"Not Found")


@pytest.mark.anyio
async def test_static_files_in_a_router_without_an_app_raises_its_errors(tree: Tree) -> None:
    router = Router(routes=[Mount("/static", await static_files(directory=tree.root))])
    missing = await Server(http_request(), then="wait", raises=HTTPException).run(
        router, make_scope("/static/missing")
    )
    assert (missing.raised is not None, missing.status) == (True, 404)
    post = await Server(http_request(), then="wait", raises=HTTPException).run(
        router, make_scope("/static/a.txt", method="POST")
    )
    assert (post.raised is not None, post.status, post.headers["allow"]) == (True, 405, "GET, HEAD")


@pytest.mark.anyio
@pytest.mark.parametrize("deny", [True, False], ids=["denial-offered", "no-denial"])
@pytest.mark.parametrize("path", ["/a.txt", "/missing", "/../secret.txt"])
async def test_static_files_closes_a_websocket_with_1000(tree: Tree, path: str, deny: bool) -> None:
    scope = ws_scope(path, deny=deny)
    answer = await Server(connect(), then="wait", raises=HTTPException).run(
        await static_files(directory=tree.root), scope
    )
    assert answer.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


def test_static_files_mounted_in_an_app_closes_a_websocket(tree: Tree, backend: Backend) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/static/a.txt"):
        pass  # pragma: no cover - entering raises
    assert info.value.code == 1000


# StaticFiles: serving files


def test_static_files_serves_a_file_with_its_headers(tree: Tree, backend: Backend) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    response = client.get("/static/a.txt")
    assert response.status_code == 200
    assert response.text == "hello static"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len("hello static"))
    assert response.headers["last-modified"] == formatdate(MTIME, usegmt=True)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith('"')


def test_static_files_head_has_the_headers_of_get_and_no_body(tree: Tree, backend: Backend) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    get = client.get("/static/style.css")
    head = client.head("/static/style.css")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers == get.headers
    assert head.headers["content-length"] == str(len(get.content))


@pytest.mark.parametrize(
    ("name", "media_type"), [("style.css", "text/css"), ("a.txt", "text/plain")]
)
def test_static_files_guesses_the_media_type_from_the_name(
    tree: Tree, backend: Backend, name: str, media_type: str
) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    response = client.get(f"/static/{name}")
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"


def test_static_files_serves_javascript_as_javascript(tree: Tree, backend: Backend) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    expected = mimetypes.guess_type("x.js")[0]
    assert expected is not None
    assert "javascript" in expected
    response = client.get("/static/script.js")
    assert response.headers["content-type"].split(";")[0] == expected


def test_static_files_serves_a_symlink_as_the_file_it_resolves_to(
    tree: Tree, backend: Backend
) -> None:
    # The resolved path is opened (and typed, as in Starlette), so the link cannot be swapped
    # for one out of the directory between the check and the read.
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    response = client.get("/static/app.js")
    assert response.text == "export default 1"
    assert response.headers["content-type"] == "application/octet-stream"


def test_static_files_answers_a_range_with_206(tree: Tree, backend: Backend) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    response = client.get("/static/a.txt", headers={"range": "bytes=0-1"})
    assert response.status_code == 206
    assert response.content == b"he"
    assert response.headers["content-range"] == f"bytes 0-1/{len('hello static')}"
    assert response.headers["content-length"] == "2"


def test_static_files_answers_an_unsatisfiable_range_with_416(tree: Tree, backend: Backend) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    response = client.get("/static/a.txt", headers={"range": "bytes=100-200"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len('hello static')}"


def test_static_files_without_html_answers_a_directory_with_404(
    tree: Tree, backend: Backend
) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    for path in ["/static/sub/", "/static/sub", "/static/empty/", "/static/"]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 404, path
        assert b"sub index" not in response.content


def test_static_files_finds_files_under_an_apps_root_path(tree: Tree, backend: Backend) -> None:
    client = TestClient(
        static_app(StaticFiles(directory=tree.root, html=True)),
        root_path="/prefix",
        backend=backend,
    )
    response = client.get("/prefix/static/a.txt")
    assert (response.status_code, response.text) == (200, "hello static")
    response = client.get("/prefix/static/sub", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "http://testserver/prefix/static/sub/"
    response = client.get("/prefix/static/sub/")
    assert (response.status_code, response.text) == (200, "<p>sub index</p>")


def test_static_files_is_keyword_only(tree: Tree) -> None:
    with pytest.raises(TypeError):
        StaticFiles(tree.root)  # type: ignore[misc]


# StaticFiles: html mode


@pytest.fixture(scope="module")
def html_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """A tree with an index.html at the top and a 404.html."""
    tree = make_tree(tmp_path_factory.mktemp("html_tree"))
    write(tree.root / "index.html", "<p>root index</p>")
    write(tree.root / "404.html", "<p>custom not found</p>")
    return tree


def test_static_files_html_serves_a_directorys_index(html_tree: Tree, backend: Backend) -> None:
    client = TestClient(
        static_app(StaticFiles(directory=html_tree.root, html=True)), backend=backend
    )
    response = client.get("/static/sub/")
    assert (response.status_code, response.text) == (200, "<p>sub index</p>")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    response = client.get("/static/")
    assert (response.status_code, response.text) == (200, "<p>root index</p>")


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/static/sub", "http://testserver/static/sub/"),
        ("/static/sub?x=1&y=%20", "http://testserver/static/sub/?x=1&y=%20"),
        ("/static/alias", "http://testserver/static/alias/"),
        ("/static", "http://testserver/static/"),
    ],
)
def test_static_files_html_redirects_a_directory_to_its_trailing_slash(
    html_tree: Tree, backend: Backend, path: str, location: str
) -> None:
    client = TestClient(
        static_app(StaticFiles(directory=html_tree.root, html=True)), backend=backend
    )
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == location


@pytest.mark.anyio
async def test_bare_static_files_html_redirects_its_root_to_the_trailing_slash(
    html_tree: Tree,
) -> None:
    static = await static_files(directory=html_tree.root, html=True)
    answer = await Server(http_request(), then="wait", raises=HTTPException).run(
        static, make_scope("/static", root_path="/static")
    )
    assert answer.status == 307
    assert answer.headers["location"] == "http://example.org/static/"
    answer = await Server(http_request(), then="wait", raises=HTTPException).run(
        static, make_scope("/static/", root_path="/static")
    )
    assert (answer.status, answer.body) == (200, b"<p>root index</p>")


def test_static_files_html_serves_404_html_for_a_missing_file(
    html_tree: Tree, backend: Backend
) -> None:
    client = TestClient(
        static_app(StaticFiles(directory=html_tree.root, html=True)), backend=backend
    )
    for path in ["/static/missing.txt", "/static/sub/missing/", "/static/empty/"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.text == "<p>custom not found</p>"
        assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_static_files_html_without_404_html_answers_a_plain_404(
    tree: Tree, backend: Backend
) -> None:
    client = TestClient(static_app(StaticFiles(directory=tree.root, html=True)), backend=backend)
    for path in ["/static/missing.txt", "/static/empty/", "/static/empty"]:
        response = client.get(path, follow_redirects=False)
        assert (response.status_code, response.text) == (404, "Not Found"), path


def test_static_files_html_still_serves_plain_files(html_tree: Tree, backend: Backend) -> None:
    client = TestClient(
        static_app(StaticFiles(directory=html_tree.root, html=True)), backend=backend
    )
    response = client.get("/static/sub/page.txt")
    assert (response.status_code, response.text) == (200, "sub page")
    response = client.get("/static/sub/index.html")
    assert (response.status_code, response.text) == (200, "<p>sub index</p>")


# StaticFiles: conditional requests


@pytest.fixture
def file_client(tree: Tree, backend: Backend) -> TestClient:
    return TestClient(static_app(StaticFiles(directory=tree.root, html=True)), backend=backend)


def etag_of(client: TestClient, path: str = "/static/a.txt") -> str:
    return client.get(path).headers["etag"]


def assert_not_modified(response: Any, etag: str) -> None:
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    for name in ("content-length", "content-type", "last-modified", "content-range"):
        assert name not in response.headers


@pytest.mark.parametrize(
    "header",
    ["{etag}", "W/{etag}", '"x", {etag}', '{etag}, "x"', '"x",{etag}', ' "a,b" , W/{etag} ', "*"],
)
def test_static_files_answers_a_matching_if_none_match_with_304(
    file_client: TestClient, header: str
) -> None:
    etag = etag_of(file_client)
    response = file_client.get("/static/a.txt", headers={"if-none-match": header.format(etag=etag)})
    assert_not_modified(response, etag)


def test_static_files_answers_if_none_match_for_an_index_with_304(file_client: TestClient) -> None:
    etag = etag_of(file_client, "/static/sub/")
    response = file_client.get("/static/sub/", headers={"if-none-match": etag})
    assert_not_modified(response, etag)
    head = file_client.head("/static/a.txt", headers={"if-none-match": etag_of(file_client)})
    assert head.status_code == 304


@pytest.mark.parametrize(
    "header",
    [
        '"other"',
        'W/"other"',
        "garbage",
        '"unterminated',
        ",,,",
        "W/",
        "",
        "**",
        '"' + "a" * 100_000,
        "W/" * 50_000,
        "," * 100_000,
        '"x",' * 20_000,
        "{bare}",  # the tag without its quotes
        'garbage"{bare}"',  # the tag, but not as a list of tags
        '"unterminated, "{bare}"',
    ],
    ids=lambda header: header[:20],
)
def test_static_files_serves_the_file_when_if_none_match_does_not_match(
    file_client: TestClient, header: str
) -> None:
    etag = etag_of(file_client)
    header = header.format(bare=etag.strip('"'))
    started = time.perf_counter()
    response = file_client.get("/static/a.txt", headers={"if-none-match": header})
    assert time.perf_counter() - started < 2
    assert (response.status_code, response.text) == (200, "hello static")


@pytest.mark.parametrize("filler", [" ", "\t"], ids=["spaces", "tabs"])
def test_static_files_reads_a_long_if_none_match_of_whitespace_in_linear_time(
    filler: str,
) -> None:
    # Read linearly, 400,000 characters take a millisecond; a quadratic read, hours.
    value = '"a"' + filler * 400_000 + "x"
    started = time.perf_counter()
    assert not starlite._etag_matches(value, '"b"')
    assert time.perf_counter() - started < 1


def test_static_files_reads_an_empty_if_none_match_as_none(file_client: TestClient) -> None:
    etag = etag_of(file_client)
    since = formatdate(MTIME, usegmt=True)
    headers = {"if-none-match": " ", "if-modified-since": since}
    assert_not_modified(file_client.get("/static/a.txt", headers=headers), etag)


@pytest.mark.parametrize("delta", [0, 0.2, 3600, 10 * 365 * 86400])
def test_static_files_answers_a_current_if_modified_since_with_304(
    file_client: TestClient, delta: float
) -> None:
    etag = etag_of(file_client)
    since = formatdate(MTIME + delta, usegmt=True)
    response = file_client.get("/static/a.txt", headers={"if-modified-since": since})
    assert_not_modified(response, etag)


@pytest.mark.parametrize("delta", [-1, -3600])
def test_static_files_serves_a_file_newer_than_if_modified_since(
    file_client: TestClient, delta: float
) -> None:
    since = formatdate(MTIME + delta, usegmt=True)
    response = file_client.get("/static/a.txt", headers={"if-modified-since": since})
    assert (response.status_code, response.text) == (200, "hello static")


@pytest.mark.parametrize(
    "since",
    [
        "garbage",
        "Mon, 99 Foo 2020",
        "",
        "0",
        "Mon, 01 Jan 2020 99:00:00 GMT",
        "Mon, 01 Jan 99999 00:00:00 GMT",
        "Mon, 01 Jan 2090 00:00:00 +9999",
        "Mon, 01 Jan 9999999999999999999999 00:00:00 GMT",
        "1 Jan 2090 00:00:00 -1234567890123456789",
    ],
)
def test_static_files_ignores_an_if_modified_since_that_does_not_parse(
    tree: Tree, backend: Backend, since: str
) -> None:
    client = TestClient(
        static_app(StaticFiles(directory=tree.root)), backend=backend, raise_server_exceptions=False
    )
    response = client.get("/static/a.txt", headers={"if-modified-since": since})
    assert (response.status_code, response.text) == (200, "hello static")


def test_static_files_lets_if_none_match_decide_over_if_modified_since(
    file_client: TestClient,
) -> None:
    etag = etag_of(file_client)
    current = formatdate(MTIME + 3600, usegmt=True)
    stale = formatdate(MTIME - 3600, usegmt=True)
    response = file_client.get(
        "/static/a.txt", headers={"if-none-match": '"other"', "if-modified-since": current}
    )
    assert (response.status_code, response.text) == (200, "hello static")
    response = file_client.get(
        "/static/a.txt", headers={"if-none-match": etag, "if-modified-since": stale}
    )
    assert_not_modified(response, etag)


def test_static_files_etag_changes_when_the_file_changes(
    fresh_tree: Tree, backend: Backend
) -> None:
    tree = fresh_tree
    client = TestClient(static_app(StaticFiles(directory=tree.root)), backend=backend)
    etag = etag_of(client)
    write(tree.root / "a.txt", "hello static, longer")
    response = client.get("/static/a.txt", headers={"if-none-match": etag})
    assert (response.status_code, response.text) == (200, "hello static, longer")
    assert response.headers["etag"] != etag


def test_not_modified_keeps_only_the_headers_a_304_carries(tree: Tree) -> None:
    path = tree.root / "a.txt"
    response = FileResponse(
        path,
        headers={"cache-control": "max-age=60", "vary": "accept-encoding", "x-other": "1"},
        stat_result=path.stat(),
    )
    not_modified = NotModifiedResponse(response.headers)
    assert not_modified.status_code == 304
    assert dict(not_modified.headers) == {
        "cache-control": "max-age=60",
        "vary": "accept-encoding",
        "etag": response.headers["etag"],
    }


# StaticFiles: the hooks a subclass overrides, as in Starlette


def test_static_files_calls_an_overridden_file_response(tree: Tree, backend: Backend) -> None:
    class Cached(StaticFiles):
        def file_response(
            self,
            full_path: str | os.PathLike[str],
            stat_result: os.stat_result,
            scope: Scope,
            status_code: int = 200,
        ) -> Response:
            response = super().file_response(full_path, stat_result, scope, status_code)
            response.headers["cache-control"] = "max-age=3600"
            return response

    client = TestClient(static_app(Cached(directory=tree.root, html=True)), backend=backend)
    for path in ["/static/a.txt", "/static/sub/"]:
        response = client.get(path)
        assert (response.status_code, response.headers["cache-control"]) == (200, "max-age=3600")


def test_static_files_calls_an_overridden_is_not_modified(tree: Tree, backend: Backend) -> None:
    class AlwaysCurrent(StaticFiles):
        def is_not_modified(self, response_headers: Headers, request_headers: Headers) -> bool:
            return request_headers.get("x-cached") == "yes"

    client = TestClient(static_app(AlwaysCurrent(directory=tree.root)), backend=backend)
    assert client.get("/static/a.txt", headers={"x-cached": "yes"}).status_code == 304
    assert client.get("/static/a.txt").status_code == 200


def test_static_files_calls_an_overridden_get_path_and_lookup_path(
    tree: Tree, backend: Backend
) -> None:
    looked_up: list[str] = []

    class Versioned(StaticFiles):
        def get_path(self, scope: Scope) -> str:
            return super().get_path(scope).removeprefix("v1" + os.sep)

        def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
            looked_up.append(path)
            return super().lookup_path(path)

    client = TestClient(static_app(Versioned(directory=tree.root)), backend=backend)
    assert client.get("/static/v1/sub/page.txt").text == "sub page"
    assert looked_up == [os.path.join("sub", "page.txt")]


def test_static_files_get_path_keeps_dot_dot_for_lookup_path_to_refuse(tree: Tree) -> None:
    static = StaticFiles(directory=tree.root)
    assert static.get_path({"path": "/./sub//page.txt"}) == os.path.join("sub", "page.txt")
    assert static.get_path({"path": "/sub/../../secret.txt"}) == os.path.join(
        "sub", "..", "..", "secret.txt"
    )
    assert static.get_path({"path": "/static/a.txt", "root_path": "/static"}) == "a.txt"


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "\\\\server\\share",
        os.path.join("..", "secret.txt"),
        os.path.join("sub", "..", "a.txt"),
        "sub\\page.txt",
        "a.txt\0",
        "link_out.txt",
        "missing.txt",
        "a" * 5000,
        os.path.join("a.txt", "below"),
    ],
)
def test_static_files_lookup_path_finds_nothing_outside_or_missing(tree: Tree, path: str) -> None:
    assert StaticFiles(directory=tree.root).lookup_path(path) == ("", None)


def test_static_files_lookup_path_gives_the_resolved_path_and_status(tree: Tree) -> None:
    full_path, stat_result = StaticFiles(directory=tree.root).lookup_path("link_in.txt")
    assert full_path == os.path.realpath(tree.root / "a.txt")
    assert stat_result is not None
    assert stat_result.st_size == len("hello static")


@pytest.mark.parametrize(
    ("error", "status_code"),
    [
        (errno.EIO, 500),  # the file system failing
        (errno.EACCES, 404),  # a directory it may not search: Starlette's 401 needs credentials
        (errno.EPERM, 404),
        (errno.ELOOP, 404),
        (errno.ENAMETOOLONG, 404),
        (errno.ENOTDIR, 404),
    ],
)
def test_static_files_answers_a_stat_error_by_what_it_means(
    tree: Tree, backend: Backend, monkeypatch: pytest.MonkeyPatch, error: int, status_code: int
) -> None:
    def failing_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        raise OSError(error, os.strerror(error))

    client = TestClient(
        static_app(StaticFiles(directory=tree.root)),
        backend=backend,
        raise_server_exceptions=False,
    )
    assert client.get("/static/a.txt").status_code == 200  # the directory checked, once
    monkeypatch.setattr(os, "stat", failing_stat)
    assert client.get("/static/a.txt").status_code == status_code


# StaticFiles: directories and packages


def test_static_files_refuses_a_missing_directory_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(RuntimeError, match="nowhere"):
        StaticFiles(directory=missing)
    write(tmp_path / "file.txt", "not a directory")
    with pytest.raises(RuntimeError, match=r"file\.txt"):
        StaticFiles(directory=tmp_path / "file.txt")


def test_static_files_without_check_dir_raises_until_the_directory_exists(
    tmp_path: Path, backend: Backend
) -> None:
    directory = tmp_path / "later"
    static = StaticFiles(directory=directory, check_dir=False, html=True)
    client = TestClient(static_app(static), backend=backend)
    for path in ["/static/a.txt", "/static/"]:
        with pytest.raises(RuntimeError, match=re.escape(f"directory '{directory}' does not")):
            client.get(path)
    assert not static.config_checked
    write(directory / "a.txt", "arrived")
    write(directory / "index.html", "<p>arrived index</p>")
    assert client.get("/static/a.txt").text == "arrived"
    assert static.config_checked
    assert client.get("/static/").text == "<p>arrived index</p>"


def test_static_files_without_check_dir_raises_for_a_file_given_as_directory(
    tree: Tree, backend: Backend
) -> None:
    static = StaticFiles(directory=tree.root / "a.txt", check_dir=False)
    client = TestClient(static_app(static), backend=backend)
    with pytest.raises(RuntimeError, match=re.escape("a.txt' is not a directory.")):
        client.get("/static/a.txt")


def test_static_files_checks_its_directory_once(tree: Tree, backend: Backend) -> None:
    checks: list[str] = []

    class Counted(StaticFiles):
        async def check_config(self) -> None:
            checks.append("check")
            await super().check_config()

    client = TestClient(static_app(Counted(directory=tree.root)), backend=backend)
    assert [client.get("/static/a.txt").status_code for _ in range(3)] == [200] * 3
    assert checks == ["check"]


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package on sys.path (its name unique: find_spec remembers packages) with a ``statics``
    and an ``assets`` directory."""
    name = f"static_pkg_{uuid.uuid4().hex}"
    write(tmp_path / name / "__init__.py", "")
    write(tmp_path / name / "statics" / "x.txt", "x from statics")
    write(tmp_path / name / "statics" / "shared.txt", "shared from package")
    write(tmp_path / name / "assets" / "y.txt", "y from assets")
    monkeypatch.syspath_prepend(tmp_path)
    return name


def test_static_files_serves_a_packages_statics_directory(package: str, backend: Backend) -> None:
    client = TestClient(static_app(StaticFiles(packages=[package])), backend=backend)
    assert client.get("/static/x.txt").text == "x from statics"
    assert client.get("/static/y.txt").status_code == 404


def test_static_files_serves_a_packages_named_directory(package: str, backend: Backend) -> None:
    client = TestClient(static_app(StaticFiles(packages=[(package, "assets")])), backend=backend)
    assert client.get("/static/y.txt").text == "y from assets"
    assert client.get("/static/x.txt").status_code == 404


def test_static_files_refuses_a_missing_package_or_statics_directory(package: str) -> None:
    with pytest.raises(RuntimeError, match="no_such_package_here"):
        StaticFiles(packages=["no_such_package_here"])
    with pytest.raises(RuntimeError, match=r"'nothing'.*" + package):
        StaticFiles(packages=[(package, "nothing")])


def test_static_files_looks_in_the_directory_before_the_packages(
    fresh_tree: Tree, package: str, backend: Backend
) -> None:
    tree = fresh_tree
    write(tree.root / "shared.txt", "shared from directory")
    static = StaticFiles(directory=tree.root, packages=[package, (package, "assets")])
    client = TestClient(static_app(static), backend=backend)
    assert client.get("/static/shared.txt").text == "shared from directory"
    assert client.get("/static/x.txt").text == "x from statics"
    assert client.get("/static/y.txt").text == "y from assets"
    assert client.get("/static/a.txt").text == "hello static"


def test_static_files_refuses_a_symlink_from_one_root_into_another(
    tmp_path: Path, backend: Backend
) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    write(second / "only.txt", "in second")
    first.mkdir()
    (first / "cross.txt").symlink_to(second / "only.txt")
    static = StaticFiles(directory=first)
    client = TestClient(static_app(static), backend=backend)
    assert client.get("/static/cross.txt").status_code == 404


# StaticFiles: the event loop never blocks


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_blockbuster_catches_a_stat_on_the_event_loop(tree: Tree) -> None:
    # Proof that the autouse blockbuster watches these tests on asyncio, so that tests that pass
    # never stat'ed or opened a file on the loop.
    with pytest.raises(BlockingError):
        os.stat(tree.root / "a.txt")


@pytest.fixture
def served(html_tree: Tree) -> tuple[StaticFiles, Starlite]:
    static = StaticFiles(directory=html_tree.root, html=True)
    return static, static_app(static)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_static_files_never_blocks_the_event_loop(
    served: tuple[StaticFiles, Starlite],
) -> None:
    static, app = served
    for asgi_app, prefix in [(static, ""), (app, "/static")]:
        file = await Server(http_request(), then="wait", raises=HTTPException).run(
            asgi_app, make_scope(prefix + "/a.txt")
        )
        assert (file.status, file.body) == (200, b"hello static")
        headers = {"if-none-match": file.headers["etag"]}
        assert (
            await Server(http_request(), then="wait", raises=HTTPException).run(
                asgi_app, make_scope(prefix + "/a.txt", headers=headers)
            )
        ).status == 304
        index = await Server(http_request(), then="wait", raises=HTTPException).run(
            asgi_app, make_scope(prefix + "/sub/")
        )
        assert (index.status, index.body) == (200, b"<p>sub index</p>")
        redirect = await Server(http_request(), then="wait", raises=HTTPException).run(
            asgi_app, make_scope(prefix + "/sub")
        )
        assert redirect.status == 307
        page = await Server(http_request(), then="wait", raises=HTTPException).run(
            asgi_app, make_scope(prefix + "/missing")
        )
        assert (page.status, page.body) == (404, b"<p>custom not found</p>")
        ranged = await Server(http_request(), then="wait", raises=HTTPException).run(
            asgi_app, make_scope(prefix + "/a.txt", headers={"range": "bytes=1-2"})
        )
        assert (ranged.status, ranged.body) == (206, b"el")
        link = await Server(http_request(), then="wait", raises=HTTPException).run(
            asgi_app, make_scope(prefix + "/link_out.txt")
        )
        assert link.status == 404


def test_static_files_never_blocks_the_test_clients_loop(html_tree: Tree) -> None:
    # TestClient's app runs on an asyncio loop in the portal's thread: blockbuster watches it too.
    client = TestClient(static_app(StaticFiles(directory=html_tree.root, html=True)))
    assert client.get("/static/sub/").text == "<p>sub index</p>"
    assert client.get("/static/a.txt", headers={"if-none-match": "*"}).status_code == 304
    assert client.get("/static/missing").text == "<p>custom not found</p>"


@pytest.mark.anyio
async def test_static_files_stats_files_off_the_event_loop(
    served: tuple[StaticFiles, Starlite], html_tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On trio too, where blockbuster does not look: every stat of a served file is in a worker.
    threads: list[int] = []
    real_stat = os.stat

    def recording_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if isinstance(path, str | Path) and html_tree.outside.name in Path(path).parts:
            threads.append(threading.get_ident())
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", recording_stat)
    static, _ = served
    loop_thread = threading.get_ident()
    for path in ["/a.txt", "/sub/", "/missing"]:
        await Server(http_request(), then="wait", raises=HTTPException).run(
            static, make_scope(path)
        )
    assert threads
    assert loop_thread not in threads


# Templates


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("templates")
    write(directory / "index.html", "Hello {{ name }} at {{ request.url.path }}")
    write(directory / "processed.html", "{{ user }}|{{ theme }}|{{ name }}")
    write(directory / "urls.html", "{{ url_for('home') }}|{{ url_for('user', user_id=3) }}")
    write(directory / "static.html", "{{ url_for('static', path='/a.txt') }}")
    write(directory / "unknown.html", "{{ url_for('nowhere') }}")
    write(directory / "thread.html", "{{ thread_id() }}")
    for extension in ("html", "htm", "xml", "jinja", "j2", "txt", "TXT", "xhtml", "html.txt"):
        write(directory / f"value.{extension}", "{{ value }}")
    return directory


@pytest.fixture
def templates(template_dir: Path) -> Jinja2Templates:
    return Jinja2Templates(directory=template_dir)


def templated_app(
    templates: Jinja2Templates, name: str, context: dict[str, Any] | None = None, **kwargs: Any
) -> Starlite:
    """An app whose "/" answers the template `name` with `context`; `kwargs` go to
    TemplateResponse. "/users/{user_id}" is named "user", "/" "home"."""

    def home(request: Request) -> Response:
        return templates.TemplateResponse(request, name, context, **kwargs)

    def user(request: Request) -> Response:
        return PlainTextResponse("user")

    return Starlite(
        routes=[
            Route("/", home, name="home"),
            Route("/users/{user_id:int}", user, name="user"),
        ]
    )


def test_template_response_renders_with_request_and_context(
    templates: Jinja2Templates, backend: Backend
) -> None:
    app = templated_app(templates, "index.html", {"name": "Ada"})
    response = TestClient(app, backend=backend).get("/")
    assert response.status_code == 200
    assert response.text == "Hello Ada at /"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-length"] == str(len(response.content))


def test_test_client_response_carries_the_template_and_its_context(
    templates: Jinja2Templates, backend: Backend
) -> None:
    app = templated_app(templates, "index.html", {"name": "Ada"})
    response = TestClient(app, backend=backend).get("/")
    assert response.template.name == "index.html"  # type: ignore[attr-defined]
    context = response.context  # type: ignore[attr-defined]
    assert context["name"] == "Ada"
    assert isinstance(context["request"], Request)
    assert context["request"].url.path == "/"


def test_template_response_adds_the_context_processors_values(
    template_dir: Path, backend: Backend
) -> None:
    def user(request: Request) -> dict[str, Any]:
        return {"user": f"user-of-{request.url.path}"}

    def theme(request: Request) -> dict[str, Any]:
        return {"theme": "dark"}

    templates = Jinja2Templates(directory=template_dir, context_processors=[user, theme])
    app = templated_app(templates, "processed.html", {"name": "Ada"})
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "user-of-/|dark|Ada"
    context = response.context  # type: ignore[attr-defined]
    assert (context["user"], context["theme"], context["name"]) == ("user-of-/", "dark", "Ada")
    assert isinstance(context["request"], Request)


def test_template_response_honours_status_headers_and_media_type(
    templates: Jinja2Templates, backend: Backend
) -> None:
    app = templated_app(
        templates,
        "index.html",
        {"name": "Ada"},
        status_code=201,
        headers={"x-extra": "yes"},
        media_type="text/plain",
    )
    response = TestClient(app, backend=backend).get("/")
    assert response.status_code == 201
    assert response.headers["x-extra"] == "yes"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Hello Ada at /"


def test_template_response_content_length_counts_bytes(
    templates: Jinja2Templates, backend: Backend
) -> None:
    app = templated_app(templates, "index.html", {"name": "Zoë ✓ 雪"})
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "Hello Zoë ✓ 雪 at /"
    assert response.headers["content-length"] == str(len(response.text.encode()))
    assert int(response.headers["content-length"]) > len(response.text)


def test_template_response_head_has_the_length_of_get(
    templates: Jinja2Templates, backend: Backend
) -> None:
    app = templated_app(templates, "index.html", {"name": "Zoë"})
    client = TestClient(app, backend=backend)
    get = client.get("/")
    head = client.head("/")
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.anyio
async def test_template_response_runs_its_background_task_after_the_response(
    templates: Jinja2Templates,
) -> None:
    sent_before_task: list[list[str]] = []
    server = Server(then="wait")

    def task() -> None:
        sent_before_task.append(server.sent_types)

    scope = make_scope("/")
    request = Request(scope)
    response = templates.TemplateResponse(
        request, "index.html", {"name": "Ada"}, background=BackgroundTask(task)
    )
    await server.run(response, scope)
    assert sent_before_task == [["http.response.start", "http.response.body"]]


def test_template_response_background_task_runs_through_the_test_client(
    templates: Jinja2Templates, backend: Backend
) -> None:
    ran: list[str] = []
    task = BackgroundTask(ran.append, "done")
    app = templated_app(templates, "index.html", {"name": "Ada"}, background=task)
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "Hello Ada at /"
    assert ran == ["done"]


@pytest.mark.anyio
async def test_template_response_renders_when_sent_in_a_worker_thread(
    template_dir: Path,
) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(template_dir), autoescape=True)
    env.globals["thread_id"] = threading.get_ident
    templates = Jinja2Templates(env=env)
    scope = make_scope("/")
    response = templates.TemplateResponse(Request(scope), "thread.html")
    assert response.template is None  # nothing rendered yet
    missing = templates.TemplateResponse(Request(scope), "no-such-template.html")  # no error yet
    answer = await Server(http_request(), then="wait").run(response, scope)
    assert answer.status == 200
    assert answer.body.decode() != str(threading.get_ident())
    assert int(answer.body.decode()) > 0
    assert response.template is not None
    with pytest.raises(jinja2.TemplateNotFound):
        await Server(http_request(), then="wait").run(missing, scope)


@pytest.mark.anyio
async def test_template_response_sends_debug_info_only_where_offered(
    templates: Jinja2Templates,
) -> None:
    plain_scope = make_scope("/")
    response = templates.TemplateResponse(Request(plain_scope), "index.html", {"name": "Ada"})
    answer = await Server(http_request(), then="wait").run(response, plain_scope)
    assert answer.sent_types == ["http.response.start", "http.response.body"]
    assert answer.body == b"Hello Ada at /"

    debug_scope = make_scope("/", extensions={"http.response.debug": {}})
    response = templates.TemplateResponse(Request(debug_scope), "index.html", {"name": "Bo"})
    answer = await Server(http_request(), then="wait").run(response, debug_scope)
    assert answer.sent_types == ["http.response.debug", "http.response.start", "http.response.body"]
    info = answer.sent[0]["info"]
    assert info["template"].name == "index.html"
    assert info["context"]["name"] == "Bo"
    assert info["context"]["request"].scope is debug_scope


def test_template_url_for_gives_absolute_urls_for_the_request(
    templates: Jinja2Templates, backend: Backend
) -> None:
    client = TestClient(templated_app(templates, "urls.html"), backend=backend)
    assert client.get("/").text == "http://testserver/|http://testserver/users/3"
    response = client.get("http://example.com:8080/")
    assert response.text == "http://example.com:8080/|http://example.com:8080/users/3"


def test_template_url_for_finds_a_static_mount(
    templates: Jinja2Templates, tree: Tree, backend: Backend
) -> None:
    def page(request: Request) -> Response:
        return templates.TemplateResponse(request, "static.html")

    app = Starlite(
        routes=[Route("/", page), Mount("/static", StaticFiles(directory=tree.root), name="static")]
    )
    client = TestClient(app, backend=backend)
    url = client.get("/").text
    assert url == "http://testserver/static/a.txt"
    assert client.get(url).text == "hello static"


def test_template_url_for_an_unknown_route_raises_no_match_found(
    templates: Jinja2Templates, backend: Backend
) -> None:
    app = templated_app(templates, "unknown.html")
    with pytest.raises(NoMatchFound):
        TestClient(app, backend=backend).get("/")
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.status_code == 500


@pytest.mark.parametrize("extension", ["html", "htm", "xml", "jinja", "j2", "xhtml"])
def test_templates_autoescape_every_template_but_text(
    templates: Jinja2Templates, backend: Backend, extension: str
) -> None:
    app = templated_app(templates, f"value.{extension}", {"value": "<script>&'\""})
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "&lt;script&gt;&amp;&#39;&#34;"


@pytest.mark.parametrize("extension", ["txt", "TXT", "html.txt"])
def test_templates_do_not_escape_text_templates_and_serve_them_as_plain_text(
    templates: Jinja2Templates, backend: Backend, extension: str
) -> None:
    # Unescaped and served as HTML, a value would be live markup in the client's browser.
    app = templated_app(templates, f"value.{extension}", {"value": "<script>"})
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "<script>"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("media_type", ["text/csv", "text/markdown; charset=utf-8"])
def test_a_text_template_is_served_with_the_non_markup_media_type_the_app_gives(
    templates: Jinja2Templates, backend: Backend, media_type: str
) -> None:
    app = templated_app(templates, "value.txt", {"value": "<b>"}, media_type=media_type)
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "<b>"
    assert response.headers["content-type"].startswith(media_type.partition(";")[0])


@pytest.mark.parametrize(
    "media_type",
    [
        "text/html",
        "Text/HTML; charset=utf-8",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
    ],
)
def test_a_text_template_is_never_served_as_markup(
    templates: Jinja2Templates, media_type: str
) -> None:
    request = Request(make_scope("/"))
    with pytest.raises(ValueError, match=re.escape("'value.txt' is not autoescaped")):
        templates.TemplateResponse(request, "value.txt", {"value": "<b>"}, media_type=media_type)
    escaped = templates.TemplateResponse(request, "value.html", media_type=media_type)
    assert escaped.media_type == media_type  # an escaped template may be served as markup


def test_an_html_template_is_still_served_as_html(
    templates: Jinja2Templates, backend: Backend
) -> None:
    app = templated_app(templates, "value.html", {"value": "<b>"})
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "&lt;b&gt;"
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_templates_use_a_given_environment_and_add_url_for(backend: Backend) -> None:
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"page.html": "{{ greeting }} {{ url_for('home') }} {{ v }}"}),
        autoescape=False,
    )
    env.globals["greeting"] = "hi"
    templates = Jinja2Templates(env=env)
    assert templates.env is env
    assert "url_for" in env.globals
    assert templates.get_template("page.html").name == "page.html"
    app = templated_app(templates, "page.html", {"v": "<b>"})
    response = TestClient(app, backend=backend).get("/")
    assert response.text == "hi http://testserver/ <b>"  # the env's own autoescape=False


def test_templates_keep_a_url_for_the_user_set(backend: Backend) -> None:
    env = jinja2.Environment(loader=jinja2.DictLoader({"page.html": "{{ url_for('home') }}"}))
    env.globals["url_for"] = lambda name: f"mine:{name}"
    templates = Jinja2Templates(env=env)
    response = TestClient(templated_app(templates, "page.html"), backend=backend).get("/")
    assert response.text == "mine:home"


def test_templates_need_exactly_one_of_directory_and_env(template_dir: Path) -> None:
    message = "either 'directory' or 'env' arguments must be passed"
    with pytest.raises(AssertionError, match=message):
        Jinja2Templates()
    with pytest.raises(AssertionError, match=message):
        Jinja2Templates(directory=template_dir, env=jinja2.Environment())
    with pytest.raises(AssertionError, match=message):
        Jinja2Templates(directory=[])  # no directory at all, as Starlette reads it


def test_a_missing_template_raises_template_not_found_or_answers_500(
    templates: Jinja2Templates, backend: Backend
) -> None:
    app = templated_app(templates, "no-such-template.html")
    with pytest.raises(jinja2.TemplateNotFound):
        TestClient(app, backend=backend).get("/")
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.status_code == 500


def test_templates_look_in_their_directories_in_order(tmp_path: Path, backend: Backend) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    write(first / "page.html", "from first")
    write(second / "page.html", "from second")
    write(second / "only.html", "only in second")
    templates = Jinja2Templates(directory=[first, second])
    client = TestClient(templated_app(templates, "page.html"), backend=backend)
    assert client.get("/").text == "from first"
    client = TestClient(templated_app(templates, "only.html"), backend=backend)
    assert client.get("/").text == "only in second"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_template_rendering_never_blocks_the_event_loop(
    templates: Jinja2Templates,
) -> None:
    # A template loads from disk (stat, open): blockbuster fails the test if that is on the loop.
    for _ in range(2):  # the second time from jinja2's cache, which stats the file to check it
        scope = make_scope("/")
        response = templates.TemplateResponse(Request(scope), "index.html", {"name": "Ada"})
        answer = await Server(http_request(), then="wait").run(response, scope)
        assert answer.body == b"Hello Ada at /"


def test_template_rendering_never_blocks_the_test_clients_loop(
    templates: Jinja2Templates,
) -> None:
    response = TestClient(templated_app(templates, "index.html", {"name": "Ada"})).get("/")
    assert response.text == "Hello Ada at /"


def test_jinja2_is_imported_only_by_templates_and_named_by_its_extra() -> None:
    code = (
        "import sys\n"
        "import starlite\n"
        "assert 'jinja2' not in sys.modules, 'imported at import'\n"
        "sys.modules['jinja2'] = None\n"
        "try:\n"
        "    starlite.Jinja2Templates(directory='.')\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "ImportError: This feature needs jinja2: pip install 'starlite-asgi[templates]', or, for a"
        " copied starlite.py, pip install jinja2"
    )


def test_starlite_imports_without_jinja2() -> None:
    code = (
        "import sys\n"
        "sys.modules['jinja2'] = None\n"
        "import starlite\n"
        "print(starlite.StaticFiles.__name__, starlite.Jinja2Templates.__name__)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["StaticFiles", "Jinja2Templates"]


# ==== Test client ====


def scope_echo_app() -> Any:
    """An app answering with the parts of its scope a test can compare as JSON."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        data = {
            "type": scope["type"],
            "http_version": scope["http_version"],
            "method": scope["method"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "raw_path_is_bytes": isinstance(scope["raw_path"], bytes),
            "root_path": scope.get("root_path", ""),
            "query_string": scope["query_string"].decode("latin-1"),
            "query_string_is_bytes": isinstance(scope["query_string"], bytes),
            "query_params": dict(request.query_params),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "headers_are_bytes": all(
                isinstance(k, bytes) and isinstance(v, bytes) for k, v in scope["headers"]
            ),
            "client": list(scope["client"]),
            "server": list(scope["server"]),
            "extensions": sorted(scope.get("extensions", {})),
            "state_is_dict": isinstance(scope.get("state"), dict),
            "cookies": request.cookies,
            "url": str(request.url),
            "body": body.decode("latin-1"),
        }
        await JSONResponse(data)(scope, receive, send)

    return app


def test_test_client_app_polling_after_its_response_hears_the_client_leave(
    backend: Backend,
) -> None:
    polls: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        await request.body()
        polls.append(await request.is_disconnected())  # the client still waits for the answer
        await PlainTextResponse("ok")(scope, receive, send)
        polls.append(await request.is_disconnected())  # the client has its answer, and hangs up

    assert TestClient(app, backend=backend).post("/", content=b"x").text == "ok"
    assert polls == [False, True]


def test_test_client_is_an_httpx_client() -> None:
    assert isinstance(TestClient(PlainTextResponse("x")), httpx.Client)


def test_test_client_gives_a_complete_http_scope(backend: Backend) -> None:
    data = TestClient(scope_echo_app(), backend=backend).get("/items").json()
    assert data["type"] == "http"
    assert data["http_version"] == "1.1"
    assert data["method"] == "GET"
    assert data["scheme"] == "http"
    assert data["path"] == "/items"
    assert data["raw_path"] == "/items"
    assert data["raw_path_is_bytes"]
    assert data["root_path"] == ""
    assert data["query_string"] == ""
    assert data["query_string_is_bytes"]
    assert data["headers_are_bytes"]
    assert all(name == name.lower() for name, _ in data["headers"])
    assert ["host", "testserver"] in data["headers"]
    assert data["server"] == ["testserver", 80]
    assert "http.response.debug" in data["extensions"]
    assert data["state_is_dict"]
    assert data["url"] == "http://testserver/items"


def test_test_client_default_client_address_is_testclient_50000() -> None:
    assert TestClient(scope_echo_app()).get("/").json()["client"] == ["testclient", 50000]


def test_test_client_custom_client_address_reaches_scope() -> None:
    data = TestClient(scope_echo_app(), client=("203.0.113.9", 4321)).get("/").json()
    assert data["client"] == ["203.0.113.9", 4321]


def test_test_client_root_path_reaches_scope() -> None:
    data = TestClient(scope_echo_app(), root_path="/api").get("/users").json()
    assert data["root_path"] == "/api"


@pytest.mark.parametrize(
    ("base_url", "scheme", "host", "server", "url"),
    [
        ("http://testserver", "http", "testserver", ["testserver", 80], "http://testserver/p"),
        (
            "https://example.org",
            "https",
            "example.org",
            ["example.org", 443],
            "https://example.org/p",
        ),
        (
            "http://example.org:8080",
            "http",
            "example.org:8080",
            ["example.org", 8080],
            "http://example.org:8080/p",
        ),
        ("http://[::1]:0", "http", "[::1]:0", ["::1", 0], "http://[::1]:0/p"),  # port 0 is kept
    ],
)
def test_test_client_base_url_sets_scheme_host_and_server(
    base_url: str, scheme: str, host: str, server: list[Any], url: str
) -> None:
    data = TestClient(scope_echo_app(), base_url=base_url).get("/p").json()
    assert data["scheme"] == scheme
    assert ["host", host] in data["headers"]
    assert data["server"] == server
    assert data["url"] == url


class ASGI2Instance:
    """An ASGI 2 app written as a class: made with the scope, then awaited with the channels."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"ASGI 2 class {self.scope['path']}")(self.scope, receive, send)


def asgi2_function(scope: Scope) -> Callable[[Receive, Send], Awaitable[None]]:
    """An ASGI 2 app written as a function returning the coroutine function to await."""

    async def instance(receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"ASGI 2 function {scope['path']}")(scope, receive, send)

    return instance


class ASGI3Awaitable:
    """An ASGI 3 app written as a class: its instances are awaitable, made with all three."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.response = PlainTextResponse("ASGI 3 class")
        self.call = (scope, receive, send)

    def __await__(self) -> Generator[Any, None, None]:
        return self.response(*self.call).__await__()


@pytest.mark.parametrize(
    ("app", "text"),
    [
        (asgi2_function, "ASGI 2 function /p"),
        (ASGI2Instance, "ASGI 2 class /p"),
        (ASGI3Awaitable, "ASGI 3 class"),
    ],
)
def test_test_client_serves_asgi2_apps_and_asgi3_classes(
    backend: Backend, app: Any, text: str
) -> None:
    assert TestClient(app, backend=backend).get("/p").text == text


def test_test_client_websocket_to_an_asgi2_app(backend: Backend) -> None:
    def app(scope: Scope) -> Callable[[Receive, Send], Awaitable[None]]:
        async def instance(receive: Receive, send: Send) -> None:
            await echo(WebSocket(scope, receive, send))

        return instance

    with TestClient(app, backend=backend).websocket_connect("/") as websocket:
        websocket.send_text("asgi2")
        assert websocket.receive_text() == "asgi2"


def test_test_client_timeout_argument_warns_that_it_does_nothing() -> None:
    client = TestClient(PlainTextResponse("ok"))
    with pytest.warns(StarletteDeprecationWarning, match="'timeout' argument with the TestClient"):
        assert client.get("/", timeout=1).text == "ok"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert client.get("/").text == "ok"  # no warning without it


def test_test_client_base_url_path_prefixes_request_paths() -> None:
    data = TestClient(scope_echo_app(), base_url="http://testserver/api/v1").get("/users").json()
    assert data["path"] == "/api/v1/users"


def test_test_client_absolute_url_overrides_base_url() -> None:
    data = TestClient(scope_echo_app()).get("https://other.example/x").json()
    assert data["scheme"] == "https"
    assert ["host", "other.example"] in data["headers"]


def test_test_client_default_headers_and_user_agent_are_sent() -> None:
    client = TestClient(scope_echo_app(), headers={"X-Token": "secret"})
    headers = client.get("/", headers={"X-Request": "1"}).json()["headers"]
    assert ["x-token", "secret"] in headers
    assert ["x-request", "1"] in headers
    assert ["user-agent", "testclient"] in headers


def test_test_client_per_request_header_overrides_default() -> None:
    client = TestClient(scope_echo_app(), headers={"X-Token": "default"})
    headers = client.get("/", headers={"X-Token": "override"}).json()["headers"]
    assert [v for k, v in headers if k == "x-token"] == ["override"]


def test_test_client_user_agent_given_in_any_case_replaces_the_default() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse(Request(scope).headers.getlist("user-agent"))(scope, receive, send)

    assert TestClient(app, headers={"User-Agent": "custom"}).get("/").json() == ["custom"]
    assert TestClient(app).get("/").json() == ["testclient"]


def test_test_client_cookies_argument_is_sent() -> None:
    data = TestClient(scope_echo_app(), cookies={"theme": "dark", "lang": "fr"}).get("/").json()
    assert data["cookies"] == {"theme": "dark", "lang": "fr"}


def test_test_client_cookie_set_by_response_is_sent_back(backend: Backend) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/login":
            response: Response = PlainTextResponse("logged in")
            response.set_cookie("session", "abc123")
        else:
            response = JSONResponse(Request(scope).cookies)
        await response(scope, receive, send)

    client = TestClient(app, backend=backend)
    assert client.get("/me").json() == {}
    client.get("/login")
    assert client.cookies["session"] == "abc123"
    assert client.get("/me").json() == {"session": "abc123"}


def redirect_app() -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/old":
            response: Response = RedirectResponse("/middle")
        elif scope["path"] == "/middle":
            response = RedirectResponse("http://testserver/new", status_code=302)
        else:
            response = PlainTextResponse(f"arrived at {scope['path']}")
        await response(scope, receive, send)

    return app


def test_test_client_follows_redirects_by_default() -> None:
    response = TestClient(redirect_app()).get("/old")
    assert response.status_code == 200
    assert response.text == "arrived at /new"
    assert str(response.url) == "http://testserver/new"
    assert [r.status_code for r in response.history] == [307, 302]


def test_test_client_follow_redirects_false_returns_the_redirect() -> None:
    response = TestClient(redirect_app(), follow_redirects=False).get("/old")
    assert response.status_code == 307
    assert response.headers["location"] == "/middle"
    assert response.history == []


def test_test_client_follow_redirects_per_request_override() -> None:
    client = TestClient(redirect_app())
    assert client.get("/old", follow_redirects=False).status_code == 307
    assert (
        TestClient(redirect_app(), follow_redirects=False)
        .get("/old", follow_redirects=True)
        .status_code
        == 200
    )


async def raising_app(scope: Any, receive: Any, send: Any) -> None:
    raise Boom("kaboom")


def test_test_client_raise_server_exceptions_true_reraises_in_test(backend: Backend) -> None:
    with pytest.raises(Boom, match="kaboom"):
        TestClient(raising_app, backend=backend).get("/")


def test_test_client_raise_server_exceptions_false_gives_500(backend: Backend) -> None:
    response = TestClient(raising_app, raise_server_exceptions=False, backend=backend).get("/")
    assert response.status_code == 500


def test_test_client_raises_a_base_exception_of_the_app_in_the_test(backend: Backend) -> None:
    class Halt(BaseException):  # as pytest's own failures are
        pass

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # No lifespan (returning says so): an answer to it would be an unexpected lifespan
        # message, raised or not depending on whether the app returned before start-up began.
        if scope["type"] == "lifespan":
            return
        if scope.get("path") == "/halt":
            raise Halt("from the app")
        await PlainTextResponse("ok")(scope, receive, send)

    client = TestClient(app, backend=backend)
    with client:
        with pytest.raises(Halt, match="from the app"):
            client.get("/halt")
        assert client.get("/").text == "ok"  # the event loop is still running


def test_test_client_exception_after_response_started_still_reaches_test() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("partial")(scope, receive, send)
        raise Boom("after")

    with pytest.raises(Boom, match="after"):
        TestClient(app).get("/")


def test_test_client_exception_in_background_task_reaches_test() -> None:
    def fail() -> None:
        raise Boom("in background")

    with pytest.raises(Boom, match="in background"):
        TestClient(PlainTextResponse("ok", background=BackgroundTask(fail))).get("/")


def _current_async_library() -> str:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "asyncio"


def test_test_client_runs_the_app_on_the_chosen_backend(backend: Backend) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse(_current_async_library())(scope, receive, send)

    assert TestClient(app, backend=backend).get("/").text == backend


def test_test_client_backend_options_are_passed_to_the_event_loop() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse(str(asyncio.get_running_loop().get_debug()))(scope, receive, send)

    assert (
        TestClient(app, backend="asyncio", backend_options={"debug": True}).get("/").text == "True"
    )


@pytest.mark.parametrize(
    ("url", "path", "raw_path"),
    [
        ("/caf%C3%A9/a%20b", "/café/a b", "/caf%C3%A9/a%20b"),
        ("/a%2Fb", "/a/b", "/a%2Fb"),
        ("/plain/path", "/plain/path", "/plain/path"),
        ("/percent%25sign", "/percent%sign", "/percent%25sign"),
    ],
)
def test_test_client_decodes_path_and_keeps_raw_path_encoded(
    url: str, path: str, raw_path: str
) -> None:
    data = TestClient(scope_echo_app()).get(url).json()
    assert data["path"] == path
    assert data["raw_path"] == raw_path


def test_test_client_raw_path_excludes_query_string() -> None:
    data = TestClient(scope_echo_app()).get("/search?q=1").json()
    assert data["raw_path"] == "/search"
    assert data["query_string"] == "q=1"


def test_test_client_query_params_reach_the_scope() -> None:
    data = TestClient(scope_echo_app()).get("/p", params={"a": "1", "b": "x y", "c": "&="}).json()
    assert data["query_params"] == {"a": "1", "b": "x y", "c": "&="}
    assert data["query_string"].startswith("a=1&b=x")
    assert "&=" not in data["query_string"]


def test_test_client_query_string_in_url_reaches_the_scope() -> None:
    data = TestClient(scope_echo_app()).get("/p?tag=a&tag=b&q=caf%C3%A9").json()
    assert data["query_string"] == "tag=a&tag=b&q=caf%C3%A9"
    assert data["query_params"]["q"] == "café"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_test_client_method_reaches_the_scope(method: str) -> None:
    assert TestClient(scope_echo_app()).request(method, "/").json()["method"] == method


def test_test_client_raw_content_body_reaches_the_app(backend: Backend) -> None:
    data = TestClient(scope_echo_app(), backend=backend).post("/", content=b"raw \xffbytes").json()
    assert data["body"] == b"raw \xffbytes".decode("latin-1")


def test_test_client_json_body_reaches_the_app() -> None:
    data = TestClient(scope_echo_app()).post("/", json={"a": 1, "b": ["é"]}).json()
    assert json.loads(data["body"].encode("latin-1")) == {"a": 1, "b": ["é"]}
    assert ["content-type", "application/json"] in data["headers"]


def test_test_client_form_data_body_reaches_the_app() -> None:
    data = TestClient(scope_echo_app()).post("/", data={"a": "1", "b": "x y"}).json()
    assert data["body"] == "a=1&b=x+y"
    assert ["content-type", "application/x-www-form-urlencoded"] in data["headers"]


def test_test_client_iterator_body_reaches_the_app() -> None:
    data = TestClient(scope_echo_app()).post("/", content=iter([b"chunk1-", b"chunk2"])).json()
    assert data["body"] == "chunk1-chunk2"


def test_test_client_large_body_reaches_the_app_intact() -> None:
    payload = os.urandom(1_000_000)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = await Request(scope, receive).body()
        await PlainTextResponse(f"{len(body)}:{body == payload}")(scope, receive, send)

    assert TestClient(app).post("/", content=payload).text == "1000000:True"


# ---- TestClient: lifespan ----


def lifespan_app(events: list[str]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    events.append("startup")
                    scope["state"]["db"] = "connected"
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    events.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        events.append("request " + scope["path"])
        state = scope.get("state", {})
        seen = {key: value for key, value in state.items() if isinstance(value, str)}
        state["mutated"] = "by request"
        await JSONResponse(seen)(scope, receive, send)

    return app


def test_test_client_context_manager_runs_lifespan_startup_and_shutdown(backend: Backend) -> None:
    events: list[str] = []
    with TestClient(lifespan_app(events), backend=backend) as client:
        assert events == ["startup"]
        client.get("/a")
        assert events == ["startup", "request /a"]
    assert events == ["startup", "request /a", "shutdown"]


def test_test_client_lifespan_state_is_copied_into_request_scopes(backend: Backend) -> None:
    with TestClient(lifespan_app([]), backend=backend) as client:
        assert client.get("/").json() == {"db": "connected"}
        # A request writing to its state copy does not leak into later requests.
        assert client.get("/").json() == {"db": "connected"}


def test_test_client_lifespan_state_is_visible_as_request_state() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["greeting"] = "hello from startup"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await PlainTextResponse(Request(scope, receive).state.greeting)(scope, receive, send)

    with TestClient(app) as client:
        assert client.get("/").text == "hello from startup"


def test_test_client_without_context_manager_skips_lifespan() -> None:
    events: list[str] = []
    client = TestClient(lifespan_app(events))
    assert client.get("/x").json() == {}
    assert events == ["request /x"]


def test_test_client_lifespan_startup_failure_raises(backend: Backend) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        raise RuntimeError("database unreachable")

    with (
        pytest.raises(RuntimeError, match="database unreachable"),
        TestClient(app, backend=backend),
    ):
        pass  # pragma: no cover


def test_test_client_lifespan_exception_during_startup_raises() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise Boom("startup crashed")

    with pytest.raises(Boom, match="startup crashed"), TestClient(app):
        pass  # pragma: no cover


class AppBailed(BaseException):
    """Not an Exception, as pytest's own failures (pytest.fail) are not."""


async def lifespan_that_bails(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    raise AppBailed("lifespan bailed")


def test_test_client_raises_a_base_exception_of_the_lifespan_as_itself(backend: Backend) -> None:
    bailed = pytest.raises(AppBailed, match="lifespan bailed")
    with bailed, TestClient(lifespan_that_bails, backend=backend):
        pass  # pragma: no cover - entering raises


def test_websocket_test_session_raises_a_base_exception_of_the_app_as_itself(
    backend: Backend,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise AppBailed("websocket bailed")

    bailed = pytest.raises(AppBailed, match="websocket bailed")
    with bailed, TestClient(app, backend=backend).websocket_connect("/"):
        pass  # pragma: no cover - entering raises


@pytest.mark.anyio
async def test_async_test_client_raises_a_base_exception_of_the_lifespan_as_itself() -> None:
    with anyio.fail_after(5), pytest.raises(AppBailed, match="lifespan bailed"):
        async with AsyncTestClient(lifespan_that_bails):
            pass  # pragma: no cover - entering raises


def test_lifespan_of_an_app_that_fails_before_reading_startup_raises_its_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("no lifespan here")

    with pytest.raises(LookupError, match="no lifespan here"), TestClient(app):
        pass


@pytest.mark.parametrize("attempt", range(5))
def test_test_client_lifespan_answered_by_a_response_raises_every_time(
    backend: Backend, attempt: int
) -> None:
    # The app answers at once and returns: whether it has returned before start-up sends its
    # event (on trio, by chance) must not decide the outcome.
    with (
        pytest.raises(RuntimeError, match=r"Unexpected lifespan message: 'http\.response\.start'"),
        TestClient(PlainTextResponse("not a lifespan answer"), backend=backend),
    ):
        pass  # pragma: no cover


def test_test_client_lifespan_startup_failed_message_alone_raises() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no config"})

    outcome: list[BaseException | None] = []

    def enter_client() -> None:
        try:
            with TestClient(app):
                pass
        except Exception as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    # Run in a thread so a client that waits forever fails this test quickly instead of hanging it.
    thread = threading.Thread(target=enter_client, daemon=True)
    thread.start()
    thread.join(5)
    assert len(outcome) == 1, "entering the TestClient did not finish"
    assert isinstance(outcome[0], Exception)


def test_test_client_lifespan_runs_through_its_overridable_hooks(backend: Backend) -> None:
    events: list[str] = []

    class LoggingTestClient(TestClient):  # type: ignore[misc, valid-type]
        async def lifespan(self) -> None:
            events.append("lifespan")
            await super().lifespan()

        async def wait_startup(self) -> None:
            events.append("wait_startup")
            await super().wait_startup()

        async def wait_shutdown(self) -> None:
            events.append("wait_shutdown")
            await super().wait_shutdown()

    client = LoggingTestClient(lifespan_app(events), backend=backend)
    with client:
        assert client.task is not None
    assert events == ["lifespan", "wait_startup", "startup", "wait_shutdown", "shutdown"]


# ---- TestClient: streaming ----


def test_test_client_stream_returns_before_the_app_finishes(backend: Backend) -> None:
    release = threading.Event()
    finished = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await anyio.to_thread.run_sync(release.wait, 5)
        await send({"type": "http.response.body", "body": b"second", "more_body": False})
        finished.set()

    client = TestClient(app, backend=backend)
    with client.stream("GET", "/") as response:
        assert response.status_code == 200
        assert not finished.is_set()
        chunks = response.iter_raw()
        assert next(chunks) == b"first"
        assert not finished.is_set()
        release.set()
        assert b"".join(chunks) == b"second"
    assert finished.wait(2)


def test_test_client_closing_a_stream_early_cancels_the_app(backend: Backend) -> None:
    cancelled = threading.Event()
    finally_ran = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"chunk", "more_body": True})
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        finally:
            finally_ran.set()

    client = TestClient(app, backend=backend)
    with client.stream("GET", "/") as response:
        assert next(response.iter_raw()) == b"chunk"
    assert finally_ran.wait(2)
    assert cancelled.is_set()


def test_test_client_stream_of_streaming_response_yields_chunks_in_order(backend: Backend) -> None:
    async def chunks() -> Any:
        for i in range(3):
            yield f"part{i};"

    client = TestClient(StreamingResponse(chunks()), backend=backend)
    with client.stream("GET", "/") as response:
        assert response.read() == b"part0;part1;part2;"


def test_test_client_app_waits_for_the_test_to_take_each_body_message(backend: Backend) -> None:
    sent: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_start(send)
        for body in [b"one", b"", b"two"]:
            await send_chunk(send, body)
            sent.append(body)
        await send_chunk(send, b"", more_body=False)

    with TestClient(app, backend=backend).stream("GET", "/") as response:
        assert sent == []  # the first chunk waits for the test
        chunks = response.iter_raw()
        assert next(chunks) == b"one"
        assert len(sent) <= 1  # the app waits in the send of b"" until the test takes it
        assert next(chunks) == b"two"  # the empty message between is taken, not yielded
        assert sent[:2] == [b"one", b""]
        assert list(chunks) == []
    assert sent == [b"one", b"", b"two"]


def test_test_client_chunks_are_copied_when_sent_so_a_reused_buffer_cannot_change_them(
    backend: Backend,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        buffer = bytearray(b"one")
        await send_start(send)
        await send_chunk(send, memoryview(buffer))  # type: ignore[arg-type]
        buffer[:] = b"two"
        await send_chunk(send, buffer)  # type: ignore[arg-type]
        buffer[:] = b"end"
        await send_chunk(send, b"", more_body=False)

    client = TestClient(app, backend=backend)
    with client.stream("GET", "/") as response:
        assert list(response.iter_raw()) == [b"one", b"two"]
    assert client.get("/").content == b"onetwo"


def test_test_client_response_to_head_has_no_body_even_if_the_app_sends_one(
    backend: Backend,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_start(send)
        await send_chunk(send, b"not for HEAD", more_body=False)

    client = TestClient(app, backend=backend)
    assert client.head("/").content == b""
    assert client.get("/").content == b"not for HEAD"


def test_test_client_body_ends_when_the_app_returns(backend: Backend) -> None:
    log: list[str] = []

    async def background() -> None:
        await anyio.sleep(0.01)
        log.append("background done")

    app = PlainTextResponse("ok", background=BackgroundTask(background))
    with TestClient(app, backend=backend).stream("GET", "/") as response:
        assert list(response.iter_raw()) == [b"ok"]
        assert log == ["background done"]


def test_test_client_closing_a_stream_before_the_trailers_cancels_the_app(
    backend: Backend,
) -> None:
    log: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send_chunk(send, b"body", more_body=False)
        try:
            await anyio.sleep_forever()  # the trailers never come
        except anyio.get_cancelled_exc_class():
            log.append("cancelled")
            raise

    with TestClient(app, backend=backend).stream("GET", "/") as response:
        assert next(response.iter_raw()) == b"body"
    assert log == ["cancelled"]


def cancel_logging_app(log: list[str]) -> ASGIApp:
    """An app whose response is complete at once and whose background task never ends, unless
    it is cancelled, which it logs."""

    async def background() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            log.append("cancelled")
            raise

    return ignoring_lifespan(PlainTextResponse("ok", background=BackgroundTask(background)))


def test_test_client_close_cancels_the_app_of_a_response_left_open(backend: Backend) -> None:
    log: list[str] = []
    client = TestClient(cancel_logging_app(log), backend=backend)
    response = client.send(client.build_request("GET", "/"), stream=True)
    assert next(response.iter_raw()) == b"ok"
    assert log == []
    client.close()
    assert log == ["cancelled"]


def test_test_client_leaving_with_cancels_the_app_of_a_response_left_open(
    backend: Backend,
) -> None:
    log: list[str] = []
    client = TestClient(cancel_logging_app(log), backend=backend)
    with client:
        response = client.send(client.build_request("GET", "/"), stream=True)
        assert next(response.iter_raw()) == b"ok"
        assert log == []
    assert log == ["cancelled"]


# ---- TestClient: trailers, debug info, and responses out of order ----


def trailers_app(*messages: Message, then: BaseException | None = None) -> ASGIApp:
    """An app that declares trailers, sends "hello", then `messages`, then raises `then`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.trailers" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send_chunk(send, b"hello", more_body=False)
        for message in messages:
            await send(message)
        if then is not None:
            raise then

    return app


def trailers(headers: list[tuple[bytes, bytes]], more: bool = False) -> Message:
    """An ``http.response.trailers`` message."""
    return {"type": "http.response.trailers", "headers": headers, "more_trailers": more}


def test_test_client_puts_trailers_in_the_response_extensions_not_its_headers(
    backend: Backend,
) -> None:
    app = trailers_app(trailers([(b"x-item", b"one")], more=True), trailers([(b"x-item", b"two")]))
    response = TestClient(app, backend=backend).get("/")
    assert response.content == b"hello"
    assert response.extensions["http.response.trailers"] == [
        (b"x-item", b"one"),
        (b"x-item", b"two"),
    ]
    assert "x-item" not in response.headers


@pytest.mark.parametrize(
    ("messages", "expected"),
    [([], []), ([trailers([(b"x-item", b"partial")], more=True)], [(b"x-item", b"partial")])],
)
def test_test_client_trailers_of_an_app_that_stops_early_are_those_it_sent(
    backend: Backend, messages: list[Message], expected: list[Any]
) -> None:
    response = TestClient(trailers_app(*messages), backend=backend).get("/")
    assert response.extensions["http.response.trailers"] == expected


def test_test_client_response_without_declared_trailers_has_no_trailers_extension() -> None:
    assert "http.response.trailers" not in TestClient(PlainTextResponse("x")).get("/").extensions


def test_test_client_error_after_some_trailers_is_raised_unless_told_not_to(
    backend: Backend,
) -> None:
    app = trailers_app(trailers([(b"x-item", b"partial")], more=True), then=Boom("trailers"))
    with pytest.raises(Boom, match="trailers"):
        TestClient(app, backend=backend).get("/")
    response = TestClient(app, backend=backend, raise_server_exceptions=False).get("/")
    assert response.content == b"hello"
    assert response.extensions["http.response.trailers"] == [(b"x-item", b"partial")]


def test_test_client_closing_after_the_trailers_waits_for_the_app(backend: Backend) -> None:
    sent_trailers = threading.Event()
    log: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await trailers_app(trailers([(b"x-item", b"one")]))(scope, receive, send)
        sent_trailers.set()
        await anyio.sleep(0.01)
        log.append("returned")

    with TestClient(app, backend=backend).stream("GET", "/") as response:
        assert next(response.iter_raw()) == b"hello"
        assert sent_trailers.wait(5)
        assert response.extensions["http.response.trailers"] == [(b"x-item", b"one")]
    assert log == ["returned"]


PLAIN_START: Message = {"type": "http.response.start", "status": 200}
TRAILING_START: Message = {**PLAIN_START, "trailers": True}
EMPTY_BODY: Message = {"type": "http.response.body"}
EMPTY_TRAILERS: Message = {"type": "http.response.trailers"}


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([], "TestClient did not receive any response"),
        ([PLAIN_START, PLAIN_START], 'multiple "http.response.start"'),
        ([EMPTY_BODY], 'Received "http.response.body" without "http.response.start"'),
        (
            [PLAIN_START, EMPTY_BODY, EMPTY_BODY],
            'Received "http.response.body" after response completed',
        ),
        ([EMPTY_TRAILERS], "without declaring trailers"),
        ([PLAIN_START, EMPTY_TRAILERS], "without declaring trailers"),
        ([TRAILING_START, EMPTY_TRAILERS], "before body completed"),
        (
            [TRAILING_START, EMPTY_BODY, EMPTY_BODY],
            'Received "http.response.body" after body completed',
        ),
        ([TRAILING_START, EMPTY_BODY, EMPTY_TRAILERS, EMPTY_TRAILERS], "after response completed"),
    ],
)
def test_test_client_response_messages_out_of_order_raise_assertion_error(
    backend: Backend, messages: list[Message], error: str
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    with pytest.raises(AssertionError, match=error):
        TestClient(app, backend=backend).get("/")


def test_test_client_response_of_an_app_that_sends_nothing_is_500_unless_raised() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    response = TestClient(app, raise_server_exceptions=False).get("/")
    assert (response.status_code, response.content) == (500, b"")


@pytest.mark.parametrize(
    "info",
    [
        {"fragment": "header", "blocks": ["nav", "title"]},
        {"template": "index.html", "context": {"name": "world"}, "blocks": ["nav"]},
    ],
)
def test_test_client_response_carries_debug_info_in_its_extensions(
    backend: Backend, info: dict[str, Any]
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.debug" in scope["extensions"]
        await send_start(send)
        await send({"type": "http.response.debug", "info": info})
        await send_chunk(send, b"page", more_body=False)

    response = TestClient(app, backend=backend).get("/")
    assert response.extensions["http.response.debug"] == info
    # `template` and `context` are attributes too, when given, and only then.
    assert getattr(response, "template", None) == info.get("template")
    assert getattr(response, "context", None) == info.get("context")
    assert hasattr(response, "template") == ("template" in info)


def test_test_client_ignores_a_response_message_of_an_unknown_type(backend: Backend) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_start(send)
        await send({"type": "http.response.zerocopysend.unknown"})
        await send_chunk(send, b"ok", more_body=False)

    assert TestClient(app, backend=backend).get("/").content == b"ok"


# ---- WebSockets ----
# TestClient.websocket_connect and WebSocketTestSession, on both backends, outside and inside
# `with TestClient(app)`; then the bad input of issue 5.


async def echo(websocket: WebSocket) -> None:
    """Echo each frame as it came: text as text, bytes as bytes."""
    await websocket.accept()
    while (message := await websocket.receive())["type"] == "websocket.receive":
        await websocket.send({**message, "type": "websocket.send"})


def echo_client(backend: Backend) -> TestClient:
    return TestClient(Starlite(routes=[WebSocketRoute("/", echo)]), backend=backend)


def test_session_sends_and_receives_each_kind_of_frame(backend: Backend) -> None:
    with echo_client(backend).websocket_connect("/") as websocket:
        websocket.send_text("h\u00e9llo")
        assert websocket.receive_text() == "h\u00e9llo"
        websocket.send_bytes(b"\x00\xff")
        assert websocket.receive_bytes() == b"\x00\xff"
        websocket.send_json({"a": ["\u00e9", 1]})
        assert websocket.receive_json() == {"a": ["\u00e9", 1]}
        websocket.send_json([1, None], mode="binary")
        assert websocket.receive_json(mode="binary") == [1, None]
        websocket.send_json({"a": "\u00e9", "b": [1]})
        assert websocket.receive() == {"type": "websocket.send", "text": '{"a":"\u00e9","b":[1]}'}
        websocket.send_json({"a": "\u00e9"}, mode="binary")
        assert websocket.receive() == {"type": "websocket.send", "bytes": '{"a":"\u00e9"}'.encode()}
        with pytest.raises(RuntimeError, match='The "mode" argument'):
            websocket.send_json(1, mode="xml")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match='The "mode" argument'):
            websocket.receive_json(mode="xml")  # type: ignore[arg-type]


def test_session_accepted_subprotocol_and_extra_headers(backend: Backend) -> None:
    offered: list[Any] = []
    headers = [(b"x-one", b"1"), (b"x-one", b"2"), (b"x-two", b"\xe9")]

    async def endpoint(websocket: WebSocket) -> None:
        subprotocols = websocket.scope["subprotocols"]
        offered.append((subprotocols, websocket.headers.get("sec-websocket-protocol")))
        if subprotocols:
            await websocket.accept(subprotocol=subprotocols[-1], headers=headers)
        else:
            await websocket.accept()
        await websocket.close()

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    with client.websocket_connect("/", subprotocols=["v1", "v2"]) as websocket:
        assert websocket.accepted_subprotocol == "v2"
        assert websocket.extra_headers == headers
    with client.websocket_connect("/") as websocket:
        assert websocket.accepted_subprotocol is None
        assert websocket.extra_headers == []
    assert offered == [(["v1", "v2"], "v1, v2"), ([], None)]


def test_entering_raises_websocket_disconnect_when_the_app_refuses(backend: Backend) -> None:
    app = Starlite(
        routes=[
            WebSocketRoute("/plain", WebSocketClose()),
            WebSocketRoute("/policy", WebSocketClose(1008, "policy")),
        ]
    )
    client = TestClient(app, backend=backend)
    for url, expected in [("/plain", (1000, "")), ("/policy", (1008, "policy"))]:
        refusal = refusal_at(client, url)
        assert (refusal.code, refusal.reason) == expected


def test_denial_response_raises_websocket_denial_response(backend: Backend) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"members "
        yield b"only"

    async def endpoint(websocket: WebSocket) -> None:
        response = StreamingResponse(parts(), status_code=401, headers={"x-why": "login"})
        await websocket.send_denial_response(response)

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    with pytest.raises(WebSocketDenialResponse) as info, client.websocket_connect("/"):
        pass  # pragma: no cover - entering raises
    denial = info.value
    assert isinstance(denial, httpx.Response)
    assert isinstance(denial, WebSocketDisconnect)
    assert (denial.status_code, denial.text) == (401, "members only")
    assert denial.headers["x-why"] == "login"


def test_session_close_reaches_the_app_and_exiting_waits_for_it(backend: Backend) -> None:
    seen: list[Any] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            seen.append((exc.code, exc.reason))
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        seen.append("cleaned up")

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    with client.websocket_connect("/") as websocket:
        websocket.close(4000, "bye")
    with client.websocket_connect("/"):
        pass  # leaving the block closes with 1000, and waits for the app to return
    assert seen == [(4000, "bye"), "cleaned up", (1000, ""), "cleaned up"]


def test_session_receive_raises_websocket_disconnect_when_the_app_closes(backend: Backend) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_bytes(b"raw")
        await websocket.close(4004, "done")

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    with client.websocket_connect("/") as websocket:
        assert websocket.receive() == {"type": "websocket.send", "bytes": b"raw"}
        assert websocket.receive() == close_message(4004, "done")
    for method in ["receive_text", "receive_bytes", "receive_json"]:
        with client.websocket_connect("/") as websocket:
            websocket.receive_bytes()
            with pytest.raises(WebSocketDisconnect) as info:
                getattr(websocket, method)()
            assert (info.value.code, info.value.reason) == (4004, "done"), method


def test_app_returning_closes_with_1000_and_sending_afterwards_raises(backend: Backend) -> None:
    async def close_and_return(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    async def just_return(websocket: WebSocket) -> None:
        await websocket.accept()

    app = Starlite(
        routes=[
            WebSocketRoute("/closes", close_and_return),
            WebSocketRoute("/returns", just_return),
            WebSocketRoute("/echo", echo),
        ]
    )
    client = TestClient(app, backend=backend)
    for url in ["/closes", "/returns"]:  # returning without a close looks like a close with 1000
        with client.websocket_connect(url) as websocket:
            with pytest.raises(WebSocketDisconnect) as info:
                websocket.receive_text()
            assert (info.value.code, info.value.reason) == (1000, ""), url
            websocket.receive()  # once the app has returned: its close was read already
            with pytest.raises(WebSocketDisconnected):
                websocket.send_text("too late")
    with client.websocket_connect("/echo") as websocket:
        websocket.close()
        websocket.receive()  # the app returns once it sees the close
        with pytest.raises(WebSocketDisconnected):
            websocket.send_text("after my own close")


def test_exiting_the_session_raises_what_the_app_raised(backend: Backend) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()
        raise Boom("after the close")

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    with pytest.raises(Boom, match="after the close"), client.websocket_connect("/"):
        pass


def test_exiting_the_session_cancels_an_app_that_will_not_return(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(starlite, "_WEBSOCKET_CLOSE_GRACE", 0.05)
    log: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await anyio.sleep_forever()
        finally:
            log.append("cancelled")

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    with client.websocket_connect("/"):
        pass
    assert log == ["cancelled"]


def test_exiting_the_session_cancels_at_once_an_app_that_waits_forever(backend: Backend) -> None:
    log: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await anyio.sleep_forever()  # it does not read the close
        except anyio.get_cancelled_exc_class():
            log.append("cancelled")
            raise

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    started = time.monotonic()
    with client.websocket_connect("/"):
        pass
    assert log == ["cancelled"]
    assert time.monotonic() - started < starlite._WEBSOCKET_CLOSE_GRACE / 2  # not the grace


def test_session_receive_raises_the_exception_of_an_app_that_died(backend: Backend) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        raise Boom("no close sent")

    raised: list[str] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(pytest.raises(Boom, match="no close sent"))  # again at exit
        websocket = stack.enter_context(TestClient(app, backend=backend).websocket_connect("/"))
        with pytest.raises(Boom, match="no close sent"):
            websocket.receive_text()
        raised.append("at receive")
    assert raised == ["at receive"]


def test_websocket_sees_lifespan_state_and_loop_only_inside_with_test_client(
    backend: Backend,
) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "from lifespan"}

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        greeting = getattr(websocket.state, "greeting", None)
        await websocket.send_json([greeting, _current_async_library(), threading.get_ident()])
        await websocket.close()

    async def page(request: Request) -> Response:
        return PlainTextResponse(str(threading.get_ident()))

    app = Starlite(routes=[WebSocketRoute("/ws", endpoint), Route("/", page)], lifespan=lifespan)
    outside = TestClient(app, backend=backend)
    with outside.websocket_connect("/ws") as websocket:
        assert websocket.receive_json()[:2] == [None, backend]
    with TestClient(app, backend=backend) as client:
        threads = {int(client.get("/").text)}
        for _ in range(2):
            with client.websocket_connect("/ws") as websocket:
                greeting, library, thread = websocket.receive_json()
            assert (greeting, library) == ("from lifespan", backend)
            threads.add(thread)
    assert len(threads) == 1  # the sessions and the request ran on the lifespan's event loop


# ---- WebSockets: bad input (issue 5) ----


@pytest.mark.parametrize(
    "frame", ['{"unterminated": ', "[NaN]", '"\\udfff"', "[-1e500]", "[" * 10_000, '{"a":1,"a":1}']
)
def test_invalid_json_on_a_json_socket_closes_with_1007_and_the_endpoint_ends_quietly(
    frame: str, backend: Backend
) -> None:
    ended: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for data in websocket.iter_json():
                await websocket.send_json(data)
        finally:
            ended.append("ended")

    app = Starlite(routes=[WebSocketRoute("/", endpoint)])
    client = TestClient(app, backend=backend)  # raises what the app lets out: nothing here
    with client.websocket_connect("/") as websocket:
        websocket.send_text('{"ok": [1, "\\ud83d\\ude00"]}')
        assert websocket.receive_json() == {"ok": [1, "\U0001f600"]}
        websocket.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert info.value.code == status.WS_1007_INVALID_FRAME_PAYLOAD_DATA
    assert info.value.reason == "The message is not valid JSON."
    assert ended == ["ended"]


def test_an_apps_own_handler_for_value_error_answers_invalid_json_on_a_socket(
    backend: Backend,
) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_json()

    async def handler(websocket: WebSocket, exc: Exception) -> None:
        await websocket.close(4000, str(exc))

    app = Starlite(routes=[WebSocketRoute("/", endpoint)], exception_handlers={ValueError: handler})
    with TestClient(app, backend=backend).websocket_connect("/") as websocket:
        websocket.send_text("[Infinity]")
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert (info.value.code, info.value.reason) == (
        4000,
        "Infinity is not JSON: line 1 column 2 (char 1)",
    )


def test_frame_of_the_wrong_kind_closes_with_1003(backend: Backend) -> None:
    reasons: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        method = websocket.query_params["method"]
        try:
            await getattr(websocket, method)()
        except WebSocketException as exc:
            reasons.append(exc.reason)
            raise

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    for method, frame in [("receive_text", bytes_frame(b"x")), ("receive_bytes", text_frame("x"))]:
        with client.websocket_connect(f"/?method={method}") as websocket:  # no app exception
            websocket.send(frame)
            with pytest.raises(WebSocketDisconnect) as info:
                websocket.receive_text()
        assert info.value.code == status.WS_1003_UNSUPPORTED_DATA, method
        assert info.value.reason == reasons[-1] != ""


def test_closing_with_a_reason_too_long_for_a_frame_raises_in_the_test(backend: Backend) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(1000, "r" * 124)

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    assert closes_then_raises(client, "/", True, ValueError) == status.WS_1011_INTERNAL_ERROR


@pytest.mark.parametrize("code", [status.WS_1008_POLICY_VIOLATION, 1006])
def test_a_close_code_and_reason_of_any_type_reach_the_client(code: int, backend: Backend) -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(code, VALIDATION_ERRORS)  # type: ignore[arg-type]

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    with client.websocket_connect("/") as websocket, pytest.raises(WebSocketDisconnect) as info:
        websocket.receive_text()
    assert info.value.code == code
    assert info.value.reason == VALIDATION_ERRORS


def test_app_using_its_websocket_after_the_end_gets_websocket_disconnected(
    backend: Backend,
) -> None:
    errors: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async for _ in websocket.iter_text():
            pass
        for operation in (websocket.receive_text, websocket.receive):
            try:
                await operation()
            except WebSocketDisconnected:
                errors.append("receive")
        await websocket.close()
        try:
            await websocket.send_text("late")
        except WebSocketDisconnected:
            errors.append("send")

    client = TestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), backend=backend)
    with client.websocket_connect("/") as websocket:
        websocket.send_text("one")
    assert errors == ["receive", "receive", "send"]


# ---- AsyncTestClient ----
# The apps above that know nothing of lifespan are wrapped in `ignoring_lifespan` for
# ``async with AsyncTestClient(app)``, which always runs the lifespan protocol.


def ignoring_lifespan(app: ASGIApp) -> ASGIApp:
    """`app`, returning at once on a lifespan scope, as an app without lifespan support does."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await app(scope, receive, send)

    return wrapped


def lifespan_of(
    *, before: Callable[[], None] = lambda: None, after: Callable[[], None] = lambda: None
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A Starlite lifespan calling `before` at start-up and `after` at shut-down."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        before()
        yield
        after()

    return lifespan


async def send_start(send: Send, status_code: int = 200) -> None:
    """Send an ``http.response.start`` with no headers."""
    await send({"type": "http.response.start", "status": status_code, "headers": []})


async def send_chunk(send: Send, body: bytes, more_body: bool = True) -> None:
    """Send an ``http.response.body`` message: by default, one chunk of more to come."""
    await send({"type": "http.response.body", "body": body, "more_body": more_body})


# ---- AsyncTestClient: the class and its import ----


def test_async_test_client_is_exported_and_is_an_httpx_async_client() -> None:
    assert "AsyncTestClient" in starlite.__all__
    assert issubclass(AsyncTestClient, httpx.AsyncClient)
    assert starlite.AsyncTestClient is AsyncTestClient  # built once


def test_async_test_client_imports_httpx_only_when_first_imported() -> None:
    result = run_python(
        textwrap.dedent(
            """
            import sys
            import starlite
            assert "httpx" not in sys.modules, "import starlite imported httpx"
            from starlite import AsyncTestClient
            assert "httpx" in sys.modules, "AsyncTestClient did not import httpx"
            import httpx
            assert issubclass(AsyncTestClient, httpx.AsyncClient)
            print("ok")
            """
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_async_test_client_falls_back_to_httpx2_without_httpx() -> None:
    result = run_python(
        textwrap.dedent(
            """
            import sys
            sys.modules["httpx"] = None  # as if httpx were not installed
            import anyio
            import httpx2
            from starlite import AsyncTestClient, PlainTextResponse

            assert httpx2.AsyncClient in AsyncTestClient.__mro__

            async def app(scope, receive, send):
                if scope["type"] == "http":
                    await PlainTextResponse("via httpx2")(scope, receive, send)

            async def main():
                async with AsyncTestClient(app) as client:
                    response = await client.get("/")
                assert isinstance(response, httpx2.Response)
                print(response.text)

            anyio.run(main)
            """
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "via httpx2"


# ---- AsyncTestClient: lifespan ----


@pytest.mark.anyio
async def test_async_test_client_runs_lifespan_start_up_on_enter_and_shut_down_on_exit() -> None:
    events: list[str] = []
    async with AsyncTestClient(lifespan_app(events)) as client:
        assert events == ["startup"]
        assert (await client.get("/a")).json() == {"db": "connected"}
        assert (await client.get("/b")).json() == {"db": "connected"}
        assert events == ["startup", "request /a", "request /b"]
    assert events == ["startup", "request /a", "request /b", "shutdown"]


@pytest.mark.anyio
async def test_async_test_client_runs_the_app_on_the_tests_own_event_loop(
    anyio_backend: Backend,
) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["type"], _current_async_library(), threading.get_ident()))
        if scope["type"] == "http":
            await PlainTextResponse("ok")(scope, receive, send)

    async with AsyncTestClient(app) as client:
        await client.get("/")
    here = (anyio_backend, threading.get_ident())
    assert seen == [("lifespan", *here), ("http", *here)]


@pytest.mark.anyio
async def test_async_test_client_raises_a_lifespan_start_up_failure_as_itself() -> None:
    def fail() -> None:
        raise Boom("start-up broke")

    entered: list[str] = []
    app = Starlite(lifespan=lifespan_of(before=fail))
    with anyio.fail_after(5), pytest.raises(Boom, match="start-up broke") as info:
        async with AsyncTestClient(app):
            entered.append("body")  # pragma: no cover - entering raises
    assert type(info.value) is Boom  # not an ExceptionGroup around it
    assert entered == []


@pytest.mark.anyio
async def test_async_test_client_raises_the_error_of_an_app_that_fails_on_a_lifespan_scope() -> (
    None
):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("no lifespan here")

    with anyio.fail_after(5), pytest.raises(LookupError, match="no lifespan here") as info:
        async with AsyncTestClient(app):
            pass  # pragma: no cover - entering raises
    assert type(info.value) is LookupError


@pytest.mark.anyio
async def test_async_test_client_raises_a_lifespan_shut_down_failure_at_exit() -> None:
    def fail() -> None:
        raise Boom("shut-down broke")

    async def page(request: Request) -> Response:
        return PlainTextResponse("served")

    served: list[str] = []
    app = Starlite(routes=[Route("/", page)], lifespan=lifespan_of(after=fail))
    with anyio.fail_after(5), pytest.raises(Boom, match="shut-down broke") as info:
        async with AsyncTestClient(app) as client:
            served.append((await client.get("/")).text)
    assert type(info.value) is Boom
    assert served == ["served"]


@pytest.mark.anyio
async def test_async_test_client_raises_at_exit_the_error_of_a_lifespan_that_crashed() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            raise Boom("lifespan crashed")  # while the test is still using the client
        await PlainTextResponse("served")(scope, receive, send)

    with anyio.fail_after(5), pytest.raises(Boom, match="lifespan crashed") as info:
        async with AsyncTestClient(app) as client:
            assert (await client.get("/")).text == "served"
    assert type(info.value) is Boom


@pytest.mark.anyio
async def test_async_test_client_lets_the_tests_own_exception_out_and_still_shuts_down() -> None:
    events: list[str] = []

    async def use_client() -> None:
        async with AsyncTestClient(lifespan_app(events)) as client:
            await client.get("/")
            raise KeyError("from the test")

    with anyio.fail_after(5), pytest.raises(KeyError, match="from the test") as info:
        await use_client()
    assert type(info.value) is KeyError  # not an ExceptionGroup around it
    assert events == ["startup", "request /", "shutdown"]


@pytest.mark.anyio
async def test_async_test_client_raises_a_start_up_failed_message_as_runtime_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no config"})

    with anyio.fail_after(5), pytest.raises(RuntimeError, match="no config"):
        async with AsyncTestClient(app):
            pass  # pragma: no cover - entering raises


@pytest.mark.anyio
async def test_async_test_client_cancels_a_lifespan_that_fails_start_up_and_does_not_return(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(starlite, "_LIFESPAN_FAILURE_GRACE", 0.05)
    log: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no config"})
        try:
            await receive()  # a shut-down that never comes
        finally:
            log.append("lifespan ended")

    with anyio.fail_after(5), pytest.raises(RuntimeError, match="no config"):
        async with AsyncTestClient(app):
            pass  # pragma: no cover - entering raises
    assert log == ["lifespan ended"]


@pytest.mark.anyio
async def test_async_test_client_raises_a_shut_down_failed_message_at_exit() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.failed", "message": "pool would not close"})
            return
        await PlainTextResponse("served")(scope, receive, send)

    with anyio.fail_after(5), pytest.raises(RuntimeError, match="pool would not close"):
        async with AsyncTestClient(app) as client:
            assert (await client.get("/")).text == "served"


async def returns_on_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await PlainTextResponse("served")(scope, receive, send)


async def returns_after_start_up(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        return  # without waiting for the shut-down
    await PlainTextResponse("served")(scope, receive, send)


@pytest.mark.anyio
@pytest.mark.parametrize("app", [returns_on_lifespan, returns_after_start_up])
async def test_async_test_client_serves_an_app_whose_lifespan_returns_early(app: ASGIApp) -> None:
    with anyio.fail_after(5):
        async with AsyncTestClient(app) as client:
            assert (await client.get("/")).text == "served"
            assert client.app_state == {}


@pytest.mark.anyio
async def test_async_test_client_app_state_is_the_lifespan_state_copied_into_each_request() -> None:
    shared: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello", "shared": shared}

    async def page(request: Request) -> Response:
        before = getattr(request.state, "mine", None)
        request.state.mine = request.query_params["n"]  # on this request's copy only
        request.state.shared.append(request.query_params["n"])  # the one list: seen by all
        return JSONResponse([request.state.greeting, before])

    app = Starlite(routes=[Route("/", page)], lifespan=lifespan)
    async with AsyncTestClient(app) as client:
        assert client.app_state == {"greeting": "hello", "shared": []}
        assert client.app_state["shared"] is shared
        assert (await client.get("/?n=1")).json() == ["hello", None]
        assert (await client.get("/?n=2")).json() == ["hello", None]
        assert "mine" not in client.app_state
        assert shared == ["1", "2"]


@pytest.mark.anyio
async def test_async_test_client_request_outside_async_with_raises_runtime_error() -> None:
    events: list[str] = []
    with pytest.raises(RuntimeError, match="async with AsyncTestClient"):
        await AsyncTestClient(lifespan_app(events)).get("/")
    assert events == []  # neither the lifespan nor the app ran
    async with AsyncTestClient(lifespan_app(events)) as client:
        await client.get("/")
    with pytest.raises(RuntimeError):
        await client.get("/")  # after exit, too
    assert events == ["startup", "request /", "shutdown"]


@pytest.mark.anyio
async def test_async_test_client_request_to_a_ws_url_names_websocket_connect() -> None:
    async with AsyncTestClient(ignoring_lifespan(scope_echo_app())) as client:
        for url in ["ws://testserver/ws", "wss://testserver/ws"]:
            with pytest.raises(RuntimeError, match=r"opened with websocket_connect\(\)"):
                await client.get(url)
        assert (await client.get("/")).status_code == 200  # the client is still usable


# ---- AsyncTestClient: requests ----


@pytest.mark.anyio
async def test_async_test_client_gives_a_complete_http_scope() -> None:
    async with AsyncTestClient(ignoring_lifespan(scope_echo_app())) as client:
        data = (await client.get("/items?q=1")).json()
    assert data["type"] == "http"
    assert data["http_version"] == "1.1"
    assert data["method"] == "GET"
    assert (data["scheme"], data["path"], data["raw_path"]) == ("http", "/items", "/items")
    assert data["raw_path_is_bytes"]
    assert (data["query_string"], data["query_string_is_bytes"]) == ("q=1", True)
    assert data["root_path"] == ""
    assert data["headers_are_bytes"]
    assert all(name == name.lower() for name, _ in data["headers"])
    assert ["host", "testserver"] in data["headers"]
    assert ["user-agent", "testclient"] in data["headers"]
    assert data["client"] == ["testclient", 50000]
    assert data["server"] == ["testserver", 80]
    assert "http.response.debug" in data["extensions"]
    assert data["state_is_dict"]
    assert data["url"] == "http://testserver/items?q=1"


@pytest.mark.anyio
async def test_async_test_client_base_url_root_path_and_client_reach_the_scope() -> None:
    app = ignoring_lifespan(scope_echo_app())
    client = AsyncTestClient(
        app, base_url="https://example.org:8443/api", root_path="/mounted", client=("10.1.2.3", 4)
    )
    async with client:
        data = (await client.get("/users")).json()
    assert data["scheme"] == "https"
    assert data["path"] == "/api/users"
    assert data["root_path"] == "/mounted"
    assert ["host", "example.org:8443"] in data["headers"]
    assert data["server"] == ["example.org", 8443]
    assert data["client"] == ["10.1.2.3", 4]


@pytest.mark.anyio
async def test_async_test_client_request_client_is_the_client_argument() -> None:
    async def page(request: Request) -> Response:
        assert request.client is not None
        return JSONResponse([request.client.host, request.client.port])

    app = Starlite(routes=[Route("/", page)])
    async with AsyncTestClient(app, client=("192.0.2.7", 6543)) as client:
        assert (await client.get("/")).json() == ["192.0.2.7", 6543]
    async with AsyncTestClient(app) as client:
        assert (await client.get("/")).json() == ["testclient", 50000]


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_async_test_client_method_shortcut_reaches_the_scope(method: str) -> None:
    async with AsyncTestClient(ignoring_lifespan(scope_echo_app())) as client:
        response = await getattr(client, method.lower())("/")
    assert response.json()["method"] == method


@pytest.mark.anyio
async def test_async_test_client_head_request_gets_headers_without_body() -> None:
    async with AsyncTestClient(ignoring_lifespan(PlainTextResponse("body"))) as client:
        response = await client.head("/")
    assert response.status_code == 200
    assert response.headers["content-length"] == "4"
    assert response.content == b""


@pytest.mark.anyio
async def test_async_test_client_sends_json_form_and_raw_bodies() -> None:
    async with AsyncTestClient(ignoring_lifespan(scope_echo_app())) as client:
        as_json = (await client.post("/", json={"a": 1, "b": ["é"]})).json()
        as_form = (await client.put("/", data={"a": "1", "b": "x y"})).json()
        as_bytes = (await client.patch("/", content=b"raw \xffbytes")).json()
    assert as_json["body"].encode("latin-1").decode() == '{"a":1,"b":["é"]}'
    assert ["content-type", "application/json"] in as_json["headers"]
    assert as_form["body"] == "a=1&b=x+y"
    assert ["content-type", "application/x-www-form-urlencoded"] in as_form["headers"]
    assert as_bytes["body"] == b"raw \xffbytes".decode("latin-1")


@pytest.mark.anyio
async def test_async_test_client_sends_files_as_multipart() -> None:
    async with AsyncTestClient(form_app()) as client:
        response = await client.post(
            "/",
            data={"title": "notes"},
            files={"upload": ("notes.txt", b"line one\nline two", "text/plain")},
        )
    assert response.json() == [
        ["title", "notes"],
        [
            "upload",
            {
                "filename": "notes.txt",
                "content_type": "text/plain",
                "size": 17,
                "data": "line one\nline two",
            },
        ],
    ]


@pytest.mark.anyio
async def test_async_test_client_sends_query_params() -> None:
    async with AsyncTestClient(ignoring_lifespan(scope_echo_app())) as client:
        data = (await client.get("/p", params={"a": "1", "b": "x y", "c": "&="})).json()
    assert data["query_params"] == {"a": "1", "b": "x y", "c": "&="}
    assert "&=" not in data["query_string"]


@pytest.mark.anyio
async def test_async_test_client_sends_default_and_per_request_headers() -> None:
    app = ignoring_lifespan(scope_echo_app())
    async with AsyncTestClient(app, headers={"X-Token": "default", "X-Other": "o"}) as client:
        headers = (await client.get("/", headers={"X-Token": "override"})).json()["headers"]
    assert [value for name, value in headers if name == "x-token"] == ["override"]
    assert ["x-other", "o"] in headers
    assert ["user-agent", "testclient"] in headers


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["User-Agent", "user-agent", "USER-AGENT"])
async def test_async_test_client_user_agent_given_in_any_case_replaces_the_default(
    name: str,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse(Request(scope).headers.getlist("user-agent"))(scope, receive, send)

    async with AsyncTestClient(ignoring_lifespan(app), headers={name: "custom/1.0"}) as client:
        assert (await client.get("/")).json() == ["custom/1.0"]


@pytest.mark.anyio
async def test_async_test_client_sends_back_a_cookie_the_app_set() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/login":
            response: Response = PlainTextResponse("logged in")
            response.set_cookie("session", "abc123")
        else:
            response = JSONResponse(Request(scope).cookies)
        await response(scope, receive, send)

    async with AsyncTestClient(ignoring_lifespan(app), cookies={"theme": "dark"}) as client:
        assert (await client.get("/me")).json() == {"theme": "dark"}
        await client.get("/login")
        assert client.cookies["session"] == "abc123"
        assert (await client.get("/me")).json() == {"theme": "dark", "session": "abc123"}


@pytest.mark.anyio
async def test_async_test_client_follows_redirects_unless_told_not_to() -> None:
    app = ignoring_lifespan(redirect_app())
    async with AsyncTestClient(app) as client:
        response = await client.get("/old")
        assert (response.status_code, response.text) == (200, "arrived at /new")
        assert str(response.url) == "http://testserver/new"
        assert [r.status_code for r in response.history] == [307, 302]
        assert (await client.get("/old", follow_redirects=False)).status_code == 307
    async with AsyncTestClient(app, follow_redirects=False) as client:
        response = await client.get("/old")
        assert (response.status_code, response.headers["location"]) == (307, "/middle")


@pytest.mark.anyio
async def test_async_test_client_serves_concurrent_requests() -> None:
    arrived = 0
    all_arrived = anyio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello"}

    async def page(request: Request) -> Response:
        nonlocal arrived
        arrived += 1
        if arrived == 10:
            all_arrived.set()
        await all_arrived.wait()  # each answers only once all ten are in the app at once
        return PlainTextResponse(f"{request.state.greeting} {request.path_params['n']}")

    results: dict[int, str] = {}
    app = Starlite(routes=[Route("/{n:int}", page)], lifespan=lifespan)
    async with AsyncTestClient(app) as client:

        async def fetch(n: int) -> None:
            results[n] = (await client.get(f"/{n}")).text

        with anyio.fail_after(5):
            async with anyio.create_task_group() as task_group:
                for n in range(10):
                    task_group.start_soon(fetch, n)
    assert results == {n: f"hello {n}" for n in range(10)}


@pytest.mark.anyio
async def test_async_test_client_response_carries_template_debug_info() -> None:
    template = object()
    context = {"title": "Home"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/page":
            info = {"template": template, "context": context}
            await send({"type": "http.response.debug", "info": info})
        await PlainTextResponse("rendered")(scope, receive, send)

    async with AsyncTestClient(ignoring_lifespan(app)) as client:
        response = await client.get("/page")
        plain = await client.get("/plain")
    assert response.text == "rendered"
    assert response.template is template  # type: ignore[attr-defined]
    assert response.context is context  # type: ignore[attr-defined]
    assert not hasattr(plain, "template")
    assert not hasattr(plain, "context")


@pytest.mark.anyio
async def test_async_test_client_puts_trailers_in_the_response_extensions() -> None:
    app = trailers_app(trailers([(b"x-item", b"one")], more=True), trailers([(b"x-item", b"two")]))
    async with AsyncTestClient(ignoring_lifespan(app)) as client:
        response = await client.get("/")
    assert response.content == b"hello"
    expected = [(b"x-item", b"one"), (b"x-item", b"two")]
    assert response.extensions["http.response.trailers"] == expected


@pytest.mark.anyio
async def test_async_test_client_serves_an_asgi2_app() -> None:
    def app(scope: Scope) -> Callable[[Receive, Send], Awaitable[None]]:
        async def instance(receive: Receive, send: Send) -> None:
            if scope["type"] == "http":  # returning on a lifespan scope
                await PlainTextResponse("ASGI 2")(scope, receive, send)

        return instance

    async with AsyncTestClient(app) as client:  # type: ignore[arg-type]
        assert (await client.get("/")).text == "ASGI 2"


# ---- AsyncTestClient: errors in the app ----


@pytest.mark.anyio
@pytest.mark.parametrize("app", [ignoring_lifespan(raising_app), error_app()])
async def test_async_test_client_raises_the_apps_exception_from_the_request(app: ASGIApp) -> None:
    async with AsyncTestClient(app) as client:
        with pytest.raises(Boom, match="kaboom") as info:
            await client.get("/")
        assert type(info.value) is Boom


@pytest.mark.anyio
@pytest.mark.parametrize("app", [ignoring_lifespan(raising_app), error_app()])
async def test_async_test_client_raise_server_exceptions_false_gives_500(app: ASGIApp) -> None:
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        assert (await client.get("/")).status_code == 500


async def fails_mid_stream(scope: Scope, receive: Receive, send: Send) -> None:
    await send_start(send)
    await send_chunk(send, b"partial")
    raise Boom("mid-stream")


@pytest.mark.anyio
async def test_async_test_client_raises_an_exception_after_the_start_from_the_response() -> None:
    chunks: list[bytes] = []

    async def read_stream(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/") as response:
            assert response.status_code == 200
            async for part in response.aiter_raw():
                chunks.append(part)

    async with AsyncTestClient(ignoring_lifespan(fails_mid_stream)) as client:
        with pytest.raises(Boom, match="mid-stream"):
            await client.get("/")
        with pytest.raises(Boom, match="mid-stream"):
            await read_stream(client)
        assert chunks == [b"partial"]
    async with AsyncTestClient(
        ignoring_lifespan(fails_mid_stream), raise_server_exceptions=False
    ) as client:
        response = await client.get("/")
        assert (response.status_code, response.content) == (200, b"partial")


@pytest.mark.anyio
async def test_async_test_client_raises_an_exception_after_the_start_when_closing_the_stream() -> (
    None
):
    raised = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_start(send)
        raised.set()
        raise Boom("before the body")

    async def leave_unread(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/") as response:
            assert response.status_code == 200
            await raised.wait()  # the body is left unread: closing the stream raises

    async with AsyncTestClient(ignoring_lifespan(app)) as client:
        with anyio.fail_after(5), pytest.raises(Boom, match="before the body"):
            await leave_unread(client)


@pytest.mark.anyio
async def test_async_test_client_app_returning_without_a_response_is_an_error() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    async with AsyncTestClient(app) as client:
        with pytest.raises(AssertionError, match="did not receive any response"):
            await client.get("/")
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/")
        assert (response.status_code, response.content) == (500, b"")


@pytest.mark.anyio
async def test_async_test_client_response_returns_once_background_tasks_finished() -> None:
    log: list[str] = []

    async def task() -> None:
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        log.append("background done")

    app = PlainTextResponse("ok", background=BackgroundTask(task))
    async with AsyncTestClient(ignoring_lifespan(app)) as client:
        assert (await client.get("/")).text == "ok"
        assert log == ["background done"]


@pytest.mark.anyio
async def test_async_test_client_raises_an_exception_of_a_background_task() -> None:
    def fail() -> None:
        raise Boom("in background")

    app = PlainTextResponse("ok", background=BackgroundTask(fail))
    async with AsyncTestClient(ignoring_lifespan(app)) as client:
        with pytest.raises(Boom, match="in background"):
            await client.get("/")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_test_client_app_blocking_the_event_loop_is_caught_by_blockbuster() -> None:
    # Proof that the autouse blockbuster watches the apps these tests run (on asyncio: it does
    # not watch trio), so that the tests that pass never blocked the test's event loop.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        os.stat(PROJECT_ROOT)
        await PlainTextResponse("stat'ed")(scope, receive, send)

    async with AsyncTestClient(ignoring_lifespan(app)) as client:
        with pytest.raises(BlockingError, match="stat"):
            await client.get("/")


# ---- AsyncTestClient: streaming ----


@pytest.mark.anyio
async def test_async_test_client_stream_returns_at_the_response_start() -> None:
    read_first = anyio.Event()
    log: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_start(send)
        await send_chunk(send, b"first")
        with anyio.fail_after(5):
            await read_first.wait()
        await send_chunk(send, b"second", more_body=False)
        log.append("app finished")

    chunks: list[bytes] = []
    with anyio.fail_after(5):
        async with AsyncTestClient(ignoring_lifespan(app)) as client:
            async with client.stream("GET", "/") as response:
                assert response.status_code == 200
                assert log == []  # returned at the response's start, the body still to come
                async for part in response.aiter_raw():
                    chunks.append(part)
                    if part == b"first":
                        assert log == []  # the app waits for this test to read its first chunk
                        read_first.set()
            assert log == ["app finished"]
    assert chunks == [b"first", b"second"]


@pytest.mark.anyio
async def test_async_test_client_leaving_a_stream_early_cancels_the_app() -> None:
    sent_first = anyio.Event()
    log: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            sent_first.set()
            await anyio.sleep_forever()
            yield b"never"  # pragma: no cover
        except anyio.get_cancelled_exc_class():
            log.append("cancelled")
            raise
        finally:
            log.append("finally")

    with anyio.fail_after(5):
        async with AsyncTestClient(ignoring_lifespan(StreamingResponse(body()))) as client:
            async with client.stream("GET", "/") as response:
                assert response.status_code == 200
                await sent_first.wait()
            assert log == ["cancelled", "finally"]  # by the time the stream is closed


@pytest.mark.anyio
async def test_async_test_client_slow_reader_makes_the_app_wait() -> None:
    sent = 0
    total = 60

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        await send_start(send)
        for _ in range(total):
            await send_chunk(send, b"x")
            sent += 1
        await send_chunk(send, b"", more_body=False)

    read = 0
    ahead: list[int] = []
    with anyio.fail_after(5):
        async with (
            AsyncTestClient(ignoring_lifespan(app)) as client,
            client.stream("GET", "/") as response,
        ):
            async for part in response.aiter_raw():
                read += len(part)
                await anyio.sleep(0.001)  # the app gets every chance to run ahead
                ahead.append(sent - read)
    assert read == total
    # At most 16 unread messages (Starlette's bound too): the app waits for the reader.
    assert max(ahead) <= 16
    assert max(ahead) >= 8  # and it does run ahead of the reader, in its own task


@pytest.mark.anyio
async def test_async_test_client_stream_of_a_streaming_response_yields_chunks_in_order() -> None:
    async def parts() -> AsyncIterator[str]:
        for i in range(3):
            yield f"part{i};"

    async def page(request: Request) -> Response:
        return StreamingResponse(parts())

    async with AsyncTestClient(Starlite(routes=[Route("/", page)])) as client:
        async with client.stream("GET", "/") as response:
            assert [part async for part in response.aiter_raw()] == [
                b"part0;",
                b"part1;",
                b"part2;",
            ]
        assert (await client.get("/")).text == "part0;part1;part2;"


# ---- AsyncTestClient: exit with requests under way ----


@pytest.mark.anyio
async def test_async_test_client_exit_cancels_the_app_of_a_stream_left_open() -> None:
    ran_ahead = anyio.Event()
    log: list[str] = []
    sent = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        try:
            await send_start(send)
            while True:  # an endless body
                await send_chunk(send, b"x")
                sent += 1
                if sent == 5:
                    ran_ahead.set()
        finally:
            log.append("app ended")

    with anyio.fail_after(5):
        async with contextlib.AsyncExitStack() as stack:
            async with AsyncTestClient(ignoring_lifespan(app)) as client:
                response = await stack.enter_async_context(client.stream("GET", "/"))
                await ran_ahead.wait()
                assert log == []
            assert log == ["app ended"]  # cancelled by the exit, not left running
            sent_at_exit = sent
            rest = await response.aread()  # what is left ends, instead of waiting forever
            assert len(rest) <= sent_at_exit
        assert sent == sent_at_exit


@pytest.mark.anyio
async def test_async_test_client_exit_cancels_the_app_of_a_request_under_way() -> None:
    in_app = anyio.Event()
    log: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        in_app.set()
        try:
            await anyio.sleep_forever()
        finally:
            log.append("app ended")

    async def request(client: httpx.AsyncClient) -> None:
        with pytest.raises(RuntimeError, match="closed before the app sent a response"):
            await client.get("/")
        log.append("request raised")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as task_group:
            async with AsyncTestClient(ignoring_lifespan(app)) as client:
                task_group.start_soon(request, client)
                await in_app.wait()
            assert log[0] == "app ended"
    assert log == ["app ended", "request raised"]


@pytest.mark.anyio
async def test_async_test_client_can_be_entered_again_and_used_outside_before(
    anyio_backend: str,
) -> None:
    starts: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[None]:
        starts.append("start")
        yield

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    client = AsyncTestClient(Starlite(routes=[Route("/", hello)], lifespan=lifespan))
    with pytest.raises(RuntimeError, match="async with"):
        await client.get("/")
    for _ in range(2):
        async with client:
            assert (await client.get("/")).text == "hello"
    assert starts == ["start", "start"]


def test_test_client_can_be_entered_again_and_used_outside(backend: Backend) -> None:
    starts: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[None]:
        starts.append("start")
        yield

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    client = TestClient(Starlite(routes=[Route("/", hello)], lifespan=lifespan), backend=backend)
    assert client.get("/").text == "hello"
    for _ in range(2):
        with client:
            assert client.get("/").text == "hello"
    assert client.get("/").text == "hello"
    assert starts == ["start", "start"]


# ---- AsyncTestClient: websockets ----
# ``async with client.websocket_connect(path) as websocket:``, WebSocketTestSession's API
# awaited, on the test's own event loop; each test is bounded in time by `fail_after`.


def async_ws_client(endpoint: Callable[[WebSocket], Awaitable[None]], **kwargs: Any) -> Any:
    """An AsyncTestClient of an app with `endpoint` at ``/``."""
    return AsyncTestClient(Starlite(routes=[WebSocketRoute("/", endpoint)]), **kwargs)


@pytest.mark.anyio
async def test_async_session_sends_and_receives_each_kind_of_frame() -> None:
    with anyio.fail_after(5):
        async with async_ws_client(echo) as client, client.websocket_connect("/") as websocket:
            assert isinstance(websocket, AsyncWebSocketTestSession)
            await websocket.send_text("h\u00e9llo")
            assert await websocket.receive_text() == "h\u00e9llo"
            await websocket.send_bytes(b"\x00\xff")
            assert await websocket.receive_bytes() == b"\x00\xff"
            await websocket.send_json({"a": ["\u00e9", 1]})
            assert await websocket.receive_json() == {"a": ["\u00e9", 1]}
            await websocket.send_json([1, None], mode="binary")
            assert await websocket.receive_json(mode="binary") == [1, None]
            await websocket.send_json({"a": "\u00e9", "b": [1]})
            expected = {"type": "websocket.send", "text": '{"a":"\u00e9","b":[1]}'}
            assert await websocket.receive() == expected
            await websocket.send({"type": "websocket.receive", "bytes": b"raw"})
            assert await websocket.receive() == {"type": "websocket.send", "bytes": b"raw"}
            with pytest.raises(RuntimeError, match='The "mode" argument'):
                await websocket.send_json(1, mode="xml")  # type: ignore[arg-type]
            with pytest.raises(RuntimeError, match='The "mode" argument'):
                await websocket.receive_json(mode="xml")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_async_session_handshake_carries_subprotocols_headers_and_cookies() -> None:
    seen: list[Any] = []

    async def endpoint(websocket: WebSocket) -> None:
        subprotocols = websocket.scope["subprotocols"]
        seen.append((subprotocols, dict(websocket.headers), websocket.cookies, websocket.url))
        subprotocol = subprotocols[-1] if subprotocols else None
        await websocket.accept(subprotocol=subprotocol, headers=[(b"x-accepted", b"yes")])
        await websocket.close()

    client = async_ws_client(endpoint, headers={"x-client": "c"}, cookies={"session": "s1"})
    with anyio.fail_after(5):
        async with client:
            session = client.websocket_connect(
                "/?q=1", subprotocols=["v1", "v2"], headers={"x-call": "k"}, params={"p": "2"}
            )
            async with session as websocket:
                assert websocket.accepted_subprotocol == "v2"
                assert websocket.extra_headers == [(b"x-accepted", b"yes")]
            async with client.websocket_connect("/") as websocket:
                assert websocket.accepted_subprotocol is None
    (subprotocols, headers, cookies, url), (no_subprotocols, plain_headers, _, _) = seen
    assert subprotocols == ["v1", "v2"]
    assert headers["sec-websocket-protocol"] == "v1, v2"
    assert (headers["x-client"], headers["x-call"], headers["user-agent"]) == (
        "c",
        "k",
        "testclient",
    )
    assert (headers["connection"], headers["sec-websocket-version"]) == ("upgrade", "13")
    assert cookies == {"session": "s1"}
    assert str(url) == "ws://testserver/?p=2"  # httpx's params replace the query, as for a get
    assert no_subprotocols == []
    assert "sec-websocket-protocol" not in plain_headers


@pytest.mark.anyio
async def test_async_session_sees_the_lifespan_state_on_the_tests_event_loop(
    anyio_backend: str,
) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlite) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "from lifespan"}

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json([websocket.state.greeting, _current_async_library()])
        await websocket.close()

    app = Starlite(routes=[WebSocketRoute("/", endpoint)], lifespan=lifespan)
    with anyio.fail_after(5):
        async with AsyncTestClient(app) as client:
            for _ in range(2):
                async with client.websocket_connect("/") as websocket:
                    assert await websocket.receive_json() == ["from lifespan", anyio_backend]


@pytest.mark.anyio
async def test_async_session_needs_the_client_open() -> None:
    client = async_ws_client(echo)
    with pytest.raises(RuntimeError, match="async with AsyncTestClient"):
        async with client.websocket_connect("/"):
            pass  # pragma: no cover - entering raises


@pytest.mark.anyio
async def test_async_session_close_codes_both_ways() -> None:
    seen: list[Any] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        if websocket.query_params.get("app") == "closes":
            await websocket.send_bytes(b"raw")
            await websocket.close(4004, "done")
            return
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            seen.append((exc.code, exc.reason))

    with anyio.fail_after(5):
        async with async_ws_client(endpoint) as client:
            async with client.websocket_connect("/?app=closes") as websocket:
                assert await websocket.receive() == {"type": "websocket.send", "bytes": b"raw"}
                assert await websocket.receive() == close_message(4004, "done")
            for method in ["receive_text", "receive_bytes", "receive_json"]:
                async with client.websocket_connect("/?app=closes") as websocket:
                    await websocket.receive_bytes()
                    with pytest.raises(WebSocketDisconnect) as info:
                        await getattr(websocket, method)()
                    assert (info.value.code, info.value.reason) == (4004, "done"), method
                    with pytest.raises(WebSocketDisconnected):
                        await websocket.send_text("too late")
            async with client.websocket_connect("/") as websocket:
                await websocket.close(4000, "bye")
            async with client.websocket_connect("/"):
                pass  # leaving closes with 1000
    assert seen == [(4000, "bye"), (1000, "")]


@pytest.mark.anyio
async def test_async_session_app_returning_without_close_reads_as_a_close_with_1000() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()

    with anyio.fail_after(5):
        async with async_ws_client(endpoint) as client, client.websocket_connect("/") as websocket:
            with pytest.raises(WebSocketDisconnect) as info:
                await websocket.receive_text()
            assert (info.value.code, info.value.reason) == (1000, "")
            assert await websocket.receive() == close_message(1000)


@pytest.mark.anyio
async def test_async_session_entering_raises_when_the_app_refuses_before_accepting() -> None:
    app = Starlite(
        routes=[
            WebSocketRoute("/plain", WebSocketClose()),
            WebSocketRoute("/policy", WebSocketClose(1008, "policy")),
        ]
    )
    entered: list[str] = []
    with anyio.fail_after(5):
        async with AsyncTestClient(app) as client:
            for url, expected in [("/plain", (1000, "")), ("/policy", (1008, "policy"))]:
                with pytest.raises(WebSocketDisconnect) as info:
                    async with client.websocket_connect(url):
                        entered.append(url)  # pragma: no cover - entering raises
                assert (info.value.code, info.value.reason) == expected
            assert (await client.get("/nothing")).status_code == 404  # still usable
    assert entered == []


@pytest.mark.anyio
async def test_async_session_denial_response_raises_websocket_denial_response() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"members "
        yield b"only"

    async def endpoint(websocket: WebSocket) -> None:
        response = StreamingResponse(parts(), status_code=401, headers={"x-why": "login"})
        await websocket.send_denial_response(response)

    with anyio.fail_after(5):
        async with async_ws_client(endpoint) as client:
            with pytest.raises(WebSocketDenialResponse) as info:
                async with client.websocket_connect("/"):
                    pass  # pragma: no cover - entering raises
    denial = info.value
    assert isinstance(denial, httpx.Response)
    assert isinstance(denial, WebSocketDisconnect)
    assert (denial.status_code, denial.text) == (401, "members only")
    assert denial.headers["x-why"] == "login"


@pytest.mark.anyio
async def test_async_session_raises_what_the_app_raised_at_receive_and_at_exit() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        raise Boom("no close sent")

    raised: list[str] = []
    with anyio.fail_after(5):
        client = AsyncTestClient(ignoring_lifespan(app))
        async with client, contextlib.AsyncExitStack() as stack:
            stack.enter_context(pytest.raises(Boom, match="no close sent"))  # again at exit
            websocket = await stack.enter_async_context(client.websocket_connect("/"))
            with pytest.raises(Boom, match="no close sent"):
                await websocket.receive_text()
            raised.append("at receive")
    assert raised == ["at receive"]


@pytest.mark.anyio
async def test_async_session_starlite_closes_with_1011_then_the_exit_raises() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise Boom("in the endpoint")

    with anyio.fail_after(5):
        async with async_ws_client(endpoint) as client:
            async with contextlib.AsyncExitStack() as stack:
                stack.enter_context(pytest.raises(Boom, match="in the endpoint"))  # at exit
                websocket = await stack.enter_async_context(client.websocket_connect("/"))
                await websocket.send_text("go")
                with pytest.raises(WebSocketDisconnect) as info:
                    await websocket.receive_text()
            assert info.value.code == status.WS_1011_INTERNAL_ERROR


@pytest.mark.anyio
async def test_async_session_app_raising_before_accept_raises_on_entering() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        raise Boom("before accept")

    with anyio.fail_after(5):
        async with async_ws_client(endpoint) as client:
            with pytest.raises(Boom, match="before accept"):
                async with client.websocket_connect("/"):
                    pass  # pragma: no cover - entering raises


@pytest.mark.anyio
async def test_async_session_without_raise_server_exceptions_sees_the_close() -> None:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise Boom("kept in the app")

    with anyio.fail_after(5):
        client = async_ws_client(endpoint, raise_server_exceptions=False)
        async with client, client.websocket_connect("/") as websocket:
            await websocket.send_text("go")
            with pytest.raises(WebSocketDisconnect) as info:
                await websocket.receive_text()
    assert info.value.code == status.WS_1011_INTERNAL_ERROR  # the app's error middleware's


@pytest.mark.anyio
async def test_async_session_exit_lets_the_clean_up_run_then_cancels_a_waiting_app() -> None:
    log: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        log.append("cleaned up")
        try:
            await anyio.sleep_forever()  # it waits for what will not come
        finally:
            log.append("cancelled")

    with anyio.fail_after(starlite._WEBSOCKET_CLOSE_GRACE / 2):  # not the grace
        async with async_ws_client(endpoint) as client:
            async with client.websocket_connect("/"):
                pass
            assert log == ["cleaned up", "cancelled"]


@pytest.mark.anyio
async def test_async_session_exit_cancels_the_app_when_the_test_raises_or_is_cancelled() -> None:
    in_app = anyio.Event()
    log: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        in_app.set()
        try:
            await anyio.sleep_forever()
        finally:
            log.append("app ended")

    with anyio.fail_after(5):
        async with async_ws_client(endpoint) as client:
            with pytest.raises(Boom, match="in the test"):
                async with client.websocket_connect("/"):
                    raise Boom("in the test")
            assert log == ["app ended"]
            with anyio.move_on_after(0.05) as timed_out:
                async with client.websocket_connect("/"):
                    await anyio.sleep_forever()
            assert timed_out.cancelled_caught
            assert log == ["app ended", "app ended"]


@pytest.mark.anyio
async def test_async_session_app_sending_endlessly_waits_for_the_test_to_read() -> None:
    sent = 0
    log: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        nonlocal sent
        await websocket.accept()
        try:
            while True:
                await websocket.send_text("x" * 1000)
                sent += 1
        finally:
            log.append("app ended")

    with anyio.fail_after(5):
        async with async_ws_client(endpoint) as client:
            async with client.websocket_connect("/") as websocket:
                for _ in range(3):
                    assert await websocket.receive_text() == "x" * 1000
                await anyio.wait_all_tasks_blocked()  # the app has run as far as it may
                assert sent <= 3 + starlite._UNREAD_MESSAGES_LIMIT + 1
            assert log == ["app ended"]


@pytest.mark.anyio
async def test_async_session_left_open_past_the_client_is_cancelled_with_it() -> None:
    log: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await anyio.sleep_forever()
        finally:
            log.append("app ended")

    with anyio.fail_after(5):
        async with contextlib.AsyncExitStack() as stack:
            async with async_ws_client(endpoint) as client:
                await stack.enter_async_context(client.websocket_connect("/"))
            assert log == ["app ended"]  # the client's exit ended it
        # and leaving the session afterwards is quiet


ASYNC_SESSION_USER = """\
from typing import Any, assert_type

from starlite import AsyncTestClient, AsyncWebSocketTestSession


async def check(app: Any) -> None:
    async with AsyncTestClient(app) as client, client.websocket_connect("/") as websocket:
        assert_type(websocket, AsyncWebSocketTestSession)
        assert_type(websocket.accepted_subprotocol, str | None)
        assert_type(await websocket.receive_text(), str)
        assert_type(await websocket.receive_bytes(), bytes)
        websocket.send_text("forgotten await")
        await websocket.send_json([1], mode="binary")
        await websocket.close(1000, 42)
"""


def test_the_async_session_is_typed_under_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "async_session_user.py"
    source.write_text(ASYNC_SESSION_USER)
    result = run_mypy_strict(source, tmp_path / "mypy_cache")
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, result.stdout + result.stderr
    assert f"{source.name}:12: error: " in errors[0]  # a send that is never awaited
    assert "[unused-coroutine]" in errors[0]
    assert f"{source.name}:14: error: " in errors[1]  # a reason that is not a string
    assert "[arg-type]" in errors[1]


def test_test_client_request_to_a_ws_url_names_websocket_connect() -> None:
    client = TestClient(scope_echo_app())
    with pytest.raises(RuntimeError, match=r"opened with websocket_connect\(\)"):
        client.get("ws://testserver/ws")
    assert client.get("/").status_code == 200


# ==== Standing in for Starlette ====
# install_as_starlette() in this process, with the real Starlette (installed for the benchmarks
# and as FastAPI's dependency) set aside for each test and put back after it, and so are FastAPI
# and sse-starlette, which import starlette.

STARLETTE_MODULE_PATHS = [
    "starlette",
    "starlette._exception_handler",
    "starlette._utils",
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
    "starlette.middleware.sessions",
    "starlette.middleware.trustedhost",
    "starlette.requests",
    "starlette.responses",
    "starlette.routing",
    "starlette.staticfiles",
    "starlette.status",
    "starlette.templating",
    "starlette.testclient",
    "starlette.types",
    "starlette.websockets",
]


def imports_starlette(name: str) -> bool:
    """Whether the module `name` is Starlette's, or one of a package built on it."""
    return name.partition(".")[0] in {"starlette", "fastapi", "sse_starlette"}


@pytest.fixture
def starlette_stand_in() -> Iterator[None]:
    """install_as_starlette() for one test; the modules of Starlette and the packages on it that
    this process imported are set aside for it and put back after, with the finders as they were."""
    set_aside = {name: module for name, module in sys.modules.items() if imports_starlette(name)}
    finders = list(sys.meta_path)
    for name in set_aside:
        del sys.modules[name]
    try:
        starlite.install_as_starlette()
        yield
    finally:
        sys.meta_path[:] = finders
        for name in [name for name in sys.modules if imports_starlette(name)]:
            del sys.modules[name]
        sys.modules.update(set_aside)


@pytest.mark.usefixtures("starlette_stand_in")
def test_every_module_path_of_starlette_imports_as_starlite() -> None:
    for path in STARLETTE_MODULE_PATHS:
        module = importlib.import_module(path)
        assert module.__spec__ is not None, path
        assert module.__spec__.origin == "starlite", path
        assert not hasattr(module, "__file__"), f"{path} was loaded from a file"
    applications = importlib.import_module("starlette.applications")
    routing = importlib.import_module("starlette.routing")
    assert applications.Starlette is starlite.Starlite
    assert routing.Route is starlite.Route
    assert routing.replace_params is starlite.replace_params


# Run in a fresh interpreter, where the real Starlette is imported beside starlite: for each
# public class of Starlette's that starlite has, the public members starlite lacks, and the
# methods whose parameters differ (extra trailing ones with a default are compatible).
PUBLIC_API_DIFFERENCES_SCRIPT = """
import importlib, inspect, json, pkgutil, starlette, starlite
NOT_CARRIED = ("wsgi", "schemas", "opentelemetry", "sessions")  # sessions: itsdangerous

def parameters(function):
    try:
        return list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None

def compatible(theirs, ours):
    if theirs is None or ours is None:
        return True
    names = [p.name for p in ours[: len(theirs)]]
    extra = ours[len(theirs) :]
    return names == [p.name for p in theirs] and all(p.default is not p.empty for p in extra)

differences = set()
for info in pkgutil.walk_packages(starlette.__path__, "starlette."):
    if any(part in info.name for part in NOT_CARRIED):
        continue
    module = importlib.import_module(info.name)
    for name, theirs in vars(module).items():
        ours = getattr(starlite, "Starlite" if name == "Starlette" else name, None)
        if name.startswith("_") or ours is None or getattr(theirs, "__module__", "") != info.name:
            continue
        members = vars(theirs).items() if inspect.isclass(theirs) else [("", theirs)]
        for member, value in members:
            if member.startswith("_") and member not in ("__init__", "__call__"):
                continue
            label = f"{name}.{member}".rstrip(".")
            if member and not hasattr(ours, member):
                differences.add(f"{label}: missing")
            elif callable(value) or isinstance(value, staticmethod):
                mine = getattr(ours, member) if member else ours
                if not compatible(parameters(getattr(theirs, member, value)), parameters(mine)):
                    differences.add(f"{label}: other parameters")
print(json.dumps(sorted(differences)))
"""

# Each difference from Starlette's public API that stays, and why (the README says each too).
KNOWN_PUBLIC_API_DIFFERENCES = {
    # Encoded once per configuration: a Headers and a hook per message cost a tenth of a request.
    "CORSMiddleware.allow_explicit_origin: missing": "CORS",
    "CORSMiddleware.send: missing": "CORS",
    "CORSMiddleware.simple_response: missing": "CORS",
    # starlite parses urlencoded forms itself, without python-multipart's callbacks.
    "FormParser.on_field_data: missing": "forms",
    "FormParser.on_field_end: missing": "forms",
    "FormParser.on_field_name: missing": "forms",
    "FormParser.on_field_start: missing": "forms",
    # The debug page is starlite's own (the whole exception chain, no JavaScript).
    "ServerErrorMiddleware.format_line: missing": "debug page",
    "ServerErrorMiddleware.generate_frame_html: missing": "debug page",
    # A static method, so that the default adds no call layer to every 404.
    "Router.not_found: other parameters": "routing",
    # httpx's request arguments are passed through as they are.
    "TestClient.request: other parameters": "test client",
    # One responder class of starlite's own; Starlette's IdentityResponder hooks are not carried.
    "GZipResponder.apply_compression: missing": "GZip",
    "GZipResponder.compressor: missing": "GZip",
    "GZipResponder.content_encoding: missing": "GZip",
    # A str made by __new__(path, protocol, host), Starlette's parameters.
    "URLPath.__init__: other parameters": "datastructures",
}


def test_starlettes_public_api_is_starlites_but_for_the_differences_listed() -> None:
    result = run_python(PUBLIC_API_DIFFERENCES_SCRIPT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == sorted(KNOWN_PUBLIC_API_DIFFERENCES)


@pytest.mark.usefixtures("starlette_stand_in")
def test_starlette_names_import_from_every_module_that_has_them() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from starlette.middleware.cors import CORSMiddleware\n"
        "from starlette.testclient import TestClient\n"
        "from starlette.types import AppType, ASGIApp, Lifespan, StatefulLifespan\n"
        "from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY\n"
        "from starlette import status\n",
        namespace,
    )
    assert namespace["CORSMiddleware"] is starlite.CORSMiddleware
    assert namespace["TestClient"] is starlite.TestClient
    assert namespace["AppType"] is starlite.AppType
    assert namespace["MAX_BODY_SIZE_SCOPE_KEY"] == "starlette.max_body_size"
    assert namespace["status"].HTTP_418_IM_A_TEAPOT == 418


@pytest.mark.usefixtures("starlette_stand_in")
def test_starlette_version_is_the_one_whose_api_starlite_follows() -> None:
    starlette = importlib.import_module("starlette")
    assert starlette.__version__ == "1.10.0"
    assert starlite.__version__ != starlette.__version__


@pytest.mark.usefixtures("starlette_stand_in")
def test_starlette_status_is_the_status_object_with_its_warnings() -> None:
    status_module = importlib.import_module("starlette.status")
    assert status_module.HTTP_404_NOT_FOUND == 404
    assert "WS_1008_POLICY_VIOLATION" in dir(status_module)
    with pytest.warns(starlite.StarletteDeprecationWarning, match="HTTP_413_CONTENT_TOO_LARGE"):
        assert status_module.HTTP_413_REQUEST_ENTITY_TOO_LARGE == 413
    message = "module 'starlette.status' has no attribute 'HTTP_999_NOPE'"
    with pytest.raises(AttributeError, match=message):
        _ = status_module.HTTP_999_NOPE


@pytest.mark.usefixtures("starlette_stand_in")
def test_a_name_starlite_lacks_fails_to_import_as_it_would_from_starlette() -> None:
    with pytest.raises(ImportError, match="cannot import name 'NoSuchThing'"):
        exec("from starlette.routing import NoSuchThing", {})
    with pytest.raises(
        AttributeError, match=r"module 'starlette\.routing' has no attribute '_priv'"
    ):
        _ = importlib.import_module("starlette.routing")._priv
    # A private name of starlite's is not one of Starlette's.
    with pytest.raises(AttributeError):
        _ = importlib.import_module("starlette.routing")._route_path


@pytest.mark.usefixtures("starlette_stand_in")
def test_a_module_starlette_does_not_have_is_not_found() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"starlette\.no_such_module"):
        importlib.import_module("starlette.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("starlette.routing.deeper")


@pytest.mark.usefixtures("starlette_stand_in")
@pytest.mark.parametrize(
    ("path", "instead"),
    [
        ("starlette.middleware.wsgi", "a2wsgi"),
        ("starlette.middleware.opentelemetry", "opentelemetry-instrumentation-asgi"),
        ("starlette.schemas", "schema library"),
    ],
)
def test_a_module_starlite_does_not_carry_says_what_to_use(path: str, instead: str) -> None:
    with pytest.raises(ModuleNotFoundError, match=f"starlite does not carry {path}: .*{instead}"):
        importlib.import_module(path)


@pytest.mark.usefixtures("starlette_stand_in")
def test_installing_twice_adds_nothing() -> None:
    finders = list(sys.meta_path)
    starlite.install_as_starlette()
    assert sys.meta_path == finders


def test_installing_after_starlette_is_imported_is_refused() -> None:
    result = run_python(
        "import sys, types\n"
        "sys.modules['starlette'] = types.ModuleType('starlette')\n"
        "import starlite\n"
        "try:\n"
        "    starlite.install_as_starlette()\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
        "print(any(type(f).__name__ == '_StarletteFinder' for f in sys.meta_path))\n"
    )
    assert result.returncode == 0, result.stderr
    refusal, installed = result.stdout.strip().splitlines()
    assert "must be called before Starlette is imported, but starlette is already" in refusal
    assert "before importing fastapi" in refusal
    assert installed == "False"


@pytest.mark.usefixtures("starlette_stand_in")
def test_code_importing_starlite_itself_is_unchanged() -> None:
    importlib.import_module("starlette.applications")
    assert sys.modules["starlite"] is starlite
    assert starlite.Starlite.__module__ == "starlite"


@pytest.mark.usefixtures("starlette_stand_in")
def test_is_async_callable_sees_through_partials_and_callable_objects() -> None:
    is_async_callable = importlib.import_module("starlette._utils").is_async_callable

    async def coroutine_function() -> None: ...

    class AsyncCallable:
        async def __call__(self) -> None: ...

    class SyncCallable:
        def __call__(self) -> None: ...

    assert is_async_callable(coroutine_function)
    assert is_async_callable(functools.partial(functools.partial(coroutine_function)))
    assert is_async_callable(AsyncCallable())
    assert is_async_callable(functools.partial(AsyncCallable()))
    assert not is_async_callable(SyncCallable())
    assert not is_async_callable(functools.partial(SyncCallable()))
    assert not is_async_callable(lambda: None)


@pytest.mark.usefixtures("starlette_stand_in")
@pytest.mark.parametrize(
    ("path", "root_path", "route_path"),
    [
        ("/api/items", "/api", "/items"),
        ("/api", "/api", ""),
        ("/apiary", "/api", "/apiary"),  # not under the root path: left whole
        ("/items", "", "/items"),
    ],
)
def test_get_route_path_is_the_path_without_the_root_path(
    path: str, root_path: str, route_path: str
) -> None:
    get_route_path = importlib.import_module("starlette._utils").get_route_path
    assert get_route_path({"type": "http", "path": path, "root_path": root_path}) == route_path


def handler_scope(handlers: dict[Any, Any]) -> dict[str, Any]:
    """An HTTP scope with `handlers` registered by class, as ExceptionMiddleware leaves them."""
    scope = make_scope("/")
    scope["starlette.exception_handlers"] = (handlers, {})
    return scope


@pytest.mark.usefixtures("starlette_stand_in")
@pytest.mark.anyio
async def test_wrap_app_handling_exceptions_answers_with_the_registered_handler() -> None:
    wrap = importlib.import_module("starlette._exception_handler").wrap_app_handling_exceptions

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("gone")

    def teapot(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"handled {type(exc).__name__}", status_code=418)

    scope = handler_scope({LookupError: teapot})
    request = Request(scope)
    answer = await Server(http_request(), then="wait").run(wrap(failing, request), scope)
    assert (answer.status, answer.body) == (418, b"handled KeyError")


@pytest.mark.usefixtures("starlette_stand_in")
@pytest.mark.anyio
async def test_wrap_app_handling_exceptions_lets_an_unhandled_or_late_exception_out() -> None:
    wrap = importlib.import_module("starlette._exception_handler").wrap_app_handling_exceptions

    async def unhandled(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("no handler")

    async def late(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise KeyError("after the start")

    scope = handler_scope({KeyError: lambda request, exc: PlainTextResponse("too late")})
    with pytest.raises(ValueError, match="no handler"):
        await Server(http_request(), then="wait").run(wrap(unhandled, Request(scope)), scope)
    with pytest.raises(RuntimeError, match="response already started"):
        await Server(http_request(), then="wait").run(wrap(late, Request(scope)), scope)


FASTAPI_APP = '''
"""A FastAPI app, with an sse-starlette stream, running on starlite."""

import starlite

starlite.install_as_starlette()  # before FastAPI is imported

from pathlib import Path

import starlette.applications
from fastapi import Depends, FastAPI, HTTPException, WebSocket
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sse_starlette import EventSourceResponse


class Item(BaseModel):
    name: str
    price: float


class OutOfStock(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def pagination(skip: int = 0, limit: int = 10) -> dict[str, int]:
    return {"skip": skip, "limit": limit}


app = FastAPI()


@app.get("/runs-on")
async def runs_on() -> dict[str, str]:
    return {"Starlette": starlette.applications.Starlette.__module__}


@app.get("/items/{item_id}")
async def read_item(
    item_id: int, q: str | None = None, page: dict[str, int] = Depends(pagination)
) -> dict[str, object]:
    if item_id == 0:
        raise HTTPException(status_code=404, detail="there is no item 0")
    if item_id == 13:
        raise OutOfStock("thirteen")
    return {"item_id": item_id, "q": q, **page}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> dict[str, object]:
    return {"created": item.model_dump()}


@app.exception_handler(OutOfStock)
async def out_of_stock(request: object, exc: OutOfStock) -> JSONResponse:
    return JSONResponse({"out_of_stock": exc.name}, status_code=409)


@app.websocket("/rooms/{room}")
async def room(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    said = await websocket.receive_text()
    await websocket.send_json({"room": room, "said": said})
    await websocket.close()


@app.get("/ticks")
async def ticks() -> EventSourceResponse:
    async def events():
        for number in range(3):
            yield {"event": "tick", "data": str(number)}

    return EventSourceResponse(events())


app.mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static")
'''

# What the FastAPI app is asked, and what it must answer: (method, path, JSON body) -> (status,
# the response's JSON or text).
FASTAPI_EXCHANGES: list[tuple[tuple[str, str, Any], tuple[int, Any]]] = [
    (("GET", "/runs-on", None), (200, {"Starlette": "starlite"})),
    (
        ("GET", "/items/7?q=red&limit=3", None),
        (200, {"item_id": 7, "q": "red", "skip": 0, "limit": 3}),
    ),
    (("GET", "/items/0", None), (404, {"detail": "there is no item 0"})),
    (("GET", "/items/13", None), (409, {"out_of_stock": "thirteen"})),
    (
        ("POST", "/items", {"name": "lamp", "price": 9.5}),
        (201, {"created": {"name": "lamp", "price": 9.5}}),
    ),
    (("GET", "/static/hello.txt", None), (200, "hello from a file\n")),
    (("GET", "/static/../app.py", None), (404, {"detail": "Not Found"})),
    (
        ("GET", "/ticks", None),
        (
            200,
            "".join(f"event: tick\r\ndata: {number}\r\n\r\n" for number in range(3)),
        ),
    ),
]
# Answers checked by their shape: FastAPI's validation errors.
FASTAPI_INVALID = [
    ("GET", "/items/seven", None),  # a path parameter that is not an int
    ("GET", "/items/7?limit=many", None),  # a dependency's query parameter that is not an int
    ("POST", "/items", {"name": "lamp"}),  # a body without its price
]


def write_fastapi_app(folder: Path) -> None:
    """The FastAPI app as `folder`/fastapi_on_starlite.py, with its static folder."""
    (folder / "fastapi_on_starlite.py").write_text(FASTAPI_APP)
    (folder / "static").mkdir()
    (folder / "static" / "hello.txt").write_text("hello from a file\n")


def fastapi_answers(client: Any) -> list[tuple[int, Any]]:
    """What the app answers to FASTAPI_EXCHANGES, through an httpx-style `client`."""
    answers = []
    for method, path, body in [request for request, _ in FASTAPI_EXCHANGES]:
        response = client.request(method, path, json=body)
        is_json = response.headers["content-type"] == "application/json"
        answers.append((response.status_code, response.json() if is_json else response.text))
    return answers


def check_fastapi_invalid(client: Any) -> None:
    for method, path, body in FASTAPI_INVALID:
        response = client.request(method, path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"][0]["type"] in {"int_parsing", "missing"}


def import_fastapi_app(folder: Path) -> Any:
    """Import the app written by write_fastapi_app, as the module uvicorn would import."""
    spec = importlib.util.spec_from_file_location(
        "fastapi_on_starlite", folder / "fastapi_on_starlite.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.mark.usefixtures("starlette_stand_in")
def test_a_fastapi_app_with_an_sse_stream_runs_on_starlite_under_the_test_client(
    tmp_path: Path,
) -> None:
    write_fastapi_app(tmp_path)
    app = import_fastapi_app(tmp_path)
    fastapi_testclient = importlib.import_module("fastapi.testclient")
    assert fastapi_testclient.TestClient is starlite.TestClient
    with fastapi_testclient.TestClient(app) as client:
        assert fastapi_answers(client) == [answer for _, answer in FASTAPI_EXCHANGES]
        check_fastapi_invalid(client)
        with client.websocket_connect("/rooms/lobby") as websocket:
            websocket.send_text("hello")
            assert websocket.receive_json() == {"room": "lobby", "said": "hello"}


# ==== Examples ====


def load_example(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import examples/<name>.py afresh, as the module `examples.<name>` uvicorn would import."""
    module_name = f"examples.{name}"
    path = PROJECT_ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, module_name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def expect_all(expected: dict[str, Any], *sessions: WebSocketTestSession) -> None:
    """Each session's next message is `expected`."""
    for session in sessions:
        assert session.receive_json() == expected


class FakeClient:
    """The server side of one chat member, for the Room on its own: it records what it is sent,
    or fails every send as a server does once its client has gone, or never finishes one."""

    def __init__(self, behaviour: Literal["reads", "gone", "stalls"] = "reads") -> None:
        self.behaviour = behaviour
        self.received: list[Any] = []

    async def receive(self) -> Message:
        return {"type": "websocket.connect"}

    async def send(self, message: Message) -> None:
        if message["type"] != "websocket.send":
            return
        if self.behaviour == "gone":
            raise OSError("connection reset")  # as uvicorn's ClientDisconnected
        if self.behaviour == "stalls":
            await anyio.sleep_forever()
        self.received.append(json.loads(message["text"]))

    async def accepted_socket(self) -> WebSocket:
        scope: Scope = {"type": "websocket", "path": "/ws", "headers": [], "subprotocols": []}
        websocket = WebSocket(scope, self.receive, self.send)
        await websocket.accept()
        return websocket


# For examples/upload.py: the example stores into a directory of each test's own (UPLOAD_DIR).

# What a stored name looks like: a uuid4 in hex, perhaps an allowed extension.
STORED_NAME = re.compile(r"[0-9a-f]{32}(\.[a-z]+)?")


@pytest.fixture
def upload_dir(tmp_path: Path) -> Path:
    """Where the example stores files: deep inside tmp_path, so that a path in a file name
    ("../../x") followed as a path would land inside tmp_path, where a test sees it."""
    return tmp_path / "a" / "b" / "uploads"


@pytest.fixture
def upload(upload_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The example module, storing into `upload_dir` (set before the module is loaded)."""
    monkeypatch.setenv("UPLOAD_DIR", str(upload_dir))
    return load_example("upload", monkeypatch)


def files_under(root: Path) -> list[Path]:
    """Every file below `root`, wherever it is."""
    return sorted(path for path in root.rglob("*") if path.is_file())


def multipart_body(size: int, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
    """A multipart body with one file of `size` zero bytes, in chunks made as they are sent."""
    yield (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    chunk = bytes(chunk_size)
    for start in range(0, size, chunk_size):
        yield chunk[: min(chunk_size, size - start)]
    yield b"\r\n--b--\r\n"


def test_hello_example_greets_on_root_and_answers_404_elsewhere(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("hello", monkeypatch).app
    with TestClient(app, backend=backend) as client:  # runs the example's lifespan too
        root = client.get("/")
        missing = client.get("/missing")
    assert (root.status_code, root.text) == (200, "Hello, world!")
    assert (missing.status_code, missing.text) == (404, "Not Found")


def test_notes_example_serves_its_pages_and_api(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("app", monkeypatch).app
    with TestClient(app, backend=backend) as client:
        created = client.post("/notes", json={"text": "<b>bold</b>"})
        listing = client.get("/notes", params={"limit": "1"})
        note = client.get(f"/notes/{created.json()['id']}")
        page = client.get("/")
    assert created.status_code == 201
    assert listing.json() == [{"id": 1, "text": "Welcome to starlite."}]
    assert note.json() == {"id": 2, "text": "<b>bold</b>"}
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert "http://testserver/notes/2" in page.text


def test_notes_example_writes_its_audit_log_after_the_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = load_example("app", monkeypatch).app
    with TestClient(app) as client:
        client.post("/notes", json={"text": "later"})
        notes = client.app_state["notes"]
    assert notes.audit_log == ["created note 2"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status_code", "error"),
    [
        ("GET", "/notes?limit=ten", None, 400, "limit must be a whole number from 0 to 999999"),
        ("GET", "/notes?limit=" + "9" * 5000, None, 400, None),
        ("GET", "/notes/99", None, 404, "No note 99"),
        ("GET", "/notes/abc", None, 404, "Not Found"),
        ("POST", "/notes", b"not json", 400, "The body must be JSON"),
        ("POST", "/notes", b'{"text": ""}', 400, None),
        ("POST", "/notes", b'["text"]', 400, None),
        ("DELETE", "/notes", None, 405, "Method Not Allowed"),
    ],
)
def test_notes_example_answers_bad_input_with_a_json_error(
    method: str,
    path: str,
    body: bytes | None,
    status_code: int,
    error: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with TestClient(load_example("app", monkeypatch).app) as client:
        response = client.request(method, path, content=body)
    assert response.status_code == status_code
    assert "error" in response.json()
    if error is not None:
        assert response.json()["error"] == error


def test_chat_page_opens_a_websocket_beside_itself_and_renders_with_text_content(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("chat", monkeypatch).app
    with TestClient(app, backend=backend) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "new WebSocket(url)" in page.text
    assert 'new URL("ws", location.href)' in page.text
    assert "textContent" in page.text
    assert "innerHTML" not in page.text


def test_chat_broadcasts_each_message_to_every_member_the_sender_too(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("chat", monkeypatch).app
    with (
        TestClient(app, backend=backend) as client,
        client.websocket_connect("/ws?name=alice") as alice,
    ):
        expect_all({"event": "join", "user": "alice"}, alice)
        with client.websocket_connect("/ws?name=bob") as bob:
            expect_all({"event": "join", "user": "bob"}, alice, bob)
            with client.websocket_connect("/ws?name=carol") as carol:
                expect_all({"event": "join", "user": "carol"}, alice, bob, carol)
                bob.send_json({"text": "hello <b>all</b>"})
                expect_all({"user": "bob", "text": "hello <b>all</b>"}, alice, bob, carol)
                carol.send_json({"text": "hi bob"})
                alice.send_json({"text": "héllo"})
                expect_all({"user": "carol", "text": "hi bob"}, alice, bob, carol)
                expect_all({"user": "alice", "text": "héllo"}, alice, bob, carol)
                assert len(client.app_state["room"].members) == 3


def test_chat_takes_the_name_from_the_first_message_without_a_query_parameter(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("chat", monkeypatch).app
    with (
        TestClient(app, backend=backend) as client,
        client.websocket_connect("/ws") as dave,
    ):
        dave.send_json({"name": "  dave  "})
        expect_all({"event": "join", "user": "dave"}, dave)
        dave.send_json({"text": "", "extra": "ignored"})  # an empty message is still a message
        expect_all({"user": "dave", "text": ""}, dave)


def test_chat_announces_a_leave_to_the_members_left_and_forgets_the_member(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("chat", monkeypatch).app
    with (
        TestClient(app, backend=backend) as client,
        client.websocket_connect("/ws?name=alice") as alice,
    ):
        room = client.app_state["room"]
        expect_all({"event": "join", "user": "alice"}, alice)
        with client.websocket_connect("/ws?name=bob") as bob:
            expect_all({"event": "join", "user": "bob"}, alice, bob)
        # Leaving the `with` closed bob's socket and waited for its session to end.
        expect_all({"event": "leave", "user": "bob"}, alice)
        assert len(room.members) == 1
        with client.websocket_connect("/ws?name=carol") as carol:
            carol.close(1001)  # going away, with a code of its own
            expect_all({"event": "join", "user": "carol"}, alice)
            expect_all({"event": "leave", "user": "carol"}, alice)
    assert room.members == set()


def test_chat_closes_an_over_long_message_with_1009_and_the_room_goes_on(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = load_example("chat", monkeypatch)
    with (
        TestClient(chat.app, backend=backend) as client,
        client.websocket_connect("/ws?name=alice") as alice,
    ):
        expect_all({"event": "join", "user": "alice"}, alice)
        with client.websocket_connect("/ws?name=mallory") as mallory:
            expect_all({"event": "join", "user": "mallory"}, alice, mallory)
            longest = json.dumps({"text": "x" * (chat.MAX_MESSAGE_LENGTH - 12)})
            assert len(longest) == chat.MAX_MESSAGE_LENGTH
            mallory.send_text(longest)  # exactly the limit: accepted
            expect_all(json.loads(longest) | {"user": "mallory"}, alice, mallory)
            mallory.send_text(json.dumps({"text": "x" * chat.MAX_MESSAGE_LENGTH}))
            with pytest.raises(WebSocketDisconnect) as closed:
                mallory.receive_json()
        assert (closed.value.code, closed.value.reason) == (
            1009,
            f"Messages are limited to {chat.MAX_MESSAGE_LENGTH} characters",
        )
        expect_all({"event": "leave", "user": "mallory"}, alice)  # nothing of the long message
        alice.send_json({"text": "still here"})
        expect_all({"user": "alice", "text": "still here"}, alice)


def test_chat_refuses_a_binary_frame_with_1003(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("chat", monkeypatch).app
    with (
        TestClient(app, backend=backend) as client,
        client.websocket_connect("/ws?name=alice") as alice,
    ):
        expect_all({"event": "join", "user": "alice"}, alice)
        with client.websocket_connect("/ws?name=bob") as bob:
            expect_all({"event": "join", "user": "bob"}, alice, bob)
            bob.send_json({"text": "binary"}, mode="binary")  # valid JSON, in the wrong frame
            with pytest.raises(WebSocketDisconnect) as closed:
                bob.receive_json()
        # starlite's receive_text refuses the frame; the app's exception handling closes with it.
        assert (closed.value.code, closed.value.reason) == (
            1003,
            "Expected a text frame, got a binary one",
        )
        expect_all({"event": "leave", "user": "bob"}, alice)


@pytest.mark.parametrize(
    ("path", "frame", "code", "reason"),
    [
        ("/ws?name=eve", "not json", 1003, "Messages must be JSON"),
        ("/ws?name=eve", '["text", "hi"]', 1003, "Messages must be JSON objects"),
        ("/ws?name=eve", '{"text": 5}', 1003, 'Expected {"text": "..."}'),
        ("/ws?name=eve", '{"message": "hi"}', 1003, 'Expected {"text": "..."}'),
        ("/ws", '{"text": "hi"}', 1003, 'Expected {"name": "..."}'),
        ("/ws", '{"name": "   "}', 1008, "A name is 1 to 32 characters"),
        ("/ws", json.dumps({"name": "e" * 33}), 1008, "A name is 1 to 32 characters"),
    ],
)
def test_chat_closes_a_socket_that_breaks_the_protocol(
    path: str, frame: str, code: int, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("chat", monkeypatch).app
    with TestClient(app) as client, client.websocket_connect(path) as eve:
        if path != "/ws":
            expect_all({"event": "join", "user": "eve"}, eve)
        eve.send_text(frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            eve.receive_json()
    assert (closed.value.code, closed.value.reason) == (code, reason)


def test_chat_closes_a_blank_name_from_the_query_string_with_1008(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = load_example("chat", monkeypatch).app
    with TestClient(app) as client, client.websocket_connect("/ws?name=") as nobody:
        with pytest.raises(WebSocketDisconnect) as closed:
            nobody.receive_json()
        assert client.app_state["room"].members == set()
    assert closed.value.code == 1008


def test_chat_ends_quietly_when_a_client_leaves_before_naming_itself(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("chat", monkeypatch).app
    with TestClient(app, backend=backend) as client:
        with client.websocket_connect("/ws"):
            pass  # leaving closes with 1000, and would raise what the app raised
        assert client.app_state["room"].members == set()


def test_chat_closes_a_member_dropped_from_the_room_at_its_next_message(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_example("chat", monkeypatch).app
    with (
        TestClient(app, backend=backend) as client,
        client.websocket_connect("/ws?name=alice") as alice,
    ):
        expect_all({"event": "join", "user": "alice"}, alice)
        room = client.app_state["room"]
        assert client.portal is not None
        client.portal.call(room.members.clear)  # as a broadcast that timed out would
        alice.send_json({"text": "anyone?"})
        with pytest.raises(WebSocketDisconnect) as closed:
            alice.receive_json()
    assert (closed.value.code, closed.value.reason) == (
        1008,
        "Dropped from the room: too slow to receive",
    )


@pytest.mark.anyio
async def test_chat_room_drops_members_that_are_gone_or_too_slow_and_serves_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chat = load_example("chat", monkeypatch)
    monkeypatch.setattr(chat, "SEND_TIMEOUT", 0.05)
    reader, gone, staller = FakeClient(), FakeClient("gone"), FakeClient("stalls")
    room = chat.Room()
    members = {await client.accepted_socket(): client for client in (reader, gone, staller)}
    room.members.update(members)
    with anyio.fail_after(5):
        await room.broadcast({"user": "alice", "text": "one"})
        await room.broadcast({"user": "alice", "text": "two"})
    assert [members[member] for member in room.members] == [reader]
    assert reader.received == [{"user": "alice", "text": "one"}, {"user": "alice", "text": "two"}]


def test_upload_page_is_a_multipart_form_sending_several_files(
    upload: Any, backend: Backend
) -> None:
    with TestClient(upload.app, backend=backend) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'method="post"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert '<input type="file" name="files" multiple required>' in page.text
    assert 'action="upload"' in page.text


def test_upload_directory_is_created_at_start_up(
    upload: Any, upload_dir: Path, backend: Backend
) -> None:
    assert not upload_dir.exists()
    with TestClient(upload.app, backend=backend):
        assert upload_dir.is_dir()


def test_upload_stores_each_file_under_a_generated_name_with_its_bytes(
    upload: Any, upload_dir: Path, backend: Backend
) -> None:
    files = [
        ("files", ("report.PDF", b"%PDF-1.7 first", "application/pdf")),
        ("files", ("notes.txt", b"second file\n", "text/plain")),
    ]
    with TestClient(upload.app, backend=backend) as client:
        response = client.post("/upload", files=files)
    assert response.status_code == 201
    stored = response.json()["files"]
    assert [(item["filename"], item["size"], item["content_type"]) for item in stored] == [
        ("report.PDF", 14, "application/pdf"),
        ("notes.txt", 12, "text/plain"),
    ]
    first, second = (item["stored_name"] for item in stored)
    assert re.fullmatch(r"[0-9a-f]{32}\.pdf", first)
    assert re.fullmatch(r"[0-9a-f]{32}\.txt", second)
    assert (upload_dir / first).read_bytes() == b"%PDF-1.7 first"
    assert (upload_dir / second).read_bytes() == b"second file\n"
    assert files_under(upload_dir) == sorted([upload_dir / first, upload_dir / second])


@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd",
        "../../../../../../etc/passwd",
        "/etc/passwd",
        "..\\..\\windows\\win.ini",
        "a/../../escape.txt",
        "..",
        "caf\u00e9/\u2028.txt",
    ],
)
def test_upload_keeps_a_path_like_filename_as_data_and_stores_inside_the_directory(
    filename: str, upload: Any, upload_dir: Path, tmp_path: Path, backend: Backend
) -> None:
    with TestClient(upload.app, backend=backend) as client:
        response = client.post("/upload", files={"files": (filename, b"root:x:0:0")})
    assert response.status_code == 201
    [stored] = response.json()["files"]
    assert stored["filename"] == filename  # reported as data, exactly as sent
    assert STORED_NAME.fullmatch(stored["stored_name"])
    assert files_under(tmp_path) == [upload_dir / stored["stored_name"]]
    assert (upload_dir / stored["stored_name"]).read_bytes() == b"root:x:0:0"
    assert not (tmp_path.parent / "etc").exists()


@pytest.mark.parametrize(
    ("filename", "extension"),
    [
        ("photo.PNG", ".png"),
        ("data.csv", ".csv"),
        ("page.html", ""),
        ("image.svg", ""),
        ("shell.php", ""),
        ("archive.tar.gz", ""),
        ("notes.txt.php", ""),
        ("shell.php.txt", ".txt"),
        ("README", ""),
        ("trailing.", ""),
        (".png", ".png"),
        ("", ""),
    ],
)
def test_stored_extension_is_the_clients_only_if_on_the_allow_list(
    filename: str, extension: str, upload: Any
) -> None:
    assert upload.stored_extension(filename) == extension


def test_upload_accepts_max_files_and_refuses_one_more_with_400(
    upload: Any, upload_dir: Path, backend: Backend
) -> None:
    def files(count: int) -> list[tuple[str, tuple[str, bytes]]]:
        return [("files", (f"f{i}.txt", b"x")) for i in range(count)]

    with TestClient(upload.app, backend=backend) as client:
        most = client.post("/upload", files=files(upload.MAX_FILES))
        too_many = client.post("/upload", files=files(upload.MAX_FILES + 1))
    assert most.status_code == 201
    assert len(most.json()["files"]) == upload.MAX_FILES
    assert too_many.status_code == 400
    assert too_many.json() == {
        "error": f"Too many files. Maximum number of files is {upload.MAX_FILES}."
    }
    assert len(files_under(upload_dir)) == upload.MAX_FILES  # the refused upload stored nothing


def test_upload_refuses_a_field_over_max_part_size_with_400(
    upload: Any, upload_dir: Path, backend: Backend
) -> None:
    with TestClient(upload.app, backend=backend) as client:
        response = client.post(
            "/upload",
            data={"token": "t" * (upload.MAX_FIELD_SIZE + 1)},
            files={"files": ("a.txt", b"a")},
        )
    assert response.status_code == 400
    assert response.json() == {"error": "Part exceeded maximum size of 1KB."}
    assert files_under(upload_dir) == []


def test_upload_without_a_chosen_file_is_400(upload: Any, upload_dir: Path) -> None:
    # What a browser sends when no file was chosen: one empty part with an empty filename.
    browser_body = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="files"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        b"\r\n--b--\r\n"
    )
    with TestClient(upload.app) as client:
        nothing_chosen = client.post(
            "/upload",
            content=browser_body,
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        other_name = client.post("/upload", files={"other": ("a.txt", b"a")})
    for response in (nothing_chosen, other_name):
        assert (response.status_code, response.json()) == (
            400,
            {"error": "Choose at least one file"},
        )
    assert files_under(upload_dir) == []


def test_upload_refuses_a_text_value_sent_as_files_with_400(upload: Any) -> None:
    with TestClient(upload.app) as client:
        response = client.post("/upload", data={"files": "not a file"})
    assert (response.status_code, response.json()) == (
        400,
        {"error": "'files' must be sent as files"},
    )


def test_upload_refuses_a_declared_body_over_the_limit_with_413_before_reading_it(
    upload: Any, upload_dir: Path, backend: Backend
) -> None:
    # The Content-Length a client declares is refused before any of the body is read, so a few
    # bytes stand in for the body here. The refusal reaches the app as it starts to read the form,
    # so the app's own error handler renders the 413, as for a streamed body.
    headers = {
        "content-type": "multipart/form-data; boundary=b",
        "content-length": str(upload.MAX_BODY_SIZE + 1),
    }
    with TestClient(upload.app, backend=backend) as client:
        response = client.post("/upload", content=b"--b", headers=headers)
    assert (response.status_code, response.content) == (413, b'{"error":"Content Too Large"}')
    assert files_under(upload_dir) == []


@pytest.mark.anyio
async def test_upload_refuses_a_streamed_body_crossing_the_limit_with_413(
    upload: Any, upload_dir: Path
) -> None:
    """Without a Content-Length (a chunked request), the body is refused once it crosses the
    limit, and the bytes after that are never read."""
    await anyio.Path(upload_dir).mkdir(parents=True)
    body = multipart_body(upload.MAX_BODY_SIZE)
    chunks_read = 0

    async def receive() -> Message:
        nonlocal chunks_read
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        chunks_read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = make_scope(
        "/upload",
        method="POST",
        headers=[
            (b"host", b"example.org"),
            (b"content-type", b"multipart/form-data; boundary=b"),
            (b"transfer-encoding", b"chunked"),
        ],
        client=("127.0.0.1", 1),
        state={"upload_dir": anyio.Path(upload_dir)},  # what the lifespan would have set
    )
    answer = await Server(receive=receive).run(upload.app, scope)
    assert answer.sent[0]["status"] == 413
    assert answer.body == (
        b'{"error":"Content Too Large"}'  # raised as the form read the body: the app's handler
    )
    # The prefix and MAX_BODY_SIZE bytes of data are over the limit one chunk before the last.
    assert chunks_read == 1 + upload.MAX_BODY_SIZE // (256 * 1024)
    assert await anyio.to_thread.run_sync(files_under, upload_dir) == []


def test_upload_stores_a_file_larger_than_the_spool_threshold_intact(
    upload: Any, upload_dir: Path, backend: Backend
) -> None:
    """A file over 1 MiB is spooled to disk by the parser, then copied chunk by chunk."""
    data = os.urandom(3 * MultiPartParser.spool_max_size + 12345)
    with TestClient(upload.app, backend=backend) as client:
        response = client.post("/upload", files={"files": ("big.zip", data, "application/zip")})
    assert response.status_code == 201
    [stored] = response.json()["files"]
    assert stored["size"] == len(data)
    assert (upload_dir / stored["stored_name"]).read_bytes() == data


def test_files_lists_stored_files_oldest_first_and_nothing_else(
    upload: Any, upload_dir: Path, backend: Backend
) -> None:
    with TestClient(upload.app, backend=backend) as client:
        assert client.get("/files").json() == {"files": []}
        stored = [
            client.post("/upload", files={"files": (name, content)}).json()["files"][0]
            for name, content in [("b.txt", b"bb"), ("a.png", b"a")]
        ]
        # Made oldest first, whatever the clock's resolution.
        for mtime, item in enumerate(stored, start=1_000_000):
            os.utime(upload_dir / item["stored_name"], (mtime, mtime))
        # Not stored by the app: a copy still being written, and a file someone put there.
        (upload_dir / f"{'0' * 32}.txt.part").write_bytes(b"half")
        (upload_dir / "notes.txt").write_bytes(b"mine")
        listing = client.get("/files")
    assert listing.status_code == 200
    assert listing.json() == {
        "files": [
            {"stored_name": stored[0]["stored_name"], "size": 2},
            {"stored_name": stored[1]["stored_name"], "size": 1},
        ]
    }


# For examples/auth.py: loaded once, since hashing its demo passwords takes a moment.


@pytest.fixture(scope="module")
def auth_example() -> Iterator[Any]:
    """examples/auth.py's app, with a fixed secret key and two allowed API origins."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SECRET_KEY", "a test key")
        monkeypatch.setenv("API_ORIGINS", "https://app.example, https://other.example")
        yield load_example("auth", monkeypatch).app


def sign_in(
    client: TestClient, username: str, password: str, next_page: str = "/"
) -> httpx.Response:
    form = {"username": username, "password": password, "next": next_page}
    return client.post("/login", data=form, follow_redirects=False)


def test_auth_example_sends_an_anonymous_visitor_to_sign_in_then_back(
    auth_example: Any, backend: Backend
) -> None:
    with TestClient(auth_example, backend=backend) as client:
        assert "not signed in" in client.get("/").text
        refused = client.get("/account", follow_redirects=False)
        assert refused.status_code == 303
        login_url = refused.headers["location"]
        assert login_url == "http://testserver/login?next=http%3A%2F%2Ftestserver%2Faccount"
        form = client.get(login_url)
        assert "value='http://testserver/account'" in form.text
        signed_in = sign_in(client, "bob", "builder", "http://testserver/account")
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/account"
        cookie = signed_in.headers["set-cookie"]
        assert "; httponly" in cookie
        assert "; samesite=lax" in cookie
        page = client.get("/account")
    assert page.status_code == 200
    assert "<h1>bob</h1>" in page.text


def test_auth_example_admin_page_needs_the_admin_scope(auth_example: Any, backend: Backend) -> None:
    with (
        TestClient(auth_example, backend=backend) as bob,
        TestClient(auth_example, backend=backend) as alice,
    ):
        sign_in(bob, "bob", "builder")
        sign_in(alice, "alice", "wonderland")
        assert bob.get("/admin").status_code == 403
        admin = alice.get("/admin")
    assert admin.status_code == 200
    assert "alice, bob" in admin.text


@pytest.mark.parametrize(
    ("username", "password"), [("bob", "wonderland"), ("bob", ""), ("mallory", "builder")]
)
def test_auth_example_refuses_a_wrong_password_or_unknown_user(
    auth_example: Any, username: str, password: str
) -> None:
    with TestClient(auth_example) as client:
        response = sign_in(client, username, password)
        assert response.status_code == 400
        assert "Wrong user or password." in response.text
        assert "set-cookie" not in response.headers
        assert client.get("/account", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "next_page",
    [
        "https://evil.example/steal",
        "//evil.example/steal",
        "/\\evil.example/steal",
        "http://testserver.evil.example/",
        "javascript:alert(1)",
        "",
    ],
)
def test_auth_example_never_redirects_off_site_after_sign_in(
    auth_example: Any, next_page: str
) -> None:
    with TestClient(auth_example) as client:
        response = sign_in(client, "bob", "builder", next_page)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_auth_example_keeps_a_local_path_with_its_query(auth_example: Any) -> None:
    with TestClient(auth_example) as client:
        response = sign_in(client, "bob", "builder", "/account?tab=keys")
    assert response.headers["location"] == "/account?tab=keys"


def test_auth_example_escapes_next_in_the_form(auth_example: Any) -> None:
    with TestClient(auth_example) as client:
        form = client.get("/login", params={"next": "'><script>alert(1)</script>"})
    assert "<script>" not in form.text
    assert "&#x27;&gt;&lt;script&gt;" in form.text


def test_auth_example_refuses_a_form_that_is_not_a_login(auth_example: Any) -> None:
    with TestClient(auth_example) as client:
        as_file = client.post(
            "/login", data={"password": "builder"}, files={"username": ("bob", b"bob")}
        )
        too_many = client.post("/login", data={f"field{i}": "x" for i in range(10)})
        too_long = client.post("/login", data={"username": "bob", "password": "x" * 5000})
    assert as_file.status_code == 400
    assert too_many.status_code == 400
    assert too_long.status_code == 400


@pytest.mark.parametrize(
    "forged_by",
    [
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        {"sec-fetch-site": "same-site", "origin": "http://blog.testserver"},  # a sibling
        {"origin": "https://evil.example"},  # an older browser, or a site on plain http
        {"origin": "null"},  # a sandboxed frame
    ],
)
def test_auth_example_refuses_a_forged_form_post(
    auth_example: Any, forged_by: dict[str, str], backend: Backend
) -> None:
    with TestClient(auth_example, backend=backend) as client:
        sign_in(client, "bob", "builder")
        # Another site's page posts the user's browser to /logout, and its own account's
        # password to /login (signing the user in as the attacker): both refused.
        logout = client.post("/logout", headers=forged_by, follow_redirects=False)
        login = client.post(
            "/login", data={"username": "alice", "password": "wonderland"}, headers=forged_by
        )
        page = client.get("/account")
    assert (logout.status_code, logout.text) == (403, "Cross-site request refused")
    assert (login.status_code, login.text) == (403, "Cross-site request refused")
    assert "set-cookie" not in logout.headers
    assert "set-cookie" not in login.headers
    assert "<h1>bob</h1>" in page.text


def test_auth_example_takes_a_form_posted_by_its_own_page(
    auth_example: Any, backend: Backend
) -> None:
    own_page = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}
    older_browser = {"origin": "http://testserver"}
    with TestClient(auth_example, backend=backend) as client:
        form = {"username": "bob", "password": "builder", "next": "/account"}
        signed_in = client.post("/login", data=form, headers=own_page, follow_redirects=False)
        signed_out = client.post("/logout", headers=older_browser, follow_redirects=False)
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/account")
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "http://testserver/")


def test_auth_example_ignores_a_tampered_session_cookie(auth_example: Any) -> None:
    with TestClient(auth_example) as client:
        cookie = sign_in(client, "bob", "builder").cookies["session"]
    _, timestamp, signature = cookie.split(".")
    forged_payload = base64.urlsafe_b64encode(b'{"user":"alice"}').decode().rstrip("=")
    with TestClient(
        auth_example, cookies={"session": f"{forged_payload}.{timestamp}.{signature}"}
    ) as client:
        assert client.get("/admin", follow_redirects=False).status_code == 403
        assert "not signed in" in client.get("/").text


def test_auth_example_sign_out_clears_the_session(auth_example: Any, backend: Backend) -> None:
    with TestClient(auth_example, backend=backend) as client:
        sign_in(client, "alice", "wonderland")
        assert client.get("/account").status_code == 200
        signed_out = client.post("/logout", follow_redirects=False)
        assert signed_out.status_code == 303
        assert "Max-Age=0" in signed_out.headers["set-cookie"]
        assert client.get("/account", follow_redirects=False).status_code == 303


def test_auth_example_api_answers_an_allowed_origin_with_credentials(
    auth_example: Any, backend: Backend
) -> None:
    origin = {"origin": "https://app.example"}
    with TestClient(auth_example, backend=backend) as client:
        preflight = client.options(
            "/api/me", headers={**origin, "access-control-request-method": "GET"}
        )
        anonymous = client.get("/api/me", headers=origin)
        sign_in(client, "bob", "builder")
        me = client.get("/api/me", headers=origin)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert anonymous.status_code == 401
    assert me.status_code == 200
    assert me.json() == {"user": "bob", "scopes": ["authenticated"]}
    assert me.headers["access-control-allow-origin"] == "https://app.example"
    assert me.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "https://app.example.evil.example", "null"]
)
def test_auth_example_api_refuses_other_origins(auth_example: Any, origin: str) -> None:
    with TestClient(auth_example) as client:
        sign_in(client, "bob", "builder")
        preflight = client.options(
            "/api/me", headers={"origin": origin, "access-control-request-method": "GET"}
        )
        simple = client.get("/api/me", headers={"origin": origin})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


def test_auth_example_cors_is_only_on_the_api(auth_example: Any) -> None:
    with TestClient(auth_example) as client:
        home = client.get("/", headers={"origin": "https://app.example"})
    assert "access-control-allow-origin" not in home.headers


# For examples/site.py.


@pytest.fixture
def site_app(monkeypatch: pytest.MonkeyPatch) -> ASGIApp:
    """examples/site.py's app, loaded before any event loop runs (loading reads files)."""
    app: ASGIApp = load_example("site", monkeypatch).app
    return app


def test_site_example_renders_its_pages_from_templates(
    monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    site = load_example("site", monkeypatch)
    with TestClient(site.app, backend=backend) as client:
        home = client.get("/")
        article = client.get("/articles/hello")
    assert home.status_code == 200
    assert home.template.name == "index.html"  # type: ignore[attr-defined]
    assert '<a href="http://testserver/articles/hello">Hello, starlite</a>' in home.text
    assert '<link rel="stylesheet" href="http://testserver/static/style.css">' in home.text
    assert article.template.name == "article.html"  # type: ignore[attr-defined]
    assert article.context["article"] is site.ARTICLES["hello"]  # type: ignore[attr-defined]
    assert "<title>Hello, starlite · starlite notes</title>" in article.text


def test_site_example_escapes_article_text(monkeypatch: pytest.MonkeyPatch) -> None:
    site = load_example("site", monkeypatch)
    with TestClient(site.app) as client:
        page = client.get("/articles/escaping")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text


def test_site_example_takes_its_name_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SITE_NAME", "Tom & Jerry's")
    site = load_example("site", monkeypatch)
    with TestClient(site.app) as client:
        home = client.get("/")
    assert "<title>Tom &amp; Jerry&#39;s</title>" in home.text


def test_site_example_serves_its_stylesheet_with_conditional_requests(
    monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    site = load_example("site", monkeypatch)
    css = (PROJECT_ROOT / "examples" / "site_files" / "static" / "style.css").read_bytes()
    with TestClient(site.app, backend=backend) as client:
        first = client.get("/static/style.css")
        again = client.get("/static/style.css", headers={"if-none-match": first.headers["etag"]})
    assert first.status_code == 200
    assert first.content == css
    assert first.headers["content-type"] == "text/css; charset=utf-8"
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("path", ["/articles/nope", "/static/nope.css", "/nope"])
def test_site_example_answers_a_missing_page_with_its_404_template(
    monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    site = load_example("site", monkeypatch)
    with TestClient(site.app) as client:
        response = client.get(path)
    assert response.status_code == 404
    assert response.template.name == "404.html"  # type: ignore[attr-defined]
    assert f"There is nothing at {path}." in response.text


@pytest.mark.parametrize(
    ("path", "outside"),
    [
        ("/static/../../site.py", "examples/site.py"),
        ("/static/../templates/base.html", "examples/site_files/templates/base.html"),
        ("/static/%2e%2e/%2e%2e/site.py", "examples/site.py"),
        ("/static/..%2f..%2fsite.py", "examples/site.py"),
        ("/static/../../../README.md", "README.md"),
        (f"/static/{PROJECT_ROOT}/README.md", "README.md"),
    ],
)
@pytest.mark.anyio
async def test_site_example_never_serves_a_file_outside_its_static_directory(
    site_app: ASGIApp, anyio_backend: str, path: str, outside: str
) -> None:
    secret = (await anyio.Path(PROJECT_ROOT / outside).read_bytes())[:200]
    # A server percent-decodes the path, "%2f" included: the app sees what the file system would.
    decoded = unquote(path)
    server = Server(http_request(), then="wait")
    answer = await server.run(site_app, make_scope(decoded, raw_path=path.encode()))
    assert answer.sent[0]["status"] == 404
    body = answer.body
    assert b"There is nothing at" in body
    assert secret not in body


# For examples/events.py.


def parse_event_stream(text: str) -> list[dict[str, str]]:
    """The events of an event stream, each a dict of its fields (data lines joined); comments
    dropped."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = f"{fields[name]}\n{value}" if name in fields else value
        if fields:
            events.append(fields)
    return events


def test_events_example_page_listens_to_the_progress_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = load_example("events", monkeypatch)
    with TestClient(events.app) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert 'new EventSource("/progress")' in page.text


def test_events_example_streams_every_step_then_done(
    monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    events = load_example("events", monkeypatch)
    with TestClient(events.app, backend=backend) as client:
        response = client.get("/progress", params={"step_seconds": "0"})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    received = parse_event_stream(response.text)
    assert received[0] == {"event": "progress", "data": '{"percent": 1}', "id": "1"}
    assert [event["id"] for event in received[:-1]] == [str(step) for step in range(1, 101)]
    assert received[-1] == {"event": "done", "data": "finished"}


def test_events_example_resumes_after_the_last_event_id(
    monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    events = load_example("events", monkeypatch)
    with TestClient(events.app, backend=backend) as client:
        response = client.get(
            "/progress", params={"step_seconds": "0"}, headers={"last-event-id": "98"}
        )
    assert parse_event_stream(response.text) == [
        {"event": "progress", "data": '{"percent": 99}', "id": "99"},
        {"event": "progress", "data": '{"percent": 100}', "id": "100"},
        {"event": "done", "data": "finished"},
    ]


def test_events_example_sends_events_as_they_happen(monkeypatch: pytest.MonkeyPatch) -> None:
    events = load_example("events", monkeypatch)
    with (
        TestClient(events.app) as client,
        client.stream("GET", "/progress", params={"step_seconds": "0.2"}) as response,
    ):
        lines = response.iter_lines()
        # The first event arrives after one step, long before the stream's 20 seconds are up.
        first = [next(lines) for _ in range(3)]
    assert first == ["event: progress", 'data: {"percent": 1}', "id: 1"]


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {"last-event-id": "abc"}),
        ({}, {"last-event-id": "101"}),
        ({}, {"last-event-id": "-1"}),
        ({}, {"last-event-id": "9" * 5000}),
        ({}, {"last-event-id": "\u0661"}),  # an Arabic-Indic digit: isdigit() says yes
        ({"step_seconds": "x"}, {}),
        ({"step_seconds": "2"}, {}),
        ({"step_seconds": "-1"}, {}),
        ({"step_seconds": "nan"}, {}),
        ({"step_seconds": "inf"}, {}),
    ],
)
def test_events_example_refuses_a_bad_resume_point_or_pace_with_400(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, str], headers: dict[str, str]
) -> None:
    events = load_example("events", monkeypatch)
    encoded = {name: value.encode() for name, value in headers.items()}
    with TestClient(events.app) as client:
        response = client.get("/progress", params=params, headers=encoded)
    assert response.status_code == 400


# For the README: its tour runs as written, and its map of starlite.py is the file's.


def readme_section(title: str) -> str:
    """The text of the README's section `title`, up to the next section."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def test_readme_and_changelog_name_the_version_and_an_install_that_works() -> None:
    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    latest = re.search(r"^## (\S+)", changelog, flags=re.MULTILINE)
    assert latest is not None
    assert latest[1] == starlite.__version__
    install = readme_section("Install, or copy the file")
    assert f"starlite {starlite.__version__}" in install
    # Nothing is on the package index yet: the install shown is from a clone, and the unrelated
    # `starlite` distribution, which installs a package of the same name, is warned of.
    assert 'pip install ".[full]"' in install
    assert "never install both in one environment" in install
    released = "(unreleased)" not in changelog.split("\n## ")[1].splitlines()[0]
    assert released or "not yet released" in install


def test_readme_tour_and_its_test_run_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", readme_section("A tour"), flags=re.DOTALL)
    assert len(blocks) == 2
    namespace: dict[str, Any] = {"__name__": "readme_tour"}
    exec(compile(blocks[0] + blocks[1], "README.md", "exec"), namespace)
    namespace["test_app"]()


BANNER = re.compile(r"^# ==== (.+) ====$")


def test_readme_map_of_starlite_py_lists_every_section_in_order() -> None:
    rows = re.findall(r"^\| ([A-Z][A-Za-z ]+) \|", readme_section("Where to read what"), flags=re.M)
    lines = (PROJECT_ROOT / "starlite.py").read_text().splitlines()
    assert rows == [match[1] for line in lines if (match := BANNER.match(line))]


def top_level_names(node: ast.stmt) -> list[str]:
    """The module-level names a top-level statement of starlite.py defines."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else []
    if isinstance(node, ast.AnnAssign):
        targets = [node.target]
    return [target.id for target in targets if isinstance(target, ast.Name)]


def names_run(node: ast.AST) -> Iterator[ast.Name]:
    """The names `node` reads when it runs: annotations left out (they are strings, under
    ``from __future__ import annotations``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.arg) or child is getattr(node, "returns", None):
            continue
        if isinstance(node, ast.AnnAssign) and child is node.annotation:
            continue
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            yield child
        yield from names_run(child)


def test_each_section_of_starlite_py_uses_only_what_is_above_it() -> None:
    source = (PROJECT_ROOT / "starlite.py").read_text()
    banner_lines = [n + 1 for n, line in enumerate(source.splitlines()) if BANNER.match(line)]

    def section(line: int) -> int:
        return sum(line >= banner for banner in banner_lines)

    statements = ast.parse(source).body
    defined_in = {
        name: section(node.lineno) for node in statements for name in top_level_names(node)
    }
    forward = [
        f"{name.id} (line {name.lineno})"
        for node in statements
        for name in names_run(node)
        if defined_in.get(name.id, 0) > section(node.lineno)
    ]
    assert forward == []


# ==== Real servers ====
# uvicorn and hypercorn in a subprocess, serving this repository's starlite.py (PYTHONPATH first:
# an installed wheel is a snapshot), with real clients talking to them: httpx,
# and the `websockets` library. Each check runs under both servers: nothing is tied to one.

# Every wait is bounded: the server's start-up, each client's handshake, close and receive.
SERVER_START_TIMEOUT = 10.0
SERVER_STOP_TIMEOUT = 5.0
CLIENT_TIMEOUT = 5.0

ECHO_APP = '''
"""The app the real-server tests serve: echoes, a subprotocol, a close, a denial."""

import starlite
from starlite import PlainTextResponse, Starlite, WebSocket, WebSocketRoute


async def where(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(starlite.__file__)
    await websocket.close()


async def echo_text(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


async def echo_bytes(websocket: WebSocket) -> None:
    await websocket.accept()
    async for data in websocket.iter_bytes():
        await websocket.send_bytes(data)


async def echo_json(websocket: WebSocket) -> None:
    await websocket.accept()
    async for data in websocket.iter_json():
        await websocket.send_json({"echo": data})


async def subprotocol(websocket: WebSocket) -> None:
    offered = websocket.scope["subprotocols"]
    chosen = next((name for name in offered if name in {"chat.v2", "chat.v3"}), None)
    await websocket.accept(subprotocol=chosen)
    await websocket.send_json({"offered": offered, "chosen": chosen})
    await websocket.close()


async def close(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close(4001, "bye")


async def deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("nope", status_code=403))


app = Starlite(
    routes=[
        WebSocketRoute("/where", where),
        WebSocketRoute("/text", echo_text),
        WebSocketRoute("/bytes", echo_bytes),
        WebSocketRoute("/json", echo_json),
        WebSocketRoute("/subprotocol", subprotocol),
        WebSocketRoute("/close", close),
        WebSocketRoute("/deny", deny),
    ]
)
'''


def free_port() -> int:
    """A port nothing listens on now: the system's pick for a socket bound to port 0."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_accepting(server: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll a TCP connect until the server accepts, failing if it exits or takes too long."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the server did not accept within {SERVER_START_TIMEOUT} s:\n{log.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server by its PID: SIGTERM (a graceful shut-down), then SIGKILL if need be."""
    server.terminate()
    try:
        server.wait(timeout=SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=SERVER_STOP_TIMEOUT)


def server_command(
    server_name: str, app: str, port: int, *options: str, python: Path = Path(sys.executable)
) -> list[str]:
    """The command line serving `app` ("module:attribute") on 127.0.0.1:`port`, quietly."""
    if server_name == "uvicorn":
        command = [str(python), "-m", "uvicorn", app, "--host", "127.0.0.1"]
        command += ["--port", str(port), "--timeout-graceful-shutdown", "2"]
    else:
        command = [str(python), "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}"]
        command += ["--graceful-timeout", "2"]
    return [*command, "--log-level", "warning", *options]


@dataclass
class RunningServer:
    """A server started by `launch`: its process, its log, and its base URLs."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def launch(
    server_name: str,
    app: str,
    log: Path,
    app_dir: Path = PROJECT_ROOT,
    env: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
    python: Path = Path(sys.executable),
) -> RunningServer:
    """Start `server_name` on `app`, with `app_dir` and the repository root first on the path and
    `env` added to the environment, and wait until it accepts connections."""
    port = free_port()
    path = os.pathsep.join((str(app_dir), str(PROJECT_ROOT)))
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": path}
    command = server_command(server_name, app, port, *options, python=python)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        wait_until_accepting(process, port, log)
    except BaseException:
        stop(process)
        raise
    return RunningServer(process, log, port)


@pytest.fixture(scope="module", params=["uvicorn", "hypercorn"])
def server_name(request: pytest.FixtureRequest) -> str:
    """Each real-server check runs under uvicorn and under hypercorn."""
    name = str(request.param)
    pytest.importorskip(name, reason=f"the real-server tests run the apps under {name}")
    return name


Serve = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def serve(server_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """A function starting the server on `app` ("module:attribute"), as `launch` does. Every
    server is stopped, and must have logged no traceback, when the module's tests are done."""
    pytest.importorskip("websockets", reason="the real-server tests talk to it with websockets")
    servers: list[RunningServer] = []

    def start(
        app: str, app_dir: Path = PROJECT_ROOT, env: Mapping[str, str] | None = None
    ) -> RunningServer:
        log = tmp_path_factory.mktemp(server_name) / "server.log"
        servers.append(launch(server_name, app, log, app_dir, env))
        return servers[-1]

    yield start
    for server in servers:
        stop(server.process)
    for server in servers:
        assert "Traceback" not in server.log.read_text(), server.log.read_text()


@pytest.fixture(scope="module")
def echo_url(serve: Serve, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The ws:// base URL of ECHO_APP under the server."""
    app_dir = tmp_path_factory.mktemp("echo_app")
    (app_dir / "echo_app.py").write_text(textwrap.dedent(ECHO_APP))
    return serve("echo_app:app", app_dir).ws_url


@pytest.fixture(scope="module")
def chat_url(serve: Serve) -> str:
    """The ws:// base URL of examples/chat.py under the server, imported as its docs say."""
    return serve("examples.chat:app").ws_url


def ws_client(url: str, **options: Any) -> ClientConnection:
    """A `websockets` sync client connection, every wait bounded."""
    from websockets.sync.client import connect

    connection: ClientConnection = connect(
        url, open_timeout=CLIENT_TIMEOUT, close_timeout=CLIENT_TIMEOUT, **options
    )
    return connection


def test_real_server_imports_the_repositorys_starlite(echo_url: str) -> None:
    with ws_client(f"{echo_url}/where") as websocket:
        path = websocket.recv(timeout=CLIENT_TIMEOUT)
    assert isinstance(path, str)
    assert Path(path) == PROJECT_ROOT / "starlite.py"


def test_real_server_echoes_text(echo_url: str) -> None:
    with ws_client(f"{echo_url}/text") as websocket:
        for text in ("hello", "", "héllo ✓", "x" * 100_000):
            websocket.send(text)
            assert websocket.recv(timeout=CLIENT_TIMEOUT) == text


def test_real_server_echoes_bytes(echo_url: str) -> None:
    with ws_client(f"{echo_url}/bytes") as websocket:
        for data in (b"\x00\xff", b"", bytes(range(256)) * 2048):  # the last is 512 KiB
            websocket.send(data)
            assert websocket.recv(timeout=CLIENT_TIMEOUT) == data


def test_real_server_echoes_json(echo_url: str) -> None:
    document = {"text": "héllo", "numbers": [1, 2.5, None], "nested": {"ok": True}}
    with ws_client(f"{echo_url}/json") as websocket:
        websocket.send(json.dumps(document))
        reply = websocket.recv(timeout=CLIENT_TIMEOUT)
    assert json.loads(reply) == {"echo": document}
    assert "héllo" in reply  # send_json writes UTF-8, not \\u escapes


def test_real_server_negotiates_a_subprotocol(echo_url: str) -> None:
    with ws_client(f"{echo_url}/subprotocol", subprotocols=["chat.v1", "chat.v2"]) as websocket:
        assert websocket.subprotocol == "chat.v2"
        seen = json.loads(websocket.recv(timeout=CLIENT_TIMEOUT))
    assert seen == {"offered": ["chat.v1", "chat.v2"], "chosen": "chat.v2"}


def test_real_server_closes_with_the_apps_code_and_reason(echo_url: str) -> None:
    from websockets.exceptions import ConnectionClosed

    with ws_client(f"{echo_url}/close") as websocket, pytest.raises(ConnectionClosed) as closed:
        websocket.recv(timeout=CLIENT_TIMEOUT)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")


def test_real_server_sends_the_apps_denial_response(echo_url: str) -> None:
    from websockets.exceptions import InvalidStatus

    # uvicorn offers ASGI's websocket.http.response extension since 0.25 (pyproject asks for
    # 0.30 or later), in each of its websocket implementations: the handshake is answered with
    # the app's own HTTP response, which the client sees as InvalidStatus. Without the extension
    # starlite would raise RuntimeError, and the client would see uvicorn's 500 instead.
    with pytest.raises(InvalidStatus) as denied:
        ws_client(f"{echo_url}/deny")
    response = denied.value.response
    assert (response.status_code, response.body) == (403, b"nope")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "4"


def test_chat_example_under_a_real_server_broadcasts_between_two_real_clients(
    chat_url: str,
) -> None:
    from websockets.exceptions import ConnectionClosed

    def next_json(websocket: ClientConnection) -> Any:
        return json.loads(websocket.recv(timeout=CLIENT_TIMEOUT))

    with ws_client(f"{chat_url}/ws?name=alice") as alice:
        assert next_json(alice) == {"event": "join", "user": "alice"}
        with ws_client(f"{chat_url}/ws") as bob:
            bob.send(json.dumps({"name": "bob"}))
            assert next_json(alice) == next_json(bob) == {"event": "join", "user": "bob"}
            bob.send(json.dumps({"text": "hi alice"}))
            assert next_json(alice) == next_json(bob) == {"user": "bob", "text": "hi alice"}
            alice.send(json.dumps({"text": "hi bob"}))
            assert next_json(alice) == next_json(bob) == {"user": "alice", "text": "hi bob"}
            bob.send(b"binary")
            with pytest.raises(ConnectionClosed) as closed:
                bob.recv(timeout=CLIENT_TIMEOUT)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1003
        assert next_json(alice) == {"event": "leave", "user": "bob"}


def test_chat_example_under_a_real_server_survives_a_client_that_vanishes(chat_url: str) -> None:
    # carol's TCP connection ends without a close frame. Whichever the server notices first, her
    # disconnect or a failed broadcast to her, alice gets her own message and carol's leave, and
    # the server logs no traceback (checked when the server stops).
    def next_json(websocket: ClientConnection) -> Any:
        return json.loads(websocket.recv(timeout=CLIENT_TIMEOUT))

    with ws_client(f"{chat_url}/ws?name=alice") as alice:
        assert next_json(alice) == {"event": "join", "user": "alice"}
        with ws_client(f"{chat_url}/ws?name=carol") as carol:
            assert next_json(alice) == next_json(carol) == {"event": "join", "user": "carol"}
            carol.socket.shutdown(socket.SHUT_RDWR)
            alice.send(json.dumps({"text": "carol?"}))
            received = [next_json(alice), next_json(alice)]
        assert sorted(received, key=json.dumps) == [
            {"event": "leave", "user": "carol"},
            {"text": "carol?", "user": "alice"},
        ]


def test_readme_serve_command_installs_what_the_examples_and_the_tour_need(tmp_path: Path) -> None:
    # The README's first command installs starlite and serves an example: in a virtual
    # environment holding only what its `pip install` installs, the websockets of the chat
    # example and of the tour work, and every example imports.
    readme = (PROJECT_ROOT / "README.md").read_text()
    match = re.search(r"```sh\n(pip install .*) && uvicorn examples\.app:app\n```", readme)
    assert match is not None, "the README's serve command moved"
    python = venv_with(shlex.split(match[1])[2:], tmp_path / "venv")
    examples = sorted(path.stem for path in (PROJECT_ROOT / "examples").glob("*.py"))
    imports = "; ".join(f"import examples.{name}" for name in examples)
    result = subprocess.run(
        [python, "-c", imports],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    tour = re.findall(r"```python\n(.*?)```", readme_section("A tour"), flags=re.DOTALL)[0]
    (tmp_path / "tour.py").write_text(tour)
    servers: list[RunningServer] = []
    try:
        servers.append(launch("uvicorn", "examples.chat:app", tmp_path / "chat.log", python=python))
        servers.append(
            launch("uvicorn", "tour:app", tmp_path / "tour.log", tmp_path, python=python)
        )
        upload_env = {"UPLOAD_DIR": str(tmp_path)}
        log = tmp_path / "upload.log"
        servers.append(launch("uvicorn", "examples.upload:app", log, env=upload_env, python=python))
        with ws_client(f"{servers[0].ws_url}/ws?name=ada") as websocket:
            joined = json.loads(websocket.recv(timeout=CLIENT_TIMEOUT))
        with ws_client(f"{servers[1].ws_url}/echo") as websocket:
            websocket.send("ping")
            echoed = websocket.recv(timeout=CLIENT_TIMEOUT)
        files = {"files": ("a.txt", b"multipart")}
        stored = httpx.post(f"{servers[2].http_url}/upload", files=files, timeout=HTTP_TIMEOUT)
    finally:
        for server in servers:
            stop(server.process)
    assert joined == {"event": "join", "user": "ada"}
    assert echoed == "ping"
    assert stored.status_code == 201, stored.text
    for server in servers:
        log = server.log.read_text()
        assert "Traceback" not in log, log
        assert "WebSocket library" not in log, log


LIFESPAN_APP = '''
"""Leaves a file for each lifespan event it sees, in the directory LIFESPAN_DIR names."""

import contextlib
import os

import anyio

from starlite import PlainTextResponse, Request, Route, Starlite


@contextlib.asynccontextmanager
async def lifespan(app):
    events = anyio.Path(os.environ["LIFESPAN_DIR"])
    await (events / "started").touch()
    yield {"phase": "running"}
    await (events / "stopped").touch()


async def phase(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.phase)


app = Starlite(routes=[Route("/", phase)], lifespan=lifespan)
'''

HTTP_TIMEOUT = httpx.Timeout(CLIENT_TIMEOUT)


def test_real_server_runs_the_lifespan_start_up_and_shut_down(
    server_name: str, tmp_path: Path
) -> None:
    (tmp_path / "lifespan_app.py").write_text(textwrap.dedent(LIFESPAN_APP))
    events = tmp_path / "events"
    events.mkdir()
    server = launch(
        server_name,
        "lifespan_app:app",
        tmp_path / "server.log",
        app_dir=tmp_path,
        env={"LIFESPAN_DIR": str(events)},
    )
    try:
        assert sorted(path.name for path in events.iterdir()) == ["started"]
        response = httpx.get(server.http_url, timeout=HTTP_TIMEOUT)
        assert (response.status_code, response.text) == (200, "running")
    finally:
        stop(server.process)
    assert sorted(path.name for path in events.iterdir()) == ["started", "stopped"]
    assert "Traceback" not in server.log.read_text(), server.log.read_text()


def test_app_example_under_a_real_server_answers_from_its_lifespan_state(serve: Serve) -> None:
    server = serve("examples.app:app")
    with httpx.Client(base_url=server.http_url, timeout=HTTP_TIMEOUT) as client:
        created = client.post("/notes", json={"text": "from a real client"})
        notes = client.get("/notes")
        missing = client.get("/notes/999")
    assert created.status_code == 201
    assert [note["text"] for note in notes.json()] == ["Welcome to starlite.", "from a real client"]
    assert missing.status_code == 404
    assert missing.json() == {"error": "No note 999"}


def test_events_example_under_a_real_server_streams_until_done(serve: Serve) -> None:
    server = serve("examples.events:app")
    seen: list[str] = []
    with (
        httpx.Client(base_url=server.http_url, timeout=HTTP_TIMEOUT) as client,
        client.stream(
            "GET",
            "/progress",
            params={"step_seconds": "0.01"},
            headers={"last-event-id": "96", "accept-encoding": "gzip"},
        ) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert "content-encoding" not in response.headers
        for line in response.iter_lines():
            seen.append(line)
            if line == "event: done":
                break
    assert [line for line in seen if line.startswith("id: ")] == [
        f"id: {n}" for n in (97, 98, 99, 100)
    ]


def test_events_example_under_a_real_server_streams_each_event_as_it_happens(
    serve: Serve,
) -> None:
    server = serve("examples.events:app")
    started = time.monotonic()
    with (
        httpx.Client(base_url=server.http_url, timeout=HTTP_TIMEOUT) as client,
        client.stream("GET", "/progress", params={"step_seconds": "0.2"}) as response,
    ):
        lines = response.iter_lines()
        first = [next(lines) for _ in range(3)]
    # The whole stream takes 20 s; its first event comes after one step. Leaving early ends
    # the stream on the server, which must log no error (checked when it stops).
    assert first == ["event: progress", 'data: {"percent": 1}', "id: 1"]
    assert time.monotonic() - started < 10


def test_site_example_under_a_real_server_serves_byte_ranges_and_304s(serve: Serve) -> None:
    server = serve("examples.site:app")
    css = (PROJECT_ROOT / "examples" / "site_files" / "static" / "style.css").read_bytes()
    with httpx.Client(base_url=server.http_url, timeout=HTTP_TIMEOUT) as client:
        whole = client.get("/static/style.css")
        part = client.get("/static/style.css", headers={"range": "bytes=5-14"})
        again = client.get("/static/style.css", headers={"if-none-match": whole.headers["etag"]})
        page = client.get("/")
    assert (whole.status_code, whole.content) == (200, css)
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 5-14/{len(css)}"
    assert part.content == css[5:15]
    assert (again.status_code, again.content) == (304, b"")
    assert page.status_code == 200
    assert "Hello, starlite" in page.text


def test_upload_example_under_a_real_server_stores_an_upload(
    serve: Serve, tmp_path_factory: pytest.TempPathFactory
) -> None:
    upload_dir = tmp_path_factory.mktemp("uploads")
    server = serve("examples.upload:app", env={"UPLOAD_DIR": str(upload_dir)})
    content = os.urandom(3 * 1024 * 1024)  # bigger than the form parser's spool threshold
    with httpx.Client(base_url=server.http_url, timeout=HTTP_TIMEOUT) as client:
        stored = client.post("/upload", files={"files": ("data.bin", content)})
        listing = client.get("/files")
    assert stored.status_code == 201, stored.text
    (item,) = stored.json()["files"]
    assert (upload_dir / item["stored_name"]).read_bytes() == content
    assert listing.json() == {"files": [{"stored_name": item["stored_name"], "size": len(content)}]}


def test_auth_example_under_a_real_server_refuses_a_forged_post_by_its_host(
    serve: Serve,
) -> None:
    # The server's own Host header (127.0.0.1:port) is what an older browser's Origin must name.
    server = serve("examples.auth:app", env={"SECRET_KEY": "a test key"})
    form = {"username": "bob", "password": "builder"}
    # A connection each: a server may close one whose request body the refusal left unread, and
    # a client reusing it races that close.
    one_use = {"connection": "close"}
    with httpx.Client(base_url=server.http_url, timeout=HTTP_TIMEOUT, headers=one_use) as client:
        forged = client.post("/login", data=form, headers={"origin": "http://evil.example"})
        cross_site = client.post("/login", data=form, headers={"sec-fetch-site": "cross-site"})
        own = client.post("/login", data=form, headers={"origin": server.http_url})
    assert (forged.status_code, forged.text) == (403, "Cross-site request refused")
    assert cross_site.status_code == 403
    assert own.status_code == 303
    assert "set-cookie" in own.headers


def test_uvicorn_with_two_workers_serves_the_example_app(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="this checks the README's `uvicorn --workers 2`")
    log = tmp_path / "server.log"
    server = launch("uvicorn", "examples.app:app", log, options=["--workers", "2"])
    try:
        with httpx.Client(base_url=server.http_url, timeout=HTTP_TIMEOUT) as client:
            answers = [client.get("/notes", headers={"connection": "close"}) for _ in range(8)]
    finally:
        stop(server.process)
    assert [answer.status_code for answer in answers] == [200] * 8
    assert server.process.returncode == 0
    assert "Traceback" not in log.read_text(), log.read_text()


DISCONNECT_APP = '''
"""Handlers that poll request.is_disconnected() until their client leaves, each in a state that
the body can be in: unread, peeked (a poll took it), partly read, fully read. /state/{key} says
where a handler is: "polling" once it polls, then "stopped" when a poll saw its client leave."""

import time

import anyio

from starlite import JSONResponse, PlainTextResponse, Request, Route, Starlite

states: dict[str, str] = {}
POLL_INTERVAL = 0.01
GIVE_UP_AFTER = 15.0  # a handler that never sees its client leave still ends


async def poll_until_gone(request: Request) -> PlainTextResponse:
    key = request.path_params["key"]
    states[key] = "polling"
    deadline = time.monotonic() + GIVE_UP_AFTER
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            states[key] = "stopped"
            return PlainTextResponse("gone")
        await anyio.sleep(POLL_INTERVAL)
    states[key] = "timed out"
    return PlainTextResponse("timed out")


async def unread(request: Request) -> PlainTextResponse:
    return await poll_until_gone(request)


async def peeked(request: Request) -> PlainTextResponse:
    await request.is_disconnected()  # takes the body's message, kept for stream()
    return await poll_until_gone(request)


async def partly_read(request: Request) -> PlainTextResponse:
    stream = request.stream()
    await anext(stream)  # the client sends part of the body, then waits
    return await poll_until_gone(request)


async def fully_read(request: Request) -> PlainTextResponse:
    await request.body()
    return await poll_until_gone(request)


async def state(request: Request) -> JSONResponse:
    return JSONResponse(states.get(request.path_params["key"]))


app = Starlite(
    routes=[
        Route("/unread/{key}", unread, methods=["GET", "POST"]),
        Route("/peeked/{key}", peeked, methods=["POST"]),
        Route("/partly-read/{key}", partly_read, methods=["POST"]),
        Route("/fully-read/{key}", fully_read, methods=["POST"]),
        Route("/state/{key}", state),
    ]
)
'''

# uvicorn runs on asyncio only (and here with h11: httptools is not installed); hypercorn runs
# on asyncio and on trio.
DISCONNECT_SERVERS = {
    "uvicorn": ("uvicorn", ()),
    "hypercorn-asyncio": ("hypercorn", ("--worker-class", "asyncio")),
    "hypercorn-trio": ("hypercorn", ("--worker-class", "trio")),
}

# How soon a polling handler must notice that its client left.
DISCONNECT_NOTICED_WITHIN = 1.0


@pytest.fixture(scope="module", params=list(DISCONNECT_SERVERS))
def disconnect_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """DISCONNECT_APP under each server and event loop; it must log no traceback."""
    server_name, options = DISCONNECT_SERVERS[request.param]
    pytest.importorskip(server_name, reason=f"this runs the app under {server_name}")
    app_dir = tmp_path_factory.mktemp("disconnect_app")
    (app_dir / "disconnect_app.py").write_text(textwrap.dedent(DISCONNECT_APP))
    log = app_dir / "server.log"
    server = launch(server_name, "disconnect_app:app", log, app_dir, options=options)
    yield server
    stop(server.process)
    assert "Traceback" not in log.read_text(), log.read_text()


def handler_state(server: RunningServer, key: str) -> str | None:
    response = httpx.get(f"{server.http_url}/state/{key}", timeout=HTTP_TIMEOUT)
    state: str | None = response.json()
    return state


def wait_for_state(server: RunningServer, key: str, wanted: str, within: float) -> float:
    """Poll the handler's state until it is `wanted`, failing after `within` seconds; returns
    how long it took."""
    started = time.monotonic()
    while (state := handler_state(server, key)) != wanted:
        waited = time.monotonic() - started
        assert waited < within, f"{key}: still {state!r} after {waited:.2f} s, not {wanted!r}"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("path", "request_head", "body_sent"),
    [
        ("unread", "GET {path} HTTP/1.1", b""),
        ("unread", "POST {path} HTTP/1.1\r\nContent-Length: 5", b"hello"),
        ("peeked", "POST {path} HTTP/1.1\r\nContent-Length: 5", b"hello"),
        ("partly-read", "POST {path} HTTP/1.1\r\nContent-Length: 10", b"hello"),
        ("fully-read", "POST {path} HTTP/1.1\r\nContent-Length: 5", b"hello"),
    ],
)
def test_real_server_a_handler_polling_is_disconnected_stops_when_its_client_leaves(
    disconnect_server: RunningServer, path: str, request_head: str, body_sent: bytes
) -> None:
    key = uuid.uuid4().hex
    head = request_head.format(path=f"/{path}/{key}") + "\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(
        ("127.0.0.1", disconnect_server.port), timeout=CLIENT_TIMEOUT
    ) as client:
        client.sendall(head.encode() + body_sent)
        wait_for_state(disconnect_server, key, "polling", within=CLIENT_TIMEOUT)
        time.sleep(0.1)  # the handler polls a few times while its client is still there
        assert handler_state(disconnect_server, key) == "polling"
    waited = wait_for_state(disconnect_server, key, "stopped", within=DISCONNECT_NOTICED_WITHIN)
    assert waited < DISCONNECT_NOTICED_WITHIN


def test_a_fastapi_app_with_an_sse_stream_runs_on_starlite_under_uvicorn(tmp_path: Path) -> None:
    write_fastapi_app(tmp_path)
    server = launch("uvicorn", "fastapi_on_starlite:app", tmp_path / "server.log", tmp_path)
    try:
        with httpx.Client(base_url=server.http_url, timeout=CLIENT_TIMEOUT) as client:
            assert fastapi_answers(client) == [answer for _, answer in FASTAPI_EXCHANGES]
            check_fastapi_invalid(client)
        from websockets.sync.client import connect

        with connect(f"{server.ws_url}/rooms/lobby", open_timeout=CLIENT_TIMEOUT) as websocket:
            websocket.send("hello")
            said = websocket.recv(timeout=CLIENT_TIMEOUT)
            assert json.loads(said) == {"room": "lobby", "said": "hello"}
    finally:
        stop(server.process)
    assert "Traceback" not in server.log.read_text()
