"""A small website: pages rendered from jinja2 templates, a stylesheet from a static directory,
settings from the environment, and a templated 404 page.

Serve it from the repository root with either of:

    pip install '.[templates]' uvicorn && uvicorn examples.site:app
    python examples/site.py

then open http://127.0.0.1:8000/. ``SITE_NAME`` in the environment (or in a ``.env`` file in
the working directory) renames the site.

Templates are in ``site_files/templates`` and the stylesheet in ``site_files/static``; pages link
to it with ``url_for('static', path='style.css')``. Article text comes from a dict here, but it is
escaped in the page as if it came from users: jinja2 autoescaping is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlite import (
    Config,
    HTTPException,
    Jinja2Templates,
    Mount,
    Request,
    Response,
    Route,
    Starlite,
    StaticFiles,
)

FILES = Path(__file__).parent / "site_files"

# Read once at start-up; a .env file is optional (the environment may hold everything), so a
# missing one is not worth the warning Config gives.
config = Config(".env") if Path(".env").is_file() else Config()
SITE_NAME = config("SITE_NAME", default="starlite notes")


@dataclass(frozen=True)
class Article:
    title: str
    text: str


ARTICLES = {
    "hello": Article("Hello, starlite", "One file, everything Starlette does."),
    "escaping": Article("On escaping", "Text such as <script>alert(1)</script> stays text."),
}


def site_context(request: Request) -> dict[str, Any]:
    """What every template sees besides its own context."""
    return {"site_name": SITE_NAME}


templates = Jinja2Templates(directory=FILES / "templates", context_processors=[site_context])


async def home(request: Request) -> Response:
    return templates.TemplateResponse(request, "index.html", {"articles": ARTICLES})


async def article(request: Request) -> Response:
    found = ARTICLES.get(request.path_params["slug"])
    if found is None:
        raise HTTPException(404)
    return templates.TemplateResponse(request, "article.html", {"article": found})


async def not_found(request: Request, exc: Exception) -> Response:
    """Any 404, from a route or from the static files, as a page of the site."""
    return templates.TemplateResponse(request, "404.html", status_code=404)


app = Starlite(
    routes=[
        Route("/", home, name="home"),
        Route("/articles/{slug}", article, name="article"),
        Mount("/static", StaticFiles(directory=FILES / "static"), name="static"),
    ],
    exception_handlers={404: not_found},
)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
