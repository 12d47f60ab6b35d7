"""Checking recipe values against type hints and signatures, with the key path in every message.

Shared by the recipe schema (fixed sections are dataclasses) and by component sections (arguments are
checked against the registered function's or class's signature). Unknown keys come with the closest
valid key; wrong types name the expected type.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import re
import types
import typing
from typing import Any, Literal, Union

def closest(key: str, options: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(key, list(options), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


#: YAML 1.1 spellings of booleans, for Literal choices such as ``mixed_precision: no``
_YAML_BOOL_WORDS = {False: ("no", "false", "off", "n"), True: ("yes", "true", "on", "y")}
#: exponent floats without a dot, which YAML 1.1 reads as strings (``1e4``)
_EXP_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def _literal_match(value: Any, choices: tuple) -> tuple[bool, Any]:
    """(matched, value as the choice spells it). ``no``/``yes`` (booleans in YAML 1.1) match the
    string choices ``"no"``/``"yes"``; a choice written ``"prefix_[what]"`` matches ``prefix_...``."""
    for choice in choices:
        if type(choice) is type(value) and choice == value:
            return True, value
    if isinstance(value, bool):
        for word in _YAML_BOOL_WORDS[value]:
            if word in choices:
                return True, word
    if isinstance(value, str):
        for choice in choices:
            if isinstance(choice, str) and "[" in choice and value.startswith(choice.split("[", 1)[0]) \
                    and len(value) > len(choice.split("[", 1)[0]):
                return True, value
    return False, value


def check_value(value: Any, hint: Any, path: str, errors: list[str]) -> Any:
    """Check ``value`` against a type hint; return it coerced (``"3e-4"`` → 3e-4 for floats, YAML
    1.1 reads exponent floats without a dot as strings). Appends messages to ``errors``."""
    if hint is Any or hint is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner: list[str] | None = None
        for option in args:
            if option is type(None):
                continue
            attempt: list[str] = []
            out = check_value(value, option, path, attempt)
            if not attempt:
                return out
            if inner is None and all(e.startswith((f"{path}[", f"{path}.")) for e in attempt):
                inner = attempt  # the container matched this option, some items did not: name them
        if inner:
            errors.extend(inner)
        else:
            errors.append(f"{path}: expected {type_name(hint)}, got {value!r} ({type(value).__name__})")
        return value
    if origin is Literal:
        ok, out = _literal_match(value, args)
        if not ok:
            errors.append(f"{path}: expected one of {list(args)}, got {value!r}{closest(str(value), map(str, args))}")
        return out
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple):
        if isinstance(value, (list, tuple)):
            if origin is tuple and args and args[-1] is not Ellipsis:
                if len(value) != len(args):
                    errors.append(f"{path}: expected {len(args)} items, got {len(value)}")
                    return value
                return tuple(check_value(v, a, f"{path}[{i}]", errors) for i, (v, a) in enumerate(zip(value, args)))
            item = args[0] if args else Any
            out = [check_value(v, item, f"{path}[{i}]", errors) for i, v in enumerate(value)]
            return tuple(out) if origin is tuple else out
        errors.append(f"{path}: expected a list, got {value!r} ({type(value).__name__})")
        return value
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {value!r} ({type(value).__name__})")
        return value
    if dataclasses.is_dataclass(hint):
        return validate_dataclass(hint, value, path, errors)
    if hint is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true/false, got {value!r} ({type(value).__name__})")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and _EXP_NUMBER.fullmatch(value.strip()):
                value = float(value)  # ``max_steps: 1e4``
            if isinstance(value, float) and value.is_integer():
                return int(value)
            errors.append(f"{path}: expected an integer, got {value!r} ({type(value).__name__})")
        return value
    if hint is float:
        if isinstance(value, bool):
            errors.append(f"{path}: expected a number, got {value!r}")
            return value
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        errors.append(f"{path}: expected a number, got {value!r} ({type(value).__name__})")
        return value
    if hint is str:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {value!r} ({type(value).__name__})")
        return value
    if value is None and hint is type(None):
        return None
    if isinstance(hint, type) and not isinstance(value, hint):
        errors.append(f"{path}: expected {type_name(hint)}, got {value!r} ({type(value).__name__})")
    return value


def validate_dataclass(cls: type, data: Any, path: str, errors: list[str]):
    """Build ``cls`` from a mapping, checking every key and value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(f"{path or 'recipe'}: expected a mapping, got {data!r} ({type(data).__name__})")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in fields:
            errors.append(f"{sub}: unknown key{closest(str(key), fields)}")
            continue
        kwargs[key] = check_value(value, hints[key], sub, errors)
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if name not in data:
                errors.append(f"{path + '.' if path else ''}{name}: missing required key")
    try:
        return cls(**kwargs)
    except TypeError:
        return None


def check_args(target, args: dict, path: str, errors: list[str], runner_args: tuple[str, ...] = ()) -> dict:
    """Check recipe arguments against ``target``'s signature and type hints (``runner_args``: parameters
    the runner fills, never recipe keys); return them coerced."""
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that cannot be evaluated: skip type checks, keep name checks
        hints = {}
    params = {n: p for n, p in sig.parameters.items() if n not in runner_args and n != "self"}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    out = {}
    for key, value in args.items():
        sub = f"{path}.{key}"
        if key in runner_args:
            errors.append(f"{sub}: set by the runner, not the recipe")
            continue
        if key not in named:
            if not accepts_any:
                errors.append(f"{sub}: unknown key{closest(str(key), named)}")
            out[key] = value
            continue
        out[key] = check_value(value, hints.get(key, typing.Any), sub, errors)
    for n, p in named.items():
        if p.default is inspect.Parameter.empty and n not in args:
            errors.append(f"{path}.{n}: missing required key")
    return out
