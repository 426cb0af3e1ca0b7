"""The shape of ``config/mapping.yaml``, validated by pydantic.

Only the file's syntax lives here: which keys exist and what type each has. What the keys
mean together (tables that exist, lookups that resolve, no cycles) is checked in
:mod:`sync.mapping.resolve`. Every problem becomes a :class:`MappingConfigError` naming the
file, the key and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from sync.errors import MappingConfigError

Action = Literal["cascade", "set_null", "restrict", "no_action"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ForeignKeyConfig(_Strict):
    column: str
    parent: str
    on_delete: Action = "restrict"
    on_update: Action = "restrict"


class LookupConfig(_Strict):
    from_: str = Field(alias="from", pattern=r"^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$")
    via: str


class AddedConfig(_Strict):
    default: Any = None
    value: Literal["constant", "commit_ts", "first_seen"] = "constant"
    owned: bool = False


class FileSplitConfig(_Strict):
    kind: Literal["file_from_url"]
    url_column: str
    target: str = Field(pattern=r"^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$")
    link_column: str
    owner_from: str
    id_namespace: UUID
    id_name: str
    pending: dict[str, Any] = Field(default_factory=dict)


class TableConfig(_Strict):
    key: list[str] = Field(min_length=1)
    target: str = Field(pattern=r"^[A-Za-z0-9_$]+\.[A-Za-z0-9_$]+$")
    copy_: list[str] = Field(default_factory=list, alias="copy")
    rename: dict[str, str] = Field(default_factory=dict)
    drop: list[str] = Field(default_factory=list)
    foreign_keys: list[ForeignKeyConfig] = Field(default_factory=list)
    lookups: dict[str, LookupConfig] = Field(default_factory=dict)
    added: dict[str, AddedConfig] = Field(default_factory=dict)
    splits: list[FileSplitConfig] = Field(default_factory=list, max_length=1)


class RouteConfig(_Strict):
    schema_: str = Field(alias="schema")
    database: str
    tables: Literal["*"] | list[str] = "*"


class MappingFile(_Strict):
    version: Literal[1]
    unmapped: Literal["ignore", "error"] = "error"
    ignore: list[str] = Field(default_factory=list)
    tables: dict[str, TableConfig]
    routes: list[RouteConfig] = Field(default_factory=list)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


# pydantic error type → how to fix it; {key} is the last key, {parent} the enclosing one.
_FIXES: dict[str, str] = {
    "missing": "add `{key}:` under `{parent}`",
    "extra_forbidden": "remove `{key}` or correct its spelling (see the comment at the top of "
    "config/mapping.yaml for the keys each section takes)",
    "literal_error": "use one of the values the message lists",
    "string_pattern_mismatch": "write it as <database>.<table> or <table>.<column>",
    "too_short": "give at least one value",
    "too_long": "give at most one entry",
}


def _fix(error_type: str, loc: tuple[int | str, ...]) -> str:
    template = _FIXES.get(error_type, "give `{key}` a value of the type the message names")
    parent = _where(loc[:-1]) if len(loc) > 1 else "the top level"
    return template.format(key=loc[-1] if loc else "?", parent=parent)


def read_mapping_file(path: Path) -> MappingFile:
    """Parse and validate ``path``; raise MappingConfigError naming the file, key and fix."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingConfigError(
            f"{path}: cannot read the mapping file: {exc.strerror}",
            fix="point AURORA_SYNC_MAPPING at config/mapping.yaml",
        ) from None
    except yaml.YAMLError as exc:
        raise MappingConfigError(
            f"{path}: not valid YAML: {exc}", fix="correct the YAML syntax at the line shown"
        ) from None
    if not isinstance(raw, dict):
        raise MappingConfigError(
            f"{path}: the mapping must be a YAML mapping with `version` and `tables`",
            fix="start from the config/mapping.yaml shipped with aurora-sync",
        )
    try:
        return MappingFile.model_validate(raw)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise MappingConfigError(
            f"{path}: key `{_where(loc)}`: {first['msg']}{more}",
            fix=_fix(first["type"], loc),
        ) from None


__all__ = [
    "AddedConfig",
    "FileSplitConfig",
    "ForeignKeyConfig",
    "LookupConfig",
    "MappingFile",
    "RouteConfig",
    "TableConfig",
    "read_mapping_file",
]
