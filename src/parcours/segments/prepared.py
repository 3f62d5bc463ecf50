"""A select compiled once to the driver's SQL text, run many times with few new values.

SQLAlchemy compiles a cached statement quickly, but at every execution it still builds
and type-processes the dictionary of all its bound values: a few thousand for a level
of 50 segments (store ids, geo lists, property names and values), ~10 ms in Python per
incremental pass for ~1 ms of SQL. A `Prepared` select is compiled once for the
session's dialect; its constant values are type-processed once (UUIDs, UTC times) and
kept in the driver's parameter order; an execution only computes the values that depend
on the time of evaluation (and, when given, the touched profile ids) and hands the text
and the values to the driver (`Connection.exec_driver_sql`).

Nothing is spliced into the SQL text: every value from a definition (store codes and
ids, categories, property names and values, cities) stays a bound parameter of the
compiled text, in `?` (SQLite) or `%(name)s` (psycopg) form. A constant IN list is
rendered as one placeholder per value; an IN list whose values change from run to run
(times, profile ids) must be given as one bound parameter per value.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from parcours.core.db import UUIDType

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Prepared:
    """A select's SQL text for one dialect, its constant values already processed, and
    how to compute the others: `timed` (name -> value at `now`) and `slots` (the names
    of the profile id parameters, filled in order)."""

    sql: str
    order: tuple[str, ...] | None  # positional drivers: the names in placeholder order
    constants: Mapping[str, Any]
    timed: Mapping[str, tuple[Callable[[datetime], Any], Processor]]
    slots: tuple[str, ...]
    slot_processor: Processor
    read_id: Processor  # the first column's result processor (UUIDs)

    def values(self, now: datetime, profile_ids: Sequence[uuid.UUID] = ()) -> Any:
        """The driver's parameters for a run at `now` (for the given profile ids)."""
        values = dict(self.constants)
        for name, (value, process) in self.timed.items():
            computed = value(now)
            values[name] = process(computed) if process is not None else computed
        if self.slots:
            process = self.slot_processor
            for name, pid in zip(self.slots, _padded(profile_ids, len(self.slots)), strict=True):
                values[name] = process(pid) if process is not None else pid
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)

    def rows(
        self, session: Session, now: datetime, profile_ids: Sequence[uuid.UUID] = ()
    ) -> list[tuple[Any, ...]]:
        """Run it in the session's transaction: rows whose first column (a profile id) is
        read back as a UUID, the others as the driver gives them."""
        connection = session.connection()
        raw = connection.exec_driver_sql(self.sql, self.values(now, profile_ids)).fetchall()
        read = self.read_id
        if read is None:
            return [tuple(row) for row in raw]
        return [(read(row[0]), *row[1:]) for row in raw]


def _padded(profile_ids: Sequence[uuid.UUID], size: int) -> list[uuid.UUID]:
    """`size` ids: the given ones, the last repeated (an IN list does not mind)."""
    ids = list(profile_ids)
    if not ids or len(ids) > size:
        raise ValueError(f"{len(ids)} profile ids for {size} slots")
    return ids + [ids[-1]] * (size - len(ids))


def prepare(
    statement: Select[Any],
    dialect: Dialect,
    timed: Mapping[str, Callable[[datetime], Any]],
    slots: Sequence[str] = (),
) -> Prepared:
    """Compile `statement` for `dialect`. `timed` names the parameters recomputed at each
    run, `slots` the profile id parameters; every other bound value is a constant."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    binds: dict[str, BindParameter[Any]] = {}
    for bind, name in compiled.bind_names.items():
        if bind.expanding:
            # a constant IN list, rendered as one placeholder per value named
            # <name>_1, <name>_2, ... by SQLAlchemy
            if name in timed or name in slots:
                raise ValueError(f"expanding parameter {name}: use one parameter per value")
            for i in range(len(bind.value or ())):
                binds[f"{name}_{i + 1}"] = bind
        else:
            binds[name] = bind
    processors = {name: _processor(bind, dialect) for name, bind in binds.items()}
    constants: dict[str, Any] = {}
    for name, value in compiled.construct_params().items():
        if name in timed or name in slots:
            continue
        if name not in binds:
            raise ValueError(f"parameter {name} of unknown type")
        process = processors.get(name)
        constants[name] = process(value) if process is not None else value
    order = tuple(compiled.positiontup or ()) if dialect.positional else None
    id_type = UUIDType.dialect_impl(dialect)
    return Prepared(
        sql=compiled.string,
        order=order,
        constants=constants,
        timed={
            name: (value, processors.get(name)) for name, value in timed.items() if name in binds
        },
        slots=tuple(slots),
        slot_processor=id_type.bind_processor(dialect),
        read_id=id_type.result_processor(dialect, None),
    )


def _processor(bind: BindParameter[Any], dialect: Dialect) -> Processor:
    return bind.type.dialect_impl(dialect).bind_processor(dialect)
