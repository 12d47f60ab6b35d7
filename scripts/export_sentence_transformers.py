#!/usr/bin/env python
"""Write a trained Siamese bi-encoder (a run's ``model/`` folder) as a sentence-transformers folder, which
``SentenceTransformer(DEST)`` loads with the same embeddings (pooling, Normalize module, similarity, max length).

    .venv/bin/python scripts/export_sentence_transformers.py runs/siamese/stsb_cosine/model /tmp/minilm-sts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from harness.errors import HarnessError, report_errors

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="a folder saved by a run with model.component: siamese")
    p.add_argument("dest", help="the sentence-transformers folder to write")
    args = p.parse_args(argv)

    def command() -> int:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from harness import registry
        from harness.models.siamese.sentence_transformers_io import export_sentence_transformers

        registry.load_models()
        kind = AutoConfig.from_pretrained(args.model).model_type
        if kind != "harness_siamese":
            raise HarnessError(f"{args.model}: a {kind} model, not a Siamese bi-encoder (model.component: siamese)")
        model = AutoModel.from_pretrained(args.model)
        path = export_sentence_transformers(model, AutoTokenizer.from_pretrained(args.model), args.dest)
        print(f"written: {path} (SentenceTransformer({str(path)!r}))")
        return 0

    return report_errors(command)


if __name__ == "__main__":
    sys.exit(main())
