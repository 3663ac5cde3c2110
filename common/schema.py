"""Config sections declared like frozen dataclasses, validated from a TOML dict, every error kept.

The station's config used pydantic for this; in the idle daemon pydantic cost ~10 MiB of RSS
(issue 18). This module does the part the config needs (numbers, text, booleans, choices,
sections, lists of sections, bounds, lengths, patterns, a check before and after a value, a check
of the whole section), in the standard library, and reports its errors as pydantic's
``ValidationError.errors()`` dicts (``type``, ``loc``, ``msg``, ``input``, ``ctx``), so
:func:`common.settings.describe_errors` words both the same way. As in pydantic's lax mode, a
number may come as text (an ``env:`` secret is text), but never a boolean as a number.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import (
    Annotated,
    Any,
    ClassVar,
    Literal,
    Self,
    TypeVar,
    Union,
    cast,
    dataclass_transform,
    get_args,
    get_origin,
)
from typing import get_type_hints as _hints

__all__ = ["After", "Before", "FrozenSectionError", "Rule", "SchemaError", "Section", "field"]


class Rule:
    """Bounds of a number, length of a text or list, pattern of a text (``Annotated`` extra).

    ``strict``: a whole number must be written as one (no ``"17"``, no ``17.0``)."""

    __slots__ = ("ge", "le", "max_length", "min_length", "pattern", "strict")

    def __init__(
        self,
        *,
        ge: float | None = None,
        le: float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        strict: bool = False,
    ) -> None:
        self.ge, self.le, self.pattern, self.strict = ge, le, pattern, strict
        self.min_length, self.max_length = min_length, max_length


class Before:
    """Runs on the value as the file gave it, before its type is checked (``Annotated`` extra);
    returns the value to check, or raises ValueError with the staff's words."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn


class After:
    """Runs on the checked value (``Annotated`` extra); returns it, or raises ValueError."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn


_NO_RULE = Rule()


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


T = TypeVar("T")


class _Factory:
    """A default made for each section (a list, a sub-section), as ``dataclasses.field``'s."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A key whose default is built for each section: ``field(default_factory=list)``."""
    made: T = cast(T, _Factory(default_factory))  # collected by Section.__init_subclass__
    return made


_REQUIRED: Any = object()


class FrozenSectionError(AttributeError):
    """A config section is read-only once validated (``model_copy`` makes a changed copy)."""


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Section:
    """A table of the config file, declared as a frozen, keyword-only dataclass is (type
    checkers read it as one), without a dataclass's generated code per class: a config has
    twenty sections, and the daemon's memory is what it loads (issue 18).

    Unknown keys are refused, text is stripped of surrounding spaces (``strip = False`` keeps
    them). ``check`` is the section's own rule, run once every key is valid. The ``model_*``
    names are pydantic's, so code and tests that build or copy a config read the same."""

    strip: ClassVar[bool] = True
    _defaults: ClassVar[dict[str, Any]] = {}  # each key: its default, a _Factory or _REQUIRED

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defaults = dict(cls._defaults)
        for name, annotation in inspect.get_annotations(cls).items():
            if "ClassVar" in str(annotation):
                continue
            default = cls.__dict__.get(name, _REQUIRED)
            if isinstance(default, _Factory):
                delattr(cls, name)
            defaults[name] = default
        cls._defaults = defaults

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self._defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown keys {sorted(unknown)}")
        for name, default in self._defaults.items():
            if name in values:
                value = values[name]
            elif default is _REQUIRED:
                raise TypeError(f"{type(self).__name__}: {name} is required")
            else:
                value = default.make() if isinstance(default, _Factory) else default
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenSectionError(f"cannot assign to {type(self).__name__}.{name}")

    def __delattr__(self, name: str) -> None:
        raise FrozenSectionError(f"cannot delete {type(self).__name__}.{name}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._defaults)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Section)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        keys = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._defaults)
        return f"{type(self).__name__}({keys})"

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
        return {name: hints[name] for name in cls._defaults}

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with some keys replaced (not validated, as pydantic's)."""
        values = {name: getattr(self, name) for name in self._defaults}
        return type(self)(**{**values, **(update or {})})

    def model_dump(self) -> dict[str, Any]:
        """The keys and values, sections and lists of them as dicts and lists."""
        return {name: _dumped(getattr(self, name)) for name in self._defaults}


def _dumped(value: Any) -> Any:
    if isinstance(value, Section):
        return value.model_dump()
    if isinstance(value, list):
        return [_dumped(v) for v in value]
    return value


_PLANS: dict[type[Section], list[tuple[str, Any, bool]]] = {}


def _plan(cls: type[Section]) -> list[tuple[str, Any, bool]]:
    """(key, type with its rules, required) for each field, resolved once per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = _hints(cls, include_extras=True)
        plan = [
            (name, hints[name], default is _REQUIRED) for name, default in cls._defaults.items()
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
    rule = next((r for r in rules if isinstance(r, Rule)), _NO_RULE)
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
