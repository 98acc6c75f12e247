"""TOML file + environment → typed, validated settings.

Secrets never live in the file: the file names environment variables
(``secret_env``, ``password_env``) and the values are read from the
environment only when a message is sent.

Annotations here are evaluated when defined (no ``from __future__ import annotations``): pydantic
would otherwise compile each field's annotation from its string when the models are defined, at
every start (~1 ms of `watcher run`'s start-up). A method's own class is named in quotes.
"""

import os
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from watcher.profiles.spec import ProfileSpec

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

DEFAULT_CONFIG = Path("config/watcher.toml")
DEFAULT_DATABASE_URL = "sqlite:///data/watcher.db"


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""


MAX_DURATION_S = 3650 * 86400.0  # ten years: any longer is a typo (and overflows date arithmetic)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 900, '15m' or '2h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration such as 900, '15m' or '2h'")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{value!r} is longer than {MAX_DURATION_S // 86400:.0f} days, surely a typo")
    return seconds


def format_duration(seconds: float) -> str:
    """``21600`` → ``6h``: the largest unit that divides it evenly."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]

_FOREVER = ("forever", "never", "keep")


def parse_duration_or_forever(value: Any) -> float | None:
    """A duration, or ``"forever"`` (None): for what users keep unless they say otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _FOREVER):
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration such as '90d', or 'forever'") from None


DurationOrForever = Annotated[float | None, BeforeValidator(parse_duration_or_forever)]


class _Strict(BaseModel):
    # defer_build: each model's validator is built when first used, not when its class is defined.
    # Loading a config builds Settings' once, with every section in it, instead of one per section
    # and Settings' again at import (~5-10 ms of every start). Validation is the same.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class DatabaseSettings(_Strict):
    url: str = DEFAULT_DATABASE_URL
    pool_size: int = Field(default=5, ge=1, le=200)
    max_overflow: int = Field(default=5, ge=0, le=200)
    # SQLite: how long a write waits while another process holds the database locked.
    lock_timeout: Duration = 30.0


class PollingSettings(_Strict):
    tick: Duration = 30.0  # how often the service looks for due feeds
    interval: Duration = 900.0  # default per feed
    min_interval: Duration = 300.0
    max_interval: Duration = 6 * 3600.0
    max_backoff: Duration = 24 * 3600.0
    concurrency: int = Field(default=16, ge=1, le=512)
    per_host: int = Field(default=2, ge=1, le=64)
    connect_timeout: Duration = 5.0
    read_timeout: Duration = 15.0
    deadline: Duration = 30.0
    # A worker's claim on a feed or a digest run; a worker that dies loses its claims after this.
    lease: Duration = 120.0
    max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Entries read per poll, newest first: a feed of 300,000 items costs what one of this many does.
    max_entries: int = Field(default=1000, ge=1, le=100_000)
    allow_private_networks: bool = False
    # "fast": lxml, with feedparser wherever that path cannot be trusted; "feedparser": always feedparser.
    parser: Literal["fast", "feedparser"] = "fast"
    # Parse in this many worker processes (0: in the polling threads). Off by default: on a small
    # machine the processes' start-up and the copying cost more than they save (BENCHMARKS.md).
    parse_processes: int = Field(default=0, ge=0, le=64)
    # What feed servers see. Default: "watcher/VERSION", plus "(+CONTACT)" when `contact` is set (a URL
    # or an email where the operator can be reached); `user_agent` replaces the whole string.
    contact: str | None = None
    user_agent: str = ""

    @model_validator(mode="after")
    def _intervals_in_order(self) -> "PollingSettings":
        lo, hi = self.min_interval, self.max_interval
        if lo > hi:
            raise ValueError(
                f"min_interval ({format_duration(lo)}) is longer than max_interval ({format_duration(hi)})"
            )
        if not lo <= self.interval <= hi:
            raise ValueError(
                f"interval ({format_duration(self.interval)}) must lie between min_interval "
                f"({format_duration(lo)}) and max_interval ({format_duration(hi)}), which bound all polling"
            )
        return self

    @model_validator(mode="after")
    def _user_agent(self) -> "PollingSettings":
        if not self.user_agent:
            from watcher import version

            contact = f" (+{self.contact})" if self.contact else ""
            self.user_agent = f"watcher/{version()}{contact}"
        if any(ord(c) < 32 or ord(c) == 127 for c in self.user_agent):
            raise ValueError("user_agent and contact must be one line of printable text")
        return self


class RetentionSettings(_Strict):
    """What is kept, and how long. Items that matched nothing go; what users keep stays."""

    items: Duration = 90 * 86400.0  # an item that matched nothing, counted from when it was first seen
    # A pruned item's key record, counted from when the item was first seen; kept longer while
    # its feed still carries the item, so a pruned item never comes back as new.
    keys: Duration = 365 * 86400.0
    matches: DurationOrForever = None  # matches and their delivery records; None: kept forever
    # A match that carries a reader's verdict stays as long as the verdict (counted from when it
    # was given), whatever ``matches`` says: verdicts are what profiles learn from.
    verdicts: DurationOrForever = None
    every: Duration = 3600.0  # how often the service prunes
    batch: int = Field(default=500, ge=10, le=100_000)  # rows per transaction: keeps locks short

    @model_validator(mode="after")
    def _keys_outlive_items(self) -> "RetentionSettings":
        if self.keys < self.items:
            raise ValueError("keys must be at least as long as items (a key record outlives its item)")
        return self


class LoggingSettings(_Strict):
    # auto: rich on a terminal, one line per event elsewhere; text: always one line per event
    # (ISO 8601 UTC time, level, logger, message); json: one JSON object per line.
    format: Literal["auto", "text", "json"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class FeedSettings(_Strict):
    url: str = Field(max_length=2048)
    name: str | None = Field(default=None, max_length=300)
    interval: Duration | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, v: str) -> str:
        v = v.strip()
        if not re.match(r"^https?://[^/\s]+", v, re.I):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v


class SmtpSettings(_Strict):
    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    username_env: str = "WATCHER_SMTP_USERNAME"
    password_env: str = "WATCHER_SMTP_PASSWORD"
    sender: str = "watcher <watcher@localhost>"
    timeout: Duration = 30.0  # each step: connect, every read and write
    deadline: Duration = 120.0  # one message's whole send, however slowly the server answers
    # Credentials go only over TLS (ssl or starttls) unless this says clear text is acceptable.
    allow_plaintext_auth: bool = False

    def credentials(self) -> tuple[str, str] | None:
        user, password = os.environ.get(self.username_env), os.environ.get(self.password_env)
        return (user, password) if user and password else None

    @property
    def tls(self) -> bool:
        return self.ssl or self.starttls

    def plaintext_auth_refusal(self) -> str | None:
        """Why a login must not happen: credentials are set, TLS is off and clear text is not allowed."""
        if self.tls or self.allow_plaintext_auth or self.credentials() is None:
            return None
        return (
            f"SMTP credentials are set ({self.username_env}/{self.password_env}) but neither [smtp] ssl nor "
            "starttls is on: they would cross the network in clear text. Turn on starttls or ssl, or set "
            "[smtp] allow_plaintext_auth = true"
        )


class DigestSettings(_Strict):
    name: str
    profiles: list[str]
    channel: Literal["email", "webhook"]
    schedule: str = "immediate"
    timezone: str = "UTC"
    to: list[str] = []
    url: str | None = None
    format: Literal["json", "slack", "discord"] = "json"
    secret_env: str | None = None  # env var holding the webhook HMAC secret
    max_items: int = Field(default=50, ge=1, le=10_000)
    send_empty: bool = False
    subject_prefix: str = "[watcher]"

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", v):
            raise ValueError("use letters, digits, '_', '-' or '.' (at most 64)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz_ok(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("to")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        from email_validator import EmailNotValidError, validate_email

        for address in v:
            try:
                # Syntax only (no DNS); internal host names without a dot are allowed.
                validate_email(address, check_deliverability=False, globally_deliverable=False)
            except EmailNotValidError as exc:
                why = str(exc).rstrip(".")
                raise ValueError(
                    f"{address!r} is not an email address ({why[:1].lower()}{why[1:]})"
                ) from None
        return v

    @model_validator(mode="after")
    def _channel_target(self) -> "DigestSettings":
        if self.channel == "email" and not self.to:
            raise ValueError("an email digest needs 'to' (a list of addresses)")
        if self.channel == "webhook" and not (self.url and re.match(r"^https?://", self.url, re.I)):
            raise ValueError("a webhook digest needs 'url' (http or https)")
        if not self.profiles:
            raise ValueError("'profiles' must name at least one profile")
        if self.schedule != "immediate":
            try:
                self.trigger()
            except ValueError as exc:
                raise ValueError(
                    f"schedule {self.schedule!r} is not 'immediate' or a cron expression: {exc}"
                ) from None
        return self

    @property
    def immediate(self) -> bool:
        return self.schedule == "immediate"

    def trigger(self) -> "CronTrigger":
        from apscheduler.triggers.cron import CronTrigger  # only cron digests need APScheduler

        return CronTrigger.from_crontab(self.schedule, timezone=ZoneInfo(self.timezone))

    def secret(self) -> bytes | None:
        if not self.secret_env:
            return None
        value = os.environ.get(self.secret_env)
        return value.encode() if value else None

    def missing_secret(self) -> str | None:
        """Why this webhook cannot be signed as configured: ``secret_env`` names an unset variable."""
        if self.channel != "webhook" or not self.secret_env or self.secret() is not None:
            return None
        return (
            f"digest {self.name!r}: secret_env names {self.secret_env}, which is not set (or empty); "
            "set it, or remove secret_env to send unsigned"
        )


@cache
def _listen_pattern() -> re.Pattern[str]:
    """Compiled when first needed: only a config with a [web] section has an address to parse."""
    return re.compile(r"^(?:(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]/]+)):)?(?P<port>\d{1,5})$")


WILDCARD_HOSTS = ("0.0.0.0", "::")


def parse_listen(value: str) -> tuple[str, int]:
    """``"HOST:PORT"``, ``"[::1]:PORT"`` or a bare ``"PORT"`` (loopback) → (host, port)."""
    m = _listen_pattern().match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. '127.0.0.1:8080')")
    host = m.group("v6") or m.group("host") or "127.0.0.1"
    port = int(m.group("port"))
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535")
    return host, port


class WebSettings(_Strict):
    """The web side: feedback links in digests, the pages, /metrics and /healthz.

    The section being present turns feedback links on (they need ``WATCHER_WEB_SECRET``);
    ``listen`` makes `watcher run` serve the pages too.
    """

    listen: str | None = None  # HOST:PORT; loopback unless a password is set in the environment
    base_url: str | None = None  # what digest links point at; default http://<listen>
    user: str = "watcher"  # HTTP basic user when a password is set
    password_env: str = "WATCHER_WEB_PASSWORD"

    @field_validator("listen")
    @classmethod
    def _listen_ok(cls, v: str | None) -> str | None:
        if v is not None:
            parse_listen(v)
        return v

    @field_validator("base_url")
    @classmethod
    def _base_ok(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", v, re.I):
            raise ValueError(f"{v!r} is not an http(s) URL without query or fragment")
        return v

    @model_validator(mode="after")
    def _somewhere(self) -> "WebSettings":
        if self.listen is None and self.base_url is None:
            raise ValueError("[web] needs 'listen' (HOST:PORT to serve on) or 'base_url' (where it runs)")
        if self.base_url is None and self.address()[0] in WILDCARD_HOSTS:
            raise ValueError("listening on every address: set 'base_url' to the address readers use")
        return self

    def address(self) -> tuple[str, int]:
        return parse_listen(self.listen or "127.0.0.1:8080")

    @property
    def url(self) -> str:
        """The base URL of feedback links and pages."""
        if self.base_url:
            return self.base_url
        host, port = self.address()
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def password(self) -> str | None:
        return os.environ.get(self.password_env) or None


class Settings(_Strict):
    # A section left out is an empty table validated by Settings' own validator: not an instance
    # made here (that would build its model's validator at import), nor a factory (each would build
    # its model's validator a second time, apart from Settings', when a config leaves it out).
    database: DatabaseSettings = Field(default={}, validate_default=True)
    polling: PollingSettings = Field(default={}, validate_default=True)
    smtp: SmtpSettings = Field(default={}, validate_default=True)
    retention: RetentionSettings = Field(default={}, validate_default=True)
    logging: LoggingSettings = Field(default={}, validate_default=True)
    feeds: list[FeedSettings] = []
    profiles: dict[str, ProfileSpec] = {}
    digests: list[DigestSettings] = []
    web: WebSettings | None = None
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _feed_intervals(self) -> "Settings":
        lo, hi = self.polling.min_interval, self.polling.max_interval
        for f in self.feeds:
            if f.interval is not None and not lo <= f.interval <= hi:
                raise ValueError(
                    f"feed {f.name or f.url!r}: interval {format_duration(f.interval)} is outside [polling] "
                    f"min_interval..max_interval ({format_duration(lo)}..{format_duration(hi)}), "
                    "so it would never apply; change one or the other"
                )
        return self

    @model_validator(mode="after")
    def _references(self) -> "Settings":
        names = [d.name for d in self.digests]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"digest names must be unique: {sorted(dupes)}")
        for d in self.digests:
            missing = [p for p in d.profiles if p not in self.profiles]
            if missing:
                raise ValueError(f"digest {d.name!r} names unknown profile(s) {missing}")
        return self

    def secret_problems(self) -> list[str]:
        """What the environment lacks for sending as configured (checked at start-up and at send)."""
        problems = [p for p in (d.missing_secret() for d in self.digests) if p]
        if any(d.channel == "email" for d in self.digests) and (
            refusal := self.smtp.plaintext_auth_refusal()
        ):
            problems.append(refusal)
        return problems

    def digest(self, name: str) -> "DigestSettings":
        for d in self.digests:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in self.digests) or "none"
        raise ConfigError(f"no digest named {name!r} (configured: {known})")


_ENV_OVERRIDES = (
    ("WATCHER_DATABASE_URL", "database", "url"),
    ("WATCHER_SMTP_HOST", "smtp", "host"),
    ("WATCHER_SMTP_PORT", "smtp", "port"),
    ("WATCHER_WEB_LISTEN", "web", "listen"),
    ("WATCHER_WEB_BASE_URL", "web", "base_url"),
)


def config_path() -> Path:
    return Path(os.environ.get("WATCHER_CONFIG") or DEFAULT_CONFIG)


def _describe(err: ValidationError, data: dict[str, Any]) -> str:
    from watcher.config_errors import describe

    return describe(err, data, Settings)


def load_settings(path: Path | None = None) -> "Settings":
    """Read and validate the config; ``WATCHER_DATABASE_URL`` overrides ``[database] url``.

    A missing file means defaults (embedded SQLite, no feeds); a broken one is a ConfigError.
    """
    path = path or config_path()
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    elif "WATCHER_CONFIG" in os.environ:
        raise ConfigError(f"{path}: config file not found (named by WATCHER_CONFIG)")
    # Deployment-specific values can come from the environment (docker-compose sets these).
    for env, section, key in _ENV_OVERRIDES:
        value = os.environ.get(env)
        if value:
            data.setdefault(section, {})[key] = value
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc, data)}") from None
    settings.source = path
    return settings
