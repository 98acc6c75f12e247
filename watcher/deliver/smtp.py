"""Send one email over SMTP (implicit TLS or STARTTLS per settings)."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
from contextlib import suppress
from email.message import EmailMessage

from watcher.config import SmtpSettings
from watcher.deliver.errors import PermanentDeliveryError, TemporaryDeliveryError, classify_smtp

log = logging.getLogger(__name__)


class _Watchdog:
    """Shuts the SMTP connection down once ``seconds`` have passed. smtplib's timeout bounds
    each read, so a server answering a byte at a time would otherwise hold the sender for ever;
    shutting the socket down makes the blocked read return, and the send fails."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.client: smtplib.SMTP | None = None  # set by the client as it is made, before it connects
        self.expired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="smtp-deadline", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.expired = True
        # Until the send gives up: the socket may not exist yet (the connect has its own timeout).
        while not self._done.is_set():
            sock = self.client.sock if self.client is not None else None
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._done.wait(0.05)


class _SMTP(smtplib.SMTP):
    def __init__(self, watchdog: _Watchdog, host: str, port: int, timeout: float) -> None:
        watchdog.client = self
        super().__init__(host, port, timeout=timeout)


class _SMTPSSL(smtplib.SMTP_SSL):
    def __init__(
        self, watchdog: _Watchdog, host: str, port: int, timeout: float, context: ssl.SSLContext
    ) -> None:
        watchdog.client = self
        super().__init__(host, port, timeout=timeout, context=context)


def send_email(msg: EmailMessage, smtp: SmtpSettings) -> None:
    """Deliver ``msg`` to every address in its To/Cc headers, or raise a classified DeliveryError.

    Credentials come from the environment only (``smtp.credentials()``) and are never logged.
    """
    creds = smtp.credentials()
    refusal = smtp.plaintext_auth_refusal()
    if refusal:  # never less safe than configured: no clear-text login, and no silent anonymous send
        raise PermanentDeliveryError(refusal)
    if creds and not smtp.tls:
        log.warning(
            "smtp: logging in to %s:%d in clear text (allow_plaintext_auth = true)", smtp.host, smtp.port
        )
    context = ssl.create_default_context() if (smtp.ssl or smtp.starttls) else None
    log.debug(
        "smtp: sending %s to %s:%d (ssl=%s starttls=%s auth=%s)",
        msg.get("Message-ID"),
        smtp.host,
        smtp.port,
        smtp.ssl,
        smtp.starttls,
        "yes" if creds else "no",
    )
    watchdog = _Watchdog(smtp.deadline)
    try:
        with watchdog:
            client: smtplib.SMTP
            if smtp.ssl and context is not None:
                client = _SMTPSSL(watchdog, smtp.host, smtp.port, smtp.timeout, context)
            else:
                client = _SMTP(watchdog, smtp.host, smtp.port, smtp.timeout)
            with client:
                if smtp.starttls and not smtp.ssl:
                    client.starttls(context=context)
                    client.ehlo()
                if creds:
                    client.login(*creds)
                refused = client.send_message(msg)
    except Exception as exc:  # every failure leaves here classified; the cause stays chained
        if watchdog.expired:
            raise TemporaryDeliveryError(
                f"SMTP timeout: {smtp.host}:{smtp.port} did not take the message within the "
                f"{smtp.deadline:g}s deadline ([smtp] deadline)"
            ) from exc
        raise classify_smtp(exc) from exc
    if refused:
        # Some recipients took it: a retry would send them a duplicate, so stop and record who missed out.
        missed = "; ".join(
            f"{r}: {code} {text.decode('utf-8', 'replace')}" for r, (code, text) in refused.items()
        )
        raise PermanentDeliveryError(f"delivered, but some recipients were refused: {missed}")
