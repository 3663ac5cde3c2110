"""The registry the office publishes to stations (categories, referrers, patterns), by scope."""

from __future__ import annotations

import json

from sync.wire import Registry

from .dialect import Dialect
from .models import utc_now

__all__ = ["Registries"]


class Registries:
    """One registry per scope: ``all`` or a station's name."""

    def __init__(self, db: Dialect) -> None:
        self.db = db

    def set(self, registry: Registry, station: str = "all") -> None:
        body = {
            "version": registry.version,
            "categories": list(registry.categories),
            "referrers": list(registry.referrers),
            "beneficiary_patterns": list(registry.beneficiary_patterns),
            **registry.extra,
        }
        self.db.atomic(
            lambda: self.db.exec(
                "INSERT INTO registry (scope, version, body, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope) DO UPDATE SET version = excluded.version, "
                "body = excluded.body, updated_at = excluded.updated_at",
                (station, registry.version, json.dumps(body, ensure_ascii=False), utc_now()),
            )
        )

    def all(self) -> dict[str, Registry]:
        out = {}
        for row in self.db.fetch("SELECT scope, body FROM registry ORDER BY scope"):
            body = json.loads(row["body"])
            out[row["scope"]] = Registry(
                body.pop("version"),
                tuple(body.pop("categories", [])),
                tuple(body.pop("referrers", [])),
                tuple(body.pop("beneficiary_patterns", [])),
                body,
            )
        return out

    def version(self) -> int:
        rows = self.db.fetch("SELECT max(version) AS v FROM registry")
        return int(rows[0]["v"] or 0)
