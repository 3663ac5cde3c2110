"""The office's registry at the station: validate, apply over the config, keep the last good."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any, Protocol

from common.i18n import _
from common.schema import SchemaError
from common.settings import describe_errors
from sync.wire import Registry, WireError, decode_registry

from .config import BeneficiaryPattern, Category, Config, Profile, Referrer

__all__ = ["RegistryBook"]


class _Item(Protocol):
    @property
    def code(self) -> str: ...


log = logging.getLogger("station")


def _merged(
    own: Sequence[_Item], given: Sequence[dict[str, Any]], retired: Sequence[str], model: Any
) -> list[Any]:
    """The station's own list with the office's items merged by code: an office item replaces
    the station's of the same code or is added at the end; a code goes only when the office
    retired it. Sheets already at the counter keep working after a registry arrives."""
    items: dict[str, Any] = {item.code: item for item in own}
    for raw in given:
        item = model.model_validate(raw)
        items[item.code] = item
    gone = set(retired)
    return [item for code, item in items.items() if code not in gone]


def _apply(base: Config, registry: Registry) -> Config:
    """``base`` with the registry's categories, referrers and profiles merged by code over its
    own, and its beneficiary patterns (when given) in place of the config's.

    Each item is validated as if it were in the config file, and codes must stay unique."""
    retired_raw = registry.extra.get("retired")
    retired: dict[str, list[str]] = retired_raw if isinstance(retired_raw, dict) else {}
    update: dict[str, Any] = {}
    lists: list[tuple[str, Sequence[_Item], Sequence[dict[str, Any]], Any]] = [
        ("categories", base.categories, registry.categories, Category),
        ("referrers", base.referrers, registry.referrers, Referrer),
        ("profiles", base.profiles, registry.extra.get("profiles") or (), Profile),
    ]
    for key, own, given, model in lists:
        gone = [str(c) for c in retired.get(key) or ()]
        if given or gone:
            update[key] = _merged(own, given, gone, model)
    if registry.beneficiary_patterns:
        patterns = [BeneficiaryPattern.model_validate(p) for p in registry.beneficiary_patterns]
        update["codes"] = base.codes.model_copy(update={"beneficiary": patterns})
    config = base.model_copy(update=update)
    config.check_codes()
    return config


class RegistryBook:
    """The registries received (``all`` and this station's own, which wins), persisted in
    ``data_dir/registry.json`` so a restart without network keeps the office's lists."""

    def __init__(self, base: Config) -> None:
        self.base = base
        self.path = base.station.data_dir / "registry.json"
        self._payloads: dict[str, str] = {}
        self.applied: dict[str, int] = {}

    def load(self) -> Config:
        """The config to start with: the base one with the persisted registries applied."""
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self.base
        except (OSError, ValueError) as exc:
            log.warning(_("ignoring unreadable %s: %s"), self.path, exc)
            return self.base
        config = self.base
        for scope in ("all", "station"):
            if isinstance(saved, dict) and isinstance(saved.get(scope), str):
                config = self.receive(scope, saved[scope].encode(), persist=False) or config
        return config

    def rebase(self, base: Config) -> Config:
        """A new base config (SIGHUP): the registries received still apply on top of it."""
        self.base = base
        try:
            config = base
            for name in ("all", "station"):
                if name in self._payloads:
                    config = _apply(config, decode_registry(self._payloads[name].encode()))
            return config
        except (ValueError, WireError) as exc:  # SchemaError is a ValueError
            log.warning(_("registry no longer fits the configuration (%s): not applied"), exc)
            return base

    def receive(self, scope: str, payload: bytes, persist: bool = True) -> Config | None:
        """Validate and apply a registry; None (and a log line) when it must be ignored."""
        try:
            registry = decode_registry(payload)
        except WireError as exc:
            log.warning(_("registry refused (%s): keeping the current lists"), exc.reason)
            return None
        if registry.version <= self.applied.get(scope, 0):
            return None
        others = {k: v for k, v in self._registries().items() if k != scope}
        others[scope] = registry
        try:
            config = self.base
            for name in ("all", "station"):  # the station's own registry is applied last
                if name in others:
                    config = _apply(config, others[name])
        except ValueError as exc:  # SchemaError too: an item that would not pass in the file
            reason = (
                "; ".join(describe_errors(exc.errors(), exc.model)[:3])
                if isinstance(exc, SchemaError)
                else str(exc)
            )
            log.warning(
                _("registry version %d refused (%s): keeping the current lists"),
                registry.version,
                reason,
            )
            return None
        self.applied[scope] = registry.version
        self._payloads[scope] = payload.decode()
        if persist:
            self._save()
        log.info(
            _("registry version %d applied: %d categories"),
            registry.version,
            len(config.categories),
        )
        return config

    def _registries(self) -> dict[str, Registry]:
        return {k: decode_registry(v.encode()) for k, v in self._payloads.items()}

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self._payloads, ensure_ascii=False), encoding="utf-8")
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            tmp.replace(self.path)
        except OSError as exc:
            log.warning(_("cannot save the registry: %s"), exc)
