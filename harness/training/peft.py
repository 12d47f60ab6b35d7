"""PEFT methods (LoRA and its family) for the recipe's ``peft`` section, and wrapping a model with one.

PEFT does the work; this registers the methods a recipe may name (section ``peft``; the recipe's other
keys are checked against the method's PEFT config class), picks the task type, and makes sure every
module that was freshly initialised when the checkpoint was loaded (the classification head, and a pooler
the checkpoint lacks) is trained and saved with the adapter, not left frozen at random values. A registered
method object with an ``apply`` method is one of our own (bottleneck adapters and AdapterFusion:
:mod:`harness.training.adapters`) and wraps the model itself.
"""

from __future__ import annotations

from harness import registry


class PeftMethod:
    """A PEFT method by its config class's name in the ``peft`` package."""

    def __init__(self, config_name: str, **defaults):
        self.config_name = config_name
        self.defaults = defaults  # settings the method name implies (dora: use_dora=True); the recipe may not undo them

    def config_class(self):
        import peft

        return getattr(peft, self.config_name)


for _method, _config in {"lora": "LoraConfig", "ia3": "IA3Config", "loha": "LoHaConfig", "lokr": "LoKrConfig"}.items():
    registry.register("peft", _method)(PeftMethod(_config))
registry.register("peft", "dora")(PeftMethod("LoraConfig", use_dora=True))  # LoRA with weight-decomposed updates

_TASK_TYPES = {
    "AutoModelForSequenceClassification": "SEQ_CLS",
    "AutoModelForTokenClassification": "TOKEN_CLS",
    "AutoModelForCausalLM": "CAUSAL_LM",
    "AutoModelForSeq2SeqLM": "SEQ_2_SEQ_LM",
}


def apply_peft(model, spec: dict, auto_model_class: str):
    from peft import get_peft_model

    from harness.errors import HarnessError
    from harness.models.quantization import is_quantized

    if not getattr(model, "name_or_path", ""):
        raise HarnessError(
            f"peft: the model ({type(model).__name__}) has no checkpoint path to reload an adapter onto (built from "
            "scratch, or a wrapper such as the siamese bi-encoder that PEFT runs do not support yet); use a "
            "pretrained model component (e.g. pretrained_classifier) or remove the peft section"
        )
    args = dict(spec)
    method = args.pop("method")
    new_modules = list(getattr(model, "harness_new_modules", []))
    target = registry.resolve("peft", method)
    quantized = is_quantized(model)
    if hasattr(target, "apply"):  # a method of our own (bottleneck adapters: harness.training.adapters)
        if quantized:
            raise HarnessError(f"peft.method: {method!r} is not built for a quantized base (model.quantization); "
                               "use a PEFT method (lora, dora, ia3, ...) for QLoRA, or remove model.quantization")
        return target.apply(model, args, new_modules)
    if quantized:  # QLoRA: layer norms and the head in fp32, the quantized body frozen, inputs carry gradients
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    for key, value in target.defaults.items():
        if args.setdefault(key, value) != value:
            raise HarnessError(f"peft.{key}: method {method!r} always sets {key}={value!r}; remove the key "
                               "or pick another method")
    if new_modules:
        args["modules_to_save"] = sorted(set(args.get("modules_to_save") or []) | set(new_modules))
    config = target.config_class()(task_type=_TASK_TYPES.get(auto_model_class), **args)
    import warnings

    with warnings.catch_warnings():  # PEFT calls transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def _count(p) -> int:
    """A parameter's weight count; a 4-bit one (bitsandbytes' ``Params4bit``) packs two weights per byte of its
    storage, so its ``numel`` is a fraction of the weights it holds (as PEFT counts them)."""
    if type(p).__name__ == "Params4bit":
        return p.numel() * 2 * p.element_size()
    return p.numel()


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) weight counts (a quantized base counted by the weights it holds, not its bytes)."""
    trainable = sum(_count(p) for p in model.parameters() if p.requires_grad)
    total = sum(_count(p) for p in model.parameters())
    return trainable, total
