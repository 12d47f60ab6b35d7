"""Attention maps: what each head of each layer looks at, drawn as heatmaps (queries down, keys across).

:func:`attention_weights` runs a model with ``output_attentions=True`` (the written-out attention path, which
returns the softmax weights) and :func:`plot_attention_maps` draws a grid of layers × heads with the tokens on
both axes — the picture in which a head of a trained encoder sends "it" to "animal". The run report's hook
(:func:`attention_report`) draws the maps of the first example of the first evaluation split for a trained
Transformer or recurrent encoder-decoder (ours); for an encoder-decoder it draws the decoder's cross-attention over
the source (the soft alignment; the RNN decoders have one "layer" and one "head").

    from harness.models.transformer.diagnostics import attention_weights, plot_attention_maps
    weights, tokens = attention_weights(model, tokenizer, "The animal didn't cross the street because it was tired")
    plot_attention_maps(weights, tokens, "maps.png")
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

#: the report shows at most this many tokens and layers (the first ones) so the labels stay legible
REPORT_TOKENS = 24
REPORT_LAYERS = 4
REPORT_FILE = "attention_maps.png"
#: the models the report draws (ours; a wrapped checkpoint's attention implementation may not return weights)
REPORT_MODEL_TYPES = ("harness_transformer", "harness_rnn_seq2seq")


@torch.no_grad()
def attention_weights(model, tokenizer, text: str | None = None, input_ids=None, decoder_input_ids=None,
                      cross: bool | None = None):
    """``(weights, query_tokens, key_tokens)``: ``weights`` a ``(layers, heads, queries, keys)`` array of one example
    (from ``text`` or ``input_ids``), in eval mode. ``cross`` (default: for an encoder-decoder) gives the
    decoder's cross-attention (queries: target tokens, keys: source tokens), else self-attention of the encoder
    (or decoder-only stack)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        if input_ids is None:
            input_ids = tokenizer(text, return_tensors="pt")["input_ids"]
        input_ids = torch.as_tensor(input_ids).reshape(1, -1).to(device)
        encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
        cross = encoder_decoder if cross is None else cross
        kwargs = {"input_ids": input_ids, "output_attentions": True}
        if encoder_decoder:
            if decoder_input_ids is None:  # the model's own greedy output (it starts with the decoder start token)
                decoder_input_ids = model.generate(input_ids, max_new_tokens=REPORT_TOKENS, do_sample=False,
                                                   num_beams=1)[:, :REPORT_TOKENS]
            kwargs["decoder_input_ids"] = torch.as_tensor(decoder_input_ids).reshape(1, -1).to(device)
        outputs = model(**kwargs)
    finally:
        if was_training:
            model.train()
    if encoder_decoder:
        maps = outputs.cross_attentions if cross else outputs.encoder_attentions
        queries = kwargs["decoder_input_ids"][0] if cross else input_ids[0]
    else:
        maps = outputs.attentions
        queries = input_ids[0]
    if not maps or maps[0] is None:
        raise ValueError(f"{type(model).__name__} returned no attention weights")
    weights = torch.stack([m[0].float() for m in maps]).cpu().numpy()  # (layers, heads, queries, keys)
    return weights, token_labels(tokenizer, queries.tolist()), token_labels(tokenizer, input_ids[0].tolist())


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    """One readable label per token: the token's own text (byte-level BPE's ``Ġ`` / ``Ã¤`` decoded, so a German
    ``ä`` shows as ``ä``), its token string when that decodes to nothing (special tokens, a split character)."""
    if tokenizer is None:
        return [str(i) for i in ids]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    labels = []
    for token in tokens:
        text = tokenizer.convert_tokens_to_string([token]).strip()
        labels.append(text if text and "\ufffd" not in text else token)
    return labels


def plot_attention_maps(weights: np.ndarray, query_tokens: Sequence[str], key_tokens: Sequence[str] | None,
                        path: str | Path, title: str | None = None, max_layers: int | None = None) -> Path:
    """A grid of heatmaps, one row per layer and one column per head; darker = more attention."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key_tokens = query_tokens if key_tokens is None else key_tokens
    layers = weights.shape[0] if max_layers is None else min(max_layers, weights.shape[0])
    heads = weights.shape[1]
    cell = max(2.2, 0.16 * max(len(query_tokens), len(key_tokens)))
    fig, axes = plt.subplots(layers, heads, figsize=(max(6.0, cell * heads + 1), cell * layers + 0.6), squeeze=False)
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            ax.imshow(weights[layer, head], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=8)
            ax.set_xticks(range(len(key_tokens)))
            ax.set_yticks(range(len(query_tokens)))
            ax.set_xticklabels(key_tokens if layer == layers - 1 else [], rotation=90, fontsize=6)
            ax.set_yticklabels(query_tokens if head == 0 else [], fontsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _example(rows) -> tuple[list[int], list[int]] | None:
    """The first row's real input ids (at most :data:`REPORT_TOKENS`) and its labels (for an encoder-decoder, the
    target that teacher forcing feeds the decoder)."""
    if len(rows) == 0 or "input_ids" not in rows.column_names:
        return None
    row = rows[0]
    ids = [int(t) for t in row["input_ids"]]
    mask = row.get("attention_mask")
    if mask is not None:
        ids = [t for t, m in zip(ids, mask) if m]
    labels = row.get("labels")
    target = [int(t) for t in labels if t != -100] if isinstance(labels, (list, tuple)) else []
    return ids[:REPORT_TOKENS], target


def attention_report(model, tokenized: Mapping, splits: Sequence[str], output_dir: str | Path,
                     tokenizer=None) -> list[str] | None:
    """The run report's "Attention maps" section for a trained attention model, else None (a failure is a warning,
    never the run's failure)."""
    output_dir = Path(output_dir)
    (output_dir / REPORT_FILE).unlink(missing_ok=True)
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in REPORT_MODEL_TYPES or getattr(config, "attention", None) == "none":
        return None  # not ours, or a recurrent decoder without attention (nothing to draw)
    split = next((s for s in splits if s in tokenized), None)
    if split is None:
        return None
    try:
        example = _example(tokenized[split])
        if example is None:
            return None
        ids, target = example
        decoder_ids = None
        if config.is_encoder_decoder and target:
            decoder_ids = [config.decoder_start_token_id, *target][:REPORT_TOKENS]
        weights, queries, keys = attention_weights(model, tokenizer, input_ids=ids, decoder_input_ids=decoder_ids)
        kind = "cross-attention (decoder → source)" if config.is_encoder_decoder else "self-attention"
        plot_attention_maps(weights, queries, keys, output_dir / REPORT_FILE,
                            title=f"{kind}, first {split} example", max_layers=REPORT_LAYERS)
    except Exception as e:  # the report must not fail the run
        warnings.warn(f"attention maps skipped: {type(e).__name__}: {e}", stacklevel=2)
        return None
    shown = min(REPORT_LAYERS, weights.shape[0])
    return ["## Attention maps", "",
            f"{kind.capitalize()} weights of the trained model on the first {split} example ({len(keys)} tokens), "
            f"layers 1–{shown} × {weights.shape[1]} heads; row = query, column = key, brighter = more weight "
            "(`harness.models.transformer.diagnostics.attention_weights` draws any text).", "",
            f"![attention maps]({REPORT_FILE})", ""]


__all__ = ["attention_weights", "plot_attention_maps", "attention_report"]
