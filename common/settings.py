"""TOML config files for both programs: read, resolve ``env:`` secrets, validate, explain errors."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .i18n import _

__all__ = ["ConfigError", "load_settings", "parse_settings"]

M = TypeVar("M")


class ConfigError(Exception):
    """The config file is missing, unreadable or invalid. ``problems`` lists one line per issue."""

    def __init__(self, path: Path | str, problems: list[str], missing: bool = False) -> None:
        self.path = Path(path)
        self.problems = problems
        self.missing = missing
        super().__init__(f"{path}: " + "; ".join(problems))


def _resolve_env(value: Any, where: str, problems: list[str]) -> Any:
    """Replace ``"env:NAME"`` strings by the environment variable, so secrets stay out of files."""
    if isinstance(value, dict):
        return {
            k: _resolve_env(v, f"{where}.{k}" if where else k, problems) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_env(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            problems.append(
                _("{key}: environment variable {name} is not set").format(key=where, name=name)
            )
            return value
        return os.environ[name]
    return value


def _submodel(annotation: Any) -> Any:
    """The model class inside ``annotation`` (``Sub``, ``Sub | None``, ``list[Sub]``), if any."""
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
            return candidate
        inner = getattr(candidate, "__args__", ())
        for arg in inner:
            if isinstance(arg, type) and hasattr(arg, "model_fields"):
                return arg
    return None


def _allowed_keys(model: Any, loc: tuple[int | str, ...]) -> str:
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = None if field is None else _submodel(field.annotation)
        if model is None:
            return ""
    return ", ".join(model.model_fields)


def describe_errors(errors: list[Any], model: Any) -> list[str]:
    """One line per pydantic error (``ValidationError.errors()``): the key, then the fix."""
    problems = []
    for err in errors:
        loc = err["loc"]
        key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc)
        key = key.replace(".[", "[")
        kind = err["type"]
        if kind == "extra_forbidden":
            hint = _("unknown key (a typo?); allowed here: {allowed}").format(
                allowed=_allowed_keys(model, loc)
            )
        elif kind == "missing":
            hint = _("required; add it")
        else:
            hint = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{key or '(root)'}: {hint}")
    return problems


def parse_settings(
    text: str, validate: Callable[[dict[str, Any]], M], path: Path | str = "<config>"
) -> M:
    """Parse TOML ``text``, resolve ``env:`` values, then ``validate`` the dict.

    ``validate`` raises :class:`ConfigError` itself (it knows its model's error type)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [_("not valid TOML: {error}").format(error=exc)]) from exc
    problems: list[str] = []
    raw = _resolve_env(raw, "", problems)
    if problems:
        raise ConfigError(path, problems)
    return validate(raw)


def load_settings(path: Path, validate: Callable[[dict[str, Any]], M]) -> M:
    """Read and validate a config file; raise :class:`ConfigError` with the fix to make."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(path, [_("file not found")], missing=True) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            path, [_("cannot read: {error}").format(error=exc)], missing=True
        ) from exc
    return parse_settings(text, validate, path)
