"""A chart's numbers as a plain table: what the page plots, the API returns and the CSV holds."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def as_records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buffer.getvalue()

    @property
    def is_empty(self) -> bool:
        return not self.rows
