"""starlite: an ASGI web framework with Starlette's API, in one file.

Import from ``starlite`` what you imported from ``starlette.*``; the application class is
``Starlite``. anyio is the only required dependency; python-multipart, httpx and jinja2 are
optional extras, imported on first use.

The life of a request, in call order (search for each name): Starlite.__call__ calls the middleware
stack built once: ServerErrorMiddleware.__call__ (then RequestBodyLimitMiddleware, if the app sets
a body limit), the user's middleware in order, ExceptionMiddleware.__call__, and Router.__call__.
Router.app finds the route (Route.handle; Router._enter_plain for a plain route), whose app is the
`app` inside request_response: it makes the Request, awaits the endpoint, and calls the Response it
returns, Response.__call__, which sends it. A websocket goes likewise to websocket_session.

Each section uses only what is above it, so the file reads top to bottom: building blocks, what
comes in (forms, requests), what goes out (responses, websockets), the error handling and body
limit around every endpoint, routing, middleware, the application, then the tools around it:

1. Types and helpers     ASGI type aliases, the door for optional extras, a cached property
2. Datastructures        URL, Headers, QueryParams, the multi-dicts, State, Secret, ...
3. Exceptions            HTTPException, WebSocketException, and status codes by name
4. Concurrency           running blocking code in the threadpool
5. Background tasks      work that runs after the response is sent
6. Forms                 FormData, UploadFile, and streaming form parsers with limits
7. Requests              HTTPConnection and Request: reading what the client sent
8. Responses             Response and its subclasses: streaming, server-sent events, files, ranges
9. WebSockets            WebSocket, its states and close codes
10. Error handling       ExceptionMiddleware, ServerErrorMiddleware and its debug page
11. Body limit           RequestBodyLimitMiddleware: a body over its limit is answered 413
12. Routing              convertors, routes, mounts, hosts, and the indexed Router
13. Endpoints            HTTPEndpoint and WebSocketEndpoint: a method per verb or event
14. Middleware           Middleware: a middleware class with the arguments to build it with
15. Hosts and HTTPS      TrustedHostMiddleware and HTTPSRedirectMiddleware
16. CORS                 CORSMiddleware: cross-origin requests and preflights
17. GZip                 GZipMiddleware and GZipResponder
18. Sessions             SessionMiddleware: the session in a signed cookie
19. Authentication       AuthenticationMiddleware, the user types, and @requires
20. CSRF                 CSRFMiddleware: cross-site requests refused
21. BaseHTTPMiddleware   middleware written as one function of the request
22. Application          Starlite: the middleware stack around a router, and lifespan
23. Config               settings from the environment and a .env file, cast and checked
24. Static files and templates   StaticFiles, safe by construction; Jinja2Templates
25. Test client          TestClient and AsyncTestClient: drive an ASGI app from tests, on httpx
26. Standing in for Starlette   install_as_starlette(): FastAPI and Starlette's add-ons on starlite
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import contextvars
import errno
import functools
import html
import http.cookies
import importlib
import importlib.util
import inspect
import ipaddress  # loaded by urllib.parse anyway
import itertools
import json
import linecache
import logging
import math
import mimetypes
import os
import re
import shlex
import stat
import sys
import time
import traceback
import uuid
import warnings
import zlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Generator,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from datetime import UTC, datetime
from enum import Enum, EnumMeta
from http import HTTPStatus
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    NamedTuple,
    NoReturn,
    ParamSpec,
    Protocol,
    Self,
    TypeAlias,
    TypeGuard,
    TypeVar,
    cast,
    overload,
)
from urllib.parse import SplitResult, quote, unquote, unquote_to_bytes, urlencode, urlsplit

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    import importlib.abc

    import anyio.from_thread
    import httpx  # type: ignore[import-not-found, unused-ignore]
    import jinja2  # type: ignore[import-not-found, unused-ignore]

# Some standard-library modules are imported where they are first used, not here: each serves
# one feature (sessions, uploads, dates of files, the test client), and together they would more
# than double the time `import starlite` takes (measured with benchmarks/compare.py). They are
# imported as `import module`, which, once the module is loaded, is several times cheaper than
# `from module import name`: some of them run on every request (a file's date, an uploaded file).

__version__ = "0.1.0"

# fmt: off
__all__ = [
    # Types and helpers
    "ASGIApp", "Message", "Receive", "Scope", "Send",
    # Datastructures
    "URL", "Address", "CommaSeparatedStrings", "Headers", "ImmutableMultiDict", "MultiDict",
    "MutableHeaders", "QueryParams", "Secret", "Session", "State", "URLPath",
    # Exceptions
    "HTTPException", "StarletteDeprecationWarning", "WebSocketException", "status",
    # Concurrency
    "iterate_in_threadpool", "run_in_threadpool", "run_until_first_complete",
    # Background tasks
    "BackgroundTask", "BackgroundTasks",
    # Forms
    "FormData", "FormMessage", "FormParser", "MultiPartException", "MultiPartParser", "UploadFile",
    # Requests
    "ClientDisconnect", "HTTPConnection", "Request", "cookie_parser",
    # Responses
    "Content", "ContentStream", "FileResponse", "HTMLResponse", "JSONResponse", "PlainTextResponse",
    "RedirectResponse", "Response", "StreamingResponse", "EventSourceResponse", "ServerSentEvent",
    # WebSockets
    "WebSocket", "WebSocketClose", "WebSocketDisconnect", "WebSocketDisconnected", "WebSocketState",
    # Error handling
    "ExceptionHandler", "HTTPExceptionHandler", "WebSocketExceptionHandler", "ExceptionMiddleware",
    "ServerErrorMiddleware",
    # Body limit
    "MAX_BODY_SIZE_SCOPE_KEY", "RequestBodyLimitMiddleware",
    # Routing
    "CONVERTOR_TYPES", "BaseRoute", "Convertor", "FloatConvertor", "Host", "IntegerConvertor",
    "Match", "Mount", "NoMatchFound", "PathConvertor", "Route", "Router", "StringConvertor",
    "UUIDConvertor", "WebSocketRoute", "compile_path", "get_name", "register_url_convertor",
    "replace_params", "request_response", "websocket_session",
    # Endpoints
    "HTTPEndpoint", "WebSocketEndpoint",
    # Middleware
    "Middleware",
    # Hosts and HTTPS
    "HTTPSRedirectMiddleware", "TrustedHostMiddleware",
    # CORS
    "CORSMiddleware",
    # GZip
    "DEFAULT_EXCLUDED_CONTENT_TYPES", "GZipMiddleware", "GZipResponder",
    # Sessions
    "SessionMiddleware",
    # Authentication
    "AuthCredentials", "AuthenticationBackend", "AuthenticationError", "AuthenticationMiddleware",
    "BaseUser", "SimpleUser", "UnauthenticatedUser", "has_required_scope", "requires",
    # CSRF
    "CSRFMiddleware",
    # BaseHTTPMiddleware
    "BaseHTTPMiddleware", "DispatchFunction", "RequestResponseEndpoint",
    # Application
    "AppType", "Lifespan", "StatefulLifespan", "StatelessLifespan", "Starlite",
    # Config
    "Config", "Environ", "EnvironError", "environ",
    # Static files and templates
    "Jinja2Templates", "NotModifiedResponse", "StaticFiles",
    # Test client
    "ASGIInstance", "AsyncTestClient", "AsyncWebSocketTestSession", "TestClient",
    "WebSocketDenialResponse", "WebSocketTestSession",
    # Standing in for Starlette
    "install_as_starlette",
]
# fmt: on


# ==== Types and helpers ====
# The ASGI interface as type aliases (https://asgi.readthedocs.io/en/latest/specs/main.html), the
# one door through which optional extras are imported, and the cached property the classes use.

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

# A file system path, as open() and os.fspath() take one.
_StrPath: TypeAlias = str | os.PathLike[str]

P = ParamSpec("P")
T = TypeVar("T")
ConvertedT = TypeVar("ConvertedT")


def _import_extra(extra: str, package: str, *modules: str) -> ModuleType:
    """Import the first of `modules` that is installed, or say how to install `package`: as
    starlite-asgi's `extra`, or on its own where starlite.py is a copy in the project."""
    for name in modules:
        # A form parse asks on every request: looking in sys.modules first is far cheaper than
        # import_module for a module already loaded.
        loaded = sys.modules.get(name)
        if loaded is not None:
            return loaded
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but one of its own imports is missing
                raise
    raise ImportError(
        f"This feature needs {package}: pip install 'starlite-asgi[{extra}]', or, for a copied"
        f" starlite.py, pip install {package}"
    )


class _CachedProperty(Generic[T]):
    """``functools.cached_property`` without the lock Python 3.11 takes on each first read (3.12
    dropped it): a request's headers, query or URL are computed on nearly every request."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object, owner: type | None = None) -> T | Self:
        if instance is None:
            return self
        # Kept in the instance's dict, which Python reads before a non-data descriptor like this.
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


def _is_async_callable(obj: object) -> bool:
    """Whether calling `obj` (a function, or an object's ``__call__``, in partials) is async."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - we want the method itself, not callable()
    )


# ==== Datastructures ====
# The value types a request and a response are made of: URLs, headers, query strings, multi-dicts,
# request state, and small helpers for configuration values.


class Address(NamedTuple):
    """A client or server address: host and port."""

    host: str
    port: int


# RFC 3986 §3.2.2-3: host [ ":" port ], where host is an IP-literal in brackets, an IPv4 address or
# a reg-name. "@" is excluded on purpose: a Host header must never smuggle in userinfo. An IPvFuture
# literal must start with a lower-case "v", as Python's urlsplit wants: a Host header that passes
# must also parse as a URL.
_HOST_HEADER = re.compile(
    r"""
    (?P<host>
        \[ (?: (?P<ipv6> [0-9A-Fa-f:.]+ (?: %25 [A-Za-z0-9._~-]+ )? )  # IPv6address, RFC 6874 zone
             | v [0-9A-Fa-f]+ \. [A-Za-z0-9._~!$&'()*+,;=:-]+ ) \]     # IPvFuture
      | [A-Za-z0-9._~!$&'()*+,;=%-]+ )                                 # reg-name or IPv4address
    (?: : (?P<port> [0-9]+ ) )?                                        # port = *DIGIT
    """,
    re.VERBOSE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _is_ipv6_address(text: str) -> bool:
    """Whether `text` is an IPv6 address (perhaps with a zone id), as urlsplit checks it."""
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _split_host_header(value: str) -> tuple[str, str | None] | None:
    """The host (an IP literal in its brackets) and port of a well-formed Host header, or None;
    the port may be any digits, as RFC 3986 allows."""
    match = _HOST_HEADER.fullmatch(value)
    if match is None or (match["ipv6"] is not None and not _is_ipv6_address(match["ipv6"])):
        return None
    return match["host"], match["port"]


def _valid_host_header(value: str) -> bool:
    """Whether a Host header can go in a URL: well formed, any port (zeros may lead) <= 65535."""
    host_and_port = _split_host_header(value)
    if host_and_port is None:
        return False
    # No port reads as "", fine; a long run of digits is out of range: never convert it.
    digits = (host_and_port[1] or "").lstrip("0")
    return len(digits) <= 5 and int(digits or "0") <= 65535


def _header_value(scope: Scope, name: bytes) -> str | None:
    """The first value of request header `name` (lower-case bytes), straight from the scope."""
    for item_name, value in scope["headers"]:
        if item_name == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def _request_host(scope: Scope) -> str | None:
    """The host of a request's Host header, lower-cased, whatever its port; None if the header
    is missing or malformed. What Host routes and TrustedHostMiddleware match against."""
    host_header = _header_value(scope, b"host")
    host_and_port = None if host_header is None else _split_host_header(host_header)
    return None if host_and_port is None else host_and_port[0].lower()


def _scope_netloc(scope: Scope) -> str | None:
    """The authority a request was sent to: the Host header if well formed, else the server."""
    host_header = _header_value(scope, b"host")
    if host_header is not None and _valid_host_header(host_header):
        return host_header  # a malformed Host header is ignored, as if it were absent
    server = scope.get("server")
    if server is None or server[1] is None:  # no server, or a Unix socket
        return None
    host, port = server
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port == _DEFAULT_PORTS.get(scope.get("scheme", "http")):
        return str(host)
    return f"{host}:{port}"


def _url_from_scope(scope: Scope) -> str:
    """Rebuild the URL a client requested from an ASGI connection scope."""
    # scope["path"] is already percent-decoded: escape only what would change how the URL parses.
    path = scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = scope.get("query_string", b"").decode("latin-1")
    netloc = _scope_netloc(scope)
    if netloc is None:
        if path.startswith("//"):  # without an authority, "//x" would read as host "x"
            path = "/%2F" + path[2:]
        return f"{path}?{query}" if query else path
    return SplitResult(scope.get("scheme", "http"), netloc, path, query, "").geturl()


def _parse_query(query: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of a query string or of an urlencoded form's whole fields, as
    ``parse_qsl(query, keep_blank_values=True)`` gives them."""
    # "+" replaced in the whole string at once, and unquoting only if there is a "%": done field
    # by field, those steps were most of the cost of a parse, which every request pays.
    text = query.replace("+", " ")
    escaped = "%" in text
    pairs = []  # a loop, not comprehensions: 15% faster on 20 fields
    for field in text.split("&"):
        if field:  # "a=1&&b=2" holds an empty field: nothing to add
            name, _, value = field.partition("=")
            pairs.append((_unquote(name), _unquote(value)) if escaped else (name, value))
    return pairs


def _unquote(text: str) -> str:
    """``unquote(text)``, by a shorter road for the usual text: ASCII, with or without a "%"."""
    if "%" not in text:
        return text
    if text.isascii():  # one run of ASCII, which unquote would find with a regex, then decode
        return unquote_to_bytes(text).decode("utf-8", "replace")
    return unquote(text)


class URL:
    """A URL, built from a string, from an ASGI scope, or from components."""

    _url: str

    def __init__(self, url: str = "", scope: Scope | None = None, **components: Any) -> None:
        if scope is not None or components:
            if url or (scope is not None and components):
                raise ValueError("URL takes a string, a scope or components: only one of them")
            if scope is not None:
                url = _url_from_scope(scope)
            else:
                url = URL("").replace(**components)._url
        self._url = url

    @_CachedProperty
    def components(self) -> SplitResult:
        """The URL split into scheme, netloc, path, query and fragment."""
        return urlsplit(self._url)

    @property
    def scheme(self) -> str:
        return self.components.scheme

    @property
    def netloc(self) -> str:
        """The authority: ``user:password@host:port``."""
        return self.components.netloc

    @property
    def path(self) -> str:
        return self.components.path

    @property
    def query(self) -> str:
        """The query string, without the ``?``."""
        return self.components.query

    @property
    def fragment(self) -> str:
        """The fragment, without the ``#``."""
        return self.components.fragment

    @property
    def username(self) -> str | None:
        return self.components.username

    @property
    def password(self) -> str | None:
        return self.components.password

    @property
    def hostname(self) -> str | None:
        """The host, lower-cased, without brackets around an IPv6 address."""
        return self.components.hostname

    @property
    def port(self) -> int | None:
        """The explicit port, if any."""
        return self.components.port

    @property
    def is_secure(self) -> bool:
        return self.scheme in ("https", "wss")

    def replace(self, **kwargs: Any) -> URL:
        """A copy with some components replaced (``hostname``, ``port`` and the user too)."""
        if {"hostname", "port", "username", "password"} & kwargs.keys():
            kwargs["netloc"] = self._replaced_netloc(
                hostname=kwargs.pop("hostname", None),
                port=kwargs.pop("port", self.port),
                username=kwargs.pop("username", self.username),
                password=kwargs.pop("password", self.password),
            )
        return self.__class__(self.components._replace(**kwargs).geturl())

    def _replaced_netloc(
        self, hostname: str | None, port: int | None, username: str | None, password: str | None
    ) -> str:
        if hostname is None:  # keep the current host as written, brackets and all
            hostname = self.netloc.rpartition("@")[2]
            if not hostname.endswith("]") and ":" in hostname:
                hostname = hostname.rpartition(":")[0]
        elif not hostname.startswith("[") and _is_ipv6_address(hostname):
            hostname = f"[{hostname}]"  # "example.org:8080" is a host and port, left as it is
        netloc = hostname if port is None else f"{hostname}:{port}"
        if username is None:
            return netloc
        userinfo = username if password is None else f"{username}:{password}"
        return f"{userinfo}@{netloc}"

    def include_query_params(self, **kwargs: Any) -> URL:
        """A copy with these query parameters set, keeping the others."""
        params = MultiDict(_parse_query(self.query))
        params.update({str(key): str(value) for key, value in kwargs.items()})
        return self.replace(query=urlencode(params.multi_items()))

    def replace_query_params(self, **kwargs: Any) -> URL:
        """A copy whose query string holds exactly these parameters."""
        return self.replace(query=urlencode([(str(k), str(v)) for k, v in kwargs.items()]))

    def remove_query_params(self, keys: str | Sequence[str]) -> URL:
        """A copy without the query parameters named in `keys`."""
        removed = {keys} if isinstance(keys, str) else set(keys)
        params = _parse_query(self.query)
        return self.replace(query=urlencode([(k, v) for k, v in params if k not in removed]))

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self._url)

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        url = str(self.replace(password="********")) if self.password else self._url
        return f"{self.__class__.__name__}({url!r})"


class URLPath(str):
    """A path from ``url_path_for``: a string to make absolute on a base URL, with the route's
    `protocol` (``"http"``, ``"websocket"``, or ``""`` for the base's) and `host` (under a Host)."""

    protocol: Literal["http", "websocket", ""]
    host: str

    def __new__(
        cls, path: str, protocol: Literal["http", "websocket", ""] = "", host: str = ""
    ) -> URLPath:
        url_path = super().__new__(cls, path)
        url_path.protocol = protocol
        url_path.host = host
        return url_path

    def make_absolute_url(self, base_url: str | URL) -> URL:
        """This path as an absolute URL on `base_url`'s scheme, host and root path."""
        base = URL(base_url) if isinstance(base_url, str) else base_url
        scheme = base.scheme
        if self.protocol == "http":
            scheme = "https" if base.is_secure else "http"
        elif self.protocol == "websocket":
            scheme = "wss" if base.is_secure else "ws"
        path = base.path.rstrip("/") + str(self)
        return URL(scheme=scheme, netloc=self.host or base.netloc, path=path)


class Secret:
    """A string that hides its value from ``repr``, so it never lands in a log or traceback."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}('**********')"

    def __str__(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)


class CommaSeparatedStrings(Sequence[str]):
    """A list of strings read from ``"a, b, 'c, d'"``: commas separate, quotes group."""

    def __init__(self, value: str | Sequence[str]) -> None:
        if isinstance(value, str):
            splitter = shlex.shlex(value, posix=True)
            splitter.whitespace = ","
            splitter.whitespace_split = True
            self._items = [item.strip() for item in splitter]
        else:
            self._items = list(value)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int | slice) -> Any:
        return self._items[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._items!r})"

    def __str__(self) -> str:
        return ", ".join(repr(item) for item in self)


KeyT = TypeVar("KeyT")
ValueT_co = TypeVar("ValueT_co", covariant=True)
# What a multi-dict is made from; a multi-dict among the mappings gives all its items.
_MultiItems: TypeAlias = Mapping[Any, Any] | Iterable[tuple[Any, Any]]


def _item_key(item: tuple[Any, Any]) -> Any:
    return item[0]


class ImmutableMultiDict(Mapping[KeyT, ValueT_co]):
    """A mapping where a key may have several values: ``[key]`` gives the last, ``getlist`` all."""

    _list: list[tuple[Any, Any]]
    _dict: dict[Any, Any]

    def __init__(self, *args: _MultiItems, **kwargs: Any) -> None:
        if len(args) > 1:
            raise TypeError(f"{self.__class__.__name__} takes at most one positional argument")
        value: Any = args[0] if args else []
        if kwargs:
            value = ImmutableMultiDict(value).multi_items() + list(kwargs.items())
        if isinstance(value, list):  # first: the common case, and the cheapest check
            self._list = value.copy()
        elif isinstance(value, ImmutableMultiDict):
            self._list = value.multi_items()
        elif isinstance(value, Mapping):
            self._list = list(value.items())
        else:
            self._list = list(value)
        self._dict = dict(self._list)

    def getlist(self, key: Any) -> list[ValueT_co]:
        """Every value of `key`, in order."""
        return [value for item_key, value in self._list if item_key == key]

    def keys(self) -> KeysView[KeyT]:
        return self._dict.keys()

    def values(self) -> ValuesView[ValueT_co]:
        return self._dict.values()

    def items(self) -> ItemsView[KeyT, ValueT_co]:
        return self._dict.items()

    def multi_items(self) -> list[tuple[KeyT, ValueT_co]]:
        """Every (key, value) pair, repeated keys included, in order."""
        return list(self._list)

    def __getitem__(self, key: KeyT) -> ValueT_co:
        return self._dict[key]  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[KeyT]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self.__class__):
            return False
        # Sorted by key alone: values need not be comparable (UploadFile), and the sort is
        # stable, so the values of one key must come in the same order.
        return sorted(self._list, key=_item_key) == sorted(other._list, key=_item_key)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.multi_items()!r})"


class MultiDict(ImmutableMultiDict[Any, Any]):
    """A mutable `ImmutableMultiDict`."""

    def __setitem__(self, key: Any, value: Any) -> None:
        self.setlist(key, [value])

    def __delitem__(self, key: Any) -> None:
        self._list = [(k, v) for k, v in self._list if k != key]
        del self._dict[key]

    def pop(self, key: Any, default: Any = None) -> Any:
        """Remove every value of `key` and return the last one (or `default`)."""
        self._list = [(k, v) for k, v in self._list if k != key]
        return self._dict.pop(key, default)

    def popitem(self) -> tuple[Any, Any]:
        """Remove a key with all its values and return it with its last value."""
        key, value = self._dict.popitem()
        self._list = [(k, v) for k, v in self._list if k != key]
        return key, value

    def poplist(self, key: Any) -> list[Any]:
        """Remove every value of `key` and return them."""
        values = [v for k, v in self._list if k == key]
        self.pop(key)
        return values

    def clear(self) -> None:
        self._dict.clear()
        self._list.clear()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self.append(key, default)
        return self[key]

    def setlist(self, key: Any, values: list[Any]) -> None:
        """Replace every value of `key` with `values` (an empty list removes the key)."""
        if not values:
            self.pop(key, None)
            return
        self._list = [(k, v) for k, v in self._list if k != key] + [(key, v) for v in values]
        self._dict[key] = values[-1]

    def append(self, key: Any, value: Any) -> None:
        """Add a value to `key`, keeping its others."""
        self._list.append((key, value))
        self._dict[key] = value

    def update(self, *args: _MultiItems, **kwargs: Any) -> None:
        """Replace the values of every key present in the arguments."""
        other = MultiDict(*args, **kwargs)
        self._list = [(k, v) for k, v in self._list if k not in other] + other.multi_items()
        self._dict.update(other)


class QueryParams(ImmutableMultiDict[str, str]):
    """The parameters of a query string (``?a=1&a=2&b=``), blank values kept."""

    def __init__(self, *args: _MultiItems | str | bytes, **kwargs: Any) -> None:
        value = args[0] if args else []
        if isinstance(value, str | bytes):
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            super().__init__(_parse_query(text), **kwargs)
            if not kwargs:  # parsed from text alone: every key and value is a str already
                return
        else:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._list = [(str(k), str(v)) for k, v in self._list]
        self._dict = {str(k): str(v) for k, v in self._dict.items()}

    def __str__(self) -> str:
        return urlencode(self._list)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self)!r})"


# RFC 9110 §5.5: a field value never contains CR, LF or NUL; writing one would let the value start
# a new header line (response splitting), so it is refused where the app sets it.
_FORBIDDEN_IN_HEADER = re.compile(rb"[\r\n\0]")


def _check_raw_header(raw_name: bytes, raw_value: bytes) -> None:
    """Refuse a header that CR, LF or NUL would split."""
    if _FORBIDDEN_IN_HEADER.search(raw_name) or _FORBIDDEN_IN_HEADER.search(raw_value):
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        raise ValueError(f"Header {name!r} contains CR, LF or NUL: {value!r}")


def _encode_header(name: str, value: str) -> tuple[bytes, bytes]:
    """A header as ASGI wants it: lower-cased latin-1 name and latin-1 value, checked for safety."""
    raw_name, raw_value = name.lower().encode("latin-1"), value.encode("latin-1")
    _check_raw_header(raw_name, raw_value)
    return raw_name, raw_value


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued HTTP headers over ASGI's (name, value) byte pairs: ``[name]``
    is the first value, ``getlist`` all; latin-1, so no header, however odd, fails to decode."""

    _list: list[tuple[bytes, bytes]]

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        raw: list[tuple[bytes, bytes]] | None = None,
        scope: MutableMapping[str, Any] | None = None,
    ) -> None:
        if (headers is not None) + (raw is not None) + (scope is not None) > 1:
            raise ValueError("Headers takes one of 'headers', 'raw' or 'scope'")
        if headers is not None:
            self._list = [_encode_header(name, value) for name, value in headers.items()]
        elif raw is not None:
            self._list = raw  # shared, not copied: a Response's headers view its raw_headers
        elif scope is not None:
            # Shared with the scope, so that a MutableHeaders over it edits the request itself.
            self._list = scope["headers"] = list(scope["headers"])
        else:
            self._list = []

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The headers as a list of (lower-cased name, value) byte pairs."""
        return list(self._list)

    def keys(self) -> list[str]:  # type: ignore[override]
        return [name.decode("latin-1") for name, _ in self._list]

    def values(self) -> list[str]:  # type: ignore[override]
        return [value.decode("latin-1") for _, value in self._list]

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self._list]

    def getlist(self, key: str) -> list[str]:
        """Every value of header `key`, in order."""
        name = key.lower().encode("latin-1")
        return [value.decode("latin-1") for item_name, value in self._list if item_name == name]

    def mutablecopy(self) -> MutableHeaders:
        return MutableHeaders(raw=list(self._list))

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        for item_name, value in self._list:
            if item_name == name:
                return value.decode("latin-1")
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(item_name == name for item_name, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._list)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and sorted(self._list) == sorted(other._list)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        as_dict = dict(self.items())
        if len(as_dict) == len(self):
            return f"{self.__class__.__name__}({as_dict!r})"
        return f"{self.__class__.__name__}(raw={self.raw!r})"


class MutableHeaders(Headers):
    """Headers that can be changed; every value set is checked for CR, LF and NUL."""

    def __setitem__(self, key: str, value: str) -> None:
        """Set a header, replacing all of its current values (in the place of the first)."""
        name, raw_value = _encode_header(key, value)
        positions = [index for index, (item_name, _) in enumerate(self._list) if item_name == name]
        if not positions:
            self._list.append((name, raw_value))
            return
        self._list[positions[0]] = (name, raw_value)
        for index in reversed(positions[1:]):
            del self._list[index]

    def __delitem__(self, key: str) -> None:
        name = key.lower().encode("latin-1")
        self._list[:] = [(n, v) for n, v in self._list if n != name]

    def __ior__(self, other: Mapping[str, str]) -> MutableHeaders:
        if not isinstance(other, Mapping):
            return NotImplemented
        self.update(other)
        return self

    def __or__(self, other: Mapping[str, str]) -> MutableHeaders:
        return self.mutablecopy().__ior__(other)

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The live list of (name, value) byte pairs behind these headers."""
        return self._list

    def setdefault(self, key: str, value: str) -> str:
        """The header's first value, setting it to `value` first if absent."""
        if key in self:
            return self[key]
        self._list.append(_encode_header(key, value))
        return value

    def update(self, other: Mapping[str, str]) -> None:
        for key, value in other.items():
            self[key] = value

    def append(self, key: str, value: str) -> None:
        """Add a value to a header, keeping its others."""
        self._list.append(_encode_header(key, value))

    def add_vary_header(self, vary: str) -> None:
        """Add names to the ``Vary`` header, keeping every name already there, each once."""
        names: dict[str, str] = {}  # lower-cased name -> name as first written
        for value in [*self.getlist("vary"), vary]:
            for name in value.split(","):
                if name.strip():
                    names.setdefault(name.strip().lower(), name.strip())
        # RFC 9110 §12.5.5: "*" already means "varies on anything"; other names add nothing.
        self["vary"] = "*" if "*" in names else ", ".join(names.values())


class _StoredFirst:
    """A method of State that gives way to a value stored under its name, so that
    ``state.items = [...]`` reads back as the list, as in Starlette, whose State has no methods."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self.method = method

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: State | None, owner: type | None = None) -> Any:
        if instance is None:
            return self.method
        stored = instance._state
        if self.name in stored:
            return stored[self.name]
        return self.method.__get__(instance, owner)


MethodT = TypeVar("MethodT", bound=Callable[..., Any])


def _stored_first(method: MethodT) -> MethodT:
    """Mark a State method as giving way to a stored value (see `_StoredFirst`)."""
    return cast(MethodT, _StoredFirst(method))


class State:
    """An object to hang attributes on (``app.state``, ``request.state``); also a mapping of them,
    for a TypedDict lifespan state, where a value stored under a method's name reads as stored."""

    _state: dict[str, Any]

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        super().__setattr__("_state", {} if state is None else state)

    def __setattr__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __getattr__(self, key: str) -> Any:
        # Through __dict__: copy and pickle make a State without `_state` (a KeyError here, so
        # an AttributeError), where `self._state` would come back to __getattr__ for ever.
        try:
            return self.__dict__["_state"][key]
        except KeyError:
            raise AttributeError(f"'State' object has no attribute '{key}'") from None

    def __delattr__(self, key: str) -> None:
        try:
            del self._state[key]
        except KeyError:
            raise AttributeError(f"'State' object has no attribute '{key}'") from None

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __delitem__(self, key: str) -> None:
        del self._state[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)

    def __contains__(self, key: object) -> bool:
        return key in self._state

    def __or__(self, other: Mapping[str, Any]) -> dict[str, Any]:
        return {**self._state, **other}

    def __ror__(self, other: Mapping[str, Any]) -> dict[str, Any]:
        return {**other, **self._state}

    def __ior__(self, other: Mapping[str, Any]) -> Self:
        self._state.update(other)
        return self

    @_stored_first
    def get(self, key: str, default: Any = None) -> Any:
        return self._state.get(key, default)

    @_stored_first
    def keys(self) -> KeysView[str]:
        return self._state.keys()

    @_stored_first
    def values(self) -> ValuesView[Any]:
        return self._state.values()

    @_stored_first
    def items(self) -> ItemsView[str, Any]:
        return self._state.items()

    @_stored_first
    def copy(self) -> dict[str, Any]:
        return self._state.copy()

    @_stored_first
    def setdefault(self, key: str, default: Any = None) -> Any:
        return self._state.setdefault(key, default)

    @_stored_first
    def pop(self, key: str, *default: Any) -> Any:
        return self._state.pop(key, *default)

    @_stored_first
    def update(self, *others: Mapping[str, Any], **values: Any) -> None:
        self._state.update(*others, **values)


class Session(dict[str, Any]):
    """The session dict SessionMiddleware keeps: it notes being read (`accessed`, so that the
    response varies by Cookie) and being written to (`modified`, so that the cookie is sent)."""

    accessed: bool = False
    modified: bool = False

    def mark_accessed(self) -> None:
        """Note that the app read the session."""
        self.accessed = True

    def mark_modified(self) -> None:
        """Note that the app wrote to the session (which reads it too)."""
        self.accessed = True
        self.modified = True

    def __setitem__(self, key: str, value: Any) -> None:
        self.mark_modified()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.mark_modified()
        super().__delitem__(key)

    def __ior__(self, other: Any) -> Self:  # type: ignore[override, misc]
        self.mark_modified()
        return super().__ior__(other)

    def clear(self) -> None:
        self.mark_modified()
        super().clear()

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:  # popping a missing key changes nothing
            self.mark_modified()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self.mark_modified()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self.mark_modified()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.mark_modified()
        super().update(*args, **kwargs)


# ==== Exceptions ====
# Exceptions an app raises on purpose, to be turned into a response (HTTPException) or a websocket
# close (WebSocketException) by the Error handling section.


def _status_phrase(status_code: int) -> str:
    """The reason phrase of a status code ("Not Found"), or "" for a code HTTP does not name."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


class HTTPException(Exception):
    """Raise to answer with an HTTP error: `detail` defaults to the status code's reason phrase."""

    def __init__(
        self, status_code: int, detail: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status_code
        self.detail = _status_phrase(status_code) if detail is None else detail
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        name = self.__class__.__name__
        return f"{name}(status_code={self.status_code!r}, detail={self.detail!r})"


class WebSocketException(Exception):
    """Raise to close a websocket with `code` and `reason` (RFC 6455 §7.4)."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(code={self.code!r}, reason={self.reason!r})"


class _InvalidJSON(json.JSONDecodeError):
    """A client's JSON that `_parse_json` refuses: ``except ValueError`` in an app catches it."""

    # JSONDecodeError's own text ("Expecting value: line 1 column 1 (char 0)"), not the
    # HTTPException or WebSocketException one a subclass would inherit otherwise.
    __str__ = ValueError.__str__
    __repr__ = ValueError.__repr__


class _InvalidJSONBody(_InvalidJSON, HTTPException):
    """A request body that is not I-JSON: answered 400 with a fixed text (the parser's stays in
    the exception) unless the app handles ValueError or JSONDecodeError, first in the MRO."""

    def __init__(self, msg: str, doc: str, pos: int) -> None:
        json.JSONDecodeError.__init__(self, msg, doc, pos)
        HTTPException.__init__(self, 400, "The request body is not valid JSON.")


class _InvalidJSONFrame(_InvalidJSON, WebSocketException):
    """A websocket frame that is not I-JSON: closes with 1007 (invalid frame payload data,
    RFC 6455 §7.4.1) unless the app handles ValueError or JSONDecodeError itself."""

    def __init__(self, msg: str, doc: str, pos: int) -> None:
        json.JSONDecodeError.__init__(self, msg, doc, pos)
        WebSocketException.__init__(self, 1007, "The message is not valid JSON.")


class StarletteDeprecationWarning(UserWarning):
    """Warns of a Starlette API that still works but will go. A UserWarning, as in Starlette, so
    that it shows by default (a DeprecationWarning is hidden outside ``__main__`` and tests)."""


class _RenamedStatus:
    """A status name RFC 9110 replaced: it reads as the code, warning with the name to use."""

    def __init__(self, new_name: str) -> None:
        self.new_name = new_name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.code: int = getattr(owner, self.new_name)

    def __get__(self, instance: object, owner: type | None = None) -> int:
        message = f"'{self.name}' is deprecated. Use '{self.new_name}' instead."
        warnings.warn(message, StarletteDeprecationWarning, stacklevel=2)
        return self.code


class _Status:
    """Status codes by name (``status.HTTP_404_NOT_FOUND``) as RFC 9110 §15 names them: written
    out, so that a type checker catches a misspelt name."""

    __slots__ = ()

    # 1xx: informational
    HTTP_100_CONTINUE = 100
    HTTP_101_SWITCHING_PROTOCOLS = 101
    HTTP_102_PROCESSING = 102
    HTTP_103_EARLY_HINTS = 103

    # 2xx: successful
    HTTP_200_OK = 200
    HTTP_201_CREATED = 201
    HTTP_202_ACCEPTED = 202
    HTTP_203_NON_AUTHORITATIVE_INFORMATION = 203
    HTTP_204_NO_CONTENT = 204
    HTTP_205_RESET_CONTENT = 205
    HTTP_206_PARTIAL_CONTENT = 206
    HTTP_207_MULTI_STATUS = 207
    HTTP_208_ALREADY_REPORTED = 208
    HTTP_226_IM_USED = 226

    # 3xx: redirection
    HTTP_300_MULTIPLE_CHOICES = 300
    HTTP_301_MOVED_PERMANENTLY = 301
    HTTP_302_FOUND = 302
    HTTP_303_SEE_OTHER = 303
    HTTP_304_NOT_MODIFIED = 304
    HTTP_305_USE_PROXY = 305
    HTTP_306_RESERVED = 306
    HTTP_307_TEMPORARY_REDIRECT = 307
    HTTP_308_PERMANENT_REDIRECT = 308

    # 4xx: client error
    HTTP_400_BAD_REQUEST = 400
    HTTP_401_UNAUTHORIZED = 401
    HTTP_402_PAYMENT_REQUIRED = 402
    HTTP_403_FORBIDDEN = 403
    HTTP_404_NOT_FOUND = 404
    HTTP_405_METHOD_NOT_ALLOWED = 405
    HTTP_406_NOT_ACCEPTABLE = 406
    HTTP_407_PROXY_AUTHENTICATION_REQUIRED = 407
    HTTP_408_REQUEST_TIMEOUT = 408
    HTTP_409_CONFLICT = 409
    HTTP_410_GONE = 410
    HTTP_411_LENGTH_REQUIRED = 411
    HTTP_412_PRECONDITION_FAILED = 412
    HTTP_413_CONTENT_TOO_LARGE = 413
    HTTP_414_URI_TOO_LONG = 414
    HTTP_415_UNSUPPORTED_MEDIA_TYPE = 415
    HTTP_416_RANGE_NOT_SATISFIABLE = 416
    HTTP_417_EXPECTATION_FAILED = 417
    HTTP_418_IM_A_TEAPOT = 418
    HTTP_421_MISDIRECTED_REQUEST = 421
    HTTP_422_UNPROCESSABLE_CONTENT = 422
    HTTP_423_LOCKED = 423
    HTTP_424_FAILED_DEPENDENCY = 424
    HTTP_425_TOO_EARLY = 425
    HTTP_426_UPGRADE_REQUIRED = 426
    HTTP_428_PRECONDITION_REQUIRED = 428
    HTTP_429_TOO_MANY_REQUESTS = 429
    HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE = 431
    HTTP_451_UNAVAILABLE_FOR_LEGAL_REASONS = 451

    # 5xx: server error
    HTTP_500_INTERNAL_SERVER_ERROR = 500
    HTTP_501_NOT_IMPLEMENTED = 501
    HTTP_502_BAD_GATEWAY = 502
    HTTP_503_SERVICE_UNAVAILABLE = 503
    HTTP_504_GATEWAY_TIMEOUT = 504
    HTTP_505_HTTP_VERSION_NOT_SUPPORTED = 505
    HTTP_506_VARIANT_ALSO_NEGOTIATES = 506
    HTTP_507_INSUFFICIENT_STORAGE = 507
    HTTP_508_LOOP_DETECTED = 508
    HTTP_510_NOT_EXTENDED = 510
    HTTP_511_NETWORK_AUTHENTICATION_REQUIRED = 511

    # WebSocket close codes (RFC 6455 §7.4.1)
    WS_1000_NORMAL_CLOSURE = 1000
    WS_1001_GOING_AWAY = 1001
    WS_1002_PROTOCOL_ERROR = 1002
    WS_1003_UNSUPPORTED_DATA = 1003
    WS_1005_NO_STATUS_RCVD = 1005
    WS_1006_ABNORMAL_CLOSURE = 1006
    WS_1007_INVALID_FRAME_PAYLOAD_DATA = 1007
    WS_1008_POLICY_VIOLATION = 1008
    WS_1009_MESSAGE_TOO_BIG = 1009
    WS_1010_MANDATORY_EXT = 1010
    WS_1011_INTERNAL_ERROR = 1011
    WS_1012_SERVICE_RESTART = 1012
    WS_1013_TRY_AGAIN_LATER = 1013
    WS_1014_BAD_GATEWAY = 1014
    WS_1015_TLS_HANDSHAKE = 1015

    # The names RFC 9110 retired (Python's HTTPStatus still has them before 3.13).
    HTTP_413_REQUEST_ENTITY_TOO_LARGE = _RenamedStatus("HTTP_413_CONTENT_TOO_LARGE")
    HTTP_414_REQUEST_URI_TOO_LONG = _RenamedStatus("HTTP_414_URI_TOO_LONG")
    HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE = _RenamedStatus("HTTP_416_RANGE_NOT_SATISFIABLE")
    HTTP_422_UNPROCESSABLE_ENTITY = _RenamedStatus("HTTP_422_UNPROCESSABLE_CONTENT")


status = _Status()


# ==== Concurrency ====
# Blocking code (sync endpoints, sync iterators, file system calls) runs in anyio's worker threads,
# so that the event loop keeps serving other requests.


async def run_in_threadpool(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call a blocking function in a worker thread and await its result."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


async def run_until_first_complete(
    *args: tuple[Callable[..., Awaitable[object]], dict[str, Any]],
) -> None:
    """Run each ``(function, keyword arguments)`` pair at once; when one returns, cancel the rest.
    Deprecated, as in Starlette: an anyio task group does this and more."""
    message = "run_until_first_complete is deprecated and will be removed in a future version."
    warnings.warn(message, StarletteDeprecationWarning, stacklevel=2)
    async with anyio.create_task_group() as task_group:

        async def run_then_cancel_the_rest(
            func: Callable[..., Awaitable[object]], kwargs: dict[str, Any]
        ) -> None:
            await func(**kwargs)
            task_group.cancel_scope.cancel()

        for func, kwargs in args:
            task_group.start_soon(run_then_cancel_the_rest, func, kwargs)


async def _call_maybe_async(func: Callable[..., Any], *args: Any) -> Any:
    """Call `func` with `args`: awaited if it is async, in the threadpool if it is not."""
    if _is_async_callable(func):
        return await func(*args)
    return await run_in_threadpool(func, *args)


# What `next` returns at the end of an iterator, since StopIteration cannot cross an await.
_EXHAUSTED: Any = object()


async def iterate_in_threadpool(iterator: Iterable[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterable (Starlette's parameter name is `iterator`), each step in a
    worker thread. Closing it early (a client went away) closes the underlying generator, in a
    thread too, so its clean-up runs."""
    steps = iter(iterator)
    try:
        while (item := await anyio.to_thread.run_sync(next, steps, _EXHAUSTED)) is not _EXHAUSTED:
            yield item
    finally:
        close = getattr(steps, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close)


# ==== Background tasks ====
# Work attached to a response, run after its last byte is sent: the client does not wait for it.


class BackgroundTask:
    """A function to call after the response is sent; a sync one runs in the threadpool."""

    def __init__(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_async = _is_async_callable(func)

    async def __call__(self) -> None:
        if self.is_async:
            await self.func(*self.args, **self.kwargs)
        else:
            await run_in_threadpool(self.func, *self.args, **self.kwargs)


class BackgroundTasks(BackgroundTask):
    """Several background tasks, run one after the other in the order they were added."""

    def __init__(self, tasks: Sequence[BackgroundTask] | None = None) -> None:
        self.tasks = list(tasks) if tasks is not None else []

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        self.tasks.append(BackgroundTask(func, *args, **kwargs))

    async def __call__(self) -> None:
        for task in self.tasks:
            await task()


# ==== Forms ====
# Parsing request bodies into FormData: urlencoded forms with a small streaming parser of our own,
# multipart forms on python-multipart's streaming parser. Every limit is checked while the body
# streams, so no form can make the server hold more than the limits allow.
# Request.form() (Requests, next) parses with them.


class UploadFile:
    """A file uploaded in a multipart form, in a ``SpooledTemporaryFile``: in memory up to 1 MiB,
    then on disk, where its reads and writes run in the threadpool, never on the event loop."""

    def __init__(
        self,
        file: IO[bytes],
        *,
        size: int | None = None,
        filename: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        self.file = file
        self.size = size
        self.filename = filename
        self.headers = headers or Headers()

    @property
    def content_type(self) -> str | None:
        """The part's Content-Type, as the client sent it."""
        return self.headers.get("content-type")

    def _in_memory(self) -> bool:
        """Whether the data is in memory: only then may the event loop touch the file."""
        # SpooledTemporaryFile has no public way to tell where its data is; this private
        # attribute has been there since Python 2.6. Any other file counts as on disk.
        return not getattr(self.file, "_rolled", True)

    def _stays_in_memory(self, extra_bytes: int) -> bool:
        """Whether writing `extra_bytes` more keeps the data in memory (no roll-over to disk)."""
        max_size: int = getattr(self.file, "_max_size", 0)
        return self._in_memory() and (not max_size or self.file.tell() + extra_bytes <= max_size)

    async def write(self, data: bytes | memoryview) -> None:
        """Append `data` (during parsing, the file's position is its end)."""
        if self.size is not None:
            self.size += len(data)
        if self._stays_in_memory(len(data)):
            self.file.write(data)
        else:
            await run_in_threadpool(self._write_on_disk, data)

    def _write_on_disk(self, data: bytes | memoryview) -> None:
        # A SpooledTemporaryFile moves to disk only after a write: it would first hold the whole
        # of a large `data` in memory, and copy it once more on the way out. Move it first.
        rollover = getattr(self.file, "rollover", None)
        if rollover is not None and self._in_memory():
            rollover()
        self.file.write(data)

    async def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (all, by default) from the current position."""
        if self._in_memory():
            return self.file.read(size)
        return await run_in_threadpool(self.file.read, size)

    async def seek(self, offset: int) -> None:
        if self._in_memory():
            self.file.seek(offset)
        else:
            await run_in_threadpool(self.file.seek, offset)

    async def close(self) -> None:
        """Close the file, deleting its data, even if cancelled: none must be left on disk."""
        if self._in_memory() or self.file.closed:
            self.file.close()  # closing a closed file does nothing: no thread for that
        else:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.file.close)

    def __repr__(self) -> str:
        name = self.__class__.__name__
        return f"{name}(filename={self.filename!r}, size={self.size!r}, headers={self.headers!r})"


class FormData(ImmutableMultiDict[str, "UploadFile | str"]):
    """The fields of a form: text values and uploaded files."""

    _closed = False

    async def close(self) -> None:
        """Close every uploaded file."""
        # Once is enough, as its files cannot change: a request closes its form when it ends,
        # though the endpoint usually has already, and each time looks at every field.
        if self._closed:
            return
        for _, value in self._list:
            if isinstance(value, UploadFile):
                await value.close()
        self._closed = True


class MultiPartException(Exception):
    """A form that breaks a limit or the multipart format; answered with 400 inside an app."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _DeprecatedEnumType(EnumMeta):
    """Makes ``FormMessage(1)`` warn that the enum is deprecated, as Starlette's ``@deprecated``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        message = f"`{cls.__name__}` is deprecated and will be removed in a future version."
        warnings.warn(message, StarletteDeprecationWarning, stacklevel=2)
        return super().__call__(*args, **kwargs)


class FormMessage(Enum, metaclass=_DeprecatedEnumType):
    """The events of Starlette's former form parser; deprecated, and unused by starlite."""

    FIELD_START = 1
    FIELD_NAME = 2
    FIELD_DATA = 3
    FIELD_END = 4
    END = 5


def _too_many(kind: str, limit: float) -> MultiPartException:
    return MultiPartException(f"Too many {kind}. Maximum number of {kind} is {limit}.")


def _too_large(kind: str, limit: int) -> MultiPartException:
    return MultiPartException(f"{kind} exceeded maximum size of {int(limit / 1024)}KB.")


class FormParser:
    """Parses an ``application/x-www-form-urlencoded`` body as it streams in: a field over
    `max_part_size` is refused before it is copied, and none past `max_fields` is decoded."""

    def __init__(
        self,
        headers: Headers,
        stream: AsyncIterator[bytes],
        *,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> None:
        self.headers = headers
        self.stream = stream
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        self._items: list[tuple[str, str | UploadFile]] = []
        self._current_fields = 0  # the fields decoded so far
        # The field begun in earlier chunks, raw, its name too: "name=val" so far. (Starlette's
        # parser gives its buffer this name, and its tests read it.)
        self._field_value = bytearray()

    async def parse(self) -> FormData:
        """The form's fields, in order."""
        # A chunk is parsed once the next one has come, or the body has ended: only then is it
        # known whether its end ends a field. So the usual body, one chunk, is decoded in one go,
        # its last field with the others.
        chunk = b""
        async for next_chunk in self.stream:
            if next_chunk:
                self._parse_chunk(chunk, fields_end=chunk.rfind(b"&"))
                chunk = next_chunk
        self._parse_chunk(chunk, fields_end=len(chunk))
        return FormData(self._items)

    def _parse_chunk(self, chunk: bytes, fields_end: int) -> None:
        """Add the fields that end in ``chunk[:fields_end]`` (none if it is -1), the first of them
        perhaps begun in earlier chunks, and keep the rest: a field the next chunk goes on with."""
        if fields_end == -1:
            self._continue_field(chunk, 0, len(chunk))
            return
        start = 0
        if self._field_value:  # it ends at the chunk's first "&", or with the body
            start = chunk.find(b"&", 0, fields_end)
            if start == -1:
                start = fields_end
            self._continue_field(chunk, 0, start)
            self._add_fields(self._field_value, 0, len(self._field_value))
            self._field_value = bytearray()
            start += 1
        self._add_fields(chunk, start, fields_end)
        self._continue_field(chunk, fields_end + 1, len(chunk))

    def _continue_field(self, chunk: bytes, start: int, end: int) -> None:
        """Add ``chunk[start:end]``, which holds no "&", to the field being read."""
        if len(self._field_value) + end - start > self.max_part_size:
            raise _too_large("Field", self.max_part_size)
        self._field_value += chunk[start:end]

    def _add_fields(self, data: bytes | bytearray, start: int, end: int) -> None:
        """Add the whole fields of ``data[start:end]``, separated by "&"."""
        if start >= end:
            return
        most_fields = self._current_fields + data.count(b"&", start, end) + 1  # fewer if any empty
        if end - start <= self.max_part_size and most_fields <= self.max_fields:
            # No field can break a limit: all of them at once, as almost always.
            pairs = _parse_query(bytes(data[start:end]).decode("latin-1"))
            self._current_fields += len(pairs)
            self._items += pairs
            return
        # Field by field, to refuse the one that breaks a limit before it, or any after it, is
        # copied.
        while start <= end:
            field_end = data.find(b"&", start, end)
            if field_end == -1:
                field_end = end
            if field_end - start > self.max_part_size:
                raise _too_large("Field", self.max_part_size)
            if field_end > start:
                self._current_fields += 1
                if self._current_fields > self.max_fields:
                    raise _too_many("fields", self.max_fields)
                self._items += _parse_query(bytes(data[start:field_end]).decode("latin-1"))
            start = field_end + 1


# RFC 2046 §5.1.1: a boundary is 1 to 70 of these characters, not ending with a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


# RFC 9110 §5.6.4 and §5.6.6: parameters are separated by ";", and a value may be a
# quoted-string, inside which ";" and escaped quotes ("\\"") are data. The three alternatives
# start with different characters, so the scan never backtracks: linear in the header's length.
_PARAMETER_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|;|[^;"]+')
# Browsers write a file name's backslashes as they are (the HTML standard escapes only '"', CR and
# LF), so only an escaped backslash or quote is unescaped: "C:\\x.txt" keeps its backslash.
_QUOTED_PAIR = re.compile(r'\\([\\"])')


def _header_parameters(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type/subtype; a=1; b="quoted; value"`` into the lower-cased type and parameters."""
    pieces: list[list[str]] = [[]]
    for token in _PARAMETER_TOKEN.findall(value):
        if token == ";":
            pieces.append([])
        else:
            pieces[-1].append(token)
    parameters: dict[str, str] = {}
    for piece in pieces[1:]:
        name, equals, parameter = "".join(piece).partition("=")
        parameter = parameter.strip()
        if len(parameter) >= 2 and parameter[0] == parameter[-1] == '"':
            parameter = parameter[1:-1]
            if "\\" in parameter:  # an escaped quote or backslash, rare: only then a regex
                parameter = _QUOTED_PAIR.sub(r"\1", parameter)
        if equals:
            parameters[name.strip().lower()] = parameter
    return "".join(pieces[0]).strip().lower(), parameters


# A part's headers, all together (browsers send two short ones): the size h11 allows for the
# whole head of an HTTP request.
_MAX_PART_HEADERS_SIZE = 16 * 1024


# The parser's own words for a malformed body (`Expected boundary character 45, got 103 at
# index 2`) are for the server's log, not the client, whom they would tell which parser runs and
# how. At INFO: the client's mistake, not the server's, as an access log would record it.
_form_logger = logging.getLogger("starlite.forms")


class _Part:
    """The part of a multipart body being parsed."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_size = 0
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.name = ""
        self.data = bytearray()  # a field's value (a file's data goes to `file`)
        self.file: UploadFile | None = None


class MultiPartParser:
    """Parses a ``multipart/form-data`` body as it streams in, on python-multipart; text is decoded
    in the Content-Type's ``charset`` (UTF-8 by default), or an earlier ``_charset_`` field's."""

    spool_max_size = 1024 * 1024
    """The size past which an uploaded file moves from memory to disk."""
    max_part_size = 1024 * 1024
    """The default largest size of a field without a filename."""

    def __init__(
        self,
        headers: Headers,
        stream: AsyncIterator[bytes],
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> None:
        self.headers = headers
        self.stream = stream
        self.max_files = max_files
        self.max_fields = max_fields
        self.max_part_size = max_part_size
        self.items: list[tuple[str, str | UploadFile]] = []  # the form, as it is parsed
        self._files = 0
        self._fields = 0
        self._encoding = "utf-8"
        self._part = _Part()
        self._file_writes: list[tuple[UploadFile, bytes | memoryview]] = []  # data to be written
        self._opened: list[UploadFile] = []
        self._ended = False

    async def parse(self) -> FormData:
        """The form's fields and files, in order. On an error, files already opened are closed."""
        multipart = _import_extra("multipart", "python-multipart", "python_multipart")
        _, parameters = _header_parameters(self.headers.get("content-type", ""))
        boundary = parameters.get("boundary")
        if boundary is None:
            raise MultiPartException("Missing boundary in multipart.")
        if not _BOUNDARY.fullmatch(boundary):
            raise MultiPartException("Invalid multipart data.")
        if "charset" in parameters:  # looked up once, not for each value
            self._encoding = self._codec_name(parameters["charset"])
        parser = multipart.MultipartParser(boundary.encode("latin-1"), self._callbacks())
        empty = True
        try:
            async for chunk in self.stream:
                empty = empty and not chunk
                try:
                    parser.write(chunk)
                except ValueError as exc:  # python-multipart's parse errors are ValueErrors
                    _form_logger.info("Invalid multipart data: %r", str(exc))
                    raise MultiPartException("Invalid multipart data.") from exc
                for file, data in self._file_writes:  # what the callbacks could not await
                    await file.write(data)
                self._file_writes.clear()
            # An empty body is an empty form, as in Starlette: a browser sends the closing
            # delimiter for a form without fields, but another client may send nothing at all.
            if not (self._ended or empty):
                raise MultiPartException("The multipart body ended before its final boundary.")
            for file in self._opened:  # ready to be read from the start
                await file.seek(0)
        except BaseException:
            for file in self._opened:  # each closes even if the parsing was cancelled
                await file.close()
            raise
        return FormData(self.items)

    def _callbacks(self) -> dict[str, Callable[..., None]]:
        # python-multipart calls back on_<event>, the methods below: public, as in Starlette, so
        # that a subclass may override one.
        events: tuple[str, ...] = ("part_begin", "header_field", "header_value", "header_end")
        events += ("headers_finished", "part_data", "part_end", "end")
        return {f"on_{event}": getattr(self, f"on_{event}") for event in events}

    def on_part_begin(self) -> None:
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.header_name += data[start:end]
        self._count_header_bytes(end - start)

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.header_value += data[start:end]
        self._count_header_bytes(end - start)

    def _count_header_bytes(self, size: int) -> None:
        self._part.headers_size += size
        if self._part.headers_size > _MAX_PART_HEADERS_SIZE:
            raise MultiPartException("A part's headers are too large.")

    def on_header_end(self) -> None:
        part = self._part
        name, value = bytes(part.header_name.strip().lower()), bytes(part.header_value.strip())
        part.headers.append((name, value))
        part.header_name, part.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        part = self._part
        headers = Headers(raw=part.headers)
        _, disposition = _header_parameters(headers.get("content-disposition", ""))
        if "name" not in disposition:
            raise MultiPartException(
                'The Content-Disposition header field "name" must be provided.'
            )
        part.name = self._decode(disposition["name"].encode("latin-1"))
        if "filename" not in disposition:
            self._fields += 1
            if self._fields > self.max_fields:
                raise _too_many("fields", self.max_fields)
            return
        self._files += 1
        if self._files > self.max_files:
            raise _too_many("files", self.max_files)
        import tempfile  # lazily: see the imports

        spooled = tempfile.SpooledTemporaryFile(max_size=self.spool_max_size)  # noqa: SIM115
        filename = self._decode(disposition["filename"].encode("latin-1"))
        # Closed by its form, or by parse() on an error.
        part.file = UploadFile(spooled, size=0, filename=filename, headers=headers)
        self._opened.append(part.file)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        # A view, not a slice: however large a chunk the server hands over, its data is copied
        # once, into the file or the field, and a field over its limit is not copied at all.
        piece = memoryview(data)[start:end]
        part = self._part
        if part.file is not None:
            self._file_writes.append((part.file, piece))
            return
        if len(part.data) + len(piece) > self.max_part_size:
            raise _too_large("Part", self.max_part_size)
        part.data += piece

    def on_part_end(self) -> None:
        part = self._part
        if part.file is not None:
            self.items.append((part.name, part.file))
            return
        value = self._decode(bytes(part.data))
        if part.name == "_charset_":
            self._encoding = self._codec_name(value)
        self.items.append((part.name, value))

    def on_end(self) -> None:
        self._ended = True

    def _decode(self, data: bytes) -> str:
        # Browsers send names and values in the form's charset; what fails to decode is kept as
        # latin-1 (every byte is a character there) rather than rejected.
        try:
            return data.decode(self._encoding)
        except UnicodeDecodeError:
            return data.decode("latin-1")

    @staticmethod
    def _codec_name(charset: str) -> str:
        """The codec for a charset, looked up once; UTF-8 if Python has none."""
        try:
            return codecs.lookup(charset).name
        except LookupError:
            return "utf-8"


# ==== Requests ====
# HTTPConnection holds what HTTP requests and websockets share (URL, headers, cookies, client,
# state); Request adds the method and the body, read from ASGI `http.request` messages.

# RFC 6265 §4.1.1 lets a cookie value be a quoted string; Python's SimpleCookie also writes
# backslash escapes (\" and octal \ooo) inside the quotes, which browsers send back verbatim.
_COOKIE_ESCAPE = re.compile(r"\\(?:([0-7]{3})|(.))")


def _unquote_cookie_value(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return _COOKIE_ESCAPE.sub(lambda m: chr(int(m[1], 8)) if m[1] else m[2], value[1:-1])


def cookie_parser(cookie_string: str) -> dict[str, str]:
    """Parse a ``Cookie`` header into a dict, leniently, as browsers do: nothing raises, and a
    pair without ``=`` is a value with an empty name, as Firefox and Chrome read it."""
    cookies: dict[str, str] = {}
    for pair in cookie_string.split(";"):
        name, sep, value = pair.partition("=")
        if not sep:
            name, value = "", name
        name, value = name.strip(), value.strip()
        if name or value:
            cookies[name] = _unquote_cookie_value(value)
    return cookies


def _scope_cookies(scope: Scope) -> dict[str, str]:
    """A request's cookies, from all its Cookie fields (HTTP/2 splits them: RFC 9113 §8.2.3)."""
    fields = [value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"]
    return cookie_parser("; ".join(fields))


class ClientDisconnect(Exception):
    """The client went away before the request body was read in full."""


if TYPE_CHECKING:
    # The default (PEP 696, Python 3.13) is for type checkers alone, which typing_extensions
    # gives it to on every Python; at run time a plain TypeVar does, and nothing is imported.
    from typing_extensions import TypeVar as _TypeVarWithDefault

    StateT = _TypeVarWithDefault("StateT", bound=Mapping[str, Any] | State, default=State)
else:
    StateT = TypeVar("StateT")


class HTTPConnection(Mapping[str, Any], Generic[StateT]):
    """What HTTP requests and websocket connections share; also a read-only view of the scope."""

    def __init__(self, scope: Scope, receive: Receive | None = None) -> None:
        if scope["type"] not in ("http", "websocket"):
            raise ValueError(f"Expected an 'http' or 'websocket' scope, got {scope['type']!r}")
        self.scope = scope

    def __getitem__(self, key: str) -> Any:
        return self.scope[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scope)

    def __len__(self) -> int:
        return len(self.scope)

    # Two connections are equal only when they are the same object, never by their scopes.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    def app(self) -> Any:
        """The application that received this connection."""
        return self.scope["app"]

    @_CachedProperty
    def url(self) -> URL:
        """The full URL the client asked for."""
        return URL(scope=self.scope)

    @_CachedProperty
    def base_url(self) -> URL:
        """The URL of the application's root, for building absolute links."""
        # Inside a Mount, root_path grows; app_root_path keeps the application's own.
        root_path = self.scope.get("app_root_path", self.scope.get("root_path", ""))
        path = root_path if root_path.endswith("/") else root_path + "/"
        return URL(scope={**self.scope, "path": path, "query_string": b"", "root_path": root_path})

    @_CachedProperty
    def headers(self) -> Headers:
        return Headers(scope=self.scope)

    @_CachedProperty
    def query_params(self) -> QueryParams:
        return QueryParams(self.scope["query_string"])

    @property
    def path_params(self) -> dict[str, Any]:
        """The parameters the router matched in the path."""
        return self.scope.get("path_params", {})  # type: ignore[no-any-return]

    @_CachedProperty
    def cookies(self) -> dict[str, str]:
        return _scope_cookies(self.scope)

    def _set_by(self, middleware: str, key: str) -> Any:
        if key not in self.scope:
            # An AssertionError, as Starlette raises (not an assert, which -O strips): code
            # written for Starlette catches exactly that.
            raise AssertionError(f"{middleware} must be installed to access request.{key}")
        return self.scope[key]

    @property
    def session(self) -> dict[str, Any]:
        """The session kept by SessionMiddleware. Reading it makes the response vary by Cookie."""
        session = self._set_by("SessionMiddleware", "session")
        if isinstance(session, Session):
            session.mark_accessed()
        return session  # type: ignore[no-any-return]

    @property
    def auth(self) -> Any:
        """The credentials AuthenticationMiddleware found (an AuthCredentials)."""
        return self._set_by("AuthenticationMiddleware", "auth")

    @property
    def user(self) -> Any:
        """The user AuthenticationMiddleware found (a BaseUser)."""
        return self._set_by("AuthenticationMiddleware", "user")

    @property
    def client(self) -> Address | None:
        """The client's host and port, when the server knows them."""
        client = self.scope.get("client")
        return None if client is None else Address(*client)

    def url_for(self, name: str, /, **path_params: Any) -> URL:
        """The absolute URL of the route called `name`, filled with `path_params`."""
        url_path_provider = self.scope.get("router") or self.scope.get("app")
        if url_path_provider is None:
            raise RuntimeError(
                "The `url_for` method can only be used inside a Starlette application "
                "or with a router."
            )
        url_path: URLPath = url_path_provider.url_path_for(name, **path_params)
        return url_path.make_absolute_url(base_url=self.base_url)

    @_CachedProperty
    def state(self) -> StateT:
        """Per-request state, first a copy of what the lifespan yielded: a State at run time, typed
        by ``Request[AppState]`` (a TypedDict, or a State subclass declaring its attributes)."""
        return cast("StateT", State(self.scope.setdefault("state", {})))


# The request headers a pushed response would have been negotiated with (RFC 9113 §8.4).
_PUSHED_HEADERS = frozenset(
    (b"accept", b"accept-encoding", b"accept-language", b"cache-control", b"user-agent")
)


class _FormContext:
    """What ``request.form()`` returns: await it, or enter it to close the upload files after."""

    def __init__(self, parsing: Coroutine[Any, Any, FormData]) -> None:
        self._parsing = parsing

    def __await__(self) -> Generator[Any, None, FormData]:
        return self._parsing.__await__()

    async def __aenter__(self) -> FormData:
        self._form = await self._parsing
        return self._form

    async def __aexit__(self, *exc_info: object) -> None:
        await self._form.close()


async def _empty_receive() -> NoReturn:
    raise RuntimeError("Receive channel has not been made available")


async def _empty_send(message: Message) -> NoReturn:
    raise RuntimeError("Send channel has not been made available")


# Where a BaseHTTPMiddleware leaves a form its dispatch parsed, for the Request of the app below.
_FORM_SCOPE_KEY = "starlite.form"


async def _receive_if_ready(receive: Receive) -> Message | None:
    """The message `receive` hands over without waiting, or None if it would wait. It runs in a
    task cancelled once it waits: a trio channel (hypercorn's receive under trio) checks for a
    cancelled scope before it looks, so would never hand over a message, a disconnect included."""
    taken: list[Message] = []
    failed: list[Exception] = []

    async def take(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        # No checkpoint between started() and receive(): the caller resumes only once this task
        # has taken a ready message or waits for one.
        try:
            taken.append(await receive())
        except Exception as exc:  # raised below as it is, not in the task group's ExceptionGroup
            failed.append(exc)

    async with anyio.create_task_group() as group:
        await group.start(take)
        group.cancel_scope.cancel()
    if failed:
        raise failed[0]
    return taken[0] if taken else None


# JSON from clients is read as I-JSON (RFC 7493): the part of RFC 8259 that every parser reads
# the same way, and that JSONResponse can send back. Python's json reads more: NaN and Infinity,
# numbers past a double's range (1e400 is inf), lone UTF-16 surrogates ("\ud800", which UTF-8
# cannot encode), repeated names, and it recurses once per level of nesting. Noncharacters
# (U+FFFE), which I-JSON forbids too, are read: Unicode allows them in interchange (Corrigendum
# #9), they encode and echo like any character, and looking for them would cost every body a pass.

# Deeper nesting is refused before parsing. PHP's json_decode stops at 512 levels by default
# (serde_json at 128, .NET at 64); 512 leaves room under Python's recursion limit (1000) for
# JSONResponse to encode the value back.
_MAX_JSON_DEPTH = 512
# Every byte but brackets and quotes, for bytes.translate to delete.
_NOT_BRACKETS_OR_QUOTES = bytes(sorted(set(range(256)) - set(b'[]{}"')))
# Brackets as signed bytes, to be summed in C: +1 for an opening one, -1 (0xff) for a closing one.
_JSON_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# A \u escape of a UTF-16 surrogate (RFC 8259 §7): a high one then a low one is a pair, one
# character; any other is half a character, which I-JSON forbids (RFC 7493 §2.1). Every other
# escape is matched too, so that an escaped backslash before "u" ("\\ud800") is not taken for one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_ESCAPE = re.compile(
    r"""
    \\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}  # a surrogate pair
  | (?P<lone>\\u[dD][89a-fA-F][0-9a-fA-F]{2})                    # half of one
  | \\.                                                          # any other escape
    """,
    re.VERBOSE,
)


def _json_too_deep(data: bytes) -> bool:
    """Whether JSON in UTF-8 nests arrays and objects deeper than _MAX_JSON_DEPTH, in linear time
    and in C. (UTF-8 has no ASCII byte inside a multi-byte character, so bytes are enough.)"""
    if b"\\" in data:  # drop escaped backslashes, then escaped quotes: left to right, as JSON
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Now a string is what lies between two quotes. Most hold no bracket, and go first in C.
    quotes_and_brackets = data.translate(None, _NOT_BRACKETS_OR_QUOTES).replace(b'""', b"")
    outside_strings = b"".join(quotes_and_brackets.split(b'"')[::2])
    steps = memoryview(outside_strings.translate(_JSON_DEPTH_STEPS)).cast("b")
    return max(itertools.accumulate(steps), default=0) > _MAX_JSON_DEPTH


def _lone_surrogate(text: str) -> int | None:
    """Where `text` (valid JSON) escapes half a surrogate pair, if it does."""
    if _SURROGATE_ESCAPE.search(text) is None:  # in C: no escape of a surrogate at all
        return None
    return next((match.start() for match in _JSON_ESCAPE.finditer(text) if match["lone"]), None)


class _RefusedToken(ValueError):
    """A number or constant that Python's json reads but I-JSON does not allow."""

    def __init__(self, message: str, token: str) -> None:
        super().__init__(message)
        self.token = token


# A JSON string, or a run of what makes numbers and constants: to find a refused token.
_JSON_STRING_OR_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[-+.\w]+')


def _token_position(text: str, token: str) -> int:
    """Where `token` first stands outside a string in `text`, which is valid JSON up to there."""
    matches = _JSON_STRING_OR_TOKEN.finditer(text)
    return next((match.start() for match in matches if match[0] == token), 0)


def _finite_float(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise _RefusedToken(f"Number out of range: {token[:40]}", token)
    return value


def _refuse_constant(token: str) -> NoReturn:
    raise _RefusedToken(f"{token} is not JSON", token)


def _object_without_repeated_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7493 §2.3: names MUST be unique. Parsers disagree on which of two values wins, so a
    # proxy that checked the first could let the app act on the second: refuse, rather than pick.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("Repeated name in an object")
    return members


# Built once: json.loads with any option builds a new decoder per call.
_I_JSON_DECODER = json.JSONDecoder(
    parse_float=_finite_float,
    parse_constant=_refuse_constant,
    object_pairs_hook=_object_without_repeated_names,
)


def _parse_json(data: str | bytes, error: type[_InvalidJSON]) -> Any:
    """`data` (UTF-8 if bytes) parsed as I-JSON, or `error` raised, in time and memory linear in
    its size. A leading byte order mark is ignored, as RFC 8259 §8.1 allows."""
    try:
        text = data if isinstance(data, str) else data.decode("utf-8")
    except UnicodeDecodeError as exc:  # I-JSON is UTF-8 only (RFC 7493 §2.1)
        valid = exc.object[: exc.start].decode("utf-8")
        raise error("Invalid UTF-8", valid, len(valid)) from None
    text = text.removeprefix("\ufeff")
    # The checks that need a pass of their own run only when a quick look in C says they may find
    # something: too few brackets cannot nest that deep, and without a backslash there is no escape.
    if text.count("[") + text.count("{") > _MAX_JSON_DEPTH and _json_too_deep(
        text.encode("utf-8", "surrogatepass")
    ):
        raise error(f"Nested deeper than {_MAX_JSON_DEPTH} levels", text, 0)
    try:
        value = _I_JSON_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise error(exc.msg, text, exc.pos) from None
    except _RefusedToken as exc:
        raise error(str(exc), text, _token_position(text, exc.token)) from None
    except ValueError as exc:  # a repeated name, or an int over Python's 4300 digits
        raise error(str(exc), text, 0) from None
    if "\\" in text and (position := _lone_surrogate(text)) is not None:
        raise error("Lone UTF-16 surrogate", text, position)
    return value


class Request(HTTPConnection[StateT]):
    """An HTTP request: the connection plus its method and body."""

    # What reading the body changes starts out as these class defaults, and becomes an instance's
    # own only when it changes: most requests read no body, and setting all five in __init__
    # would slow every request (measured with benchmarks/compare.py). `_body` has no default: as
    # in Starlette, it exists once the body is read, and a subclass may set it (decompressed, say)
    # for body(), json(), form() and stream() to read, as FastAPI's documented custom request
    # class does.
    _body: bytes
    _stream_consumed = False  # the last body message has been received
    _is_disconnected = False
    _peeked_messages: list[Message] | None = None  # taken by is_disconnected(), kept for stream()
    _form: FormData | None = None

    def __init__(self, scope: Scope, receive: Receive = _empty_receive, send: Send = _empty_send):
        if scope["type"] != "http":
            raise ValueError(f"Request needs an 'http' scope, got {scope['type']!r}")
        self.scope = scope  # all that HTTPConnection.__init__ does, after a broader check
        self._receive = receive
        self._send = send

    @property
    def method(self) -> str:
        return self.scope["method"]  # type: ignore[no-any-return]

    @property
    def receive(self) -> Receive:
        return self._receive

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives (or as cached), chunk by chunk, then an empty chunk; raises
        `ClientDisconnect` if the client goes away first, `RuntimeError` if the body was streamed
        already. Several streams of one request share the body: each chunk goes to one of them."""
        if hasattr(self, "_body"):
            if self._body:
                yield self._body
            yield b""
            return
        if self._stream_consumed:
            raise RuntimeError("Stream consumed")
        while not self._stream_consumed:
            # A message is_disconnected() took early comes first. (Inline: a coroutine layer
            # here would cost every message of every body.)
            peeked = self._peeked_messages
            message = peeked.pop(0) if peeked else await self._receive()
            if message["type"] == "http.request":
                self._stream_consumed = not message.get("more_body", False)
                if chunk := message.get("body", b""):
                    yield chunk
            elif message["type"] == "http.disconnect":
                self._is_disconnected = True
                raise ClientDisconnect()
        yield b""

    async def body(self) -> bytes:
        """The whole body, read once and cached."""
        if not hasattr(self, "_body"):
            self._body = b"".join([chunk async for chunk in self.stream()])
        return self._body

    async def json(self) -> Any:
        """The body parsed as I-JSON (RFC 7493); raises `json.JSONDecodeError` if it is not.
        Unless the app catches it (as a ValueError, say), the client is answered 400."""
        if not hasattr(self, "_json"):
            self._json = _parse_json(await self.body(), _InvalidJSONBody)
        return self._json

    def form(
        self,
        *,
        max_files: int | float = 1000,
        max_fields: int | float = 1000,
        max_part_size: int = 1024 * 1024,
    ) -> _FormContext:
        """The body parsed as a form (multipart needs python-multipart), once and cached: await
        it, or ``async with`` it to close its files on leaving. Past a limit (`max_part_size`: a
        field not a file) or malformed: HTTPException(400) in an app, else MultiPartException."""
        return _FormContext(self._parse_form(max_files, max_fields, max_part_size))

    async def _parse_form(
        self, max_files: int | float, max_fields: int | float, max_part_size: int
    ) -> FormData:
        if self._form is None:
            # A BaseHTTPMiddleware whose dispatch parsed the form hands it on with the scope.
            self._form = self.scope.get(_FORM_SCOPE_KEY)
        if self._form is None:
            self._form = await self._read_form(max_files, max_fields, max_part_size)
        return self._form

    async def _read_form(
        self, max_files: int | float, max_fields: int | float, max_part_size: int
    ) -> FormData:
        # The media type alone: the parser reads the parameters (the boundary) itself.
        content_type = self.headers.get("content-type", "").partition(";")[0].strip().lower()
        stream = self.stream()
        try:
            parser: FormParser | MultiPartParser
            if content_type == "multipart/form-data":
                parser = MultiPartParser(
                    self.headers,
                    stream,
                    max_files=max_files,
                    max_fields=max_fields,
                    max_part_size=max_part_size,
                )
            elif content_type == "application/x-www-form-urlencoded":
                parser = FormParser(
                    self.headers, stream, max_fields=max_fields, max_part_size=max_part_size
                )
            else:
                return FormData()
            try:
                return await parser.parse()
            except MultiPartException as exc:
                if "app" in self.scope:
                    raise HTTPException(status_code=400, detail=exc.message) from exc
                raise
        finally:  # as contextlib.aclosing does, without its two coroutine layers per form
            await stream.aclose()

    async def close(self) -> None:
        """Close the upload files of the parsed form, if any; their data is deleted."""
        if self._form is not None:  # each file closes even if the request is cancelled
            await self._form.close()

    async def is_disconnected(self) -> bool:
        """Whether the client has gone away, checked without waiting. Each call asks the server
        again; a body message it takes instead is kept for ``stream()``, so nothing is lost."""
        if self._is_disconnected:
            return True
        message = await _receive_if_ready(self._receive)
        if message is None:
            return False
        if message["type"] == "http.disconnect":
            self._is_disconnected = True
        else:
            self._peeked_messages = [*(self._peeked_messages or ()), message]
        return self._is_disconnected

    # What a BaseHTTPMiddleware needs to hand the body on to the app below it (_DownstreamReceive
    # and _DownstreamCall): this Request keeps the body's state, they ask it.

    def _body_if_ended(self) -> bytes | None:
        """The body once read to its end: cached, or b"" if streamed (its chunks are gone)."""
        if hasattr(self, "_body"):
            return self._body
        return b"" if self._stream_consumed else None

    async def _receive_noting(self) -> Message:
        """The client's next message as ``stream()`` takes it; once gone, it says so each time."""
        peeked = self._peeked_messages
        if self._is_disconnected and not peeked:
            return {"type": "http.disconnect"}
        message = peeked.pop(0) if peeked else await self._receive()
        if message["type"] == "http.request":
            self._stream_consumed = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self._is_disconnected = True
        return message

    def _hand_on_form(self) -> None:
        """Leave a form parsed from a streamed body where the scope's next Request finds it."""
        if self._form is not None and not hasattr(self, "_body"):
            self.scope[_FORM_SCOPE_KEY] = self._form

    async def send_push_promise(self, path: str) -> None:
        """Ask an HTTP/2 server to push `path`, if it offers the server push extension."""
        if "http.response.push" not in self.scope.get("extensions", {}):
            return
        headers = [(name, value) for name, value in self.headers.raw if name in _PUSHED_HEADERS]
        await self._send({"type": "http.response.push", "path": path, "headers": headers})

    async def send_early_hints(self, link: str, /, *additional_links: str) -> None:
        """Send a 103 Early Hints response with ``Link`` values, if the server offers it."""
        if "http.response.early_hint" not in self.scope.get("extensions", {}):
            return
        links = [value.encode("latin-1") for value in (link, *additional_links)]
        await self._send({"type": "http.response.early_hint", "links": links})


# ==== Responses ====
# A Response is an ASGI app that sends one response. Subclasses render HTML, text and JSON, stream
# from iterators, and send files with byte ranges (RFC 9110 §14). Sending stops when the client
# disconnects, and background tasks run after the last byte.

# Status codes whose responses never carry content (RFC 9110 §6.4.1).
_BODYLESS_STATUSES = frozenset((*range(100, 200), 204, 304))

# mimetypes reads the system's type tables on first use; read them now, at import, rather than
# from the event loop the first time a FileResponse guesses a type.
mimetypes.init()


@functools.lru_cache(maxsize=64)  # a handful of media types, built once rather than per response
def _content_type(media_type: str, charset: str) -> bytes:
    """The Content-Type value for a media type: text types get the charset."""
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        media_type = f"{media_type}; charset={charset}"
    return _encode_header("content-type", media_type)[1]


def _websocket_denial_send(send: Send) -> Send:
    """The channel a response to a websocket is sent on: the same messages prefixed with
    ``websocket.``, which deny the handshake (ASGI ``websocket.http.response``)."""

    async def send_prefixed(message: Message) -> None:
        await send({**message, "type": "websocket." + message["type"]})

    return send_prefixed


# Cookie attribute values end at ";" and must not hold control characters (RFC 6265 §4.1.1).
_UNSAFE_IN_COOKIE_ATTRIBUTE = re.compile(r"[;\x00-\x1f\x7f]")
_SAMESITE_VALUES = frozenset(("strict", "lax", "none"))


def _cookie_attribute(name: str, value: str) -> str:
    if _UNSAFE_IN_COOKIE_ATTRIBUTE.search(value):
        raise ValueError(f"Cookie {name} contains ';' or a control character: {value!r}")
    return value


def _samesite(value: str) -> str:
    if value.lower() not in _SAMESITE_VALUES:
        raise ValueError(f"samesite must be 'strict', 'lax' or 'none', not {value!r}")
    return value


def _morsel(key: str, value: str) -> http.cookies.Morsel[str]:
    """The cookie `key` with `value` quoted as RFC 6265 needs; ValueError for a name not a token."""
    cookie: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    try:
        cookie[key] = value
    except http.cookies.CookieError:
        raise ValueError(f"Invalid cookie name: {key!r}") from None
    return cookie[key]


def _cookie_name(key: str) -> str:
    """`key`, if `set_cookie` accepts it as a cookie name (an RFC 6265 token)."""
    _morsel(key, "")
    return key


class Response:
    """An HTTP response with its whole body in memory; also an ASGI app that sends it. For a HEAD
    request or a 1xx, 204 or 304 status, nothing follows the headers, as RFC 9110 requires."""

    media_type: str | None = None
    charset = "utf-8"

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.body = self.render(content)
        self.init_headers(headers)

    def render(self, content: Any) -> bytes | memoryview:
        """The body for `content`: bytes as they are, text encoded with the charset."""
        if isinstance(content, str):  # the usual case first
            return content.encode(self.charset)
        if isinstance(content, bytes):
            return content
        if content is None:
            return b""
        if isinstance(content, memoryview):  # as bytes, so that len() counts bytes, not items
            return content.cast("B") if content.c_contiguous else content.tobytes()
        raise TypeError(
            f"{self.__class__.__name__} content must be str, bytes or memoryview, "
            f"not {type(content).__name__}"
        )

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Build `raw_headers` from `headers`, adding Content-Length and Content-Type."""
        if headers:
            raw_headers = [_encode_header(name, value) for name, value in headers.items()]
            names: Collection[bytes] = {name for name, _ in raw_headers}
        else:
            raw_headers, names = [], ()
        # Streaming and file responses have no body attribute: their length is not known here.
        body = getattr(self, "body", None)
        if (
            body is not None
            and b"content-length" not in names
            and self.status_code not in _BODYLESS_STATUSES
        ):
            raw_headers.append((b"content-length", b"%d" % len(body)))
        if self.media_type is not None and b"content-type" not in names:
            raw_headers.append((b"content-type", _content_type(self.media_type, self.charset)))
        self.raw_headers = raw_headers

    @_CachedProperty
    def headers(self) -> MutableHeaders:
        """The response headers, editable; changes go straight to `raw_headers`."""
        return MutableHeaders(raw=self.raw_headers)

    def _sends_body(self, scope: Scope) -> bool:
        return scope.get("method") != "HEAD" and self.status_code not in _BODYLESS_STATUSES

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: datetime | str | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a ``Set-Cookie`` header, its value quoted as ``http.cookies`` does. An attribute
        that could end the header early or add another (``;``, CR, LF) raises ``ValueError``."""
        morsel = _morsel(key, value)
        if max_age is not None:
            morsel["max-age"] = int(max_age)
        if isinstance(expires, datetime):
            if expires.tzinfo is None:
                raise ValueError("Cookie expires must be a timezone-aware datetime")
            import email.utils  # lazily: see the imports

            morsel["expires"] = email.utils.format_datetime(expires.astimezone(UTC), usegmt=True)
        elif isinstance(expires, str):
            morsel["expires"] = _cookie_attribute("expires", expires)
        elif expires is not None:
            morsel["expires"] = expires  # seconds from now; http.cookies formats the date
        for name, attribute in (("path", path), ("domain", domain)):
            if attribute is not None:
                morsel[name] = _cookie_attribute(name, attribute)
        morsel["secure"] = secure
        morsel["httponly"] = httponly
        if samesite is not None:
            morsel["samesite"] = _samesite(samesite)
        header = morsel.OutputString()
        if partitioned:  # CHIPS; http.cookies knows this attribute only from Python 3.14
            header += "; Partitioned"
        self.raw_headers.append(_encode_header("set-cookie", header))

    def delete_cookie(
        self,
        key: str,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Tell the client to drop a cookie (same path and domain as when it was set)."""
        # An empty value, expired at once: max_age and expires of 0.
        self.set_cookie(key, "", 0, 0, path, domain, secure, httponly, samesite, partitioned)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            send = _websocket_denial_send(send)
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        # _sends_body() written out: on the hottest path, the call costs more than the test.
        sends_body = scope.get("method") != "HEAD" and self.status_code not in _BODYLESS_STATUSES
        body = self.body if sends_body else b""
        await send({"type": "http.response.body", "body": body})
        if self.background is not None:
            await self.background()


class HTMLResponse(Response):
    """A ``text/html`` response."""

    media_type = "text/html"


class PlainTextResponse(Response):
    """A ``text/plain`` response."""

    media_type = "text/plain"


# Built once: json.dumps with any option builds a new encoder per call.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# The C encoder that JSONEncoder.encode builds and calls (CPython's _json; undocumented, hence the
# fallback), built once and called directly: encode() wraps it in Python and builds it anew for
# each call, a good part of encoding a small object. It is built without json's cycle check, a dict
# of the containers being encoded that calls and threads would share: a cycle recurses until
# RecursionError instead, and is then encoded again with the check, which says what is wrong.
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_encode_compact: Callable[[Any, int], Sequence[str]] | None = None
if _make_c_encoder is not None:
    _encode_compact = _make_c_encoder(
        None,  # no dict of the containers being encoded: no cycle check
        _COMPACT_JSON.default,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # indent
        ":",
        ",",
        False,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )


def _compact_json(content: Any) -> str:
    """`content` as `_COMPACT_JSON.encode` writes it."""
    if _encode_compact is None:  # a Python without the C accelerator
        return _COMPACT_JSON.encode(content)
    try:
        return "".join(_encode_compact(content, 0))
    except RecursionError:  # a cycle, or nesting too deep: json's own check tells which
        return _COMPACT_JSON.encode(content)


class JSONResponse(Response):
    """A JSON response: compact, UTF-8, refusing NaN and infinity (``ValueError``) as JSON does."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type, background)

    def render(self, content: Any) -> bytes:
        """`content` as compact UTF-8 JSON."""
        return _compact_json(content).encode("utf-8")


# Characters a Location URL keeps as they are; everything else is percent-encoded, CR and LF too.
_URL_SAFE_CHARACTERS = ":/%#?=@[]!$&'()*+,;"


class RedirectResponse(Response):
    """A redirect to `url` (``307 Temporary Redirect`` unless told otherwise)."""

    def __init__(
        self,
        url: str | URL,
        status_code: int = 307,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(b"", status_code, headers, background=background)
        self.headers["location"] = quote(str(url), safe=_URL_SAFE_CHARACTERS)


@functools.lru_cache(maxsize=8)
def _parse_spec_version(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


class _TaskGroup:
    """A task group that re-raises a lone failure as itself, not in an ExceptionGroup, so that
    exception handlers see the exception the app raised."""

    # A class rather than an asynccontextmanager, whose generator costs more (measured with
    # benchmarks/compare.py): every BaseHTTPMiddleware call and many streamed responses enter one.

    async def __aenter__(self) -> anyio.abc.TaskGroup:
        self._group = anyio.create_task_group()
        return await self._group.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        try:
            return await self._group.__aexit__(*exc_info)
        except BaseExceptionGroup as group:
            if len(group.exceptions) != 1:
                raise
            lone = group.exceptions[0]
        raise lone


def _listens_for_disconnect(scope: Scope) -> bool:
    """Whether a streaming response must listen for ``http.disconnect``: over HTTP before ASGI
    2.4 (from 2.4, ``send`` raises OSError; a websocket's denial has no disconnect to watch)."""
    if scope["type"] != "http":
        return False
    return _parse_spec_version(scope.get("asgi", {}).get("spec_version", "2.0")) < (2, 4)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _until_disconnect(
    send_body: Callable[[], Awaitable[None]], wait_for_disconnect: Callable[[], Awaitable[None]]
) -> None:
    """Run `send_body`, cancelling it as soon as `wait_for_disconnect` returns. The body starts
    first, from this task: should the listener's first receive fail (a declared body over the
    limit, say), the failure finds the response answered, not half-started."""
    async with _TaskGroup() as task_group:

        async def listen_then_stop_sending() -> None:
            await wait_for_disconnect()
            task_group.cancel_scope.cancel()

        task_group.start_soon(listen_then_stop_sending)
        await send_body()
        task_group.cancel_scope.cancel()


async def _send_or_disconnect(send: Send, message: Message) -> None:
    try:
        await send(message)
    except OSError:  # only the server's send, so an OSError of the app's own is not mistaken
        raise ClientDisconnect() from None


class _Closing(Generic[T]):
    """Iterate `iterable` and close it at the end, even when cancelled, so its clean-up runs."""

    # A class, as _TaskGroup is: every streamed response enters one.

    def __init__(self, iterable: AsyncIterable[T]) -> None:
        self.iterator = aiter(iterable)

    async def __aenter__(self) -> AsyncIterator[T]:
        return self.iterator

    async def __aexit__(self, *exc_info: object) -> None:
        aclose = getattr(self.iterator, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()


Content: TypeAlias = str | bytes | memoryview
ContentStream: TypeAlias = AsyncIterable[Content] | Iterable[Content]


class StreamingResponse(Response):
    """A response whose body comes from an iterator (a sync one runs in the threadpool). A client's
    disconnect closes it at once; with an ASGI 2.4 server the response raises `ClientDisconnect`."""

    body_iterator: AsyncIterable[Content]

    def __init__(
        self,
        content: ContentStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.body_iterator = (
            content if isinstance(content, AsyncIterable) else iterate_in_threadpool(content)
        )
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            send = _websocket_denial_send(send)
        if not self._sends_body(scope):
            async with _Closing(self.body_iterator):
                await self._send_start(send)
                await send({"type": "http.response.body", "body": b""})
        elif _listens_for_disconnect(scope):
            await _until_disconnect(
                functools.partial(self.stream_response, send),
                functools.partial(self.listen_for_disconnect, receive),
            )
        elif scope["type"] == "http":  # ASGI 2.4: `send` raises once the client has gone
            await self.stream_response(functools.partial(_send_or_disconnect, send))
        else:
            await self.stream_response(send)
        if self.background is not None:
            await self.background()

    async def listen_for_disconnect(self, receive: Receive) -> None:
        """Return once the client has disconnected (with servers older than ASGI 2.4)."""
        await _wait_for_disconnect(receive)

    async def stream_response(self, send: Send) -> None:
        """Send the start, each chunk of `body_iterator` and the end; the iterator is closed."""
        async with _Closing(self.body_iterator) as chunks:
            await self._send_start(send)
            async for chunk in chunks:
                body = chunk.encode(self.charset) if isinstance(chunk, str) else chunk
                await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _send_start(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )


# The line ends the event-stream format knows (WHATWG HTML §9.2.4): a field value split on these
# can never carry a second field or end its event early.
_EVENT_STREAM_LINE_END = re.compile(r"\r\n|\r|\n")


def _single_line(field: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"ServerSentEvent {field} must be one line: got {value!r}")
    return value


class ServerSentEvent:
    """One event of an event stream (`retry`: the reconnection delay in ms). `data` and `comment`
    may span lines; an `event` or `id` with a line break, or an `id` with NUL, is a ValueError."""

    def __init__(
        self,
        data: Any = None,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        if id is not None and "\0" in _single_line("id", id):
            raise ValueError(f"ServerSentEvent id must not contain NUL: got {id!r}")
        if retry is not None and (type(retry) is not int or retry < 0):  # not a bool, either
            raise ValueError(f"ServerSentEvent retry must be a whole number of ms: got {retry!r}")
        self.data = None if data is None else str(data)
        self.event = None if event is None else _single_line("event", event)
        self.id = id
        self.retry = retry
        self.comment = comment

    def encode(self) -> bytes:
        """The event as it goes on the wire, ending with the blank line that dispatches it."""
        lines = []
        if self.comment is not None:
            lines += [f": {line}" for line in _EVENT_STREAM_LINE_END.split(self.comment)]
        if self.event is not None:
            lines.append(f"event: {self.event}")
        if self.data is not None:
            lines += [f"data: {line}" for line in _EVENT_STREAM_LINE_END.split(self.data)]
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        return ("\n".join(lines) + "\n\n").encode()

    def __repr__(self) -> str:
        fields = {name: getattr(self, name) for name in ("data", "event", "id", "retry", "comment")}
        text = ", ".join(f"{name}={value!r}" for name, value in fields.items() if value is not None)
        return f"{self.__class__.__name__}({text})"


EventItem: TypeAlias = ServerSentEvent | Mapping[str, Any] | str
_PING = ServerSentEvent(comment="ping").encode()


def _encode_event(item: EventItem) -> bytes:
    if isinstance(item, ServerSentEvent):
        return item.encode()
    if isinstance(item, str):
        return ServerSentEvent(item).encode()
    if isinstance(item, Mapping):
        return ServerSentEvent(**item).encode()
    raise TypeError(
        f"EventSourceResponse items must be ServerSentEvent, dict or str, not {type(item).__name__}"
    )


class EventSourceResponse(StreamingResponse):
    """Server-sent events from an iterator of `ServerSentEvent`\\s, dicts of their fields or data
    strings; a comment after `ping` silent seconds (None: never) keeps proxies from closing the
    connection. Not in Starlette, whose users add sse-starlette."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[EventItem] | Iterable[EventItem],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        ping: float | None = 15,
    ) -> None:
        if ping is not None and not ping > 0:
            raise ValueError(f"ping must be a number of seconds above 0, or None: got {ping!r}")
        events = content if isinstance(content, AsyncIterable) else iterate_in_threadpool(content)
        super().__init__(_EncodedEvents(events), status_code, headers, media_type, background)
        self.ping = ping
        self.headers.setdefault("cache-control", "no-cache")
        # nginx buffers responses by default, which would hold events back: this turns it off.
        self.headers.setdefault("x-accel-buffering", "no")

    async def stream_response(self, send: Send) -> None:
        """Send the start, each event as it comes, a ping after `ping` silent seconds, the end."""
        sender = _PingingSender(send, math.inf if self.ping is None else self.ping)
        await sender.send_all(functools.partial(self._send_start, send), self.body_iterator)
        await send({"type": "http.response.body", "body": b""})


class _PingingSender:
    """Sends events as they come, and a ping whenever nothing has been sent for `interval` s. A task
    of its own iterates, sends and closes the events (an event wakes a short chain of coroutines,
    not the app's); the calling task sends the start, then sleeps until a ping may be due. Sends
    never overlap; none is cancelled. An event costs a clock reading, not a timeout (one per event
    cost twice the CPU: benchmarks/sse_streams.py)."""

    def __init__(self, send: Send, interval: float) -> None:
        self.send = send
        self.interval = interval
        self.last_sent = anyio.current_time()  # when the start, an event or a ping went out
        self.sending_event = False
        self.calling_task_sent: anyio.Event | None = None  # while it sends the start or a ping

    async def send_all(
        self, send_start: Callable[[], Awaitable[None]], events: AsyncIterable[Content]
    ) -> None:
        async with _TaskGroup() as task_group:
            task_group.start_soon(self._send_events, events, task_group.cancel_scope)
            await self._send_between_events(send_start)
            await self._ping_when_silent()

    async def _send_events(self, events: AsyncIterable[Content], pings: anyio.CancelScope) -> None:
        """Send each event, close the events, then stop the pings by cancelling `pings`."""
        async with _Closing(events) as chunks:
            async for chunk in chunks:
                await self._calling_task_done()
                self.sending_event = True
                await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
                self.sending_event = False
                self.last_sent = anyio.current_time()
                # A generator that never waits, with a `send` that does not either, would keep
                # the loop from other streams and from the task hearing a disconnect.
                await anyio.lowlevel.checkpoint()
        await self._calling_task_done()
        pings.cancel()

    async def _calling_task_done(self) -> None:
        """Return once the calling task is not sending the start or a ping."""
        if self.calling_task_sent is not None:
            await self.calling_task_sent.wait()

    async def _send_between_events(self, send_message: Callable[[], Awaitable[None]]) -> None:
        self.calling_task_sent = anyio.Event()
        await send_message()
        self.calling_task_sent.set()
        self.calling_task_sent = None
        self.last_sent = anyio.current_time()

    async def _ping_when_silent(self) -> None:
        delay = self.interval
        while True:
            await anyio.sleep(delay)
            if self.sending_event:
                # The silence starts when that send ends, later than now: a whole interval on.
                delay = self.interval
                continue
            delay = self.last_sent + self.interval - anyio.current_time()
            if delay > 0:  # an event went out since this sleep began
                continue
            await self._send_between_events(self._send_ping)
            delay = self.interval

    async def _send_ping(self) -> None:
        await self.send({"type": "http.response.body", "body": _PING, "more_body": True})


class _EncodedEvents:
    """The items of an event iterator, encoded; closing this closes the iterator, even one that
    never started (a HEAD request)."""

    def __init__(self, events: AsyncIterable[EventItem]) -> None:
        self._events = aiter(events)

    def __aiter__(self) -> _EncodedEvents:
        return self

    async def __anext__(self) -> bytes:
        return _encode_event(await anext(self._events))

    async def aclose(self) -> None:
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()


class _RangeError(Exception):
    """A Range header that must be answered with an error status instead of content."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code


# RFC 9110 §14.1.1:
#   range-spec   = int-range / suffix-range
#   int-range    = first-pos "-" [ last-pos ]
#   suffix-range = "-" suffix-length
_RANGE_SPEC = re.compile(r"(?P<first>[0-9]*)[ \t]*-[ \t]*(?P<last>[0-9]*)")
# A position of more digits than this is past the end of any file: no need to convert it.
_MAX_POSITION_DIGITS = 18
_PAST_ANY_FILE = 10**_MAX_POSITION_DIGITS


def _byte_position(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_POSITION_DIGITS else _PAST_ANY_FILE


def _byte_range(first: str, last: str, size: int) -> tuple[int, int] | None:
    """One range-spec as a half-open ``(start, end)`` clamped to the file; None if it misses it."""
    if not first:  # suffix-range: the final `last` bytes
        length = _byte_position(last)
        return (max(size - length, 0), size) if length and size else None
    start = _byte_position(first)
    if last and _byte_position(last) < start:
        raise _RangeError(400, "Range header: start must be less than end")
    end = min(_byte_position(last) + 1, size) if last else size
    return (start, end) if start < size else None


def _merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort ranges and merge those that overlap or touch (RFC 9110 §14.1.1 allows coalescing)."""
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def _parse_range_header(header: str, size: int, max_ranges: int) -> list[tuple[int, int]] | None:
    """The byte ranges a Range header asks of a `size`-byte file, merged and sorted, in linear
    time; None (send it all) for a unit other than bytes (RFC 9110 §14.2) or over `max_ranges`
    ranges. `_RangeError` 400 for no range-spec or an inverted one, 416 if none is in the file."""
    unit, equals, range_set = header.partition("=")
    if not equals:
        raise _RangeError(400, "Malformed range header.")
    if unit.strip().lower() != "bytes" or range_set.count(",") >= max_ranges:
        return None
    ranges: list[tuple[int, int]] = []
    requested = False
    for spec in range_set.split(","):
        match = _RANGE_SPEC.fullmatch(spec.strip(" \t"))
        # An element that is not a range-spec (empty, as RFC 9110 §5.6.1 allows, or garbage) is
        # skipped, as Starlette does: the client still gets the ranges it spelt correctly.
        if match is None or not (match["first"] or match["last"]):
            continue
        requested = True
        byte_range = _byte_range(match["first"], match["last"], size)
        if byte_range is not None:
            ranges.append(byte_range)
    if not requested:
        raise _RangeError(400, "Range header: range must be requested")
    if not ranges:
        raise _RangeError(416, "Range not satisfiable.")
    return _merge_ranges(ranges)


def _content_disposition(disposition_type: str, filename: str) -> str:
    """A Content-Disposition value; non-ASCII names use RFC 5987's ``filename*``."""
    quoted = quote(filename)
    if quoted == filename:
        return f'{disposition_type}; filename="{filename}"'
    return f"{disposition_type}; filename*=utf-8''{quoted}"


# One part of a file to send: bytes to send first, the file's bytes [start, end), bytes after.
_FilePart: TypeAlias = tuple[bytes, int, int, bytes]


class FileResponse(Response):
    """A file from disk, with ETag, Last-Modified and byte ranges (RFC 9110 §14; several make a
    ``multipart/byteranges`` body); a server offering ASGI's pathsend sends the file itself."""

    chunk_size = 64 * 1024
    # Ranges per request (Apache's default is 200): enough for any real client, and bounded.
    max_ranges = 100

    def __init__(
        self,
        path: _StrPath,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        filename: str | None = None,
        stat_result: os.stat_result | None = None,
        content_disposition_type: str = "attachment",
    ) -> None:
        self.path = path
        self.status_code = status_code
        self.filename = filename
        if media_type is None:
            media_type = mimetypes.guess_type(filename or path)[0] or "application/octet-stream"
        self.media_type = media_type
        self.background = background
        self.init_headers(headers)
        self.headers.setdefault("accept-ranges", "bytes")
        if filename is not None:
            disposition = _content_disposition(content_disposition_type, filename)
            self.headers.setdefault("content-disposition", disposition)
        self.stat_result = stat_result
        if stat_result is not None:
            self.set_stat_headers(stat_result)

    def set_stat_headers(self, stat_result: os.stat_result) -> None:
        """Set Content-Length, Last-Modified and ETag from the file's status, unless already set."""
        self.headers.setdefault("content-length", str(stat_result.st_size))
        import email.utils  # lazily: see the imports

        last_modified = email.utils.formatdate(stat_result.st_mtime, usegmt=True)
        self.headers.setdefault("last-modified", last_modified)
        # Changes whenever the file is rewritten or resized, like nginx's and Apache's ETags.
        # (st_mtime, not st_mtime_ns: a stat_result built by hand has no nanoseconds.)
        mtime_us = int(stat_result.st_mtime * 1_000_000)
        self.headers.setdefault("etag", f'"{mtime_us:x}-{stat_result.st_size:x}"')

    async def _stat(self) -> os.stat_result:
        try:
            stat_result = await anyio.to_thread.run_sync(os.stat, self.path)
        except FileNotFoundError:
            raise RuntimeError(f"File at path {self.path} does not exist.") from None
        if not stat.S_ISREG(stat_result.st_mode):
            raise RuntimeError(f"File at path {self.path} is not a file.")
        self.set_stat_headers(stat_result)
        return stat_result

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stat_result is None:
            self.stat_result = await self._stat()
        size = self.stat_result.st_size
        # ASGI methods are upper case; Starlette's FileResponse takes any case, and so does this.
        method = scope.get("method", "").upper()
        try:
            ranges = self._requested_ranges(scope, method, size)
        except _RangeError as error:
            headers = {"content-range": f"bytes */{size}"} if error.status_code == 416 else None
            await PlainTextResponse(str(error), error.status_code, headers)(scope, receive, send)
            return
        if scope["type"] == "websocket":
            send = _websocket_denial_send(send)
        if ranges is None:
            status, raw_headers = self.status_code, self.raw_headers
            parts, suffix = [(b"", 0, size, b"")], b""
        else:
            status = 206
            raw_headers, parts, suffix = self._range_parts(ranges, size)
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        if method == "HEAD" or status in _BODYLESS_STATUSES:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif ranges is None and "http.response.pathsend" in scope.get("extensions", {}):
            await send({"type": "http.response.pathsend", "path": await self._absolute_path()})
        elif _listens_for_disconnect(scope):
            await _until_disconnect(
                functools.partial(self._send_parts, parts, suffix, send),
                functools.partial(_wait_for_disconnect, receive),
            )
        else:  # an ASGI 2.4 server's OSError, once the client has gone, stops the sending
            await self._send_parts(parts, suffix, send)
        if self.background is not None:
            await self.background()

    def _requested_ranges(
        self, scope: Scope, method: str, size: int
    ) -> list[tuple[int, int]] | None:
        """The byte ranges to send, or None for the whole file."""
        range_header = _header_value(scope, b"range")
        if range_header is None or self.status_code != 200 or method not in ("GET", "HEAD"):
            return None
        if_range = _header_value(scope, b"if-range")
        if if_range is not None and not self._if_range_matches(if_range):
            return None
        return _parse_range_header(range_header, size, self.max_ranges)

    def _if_range_matches(self, if_range: str) -> bool:
        """RFC 9110 §13.1.5: a strong ETag or the exact Last-Modified date of this file."""
        if if_range.startswith("W/"):
            return False
        return if_range in (self.headers.get("etag"), self.headers.get("last-modified"))

    async def _absolute_path(self) -> str:
        """The file's absolute path, as ASGI's pathsend wants it."""
        path = os.fspath(self.path)
        if os.path.isabs(path):
            return path
        # Resolving a relative path asks the OS for the working directory: not on the event loop.
        return await anyio.to_thread.run_sync(os.path.abspath, path)

    def _range_parts(
        self, ranges: list[tuple[int, int]], size: int
    ) -> tuple[list[tuple[bytes, bytes]], list[_FilePart], bytes]:
        """The headers, parts and closing bytes of a 206 response for `ranges`."""
        headers = MutableHeaders(raw=list(self.raw_headers))
        if len(ranges) == 1:
            first, end = ranges[0]
            headers["content-range"] = f"bytes {first}-{end - 1}/{size}"
            headers["content-length"] = str(end - first)
            return headers.raw, [(b"", first, end, b"")], b""
        # Browsers use 13 random bytes for multipart boundaries; so do we.
        boundary = os.urandom(13).hex()
        length, part_header = self.generate_multipart(
            ranges, boundary, size, headers["content-type"]
        )
        headers["content-type"] = f"multipart/byteranges; boundary={boundary}"
        headers["content-length"] = str(length)
        parts = [(part_header(first, end), first, end, b"\r\n") for first, end in ranges]
        return headers.raw, parts, f"--{boundary}--".encode("latin-1")

    def generate_multipart(
        self, ranges: Sequence[tuple[int, int]], boundary: str, max_size: int, content_type: str
    ) -> tuple[int, Callable[[int, int], bytes]]:
        """The length of a ``multipart/byteranges`` body (RFC 9110 §14.6) holding `ranges` of a
        `max_size`-byte file, and a function giving the header of the part for ``[start, end)``."""

        def part_header(start: int, end: int) -> bytes:
            return (
                f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                f"Content-Range: bytes {start}-{end - 1}/{max_size}\r\n\r\n"
            ).encode("latin-1")

        parts_length = sum(len(part_header(start, end)) + end - start + 2 for start, end in ranges)
        return parts_length + len(f"--{boundary}--"), part_header

    async def _send_parts(self, parts: list[_FilePart], suffix: bytes, send: Send) -> None:
        """Send the parts as body messages, holding one back so the last can end the body."""
        previous = b""
        async with _Closing(self._read_parts(parts, suffix)) as chunks:
            async for chunk in chunks:
                if previous:
                    await send({"type": "http.response.body", "body": previous, "more_body": True})
                previous = chunk
        await send({"type": "http.response.body", "body": previous})

    async def _read_parts(self, parts: list[_FilePart], suffix: bytes) -> AsyncIterator[bytes]:
        """Each part's prefix, bytes (`chunk_size` at a time) and what follows; then `suffix`."""
        file = await anyio.open_file(self.path, "rb")
        position = 0  # where the file is: each seek, like each read, is a trip to a thread
        try:
            for prefix, first, end, after in parts:
                if prefix:
                    yield prefix
                if first != position:
                    await file.seek(first)
                remaining = end - first
                while remaining:
                    chunk = await file.read(min(self.chunk_size, remaining))
                    if not chunk:  # the file shrank since it was stat'ed
                        raise RuntimeError(f"File at path {self.path} is shorter than expected.")
                    remaining -= len(chunk)
                    yield chunk
                if after:
                    yield after
                position = end
            if suffix:
                yield suffix
        finally:
            with anyio.CancelScope(shield=True):  # the file must be closed even when cancelled
                await file.aclose()


# ==== WebSockets ====
# WebSocket: an HTTPConnection that exchanges ASGI websocket messages, with the protocol's states
# checked on both sides. A frame of the wrong kind closes with the RFC 6455 code that says so.


class WebSocketState(Enum):
    """Where one side of a websocket is in its life."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3  # answering the handshake with an HTTP response instead (a denial)

    # Members are singletons, equal only to themselves: hash them by identity too, in C, rather
    # than with Enum's hash of the name in Python, as the state tables look two up per message.
    __hash__ = object.__hash__


class WebSocketDisconnect(Exception):
    """The client closed the websocket (or went away: code 1006)."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""


class WebSocketDisconnected(RuntimeError):
    """The websocket is used after it was closed, or before it was accepted."""


# The messages each state allows, and the state each one leads to (ASGI websocket spec).
_RECEIVABLE = {
    WebSocketState.CONNECTING: {"websocket.connect": WebSocketState.CONNECTED},
    WebSocketState.CONNECTED: {
        "websocket.receive": WebSocketState.CONNECTED,
        "websocket.disconnect": WebSocketState.DISCONNECTED,
    },
}
_SENDABLE = {
    WebSocketState.CONNECTING: {
        "websocket.accept": WebSocketState.CONNECTED,
        "websocket.close": WebSocketState.DISCONNECTED,
        "websocket.http.response.start": WebSocketState.RESPONSE,
    },
    WebSocketState.CONNECTED: {
        "websocket.send": WebSocketState.CONNECTED,
        "websocket.close": WebSocketState.DISCONNECTED,
    },
    WebSocketState.RESPONSE: {"websocket.http.response.body": WebSocketState.DISCONNECTED},
}
# A close frame's payload is at most 125 bytes, two of which hold the code (RFC 6455 §5.5).
_MAX_CLOSE_REASON_BYTES = 123


def _check_close_reason(reason: object) -> None:
    """Refuse a text reason too long for a close frame. Anything else goes to the server as given,
    as in Starlette: a reserved close code (1006), or a reason not text (FastAPI sends a list)."""
    if isinstance(reason, str) and len(reason.encode("utf-8")) > _MAX_CLOSE_REASON_BYTES:
        raise ValueError(f"WebSocket close reason is longer than {_MAX_CLOSE_REASON_BYTES} bytes")


def _expected(allowed: Mapping[str, Any], got: str) -> str:
    """Starlette's text for an ASGI message the state does not allow: the names it allows."""
    *others, last = (f'"{name}"' for name in allowed)
    names = f"{', '.join(others)} or {last}" if others else last
    return f"Expected ASGI message {names}, but got {got!r}"


class WebSocket(HTTPConnection[StateT]):
    """A websocket connection: accept it, exchange text, bytes or JSON, close it. A frame of the
    wrong kind closes with 1003 (unsupported data), one that is not I-JSON with 1007."""

    _close_code = 1000  # the code of the close the app sent, once it sent one

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"WebSocket needs a 'websocket' scope, got {scope['type']!r}")
        super().__init__(scope)
        self._receive = receive
        self._send = send
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING

    async def receive(self) -> Message:
        """The next ASGI message from the client, checked against the protocol's state."""
        allowed = _RECEIVABLE.get(self.client_state)
        if allowed is None:
            raise WebSocketDisconnected(
                'Cannot call "receive" once a disconnect message has been received.'
            )
        message = await self._receive()
        if message["type"] not in allowed:
            raise RuntimeError(_expected(allowed, message["type"]))
        self.client_state = allowed[message["type"]]
        return message

    async def send(self, message: Message) -> None:
        """Send an ASGI message, checked against the protocol's state."""
        allowed = _SENDABLE.get(self.application_state)
        if allowed is None:
            raise WebSocketDisconnected('Cannot call "send" once a close message has been sent.')
        if message["type"] not in allowed:
            raise RuntimeError(_expected(allowed, message["type"]))
        if message["type"] == "websocket.close":
            _check_close_reason(message.get("reason"))
            self._close_code = message.get("code", 1000)
        previous_state = self.application_state
        self.application_state = allowed[message["type"]]
        if self.application_state is WebSocketState.DISCONNECTED and message.get("more_body"):
            # more of the denial response's body follows
            self.application_state = WebSocketState.RESPONSE
        try:
            await self._send(message)
        except OSError:  # ASGI 2.4: the server could not send, the client is gone
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(code=1006) from None
        if previous_state is WebSocketState.CONNECTING and message["type"] == "websocket.close":
            # a refused handshake: nothing more will come
            self.client_state = WebSocketState.DISCONNECTED

    async def accept(
        self, subprotocol: str | None = None, headers: Iterable[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Accept the connection, choosing a subprotocol and adding headers to the handshake."""
        if self.client_state is WebSocketState.CONNECTING:
            await self.receive()  # the client's websocket.connect
        headers = list(headers or [])
        # The handshake is an HTTP response: CR, LF or NUL would inject a header into it.
        for name, value in headers:
            _check_raw_header(name, value)
        if subprotocol is not None:
            _check_raw_header(b"sec-websocket-protocol", subprotocol.encode("latin-1"))
        await self.send(
            {"type": "websocket.accept", "subprotocol": subprotocol, "headers": headers}
        )

    async def _receive_frame(self, key: str, wrong_kind: str) -> Any:
        if self.application_state is not WebSocketState.CONNECTED:
            raise WebSocketDisconnected('WebSocket is not connected. Need to call "accept" first.')
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        data = message.get(key)
        if data is None:
            raise WebSocketException(1003, wrong_kind)
        return data

    async def receive_text(self) -> str:
        """The next text frame; raises `WebSocketDisconnect` when the client closes."""
        return await self._receive_frame("text", "Expected a text frame, got a binary one")  # type: ignore[no-any-return]

    async def receive_bytes(self) -> bytes:
        """The next binary frame; raises `WebSocketDisconnect` when the client closes."""
        return await self._receive_frame("bytes", "Expected a binary frame, got a text one")  # type: ignore[no-any-return]

    async def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """The next frame (text, or binary in UTF-8) parsed as I-JSON; ``json.JSONDecodeError`` if
        it is not, which closes with 1007 unless the app catches it."""
        _check_mode(mode)
        data = await self.receive_text() if mode == "text" else await self.receive_bytes()
        return _parse_json(data, _InvalidJSONFrame)

    async def iter_text(self) -> AsyncIterator[str]:
        """Text frames until the client closes."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                yield await self.receive_text()

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Binary frames until the client closes."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                yield await self.receive_bytes()

    async def iter_json(self) -> AsyncIterator[Any]:
        """JSON text frames until the client closes."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                yield await self.receive_json()

    async def send_text(self, data: str) -> None:
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self.send({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send `data` as compact UTF-8 JSON, in a text frame or a binary one."""
        await self.send(_json_frame("websocket.send", data, mode))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the websocket (or refuse it, before accept) with `code` and `reason`."""
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the handshake with an HTTP response (ASGI's websocket.http.response extension)."""
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            raise RuntimeError(
                "The server doesn't support the Websocket Denial Response extension."
            )
        await response(self.scope, self.receive, self.send)


def _check_mode(mode: str) -> None:
    if mode not in ("text", "binary"):
        raise RuntimeError('The "mode" argument should be "text" or "binary".')


def _json_frame(message_type: str, data: Any, mode: str) -> Message:
    """A websocket message carrying `data` as compact JSON, in a text frame or a binary one."""
    _check_mode(mode)
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if mode == "text":
        return {"type": message_type, "text": text}
    return {"type": message_type, "bytes": text.encode("utf-8")}


class WebSocketClose:
    """An ASGI app that closes (or refuses) a websocket with `code` and `reason`."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""
        _check_close_reason(self.reason)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.close", "code": self.code, "reason": self.reason})


# ==== Error handling ====
# Exceptions turned into answers. ExceptionMiddleware (innermost, around the router) answers one
# that has a handler; ServerErrorMiddleware (outermost) answers any other with a 500 or the debug
# page. request_response and websocket_session (Routing) answer through the same helpers.

# The two kinds of handler, as Starlette types them: a request's returns a response, a websocket's
# closes it. Handlers are registered as ExceptionHandler, which accepts both and handlers whose
# exception parameter is a subclass (`HTTPException`), which a Callable[..., Exception] refuses.
HTTPExceptionHandler: TypeAlias = Callable[[Request, Exception], Response | Awaitable[Response]]
WebSocketExceptionHandler: TypeAlias = Callable[[WebSocket, Exception], Awaitable[None]]
ExceptionHandler: TypeAlias = Callable[[Any, Any], Any]
# Where ExceptionMiddleware leaves its handlers for the routes: the key Starlette uses, so that
# middleware written for Starlette which reads it keeps working.
_HANDLERS_SCOPE_KEY = "starlette.exception_handlers"
_NO_HANDLERS: tuple[dict[Any, ExceptionHandler], dict[int, ExceptionHandler]] = ({}, {})


class _StartNotingSend:
    """A send that notes whether the response has started, for the layers that must not answer an
    exception once it has. Each wraps send only if it is not one already, so nested layers share
    one; the check is written out in each, as a call would cost as much on every request."""

    __slots__ = ("response_started", "send")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.response_started = False

    # A plain method returning the inner send's awaitable, not a coroutine of its own: every
    # message of every response passes here, and a coroutine layer would add a frame to each
    # (measured with benchmarks/compare.py).
    def __call__(self, message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            self.response_started = True
        return self.send(message)


async def _answer_exception(
    exc: Exception, scope: Scope, receive: Receive, send: Send, connection: HTTPConnection | None
) -> None:
    """Answer `exc` with the handler for its status code (an HTTPException) or the nearest class in
    its MRO; raise it again if there is none, or if `send` (a _StartNotingSend) saw the response
    start. Each endpoint does this too, so that a route's middleware sees the handled response."""
    by_class, by_status = scope.get(_HANDLERS_SCOPE_KEY, _NO_HANDLERS)
    handler = by_status.get(exc.status_code) if isinstance(exc, HTTPException) else None
    if handler is None:  # a loop, not next() over a generator: every 404 and 405 comes here
        for cls in type(exc).__mro__:
            if cls in by_class:
                handler = by_class[cls]
                break
    if handler is None:
        raise exc
    if isinstance(send, _StartNotingSend) and send.response_started:
        raise RuntimeError("Caught handled exception, but response already started.") from exc
    if connection is None:
        connection = (Request if scope["type"] == "http" else WebSocket)(scope, receive, send)
    response = await _call_maybe_async(handler, connection, exc)
    if response is not None:  # a websocket handler closes the socket itself
        await response(scope, receive, send)
    # Handled: drop the traceback, so that an exception instance raised again and again
    # (a module-level HTTPException, say) does not keep every request's frames alive.
    exc.__traceback__ = None


class ExceptionMiddleware:
    """Answers an exception with the handler for its class or, for an HTTPException, its status."""

    def __init__(
        self,
        app: ASGIApp,
        handlers: Mapping[Any, ExceptionHandler] | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.debug = debug
        self._status_handlers: dict[int, ExceptionHandler] = {}
        self._exception_handlers: dict[Any, ExceptionHandler] = {
            HTTPException: self.http_exception,
            WebSocketException: self.websocket_exception,
        }
        # Left in each scope as they are: the dicts themselves, so a handler added later counts.
        self._handlers = (self._exception_handlers, self._status_handlers)
        for key, handler in (handlers or {}).items():
            self.add_exception_handler(key, handler)

    def add_exception_handler(
        self, exc_class_or_status_code: int | type[Exception], handler: ExceptionHandler
    ) -> None:
        """Handle an exception class, or HTTPExceptions with a status code, with `handler`."""
        key = exc_class_or_status_code
        if isinstance(key, int):
            self._status_handlers[key] = handler
        elif isinstance(key, type) and issubclass(key, Exception):
            self._exception_handlers[key] = handler
        else:
            message = "Exception handlers are keyed by an Exception subclass or a status code"
            raise TypeError(f"{message}, not {key!r}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[_HANDLERS_SCOPE_KEY] = self._handlers
        if scope["type"] == "http" and not isinstance(send, _StartNotingSend):
            send = _StartNotingSend(send)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            await _answer_exception(exc, scope, receive, send, None)

    async def http_exception(self, request: Request, exc: HTTPException) -> Response:
        """The default answer to an HTTPException: its detail as text, with its headers."""
        if exc.status_code in (204, 304):  # statuses that carry no content
            return Response(status_code=exc.status_code, headers=exc.headers)
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)

    async def websocket_exception(self, websocket: WebSocket, exc: WebSocketException) -> None:
        """The default answer to a WebSocketException: close with its code and reason."""
        await websocket.close(code=exc.code, reason=exc.reason)


# How long ending a failed websocket may take: a server sends a close at once, so this bounds
# only a stuck one.
_ERROR_CLOSE_TIMEOUT = 5.0


class ServerErrorMiddleware:
    """Answers any unhandled exception with a 500 (unless the response has started), then re-raises
    it for the server to log. With `debug` the 500 shows the traceback (built in the threadpool, as
    it reads files); else `handler` makes it, or it says only ``Internal Server Error``."""

    def __init__(
        self, app: ASGIApp, handler: ExceptionHandler | None = None, debug: bool = False
    ) -> None:
        self.app = app
        self.handler = handler
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._guard_websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked_send = send if isinstance(send, _StartNotingSend) else _StartNotingSend(send)
        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            request = Request(scope)
            if self.debug:
                response = await run_in_threadpool(self.debug_response, request, exc)
            elif self.handler is not None:
                response = await _call_maybe_async(self.handler, request, exc)
            else:
                response = self.error_response(request, exc)
            if not tracked_send.response_started:
                await response(scope, receive, send)
            raise  # so that the server logs it, and a TestClient can raise it in the test

    async def _guard_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """On an unhandled exception, end the websocket, then re-raise: a 500 denial response
        if the handshake is open and the server offers it, else a 1011 close (internal error)."""
        sent: set[str] = set()

        async def send_noting_type(message: Message) -> None:
            sent.add(message["type"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_type)
        except Exception:
            if not {"websocket.close", "websocket.http.response.start"} & sent:
                can_deny = "websocket.http.response" in scope.get("extensions", {})
                # Shielded: an app that fails as it is cancelled (its session ended) still ends the
                # socket, and its own error, not the cancellation, is what is raised.
                shielded = anyio.move_on_after(_ERROR_CLOSE_TIMEOUT, shield=True)
                with shielded, contextlib.suppress(OSError):  # the client may be gone already
                    if "websocket.accept" not in sent and can_deny:
                        denial = PlainTextResponse("Internal Server Error", status_code=500)
                        await denial(scope, receive, send)
                    else:
                        await send({"type": "websocket.close", "code": 1011, "reason": ""})
            raise

    def debug_response(self, request: Request, exc: Exception) -> Response:
        """The traceback, as HTML for a browser and as text otherwise."""
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(self.generate_html(exc), status_code=500)
        return PlainTextResponse(self.generate_plain_text(exc), status_code=500)

    def error_response(self, request: Request, exc: Exception) -> Response:
        """The 500 a client sees when debug is off: no detail at all."""
        return PlainTextResponse("Internal Server Error", status_code=500)

    def generate_plain_text(self, exc: Exception) -> str:
        """The traceback as Python prints it, chained exceptions included."""
        return "".join(traceback.format_exception(exc))

    def generate_html(self, exc: Exception, limit: int = 7) -> str:
        """A page of the exception chain, each frame collapsible with `limit` lines of its
        source around the failing one; every name, line and message HTML-escaped."""
        sections = _debug_chain_html(traceback.TracebackException.from_exception(exc), limit)
        title = html.escape(f"{type(exc).__name__}: {_debug_message(exc)}")
        return (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>500 Server Error</title>"
            f"<style>{_DEBUG_STYLE}</style></head><body><h1>500 Server Error</h1>"
            f"<h2>{title}</h2><p>Most recent call first; frames of the app are marked "
            f"<b class='tag'>app</b> and open.</p>{sections}</body></html>"
        )


_DEBUG_STYLE = (
    "body{font-family:sans-serif;margin:2em}h3{margin-top:2em}"
    "details{border:1px solid #ddd;margin:.3em 0;border-radius:4px}"
    "details.app{border-left:6px solid #c33}summary{padding:.4em;cursor:pointer}"
    ".tag{background:#c33;color:#fff;padding:0 .4em;border-radius:3px;font-size:.8em}"
    "pre{margin:0;padding:.5em;background:#f6f6f6;overflow:auto}"
    "pre .here{background:#fdd;display:block}.msg{white-space:pre-wrap}"
    ".member{margin-left:1.5em;border-left:2px solid #ccc;padding-left:1em}"
)
# Python's own traceback printing shows this many members of a group, nested this deep
_DEBUG_GROUP_WIDTH = 15
_DEBUG_GROUP_DEPTH = 10


def _debug_message(exc: BaseException) -> str:
    """str(exc), or a placeholder when its __str__ itself fails (a debug page must render)."""
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def _debug_chain_html(
    te: traceback.TracebackException, limit: int, depth: int = 0, heading: str = "Exception"
) -> str:
    """Each exception of the chain in a <section>, a group's members nested in it: the exception,
    then what caused it or was being handled (TracebackException has already cut any cycle)."""
    sections = []
    link: traceback.TracebackException | None = te
    while link is not None:
        body = _debug_exception_html(link, limit) + _debug_group_html(link, limit, depth)
        sections.append(f"<section><h3>{html.escape(heading)}</h3>{body}</section>")
        if link.__cause__ is not None:
            heading, link = "Its direct cause", link.__cause__
        elif link.__context__ is not None and not link.__suppress_context__:
            heading, link = "Raised while handling", link.__context__
        else:
            link = None
    return "".join(sections)


def _debug_group_html(te: traceback.TracebackException, limit: int, depth: int) -> str:
    """An exception group's members, each with its chain, within Python's own bounds."""
    members = te.exceptions or []
    if members and depth >= _DEBUG_GROUP_DEPTH:
        return "<p>(more nested exception groups)</p>"
    shown = [
        f"<div class='member'>{_debug_chain_html(member, limit, depth + 1, f'Member {n}')}</div>"
        for n, member in enumerate(members[:_DEBUG_GROUP_WIDTH], start=1)
    ]
    if len(members) > _DEBUG_GROUP_WIDTH:
        shown.append(f"<p>(and {len(members) - _DEBUG_GROUP_WIDTH} more members)</p>")
    return "".join(shown)


def _debug_exception_html(te: traceback.TracebackException, limit: int) -> str:
    """One exception: its type and message, then its frames, innermost first."""
    message = html.escape("".join(te.format_exception_only()).rstrip("\n"))
    frames: list[str] = []
    previous: tuple[str, int | None, str] | None = None
    repeats = 0
    for index, frame in enumerate(reversed(te.stack)):
        key = (frame.filename, frame.lineno, frame.name)
        repeats = repeats + 1 if key == previous else 0
        previous = key
        # a deep recursion repeats one frame hundreds of times; show it thrice, then say so once
        if repeats < 3:
            frames.append(_debug_frame_html(frame, limit, opened=index == 0))
        elif repeats == 3:
            frames.append("<p>(the same frame repeats)</p>")
    return f"<pre class='msg'>{message}</pre>{''.join(frames)}"


def _debug_frame_html(frame: traceback.FrameSummary, limit: int, opened: bool) -> str:
    """A <details> for one frame, open when it is the failing one or the app's own code."""
    own = _is_app_file(frame.filename)
    where = html.escape(f"{frame.filename}, line {frame.lineno}, in {frame.name}")
    tag = "<b class='tag'>app</b> " if own else ""
    attributes = " class='app' open" if own else (" open" if opened else "")
    return (
        f"<details{attributes}><summary>{tag}<code>{where}</code></summary>"
        f"<pre>{_debug_source_html(frame, limit)}</pre></details>"
    )


def _debug_source_html(frame: traceback.FrameSummary, limit: int) -> str:
    """`limit` lines of the frame's source centred on its failing line, each numbered."""
    # the traceback module has registered lazy loaders for zip and frozen sources already
    lines = linecache.getlines(frame.filename)
    if frame.lineno is None or not lines or limit < 1:
        return html.escape((frame.line or "").strip())
    start = max(0, min(frame.lineno - 1 - (limit - 1) // 2, len(lines) - limit))
    shown = []
    for number, text in enumerate(lines[start : start + limit], start=start + 1):
        line = html.escape(f"{number:>5} {text.rstrip()}")
        shown.append(f"<span class='here'>{line}</span>" if number == frame.lineno else line)
    return "\n".join(shown)


def _is_app_file(filename: str) -> bool:
    """Whether a frame's file is the app's own: not starlite, nor the standard library or an
    installed package (under the interpreter's prefixes), nor a built-in like <frozen os>."""
    if filename.startswith("<") or os.path.abspath(filename) == os.path.abspath(__file__):
        return False
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return not os.path.abspath(filename).startswith(tuple(p + os.sep for p in prefixes))


# ==== Body limit ====
# RequestBodyLimitMiddleware: a request body over its limit is answered 413 as it is read. A
# route's limit (Routing) and the application's (Application) are counted by the same helpers.

# Where the request's body limit lives while a RequestBodyLimitMiddleware counts its body.
_BODY_LIMIT_SCOPE_KEY = "starlite.body_limit"
# The limit in force, in bytes, for the app inside to read: Starlette's key, which frameworks and
# other middleware read, so that they can honour the limit too.
MAX_BODY_SIZE_SCOPE_KEY = "starlette.max_body_size"


class _BodyTooLarge(HTTPException):
    """The request body is over the limit: answered 413 by the exception handlers."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Content Too Large")


class _ResponseReplaced(Exception):
    """The app's response was replaced by a 413: stop the app."""


class _BodyLimit:
    """One request's body limit: the innermost middleware's size, against every byte received."""

    def __init__(self, max_body_size: int, content_length: int | None) -> None:
        self.max_body_size = max_body_size
        self.content_length = content_length
        self.received = 0

    def declared_too_large(self) -> bool:
        return self.content_length is not None and self.content_length > self.max_body_size

    def check(self) -> None:
        if self.declared_too_large():
            raise _BodyTooLarge()
        self.check_received()

    def check_received(self) -> None:
        if self.received > self.max_body_size:
            raise _BodyTooLarge()


def _checked_body_size(max_body_size: int) -> int:
    if max_body_size < 0:
        raise ValueError(f"max_body_size must not be negative: {max_body_size}")
    return max_body_size


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length, if it is a plain number (anything else is not trusted)."""
    value = _header_value(scope, b"content-length")
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return int(value) if len(value) <= _MAX_POSITION_DIGITS else _PAST_ANY_FILE


class RequestBodyLimitMiddleware:
    """Answers ``413 Content Too Large`` to a request body over `max_body_size` bytes: before any
    of it is read for a Content-Length over the limit (replacing the response of an app that never
    reads it), else as soon as the streamed body crosses it, so nothing beyond is held. Where limits
    nest the innermost wins; inside an app the 413 goes through its HTTPException handlers."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = _checked_body_size(max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        had_size, outer_size = MAX_BODY_SIZE_SCOPE_KEY in scope, scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        scope[MAX_BODY_SIZE_SCOPE_KEY] = self.max_body_size
        outer: _BodyLimit | None = scope.get(_BODY_LIMIT_SCOPE_KEY)
        try:
            if outer is not None:  # an outer middleware counts the body: our size replaces its own
                outer.max_body_size = self.max_body_size
                # Its Content-Length waits for the body to be read, by the innermost limit.
                outer.check_received()
                await self.app(scope, receive, send)
            else:
                limit = _BodyLimit(self.max_body_size, _content_length(scope))
                scope[_BODY_LIMIT_SCOPE_KEY] = limit
                await self._limit(limit, scope, receive, send)
        finally:
            if had_size:
                scope[MAX_BODY_SIZE_SCOPE_KEY] = outer_size
            else:
                scope.pop(MAX_BODY_SIZE_SCOPE_KEY, None)
            if outer is None:
                scope.pop(_BODY_LIMIT_SCOPE_KEY, None)

    async def _limit(self, limit: _BodyLimit, scope: Scope, receive: Receive, send: Send) -> None:
        response_started = False
        # Set once this middleware has answered 413 in place of the app: from then on the request
        # is over for the app, whose receive says so instead of refusing again.
        replaced: anyio.Event | None = None

        async def receive_counting() -> Message:
            if replaced is not None:  # a disconnect listener beside the replacement: let it finish
                await replaced.wait()
                return {"type": "http.disconnect"}
            limit.check()  # a Content-Length over the limit: refuse before reading any of it
            message = await receive()
            if message["type"] == "http.request":
                limit.received += len(message.get("body", b""))
                limit.check()
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal response_started, replaced
            if message["type"] == "http.response.start":
                response_started = True
                # A declared length over the limit is answered 413 whatever the app did: by its own
                # handler once it was refused the body, or else by this plain 413, in place of the
                # answer of an app that never read the body or that read it beside answering.
                if limit.declared_too_large() and message["status"] != 413:
                    replaced = anyio.Event()
                    await PlainTextResponse("Content Too Large", 413)(scope, receive, send)
                    replaced.set()
                    raise _ResponseReplaced()
            await send(message)

        try:
            await self.app(scope, receive_counting, send_unless_refused)
        except _BodyTooLarge:
            if response_started:
                raise
            await PlainTextResponse("Content Too Large", 413)(scope, receive, send)
        except _ResponseReplaced:
            pass


# ==== Routing ====
# Convertors turn path parameters into values and back; Route, Mount and Host match a request;
# Router tries them in the order declared. An index narrows a request to the few routes whose path
# could match, so matching costs about the same with 20 routes or 4,000, with the same winner.


class Convertor(Generic[ConvertedT]):
    """Converts a path parameter: `regex` matches it in a path, `convert` and `to_string` map it
    to a value and back. Register your own with `register_url_convertor`."""

    regex: ClassVar[str] = ""

    def convert(self, value: str) -> ConvertedT:
        """The value of a matched parameter; raising ``ValueError`` makes the route not match."""
        raise NotImplementedError()

    def to_string(self, value: ConvertedT) -> str:
        """The parameter as written in a path. The built-in ones raise ``AssertionError`` for a
        value the route could not match, as Starlette's asserts do, but also under ``python -O``."""
        raise NotImplementedError()


class StringConvertor(Convertor[str]):
    """One path segment (the default convertor)."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        value = str(value)
        if not value or "/" in value:
            raise AssertionError(f"A str path parameter must be non-empty, without '/': {value!r}")
        return value


class PathConvertor(Convertor[str]):
    """The rest of the path, slashes included."""

    regex = ".*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


class IntegerConvertor(Convertor[int]):
    """A non-negative integer."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return int(value)  # more than 4,300 digits raises ValueError: not a match

    def to_string(self, value: int) -> str:
        value = int(value)
        if value < 0:
            raise AssertionError(f"An int path parameter must not be negative: {value}")
        return str(value)


class FloatConvertor(Convertor[float]):
    """A non-negative decimal number."""

    regex = r"[0-9]+(?:\.[0-9]+)?"

    def convert(self, value: str) -> float:
        return float(value)

    def to_string(self, value: float) -> str:
        value = float(value)
        if value < 0 or not math.isfinite(value):
            raise AssertionError(f"A float path parameter must be finite and not negative: {value}")
        return f"{value:.20f}".rstrip("0").rstrip(".")


class UUIDConvertor(Convertor[uuid.UUID]):
    """A UUID: 32 hexadecimal digits, with or without the hyphens of the 8-4-4-4-12 form."""

    # Hyphens optional, as uuid.UUID() accepts them.
    regex = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def convert(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_string(self, value: uuid.UUID) -> str:
        return str(value)


CONVERTOR_TYPES: dict[str, Convertor[Any]] = {
    "str": StringConvertor(),
    "path": PathConvertor(),
    "int": IntegerConvertor(),
    "float": FloatConvertor(),
    "uuid": UUIDConvertor(),
}


def register_url_convertor(key: str, convertor: Convertor[Any]) -> None:
    """Make ``{name:key}`` usable in route paths, converted by `convertor`."""
    CONVERTOR_TYPES[key] = convertor


# A parameter in a route path: "{name}" or "{name:convertor}".
_PATH_PARAMETER = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")
# A parameter in a path format, where the convertor is no longer named: "{name}".
_PARAMETER_IN_FORMAT = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")


def compile_path(path: str) -> tuple[re.Pattern[str], str, dict[str, Convertor[Any]]]:
    """Compile a route path (or a host pattern, if it does not start with "/") into the regex that
    matches it, the format that rebuilds it (``/users/{id}``) and the parameters' convertors."""
    is_host = not path.startswith("/")
    # A host pattern matches the host alone, whatever the port; its format keeps the port, so
    # that a URL built for "api.example.org:8443" points there.
    matched = _host_without_port(path) if is_host else path
    path_format, convertors = "", {}
    duplicated = set()
    position = 0
    for match in _PATH_PARAMETER.finditer(matched):
        name, convertor_name = match[1], match[2] or "str"
        if convertor_name not in CONVERTOR_TYPES:
            raise ValueError(f"Unknown path convertor {convertor_name!r} in {path!r}")
        if name in convertors:
            duplicated.add(name)
        convertors[name] = CONVERTOR_TYPES[convertor_name]
        path_format += matched[position : match.start()] + "{" + name + "}"
        position = match.end()
    if duplicated:
        names = ", ".join(sorted(duplicated))
        plural = "s" if len(duplicated) > 1 else ""
        raise ValueError(f"Duplicated param name{plural} {names} at path {path}")
    matched_format = path_format + matched[position:]
    path_format += path[position:]
    flags = re.IGNORECASE if is_host else 0  # host names are case-insensitive (RFC 3986 §3.2.2)
    return re.compile(_format_regex(matched_format, convertors), flags), path_format, convertors


def _format_regex(path_format: str, convertors: dict[str, Convertor[Any]]) -> str:
    """The regex of the paths a format describes: each ``{name}`` by its convertor's regex, the
    rest literally. Raises ``KeyError`` for a parameter without a convertor."""
    regex, position = "", 0
    for match in _PARAMETER_IN_FORMAT.finditer(path_format):
        literal, name = path_format[position : match.start()], match[1]
        regex += re.escape(literal) + f"(?P<{name}>{convertors[name].regex})"
        position = match.end()
    # \Z, not $: $ would also match before a final newline, so that "/a%0A" would reach "/a".
    return f"^{regex}{re.escape(path_format[position:])}\\Z"


def _host_without_port(authority: str) -> str:
    """The host part of ``host:port``, keeping an IPv6 address in its brackets."""
    if authority.startswith("["):
        return authority[: authority.find("]") + 1]
    return authority.partition(":")[0]


def get_name(endpoint: Callable[..., Any]) -> str:
    """The default route name of an endpoint: its function or class name."""
    return getattr(endpoint, "__name__", endpoint.__class__.__name__)


def _route_path(scope: Scope) -> str:
    """The path a router matches: ``path`` without the app's ``root_path`` (ASGI includes it)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    return path[len(root_path) :] if path[len(root_path)] == "/" else path


def _matched_params(
    regex: re.Pattern[str], convertors: dict[str, Convertor[Any]], text: str
) -> dict[str, Any] | None:
    """The converted parameters if `regex` matches `text`, else None. A value that fits the
    pattern but does not convert (a 5,000-digit int) is no match: a 404, never a 500."""
    match = regex.match(text)
    if match is None:
        return None
    params = match.groupdict()  # a fresh dict, converted in place: no comprehension frame
    try:
        for name, value in params.items():
            params[name] = convertors[name].convert(value)
    except ValueError:
        return None
    return params


def _with_outer_params(scope: Scope, params: dict[str, Any]) -> dict[str, Any]:
    """A route's own path parameters, after those of the Mounts it is in (a fresh dict)."""
    outer = scope.get("path_params")
    return {**outer, **params} if outer else params


def replace_params(
    path: str, param_convertors: dict[str, Convertor[Any]], path_params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Fill the ``{name}`` placeholders of a path format with `path_params`, each written by its
    convertor, in one pass: one without a value stays, as does a value that looks like one. As in
    Starlette, the values used are popped from `path_params`, which is returned with those left."""

    def value_of(match: re.Match[str]) -> str:
        name = match[1]
        if name not in path_params:
            return match[0]
        return param_convertors[name].to_string(path_params.pop(name))

    return _PARAMETER_IN_FORMAT.sub(value_of, path), path_params


def _safe_path(path: str) -> str:
    """A generated path that no browser reads as pointing at another host, as "//host/" would."""
    path = path.replace("\\", "%5C")
    return "/%2F" + path[2:] if path.startswith("//") else path


class NoMatchFound(Exception):
    """No route has this name and these parameters (raised by ``url_path_for``)."""

    def __init__(self, name: str, path_params: dict[str, Any]) -> None:
        params = ", ".join(sorted(path_params))
        super().__init__(f'No route exists for name "{name}" and params "{params}".')


class Match(Enum):
    """How a route matches a request: not at all, by path only (wrong method), or fully."""

    NONE = 0
    PARTIAL = 1
    FULL = 2


class BaseRoute:
    """A routing rule: `matches` says whether it takes a request, `handle` answers it."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """How this route matches `scope`, and what to add to the scope if it is chosen."""
        raise NotImplementedError()

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path of the route called `name`, filled with `path_params`."""
        raise NotImplementedError()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request this route matched."""
        raise NotImplementedError()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Use a route on its own as an ASGI app: not found unless it matches."""
        match, child_scope = self.matches(scope)
        if match is Match.NONE:
            await _not_found(scope, receive, send)
            return
        scope.update(child_scope)
        await self.handle(scope, receive, send)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer 404 (or close a websocket); inside an app, via the 404 exception handlers."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
    elif "app" in scope:
        raise HTTPException(status_code=404)
    else:
        await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)


def request_response(func: Callable[[Request], Awaitable[Response] | Response]) -> ASGIApp:
    """Make an ASGI app of a function of a Request returning a Response (a sync one in a thread)."""
    is_async = _is_async_callable(func)  # decided once, not per request

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        tracked_send = send if isinstance(send, _StartNotingSend) else _StartNotingSend(send)
        try:
            response = await func(request) if is_async else await run_in_threadpool(func, request)  # type: ignore[misc]
            if not callable(response):
                returned = f"Endpoint {get_name(func)!r} returned {type(response).__name__}"
                raise TypeError(f"{returned}, but an endpoint must return a Response")
            await response(scope, receive, tracked_send)
        except Exception as exc:
            await _answer_exception(exc, scope, receive, tracked_send, request)
        finally:
            if request._form is not None:  # the uploaded files of a form it parsed
                await request.close()

    return app


def _wrap(app: ASGIApp, middleware: Sequence[Middleware] | None, body_limit: int | None) -> ASGIApp:
    """`app` inside `middleware` (the first is the outermost), inside a body limit if any."""
    for cls, args, kwargs in reversed(middleware or []):
        app = cls(app, *args, **kwargs)
    return app if body_limit is None else RequestBodyLimitMiddleware(app, body_limit)


def websocket_session(func: Callable[[WebSocket], Awaitable[None]]) -> ASGIApp:
    """Make an ASGI app of an async function that takes a WebSocket."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = WebSocket(scope, receive=receive, send=send)
        try:
            await func(session)
        except WebSocketDisconnect:
            pass  # the client closing is how a websocket ends, not an error for the server to log
        except Exception as exc:
            await _answer_exception(exc, scope, receive, send, session)

    return app


def _is_function(endpoint: Callable[..., Any]) -> bool:
    """Whether an endpoint is a function or method (perhaps in a partial), not an ASGI app."""
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    return inspect.isfunction(endpoint) or inspect.ismethod(endpoint)


def _endpoint_url_path(route: Route | WebSocketRoute, name: str, params: dict[str, Any]) -> URLPath:
    """The URL path of a Route or WebSocketRoute, if `name` and the parameters are its own."""
    if name != route.name or params.keys() != route.param_convertors.keys():
        raise NoMatchFound(name, params)
    path, _ = replace_params(route.path_format, route.param_convertors, params)
    return URLPath(_safe_path(path), "http" if isinstance(route, Route) else "websocket")


def _require_leading_slash(kind: str, path: str) -> None:
    if not path.startswith("/"):
        raise ValueError(f"{kind} path must start with '/': got {path!r}")


class Route(BaseRoute):
    """An HTTP endpoint at a path: a function of a Request returning a Response, or an ASGI app
    (an ``HTTPEndpoint`` class, say). A function answers GET and HEAD unless `methods` says not."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Collection[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        _require_leading_slash("Route", path)
        self.path = path
        self.endpoint = endpoint
        self.name = get_name(endpoint) if name is None else name
        self.include_in_schema = include_in_schema
        if _is_function(endpoint):
            app = request_response(endpoint)
            methods = ["GET"] if methods is None else methods
        else:  # an ASGI app, e.g. an HTTPEndpoint class
            app = endpoint
        self.app = _wrap(app, middleware, max_body_size)
        self.methods: set[str] | None = None
        if methods is not None:
            self.methods = {method.upper() for method in methods}
            if "GET" in self.methods:
                self.methods.add("HEAD")
        self.path_regex, self.path_format, self.param_convertors = compile_path(path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path_params = self._path_params(scope, _route_path(scope))
        if path_params is None:
            return Match.NONE, {}
        child_scope = {"endpoint": self.endpoint, "path_params": path_params}
        if self.methods is not None and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope

    def _path_params(self, scope: Scope, route_path: str) -> dict[str, Any] | None:
        """The path parameters, after those of the Mounts outside, if `route_path` matches."""
        params = _matched_params(self.path_regex, self.param_convertors, route_path)
        return None if params is None else _with_outer_params(scope, params)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        return _endpoint_url_path(self, name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods is not None and scope["method"] not in self.methods:
            # Built here, on the rare 405, from the methods as they are now: a subclass may set
            # `methods` itself, without Route.__init__ (as FastAPI's APIRoute does).
            headers = {"Allow": ", ".join(sorted(self.methods))}
            if "app" in scope:  # let the app's exception handlers render the 405
                raise HTTPException(status_code=405, headers=headers)
            await PlainTextResponse("Method Not Allowed", 405, headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Route)
            and self.path == other.path
            and self.endpoint == other.endpoint
            and self.methods == other.methods
        )

    __hash__ = BaseRoute.__hash__

    def __repr__(self) -> str:
        name, methods = self.__class__.__name__, sorted(self.methods or [])
        return f"{name}(path={self.path!r}, name={self.name!r}, methods={methods!r})"


def _inner_name(outer_name: str | None, name: str) -> str | None:
    """The route name to look for behind a Mount or Host called `outer_name` ("users:detail"
    gives "detail"; any name, behind an unnamed one), or None if `name` is not behind it."""
    if outer_name is None:
        return name
    prefix = outer_name + ":"
    return name.removeprefix(prefix) if name.startswith(prefix) else None


def _url_path_in(routes: Iterable[BaseRoute], name: str, params: dict[str, Any]) -> URLPath | None:
    """The path of route `name` from the first of `routes` that has it, else None."""
    for route in routes:
        try:
            return route.url_path_for(name, **params)
        except NoMatchFound:
            continue
    return None


class WebSocketRoute(BaseRoute):
    """A websocket endpoint at a path: an async function taking a WebSocket, or an ASGI app."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        name: str | None = None,
        middleware: Sequence[Middleware] | None = None,
    ) -> None:
        _require_leading_slash("WebSocketRoute", path)
        self.path = path
        self.endpoint = endpoint
        self.name = get_name(endpoint) if name is None else name
        app = websocket_session(endpoint) if _is_function(endpoint) else endpoint
        self.app = _wrap(app, middleware, None)
        self.path_regex, self.path_format, self.param_convertors = compile_path(path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "websocket":
            return Match.NONE, {}
        params = _matched_params(self.path_regex, self.param_convertors, _route_path(scope))
        if params is None:
            return Match.NONE, {}
        path_params = _with_outer_params(scope, params)
        return Match.FULL, {"endpoint": self.endpoint, "path_params": path_params}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        return _endpoint_url_path(self, name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, WebSocketRoute)
            and self.path == other.path
            and self.endpoint == other.endpoint
        )

    __hash__ = BaseRoute.__hash__

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(path={self.path!r}, name={self.name!r})"


class Mount(BaseRoute):
    """An ASGI app, or a list of routes, under a path prefix. As the ASGI spec asks, the mounted
    app sees the whole ``path`` and a ``root_path`` ending with the prefix."""

    def __init__(
        self,
        path: str,
        app: ASGIApp | None = None,
        routes: Sequence[BaseRoute] | None = None,
        name: str | None = None,
        *,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        if path:
            _require_leading_slash("Mount", path)
        if (app is None) == (routes is None):
            raise ValueError("Mount takes either an app or a list of routes")
        self.path = path.rstrip("/")
        self._base_app: ASGIApp = app if app is not None else Router(routes=routes)
        self.app = _wrap(self._base_app, middleware, max_body_size)
        self.name = name
        self.path_regex, self.path_format, self.param_convertors = compile_path(
            self.path + "/{path:path}"
        )

    @property
    def routes(self) -> list[BaseRoute]:
        """The routes of the mounted router (empty for a mounted app that has none)."""
        # A subclass that sets `app` itself, without Mount.__init__, has no `_base_app`.
        return getattr(getattr(self, "_base_app", self.app), "routes", [])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        route_path = _route_path(scope)
        params = _matched_params(self.path_regex, self.param_convertors, route_path)
        if params is None:
            return Match.NONE, {}
        # The prefix matched: the route path without the remainder and the "/" before it.
        matched_path = route_path[: len(route_path) - len(params.pop("path")) - 1]
        root_path = scope.get("root_path", "")
        return Match.FULL, {
            "path_params": _with_outer_params(scope, params),
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + matched_path,
            "endpoint": self.app,
        }

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        if self.name is not None and name == self.name and "path" in path_params:
            # The mount itself: "path" is the path inside it.
            path_params["path"] = path_params["path"].lstrip("/")
            path, unused = replace_params(self.path_format, self.param_convertors, {**path_params})
            if not unused:
                return URLPath(_safe_path(path))
        elif (inner_name := _inner_name(self.name, name)) is not None:
            # The prefix alone: "path" is the path for the routes inside.
            params = {**path_params, "path": ""}
            prefix, inner_params = replace_params(self.path_format, self.param_convertors, params)
            if (inner_path := path_params.pop("path", None)) is not None:
                inner_params["path"] = inner_path
            url = _url_path_in(self.routes, inner_name, inner_params)
            if url is not None:  # a parameter of the prefix not given stays a placeholder
                path = prefix.rstrip("/") + str(url)
                return URLPath(_safe_path(path), protocol=url.protocol, host=url.host)
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mount) and self.path == other.path and self.app == other.app

    __hash__ = BaseRoute.__hash__

    def __repr__(self) -> str:
        name = self.__class__.__name__
        return f"{name}(path={self.path!r}, name={self.name or ''!r}, app={self.app!r})"


class Host(BaseRoute):
    """An ASGI app for a host (``{subdomain}.example.org``), matched whatever the case or port."""

    def __init__(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        if host.startswith("/"):
            raise ValueError(f"Host must be a host name, not a path: got {host!r}")
        self.host = host
        self.app = app
        self.name = name
        self.host_regex, self.host_format, self.param_convertors = compile_path(host)

    @property
    def routes(self) -> list[BaseRoute]:
        """The routes of the app behind this host (empty if it has none)."""
        return getattr(self.app, "routes", [])

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket") or (host := _request_host(scope)) is None:
            return Match.NONE, {}
        params = _matched_params(self.host_regex, self.param_convertors, host)
        if params is None:
            return Match.NONE, {}
        return Match.FULL, {"path_params": _with_outer_params(scope, params), "endpoint": self.app}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        if self.name is not None and name == self.name and "path" in path_params:
            path = path_params.pop("path")
            host, unused = replace_params(self.host_format, self.param_convertors, {**path_params})
            if not unused:
                return URLPath(path=path, host=host)
        elif (inner_name := _inner_name(self.name, name)) is not None:
            # The parameters the host pattern does not use are for the routes behind it.
            host, params = replace_params(self.host_format, self.param_convertors, {**path_params})
            url = _url_path_in(self.routes, inner_name, params)
            if url is not None:
                return URLPath(path=str(url), protocol=url.protocol, host=host)
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Host) and self.host == other.host and self.app == other.app

    __hash__ = BaseRoute.__hash__

    def __repr__(self) -> str:
        name = self.__class__.__name__
        return f"{name}(host={self.host!r}, name={self.name or ''!r}, app={self.app!r})"


# How the router finds a route
#
# Starlette's router tries its routes in the order they were declared and takes the first that
# matches fully; a route that matches the path but not the method is remembered, and used only if
# no route matches fully (the 405). The answer depends on that order, so the index never picks a
# route itself: it only leaves out the routes that cannot match the path. What it gives the router
# is the candidates, the routes that could match, still in declaration order. The router tries
# them exactly as it would try every route, and since every route that can match is among them,
# it finds what a linear scan finds: the same route, the same 405, the same slash redirect.
#
# The index (_RouteIndex) is a trie over the path's "/"-separated segments, one _IndexNode a
# segment. A route's path format goes in segment by segment: a literal segment takes an edge of
# its own, a segment holding a parameter whose values never hold a "/" takes the node's one
# wildcard edge, and a parameter that may span segments (a `path` convertor, a registered
# convertor, a Mount's remainder) stops the route at that node, as matching whatever lies below.
# A route the trie cannot describe (a Host, a subclass with a `matches` of its own, a regex that
# is not the one its format compiles to) is a candidate for every path.
#
# Looking a path up walks it down the trie. While each segment has only one edge to take, the
# answer is a list the node it stops at already holds, worked out when the index was built: the
# routes the trie cannot describe and those met on the way that match anything below, with those
# whose path ends at that node if the path ends there. Only where a segment could follow both a
# literal edge and the wildcard does the walk take every branch and sort what it gathers back into
# declaration order. A request for the path of a route without parameters, the most common kind,
# skips the walk: the index keeps the candidates of each such path in a dict.
#
# On top of that, the router matches plain routes itself (Routes whose matching and handling are
# Route's own): one regex, then it sets the scope and calls the endpoint's app, without a Match
# or a child scope to merge. And when a static path's first candidate is a plain route for that
# very path, the router takes it from the index's `route_at` without matching anything, if its
# methods allow the request; if they do not, it goes on to the candidates as usual, which finds
# what a scan would (a later route for that method, or the 405).
#
# Changing a router's `routes` in place (append, insert, del, ...) counts a change on the list
# (_RouteList); the router rebuilds the index before the next request it routes. Assigning a new
# list rebuilds it at once.

# The regexes of the built-in convertors whose values never hold a "/": to the route index, a
# parameter with one of them is one segment. Any other (a registered convertor's) may span several.
_ONE_SEGMENT_REGEXES = frozenset(
    (StringConvertor.regex, IntegerConvertor.regex, FloatConvertor.regex, UUIDConvertor.regex)
)


class _IndexNode:
    """A node of the route index: one path segment deep."""

    __slots__ = (
        "candidates_if_path_ends",
        "candidates_if_path_goes_on",
        "literal",
        "routes_ending_here",
        "routes_taking_the_rest",
        "wildcard",
    )

    def __init__(self) -> None:
        self.literal: dict[str, _IndexNode] = {}  # children by literal segment
        self.wildcard: _IndexNode | None = None  # the child for segments holding a parameter
        # The positions of the routes whose path ends at this node, and of those that take
        # anything below it (a parameter that may span segments, a Mount's remainder).
        self.routes_ending_here: list[int] = []
        self.routes_taking_the_rest: list[int] = []
        # Once the trie is built: the candidates of a path that reaches this node along the only
        # edges it could take, and ends here, or goes on where no edge leads.
        self.candidates_if_path_ends: list[BaseRoute] = []
        self.candidates_if_path_goes_on: list[BaseRoute] = []


def _is_plain_route(route: BaseRoute) -> TypeGuard[Route]:
    """Whether `route` is a Route matched and handled as Route does, so the router may do both."""
    cls = type(route)
    return isinstance(route, Route) and cls.matches is Route.matches and cls.handle is Route.handle


class _RouteIndex:
    """The routes that could match a path, in declaration order: a trie over path segments."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = list(routes)
        self._root = _IndexNode()
        templates = [self._template(route) for route in self._routes]
        self._always = [position for position, template in enumerate(templates) if template is None]
        for position, template in enumerate(templates):
            if template is not None:
                self._insert(position, *template)
        self._settle(self._root, self._always)
        # The candidates of each path without parameters, found once: a request for a static
        # path (the most common kind) is then one dict lookup.
        paths = [template[0] for template in templates if template is not None]
        self._static = {path: self._walk(path) for path in paths if "{" not in path}
        # The plain routes (by id: a Route's == compares paths, not identity), which the router
        # matches itself; and a static path's first candidate, if it is a plain route whose
        # regex is that of this very path, without parameters: the route of nearly every request
        # there, found without matching anything.
        self.plain_routes = {id(route): route for route in self._routes if _is_plain_route(route)}
        self.route_at: dict[str, Route] = {}
        for route, template in zip(self._routes, templates, strict=True):
            candidates = self._static.get(template[0]) if template is not None else None
            if candidates and candidates[0] is route and _is_plain_route(route):
                self.route_at[route.path_format] = route

    @staticmethod
    def _template(route: BaseRoute) -> tuple[str, dict[str, Convertor[Any]]] | None:
        """The path format and convertors of `route`, if it is one of ours matching by path alone
        with the regex its format compiles to (a subclass may set one of its own, or none)."""
        if type(route).matches not in (Route.matches, WebSocketRoute.matches, Mount.matches):
            return None
        path_format = getattr(route, "path_format", None)
        regex = getattr(route, "path_regex", None)
        convertors = getattr(route, "param_convertors", None)
        # Compiled without flags, a str pattern has re.UNICODE alone.
        if not isinstance(regex, re.Pattern) or regex.flags != re.UNICODE:
            return None
        if not (isinstance(path_format, str) and isinstance(convertors, dict)):
            return None
        try:
            expected = _format_regex(path_format, convertors)
        except KeyError:  # a parameter of the format has no convertor
            return None
        return (path_format, convertors) if regex.pattern == expected else None

    def _insert(self, position: int, template: str, convertors: dict[str, Convertor[Any]]) -> None:
        node = self._root
        for segment in template.split("/")[1:]:
            parameters = list(_PATH_PARAMETER.finditer(segment))
            if not parameters:
                node = node.literal.setdefault(segment, _IndexNode())
                continue
            # The route's own convertors, as it compiled them: not the registry, which may differ.
            if any(convertors[match[1]].regex not in _ONE_SEGMENT_REGEXES for match in parameters):
                node.routes_taking_the_rest.append(position)  # this parameter may span segments
                return
            if node.wildcard is None:
                node.wildcard = _IndexNode()
            node = node.wildcard
        node.routes_ending_here.append(position)

    def _settle(self, node: _IndexNode, inherited: list[int]) -> None:
        """Work out the candidates of a path that ends at `node`, or goes on where no edge leads,
        when the walk took no branch: those of every node on the way, with its own."""
        going_on = sorted(inherited + node.routes_taking_the_rest)
        ending = sorted(going_on + node.routes_ending_here)
        node.candidates_if_path_goes_on = [self._routes[position] for position in going_on]
        node.candidates_if_path_ends = [self._routes[position] for position in ending]
        for child in [*node.literal.values(), node.wildcard]:
            if child is not None:
                self._settle(child, going_on)

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that may match `path`, in declaration order (a list not to be changed)."""
        # A static path's candidates are never empty: its own route is among them.
        return self._static.get(path) or self._walk(path)

    def _walk(self, path: str) -> list[BaseRoute]:
        """Follow `path` down the trie, while each segment has only one edge to take."""
        node = self._root
        for segment in path.split("/")[1:]:
            literal = node.literal.get(segment)
            if literal is None:
                if node.wildcard is None:
                    return node.candidates_if_path_goes_on
                node = node.wildcard
            elif node.wildcard is None:
                node = literal
            else:  # a literal and a parameter could both lead to a match
                return self._walk_branches(path)
        return node.candidates_if_path_ends

    def _walk_branches(self, path: str) -> list[BaseRoute]:
        """Follow `path` down every edge it could take, gathering the candidates on the way."""
        found = self._always.copy()
        nodes = [self._root]
        for segment in path.split("/")[1:]:
            next_nodes = []
            for node in nodes:
                found += node.routes_taking_the_rest
                if (child := node.literal.get(segment)) is not None:
                    next_nodes.append(child)
                if node.wildcard is not None:
                    next_nodes.append(node.wildcard)
            nodes = next_nodes
            if not nodes:
                break
        for node in nodes:
            found += node.routes_ending_here + node.routes_taking_the_rest
        if len(found) > 1:  # from several branches of the trie: in declaration order, once each
            found = sorted(set(found))
        return [self._routes[position] for position in found]


def _counting_changes(list_method: Callable[..., Any]) -> Callable[..., Any]:
    """`list_method` for a _RouteList: it counts a change once the list has made it."""

    def method(self: _RouteList, *args: Any, **kwargs: Any) -> Any:
        result = list_method(self, *args, **kwargs)
        self.version += 1
        return result

    return method


class _RouteList(list[BaseRoute]):
    """A router's routes: a list that counts its changes, so the router re-indexes after one."""

    version = 0
    # Every method of list that changes it in place (its += does not go through extend()).
    __setitem__ = _counting_changes(list.__setitem__)
    __delitem__ = _counting_changes(list.__delitem__)
    __iadd__ = _counting_changes(list.__iadd__)
    append = _counting_changes(list.append)
    extend = _counting_changes(list.extend)
    insert = _counting_changes(list.insert)
    pop = _counting_changes(list.pop)
    remove = _counting_changes(list.remove)
    clear = _counting_changes(list.clear)
    sort = _counting_changes(list.sort)
    reverse = _counting_changes(list.reverse)


class Router:
    """Routes a request to the first route that matches, in the order declared, or else to the
    first that matches its path only (405). With `redirect_slashes`, a path that matches only with
    (or without) a trailing slash is redirected there, on the same host; else `default` answers."""

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        redirect_slashes: bool = True,
        default: ASGIApp | None = None,
        lifespan: Lifespan[Any] | None = None,
        *,
        middleware: Sequence[Middleware] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        self.routes = [] if routes is None else list(routes)
        self.redirect_slashes = redirect_slashes
        self.default: ASGIApp = self.not_found if default is None else default
        self.lifespan_context: Lifespan[Any] = _lifespan_context(lifespan)
        self.middleware_stack = _wrap(self.app, middleware, max_body_size)

    @property
    def routes(self) -> list[BaseRoute]:
        """The routes, in the order they are tried; change them freely, the index follows."""
        return self._routes

    @routes.setter
    def routes(self, routes: Iterable[BaseRoute]) -> None:
        self._routes = _RouteList(routes)
        self._index = _RouteIndex(self._routes)
        self._indexed_version = self._routes.version

    def _current_index(self) -> _RouteIndex:
        if self._routes.version != self._indexed_version:  # routes were added or replaced
            self._index = _RouteIndex(self._routes)
            self._indexed_version = self._routes.version
        return self._index

    def _candidates(self, path: str) -> list[BaseRoute]:
        return self._current_index().candidates(path)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path of the route called `name` (``"mount:route"`` inside a named Mount)."""
        url = _url_path_in(self.routes, name, path_params)
        if url is None:
            raise NoMatchFound(name, path_params)
        return url

    # Starlette's hook for a request no route matched, and the default `default`: a subclass may
    # define `async def not_found(self, scope, receive, send)` for a page of its own. Static, so
    # that the default adds no call layer to every 404.
    not_found = staticmethod(_not_found)

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the lifespan context across ASGI's ``lifespan.startup`` and ``shutdown``."""
        started = False
        await receive()  # lifespan.startup
        try:
            async with self.lifespan_context(scope.get("app")) as state:
                if state is not None:
                    if "state" not in scope:
                        message = 'The server does not support "state" in the lifespan scope.'
                        raise RuntimeError(message)
                    scope["state"].update(state)
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except BaseException:
            phase = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{phase}.failed", "message": traceback.format_exc()})
            raise
        await send({"type": "lifespan.shutdown.complete"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.middleware_stack(scope, receive, send)

    def app(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Route a request: the router's own app, inside its middleware. A plain method that returns
        what it chose to run, not a coroutine of its own: a layer of call frames fewer, on every
        request."""
        scope.setdefault("router", self)
        if scope["type"] == "lifespan":
            return self.lifespan(scope, receive, send)
        route_path = _route_path(scope)
        index = self._current_index()
        is_http = scope["type"] == "http"
        if is_http:
            plain = index.route_at.get(route_path)
            if plain is not None and (plain.methods is None or scope["method"] in plain.methods):
                return self._enter_plain(plain, _with_outer_params(scope, {}), scope, receive, send)
        # The first route that matches fully, else the first that matches the path only (a 405).
        chosen: tuple[BaseRoute, Scope] | None = None
        for route in index.candidates(route_path):
            plain = index.plain_routes.get(id(route)) if is_http else None
            if plain is not None:
                path_params = plain._path_params(scope, route_path)
                if path_params is None:
                    continue
                if plain.methods is None or scope["method"] in plain.methods:
                    return self._enter_plain(plain, path_params, scope, receive, send)
                match = Match.PARTIAL
                child_scope: Scope = {"endpoint": plain.endpoint, "path_params": path_params}
            else:
                match, child_scope = route.matches(scope)
            if match is Match.FULL:
                chosen = route, child_scope
                break
            if match is Match.PARTIAL and chosen is None:
                chosen = route, child_scope
        if chosen is not None:
            route, child_scope = chosen
            scope["route"] = route
            scope.update(child_scope)
            return route.handle(scope, receive, send)
        return self._unmatched(route_path, scope, receive, send)

    async def _unmatched(self, route_path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Redirect to the path with the trailing slash toggled if a route takes that, else answer
        with the default."""
        redirectable = scope["type"] == "http" and self.redirect_slashes and route_path != "/"
        if redirectable and await self._redirect_slash(route_path, scope, receive, send):
            return
        await self.default(scope, receive, send)

    @staticmethod
    def _enter_plain(
        route: Route, path_params: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> Awaitable[None]:
        """What Route.matches and Route.handle do on a full match, without the Match and the
        child scope to merge, or the frame of handle (measured with benchmarks/compare.py)."""
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = path_params
        return route.app(scope, receive, send)

    async def _redirect_slash(
        self, route_path: str, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """Redirect to the path with the trailing slash toggled, if some route takes that."""
        path = scope["path"]
        toggled = path.rstrip("/") if route_path.endswith("/") else path + "/"
        redirect_scope = {**scope, "path": toggled}
        for route in self._candidates(_route_path(redirect_scope)):
            match, _ = route.matches(redirect_scope)
            if match is not Match.NONE:
                # URL(scope=...) keeps the URL on this host: a path like "//evil.com" becomes
                # "http://host//evil.com", or "/%2Fevil.com" without a host, never "//evil.com".
                await RedirectResponse(str(URL(scope=redirect_scope)))(scope, receive, send)
                return True
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Router) and self.routes == other.routes

    __hash__ = object.__hash__

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        self.routes.append(Mount(path, app=app, name=name))

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        self.routes.append(Host(host, app=app, name=name))

    def add_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        methods: Collection[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        self.routes.append(
            Route(path, endpoint, methods=methods, name=name, include_in_schema=include_in_schema)
        )

    def add_websocket_route(
        self, path: str, endpoint: Callable[[WebSocket], Awaitable[None]], name: str | None = None
    ) -> None:
        self.routes.append(WebSocketRoute(path, endpoint, name=name))


@contextlib.asynccontextmanager
async def _no_lifespan(app: Any) -> AsyncIterator[None]:
    yield


def _lifespan_context(lifespan: Lifespan[Any] | None) -> Lifespan[Any]:
    """The lifespan as an async context manager factory; a generator function too (deprecated)."""
    # The warnings come from this module, as Starlette's come from its routing module: a
    # filter names the module.
    if lifespan is None:
        return _no_lifespan
    context: Lifespan[Any]
    if inspect.isasyncgenfunction(lifespan):
        kind, context = "async generator", contextlib.asynccontextmanager(lifespan)
    elif inspect.isgeneratorfunction(lifespan):
        kind, context = "generator", _in_async_context(contextlib.contextmanager(lifespan))
    else:
        return lifespan
    advice = "use an @contextlib.asynccontextmanager function instead"
    message = f"{kind} function lifespans are deprecated, {advice}"
    warnings.warn(message, StarletteDeprecationWarning, stacklevel=1)
    return context


def _in_async_context(
    lifespan: Callable[[Any], contextlib.AbstractContextManager[Any]],
) -> Lifespan[Any]:
    """A sync lifespan context as an async one. Its code runs on the event loop, as in Starlette."""

    @contextlib.asynccontextmanager
    async def async_lifespan(app: Any) -> AsyncIterator[Any]:
        with lifespan(app) as state:
            yield state

    return async_lifespan


# ==== Endpoints ====
# Class-based endpoints: HTTPEndpoint with one method per HTTP verb, WebSocketEndpoint with one
# per websocket event.

# RFC 9110 §9 and the QUERY method draft: the verbs HTTPEndpoint dispatches, and nothing else, so
# a request method can never name an arbitrary attribute of the endpoint.
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY")


class _Endpoint:
    """What both endpoint classes are: an ASGI app made per connection of one scope type, which
    runs when awaited."""

    _scope_type: ClassVar[str]

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != self._scope_type:
            name, wanted, got = type(self).__name__, self._scope_type, scope["type"]
            raise ValueError(f"{name} needs a scope of type {wanted!r}, got {got!r}")
        self.scope = scope
        self.receive = receive
        self.send = send

    def __await__(self) -> Generator[Any, None, None]:
        return self.dispatch().__await__()

    async def dispatch(self) -> None:
        raise NotImplementedError()


class HTTPEndpoint(_Endpoint):
    """A class whose ``get``, ``post``, ... methods answer those HTTP methods (sync ones in the
    threadpool); HEAD uses ``get`` unless ``head`` is defined, and other methods get 405."""

    _scope_type = "http"
    _allowed_methods: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defined = {method for method in _HTTP_METHODS if hasattr(cls, method.lower())}
        if "GET" in defined:
            defined.add("HEAD")
        cls._allowed_methods = tuple(method for method in _HTTP_METHODS if method in defined)

    async def dispatch(self) -> None:
        """Call the method named after the request's method, and send what it returns."""
        request = Request(self.scope, receive=self.receive, send=self.send)
        method = request.method
        if method == "HEAD" and not hasattr(self, "head"):
            method = "GET"
        allowed = method in self._allowed_methods
        handler = getattr(self, method.lower()) if allowed else self.method_not_allowed
        try:
            response = await _call_maybe_async(handler, request)
            await response(self.scope, self.receive, self.send)
        finally:
            await request.close()

    async def method_not_allowed(self, request: Request) -> Response:
        """405, with the methods this endpoint does answer."""
        headers = {"Allow": ", ".join(self._allowed_methods)}
        if "app" in self.scope:  # let the app's exception handlers render it
            raise HTTPException(status_code=405, headers=headers)
        return PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)


async def _refuse_frame(websocket: WebSocket, reason: str) -> NoReturn:
    """Close with 1003 (unsupported data) on a frame the endpoint cannot decode, and raise: the
    frame is the client's mistake, but the endpoint that expected another kind learns of it."""
    await websocket.close(1003)
    raise RuntimeError(reason)


class WebSocketEndpoint(_Endpoint):
    """A class answering a websocket's events (``on_connect``, ``on_receive``, ``on_disconnect``),
    each frame decoded as `encoding` says; a `WebSocketException` from one closes with its code."""

    _scope_type = "websocket"
    encoding: Literal["text", "bytes", "json"] | None = None

    async def dispatch(self) -> None:
        """Run the connection: connect, then a receive for each frame, then disconnect."""
        websocket = WebSocket(self.scope, receive=self.receive, send=self.send)
        await self.on_connect(websocket)
        close_code = 1000
        try:
            # Not entered when on_connect refused the connection. Left once the app closed the
            # socket: a frame the client sent before it saw the close is not for the app.
            while (
                websocket.client_state is WebSocketState.CONNECTED
                and websocket.application_state is WebSocketState.CONNECTED
            ):
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    close_code = int(message.get("code") or 1000)
                    break
                await self.on_receive(websocket, await self.decode(websocket, message))
            else:
                close_code = websocket._close_code
        except WebSocketException as exc:
            close_code = exc.code
            await websocket.close(exc.code, exc.reason)
        except WebSocketDisconnect as exc:  # a handler received after the client closed
            close_code = exc.code
        except Exception:
            close_code = 1011
            raise
        finally:
            await self.on_disconnect(websocket, close_code)

    async def decode(self, websocket: WebSocket, message: Message) -> Any:
        """A frame's payload as `encoding` wants it; one of the wrong kind refuses the frame."""
        text, data = message.get("text"), message.get("bytes")
        if self.encoding == "text":
            if text is None:
                await _refuse_frame(websocket, "Expected text websocket messages, but got bytes")
            return text
        if self.encoding == "bytes":
            if data is None:
                await _refuse_frame(websocket, "Expected bytes websocket messages, but got text")
            return data
        if self.encoding == "json":
            try:
                return _parse_json(text if text is not None else data or b"", _InvalidJSONFrame)
            except ValueError:
                await _refuse_frame(websocket, "Malformed JSON data received.")
        if text is None and data is None:
            await _refuse_frame(websocket, "Expected a websocket message with text or bytes")
        return text if text is not None else data

    async def on_connect(self, websocket: WebSocket) -> None:
        """Called first: accepts the connection. Override to check it, or pick a subprotocol."""
        await websocket.accept()

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        """Called with each decoded frame."""

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        """Called last, with the close code (1011 if a handler raised)."""


# ==== Middleware ====
# Middleware wraps an ASGI app in another, all of it pure ASGI. `Middleware` declares one for the
# app to build at start-up. The sections below are the suite an app adds: trusted hosts, HTTPS,
# CORS, GZip, sessions, authentication, CSRF, and BaseHTTPMiddleware. The error handling and the
# body limit come earlier, before Routing, which uses them.


class _MiddlewareFactory(Protocol[P]):
    def __call__(self, app: ASGIApp, /, *args: P.args, **kwargs: P.kwargs) -> ASGIApp: ...


class Middleware:
    """A middleware class with the arguments to build it with, once the app builds its stack."""

    def __init__(self, cls: _MiddlewareFactory[P], *args: P.args, **kwargs: P.kwargs) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = kwargs

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cls, self.args, self.kwargs))

    def __repr__(self) -> str:
        arguments = [getattr(self.cls, "__name__", repr(self.cls))]
        arguments += [repr(value) for value in self.args]
        arguments += [f"{key}={value!r}" for key, value in self.kwargs.items()]
        return f"{self.__class__.__name__}({', '.join(arguments)})"


# ==== Hosts and HTTPS ====
# TrustedHostMiddleware refuses a Host that is not on its list; HTTPSRedirectMiddleware sends
# http and ws to https and wss. Both refuse through _refuse, which CSRF uses too.


class TrustedHostMiddleware:
    """Refuses (400) a Host header not in `allowed_hosts`, case and port ignored; ``*.example.com``
    allows only its subdomains. With `www_redirect`, ``example.com`` goes to an allowed ``www.``."""

    def __init__(
        self, app: ASGIApp, allowed_hosts: Sequence[str] | None = None, www_redirect: bool = True
    ) -> None:
        patterns = ["*"] if allowed_hosts is None else [host.lower() for host in allowed_hosts]
        for pattern in patterns:
            if pattern != "*" and "*" in pattern.removeprefix("*."):
                message = f"Host pattern {pattern!r}: a wildcard can only be '*' or start '*.'"
                raise ValueError(message)
        self.app = app
        self.allowed_hosts = patterns
        self.allow_any = "*" in patterns
        self.www_redirect = www_redirect
        self._exact = frozenset(pattern for pattern in patterns if not pattern.startswith("*"))
        self._suffixes = tuple(pattern[1:] for pattern in patterns if pattern.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _request_host(scope)  # None if missing or malformed: refused
        if host is not None and (host in self._exact or host.endswith(self._suffixes)):
            await self.app(scope, receive, send)
        elif host is not None and self.www_redirect and f"www.{host}" in self._exact:
            url = URL(scope=scope)
            redirect = RedirectResponse(url.replace(netloc=f"www.{url.netloc}"))
            await _refuse(scope, receive, send, redirect)
        else:
            await _refuse(scope, receive, send, PlainTextResponse("Invalid host header", 400))


async def _refuse(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
    """Answer with `response`, or, to a websocket whose server offers no denial response, close
    with 1008 (policy violation)."""
    extensions = scope.get("extensions", {})
    if scope["type"] == "websocket" and "websocket.http.response" not in extensions:
        await send({"type": "websocket.close", "code": 1008, "reason": ""})
        return
    await response(scope, receive, send)


class HTTPSRedirectMiddleware:
    """Redirects ``http`` to ``https`` and ``ws`` to ``wss`` (307), on the same host and path,
    dropping a default port; a request without a valid Host gets 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("scheme") not in ("http", "ws"):
            await self.app(scope, receive, send)
            return
        if not _valid_host_header(_header_value(scope, b"host") or ""):
            # No host of ours to redirect to (and never one the client made up)
            await _refuse(scope, receive, send, PlainTextResponse("Invalid host header", 400))
            return
        url = URL(scope=scope)
        netloc = _host_without_port(url.netloc) if url.port in (80, 443) else url.netloc
        secure = url.replace(scheme={"http": "https", "ws": "wss"}[url.scheme], netloc=netloc)
        await _refuse(scope, receive, send, RedirectResponse(secure, status_code=307))


# ==== CORS ====
# CORSMiddleware: cross-origin requests as the Fetch standard defines them, preflights answered
# here and other requests given their Access-Control-* headers on the way out.

# Methods and request headers CORS allows whatever the configuration (Fetch standard §2.2.2:
# "CORS-safelisted request-header").
_CORS_ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
_CORS_SAFELISTED_HEADERS = ("Accept", "Accept-Language", "Content-Language", "Content-Type")


# Headers as ASGI carries them: (name, value) pairs, names in lower case.
_RawHeaders: TypeAlias = list[tuple[bytes, bytes]]


class _CORSAddedHeaders:
    """The headers CORSMiddleware adds to a response that has none of them yet, encoded once:
    what MutableHeaders would append, in the same order, for an origin allowed or not."""

    def __init__(self, middleware: CORSMiddleware) -> None:
        simple_headers = dict(middleware.simple_headers)
        self.explicit_origin = middleware.preflight_explicit_allow_origin
        self.built_from = (simple_headers, self.explicit_origin)
        self.not_allowed = [(b"vary", b"Origin")]
        headers = MutableHeaders(raw=list(self.not_allowed))
        headers.update(simple_headers)
        headers["Access-Control-Allow-Origin"] = "*"  # or the origin itself: see for_origin
        self.allowed = headers.raw
        self.names = frozenset(name for name, _ in self.allowed)
        self.origin_at = headers.keys().index("access-control-allow-origin")
        # Encoding and checking an origin took most of the time CORS adds to a response: done
        # here for the listed ones; per request only for one let in by the regex or by "*".
        self.for_listed_origin: dict[str, _RawHeaders] = {}
        if self.explicit_origin:
            for origin in middleware._allowed_origins:
                with contextlib.suppress(ValueError):  # not a header value: fails per request
                    self.for_listed_origin[origin] = self._with_origin(origin)

    def for_origin(self, allowed_origin: str | None) -> _RawHeaders:
        """The headers for a request from `allowed_origin` (None: no origin, or not allowed)."""
        if allowed_origin is None:
            return self.not_allowed
        if not self.explicit_origin:
            return self.allowed
        listed = self.for_listed_origin.get(allowed_origin)
        return self._with_origin(allowed_origin) if listed is None else listed

    def _with_origin(self, origin: str) -> _RawHeaders:
        with_origin = list(self.allowed)
        with_origin[self.origin_at] = _encode_header("access-control-allow-origin", origin)
        return with_origin


class CORSMiddleware:
    """Cross-Origin Resource Sharing, per the Fetch standard: preflights answered here, other
    responses given their headers. `allow_origin_regex` must match the whole origin; the ``null``
    origin is allowed only if listed by name."""

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Collection[str] = (),
        allow_methods: Collection[str] = ("GET",),
        allow_headers: Collection[str] = (),
        allow_credentials: bool = False,
        allow_origin_regex: str | None = None,
        allow_private_network: bool = False,
        expose_headers: Collection[str] = (),
        max_age: int = 600,
    ) -> None:
        # The options as given (other libraries read them), "*" for every method spelled out.
        self.app = app
        self.allow_origins = allow_origins
        self.allow_methods = _CORS_ALL_METHODS if "*" in allow_methods else allow_methods
        self.allow_all_origins = "*" in allow_origins
        self.allow_all_headers = "*" in allow_headers
        self.allow_credentials = allow_credentials
        regex = allow_origin_regex
        self.allow_origin_regex = None if regex is None else re.compile(regex)
        self.allow_private_network = allow_private_network
        # "*" answers only where no credentials are allowed: a credentialed request is never
        # answered "*" (Fetch standard, "CORS protocol and credentials"), but the origin itself.
        self.preflight_explicit_allow_origin = not self.allow_all_origins or allow_credentials
        # The request headers a preflight may allow: the safelisted ones and `allow_headers`,
        # once each whatever their case, sorted, spelled as first given.
        header_names: dict[str, str] = {}
        for name in (*_CORS_SAFELISTED_HEADERS, *allow_headers):
            header_names.setdefault(name.lower(), name)
        self.allow_headers = sorted(header_names)
        self._allowed_origins = frozenset(allow_origins)  # looked up on every request
        # The headers of a response to an allowed origin that depend on nothing else.
        self.simple_headers = {}
        if self.allow_all_origins:
            self.simple_headers["Access-Control-Allow-Origin"] = "*"  # or the origin: _cors_headers
        if allow_credentials:
            self.simple_headers["Access-Control-Allow-Credentials"] = "true"
        if expose_headers:
            self.simple_headers["Access-Control-Expose-Headers"] = ", ".join(expose_headers)
        # The headers of every preflight response, whatever it asks.
        self.preflight_headers = {
            "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
            "Access-Control-Request-Private-Network"
        }
        if not self.preflight_explicit_allow_origin:
            self.preflight_headers["Access-Control-Allow-Origin"] = "*"
        self.preflight_headers["Access-Control-Allow-Methods"] = ", ".join(self.allow_methods)
        self.preflight_headers["Access-Control-Max-Age"] = str(max_age)
        if not self.allow_all_headers:
            allowed = ", ".join(header_names[name] for name in self.allow_headers)
            self.preflight_headers["Access-Control-Allow-Headers"] = allowed
        if allow_credentials:
            self.preflight_headers["Access-Control-Allow-Credentials"] = "true"
        self._added: _CORSAddedHeaders | None = None  # see _added_headers

    def is_allowed_origin(self, origin: str) -> bool:
        """Whether requests from `origin` may read responses."""
        if origin == "null":  # no wildcard or pattern may let in the opaque origin by accident
            return "null" in self._allowed_origins
        if self.allow_all_origins or origin in self._allowed_origins:
            return True
        regex = self.allow_origin_regex
        return regex is not None and regex.fullmatch(origin) is not None

    def _allow_origin_value(self, origin: str) -> str:
        return origin if self.preflight_explicit_allow_origin else "*"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header_value(scope, b"origin")
        if scope["method"] == "OPTIONS" and origin is not None:
            request_headers = Headers(scope=scope)
            if "access-control-request-method" in request_headers:
                await self.preflight_response(request_headers)(scope, receive, send)
                return

        # A plain function returning send's awaitable, not a coroutine of its own: it passes
        # every message of the response, and a coroutine layer would run for each (measured
        # with benchmarks/compare.py). For the same reason Starlette's per-message hooks,
        # `simple_response` and `send`, are not carried (README, Differences).
        def send_with_cors_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self._cors_headers(message, origin)}
            return send(message)

        await self.app(scope, receive, send_with_cors_headers)

    def _cors_headers(self, start: Message, origin: str | None) -> _RawHeaders:
        """The response's headers plus CORS's (a copy: the app's own list is left alone)."""
        headers = list(start.get("headers", ()))
        allowed_origin = origin if origin is not None and self.is_allowed_origin(origin) else None
        added = self._added_headers()
        for name, _ in headers:
            if name in added.names:
                return self._merged_cors_headers(headers, allowed_origin)
        return headers + added.for_origin(allowed_origin)

    def _merged_cors_headers(self, headers: _RawHeaders, allowed_origin: str | None) -> _RawHeaders:
        """`headers` with CORS's merged in, for a response that has some of them already."""
        merged = MutableHeaders(raw=headers)
        merged.add_vary_header("Origin")
        if allowed_origin is not None:
            merged.update(self.simple_headers)
            merged["Access-Control-Allow-Origin"] = self._allow_origin_value(allowed_origin)
        return merged.raw

    def _added_headers(self) -> _CORSAddedHeaders:
        """The headers `_cors_headers` adds, encoded on the first request (a subclass may still
        change `simple_headers` in its ``__init__``, as in Starlette), and again if they change."""
        configuration = (self.simple_headers, self.preflight_explicit_allow_origin)
        if self._added is None or self._added.built_from != configuration:
            self._added = _CORSAddedHeaders(self)
        return self._added

    def preflight_response(self, request_headers: Headers) -> Response:
        """The answer to a preflight: 200, or 400 naming what is not allowed."""
        origin = request_headers["origin"]
        requested_method = request_headers["access-control-request-method"]
        headers = dict(self.preflight_headers)
        failures = []
        if self.is_allowed_origin(origin):
            headers["Access-Control-Allow-Origin"] = self._allow_origin_value(origin)
        else:
            headers.pop("Access-Control-Allow-Origin", None)  # "*" is not for the null origin
            failures.append("origin")
        if requested_method not in self.allow_methods:
            failures.append("method")
        requested_headers = request_headers.get("access-control-request-headers")
        if requested_headers is not None:
            requested = {h.strip().lower() for h in requested_headers.split(",")} - {""}
            if self.allow_all_headers:
                headers["Access-Control-Allow-Headers"] = requested_headers
            elif not requested <= set(self.allow_headers):
                failures.append("headers")
        if "access-control-request-private-network" in request_headers:
            if self.allow_private_network:
                headers["Access-Control-Allow-Private-Network"] = "true"
            else:
                failures.append("private-network")
        if failures:
            return PlainTextResponse("Disallowed CORS " + ", ".join(failures), 400, headers)
        return PlainTextResponse("OK", status_code=200, headers=headers)


# ==== GZip ====
# GZipMiddleware compresses a response for a client that accepts gzip, when its type is worth
# it; GZipResponder does the same for an app that has already chosen gzip.

# Types that are compressed already, or must reach the client unbuffered (server-sent events,
# gRPC): GZipMiddleware passes them through as they are.
DEFAULT_EXCLUDED_CONTENT_TYPES = (
    *("application/grpc", "application/gzip", "application/x-gzip", "application/zip"),
    *("audio/*", "font/woff", "font/woff2", "image/avif", "image/gif", "image/jpeg"),
    *("image/png", "image/webp", "text/event-stream", "video/*"),
)
# gzip's framing in zlib: wbits 16 + 15 (RFC 1952 header and trailer, 32 KiB window).
_GZIP_WBITS = 31


def _coding_quality(value: str) -> float:
    """The q value of one Accept-Encoding entry's parameters (1 if absent, 0 if unreadable)."""
    for parameter in value.split(";"):
        name, _, quality = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(quality)
            except ValueError:
                return 0.0
    return 1.0


def _gzip_accepted(request_headers: _RawHeaders) -> bool:
    """Whether Accept-Encoding takes gzip (or ``*``) with a quality above 0 (RFC 9110 §12.5.3)."""
    accept_encoding = next((v for n, v in request_headers if n == b"accept-encoding"), b"")
    qualities: dict[str, float] = {}
    for coding in accept_encoding.decode("latin-1").split(","):
        name, _, parameters = coding.partition(";")
        qualities.setdefault(name.strip().lower(), _coding_quality(parameters))
    return qualities.get("gzip", qualities.get("*", 0.0)) > 0


class GZipMiddleware:
    """Compresses responses with gzip for clients that accept it; for others, one it would have
    compressed gets ``Vary: Accept-Encoding``. Small (under `minimum_size`) and 206 responses,
    those with a Content-Encoding, and `exclude_content_types` pass through. A streamed response
    is flushed chunk by chunk, a chunk over `thread_minimum_size` compressed in a worker thread."""

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int = 500,
        compresslevel: int = 9,
        thread_minimum_size: int = 128 * 1024,
        *,
        exclude_content_types: tuple[str, ...] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel
        self.thread_minimum_size = thread_minimum_size
        self.exclude_content_types = frozenset(
            media_type.partition(";")[0].strip().lower() for media_type in exclude_content_types
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Accept-Encoding is read only for a response big enough to compress: most are not.
        await self.app(scope, receive, _GZipSender(self, send, scope["headers"]).send)

    def compresses(self, start: Message) -> bool:
        """Whether a response with this start may be compressed at all."""
        if start["status"] == 206:
            return False
        content_type = None
        for name, value in start.get("headers", ()):
            if name == b"content-encoding":
                return False
            if name == b"content-type" and content_type is None:
                content_type = value
        return _media_type_kinds(content_type or b"").isdisjoint(self.exclude_content_types)


@functools.lru_cache(maxsize=64)  # a handful of content types, parsed once rather than per response
def _media_type_kinds(content_type: bytes) -> frozenset[str]:
    """The names GZipMiddleware's exclusions may list a content type under: its media type, its
    type with ``/*``, and ``application/grpc`` for every gRPC flavour."""
    media_type = content_type.decode("latin-1").partition(";")[0].strip().lower()
    kinds = {media_type, media_type.partition("/")[0] + "/*"}
    if media_type.startswith("application/grpc+"):
        kinds.add("application/grpc")
    return frozenset(kinds)


class _GZipSender:
    """One response's way through GZipMiddleware: holds the start until the first body message
    says whether compressing is worth it."""

    __slots__ = ("_send", "compressor", "middleware", "request_headers", "start")

    def __init__(
        self, middleware: GZipMiddleware, send: Send, request_headers: _RawHeaders | None
    ) -> None:
        self.middleware = middleware
        self._send = send
        self.request_headers = request_headers  # None: the app chose gzip (GZipResponder)
        self.start: Message | None = None  # held back, until we know the headers
        self.compressor: Any = None  # created only for a response that is compressed

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if self.middleware.compresses(message):
                self.start = message
            else:
                await self._send(message)
        elif message["type"] == "http.response.body" and self.start is not None:
            start, self.start = self.start, None
            small = len(message.get("body", b"")) < self.middleware.minimum_size
            if message.get("more_body", False) or not small:
                await self._compress_first(start, message)
            else:  # whole and small, as most responses are: not worth compressing
                await self._send(start)
                await self._send(message)
        elif message["type"] == "http.response.body" and self.compressor is not None:
            await self._send({**message, "body": await self._compress(message)})
        elif message["type"] == "http.response.pathsend" and self.start is not None:
            await self._send(self.start)  # a file the server sends: not ours to compress
            self.start = None
            await self._send(message)
        else:
            await self._send(message)

    async def _compress_first(self, start: Message, message: Message) -> None:
        """Send the start and the first body message, compressed if the client accepts gzip."""
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        if self.request_headers is not None and not _gzip_accepted(self.request_headers):
            # Sent as it is, but caches must know that it depends on the client.
            headers.add_vary_header("Accept-Encoding")
            await self._send({**start, "headers": headers.raw})
            await self._send(message)
            return
        level = self.middleware.compresslevel
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
        compressed = await self._compress(message)
        headers["Content-Encoding"] = "gzip"
        headers.add_vary_header("Accept-Encoding")
        if message.get("more_body", False) or start.get("trailers", False):
            del headers["Content-Length"]  # not known until the end, or carried in trailers
        else:
            headers["Content-Length"] = str(len(compressed))
        await self._send({**start, "headers": headers.raw})
        await self._send({**message, "body": compressed})

    async def _compress(self, message: Message) -> bytes:
        body, more_body = message.get("body", b""), message.get("more_body", False)
        if len(body) >= self.middleware.thread_minimum_size:
            return await anyio.to_thread.run_sync(self._compress_now, body, more_body)
        return self._compress_now(body, more_body)

    def _compress_now(self, body: bytes, more_body: bool) -> bytes:
        # A sync flush after each streamed chunk, so the client can decompress it at once.
        mode = zlib.Z_SYNC_FLUSH if more_body else zlib.Z_FINISH
        compressed: bytes = self.compressor.compress(body) + self.compressor.flush(mode)
        return compressed


class GZipResponder(GZipMiddleware):
    """Compresses responses as GZipMiddleware does for a client that accepts gzip, without
    reading Accept-Encoding: for an app that has already chosen gzip."""

    def __init__(
        self,
        app: ASGIApp,
        minimum_size: int,
        compresslevel: int = 9,
        *,
        thread_minimum_size: int = 128 * 1024,
        exclude_content_types: tuple[str, ...] = DEFAULT_EXCLUDED_CONTENT_TYPES,
    ) -> None:
        super().__init__(
            app,
            minimum_size,
            compresslevel,
            thread_minimum_size,
            exclude_content_types=exclude_content_types,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, _GZipSender(self, send, None).send)


# ==== Sessions ====
# SessionMiddleware keeps request.session (a Session, Datastructures) in a cookie signed and
# timestamped with HMAC-SHA256, written only when the session changed.

# A session cookie is "payload.timestamp.signature": the JSON session in unpadded base64url, the
# signing time in seconds, and an HMAC-SHA256 of both. Browsers keep cookies up to 4096 bytes
# (RFC 6265 §6.1): a session that would not fit is an error, never silently dropped.
_MAX_COOKIE_SIZE = 4096
# Digits of a timestamp in a cookie: enough until the year 33658.
_MAX_TIMESTAMP_DIGITS = 12


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _SessionSigner:
    """Signs and checks session cookies with HMAC-SHA256 (standard library only)."""

    def __init__(self, secret_key: str, max_age: int | None) -> None:
        # hmac is imported here, once, when the middleware is made, and not with the module: it
        # loads OpenSSL's hashes, which nothing but sessions needs (see the imports).
        import hmac

        self._hmac_new = hmac.new
        self._compare_digest = hmac.compare_digest
        # A key of its own for sessions, derived from the secret: the secret itself signs
        # nothing, so no other use of it can forge a session.
        self._key = self._hmac_new(secret_key.encode(), b"starlite.session", "sha256").digest()
        self.max_age = max_age

    def _signature(self, signed: str) -> str:
        return _b64encode(self._hmac_new(self._key, signed.encode("ascii"), "sha256").digest())

    def sign(self, session: Mapping[str, Any]) -> str:
        payload = _b64encode(json.dumps(session, separators=(",", ":")).encode("utf-8"))
        signed = f"{payload}.{int(time.time())}"
        return f"{signed}.{self._signature(signed)}"

    def load(self, cookie: str) -> dict[str, Any]:
        """The session in a cookie; empty if it is tampered with, malformed or expired."""
        if not cookie.isascii():  # no cookie we sign holds anything else
            return {}
        signed, _, signature = cookie.rpartition(".")
        payload, _, timestamp = signed.partition(".")
        if not self._compare_digest(signature.encode(), self._signature(signed).encode()):
            return {}
        # All ASCII (checked above), so isdigit() accepts 0-9 alone.
        if not timestamp.isdigit() or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
            return {}
        if self.max_age is not None and time.time() - int(timestamp) > self.max_age:
            return {}
        try:
            session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:  # not base64, not UTF-8 or not JSON, though signed: an old format
            return {}
        return session if isinstance(session, dict) else {}


# The expiry of a cookie that empties the session: now, and a date long past for old browsers.
_CLEARED_COOKIE_EXPIRY = "Max-Age=0; expires=Thu, 01 Jan 1970 00:00:00 GMT; "


class SessionMiddleware:
    """Keeps ``request.session``, a JSON-serialisable `Session` dict, in a cookie signed with
    HMAC-SHA256 (standard library, not itsdangerous: Starlette's session cookies and starlite's
    cannot read each other). A bad or expired cookie gives an empty session, never an error."""

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str | Secret,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,  # 14 days
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
    ) -> None:
        self.app = app
        self.session_cookie = _cookie_name(session_cookie)
        self.max_age = max_age
        self.path = _cookie_attribute("path", path)
        self.security_flags = "httponly; samesite=" + _samesite(same_site)
        if https_only:  # a Secure cookie is sent over HTTPS only
            self.security_flags += "; secure"
        if domain is not None:
            self.security_flags += "; domain=" + _cookie_attribute("domain", domain)
        if partitioned:
            self.security_flags += "; partitioned"
        self._signer = _SessionSigner(str(secret_key), max_age)
        # The expiry of a cookie that holds a session, the same for every response: built once.
        self._expiry = "" if max_age is None else f"Max-Age={max_age}; "

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookie = _scope_cookies(scope).get(self.session_cookie)
        session = self._signer.load(cookie) if cookie else {}
        loaded = json.dumps(session, sort_keys=True)
        scope["session"] = Session(session)

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self._session_headers(scope, message, loaded)}
            await send(message)

        await self.app(scope, receive, send_with_session)

    def _session_headers(self, scope: Scope, start: Message, loaded: str) -> _RawHeaders:
        """The response's headers, with the session cookie if it changed and Vary if read."""
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        # The app may have put a plain dict in the scope: it is compared, not asked.
        session = scope["session"]
        # Compared as JSON, so that a change inside a nested value counts as a change too.
        changed = json.dumps(session, sort_keys=True) != loaded
        if session and (getattr(session, "modified", False) or changed):
            headers.raw.append(self._cookie_header(self._signer.sign(session), self._expiry))
        elif not session and changed:
            headers.raw.append(self._cookie_header("null", _CLEARED_COOKIE_EXPIRY))
        if getattr(session, "accessed", False):
            headers.add_vary_header("Cookie")
        return headers.raw

    def _cookie_header(self, value: str, expiry: str) -> tuple[bytes, bytes]:
        if len(self.session_cookie) + len(value) + 1 > _MAX_COOKIE_SIZE:
            raise ValueError(
                f"The session is too large for a cookie ({len(value)} bytes once signed; "
                f"browsers keep {_MAX_COOKIE_SIZE}): keep less in request.session"
            )
        cookie = f"{self.session_cookie}={value}; path={self.path}; {expiry}{self.security_flags}"
        return _encode_header("set-cookie", cookie)


# ==== Authentication ====
# AuthenticationMiddleware asks a backend who the client is and sets request.auth and
# request.user; the user types, and the @requires guard for endpoints.


class AuthenticationError(Exception):
    """Raised by an authentication backend for credentials that are present but invalid."""


class AuthCredentials:
    """What an authenticated connection may do: a list of scopes (``"authenticated"``, ...)."""

    def __init__(self, scopes: Sequence[str] | None = None) -> None:
        self.scopes = [] if scopes is None else list(scopes)


class BaseUser:
    """The user behind a connection, as an authentication backend knows it."""

    @property
    def is_authenticated(self) -> bool:
        raise NotImplementedError()

    @property
    def display_name(self) -> str:
        raise NotImplementedError()

    @property
    def identity(self) -> str:
        """A name that identifies the user."""
        raise NotImplementedError()


class SimpleUser(BaseUser):
    """An authenticated user known by a user name."""

    def __init__(self, username: str) -> None:
        self.username = username

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def identity(self) -> str:
        return self.username


class UnauthenticatedUser(BaseUser):
    """The user of a connection no backend recognised."""

    @property
    def is_authenticated(self) -> bool:
        return False

    @property
    def display_name(self) -> str:
        return ""

    @property
    def identity(self) -> str:
        return ""


class AuthenticationBackend:
    """Recognises the user of a connection: return credentials and a user, or None for an
    anonymous connection; raise AuthenticationError for invalid credentials."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        raise NotImplementedError()


class AuthenticationMiddleware:
    """Sets ``request.auth`` and ``request.user`` from `backend`. An AuthenticationError is
    answered by `on_error` (400 with its text by default), or closes a websocket with 1008."""

    def __init__(
        self,
        app: ASGIApp,
        backend: AuthenticationBackend,
        on_error: Callable[[HTTPConnection, AuthenticationError], Response] | None = None,
    ) -> None:
        self.app = app
        self.backend = backend
        self.on_error = self.default_on_error if on_error is None else on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        try:
            result = await self.backend.authenticate(connection)
        except AuthenticationError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": ""})
            else:
                await self.on_error(connection, exc)(scope, receive, send)
            return
        scope["auth"], scope["user"] = result or (AuthCredentials(), UnauthenticatedUser())
        await self.app(scope, receive, send)

    @staticmethod
    def default_on_error(conn: HTTPConnection, exc: Exception) -> Response:
        """The answer to a failed authentication when no `on_error` is given: 400, its text."""
        return PlainTextResponse(str(exc), status_code=400)


def has_required_scope(conn: HTTPConnection, scopes: Sequence[str]) -> bool:
    """Whether the connection's credentials hold every one of `scopes`."""
    return set(scopes) <= set(conn.auth.scopes)


def _connection_argument(func: Callable[..., Any]) -> tuple[str, int]:
    """The name ("request" or "websocket") and position of the connection a function takes."""
    for position, name in enumerate(inspect.signature(func).parameters):
        if name in ("request", "websocket"):
            return name, position
    raise TypeError(f"{get_name(func)} has no 'request' or 'websocket' argument for @requires")


def requires(
    scopes: str | Sequence[str], status_code: int = 403, redirect: str | None = None
) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """Let only connections whose credentials hold `scopes` into an endpoint (whose connection
    argument is named request or websocket). Others get `status_code`, or a 303 redirect to the
    route named `redirect` with ``?next=`` the URL they asked for; a websocket is closed (1008)."""
    required = [scopes] if isinstance(scopes, str) else list(scopes)

    def decorator(func: Callable[P, Any]) -> Callable[P, Any]:
        kind, position = _connection_argument(func)

        def connection_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> HTTPConnection:
            connection = kwargs.get(kind, args[position] if position < len(args) else None)
            if not isinstance(connection, HTTPConnection):
                raise TypeError(f"{get_name(func)} was not given a {kind} for @requires")
            return connection

        def refusal(request: HTTPConnection) -> Response:
            if redirect is None:
                raise HTTPException(status_code=status_code)
            next_url = request.url_for(redirect).include_query_params(next=str(request.url))
            return RedirectResponse(next_url, status_code=303)

        if kind == "websocket":

            @functools.wraps(func)
            async def websocket_endpoint(*args: P.args, **kwargs: P.kwargs) -> None:
                websocket = connection_of(args, kwargs)
                if not isinstance(websocket, WebSocket):
                    raise TypeError(f"{get_name(func)} was not given a WebSocket for @requires")
                if not has_required_scope(websocket, required):
                    await websocket.close(1008)  # a websocket is refused, never answered in HTTP
                    return
                await func(*args, **kwargs)

            return websocket_endpoint

        if _is_async_callable(func):

            @functools.wraps(func)
            async def async_endpoint(*args: P.args, **kwargs: P.kwargs) -> Any:
                request = connection_of(args, kwargs)
                if not has_required_scope(request, required):
                    return refusal(request)
                return await func(*args, **kwargs)

            return async_endpoint

        @functools.wraps(func)
        def sync_endpoint(*args: P.args, **kwargs: P.kwargs) -> Any:
            request = connection_of(args, kwargs)
            if not has_required_scope(request, required):
                return refusal(request)
            return func(*args, **kwargs)

        return sync_endpoint

    return decorator


# ==== CSRF ====
# CSRFMiddleware: cross-site requests refused by what the browser says of them.
# No token: a browser tells where a request comes from in headers a page cannot forge
# (Sec-Fetch-Site, W3C Fetch Metadata; Origin, RFC 6454), as Go's net/http.CrossOriginProtection
# does.

# Methods that never change anything (RFC 9110 §9.2.1): a cross-site one does no harm.
_CSRF_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
# Sec-Fetch-Site of a request made by the site's own pages, or by the user (a bookmark, a typed
# URL); "same-site" is refused, since a sibling subdomain may be someone else's.
_CSRF_OWN_FETCH_SITES = frozenset(("same-origin", "none"))
# RFC 6454 §6.2, an origin as a browser serializes it: scheme "://" host [ ":" port ], the
# authority then checked as a Host header is. "null" (a sandboxed page, a post redirected from
# another site) matches no origin, not even another "null".
_ORIGIN = re.compile(
    r"""
    (?P<scheme> [A-Za-z] [A-Za-z0-9+.-]* )  # scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    ://
    (?P<authority> [^/?#]* )                # up to a path, query or fragment: there must be none
    """,
    re.VERBOSE,
)
# The page behind a websocket handshake's Origin is http(s), never ws(s).
_PAGE_SCHEMES = {"ws": "http", "wss": "https"}

_OriginKey: TypeAlias = tuple[str, str, int | None]


def _origin_key(origin: str) -> _OriginKey | None:
    """An origin as (scheme, host, port) to compare, case ignored and a default port made
    explicit (``https://a.example:443`` is ``https://a.example``); None if it is not one."""
    match = _ORIGIN.fullmatch(origin)
    return None if match is None else _authority_key(match["scheme"], match["authority"])


def _authority_key(scheme: str, authority: str) -> _OriginKey | None:
    """The origin of `scheme` and a ``host[:port]`` authority, or None if it is malformed."""
    host_and_port = _split_host_header(authority) if _valid_host_header(authority) else None
    if host_and_port is None:
        return None
    host, port = host_and_port
    scheme = scheme.lower()
    return scheme, host.lower(), _DEFAULT_PORTS.get(scheme) if port is None else int(port)


def _request_origin(scope: Scope) -> _OriginKey | None:
    """The origin a request was sent to: its scheme and Host (or server address)."""
    netloc = _scope_netloc(scope)
    scheme: str = scope.get("scheme", "http")
    return None if netloc is None else _authority_key(_PAGE_SCHEMES.get(scheme, scheme), netloc)


class CSRFMiddleware:
    """Refuses cross-site requests (403), GET, HEAD, OPTIONS and TRACE apart, by what the browser's
    headers say; websocket handshakes too, as a cross-site page could open one with the user's
    cookies. `exempt_paths` holds route paths, or prefixes ending in "/". Behind a proxy, let the
    server trust ``X-Forwarded-Proto``."""

    def __init__(
        self,
        app: ASGIApp,
        trusted_origins: Collection[str] = (),
        exempt_paths: Collection[str] = (),
    ) -> None:
        for name, given in (("trusted_origins", trusted_origins), ("exempt_paths", exempt_paths)):
            if isinstance(given, str):  # would be read as one origin or path per character
                raise TypeError(f"{name} takes a list of strings: [{given!r}], not {given!r}")
        self.app = app
        self._trusted = frozenset(self._trusted_key(origin) for origin in trusted_origins)
        for path in exempt_paths:
            _require_leading_slash("Exempt", path)
        self._exempt = frozenset(path for path in exempt_paths if not path.endswith("/"))
        self._exempt_prefixes = tuple(path for path in exempt_paths if path.endswith("/"))

    @staticmethod
    def _trusted_key(origin: str) -> _OriginKey:
        key = None if "*" in origin else _origin_key(origin)
        if key is None:
            raise ValueError(
                f"Trusted origin {origin!r} is not scheme://host[:port] as a browser sends it,"
                " e.g. 'https://app.example.com' (no path, no trailing slash, no wildcard)"
            )
        return key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        safe = scope.get("method") in _CSRF_SAFE_METHODS  # a websocket or lifespan has no method
        if safe or scope["type"] not in ("http", "websocket") or self._allows(scope):
            await self.app(scope, receive, send)
            return
        await _refuse(scope, receive, send, PlainTextResponse("Cross-site request refused", 403))

    def _allows(self, scope: Scope) -> bool:
        """Whether a request that may change something comes from the site itself, a client that
        is not a browser, a trusted origin, or is sent to an exempt path."""
        fetch_site = _header_value(scope, b"sec-fetch-site")
        if fetch_site in _CSRF_OWN_FETCH_SITES:
            return True
        origin = _header_value(scope, b"origin")
        key = None if origin is None else _origin_key(origin)
        if fetch_site is None:
            if origin is None:
                return True  # browsers send Origin with every cross-origin POST and websocket
            if key is not None and key == _request_origin(scope):
                return True
        if key in self._trusted:
            return True
        path = _route_path(scope)
        return path in self._exempt or path.startswith(self._exempt_prefixes)


# ==== BaseHTTPMiddleware ====
# Middleware written as one function of the request, dispatch(request, call_next), for users:
# the app inside runs in a task of its own and hands its response back through _Handoff.

RequestResponseEndpoint: TypeAlias = Callable[[Request], Awaitable[Response]]
DispatchFunction: TypeAlias = Callable[[Request, RequestResponseEndpoint], Awaitable[Response]]

# How the request and the response pass between dispatch and the app
#
# BaseHTTPMiddleware.__call__ makes one Request of the scope and the server's channels and calls
# `dispatch(request, call_next)` in its own task. ``call_next`` starts a _DownstreamCall: the app
# below runs in a task of its own, in the middleware's task group, with the same scope, a
# _DownstreamReceive as its receive channel and the _DownstreamCall's `send` as its send channel.
#
# Going down, the request: there is one body from the client, and dispatch and the app may each
# read some of it. The middleware's Request keeps the body's state, and _DownstreamReceive asks it
# for each message the app receives. If dispatch read the body whole (``body()``, ``json()``), the
# app is given it again as one message; if dispatch streamed it to its end, the app gets an empty
# last message instead of waiting for bytes that will never come; otherwise the messages pass
# through one at a time, each to whichever side asks, and the Request notes the body's end and the
# client's leaving either way. A form dispatch parsed from the stream cannot be read again from a
# body that is gone: it is put in the scope, where the app's own Request finds it.
#
# Coming up, the response: the app's messages cross a _Handoff, a channel without a buffer, so the
# app's `send` returns only once the middleware has taken the message. ``call_next`` takes
# messages until the app's ``http.response.start`` (an early hint on the way goes straight to the
# client) and returns a _DownstreamResponse with the app's status and headers, whose body
# (_DownstreamBody) takes the rest of the app's messages as the response is sent. The body
# streams through as the app produces it, never faster than the client takes it; nothing is
# buffered.
#
# The end: the app's last message waits until the middleware's response has been sent in full,
# so the app's background tasks run after the client has its response, as they would without the
# middleware. If the app's response is not sent in full (dispatch answered with another, or the
# client went away), the app is cancelled instead. The app runs with a copy of the context; what
# it set in context variables up to its response start is set in dispatch's context when
# ``call_next`` returns. The app's exception is raised in the middleware where it waits for the
# app's next message, or, for one after the response was sent (a background task's), once the
# middleware's task group has ended.


class _DownstreamReceive:
    """The receive channel a BaseHTTPMiddleware hands on: the body again, if `dispatch` read it
    (see above). Once the client has gone, the app hears so each time it asks."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.body_given = False  # the app has had the last message of the body

    async def __call__(self) -> Message:
        if not self.body_given and (body := self.request._body_if_ended()) is not None:
            self.body_given = True
            return {"type": "http.request", "body": body, "more_body": False}
        message = await self.request._receive_noting()
        if message["type"] == "http.request":
            self.body_given = not message.get("more_body", False)
        return message


def _adopt_context_changes(before: contextvars.Context, after: contextvars.Context) -> None:
    """Set here each context variable whose value differs between `before` and `after`: what
    the app below set in its copy of the context (a request id, say) is not lost to dispatch."""
    for variable, value in after.items():
        if variable not in before or before[variable] is not value:
            variable.set(value)


class _Handoff:
    """The unbuffered channel that carries the app's messages to a BaseHTTPMiddleware: each send
    returns once the middleware has taken the message. (anyio's memory object streams make every
    send and receive an event-loop round; here a task waits only when the other is not ready.)"""

    def __init__(self) -> None:
        self.message: Message | None = None  # sent, not yet taken
        self.ended = False  # the app returned
        self.closed = False  # the middleware takes no more messages
        self.message_ready: anyio.Event | None = None  # the middleware waits on it
        self.message_taken: anyio.Event | None = None  # the app waits on it

    async def send(self, message: Message) -> None:
        if not self.closed:
            self.message = message
            self._wake_middleware()
            self.message_taken = anyio.Event()
            await self.message_taken.wait()
            if self.message is None:  # taken
                return
        # The middleware closed the channel: an app it stopped ends cancelled, any other fails.
        await anyio.lowlevel.checkpoint_if_cancelled()
        raise anyio.BrokenResourceError

    def end(self) -> None:
        """The app returned: no more messages."""
        self.ended = True
        self._wake_middleware()

    def _wake_middleware(self) -> None:
        if self.message_ready is not None:
            self.message_ready.set()
            self.message_ready = None

    async def receive(self) -> Message:
        """The app's next message; `anyio.EndOfStream` once it has returned."""
        if self.message is None and not self.ended:
            self.message_ready = anyio.Event()
            await self.message_ready.wait()
        message, self.message = self.message, None
        if message is None:
            raise anyio.EndOfStream
        assert self.message_taken is not None  # the app waits on it for every message
        self.message_taken.set()
        return message

    def close(self) -> None:
        """Take no more messages: a send waiting, or any later, raises BrokenResourceError."""
        self.closed = True
        if self.message_taken is not None:
            self.message_taken.set()


class _DownstreamCall:
    """One run of the app below a BaseHTTPMiddleware, started by ``call_next`` (see above)."""

    def __init__(self, app: ASGIApp, request: Request, response_sent: anyio.Event) -> None:
        self.app = app
        self.request = request
        request._hand_on_form()
        self.response_sent = response_sent
        self.messages = _Handoff()
        self.cancel_scope = anyio.CancelScope()
        self.context_at_call = contextvars.copy_context()
        self.context_at_response = self.context_at_call
        self.expects_trailers = False
        self.response_complete = False
        self.error: Exception | None = None
        self.body = _DownstreamBody(self)

    async def run(self) -> None:
        with self.cancel_scope:
            try:
                await self.app(self.request.scope, _DownstreamReceive(self.request), self.send)
            except Exception as exc:  # raised in the middleware, where it waits for the app
                self.error = exc
            finally:
                self.messages.end()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.expects_trailers = message.get("trailers", False)
            self.context_at_response = contextvars.copy_context()
        await self.messages.send(message)
        if self._ends_response(message) and not self.response_sent.is_set():
            await self.response_sent.wait()

    def _ends_response(self, message: Message) -> bool:
        kind: str = message["type"]
        if kind == "http.response.body":
            return not (message.get("more_body", False) or self.expects_trailers)
        if kind == "http.response.trailers":
            return not message.get("more_trailers", False)
        return kind == "http.response.pathsend"

    async def receive(self) -> Message | None:
        """The app's next message, or None once it has returned (raising its error, if any)."""
        try:
            message = await self.messages.receive()
        except anyio.EndOfStream:
            error, self.error = self.error, None
            if error is not None:
                # Raised here, it would take EndOfStream as its context: what it had is kept as
                # its cause, and EndOfStream stays out of the traceback.
                raise error from error.__cause__ or error.__context__
            return None
        # Noted here, as the middleware takes it: the app's task may not run again before close().
        self.response_complete = self.response_complete or self._ends_response(message)
        return message

    def raise_error(self) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise error

    async def response(self) -> Response:
        """The app's response, as soon as it starts."""
        debug_info: Message | None = None
        while (message := await self.receive()) is not None:
            if message["type"] == "http.response.start":
                _adopt_context_changes(self.context_at_call, self.context_at_response)
                return _DownstreamResponse(message, self.body, debug_info)
            if message["type"] == "http.response.debug":
                debug_info = message  # sent with this response, if it is sent
            else:  # an early hint: on to the client at once
                await self.request._send(message)
        raise RuntimeError("No response returned.")

    def close(self) -> None:
        """Let the app go on to its background tasks if its response was sent, else stop it."""
        if not (self.response_complete and self.response_sent.is_set()):
            self.cancel_scope.cancel()
        self.messages.close()


class _DownstreamBody:
    """The body of the app's response, as an async iterator of byte chunks; trailers after it are
    collected, and a file sent with ``pathsend`` comes through as that message."""

    def __init__(self, call: _DownstreamCall) -> None:
        self.call = call
        self.finished = False
        self.trailers: _RawHeaders = []

    def __aiter__(self) -> _DownstreamBody:
        return self

    async def __anext__(self) -> bytes | Message:
        while not self.finished and (message := await self.call.receive()) is not None:
            if message["type"] == "http.response.pathsend":
                self.finished = True
                return message
            if message["type"] != "http.response.body":
                continue
            self.finished = not message.get("more_body", False)
            if self.finished and self.call.expects_trailers:
                await self._collect_trailers()
            if body := message.get("body", b""):
                return bytes(body)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Read no more of the body; the app stops once the middleware's response is sent."""
        self.finished = True

    async def _collect_trailers(self) -> None:
        while (message := await self.call.receive()) is not None:
            self.trailers += message.get("headers", [])
            if not message.get("more_trailers", False):
                return


class _DownstreamResponse(Response):
    """What ``call_next`` returns: the app's status and headers, and its body as it comes."""

    def __init__(self, start: Message, body: _DownstreamBody, debug_info: Message | None) -> None:
        self.status_code = start["status"]
        self.raw_headers = list(start.get("headers", []))
        self.body_iterator: AsyncIterable[Content | Message] = body
        self.background = None
        self.app_body = body
        self.has_trailers = start.get("trailers", False)
        self.debug_info = debug_info

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.debug_info is not None:
            await send(self.debug_info)
        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        if self.has_trailers:  # only then: a server without trailers support needs no key
            start["trailers"] = True
        send = functools.partial(_send_or_disconnect, send)
        with contextlib.suppress(ClientDisconnect):
            await send(start)
            if self.body_iterator is self.app_body:
                # Untouched by dispatch: nothing to close (its call stops the app), and _Closing's
                # shielded close would cost a cancel scope a request.
                await self._send_body(self.app_body, send)
            else:
                async with _Closing(self.body_iterator) as chunks:
                    await self._send_body(chunks, send)
        if self.background is not None:
            await self.background()

    async def _send_body(self, chunks: AsyncIterable[Content | Message], send: Send) -> None:
        async for chunk in chunks:
            if isinstance(chunk, dict):  # pathsend: the server sends the file, the whole body
                await send(chunk)
                return
            body = chunk.encode(self.charset) if isinstance(chunk, str) else chunk
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.has_trailers:
            await send({"type": "http.response.trailers", "headers": self.app_body.trailers})


class BaseHTTPMiddleware:
    """Middleware written as one method, ``async def dispatch(request, call_next) -> Response``,
    run as the block above explains: the context variables the endpoint set reach `dispatch`,
    where Starlette loses them. Each request costs a task: write fast middleware as pure ASGI."""

    def __init__(self, app: ASGIApp, dispatch: DispatchFunction | None = None) -> None:
        if dispatch is None and type(self).dispatch is BaseHTTPMiddleware.dispatch:
            advice = "override dispatch(), or pass dispatch=..."
            raise TypeError(f"{type(self).__name__} needs a dispatch function: {advice}")
        self.app = app
        self.dispatch_func = self.dispatch if dispatch is None else dispatch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        response_sent = anyio.Event()
        calls: list[_DownstreamCall] = []
        async with _TaskGroup() as task_group:

            async def call_next(request_: Request) -> Response:
                call = _DownstreamCall(self.app, request, response_sent)
                calls.append(call)
                task_group.start_soon(call.run)
                return await call.response()

            try:
                response = await self.dispatch_func(request, call_next)
                await response(scope, _DownstreamReceive(request), send)
                response_sent.set()
            finally:
                for call in calls:
                    call.close()
                if request._form is not None:  # its upload files
                    await request.close()
        for call in calls:  # a failure after the response was sent: a background task's, say
            call.raise_error()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Answer `request`, with ``await call_next(request)`` for the app's response."""
        raise NotImplementedError  # never reached: __init__ insists on an override or a function


# ==== Application ====
# Starlite: a Router wrapped in the middleware stack (ServerErrorMiddleware, the user's
# middleware, ExceptionMiddleware), built once on the first request or lifespan event.

AppType = TypeVar("AppType", bound="Starlite")
StatelessLifespan: TypeAlias = Callable[[AppType], contextlib.AbstractAsyncContextManager[None]]
StatefulLifespan: TypeAlias = Callable[
    [AppType], contextlib.AbstractAsyncContextManager[Mapping[str, Any]]
]
# Either kind: what Starlite's `lifespan` takes.
Lifespan: TypeAlias = Callable[[AppType], contextlib.AbstractAsyncContextManager[Any]]


class Starlite:
    """The application (Starlette's ``Starlette``). `lifespan(app)` is an async context manager
    entered at start-up and exited at shut-down; a mapping it yields is copied into every request's
    ``request.state``. A handler for 500 or ``Exception`` makes ServerErrorMiddleware's response."""

    def __init__(
        self,
        debug: bool = False,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        exception_handlers: Mapping[Any, ExceptionHandler] | None = None,
        lifespan: Lifespan[Any] | None = None,
        *,
        max_body_size: int | None = None,
    ) -> None:
        self._debug = debug
        self.max_body_size = None if max_body_size is None else _checked_body_size(max_body_size)
        self.state = State()
        self.router = Router(routes, lifespan=lifespan)
        self.exception_handlers = {} if exception_handlers is None else dict(exception_handlers)
        self.user_middleware = [] if middleware is None else list(middleware)
        self.middleware_stack: ASGIApp | None = None

    @property
    def debug(self) -> bool:
        """Whether errors show their traceback; changing it rebuilds the middleware stack."""
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._debug = value
        self.middleware_stack = None

    def build_middleware_stack(self) -> ASGIApp:
        """ServerErrorMiddleware, body limit, the user's middleware, ExceptionMiddleware, router."""
        error_handler = None
        handlers: dict[Any, ExceptionHandler] = {}
        for key, handler in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = handler
            else:
                handlers[key] = handler
        app: ASGIApp = ExceptionMiddleware(self.router, handlers=handlers, debug=self.debug)
        app = _wrap(app, self.user_middleware, self.max_body_size)
        return ServerErrorMiddleware(app, handler=error_handler, debug=self.debug)

    @property
    def routes(self) -> list[BaseRoute]:
        return self.router.routes

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """The path of the route called `name`."""
        return self.router.url_path_for(name, **path_params)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        await self.middleware_stack(scope, receive, send)

    def mount(self, path: str, app: ASGIApp, name: str | None = None) -> None:
        self.router.mount(path, app=app, name=name)

    def host(self, host: str, app: ASGIApp, name: str | None = None) -> None:
        """Serve an ASGI app for requests to `host`."""
        self.router.host(host, app=app, name=name)

    def add_middleware(
        self, middleware_class: _MiddlewareFactory[P], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Add a middleware outside those already given (before the app starts)."""
        if self.middleware_stack is not None:
            raise RuntimeError("Cannot add middleware after an application has started")
        self.user_middleware.insert(0, Middleware(middleware_class, *args, **kwargs))

    def add_exception_handler(
        self, exc_class_or_status_code: int | type[Exception], handler: ExceptionHandler
    ) -> None:
        """Handle an exception class or a status code with `handler`."""
        self.exception_handlers[exc_class_or_status_code] = handler
        self.middleware_stack = None

    def add_route(
        self,
        path: str,
        route: Callable[[Request], Awaitable[Response] | Response],
        methods: Collection[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        self.router.add_route(path, route, methods, name, include_in_schema)

    def add_websocket_route(
        self, path: str, route: Callable[[WebSocket], Awaitable[None]], name: str | None = None
    ) -> None:
        self.router.add_websocket_route(path, route, name=name)


# ==== Config ====
# Settings read from the environment and from a .env file, cast and checked once at start-up:
# Config, and Environ, the view of os.environ that refuses to change a value already read. Secret
# and CommaSeparatedStrings (Datastructures) are the casts for passwords and lists.


class EnvironError(Exception):
    """An environment variable was changed after Config had read it."""


class Environ(MutableMapping[str, str]):
    """``os.environ``, refusing to set or delete a variable once it has been read: a test that
    did so would test a configuration the app never sees."""

    def __init__(self, environ: MutableMapping[str, str] = os.environ) -> None:
        self._environ = environ
        self._has_been_read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self._has_been_read.add(key)
        return self._environ[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._refuse_if_read(key, "set")
        self._environ[key] = value

    def __delitem__(self, key: str) -> None:
        self._refuse_if_read(key, "deleted")
        del self._environ[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)

    def _refuse_if_read(self, key: str, change: str) -> None:
        if key in self._has_been_read:
            raise EnvironError(
                f"Environment variable '{key}' has already been read, so cannot be {change}."
            )


environ = Environ()

# The spellings of a boolean setting, as systemd, YAML 1.1 and most .env tools accept them.
_BOOLEANS = {
    **dict.fromkeys(("true", "1", "yes", "on"), True),
    **dict.fromkeys(("false", "0", "no", "off"), False),
}


class _Undefined:
    """No default given: a missing setting is an error."""


class Config:
    """Settings from the environment, then from `env_file`'s ``KEY=value`` lines, each looked up as
    `env_prefix` + key. A missing file only warns: the environment may hold everything."""

    def __init__(
        self,
        env_file: _StrPath | None = None,
        environ: Mapping[str, str] = environ,
        env_prefix: str = "",
        encoding: str = "utf-8",
    ) -> None:
        self.environ = environ
        self.env_prefix = env_prefix
        self.file_values: dict[str, str] = {}
        if env_file is not None:
            if os.path.isfile(env_file):
                self.file_values = _read_env_file(env_file, encoding)
            else:
                warnings.warn(f"Config file '{os.fspath(env_file)}' not found.", stacklevel=2)

    @overload
    def __call__(self, key: str, *, default: None) -> str | None: ...
    @overload
    def __call__(self, key: str, cast: type[T], default: T = ...) -> T: ...
    @overload
    def __call__(self, key: str, cast: type[str] = ..., default: str = ...) -> str: ...
    @overload
    def __call__(self, key: str, cast: Callable[[Any], T] = ..., default: Any = ...) -> T: ...
    @overload
    def __call__(self, key: str, cast: type[str] = ..., default: T = ...) -> T | str: ...

    def __call__(
        self, key: str, cast: Callable[[Any], Any] | None = None, default: Any = _Undefined
    ) -> Any:
        """The setting `key`, as `get` reads it."""
        return self.get(key, cast, default)

    def get(
        self, key: str, cast: Callable[[Any], Any] | None = None, default: Any = _Undefined
    ) -> Any:
        """The setting `key`, cast with `cast`; `default` (cast too) when it is not set."""
        key = self.env_prefix + key
        for values in (self.environ, self.file_values):
            if key in values:
                return _cast_setting(key, values[key], cast)
        if default is not _Undefined:
            return _cast_setting(key, default, cast)
        raise KeyError(f"Config '{key}' is missing, and has no default.")


def _read_env_file(path: _StrPath, encoding: str) -> dict[str, str]:
    """The ``KEY=value`` pairs of a .env file; a line of another shape is a ValueError that gives
    its number but not its text, which may hold a secret."""
    values = {}
    with open(path, encoding=encoding) as file:
        for number, line in enumerate(file, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, equals, value = line.removeprefix("export ").partition("=")
            key = key.strip()
            if not equals or not key:
                raise ValueError(f"{os.fspath(path)}, line {number}: expected KEY=value")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]  # one pair of matching outer quotes
            values[key] = value
    return values


def _cast_setting(key: str, value: Any, cast: Callable[[Any], Any] | None) -> Any:
    if cast is None or value is None:
        return value
    if cast is bool and isinstance(value, str):
        try:
            return _BOOLEANS[value.strip().lower()]
        except KeyError:
            choices = ", ".join(_BOOLEANS)
            raise ValueError(f"Config '{key}' is not a valid bool: use one of {choices}") from None
    try:
        return cast(value)
    except (TypeError, ValueError):
        name = getattr(cast, "__name__", repr(cast))
        # Not chained to the cast's own error, which usually quotes the value: it may be secret.
        raise ValueError(f"Config '{key}' is not a valid {name}") from None


# ==== Static files and templates ====
# StaticFiles serves a directory safely (no path can leave it), with conditional requests and
# ranges through FileResponse; Jinja2Templates renders HTML responses with jinja2, an optional
# extra imported on first use.


# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, where etagc may be a comma, so
# If-None-Match is read tag by tag, each match starting where the last ended (linear time), and
# anything that is not a list of tags matches nothing.
_ENTITY_TAG = re.compile(
    r"""
    (?: W/ )? ( "[^"]*" )   # a tag; weak or strong compare the same for If-None-Match
    [ \t]* (?: , [ \t]* | $ )  # then the next one, or the end
    """,
    re.VERBOSE,
)


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weak comparison, RFC 9110 §13.1.2), or is ``*``."""
    tags = if_none_match.strip(" \t")
    if tags == "*":
        return True
    opaque = etag.removeprefix("W/")
    position = 0
    while position < len(tags) and (match := _ENTITY_TAG.match(tags, position)):
        if match.group(1) == opaque:
            return True
        position = match.end()
    return False


def _http_date(value: str) -> float | None:
    """An HTTP date as a timestamp; None for one that does not parse (RFC 9110 §13.1.3)."""
    try:
        import email.utils  # lazily: see the imports

        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):  # year 9999999999, say
        return None
    if date.tzinfo is None:  # "-0000" means UTC too
        date = date.replace(tzinfo=UTC)
    return date.timestamp()


class NotModifiedResponse(Response):
    """A 304 standing for a response with `headers`: those a 304 carries over (RFC 9110 §15.4.5)."""

    NOT_MODIFIED_HEADERS = ("cache-control", "content-location", "date", "etag", "expires", "vary")

    def __init__(self, headers: Headers) -> None:
        kept = {name: headers[name] for name in self.NOT_MODIFIED_HEADERS if name in headers}
        super().__init__(status_code=304, headers=kept)


# What stat raises for a path that names nothing to serve: missing, a file used as a directory, a
# name too long, a symlink loop, or a directory it may not search. All are a 404; Starlette
# answers the last with 401, which RFC 9110 §15.5.2 keeps for a request lacking credentials.
_NOTHING_THERE = frozenset(
    (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EACCES, errno.EPERM)
)


class StaticFiles:
    """Serves the files of `directory` and of each of `packages`' ``statics``: no request reaches a
    file outside them (``..``, a backslash or NUL is never looked up, nor a symlink out followed
    unless `follow_symlink`). File system calls run in a worker thread."""

    def __init__(
        self,
        *,
        directory: _StrPath | None = None,
        packages: Sequence[str | tuple[str, str]] | None = None,
        html: bool = False,
        check_dir: bool = True,
        follow_symlink: bool = False,
    ) -> None:
        if check_dir and directory is not None and not os.path.isdir(directory):
            raise RuntimeError(f"Directory '{os.fspath(directory)}' does not exist")
        self.directory = directory
        self.packages = packages
        self.html = html
        self.follow_symlink = follow_symlink
        self.config_checked = False
        self.all_directories = self.get_directories(directory, packages)
        # Resolved once here: each request compares its file against these.
        resolve = os.path.abspath if follow_symlink else os.path.realpath
        self._roots = [resolve(root) for root in self.all_directories]
        self._root_prefixes = [root.rstrip(os.sep) + os.sep for root in self._roots]

    def get_directories(
        self,
        directory: _StrPath | None = None,
        packages: Sequence[str | tuple[str, str]] | None = None,
    ) -> list[str]:
        """`directory`, then each package's statics directory (``statics``, unless given)."""
        directories = [] if directory is None else [os.fspath(directory)]
        for package in packages or []:
            name, statics = (package, "statics") if isinstance(package, str) else package
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                raise RuntimeError(f"Package {name!r} could not be found.")
            package_statics = os.path.join(os.path.dirname(spec.origin), statics)
            if not os.path.isdir(package_statics):
                raise RuntimeError(f"Directory {statics!r} in package {name!r} could not be found.")
            directories.append(package_statics)
        return directories

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await WebSocketClose()(scope, receive, send)
            return
        if not self.config_checked:
            await self.check_config()
            self.config_checked = True
        response = await self.get_response(self.get_path(scope), scope)
        await response(scope, receive, send)

    async def check_config(self) -> None:
        """Check once, on the first request, that `directory` is a directory: a mistake raises
        ``RuntimeError`` instead of answering every request with 404."""
        if self.directory is None:
            return
        directory = os.fspath(self.directory)
        try:
            stat_result = await anyio.to_thread.run_sync(os.stat, directory)
        except FileNotFoundError:
            raise RuntimeError(f"StaticFiles directory '{directory}' does not exist.") from None
        if not stat.S_ISDIR(stat_result.st_mode):
            raise RuntimeError(f"StaticFiles path '{directory}' is not a directory.")

    def get_path(self, scope: Scope) -> str:
        """The route path's segments joined with the OS's separator, empty and ``.`` ones left out;
        a ``..`` is kept, for `lookup_path` to refuse, never resolved against the one before."""
        segments = _route_path(scope).split("/")
        return os.sep.join(segment for segment in segments if segment not in ("", "."))

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The response for `path` (from `get_path`): the file, its 304, or with `html` a
        directory's ``index.html`` or the top ``404.html``; else `HTTPException` 404 or 405."""
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405, headers={"Allow": "GET, HEAD"})
        full_path, stat_result = await anyio.to_thread.run_sync(self.lookup_path, path)
        if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
            return self.file_response(full_path, stat_result, scope)
        if stat_result is not None and stat.S_ISDIR(stat_result.st_mode) and self.html:
            index = os.path.join(path, "index.html")
            full_path, stat_result = await anyio.to_thread.run_sync(self.lookup_path, index)
            if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
                if not scope["path"].endswith("/"):
                    url = URL(scope=scope)
                    return RedirectResponse(url.replace(path=url.path + "/"))
                return self.file_response(full_path, stat_result, scope)
        if self.html:
            full_path, stat_result = await anyio.to_thread.run_sync(self.lookup_path, "404.html")
            if stat_result is not None and stat.S_ISREG(stat_result.st_mode):
                return FileResponse(full_path, 404, stat_result=stat_result)
        raise HTTPException(status_code=404)

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        """The resolved path and status of the first file or directory at `path` that stays inside
        its directory, or ``("", None)`` (so for an unsafe `path`). Runs in a worker thread."""
        segments = _safe_segments(path)
        if segments is None:
            return "", None
        for root, prefix in zip(self._roots, self._root_prefixes, strict=True):
            joined = os.path.join(root, *segments)
            resolved = os.path.abspath(joined) if self.follow_symlink else os.path.realpath(joined)
            if resolved != root and not resolved.startswith(prefix):
                continue  # a symlink out of the directory
            try:
                return resolved, os.stat(resolved)
            except OSError as error:
                if error.errno not in _NOTHING_THERE:
                    raise  # the file system failing: a 500, not a file that is not there
        return "", None

    def file_response(
        self, full_path: _StrPath, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        """The file at `full_path`, or a 304 if the client's copy is current."""
        response = FileResponse(full_path, status_code, stat_result=stat_result)
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response

    def is_not_modified(self, response_headers: Headers, request_headers: Headers) -> bool:
        """Whether the client's copy is current (RFC 9110 §13.2.2), If-None-Match first."""
        if_none_match = request_headers.get("if-none-match", "")
        if if_none_match.strip(" \t"):  # an empty one counts as none
            return _etag_matches(if_none_match, response_headers["etag"])
        if_modified_since = request_headers.get("if-modified-since")
        last_modified = response_headers.get("last-modified")
        if if_modified_since is None or last_modified is None:
            return False
        since, modified = _http_date(if_modified_since), _http_date(last_modified)
        return since is not None and modified is not None and modified <= since


def _safe_segments(path: str) -> list[str] | None:
    """The segments of a relative path; None if it is absolute, or a segment could step outside
    (``..``) or mean something else to the file system (a backslash, a NUL byte)."""
    if os.altsep:
        path = path.replace(os.altsep, os.sep)
    if path.startswith(("/", "\\")):
        return None
    segments = [segment for segment in path.split(os.sep) if segment not in ("", ".")]
    if any(segment == ".." or "\\" in segment or "\0" in segment for segment in segments):
        return None
    return segments


class _TemplateResponse(HTMLResponse):
    """An HTML response rendered from a template when it is sent (``body`` exists from then), in
    a worker thread: jinja2 reads and stats template files, which must not block the event loop."""

    def __init__(
        self,
        env: jinja2.Environment,
        name: str,
        context: dict[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        self.env = env
        self.name = name
        self.context = context
        self.template: jinja2.Template | None = None
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.background = background
        self.init_headers(headers)  # no body yet, so no Content-Length: rendering adds it

    def render_template(self) -> None:
        """Load and render the template, and set the body and its Content-Length (blocking)."""
        self.template = self.env.get_template(self.name)
        self.body = self.render(self.template.render(self.context))
        if self.status_code not in _BODYLESS_STATUSES:
            self.headers.setdefault("content-length", str(len(self.body)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.template is None:
            await run_in_threadpool(self.render_template)
        if "http.response.debug" in scope.get("extensions", {}):
            info = {"template": self.template, "context": self.context}
            await send({"type": "http.response.debug", "info": info})
        await super().__call__(scope, receive, send)


def _template_url_for(context: Mapping[str, Any], name: str, /, **path_params: Any) -> URL:
    """``url_for`` in a template: the URL of the route `name`, for the request being answered."""
    request: Request = context["request"]
    return request.url_for(name, **path_params)


# Media types a browser renders as markup that can run script. An unescaped template is never
# served as one: the values put in it would be live markup (cross-site scripting).
_MARKUP_MEDIA_TYPES = frozenset(
    ("text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml")
)


def _unescaped_media_type(name: str, media_type: str | None) -> str:
    """The unescaped template `name`'s media type: text/plain, or the caller's if not markup."""
    if media_type is None:
        return "text/plain"
    if media_type.partition(";")[0].strip().lower() in _MARKUP_MEDIA_TYPES:
        raise ValueError(
            f"Template {name!r} is not autoescaped, so served as {media_type!r} its values would "
            "be live markup: give it an .html name, or a media type that is not markup"
        )
    return media_type


class Jinja2Templates:
    """Renders jinja2 templates into responses. Every template from a `directory` but a ``.txt`` one
    is autoescaped (Starlette: only .html, .htm, .xml); a .txt one is served as text/plain, never as
    markup. A given `env` keeps its own policy."""

    def __init__(
        self,
        directory: _StrPath | Sequence[_StrPath] | None = None,
        *,
        context_processors: Sequence[Callable[[Request], dict[str, Any]]] | None = None,
        env: jinja2.Environment | None = None,
    ) -> None:
        jinja = _import_extra("templates", "jinja2", "jinja2")
        if bool(directory) == bool(env):  # Starlette's check and exception, kept under python -O
            raise AssertionError("either 'directory' or 'env' arguments must be passed")
        # Whether a template of the env built here is escaped, by its name; None for a given env.
        self._escapes: Callable[[str], bool] | None = None
        if env is None:
            self._escapes = jinja.select_autoescape(disabled_extensions=("txt",), default=True)
            loader = jinja.FileSystemLoader(directory)
            env = jinja.Environment(loader=loader, autoescape=self._escapes)
        self.env: jinja2.Environment = env
        self.context_processors = list(context_processors or [])
        self.env.globals.setdefault("url_for", jinja.pass_context(_template_url_for))

    def get_template(self, name: str) -> jinja2.Template:
        """The template `name` (this reads its file: not for the event loop)."""
        return self.env.get_template(name)

    def TemplateResponse(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> _TemplateResponse:
        """An HTML response (plain text for an unescaped template) from the template `name` with
        `context`, ``request`` and the context processors' values; rendered when it is sent."""
        if self._escapes is not None and not self._escapes(name):
            media_type = _unescaped_media_type(name, media_type)
        full_context = {"request": request, **(context or {})}
        for processor in self.context_processors:
            full_context.update(processor(request))
        return _TemplateResponse(
            self.env, name, full_context, status_code, headers, media_type, background
        )


# ==== Test client ====
# TestClient is an httpx.Client whose transport hands each request to the ASGI app, run on an anyio
# event loop in another thread (a blocking portal), message by message: a streamed response can be
# read while the app produces it. AsyncTestClient does the same on the test's own event loop, for
# async tests. A websocket session of either runs the app through one `_WebSocketRun`, awaited or
# called through the portal. httpx is imported only when a test client is first used.

# How the test client's classes get httpx's bases, without `import starlite` importing httpx:
# - `_TestClient`, `_TestClientTransport`, `_ResponseStream` and their async twins are written
#   against httpx's classes, through the aliases below: httpx's own for a type checker, `object`
#   at run time.
# - `_with_httpx_base(cls, "Client")` makes, once, the real class: a subclass of `cls` and of
#   httpx's class of that name. The transports and streams are made so as a client is used.
# - The public names (TestClient, AsyncTestClient, WebSocketDenialResponse) are looked up through
#   the module's `__getattr__`, at the end of this section, which builds each on first use from
#   `_HTTPX_CLASSES`; without httpx, the name is a stand-in that imports fine and raises the
#   ImportError naming what to install when one is made.
# - A copy of starlite.py must pass `mypy --strict` in a project without httpx, where mypy takes
#   httpx for Any: the classes written against httpx's then subclass Any, which --strict refuses.
#   Their `type: ignore` comments allow that and, with `unused-ignore`, are silent where httpx is
#   installed and the classes are typed as httpx's.
if TYPE_CHECKING:
    _HTTPXClient: TypeAlias = httpx.Client
    _HTTPXBaseTransport: TypeAlias = httpx.BaseTransport
    _HTTPXSyncByteStream: TypeAlias = httpx.SyncByteStream
    _HTTPXAsyncClient: TypeAlias = httpx.AsyncClient
    _HTTPXAsyncBaseTransport: TypeAlias = httpx.AsyncBaseTransport
    _HTTPXAsyncByteStream: TypeAlias = httpx.AsyncByteStream
    # Not httpx's, but also only for annotations: anyio.from_thread is imported when first used.
    _Portal: TypeAlias = anyio.from_thread.BlockingPortal
else:
    _HTTPXClient = _HTTPXBaseTransport = _HTTPXSyncByteStream = object
    _HTTPXAsyncClient = _HTTPXAsyncBaseTransport = _HTTPXAsyncByteStream = object

_WITH_HTTPX_BASE: dict[type[Any], type[Any]] = {}


def _httpx() -> ModuleType:
    # httpx2 is httpx's maintained fork with the same API: either will do.
    return _import_extra("testclient", "httpx", "httpx", "httpx2")


def _with_httpx_base(cls: type[T], base_name: str) -> type[T]:
    """`cls` as a subclass of the httpx class it is written against, built once."""
    if cls not in _WITH_HTTPX_BASE:
        name = cls.__name__.removeprefix("_")
        namespace = {"__module__": __name__, "__qualname__": name, "__doc__": cls.__doc__}
        _WITH_HTTPX_BASE[cls] = type(name, (cls, getattr(_httpx(), base_name)), namespace)
    return _WITH_HTTPX_BASE[cls]


# How many response body messages the app may send before the test reads them. TestClient's
# bound is Starlette's, none: each `send` waits for the test to take its message, so a test sees
# exactly how far a streaming app has got. AsyncTestClient lets the app run ahead a little, in its
# own task, and still bounds it, so that an app streaming an endless body to a test that reads
# slowly waits instead of filling memory.
_UNREAD_MESSAGES_LIMIT = 16
# How long a failed lifespan start-up or shut-down may take to raise its exception.
_LIFESPAN_FAILURE_GRACE = 5.0


def _check_order(holds: bool, kind: str, problem: str) -> None:
    """Raise Starlette's AssertionError for a message out of order (`assert` vanishes with -O)."""
    if not holds:
        raise AssertionError(f'Received "http.response.{kind}" {problem}.')


class _HTTPRun:
    """One request's run of the app and the client's side of it, on the event loop (TestClient's
    through a portal); the app's exception is kept in `error` for the client to raise."""

    def __init__(self, app: ASGIApp, scope: Scope, body: bytes, unread_limit: int) -> None:
        self.app = app
        self.scope = scope
        self.body: bytes | None = body  # None once received by the app
        self.to_client, self.from_app = anyio.create_memory_object_stream[bytes](unread_limit)
        self.start: Message | None = None
        self.trailers_expected = False
        self.body_complete = False
        self.trailers: list[tuple[bytes, bytes]] = []  # filled as they come, once declared
        self.debug_info: dict[str, Any] | None = None  # what a template response rendered
        self.error: BaseException | None = None
        self.app_returned = False

    # -- the app's side --

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        self.started = anyio.Event()  # the response started, or the app returned
        self.response_complete = anyio.Event()  # the body and any trailers are all sent
        self.returned = anyio.Event()
        try:
            with self.to_client, anyio.CancelScope() as self.cancel_scope:
                task_status.started()
                await self.app(self.scope, self.receive, self.send)
                self.app_returned = True  # not cancelled
        except anyio.get_cancelled_exc_class():
            raise
        # For the client to raise in the test; a BaseException too (a failed `pytest.raises` in
        # the app raises one), or it would stop the whole event loop instead.
        except BaseException as exc:
            self.error = exc
        finally:
            self.started.set()
            self.returned.set()

    async def receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.response_complete.is_set():  # the client hangs up once the response is done
            await self.response_complete.wait()
        # No checkpoint once it is: is_disconnected() takes only what comes without waiting.
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        handler = self._HANDLERS.get(message["type"])
        if handler is not None:  # a server ignores an extension's message it does not know
            await handler(self, message)

    async def _send_start(self, message: Message) -> None:
        if self.start is not None:  # not an `assert`: see _check_order
            raise AssertionError('Received multiple "http.response.start" messages.')
        self.start = message
        self.trailers_expected = message.get("trailers", False)
        self.started.set()

    async def _send_body(self, message: Message) -> None:
        _check_order(self.start is not None, "body", 'without "http.response.start"')
        _check_order(not self.response_complete.is_set(), "body", "after response completed")
        _check_order(not self.body_complete, "body", "after body completed")
        more_body = message.get("more_body", False)
        # Copied now: the app may reuse its buffer once `send` returns. Every message, even an
        # empty one, waits for the test to take it, so that a test sees how far the app has got.
        await self.to_client.send(bytes(message.get("body", b"")))
        self.body_complete = not more_body
        if self.body_complete and not self.trailers_expected:
            self.response_complete.set()

    async def _send_trailers(self, message: Message) -> None:
        _check_order(self.trailers_expected, "trailers", "without declaring trailers")
        _check_order(self.body_complete, "trailers", "before body completed")
        _check_order(not self.response_complete.is_set(), "trailers", "after response completed")
        self.trailers += message.get("headers", [])
        if not message.get("more_trailers", False):
            self.response_complete.set()

    async def _send_debug(self, message: Message) -> None:
        self.debug_info = message["info"]

    _HANDLERS: ClassVar[dict[str, Callable[[_HTTPRun, Message], Awaitable[None]]]] = {
        "http.response.start": _send_start,
        "http.response.body": _send_body,
        "http.response.trailers": _send_trailers,
        "http.response.debug": _send_debug,
    }

    # -- the client's side --

    async def response_start(self) -> Message | None:
        """The app's ``http.response.start``, or None if it returned without one."""
        await self.started.wait()
        return self.start

    async def next_chunk(self) -> bytes | None:
        """The next chunk of the response body, or None once the app has returned (its trailers
        and background tasks done); empty chunks and the body of a response to HEAD are skipped."""
        skip_all = self.scope["method"] == "HEAD"
        async for chunk in self.from_app:
            if chunk and not skip_all:
                return chunk
        return None

    async def finish(self) -> None:
        """Wait for the app to return, cancelling it first if its response is not complete."""
        if not self.response_complete.is_set():
            self.cancel_scope.cancel()
        await self.returned.wait()
        self.from_app.close()

    def raise_error(self, raise_server_exceptions: bool) -> None:
        """Raise what the app raised, or an error if it sent no response, when asked to."""
        if not raise_server_exceptions:
            return
        if self.error is not None:
            raise self.error
        if self.start is None and self.app_returned:
            raise AssertionError("TestClient did not receive any response.")
        if self.start is None:
            raise RuntimeError("The test client was closed before the app sent a response")


def _test_response(request: httpx.Request, run: _HTTPRun, stream: Any) -> httpx.Response:
    """The httpx response for `run`: a 500 if the app sent no response (and it is not raised)."""
    response_cls: type[httpx.Response] = _httpx().Response
    if run.start is None:
        return response_cls(500, request=request)
    headers = run.start.get("headers", [])
    response = response_cls(run.start["status"], headers=headers, stream=stream, request=request)
    # The trailers are added to this list as the app sends them, as Starlette's TestClient does.
    if run.trailers_expected:
        response.extensions["http.response.trailers"] = run.trailers
    if run.debug_info is not None:
        response.extensions["http.response.debug"] = run.debug_info
        # What a template response rendered, as Starlette's TestClient exposes it.
        for name in ("template", "context"):
            if name in run.debug_info:
                setattr(response, name, run.debug_info[name])
    return response


class _ResponseStream(_HTTPXSyncByteStream):  # type: ignore[misc, unused-ignore]
    """The body of a test response, read from the app as the test iterates it."""

    def __init__(self, portal: _Portal, run: _HTTPRun, on_close: contextlib.ExitStack) -> None:
        self._portal = portal
        self._run = run
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self._portal.call(self._run.next_chunk)) is not None:
            yield chunk

    def close(self) -> None:
        self._on_close.close()

    def abort(self) -> None:
        """Cancel the app, even if its response is complete, and close."""
        self._portal.call(self._run.cancel_scope.cancel)
        self.close()


class _Upgrade(Exception):
    """Carries a websocket handshake's scope from the transport back out through httpx to
    ``websocket_connect``, so that httpx merges the URL, headers and cookies as for a request."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope


# Marks websocket_connect's handshake request, to tell it from a request to a ws:// URL.
_HANDSHAKE_EXTENSION = "starlite.websocket_connect"


def _handshake(
    base_url: httpx.URL, url: str, subprotocols: Sequence[str] | None, kwargs: dict[str, Any]
) -> tuple[httpx.URL, dict[str, Any]]:
    """The URL and request arguments of a websocket handshake to `url`, relative to `base_url`:
    `kwargs` with the handshake's own headers added to theirs, offering `subprotocols`."""
    http_url = base_url.join(url)
    ws_url = http_url.copy_with(scheme="wss" if http_url.scheme == "https" else "ws")
    headers = dict(kwargs.get("headers") or {})
    headers.setdefault("connection", "upgrade")
    headers.setdefault("sec-websocket-key", "testserver==")
    headers.setdefault("sec-websocket-version", "13")
    if subprotocols is not None:
        headers.setdefault("sec-websocket-protocol", ", ".join(subprotocols))
    extensions = {**(kwargs.get("extensions") or {}), _HANDSHAKE_EXTENSION: True}
    return ws_url, {**kwargs, "headers": headers, "extensions": extensions}


class _TransportToApp:
    """What the test clients' transports share: the app, and the scope a request gets."""

    def __init__(
        self, app: ASGIApp, raise_server_exceptions: bool, root_path: str, client: tuple[str, int]
    ) -> None:
        self.app = app
        self.raise_server_exceptions = raise_server_exceptions
        self.root_path = root_path
        self.client = client
        self.app_state: dict[str, Any] = {}  # what the lifespan yields, copied for each request

    def scope_for(self, request: httpx.Request) -> Scope:
        """The ASGI scope a server would give the app for `request`; `websocket_connect`'s handshake
        goes back out through httpx as `_Upgrade`, for the client to open its session with."""
        url = request.url
        headers = [(name.lower(), value) for name, value in request.headers.raw]
        if not any(name == b"host" for name, _ in headers):
            headers.insert(0, (b"host", url.netloc))
        port = _DEFAULT_PORTS.get(url.scheme, 80) if url.port is None else url.port
        scope = {
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "root_path": self.root_path,
            "query_string": url.query,
            "headers": headers,
            "client": self.client,
            "server": (url.host, port),
            "state": dict(self.app_state),
        }
        if url.scheme not in ("ws", "wss"):
            extensions: dict[str, Any] = {"http.response.debug": {}, "http.response.trailers": {}}
            return {"type": "http", "method": request.method, **scope, "extensions": extensions}
        if not request.extensions.get(_HANDSHAKE_EXTENSION):
            raise RuntimeError(
                f"{url.scheme}:// URLs are opened with websocket_connect(), not requested"
            )
        protocols = request.headers.get("sec-websocket-protocol", "").split(",")
        scope["type"] = "websocket"
        scope["subprotocols"] = [protocol.strip() for protocol in protocols if protocol.strip()]
        scope["extensions"] = {"websocket.http.response": {}}
        raise _Upgrade(scope)


class _TestClientTransport(_TransportToApp, _HTTPXBaseTransport):  # type: ignore[misc, unused-ignore]
    """An httpx transport that answers requests by calling an ASGI app, through a portal."""

    def __init__(
        self,
        app: ASGIApp,
        portal_factory: Callable[[], contextlib.AbstractContextManager[Any]],
        raise_server_exceptions: bool,
        root_path: str,
        client: tuple[str, int],
    ) -> None:
        super().__init__(app, raise_server_exceptions, root_path, client)
        self.portal_factory = portal_factory
        self.open_streams: set[_ResponseStream] = set()  # responses the test has not closed

    def close(self) -> None:
        """Cancel the apps of the responses still open: the client is closing."""
        with contextlib.ExitStack() as stack:  # every one, whatever one of them raises
            while self.open_streams:
                stack.callback(self.open_streams.pop().abort)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        scope = self.scope_for(request)
        # No unread messages: each `send` of the app waits for the test to read, as in Starlette.
        run = _HTTPRun(self.app, scope, request.read(), unread_limit=0)
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(self.portal_factory())
            portal.start_task(run.run)
            stack.callback(self._finish, portal, run)
            if portal.call(run.response_start) is None:
                stack.close()  # raises the app's exception, if it raised one and we should
                return _test_response(request, run, None)
            on_close = stack.pop_all()
        stream = _with_httpx_base(_ResponseStream, "SyncByteStream")(portal, run, on_close)
        self.open_streams.add(stream)
        on_close.callback(self.open_streams.discard, stream)
        return _test_response(request, run, stream)

    def _finish(self, portal: _Portal, run: _HTTPRun) -> None:
        portal.call(run.finish)
        run.raise_error(self.raise_server_exceptions)


# How long the app may take to return once the test has closed its websocket, at most: it is
# cancelled sooner if it waits for something that will not come.
_WEBSOCKET_CLOSE_GRACE = 5.0

# How the sync TestClient runs the app
#
# A test calls TestClient as plain, blocking code, and the app is async: it must run on an event
# loop, and the test's thread has none running. So the test client starts one in a thread of its
# own, through anyio's blocking portal (_start_blocking_portal). ``portal.call(f, ...)`` runs the
# async function `f` on that loop and blocks the test's thread until it returns, then returns its
# value there, or raises its exception there; ``portal.start_task`` starts a task on the loop that
# goes on running while the test's thread does other things.
#
# Inside ``with TestClient(app)``, one portal serves the whole block: the lifespan runs in it as a
# task from start-up to shut-down, and every request and websocket session uses the same loop, as
# under a server. Outside ``with``, each request starts a portal of its own, and it ends when the
# request's response is closed.
#
# A request (_TestClientTransport.handle_request) becomes a _HTTPRun, whose `run` is started as
# a task on the loop: the app runs there, receiving the request body and sending its messages to
# the _HTTPRun. The test's thread blocks in ``portal.call(run.response_start)`` until the app has
# started its response (or returned without one). The body is not read then: each chunk is
# fetched with a ``portal.call(run.next_chunk)`` as httpx reads the response, and the channel
# between them holds no message, so each `send` of the app's body waits until the test takes it,
# and a streamed response is seen as far as the app has got. Closing the response calls
# ``run.finish`` through the portal: it cancels the app if its response is not complete, and waits
# for it to return (background tasks included). What the app raised was kept on the loop, so as
# not to stop it, and is raised in the test's thread then.
#
# A WebSocketTestSession does the same with a _WebSocketRun, each of its methods called through
# the portal; it and the lifespan's start-up and shut-down raise the app's errors through
# _call_in_portal, which carries them out of the loop the same way. AsyncTestClient needs no
# portal: it awaits the same runs on the test's own loop (an AsyncWebSocketTestSession is a
# _WebSocketRun).


def _start_blocking_portal(
    backend: str, backend_options: dict[str, Any]
) -> contextlib.AbstractContextManager[_Portal]:
    """An event loop in a thread of its own, for a TestClient to call the app on."""
    import anyio.from_thread  # lazily: see the imports

    return anyio.from_thread.start_blocking_portal(backend, backend_options)


def _call_in_portal(portal: _Portal, func: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``portal.call(func, *args)``, but what `func` raises is raised in the test's thread as
    itself: anyio lets a BaseException that is not an Exception (`pytest.fail` called in the
    app) stop the portal's event loop too, and the test would see a CancelledError."""

    async def carrying_errors() -> tuple[T | None, BaseException | None]:
        try:
            return await func(*args), None
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:
            return None, exc

    result, error = portal.call(carrying_errors)
    if error is not None:
        raise error
    return cast(T, result)


class _WebSocketRun:
    """One websocket's run of the app and the client's side of it, on the event loop from its making
    (an AsyncWebSocketTestSession is one); the app's exception is kept in `error` for the test."""

    def __init__(
        self, app: ASGIApp, scope: Scope, raise_server_exceptions: bool, unread_limit: float
    ) -> None:
        self.app = app
        self.scope = scope
        self.raise_server_exceptions = raise_server_exceptions
        self.to_app, self.app_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self.app_outbox, self.from_app = anyio.create_memory_object_stream[Message](unread_limit)
        # Queued before the app starts: an app that refuses without reading it is fine.
        self.to_app.send_nowait({"type": "websocket.connect"})
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] | None = None
        self.closed = False  # by either side: leaving need not send a close
        self.error: BaseException | None = None
        self.returned = anyio.Event()
        self.cancel_scope = anyio.CancelScope()  # entered by `_run_app`, whenever that starts

    # -- the app's side --

    async def _run_app(self) -> None:
        try:
            # The app's ends close when it returns: the test sees that as the end of the stream.
            with self.app_inbox, self.app_outbox, self.cancel_scope:
                await self.app(self.scope, self.app_inbox.receive, self.app_outbox.send)
        except anyio.get_cancelled_exc_class():
            raise
        # For the test to raise; a BaseException too, as for a request (`_HTTPRun.run`).
        except BaseException as exc:
            self.error = exc
        finally:
            self.returned.set()

    # -- the client's side --

    async def _accept(self) -> None:
        """Wait for the app's ``websocket.accept``; raise if it refuses or denies instead."""
        message = await self._receive_frame()
        self.accepted_subprotocol = message.get("subprotocol")
        self.extra_headers = message.get("headers")

    async def send(self, message: Message) -> None:
        try:
            await self.to_app.send(message)
        except anyio.BrokenResourceError:
            raise WebSocketDisconnected("The app has already closed the websocket") from None

    async def send_text(self, data: str) -> None:
        await self.send({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self.send({"type": "websocket.receive", "bytes": data})

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        await self.send(_json_frame("websocket.receive", data, mode))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = True
        await self.send({"type": "websocket.disconnect", "code": code, "reason": reason or ""})

    async def receive(self) -> Message:
        """The app's next ASGI message; raises what the app raised if it returned with an error."""
        try:
            return await self.from_app.receive()
        except anyio.EndOfStream:
            pass
        await self.returned.wait()  # the app's ends close just before it is done
        if self.error is not None and self.raise_server_exceptions:
            raise self.error
        # An app that returns without closing: the server closes for it (ASGI spec).
        return {"type": "websocket.close", "code": 1000, "reason": ""}

    async def _receive_frame(self) -> Message:
        """The app's next message; raise `WebSocketDisconnect` if it is a close, and
        `WebSocketDenialResponse` if it starts an HTTP response."""
        message = await self.receive()
        if message["type"] == "websocket.close":
            self.closed = True
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason", ""))
        if message["type"] == "websocket.http.response.start":
            self.closed = True
            raise await self._denial(message)
        return message

    async def receive_text(self) -> str:
        return (await self._receive_frame())["text"]  # type: ignore[no-any-return]

    async def receive_bytes(self) -> bytes:
        return (await self._receive_frame())["bytes"]  # type: ignore[no-any-return]

    async def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        _check_mode(mode)
        message = await self._receive_frame()
        return json.loads(message["text"] if mode == "text" else message["bytes"])

    async def _denial(self, start: Message) -> WebSocketDenialResponse:
        body = b""
        more_body = True
        while more_body:
            part = await self.receive()
            body += part.get("body", b"")
            more_body = part.get("more_body", False) and part["type"] != "websocket.close"
        status, headers = start["status"], start.get("headers", [])
        return _websocket_denial_response_class()(status, headers=headers, content=body)  # type: ignore[call-arg, unused-ignore]

    async def _leave(self) -> None:
        """Close the websocket unless a side has, let the app return, and raise its error."""
        try:
            if not self.closed:
                # The app may have returned (closing its end) since the last receive.
                with contextlib.suppress(WebSocketDisconnected):
                    await self.close(1000, None)
            if not self.returned.is_set():
                await self._settle()
        finally:
            # Even if the test is cancelled, the app is cancelled and its clean-up waited for,
            # within a bound: an app that ignores its cancellation does not hang the test.
            self.cancel_scope.cancel()
            with anyio.move_on_after(_WEBSOCKET_CLOSE_GRACE, shield=True):
                await self.returned.wait()
            self.to_app.close()
            self.from_app.close()
        if self.error is not None and self.raise_server_exceptions:
            raise self.error

    @staticmethod
    async def _settle() -> None:
        """Let the app run after the close until it returns or every task waits (an app awaiting for
        ever): its clean-up runs, yet leaving is not held up (Starlette cancels the app at once)."""
        with anyio.move_on_after(_WEBSOCKET_CLOSE_GRACE):
            await anyio.wait_all_tasks_blocked()


class WebSocketTestSession:
    """A websocket to the app under test, for ``with``: entering waits for the app to accept (or
    raises `WebSocketDisconnect` or `WebSocketDenialResponse`); leaving closes it."""

    __test__ = False  # not a test class for pytest

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        portal_factory: Callable[[], contextlib.AbstractContextManager[Any]],
        raise_server_exceptions: bool = True,
    ) -> None:
        self.app = app
        self.scope = scope
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] | None = None
        self._portal_factory = portal_factory
        self._raise_server_exceptions = raise_server_exceptions

    def __enter__(self) -> WebSocketTestSession:
        with contextlib.ExitStack() as stack:
            self.portal: _Portal
            self.portal = stack.enter_context(self._portal_factory())
            # Every message waits in the app's outbox until read, without bound, as in Starlette.
            run = self.portal.call(
                _WebSocketRun, self.app, self.scope, self._raise_server_exceptions, math.inf
            )
            self._run = run
            self.portal.start_task_soon(run._run_app)
            stack.callback(_call_in_portal, self.portal, run._leave)
            _call_in_portal(self.portal, run._accept)
            self.accepted_subprotocol = run.accepted_subprotocol
            self.extra_headers = run.extra_headers
            self._exit_stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._exit_stack.close()

    def send(self, message: Message) -> None:
        _call_in_portal(self.portal, self._run.send, message)

    def send_text(self, data: str) -> None:
        _call_in_portal(self.portal, self._run.send_text, data)

    def send_bytes(self, data: bytes) -> None:
        _call_in_portal(self.portal, self._run.send_bytes, data)

    def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        _call_in_portal(self.portal, self._run.send_json, data, mode)

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        _call_in_portal(self.portal, self._run.close, code, reason)

    def receive(self) -> Message:
        """The app's next ASGI message; raises what the app raised if it returned with an error."""
        return _call_in_portal(self.portal, self._run.receive)

    def receive_text(self) -> str:
        """The next text frame; raises `WebSocketDisconnect` when the app closes."""
        return _call_in_portal(self.portal, self._run.receive_text)

    def receive_bytes(self) -> bytes:
        """The next binary frame; raises `WebSocketDisconnect` when the app closes."""
        return _call_in_portal(self.portal, self._run.receive_bytes)

    def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        return _call_in_portal(self.portal, self._run.receive_json, mode)


class AsyncWebSocketTestSession(_WebSocketRun):
    """WebSocketTestSession's API, awaited, from ``AsyncTestClient.websocket_connect``: the app runs
    in the client's task group, a few messages ahead of the test at most. Not in Starlette."""

    __test__ = False  # not a test class for pytest

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        task_group: anyio.abc.TaskGroup,
        raise_server_exceptions: bool = True,
    ) -> None:
        super().__init__(app, scope, raise_server_exceptions, _UNREAD_MESSAGES_LIMIT)
        self._task_group = task_group

    async def __aenter__(self) -> AsyncWebSocketTestSession:
        self._task_group.start_soon(self._run_app)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._leave)
            await self._accept()
            stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._leave()


class _LifespanServer:
    """The server's side of the ASGI lifespan protocol for the test clients, on the event loop."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self.to_app, self.app_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self.app_outbox, self.from_app = anyio.create_memory_object_stream[Message](math.inf)
        self.error: BaseException | None = None
        self.returned = anyio.Event()
        self.cancel_scope = anyio.CancelScope()  # entered by `run`, whenever that starts

    async def run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        try:
            with self.app_inbox, self.app_outbox, self.cancel_scope:
                await self.app(scope, self.app_inbox.receive, self.app_outbox.send)
        except anyio.get_cancelled_exc_class():
            raise
        # For start_up or shut_down to raise in the test; a BaseException too, as for a request.
        except BaseException as exc:
            self.error = exc
        finally:
            self.returned.set()

    async def start_up(self) -> None:
        await self._expect_complete("startup")

    async def shut_down(self) -> None:
        await self._expect_complete("shutdown")
        await self._returned()

    def close(self) -> None:
        """Close the server's ends of the channels (the app closes its own when it returns)."""
        self.to_app.close()
        self.from_app.close()

    async def _returned(self) -> None:
        """Wait for the app to return; raise what it raised."""
        await self.returned.wait()
        if self.error is not None:
            raise self.error

    async def _expect_complete(self, event: str) -> None:
        # What an app that has returned sent is still read, so that the answer does not depend on
        # whether it returned before the event was sent.
        with contextlib.suppress(anyio.BrokenResourceError):
            await self.to_app.send({"type": f"lifespan.{event}"})
        try:
            message = await self.from_app.receive()
        except anyio.EndOfStream:  # the app returned: it does not do lifespan, or it raised
            await self._returned()
            return
        if message["type"] == f"lifespan.{event}.complete":
            return
        if message["type"] != f"lifespan.{event}.failed":
            raise RuntimeError(f"Unexpected lifespan message: {message['type']!r}")
        # The app's own exception, if it raises one, says best what went wrong.
        with anyio.move_on_after(_LIFESPAN_FAILURE_GRACE):
            await self._returned()
        self.cancel_scope.cancel()
        raise RuntimeError(f"Lifespan {event} failed: {message.get('message', '')}")


# What an ASGI 2 app returns when called with the scope: the test clients accept those apps too.
ASGIInstance: TypeAlias = Callable[[Receive, Send], Awaitable[None]]


def _asgi3_app(app: ASGIApp | Callable[[Scope], ASGIInstance]) -> ASGIApp:
    """`app` as an ASGI 3 app, if it is an ASGI 2 one (which, called with the scope alone, returns
    the coroutine function to call with `receive` and `send`); an ASGI 3 class is awaitable."""
    if hasattr(app, "__await__") if inspect.isclass(app) else _is_async_callable(app):
        return cast(ASGIApp, app)

    async def asgi3(scope: Scope, receive: Receive, send: Send) -> None:
        await cast(Callable[[Scope], ASGIInstance], app)(scope)(receive, send)

    return asgi3


def _test_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """A test client's default headers: `headers`, with ``User-Agent: testclient`` unless given."""
    headers = dict(headers or {})
    if not any(name.lower() == "user-agent" for name in headers):
        headers["user-agent"] = "testclient"
    return headers


class _TestClient(_HTTPXClient):  # type: ignore[misc, unused-ignore]
    """A synchronous HTTP client that calls an ASGI app (3, or 2) in-process; an ``httpx.Client``.
    Closing a response the app has not finished, or the client, cancels the app."""

    __test__ = False  # not a test class for pytest, whatever its name says
    portal: _Portal | None = None  # the event loop of ``with``, while in it

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        root_path: str = "",
        backend: Literal["asyncio", "trio"] = "asyncio",
        backend_options: dict[str, Any] | None = None,
        cookies: httpx._types.CookieTypes | None = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
        client: tuple[str, int] = ("testclient", 50000),
    ) -> None:
        self.app = _asgi3_app(app)
        self.backend = backend
        self.backend_options = backend_options or {}
        self._transport_to_app = _with_httpx_base(_TestClientTransport, "BaseTransport")(
            self.app, self._portal, raise_server_exceptions, root_path, client
        )
        self.app_state = self._transport_to_app.app_state
        super().__init__(
            base_url=base_url,
            headers=_test_headers(headers),
            transport=self._transport_to_app,
            follow_redirects=follow_redirects,
            cookies=cookies,
        )

    @contextlib.contextmanager
    def _portal(self) -> Iterator[_Portal]:
        """The lifespan's event loop inside ``with``; a new one for each request outside."""
        if self.portal is not None:
            yield self.portal
        else:
            with _start_blocking_portal(self.backend, self.backend_options) as portal:
                yield portal

    def __enter__(self) -> _TestClient:
        # Not httpx's __enter__ and __exit__, which would close the client for good: a TestClient
        # may be entered again, and used outside ``with`` before and after, as Starlette's.
        with contextlib.ExitStack() as stack:
            portal = stack.enter_context(_start_blocking_portal(self.backend, self.backend_options))
            stack.callback(setattr, self, "portal", None)
            self._lifespan = portal.call(_LifespanServer, self.app, self.app_state)
            stack.callback(self._lifespan.close)
            self.task = portal.start_task_soon(self.lifespan)
            _call_in_portal(portal, self.wait_startup)
            self.portal = portal
            stack.callback(_call_in_portal, portal, self.wait_shutdown)
            # First of all, before the shut-down: cancel the apps of responses left open.
            stack.callback(self._transport_to_app.close)
            self._exit_stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._exit_stack.close()

    async def lifespan(self) -> None:
        """Run the app's lifespan scope, inside ``with``."""
        await self._lifespan.run()

    async def wait_startup(self) -> None:
        """Send ``lifespan.startup`` and wait for the app's answer; raise if start-up failed."""
        await self._lifespan.start_up()

    async def wait_shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the app to return; raise if it failed."""
        await self._lifespan.shut_down()

    def request(self, method: str, url: httpx._types.URLTypes, **kwargs: Any) -> httpx.Response:
        """Send a request, as httpx does; `timeout` warns: it means nothing to an app in-process."""
        client_default = _httpx().USE_CLIENT_DEFAULT
        if kwargs.get("timeout", client_default) is not client_default:
            warnings.warn(
                "You should not use the 'timeout' argument with the TestClient. "
                "See https://github.com/Kludex/starlette/issues/1108 for more information.",
                StarletteDeprecationWarning,
                stacklevel=2,
            )
        return super().request(method, url, **kwargs)

    def websocket_connect(
        self, url: str, subprotocols: Sequence[str] | None = None, **kwargs: Any
    ) -> WebSocketTestSession:
        """Open a websocket to the app at `url` (relative to `base_url`); use the session in a
        ``with`` block. `headers` and other keyword arguments go to the handshake request."""
        ws_url, request_kwargs = _handshake(self.base_url, url, subprotocols, kwargs)
        try:
            self.request("GET", ws_url, **request_kwargs)
        except _Upgrade as upgrade:
            raise_errors = self._transport_to_app.raise_server_exceptions
            return WebSocketTestSession(self.app, upgrade.scope, self._portal, raise_errors)
        raise RuntimeError("The transport did not open a websocket")  # unreachable by design


class _AsyncResponseStream(_HTTPXAsyncByteStream):  # type: ignore[misc, unused-ignore]
    """The body of an async test response, read from the app as the test iterates it."""

    def __init__(self, run: _HTTPRun, raise_server_exceptions: bool) -> None:
        self._run = run
        self._raise_server_exceptions = raise_server_exceptions

    def __aiter__(self) -> _AsyncResponseStream:
        return self  # an iterator object, not a generator: nothing to finalise if left early

    async def __anext__(self) -> bytes:
        chunk = await self._run.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        await self._run.finish()
        self._run.raise_error(self._raise_server_exceptions)


class _AsyncTestClientTransport(_TransportToApp, _HTTPXAsyncBaseTransport):  # type: ignore[misc, unused-ignore]
    """An httpx async transport calling an ASGI app, each request in the client's task group."""

    task_group: anyio.abc.TaskGroup | None = None

    def open_task_group(self) -> anyio.abc.TaskGroup:
        """The task group the apps run in; only there while the client is open."""
        if self.task_group is None:
            raise RuntimeError(
                "Use AsyncTestClient in 'async with AsyncTestClient(app) as client:'"
            )
        return self.task_group

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        task_group = self.open_task_group()
        scope = self.scope_for(request)
        run = _HTTPRun(self.app, scope, await request.aread(), _UNREAD_MESSAGES_LIMIT)
        await task_group.start(run.run)
        if await run.response_start() is None:
            await run.finish()
            run.raise_error(self.raise_server_exceptions)
            return _test_response(request, run, None)
        stream_cls = _with_httpx_base(_AsyncResponseStream, "AsyncByteStream")
        return _test_response(request, run, stream_cls(run, self.raise_server_exceptions))


class _AsyncTestClient(_HTTPXAsyncClient):  # type: ignore[misc, unused-ignore]
    """An async HTTP client that calls an ASGI app in-process, in ``async with``; an
    ``httpx.AsyncClient``. Not in Starlette: its users combine asgi-lifespan with httpx's
    ASGITransport, which reads a whole response before returning it."""

    __test__ = False  # not a test class for pytest, whatever its name says

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        root_path: str = "",
        cookies: httpx._types.CookieTypes | None = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
        client: tuple[str, int] = ("testclient", 50000),
    ) -> None:
        self.app = _asgi3_app(app)
        self._transport_to_app = _with_httpx_base(_AsyncTestClientTransport, "AsyncBaseTransport")(
            self.app, raise_server_exceptions, root_path, client
        )
        self.app_state = self._transport_to_app.app_state
        super().__init__(
            base_url=base_url,
            headers=_test_headers(headers),
            transport=self._transport_to_app,
            follow_redirects=follow_redirects,
            cookies=cookies,
        )

    async def __aenter__(self) -> _AsyncTestClient:
        # Not httpx's __aenter__ and __aexit__, which would close the client for good: it may be
        # entered again, as TestClient may.
        async with contextlib.AsyncExitStack() as stack:
            task_group = await stack.enter_async_context(_TaskGroup())
            # At the end, after the shut-down: stop the runs of responses the test left unread.
            stack.callback(task_group.cancel_scope.cancel)
            lifespan = _LifespanServer(self.app, self.app_state)
            stack.callback(lifespan.close)
            task_group.start_soon(lifespan.run)
            await lifespan.start_up()
            self._transport_to_app.task_group = task_group
            stack.callback(setattr, self._transport_to_app, "task_group", None)
            stack.push_async_callback(lifespan.shut_down)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._exit_stack.__aexit__(*exc_info)

    @contextlib.asynccontextmanager
    async def websocket_connect(
        self, url: str, subprotocols: Sequence[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[AsyncWebSocketTestSession]:
        """Open a websocket to the app at `url` in ``async with``, as TestClient's does."""
        ws_url, request_kwargs = _handshake(self.base_url, url, subprotocols, kwargs)
        try:
            await self.request("GET", ws_url, **request_kwargs)
        except _Upgrade as upgrade:
            scope = upgrade.scope
        else:
            raise RuntimeError("The transport did not open a websocket")  # unreachable by design
        transport = self._transport_to_app
        async with AsyncWebSocketTestSession(
            self.app, scope, transport.open_task_group(), transport.raise_server_exceptions
        ) as session:
            yield session


@functools.cache
def _websocket_denial_response_class() -> type[WebSocketDenialResponse]:
    """WebSocketDenialResponse: an httpx.Response and WebSocketDisconnect, made on first use."""
    doc = "A websocket handshake the app answered with an HTTP response."
    namespace = {"__module__": __name__, "__doc__": doc}
    bases = (_httpx().Response, WebSocketDisconnect)
    return type("WebSocketDenialResponse", bases, namespace)


if TYPE_CHECKING:
    TestClient = _TestClient
    AsyncTestClient = _AsyncTestClient

    class WebSocketDenialResponse(httpx.Response, WebSocketDisconnect):  # type: ignore[misc]
        """A websocket handshake the app answered with an HTTP response."""


# The public classes built on httpx's, by name (see the start of this section): how to build
# each, and what its stand-in subclasses when httpx is missing.
_HTTPX_CLASSES: dict[str, tuple[Callable[[], type[Any]], type[Any]]] = {
    "TestClient": (lambda: _with_httpx_base(_TestClient, "Client"), _TestClient),
    "AsyncTestClient": (
        lambda: _with_httpx_base(_AsyncTestClient, "AsyncClient"),
        _AsyncTestClient,
    ),
    "WebSocketDenialResponse": (_websocket_denial_response_class, WebSocketDisconnect),
}


@functools.cache
def _httpx_class(name: str) -> type[Any]:
    """The class `name`; without httpx (or httpx2), a stand-in that can still be imported (``from
    starlite import *`` too) and raises the ImportError naming what to install when one is made."""
    build, stand_in_base = _HTTPX_CLASSES[name]
    try:
        return build()
    except ImportError as exc:
        message = str(exc)

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise ImportError(message)

    namespace = {"__module__": __name__, "__qualname__": name, "__doc__": message}
    return type(name, (stand_in_base,), {**namespace, "__new__": refuse})


def __getattr__(name: str) -> Any:
    """Build the classes that need httpx when first looked up: only then is httpx imported."""
    if name in _HTTPX_CLASSES:
        return _httpx_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ==== Standing in for Starlette ====
# install_as_starlette(): from then on `import starlette.*` gives starlite's names, so that
# packages built on Starlette (FastAPI, sse-starlette, ...) run on starlite. It forwards, and
# never writes or copies a file.

# The release of Starlette whose API starlite follows: what ``starlette.__version__`` reads.
_STARLETTE_API_VERSION = "1.10.0"


def _handling_exceptions(app: ASGIApp, connection: HTTPConnection) -> ASGIApp:
    """`app` with its exceptions answered by their handlers: wrap_app_handling_exceptions."""

    async def handling_app(scope: Scope, receive: Receive, send: Send) -> None:
        tracked_send = _StartNotingSend(send)
        try:
            await app(scope, receive, tracked_send)
        except Exception as exc:
            await _answer_exception(exc, scope, receive, tracked_send, connection)

    return handling_app


# Starlette 1.10's modules. Each one offers every name of starlite's __all__ (which are
# Starlette's own); `starlette.status` offers those of the status object (_StarletteStatusModule).
_STARLETTE_MODULES: dict[str, dict[str, Any]] = {
    f"starlette.{name}": {}
    for names in (
        ("applications", "authentication", "background", "concurrency", "config", "convertors"),
        ("datastructures", "endpoints", "exceptions", "formparsers", "requests", "responses"),
        ("routing", "staticfiles", "status", "templating", "testclient", "types", "websockets"),
        ("middleware", "middleware.authentication", "middleware.base", "middleware.body_limit"),
        ("middleware.cors", "middleware.errors", "middleware.exceptions", "middleware.gzip"),
        ("middleware.httpsredirect", "middleware.sessions", "middleware.trustedhost"),
    )
    for name in names
}
# And the names that Starlette spells differently, or keeps in private modules that packages
# built on it import nonetheless.
_STARLETTE_MODULES |= {
    "starlette": {"__version__": _STARLETTE_API_VERSION},
    "starlette._exception_handler": {"wrap_app_handling_exceptions": _handling_exceptions},
    "starlette._utils": {"is_async_callable": _is_async_callable, "get_route_path": _route_path},
    "starlette.applications": {"Starlette": Starlite},
    "starlette.middleware": {"_MiddlewareFactory": _MiddlewareFactory},
    "starlette.middleware.body_limit": {
        "_RequestBodyTooLarge": _BodyTooLarge,
        "_RequestBodyLimitResponseSent": _ResponseReplaced,
    },
}

# Starlette's modules that starlite does not carry, and what to use instead.
_STARLETTE_MODULES_NOT_CARRIED = {
    "starlette.middleware.wsgi": "Starlette deprecated it: serve a WSGI app with a2wsgi",
    "starlette.middleware.opentelemetry": "use opentelemetry-instrumentation-asgi",
    "starlette.schemas": "describe the API with a schema library of your choice",
}


class _StarletteModule(ModuleType):
    """A ``starlette.*`` module made by install_as_starlette(): its names are starlite's."""

    def __init__(self, name: str) -> None:
        super().__init__(name, f"starlite standing in for {name}")
        self.__dict__.update(_STARLETTE_MODULES[name])

    def __getattr__(self, name: str) -> Any:
        # Read from the module, not globals(): the test client's classes are made on first use.
        if name in __all__:
            return getattr(sys.modules[__name__], name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*self.__dict__, *__all__})


class _StarletteStatusModule(ModuleType):
    """``starlette.status``: the names of starlite's `status`, deprecated ones warning as read."""

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(status, name)
        except AttributeError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None

    def __dir__(self) -> list[str]:
        return dir(status)


class _StarletteFinder:
    """The import system's finder and loader of the ``starlette`` modules; not a subclass of
    importlib.abc's, whose import would add a tenth to the time ``import starlite`` takes."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec | None:
        if fullname in _STARLETTE_MODULES:
            loader = cast("importlib.abc.Loader", self)
            is_package = fullname in ("starlette", "starlette.middleware")
            return ModuleSpec(fullname, loader, origin=__name__, is_package=is_package)
        if fullname in _STARLETTE_MODULES_NOT_CARRIED:
            instead = _STARLETTE_MODULES_NOT_CARRIED[fullname]
            raise ModuleNotFoundError(
                f"starlite does not carry {fullname}: {instead}", name=fullname
            )
        return None  # a module Starlette does not have either: not found, as with Starlette

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        if spec.name == "starlette.status":
            return _StarletteStatusModule(spec.name)
        return _StarletteModule(spec.name)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module reads its names from starlite."""


def install_as_starlette() -> None:
    """Make ``import starlette.*`` (Starlette 1.10's modules) give starlite's names, so that FastAPI
    and other packages built on Starlette run on starlite; call it before importing any of them."""
    if any(isinstance(finder, _StarletteFinder) for finder in sys.meta_path):
        return
    imported = sorted(name for name in sys.modules if name.partition(".")[0] == "starlette")
    if imported:
        raise RuntimeError(
            f"install_as_starlette() must be called before Starlette is imported, but {imported[0]}"
            " is already: call it first thing, before importing fastapi or any package built on"
            " Starlette"
        )
    sys.meta_path.insert(0, _StarletteFinder())
