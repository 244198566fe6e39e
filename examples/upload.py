"""File uploads: a form page, and a handler that streams each uploaded file to a directory.

- ``GET /`` is a page with a multipart form that sends one or more files;
- ``POST /upload`` stores each file and answers JSON: for each, the name the client gave it, the
  name it is stored under, its size and the content type the client declared;
- ``GET /files`` lists what the directory holds (stored names and sizes).

The files go to the directory named by the ``UPLOAD_DIR`` environment variable, or else to
``starlite-uploads`` in the system's temporary directory; it is created at start-up.

Uploads are held to limits: the whole request body (``MAX_BODY_SIZE``, else 413), the number of
files (``MAX_FILES``, else 400), and the number and size of any other fields. A file is never
stored under the name the client sent, which is only data (``../../etc/passwd`` is a name like any
other): it gets a random name, with the client's extension only if it is on a short allow-list.

``request.form()`` parses the body as it arrives, into spooled files (in memory up to 1 MiB, then
on disk); the handler then copies each, 64 KiB at a time, to the directory, through anyio so the
event loop never waits on the disk. A copy is written under a temporary name and renamed when
complete, so a listing never shows half a file.

Serve it from the repository root with either of:

    python examples/upload.py
    uvicorn examples.upload:app

then open http://127.0.0.1:8000/.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from starlite import (
    FormData,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    Request,
    Response,
    Route,
    Starlite,
    UploadFile,
)

# Largest request body accepted, in bytes, all files together: ample for photos and documents.
# For comparison, nginx's client_max_body_size defaults to 1 MiB and Cloudflare's free plan stops
# bodies at 100 MB. Checked against Content-Length before any of the body is read, and against
# the bytes as they arrive.
MAX_BODY_SIZE = 64 * 1024 * 1024
# Most files in one upload: what one person picks at once, and a bound on the temporary files one
# request can make the server open (Starlette's default allows 1000).
MAX_FILES = 10
# The page sends no fields but files; a client may add a few small ones (a CSRF token, say).
MAX_FIELDS = 10
# Longest value of such a field, in bytes: a token fits, and ten of them stay small in memory.
MAX_FIELD_SIZE = 1024
# Bytes copied at a time from an upload to its stored file: a typical disk or socket buffer.
COPY_CHUNK_SIZE = 64 * 1024
# Extensions a stored file may keep (lower-cased). Anything else is dropped, so that no stored
# name ends in .html, .svg or .php, which a web server in front of this directory might serve as a
# page or run.
ALLOWED_EXTENSIONS = frozenset(
    {".txt", ".csv", ".json", ".pdf", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".zip"}
)
# A stored file's name: a uuid4 in hex, then perhaps one of the allowed extensions. Anything else
# in the directory (a copy still being written, a file someone put there) is left out of listings.
STORED_NAME = re.compile(r"[0-9a-f]{32}(\.[a-z]+)?")
# Added to a stored name while its copy is written; renamed away once it is complete.
PARTIAL_SUFFIX = ".part"

# Where files go without UPLOAD_DIR: one fixed directory in the shared temporary directory, good
# for trying the example. On a machine with other users, set UPLOAD_DIR to a directory of your own.
# Looked up at import: gettempdir() writes a probe file the first time, which is no job for the
# event loop.
DEFAULT_UPLOAD_DIR = Path(tempfile.gettempdir()) / "starlite-uploads"

PAGE = f"""\
<!DOCTYPE html>
<html lang="en">
<meta charset="utf-8">
<title>Upload</title>
<h1>Upload files</h1>
<form action="upload" method="post" enctype="multipart/form-data">
  <input type="file" name="files" multiple required>
  <button>Upload</button>
</form>
<p>Up to {MAX_FILES} files, {MAX_BODY_SIZE // (1024 * 1024)} MiB in all.
<a href="files">See the stored files</a>.</p>
</html>
"""


@asynccontextmanager
async def lifespan(app: Starlite) -> AsyncIterator[dict[str, anyio.Path]]:
    """Create the upload directory at start-up; requests see it as ``request.state.upload_dir``."""
    upload_dir = anyio.Path(os.environ.get("UPLOAD_DIR") or DEFAULT_UPLOAD_DIR)
    await upload_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    yield {"upload_dir": upload_dir}


def upload_dir_of(request: Request) -> anyio.Path:
    upload_dir: anyio.Path = request.state.upload_dir
    return upload_dir


def stored_extension(filename: str) -> str:
    """The extension to store a file under: the client's, lower-cased, if it is allowed; else none.

    The result is always one of ``ALLOWED_EXTENSIONS`` or "", whatever `filename` holds.
    """
    _, dot, extension = filename.rpartition(".")
    candidate = f".{extension.lower()}"
    return candidate if dot and candidate in ALLOWED_EXTENSIONS else ""


def chosen_files(form: FormData) -> list[UploadFile]:
    """The form's files under ``files``; 400 if a value there is not a file, or none was chosen."""
    uploads: list[UploadFile] = []
    for value in form.getlist("files"):
        if not isinstance(value, UploadFile):
            raise HTTPException(400, "'files' must be sent as files")
        # A browser sends one empty part, with filename "", when no file was chosen.
        if value.filename:
            uploads.append(value)
    if not uploads:
        raise HTTPException(400, "Choose at least one file")
    return uploads


async def store(upload: UploadFile, upload_dir: anyio.Path) -> dict[str, Any]:
    """Copy `upload` into `upload_dir` under a new name, in chunks; describe what was stored."""
    filename = upload.filename or ""
    stored_name = uuid.uuid4().hex + stored_extension(filename)
    partial = upload_dir / (stored_name + PARTIAL_SUFFIX)
    size = 0
    try:
        async with await partial.open("xb") as target:  # "x": never overwrite a file
            while chunk := await upload.read(COPY_CHUNK_SIZE):
                await target.write(chunk)
                size += len(chunk)
        await partial.rename(upload_dir / stored_name)
    except BaseException:
        # A failed or cancelled copy (the disk full, the server stopping) leaves nothing behind.
        with anyio.CancelScope(shield=True):
            await partial.unlink(missing_ok=True)
        raise
    return {
        "filename": filename,
        "stored_name": stored_name,
        "size": size,
        "content_type": upload.content_type,
    }


async def home(request: Request) -> Response:
    """The upload form."""
    return HTMLResponse(PAGE)


async def upload_files(request: Request) -> Response:
    """Store each uploaded file; answer with what was stored."""
    # Leaving the block closes the form's spooled files at once, deleting their temporary data.
    async with request.form(
        max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_SIZE
    ) as form:
        upload_dir = upload_dir_of(request)
        stored = [await store(upload, upload_dir) for upload in chosen_files(form)]
    return JSONResponse({"files": stored}, status_code=201)


async def list_files(request: Request) -> Response:
    """The stored files, oldest first: stored name and size."""
    entries: list[tuple[float, str, int]] = []
    async for path in upload_dir_of(request).iterdir():
        if not STORED_NAME.fullmatch(path.name):
            continue
        with contextlib.suppress(FileNotFoundError):  # deleted since iterdir() saw it
            info = await path.stat()
            entries.append((info.st_mtime, path.name, info.st_size))
    entries.sort()
    return JSONResponse(
        {"files": [{"stored_name": name, "size": size} for _, name, size in entries]}
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Errors as JSON, the 400s of a bad form and the 413 of a body too large among them."""
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


app = Starlite(
    routes=[
        Route("/", home),
        Route("/upload", upload_files, methods=["POST"], max_body_size=MAX_BODY_SIZE),
        Route("/files", list_files),
    ],
    exception_handlers={HTTPException: http_error},
    lifespan=lifespan,
)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app)
