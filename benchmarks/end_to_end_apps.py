"""The apps benchmarks/end_to_end.py serves under uvicorn: plaintext and JSON, one per framework.

Each answers ``GET /plaintext`` with ``Hello, world!`` as text/plain and ``GET /json`` with
``{"message": "Hello, world!"}`` as application/json, written the way each framework's own
documentation writes them. ``bare`` is a hand-written ASGI app: the ceiling any framework on the
same server can reach.
"""

from __future__ import annotations

import json
from typing import Any

import falcon.asgi
import starlette.applications
import starlette.responses
import starlette.routing

import starlite

HELLO = "Hello, world!"
MESSAGE = {"message": HELLO}


async def starlite_plaintext(request: starlite.Request) -> starlite.Response:
    return starlite.PlainTextResponse(HELLO)


async def starlite_json(request: starlite.Request) -> starlite.Response:
    return starlite.JSONResponse(MESSAGE)


starlite_app = starlite.Starlite(
    routes=[
        starlite.Route("/plaintext", starlite_plaintext),
        starlite.Route("/json", starlite_json),
    ]
)


async def starlette_plaintext(request: Any) -> Any:
    return starlette.responses.PlainTextResponse(HELLO)


async def starlette_json(request: Any) -> Any:
    return starlette.responses.JSONResponse(MESSAGE)


starlette_app = starlette.applications.Starlette(
    routes=[
        starlette.routing.Route("/plaintext", starlette_plaintext),
        starlette.routing.Route("/json", starlette_json),
    ]
)


class FalconPlaintext:
    async def on_get(self, request: falcon.asgi.Request, response: falcon.asgi.Response) -> None:
        response.content_type = falcon.MEDIA_TEXT
        response.text = HELLO


class FalconJSON:
    async def on_get(self, request: falcon.asgi.Request, response: falcon.asgi.Response) -> None:
        response.media = MESSAGE


falcon_app = falcon.asgi.App()
falcon_app.add_route("/plaintext", FalconPlaintext())
falcon_app.add_route("/json", FalconJSON())


def _start(content_type: bytes, body: bytes) -> dict[str, Any]:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    return {"type": "http.response.start", "status": 200, "headers": headers}


BARE_ANSWERS = {
    "/plaintext": (_start(b"text/plain; charset=utf-8", HELLO.encode()), HELLO.encode()),
    "/json": (
        _start(b"application/json", json.dumps(MESSAGE).encode()),
        json.dumps(MESSAGE).encode(),
    ),
}


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """HTTP only: the benchmark runs uvicorn with ``--lifespan off`` for every app."""
    start, body = BARE_ANSWERS[scope["path"]]
    await send(start)
    await send({"type": "http.response.body", "body": body})
