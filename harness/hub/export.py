"""Self-contained modeling code for a custom model family, so that
``AutoModelFor*.from_pretrained(folder_or_repo, trust_remote_code=True)`` works where ``harness`` is not installed.

``transformers`` loads remote code from a model folder by its ``config.json``'s ``auto_map`` (what
``PreTrainedModel.register_for_auto_class`` writes): ``{"AutoConfig": "configuration_x.XConfig",
"AutoModelForCausalLM": "modeling_x.XForCausalLM"}``; the files sit flat beside the weights and import each
other only relatively (``from .configuration_x import XConfig``: ``transformers.dynamic_module_utils`` copies the
relative imports along and refuses absolute imports of packages that are not installed).

``register_for_auto_class`` copies one module and cannot follow our ``from harness.modules.attention import …``;
this module does it for a whole family, by reading the installed ``harness`` sources with :mod:`ast` — no code is
imported or run, neither harness's nor the run's (only ``config.json``'s ``model_type`` is read):

1. the configuration class whose ``model_type`` is the saved config's (``configuration_*.py``), and the
   ``register_auto(ConfigClass, AutoX=Model, ...)`` call that names it (``modeling_*.py``): the ``auto_map``;
2. the closure of the ``harness`` modules they import, at any depth (imports inside functions too);
3. each copied flat (``harness/modules/attention.py`` → ``attention.py``) with its ``harness`` imports rewritten
   to relative ones and the registry hooks (``register_auto`` calls, ``@register`` decorators) removed — they
   only fill harness's own tables; a module that *uses* a registry name otherwise is refused;
4. lines of docstrings and comments that read like an absolute ``harness`` import are neutralised, because
   ``transformers``' import check reads the file as text; the result is checked with ``transformers``' own
   ``get_imports`` / ``get_relative_imports``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

PACKAGE = "harness"
ROOT = Path(__file__).resolve().parent.parent  # the harness package folder
#: modules never copied: their names are hooks into harness's own tables, stripped from the copies
HOOK_MODULES = {"harness.registry"}
EXPORT_NOTE = ("# Exported from harness ({source}) for `trust_remote_code` loading without harness installed:\n"
               "# harness imports made relative, registry hooks removed. Edit the original, not this copy.\n")


class ExportError(HarnessError):
    """A model family whose code cannot be made self-contained."""


@dataclass
class Family:
    """What a saved config's ``model_type`` needs in a model folder."""

    model_type: str
    config_module: str  # dotted, e.g. harness.models.rnn.configuration_rnn
    config_class: str
    modeling_module: str
    auto_classes: dict[str, str]  # AutoModelForCausalLM -> RNNForCausalLM
    files: dict[str, str] = field(default_factory=dict)  # flat file name -> rewritten source

    @property
    def auto_map(self) -> dict[str, str]:
        out = {"AutoConfig": f"{flat_name(self.config_module)}.{self.config_class}"}
        for auto, cls in self.auto_classes.items():
            out[auto] = f"{flat_name(self.modeling_module)}.{cls}"
        return out


def flat_name(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _dotted(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# ------------------------------------------------------------------------------------------- finding a family


def _config_classes() -> dict[str, tuple[str, str]]:
    """``model_type -> (config module, class name)`` over ``harness/models/**/configuration_*.py``."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted((ROOT / "models").rglob("configuration_*.py")):
        for node in _parse(path).body:
            if not isinstance(node, ast.ClassDef):
                continue
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "model_type"
                                                         for t in stmt.targets)
                        and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                    out[stmt.value.value] = (_dotted(path), node.name)
    return out


def _registrations() -> list[tuple[str, str, dict[str, str]]]:
    """Every module-level ``register_auto(ConfigClass, AutoX=Model, ...)``: ``(modeling module, config class
    name, {auto: model class name})``."""
    out = []
    for path in sorted((ROOT / "models").rglob("modeling_*.py")):
        for node in _parse(path).body:
            call = node.value if isinstance(node, ast.Expr) else None
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "register_auto"
                    and call.args and isinstance(call.args[0], ast.Name)):
                autos = {kw.arg: kw.value.id for kw in call.keywords
                         if kw.arg and isinstance(kw.value, ast.Name)}
                out.append((_dotted(path), call.args[0].id, autos))
    return out


def custom_model_types() -> list[str]:
    """The ``model_type`` of every harness model family with its own configuration class."""
    return sorted(_config_classes())


def find_family(model_type: str) -> Family | None:
    """The family of a saved config's ``model_type``; ``None`` for a type harness does not define (BERT, GPT-2
    …: ``transformers`` has the code)."""
    configs = _config_classes()
    if model_type not in configs:
        return None
    config_module, config_class = configs[model_type]
    for modeling_module, name, autos in _registrations():
        if name == config_class and config_class in _imported_names(modeling_module):
            family = Family(model_type, config_module, config_class, modeling_module, autos)
            family.files = export_sources([config_module, modeling_module])
            return family
    raise ExportError(f"model type {model_type!r} ({config_module}.{config_class}) has no register_auto call in "
                      f"a modeling_*.py module: its model classes are unknown, so it cannot be exported")


def _imported_names(module: str) -> set[str]:
    tree = _parse(_module_file(module))
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


# ------------------------------------------------------------------------------------------- rewriting


def _harness_imports(tree: ast.Module) -> list[ast.AST]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
            out.append(node)
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == PACKAGE for a in node.names):
            out.append(node)
    return out


def _targets(node: ast.AST, where: str) -> list[str]:
    """The harness modules an import statement needs."""
    if isinstance(node, ast.Import):
        raise ExportError(f"{where}:{node.lineno}: `import {node.names[0].name}` — write `from … import …` so the "
                          f"module can be exported")
    if node.module in HOOK_MODULES:
        return []
    if _module_file(node.module) is None:
        raise ExportError(f"{where}:{node.lineno}: {node.module} is not a module of the installed harness")
    out = []
    for alias in node.names:
        sub = f"{node.module}.{alias.name}"
        out.append(sub if _module_file(sub) is not None and not _is_package(node.module, alias.name)
                   else node.module)
    return out


def _is_package(module: str, name: str) -> bool:
    """``from harness.models.ngram import smoothing``: ``smoothing`` is a submodule unless the package's
    ``__init__`` defines the name itself."""
    init = _module_file(module)
    if init is None or init.name != "__init__.py":
        return False
    tree = _parse(init)
    defined = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    return name in defined


def closure(modules: list[str]) -> list[str]:
    """``modules`` and every harness module they import, in discovery order (hook modules left out)."""
    seen: list[str] = []
    todo = list(modules)
    while todo:
        module = todo.pop(0)
        if module in seen or module in HOOK_MODULES:
            continue
        path = _module_file(module)
        if path is None:
            raise ExportError(f"{module}: not a module of the installed harness")
        if path.name == "__init__.py":
            raise ExportError(f"{module}: a package's __init__ cannot be exported flat; import from its modules")
        seen.append(module)
        for node in _harness_imports(_parse(path)):
            todo.extend(_targets(node, str(path)))
    return seen


def _offsets(text: str) -> list[int]:
    starts, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


#: what ``transformers.dynamic_module_utils.get_imports`` matches, line by line
_IMPORT_LINE = re.compile(r"^(\s*)(import|from)(\s+)(" + PACKAGE + r"\b)", flags=re.MULTILINE)


def rewrite(module: str, names: dict[str, str]) -> str:
    """The source of ``module`` made self-contained for the flat folder (``names``: module → flat name)."""
    path = _module_file(module)
    text = path.read_text(encoding="utf-8")
    tree = _parse(path)
    starts = _offsets(text)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in character offsets

    def span(node) -> tuple[int, int]:
        return starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset

    hooks: set[str] = set()
    for node in _harness_imports(tree):
        targets = _targets(node, str(path))
        if node.module in HOOK_MODULES:
            hooks.update(a.asname or a.name for a in node.names)
            edits.append((*span(node), "pass  # harness registry import removed"))
            continue
        parts = []
        for alias, target in zip(node.names, targets):
            as_ = f" as {alias.asname}" if alias.asname else ""
            if target == node.module:  # a name from a module
                parts.append((f".{names[target]}", f"{alias.name}{as_}"))
            else:  # a submodule
                parts.append((".", f"{names[target]}{as_}"))
        lines = [f"from {src} import {', '.join(n for s, n in parts if s == src)}" for src in dict.fromkeys(s for s, _ in parts)]
        indent = " " * node.col_offset
        edits.append((*span(node), f"\n{indent}".join(lines)))
    if hooks:
        for node in ast.walk(tree):
            decorated = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            for dec in getattr(node, "decorator_list", []) if decorated else []:
                func = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(func, ast.Name) and func.id in hooks:
                    start, end = span(dec)
                    edits.append((start - 1, end, "# harness registry decorator removed"))  # the "@" too
        for node in tree.body:
            call = node.value if isinstance(node, ast.Expr) else None
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in hooks:
                edits.append((*span(node), "pass  # harness registry hook (register_auto) removed"))
        for node in ast.walk(tree):  # any other use of a hook name cannot be removed safely
            if isinstance(node, ast.Name) and node.id in hooks:
                start, _ = span(node)
                if not any(s <= start < e for s, e, _ in edits):
                    raise ExportError(f"{path}:{node.lineno}: uses harness.registry's {node.id} beyond a hook; "
                                      f"it cannot be exported without harness")
    out = text
    for start, end, new in sorted(edits, reverse=True):
        out = out[:start] + new + out[end:]
    # docstrings and comments that look like an absolute harness import: transformers' check reads text
    out = _IMPORT_LINE.sub(lambda m: f"{m.group(1)}# {m.group(2)}{m.group(3)}{m.group(4)}", out)
    source = path.relative_to(ROOT.parent)
    head = EXPORT_NOTE.format(source=source)
    if out.startswith("#!"):
        first, _, rest = out.partition("\n")
        return f"{first}\n{head}{rest}"
    return head + out


def export_sources(modules: list[str]) -> dict[str, str]:
    """``{flat file name: source}`` for ``modules`` and everything they import from harness."""
    found = closure(modules)
    names: dict[str, str] = {}
    for module in found:
        flat = flat_name(module)
        clash = [m for m, n in names.items() if n == flat]
        if clash:
            raise ExportError(f"cannot export {module} and {clash[0]} into one flat folder: both are {flat}.py; "
                              f"rename one of them")
        names[module] = flat
    files = {f"{names[m]}.py": rewrite(m, names) for m in found}
    for name, text in files.items():
        try:
            ast.parse(text)
        except SyntaxError as e:  # a bug here, not in the user's input
            raise ExportError(f"exported {name} does not parse ({e}); please report this") from e
    return files


def check_folder(folder: Path, files: dict[str, str]) -> None:
    """The exported files pass ``transformers``' own import checks: every relative import is in the folder and
    no absolute import names harness."""
    from transformers.dynamic_module_utils import get_imports, get_relative_imports

    for name in files:
        path = folder / name
        missing = [r for r in get_relative_imports(str(path)) if not (folder / f"{r}.py").is_file()]
        if missing:
            raise ExportError(f"exported {name} imports {', '.join(missing)}, which is not in {folder}")
        leftover = [imp for imp in get_imports(str(path)) if imp.split(".")[0] == PACKAGE]
        if leftover:
            raise ExportError(f"exported {name} still imports {', '.join(leftover)}")
