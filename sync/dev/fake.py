# ruff: noqa: RUF001 - look-alike letters in multilingual sample text are the point here
"""Realistic aurora values and whole user trees, drawn from a seeded :class:`random.Random`.

Everything here is a pure function of the random generator's state: the same seed yields the
same values, which is what makes generated databases byte-identical. Values are meant to
exercise a sync the way production data would: accents, CJK, right-to-left text, emoji with
joiners, quotes and backslashes, NULLs next to empty strings, URL-encoded file names.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import quote

from sync.dev.sqltext import Row

# (display, ascii) pairs: the ascii form makes e-mail local parts.
FIRST_NAMES = (
    ("Ana", "ana"), ("José", "jose"), ("François", "francois"), ("Zoë", "zoe"),
    ("Björn", "bjorn"), ("Łukasz", "lukasz"), ("Søren", "soren"), ("Ömer", "omer"),
    ("Chloé", "chloe"), ("Maria", "maria"), ("John", "john"), ("Aiko", "aiko"),
    ("Wei", "wei"), ("Min-jun", "minjun"), ("Дмитрий", "dmitry"), ("Ольга", "olga"),
    ("محمد", "mohammed"), ("Priya", "priya"), ("Siobhán", "siobhan"), ("Renée", "renee"),
    ("İlkay", "ilkay"), ("Nguyễn", "nguyen"), ("Amélie", "amelie"), ("Jürgen", "jurgen"),
)
LAST_NAMES = (
    ("García", "garcia"), ("Müller", "muller"), ("O'Brien", "obrien"), ("Nakamura", "nakamura"),
    ("Dubois", "dubois"), ("Kowalski", "kowalski"), ("Øvergaard", "overgaard"),
    ("Smith", "smith"), ("Petrov", "petrov"), ("Иванова", "ivanova"), ("Zhang", "zhang"),
    ("Kim", "kim"), ("da Silva", "dasilva"), ("van der Berg", "vanderberg"),
    ("Fernández", "fernandez"), ("Nørgaard", "norgaard"), ("Šimek", "simek"),
)
FULL_NAMES = (
    ("山田 太郎", "yamada"), ("王小明", "wang"), ("김민준", "kim"), ("佐藤 花子", "sato"),
    ("李娜", "li"), ("Nguyễn Văn An", "nguyen"), ("عبد الله", "abdullah"),
)
NAME_SUFFIXES = (" 🎓", " 🚀", " 📚", " 👩🏽‍💻", " (TA)", " \\o/")
DOMAINS = (
    "example.edu", "mail.example.com", "uni-example.de", "student.example.ac.uk",
    "Example.EDU", "bücher.example", "example.org",
)
BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
COURSES = (
    "Linear Algebra", "Álgebra Lineal", "Analysis I", "数据结构", "線形代数学", "Thermodynamik",
    "Introduction to Psychology", "Organic Chemistry II", "Data Structures & Algorithms",
    "Histoire de l'art", "Компьютерные сети", "Machine Learning 🤖", "Statistics 101",
    "Operating Systems", "Microeconomics", "Mécanique quantique", "Compilers", "Databases",
    "Discrete Mathematics", "World History", "Programación Funcional", "경영학 원론",
    "Technical Writing", "Signals & Systems", "Ethics in AI", "Calculus III",
)
TITLES = (
    "Syllabus", "Course outline", "Lecture notes {n}", "Week {n}: overview", "Exam prep",
    "講義ノート 第{n}回", "Übungsblatt {n}", "Reading list", "Lab {n} — instructions",
    "Project brief \"v{n}\"", "Cronograma semana {n}",
)
PARAGRAPHS = (
    "This course introduces the fundamental concepts and methods of the field.",
    "Grading: homework 30%, midterm 30%, final exam 40%. Late work loses 10% per day.",
    "Office hours: Tuesdays 14:00–16:00, room B-204, or by appointment.",
    "Los estudiantes deberán entregar un informe escrito al final del semestre.",
    "Die Vorlesung findet wöchentlich statt; die Übungen beginnen in der zweiten Woche.",
    "Le cours s'appuie sur des études de cas et des travaux pratiques en binôme.",
    "本课程介绍数据结构的基本概念，包括线性表、树和图。",
    "授業は毎週月曜日に行います。期末試験は七月に実施します。",
    "이 강의는 경영학의 기초 이론과 사례를 다룹니다.",
    "Курс охватывает основы компьютерных сетей и протоколов TCP/IP.",
    "يتناول هذا المقرر المفاهيم الأساسية في الإحصاء.",
    "Bring a laptop 💻 — we code in class. Questions? Use the forum 🙋.",
    "Paths on Windows look like C:\\Users\\student\\notes.txt; quote them as 'C:\\path'.",
    "Required reading: \"Structure and Interpretation\", chapters 1–3.",
    "Week 1: intro. Week 2: sets & relations. Week 3: proofs by induction.",
    "Academic integrity: all submitted work must be your own. Cite every source.",
)
FILE_BASES = (
    "Syllabus", "Lecture Notes", "Übungsblatt 3", "講義資料", "Week 1 — Intro", "syllabus_final(2)",
    "100% complete", "notes#draft", "Course Outline 2024", "présentation", "lab+report",
    "课程大纲", "exam [answers]",
)
EXTENSIONS = ("pdf", "pdf", "pdf", "docx", "pptx", "txt", "md")
DEPARTMENTS = ("math", "cs", "physics", "history", "econ", "chem")
QUERIES = ("?v=3", "?download=1", "?download=1&token=a1b2c3", "?X-Amz-Expires=3600&sig=Zm9v")
REPO_WORDS = ("homework", "thesis", "dotfiles", "notes", "project", "lab", "compiler", "website")
PROVIDERS = ("github", "gitlab", "bitbucket", "other")
PROVIDER_WEIGHTS = (60, 20, 10, 10)
SEASONS = (("Spring", 1, 15, 5, 15), ("Summer", 6, 1, 8, 15), ("Fall", 9, 1, 12, 20))
LOCAL_SEASONS = {"Spring": "Sommersemester", "Fall": "Wintersemester"}
EPOCH = datetime(2019, 1, 1)  # naive UTC, as the columns store it
SPAN_SECONDS = 6 * 365 * 86400

# Mean children per parent, from the ranges below: used to size a database by row count.
SEMESTERS_PER_USER = (2, 4)
SUBJECTS_PER_SEMESTER = (3, 7)
SYLLABUS_PER_SUBJECT = (1, 3)
REPOS_PER_USER = (0, 1, 1, 1, 2)


def mean_rows_per_user() -> float:
    semesters = sum(SEMESTERS_PER_USER) / 2
    subjects = semesters * sum(SUBJECTS_PER_SEMESTER) / 2
    syllabus = subjects * sum(SYLLABUS_PER_SUBJECT) / 2
    repos = sum(REPOS_PER_USER) / len(REPOS_PER_USER)
    return 1 + semesters + subjects + syllabus + repos


class IdCounters:
    """The next unused id of each table; ids are explicit so data is reproducible."""

    def __init__(self, start: dict[str, int] | None = None) -> None:
        self.next: dict[str, int] = {
            t: 1 for t in ("users", "semesters", "subjects", "syllabus", "repositories")
        }
        self.next.update(start or {})

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


@dataclass
class UserTree:
    """One user and everything it owns, as full rows in :data:`sqltext.COLUMNS` order."""

    users: list[Row] = field(default_factory=list)
    semesters: list[Row] = field(default_factory=list)
    subjects: list[Row] = field(default_factory=list)
    syllabus: list[Row] = field(default_factory=list)
    repositories: list[Row] = field(default_factory=list)

    def tables(self) -> dict[str, list[Row]]:
        return {
            "users": self.users, "semesters": self.semesters, "subjects": self.subjects,
            "syllabus": self.syllabus, "repositories": self.repositories,
        }


def random_moment(rng: random.Random) -> datetime:
    return EPOCH + timedelta(seconds=rng.randrange(SPAN_SECONDS))


def person(rng: random.Random) -> tuple[str, str]:
    """A display name and an ascii handle."""
    if rng.random() < 0.15:
        name, handle = rng.choice(FULL_NAMES)
    else:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name, handle = f"{first[0]} {last[0]}", f"{first[1]}.{last[1]}"
    if rng.random() < 0.04:
        name += rng.choice(NAME_SUFFIXES)
    return name, handle


def email(rng: random.Random, handle: str, user_id: int) -> str:
    # The id as the last dot-separated part keeps every e-mail unique, even under a
    # case- and accent-insensitive collation (handles are ascii letters and dots only).
    return f"{handle}.{user_id}@{rng.choice(DOMAINS)}"


def password_hash(rng: random.Random) -> str:
    cost = "$2b$12$" if rng.random() < 0.8 else "$2y$10$"
    return cost + "".join(rng.choices(BCRYPT_ALPHABET, k=53))


def color(rng: random.Random) -> str | None:
    return None if rng.random() < 0.1 else f"#{rng.getrandbits(24):06x}"


def teacher(rng: random.Random) -> str | None:
    if rng.random() < 0.2:
        return None
    return rng.choice(("Prof. ", "Dr. ", "", "Mx. ")) + person(rng)[0]


def content(rng: random.Random) -> str | None:
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.1:
        return ""
    count = rng.randint(10, 60) if r > 0.99 else rng.randint(1, 2)
    return "\n\n".join(rng.choices(PARAGRAPHS, k=count))


def file_name(rng: random.Random) -> str:
    return f"{rng.choice(FILE_BASES)}.{rng.choice(EXTENSIONS)}"


def file_url(rng: random.Random, user_id: int, subject_id: int) -> str | None:
    """~25% NULL, a few empty strings, the rest a mix of URL, object key and local path."""
    r = rng.random()
    if r < 0.25:
        return None
    if r < 0.265:
        return ""
    kind, name = rng.random(), file_name(rng)
    if kind < 0.45:
        query = rng.choice(QUERIES) if rng.random() < 0.2 else ""
        dept, year = rng.choice(DEPARTMENTS), 2019 + rng.randrange(7)
        return f"https://files.example.edu/{dept}/{year}/{quote(name)}{query}"
    if kind < 0.7:
        return f"s3://aurora-uploads/{user_id}/{rng.getrandbits(64):016x}/{quote(name, safe='')}"
    if kind < 0.9:
        return f"/srv/uploads/syllabus/{subject_id}/{name}"
    return f"http://legacy.example.com/get.php?id={subject_id}&file={quote(name, safe='')}"


def repo_url(rng: random.Random, provider: str, handle: str, name: str) -> str:
    owner = handle.replace(".", "-")
    if provider == "github":
        return f"https://github.com/{owner}/{name}"
    if provider == "gitlab":
        return f"https://gitlab.com/{owner}/{name}.git"
    if provider == "bitbucket":
        return f"https://bitbucket.org/{owner}/{name}"
    if rng.random() < 0.5:
        return f"git@git.example.org:{owner}/{name}.git"
    return f"https://git.example.edu/~{owner}/{name}"


def semester_rows(rng: random.Random, ids: IdCounters, user_id: int, since: datetime) -> list[Row]:
    """2-4 consecutive semesters from the one ``since`` falls in; the last may be current."""
    count = rng.randint(*SEMESTERS_PER_USER)
    year, season = since.year, min(2, (since.month - 1) // 4)
    current = rng.random() < 0.7
    rows: list[Row] = []
    for n in range(count):
        label, m1, d1, m2, d2 = SEASONS[season]
        name = f"{label} {year}"
        if label in LOCAL_SEASONS and rng.random() < 0.1:
            name = f"{LOCAL_SEASONS[label]} {year}"
        start: date | None = date(year, m1, d1)
        end: date | None = date(year, m2, d2)
        if rng.random() < 0.05:
            start = end = None
        is_current = int(current and n == count - 1)
        rows.append((ids.take("semesters"), user_id, name, start, end, is_current))
        season = (season + 1) % 3
        if season == 0:
            year += 1
    return rows


def subject_row(rng: random.Random, subject_id: int, semester_id: int) -> Row:
    name = rng.choice(COURSES)
    if rng.random() < 0.2:
        name += f" ({rng.choice('ABCDE')})"
    return (subject_id, semester_id, name, rng.randint(1, 6), color(rng), teacher(rng))


def syllabus_row(
    rng: random.Random, ids: IdCounters, user_id: int, subject_id: int, since: datetime
) -> Row:
    # DATETIME(3): whole milliseconds, so what is read back equals what was written.
    created = since + timedelta(seconds=rng.randrange(200 * 86400),
                                milliseconds=rng.randrange(1000))
    updated = created
    if rng.random() < 0.4:
        updated += timedelta(seconds=rng.randrange(30 * 86400))
    title = rng.choice(TITLES).format(n=rng.randint(1, 14))
    sid = ids.take("syllabus")
    return (sid, subject_id, title, content(rng), file_url(rng, user_id, subject_id), created,
            updated)


def repository_row(
    rng: random.Random, ids: IdCounters, *, user_id: int, handle: str, subject_ids: list[int],
    since: datetime,
) -> Row:
    provider = rng.choices(PROVIDERS, PROVIDER_WEIGHTS)[0]
    name = f"{rng.choice(REPO_WORDS)}-{rng.randrange(100)}"
    subject_id = rng.choice(subject_ids) if subject_ids and rng.random() < 0.3 else None
    stars = min(50_000, int(rng.paretovariate(1.2)) - 1)
    created = since + timedelta(seconds=rng.randrange(365 * 86400))
    return (ids.take("repositories"), user_id, subject_id, name,
            repo_url(rng, provider, handle, name), provider, int(rng.random() < 0.4), stars,
            created)


def user_row(rng: random.Random, user_id: int, created: datetime) -> tuple[Row, str]:
    name, handle = person(rng)
    last_login = None if rng.random() < 0.2 else created + timedelta(
        seconds=rng.randrange(400 * 86400))
    updated = created + timedelta(seconds=rng.randrange(30 * 86400))
    row: Row = (user_id, email(rng, handle, user_id), password_hash(rng), name, last_login,
                created, updated)
    return row, handle


def user_tree(rng: random.Random, ids: IdCounters, created: datetime) -> UserTree:
    """A new user created at ``created`` with its semesters, subjects, syllabus and repos."""
    tree = UserTree()
    user_id = ids.take("users")
    row, handle = user_row(rng, user_id, created)
    tree.users.append(row)
    first_semester = ids.next["semesters"]
    tree.semesters = semester_rows(rng, ids, user_id, created)
    subject_ids: list[int] = []
    for semester_id in range(first_semester, ids.next["semesters"]):
        for _ in range(rng.randint(*SUBJECTS_PER_SEMESTER)):
            subject_id = ids.take("subjects")
            subject_ids.append(subject_id)
            tree.subjects.append(subject_row(rng, subject_id, semester_id))
            for _ in range(rng.randint(*SYLLABUS_PER_SUBJECT)):
                tree.syllabus.append(syllabus_row(rng, ids, user_id, subject_id, created))
    for _ in range(rng.choice(REPOS_PER_USER)):
        tree.repositories.append(
            repository_row(rng, ids, user_id=user_id, handle=handle, subject_ids=subject_ids,
                           since=created))
    return tree
