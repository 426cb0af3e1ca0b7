"""Safe mode on real MariaDB: a replay over targets ahead of it converges on unique keys.

A plain database on the throwaway server plays the source: its history runs as real SQL and
every statement's full after-image becomes a target operation, as the binlog would deliver
it. The bootstrap copies chunks of that history read at different moments (several
workers), then the stream replays from P (before every read) in safe mode up to E (after
every read) and in normal mode after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from test_writer_support import STATE_SQL, Faults, faulty_connect, writer_settings

from sync.apply.writer import SqlTargetWriter
from sync.dev.localdb import LocalServer
from sync.errors import ApplyError
from sync.model import Checkpoint, Delete, Position, TableRef, TargetOp, Upsert

pytestmark = pytest.mark.integration

DATA, STATE, SOURCE = "ws_data", "ws_state", "ws_source"
USERS, PLAIN, METAS, TAGS = (TableRef(DATA, t) for t in ("users", "plain", "metas", "tags"))

DDL = """
CREATE TABLE users (
    id INT NOT NULL PRIMARY KEY,
    email VARCHAR(64) NULL,
    name VARCHAR(32) NULL,
    UNIQUE KEY uq_users_email (email)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE plain (
    id INT NOT NULL PRIMARY KEY,
    email VARCHAR(64) NULL,
    KEY ix_plain_email (email)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE metas (
    id INT NOT NULL PRIMARY KEY,
    subject_id INT NULL,
    meta_key VARCHAR(32) NULL,
    value VARCHAR(32) NULL,
    UNIQUE KEY uq_metas (subject_id, meta_key)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE tags (
    a INT NOT NULL,
    b VARCHAR(16) NOT NULL,
    label VARCHAR(16) NULL,
    PRIMARY KEY (a, b),
    UNIQUE KEY uq_tags_label (label)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
"""
TABLES = {"users": ("id",), "plain": ("id",), "metas": ("id",), "tags": ("a", "b")}


def cp(n: int) -> Checkpoint:
    return Checkpoint(Position("binlog.000001", n), datetime(2024, 5, 1, 12, 0, 0))


def user(uid: int, email: str | None, name: str | None = None) -> Upsert:
    return Upsert(USERS, ("id",), (uid,), {"id": uid, "email": email, "name": name},
                  ("email", "name"))


def meta(mid: int, subject: int | None, key: str | None, value: str = "v") -> Upsert:
    row = {"id": mid, "subject_id": subject, "meta_key": key, "value": value}
    return Upsert(METAS, ("id",), (mid,), row, ("subject_id", "meta_key", "value"))


def tag(a: int, b: str, label: str | None) -> Upsert:
    return Upsert(TAGS, ("a", "b"), (a, b), {"a": a, "b": b, "label": label}, ("label",))


@pytest.fixture(scope="module")
def prepared(target_server: LocalServer) -> LocalServer:
    for name in (DATA, STATE, SOURCE):
        target_server.execute(f"DROP DATABASE IF EXISTS `{name}`")
        target_server.execute(f"CREATE DATABASE `{name}`")
    target_server.run_script(DDL, DATA)
    target_server.run_script(DDL, SOURCE)
    target_server.run_script(STATE_SQL.read_text(), STATE)
    return target_server


def clear(server: LocalServer) -> None:
    for database in (DATA, SOURCE):
        for table in TABLES:
            server.execute(f"DELETE FROM `{database}`.`{table}`")
    server.execute(f"DELETE FROM `{STATE}`.`checkpoint`")


@pytest.fixture
def server(prepared: LocalServer) -> LocalServer:
    clear(prepared)
    return prepared


@pytest.fixture
def writer(server: LocalServer) -> Iterator[SqlTargetWriter]:
    w = SqlTargetWriter(writer_settings(server, STATE))
    yield w
    w.close()


def rows(server: LocalServer, database: str, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    conn = server.connect(database, cursorclass=pymysql.cursors.DictCursor)
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{table}`")
        return {tuple(r[k] for k in TABLES[table]): dict(r) for r in cur.fetchall()}


def emails(server: LocalServer) -> dict[int, str | None]:
    return {k[0]: r["email"] for k, r in rows(server, DATA, "users").items()}


# --- the source: real SQL, full after-images ---------------------------------------------


class Source:
    """The ``users`` table of the source database; each transaction yields its operations."""

    def __init__(self, server: LocalServer) -> None:
        self._conn = server.connect(SOURCE, autocommit=False)

    def close(self) -> None:
        self._conn.close()

    def run(self, statements: Sequence[tuple[str, int]]) -> list[TargetOp] | None:
        """Run ``(sql, id)`` statements as one transaction and return the images of the
        rows they touched, or None when the source refuses the transaction."""
        ops: list[TargetOp] = []
        try:
            with self._conn.cursor() as cur:
                for sql, uid in statements:
                    cur.execute(sql)
                    cur.execute("SELECT id, email, name FROM users WHERE id = %s", (uid,))
                    found = cur.fetchone()
                    ops.append(user(*found) if found else Delete(USERS, ("id",), (uid,)))
            self._conn.commit()
        except pymysql.err.IntegrityError:
            self._conn.rollback()
            return None
        return ops

    def state(self) -> dict[int, tuple[str | None, str | None]]:
        with self._conn.cursor() as cur:
            cur.execute("SELECT id, email, name FROM users")
            found = {uid: (email, name) for uid, email, name in cur.fetchall()}
        self._conn.commit()
        return found


def swap(a: int, b: int, email_a: str, email_b: str) -> list[tuple[str, int]]:
    return [(f"UPDATE users SET email = 'tmp{a}' WHERE id = {a}", a),
            (f"UPDATE users SET email = '{email_a}' WHERE id = {b}", b),
            (f"UPDATE users SET email = '{email_b}' WHERE id = {a}", a)]


def target_users(server: LocalServer) -> dict[int, tuple[str | None, str | None]]:
    return {k[0]: (r["email"], r["name"]) for k, r in rows(server, DATA, "users").items()}


# --- the email swap over a target already at the later state ------------------------------


def swap_history(source: Source) -> tuple[list[list[TargetOp]], dict[int, Any]]:
    """Before P: ann has 'x@x', bob 'b@x'. After P: ann takes 'a@x', then ann and bob swap
    their emails (one statement per source transaction) and bob renames himself."""
    source.run([("INSERT INTO users VALUES (1, 'x@x', 'ann'), (2, 'b@x', 'bob')", 1)])
    history = [
        source.run([("UPDATE users SET email = 'a@x' WHERE id = 1", 1)]),
        source.run([("UPDATE users SET email = 'tmp' WHERE id = 1", 1)]),
        source.run([("UPDATE users SET email = 'a@x' WHERE id = 2", 2)]),
        source.run([("UPDATE users SET email = 'b@x' WHERE id = 1", 1)]),
        source.run([("UPDATE users SET name = 'robert' WHERE id = 2", 2)]),
    ]
    return [ops for ops in history if ops is not None], source.state()


@pytest.fixture
def source(server: LocalServer) -> Iterator[Source]:
    found = Source(server)
    yield found
    found.close()


# The copy: after the swap (the target ahead of every replayed event), or with ann's chunk
# read after she took 'a@x' and bob's read after the swap (two workers, two moments).
SNAPSHOTS: dict[str, list[list[TargetOp]]] = {
    "ahead": [[user(1, "b@x", "ann"), user(2, "a@x", "robert")]],
    "mixed": [[user(2, "a@x", "robert")], [user(1, "a@x", "ann")]],
}


@pytest.mark.parametrize("snapshot", sorted(SNAPSHOTS))
def test_a_replayed_email_swap_converges_to_the_source_in_safe_mode(
    server: LocalServer, writer: SqlTargetWriter, source: Source, snapshot: str
) -> None:
    history, final = swap_history(source)
    with capture_logs() as logs:
        for chunk in SNAPSHOTS[snapshot]:
            writer.apply(chunk, None, position=cp(0).position, safe_mode=True)
        for n, ops in enumerate(history, start=1):
            writer.apply(ops, cp(n), safe_mode=True)
    assert target_users(server) == final == {1: ("b@x", "ann"), 2: ("a@x", "robert")}
    assert writer.read_checkpoint() == cp(len(history))
    freed = [e for e in logs if e["event"] == "apply.safe_mode_freed_unique_values"]
    assert [(e["table"], e["deleted"]) for e in freed] == [(str(USERS), {"uq_users_email": 1})]


@pytest.mark.parametrize("snapshot", sorted(SNAPSHOTS))
def test_normal_mode_still_refuses_the_clash_with_the_exact_key(
    server: LocalServer, writer: SqlTargetWriter, source: Source, snapshot: str
) -> None:
    history, _ = swap_history(source)
    applied, before = 0, target_users(server)
    with pytest.raises(ApplyError) as caught:
        for n, ops in enumerate([*SNAPSHOTS[snapshot], *history], start=1):
            before = target_users(server)
            writer.apply(ops, cp(n))
            applied = n
    # Ahead: ann's row takes bob's 'a@x' (1062); mixed: ann's new row clashes with bob's and
    # the key guard refuses it (1048) rather than overwrite bob.
    assert applied == 1
    error = caught.value
    assert ("error 1062" if snapshot == "ahead" else "error 1048") in error.reason
    assert "unique secondary key" in (error.fix or "")
    assert error.key == {"id": 1}
    assert error.table == f"{DATA}.users"
    assert target_users(server) == before
    assert writer.read_checkpoint() == cp(1)


# --- values moving inside one multi-row statement -----------------------------------------


@pytest.mark.parametrize(
    ("start", "ops", "end"),
    [
        # The swap in one statement, from the state before it and from the state after it.
        ({1: "a", 2: "b"}, [user(1, "tmp"), user(2, "a"), user(1, "b")], {1: "b", 2: "a"}),
        ({1: "b", 2: "a"}, [user(1, "tmp"), user(2, "a"), user(1, "b")], {1: "b", 2: "a"}),
        # A row of the statement holds a value an earlier row of it takes.
        ({1: "a"}, [user(2, "a"), user(1, "c")], {1: "c", 2: "a"}),
        # ... even when that row writes the value itself later in the statement: 1 renames
        # itself holding 'v', 3 changes in between, 1 gives 'v' up and 2 takes it.
        ({1: "w", 2: "v", 3: "z"},
         [user(1, "v", "n"), user(3, "z", "n"), user(1, "w"), user(2, "v")],
         {1: "w", 2: "v", 3: "z"}),
        # A row the statement reaches before anyone takes its value stays.
        ({1: "a", 2: "b"}, [user(1, "c"), user(2, "a"), user(1, "b")], {1: "b", 2: "a"}),
        # A three-way rotation replayed over its own result, with a bystander keeping 'z'.
        ({1: "c", 2: "a", 3: "b", 4: "z"},
         [user(1, "t"), user(2, "a"), user(3, "b"), user(1, "c")],
         {1: "c", 2: "a", 3: "b", 4: "z"}),
        # Collations decide a clash as the unique index does: 'A' holds 'a'.
        ({2: "A"}, [user(1, "a")], {1: "a"}),
    ],
)
def test_unique_values_moving_inside_one_statement_end_as_the_sequence_does(
    server: LocalServer, writer: SqlTargetWriter, start: dict[int, str],
    ops: list[Upsert], end: dict[int, str],
) -> None:
    writer.apply([user(k, v) for k, v in start.items()], cp(1))
    result = writer.apply(ops, cp(2), safe_mode=True)
    assert emails(server) == end
    assert result.rows == {(str(USERS), "upsert"): len(ops)}


# --- zero cost where no unique key exists, and the catalog read once ----------------------


def test_the_pre_delete_runs_only_on_tables_with_unique_keys(server: LocalServer) -> None:
    faults = Faults()
    settings = writer_settings(server, STATE)
    writer = SqlTargetWriter(settings, connect=faulty_connect(settings, faults))
    plain = [Upsert(PLAIN, ("id",), (k,), {"id": k, "email": "same"}, ("email",))
             for k in (1, 2)]
    try:
        writer.apply(plain, cp(1), safe_mode=True)
        writer.apply(plain, cp(2), safe_mode=True)
        writer.apply([user(1, "a"), *plain], cp(3), safe_mode=True)
        result = writer.apply([user(2, "b"), user(3, None)], cp(4), safe_mode=True)
        writer.apply([user(4, "c")], cp(5))
        writer.apply([user(5, "a")], cp(6), safe_mode=True)
    finally:
        writer.close()
    extra = [s for s in faults.executed if s.startswith(("SELECT `", "DELETE"))]
    users = f"`{DATA}`.`users`"
    assert extra == [
        f"SELECT `id`, `email` FROM {users} WHERE `email` IN ('a')",
        f"SELECT `id`, `email` FROM {users} WHERE `email` IN ('b')",
        f"SELECT `id`, `email` FROM {users} WHERE `email` IN ('a')",
        f"DELETE FROM {users} WHERE `id` IN (1)",
    ]
    catalog = [s for s in faults.executed if "information_schema.STATISTICS" in s]
    assert len(catalog) == 2  # once for plain, once for users
    assert result.statements == 1
    assert emails(server) == {2: "b", 3: None, 4: "c", 5: "a"}


# --- composite keys, composite primary keys and NULLs --------------------------------------


def test_a_composite_unique_key_frees_the_whole_value_and_nulls_never_clash(
    server: LocalServer, writer: SqlTargetWriter
) -> None:
    writer.apply([meta(1, 7, "colour"), meta(2, 7, "size"), meta(3, None, "colour"),
                  meta(4, 8, None), meta(5, 8, "colour")], cp(1))
    ops = [meta(10, 7, "colour", "new"), meta(11, None, "size"), meta(12, 8, None),
           meta(13, None, None)]
    with pytest.raises(ApplyError):
        writer.apply(ops, cp(2))
    writer.apply(ops, cp(2), safe_mode=True)
    stored = {k[0]: (r["subject_id"], r["meta_key"], r["value"])
              for k, r in rows(server, DATA, "metas").items()}
    assert stored == {
        2: (7, "size", "v"), 3: (None, "colour", "v"), 4: (8, None, "v"),
        5: (8, "colour", "v"), 10: (7, "colour", "new"), 11: (None, "size", "v"),
        12: (8, None, "v"), 13: (None, None, "v"),
    }


def test_a_composite_primary_key_keeps_its_own_row_and_frees_the_others(
    server: LocalServer, writer: SqlTargetWriter
) -> None:
    writer.apply([tag(1, "x", "red"), tag(2, "x", "blue"), tag(3, "y", None)], cp(1))
    writer.apply([tag(1, "x", "red"), tag(1, "y", "blue"), tag(4, "z", None)], cp(2),
                 safe_mode=True)
    stored = {k: r["label"] for k, r in rows(server, DATA, "tags").items()}
    assert stored == {(1, "x"): "red", (1, "y"): "blue", (3, "y"): None, (4, "z"): None}


# --- random histories: bootstrap copy + safe replay to E + normal stream after E ----------

EMAILS = ["a", "b", "c", "d", "e"]
IDS = [1, 2, 3, 4, 5, 6]
CHUNKS = [(1, 2), (3, 4), (5, 6)]

steps = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(IDS), st.sampled_from([*EMAILS, None])),
    st.tuples(st.just("swap"), st.sampled_from(IDS), st.sampled_from(IDS)),
    st.tuples(st.just("insert"), st.sampled_from(IDS), st.sampled_from(EMAILS)),
    st.tuples(st.just("delete"), st.sampled_from(IDS), st.none()),
    st.tuples(st.just("rename"), st.sampled_from(IDS), st.sampled_from(["n1", "n2"])),
)


def statements_of(step: tuple[str, int, Any], state: dict[int, Any]) -> list[tuple[str, int]]:
    kind, uid, arg = step
    if kind == "set":
        value = "NULL" if arg is None else f"'{arg}'"
        return [(f"UPDATE users SET email = {value} WHERE id = {uid}", uid)]
    if kind == "swap":
        if arg == uid or uid not in state or arg not in state:
            return []
        email_a, email_b = state[uid][0], state[arg][0]
        if email_a is None or email_b is None:
            return []
        return swap(uid, arg, email_a, email_b)
    if kind == "insert":
        return [(f"INSERT INTO users VALUES ({uid}, '{arg}', NULL)", uid)]
    if kind == "delete":
        return [(f"DELETE FROM users WHERE id = {uid}", uid)]
    return [(f"UPDATE users SET name = '{arg}' WHERE id = {uid}", uid)]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    initial=st.lists(st.sampled_from(EMAILS), min_size=6, max_size=6),
    history=st.lists(steps, min_size=1, max_size=12),
    reads=st.lists(st.integers(0, 12), min_size=3, max_size=3),
    order=st.permutations(range(3)),
    batch=st.integers(1, 4),
)
def test_bootstrap_and_safe_replay_converge_to_the_source_for_any_history(
    prepared: LocalServer, initial: list[str], history: list[tuple[str, int, Any]],
    reads: list[int], order: list[int], batch: int,
) -> None:
    server = prepared
    clear(server)
    source = Source(server)
    writer = SqlTargetWriter(writer_settings(server, STATE))
    try:
        for uid, email in zip(IDS, initial, strict=True):
            source.run([(f"INSERT INTO users VALUES ({uid}, '{email}', NULL)", uid)])
        states, txns = [source.state()], []
        for step in history:
            ops = source.run(statements_of(step, states[-1]))
            if ops:
                txns.append(ops)
                states.append(source.state())
        # Each chunk is read at some moment of the window; E is the last read.
        read_at = [min(r, len(txns)) for r in reads]
        end = max(read_at)
        for chunk in order:
            at, (lo, hi) = read_at[chunk], CHUNKS[chunk]
            copied = [user(k, *v) for k, v in sorted(states[at].items()) if lo <= k <= hi]
            writer.apply(copied, None, position=cp(0).position, safe_mode=True)
        # Several source transactions per target transaction, as the pipeline batches them:
        # their upserts share multi-row statements.
        for n in range(0, end, batch):
            ops = [op for txn in txns[n:min(n + batch, end)] for op in txn]
            writer.apply(ops, cp(min(n + batch, end)), safe_mode=True)
        assert target_users(server) == states[end]
        for n in range(end, len(txns), batch):
            ops = [op for txn in txns[n:n + batch] for op in txn]
            writer.apply(ops, cp(min(n + batch, len(txns))))
        assert target_users(server) == states[-1]
    finally:
        writer.close()
        source.close()
