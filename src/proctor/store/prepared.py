"""Statements of the governed call's hot path, rendered once and run on the driver.

SQLAlchemy Core costs tens of microseconds per execution (compiled-cache
lookup, parameter processing, result set-up). The few statements every
governed call runs are rendered once per dialect and executed on the driver
connection, inside the transaction SQLAlchemy opened, with their values
adapted here the way the column types would have adapted them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.dml import UpdateBase

from proctor.jsonvalue import canonical_json
from proctor.store.tables import UTCDateTime

Adapter = Callable[[Any], Any]


def _sqlite_time(value: datetime | None) -> str | None:
    # SQLAlchemy's storage format for SQLite DATETIME, in UTC.
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_json(value: Any) -> str | None:
    return None if value is None else canonical_json(value)


def _adapters(dialect: str) -> tuple[Adapter, Adapter]:
    if dialect == "sqlite":
        return _sqlite_time, _sqlite_json
    if dialect == "postgresql":
        from psycopg.types.json import Jsonb  # the optional driver, present with this dialect

        def postgres_json(value: Any) -> Any:
            return None if value is None else Jsonb(value, dumps=canonical_json)

        return (lambda v: v), postgres_json
    raise NotImplementedError(f"no hot-path adapters for the {dialect} dialect")


class _Rendered:
    def __init__(self, stmt: UpdateBase, table: sa.Table, dialect: sa.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = compiled.positiontup
        self.defaults = dict(compiled.params)
        to_time, to_json = _adapters(dialect.name)
        self.adapt: dict[str, Adapter] = {}
        for name in self.defaults:
            column = table.c.get(name)
            if column is None:
                continue
            if isinstance(column.type, UTCDateTime):
                self.adapt[name] = to_time
            elif isinstance(column.type, sa.JSON):
                self.adapt[name] = to_json

    def parameters(self, params: Mapping[str, Any]) -> Any:
        values = {**self.defaults, **params}
        for name, adapt in self.adapt.items():
            values[name] = adapt(values[name])
        if self.positional is not None:
            return [values[name] for name in self.positional]
        return values


class Prepared:
    """An INSERT or UPDATE on one table, executed without Core's per-call work."""

    def __init__(self, stmt: UpdateBase, table: sa.Table) -> None:
        self._stmt = stmt
        self._table = table
        self._by_dialect: dict[str, _Rendered] = {}

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> int:
        """Run in ``conn``'s open transaction; the number of rows it changed."""
        dialect = conn.dialect
        rendered = self._by_dialect.get(dialect.name)
        if rendered is None:
            rendered = self._by_dialect[dialect.name] = _Rendered(self._stmt, self._table, dialect)
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.execute(rendered.sql, rendered.parameters(params))
        return int(cursor.rowcount)
