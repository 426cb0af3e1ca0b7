"""The cutover's checks: is the daemon streaming, how far behind, and do the counts agree.

Each check either returns a line for the summary or raises :class:`CutoverError` with the
reason and the fix; none of them changes anything.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pymysql

from sync.apply.sql import quote
from sync.mapping import files
from sync.mapping.spec import MappingSpec
from sync.settings import Settings
from sync.state import StateStore
from sync.validation.settle import wait_applied

StoreFactory = Callable[[], StateStore]
CHECKPOINT_MAX_AGE = 60.0


@dataclass(frozen=True, slots=True)
class Health:
    answered: bool
    ok: bool
    reason: str


def daemon_health(http_addr: str, timeout: float = 1.0) -> Health:
    """The daemon's /healthz verdict, or that nothing answers at ``http_addr``."""
    url = f"http://{http_addr}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return Health(True, True, _reason(response.read()))
    except urllib.error.HTTPError as exc:
        return Health(True, False, _reason(exc.read()))
    except (urllib.error.URLError, OSError):
        return Health(False, False, f"nothing answers at {url}")


def _reason(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    with contextlib.suppress(ValueError):
        document = json.loads(text)
        if isinstance(document, dict):
            return str(document.get("reason", text))
    return text


def checkpoint_age(conn: pymysql.Connection[Any], state_db: str, pipeline: str) -> float | None:
    """Seconds since the checkpoint last moved (by the target's clock)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT TIMESTAMPDIFF(MICROSECOND, updated_at, UTC_TIMESTAMP(6)) "
                    f"FROM {quote(state_db)}.checkpoint WHERE pipeline = %s", (pipeline,))
        row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0]) / 1e6


@dataclass(frozen=True, slots=True)
class CountCheck:
    table: str
    expected: int
    target: int


def _count(conn: pymysql.Connection[Any], sql: str, args: tuple[Any, ...] = ()) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    return int(row[0]) if row else 0


def counts(source: pymysql.Connection[Any], target: pymysql.Connection[Any],
           spec: MappingSpec, settings: Settings) -> list[CountCheck]:
    """Per target table: rows aurora maps to (one per row; one file row per present URL)
    against the rows the target holds."""
    out: list[CountCheck] = []
    schema = quote(spec.source_schema)
    for table in spec.tables.values():
        ref = table.target
        have = _count(target, f"SELECT COUNT(*) FROM {quote(settings.database(ref.database))}"
                              f".{quote(ref.table)}")
        want = _count(source, f"SELECT COUNT(*) FROM {schema}.{quote(table.name)}")
        out.append(CountCheck(str(ref), want, have))
        split = table.split
        if split is None:
            continue
        # files.is_present: a URL with something besides whitespace.
        want = _count(source, f"SELECT COUNT(*) FROM {schema}.{quote(table.name)} WHERE "
                              f"{quote(split.url_column)} REGEXP '[^[:space:]]'")
        have = _count(target, f"SELECT COUNT(*) FROM "
                              f"{quote(settings.database(split.target.database))}."
                              f"{quote(split.target.table)} WHERE "
                              f"{quote(files.SOURCE_TABLE_COLUMN)} = %s", (split.source_table,))
        out.append(CountCheck(str(split.target), want, have))
    return out


def lag_seconds(store: StoreFactory, position: Any, max_lag: float) -> float | None:
    """Seconds the daemon took to apply ``position``; None if not within ``max_lag``."""
    settled = wait_applied(store, position, max_lag)
    return settled.seconds if settled.reached else None


__all__ = ["CountCheck", "Health", "checkpoint_age", "counts", "daemon_health", "lag_seconds"]
