"""The mapping's part of ``aurora-sync check``: does config/mapping.yaml fit the live schemas?

Loading the mapping raises :class:`~sync.errors.MappingConfigError` (exit 2) when the file
itself is wrong. Against the live source and target it yields one failed line per problem;
the CLI exits 2 when any of them failed, since each is a mapping decision to make.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from sync.checks import CheckResult, fail, ok
from sync.db import connect
from sync.errors import ConnectError
from sync.mapping.catalog import read_columns, read_foreign_keys, read_target_columns
from sync.mapping.check import check_mapping
from sync.mapping.resolve import load_spec
from sync.mapping.spec import MappingSpec
from sync.settings import Settings

CHECK_PREFIX = "mapping"


def mapping_results(settings: Settings, spec: MappingSpec) -> Iterable[CheckResult]:
    """One line for a mapping that fits, one failed line per problem otherwise."""
    try:
        with contextlib.closing(connect(settings.source)) as conn:
            source = read_columns(conn, settings.source_db)
            fks = read_foreign_keys(conn, settings.source_db)
        with contextlib.closing(connect(settings.target)) as conn:
            targets = read_target_columns(conn, settings.databases)
    except ConnectError:
        # The reachability checks already said why; nothing more to compare.
        return
    problems = check_mapping(spec, source, fks, targets)
    if not problems:
        yield ok(CHECK_PREFIX, f"{spec.path}: {len(spec.tables)} tables fit the live source "
                 f"and target schemas")
        return
    for problem in problems:
        yield fail(f"{CHECK_PREFIX} {problem.where}", problem.reason, problem.fix)


__all__ = ["is_mapping_failure", "load_spec", "mapping_results"]


def is_mapping_failure(result: CheckResult) -> bool:
    return result.name == CHECK_PREFIX or result.name.startswith(f"{CHECK_PREFIX} ")
