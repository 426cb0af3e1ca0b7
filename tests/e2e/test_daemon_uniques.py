"""Unique secondary keys under reordering: users.email values swapped between rows inside
one source transaction, and across transactions that land in one target batch, never make
the target refuse a batch on its unique key."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from bootstrap.run import run_bootstrap
from sync.daemon import StreamRun
from sync.dev.generate import generate
from tests.e2e.conftest import Deployment
from tests.e2e.daemon import assert_exact

pytestmark = pytest.mark.integration


def emails(d: Deployment, ids: tuple[int, ...]) -> list[str]:
    marks = ", ".join(["%s"] * len(ids))
    rows = d.source.execute(f"SELECT email FROM `{d.source_db}`.users WHERE id IN ({marks}) "
                            "ORDER BY FIELD(id, " + marks + ")", [*ids, *ids])
    return [str(r[0]) for r in rows]


def run(d: Deployment, *transactions: list[tuple[str, list[object]]]) -> None:
    with contextlib.closing(d.aurora_conn()) as conn:
        for statements in transactions:
            conn.begin()
            with conn.cursor() as cur:
                for sql, args in statements:
                    cur.execute(sql, args)
            conn.commit()


def set_email(user_id: int, email: str) -> tuple[str, list[object]]:
    return "UPDATE users SET email = %s WHERE id = %s", [email, user_id]


def test_email_swaps_within_and_across_transactions_end_exact(
        deployment_factory: Callable[..., Deployment]) -> None:
    # A long batch age: the separate transactions below land in one target transaction.
    d = deployment_factory("e2eu", AURORA_SYNC_BATCH_MAX_MS=3000)
    generate(d.source_conn, database=d.source_db, users=30, seed=13, create=True)
    run_bootstrap(d.settings)
    finish = d.start_stream(StreamRun())
    a, b, c = emails(d, (1, 2, 3))

    # One transaction: a → tmp, b → a, tmp → b.
    run(d, [set_email(1, "swap-tmp@example.org"), set_email(2, a), set_email(1, b)])
    # Separate transactions, one batch: a three-way rotation through a temporary value.
    x, y, z = emails(d, (1, 2, 3))
    run(d, [set_email(1, "rot-tmp@example.org")], [set_email(3, x)], [set_email(2, z)],
        [set_email(1, y)])
    # Values freed by a delete and by an update, taken by new rows; a primary key change
    # that keeps its email.
    four, five = emails(d, (4, 5))
    insert = "INSERT INTO users (id, email, password_hash, name) VALUES (%s, %s, 'x', 'New')"
    run(d, [("DELETE FROM users WHERE id = 4", [])], [(insert, [900004, four])],
        [set_email(5, "freed@example.org")], [(insert, [900005, five])],
        [("UPDATE users SET id = 900006 WHERE id = 6", [])])
    assert len(set(emails(d, (1, 2, 3)))) == 3 and {a, b, c} == set(emails(d, (1, 2, 3)))

    d.wait_applied(d.source_position(), timeout=60)
    result = finish()
    assert result.transactions >= 6
    assert_exact(d)
