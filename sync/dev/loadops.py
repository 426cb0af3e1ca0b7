"""The row operations of the write load, one function per kind, in a dispatch table.

Each operation picks the rows it touches with one indexed probe (``WHERE id >= <random>
ORDER BY id LIMIT 1``), never by reading a table, and returns how many rows its statements
changed directly; an operation that found nothing to do returns 0 and is not counted. Every
UPDATE of ``users`` or ``syllabus`` sets ``updated_at`` itself, from the load's logical clock:
left to ``ON UPDATE CURRENT_TIMESTAMP``, a rerun with the same seed would not be identical.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymysql.cursors import Cursor

from sync.dev import fake
from sync.dev.sqltext import insert_sql


@dataclass
class OpContext:
    """What an operation needs: the open transaction's cursor, its dice, ids and clock."""

    cur: Cursor
    rng: random.Random
    ids: fake.IdCounters
    database: str
    now: datetime

    def run(self, sql: str, args: tuple[Any, ...] | None = None) -> int:
        return int(self.cur.execute(sql, args))

    def pick(self, table: str, where: str = "") -> int | None:
        """An existing id of ``table`` (matching ``where``), probed from a random point."""
        top = self.ids.next[table] - 1
        if top < 1:
            return None
        start = self.rng.randint(1, top)
        cond = f" AND {where}" if where else ""
        for sql in (
            f"SELECT id FROM {table} WHERE id >= %s{cond} ORDER BY id LIMIT 1",
            f"SELECT id FROM {table} WHERE id < %s{cond} ORDER BY id LIMIT 1",
        ):
            self.cur.execute(sql, (start,))
            row = self.cur.fetchone()
            if row is not None:
                return int(row[0])
        return None


Operation = Callable[[OpContext], int]


def insert_user(ctx: OpContext) -> int:
    """A new user with semesters, subjects, syllabus and repositories, as the app makes them."""
    tree = fake.user_tree(ctx.rng, ctx.ids, ctx.now)
    changed = 0
    for table, rows in tree.tables().items():
        if rows:
            changed += ctx.run(insert_sql(ctx.database, table, rows))
    return changed


def update_user(ctx: OpContext) -> int:
    user = ctx.pick("users")
    if user is None:
        return 0
    column, value = ctx.rng.choice((
        ("name", fake.person(ctx.rng)[0]),
        ("last_login_at", ctx.now),
        ("last_login_at", None),
        ("password_hash", fake.password_hash(ctx.rng)),
    ))
    return ctx.run(f"UPDATE users SET {column} = %s, updated_at = %s WHERE id = %s",
                   (value, ctx.now, user))


def update_semester(ctx: OpContext) -> int:
    semester = ctx.pick("semesters")
    if semester is None:
        return 0
    return ctx.run(
        "UPDATE semesters SET name = %s, is_current = %s WHERE id = %s",
        (f"{ctx.rng.choice(('Spring', 'Fall', 'Summer'))} {ctx.now.year}",
         ctx.rng.randint(0, 1), semester),
    )


def update_subject(ctx: OpContext) -> int:
    subject = ctx.pick("subjects")
    if subject is None:
        return 0
    return ctx.run(
        "UPDATE subjects SET credits = %s, color = %s, teacher = %s WHERE id = %s",
        (ctx.rng.randint(0, 10), fake.color(ctx.rng), fake.teacher(ctx.rng), subject),
    )


def update_syllabus(ctx: OpContext) -> int:
    syllabus = ctx.pick("syllabus")
    if syllabus is None:
        return 0
    return ctx.run(
        "UPDATE syllabus SET title = %s, content = %s, updated_at = %s WHERE id = %s",
        (ctx.rng.choice(fake.TITLES).format(n=ctx.rng.randint(1, 14)), fake.content(ctx.rng),
         ctx.now, syllabus),
    )


def update_repository(ctx: OpContext) -> int:
    repo = ctx.pick("repositories")
    if repo is None:
        return 0
    return ctx.run(
        "UPDATE repositories SET stars = stars + %s, is_private = %s WHERE id = %s",
        (ctx.rng.randint(1, 50), ctx.rng.randint(0, 1), repo),
    )


def _set_file_url(ctx: OpContext, where: str, url: str | None) -> int:
    syllabus = ctx.pick("syllabus", where)
    if syllabus is None:
        return 0
    return ctx.run("UPDATE syllabus SET file_url = %s, updated_at = %s WHERE id = %s",
                   (url, ctx.now, syllabus))


def file_url_set(ctx: OpContext) -> int:
    url = fake.file_url(ctx.rng, 0, ctx.rng.randrange(1, 1 << 20)) or "/srv/uploads/late.pdf"
    return _set_file_url(ctx, "file_url IS NULL", url)


def file_url_change(ctx: OpContext) -> int:
    url = f"https://files.example.edu/moved/{ctx.rng.getrandbits(48):012x}/{fake.file_name(ctx.rng)}"
    return _set_file_url(ctx, "file_url IS NOT NULL AND file_url <> ''", url)


def file_url_clear(ctx: OpContext) -> int:
    return _set_file_url(ctx, "file_url IS NOT NULL", None)


def move_subject(ctx: OpContext) -> int:
    """A subject moves to another semester, possibly of another user."""
    subject, semester = ctx.pick("subjects"), ctx.pick("semesters")
    if subject is None or semester is None:
        return 0
    return ctx.run("UPDATE subjects SET semester_id = %s WHERE id = %s", (semester, subject))


def move_semester(ctx: OpContext) -> int:
    semester, user = ctx.pick("semesters"), ctx.pick("users")
    if semester is None or user is None:
        return 0
    return ctx.run("UPDATE semesters SET user_id = %s WHERE id = %s", (user, semester))


def repo_subject_set(ctx: OpContext) -> int:
    repo, subject = ctx.pick("repositories"), ctx.pick("subjects")
    if repo is None or subject is None:
        return 0
    return ctx.run("UPDATE repositories SET subject_id = %s WHERE id = %s", (subject, repo))


def repo_subject_clear(ctx: OpContext) -> int:
    repo = ctx.pick("repositories", "subject_id IS NOT NULL")
    if repo is None:
        return 0
    return ctx.run("UPDATE repositories SET subject_id = NULL WHERE id = %s", (repo,))


def _rekey(table: str) -> Operation:
    """A primary key change to a new, higher id; ON UPDATE CASCADE moves the children."""
    stamp = ", updated_at = %s" if table in ("users", "syllabus") else ""

    def rekey(ctx: OpContext) -> int:
        old = ctx.pick(table)
        if old is None:
            return 0
        new = ctx.ids.take(table)
        args = (new, ctx.now, old) if stamp else (new, old)
        return ctx.run(f"UPDATE {table} SET id = %s{stamp} WHERE id = %s", args)

    return rekey


def _delete(table: str) -> Operation:
    """A delete; for a parent, ON DELETE CASCADE / SET NULL reach the children."""

    def delete(ctx: OpContext) -> int:
        row = ctx.pick(table)
        return 0 if row is None else ctx.run(f"DELETE FROM {table} WHERE id = %s", (row,))

    return delete


def email_swap(ctx: OpContext) -> int:
    """Two users trade e-mails: the unique key forces a detour through a temporary value."""
    first, second = ctx.pick("users"), ctx.pick("users")
    if first is None or second is None or first == second:
        return 0
    ctx.cur.execute("SELECT id, email FROM users WHERE id IN (%s, %s)", (first, second))
    emails = {int(r[0]): str(r[1]) for r in ctx.cur.fetchall()}
    if len(emails) != 2:
        return 0
    temporary = f"swap.{first}.{second}.{ctx.rng.getrandbits(32):08x}@swap.invalid"
    sql = "UPDATE users SET email = %s, updated_at = %s WHERE id = %s"
    return (ctx.run(sql, (temporary, ctx.now, first))
            + ctx.run(sql, (emails[first], ctx.now, second))
            + ctx.run(sql, (emails[second], ctx.now, first)))


OPERATIONS: Mapping[str, Operation] = {
    "insert_user": insert_user,
    "update_user": update_user,
    "update_semester": update_semester,
    "update_subject": update_subject,
    "update_syllabus": update_syllabus,
    "update_repository": update_repository,
    "file_url_set": file_url_set,
    "file_url_change": file_url_change,
    "file_url_clear": file_url_clear,
    "move_subject": move_subject,
    "move_semester": move_semester,
    "repo_subject_set": repo_subject_set,
    "repo_subject_clear": repo_subject_clear,
    "rekey_user": _rekey("users"),
    "rekey_semester": _rekey("semesters"),
    "rekey_subject": _rekey("subjects"),
    "rekey_syllabus": _rekey("syllabus"),
    "delete_user": _delete("users"),
    "delete_semester": _delete("semesters"),
    "delete_subject": _delete("subjects"),
    "delete_syllabus": _delete("syllabus"),
    "delete_repository": _delete("repositories"),
    "email_swap": email_swap,
}
