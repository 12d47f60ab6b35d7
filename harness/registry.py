"""The one registry: every component a recipe can name, and the model families the Auto classes load.

A component registers itself where it is defined, with one decorator::

    from harness.registry import register

    @register("loss", "cross_entropy")
    class CrossEntropyLoss(Loss): ...

    @register("model", "rnn_lm", runner_args=("task",))   # the runner passes ``task``; the recipe the rest
    def rnn_causal_lm(task, cell="lstm", ...): ...

A recipe section names a component by its registered name only (``loss: {component: cross_entropy,
label_smoothing: 0.1}``); nothing else is ever imported, so a recipe cannot run code. The sections, and what
their components are:

=================  ==================================================================================
``data``           ``fn(**args) -> Task`` (:mod:`harness.data`)
``model``          ``fn(task, **args) -> (model, tokenizer)`` (:mod:`harness.models`)
``loss``           ``Loss`` subclasses: ``loss(model, batch) -> (loss, outputs)`` (:mod:`harness.losses`)
``step``           ``Step`` subclasses: one micro-batch, forward → loss → backward (:mod:`harness.training.steps`)
``callback``       ``Callback`` subclasses: step / epoch / evaluation events (:mod:`harness.training.callbacks`)
``optimizer``      ``fn(param_groups, lr, **args) -> torch.optim.Optimizer`` (:mod:`harness.training.optim`)
``scheduler``      ``fn(optimizer, total_steps, steps_per_epoch, warmup_steps, **args)``
``peft``           PEFT methods, checked against PEFT's config class (:mod:`harness.training.peft`)
``evaluator``      ``Evaluator`` subclasses, named by a task family (:mod:`harness.evaluation`)
``logits_processor`` ``transformers.LogitsProcessor`` subclasses (:mod:`harness.generation`)
``procedure``      how a model kind is fitted when it is not by gradients (:mod:`harness.training.counting`)
``report``         hooks that add a section to ``report.md`` (the RNN package's gradient-through-time plot)
=================  ==================================================================================

Built-in components are found by importing the package that holds each section (:data:`PROVIDERS`) the
first time a section is read; installed packages add theirs through the ``harness.plugins`` entry-point
group (each entry point names a module to import). Those imports stay light — no torch, no modeling code —
so ``harness validate`` answers in about a second (a ``peft`` section aside: PEFT imports torch): a model package declares where its modeling module is
(:func:`declare_family`), and that module registers the ``transformers`` Auto classes when it is imported
(:func:`register_auto`); :func:`load_models` imports every declared family before a saved model is loaded.

Nothing here imports the rest of ``harness``: every other module may import this one.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from harness.errors import RecipeError

#: section -> the modules whose import registers its built-in components
PROVIDERS: dict[str, tuple[str, ...]] = {
    "data": ("harness.data",),
    "model": ("harness.models",),
    "loss": ("harness.losses",),
    "step": ("harness.training.steps",),
    "callback": ("harness.training.callbacks", "harness.training.scheduled_sampling", "harness.training.unfreezing",
                 "harness.training.professor_forcing"),
    "optimizer": ("harness.training.optim", "harness.training.layerwise"),
    "scheduler": ("harness.training.optim", "harness.training.layerwise"),
    "peft": ("harness.training.peft", "harness.training.adapters"),
    "evaluator": ("harness.evaluation.evaluators", "harness.evaluation.embeddings"),
    "logits_processor": ("harness.generation",),
    "procedure": ("harness.training.counting",),
    "report": ("harness.models",),
}
SECTIONS = tuple(PROVIDERS)
#: recipe sections checked as a whole by a module of a higher layer (the generation section's own keys: the
#: harness beam search, MBR); the schema reaches it here, as it reaches components, so config imports nothing above
SECTION_CHECKERS: dict[str, str] = {"generation": "harness.generation.settings"}
ENTRY_POINT_GROUP = "harness.plugins"


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    section: str
    name: str
    target: Any  # a function or a class
    #: leading parameters the runner fills (``task`` for model builders), never recipe keys
    runner_args: tuple[str, ...] = ()
    #: what else the registering module declares (e.g. ``procedure="counting"``, ``metrics=fn``)
    meta: dict = field(default_factory=dict)

    @property
    def signature_target(self):
        """What the recipe's arguments are checked against: a class's ``__init__`` or the function."""
        return self.target.__init__ if inspect.isclass(self.target) else self.target


_ENTRIES: dict[str, dict[str, Entry]] = {s: {} for s in SECTIONS}
_LOADED: set[str] = set()
_PLUGINS_LOADED = False
_AUTO: list[tuple[type, dict[str, type]]] = []
_FAMILIES: list[str] = []


def register(section: str, name: str | None = None, *, runner_args: tuple[str, ...] = (), replace: bool = False,
             **meta) -> Callable:
    """Decorator: make ``obj`` buildable from a recipe as ``section: {component: name, ...}``.

    ``name`` defaults to the object's ``__name__``. Registering a name twice is an error unless
    ``replace`` (a test or plugin deliberately overriding a built-in)."""
    if section not in _ENTRIES:
        raise ValueError(f"register: unknown section {section!r} (sections: {', '.join(SECTIONS)})")

    def decorate(obj):
        key = name or obj.__name__
        old = _ENTRIES[section].get(key)
        if old is not None and old.target is not obj and not replace:
            raise ValueError(f"register: {section} component {key!r} is already registered "
                             f"({_where(old.target)}); pass replace=True to override it")
        _ENTRIES[section][key] = Entry(section, key, obj, tuple(runner_args), dict(meta))
        return obj

    return decorate


def unregister(section: str, name: str) -> None:
    """Remove a component (tests that register their own clean up with this)."""
    _ENTRIES[section].pop(name, None)


def _where(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _load(section: str) -> None:
    """Import the providers of ``section`` (once) and the installed plugins (once)."""
    global _PLUGINS_LOADED
    for module in PROVIDERS.get(section, ()):
        if module not in _LOADED:
            _LOADED.add(module)
            importlib.import_module(module)
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            importlib.import_module(ep.value.split(":", 1)[0])


def names(section: str) -> list[str]:
    _load(section)
    return sorted(_ENTRIES.get(section, {}))


def entries(section: str) -> Iterator[Entry]:
    _load(section)
    yield from list(_ENTRIES[section].values())


def entry(section: str, name: Any) -> Entry:
    """The registered component ``name`` of ``section``, or a :class:`RecipeError` listing what there is."""
    if section not in _ENTRIES:
        raise RecipeError(f"unknown section {section!r} (sections: {', '.join(SECTIONS)})")
    if not isinstance(name, str):
        raise RecipeError(f"expected a component name, got {name!r} ({type(name).__name__})")
    _load(section)
    found = _ENTRIES[section].get(name)
    if found is None:
        close = difflib.get_close_matches(name, list(_ENTRIES[section]), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        elsewhere = [s for s in SECTIONS if s != section and name in _ENTRIES[s]]
        where = f"; {name!r} is a {elsewhere[0]} component" if elsewhere else ""
        raise RecipeError(f"unknown {section} component {name!r}{hint}{where}; registered: "
                          f"{', '.join(sorted(_ENTRIES[section])) or '(none)'}")
    return found


def resolve(section: str, name: Any):
    """The function or class registered as ``name`` in ``section``."""
    return entry(section, name).target


def build(section: str, spec: dict | None, **runner_kwargs):
    """Instantiate a validated component section ``{"component": name, **args}`` (None stays None)."""
    if spec is None:
        return None
    args = dict(spec)
    return resolve(section, args.pop("component"))(**runner_kwargs, **args)


# ------------------------------------------------------------------------------------ model families


def register_auto(config_class: type, **auto_classes: type) -> None:
    """Register a model family with ``transformers``' Auto classes: ``AutoConfig`` for ``config_class``
    (by its ``model_type``) and each ``AutoModel*=model_class``, e.g.
    ``register_auto(RNNConfig, AutoModelForCausalLM=RNNForCausalLM)``."""
    import transformers

    transformers.AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    for auto_name, model_class in auto_classes.items():
        getattr(transformers, auto_name).register(config_class, model_class, exist_ok=True)
    _AUTO.append((config_class, dict(auto_classes)))


def declare_family(module: str) -> None:
    """A model package's modeling module (which calls :func:`register_auto` when imported), for
    :func:`load_models`; the package itself stays cheap to import."""
    if module not in _FAMILIES:
        _FAMILIES.append(module)


def section_checker(section: str):
    """The module that checks recipe section ``section`` as a whole (:data:`SECTION_CHECKERS`)."""
    return importlib.import_module(SECTION_CHECKERS[section])


def lazy_attributes(package: str, names: dict[str, str]):
    """A module-level ``__getattr__`` (PEP 562) for a package: each public name is imported from
    ``package.<module>`` the first time it is used, so importing the package (a model package, to register its
    builders; ``harness.generation``, to check a recipe) loads no heavy code."""

    def __getattr__(name: str):
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def load_models() -> list[str]:
    """Import every declared model family (built-in and plugins), so the Auto classes know them all;
    returns their model types."""
    _load("model")
    for module in list(_FAMILIES):
        importlib.import_module(module)
    return [config.model_type for config, _ in _AUTO]
