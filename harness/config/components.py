"""Named components and the allow-list that recipes may build objects from.

A recipe section names its component either by a registered short name (``component: glue``) or
by a dotted path inside an allow-listed package (``component: harness.data.glue:glue``). Nothing
outside the allow-list is ever imported, so a recipe cannot run arbitrary code.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import typing

from harness.errors import RecipeError

#: packages whose callables a recipe may name by dotted path
ALLOWED_PREFIXES = ("harness.",)

#: short names → "module:attribute"; the runner passes the leading arguments listed in SKIP
REGISTRY: dict[str, dict[str, str]] = {
    "data": {
        "glue": "harness.data.glue:glue",
        "text_classification": "harness.data.files:text_classification",
        "synthetic_classification": "harness.data.synthetic:synthetic_classification",
        "lm_text": "harness.data.lm:lm_text",
        "conll_ner": "harness.data.ner:conll_ner",
    },
    "model": {
        "pretrained_classifier": "harness.models.pretrained:sequence_classifier",
        "bert_from_scratch": "harness.models.scratch:bert_classifier",
        "ngram_lm": "harness.models.ngram:ngram_lm",
        "rnn_lm": "harness.models.rnn.builders:rnn_causal_lm",
        "rnn_classifier": "harness.models.rnn.builders:rnn_classifier",
        "rnn_tagger": "harness.models.rnn.builders:rnn_tagger",
        "sequence_tagger": "harness.models.rnn.builders:sequence_tagger",
        "pretrained_tagger": "harness.models.pretrained:token_classifier",
    },
}

#: parameters filled by the runner, not the recipe
SKIP = {"data": set(), "model": {"task"}}

#: ``package.module:attribute`` or ``package.module.attribute``; no private (``_``) parts, so neither
#: ``harness.__main__`` (which would run the CLI on import) nor private helpers can be named
_DOTTED = re.compile(r"[A-Za-z]\w*(\.[A-Za-z]\w*)+(:[A-Za-z]\w*)?")

PEFT_METHODS = {"lora": "LoraConfig", "ia3": "IA3Config", "loha": "LoHaConfig", "lokr": "LoKrConfig"}


def names(section: str) -> list[str]:
    return sorted(REGISTRY.get(section, {}))


def resolve(section: str, name: str):
    """The callable a recipe names, or a :class:`RecipeError` that lists what is available."""
    if not isinstance(name, str):
        raise RecipeError(f"expected a component name, got {name!r}")
    target = REGISTRY.get(section, {}).get(name)
    if target is None:
        if not name.startswith(ALLOWED_PREFIXES) or not _DOTTED.fullmatch(name):
            # refused before anything is imported: only allow-listed packages are ever loaded
            close = difflib.get_close_matches(name, names(section), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RecipeError(
                f"unknown component {name!r}{hint}; registered: {', '.join(names(section))}; "
                f"or a dotted path inside {', '.join(p.rstrip('.') for p in ALLOWED_PREFIXES)}"
            )
        target = name if ":" in name else "{}:{}".format(*name.rsplit(".", 1))
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
        fn = getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise RecipeError(f"component {name!r} ({target}) cannot be loaded: {e}") from None
    if not callable(fn) or inspect.ismodule(fn):
        raise RecipeError(f"component {name!r} ({target}) is not callable")
    if name not in REGISTRY.get(section, {}) and not f"{getattr(fn, '__module__', '')}.".startswith(ALLOWED_PREFIXES):
        # ``harness.data.files:Path`` is pathlib's: a name imported into an allowed module is not allowed
        raise RecipeError(f"component {name!r} ({target}) is defined in {getattr(fn, '__module__', '?')}, "
                          f"outside {', '.join(p.rstrip('.') for p in ALLOWED_PREFIXES)}")
    return fn


def check_args(fn, args: dict, section: str, errors: list[str]) -> dict:
    """Check recipe arguments against ``fn``'s signature and type hints; return them coerced."""
    from harness.config.schema import _closest, check_value

    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that cannot be evaluated: skip type checks, keep name checks
        hints = {}
    params = {n: p for n, p in sig.parameters.items() if n not in SKIP.get(section, set())}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    out = {}
    for key, value in args.items():
        path = f"{section}.{key}"
        if key not in named:
            if not accepts_any:
                errors.append(f"{path}: unknown key{_closest(str(key), named)}")
            out[key] = value
            continue
        out[key] = check_value(value, hints.get(key, typing.Any), path, errors)
    for n, p in named.items():
        if p.default is inspect.Parameter.empty and n not in args:
            errors.append(f"{section}.{n}: missing required key")
    return out


def peft_config_class(method: str):
    import peft

    return getattr(peft, PEFT_METHODS[method])
