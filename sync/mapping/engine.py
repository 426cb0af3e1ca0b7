"""The mapping engine: one typed row change in, the target operations it means out.

Pure: no database access, no globals. The only state is the :class:`LookupState` passed in,
which the mapper keeps in step with the changes it maps (and which the pipeline rebuilds from
the target at start).

A change is dispatched on ``(schema, table)`` to a compiled plan and then on its operation:

* a mapped aurora table: :class:`~sync.mapping.plans.TablePlan`;
* a table of a routed schema: copied as it is, keyed by its source primary key;
* an aurora table under ``ignore``, or any table of another schema: no operations;
* any other aurora table: :class:`MappingError` when the spec says ``unmapped: error``.

A row whose parent the lookup state does not know (a parent it keeps: one read by lookups or
reached through by cascades) cannot be mapped faithfully. In normal operation that is a bug or
a broken state, so the mapper stops (MappingError). In safe mode (replaying history from
before the snapshot position, see DESIGN.md) it is expected: the parent existed when the
change was made and is gone from the target, which is ahead, so aurora deletes it later in the
window. A cascading reference maps the change to no operations and leaves the lookup state
untouched, which keeps the state equal to the target: the row goes with the parent, and any
later change that brings it back is replayed as well. A SET NULL reference is written as NULL,
which is what that delete leaves; the replayed delete could not null it, since it reaches
the row through the parent's target row. The snapshot copy, which can still read the parent
where safe mode would give up, asks :meth:`Mapper.map_or_missing` which parent it lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sync.errors import MappingError
from sync.mapping.cascade import Reach
from sync.mapping.lookups import LookupState
from sync.mapping.plans import MissingParentError, TablePlan
from sync.mapping.spec import MappingSpec, Route
from sync.model import Delete, Op, RowChange, TableRef, TargetOp, Upsert

Handlers = dict[Op, Callable[[RowChange, bool], list[TargetOp]]]
PrimaryKeys = Mapping[tuple[str, str], tuple[str, ...]]


def _nothing(change: RowChange, safe: bool) -> list[TargetOp]:
    return []


_IGNORE: Handlers = {Op.INSERT: _nothing, Op.UPDATE: _nothing, Op.DELETE: _nothing}


class _Copy:
    """A routed table: rows copied as they are, keyed by the source primary key."""

    def __init__(self, target: TableRef, key: tuple[str, ...]) -> None:
        self.target = target
        self.key = key
        self._updates: dict[tuple[str, ...], tuple[str, ...]] = {}

    def handlers(self) -> Handlers:
        return {Op.INSERT: self.upsert, Op.UPDATE: self.update, Op.DELETE: self.delete}

    def _upsert(self, image: Mapping[str, Any]) -> Upsert:
        columns = tuple(image)
        update = self._updates.get(columns)
        if update is None:
            update = self._updates[columns] = tuple(c for c in columns if c not in self.key)
        key = tuple(image[k] for k in self.key)
        return Upsert(self.target, self.key, key, dict(image), update)

    def upsert(self, change: RowChange, safe: bool) -> list[TargetOp]:
        return [self._upsert(change.image)]

    def update(self, change: RowChange, safe: bool) -> list[TargetOp]:
        assert change.before is not None
        op = self._upsert(change.image)
        old = tuple(change.before[k] for k in self.key)
        if old == op.key:
            return [op]
        return [Delete(self.target, self.key, old), op]

    def delete(self, change: RowChange, safe: bool) -> list[TargetOp]:
        return [Delete(self.target, self.key, tuple(change.image[k] for k in self.key))]


def _refuse(reason: str, fix: str, table: str) -> Handlers:
    def handler(change: RowChange, safe: bool) -> list[TargetOp]:
        raise MappingError(reason, fix=fix, table=table, position=change.position)

    return {Op.INSERT: handler, Op.UPDATE: handler, Op.DELETE: handler}


class Mapper:
    """Maps row changes with ``spec``, keeping ``lookups`` in step.

    ``primary_keys`` holds the source primary keys of routed tables (read from the source's
    information_schema at start, :func:`sync.mapping.catalog.read_primary_keys`).
    """

    def __init__(
        self, spec: MappingSpec, lookups: LookupState, primary_keys: PrimaryKeys | None = None
    ) -> None:
        self.spec = spec
        self.lookups = lookups
        self.primary_keys = dict(primary_keys or {})
        reach = Reach(spec)
        self._tables = {name: TablePlan(spec, reach, t, lookups) for name, t in spec.tables.items()}
        self._handlers: dict[tuple[str, str], Handlers] = {}
        for name, plan in self._tables.items():
            self._handlers[(spec.source_schema, name)] = {
                Op.INSERT: plan.insert,
                Op.UPDATE: plan.update,
                Op.DELETE: plan.delete,
            }
        for name in spec.ignored:
            self._handlers[(spec.source_schema, name)] = _IGNORE

    def map_change(self, change: RowChange, *, safe_mode: bool = False) -> list[TargetOp]:
        """The target operations of ``change``, in the order they must be applied."""
        handlers = self._handlers.get((change.schema, change.table))
        if handlers is None:
            handlers = self._handlers[(change.schema, change.table)] = self._resolve(
                change.schema, change.table
            )
        try:
            return handlers[change.op](change, safe_mode)
        except MissingParentError as missing:
            if safe_mode:
                return []
            raise self._missing(change, missing) from None

    def before_columns(self, schema: str, table: str) -> frozenset[str] | None:
        """The columns mapping reads from ``schema.table``'s before images (an update's, a
        delete's), or None for every column: a decoder may leave the others out of them."""
        if schema == self.spec.source_schema:
            plan = self._tables.get(table)
            return plan.before_columns if plan is not None else None
        if self._route(schema, table) is None:
            return None
        key = self.primary_keys.get((schema, table))
        return frozenset(key) if key else None

    def map_or_missing(self, change: RowChange) -> list[TargetOp]:
        """The target operations of ``change``, or :class:`MissingParentError` naming the
        first parent the lookup state does not hold (the state untouched).

        For a caller that can still read that parent as it was when ``change`` was read
        (the snapshot copy): it maps the parent, then ``change`` again. Safe mode would drop
        the row or null the reference instead, and nothing in the stream brings either back
        when the parent is there under a key the copy has not seen.
        """
        handlers = self._handlers.get((change.schema, change.table))
        if handlers is None:
            handlers = self._handlers[(change.schema, change.table)] = self._resolve(
                change.schema, change.table
            )
        return handlers[change.op](change, False)

    def _route(self, schema: str, table: str) -> Route | None:
        """The route that copies ``schema.table`` as it is, if one does."""
        for route in self.spec.routes:
            if route.schema == schema and (route.tables is None or table in route.tables):
                return route
        return None

    def _resolve(self, schema: str, table: str) -> Handlers:
        where = f"{schema}.{table}"
        route = self._route(schema, table)
        if route is not None:
            key = self.primary_keys.get((schema, table))
            if not key:
                return _refuse(
                    f"no primary key known for routed table {where}",
                    "give the table a primary key (or read the keys again at start), "
                    "or leave it out of the route",
                    where,
                )
            return _Copy(TableRef(route.database, table), key).handlers()
        if schema == self.spec.source_schema and self.spec.unmapped == "error":
            return _refuse(
                f"table {where} is not in the mapping ({self.spec.path})",
                f"map it under `tables`, or list it under `ignore` in {self.spec.path}",
                where,
            )
        return _IGNORE

    def _missing(self, change: RowChange, missing: MissingParentError) -> MappingError:
        plan = self._tables.get(change.table)
        key = dict(zip(plan.key, plan.key_of(change.image), strict=True)) if plan else None
        return MappingError(
            f"{change.op} of {change.schema}.{change.table} refers to {missing.table} "
            f"{missing.key!r}, which the lookup state does not hold",
            fix="rebuild the lookup state from the target (restart), or re-run the bootstrap "
            "if the target is missing that parent row",
            table=f"{change.schema}.{change.table}",
            key=key,
            position=change.position,
        )


__all__ = ["Mapper"]
