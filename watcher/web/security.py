"""The web side's guards, as ASGI middleware around the routes (outermost first):

1. security headers on every answer (no framing, no referrer: a feedback link is a capability
   and must not leak to the sites an item links to; a strict content security policy);
2. Host header check (a DNS-rebinding page cannot talk to a loopback service);
3. a cap on request bodies;
4. HTTP basic authentication when a password is set (feedback pages and /healthz stay open:
   a feedback token is its own authorization);
5. CSRF: a double-submit cookie (asgi-csrf) checked on every POST, cookie or not, except the
   feedback form, which the token in its URL already protects.

Plus the rule on where the service may listen: loopback, unless a password is set.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from asgi_csrf import asgi_csrf
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watcher.config import WILDCARD_HOSTS, ConfigError, WebSettings

MAX_BODY = 256 * 1024  # a pasted profile is a few KB; nothing legitimate comes close
PUBLIC_PREFIXES = ("/feedback/", "/healthz", "/static/")
CSRF_EXEMPT_PREFIX = "/feedback/"
_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_listen(web: WebSettings) -> tuple[str, int]:
    """Where to listen; a ConfigError for a non-loopback address without a password in the environment."""
    host, port = web.address()
    if not is_loopback(host) and not web.password():
        raise ConfigError(
            f"[web] listen = {web.listen!r} is not a loopback address: set a password in "
            f"{web.password_env} (HTTP basic, user {web.user!r}) before serving beyond this machine"
        )
    return host, port


def allowed_hosts(web: WebSettings) -> list[str]:
    hosts = {"localhost", "127.0.0.1", "[::1]"}
    listen_host = web.address()[0]
    if listen_host in WILDCARD_HOSTS:
        if web.base_url is None:  # config validation demands base_url here; be safe anyway
            return ["*"]
    else:
        hosts.add(f"[{listen_host}]" if ":" in listen_host else listen_host)
    if web.base_url:
        base_host = urlsplit(web.base_url).hostname
        if base_host:
            hosts.add(f"[{base_host}]" if ":" in base_host else base_host)
    return sorted(hosts)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BasicAuth:
    """HTTP basic authentication against one user and a password from the environment."""

    def __init__(
        self, app: ASGIApp, user: str, password: str, public: Iterable[str] = PUBLIC_PREFIXES
    ) -> None:
        self.app = app
        self.user = user.encode()
        self.password = password.encode()
        self.public = tuple(public)

    def _ok(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Compare both, always, in constant time.
        return secrets.compare_digest(user, self.user) & secrets.compare_digest(password, self.password)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.public):
            await self.app(scope, receive, send)
            return
        if self._ok(Headers(scope=scope).get("authorization")):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(
            "login required", status_code=401, headers={"www-authenticate": 'Basic realm="watcher"'}
        )
        await response(scope, receive, send)


class _Everywhere:
    """asgi-csrf's ``always_protect`` is a set of paths; this one holds them all."""

    def __contains__(self, _path: object) -> bool:
        return True


async def _csrf_refused(scope: Scope, send: Send, _reason: object) -> None:
    response = PlainTextResponse(
        "This form has expired or did not come from this site (CSRF check failed). "
        "Reload the page and try again.",
        status_code=403,
    )
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def guarded(app: ASGIApp, web: WebSettings, *, secret: str, password: str | None) -> ASGIApp:
    """``app`` wrapped in every guard (see the module docstring)."""
    # Every POST needs the token, with or without a cookie: basic auth and a loopback address are
    # ambient credentials too, which a cookie-only rule would not cover.
    app = asgi_csrf(
        app,
        signing_secret=secret,
        signing_namespace="watcher.csrf.v1",
        always_protect=_Everywhere(),
        skip_if_scope=lambda scope: scope["path"].startswith(CSRF_EXEMPT_PREFIX),
        send_csrf_failed=_csrf_refused,
    )
    if password:
        app = BasicAuth(app, web.user, password)
    app = RequestBodyLimitMiddleware(app, MAX_BODY)
    app = TrustedHostMiddleware(app, allowed_hosts=allowed_hosts(web), www_redirect=False)
    return SecurityHeaders(app)
