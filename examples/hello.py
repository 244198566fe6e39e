"""A plain ASGI app built from starlite's responses.

Serve it from the repository root:

    pip install . uvicorn && uvicorn --app-dir examples hello:app

then open http://127.0.0.1:8000/ for "Hello, world!"; any other path answers 404.
"""

from starlite import PlainTextResponse, Receive, Request, Scope, Send


async def lifespan(receive: Receive, send: Send) -> None:
    """Accept the server's start-up and shut-down: this app has nothing to set up."""
    while True:
        message = await receive()
        # The ASGI lifespan spec answers "lifespan.startup" with "lifespan.startup.complete",
        # and "lifespan.shutdown" with "lifespan.shutdown.complete".
        await send({"type": f"{message['type']}.complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer "/" with a greeting and any other path with 404 Not Found."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    request = Request(scope, receive)
    if request.url.path == "/":
        response = PlainTextResponse("Hello, world!")
    else:
        response = PlainTextResponse("Not Found", status_code=404)
    await response(scope, receive, send)
