"""A user's module that .ci/run type-checks against the installed wheel, not the repository file.

It fails under `mypy --strict` if the wheel lost its py.typed marker or its annotations.
"""

from typing import TypedDict, assert_type

from starlite import URL, Headers, JSONResponse, Receive, Request, Response, Scope, Send, status


class AppState(TypedDict):
    """What the app's lifespan yields, as each request's state."""

    greeting: str


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the path, user agent and greeting back as JSON."""
    request: Request[AppState] = Request(scope, receive)
    url = request.url.replace(query="")
    headers = request.headers
    assert_type(url, URL)
    assert_type(headers, Headers)
    assert_type(request.state["greeting"], str)
    content = {"path": url.path, "agent": headers.get("user-agent", "")}
    assert_type(status.HTTP_200_OK, int)
    response: Response = JSONResponse(
        {**content, "greeting": request.state["greeting"]}, status_code=status.HTTP_200_OK
    )
    await response(scope, receive, send)
