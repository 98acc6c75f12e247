"""Feedback tokens: a signed capability naming one match and one verdict.

A digest item carries two links, ``{base_url}/feedback/<token>``, one per verdict. The token is
the match id and the verdict, signed with HMAC-SHA256 under ``WATCHER_WEB_SECRET`` (itsdangerous),
so a reader needs no login, and nobody can forge a token or point one at another item: changing
any byte of it breaks the signature.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from watcher.config import ConfigError, Settings

if TYPE_CHECKING:
    from watcher.values import FeedbackLinks

SECRET_ENV = "WATCHER_WEB_SECRET"
MIN_SECRET_CHARS = 16
RELEVANT = "relevant"
NOT_RELEVANT = "not_relevant"
_CODES = {RELEVANT: "r", NOT_RELEVANT: "n"}  # short codes keep links short
_VERDICTS = {code: verdict for verdict, code in _CODES.items()}

LinkMaker = Callable[[int], "FeedbackLinks"]  # the values of digests load when links are made


class BadToken(Exception):
    """A token that was not signed by us, or does not say what a token says."""


class FeedbackSigner:
    def __init__(self, secret: str) -> None:
        from itsdangerous import URLSafeSerializer  # a signer is made when links are, not at start-up

        # The salt separates these signatures from any other use of the same secret (CSRF cookies).
        self._s = URLSafeSerializer(
            secret, salt="watcher.feedback.v1", signer_kwargs={"digest_method": hashlib.sha256}
        )

    def token(self, match_id: int, verdict: str) -> str:
        return str(self._s.dumps([int(match_id), _CODES[verdict]]))

    def read(self, token: str) -> tuple[int, str]:
        """(match id, verdict) from a token; BadToken if it was tampered with or is not a token."""
        from itsdangerous import BadSignature

        try:
            data = self._s.loads(token)
        except (BadSignature, UnicodeError, ValueError) as exc:
            raise BadToken("this feedback link is not valid (altered or cut short)") from exc
        match data:
            case [int() as match_id, str() as code] if code in _VERDICTS and match_id > 0:
                return match_id, _VERDICTS[code]
        raise BadToken("this feedback link is not valid")

    def links(self, base_url: str) -> LinkMaker:
        """match id → its two feedback links under ``base_url``."""
        from watcher.values import FeedbackLinks

        base = base_url.rstrip("/")

        def make(match_id: int) -> FeedbackLinks:
            return FeedbackLinks(
                relevant=f"{base}/feedback/{self.token(match_id, RELEVANT)}",
                not_relevant=f"{base}/feedback/{self.token(match_id, NOT_RELEVANT)}",
            )

        return make


def web_secret(settings: Settings) -> str | None:
    """The signing secret when ``[web]`` is configured; a ConfigError when it is and the secret is not set."""
    if settings.web is None:
        return None
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise ConfigError(f"[web] is set but {SECRET_ENV} is not (it signs feedback links)")
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(f"{SECRET_ENV} is too short: use {MIN_SECRET_CHARS} or more random characters")
    return secret


def link_maker(settings: Settings) -> LinkMaker | None:
    """Feedback links for digests, or None when the web side is not configured (digests then carry none)."""
    secret = web_secret(settings)
    if secret is None or settings.web is None:
        return None
    return FeedbackSigner(secret).links(settings.web.url)
