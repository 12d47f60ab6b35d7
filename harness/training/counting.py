"""The ``counting`` procedure: how count-based models (``model.component: ngram_lm``) are fitted — fit →
evaluate → save — instead of the gradient loop. A model builder names it in its registry entry
(``@register("model", "ngram_lm", procedure="counting")``) and ``harness train`` / ``harness eval`` hand the
recipe to it.

Same recipe, same outputs — ``recipe.yaml``, ``metrics.json``, ``report.md`` in ``output_dir`` (written by
:func:`harness.run.train`, as for gradient runs), the model in ``output_dir/model`` — without Accelerate,
optimizers or checkpoints: an n-gram model is estimated in one pass over the training text.

Metrics (``metrics.json``), per evaluation split ``S``:

* ``S/perplexity`` — ``10 ** (−Σ log10 p / #tokens)`` over words and one ``</s>`` per sentence
  (``inf`` for an MLE model that gives some token probability 0; a warning says so);
* ``S/cross_entropy_bits`` — ``log2`` of the perplexity; ``S/oov_rate`` — share of tokens outside
  the training vocabulary (scored as ``<unk>``); ``S/tokens``, ``S/sentences``;
* ``S/scoring_seconds``, ``S/tokens_per_second`` — scoring the split from token lists;

and for the run: ``model/ngrams_<m>`` (n-grams per order), ``model/vocab_size``,
``train/build_seconds`` (counting + estimation from token lists), ``train/tokens``,
``train/tokens_per_second``, ``data/seconds`` (reading and tokenizing the splits),
``save/seconds`` (writing the ARPA file), ``wall_seconds``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import registry
from harness.errors import DataError, HarnessError
from harness.io import atomic_write_text


def _build_task(recipe):
    return registry.resolve("data", recipe.data_component)(**recipe.data_args)


def _evaluate(model, task, splits, predict_splits, out: Path | None) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for split in dict.fromkeys(list(splits) + list(predict_splits)):
        if split not in task.splits:
            raise HarnessError(f"evaluation: split {split!r} does not exist (task has: {', '.join(task.splits)})")
        sentences = list(task.sentences(split))
        t0 = time.perf_counter()
        scores = model.score(sentences, eos=task.add_eos)
        seconds = time.perf_counter() - t0
        if split in splits:
            metrics.update({
                f"{split}/perplexity": scores.perplexity,
                f"{split}/cross_entropy_bits": scores.cross_entropy_bits,
                f"{split}/oov_rate": scores.oov_rate,
                f"{split}/tokens": scores.num_tokens,
                f"{split}/sentences": scores.num_sentences,
                f"{split}/scoring_seconds": round(seconds, 4),
                f"{split}/tokens_per_second": round(scores.num_tokens / seconds, 1) if seconds > 0 else math.inf,
            })
        if split in predict_splits and out is not None:
            rows = ["index\tlog10_prob\ttokens\tperplexity"]
            for i in range(scores.num_sentences):
                lp = scores.sentence(i)
                rows.append(f"{i}\t{lp.sum():.6f}\t{len(lp)}\t{10 ** (-lp.sum() / max(len(lp), 1)):.4f}")
            atomic_write_text(out / f"predictions_{split}.tsv", "\n".join(rows) + "\n")
    return metrics


@dataclass
class Fitted:
    """What the counting procedure hands back to the run: the evaluation metrics, the run's facts (counts,
    timings) and the report's extra sections (sampled sentences)."""

    metrics: dict[str, float]
    run_info: dict
    sections: list[list[str]] = field(default_factory=list)


def fit(recipe, out: Path) -> Fitted:
    """Fit the recipe's count-based model on its train split, evaluate it, save it to ``out/model`` (and
    prediction files for ``evaluation.predict_splits``). With ``model.path`` (a saved model folder or an
    ARPA file) nothing is fitted: the loaded model is evaluated. ``recipe`` is a validated
    :class:`harness.config.schema.Recipe`; :func:`harness.run.train` writes the recipe, metrics and report."""
    from harness.models.ngram import NgramLM

    # ---- setup: data, then the (unfitted) model
    t0 = time.perf_counter()
    task = _build_task(recipe)
    if not callable(getattr(task, "sentences", None)):
        raise HarnessError(f"{recipe.model_component} needs a language-modelling data component (lm_text), "
                           f"got {recipe.data_component!r}")
    train = list(task.sentences("train")) if recipe.model_path is None else []
    data_seconds = time.perf_counter() - t0

    # ---- fit
    t0 = time.perf_counter()
    if recipe.model_path:
        model = NgramLM.load(recipe.model_path)
    else:
        if "train" not in task.splits:
            raise DataError(f"task {task.info.name!r} has no train split to fit on (found: {', '.join(task.splits)})")
        model = registry.resolve("model", recipe.model_component)(task, **recipe.model_args)
        model.fit(train, eos=task.add_eos)
    build_seconds = time.perf_counter() - t0
    print(f"{model!r}: built in {build_seconds:.2f} s from {model.train_tokens:,} tokens")

    # ---- evaluate
    splits = list(recipe.evaluation.splits or task.eval_splits)
    metrics = _evaluate(model, task, splits, recipe.evaluation.predict_splits, out)

    # ---- save the model (ARPA; add-k of order > 1: counts) and a few samples
    t0 = time.perf_counter()
    if not recipe.model_path:
        model.save(out / "model")
    save_seconds = time.perf_counter() - t0
    samples = model.sample(5, seed=recipe.seed, max_length=60, **_sampling(recipe.generation))

    run_info: dict = {"model/order": model.order, "model/smoothing": model.smoothing, "model/vocab_size": model.vocab_size}
    run_info.update({f"model/ngrams_{m}": n for m, n in enumerate(model.num_ngrams, start=1)})
    if model.discounts:
        for m, d in enumerate(model.discounts, start=1):
            run_info[f"model/discounts_{m}"] = ", ".join(f"{x:.4f}" for x in dict.fromkeys(d))
    run_info.update({
        "train/tokens": model.train_tokens,
        "train/build_seconds": round(build_seconds, 3),
        "train/tokens_per_second": round(model.train_tokens / build_seconds, 1) if build_seconds > 0 and model.train_tokens else None,
        "data/seconds": round(data_seconds, 3),
        "save/seconds": round(save_seconds, 3),
    })
    from harness.generation.sampling import SAMPLING_FIELDS

    shaping = ("do_sample", *SAMPLING_FIELDS)  # what the samples read of the section
    how = ", ".join(f"{k} {v}" for k, v in (recipe.generation or {}).items() if k in shaping and v is not None)
    samples_section = ["", "## Samples", "", f"Five sentences sampled with seed {recipe.seed}{f' ({how})' if how else ''}:", ""]
    samples_section += [f"{i}. {' '.join(s)}" for i, s in enumerate(samples, start=1)]
    return Fitted(metrics, {k: v for k, v in run_info.items() if v is not None}, [samples_section])


def _sampling(section: dict | None) -> dict:
    """The recipe's ``generation:`` settings that shape the report's samples: the sampling warpers' fields
    (temperature, top-k, top-p, ...) and ``logits_processors``, as every generative model reads them."""
    from harness.generation import build_generation
    from harness.generation.sampling import SAMPLING_FIELDS

    section = dict(section or {})
    settings = build_generation(section)
    out = {k: v for k, v in section.items() if k in SAMPLING_FIELDS and v is not None}
    if settings.processors:
        out["logits_processor"] = settings.processors
    return out


def evaluate_saved(recipe, out: Path) -> dict[str, float]:
    """``harness eval`` for count-based models: score the evaluation splits with the saved model
    (``model.path``, default ``out/model``); prediction files go to ``out/eval``."""
    from harness.models.ngram import NgramLM

    model = NgramLM.load(recipe.model_path or out / "model")
    task = _build_task(recipe)
    splits = list(recipe.evaluation.splits or task.eval_splits)
    return _evaluate(model, task, splits, recipe.evaluation.predict_splits, out / "eval")


@registry.register("procedure", "counting")
class Counting:
    """``harness train`` → :func:`fit`; ``harness eval`` → :func:`evaluate_saved` (one process: counting
    is not distributed)."""

    fit = staticmethod(fit)
    evaluate = staticmethod(evaluate_saved)
