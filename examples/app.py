"""A small notes service: routes with path and query parameters, JSON, an HTML page, an error
handler, lifespan state and a background task.

Serve it from the repository root with either of:

    python examples/app.py
    uvicorn examples.app:app

then open http://127.0.0.1:8000/.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlite import (
    BackgroundTask,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    Request,
    Response,
    Route,
    Starlite,
)

# How many notes a listing returns at most, whatever `limit` asks for.
MAX_PAGE_SIZE = 100
# Longest note text accepted, in characters.
MAX_NOTE_LENGTH = 1000


@dataclass
class Notes:
    """An in-memory store of notes, created by the lifespan and shared by every request."""

    texts: dict[int, str] = field(default_factory=dict)
    audit_log: list[str] = field(default_factory=list)

    def add(self, text: str) -> int:
        note_id = max(self.texts, default=0) + 1
        self.texts[note_id] = text
        return note_id


@asynccontextmanager
async def lifespan(app: Starlite) -> AsyncIterator[dict[str, Any]]:
    """Open the store at start-up; every request sees it as ``request.state.notes``."""
    notes = Notes()
    notes.add("Welcome to starlite.")
    yield {"notes": notes}


def notes_of(request: Request) -> Notes:
    notes: Notes = request.state.notes
    return notes


async def home(request: Request) -> Response:
    """An HTML page listing the notes, each escaped."""
    items = "".join(
        f"<li><a href='{request.url_for('note', note_id=note_id)}'>{html.escape(text)}</a></li>"
        for note_id, text in notes_of(request).texts.items()
    )
    return HTMLResponse(f"<!DOCTYPE html><title>Notes</title><h1>Notes</h1><ul>{items}</ul>")


async def list_notes(request: Request) -> Response:
    """The notes as JSON; ``?limit=N`` returns the first N."""
    limit_text = request.query_params.get("limit", str(MAX_PAGE_SIZE))
    if not (limit_text.isascii() and limit_text.isdigit() and len(limit_text) <= 6):
        raise HTTPException(400, "limit must be a whole number from 0 to 999999")
    limit = min(int(limit_text), MAX_PAGE_SIZE)
    notes = list(notes_of(request).texts.items())[:limit]
    return JSONResponse([{"id": note_id, "text": text} for note_id, text in notes])


async def get_note(request: Request) -> Response:
    """One note by id, or 404."""
    note_id: int = request.path_params["note_id"]
    text = notes_of(request).texts.get(note_id)
    if text is None:
        raise HTTPException(404, f"No note {note_id}")
    return JSONResponse({"id": note_id, "text": text})


async def create_note(request: Request) -> Response:
    """Add a note from ``{"text": ...}``; the audit log is written after the response."""
    try:
        payload = await request.json()
    except ValueError:
        raise HTTPException(400, "The body must be JSON") from None
    text = payload.get("text") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTE_LENGTH:
        raise HTTPException(400, f"text must be a non-empty string of at most {MAX_NOTE_LENGTH}")
    notes = notes_of(request)
    note_id = notes.add(text)
    audit = BackgroundTask(notes.audit_log.append, f"created note {note_id}")
    return JSONResponse({"id": note_id, "text": text}, status_code=201, background=audit)


async def http_error(request: Request, exc: Exception) -> Response:
    """Errors as JSON, for an API's clients."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


app = Starlite(
    routes=[
        Route("/", home),
        Route("/notes", list_notes),
        Route("/notes", create_note, methods=["POST"]),
        Route("/notes/{note_id:int}", get_note, name="note"),
    ],
    exception_handlers={HTTPException: http_error},
    lifespan=lifespan,
)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app)
