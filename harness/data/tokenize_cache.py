"""Tokenized splits kept across runs: a second run of the same data with the same tokenizer reads them back.

The key is everything the tokenized rows depend on — each raw split's ``datasets`` fingerprint (a hash of its
content, or of its Arrow cache files), the tokenizer's identity (its class, the backend's full JSON — vocabulary,
normalizer, pre-tokenizer, post-processor — without the per-call truncation/padding state, its special tokens,
sides and length limit), ``training.max_length``, what the task says decides its tokenization
(:meth:`harness.data.base.Task.tokenize_cache_key`: text columns, problem type ...), and a hash of the source file
of the class that defines ``tokenize`` (a changed tokenizing code misses). A recipe that changes any of them
re-tokenizes; one that changes none reads ``<root>/<key>/`` back.

Where: ``$HARNESS_TOKENIZE_CACHE`` (a folder; ``off`` turns the cache off), else ``harness_tokenized/`` in the
``datasets`` cache (``HF_DATASETS_CACHE``). Size: after each store the least recently used entries (a hit
counts as a use) are removed until the cache holds at most ``$HARNESS_TOKENIZE_CACHE_MAX_GB`` (default 10) GB;
the entry just stored always stays, and leftovers of interrupted writes older than a day go too. What is stored is ``DatasetDict.save_to_disk``'s Arrow files and JSON
(written to a temporary folder, then renamed: a reader never sees half of it), read back memory-mapped with
``load_from_disk`` — no pickle, nothing in the cache can run code. A task is cached only when it opts in
(``tokenize_cache_key`` returns a dict) *and* the class that defines ``tokenize`` is the one that defines the key:
a subclass with its own ``tokenize`` and the parent's key is never served the parent's rows. Tasks whose
``tokenize`` sets state on the task (a language model's BPTT length) do not opt in.

``datasets`` caches a ``map`` only over Arrow-file-backed datasets and keys it on a pickled closure (the
tokenizer's hash changes after it is first called, datasets issue #3638); our splits are mostly built in memory
(``Dataset.from_dict``), hence this small layer over ``save_to_disk`` / ``load_from_disk``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import uuid
from pathlib import Path

ENV = "HARNESS_TOKENIZE_CACHE"
MAX_GB_ENV, DEFAULT_MAX_GB = "HARNESS_TOKENIZE_CACHE_MAX_GB", 10.0
_STALE_SECONDS = 24 * 3600  # a .tmp-* folder this old belongs to a write that will never finish
#: bumped when what is stored changes shape
FORMAT = 1
_COMPLETE = "harness_tokenized.json"


def cache_root(environ=None) -> Path | None:
    """The cache folder, or None when ``$HARNESS_TOKENIZE_CACHE`` is ``off`` / ``0`` / ``false``."""
    env = os.environ if environ is None else environ
    value = env.get(ENV, "").strip()
    if value.lower() in ("off", "0", "false", "no"):
        return None
    if value:
        return Path(value).expanduser()
    import datasets

    return Path(datasets.config.HF_DATASETS_CACHE) / "harness_tokenized"


def tokenizer_identity(tokenizer) -> str:
    """A hash of everything in a tokenizer that decides the ids it produces."""
    h = hashlib.sha256(f"{type(tokenizer).__module__}.{type(tokenizer).__qualname__}".encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)  # set by each call with truncation=..., not a property of the tokenizer
        spec.pop("padding", None)
        h.update(json.dumps(spec, sort_keys=True).encode())
    else:  # a slow (Python) tokenizer: its vocabulary and its settings
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
        settings = {k: v for k, v in getattr(tokenizer, "init_kwargs", {}).items()
                    if k not in ("name_or_path", "vocab_file", "merges_file", "tokenizer_file")}
        h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    extra = {name: getattr(tokenizer, name, None) for name in ("padding_side", "truncation_side", "model_max_length",
                                                                "model_input_names", "all_special_ids")}
    extra["special_tokens"] = {k: str(v) for k, v in (getattr(tokenizer, "special_tokens_map", None) or {}).items()}
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _defining_class(obj, name: str):
    for klass in type(obj).__mro__:
        if name in vars(klass):
            return klass
    return None


def cache_key(task, tokenizer, max_length: int | None) -> str | None:
    """The key of ``task.tokenize(tokenizer, max_length)``'s result, or None when it cannot be cached."""
    own = task.tokenize_cache_key()
    tokenizing = _defining_class(task, "tokenize")
    if own is None or tokenizing is None or tokenizing is not _defining_class(task, "tokenize_cache_key"):
        return None
    fingerprints = {}
    for name, split in task.splits.items():
        fingerprint = getattr(split, "_fingerprint", None)
        if not fingerprint:
            return None
        fingerprints[name] = fingerprint
    try:
        source = Path(inspect.getsourcefile(tokenizing)).read_bytes()
    except (TypeError, OSError):
        return None
    parts = {"format": FORMAT, "task": f"{tokenizing.__module__}.{tokenizing.__qualname__}",
             "code": hashlib.sha256(source).hexdigest(), "splits": fingerprints, "max_length": max_length,
             "tokenizer": tokenizer_identity(tokenizer), "task_key": own}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def tokenize_cached(task, tokenizer, max_length: int | None, environ=None):
    """``task.tokenize(tokenizer, max_length)``, read from the cache when an identical run stored it.
    Returns ``(DatasetDict, status)``, status one of ``hit <path>``, ``stored <path>``, ``off``, ``not cacheable``."""
    from datasets import DatasetDict

    root = cache_root(environ)
    key = None if root is None else cache_key(task, tokenizer, max_length)
    if key is None:
        return task.tokenize(tokenizer, max_length=max_length), "off" if root is None else "not cacheable"
    folder = root / key
    if (folder / _COMPLETE).is_file():
        try:
            loaded = DatasetDict.load_from_disk(str(folder))
            _touch(folder)
            return loaded, f"hit {folder}"
        except Exception:  # a damaged entry: tokenize again and replace it
            shutil.rmtree(folder, ignore_errors=True)
    tokenized = task.tokenize(tokenizer, max_length=max_length)
    try:
        _store(tokenized, folder, {"task": task.info.name, "max_length": max_length,
                                   "splits": {k: len(v) for k, v in tokenized.items()}})
    except OSError as e:  # a read-only or full disk costs the cache, not the run
        return tokenized, f"not stored ({type(e).__name__}: {e})"
    evict(root, keep=folder, max_bytes=max_bytes(environ))
    # the rows the run trains on are the stored ones (memory-mapped), as a later run will read them
    return DatasetDict.load_from_disk(str(folder)), f"stored {folder}"


def _store(tokenized, folder: Path, about: dict) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}")
    try:
        tokenized.save_to_disk(str(tmp))
        (tmp / _COMPLETE).write_text(json.dumps(about, sort_keys=True) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / _COMPLETE).is_file():  # not another process's complete copy: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def max_bytes(environ=None) -> int:
    """``$HARNESS_TOKENIZE_CACHE_MAX_GB`` in bytes (default 10 GB; an unreadable value: the default)."""
    env = os.environ if environ is None else environ
    try:
        gb = float(env.get(MAX_GB_ENV, DEFAULT_MAX_GB))
    except ValueError:
        gb = DEFAULT_MAX_GB
    return int(max(gb, 0.0) * 1024 ** 3)


def _touch(folder: Path) -> None:
    """Mark ``folder`` used now (its marker's mtime orders eviction)."""
    try:
        os.utime(folder / _COMPLETE)
    except OSError:  # a read-only cache still serves hits
        pass


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def evict(root: Path, keep: Path, max_bytes: int) -> list[Path]:
    """Remove the least recently used complete entries of ``root`` (never ``keep``) until the rest fits in
    ``max_bytes``, and stale temporary folders; returns what was removed. A process still reading a removed entry
    keeps its memory-mapped files (POSIX); one about to read it misses and tokenizes again."""
    import time

    removed = []
    entries = []
    for path in root.iterdir() if root.is_dir() else ():
        try:
            if path.name.startswith(".tmp-"):
                if time.time() - path.stat().st_mtime > _STALE_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            elif (path / _COMPLETE).is_file():
                entries.append(((path / _COMPLETE).stat().st_mtime, path, _size(path)))
        except OSError:  # removed by another process meanwhile
            continue
    total = sum(size for _, _, size in entries)
    for _, path, size in sorted(entries):
        if total <= max_bytes:
            break
        if path == keep:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        total -= size
    return removed

