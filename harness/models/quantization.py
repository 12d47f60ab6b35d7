"""4-bit and 8-bit pretrained bases for QLoRA (Dettmers et al. 2023), through ``bitsandbytes`` and
``transformers``' ``BitsAndBytesConfig``: the recipe's ``model.quantization``.

transformers quantizes while loading and PEFT trains adapters over the quantized layers; this module turns the
recipe's value into the config, checks it (one error per bad key, naming it), and keeps the task head in full
precision. ``bitsandbytes`` (≥ 0.48) runs on CPUs as well as CUDA GPUs, so a QLoRA recipe trains anywhere;
only a GPU makes it fast.

* ``quantization: 4bit`` — QLoRA's setting: NF4 weights, double quantization of the scales, bf16 compute.
* ``quantization: 8bit`` — LLM.int8() weights (Dettmers et al. 2022).
* a mapping — ``BitsAndBytesConfig``'s own keys (``load_in_4bit``, ``bnb_4bit_quant_type``, …), checked
  against its signature; dtypes by name (``bnb_4bit_compute_dtype: float16``).

What transformers does not do for a classifier: its default keeps the last module and tied weights in full
precision but quantized a freshly initialised sequence-classification head in our tests (a 4-bit head cannot
be trained). So every module outside the checkpoint's body (``model.base_model_prefix``: ``bert``, ``roberta``
…) — the task head — is added to ``llm_int8_skip_modules``.
"""

from __future__ import annotations

from harness.config.quantization import KEY, check
from harness.errors import HarnessError

__all__ = ["KEY", "bnb_config", "check", "head_modules", "is_quantized", "load_kwargs", "saved_load_kwargs"]


def head_modules(auto, config, trust_remote_code: bool = False) -> list[str]:
    """The top-level modules of ``auto``'s model for ``config`` outside its pretrained body (the task head), found
    on the meta device (no memory, no weights)."""
    import torch

    with torch.device("meta"):
        model = auto.from_config(config, trust_remote_code=trust_remote_code)
    body = getattr(model, "base_model_prefix", "")
    names = [name for name, _ in model.named_children()]
    if body not in names:  # the whole model is the body (T5: shared, encoder, decoder, lm_head)
        return []
    return [name for name in names if name != body]


def bnb_config(spec, auto, config, trust_remote_code: bool = False):
    """A checked ``BitsAndBytesConfig`` for ``spec`` (see the module docstring), or None for no quantization."""
    if spec is None:
        return None
    args = check(spec)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise HarnessError(f"{KEY}: needs the bitsandbytes package (`pip install bitsandbytes`, ≥ 0.48 for CPUs); "
                           f"it is not installed ({e})") from e
    from transformers import BitsAndBytesConfig

    skip = list(args.get("llm_int8_skip_modules") or [])
    args["llm_int8_skip_modules"] = skip + [m for m in head_modules(auto, config, trust_remote_code) if m not in skip]
    return BitsAndBytesConfig(**args)


def load_kwargs(spec, auto, config, trust_remote_code: bool = False) -> dict:
    """``from_pretrained`` keyword arguments for a quantized base: the config, and the whole model on this
    process's device (under DDP each process holds its own copy; bitsandbytes quantizes while the weights are
    moved there)."""
    quantization = bnb_config(spec, auto, config, trust_remote_code)
    if quantization is None:
        return {}
    _quiet()
    from accelerate import PartialState

    return {"quantization_config": quantization, "device_map": {"": PartialState().device}}


class _Once:
    """A logging filter that lets a message through the first time only."""

    def __init__(self, prefix: str):
        self.prefix, self.seen = prefix, False

    def filter(self, record) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        seen, self.seen = self.seen, True
        return not seen


def _quiet() -> None:
    """bitsandbytes' int8 matmul logs at every call that fp32 inputs are cast to fp16 (hundreds of lines per run;
    it is LLM.int8()'s documented behaviour): once is enough."""
    import logging

    log = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _Once) for f in log.filters):
        log.addFilter(_Once("MatMul8bitLt: inputs will be cast"))


def is_quantized(model) -> bool:
    return bool(getattr(model, "is_quantized", False) or getattr(model, "is_loaded_in_4bit", False)
                or getattr(model, "is_loaded_in_8bit", False))


def saved_load_kwargs(saved: dict, where: str) -> dict:
    """``from_pretrained`` keyword arguments that quantize a saved adapter's base as it was trained
    (``saved``: the ``quantization_config`` of the base config saved beside the adapter)."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise HarnessError(f"{where}: the adapter was trained on a quantized base ({saved.get('quant_method')}); "
                           f"loading it needs the bitsandbytes package (`pip install bitsandbytes`): {e}") from e
    from accelerate import PartialState
    from transformers import BitsAndBytesConfig

    _quiet()
    return {"quantization_config": BitsAndBytesConfig.from_dict(saved), "device_map": {"": PartialState().device}}
