"""The recipe's ``model.quantization`` value checked without importing bitsandbytes (``harness validate`` runs
this); :mod:`harness.models.quantization` builds the ``BitsAndBytesConfig`` from it."""

from __future__ import annotations

import inspect

from harness.errors import HarnessError

#: the shorthands a recipe may give instead of a mapping
PRESETS = {
    "4bit": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
             "bnb_4bit_compute_dtype": "bfloat16"},
    "8bit": {"load_in_8bit": True},
}
_DTYPE_KEYS = ("bnb_4bit_compute_dtype", "bnb_4bit_quant_storage")
_DTYPES = ("float32", "bfloat16", "float16", "uint8")
KEY = "model.quantization"


def _settings(spec) -> dict:
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise HarnessError(f"{KEY}: expected one of {', '.join(PRESETS)} or a mapping of BitsAndBytesConfig "
                               f"keys, got {spec!r}")
        return dict(PRESETS[spec])
    if not isinstance(spec, dict):
        raise HarnessError(f"{KEY}: expected one of {', '.join(PRESETS)} or a mapping of BitsAndBytesConfig keys, "
                           f"got {type(spec).__name__}")
    return dict(spec)


def check(spec) -> dict:
    """The recipe's value as ``BitsAndBytesConfig`` keyword arguments, each key and value checked (no import of
    bitsandbytes: ``harness validate`` runs this without it)."""
    from transformers import BitsAndBytesConfig

    from harness.config.checking import closest

    args = _settings(spec)
    valid = [name for name, p in inspect.signature(BitsAndBytesConfig.__init__).parameters.items()
             if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]
    for key in args:
        if key not in valid:
            raise HarnessError(f"{KEY}.{key}: unknown key for BitsAndBytesConfig{closest(key, valid)}")
    bits = [key for key in ("load_in_4bit", "load_in_8bit") if args.get(key)]
    if len(bits) != 1:
        raise HarnessError(f"{KEY}: set exactly one of load_in_4bit: true and load_in_8bit: true (got "
                           f"{', '.join(bits) or 'neither'})")
    for key in _DTYPE_KEYS:
        if key in args and args[key] not in _DTYPES:
            raise HarnessError(f"{KEY}.{key}: expected one of {', '.join(_DTYPES)}, got {args[key]!r}")
    if args.get("bnb_4bit_quant_type", "nf4") not in ("nf4", "fp4"):
        raise HarnessError(f"{KEY}.bnb_4bit_quant_type: expected nf4 or fp4, got {args['bnb_4bit_quant_type']!r}")
    return args
