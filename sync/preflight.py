"""``aurora-sync check``: everything that must hold before a bootstrap or a stream can work.

Each check looks at a :class:`PreflightContext` (the settings and what the source and the
target told us, gathered once) and yields :class:`~sync.checks.CheckResult`s. The checks run
in the order of :data:`CHECKS`; more are added with :func:`register_check`, e.g. the check
that the mapping's tables and columns exist on both sides::

    @register_check
    def mapping_matches_schemas(ctx: PreflightContext) -> Iterable[CheckResult]: ...
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sync.checks import CheckResult, Status, fail, ok, warn
from sync.db import connect
from sync.errors import ConnectError
from sync.schema import SOURCE_SCHEMA, STATE_SCHEMA, schema_tables
from sync.settings import LOGICAL_DATABASES, Endpoint, Settings
from sync.source import preflight as source_preflight
from sync.source.preflight import SourceFacts


@dataclass(frozen=True)
class TargetFacts:
    """What the target told us: its version, TLS cipher and the tables of our databases."""

    version: str
    tls_cipher: str
    tables: Mapping[str, Mapping[str, frozenset[str]]]  # database -> table -> columns


@dataclass(frozen=True)
class PreflightContext:
    """Gathered once per run; a side is None when it could not be reached (``*_error``)."""

    settings: Settings
    source: SourceFacts | None
    source_error: ConnectError | None
    target: TargetFacts | None
    target_error: ConnectError | None


Check = Callable[[PreflightContext], Iterable[CheckResult]]


def gather_target(settings: Settings) -> TargetFacts:
    names = [*settings.databases.values(), settings.state_db]
    with contextlib.closing(connect(settings.target)) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = str((cur.fetchone() or ("",))[0])
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
        cipher = str(row[1]) if row else ""
        placeholders = ", ".join(["%s"] * len(names))
        cur.execute(f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                    f"WHERE SCHEMA_NAME IN ({placeholders})", names)
        tables: dict[str, dict[str, set[str]]] = {str(r[0]): {} for r in cur.fetchall()}
        cur.execute(f"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
                    f" WHERE TABLE_SCHEMA IN ({placeholders})", names)
        for schema, table, column in cur.fetchall():
            tables.setdefault(str(schema), {}).setdefault(str(table), set()).add(str(column))
    return TargetFacts(version, cipher, {
        db: {t: frozenset(c) for t, c in by_table.items()} for db, by_table in tables.items()
    })


def _reachable(name: str, endpoint: Endpoint, error: ConnectError | None, version: str,
               cipher: str) -> list[CheckResult]:
    if error is not None:
        return [fail(name, error.reason, error.fix or "check the connection settings")]
    prefix = "SOURCE_DB" if endpoint.role == "source" else "TIDB"
    results = [ok(name, f"{endpoint.user}@{endpoint.host}:{endpoint.port} ({version})")]
    tls_name = f"{endpoint.role} TLS"
    if cipher:
        identity = "host name verified" if endpoint.verify_identity else "host name NOT checked"
        results.append(ok(tls_name, f"{cipher}, certificate verified, {identity}"))
    elif _is_loopback(endpoint.host):
        results.append(ok(tls_name, "off (loopback connection)"))
    else:
        results.append(warn(tls_name, "off: the password and the data cross the network in "
                            "clear text", f"set {prefix}_SSL_CA to the server's CA certificate "
                            "(TiDB Cloud: the ca-cert.pem of the guide)"))
    return results


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def source_checks(ctx: PreflightContext) -> Iterable[CheckResult]:
    s = ctx.settings
    facts = ctx.source
    yield from _reachable("source reachable", s.source, ctx.source_error,
                          facts.version if facts else "", facts.tls_cipher if facts else "")
    if facts is not None:
        yield from source_preflight.source_results(facts, s, schema_tables(SOURCE_SCHEMA))


def target_checks(ctx: PreflightContext) -> Iterable[CheckResult]:
    s = ctx.settings
    facts = ctx.target
    yield from _reachable("target reachable", s.target, ctx.target_error,
                          facts.version if facts else "", facts.tls_cipher if facts else "")
    if facts is None:
        return
    wanted = [(logical, s.database(logical)) for logical in LOGICAL_DATABASES]
    wanted.append((STATE_SCHEMA, s.state_db))
    for logical, physical in wanted:
        yield _schema_present(facts, logical, physical)


def _schema_present(facts: TargetFacts, logical: str, physical: str) -> CheckResult:
    name = f"target {physical}"
    fix = "run aurora-sync init (it creates the databases and the missing tables)"
    if physical not in facts.tables:
        return fail(name, "database missing", fix)
    missing = [t for t in schema_tables(logical) if t not in facts.tables[physical]]
    if missing:
        return fail(name, f"tables missing: {', '.join(missing)}", fix)
    return ok(name, f"{len(facts.tables[physical])} tables ({logical}.sql)")


CHECKS: list[Check] = [source_checks, target_checks]


def register_check(check: Check) -> Check:
    """Add a check to every later :func:`run_checks` (usable as a decorator)."""
    if check not in CHECKS:
        CHECKS.append(check)
    return check


def gather(settings: Settings) -> PreflightContext:
    source: SourceFacts | None = None
    target: TargetFacts | None = None
    source_error = target_error = None
    try:
        source = source_preflight.gather(settings)
    except ConnectError as exc:
        source_error = exc
    try:
        target = gather_target(settings)
    except ConnectError as exc:
        target_error = exc
    return PreflightContext(settings, source, source_error, target, target_error)


def run_checks(settings: Settings, checks: Iterable[Check] | None = None) -> list[CheckResult]:
    """Gather the facts once and run every check (:data:`CHECKS` unless given)."""
    ctx = gather(settings)
    return [result for check in (CHECKS if checks is None else checks) for result in check(ctx)]


def failed(results: Iterable[CheckResult]) -> bool:
    return any(r.status is Status.FAIL for r in results)


def render(results: Iterable[CheckResult]) -> str:
    """One line per check, with the fix under every warning and failure."""
    lines = []
    for result in results:
        lines.append(result.line())
        if result.fix and result.status is not Status.OK:
            lines.append(f"    fix: {result.fix}")
    return "\n".join(lines)
