"""Server-sent events: a job whose progress streams to the browser, which resumes where it left
off when the connection drops.

Serve it from the repository root with either of:

    python examples/events.py
    uvicorn examples.events:app

then open http://127.0.0.1:8000/ and watch the bar fill. ``/progress`` is the event stream:
``progress`` events with ids 1 to 100, then one ``done`` event. A browser that loses the
connection reconnects with ``Last-Event-ID``, and the stream carries on after that id instead of
starting again; ``?step_seconds=`` sets the pace (0.05 by default, at most 1).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio

from starlite import (
    EventSourceResponse,
    HTMLResponse,
    HTTPException,
    Request,
    Response,
    Route,
    ServerSentEvent,
    Starlite,
)

STEPS = 100
DEFAULT_STEP_SECONDS = 0.05
MAX_STEP_SECONDS = 1.0

PAGE = """<!DOCTYPE html>
<html lang="en">
<title>Progress</title>
<progress id="bar" max="100" value="0"></progress> <span id="label">starting</span>
<script>
  const source = new EventSource("/progress");
  source.addEventListener("progress", (event) => {
    const step = JSON.parse(event.data);
    document.getElementById("bar").value = step.percent;
    document.getElementById("label").textContent = step.percent + "%";
  });
  source.addEventListener("done", () => {
    document.getElementById("label").textContent = "done";
    source.close();  // or the browser would reconnect and ask again
  });
</script>
</html>
"""


async def home(request: Request) -> Response:
    return HTMLResponse(PAGE)


def first_step(request: Request) -> int:
    """Where to start: after the last event the client saw, if it says (it does on reconnecting)."""
    last_seen = request.headers.get("last-event-id", "0")
    # Digits, and few of them, before int(): 5,000 digits would raise ValueError (Python's limit).
    short_number = last_seen.isascii() and last_seen.isdigit() and len(last_seen) <= 3
    if not short_number or int(last_seen) > STEPS:
        raise HTTPException(400, f"Last-Event-ID must be a step from 0 to {STEPS}")
    return int(last_seen) + 1


def step_seconds(request: Request) -> float:
    text = request.query_params.get("step_seconds", str(DEFAULT_STEP_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        raise HTTPException(400, "step_seconds must be a number") from None
    if not 0 <= seconds <= MAX_STEP_SECONDS:
        raise HTTPException(400, f"step_seconds must be from 0 to {MAX_STEP_SECONDS}")
    return seconds


async def progress(request: Request) -> Response:
    """The job's progress as events; the work stops as soon as the client goes away."""
    start, pause = first_step(request), step_seconds(request)

    async def events() -> AsyncIterator[ServerSentEvent]:
        for step in range(start, STEPS + 1):
            await anyio.sleep(pause)  # the work of one step
            data = json.dumps({"percent": step * 100 // STEPS})
            yield ServerSentEvent(data, event="progress", id=str(step))
        yield ServerSentEvent("finished", event="done")

    return EventSourceResponse(events())


app = Starlite(routes=[Route("/", home), Route("/progress", progress)])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
