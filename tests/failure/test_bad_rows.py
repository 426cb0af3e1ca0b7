"""Rows the targets cannot take as they are, under a running daemon: values longer than the
target column, rows larger than the target's packet limit, zero dates on a target whose
sql_mode refuses them, text in latin1 and bytes that are not UTF-8.

Each either halts the stream before the row, with the table, the key, the position and the
reason, the checkpoint before it and nothing lost once the cause is fixed; or copies the row
exactly as aurora holds it (diff_targets empty).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import pymysql
import pytest

from sync.dev.localdb import LocalServer
from tests.bad_input import BadInputRecorder
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import Daemon, assert_exact, read_state
from tests.failure.conftest import (
    bootstrapped,
    check_lines,
    drain,
    position_in,
    seed,
    transactions_between,
    write_load,
)

pytestmark = [pytest.mark.integration, pytest.mark.failure]

MARKER_ID = 990_101
# The modes of TiDB's default sql_mode that concern dates.
TIDB_DATE_MODES = ("STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
                   "NO_ENGINE_SUBSTITUTION")


def aurora(d: Deployment, sql: str, args: list[object] | None = None, *,
           sql_mode: str | None = None) -> list[tuple[object, ...]]:
    """Run one statement on aurora (as its legacy application would, ``sql_mode`` given);
    returns its warnings."""
    with contextlib.closing(d.aurora_conn()) as conn, conn.cursor() as cur:
        if sql_mode is not None:
            cur.execute("SET SESSION sql_mode = %s", [sql_mode])
        cur.execute(sql, args)
        cur.execute("SHOW WARNINGS")
        return list(cur.fetchall())


def target_value(d: Deployment, logical: str, table: str, column: str, key: int) -> object:
    rows = d.target.execute(f"SELECT `{column}` FROM `{d.settings.database(logical)}`.`{table}` "
                            "WHERE id = %s", [key])
    return rows[0][0] if rows else None


def halted(d: Deployment, daemon: Daemon) -> tuple[int, str]:
    """Until the daemon exits; its exit code and the error it printed."""
    code = daemon.wait_exit(90)
    error = daemon.error()
    assert code == 1 and error, daemon.logs()[-3000:]
    state = read_state(d)
    assert state is not None and state.state == "halted", (state, daemon.logs()[-3000:])
    return code, error


@contextlib.contextmanager
def target_global(server: LocalServer, name: str, value: object) -> Iterator[None]:
    """A global variable of the module's own target, set for the block (new sessions)."""
    old = server.execute(f"SELECT @@GLOBAL.{name}")[0][0]
    server.execute(f"SET GLOBAL {name} = %s", [value])
    try:
        yield
    finally:
        server.execute(f"SET GLOBAL {name} = %s", [old])


@pytest.mark.bad_input
def test_value_longer_than_the_target_column_halts_before_it(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_target: LocalServer, bad_input: BadInputRecorder) -> None:
    d = deployment_factory("fbigval", target=own_target)
    seed(d)
    users = f"`{d.settings.database('gateway_db')}`.users"
    # A service schema narrower than aurora's: `check` says so; `run` meets it at the row.
    own_target.execute(f"ALTER TABLE {users} MODIFY name VARCHAR(100) NOT NULL")
    daemon = bootstrapped(d, daemon_factory(d))
    checked = daemon.cli("check")
    assert checked.returncode == 2
    narrow = check_lines(checked.stdout, "users.name")
    assert "is shorter than" in narrow, checked.stdout
    bad_input.record(category="oversized rows", given="`aurora-sync check` with a target "
                     "column narrower than aurora's (`users.name` VARCHAR(100) < 255)",
                     outcome=narrow, exit_code=checked.returncode)

    running = write_load(d, seed=71).start()
    time.sleep(1.5)
    before = daemon.checkpoint()
    aurora(d, "INSERT INTO users (id, email, password_hash, name) VALUES (%s, %s, 'x', %s)",
           [MARKER_ID, "long-name@example.org", "n" * 150])
    code, error = halted(d, daemon)
    stats = running.stop()
    assert stats.committed > 20

    at = position_in(error)
    checkpoint = daemon.checkpoint()
    assert "error 1406" in error and "Data too long for column 'name'" in error
    assert f"table={d.settings.database('gateway_db')}.users" in error
    assert f"key={{'id': {MARKER_ID}}}" in error
    assert before is not None and checkpoint is not None and before <= checkpoint < at
    # Right before it: the transactions of its batch that came first are applied.
    assert transactions_between(d.source, checkpoint, at) == 1
    assert target_value(d, "gateway_db", "users", "name", MARKER_ID) is None
    bad_input.record(category="oversized rows", given="a 150-character `users.name` for a "
                     "target column of 100, under load", outcome=error, exit_code=code,
                     effect="halted before its transaction; checkpoint right before it")

    # The operator widens the column and restarts: nothing was lost.
    own_target.execute(f"ALTER TABLE {users} MODIFY name VARCHAR(255) NOT NULL")
    daemon.start()
    daemon.wait_http()
    drain(d, daemon)
    assert target_value(d, "gateway_db", "users", "name", MARKER_ID) == "n" * 150
    assert_exact(d)


@pytest.mark.bad_input
def test_row_larger_than_the_targets_packet_limit_halts_before_it(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_target: LocalServer, bad_input: BadInputRecorder) -> None:
    d = deployment_factory("fbigrow", target=own_target)
    seed(d)
    daemon = bootstrapped(d, daemon_factory(d))
    daemon.sigterm()
    assert daemon.wait_exit(60) == 0
    big = 3 * 1024 * 1024
    with target_global(own_target, "max_allowed_packet", 1024 * 1024):
        daemon.start()  # its new sessions take the small limit
        daemon.wait_http()
        syllabus_id = int(str(d.source.execute(
            f"SELECT MIN(id) FROM `{d.source_db}`.syllabus")[0][0]))
        aurora(d, "UPDATE syllabus SET content = REPEAT('x', %s) WHERE id = %s",
               [big, syllabus_id])
        code, error = halted(d, daemon)
    assert "error 1153" in error and "max_allowed_packet" in error
    assert f"key={{'id': {syllabus_id}}}" in error
    checkpoint, at = daemon.checkpoint(), position_in(error)
    assert checkpoint is not None and checkpoint < at
    assert transactions_between(d.source, checkpoint, at) == 1
    bad_input.record(category="oversized rows", given="a 3 MiB `syllabus.content` with the "
                     "target's `max_allowed_packet` at 1 MiB", outcome=error, exit_code=code,
                     effect="halted before its transaction; checkpoint right before it")

    daemon.start()
    daemon.wait_http()
    drain(d, daemon)
    content = target_value(d, "syllabus_db", "syllabus", "content", syllabus_id)
    assert isinstance(content, str) and len(content) == big
    assert_exact(d)


# (table, column, value aurora holds): zero and partial dates of both kinds of column.
ZERO_DATES = (
    ("users", "last_login_at", "0000-00-00 00:00:00"),  # DATETIME NULL
    ("users", "created_at", "0000-00-00 00:00:00"),  # TIMESTAMP NOT NULL
    ("semesters", "start_date", "0000-00-00"),  # DATE NULL
    ("semesters", "end_date", "2024-00-10"),  # a partial date
    ("repositories", "created_at", "0000-00-00 00:00:00"),  # DATETIME NOT NULL
)
TARGET_OF = {"users": "gateway_db", "semesters": "syllabus_db", "repositories": "file_db"}


def set_zero_dates(d: Deployment, row: str) -> dict[tuple[str, str], int]:
    """Zero dates into the ``row`` ("first"/"last") of each table, as a legacy application
    with a permissive sql_mode writes them; the keys written."""
    keys: dict[tuple[str, str], int] = {}
    order = "ASC" if row == "first" else "DESC"
    for table, column, value in ZERO_DATES:
        key = int(str(d.source.execute(
            f"SELECT id FROM `{d.source_db}`.{table} ORDER BY id {order} LIMIT 1")[0][0]))
        aurora(d, f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, key], sql_mode="")
        keys[(table, column)] = key
    return keys


@pytest.mark.bad_input
def test_zero_dates_copy_as_aurora_holds_them_on_a_target_that_refuses_them(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_target: LocalServer, bad_input: BadInputRecorder) -> None:
    d = deployment_factory("fzero", target=own_target)
    seed(d)
    with target_global(own_target, "sql_mode", TIDB_DATE_MODES):
        # The target refuses them in a session of its own.
        with pytest.raises(pymysql.MySQLError) as refused, \
                contextlib.closing(d.target_conn()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE TEMPORARY TABLE `{d.settings.state_db}`.zero_date (d DATE)")
            cur.execute(f"INSERT INTO `{d.settings.state_db}`.zero_date VALUES ('0000-00-00')")
        assert refused.value.args[0] == 1292, refused.value
        copied = set_zero_dates(d, "first")  # the bootstrap copies these
        daemon = bootstrapped(d, daemon_factory(d))
        streamed = set_zero_dates(d, "last")  # the stream applies these
        drain(d, daemon)
        assert_exact(d)
    for (table, column, value), key in zip(ZERO_DATES, copied.values(), strict=True):
        assert str(target_value(d, TARGET_OF[table], table, column, key)) == value
    shown = [f"{TARGET_OF[table]}.{table}.{column} = "
             f"{target_value(d, TARGET_OF[table], table, column, streamed[(table, column)])!r}"
             for table, column, _ in ZERO_DATES]
    bad_input.record(
        category="zero dates",
        given="`'0000-00-00'`, `'0000-00-00 00:00:00'` and `'2024-00-10'` in DATE, DATETIME "
        "and TIMESTAMP columns of aurora (`sql_mode=''`), copied by the bootstrap and the "
        f"stream to a target with `sql_mode={TIDB_DATE_MODES}` (TiDB's date modes)",
        outcome="copied as aurora holds them, by the bootstrap and by the stream "
        "(diff_targets: no differences); the target holds: " + "; ".join(shown) +
        f". A plain session on that target gets: {refused.value.args[1]}",
        effect="exact copy")


@pytest.mark.bad_input
def test_latin1_text_and_invalid_utf8_bytes_copy_as_aurora_holds_them(
        deployment_factory: Callable[..., Deployment], daemon_factory: Callable[..., Daemon],
        own_target: LocalServer, bad_input: BadInputRecorder) -> None:
    d = deployment_factory("futf", target=own_target)
    seed(d)
    # A legacy latin1 column (the target's is utf8mb4): every byte is a character there.
    aurora(d, "ALTER TABLE users MODIFY name VARCHAR(255) CHARACTER SET latin1 NOT NULL",
           sql_mode="")
    first, second = (int(str(r[0])) for r in d.source.execute(
        f"SELECT id FROM `{d.source_db}`.users ORDER BY id LIMIT 2"))
    tricky = bytes(range(0x80, 0xA0))  # 0x81 0x8D 0x8F 0x90 0x9D: not in Python's cp1252
    aurora(d, "UPDATE users SET name = %s WHERE id = %s", [tricky, first])
    daemon = bootstrapped(d, daemon_factory(d))
    aurora(d, "UPDATE users SET name = %s WHERE id = %s", [b"\x81\x8d caf\xe9 \x9d", second])
    subject = int(str(d.source.execute(f"SELECT MIN(id) FROM `{d.source_db}`.subjects")[0][0]))
    warnings = aurora(d, "UPDATE subjects SET name = _binary X'41FF42C328' WHERE id = %s",
                      [subject], sql_mode="")
    drain(d, daemon)
    assert_exact(d)

    by_bootstrap = target_value(d, "gateway_db", "users", "name", first)
    by_stream = target_value(d, "gateway_db", "users", "name", second)
    assert isinstance(by_bootstrap, str) and "\x81" in by_bootstrap and "€" in by_bootstrap
    assert by_stream == "\x81\x8d café \x9d"
    bad_input.record(
        category="invalid UTF-8",
        given="a latin1 `users.name` holding every byte from 0x80 to 0x9F (five of them "
        "undefined in Python's cp1252), copied to a utf8mb4 column by the bootstrap and by "
        "the stream",
        outcome=f"copied as SELECT converts them (diff_targets: no differences): the target "
        f"holds {by_bootstrap!r} (bootstrap) and {by_stream!r} (stream)",
        effect="exact copy")
    stored = d.source.execute(f"SELECT name FROM `{d.source_db}`.subjects WHERE id = %s",
                              [subject])[0][0]
    copied = target_value(d, "subject_db", "subjects", "name", subject)
    assert warnings and warnings[0][1] == 1366, warnings
    assert copied == stored
    bad_input.record(
        category="invalid UTF-8",
        given="bytes that are not UTF-8 (`X'41FF42C328'`) written into a utf8mb4 column of "
        "aurora under `sql_mode=''`",
        outcome=f"aurora itself stores {stored!r} and warns: {warnings[0][2]}; the target "
        f"holds {copied!r}, as aurora does (diff_targets: no differences)",
        effect="exact copy of what aurora stored")
