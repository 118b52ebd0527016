"""The reference for text feature extraction: scikit-learn's logistic regression on frozen
all-MiniLM-L6-v2 sentence embeddings, on the same split ``tlcore train`` uses.

``python -m benchmarks.text_logreg_reference [CSV]`` (default: the bundled reviews sample)
prints one JSON line: validation accuracy, the L2 strength picked by 5-fold
cross-validation on the training texts, and the seconds spent embedding. The
embeddings come from sentence-transformers itself (``load_sentence_encoder``), not
from tlcore's model, so the reference does not share tlcore's code path.
"""

from __future__ import annotations

import json
import sys
import time

from tlcore import settings
from tlcore.data.prepare import prepare_data
from tlcore.models.minilm import load_sentence_encoder


def main(csv: str | None = None) -> dict:
    from sklearn.linear_model import LogisticRegressionCV

    manifest = prepare_data(csv or settings.text_sample_path()).manifest
    train, val = manifest.items_for("train"), manifest.items_for("val")
    started = time.perf_counter()
    encoder = load_sentence_encoder()
    x_train = encoder.encode([it.text for it in train], batch_size=32)
    x_val = encoder.encode([it.text for it in val], batch_size=32)
    embed_s = time.perf_counter() - started
    model = LogisticRegressionCV(Cs=10, cv=5, max_iter=2000, scoring="accuracy").fit(
        x_train, [it.label for it in train]
    )
    accuracy = float(model.score(x_val, [it.label for it in val]))
    result = {"val_accuracy": accuracy, "C": float(model.C_[0]), "train": len(train),
              "val": len(val), "embed_seconds": round(embed_s, 1)}  # fmt: skip
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
