"""Config sections as frozen dataclasses, validated from a TOML dict with every error collected.

The station's config used pydantic for this; in the idle daemon pydantic cost ~10 MiB of RSS
(issue 18). This module does the part the config needs (numbers, text, booleans, choices,
sections, lists of sections, bounds, lengths, patterns, a check before and after a value, a check
of the whole section), in the standard library, and reports its errors as pydantic's
``ValidationError.errors()`` dicts (``type``, ``loc``, ``msg``, ``input``, ``ctx``), so
:func:`common.settings.describe_errors` words both the same way. As in pydantic's lax mode, a
number may come as text (an ``env:`` secret is text), but never a boolean as a number.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, Union, get_args, get_origin
from typing import get_type_hints as _hints

__all__ = ["After", "Before", "Rule", "SchemaError", "Section"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """Bounds of a number, length of a text or list, pattern of a text (``Annotated`` extra).

    ``strict``: a whole number must be written as one (no ``"17"``, no ``17.0``)."""

    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    strict: bool = False


@dataclasses.dataclass(frozen=True)
class Before:
    """Runs on the value as the file gave it, before its type is checked (``Annotated`` extra);
    returns the value to check, or raises ValueError with the staff's words."""

    fn: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class After:
    """Runs on the checked value (``Annotated`` extra); returns it, or raises ValueError."""

    fn: Callable[[Any], Any]


class SchemaError(ValueError):
    """The dict does not fit the section: ``errors()`` lists every mistake, as pydantic does."""

    def __init__(self, model: type[Section], errors: list[dict[str, Any]]) -> None:
        self.model = model
        self._errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))

    def errors(self) -> list[dict[str, Any]]:
        return list(self._errors)


Loc = tuple[int | str, ...]
_BAD: Any = object()  # a value that failed (its error is recorded)
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class Section:
    """A table of the config file; subclasses are ``@dataclass(frozen=True, kw_only=True)``.

    Unknown keys are refused, text is stripped of surrounding spaces (``strip = False`` keeps
    them). ``check`` is the section's own rule, run once every key is valid. The ``model_*``
    names are pydantic's, so code and tests that build or copy a config read the same."""

    strip: ClassVar[bool] = True

    def check(self) -> None:
        """Raise ValueError (the staff's words) when the keys are valid but do not fit together."""

    @classmethod
    def model_validate(cls, raw: Any) -> Self:
        """The section read from ``raw``; :class:`SchemaError` lists every mistake."""
        errors: list[dict[str, Any]] = []
        value = _section(cls, raw, (), errors)
        if errors:
            raise SchemaError(cls, errors)
        assert isinstance(value, cls)
        return value

    @classmethod
    def schema_fields(cls) -> dict[str, Any]:
        """Each key and its type (without the ``Annotated`` rules), for error messages."""
        hints = _hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(_dc(cls))}

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with some keys replaced (not validated, as pydantic's)."""
        copy: Self = dataclasses.replace(_dc(self), **(update or {}))
        return copy

    def model_dump(self) -> dict[str, Any]:
        return dataclasses.asdict(_dc(self))


def _dc(obj: Any) -> Any:
    """``obj`` as mypy sees a dataclass (subclasses of Section are; the base is not)."""
    return obj


_PLANS: dict[type[Section], list[tuple[str, Any, bool]]] = {}


def _plan(cls: type[Section]) -> list[tuple[str, Any, bool]]:
    """(key, type with its rules, required) for each field, resolved once per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = _hints(cls, include_extras=True)
        plan = [
            (
                f.name,
                hints[f.name],
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(_dc(cls))
        ]
        _PLANS[cls] = plan
    return plan


def _error(
    errors: list[dict[str, Any]], kind: str, loc: Loc, given: Any, msg: str = "", **ctx: Any
) -> Any:
    errors.append({"type": kind, "loc": loc, "msg": msg or kind, "input": given, "ctx": ctx})
    return _BAD


def _section(cls: type[Section], raw: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    if not isinstance(raw, dict):
        return _error(errors, "model_type", loc, raw)
    before = len(errors)
    values: dict[str, Any] = {}
    plan = _plan(cls)
    for name, hint, required in plan:
        if name in raw:
            values[name] = _value(hint, raw[name], (*loc, name), errors, cls.strip)
        elif required:
            _error(errors, "missing", (*loc, name), raw)
    known = {name for name, _hint, _required in plan}
    for key in raw:
        if key not in known:
            _error(errors, "extra_forbidden", (*loc, key), raw[key])
    if len(errors) > before:
        return _BAD
    section = cls(**values)
    try:
        section.check()
    except (ValueError, AssertionError) as exc:
        return _error(errors, "value_error", loc, raw, str(exc))
    return section


def _value(hint: Any, given: Any, loc: Loc, errors: list[dict[str, Any]], strip: bool) -> Any:
    """``given`` checked against ``hint``; ``_BAD`` (and its errors recorded) when it fails."""
    rules: tuple[Any, ...] = ()
    if get_origin(hint) is Annotated:
        hint, *extras = get_args(hint)
        rules = tuple(extras)
    value = given
    for step in rules:
        if isinstance(step, Before):
            try:
                value = step.fn(value)
            except (ValueError, AssertionError) as exc:
                return _error(errors, "value_error", loc, given, str(exc))
    rule = next((r for r in rules if isinstance(r, Rule)), Rule())
    value = _typed(hint, value, loc, errors, strip, rule)
    if value is _BAD:
        return _BAD
    if not _within(rule, value, given, loc, errors):
        return _BAD
    for step in rules:
        if isinstance(step, After):
            try:
                value = step.fn(value)
            except (ValueError, AssertionError) as exc:
                return _error(errors, "value_error", loc, value, str(exc))
    return value


def _typed(
    hint: Any, value: Any, loc: Loc, errors: list[dict[str, Any]], strip: bool, rule: Rule
) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(hint) if a is not type(None)]
        if value is None and len(members) < len(get_args(hint)):
            return None
        if len(members) != 1:
            raise TypeError(f"{hint}: one type besides None is supported")
        return _value(members[0], value, loc, errors, strip)
    if origin is Literal:
        return _choice(get_args(hint), value, loc, errors)
    if origin is list:
        if not isinstance(value, list):
            return _error(errors, "list_type", loc, value)
        (item,) = get_args(hint)
        items = [_value(item, v, (*loc, i), errors, strip) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in items) else items
    if isinstance(hint, type) and issubclass(hint, Section):
        return _section(hint, value, loc, errors)
    if hint is bool:
        return _boolean(value, loc, errors)
    if hint is int:
        return _whole(value, loc, errors, rule.strict)
    if hint is float:
        return _number(value, loc, errors)
    if hint is str or hint is Path:
        if not isinstance(value, str):
            return _error(errors, "string_type", loc, value)
        text = value.strip() if strip else value
        return Path(text) if hint is Path else text
    raise TypeError(f"{hint}: not a config type")


def _choice(choices: tuple[Any, ...], value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
        if isinstance(choice, int) and isinstance(value, str) and value.strip() == str(choice):
            return choice  # an ``env:`` value is text
    shown = [repr(c) for c in choices]
    expected = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return _error(errors, "literal_error", loc, value, expected=expected)


def _boolean(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        return _error(errors, "bool_parsing", loc, value)
    if type(value) is int and value in (0, 1):
        return bool(value)
    return _error(errors, "bool_type", loc, value)


def _whole(value: Any, loc: Loc, errors: list[dict[str, Any]], strict: bool) -> Any:
    if type(value) is int:
        return value
    if strict or isinstance(value, bool):
        return _error(errors, "int_type", loc, value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        return _error(errors, "int_from_float", loc, value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return _error(errors, "int_parsing", loc, value)
    return _error(errors, "int_type", loc, value)


def _number(value: Any, loc: Loc, errors: list[dict[str, Any]]) -> Any:
    if isinstance(value, bool):
        return _error(errors, "float_type", loc, value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return _error(errors, "float_parsing", loc, value)
    return _error(errors, "float_type", loc, value)


def _within(rule: Rule, value: Any, given: Any, loc: Loc, errors: list[dict[str, Any]]) -> bool:
    """The rule's bounds, lengths and pattern; False (and the error recorded) when outside."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if rule.ge is not None and not value >= rule.ge:
            _error(errors, "greater_than_equal", loc, given, ge=rule.ge)
            return False
        if rule.le is not None and not value <= rule.le:
            _error(errors, "less_than_equal", loc, given, le=rule.le)
            return False
    if isinstance(value, (str, list)):
        text = isinstance(value, str)
        if rule.min_length is not None and len(value) < rule.min_length:
            kind = "string_too_short" if text else "too_short"
            _error(errors, kind, loc, given, min_length=rule.min_length)
            return False
        if rule.max_length is not None and len(value) > rule.max_length:
            kind = "string_too_long" if text else "too_long"
            _error(errors, kind, loc, given, max_length=rule.max_length)
            return False
    if isinstance(value, str) and rule.pattern is not None and not re.search(rule.pattern, value):
        _error(errors, "string_pattern_mismatch", loc, given, pattern=rule.pattern)
        return False
    return True
