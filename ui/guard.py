"""The web app's front door: sign-in off the event loop and rate limited, an origin check on every
request that changes something, session cookies and session expiry.

Gradio keeps the sessions (a token cookie -> user name, in memory) and calls the sign-in function;
`Guard` is an ASGI middleware in front of it that sees every request. It
- refuses a POST/PUT/PATCH/DELETE whose Origin is not the app's own (403), so another site cannot
  make a signed-in browser act;
- rewrites the session cookies to `HttpOnly; SameSite=Lax`, plus `Secure` when the request came
  over HTTPS (directly, or through a proxy on this machine that sends X-Forwarded-Proto);
- ends a session that has been idle for `session_idle` seconds, is older than `session_max`, or
  whose user's password changed or who was removed (checked every few seconds, from the records).
`SignIn` checks passwords in a small thread pool, so scrypt (~0.5 s, 128 MiB) never blocks the
event loop, and asks `SignInLimiter` first, so a refused attempt costs no hashing at all.
"""

import asyncio
import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookies import SimpleCookie

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from adgen.accounts import SignInLimiter, authenticate, password_stamp

# At most this many passwords are hashed at once, and at most WAITING more wait for a turn: beyond
# that a sign-in is refused as busy instead of queueing memory and CPU without bound.
HASHING, WAITING = 2, 8
# How often a live session re-reads its user's password stamp from the records.
RECHECK_SECONDS = 2.0
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
TOKEN_COOKIE = "access-token"

client_address: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="unknown")


class SignIn:
    """Password checks for Gradio's sign-in, limited and off the event loop (`verify`)."""

    def __init__(self, db, limiter: SignInLimiter, check=authenticate):
        self.db, self.limiter, self.check = db, limiter, check
        self.pool = ThreadPoolExecutor(max_workers=HASHING, thread_name_prefix="sign-in")
        self.slots = asyncio.Semaphore(HASHING + WAITING)
        self.stamps: dict[str, str | None] = {}  # user -> stamp at their latest sign-in, for Guard

    def _check(self, name: str, password: str) -> str | None:
        with self.db() as s:
            return password_stamp(s, name) if self.check(s, name, password) else None

    def stamp_of(self, name: str) -> str | None:
        with self.db() as s:
            return password_stamp(s, name)

    async def verify(self, name: str, password: str) -> bool:
        """Gradio's `auth`: a coroutine function, so Gradio awaits it (it would take the coroutine
        object of an awaitable instance for a yes)."""
        address = client_address.get()
        wait = self.limiter.wait(name, address)
        if wait > 0:
            raise HTTPException(429, f"Too many failed sign-ins; try again in {int(wait) + 1} s.")
        if self.slots.locked():
            raise HTTPException(503, "Too many sign-ins at once; try again in a few seconds.")
        async with self.slots:
            stamp = await asyncio.get_running_loop().run_in_executor(self.pool, self._check, name, password)
        if stamp is None:
            self.limiter.failed(name, address)
            return False
        self.limiter.succeeded(name)
        self.stamps[name] = stamp
        return True


@dataclass
class Session:
    user: str
    stamp: str | None
    started: float
    seen: float
    checked: float


class Guard:
    """ASGI middleware in front of the Gradio app; see the module docstring."""

    def __init__(self, app, *, sign_in: SignIn, idle: float, lifetime: float, origins: list[str],
                 clock=time.monotonic):
        self.app, self.sign_in = app, sign_in
        self.idle, self.lifetime, self.origins, self.clock = idle, lifetime, set(origins), clock
        self.sessions: dict[str, Session] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        secure = scope.get("scheme") == "https"
        if scope["method"] in STATE_CHANGING and not self._same_origin(headers, secure):
            return await _refuse(send, 403, "Cross-site request refused: the Origin is not this app's.")
        client_address.set(scope["client"][0] if scope.get("client") else "unknown")
        await self._check_session(scope, headers)
        is_login = scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/login")

        async def send_guarded(message):
            if message["type"] == "http.response.start":
                message["headers"] = [self._cookie(k, v, secure, scope if is_login else None)
                                      if k.lower() == b"set-cookie" else (k, v) for k, v in message["headers"]]
            await send(message)

        await self.app(scope, receive, send_guarded)

    def _same_origin(self, headers: dict, secure: bool) -> bool:
        origin = headers.get("origin")
        if origin is None:
            # Browsers send Origin with every cross-site POST; a request without one comes from a
            # script or the API client, which cannot carry a victim's cookies.
            return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
        own = f"{'https' if secure else 'http'}://{headers.get('host', '')}"
        return origin == own or origin in self.origins

    async def _check_session(self, scope, headers: dict) -> None:
        token = _token(headers.get("cookie", ""))
        if token is None:
            return
        tokens = scope["app"].tokens  # Gradio's own: token -> user name
        session, now = self.sessions.get(token), self.clock()
        if token not in tokens:
            self.sessions.pop(token, None)
            return
        if session is None:  # a token Gradio issued that this guard never saw being made
            tokens.pop(token, None)
            return
        if now - session.seen > self.idle or now - session.started > self.lifetime:
            return self._end(tokens, token)
        if now - session.checked > RECHECK_SECONDS:
            stamp = await run_in_threadpool(self.sign_in.stamp_of, session.user)
            if stamp is None or stamp != session.stamp:
                return self._end(tokens, token)
            session.checked = now
        session.seen = now

    def _end(self, tokens: dict, token: str) -> None:
        tokens.pop(token, None)
        self.sessions.pop(token, None)

    def _cookie(self, key: bytes, value: bytes, secure: bool, login_scope) -> tuple[bytes, bytes]:
        cookie = SimpleCookie()
        cookie.load(value.decode("latin-1"))
        for name, morsel in cookie.items():
            if not name.startswith(TOKEN_COOKIE):
                continue
            morsel["httponly"], morsel["samesite"], morsel["secure"] = True, "Lax", secure
            morsel["path"] = morsel["path"] or "/"
            if login_scope is not None and morsel.value:
                self._started(login_scope, morsel.value)
        return key, cookie.output(header="").strip().encode("latin-1")

    def _started(self, scope, token: str) -> None:
        tokens, now = scope["app"].tokens, self.clock()
        for old in [t for t, s in self.sessions.items() if t not in tokens or now - s.started > self.lifetime]:
            self._end(tokens, old)  # signed out or expired and never seen again
        user = tokens.get(token)
        if user is not None and token not in self.sessions:
            self.sessions[token] = Session(user, self.sign_in.stamps.get(user), now, now, now)


def _token(cookie_header: str) -> str | None:
    cookie = SimpleCookie()
    try:
        cookie.load(cookie_header)
    except Exception:  # noqa: BLE001 -- a malformed Cookie header is the client's problem: no session
        return None
    return next((m.value for name, m in cookie.items() if name.startswith(TOKEN_COOKIE) and m.value), None)


async def _refuse(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
