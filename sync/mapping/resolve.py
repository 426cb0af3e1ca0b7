"""From the validated file to a :class:`MappingSpec`: names resolved, lookups walked.

Every problem is a :class:`MappingConfigError` naming the file, the key and the fix. What
can only be known from the live servers (columns exist, types fit) is :mod:`check`'s job.
"""

from __future__ import annotations

from pathlib import Path

from sync.errors import MappingConfigError
from sync.mapping import files
from sync.mapping.cascade import refuse_null_lookups
from sync.mapping.config import MappingFile, TableConfig, read_mapping_file
from sync.mapping.spec import (
    Added,
    FileSplit,
    ForeignKey,
    Lookup,
    MappingSpec,
    Route,
    SourceTable,
    TargetTable,
)
from sync.model import TableRef
from sync.settings import Settings


class _Resolver:
    def __init__(self, path: Path, raw: MappingFile) -> None:
        self.path = path
        self.raw = raw
        self.fks: dict[str, dict[str, ForeignKey]] = {}
        self.lookups: dict[tuple[str, str], Lookup] = {}

    def fail(self, key: str, reason: str, fix: str) -> MappingConfigError:
        return MappingConfigError(f"{self.path}: key `{key}`: {reason}", fix=fix)

    # -- columns ---------------------------------------------------------------------------
    def source_columns(self, name: str) -> set[str]:
        cfg = self.raw.tables[name]
        split = {s.url_column for s in cfg.splits}
        return {*cfg.key, *cfg.copy_, *cfg.rename.values(), *cfg.drop, *split}

    def copies(self, name: str, cfg: TableConfig) -> tuple[tuple[str, str], ...]:
        pairs = [(c, c) for c in cfg.key] + [(c, c) for c in cfg.copy_]
        pairs += list(cfg.rename.items())
        seen_source: set[str] = set()
        for _, source in pairs:
            if source in seen_source or source in cfg.drop:
                raise self.fail(
                    f"tables.{name}",
                    f"source column `{source}` is mapped twice",
                    "list each source column once: in key, copy, rename or drop",
                )
            seen_source.add(source)
        return tuple(pairs)

    def check_target_columns(self, name: str, cfg: TableConfig) -> None:
        written = [t for t, _ in self.copies(name, cfg)] + [*cfg.lookups, *cfg.added]
        written += [s.link_column for s in cfg.splits]
        for column in written:
            if written.count(column) > 1:
                raise self.fail(
                    f"tables.{name}",
                    f"target column `{column}` is written twice",
                    "write each target column from one place: copy, rename, lookups or added",
                )

    # -- foreign keys ----------------------------------------------------------------------
    def foreign_keys(self) -> None:
        for name, cfg in self.raw.tables.items():
            mapped = {s for _, s in self.copies(name, cfg)}
            by_column: dict[str, ForeignKey] = {}
            for i, fk in enumerate(cfg.foreign_keys):
                key = f"tables.{name}.foreign_keys.{i}"
                if fk.parent not in self.raw.tables:
                    raise self.fail(
                        f"{key}.parent",
                        f"unknown table `{fk.parent}`",
                        f"name a table listed under `tables` (one of {sorted(self.raw.tables)})",
                    )
                if fk.column not in mapped:
                    raise self.fail(
                        f"{key}.column",
                        f"unknown column `{fk.column}` of `{name}`",
                        "a foreign key column must be copied: add it to `copy` or `rename`",
                    )
                if len(self.raw.tables[fk.parent].key) != 1:
                    raise self.fail(
                        key,
                        f"`{fk.parent}` has a composite key",
                        "foreign keys must reference a single-column key",
                    )
                by_column[fk.column] = ForeignKey(
                    name, fk.column, fk.parent, fk.on_delete, fk.on_update
                )
            self.fks[name] = by_column

    def parent_first(self) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join((*trail[trail.index(name) :], name))
                raise self.fail(
                    f"tables.{name}.foreign_keys",
                    f"cycle in foreign keys: {cycle}",
                    "cascades need an acyclic foreign-key graph; ignore one table of the cycle",
                )
            state[name] = 1
            for fk in self.fks[name].values():
                visit(fk.parent, (*trail, name))
            state[name] = 2
            order.append(name)

        for name in self.raw.tables:
            visit(name, ())
        return order

    # -- lookups ---------------------------------------------------------------------------
    def lookup(self, name: str, column: str, trail: tuple[str, ...] = ()) -> Lookup:
        done = self.lookups.get((name, column))
        if done is not None:
            return done
        node = f"{name}.{column}"
        key = f"tables.{name}.lookups.{column}"
        if node in trail:
            cycle = " -> ".join((*trail[trail.index(node) :], node))
            raise self.fail(
                key,
                f"cycle in lookups: {cycle}",
                "make one of these lookups read a copied column instead",
            )
        trail = (*trail, node)
        cfg = self.raw.tables[name].lookups[column]
        parent, parent_column = cfg.from_.split(".", 1)
        if parent not in self.raw.tables:
            known = sorted(self.raw.tables)
            raise self.fail(
                f"{key}.from",
                f"unknown table `{parent}`",
                f"name a table listed under `tables` (one of {known})",
            )
        via, steps, edges = self._via(name, cfg.via, parent, key, trail)
        steps, edges = self._read(
            parent, parent_column, steps, edges, key=f"{key}.from", trail=trail
        )
        last_table, last_column = steps[-1]
        lookup = Lookup(column, via, steps, edges, self.fks[last_table].get(last_column))
        self.lookups[(name, column)] = lookup
        return lookup

    def _via(
        self, name: str, via: str, parent: str, key: str, trail: tuple[str, ...]
    ) -> tuple[str, tuple[tuple[str, str], ...], tuple[ForeignKey, ...]]:
        if via in self.raw.tables[name].lookups:
            inner = self.lookup(name, via, trail)
            if inner.refers is None or inner.refers.parent != parent:
                raise self.fail(
                    f"{key}.via",
                    f"`{via}` does not hold a `{parent}` key",
                    f"`via` must name a column holding the key of `{parent}`",
                )
            return inner.via, inner.steps, (*inner.edges, inner.refers)
        fk = self.fks[name].get(via)
        if via not in self.source_columns(name):
            raise self.fail(
                f"{key}.via",
                f"unknown column `{via}` of `{name}`",
                "name a copied column or another lookup of this table",
            )
        if fk is None or fk.parent != parent:
            raise self.fail(
                f"{key}.via",
                f"`{name}.{via}` is not a foreign key to `{parent}`",
                f"declare it under `tables.{name}.foreign_keys` with parent {parent}",
            )
        return via, (), (fk,)

    def _read(
        self,
        parent: str,
        column: str,
        steps: tuple[tuple[str, str], ...],
        edges: tuple[ForeignKey, ...],
        *,
        key: str,
        trail: tuple[str, ...],
    ) -> tuple[tuple[tuple[str, str], ...], tuple[ForeignKey, ...]]:
        if column in self.raw.tables[parent].lookups:
            inner = self.lookup(parent, column, trail)
            return (*steps, (parent, inner.via), *inner.steps), (*edges, *inner.edges)
        if column not in self.source_columns(parent):
            raise self.fail(
                key,
                f"unknown column `{column}` of `{parent}`",
                f"name a column mapped under `tables.{parent}` or one of its lookups",
            )
        return (*steps, (parent, column)), edges

    # -- splits, added columns, the lookup state --------------------------------------------
    def split(self, name: str, cfg: TableConfig) -> FileSplit | None:
        if not cfg.splits:
            return None
        s = cfg.splits[0]
        key = f"tables.{name}.splits.0"
        if len(cfg.key) != 1:
            raise self.fail(
                key,
                f"`{name}` has a composite key",
                "a file split needs a single-column source key",
            )
        if s.owner_from not in cfg.lookups and s.owner_from not in {*cfg.copy_, *cfg.rename}:
            raise self.fail(
                f"{key}.owner_from",
                f"unknown column `{s.owner_from}`",
                f"name a target column of `{name}` (copied or looked up)",
            )
        return FileSplit(
            name,
            _ref(s.target),
            s.url_column,
            s.link_column,
            s.owner_from,
            s.id_namespace,
            s.id_name,
            tuple(s.pending.items()),
        )

    def stored(self, order: list[str]) -> dict[str, tuple[str, ...]]:
        """Lookup state: every column a lookup step reads, plus what cascades need to follow."""
        wanted: dict[str, set[str]] = {}
        for lookup in self.lookups.values():
            for table, column in lookup.steps:
                wanted.setdefault(table, set()).add(column)
        # A parent that has parents itself is reached by cascades through its target rows
        # (``IN (SELECT ...)``); a row referring to one the target lacks must be known as such.
        for name in order:
            for fk in self.fks[name].values():
                if fk.on_delete in _REACHED and self.fks[fk.parent]:
                    wanted.setdefault(fk.parent, set())
        # A stored row must disappear when an ancestor does: keep its foreign keys, and keep
        # any parent that has parents itself, or the cascade could not be traced.
        pending = list(wanted)
        while pending:
            table = pending.pop()
            for fk in self.fks[table].values():
                wanted[table].add(fk.column)
                if self.fks[fk.parent] and fk.parent not in wanted:
                    wanted[fk.parent] = set()
                    pending.append(fk.parent)
        for table in wanted:
            if len(self.raw.tables[table].key) != 1:
                raise self.fail(
                    f"tables.{table}.key",
                    f"`{table}` has a composite key",
                    "tables read by lookups need a single-column key",
                )
        return {t: tuple(sorted(wanted[t])) for t in order if t in wanted}


_REACHED = ("cascade", "set_null")


def _ref(text: str) -> TableRef:
    database, table = text.split(".", 1)
    return TableRef(database, table)


def _added(cfg: TableConfig) -> tuple[Added, ...]:
    return tuple(Added(c, a.value, a.default, a.owned) for c, a in cfg.added.items())


def _target_table(table: SourceTable) -> TargetTable:
    key = table.key
    lookups = tuple(lk.column for lk in table.lookups)
    link = (table.split.link_column,) if table.split else ()
    written = (*(t for t, _ in table.copies), *lookups, *link, *(a.column for a in table.added))
    owned = {a.column for a in table.added if a.owned}
    first_seen = {a.column for a in table.added if a.kind == "first_seen"}
    times = tuple(a.column for a in table.added if a.kind != "constant")
    update = tuple(c for c in written if c not in {*key, *owned, *first_seen})
    compared = tuple(c for c in written if c not in {*owned, *times})
    return TargetTable(table.target, key, written, update, compared, times)


def _split_table(split: FileSplit) -> TargetTable:
    pending = tuple(c for c, _ in split.pending)
    times = (files.CREATED_COLUMN, files.UPDATED_COLUMN)
    return TargetTable(
        split.target,
        (files.KEY_COLUMN,),
        (*files.WRITTEN_COLUMNS, *pending),
        files.UPDATE_COLUMNS,
        files.COMPARED_COLUMNS,
        times,
    )


def resolve(path: Path, raw: MappingFile, *, source_schema: str) -> MappingSpec:
    r = _Resolver(path, raw)
    for name in raw.ignore:
        if name in raw.tables:
            raise r.fail(
                f"ignore.{name}",
                f"`{name}` is both mapped and ignored",
                "remove it from `ignore` or from `tables`",
            )
    r.foreign_keys()
    order = r.parent_first()
    tables: dict[str, SourceTable] = {}
    for name in order:
        cfg = raw.tables[name]
        r.check_target_columns(name, cfg)
        tables[name] = SourceTable(
            name=name,
            key=tuple(cfg.key),
            target=_ref(cfg.target),
            copies=r.copies(name, cfg),
            dropped=tuple(cfg.drop),
            foreign_keys=tuple(r.fks[name].values()),
            lookups=tuple(r.lookup(name, c) for c in cfg.lookups),
            added=_added(cfg),
            split=r.split(name, cfg),
        )
    targets: dict[TableRef, TargetTable] = {}
    for table in tables.values():
        for target in (_target_table(table), *([_split_table(table.split)] if table.split else [])):
            if target.ref in targets:
                raise r.fail(
                    f"tables.{table.name}.target",
                    f"`{target.ref}` is written twice",
                    "map each target table from one source table",
                )
            targets[target.ref] = target
    routes = tuple(
        Route(x.schema_, x.database, None if x.tables == "*" else frozenset(x.tables))
        for x in raw.routes
    )
    spec = MappingSpec(
        path,
        source_schema,
        raw.unmapped,
        frozenset(raw.ignore),
        tables,
        routes,
        r.stored(order),
        targets,
    )
    _check_restorable(spec)
    return spec


def _check_restorable(spec: MappingSpec) -> None:
    """The lookup state must be rebuildable from the target, and nulled keys not looked through."""
    for name, columns in spec.stored.items():
        for column in columns:
            if spec.tables[name].target_column_of(column) is None:
                raise MappingConfigError(
                    f"{spec.path}: key `tables.{name}`: `{column}` is read by lookups or "
                    "cascades but not copied to the target, so it cannot be rebuilt at start",
                    fix=f"add `{column}` to `copy` under tables.{name}",
                )
    for table in spec.tables.values():
        for fk in table.foreign_keys:
            if "set_null" in (fk.on_delete, fk.on_update):
                refuse_null_lookups(spec, fk)


def load_mapping(path: Path, *, source_schema: str) -> MappingSpec:
    """Read, validate and resolve ``path``; raise MappingConfigError naming file, key and fix."""
    return resolve(path, read_mapping_file(path), source_schema=source_schema)


__all__ = ["load_mapping", "load_spec", "resolve"]


def load_spec(settings: Settings) -> MappingSpec:
    """The mapping named by the settings, for the source database they name."""
    return load_mapping(settings.mapping_file, source_schema=settings.source_db)
