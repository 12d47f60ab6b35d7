"""Bottleneck adapters and AdapterFusion as ``peft`` recipe methods, beside PEFT's LoRA family:

    peft: {method: houlsby, reduction_factor: 16, modules_to_save: [pooler]}    # after attention and FFN
    peft: {method: pfeiffer, reduction_factor: 16}                               # after the FFN only
    peft: {method: adapter_fusion, adapters: [runs/a/sst2/model, runs/a/mrpc/model]}

The recipe's keys are checked against the dataclasses below, as PEFT methods' are against PEFT's config
classes. The layers, wrapper and file format are :mod:`harness.modules.adapters` (why not PEFT: there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness import registry
from harness.errors import HarnessError


@dataclass
class BottleneckAdapterConfig:
    """A bottleneck adapter's settings (the recipe's ``peft`` keys)."""

    reduction_factor: int = 16  # bottleneck = hidden size / reduction_factor (Houlsby et al. 2019 use 8-64 ...)
    bottleneck_size: int | None = None  # ... or this size outright
    activation: str = "relu"
    train_layer_norms: bool = True  # Houlsby et al. train the base's layer norms with the adapters
    modules_to_save: list[str] | None = None  # more modules to train and save fully (the new head always is)
    attention_output: str = "attention.output.dense"  # the attention sub-layer's output projection in a block
    ffn_output: str = "output.dense"  # the feed-forward sub-layer's output projection in a block


@dataclass
class AdapterFusionConfig:
    """AdapterFusion's settings: the trained adapters (folders holding ``bottleneck_config.json``: a run's
    ``model/`` folder or the run folder), optional names for them, and what trains besides the fusion layers."""

    adapters: list[str] | None = None
    names: list[str] | None = None
    train_layer_norms: bool = False
    modules_to_save: list[str] | None = None


def _positive(value, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise HarnessError(f"peft.{key}: expected an integer ≥ 1, got {value!r}")
    return value


class BottleneckMethod:
    """``houlsby`` or ``pfeiffer`` placement."""

    def __init__(self, method: str):
        self.method = method

    def config_class(self):
        return BottleneckAdapterConfig

    def apply(self, model, args: dict, new_modules: list[str]):
        from harness.modules.adapters import PLACES, BottleneckModel

        c = BottleneckAdapterConfig(**args)
        hidden = getattr(getattr(model, "config", None), "hidden_size", None)
        if c.bottleneck_size is not None:
            size = _positive(c.bottleneck_size, "bottleneck_size")
        elif hidden is None:
            raise HarnessError("peft.bottleneck_size: the model's config has no hidden_size to divide by "
                               "reduction_factor; give the size")
        else:
            size = max(1, hidden // _positive(c.reduction_factor, "reduction_factor"))
        config = {"method": self.method, "places": list(PLACES[self.method]), "size": size,
                  "activation": c.activation, "adapters": ["default"], "train_layer_norms": c.train_layer_norms,
                  "modules_to_save": sorted(set(c.modules_to_save or []) | set(new_modules)),
                  "attention_output": c.attention_output, "ffn_output": c.ffn_output,
                  "base_model_name_or_path": model.name_or_path}
        return BottleneckModel(model, config)


def adapter_folder(spec: str, where: str) -> Path:
    """A folder holding a saved adapter: ``spec`` itself or its ``model/`` (a run folder)."""
    from harness.modules.adapters import CONFIG_NAME

    path = Path(spec).expanduser()
    for folder in (path, path / "model"):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise HarnessError(f"{where}: {spec} holds no bottleneck adapter ({CONFIG_NAME}; train one with "
                       "peft.method houlsby or pfeiffer)")


def adapter_name(folder: Path) -> str:
    """A run's name for its adapter: the run folder's name (``runs/x/sst2/model`` → ``sst2``)."""
    run = folder.parent if folder.name == "model" else folder
    return re.sub(r"\W", "_", run.name) or "adapter"


class FusionMethod:
    def config_class(self):
        return AdapterFusionConfig

    def apply(self, model, args: dict, new_modules: list[str]):
        from harness.modules.adapters import fuse, read_config

        c = AdapterFusionConfig(**args)
        if not c.adapters or len(c.adapters) < 2:
            raise HarnessError("peft.adapters: AdapterFusion needs the folders of at least two trained adapters")
        folders = [adapter_folder(s, f"peft.adapters[{i}]") for i, s in enumerate(c.adapters)]
        if c.names is not None and len(c.names) != len(folders):
            raise HarnessError(f"peft.names: {len(c.names)} names for {len(folders)} adapters")
        names = list(c.names) if c.names is not None else [adapter_name(f) for f in folders]
        bad = [n for n in names if not re.fullmatch(r"[A-Za-z_]\w*", n)]
        if bad:
            raise HarnessError(f"peft.names: {bad[0]!r} is not a name (letters, digits, underscores)")
        if len(set(names)) != len(names):
            names = [f"{n}_{i}" for i, n in enumerate(names)]
        for name, folder in zip(names, folders):
            base = read_config(folder).get("base_model_name_or_path")
            if base and model.name_or_path and base != model.name_or_path:
                raise HarnessError(f"peft.adapters: {folder} was trained on {base}, this model is {model.name_or_path}")
        modules = sorted(set(c.modules_to_save or []) | set(new_modules))
        return fuse(model, dict(zip(names, folders)), modules, c.train_layer_norms)


registry.register("peft", "houlsby")(BottleneckMethod("houlsby"))
registry.register("peft", "pfeiffer")(BottleneckMethod("pfeiffer"))
registry.register("peft", "adapter_fusion")(FusionMethod())
