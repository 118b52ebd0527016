"""How zero-shot's choices were made: method, T, TAU and prompt wording, measured.

Not a speed benchmark (so not a ``bench_*`` module). It scores every choice on
both bundled samples with the bundled Lite0 at 224 px, using the folder names as
class names; choose on the training photos, check on the validation photos. The
table in ``tlcore/lab/zeroshot.py`` comes from it::

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.zeroshot_choices

Prints one row per choice: ants-bees train/val, clothing4 train/val (chance 0.5, 0.25).
Encoding ImageNet's names twice takes a minute or two on a laptop CPU.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

SAMPLES = ("assets/ants-bees", "assets/clothing4")
PROMPTS = ("{}", "a photo of a {}")


def plain_conse(probs: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor, t: int):
    """ConSE exactly as in the paper (no centring), for comparison."""
    values, indices = probs.topk(t, dim=1)
    weights = values / values.sum(1, keepdim=True)
    mixed = (weights.unsqueeze(2) * labels[indices]).sum(1)
    return (F.normalize(mixed, dim=1) @ classes.T).argmax(1)


def main() -> None:
    from tlcore.lab import zeroshot
    from tlcore.lab.fewshot import Embedder, load_manifest

    embedder = Embedder(device="cpu")
    names = zeroshot.imagenet_names()
    label_vectors = {p: zeroshot.encode_texts([p.format(n) for n in names]) for p in PROMPTS}
    data = {}
    for sample in SAMPLES:
        manifest = load_manifest(sample)
        for split in ("train", "val"):
            x, y = embedder.embed_split(manifest, split)
            data[sample, split] = (zeroshot.imagenet_probabilities(embedder, x), y)
        data[sample] = manifest.classes

    def accuracies(predict) -> str:
        scores = []
        for sample, split in itertools.product(SAMPLES, ("train", "val")):
            probs, y = data[sample, split]
            scores.append(float((predict(sample, probs) == y).float().mean()))
        return " ".join(f"{s:.3f}" for s in scores)

    print("choice | ants-bees train val | clothing4 train val")
    for label_prompt, class_prompt in itertools.product(PROMPTS, PROMPTS):
        words = {s: zeroshot.encode_texts([class_prompt.format(c) for c in data[s]])
                 for s in SAMPLES}  # fmt: skip
        labels = label_vectors[label_prompt]
        where = f"imagenet {label_prompt!r}, classes {class_prompt!r}"
        for t in (1, 5, 10, 50, 1000):
            row = accuracies(lambda s, p, t=t, lv=labels, w=words: plain_conse(p, lv, w[s], t))
            print(f"conse (paper) T={t:<4} {where} | {row}", flush=True)
            clf = {s: zeroshot.ZeroShotClassifier(data[s], words[s], labels, "conse", t)
                   for s in SAMPLES}  # fmt: skip
            row = accuracies(lambda s, p, c=clf: c[s].predict(p))
            print(f"conse centred T={t:<4} {where} | {row}", flush=True)
        for tau in (0.02, 0.05, 0.1):
            zeroshot.TAU = tau
            clf = {s: zeroshot.ZeroShotClassifier(data[s], words[s], labels, "label-match")
                   for s in SAMPLES}  # fmt: skip
            row = accuracies(lambda s, p, c=clf: c[s].predict(p))
            print(f"label-match TAU={tau:<5} {where} | {row}", flush=True)


if __name__ == "__main__":
    main()
