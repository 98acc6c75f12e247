"""Send one email over SMTP (implicit TLS or STARTTLS per settings)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage

from watcher.config import SmtpSettings
from watcher.deliver.errors import PermanentDeliveryError, classify_smtp

log = logging.getLogger(__name__)


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
    try:
        client: smtplib.SMTP
        if smtp.ssl:
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=context)
                client.ehlo()
            if creds:
                client.login(*creds)
            refused = client.send_message(msg)
    except Exception as exc:  # every failure leaves here classified; the cause stays chained
        raise classify_smtp(exc) from exc
    if refused:
        # Some recipients took it: a retry would send them a duplicate, so stop and record who missed out.
        missed = "; ".join(
            f"{r}: {code} {text.decode('utf-8', 'replace')}" for r, (code, text) in refused.items()
        )
        raise PermanentDeliveryError(f"delivered, but some recipients were refused: {missed}")
