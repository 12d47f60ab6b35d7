"""Recipe schema and validation, before any data or weights are touched.

Fixed sections (``training``, ``evaluation``, ``tracking``) are dataclasses; component sections
(``data``, ``model``) are checked against the signature of the component they name; ``peft`` is
checked against the PEFT config class of its ``method``. Every problem is reported with its full
key path, and unknown keys come with the closest valid key.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import re
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from harness.config import components
from harness.errors import RecipeError


@dataclass
class TrainingConfig:
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 5e-5
    weight_decay: float = 0.0  # not applied to biases and LayerNorm weights
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW
    eps: float = 1e-8  # AdamW
    momentum: float = 0.0  # SGD
    batch_size: int = 32  # per process
    eval_batch_size: int | None = None  # default: 2 × batch_size
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0  # None or 0 disables clipping
    num_epochs: float = 3.0
    max_steps: int | None = None  # optimizer steps; overrides num_epochs
    scheduler: Literal["linear", "cosine", "constant", "step"] = "linear"
    decay_rate: float = 0.5  # scheduler "step": lr × decay_rate per epoch ...
    decay_after_epochs: int = 4  # ... once this many epochs are done (Zaremba et al.'s PTB schedule)
    warmup_steps: int = 0
    warmup_ratio: float = 0.0  # used when warmup_steps is 0
    mixed_precision: Literal["no", "fp16", "bf16", "auto"] = "no"  # auto: bf16 where the hardware has it natively
    max_length: int | None = 128  # tokenizer truncation
    eval_steps: int | None = None  # None: evaluate at the end of every epoch
    save_steps: int | None = None  # None: save whenever we evaluate
    save_total_limit: int = 2  # checkpoints kept (the best one is always kept too)
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    resume: str | None = None  # "auto" (latest checkpoint in output_dir) or a checkpoint path
    overwrite: bool = False  # train over an earlier run in output_dir (otherwise refused)
    deterministic: bool = False  # torch.use_deterministic_algorithms
    log_steps: int = 10
    num_workers: int = 0
    pad_to_multiple_of: int | None = None
    group_by_length: bool = False  # batches of similar length (less padding); order random across ~50-batch groups


@dataclass
class EvaluationConfig:
    metric_for_best: str | None = None  # default: the task's main metric, on its first eval split
    greater_is_better: bool | None = None  # default: False for names containing "loss"/"perplexity"
    splits: list[str] | None = None  # default: the task's eval splits
    predict_splits: list[str] = field(default_factory=list)  # write predictions_<split>.tsv (e.g. test)
    at_start: bool = False  # also evaluate before the first step
    load_best_at_end: bool = True  # final metrics and saved model come from the best checkpoint


@dataclass
class TrackingConfig:
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])  # Accelerate trackers; [] for none
    project_name: str = "harness"


@dataclass
class RecipeSchema:
    output_dir: str
    data: dict
    model: dict
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    peft: dict | None = None
    seed: int = 42
    name: str | None = None
    description: str | None = None


@dataclass
class Recipe:
    """A validated recipe: typed fixed sections plus resolved component sections."""

    output_dir: str
    seed: int
    name: str | None
    description: str | None
    training: TrainingConfig
    evaluation: EvaluationConfig
    tracking: TrackingConfig
    data_component: str
    data_args: dict
    model_component: str
    model_args: dict
    model_path: str | None  # model.path: a saved run's model/ folder, loaded instead of building one
    peft: dict | None
    raw: dict  # the resolved recipe as written to output_dir/recipe.yaml


# ---------------------------------------------------------------- type checking


def _closest(key: str, options: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(key, list(options), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _type_name(hint: Any) -> str:
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
            errors.append(f"{path}: expected {_type_name(hint)}, got {value!r} ({type(value).__name__})")
        return value
    if origin is Literal:
        ok, out = _literal_match(value, args)
        if not ok:
            errors.append(f"{path}: expected one of {list(args)}, got {value!r}{_closest(str(value), map(str, args))}")
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
        errors.append(f"{path}: expected {_type_name(hint)}, got {value!r} ({type(value).__name__})")
    return value


def validate_dataclass(cls: type, data: Any, path: str, errors: list[str]):
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
            errors.append(f"{sub}: unknown key{_closest(str(key), fields)}")
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


# ---------------------------------------------------------------- components


def validate_component_section(section: str, data: Any, errors: list[str]) -> tuple[str | None, dict]:
    if not isinstance(data, dict):
        errors.append(f"{section}: expected a mapping with a 'component' key, got {data!r}")
        return None, {}
    args = dict(data)
    name = args.pop("component", None)
    if name is None:
        errors.append(f"{section}.component: missing required key (one of: {', '.join(components.names(section))})")
        return None, args
    try:
        fn = components.resolve(section, name)
    except RecipeError as e:
        errors.append(f"{section}.component: {e}")
        return None, args
    return name, components.check_args(fn, args, section, errors)


def _has_dataclass(hint: Any) -> bool:
    return dataclasses.is_dataclass(hint) or any(_has_dataclass(a) for a in typing.get_args(hint))


def validate_peft(data: Any, errors: list[str]) -> dict | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        return None  # reported by the top-level schema (peft: expected a mapping)
    args = dict(data)
    method = args.pop("method", None)
    if method is None:
        errors.append(f"peft.method: missing required key (one of: {', '.join(sorted(components.PEFT_METHODS))})")
        return None
    if method not in components.PEFT_METHODS:
        errors.append(
            f"peft.method: expected one of {sorted(components.PEFT_METHODS)}, got {method!r}"
            f"{_closest(str(method), components.PEFT_METHODS)}"
        )
        return None
    cls = components.peft_config_class(method)
    valid = {f.name for f in dataclasses.fields(cls) if f.init} - {"task_type", "peft_type"}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated: keep the name checks
        hints = {}
    out = {}
    for key, value in args.items():
        if key not in valid:
            errors.append(f"peft.{key}: unknown key for {cls.__name__}{_closest(str(key), valid)}")
            continue
        hint = hints.get(key, Any)
        # nested PEFT config objects (loftq_config, eva_config, ...) are left to PEFT to check
        out[key] = value if _has_dataclass(hint) else check_value(value, hint, f"peft.{key}", errors)
    return {"method": method, **out}


def validate(raw: dict) -> Recipe:
    """Validate a loaded recipe (see :func:`harness.config.loader.load_recipe`); raise one
    :class:`RecipeError` listing every problem found."""
    errors: list[str] = []
    top = validate_dataclass(RecipeSchema, raw, "", errors)
    if not isinstance(raw, dict):
        raise RecipeError("invalid recipe:\n  " + "\n  ".join(errors))
    # a section that is not a mapping is reported once, by the top-level schema
    data_name, data_args, model_name, model_args, model_path = None, {}, None, {}, None
    if isinstance(raw.get("data"), dict):
        data_name, data_args = validate_component_section("data", raw["data"], errors)
    if isinstance(raw.get("model"), dict):
        model_section = dict(raw["model"])  # ``raw`` is left as it is: it is written to recipe.yaml
        model_path = model_section.pop("path", None)
        if model_path is not None and not isinstance(model_path, str):
            errors.append(f"model.path: expected a string, got {model_path!r} ({type(model_path).__name__})")
        model_name, model_args = validate_component_section("model", model_section, errors)
    peft = validate_peft(raw.get("peft"), errors)
    if errors or top is None:
        raise RecipeError("invalid recipe:\n  " + "\n  ".join(dict.fromkeys(errors)))
    return Recipe(
        output_dir=top.output_dir,
        seed=top.seed,
        name=top.name,
        description=top.description,
        training=top.training,
        evaluation=top.evaluation,
        tracking=top.tracking,
        data_component=data_name,
        data_args=data_args,
        model_component=model_name,
        model_args=model_args,
        model_path=model_path,
        peft=peft,
        raw=raw,
    )
