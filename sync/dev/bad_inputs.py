"""The bad inputs the tests try, and what aurora-sync does with each: ``docs/bad-inputs.md``.

A test marked ``@pytest.mark.bad_input`` records, through the ``bad_input`` fixture
(``tests/bad_input.py``), each bad input it tries and the message aurora-sync really gave
for it, captured while the test ran. With ``AURORA_SYNC_BAD_INPUTS=<path>`` set, the records
of the tests that passed are merged into that JSON file when the session ends. This module
holds what both ends share: the record, the clean-up of run-specific text (temporary paths,
ports, binlog positions, secrets), the JSON file and the Markdown page.

Command line (from the repository root; it runs the tagged tests, so it takes minutes)::

    python -m sync.dev.bad_inputs              # run them, write docs/bad-inputs.md
    python -m sync.dev.bad_inputs --from FILE  # only render FILE's records
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
DOC: Final = ROOT / "docs" / "bad-inputs.md"
ENV: Final = "AURORA_SYNC_BAD_INPUTS"
MARKER: Final = "bad_input"

# The categories of the page, in its order, each with the line that introduces its table.
CATEGORIES: Final[dict[str, str]] = {
    "config": "Settings from the environment, `.env` and `*_PASSWORD_FILE`.",
    "mapping": "`config/mapping.yaml`, on its own and against the live schemas.",
    "credentials": "Logins and privileges on the source and the target.",
    "TLS": "Certificates as the guide's `--ssl-mode=VERIFY_IDENTITY` checks them.",
    "binlog settings": "Source settings the binlog must have, and binlogs that are gone.",
    "schema drift": "DDL on a mapped aurora table while the daemon streams.",
    "oversized rows": "Values longer than the target column, rows larger than a packet.",
    "invalid UTF-8": "Bytes that are not UTF-8 where the targets hold utf8mb4 text.",
    "zero dates": "`'0000-00-00'` and partial dates stored under a permissive `sql_mode`.",
    "huge transactions": "One source transaction larger than the batch limits.",
}
MAX_OUTCOME_CHARS: Final = 900
REDACTED: Final = "**********"

# Text that differs from run to run, and what stands in for it on the page.
_VOLATILE: Final = (
    (re.compile(r"(?:/[\w.-]+)*/pytest-of-[^/\s]+/pytest-\d+/[^/\s'\")]+"), "<tmp>"),
    (re.compile(r"(?:/[\w.-]+)*/aurora-sync-[\w-]+?-[a-z0-9_]{8}(?=[/\s'\")]|$)"),
     "<server dir>"),
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d{4,5}\b"), r"\1:<port>"),
    (re.compile(r"\b(127\.0\.0\.1|localhost)(['\"]?) \(port (\d{4,5})\)"), r"\1\2 (port <port>)"),
    (re.compile(r"\b[\w-]+\.\d{6}:\d+\b"), "<binlog file>:<pos>"),
    (re.compile(r"\bgtid \d+-\d+-\d+\b"), "gtid <gtid>"),
)


@dataclass(frozen=True, slots=True, order=True)
class BadInput:
    """One bad input tried by one test, and what aurora-sync did with it."""

    category: str
    test: str
    given: str
    outcome: str
    """The message aurora-sync printed, raised or recorded, as the test captured it."""
    exit_code: int | None = None
    effect: str | None = None
    """What else the test checked happened (halted before the row, copied exactly...)."""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown bad-input category {self.category!r}: use one of "
                             f"{', '.join(CATEGORIES)} (sync/dev/bad_inputs.py)")
        if not self.outcome.strip():
            raise ValueError(f"{self.test}: the outcome of {self.given!r} is empty: record "
                             "the message aurora-sync gave")


def normalize(text: str) -> str:
    """``text`` without what differs between runs: temporary paths, ports, positions."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text.strip()


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def leaked(text: str, secrets: Iterable[str]) -> list[str]:
    """The ``secrets`` that appear in ``text`` (masked, for the assertion message)."""
    return [f"{s[:2]}…({len(s)} chars)" for s in secrets if s and s in text]


# --- the JSON file ------------------------------------------------------------------------


def load(path: Path) -> list[BadInput]:
    if not path.exists():
        return []
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [BadInput(**item) for item in raw]


def merge(old: Iterable[BadInput], new: Iterable[BadInput], ran: Iterable[str]) -> list[BadInput]:
    """``old`` without the records of the tests that ran again, plus ``new``; sorted."""
    again = set(ran)
    kept = [r for r in old if r.test not in again]
    return sorted(set(kept) | set(new), key=_order)


def save(path: Path, records: Iterable[BadInput]) -> None:
    items = [asdict(r) for r in sorted(records, key=_order)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(items, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _order(record: BadInput) -> tuple[int, str, str, str]:
    return (list(CATEGORIES).index(record.category), record.test, record.given, record.outcome)


# --- the page -----------------------------------------------------------------------------


def cell(text: str) -> str:
    """``text`` as one Markdown table cell: pipes, HTML and emphasis escaped, lines kept."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "<br>".join(line.rstrip() for line in text.strip().splitlines())


def _shorten(text: str) -> str:
    if len(text) <= MAX_OUTCOME_CHARS:
        return text
    return text[:MAX_OUTCOME_CHARS].rstrip() + " …"


def _does(record: BadInput) -> str:
    head = []
    if record.exit_code is not None:
        head.append(f"exit {record.exit_code}")
    if record.effect:
        head.append(record.effect)
    lead = f"**{cell('; '.join(head))}**<br>" if head else ""
    return lead + cell(_shorten(record.outcome))


def render(records: Sequence[BadInput]) -> str:
    lines = [
        "# Bad inputs: what aurora-sync does with each",
        "",
        "Generated by `python -m sync.dev.bad_inputs` from the tests that try them; do not edit",
        "by hand. Each message is the one aurora-sync gave when the test ran (printed, raised or",
        "recorded as the halt reason), with temporary paths, ports, binlog positions and",
        "secrets replaced by placeholders. `exit` is the exit code of the command; a daemon",
        "that halts keeps its checkpoint before the change it could not apply and says so in",
        "`aurora-sync status` (see [operations.md](operations.md)).",
        "",
    ]
    by_category = {name: [r for r in records if r.category == name] for name in CATEGORIES}
    lines += ["| category | inputs tried |", "|---|---|"]
    lines += [f"| [{name}](#{_anchor(name)}) | {len(found)} |"
              for name, found in by_category.items()]
    for name, found in by_category.items():
        lines += ["", f"## {name}", "", CATEGORIES[name], ""]
        if not found:
            lines.append("No test tries this yet.")
            continue
        lines += ["| input tried | what aurora-sync does | test |", "|---|---|---|"]
        lines += [f"| {cell(r.given)} | {_does(r)} | `{r.test}` |"
                  for r in sorted(found, key=_order)]
    return "\n".join(lines) + "\n"


def _anchor(title: str) -> str:
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def documented_tests(markdown: str) -> set[str]:
    """The test node ids the page names."""
    return set(re.findall(r"\| `(tests/[^`]+)` \|$", markdown, flags=re.MULTILINE))


def tagged_tests(root: Path = ROOT) -> set[str]:
    """The node ids of the tests marked ``bad_input``, as pytest collects them."""
    proc = subprocess.run(  # noqa: S603 - this interpreter's pytest, fixed arguments
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", MARKER,
         "-p", "no:cacheprovider"],
        cwd=root, capture_output=True, text=True, check=False, timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pytest could not collect the tests:\n{proc.stdout}{proc.stderr}")
    return {line.strip() for line in proc.stdout.splitlines() if "::" in line}


# --- the command --------------------------------------------------------------------------


def _say(text: str, *, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def run_tests(json_path: Path, pytest_args: Sequence[str]) -> int:
    env = {**os.environ, ENV: str(json_path)}
    command = [sys.executable, "-m", "pytest", "-m", MARKER, "-q", "-p", "no:cacheprovider",
               *pytest_args]
    _say("running: " + " ".join(command[1:]))
    # This interpreter's pytest, with the arguments its own user gave.
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode  # noqa: S603


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sync.dev.bad_inputs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=DOC, help="the page to write")
    parser.add_argument("--from", dest="source", type=Path,
                        help="render this JSON file of records instead of running the tests")
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest (-x, -v)")
    args = parser.parse_args(argv)
    if args.source is not None:
        records = load(args.source)
    else:
        with tempfile.TemporaryDirectory(prefix="aurora-sync-bad-inputs-") as tmp:
            path = Path(tmp) / "bad-inputs.json"
            code = run_tests(path, args.pytest_args)
            if code != 0:
                _say(f"pytest exited {code}: {args.output} left as it was", error=True)
                return 1
            records = load(path)
    # A page without some tagged test would fail tests/unit/test_bad_inputs_doc.py.
    missing = tagged_tests() - {r.test for r in records}
    if missing:
        _say(f"{args.output} left as it was: no records from\n  " + "\n  ".join(sorted(missing)),
             error=True)
        return 1
    args.output.write_text(render(records), encoding="utf-8")
    _say(f"wrote {args.output}: {len(records)} bad inputs from "
         f"{len({r.test for r in records})} tests")
    return 0


if __name__ == "__main__":  # pragma: no cover - the command line
    raise SystemExit(main())
