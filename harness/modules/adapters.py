"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021) and AdapterFusion (Pfeiffer et al. 2021)
over a transformers encoder, with their own save / load.

Why not PEFT: PEFT has no bottleneck adapter, and its registration of a custom method
(``peft.utils.register_peft_method``, PEFT 0.21) only accepts a name already in its closed ``PeftType`` enum —
a new method means patching PEFT's enum at import, and an ``adapter_config.json`` written that way would be
unreadable by PEFT itself wherever the patch is not loaded. The ``adapters`` package (AdapterHub) pins
transformers 4.x. So the layers, the wrapper and the file format are written here, kept apart from PEFT's:
``bottleneck_config.json`` + ``bottleneck_model.safetensors`` (adapter and fusion weights, the head, and the
layer norms when they train — never a frozen base weight) beside the base's ``config.json`` and the tokenizer.

Placement: a block's sub-layer ends in an output projection (``attention.output.dense``,
``output.dense`` in the BERT family) followed by dropout, the residual and a layer norm. An adapter is
applied to that projection's output (a forward hook; the base modules and their weight names are untouched):
Houlsby after the attention output and after the feed-forward output, Pfeiffer after the feed-forward
output only. Each adapter is ``x + up(act(down(x)))`` with ``up`` zero-initialised, so the adapted model
starts as exactly the base model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from harness.errors import HarnessError

CONFIG_NAME = "bottleneck_config.json"
WEIGHTS_NAME = "bottleneck_model.safetensors"
FORMAT = 1
PLACES = {"houlsby": ("attention", "ffn"), "pfeiffer": ("ffn",)}
DEFAULT_OUTPUTS = {"attention": "attention.output.dense", "ffn": "output.dense"}
_BLOCK = re.compile(r"(?:^|\.)(?:layer|layers|block|blocks|h)\.\d+$")
POINT = "bottleneck"  # the child each adapted sub-layer's parent gets


class BottleneckAdapter(nn.Module):
    """down (hidden → size) → nonlinearity → up (size → hidden), plus the input; identity at init."""

    def __init__(self, hidden: int, size: int, activation: str = "relu"):
        super().__init__()
        from transformers.activations import ACT2FN

        if activation not in ACT2FN:
            raise HarnessError(f"peft.activation: unknown {activation!r} (one of: {', '.join(sorted(ACT2FN))})")
        self.down = nn.Linear(hidden, size)
        self.act = ACT2FN[activation]
        self.up = nn.Linear(size, hidden)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.act(self.down(x)))


class AdapterFusion(nn.Module):
    """Attention over the outputs of several adapters at one place (Pfeiffer et al. 2021, §3.2): the query
    is the sub-layer's output ``h``, keys and values the adapters' outputs ``z_i``;
    ``out = Σ_i softmax_i(q(h)·k(z_i)) v(z_i)``. ``v`` starts as the identity and ``q``, ``k`` small, so
    fusion starts as the average of the adapters."""

    def __init__(self, hidden: int):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        for lin in (self.query, self.key):
            nn.init.normal_(lin.weight, std=0.02)
            nn.init.zeros_(lin.bias)
        with torch.no_grad():
            self.value.weight.copy_(torch.eye(hidden))
            self.value.bias.zero_()
        self.last_weights: torch.Tensor | None = None  # the latest attention over the adapters (for inspection)

    def forward(self, h: torch.Tensor, outputs: list[torch.Tensor]) -> torch.Tensor:
        z = torch.stack(outputs, dim=-2)  # (..., n_adapters, hidden)
        scores = (self.query(h).unsqueeze(-2) * self.key(z)).sum(-1)  # (..., n_adapters)
        weights = scores.softmax(-1)
        self.last_weights = weights.detach()
        return (weights.unsqueeze(-1) * self.value(z)).sum(-2)


class AdapterPoint(nn.Module):
    """The adapters at one place; with ``fusion`` their outputs are fused, else the one adapter is applied."""

    def __init__(self, hidden: int, names: list[str], size: int, activation: str, fusion: bool):
        super().__init__()
        self.adapters = nn.ModuleDict({n: BottleneckAdapter(hidden, size, activation) for n in names})
        self.fusion = AdapterFusion(hidden) if fusion else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fusion is None:
            for adapter in self.adapters.values():
                x = adapter(x)
            return x
        return self.fusion(x, [a(x) for a in self.adapters.values()])


def _adapt_hook(point: AdapterPoint):
    def hook(module, args, output):
        return point(output)

    return hook


def adapted_places(model: nn.Module, places: tuple[str, ...], outputs: dict[str, str]) -> list[tuple[str, nn.Module]]:
    """``(name, linear)`` of every sub-layer output projection to adapt, block by block."""
    blocks = [n for n, _ in model.named_modules() if _BLOCK.search(n)]
    if not blocks:
        raise HarnessError(f"peft: {type(model).__name__} has no numbered blocks (expected e.g. encoder.layer.N) "
                           "to put bottleneck adapters in")
    found = []
    for block in blocks:
        for place in places:
            name = f"{block}.{outputs[place]}"
            try:
                module = model.get_submodule(name)
            except AttributeError:
                key = "attention_output" if place == "attention" else "ffn_output"
                raise HarnessError(f"peft.{key}: {type(model).__name__} has no module {name} "
                                   f"(set peft.{key} to the {place} sub-layer's output projection inside a block)")
            if not isinstance(module, nn.Linear):
                raise HarnessError(f"peft: {name} is a {type(module).__name__}, not a linear output projection")
            found.append((name, module))
    return found


class BottleneckModel(nn.Module):
    """A transformers model with bottleneck adapters (or AdapterFusion) inserted; forward is the base's.

    ``config`` (saved as ``bottleneck_config.json``): ``method`` (houlsby | pfeiffer | fusion), ``places``,
    ``size``, ``activation``, ``adapters`` (names), ``train_layer_norms``, ``modules_to_save`` (the head),
    ``attention_output`` / ``ffn_output`` (the projections' paths inside a block), ``base_model_name_or_path``.
    """

    def __init__(self, base: nn.Module, config: dict):
        super().__init__()
        self.base_model = base
        self.bottleneck_config = dict(config)
        c = self.bottleneck_config
        outputs = {"attention": c["attention_output"], "ffn": c["ffn_output"]}
        self._adapter_hooks = []
        for name, linear in adapted_places(base, tuple(c["places"]), outputs):
            parent = base.get_submodule(name.rsplit(".", 1)[0])
            if hasattr(parent, POINT):
                raise HarnessError(f"peft: {name.rsplit('.', 1)[0]} already has adapters")
            point = AdapterPoint(linear.out_features, list(c["adapters"]), c["size"], c["activation"],
                                 c["method"] == "fusion").to(device=linear.weight.device, dtype=linear.weight.dtype)
            parent.add_module(POINT, point)
            self._adapter_hooks.append(linear.register_forward_hook(_adapt_hook(point)))
        self.set_trainable()

    # ----------------------------------------------------------------- what trains, what is saved

    def _in_head(self, name: str) -> bool:
        """In one of ``modules_to_save`` (a module path, or its last parts: ``pooler`` matches ``bert.pooler``)."""
        return any(name.startswith(f"{m}.") or f".{m}." in f".{name}"
                   for m in self.bottleneck_config.get("modules_to_save") or [])

    def is_saved(self, name: str) -> bool:
        """A parameter the adapter file holds (``name`` as in ``base_model.named_parameters()``)."""
        if f".{POINT}." in f".{name}":
            return True
        if self._in_head(name):
            return True
        return bool(self.bottleneck_config.get("train_layer_norms")) and name in self._layer_norm_names()

    def _layer_norm_names(self) -> set[str]:
        return {f"{m}.{p}" if m else p for m, mod in self.base_model.named_modules()
                if isinstance(mod, nn.LayerNorm) and f".{POINT}." not in f".{m}."
                for p, _ in mod.named_parameters(recurse=False)}

    def set_trainable(self) -> None:
        """Base frozen; adapters (or, for fusion, the fusion layers only), the head and — with
        ``train_layer_norms`` — the base's layer norms train."""
        fusion = self.bottleneck_config["method"] == "fusion"
        for name, p in self.base_model.named_parameters():
            if f".{POINT}." in f".{name}":
                p.requires_grad_(".fusion." in name if fusion else True)
            else:
                p.requires_grad_(self.is_saved(name))

    # ----------------------------------------------------------------- the PeftModel-like surface

    def forward(self, *args, **kwargs):
        return self.base_model(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model, name)

    def get_base_model(self) -> nn.Module:
        return self.base_model

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().contiguous() for n, p in self.base_model.named_parameters() if self.is_saved(n)}

    def save_pretrained(self, path, safe_serialization: bool = True, **_) -> None:
        """``bottleneck_config.json`` and ``bottleneck_model.safetensors`` (the adapters, the head, the
        trained layer norms; no frozen base weight)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = {**self.bottleneck_config, "format": FORMAT,
                  "base_model_name_or_path": self.bottleneck_config.get("base_model_name_or_path")
                  or getattr(self.base_model, "name_or_path", "")}
        (path / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        tensors = {n: t.cpu() for n, t in self.adapter_state_dict().items()}
        save_file(tensors, str(path / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, base: nn.Module, path) -> BottleneckModel:
        """The adapters saved in ``path`` on ``base`` (the same base checkpoint they were trained on)."""
        config = read_config(path)
        model = cls(base, config)
        load_into(model, Path(path) / WEIGHTS_NAME)
        return model


def read_config(path) -> dict:
    file = Path(path) / CONFIG_NAME
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise HarnessError(f"{file}: cannot be read as a bottleneck adapter config ({e})") from e
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise HarnessError(f"{file}: not a bottleneck adapter config of format {FORMAT}")
    missing = [k for k in ("method", "places", "size", "activation", "adapters", "attention_output", "ffn_output")
               if k not in config]
    if missing:
        raise HarnessError(f"{file}: missing key(s) {', '.join(missing)}")
    return config


def load_into(model: BottleneckModel, weights: Path) -> None:
    """Load an adapter file into ``model.base_model``: every tensor must land on a parameter of the same
    shape (a file for another base or placement is refused, not half-loaded)."""
    from safetensors.torch import load_file

    if not weights.is_file():
        raise HarnessError(f"{weights}: not found")
    tensors = load_file(str(weights))
    params = dict(model.base_model.named_parameters())
    for key, value in tensors.items():
        if key not in params:
            raise HarnessError(f"{weights}: holds {key}, which this model does not have (another base model or "
                               "placement?)")
        if params[key].shape != value.shape:
            raise HarnessError(f"{weights}: {key} has shape {tuple(value.shape)}, the model's is "
                               f"{tuple(params[key].shape)}")
        with torch.no_grad():
            params[key].copy_(value)


def fuse(base: nn.Module, sources: dict[str, Path], modules_to_save: list[str], train_layer_norms: bool) -> BottleneckModel:
    """AdapterFusion over trained adapters (``name -> folder`` holding ``bottleneck_config.json``): the adapters
    are loaded and frozen, a fusion layer is added at each place they sit."""
    sources = {name: Path(path) for name, path in sources.items()}
    configs = {name: read_config(path) for name, path in sources.items()}
    first_name, first = next(iter(configs.items()))
    keys = ("places", "size", "activation", "attention_output", "ffn_output")
    for name, config in configs.items():
        if config["method"] == "fusion":
            raise HarnessError(f"peft.adapters: {sources[name]} is itself a fusion; fuse single task adapters")
        if config.get("train_layer_norms"):
            raise HarnessError(f"peft.adapters: {sources[name]} was trained with train_layer_norms (its base layer "
                               "norms changed, which the other adapters do not share); train adapters for fusion with "
                               "peft.train_layer_norms=false")
        differ = [k for k in keys if config[k] != first[k]]
        if differ:
            raise HarnessError(f"peft.adapters: {sources[name]} differs from {sources[first_name]} in "
                               f"{', '.join(differ)}; fused adapters must share placement and size")
    config = {"method": "fusion", **{k: first[k] for k in keys}, "adapters": list(sources),
              "train_layer_norms": train_layer_norms, "modules_to_save": modules_to_save,
              "base_model_name_or_path": first.get("base_model_name_or_path")}
    model = BottleneckModel(base, config)
    marker = f".{POINT}.adapters."
    for name, path in sources.items():
        def only_adapters(key: str, name=name) -> str:
            return key.replace(f"{marker}{configs[name]['adapters'][0]}.", f"{marker}{name}.")

        from safetensors import safe_open

        if not (path / WEIGHTS_NAME).is_file():
            raise HarnessError(f"peft.adapters: {path / WEIGHTS_NAME} not found")
        with safe_open(str(path / WEIGHTS_NAME), "pt") as f:
            keys_in = [k for k in f.keys() if marker in k]
            tensors = {only_adapters(k): f.get_tensor(k) for k in keys_in}
        if not tensors:
            raise HarnessError(f"peft.adapters: {path / WEIGHTS_NAME} holds no adapter weights")
        params = dict(model.base_model.named_parameters())
        for key, value in tensors.items():
            if key not in params or params[key].shape != value.shape:
                raise HarnessError(f"peft.adapters: {path / WEIGHTS_NAME}: {key} does not fit this base model")
            with torch.no_grad():
                params[key].copy_(value)
    model.set_trainable()
    return model
