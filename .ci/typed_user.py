"""A user's module that .ci/run type-checks against the installed wheel, not the repository file.

It fails under `mypy --strict` if the wheel lost its py.typed marker or its annotations.
"""

from typing import assert_type

from starlite import URL, Headers, JSONResponse, Receive, Request, Response, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the path and user agent back as JSON."""
    request = Request(scope, receive)
    url = request.url.replace(query="")
    headers = request.headers
    assert_type(url, URL)
    assert_type(headers, Headers)
    response: Response = JSONResponse({"path": url.path, "agent": headers.get("user-agent", "")})
    await response(scope, receive, send)
