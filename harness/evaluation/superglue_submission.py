"""The SuperGLUE submission format: one JSON Lines file per task, zipped, as the server at super.gluebenchmark.com
takes it (and as jiant, the SuperGLUE authors' toolkit, writes it).

Every file has one JSON object per test example, ``{"idx": <int>, "label": <label>}``, with the labels the server
expects: BoolQ and WiC ``"true"``/``"false"``, WSC ``"True"``/``"False"``, CB ``"entailment"``/``"contradiction"``/
``"neutral"``, RTE, AX-b and AX-g ``"entailment"``/``"not_entailment"``, COPA the integer 0 (choice1) or 1 (choice2).
MultiRC is nested, one line per paragraph::

    {"idx": 0, "passage": {"questions": [{"idx": 0, "answers": [{"idx": 0, "label": 1}, ...]}, ...]}}

and ReCoRD ``{"idx": <query idx>, "label": "<answer text>"}``. This module is pure format:
building rows from ``predictions_test.tsv`` (``index<TAB>prediction``, as the tasks write them), writing the
files and the zip, and checking them.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

from harness.data.superglue import SERVER_LABELS, SUBMISSION_FILES
from harness.errors import DataError

ZIP_NAME = "superglue_submission.zip"
#: file name -> the task key (every file the server takes, in the leaderboard's order)
FILE_TASKS = {fname: key for key, fname in SUBMISSION_FILES.items()}


def legal_labels(fname: str) -> list | None:
    """The labels the server accepts in a file (None: ReCoRD's free answer text)."""
    key = FILE_TASKS[fname]
    return None if key == "record" else list(SERVER_LABELS[key])


def _label(fname: str, raw: str, place: str):
    legal = legal_labels(fname)
    value = int(raw) if legal and isinstance(legal[0], int) and raw.strip() in ("0", "1") else raw
    if legal is not None and value not in legal:
        raise DataError(f"{place}: prediction {raw!r} is not one of {', '.join(map(str, legal))} ({fname})")
    return value


def submission_rows(fname: str, predictions: list[tuple[str, str]], source: str = "predictions") -> list[dict]:
    """The JSON objects of one submission file from ``(index, prediction)`` pairs (MultiRC's index
    ``paragraph/question/answer`` becomes the nested layout, in first-seen order)."""
    if FILE_TASKS[fname] != "multirc":
        out = []
        for n, (index, raw) in enumerate(predictions, start=2):
            try:
                idx = int(index)
            except ValueError:
                raise DataError(f"{source}:{n}: index {index!r} is not an integer") from None
            out.append({"idx": idx, "label": _label(fname, raw, f"{source}:{n}")})
        return out
    passages: OrderedDict[int, OrderedDict[int, list]] = OrderedDict()
    for n, (index, raw) in enumerate(predictions, start=2):
        try:
            p, q, a = (int(x) for x in index.split("/"))
        except ValueError:
            raise DataError(f"{source}:{n}: MultiRC index {index!r} is not paragraph/question/answer") from None
        passages.setdefault(p, OrderedDict()).setdefault(q, []).append({"idx": a, "label": _label(fname, raw, f"{source}:{n}")})
    return [{"idx": p, "passage": {"questions": [{"idx": q, "answers": answers} for q, answers in questions.items()]}}
            for p, questions in passages.items()]


def write_submission(out_dir: Path, files: dict[str, list[dict]]) -> Path:
    """Each file as ``out_dir/superglue_submission/<File>.jsonl`` and all of them in ``out_dir/superglue_submission.zip``
    (written atomically); returns the zip's path."""
    folder = Path(out_dir) / "superglue_submission"
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {name: "\n".join(json.dumps(row) for row in files[name]) + "\n" for name in SUBMISSION_FILES.values()
              if name in files}
    for name, body in bodies.items():
        (folder / name).write_text(body, encoding="utf-8")
    path = Path(out_dir) / ZIP_NAME
    tmp = path.with_name(f".tmp-{path.name}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, body in bodies.items():
            member = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o100644 << 16
            zf.writestr(member, body)
    os.replace(tmp, path)
    return path


def _check_row(fname: str, row, where: str, problems: list[str], seen: set) -> int:
    """Check one JSON object; returns how many predictions it holds (MultiRC: answers)."""
    if not isinstance(row, dict):
        problems.append(f"{where}: expected a JSON object")
        return 0
    idx = row.get("idx")
    if isinstance(idx, bool) or not isinstance(idx, int):
        problems.append(f"{where}: 'idx' must be an integer, found {idx!r}")
    elif idx in seen:
        problems.append(f"{where}: idx {idx} repeated")
    else:
        seen.add(idx)
    if FILE_TASKS[fname] != "multirc":
        if set(row) != {"idx", "label"}:
            problems.append(f"{where}: expected exactly the keys idx, label; found {', '.join(sorted(row))}")
        legal = legal_labels(fname)
        label = row.get("label")
        if legal is None:
            if not isinstance(label, str) or not label:
                problems.append(f"{where}: label must be the answer text, found {label!r}")
        elif isinstance(label, bool) or label not in legal:
            problems.append(f"{where}: label {label!r} is not one of {', '.join(map(repr, legal))}")
        return 1
    questions = row.get("passage", {}).get("questions") if isinstance(row.get("passage"), dict) else None
    if not isinstance(questions, list) or not questions:
        problems.append(f"{where}: expected passage.questions, a non-empty list")
        return 0
    count, q_seen = 0, set()
    for q in questions:
        if not isinstance(q, dict) or not isinstance(q.get("idx"), int) or not isinstance(q.get("answers"), list) \
                or not q["answers"]:
            problems.append(f"{where}: every question needs an integer idx and a non-empty answers list")
            continue
        if q["idx"] in q_seen:
            problems.append(f"{where}: question idx {q['idx']} repeated")
        q_seen.add(q["idx"])
        for a in q["answers"]:
            if not isinstance(a, dict) or not isinstance(a.get("idx"), int) or a.get("label") not in (0, 1) \
                    or isinstance(a.get("label"), bool):
                problems.append(f"{where}: answer {a!r} needs an integer idx and label 0 or 1")
            else:
                count += 1
    return count


def validate_submission(path: str | Path, expected: dict[str, int] | None = None) -> list[str]:
    """Problems with a SuperGLUE submission (a zip or a folder of ``.jsonl`` files; empty list: none): unknown file
    names, lines that are not JSON objects, keys, idx (integer, unique), labels the server would reject, MultiRC's
    nesting; with ``expected`` (file name -> test examples; MultiRC: answer options), each named file must be there
    with exactly that many predictions."""
    path = Path(path)
    problems: list[str] = []
    texts: dict[str, str] = {}
    if path.is_dir():
        for p in sorted(path.glob("*.jsonl")):
            texts[p.name] = p.read_text(encoding="utf-8")
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    texts[name] = zf.read(name).decode("utf-8", errors="replace")
        except (OSError, zipfile.BadZipFile) as e:
            return [f"{path}: not a readable zip ({e})"]
    for name, text in texts.items():
        if name not in FILE_TASKS:
            problems.append(f"{name}: not a SuperGLUE submission file (expected one of {', '.join(FILE_TASKS)})")
            continue
        seen: set = set()
        count = 0
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                problems.append(f"{name}:{n}: blank line")
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{name}:{n}: not JSON ({e.msg})")
                continue
            count += _check_row(name, row, f"{name}:{n}", problems, seen)
        if count == 0:
            problems.append(f"{name}: no predictions")
        if expected and name in expected and count != expected[name]:
            problems.append(f"{name}: {count} predictions, expected {expected[name]} (one per test example)")
    for name in expected or {}:
        if name not in texts:
            problems.append(f"{name}: missing from the submission")
    return problems


def missing_files(files) -> list[str]:
    """The server's files that ``files`` (names) lacks."""
    return [name for name in FILE_TASKS if name not in set(files)]
