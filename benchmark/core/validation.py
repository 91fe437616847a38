"""Settings checked against their type hints when they are made: one line naming the setting, the value and what is
allowed. Ranges are jsonargparse's restricted types (`PositiveInt`, `PositiveFloat`, `NonNegativeFloat`, …), which
the command line checks too and `--help` shows."""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from typing import Any, Literal

from benchmark.core.errors import UnlearnBenchError


class SettingError(UnlearnBenchError):
    """A setting whose value its type hint does not allow."""


def allowed(annotation: type) -> str:
    """What a number type allows, in words: `PositiveInt` (jsonargparse's `v>0`) → "an integer > 0"."""
    kind = "an integer" if issubclass(annotation, int) else "a number"
    return f"{kind} {restriction_words(getattr(annotation, '_expression', ''))}".strip()


def restriction_words(expression: str) -> str:
    """jsonargparse's restriction `v>=0 and v<=1` as `≥ 0 and ≤ 1`."""
    for old, new in ((">=", " ≥ "), ("<=", " ≤ "), (">", " > "), ("<", " < "), ("v", "")):
        expression = expression.replace(old, new)
    return " ".join(expression.split())


def checked(where: str, annotation: Any, value: Any) -> Any:
    """`value` checked against `annotation` and coerced where that is unambiguous (`0` → `0.0` for a float,
    YAML's string `'1e-4'` → 1e-4); `SettingError` naming `where`, the value and what is allowed otherwise.
    Annotations other than numbers, strings, booleans, `Literal`s and their unions are left to their own checks
    (dataclass groups check their fields in `__post_init__`, see `check_fields`)."""
    origin, options = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return checked(where, option, value)
            except SettingError as error:
                errors.append(error)
        if errors and len(errors) == len([o for o in options if o is not type(None)]):
            raise errors[0]
        return value
    if origin is Literal:
        if value in options and not (isinstance(value, bool) and not any(isinstance(o, bool) for o in options)):
            return value
        raise SettingError(f"{where} = {value!r} is not allowed; one of: {', '.join(repr(o) for o in options)}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise SettingError(f"{where} = {value!r} is not allowed; true or false")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise SettingError(f"{where} = {value!r} is not allowed; a string")
    if isinstance(annotation, type) and issubclass(annotation, (int, float)) and not issubclass(annotation, bool):
        integer = issubclass(annotation, int)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (integer and isinstance(value, float) and not value.is_integer()):
            raise SettingError(f"{where} = {value!r} is not allowed; {allowed(annotation)}")
        try:
            number = annotation(int(float(value)) if integer and isinstance(value, str) and float(value).is_integer() else value)
        except (TypeError, ValueError):
            raise SettingError(f"{where} = {value!r} is not allowed; {allowed(annotation)}") from None
        return int(number) if integer else float(number)
    return value


def check_fields(instance: Any, prefix: str) -> None:
    """Check (and coerce) every field of a dataclass instance against its type hint (`checked`), in `__post_init__`."""
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        value = checked(f"{prefix}.{field.name}", hints.get(field.name, Any), getattr(instance, field.name))
        object.__setattr__(instance, field.name, value)


def differences(made: dict, asked: dict, prefix: str = "") -> list[str]:
    """`key: <value> there, <value> here` for every leaf that differs between two nested settings (dotted keys)."""
    out = []
    for key in sorted(set(made) | set(asked), key=str):
        a, b = made.get(key, "(unset)"), asked.get(key, "(unset)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {json.dumps(a)} there, {json.dumps(b)} here")
    return out


def with_value(init_args: dict, path: str, value: Any) -> dict:
    """A copy of `init_args` with `value` at the dotted `path` (`optimizer.init_args.lr`), the groups created as needed
    (a search space's dimension, a sweep's override)."""
    result = copy.deepcopy(init_args)
    node, keys = result, path.split(".")
    for key in keys[:-1]:
        if not isinstance(node.setdefault(key, {}), dict):
            raise UnlearnBenchError(f"'{path}': '{key}' is a value ({node[key]!r}), not a group of settings")
        node = node[key]
    node[keys[-1]] = value
    return result
