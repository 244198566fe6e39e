"""A small broadcast chat: one room, every message sent to everyone in it, over websockets.

The page at ``/`` joins the room through the websocket at ``/ws``. The protocol, for any client:

- the user's name comes from the query string (``/ws?name=alice``) or, without one, from the
  first message, ``{"name": "alice"}``;
- each message after that is a JSON text frame ``{"text": "hello"}``, broadcast to everyone in the
  room (the sender too) as ``{"user": "alice", "text": "hello"}``;
- joining and leaving are broadcast as ``{"event": "join", "user": "alice"}`` and
  ``{"event": "leave", "user": "alice"}``.

A frame the protocol does not allow closes that client's socket, with the RFC 6455 code that says
why: 1003 for a binary frame, a frame that is not JSON or a JSON value of the wrong shape, 1009 for
a frame longer than ``MAX_MESSAGE_LENGTH``, 1008 for a bad name.

Serve it from the repository root with either of:

    python examples/chat.py
    uvicorn examples.chat:app

then open http://127.0.0.1:8000/ in two browser tabs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from starlite import (
    HTMLResponse,
    Request,
    Response,
    Route,
    Starlite,
    WebSocket,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketException,
    WebSocketRoute,
)

# Longest frame a client may send, in characters, checked before the frame is parsed: ample for a
# chat line (IRC allows 512 bytes a line, RFC 1459 §2.3) and small enough that one client cannot
# make the server parse and copy megabytes to every member. The server's own frame limit (uvicorn's
# --ws-max-size, 16 MiB) bounds what reaches the app at all.
MAX_MESSAGE_LENGTH = 4096
# Longest user name, in characters: enough for a name, short enough for one line of the page.
MAX_NAME_LENGTH = 32
# How long one member may take to accept a broadcast message before it is dropped from the room,
# in seconds: a send only waits when that client's connection is not reading what it is sent.
SEND_TIMEOUT = 5.0

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<meta charset="utf-8">
<title>Chat</title>
<h1>Chat</h1>
<form id="join">
  <input id="name" placeholder="Your name" required autofocus>
  <button>Join</button>
</form>
<form id="say" hidden>
  <input id="text" placeholder="Message" autocomplete="off" required>
  <button>Send</button>
</form>
<ul id="log"></ul>
<script>
  const log = document.getElementById("log");
  const join = document.getElementById("join");
  const say = document.getElementById("say");
  let socket = null;

  // Messages are shown with textContent: whatever a user sends is displayed, never run as HTML.
  function show(line) {
    const item = document.createElement("li");
    item.textContent = line;
    log.append(item);
  }

  join.addEventListener("submit", (event) => {
    event.preventDefault();
    // The websocket beside this page, on the same host: ws:// for http://, wss:// for https://.
    const url = new URL("ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("name", document.getElementById("name").value);
    socket = new WebSocket(url);
    socket.addEventListener("open", () => { join.hidden = true; say.hidden = false; });
    socket.addEventListener("message", (message) => {
      const data = JSON.parse(message.data);
      if (data.event === "join") show(`${data.user} joined`);
      else if (data.event === "leave") show(`${data.user} left`);
      else show(`${data.user}: ${data.text}`);
    });
    socket.addEventListener("close", (close) => {
      show(`Disconnected (${close.code}${close.reason ? ": " + close.reason : ""})`);
      join.hidden = false;
      say.hidden = true;
    });
  });

  say.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = document.getElementById("text");
    socket.send(JSON.stringify({text: text.value}));
    text.value = "";
  });
</script>
</html>
"""


class Room:
    """The members of the chat, and a broadcast that one slow or dead member cannot hold up.

    A member whose send fails (its client has gone) or takes longer than ``SEND_TIMEOUT`` is
    dropped from the room; a dropped client that is still connected is closed at its next message.
    """

    def __init__(self) -> None:
        # A plain set: the app runs on one event loop, and a broadcast sends to a snapshot of it.
        self.members: set[WebSocket] = set()

    async def join(self, member: WebSocket, name: str) -> None:
        """Add `member` to the room and tell everyone, the newcomer too."""
        self.members.add(member)
        await self.broadcast({"event": "join", "user": name})

    async def leave(self, member: WebSocket, name: str) -> None:
        """Take `member` out of the room, if it is still in, and tell the others."""
        self.members.discard(member)
        await self.broadcast({"event": "leave", "user": name})

    async def broadcast(self, message: dict[str, Any]) -> None:
        """Send `message` to every member at once, and wait until each has it or is dropped."""
        async with anyio.create_task_group() as task_group:
            for member in list(self.members):
                task_group.start_soon(self._send, member, message)

    async def _send(self, member: WebSocket, message: dict[str, Any]) -> None:
        with anyio.move_on_after(SEND_TIMEOUT):
            try:
                await member.send_json(message)
                return
            # WebSocketDisconnect: the server could not send, the client is gone (code 1006).
            # WebSocketDisconnected: the member's socket was closed, by its own handler perhaps.
            except (WebSocketDisconnect, WebSocketDisconnected):
                pass
        self.members.discard(member)


@asynccontextmanager
async def lifespan(app: Starlite) -> AsyncIterator[dict[str, Room]]:
    """One room for the app's whole life; every websocket sees it as ``websocket.state.room``."""
    yield {"room": Room()}


async def home(request: Request) -> Response:
    """The chat page."""
    return HTMLResponse(PAGE)


async def receive_object(websocket: WebSocket) -> dict[str, Any]:
    """The client's next frame as a JSON object, or a WebSocketException closing the socket.

    ``receive_text`` itself refuses a binary frame with 1003 (unsupported data).
    """
    frame = await websocket.receive_text()
    if len(frame) > MAX_MESSAGE_LENGTH:  # before parsing: a huge frame is never parsed
        raise WebSocketException(1009, f"Messages are limited to {MAX_MESSAGE_LENGTH} characters")
    try:
        data = json.loads(frame)
    except ValueError:
        raise WebSocketException(1003, "Messages must be JSON") from None
    if not isinstance(data, dict):
        raise WebSocketException(1003, "Messages must be JSON objects")
    return data


def string_field(data: dict[str, Any], key: str) -> str:
    """``data[key]``, which must be a string, or a WebSocketException closing with 1003."""
    value = data.get(key)
    if not isinstance(value, str):
        raise WebSocketException(1003, f'Expected {{"{key}": "..."}}')
    return value


async def receive_name(websocket: WebSocket) -> str:
    """The user's name, from the query string or else the first message; 1008 if it is blank or
    too long."""
    name = websocket.query_params.get("name")
    if name is None:
        name = string_field(await receive_object(websocket), "name")
    name = name.strip()
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        raise WebSocketException(1008, f"A name is 1 to {MAX_NAME_LENGTH} characters")
    return name


async def take_part(websocket: WebSocket, name: str) -> None:
    """Join the room, broadcast each of the client's messages, and leave however it ends."""
    room: Room = websocket.state.room
    await room.join(websocket, name)
    try:
        while True:
            text = string_field(await receive_object(websocket), "text")
            if websocket not in room.members:
                raise WebSocketException(1008, "Dropped from the room: too slow to receive")
            await room.broadcast({"user": name, "text": text})
    finally:
        await room.leave(websocket, name)


async def chat(websocket: WebSocket) -> None:
    """The websocket at /ws: one member of the room."""
    await websocket.accept()
    # The client going away ends the session quietly: its close reached us (WebSocketDisconnect),
    # or a broadcast's send found out first and marked the socket closed (WebSocketDisconnected).
    # A WebSocketException goes on to the app, which closes the socket with its code and reason.
    with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
        await take_part(websocket, await receive_name(websocket))


app = Starlite(
    routes=[Route("/", home), WebSocketRoute("/ws", chat)],
    lifespan=lifespan,
)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app)
