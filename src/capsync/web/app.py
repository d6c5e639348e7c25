"""The data page as an ASGI app (Starlette): login, the page, its static files and JSON API.

Nothing but ``POST /login`` answers without a session: a page request gets the
login form with status 401, anything else (static files, ``/api/...``) a 401
JSON error. Static files are the package's own (``capsync/web/static``);
payloads and thumbnails are found by binary id (:mod:`capsync.web.api`).
"""

from __future__ import annotations

import html
from http.cookies import SimpleCookie
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capsync.server.auth import ApiKeys
from capsync.web.api import routes as api_routes
from capsync.web.data_access import DataAccess
from capsync.web.sessions import COOKIE_NAME, Sessions
from capsync.web.thumbnails import ThumbnailCache

MAX_LOGIN_BYTES = 16 * 1024
STATIC_DIR = Path(str(resources.files("capsync.web") / "static"))
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _session_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:  # a malformed Cookie header is no session
                return None
            morsel = cookie.get(COOKIE_NAME)
            if morsel is not None:
                return morsel.value
    return None


def login_page(message: str = "") -> str:
    note = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return (STATIC_DIR / "login.html").read_text(encoding="utf-8").replace("<!--NOTE-->", note)


class RequireSession:
    """ASGI middleware: only ``POST /login`` passes without a live session."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "")
        open_call = path == "/login" and method == "POST"
        if not open_call and self.sessions.key_id(_session_token(scope)) is None:
            response: Response
            if path.startswith(("/api/", "/static/")):
                response = JSONResponse({"error": "log in first"}, status_code=401)
            else:
                response = HTMLResponse(login_page(), status_code=401)
            await _with_headers(response)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(data: DataAccess, keys: ApiKeys, *, secure_cookie: bool = False) -> ASGIApp:
    """The page over ``data``, letting in holders of one of ``keys``."""
    sessions = Sessions(keys)
    thumbnails = ThumbnailCache(data.data_dir)

    async def index(request: Request) -> Response:
        return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))

    async def login(request: Request) -> Response:
        raw = await request.body()
        form = parse_qs(raw[:MAX_LOGIN_BYTES].decode("utf-8", "replace"))
        key_id = form.get("key_id", [""])[0].strip()
        key = form.get("key", [""])[0].strip()
        token = sessions.login(key_id, key)
        if token is None:
            return HTMLResponse(login_page("Wrong key id or key."), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.headers["Set-Cookie"] = sessions.cookie(token, secure=secure_cookie)
        return response

    async def logout(request: Request) -> Response:
        sessions.logout(request.cookies.get(COOKIE_NAME))
        response = HTMLResponse(login_page("Logged out."), status_code=401)
        response.headers["Set-Cookie"] = sessions.expired_cookie(secure=secure_cookie)
        return response

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            *api_routes(data, thumbnails),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]
    )
    return RequireSession(app, sessions)
