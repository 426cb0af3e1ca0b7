"""Preflight of the source: can aurora-sync read a complete, decodable binlog from it?

:func:`gather` reads everything it needs over one connection into :class:`SourceFacts`;
the checks are pure functions of those facts and the settings, so each rule is testable
without a server. Every failure names the setting and the exact statement that fixes it, in
the form the server in question takes (SET GLOBAL and my.cnf, SET PERSIST, or an Aurora
parameter group).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pymysql

from sync.checks import CheckResult, fail, ok, warn
from sync.db import connect
from sync.settings import Settings
from sync.source import grants as g

VARIABLES = (
    "log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata", "log_bin_compress",
    "binlog_transaction_compression", "binlog_row_value_options", "binlog_expire_logs_seconds",
    "expire_logs_days", "aurora_version",
)
MIN_RETENTION_HOURS = 24.0
TICDC_ADVICE = (
    "TiDB has no MySQL binlog to read. Stream the aurora database with TiCDC instead: "
    "a changefeed to Kafka (protocol canal-json) or to a storage sink, e.g. "
    "`tiup cdc cli changefeed create --sink-uri='kafka://broker:9092/aurora?protocol=canal-json' "
    "--config=changefeed.toml` with a filter rule 'aurora.*'"
)


@dataclass(frozen=True)
class SourceFacts:
    """What the source told us; ``tables`` maps each table of the source database to its
    columns (empty when the database is missing)."""

    version: str
    variables: Mapping[str, str]
    grant_lines: tuple[str, ...]
    current_user: str
    server_id: int
    database_exists: bool
    tables: Mapping[str, frozenset[str]]
    rds_retention_readable: bool
    rds_retention_hours: float | None
    replicas: tuple[tuple[int, str], ...]
    tls_cipher: str

    @property
    def is_tidb(self) -> bool:
        return "tidb" in self.version.lower()

    @property
    def is_mariadb(self) -> bool:
        return "mariadb" in self.version.lower()

    @property
    def is_aurora(self) -> bool:
        return "aurora_version" in self.variables or self.rds_retention_readable


def gather(settings: Settings) -> SourceFacts:
    """Read the source's facts; raises ConnectError when it cannot be reached."""
    with contextlib.closing(connect(settings.source)) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION(), CURRENT_USER(), @@server_id")
        version, current_user, server_id = cur.fetchone() or ("", "", 0)
        placeholders = ", ".join(["%s"] * len(VARIABLES))
        cur.execute(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({placeholders})", VARIABLES)
        variables = {str(k).lower(): str(v) for k, v in cur.fetchall()}
        cur.execute("SHOW GRANTS")
        grant_lines = tuple(str(row[0]) for row in cur.fetchall())
        db = settings.source_db
        cur.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                    (db,))
        exists = bool((cur.fetchone() or (0,))[0])
        cur.execute("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s", (db,))
        tables: dict[str, set[str]] = {}
        for table, column in cur.fetchall():
            tables.setdefault(str(table), set()).add(str(column))
        readable, hours = _rds_retention(cur)
        return SourceFacts(
            version=str(version), variables=variables, grant_lines=grant_lines,
            current_user=str(current_user), server_id=int(server_id), database_exists=exists,
            tables={t: frozenset(c) for t, c in tables.items()},
            rds_retention_readable=readable, rds_retention_hours=hours,
            replicas=_replicas(cur, str(version)), tls_cipher=_cipher(cur),
        )


def _optional(cur: Any, sql: str) -> list[tuple[Any, ...]] | None:
    """Rows of a statement that only some servers or privileges allow; None when refused."""
    try:
        cur.execute(sql)
    except pymysql.MySQLError:
        return None
    return list(cur.fetchall())


def _rds_retention(cur: Any) -> tuple[bool, float | None]:
    rows = _optional(cur, "SELECT value FROM mysql.rds_configuration "
                          "WHERE name = 'binlog retention hours'")
    if rows is None:
        return False, None
    value = rows[0][0] if rows else None
    return True, (float(value) if value not in (None, "", "NULL") else None)


def _replicas(cur: Any, version: str) -> tuple[tuple[int, str], ...]:
    sql = "SHOW SLAVE HOSTS" if "mariadb" in version.lower() else "SHOW REPLICAS"
    rows = _optional(cur, sql)
    if rows is None or cur.description is None:
        return ()
    names = [d[0].lower() for d in cur.description]
    id_col = names.index("server_id") if "server_id" in names else 0
    host_col = names.index("host") if "host" in names else 1
    return tuple((int(r[id_col]), str(r[host_col])) for r in rows)


def _cipher(cur: Any) -> str:
    rows = _optional(cur, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    return str(rows[0][1]) if rows else ""


# --- the checks ------------------------------------------------------------------------------

SourceCheck = Callable[[SourceFacts, Settings], CheckResult]


def _set_fix(facts: SourceFacts, name: str, value: str, *, dynamic: bool = True) -> str:
    """How to set a server variable on this kind of server."""
    if facts.is_aurora:
        return (f"set {name}={value} in the DB cluster parameter group of the Aurora cluster "
                "and reboot the writer instance")
    cnf = f"{name}={value} under [mysqld] in my.cnf"
    if not dynamic:
        return f"set {cnf} and restart the server"
    if facts.is_mariadb:
        return f"run SET GLOBAL {name}='{value}'; and set {cnf} (so a restart keeps it)"
    return f"run SET PERSIST {name}='{value}';"


def check_server(facts: SourceFacts, settings: Settings) -> CheckResult:
    if facts.is_tidb:
        return fail("source server", f"{facts.version} is TiDB, not MySQL/MariaDB",
                    TICDC_ADVICE)
    return ok("source server", facts.version)


def check_log_bin(facts: SourceFacts, settings: Settings) -> CheckResult:
    value = facts.variables.get("log_bin", "OFF").upper()
    if value in ("ON", "1"):
        return ok("log_bin", "ON")
    return fail("log_bin", f"the binary log is {value}: there are no changes to stream",
                _set_fix(facts, "binlog_format", "ROW") if facts.is_aurora
                else _set_fix(facts, "log_bin", "binlog", dynamic=False)
                + " (and remove skip-log-bin)")


def _expect(name: str, expected: str) -> SourceCheck:
    def check(facts: SourceFacts, settings: Settings) -> CheckResult:
        value = facts.variables.get(name)
        if value is not None and value.upper() == expected:
            return ok(name, value)
        why = {
            "binlog_format": "row events are needed to see each changed row",
            "binlog_row_image": "without full images updates and deletes lose columns",
        }.get(name, "")
        return fail(name, f"{value} (must be {expected}): {why}",
                    _set_fix(facts, name, expected) + "; sessions already open keep the old "
                    "value until they reconnect")
    check.__name__ = f"check_{name}"
    return check


def check_row_metadata(facts: SourceFacts, settings: Settings) -> CheckResult:
    value = facts.variables.get("binlog_row_metadata")
    if value is None:
        return fail("binlog_row_metadata",
                    f"{facts.version} has no binlog_row_metadata, so binlog rows carry no "
                    "column names or signedness",
                    "upgrade the source to MySQL 8.0.14+ / Aurora MySQL 3 / MariaDB 10.5+ "
                    "and set binlog_row_metadata=FULL")
    if value.upper() == "FULL":
        return ok("binlog_row_metadata", value)
    return fail("binlog_row_metadata",
                f"{value} (must be FULL): columns would decode as UNKNOWN_COL0.., unsigned "
                "integers as negative, ENUM/SET as None",
                _set_fix(facts, "binlog_row_metadata", "FULL"))


def check_compression(facts: SourceFacts, settings: Settings) -> CheckResult:
    on = [name for name in ("log_bin_compress", "binlog_transaction_compression")
          if facts.variables.get(name, "OFF").upper() in ("ON", "1")]
    if not on:
        return ok("binlog compression", "off")
    return fail("binlog compression", f"{', '.join(on)} is ON: compressed events cannot "
                "be decoded and would be skipped", _set_fix(facts, on[0], "OFF"))


def check_row_value_options(facts: SourceFacts, settings: Settings) -> CheckResult:
    value = facts.variables.get("binlog_row_value_options", "")
    if not value:
        return ok("binlog_row_value_options", "empty" if facts.variables.get(
            "binlog_row_value_options") is not None else "not used by this server")
    return fail("binlog_row_value_options", f"{value}: partial JSON updates cannot be decoded",
                _set_fix(facts, "binlog_row_value_options", ""))


def _grant_fix(facts: SourceFacts, privileges: str) -> str:
    return f"GRANT {privileges} TO {facts.current_user or 'the SOURCE_DB_USER'};"


def check_replication_grants(facts: SourceFacts, settings: Settings) -> list[CheckResult]:
    grants, has_roles = g.parse_grants(facts.grant_lines)
    role_note = " (privileges granted through roles are not counted)" if has_roles else ""
    results = []
    for name, wanted, spelled in (
        ("grant REPLICATION SLAVE", g.REPLICATION_SLAVE, "REPLICATION SLAVE"),
        ("grant REPLICATION CLIENT", g.REPLICATION_CLIENT, "REPLICATION CLIENT"),
    ):
        if g.has_global(grants, wanted):
            results.append(ok(name, f"{facts.current_user} has it"))
        else:
            results.append(fail(name, f"{facts.current_user} lacks {spelled} on *.*{role_note}",
                                _grant_fix(facts, f"{spelled} ON *.*")))
    db = settings.source_db
    if g.can_select(grants, db, facts.tables):
        results.append(ok("grant SELECT", f"on {db}"))
    else:
        results.append(fail("grant SELECT", f"{facts.current_user} cannot read {db}{role_note}",
                            _grant_fix(facts, f"SELECT ON `{db}`.*")))
    return results


def check_retention(facts: SourceFacts, settings: Settings) -> CheckResult:
    name = "binlog retention"
    if facts.rds_retention_readable:
        hours = facts.rds_retention_hours
        fix = "CALL mysql.rds_set_configuration('binlog retention hours', 168);"
        if hours is None:
            return warn(name, "Aurora purges binlogs as soon as it can (retention NULL)", fix)
        return (ok(name, f"{hours:g} h") if hours >= MIN_RETENTION_HOURS
                else warn(name, f"{hours:g} h (under {MIN_RETENTION_HOURS:g} h)", fix))
    seconds = int(facts.variables.get("binlog_expire_logs_seconds", "0") or 0)
    days = float(facts.variables.get("expire_logs_days", "0") or 0)
    retained = seconds / 3600 if seconds else days * 24
    if retained == 0:
        return ok(name, "binlogs are kept until purged by hand")
    if retained >= MIN_RETENTION_HOURS:
        return ok(name, f"{retained:g} h")
    return warn(name, f"{retained:g} h: a stop longer than that forces a new bootstrap",
                _set_fix(facts, "binlog_expire_logs_seconds", "604800"))


def check_server_id(facts: SourceFacts, settings: Settings) -> CheckResult:
    ours = settings.server_id
    fix = "set AURORA_SYNC_SERVER_ID to a number no server or replica of this source uses"
    if facts.server_id == ours:
        return fail("server id", f"AURORA_SYNC_SERVER_ID={ours} is the source's own server_id",
                    fix)
    others = [host for sid, host in facts.replicas if sid == ours]
    if others:
        return warn("server id", f"a replica with server id {ours} is connected from "
                    f"{others[0]}: two readers with one id disconnect each other", fix +
                    " (unless that replica is this pipeline's own running daemon)")
    return ok("server id", f"ours {ours}, source {facts.server_id}")


def check_database(facts: SourceFacts, settings: Settings, expected: tuple[str, ...]) \
        -> CheckResult:
    db = settings.source_db
    if not facts.database_exists:
        grant = _grant_fix(facts, f"SELECT ON `{db}`.*")
        return fail("source database", f"{db} does not exist or is not visible to "
                    f"{facts.current_user}", f"check SOURCE_DB_NAME, or {grant}")
    missing = [t for t in expected if t not in facts.tables]
    if missing:
        return fail("source database", f"{db} lacks the tables {', '.join(missing)}",
                    "point SOURCE_DB_NAME at the aurora monolith's database")
    return ok("source database", f"{db}: {len(expected)} aurora tables present")


def source_results(facts: SourceFacts, settings: Settings, expected: tuple[str, ...]) \
        -> list[CheckResult]:
    """Every source check; a TiDB source gets only the explanation of why it cannot work."""
    server = check_server(facts, settings)
    if facts.is_tidb:
        return [server]
    singles: list[SourceCheck] = [
        check_log_bin, _expect("binlog_format", "ROW"), _expect("binlog_row_image", "FULL"),
        check_row_metadata, check_compression, check_row_value_options,
    ]
    results = [server, *(check(facts, settings) for check in singles)]
    results += check_replication_grants(facts, settings)
    results += [check_retention(facts, settings), check_server_id(facts, settings),
                check_database(facts, settings, expected)]
    return results
