"""The recipe builder ``siamese``: a :class:`~harness.models.siamese.modeling_siamese.SiameseModel` for a pairs /
triplets task (:mod:`harness.data.pairs`), from a pretrained checkpoint or from a fresh encoder config."""

from __future__ import annotations

from harness import registry
from harness.data.base import Task
from harness.errors import HarnessError
from harness.registry import register


@register("model", "siamese", runner_args=("task",))
def siamese(
    task: Task,
    checkpoint: str | None = None,
    encoder: dict | None = None,
    pooling: str | None = None,
    normalize: bool | None = None,
    similarity: str | None = None,
    max_seq_length: int | None = None,
    min_frequency: int = 1,
    lowercase: bool = False,
    trust_remote_code: bool = False,
):
    """A Siamese bi-encoder: one shared encoder, pooling, optional normalisation.

    ``checkpoint``: a Hub id or folder — a sentence-transformers folder (``modules.json``: its own pooling,
    Normalize module, ``max_seq_length`` and similarity are read from it), a plain ``transformers`` encoder
    (BERT family, a run's saved model: pooling ``mean`` unless set), or a Siamese model saved by a run.
    ``encoder``: instead, a fresh encoder config (``model_type`` and its keys, e.g. ``{model_type: bert,
    hidden_size: 64, ...}``, or ``harness_transformer``) with a word-level tokenizer built from the task's
    training text. ``pooling`` / ``normalize`` / ``similarity`` / ``max_seq_length`` override the checkpoint's.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from harness.models.pretrained import check_vocabulary, resolve_checkpoint
    from harness.models.siamese.configuration_siamese import SiameseConfig
    from harness.models.siamese.modeling_siamese import SiameseModel
    from harness.models.siamese.sentence_transformers_io import (is_sentence_transformers_folder,
                                                                 read_sentence_transformers)

    if task.auto_model_class != "AutoModel":
        raise HarnessError(f"model.component: siamese embeds texts; task {task.info.name!r} needs "
                           f"{task.auto_model_class} (use a pairs task: data.component sts_benchmark, mrpc_pairs, "
                           "text_pairs)")
    if (checkpoint is None) == (encoder is None):
        raise HarnessError("model: give exactly one of checkpoint (a pretrained encoder) or encoder (a fresh config)")
    registry.load_models()
    overrides = {k: v for k, v in {"pooling": pooling, "normalize": normalize, "similarity": similarity,
                                   "max_seq_length": max_seq_length}.items() if v is not None}
    if encoder is not None:
        from harness.data.tokenizers import build_word_tokenizer

        spec = dict(encoder)
        kind = spec.pop("model_type", None)
        if not kind:
            raise HarnessError("model.encoder.model_type: required (bert, harness_transformer, ...)")
        limit = int(spec.get("max_position_embeddings", 512))
        tokenizer = build_word_tokenizer(task.texts(), min_frequency=min_frequency, lowercase=lowercase,
                                         model_max_length=limit)
        try:
            enc_config = AutoConfig.for_model(kind, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                              **spec)
        except (ValueError, TypeError) as e:
            raise HarnessError(f"model.encoder: {e}") from None
        try:
            config = SiameseConfig(encoder=enc_config.to_dict(), **{"pooling": "mean", **overrides})
        except ValueError as e:
            raise HarnessError(f"model: {e}") from None
        return SiameseModel(config), tokenizer

    source = resolve_checkpoint(checkpoint)
    if AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code).model_type == SiameseConfig.model_type:
        model = AutoModel.from_pretrained(source)
        for key, value in overrides.items():
            setattr(model.config, key, value)
        return model, AutoTokenizer.from_pretrained(source)
    settings = {"pooling": "mean", "normalize": False, "similarity": "cosine", "max_seq_length": None}
    encoder_path = source
    if is_sentence_transformers_folder(source):
        read = read_sentence_transformers(source)
        encoder_path = read["transformer_path"]
        settings.update({k: read[k] for k in settings})
    settings.update(overrides)
    pretrained = AutoModel.from_pretrained(encoder_path, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(encoder_path, trust_remote_code=trust_remote_code)
    try:
        config = SiameseConfig(encoder=pretrained.config.to_dict(), **settings)
    except ValueError as e:
        raise HarnessError(f"model: {e}") from None
    model = SiameseModel(config)
    model.encoder.load_state_dict(pretrained.state_dict())
    model.config.name_or_path = checkpoint
    if settings["max_seq_length"]:
        tokenizer.model_max_length = settings["max_seq_length"]
    check_vocabulary(model, tokenizer, "model.checkpoint")
    return model, tokenizer
