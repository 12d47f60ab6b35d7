"""Read a recipe: YAML (safe_load) → ``extends`` chain → dotted CLI overrides → ``${...}`` interpolation.

The result is a plain nested ``dict``; :mod:`harness.config.schema` validates it. Nothing here
imports models or touches data.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from harness.errors import RecipeError

_INTERP = re.compile(r"\$\{([^}]+)\}")

#: values a recipe may hold once its aliases (``*name``) are expanded: a recipe has hundreds; a 500-byte
#: "billion laughs" document, built from aliases of aliases, expands to billions
MAX_EXPANDED_NODES = 100_000


def _expanded_size(node, memo: dict) -> int:
    """How many values ``node`` stands for once every alias in it is copied out (shared nodes counted once
    per use, computed once each)."""
    key = id(node)
    if key not in memo:
        memo[key] = 0  # a node that contains itself is counted once
        children = node.value if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) else ()
        flat = [n for pair in children for n in pair] if isinstance(node, yaml.MappingNode) else list(children)
        memo[key] = 1 + sum(_expanded_size(child, memo) for child in flat)
    return memo[key]


class _RecipeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML would keep the last one
    silently) and a document that expands past :data:`MAX_EXPANDED_NODES` values through its aliases (an
    alias bomb)."""

    def compose_document(self):
        node = super().compose_document()
        if node is not None:
            size = _expanded_size(node, {})
            if size > MAX_EXPANDED_NODES:
                raise yaml.constructor.ConstructorError(
                    None, None, f"its aliases (*name) expand it to {size:,} values (limit {MAX_EXPANDED_NODES:,}): "
                    "refused as an alias bomb", node.start_mark)
        return node

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: construct_mapping reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (lines {first} and "
                    f"{key_node.start_mark.line + 1}); YAML would silently keep the second", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise RecipeError(f"{path}: is a folder, not a recipe file")
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_RecipeLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        place = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise RecipeError(f"{place}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise RecipeError(f"{path}:{line}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise RecipeError(f"{path}: cannot be read: {e.strerror or e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` wins; mappings merge key by key. A component section whose ``component``
    changes is replaced whole (the base's arguments belong to the other component)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if "component" in value and value.get("component") != old.get("component"):
                out[key] = copy.deepcopy(value)
            else:
                out[key] = deep_merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_with_extends(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise RecipeError(f"{path}: 'extends' forms a cycle: {chain}")
    data = read_yaml(path)
    bases = data.pop("extends", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise RecipeError(f"{path}: 'extends' must be a path or a list of paths, got {bases!r}")
    merged: dict = {}
    for base in bases:
        base_path = (path.parent / base) if not os.path.isabs(base) else Path(base)
        if not base_path.is_file():
            raise RecipeError(f"{path}: extends: base recipe not found: {base_path}")
        merged = deep_merge(merged, load_with_extends(base_path, (*_seen, path)))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``training.lr=3e-4`` → (["training", "lr"], 3e-4). Values are parsed as YAML."""
    if "=" not in text:
        raise RecipeError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise RecipeError(f"override {text!r}: empty key in {key!r}")
    return parts, parse_value(raw)


# YAML 1.1 (PyYAML) reads exponent floats without a dot (``3e-4``) as strings; YAML 1.2 and Python don't.
_EXP_FLOAT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def parse_value(raw: str) -> Any:
    """A command-line or environment value as YAML (``3`` → int, ``3e-4`` → float, ``true`` → bool,
    ``[a,b]`` → list, ``null`` → None); text that is not valid YAML stays a string."""
    if not raw.strip():
        return ""
    if _EXP_FLOAT.fullmatch(raw.strip()):
        return float(raw)
    try:
        return yaml.load(raw, Loader=_RecipeLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError:
        return raw


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Merge ``key.path=value`` overrides into ``data`` with the same rules as ``extends``: setting a
    section's ``component`` to another one replaces the section (only the overrides' keys remain)."""
    tree: dict = {}
    for text in overrides:
        parts, value = parse_override(text)
        node, base = tree, data
        for i, part in enumerate(parts[:-1]):
            base = base.get(part) if isinstance(base, dict) else None
            if part in node:  # an earlier override set it
                is_value = not isinstance(node[part], dict)
            else:
                is_value = base is not None and not isinstance(base, dict)
            if is_value:
                raise RecipeError(f"override {text!r}: {'.'.join(parts[: i + 1])} is a value, not a section")
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return deep_merge(data, tree)


def _env(spec: str, at: str, unset: str = "error") -> str:
    """The text of ``${env:NAME}`` / ``${env:NAME,default}``; an unset variable without a default is an
    error, or (``unset="placeholder"``, for validation) the text ``<NAME unset>``."""
    name, sep, default = spec[4:].partition(",")
    value = os.environ.get(name.strip())
    if value is None:
        if sep:
            value = default.strip()
        elif unset == "placeholder":
            value = f"<{name.strip()} unset>"
        else:
            raise RecipeError(f"{at}: ${{{spec}}}: environment variable {name.strip()!r} is not set")
    return value


def _lookup(root: dict, dotted: str, at: str) -> Any:
    node: Any = root
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise RecipeError(f"{at}: ${{{dotted}}} refers to a key that does not exist")
        node = node[part]
    return node


def interpolate(data: dict, unset_env: str = "error") -> dict:
    """Resolve ``${a.b}`` (another key) and ``${env:NAME[,default]}``. A value that is exactly one
    ``${...}`` keeps the referenced value's type (an environment value is read like an override:
    ``8`` → 8, ``3e-4`` → 3e-4, ``true`` → True); otherwise it is substituted into the string.
    Environment values are taken as they are, never interpolated again."""
    root = copy.deepcopy(data)

    def resolve(value: Any, at: str, depth: int = 0) -> Any:
        if depth > 20:
            raise RecipeError(f"{at}: interpolation does not terminate (a reference cycle?)")
        if isinstance(value, dict):
            return {k: resolve(v, f"{at}.{k}" if at else str(k), depth) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, f"{at}[{i}]", depth) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        if value.count("${") != len(_INTERP.findall(value)):
            raise RecipeError(f"{at}: {value!r} has an unterminated or empty ${{...}}")

        def one(ref: str, whole: bool) -> Any:
            ref = ref.strip()
            if ref.startswith("env:"):
                text = _env(ref, at, unset_env)
                if whole:
                    parsed = parse_value(text)
                    return parsed if parsed is None or isinstance(parsed, (bool, int, float)) else text
                return text
            return resolve(_lookup(root, ref, at), at, depth + 1)

        whole = _INTERP.fullmatch(value.strip())
        if whole:
            return one(whole.group(1), whole=True)
        return _INTERP.sub(lambda m: str(one(m.group(1), whole=False)), value)

    return resolve(root, "")


def load_recipe(path: str | Path, overrides: Iterable[str] = (), unset_env: str = "error") -> dict:
    """The raw, merged, interpolated recipe (validate it with :func:`harness.config.schema.validate`).
    ``unset_env="placeholder"``: an unset ``${env:NAME}`` becomes ``<NAME unset>`` instead of an error
    (``harness validate`` checks a recipe without knowing where the data lives)."""
    data = load_with_extends(path)
    data = apply_overrides(data, overrides)
    return interpolate(data, unset_env)
