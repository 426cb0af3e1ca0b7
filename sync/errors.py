"""The one error tree of aurora-sync.

Every error an operator can meet is an :class:`AuroraSyncError`. Each carries what is wrong,
where (table, key, binlog position when known) and how to fix it, so that the CLI can print
it as is and exit with the code that fits::

    AuroraSyncError                      exit 1 unless said otherwise
    ├── ConfigError                      exit 2: settings, .env, mapping.yaml
    │   └── MappingConfigError           mapping.yaml is invalid (file, key, fix)
    ├── PreflightError                   `check` found a problem with a server's setup
    ├── ConnectError                     a server cannot be reached or refuses the login/TLS
    ├── SourceError                      the binlog cannot be read as it must be
    │   ├── BinlogPurgedError            the checkpoint is older than the oldest binlog
    │   ├── UnsupportedEventError        compressed/partial/unknown events
    │   ├── PartialRowImageError         a row image without every column
    │   ├── SchemaChangeError            DDL on a mapped table
    │   ├── ServerIdConflictError        another replica uses our server id
    │   └── SourceConnectionLostError    the replication connection dropped or went silent;
    │                                    reconnect from the committed checkpoint
    ├── MappingError                     one change cannot be mapped (missing parent...)
    ├── ApplyError                       the target refused a batch (not retryable)
    │   └── RetryableApplyError          the target asked us to try again (TiDB list)
    ├── BootstrapError                   the snapshot cannot proceed (no key, ...)
    ├── ValidationError                  targets differ from the mapped source
    └── CutoverError                     a cutover step failed or ran out of time

Messages never contain passwords or row values: only table names, key values and positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AuroraSyncError(Exception):
    """Base of every aurora-sync error: a reason, its context and the fix."""

    exit_code = 1

    def __init__(
        self,
        reason: str,
        *,
        fix: str | None = None,
        table: str | None = None,
        key: Mapping[str, Any] | tuple[Any, ...] | None = None,
        position: object | None = None,
    ) -> None:
        self.reason = reason
        self.fix = fix
        self.table = table
        self.key = key
        self.position = position
        super().__init__(self.describe())

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by its parts: the binlog reader process sends its errors to the stream's.
        parts = {"fix": self.fix, "table": self.table, "key": self.key,
                 "position": self.position}
        return _rebuild, (type(self), self.reason, parts)

    def context(self) -> dict[str, str]:
        """The structured context, for logs and the state schema."""
        ctx: dict[str, str] = {}
        if self.table is not None:
            ctx["table"] = self.table
        if self.key is not None:
            ctx["key"] = str(dict(self.key) if isinstance(self.key, Mapping) else self.key)
        if self.position is not None:
            ctx["position"] = str(self.position)
        return ctx

    def describe(self) -> str:
        parts = [self.reason]
        ctx = self.context()
        if ctx:
            parts.append("(" + ", ".join(f"{k}={v}" for k, v in ctx.items()) + ")")
        text = " ".join(parts)
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


def _rebuild(cls: type[AuroraSyncError], reason: str, parts: dict[str, Any]) -> AuroraSyncError:
    return cls(reason, **parts)


class ConfigError(AuroraSyncError):
    exit_code = 2


class MappingConfigError(ConfigError):
    pass


class PreflightError(AuroraSyncError):
    pass


class ConnectError(AuroraSyncError):
    pass


class SourceError(AuroraSyncError):
    pass


class BinlogPurgedError(SourceError):
    pass


class UnsupportedEventError(SourceError):
    pass


class PartialRowImageError(SourceError):
    pass


class SchemaChangeError(SourceError):
    pass


class ServerIdConflictError(SourceError):
    pass


class SourceConnectionLostError(SourceError):
    """The binlog connection broke; the reader never reconnects by itself (its memory may be
    ahead of what the targets committed), the pipeline reopens it at its checkpoint."""


class MappingError(AuroraSyncError):
    pass


class ApplyError(AuroraSyncError):
    pass


class RetryableApplyError(ApplyError):
    pass


class BootstrapError(AuroraSyncError):
    pass


class ValidationError(AuroraSyncError):
    pass


class CutoverError(AuroraSyncError):
    pass
