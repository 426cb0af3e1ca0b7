"""Reading ``SHOW GRANTS`` output: which privileges a login has, and where.

MySQL and MariaDB spell the same privilege differently across versions (MariaDB 10.5 shows
``REPLICATION CLIENT`` as ``BINLOG MONITOR``), grant on patterns (``aurora\\_%``.*) and on
single tables; ``ALL PRIVILEGES`` covers everything at its level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Reading the binlog (COM_BINLOG_DUMP). MariaDB's REPLICATION SLAVE ADMIN and BINLOG REPLAY
# sound close but do not allow it (they govern replicas and BINLOG statements).
REPLICATION_SLAVE = frozenset({"REPLICATION SLAVE", "REPLICATION REPLICA"})
# SHOW MASTER STATUS / SHOW BINARY LOGS, which the position capture needs. MariaDB's
# SLAVE MONITOR only allows SHOW SLAVE STATUS, so it does not count.
REPLICATION_CLIENT = frozenset({"REPLICATION CLIENT", "BINLOG MONITOR", "SUPER"})
SELECT = frozenset({"SELECT"})
ALL = frozenset({"ALL", "ALL PRIVILEGES"})

_GRANT = re.compile(r"^GRANT\s+(?P<privs>.+?)\s+ON\s+(?P<on>.+?)\s+TO\s+", re.IGNORECASE)
_ON_TYPE = re.compile(r"^(?:TABLE|FUNCTION|PROCEDURE|PACKAGE(?: BODY)?)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Grant:
    """One privilege list on one level: ``database`` and ``table`` are None for ``*``."""

    privileges: frozenset[str]
    database: str | None
    table: str | None

    def covers(self, wanted: frozenset[str]) -> bool:
        return bool(self.privileges & (wanted | ALL))


def parse_grants(lines: Iterable[str]) -> tuple[list[Grant], bool]:
    """The privilege grants in ``lines``, and whether any line grants a role."""
    grants: list[Grant] = []
    has_roles = False
    for line in lines:
        match = _GRANT.match(line.strip())
        if match is None:
            has_roles = has_roles or line.strip().upper().startswith("GRANT ")
            continue
        database, table = _split_level(_ON_TYPE.sub("", match.group("on").strip()))
        grants.append(Grant(_privileges(match.group("privs")), database, table))
    return grants, has_roles


def has_global(grants: Iterable[Grant], wanted: frozenset[str]) -> bool:
    return any(g.database is None and g.covers(wanted) for g in grants)


def can_select(grants: Iterable[Grant], database: str, tables: Iterable[str]) -> bool:
    """Whether SELECT reaches every one of ``tables`` in ``database``."""
    grants = list(grants)
    for grant in grants:
        if not grant.covers(SELECT):
            continue
        if grant.database is None:
            return True
        if grant.table is None and _db_matches(grant.database, database):
            return True
    table_level = {
        g.table for g in grants if g.covers(SELECT) and g.table and g.database == database
    }
    wanted = set(tables)
    return bool(wanted) and wanted <= table_level


def _privileges(text: str) -> frozenset[str]:
    # A privilege on some columns (SELECT (a, b)) does not reach the whole table: drop it.
    without_columns = re.sub(r"[A-Za-z ]+\([^)]*\)", "", text)
    names = (" ".join(p.split()).upper() for p in without_columns.split(","))
    return frozenset(n for n in names if n)


def _split_level(on: str) -> tuple[str | None, str | None]:
    parts = re.findall(r"`((?:[^`]|``)*)`|([^.`]+)", on)
    names = [(quoted.replace("``", "`") if quoted else bare.strip()) for quoted, bare in parts]
    if len(names) != 2:
        return None if on == "*" else on, None
    database, table = names
    return (None if database == "*" else database), (None if table == "*" else table)


def _db_matches(pattern: str, database: str) -> bool:
    # Database-level grants take LIKE patterns: % and _ are wildcards unless escaped.
    regex = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, database) is not None
