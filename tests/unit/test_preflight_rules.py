"""The source preflight rules, as pure functions of what a server reports."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sync.checks import CheckResult, Status
from sync.settings import load_settings
from sync.source import grants as g
from sync.source.preflight import SourceFacts, source_results

AURORA_TABLES = ("users", "semesters", "subjects", "syllabus", "repositories")
GOOD_VARIABLES = {
    "log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL", "log_bin_compress": "OFF",
    "binlog_expire_logs_seconds": "0", "expire_logs_days": "0",
}
GOOD_GRANTS = (
    "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `rep`@`%` IDENTIFIED BY PASSWORD '*AB'",
    "GRANT SELECT ON `aurora`.* TO `rep`@`%`",
)


def facts(**changes: Any) -> SourceFacts:
    variables = {**GOOD_VARIABLES, **changes.pop("variables", {})}
    base = SourceFacts(
        version="10.11.6-MariaDB-log", variables={k: v for k, v in variables.items() if v},
        grant_lines=GOOD_GRANTS, current_user="rep@%", server_id=1, database_exists=True,
        tables={t: frozenset({"id"}) for t in AURORA_TABLES}, rds_retention_readable=False,
        rds_retention_hours=None, replicas=(), tls_cipher="",
    )
    return dataclasses.replace(base, **changes)


def results(f: SourceFacts, **settings: Any) -> dict[str, CheckResult]:
    s = load_settings(None, **settings)
    return {r.name: r for r in source_results(f, s, AURORA_TABLES)}


def test_a_well_configured_source_passes_everything() -> None:
    assert {r.status for r in results(facts()).values()} == {Status.OK}


def test_tidb_source_fails_with_ticdc_advice_and_nothing_else() -> None:
    out = list(results(facts(version="8.0.11-TiDB-v7.5.0")).values())
    assert len(out) == 1
    assert out[0].status is Status.FAIL
    assert "TiDB" in out[0].detail
    assert "TiCDC" in (out[0].fix or "")
    assert "canal-json" in (out[0].fix or "")


@pytest.mark.parametrize(
    ("variables", "name", "fix_part"),
    [
        ({"log_bin": "OFF"}, "log_bin", "log_bin=binlog"),
        ({"binlog_format": "MIXED"}, "binlog_format", "SET GLOBAL binlog_format='ROW'"),
        ({"binlog_row_image": "NOBLOB"}, "binlog_row_image", "binlog_row_image='FULL'"),
        ({"binlog_row_metadata": "MINIMAL"}, "binlog_row_metadata", "binlog_row_metadata"),
        ({"binlog_row_metadata": ""}, "binlog_row_metadata", "upgrade"),
        ({"log_bin_compress": "ON"}, "binlog compression", "log_bin_compress='OFF'"),
        ({"binlog_transaction_compression": "ON"}, "binlog compression",
         "binlog_transaction_compression"),
        ({"binlog_row_value_options": "PARTIAL_JSON"}, "binlog_row_value_options",
         "binlog_row_value_options"),
    ],
)
def test_each_bad_setting_fails_with_its_fix(variables: dict[str, str], name: str,
                                             fix_part: str) -> None:
    out = results(facts(variables=variables))
    assert out[name].status is Status.FAIL
    assert fix_part in (out[name].fix or "")
    others = [r for n, r in out.items() if n != name and r.status is not Status.OK]
    assert others == []


def test_mysql_gets_set_persist_and_aurora_the_parameter_group() -> None:
    mysql = results(facts(version="8.0.36", variables={"binlog_format": "MIXED"}))
    assert "SET PERSIST binlog_format='ROW'" in (mysql["binlog_format"].fix or "")
    aurora = results(facts(version="8.0.mysql_aurora.3.05.2",
                           variables={"binlog_format": "OFF", "aurora_version": "3.05.2"}))
    assert "parameter group" in (aurora["binlog_format"].fix or "")


@pytest.mark.parametrize(
    ("lines", "slave", "client", "select"),
    [
        (GOOD_GRANTS, True, True, True),
        (("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",), True, True,
         True),
        (("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'r'@'%'",
          "GRANT SELECT ON `aur%`.* TO 'r'@'%'"), True, True, True),
        (("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'r'@'%'",
          "GRANT SELECT ON `aurora\\_%`.* TO 'r'@'%'"), True, True, False),
        (("GRANT REPLICATION SLAVE ADMIN, BINLOG REPLAY, SLAVE MONITOR ON *.* TO r",
          "GRANT ALL PRIVILEGES ON `aurora`.* TO r"), False, False, True),
        (("GRANT USAGE ON *.* TO r", *(f"GRANT SELECT ON `aurora`.`{t}` TO r"
                                      for t in AURORA_TABLES)), False, False, True),
        (("GRANT USAGE ON *.* TO r", "GRANT SELECT ON `aurora`.`users` TO r"), False, False,
         False),
        (("GRANT SELECT ON `other`.* TO r", "GRANT SELECT (id, name) ON `aurora`.`users` TO r"),
         False, False, False),
        ((*(f"GRANT SELECT (id), INSERT ON `aurora`.`{t}` TO r" for t in AURORA_TABLES),),
         False, False, False),
    ],
)
def test_grants(lines: tuple[str, ...], slave: bool, client: bool, select: bool) -> None:
    out = results(facts(grant_lines=lines))
    assert (out["grant REPLICATION SLAVE"].status is Status.OK) is slave
    assert (out["grant REPLICATION CLIENT"].status is Status.OK) is client
    assert (out["grant SELECT"].status is Status.OK) is select
    if not slave:
        assert out["grant REPLICATION SLAVE"].fix == "GRANT REPLICATION SLAVE ON *.* TO rep@%;"


def test_grants_through_roles_are_mentioned() -> None:
    out = results(facts(grant_lines=("GRANT USAGE ON *.* TO r", "GRANT `replicator` TO r")))
    assert "roles" in out["grant REPLICATION SLAVE"].detail


def test_table_level_grants_parse_backticked_names() -> None:
    grants, roles = g.parse_grants(["GRANT SELECT, INSERT ON `my.db`.`t``1` TO x"])
    assert not roles
    assert grants == [g.Grant(frozenset({"SELECT", "INSERT"}), "my.db", "t`1")]


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"variables": {"binlog_expire_logs_seconds": "3600"}}, Status.WARN, "1 h"),
        ({"variables": {"expire_logs_days": "7"}}, Status.OK, "168 h"),
        ({"variables": {"binlog_expire_logs_seconds": "86400", "expire_logs_days": "1"}},
         Status.OK, "24 h"),
        ({}, Status.OK, "kept until purged"),
        ({"rds_retention_readable": True}, Status.WARN, "NULL"),
        ({"rds_retention_readable": True, "rds_retention_hours": 12.0}, Status.WARN, "12 h"),
        ({"rds_retention_readable": True, "rds_retention_hours": 168.0}, Status.OK, "168 h"),
    ],
)
def test_retention(change: dict[str, Any], status: Status, detail: str) -> None:
    out = results(facts(**change))["binlog retention"]
    assert out.status is status
    assert detail in out.detail
    if status is Status.WARN and change.get("rds_retention_readable"):
        assert "rds_set_configuration('binlog retention hours'" in (out.fix or "")


def test_server_id_collisions() -> None:
    same = results(facts(server_id=42), AURORA_SYNC_SERVER_ID=42)["server id"]
    assert same.status is Status.FAIL
    assert "AURORA_SYNC_SERVER_ID" in (same.fix or "")
    replica = results(facts(replicas=((42, "10.0.0.9"),)), AURORA_SYNC_SERVER_ID=42)["server id"]
    assert replica.status is Status.WARN
    assert "10.0.0.9" in replica.detail


def test_missing_database_and_tables() -> None:
    gone = results(facts(database_exists=False, tables={}))["source database"]
    assert gone.status is Status.FAIL
    assert "SOURCE_DB_NAME" in (gone.fix or "")
    partial = results(facts(tables={"users": frozenset({"id"})}))["source database"]
    assert partial.status is Status.FAIL
    assert "semesters" in partial.detail
