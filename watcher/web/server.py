"""Serving the web side: uvicorn in a thread of its own, beside the scheduler or alone.

The socket is bound up front, in the caller's thread, so a taken port or a refused address
is a start-up error (one line), not a log message from a background thread. The process's
own signal handlers stay in charge: SIGTERM stops the scheduler, then the web side, and the
process exits 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from sqlalchemy import Engine

from watcher.config import ConfigError, Settings, WebSettings
from watcher.web.context import WebContext
from watcher.web.metrics import ServiceMetrics
from watcher.web.security import check_listen
from watcher.web.tokens import FeedbackSigner, web_secret

log = logging.getLogger("watcher")


@dataclass
class Prepared:
    """Everything checked and bound before anything else starts."""

    web: WebSettings
    secret: str
    password: str | None
    sock: socket.socket


def prepare(settings: Settings) -> Prepared:
    """Check the secret, the address rule and the port; ConfigError (one line) when any fails."""
    web = settings.web
    if web is None:
        raise ConfigError('the web side is not configured: add [web] listen = "127.0.0.1:8080" to the config')
    secret = web_secret(settings)
    assert secret is not None  # web is set, so web_secret returned one or raised
    host, port = check_listen(web)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"[web] cannot listen on {web.listen}: {exc.strerror or exc}") from None
    return Prepared(web, secret, web.password(), sock)


class WebServer:
    def __init__(self, prepared: Prepared, ctx: WebContext) -> None:
        from watcher.web.app import create_app

        self.prepared = prepared
        config = uvicorn.Config(
            create_app(ctx, secret=prepared.secret),
            log_config=None,  # our logging set-up stays in charge
            access_log=False,  # request lines would log feedback tokens, which are capabilities
            lifespan="off",
            http="h11",
            loop="asyncio",
            server_header=False,
            proxy_headers=False,
            limit_concurrency=100,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="web", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.prepared.sock])
        except Exception:
            log.exception("the web side stopped with an error")

    def start(self, timeout: float = 15.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            raise ConfigError(f"[web] did not start on {self.prepared.web.listen}")
        web = self.prepared.web
        log.info(
            "web side listening on %s (links point at %s; %s)",
            web.listen,
            web.url,
            "password required" if self.prepared.password else "no login: loopback only",
        )

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.prepared.sock.close()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()


def make_context(
    prepared: Prepared,
    engine: Engine,
    settings: Callable[[], Settings],
    metrics: ServiceMetrics,
    scheduler_problem: Callable[[], str | None] | None,
) -> WebContext:
    return WebContext(
        engine=engine,
        settings=settings,
        signer=FeedbackSigner(prepared.secret),
        metrics=metrics,
        scheduler_problem=scheduler_problem,
        password=prepared.password,
    )


def serve_alone(prepared: Prepared, ctx: WebContext) -> None:
    """`watcher web`: serve until SIGTERM or SIGINT, then stop cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping the web side", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = WebServer(prepared, ctx)
    server.start()
    try:
        while not stop.wait(0.5):
            if not server.alive:
                raise ConfigError("the web side stopped unexpectedly (see the log)")
    finally:
        server.stop()
