"""The validation report as people read it: one line per target table, then differing keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sync.validate import ValidationReport

HEADER = ("target table", "chunks", "aurora→rows", "target rows", "rechecked", "differences")


def render_report(report: ValidationReport) -> str:
    rows = [HEADER] + [
        (t.table, f"{t.chunks:,}", f"{t.expected_rows:,}", f"{t.target_rows:,}",
         f"{t.rechecked:,}", f"{t.difference_count:,}")
        for t in report.tables
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for tally in report.tables:
        for diff in tally.differences:
            lines.append(f"✗ {diff.line(tally.key_columns)}")
        if tally.difference_count > len(tally.differences):
            lines.append(f"✗ {tally.table}: ... {tally.difference_count - len(tally.differences)}"
                         " more")
    verdict = "clean" if report.clean else "DIFFERENCES FOUND"
    lines.append(f"validation run {report.run_id} at {report.position}: {verdict} "
                 f"({report.seconds:.1f}s)")
    if report.behind and not report.clean:
        lines.append("note: the daemon had not applied that position in time; rerun once "
                     "it has caught up (aurora-sync status)")
    return "\n".join(lines)


__all__ = ["render_report"]
