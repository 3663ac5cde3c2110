"""TOML config files for both programs: read, resolve ``env:`` secrets, validate, explain errors."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .i18n import _

__all__ = [
    "PATTERN_HINTS",
    "ConfigError",
    "describe_errors",
    "load_settings",
    "parse_settings",
    "read_settings_text",
]

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


def _fields(model: Any) -> dict[str, Any]:
    """A model's keys and their types: a pydantic model's (the ledger) or a
    :class:`common.schema.Section`'s (the station)."""
    if hasattr(model, "schema_fields"):
        fields: dict[str, Any] = model.schema_fields()
        return fields
    if hasattr(model, "model_fields"):
        return {name: f.annotation for name, f in model.model_fields.items()}
    return {}


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and (
        hasattr(candidate, "schema_fields") or hasattr(candidate, "model_fields")
    )


def _submodel(annotation: Any) -> Any:
    """The model class inside ``annotation`` (``Sub``, ``Sub | None``, ``list[Sub]``), if any."""
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if _is_model(candidate):
            return candidate
        inner = getattr(candidate, "__args__", ())
        for arg in inner:
            if _is_model(arg):
                return arg
    return None


def _section_kind(model: Any, loc: tuple[int | str, ...]) -> str:
    """``"table"`` when ``loc`` names a section, ``"array"`` for a list of them, else ``""``."""
    annotation = None
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = None if model is None else _fields(model).get(part)
        model = None if annotation is None else _submodel(annotation)
    if model is None:
        return ""
    return "array" if getattr(annotation, "__origin__", None) is list else "table"


def _allowed_keys(model: Any, loc: tuple[int | str, ...]) -> str:
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = _fields(model).get(part)
        model = None if annotation is None else _submodel(annotation)
        if model is None:
            return ""
    return ", ".join(_fields(model))


def _choices(expected: str) -> str:
    """pydantic's ``"'N', 'E' or 'O'"`` (English) → ``N | E | O``."""
    items = re.findall(r"'((?:[^'\\]|\\.)*)'", expected)
    if not items:
        items = [part for part in re.split(r",\s*|\s+or\s+", expected) if part]
    return " | ".join(items)


def _shown(value: Any) -> str:
    """The value as the file wrote it, short: ``"vite"``, ``40``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:39] + "…"
        return f'"{text}"'
    if isinstance(value, (dict, list)):
        return _("a section") if isinstance(value, dict) else _("a list")
    return str(value)


def _bound(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# What each pattern of our models accepts, in words (pydantic would print the regex itself).
PATTERN_HINTS: dict[str, Callable[[], str]] = {
    r"^[a-z0-9][a-z0-9_-]{0,63}$": lambda: _(
        "lower-case letters without accents, digits, - and _ only, starting with a letter or a "
        'digit, 64 at most (e.g. "ressourcerie-nord-1")'
    ),
    r"^[\x21-\x7e]+$": lambda: _(
        "a code as the scanner reads it: letters without accents, digits and signs, no spaces"
    ),
    r"^[A-Za-z0-9_/-]{1,128}$": lambda: _("letters without accents, digits, _, - and / only"),
    r"^[A-Za-z0-9_-]{1,64}$": lambda: _("letters without accents, digits, _ and - only"),
    r"^[A-Za-z0-9_.@-]{1,64}$": lambda: _("letters without accents, digits, _, ., @ and - only"),
    r"^[a-z0-9_-]{1,40}$": lambda: _(
        "lower-case letters without accents, digits, _ and - only (40 at most)"
    ),
    r"^[a-z0-9_]{1,40}$": lambda: _(
        "lower-case letters without accents, digits and _ only (40 at most)"
    ),
    r"^scrypt\$": lambda: _("a password hash made by `ledger passwd NAME` (never the password)"),
}


def _hint(err: Any, model: Any, loc: tuple[Any, ...]) -> str:
    """One error (pydantic's or common.schema's), in the current language: what is wrong, then
    the fix."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    given = _shown(err.get("input"))
    leaf = str(next((p for p in reversed(loc) if isinstance(p, str)), ""))
    if kind == "extra_forbidden":
        return _("unknown key (a typo?); allowed here: {allowed}").format(
            allowed=_allowed_keys(model, loc)
        )
    if kind == "missing":
        section = _section_kind(model, loc)
        if section == "array":
            return _("no [[{name}]] entry: add at least one, as in the example config").format(
                name=leaf
            )
        if section == "table":
            return _("the [{name}] section is missing: add it, as in the example config").format(
                name=leaf
            )
        return _("required: add {name} = …, as in the example config").format(name=leaf)
    if kind in ("float_type", "float_parsing", "decimal_parsing", "decimal_type"):
        return _("{given} is not a number: write a number without quotes, e.g. 0.5").format(
            given=given
        )
    if kind in ("int_type", "int_parsing") and isinstance(err.get("input"), str):
        return _("{given} is not a whole number: write it without quotes, e.g. 17").format(
            given=given
        )
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _("{given} is not a whole number: write it without decimals, e.g. 17").format(
            given=given
        )
    if kind in ("bool_type", "bool_parsing"):
        return _("{given} is not true or false: write true or false, without quotes").format(
            given=given
        )
    if kind == "string_type":
        value = err.get("input")
        value = "…" if isinstance(value, (dict, list)) else given.strip('"')
        return _('{given} is not text: write it between double quotes, e.g. "{value}"').format(
            given=given, value=value
        )
    if kind in ("greater_than_equal", "greater_than"):
        key = "ge" if kind == "greater_than_equal" else "gt"
        text = (
            _("{given} is too small: at least {bound}")
            if key == "ge"
            else _("{given} is too small: above {bound}")
        )
        return text.format(given=given, bound=_bound(ctx.get(key)))
    if kind in ("less_than_equal", "less_than"):
        key = "le" if kind == "less_than_equal" else "lt"
        text = (
            _("{given} is too large: at most {bound}")
            if key == "le"
            else _("{given} is too large: below {bound}")
        )
        return text.format(given=given, bound=_bound(ctx.get(key)))
    if kind == "string_pattern_mismatch":
        describe = PATTERN_HINTS.get(str(ctx.get("pattern")))
        allowed = describe() if describe else _("see the example config for the expected form")
        return _("{given} does not have the expected form: {allowed}").format(
            given=given, allowed=allowed
        )
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return _("empty: write a value between the quotes")
        return _("too short: {n} characters at least").format(n=ctx.get("min_length"))
    if kind == "string_too_long":
        return _("too long: {n} characters at most").format(n=ctx.get("max_length"))
    if kind == "too_short":
        return _("at least {n} needed: add one").format(n=ctx.get("min_length"))
    if kind == "too_long":
        return _("too many: {n} at most").format(n=ctx.get("max_length"))
    if kind in ("literal_error", "enum"):
        return _("{given} is not one of the choices: write one of {choices}").format(
            given=given, choices=_choices(str(ctx.get("expected", "")))
        )
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _("{given} where a section is expected: write it as [{leaf}] with its keys").format(
            given=given, leaf=leaf or "…"
        )
    if kind == "list_type":
        return _("{given} where a list is expected: one [[{leaf}]] block per entry").format(
            given=given, leaf=leaf or "…"
        )
    if kind == "none_required":
        return _("{given} is not valid here").format(given=given)
    # our own validators' words (already translated): drop pydantic's English prefix
    return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def describe_errors(errors: list[Any], model: Any) -> list[str]:
    """One line per mistake (``errors()`` of pydantic's ValidationError or of
    :class:`common.schema.SchemaError`): the key, what is wrong, the fix.

    Translated by the error's ``type`` (pydantic's own messages are English); a value that two
    types of a union both refuse is one line, not one per type tried."""
    problems: list[str] = []
    seen: set[str] = set()
    for err in errors:
        loc = tuple(p for p in err["loc"] if isinstance(p, int) or not _union_member(p))
        key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc)
        key = key.replace(".[", "[") or _("(the whole file)")
        if key in seen:
            continue
        seen.add(key)
        problems.append(_("{key}: {problem}").format(key=key, problem=_hint(err, model, loc)))
    return problems


def _union_member(part: str) -> bool:
    """pydantic names the union member tried in ``loc`` (``int``, ``constrained-str``…)."""
    return (
        part in ("int", "float", "str", "bool", "none", "list", "dict")
        or "[" in part
        or (part.startswith(("constrained-", "function-", "lax-", "strict-")))
    )


_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")
_DECIMAL_COMMA = re.compile(r"=\s*[-+]?\d+,\d")


def _toml_problem(exc: tomllib.TOMLDecodeError, text: str) -> str:
    """tomllib's English error → one line: where (line and what it says), what is wrong, the fix."""
    message = str(exc)
    where = _TOML_WHERE.search(message)
    reason = _TOML_WHERE.sub("", message)
    lines = text.splitlines()
    if where and where.group(1):
        lineno = int(where.group(1))
    else:  # "at end of document": the last line that says something
        lineno = max((i for i, t in enumerate(lines, 1) if t.strip()), default=1)
    line = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
    comment = re.match(r"^((?:[^\"'#]|\"[^\"]*\"|'[^']*')*?)\s+#", line)
    line = comment.group(1) if comment else line  # the trailing comment says nothing here
    if _DECIMAL_COMMA.search(line.split("#", 1)[0]):
        fix = _(
            "a decimal comma: TOML numbers take a dot (0.5); a mass is text with its unit "
            '("0,5 kg")'
        )
    elif reason.startswith("Expected newline or end of document"):
        fix = _("something follows the value on the same line: one key = value per line")
    elif reason.startswith("Invalid value"):
        fix = _('the value is missing or not valid: text goes between double quotes ("…")')
    elif reason.startswith(
        ("Unterminated string", 'Expected "\'"', "Expected '\"'", "Illegal character '\\n'")
    ):
        fix = _("a text value is not closed: add the closing quote")
    elif reason.startswith(("Cannot overwrite a value", "Cannot declare")):
        fix = _("a key or a section is written twice: keep one")
    elif reason.startswith("Expected ']'"):
        fix = _("a section header is not closed: write it as [name]")
    elif reason.startswith("Unescaped '\\'"):
        fix = _(
            "a backslash in double quotes: write a regex between single quotes ('…') "
            "or double each backslash"
        )
    elif reason.startswith(("Unclosed array", "Unclosed inline table")):
        fix = _("a list or an inline table is not closed: add the closing ] or }")
    elif reason.startswith(("Invalid statement", "Invalid initial character", "Expected '='")):
        fix = _("not a key = value line: fix it, or comment it out with #")
    else:
        fix = _("TOML syntax error ({error})").format(error=reason)
    if line:
        return _("line {n} ({line}): {problem}").format(n=lineno, line=line, problem=fix)
    return _("line {n}: {problem}").format(n=lineno, problem=fix)


def parse_settings(
    text: str, validate: Callable[[dict[str, Any]], M], path: Path | str = "<config>"
) -> M:
    """Parse TOML ``text``, resolve ``env:`` values, then ``validate`` the dict.

    ``validate`` raises :class:`ConfigError` itself (it knows its model's error type)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [_toml_problem(exc, text)]) from exc
    problems: list[str] = []
    raw = _resolve_env(raw, "", problems)
    if problems:
        raise ConfigError(path, problems)
    return validate(raw)


def read_settings_text(path: Path) -> str:
    """A config file's text; :class:`ConfigError` (``missing``) when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(path, [_("file not found")], missing=True) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            path, [_("cannot read: {error}").format(error=exc)], missing=True
        ) from exc


def load_settings(path: Path, validate: Callable[[dict[str, Any]], M]) -> M:
    """Read and validate a config file; raise :class:`ConfigError` with the fix to make."""
    return parse_settings(read_settings_text(path), validate, path)
