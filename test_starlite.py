"""Tests of starlite.py, in the order of its sections."""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx
import pytest
from blockbuster import BlockBuster, blockbuster_ctx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import starlite
from starlite import (
    URL,
    Address,
    BackgroundTask,
    BackgroundTasks,
    ClientDisconnect,
    CommaSeparatedStrings,
    FileResponse,
    Headers,
    HTMLResponse,
    HTTPConnection,
    ImmutableMultiDict,
    JSONResponse,
    Message,
    MultiDict,
    MutableHeaders,
    PlainTextResponse,
    QueryParams,
    Receive,
    RedirectResponse,
    Request,
    Response,
    Scope,
    Secret,
    Send,
    State,
    StreamingResponse,
    TestClient,
    URLPath,
    cookie_parser,
    iterate_in_threadpool,
    run_in_threadpool,
)

PROJECT_ROOT = Path(__file__).resolve().parent

Backend = Literal["asyncio", "trio"]


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


def test_unknown_module_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = starlite.NoSuchName


def test_test_client_without_httpx_names_the_extra_to_install() -> None:
    # A None entry in sys.modules makes `import httpx` fail as if it were not installed.
    result = run_python(
        "import sys\n"
        "sys.modules['httpx'] = sys.modules['httpx2'] = None\n"
        "import starlite\n"
        "try:\n"
        "    starlite.TestClient\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'starlite-asgi[testclient]'" in result.stdout


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


def test_import_extra_reraises_a_missing_dependency_of_an_installed_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed extra that is itself broken must not be reported as "not installed".
    (tmp_path / "broken_extra.py").write_text("import no_such_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_module_anywhere"):
        starlite._import_extra("testclient", "broken_extra")


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
async def test_request_stream_consumed_twice_raises_runtime_error() -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(b"once")))
    assert b"".join([chunk async for chunk in request.stream()]) == b"once"
    with pytest.raises(RuntimeError, match=r"(?i)consumed"):
        await drain(request.stream())


@pytest.mark.anyio
async def test_request_body_after_consuming_the_stream_raises_runtime_error() -> None:
    request = Request(make_scope(method="POST"), ScriptedReceive(body_message(b"once")))
    await drain(request.stream())
    with pytest.raises(RuntimeError, match=r"(?i)consumed"):
        await request.body()


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


@pytest.mark.anyio
async def test_request_json_on_non_utf8_body_raises_value_error() -> None:
    request = Request(
        make_scope(method="POST"), ScriptedReceive(body_message(b'{"a": "\xff\xfe\xfd"}'))
    )
    # json.loads raises UnicodeDecodeError here: a ValueError, like JSONDecodeError.
    with pytest.raises(ValueError, match="can't decode"):
        await request.json()


@pytest.mark.anyio
async def test_request_without_receive_channel_raises_runtime_error_on_body() -> None:
    request = Request(make_scope(method="POST"))
    with pytest.raises(RuntimeError):
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
async def test_is_disconnected_keeps_a_body_chunk_it_reads_for_the_stream() -> None:
    # A server may hand over a buffered body chunk without waiting: polling must not lose it.
    receive = ScriptedReceive(body_message(b"first", more_body=True), body_message(b"second"))
    request = Request(make_scope(method="POST"), receive)
    assert await request.is_disconnected() is False
    assert await request.body() == b"firstsecond"


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


# ==== Responses ====


async def call_asgi(
    app: Any,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> list[Message]:
    """Drive an ASGI app like a server does and return every message it sent.

    The request body is empty; `receive` then blocks until the response is complete and answers
    `http.disconnect`, as a server does once the response has been written.
    """
    messages: list[Message] = []
    response_done = anyio.Event()
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await response_done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)
        if message["type"] == "http.response.pathsend" or (
            message["type"] == "http.response.body" and not message.get("more_body", False)
        ):
            response_done.set()

    with anyio.fail_after(5):
        await app(make_scope(method=method, headers=headers, extensions=extensions), receive, send)
    return messages


def start_message(messages: list[Message]) -> Message:
    starts = [m for m in messages if m["type"] == "http.response.start"]
    assert len(starts) == 1
    return starts[0]


def sent_headers(messages: list[Message]) -> list[tuple[str, str]]:
    return [
        (k.decode("latin-1").lower(), v.decode("latin-1"))
        for k, v in start_message(messages)["headers"]
    ]


def sent_header_names(messages: list[Message]) -> set[str]:
    return {name for name, _ in sent_headers(messages)}


def sent_body(messages: list[Message]) -> bytes:
    return b"".join(
        bytes(m.get("body", b"")) for m in messages if m["type"] == "http.response.body"
    )


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
    messages = await call_asgi(PlainTextResponse("hello"), method="HEAD")
    assert dict(sent_headers(messages))["content-length"] == "5"
    assert sent_body(messages) == b""


@pytest.mark.parametrize("status_code", [100, 101, 103, 204, 304])
def test_response_has_no_content_length_for_1xx_204_304(status_code: int) -> None:
    response = Response(b"ignored", status_code=status_code)
    assert "content-length" not in response.headers


@pytest.mark.anyio
@pytest.mark.parametrize("status_code", [103, 204, 304])
async def test_response_sends_no_body_for_1xx_204_304(status_code: int) -> None:
    messages = await call_asgi(Response(b"ignored", status_code=status_code))
    assert start_message(messages)["status"] == status_code
    assert "content-length" not in sent_header_names(messages)
    assert sent_body(messages) == b""


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
    messages: list[Message] = []

    async def task() -> None:
        seen.append(len([m for m in messages if m["type"] == "http.response.body"]))

    async def record(message: Message) -> None:
        messages.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    await PlainTextResponse("x", background=BackgroundTask(task))(make_scope(), receive, record)
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

    messages = await call_asgi(StreamingResponse(chunks()))
    assert sent_body(messages) == b"abc"
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


async def _stream_until_disconnect() -> tuple[list[str], list[Message]]:
    events: list[str] = []
    messages: list[Message] = []
    first_chunk_sent = anyio.Event()

    async def endless() -> Any:
        try:
            yield b"first"
            await anyio.sleep_forever()
            yield b"never"  # pragma: no cover
        finally:
            events.append("generator finally")

    async def receive() -> Message:
        await first_chunk_sent.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)
        if message.get("body"):
            first_chunk_sent.set()

    with anyio.fail_after(2):
        await StreamingResponse(endless())(make_scope(), receive, send)
    return events, messages


@pytest.mark.anyio
async def test_streaming_response_stops_when_client_disconnects() -> None:
    events, messages = await _stream_until_disconnect()
    assert events == ["generator finally"]
    assert sent_body(messages) == b"first"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_streaming_response_leaves_no_task_behind_after_disconnect() -> None:
    tasks_before = asyncio.all_tasks()
    await _stream_until_disconnect()
    for _ in range(3):
        await asyncio.sleep(0)
    assert asyncio.all_tasks() - tasks_before == set()


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
    messages = await call_asgi(FileResponse(data_file), method="HEAD")
    assert dict(sent_headers(messages))["content-length"] == "1000"
    assert sent_body(messages) == b""


@pytest.mark.anyio
async def test_file_response_uses_pathsend_when_offered(data_file: Path) -> None:
    messages = await call_asgi(FileResponse(data_file), extensions={"http.response.pathsend": {}})
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.pathsend"]
    assert messages[1]["path"] == str(data_file)
    assert dict(sent_headers(messages))["content-length"] == "1000"


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
    messages = await call_asgi(
        FileResponse(file_in_working_directory.name), extensions={"http.response.pathsend": {}}
    )
    pathsend = [m for m in messages if m["type"] == "http.response.pathsend"]
    assert pathsend == [{"type": "http.response.pathsend", "path": str(file_in_working_directory)}]


@pytest.mark.anyio
async def test_file_response_does_not_use_pathsend_for_head(data_file: Path) -> None:
    messages = await call_asgi(
        FileResponse(data_file), method="HEAD", extensions={"http.response.pathsend": {}}
    )
    assert "http.response.pathsend" not in [m["type"] for m in messages]
    assert sent_body(messages) == b""


@pytest.mark.anyio
async def test_file_response_does_not_use_pathsend_for_ranges(data_file: Path) -> None:
    messages = await call_asgi(
        FileResponse(data_file),
        headers={"range": "bytes=10-19"},
        extensions={"http.response.pathsend": {}},
    )
    assert "http.response.pathsend" not in [m["type"] for m in messages]
    assert start_message(messages)["status"] == 206
    assert sent_body(messages) == FILE_DATA[10:20]


@pytest.mark.anyio
async def test_file_response_without_pathsend_extension_streams_body(data_file: Path) -> None:
    messages = await call_asgi(FileResponse(data_file))
    assert "http.response.pathsend" not in [m["type"] for m in messages]
    assert sent_body(messages) == FILE_DATA


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


class Boom(Exception):
    pass


async def raising_app(scope: Any, receive: Any, send: Any) -> None:
    raise Boom("kaboom")


def test_test_client_raise_server_exceptions_true_reraises_in_test(backend: Backend) -> None:
    with pytest.raises(Boom, match="kaboom"):
        TestClient(raising_app, backend=backend).get("/")


def test_test_client_raise_server_exceptions_false_gives_500(backend: Backend) -> None:
    response = TestClient(raising_app, raise_server_exceptions=False, backend=backend).get("/")
    assert response.status_code == 500


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
