"""Does the mapping fit the live schemas? A pure check over what information_schema says.

``aurora-sync check`` reads the columns and foreign keys (:mod:`sync.mapping.catalog`) and
calls :func:`check_mapping`; every :class:`Problem` names where, what and the fix. Checked:
every mapped source table and column exists, every live column is copied or dropped (a new
column in aurora is a decision, not a silent loss), the declared foreign-key actions are
aurora's, target tables and columns exist with compatible types, target keys match, and no
NOT NULL target column without a default is left unwritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sync.errors import MappingConfigError
from sync.mapping.spec import MappingSpec, SourceTable, TargetTable
from sync.model import TableRef


@dataclass(frozen=True, slots=True)
class Column:
    """One column as information_schema.COLUMNS describes it."""

    name: str
    data_type: str  # lower case: int, varchar, datetime...
    column_type: str  # lower case, full: "int(10) unsigned", "enum('a','b')"
    nullable: bool
    has_default: bool
    max_length: int | None = None
    primary: bool = False


@dataclass(frozen=True, slots=True)
class LiveForeignKey:
    parent: str
    on_delete: str  # "cascade", "set_null", "restrict", "no_action"
    on_update: str


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    reason: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason} (fix: {self.fix})"


Columns = Mapping[str, Mapping[str, Column]]
_FAMILIES = {
    **dict.fromkeys(
        (
            "tinyint",
            "smallint",
            "mediumint",
            "int",
            "integer",
            "bigint",
            "year",
            "bit",
            "bool",
            "boolean",
        ),
        "int",
    ),
    **dict.fromkeys(("decimal", "numeric"), "decimal"),
    **dict.fromkeys(("float", "double", "real"), "float"),
    **dict.fromkeys(
        ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"), "string"
    ),
    **dict.fromkeys(
        ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"), "binary"
    ),
    **dict.fromkeys(("datetime", "timestamp"), "datetime"),
    "date": "date",
    "time": "time",
    "json": "json",
}
# Widening conversions that keep every value.
_WIDER = {("int", "decimal"), ("int", "float"), ("date", "datetime"), ("decimal", "float")}
_INT_BYTES = {
    "tinyint": 1,
    "bool": 1,
    "boolean": 1,
    "smallint": 2,
    "mediumint": 3,
    "int": 4,
    "integer": 4,
    "bigint": 8,
    "year": 2,
}


def _enum_values(column_type: str) -> set[str]:
    return set(re.findall(r"'((?:[^']|'')*)'", column_type))


def type_problem(source: Column, target: Column) -> str | None:
    """Why ``source`` values may not fit ``target``, or None."""
    s, t = _FAMILIES.get(source.data_type), _FAMILIES.get(target.data_type)
    if s is None or t is None:
        return None if source.data_type == target.data_type else "unknown type"
    if s != t and (s, t) not in _WIDER and not (s == "string" and t == "json"):
        return f"{source.column_type} does not convert to {target.column_type}"
    if target.data_type in ("enum", "set"):
        return _member_problem(source, target)
    if s == "string" == t and (target.max_length or 0) < (source.max_length or 0):
        return f"{target.column_type} is shorter than {source.column_type}"
    if s == "int" == t and not _int_fits(source, target):
        return f"{source.column_type} may not fit {target.column_type}"
    return None


def _member_problem(source: Column, target: Column) -> str | None:
    if source.data_type not in ("enum", "set"):
        return f"{source.column_type} values may not be members of {target.column_type}"
    extra = _enum_values(source.column_type) - _enum_values(target.column_type)
    return f"values {sorted(extra)} are not allowed in {target.column_type}" if extra else None


def _int_fits(source: Column, target: Column) -> bool:
    sb, tb = _INT_BYTES.get(source.data_type, 8), _INT_BYTES.get(target.data_type, 8)
    s_unsigned, t_unsigned = "unsigned" in source.column_type, "unsigned" in target.column_type
    if s_unsigned == t_unsigned:
        return tb >= sb
    return tb > sb if not t_unsigned else False


def _source_table(
    spec: MappingSpec,
    table: SourceTable,
    live: Mapping[str, Column],
    fks: Mapping[tuple[str, str], LiveForeignKey],
) -> list[Problem]:
    where = f"{spec.source_schema}.{table.name}"
    out = [
        Problem(
            f"{where}.{c}",
            "mapped column does not exist in the source",
            f"remove it from tables.{table.name} in {spec.path}",
        )
        for c in table.source_columns
        if c not in live
    ]
    out += [
        Problem(
            f"{where}.{c}",
            "source column is neither copied nor dropped",
            f"add it to `copy` or `drop` under tables.{table.name} in {spec.path}",
        )
        for c in live
        if c not in table.source_columns
    ]
    declared = {fk.column: fk for fk in table.foreign_keys}
    for column in {*declared, *(c for (t, c) in fks if t == table.name)}:
        mine, theirs = declared.get(column), fks.get((table.name, column))
        shape = (
            None if mine is None else LiveForeignKey(mine.parent, mine.on_delete, mine.on_update)
        )
        if shape != theirs:
            out.append(
                Problem(
                    f"{where}.{column}",
                    f"foreign key in the mapping {shape} differs from the source's {theirs}",
                    f"declare aurora's constraint under tables.{table.name}."
                    "foreign_keys: the mapping repeats its actions",
                )
            )
    return out


def check_source(
    spec: MappingSpec, source: Columns, fks: Mapping[tuple[str, str], LiveForeignKey]
) -> list[Problem]:
    out: list[Problem] = []
    for table in spec.tables.values():
        live = source.get(table.name)
        if live is None:
            out.append(
                Problem(
                    f"{spec.source_schema}.{table.name}",
                    "table does not exist",
                    f"remove it from `tables` in {spec.path}",
                )
            )
            continue
        out += _source_table(spec, table, live, fks)
    if spec.unmapped == "error":
        out += [
            Problem(
                f"{spec.source_schema}.{name}",
                "source table is not in the mapping",
                f"map it under `tables`, or list it under `ignore` in {spec.path}",
            )
            for name in source
            if name not in spec.tables and name not in spec.ignored
        ]
    return out


def _target_table(target: TargetTable, live: Mapping[str, Column] | None) -> list[Problem]:
    where = str(target.ref)
    if live is None:
        return [Problem(where, "target table does not exist", "run `aurora-sync init`")]
    out = [
        Problem(
            f"{where}.{c}",
            "written column does not exist in the target",
            "add it to the target schema, or stop writing it in the mapping",
        )
        for c in target.written_columns
        if c not in live
    ]
    primary = tuple(c.name for c in live.values() if c.primary)
    if set(primary) != set(target.key_columns):
        out.append(
            Problem(
                where,
                f"target primary key {primary} is not the mapped key {target.key_columns}",
                "make the mapped key the primary key",
            )
        )
    out += [
        Problem(
            f"{where}.{c.name}",
            "NOT NULL column without a default is never written",
            "give it a default in the target schema, or write it in the mapping",
        )
        for c in live.values()
        if not c.nullable and not c.has_default and c.name not in target.written_columns
    ]
    return out


def _types(
    spec: MappingSpec, source: Columns, targets: Mapping[TableRef, Mapping[str, Column]]
) -> list[Problem]:
    out: list[Problem] = []
    for table in spec.tables.values():
        live_t = targets.get(table.target, {})
        pairs = [(t, table.name, s) for t, s in table.copies]
        pairs += [(lk.column, *lk.steps[-1]) for lk in table.lookups]
        for target_col, source_table, source_col in pairs:
            src = source.get(source_table, {}).get(source_col)
            dst = live_t.get(target_col)
            problem = None if src is None or dst is None else type_problem(src, dst)
            if problem:
                out.append(
                    Problem(
                        f"{table.target}.{target_col}",
                        problem,
                        "widen the target column to hold every source value",
                    )
                )
    return out


def check_mapping(
    spec: MappingSpec,
    source: Columns,
    fks: Mapping[tuple[str, str], LiveForeignKey],
    targets: Mapping[TableRef, Mapping[str, Column]],
) -> list[Problem]:
    """Every problem between the mapping and the live source and target schemas."""
    out = check_source(spec, source, fks)
    for target in spec.targets():
        out += _target_table(target, targets.get(target.ref))
    return out + _types(spec, source, targets)


def as_error(spec: MappingSpec, problems: list[Problem]) -> MappingConfigError | None:
    """One error listing every problem (exit code 2), or None when there are none."""
    if not problems:
        return None
    lines = "\n  ".join(str(p) for p in problems)
    return MappingConfigError(
        f"{spec.path} does not fit the live schemas ({len(problems)} problems):\n  {lines}",
        fix="correct the mapping or the schemas as each problem says",
    )


__all__ = [
    "Column",
    "LiveForeignKey",
    "Problem",
    "as_error",
    "check_mapping",
    "check_source",
    "type_problem",
]
