"""The sentence-transformers folder layout, both ways, without importing sentence-transformers.

A sentence-transformers checkpoint is a pipeline of modules listed in ``modules.json`` (``idx``, ``name``,
``path``, ``type``): a ``Transformer`` (the encoder and tokenizer files, at the folder's root when its
``path`` is ``""``, with ``sentence_bert_config.json``: ``max_seq_length``, ``do_lower_case``), a ``Pooling``
(``<path>/config.json``: the classic ``pooling_mode_cls_token`` / ``pooling_mode_mean_tokens`` /
``pooling_mode_max_tokens`` flags, or sentence-transformers 6's ``pooling_mode`` name), and an optional
``Normalize``; ``config_sentence_transformers.json`` names the similarity (``similarity_fn_name``).

:func:`read_sentence_transformers` reads such a folder into what a :class:`SiameseConfig` needs (the
checkpoint's own pooling, normalisation and similarity, never guessed), refusing modules it cannot represent
(a ``Dense`` projection, several pooling modes at once) with the file that names them.
:func:`export_sentence_transformers` writes a :class:`SiameseModel` in the classic layout, which every
sentence-transformers version from 2.x to 6.x loads (``SentenceTransformer(path)``).
(Nothing in sentence-transformers converts to or from a plain ``transformers`` model; this file does.)
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError

#: classic pooling flags ↔ our pooling names
_CLASSIC_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max"}
_UNSUPPORTED_FLAGS = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
_SIMILARITIES = {"cosine": "cosine", "dot": "dot", "dot_product": "dot", "euclidean": "euclidean"}


def is_sentence_transformers_folder(path: str | Path) -> bool:
    return (Path(path) / "modules.json").is_file()


def _json(path: Path) -> dict | list:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: missing (the sentence-transformers folder lists it)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HarnessError(f"{path}: not valid JSON ({e})") from None


def read_sentence_transformers(folder: str | Path) -> dict:
    """``{"transformer_path", "pooling", "normalize", "similarity", "max_seq_length", "do_lower_case"}`` of a
    sentence-transformers checkpoint folder."""
    folder = Path(folder)
    modules_file = folder / "modules.json"
    modules = _json(modules_file)
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise HarnessError(f"{modules_file}: expected a list of modules with a 'type' each")
    found: dict = {"transformer_path": None, "pooling": None, "normalize": False, "similarity": "cosine",
                   "max_seq_length": None, "do_lower_case": False}
    for position, module in enumerate(modules):
        kind = str(module["type"]).rsplit(".", 1)[-1]
        sub = folder / str(module.get("path", ""))
        if kind == "Transformer":
            if found["transformer_path"] is not None:
                raise HarnessError(f"{modules_file}: more than one Transformer module")
            found["transformer_path"] = str(sub)
            st_config = sub / "sentence_bert_config.json"
            if st_config.is_file():
                cfg = _json(st_config)
                found["max_seq_length"] = cfg.get("max_seq_length")
                found["do_lower_case"] = bool(cfg.get("do_lower_case", False))
        elif kind == "Pooling":
            found["pooling"] = _pooling_mode(sub / "config.json")
        elif kind == "Normalize":
            found["normalize"] = True
        else:
            raise HarnessError(f"{modules_file}: module {position} is a {module['type']} — only Transformer, Pooling "
                               "and Normalize modules map onto the Siamese bi-encoder")
    if found["transformer_path"] is None:
        raise HarnessError(f"{modules_file}: no Transformer module (the encoder)")
    if found["pooling"] is None:
        raise HarnessError(f"{modules_file}: no Pooling module; the encoder's token states need one")
    st_file = folder / "config_sentence_transformers.json"
    if st_file.is_file():
        name = _json(st_file).get("similarity_fn_name")
        if name is not None:
            if name not in _SIMILARITIES:
                raise HarnessError(f"{st_file}: similarity_fn_name {name!r} is not one of {sorted(_SIMILARITIES)}")
            found["similarity"] = _SIMILARITIES[name]
    return found


def _pooling_mode(path: Path) -> str:
    cfg = _json(path)
    if "pooling_mode" in cfg and isinstance(cfg["pooling_mode"], str):  # sentence-transformers >= 6
        mode = {"mean": "mean", "cls": "cls", "max": "max"}.get(cfg["pooling_mode"])
        if mode is None:
            raise HarnessError(f"{path}: pooling_mode {cfg['pooling_mode']!r}; the Siamese model pools by mean, cls or max")
        return mode
    modes = [name for flag, name in _CLASSIC_FLAGS.items() if cfg.get(flag)]
    other = [flag for flag in _UNSUPPORTED_FLAGS if cfg.get(flag)]
    if other or len(modes) != 1:
        raise HarnessError(f"{path}: pooling {modes + other} — exactly one of mean, cls or max is supported")
    return modes[0]


def export_sentence_transformers(model, tokenizer, path: str | Path, do_lower_case: bool = False) -> Path:
    """Write ``model`` (a :class:`SiameseModel`) and its tokenizer as a sentence-transformers folder: the encoder
    and tokenizer at the root, ``1_Pooling/config.json``, ``2_Normalize/`` when the model normalises,
    ``modules.json``, ``sentence_bert_config.json`` and ``config_sentence_transformers.json``."""
    import transformers

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = model.config
    model.encoder.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    max_len = config.max_seq_length or min(int(getattr(tokenizer, "model_max_length", 512) or 512),
                                           int(getattr(config.encoder, "max_position_embeddings", 512) or 512))
    (path / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": int(max_len), "do_lower_case": do_lower_case}, indent=2) + "\n")
    pooling = {"word_embedding_dimension": int(config.encoder.hidden_size),
               **{flag: config.pooling == name for flag, name in _CLASSIC_FLAGS.items()},
               **{flag: False for flag in _UNSUPPORTED_FLAGS}}
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2) + "\n")
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if config.normalize:
        (path / "2_Normalize").mkdir(exist_ok=True)
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (path / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    import torch

    (path / "config_sentence_transformers.json").write_text(json.dumps({
        "__version__": {"transformers": transformers.__version__, "pytorch": torch.__version__},
        "prompts": {}, "default_prompt_name": None, "similarity_fn_name": config.similarity}, indent=2) + "\n")
    return path
