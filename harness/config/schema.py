"""Recipe schema and validation, before any data or weights are touched.

Fixed sections (``training``, ``evaluation``, ``tracking``, ``hub``) are dataclasses. Component sections name a
registered component (:mod:`harness.registry`) and are checked against its signature:

* ``data``, ``model`` (required); ``optimizer`` (default ``adamw``), ``scheduler`` (default ``linear``);
* ``loss`` (default: the model's own ``outputs.loss``), ``step`` (default: the task's own step — the
  plain forward → loss → backward, or truncated BPTT for a streamed language model);
* ``callbacks``: a list of component sections;
* ``generation``: ``transformers.GenerationConfig`` fields, plus ``logits_processors`` (a list of component
  sections), read by every generative evaluator;
* ``peft``: ``method`` names a PEFT method, the other keys are checked against its PEFT config class.

Every problem is reported with its full key path; unknown keys come with the closest valid key, or
where they live here when they are a Hugging Face ``TrainingArguments`` name or a key that moved.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness import registry
from harness.config.checking import check_args, check_value, closest, validate_dataclass
from harness.config.quantization import check as check_quantization
from harness.errors import HarnessError, RecipeError


@dataclass
class TrainingConfig:
    lr: float = 5e-5
    weight_decay: float = 0.0  # not applied to biases and LayerNorm weights
    batch_size: int = 32  # per process
    eval_batch_size: int | None = None  # default: 2 × batch_size
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0  # None or 0 disables clipping
    num_epochs: float = 3.0
    max_steps: int | None = None  # optimizer steps; overrides num_epochs
    warmup_steps: int = 0
    warmup_ratio: float = 0.0  # used when warmup_steps is 0
    mixed_precision: Literal["no", "fp16", "bf16", "auto"] = "no"  # auto: bf16 where the hardware has it natively
    max_length: int | None = 128  # tokenizer truncation (a streamed LM: the BPTT length)
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
    # torch.compile the model (a GPU: fused kernels; the first steps compile): true, or a torch.compile mode —
    # "reduce-overhead" adds CUDA graphs (one replay per step instead of hundreds of kernel launches; needs the
    # fixed shapes that length_buckets give), "max-autotune" also tunes the matmuls
    compile: bool | Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = False
    # pad every batch to the smallest of these lengths that holds it ("auto": up to 8 chosen from the train split's
    # lengths), so a compiled model sees a few fixed shapes instead of one per batch; default with compile: "auto"
    length_buckets: Literal["auto"] | list[int] | None = None
    # fused attention kernels (harness/training/sdpa.py): "auto" leaves out cuDNN's on a GPU unless length_buckets
    # fix the shapes (it builds a graph per new batch shape, ~200 ms each); "default": PyTorch's order; or the
    # kernel to try first
    attention_backend: Literal["auto", "default", "cudnn", "flash", "efficient", "math"] = "auto"


@dataclass
class EvaluationConfig:
    metric_for_best: str | None = None  # default: the task's main metric, on its first eval split
    greater_is_better: bool | None = None  # default: False for names containing "loss"/"perplexity"
    splits: list[str] | None = None  # default: the task's eval splits
    predict_splits: list[str] = field(default_factory=list)  # write predictions_<split>.tsv (e.g. test)
    at_start: bool = False  # also evaluate before the first step
    load_best_at_end: bool = True  # final metrics and saved model come from the best checkpoint
    # test splits (named test*) are scored once, at the end, on the chosen checkpoint; true scores them at every
    # evaluation too (a per-step test curve invites choosing the model on test)
    test_during_training: bool = False


@dataclass
class TrackingConfig:
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])  # Accelerate trackers; [] for none
    project_name: str = "harness"


@dataclass
class HubConfig:
    """Push the finished run to the Hugging Face Hub (``harness push``), as the HF Trainer's keys of these names."""

    push_to_hub: bool = False
    hub_model_id: str | None = None  # NAMESPACE/NAME (or NAME: the token's user)
    hub_private_repo: bool = False  # create the repo private
    hub_revision: str | None = None  # a branch (created if needed); default main
    hub_commit_message: str | None = None


@dataclass
class RecipeSchema:
    output_dir: str
    data: dict
    model: dict
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    optimizer: dict | None = None
    scheduler: dict | None = None
    loss: dict | None = None
    step: dict | None = None
    callbacks: list[dict] = field(default_factory=list)
    generation: dict | None = None
    peft: dict | None = None
    seed: int = 42
    name: str | None = None
    description: str | None = None


#: set to 1 (by ``--trust-remote-code`` on the command line) to let ``model.trust_remote_code: true`` apply
TRUST_REMOTE_CODE_ENV = "HARNESS_TRUST_REMOTE_CODE"

#: a validated component section: ``{"component": name, **coerced arguments}``
Spec = dict


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
    optimizer: Spec = field(default_factory=lambda: {"component": "adamw"})
    scheduler: Spec = field(default_factory=lambda: {"component": "linear"})
    loss: Spec | None = None
    step: Spec | None = None
    callbacks: list[Spec] = field(default_factory=list)
    generation: dict | None = None  # GenerationConfig fields and "logits_processors": [Spec, ...]
    hub: HubConfig = field(default_factory=HubConfig)  # push at the end of training (harness.hub.push)


# ---------------------------------------------------------------- keys people bring from elsewhere

#: Hugging Face ``TrainingArguments`` names (and keys that moved out of ``training``) -> where they are here
MOVED: dict[str, str] = {}
for _hf, _ours in {
    "learning_rate": "training.lr", "num_train_epochs": "training.num_epochs",
    "per_device_train_batch_size": "training.batch_size", "train_batch_size": "training.batch_size",
    "per_device_eval_batch_size": "training.eval_batch_size", "logging_steps": "training.log_steps",
    "dataloader_num_workers": "training.num_workers", "resume_from_checkpoint": "training.resume",
    "overwrite_output_dir": "training.overwrite", "fp16": "training.mixed_precision: fp16",
    "bf16": "training.mixed_precision: bf16", "full_determinism": "training.deterministic",
    "lr_scheduler_type": "scheduler.component", "optim": "optimizer.component",
    "adam_beta1": "optimizer.betas", "adam_beta2": "optimizer.betas", "adam_epsilon": "optimizer.eps",
    "load_best_model_at_end": "evaluation.load_best_at_end", "metric_for_best_model": "evaluation.metric_for_best",
    "greater_is_better": "evaluation.greater_is_better", "report_to": "tracking.report_to",
    "label_smoothing_factor": "loss: {component: cross_entropy, label_smoothing: ...}",
    "eval_strategy": "training.eval_steps (null: every epoch)", "save_strategy": "training.save_steps",
    "torch_compile": "training.compile", "push_to_hub": "hub.push_to_hub", "hub_model_id": "hub.hub_model_id",
    "hub_private_repo": "hub.hub_private_repo", "hub_revision": "hub.hub_revision", "seed": "seed (top level)", "output_dir": "output_dir (top level)",
}.items():
    for _section in ("training", "evaluation", "tracking", ""):
        _path = f"{_section}.{_hf}" if _section else _hf
        if _ours is None:
            MOVED[_path] = "a Hugging Face TrainingArguments name with no counterpart here yet"
        elif _ours.split(" ")[0].split(":")[0] != _path:
            MOVED[_path] = f"the Hugging Face TrainingArguments name; here it is {_ours}"
MOVED.update({
    "training.optimizer": "moved to the optimizer section: optimizer: {component: adamw | sgd, ...}",
    "training.betas": "moved to the optimizer section: optimizer: {component: adamw, betas: [...]}",
    "training.eps": "moved to the optimizer section: optimizer: {component: adamw, eps: ...}",
    "training.momentum": "moved to the optimizer section: optimizer: {component: sgd, momentum: ...}",
    "training.scheduler": "moved to the scheduler section: scheduler: {component: linear | cosine | constant | step}",
    "training.decay_rate": "moved to the scheduler section: scheduler: {component: step, decay_rate: ...}",
    "training.decay_after_epochs": "moved to the scheduler section: scheduler: {component: step, decay_after_epochs: ...}",
    "training.loss": "a section of its own: loss: {component: ...}",
    "training.callbacks": "a section of its own: callbacks: [{component: ...}]",
})

#: Accelerate's tracker names -> the module that must be importable for it
TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "comet_ml": "comet_ml", "mlflow": "mlflow",
                   "aim": "aim", "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab",
                   "trackio": "trackio"}


# ---------------------------------------------------------------- components


def validate_component(section: str, data: Any, path: str, errors: list[str], build: bool = False) -> Spec | None:
    """``{"component": name, **args}`` checked against the registered component's signature. With
    ``build`` (components that are cheap to make and need nothing from the run: losses, steps, callbacks,
    logits processors), one is made too, so a value its constructor refuses is reported now."""
    if not isinstance(data, dict):
        errors.append(f"{path}: expected a mapping with a 'component' key, got {data!r}")
        return None
    args = dict(data)
    name = args.pop("component", None)
    if name is None:
        errors.append(f"{path}.component: missing required key (one of: {', '.join(registry.names(section))})")
        return None
    try:
        entry = registry.entry(section, name)
    except RecipeError as e:
        errors.append(f"{path}.component: {e}")
        return None
    before = len(errors)
    spec = {"component": name, **check_args(entry.signature_target, args, path, errors, entry.runner_args)}
    if build and len(errors) == before and not entry.runner_args:
        try:
            entry.target(**{k: v for k, v in spec.items() if k != "component"})
        except (HarnessError, ValueError, TypeError) as e:  # "<argument>: what is wrong" names the key
            message = str(e)
            arg = message.split(":", 1)[0]
            errors.append(f"{path}.{message}" if arg in args else f"{path}: {message}")
    return spec


def _has_dataclass(hint: Any) -> bool:
    return dataclasses.is_dataclass(hint) or any(_has_dataclass(a) for a in typing.get_args(hint))


def validate_peft(data: Any, errors: list[str]) -> dict | None:
    if data is None or not isinstance(data, dict):
        return None  # not a mapping: reported by the top-level schema
    args = dict(data)
    method = args.pop("method", None)
    methods = registry.names("peft")
    if method is None:
        errors.append(f"peft.method: missing required key (one of: {', '.join(methods)})")
        return None
    if method not in methods:
        errors.append(f"peft.method: expected one of {methods}, got {method!r}{closest(str(method), methods)}")
        return None
    cls = registry.resolve("peft", method).config_class()
    valid = {f.name for f in dataclasses.fields(cls) if f.init} - {"task_type", "peft_type"}
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be evaluated: keep the name checks
        hints = {}
    out = {}
    for key, value in args.items():
        if key not in valid:
            errors.append(f"peft.{key}: unknown key for {cls.__name__}{closest(str(key), valid)}")
            continue
        hint = hints.get(key, Any)
        # nested PEFT config objects (loftq_config, eva_config, ...) are left to PEFT to check
        out[key] = value if _has_dataclass(hint) else check_value(value, hint, f"peft.{key}", errors)
    return {"method": method, **out}


#: ranges transformers' GenerationConfig.validate does not check itself
_GENERATION_RANGES = {
    "num_beams": (1, None), "num_beam_groups": (1, None), "num_return_sequences": (1, None),
    "max_new_tokens": (1, None), "max_length": (1, None), "min_new_tokens": (0, None), "min_length": (0, None),
    "top_k": (0, None), "no_repeat_ngram_size": (0, None), "temperature": (0.0, None), "top_p": (0.0, 1.0),
    "repetition_penalty": (0.0, None), "length_penalty": (None, None), "diversity_penalty": (0, None),
    "coverage_penalty": (0, None),
}


def _check_search(section: dict, config, errors: list[str], generation) -> None:
    """The harness beam search's keys (``generation.num_beam_groups`` ...): a key that only that search reads
    must come with a setting that asks for it, and the search's own checks pass (``generation``: the
    section's checker module, :mod:`harness.generation.settings`)."""
    if not any(section.get(k) is not None for k in ("diversity_penalty", "coverage_penalty", "length_normalization",
                                                    "num_beam_groups")):
        return
    if not generation.search_requested(section):  # num_beam_groups: 1 / coverage_penalty: 0 alone change nothing
        if section.get("diversity_penalty") is not None:
            errors.append("generation.diversity_penalty: needs num_beam_groups > 1 (diverse beam search)")
        return
    if config.max_new_tokens is None:
        errors.append("generation.max_new_tokens: the harness beam search (num_beam_groups / length_normalization /"
                      " coverage_penalty) needs it")
        return
    try:
        generation.search_settings(section, config)
    except ValueError as e:
        errors.append(f"generation.{e}")


def validate_generation(data: Any, errors: list[str]) -> dict | None:
    """``GenerationConfig`` fields (names and types checked against a default config, ranges here, the
    combination by the config's own ``validate``) plus ``logits_processors``: registered processors."""
    if data is None or not isinstance(data, dict):
        return None
    from transformers import GenerationConfig

    args = dict(data)
    processors = args.pop("logits_processors", None) or []
    mbr = args.pop("mbr", None)
    generation = registry.section_checker("generation")
    known = ({k for k in GenerationConfig().to_dict() if not k.startswith("_")} - {"transformers_version"}
             | set(generation.SEARCH_KEYS))
    # transformers 5 leaves unset fields None and fills them at generate time from these defaults
    filled = getattr(GenerationConfig, "_get_default_generation_params", dict)()
    types = {k: bool if isinstance(v, bool) else type(v) for k, v in filled.items() if isinstance(v, (bool, int, float))}
    types.update(max_new_tokens=int, min_new_tokens=int, num_beam_groups=int, diversity_penalty=float, min_p=float,
                 coverage_penalty=float)
    types.pop("early_stopping", None)  # true, false or "never"
    out: dict = {}
    before = len(errors)
    for key, value in args.items():
        path = f"generation.{key}"
        if key not in known:
            errors.append(f"{path}: unknown key for transformers.GenerationConfig"
                          f"{closest(str(key), known | {'logits_processors', 'mbr'})}")
            continue
        if value is not None and key in types:
            value = check_value(value, types[key], path, errors)
        if key == "length_normalization" and value not in (None, "gnmt", "power"):
            errors.append(f"{path}: expected gnmt or power, got {value!r}")
        low, high = _GENERATION_RANGES.get(key, (None, None))
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                (low is not None and (value < low if isinstance(low, int) else value <= low))
                or (high is not None and value > high)):
            bound = f">= {low}" if isinstance(low, int) else f"> {low}"
            errors.append(f"{path}: expected a number {bound}{f' and <= {high}' if high is not None else ''}, got {value!r}")
        out[key] = value
    candidates: dict = {}
    if mbr is not None and len(errors) == before:
        try:
            _, candidates = generation.mbr_settings({**out, "mbr": mbr})
        except ValueError as e:
            errors.append(f"generation.{e}")
    if len(errors) == before:
        import warnings

        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # its "flags are not valid" log line would repeat the error below
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # transformers reports some bad values only as warnings
                config = GenerationConfig(**{k: v for k, v in out.items() if k not in generation.SEARCH_KEYS},
                                          **candidates)
                config.validate(strict=True)
        except Exception as e:  # ValueError / UserWarning from transformers
            errors.extend(_generation_errors(str(e), out))
        else:
            _check_search(out, config, errors, generation)
        finally:
            hf_logging.set_verbosity(verbosity)
    if not isinstance(processors, list):
        errors.append(f"generation.logits_processors: expected a list of component sections, got {processors!r}")
        processors = []
    specs = [validate_component("logits_processor", p, f"generation.logits_processors[{i}]", errors, build=True)
             for i, p in enumerate(processors)]
    out["logits_processors"] = [s for s in specs if s is not None]
    if mbr is not None:
        out["mbr"] = mbr
    return out


def _generation_errors(message: str, settings: dict) -> list[str]:
    """transformers' GenerationConfig complaint as one error per recipe key it names (``- `top_k`: ...`` lines),
    ``generation.<key>: ...``; a message naming no key of the recipe stays one ``generation: ...`` error."""
    text = message.split("If you're using")[0]
    found = [(m.group(1), m.group(2).strip()) for m in re.finditer(r"^\s*-?\s*`(\w+)`:\s*(.+)$", text, re.M)]
    if found and all(key in settings for key, _ in found):
        return [f"generation.{key}: {why}" for key, why in found]
    return ["generation: " + " ".join(line.strip(" -") for line in text.splitlines()).strip()]


def check_metric_for_best(evaluation: EvaluationConfig, data: Spec, errors: list[str]) -> None:
    """A ``metric_for_best`` that the task cannot produce, where the data component declares its metrics."""
    wanted = evaluation.metric_for_best
    args = {k: v for k, v in data.items() if k != "component"}
    declared = registry.entry("data", data["component"]).meta.get("metrics")
    if not isinstance(wanted, str) or declared is None:  # None, or a wrong type reported already
        return
    split, metric = wanted.split("/", 1) if "/" in wanted else ("", wanted)  # split/metric, split/type/metric
    names = list(declared(args)) + ["loss"]
    if not any(fnmatch.fnmatchcase(metric, pattern) for pattern in names):
        shown = ", ".join(n for n in names if "*" not in n)
        errors.append(f"evaluation.metric_for_best: {metric!r} is not a metric this task reports "
                      f"(it reports: {shown}){closest(metric, [n for n in names if '*' not in n])}")
    splits = evaluation.splits
    if split and isinstance(splits, list) and split not in splits:
        errors.append(f"evaluation.metric_for_best: split {split!r} is not evaluated (evaluation.splits: {splits})")
    elif split and is_test_split(split) and evaluation.test_during_training is not True:
        errors.append(f"evaluation.metric_for_best: choosing the checkpoint on {split!r} selects the model on test "
                      f"data; choose on a validation split (or set evaluation.test_during_training: true)")


#: training fields and what they must be: (lowest, highest, whether the lowest is allowed)
_TRAINING_RANGES = {
    "lr": (0.0, None, True), "weight_decay": (0.0, None, True), "num_epochs": (0.0, None, False),
    "max_grad_norm": (0.0, None, True), "warmup_ratio": (0.0, 1.0, True), "batch_size": (1, None, True),
    "eval_batch_size": (1, None, True), "gradient_accumulation_steps": (1, None, True), "max_steps": (1, None, True),
    "warmup_steps": (0, None, True), "max_length": (1, None, True), "eval_steps": (1, None, True),
    "save_steps": (1, None, True), "save_total_limit": (1, None, True), "early_stopping_patience": (0, None, True),
    "log_steps": (1, None, True), "num_workers": (0, None, True), "pad_to_multiple_of": (1, None, True),
}


def check_ranges(training: TrainingConfig, errors: list[str]) -> None:
    """Values of the right type that cannot work (a zero batch, a negative or NaN learning rate, ...)."""
    buckets = training.length_buckets
    if isinstance(buckets, list) and (not buckets or any(isinstance(b, bool) or not isinstance(b, int) or b < 1
                                                         for b in buckets) or buckets != sorted(set(buckets))):
        errors.append(f"training.length_buckets: expected \"auto\" or increasing lengths ≥ 1, got {buckets!r}")
    for name, (low, high, closed) in _TRAINING_RANGES.items():
        value = getattr(training, name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # None where allowed; wrong types are reported by the type check
        if not math.isfinite(value):
            errors.append(f"training.{name}: expected a finite number, got {value!r}")
        elif value < low or (value == low and not closed) or (high is not None and value > high):
            bound = f"{'≥' if closed else '>'} {low}" + (f" and ≤ {high}" if high is not None else "")
            errors.append(f"training.{name}: expected a number {bound}, got {value!r}")


def check_model(model: Spec, training: TrainingConfig, errors: list[str]) -> None:
    """What a model builder can tell from the recipe alone (its registry entry's ``check(args, training)``, which
    returns ``"section.key: problem"`` lines): a width the heads do not divide, an input longer than a learned
    position table …"""
    check = registry.entry("model", model["component"]).meta.get("check")
    if check is not None:
        errors.extend(check({k: v for k, v in model.items() if k != "component"}, training))


def check_output_dir(output_dir: str, errors: list[str]) -> None:
    if not output_dir.strip():
        errors.append("output_dir: empty (the run would write into the current folder); name a folder")
    elif Path(output_dir).exists() and not Path(output_dir).is_dir():
        errors.append(f"output_dir: {output_dir} is a file, not a folder")


def check_hub(hub: HubConfig, errors: list[str]) -> None:
    if hub.push_to_hub and not hub.hub_model_id:
        errors.append("hub.hub_model_id: hub.push_to_hub is true but no repo is named; set hub.hub_model_id: "
                      "NAMESPACE/NAME")
    if isinstance(hub.hub_model_id, str):
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(hub.hub_model_id)
        except HFValidationError as e:
            errors.append(f"hub.hub_model_id: {hub.hub_model_id!r} is not a valid Hub repo id ({e})")


def check_remote_code(model: dict | None, errors: list[str]) -> None:
    """``trust_remote_code: true`` runs Python code shipped with a checkpoint; a recipe alone may not turn it
    on (a recipe or checkpoint must never run code): the person launching the run says so too."""
    if model and model.get("trust_remote_code") is True and os.environ.get(TRUST_REMOTE_CODE_ENV) != "1":
        errors.append(f"model.trust_remote_code: true would run the Python code that comes with the checkpoint; "
                      f"allow it for this run on the command line (harness train --trust-remote-code, or "
                      f"{TRUST_REMOTE_CODE_ENV}=1 with accelerate launch)")


def is_test_split(name: str) -> bool:
    """``test``, ``test_matched``, ``test_2016_flickr`` …: scored once, at the end (not during training)."""
    return name == "test" or name.startswith("test_")


def check_trackers(tracking: TrackingConfig, errors: list[str]) -> None:
    if not isinstance(tracking.report_to, list):
        return  # reported by the type check
    for i, name in enumerate(tracking.report_to):
        if not isinstance(name, str):
            continue
        module = TRACKER_MODULES.get(name)
        if module is None:
            errors.append(f"tracking.report_to[{i}]: unknown tracker {name!r}{closest(str(name), TRACKER_MODULES)} "
                          f"(Accelerate's: {', '.join(TRACKER_MODULES)})")
        elif importlib.util.find_spec(module) is None:
            errors.append(f"tracking.report_to[{i}]: {name!r} is not installed (pip install {module}), "
                          f"or leave it out of tracking.report_to")


def _explain(errors: list[str]) -> list[str]:
    """An unknown key that is a Hugging Face ``TrainingArguments`` name, or moved to another section, says
    where it lives here instead of guessing the closest name."""
    out = []
    for e in errors:
        path, _, rest = e.partition(": unknown key")
        out.append(f"{path}: unknown key ({MOVED[path]})" if rest is not None and e != path and path in MOVED else e)
    return out


def validate(raw: dict) -> Recipe:
    """Validate a loaded recipe (see :func:`harness.config.loader.load_recipe`); raise one
    :class:`RecipeError` listing every problem found."""
    errors: list[str] = []
    top = validate_dataclass(RecipeSchema, raw, "", errors)
    if not isinstance(raw, dict):
        raise RecipeError("invalid recipe:\n  " + "\n  ".join(errors))
    # a section that is not a mapping is reported once, by the top-level schema
    data = model = None
    model_path = None
    if isinstance(raw.get("data"), dict):
        data = validate_component("data", raw["data"], "data", errors)
    if isinstance(raw.get("model"), dict):
        model_section = dict(raw["model"])  # ``raw`` is left as it is: it is written to recipe.yaml
        model_path = model_section.pop("path", None)
        if model_path is not None and not isinstance(model_path, str):
            errors.append(f"model.path: expected a string, got {model_path!r} ({type(model_path).__name__})")
        model = validate_component("model", model_section, "model", errors)
    sections = {}
    for name, default in (("optimizer", {"component": "adamw"}), ("scheduler", {"component": "linear"}),
                          ("loss", None), ("step", None)):
        value = raw.get(name, default)
        build = name in ("loss", "step")
        sections[name] = None if value is None else validate_component(name, value, name, errors, build=build)
    callbacks = raw.get("callbacks") or []
    callback_specs = []
    if isinstance(callbacks, list):
        callback_specs = [validate_component("callback", c, f"callbacks[{i}]", errors, build=True)
                          for i, c in enumerate(callbacks)]
    peft = validate_peft(raw.get("peft"), errors)
    generation = validate_generation(raw.get("generation"), errors)
    check_remote_code(model, errors)
    if isinstance(model, dict) and model.get("quantization") is not None:
        try:
            check_quantization(model["quantization"])
        except HarnessError as e:
            errors.append(str(e))
    if top is not None:  # a section that is not a mapping is None here, and already reported
        if isinstance(top.tracking, TrackingConfig):
            check_trackers(top.tracking, errors)
        if isinstance(top.training, TrainingConfig):
            check_ranges(top.training, errors)
        if isinstance(top.output_dir, str):
            check_output_dir(top.output_dir, errors)
        if isinstance(top.hub, HubConfig):
            check_hub(top.hub, errors)
        if data is not None and isinstance(top.evaluation, EvaluationConfig):
            check_metric_for_best(top.evaluation, data, errors)
        if model is not None and isinstance(top.training, TrainingConfig):
            check_model(model, top.training, errors)
    if errors or top is None or data is None or model is None:
        raise RecipeError("invalid recipe:\n  " + "\n  ".join(dict.fromkeys(_explain(errors))))
    return Recipe(
        output_dir=top.output_dir,
        seed=top.seed,
        name=top.name,
        description=top.description,
        training=top.training,
        evaluation=top.evaluation,
        tracking=top.tracking,
        data_component=data.pop("component"),
        data_args=data,
        model_component=model.pop("component"),
        model_args=model,
        model_path=model_path,
        peft=peft,
        raw=raw,
        optimizer=sections["optimizer"],
        scheduler=sections["scheduler"],
        loss=sections["loss"],
        step=sections["step"],
        callbacks=[c for c in callback_specs if c is not None],
        generation=generation,
        hub=top.hub,
    )
