"""Run with ``python -S`` and a PYTHONPATH of only site-packages, from a folder outside the checkout: load pushed
models with ``transformers``' Auto classes and ``trust_remote_code=True`` (never harness), run each on its inputs,
and write their outputs as JSON.

    python -S load_clean.py JOBS.json OUT.json

JOBS.json: a list of ``{"source": folder or repo id, "auto": class, "revision": str|null, "spec": {"mode":
"logits"|"generate"|"tags"|"embeddings", "inputs": {name: nested int lists}, "generate": {kwargs}}}``; ``auto`` is
a ``transformers`` Auto class, or a ``peft`` ``AutoPeftModelFor*`` class (loaded as the model card's snippet says).
OUT.json: one object per job, or ``{"error": "..."}`` for a job whose model did not load.
"""

import importlib.util
import json
import sys

if importlib.util.find_spec("harness") is not None:
    sys.exit("harness is importable here; this check needs an environment without it")

import torch
import transformers


def load(source, auto_name, revision):
    if auto_name.startswith("AutoPeft"):  # as the model card says: the labels from the repo's config.json
        import peft

        config = transformers.AutoConfig.from_pretrained(source, revision=revision)
        return getattr(peft, auto_name).from_pretrained(source, revision=revision, num_labels=config.num_labels,
                                                        id2label=config.id2label, label2id=config.label2id)
    return getattr(transformers, auto_name).from_pretrained(source, trust_remote_code=True, revision=revision)


def run(job):
    spec = job["spec"]
    model = load(job["source"], job["auto"], job.get("revision")).eval()
    inputs = {k: torch.tensor(v) for k, v in spec["inputs"].items()}
    out = {"module": type(model).__module__, "class": type(model).__name__,
           "id2label": {str(k): v for k, v in (getattr(model.config, "id2label", None) or {}).items()}}
    with torch.no_grad():
        if spec["mode"] == "generate":
            out["generated"] = model.generate(**inputs, **spec.get("generate", {})).tolist()
        elif spec["mode"] == "embeddings":
            out["embeddings"] = model(**inputs).embeddings.tolist()
        else:
            logits = model(**inputs).logits
            out["logits"] = logits.tolist()
            if spec["mode"] == "tags":
                out["tags"] = model.decode_tags(logits, inputs.get("attention_mask")).tolist()
    return out


results = []
for job in json.loads(open(sys.argv[1]).read()):
    try:
        results.append(run(job))
    except Exception as e:  # reported per job: the test says which one failed and why
        results.append({"error": f"{type(e).__name__}: {e}"})
open(sys.argv[2], "w").write(json.dumps(results))
