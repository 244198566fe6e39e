"""Sign-in with a form, a signed session cookie, pages guarded by ``@requires``, and a JSON API
that another origin may call with the user's cookie (CORS).

Serve it from the repository root with either of:

    python examples/auth.py
    uvicorn examples.auth:app

then open http://127.0.0.1:8000/ and sign in as alice / wonderland (an admin) or
bob / builder (not one). Set ``SECRET_KEY`` in the environment to keep sessions valid across
restarts and workers; ``API_ORIGINS`` (comma-separated) lists the origins allowed to call /api.

What keeps it safe: passwords are stored as salted PBKDF2 hashes and compared in constant time;
the session cookie is signed (a tampered one is an empty session), HttpOnly and SameSite=Lax;
CSRFMiddleware refuses a form another site posts to /login or /logout, even a sibling subdomain
that SameSite would let through; after sign-in the user is sent back only to a page of this
site, never to a URL an attacker put in ``?next=``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlite import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationMiddleware,
    CORSMiddleware,
    CSRFMiddleware,
    HTMLResponse,
    HTTPConnection,
    JSONResponse,
    Middleware,
    Mount,
    RedirectResponse,
    Request,
    Response,
    Route,
    SessionMiddleware,
    SimpleUser,
    Starlite,
    requires,
    run_in_threadpool,
)

# OWASP's 2023 advice for PBKDF2-HMAC-SHA256 is 600,000 iterations; fewer here keeps the demo's
# start-up quick, and it is a constant so a real deployment raises it in one place.
HASH_ITERATIONS = 100_000


@dataclass(frozen=True)
class Account:
    """A user who may sign in: a salted password hash and what they may do."""

    salt: bytes
    password_hash: bytes
    scopes: tuple[str, ...]


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, HASH_ITERATIONS)


def make_account(password: str, *scopes: str) -> Account:
    salt = secrets.token_bytes(16)
    return Account(salt, hash_password(password, salt), ("authenticated", *scopes))


ACCOUNTS = {
    "alice": make_account("wonderland", "admin"),
    "bob": make_account("builder"),
}


async def password_matches(username: str, password: str) -> bool:
    """Whether `password` is the user's; the hash runs in a thread, off the event loop."""
    account = ACCOUNTS.get(username)
    # An unknown user costs a hash too, so the answer's timing does not tell who exists.
    salt = account.salt if account else b"\0" * 16
    candidate = await run_in_threadpool(hash_password, password, salt)
    return account is not None and hmac.compare_digest(candidate, account.password_hash)


class SessionBackend(AuthenticationBackend):
    """The signed-in user is the name the login page put in the session."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        account = ACCOUNTS.get(conn.session.get("user", ""))
        if account is None:
            return None  # an anonymous visitor: UnauthenticatedUser, no scopes
        return AuthCredentials(list(account.scopes)), SimpleUser(conn.session["user"])


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!DOCTYPE html><title>{html.escape(title)}</title>{body}", status_code=status_code
    )


def same_site_target(request: Request, target: str) -> str:
    """`target` if it is a page of this site, else "/": a login link must not send the user on
    to a site an attacker chose (an open redirect)."""
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.netloc == request.url.netloc:
        return parts._replace(scheme="", netloc="").geturl() or "/"
    if target.startswith("/") and not target.startswith(("//", "/\\")) and not parts.netloc:
        return target
    return "/"


async def home(request: Request) -> Response:
    if request.user.is_authenticated:
        name = html.escape(request.user.display_name)
        status = f"<p>Signed in as <b>{name}</b>.</p>"
        logout_url = request.url_for("logout")
        action = f"<form method='post' action='{logout_url}'><button>Sign out</button></form>"
    else:
        status = "<p>You are not signed in.</p>"
        action = f"<p><a href='{request.url_for('login')}'>Sign in</a></p>"
    links = (
        f"<p><a href='{request.url_for('account')}'>Account</a> "
        f"<a href='{request.url_for('admin')}'>Admin</a></p>"
    )
    return page("Home", status + links + action)


def login_form(request: Request, error: str = "", status_code: int = 200) -> HTMLResponse:
    next_page = html.escape(request.query_params.get("next", "/"))
    message = f"<p role='alert'>{html.escape(error)}</p>" if error else ""
    return page(
        "Sign in",
        f"{message}<form method='post'>"
        f"<input type='hidden' name='next' value='{next_page}'>"
        "<label>User <input name='username' autocomplete='username'></label>"
        "<label>Password <input type='password' name='password'></label>"
        "<button>Sign in</button></form>",
        status_code,
    )


async def show_login(request: Request) -> Response:
    return login_form(request)


async def login(request: Request) -> Response:
    """Check the form; on success remember the user in the session and go back."""
    async with request.form(max_fields=3, max_files=0, max_part_size=1024) as form:
        username, password = form.get("username", ""), form.get("password", "")
        next_page = form.get("next", "/")
    if not (isinstance(username, str) and isinstance(password, str)):
        return login_form(request, "User and password must be text.", 400)
    if not await password_matches(username, password):
        return login_form(request, "Wrong user or password.", 400)
    request.session.clear()  # a fresh session for the new user, nothing kept from before
    request.session["user"] = username
    target = same_site_target(request, next_page if isinstance(next_page, str) else "/")
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    request.session.clear()  # an emptied session clears the cookie
    return RedirectResponse(request.url_for("home"), status_code=303)


@requires("authenticated", redirect="login")
async def account(request: Request) -> Response:
    scopes = ", ".join(request.auth.scopes)
    name = html.escape(request.user.display_name)
    return page("Account", f"<h1>{name}</h1><p>May: {html.escape(scopes)}</p>")


@requires("admin")
async def admin(request: Request) -> Response:
    return page("Admin", f"<h1>Users</h1><p>{html.escape(', '.join(sorted(ACCOUNTS)))}</p>")


@requires("authenticated", status_code=401)
async def api_me(request: Request) -> Response:
    return JSONResponse({"user": request.user.display_name, "scopes": request.auth.scopes})


# The origins whose pages may call /api with the user's cookie: a list, never "*", because a
# credentialed request needs the origin named.
API_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("API_ORIGINS", "http://localhost:3000").split(",")
    if origin.strip()
]

api = Mount(
    "/api",
    routes=[Route("/me", api_me)],
    middleware=[
        Middleware(
            CORSMiddleware,
            allow_origins=API_ORIGINS,
            allow_methods=["GET"],
            allow_credentials=True,
        )
    ],
)

app = Starlite(
    routes=[
        Route("/", home, name="home"),
        Route("/login", show_login, name="login"),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"], name="logout"),
        Route("/account", account, name="account"),
        Route("/admin", admin, name="admin"),
        api,
    ],
    middleware=[
        # First, so that a forged post never reaches the session: /api only reads (GET), so
        # the origins allowed to call it need no exemption here.
        Middleware(CSRFMiddleware),
        # A random key signs everyone out at each restart, and differs between workers: set one.
        Middleware(
            SessionMiddleware,
            secret_key=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32),
            same_site="lax",
        ),
        Middleware(AuthenticationMiddleware, backend=SessionBackend()),
    ],
)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
