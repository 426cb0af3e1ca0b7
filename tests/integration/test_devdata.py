"""The development data tools against a real server: the generator is reproducible and
consistent, and the write load does what its statistics say, reproducibly, at the asked pace."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

from sync.dev.generate import GenerateStats, generate, users_for_rows
from sync.dev.load import LoadMix, WriteLoad
from sync.dev.loadops import OPERATIONS
from sync.dev.localdb import LocalServer
from sync.dev.sqltext import TABLES

pytestmark = pytest.mark.integration

# (child, column, parent): every foreign key of aurora.
FOREIGN_KEYS = (
    ("semesters", "user_id", "users"),
    ("subjects", "semester_id", "semesters"),
    ("syllabus", "subject_id", "subjects"),
    ("repositories", "user_id", "users"),
    ("repositories", "subject_id", "subjects"),
)

DbFactory = Callable[..., str]


@pytest.fixture
def fresh_db(source_server: LocalServer, request: pytest.FixtureRequest) -> Iterator[DbFactory]:
    """Names of databases unique to this test, dropped afterwards."""
    made: list[str] = []

    def make(suffix: str = "") -> str:
        test = request.node.name.replace("[", "_").replace("]", "")
        name = f"dev_{test[:50]}{suffix}"
        source_server.execute(f"DROP DATABASE IF EXISTS `{name}`")
        made.append(name)
        return name

    yield make
    for name in made:
        source_server.execute(f"DROP DATABASE IF EXISTS `{name}`")


def checksums(server: LocalServer, database: str) -> dict[str, int]:
    rows = server.execute(
        "CHECKSUM TABLE " + ", ".join(f"`{database}`.`{t}`" for t in TABLES) + " EXTENDED")
    return {str(name).split(".")[-1]: int(str(value)) for name, value in rows}


def counts(server: LocalServer, database: str) -> dict[str, int]:
    return {t: int(str(server.execute(f"SELECT COUNT(*) FROM `{database}`.`{t}`")[0][0]))
            for t in TABLES}


def orphans(server: LocalServer, database: str) -> dict[str, int]:
    found = {}
    for child, column, parent in FOREIGN_KEYS:
        rows = server.execute(
            f"SELECT COUNT(*) FROM `{database}`.`{child}` c LEFT JOIN `{database}`.`{parent}` p"
            f" ON p.id = c.{column} WHERE c.{column} IS NOT NULL AND p.id IS NULL")
        found[f"{child}.{column}"] = int(str(rows[0][0]))
    return found


def scalar(server: LocalServer, sql: str) -> float:
    value = server.execute(sql)[0][0]
    return float(str(value)) if value is not None else 0.0


def make_data(server: LocalServer, database: str, *, users: int = 120, seed: int = 5,
              **kw: Any) -> GenerateStats:
    return generate(server.connect, database=database, users=users, seed=seed, create=True, **kw)


def test_same_seed_gives_identical_tables_and_another_seed_does_not(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    first, again, other = fresh_db("_a"), fresh_db("_b"), fresh_db("_c")
    stats = make_data(source_server, first, users=400, seed=7)
    # Other batch sizes and loader counts must not change the data, only how it is sent.
    make_data(source_server, again, users=400, seed=7, batch_rows=333, loaders=1)
    make_data(source_server, other, users=400, seed=8)

    assert checksums(source_server, first) == checksums(source_server, again)
    differing = checksums(source_server, first).items() ^ checksums(source_server, other).items()
    assert {name for name, _ in differing} == set(TABLES)
    assert counts(source_server, first) == stats.rows
    assert stats.max_ids == stats.rows  # explicit ids 1..n in a fresh database


def test_generated_data_is_consistent_and_varied(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    db = fresh_db()
    stats = make_data(source_server, db, users=users_for_rows(30_000), seed=11)
    assert 27_000 <= stats.total_rows <= 33_000
    assert all(n == 0 for n in orphans(source_server, db).values())

    def q(sql: str) -> float:
        return scalar(source_server, sql.replace("{db}", f"`{db}`"))

    per_parent = (
        ("semesters", "user_id", 2, 4), ("subjects", "semester_id", 3, 7),
        ("syllabus", "subject_id", 1, 3),
    )
    for table, column, low, high in per_parent:
        assert q(f"SELECT MIN(n) FROM (SELECT COUNT(*) n FROM {{db}}.{table} "
                 f"GROUP BY {column}) x") == low
        assert q(f"SELECT MAX(n) FROM (SELECT COUNT(*) n FROM {{db}}.{table} "
                 f"GROUP BY {column}) x") == high
    syllabus = stats.rows["syllabus"]
    assert 0.2 < q("SELECT COUNT(*) FROM {db}.syllabus WHERE file_url IS NULL") / syllabus < 0.3
    assert q("SELECT COUNT(*) FROM {db}.syllabus WHERE file_url = ''") > 0
    for pattern in ("https://files.example.edu/%", "s3://%", "/srv/uploads/%", "%?%", "%\\%20%"):
        assert q(f"SELECT COUNT(*) FROM {{db}}.syllabus WHERE file_url LIKE '{pattern}'") > 0
    for ext in ("pdf", "docx", "pptx", "txt", "md"):
        assert q(f"SELECT COUNT(*) FROM {{db}}.syllabus WHERE file_url LIKE '%.{ext}%'") > 0
    # Multi-byte text in names and content; a four-byte emoji somewhere.
    assert q("SELECT COUNT(*) FROM {db}.users WHERE LENGTH(name) > CHAR_LENGTH(name)") > 0
    assert q("SELECT COUNT(*) FROM {db}.syllabus WHERE content LIKE '%💻%'") > 0
    assert q("SELECT COUNT(*) FROM {db}.users WHERE last_login_at IS NULL") > 0
    assert q("SELECT COUNT(*) FROM {db}.users WHERE password_hash NOT LIKE '$2_$1_$%'") == 0
    assert q("SELECT COUNT(*) FROM {db}.subjects WHERE color NOT REGEXP '^#[0-9a-f]{6}$'") == 0
    assert q("SELECT COUNT(DISTINCT provider) FROM {db}.repositories") == 4
    # A repository's subject is one of its own user's.
    assert q("SELECT COUNT(*) FROM {db}.repositories r JOIN {db}.subjects s "
             "ON s.id = r.subject_id JOIN {db}.semesters m ON m.id = s.semester_id "
             "WHERE m.user_id <> r.user_id") == 0
    with_subject = q("SELECT AVG(subject_id IS NOT NULL) FROM {db}.repositories")
    assert 0.2 < with_subject < 0.4


def test_load_performs_every_operation_and_keeps_keys_consistent(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    db = fresh_db()
    generated = make_data(source_server, db)
    stats = WriteLoad(source_server.connect, database=db, seed=3).run(transactions=600)

    assert set(stats.operations) == set(OPERATIONS)
    assert stats.committed + stats.rolled_back == 600
    assert stats.rolled_back > 0
    assert stats.skipped == stats.retried == stats.interrupted == 0
    assert all(n == 0 for n in orphans(source_server, db).values())
    for table in TABLES:  # new users and new primary keys land above the generated range
        top = generated.max_ids[table]
        above = scalar(source_server, f"SELECT COUNT(*) FROM `{db}`.`{table}` WHERE id > {top}")
        assert above > 0, table


@pytest.mark.parametrize("kind", ["rekey_user", "rekey_subject"])
def test_primary_key_changes_cascade_to_children(
    source_server: LocalServer, fresh_db: DbFactory, kind: str
) -> None:
    db = fresh_db()
    generated = make_data(source_server, db)
    table = "users" if kind == "rekey_user" else "subjects"
    before = counts(source_server, db)
    only = LoadMix(weights={kind: 1}, rollback_ratio=0, operations=(1, 1))
    stats = WriteLoad(source_server.connect, database=db, seed=1, mix=only).run(transactions=40)

    assert stats.operations == {kind: 40}
    assert counts(source_server, db) == before  # nothing lost or added, children included
    assert all(n == 0 for n in orphans(source_server, db).values())
    top = generated.max_ids[table]
    # A row may be picked again after its move, so at most one new id per change.
    above = scalar(source_server, f"SELECT COUNT(*) FROM `{db}`.{table} WHERE id > {top}")
    assert 30 <= above <= 40
    children = {"users": ("semesters", "user_id"), "subjects": ("syllabus", "subject_id")}
    child, column = children[table]
    assert scalar(source_server,
                  f"SELECT COUNT(*) FROM `{db}`.{child} WHERE {column} > {top}") > 0


def test_parent_deletes_cascade(source_server: LocalServer, fresh_db: DbFactory) -> None:
    db = fresh_db()
    make_data(source_server, db)
    before = counts(source_server, db)
    only = LoadMix(weights={"delete_user": 1}, rollback_ratio=0, operations=(1, 1))
    stats = WriteLoad(source_server.connect, database=db, seed=1, mix=only).run(transactions=15)

    after = counts(source_server, db)
    assert stats.operations == {"delete_user": 15}
    assert after["users"] == before["users"] - 15
    assert after["semesters"] < before["semesters"] and after["syllabus"] < before["syllabus"]
    assert all(n == 0 for n in orphans(source_server, db).values())


def test_email_swaps_keep_the_set_of_emails(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    db = fresh_db()
    make_data(source_server, db)
    query = f"SELECT id, email FROM `{db}`.users"
    before = {row[0]: row[1] for row in source_server.execute(query)}
    only = LoadMix(weights={"email_swap": 1}, rollback_ratio=0, operations=(1, 1))
    stats = WriteLoad(source_server.connect, database=db, seed=1, mix=only).run(transactions=10)

    after = {row[0]: row[1] for row in source_server.execute(query)}
    assert stats.operations["email_swap"] >= 9  # a user drawn twice makes no swap
    assert sorted(map(str, after.values())) == sorted(map(str, before.values()))
    assert sum(before[k] != after[k] for k in before) >= 2 * 9


def test_same_load_seed_on_same_data_gives_identical_tables(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    dbs = [fresh_db("_a"), fresh_db("_b"), fresh_db("_c")]
    for db, load_seed in zip(dbs, (4, 4, 5), strict=True):
        make_data(source_server, db)
        WriteLoad(source_server.connect, database=db, seed=load_seed).run(transactions=200)
    first, again, other = (checksums(source_server, db) for db in dbs)
    assert first == again
    assert first != other


def test_rate_is_roughly_respected(source_server: LocalServer, fresh_db: DbFactory) -> None:
    db = fresh_db()
    make_data(source_server, db, users=50)
    stats = WriteLoad(source_server.connect, database=db, seed=1, rate=40).run(duration=1.5)
    assert 40 <= stats.transactions <= 75  # 60 expected
    assert 1.4 <= stats.seconds <= 2.5


@pytest.mark.parametrize("rate", [None, 0.2])
def test_stop_event_ends_the_background_run_promptly(
    source_server: LocalServer, fresh_db: DbFactory, rate: float | None
) -> None:
    db = fresh_db()
    make_data(source_server, db, users=50)
    load = WriteLoad(source_server.connect, database=db, seed=1, rate=rate)
    running = load.start()
    time.sleep(0.5)
    assert running.running
    assert load.stats().committed + load.stats().rolled_back >= 1
    asked = time.monotonic()
    stats = running.stop(timeout=5)
    assert time.monotonic() - asked < 1.0
    assert running.wait(timeout=0) == stats  # the thread has ended
    assert stats.transactions >= 1


def wait_for_lock_wait(server: LocalServer, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.execute("SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                          "WHERE trx_state = 'LOCK WAIT'")[0][0]:
            return
        # InnoDB refreshes this view only when it was not read for 0.1 s.
        time.sleep(0.25)
    raise AssertionError("the load never waited for the lock")


@contextlib.contextmanager
def holding_user_row(server: LocalServer, db: str, user_id: int) -> Iterator[Any]:
    """An open transaction that has inserted user ``user_id`` (the load's next id)."""
    conn = server.connect(database=db)
    try:
        conn.begin()
        with conn.cursor() as cur:
            cur.execute("INSERT INTO users (id, email, password_hash, name) "
                        "VALUES (%s, 'racer@example.com', 'x', 'racer')", (user_id,))
        yield conn
    finally:
        conn.close()


def test_duplicate_key_from_a_race_skips_the_transaction(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    db = fresh_db()
    generated = make_data(source_server, db, users=50)
    only = LoadMix(weights={"insert_user": 1}, rollback_ratio=0, operations=(1, 1))
    load = WriteLoad(source_server.connect, database=db, seed=1, mix=only)
    with holding_user_row(source_server, db, generated.max_ids["users"] + 1) as racer:
        running = load.start(transactions=1)
        wait_for_lock_wait(source_server)
        racer.commit()
        stats = running.wait(timeout=10)
    assert (stats.skipped, stats.committed) == (1, 0)
    # The next run takes ids above the racer's and goes on.
    assert load.run(transactions=3).operations == {"insert_user": 3}


def test_lock_wait_timeout_reruns_the_transaction(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    db = fresh_db()
    generated = make_data(source_server, db, users=50)

    def impatient() -> pymysql.Connection[Any]:
        return source_server.connect(init_command="SET innodb_lock_wait_timeout = 1")

    only = LoadMix(weights={"insert_user": 1}, rollback_ratio=0, operations=(1, 1))
    load = WriteLoad(impatient, database=db, seed=1, mix=only)
    with holding_user_row(source_server, db, generated.max_ids["users"] + 1) as racer:
        running = load.start(transactions=1)
        wait_for_lock_wait(source_server)
        time.sleep(1.2)  # past one lock wait timeout
        racer.rollback()
        stats = running.wait(timeout=10)
    assert stats.retried >= 1
    assert (stats.committed, stats.skipped) == (1, 0)
    assert scalar(source_server, f"SELECT COUNT(*) FROM `{db}`.users WHERE id = "
                                 f"{generated.max_ids['users'] + 1}") == 1


def test_a_killed_connection_is_counted_and_replaced(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    db = fresh_db()
    make_data(source_server, db, users=50)
    load = WriteLoad(source_server.connect, database=db, seed=1, rate=50)
    with load.start() as running:
        time.sleep(0.3)
        ids = source_server.execute(
            "SELECT id FROM information_schema.PROCESSLIST WHERE db = %s", (db,))
        assert len(ids) == 1
        source_server.execute(f"KILL CONNECTION {ids[0][0]}")
        time.sleep(0.5)
        assert running.running
    stats = running.wait()
    assert stats.interrupted == 1
    assert stats.committed > 20


def test_command_lines(source_server: LocalServer, fresh_db: DbFactory) -> None:
    db = fresh_db()
    env = {**os.environ, "DEVDATA_PW": source_server.password}
    common = ["--host", source_server.host, "--port", str(source_server.port),
              "--user", source_server.user, "--password-env", "DEVDATA_PW", "--database", db]

    def run(module: str, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", module, *common, *args], env=env,
                              capture_output=True, text=True, timeout=60, check=True)
        assert source_server.password not in done.stdout + done.stderr
        return done.stdout

    out = run("sync.dev.generate", "--rows", "2000", "--seed", "1", "--create")
    assert "rows/s" in out
    out = run("sync.dev.load", "--transactions", "20", "--rate", "100")
    assert "committed" in out
    assert counts(source_server, db)["users"] > 0


def test_a_stop_event_passed_to_run_is_honoured(
    source_server: LocalServer, fresh_db: DbFactory
) -> None:
    db = fresh_db()
    make_data(source_server, db, users=50)
    stop = threading.Event()
    timer = threading.Timer(0.4, stop.set)
    timer.start()
    began = time.monotonic()
    stats = WriteLoad(source_server.connect, database=db, seed=1, rate=20).run(
        duration=30, stop=stop)
    assert time.monotonic() - began < 1.5
    assert 3 <= stats.transactions <= 15
