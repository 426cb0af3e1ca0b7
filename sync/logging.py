"""Logging for aurora-sync: structlog, configured once at start.

JSON lines when stderr is not a terminal (containers, CI, log shippers), a readable console
rendering on a terminal; ``AURORA_SYNC_LOG_FORMAT`` overrides the guess. Every event passes
through :class:`RedactSecrets` last before rendering, so a password that slips into an event
value (an exception text, a connection string) is masked wherever it appears.

python-mysql-replication logs its connection settings, password included, at INFO
(PITFALLS 14): its logger is held at WARNING whatever our level is.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from sync.settings import Settings

MASK = "**********"
# Keys whose values are secrets whatever they hold.
SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|credential|api_?key", re.IGNORECASE)
NOISY_LOGGERS = ("pymysqlreplication",)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class RedactSecrets:
    """A structlog processor that masks secret strings and secret-named keys.

    ``secrets`` are the literal secret values (the passwords from the settings); empty ones are
    ignored, since replacing "" would mangle every string.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        return {key: self._value(key, value) for key, value in event.items()}

    def redact_text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _value(self, key: object, value: Any) -> Any:
        if isinstance(key, str) and SECRET_KEY.search(key) and value not in (None, ""):
            return MASK
        if isinstance(value, str):
            return self.redact_text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {k: self._value(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._value(None, v) for v in value]
        # Anything else is rendered with str() later: render it now, so it can be checked.
        text = str(value)
        redacted = self.redact_text(text)
        return value if redacted == text else redacted


class _StdlibRedactFilter(logging.Filter):
    """The same masking for records of libraries that log through the standard library."""

    def __init__(self, redact: RedactSecrets) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact.redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def settings_secrets(settings: Settings) -> list[str]:
    """The secret values held by ``settings``."""
    return [
        settings.source_password.get_secret_value(),
        settings.target_password.get_secret_value(),
    ]


def build_processors(redact: RedactSecrets, renderer: Processor) -> list[Processor]:
    """The processor pipeline; redaction runs after exceptions are formatted into text."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact,
        renderer,
    ]


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured:
    a caller that swaps stderr for a while (a test runner capturing output) and closes its
    stand-in afterwards must not leave the process logging into a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> RedactSecrets:
    """Configure structlog and the standard library's root logger for this process."""
    out = stream if stream is not None else cast(TextIO, _CurrentStderr())
    level = _LEVELS[settings.log_level]
    redact = RedactSecrets(settings_secrets(settings))
    renderer = _renderer(settings.log_format, out)
    structlog.configure(
        processors=build_processors(redact, renderer),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    _configure_stdlib(level, out, redact)
    return redact


def _renderer(log_format: str, out: TextIO) -> Processor:
    is_tty = bool(getattr(out, "isatty", lambda: False)())
    if log_format == "console" or (log_format == "auto" and is_tty):
        return structlog.dev.ConsoleRenderer(colors=is_tty)
    return structlog.processors.JSONRenderer(sort_keys=False)


def _configure_stdlib(level: int, out: TextIO, redact: RedactSecrets) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_aurora_sync", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_StdlibRedactFilter(redact))
    handler._aurora_sync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))

