"""The README.md of an exported bundle: what the model is for, how well it did, how to load it.

A model card (Mitchell et al., 2019; the Hugging Face hub's README convention)
travels with the weights so whoever receives the file knows which data it saw,
how it was trained, the validation numbers measured when it was exported and
where it should not be trusted. Everything here is rendered from the bundle's
``tlcore.json``, so card and metadata cannot disagree.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tlcore.data.markdown import md, md_list
from tlcore.runs.run import freeze_label

CARD_FILE = "README.md"
CONFUSION_FILE = "confusion_matrix.png"


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % interval of an accuracy measured on ``n`` images (honest for small n)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def confusion_png(classes: list[str], matrix: list[list[int]], out: Path) -> Path:
    """A labelled heat map of the confusion matrix (matplotlib, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(classes)
    side = min(12.0, 2.5 + 0.6 * n)
    fig = Figure(figsize=(side, side * 0.85), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(
        range(n), labels=classes, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center"
    )
    ax.set_yticks(range(n), labels=classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Validation confusion matrix")
    peak = max((max(row) for row in matrix), default=0)
    if n <= 20:
        for t in range(n):
            for p in range(n):
                value = matrix[t][p]
                colour = "white" if peak and value > peak / 2 else "black"
                ax.text(p, t, str(value), ha="center", va="center", color=colour)
    fig.tight_layout()
    fig.savefig(str(out), format="png")
    return out


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _data_section(meta: dict[str, Any]) -> list[str]:
    data = meta.get("data", {})
    classes = meta["classes"]
    counts = data.get("counts", {})
    splits = [s for s in ("train", "val", "test") if s in counts]
    rows = [[md(c), *(counts[s].get(c, 0) for s in splits)] for c in classes]
    rows.append(["**total**", *(sum(counts[s].values()) for s in splits)])
    how = (
        "the `train/` and `val/` folders the dataset came with"
        if data.get("split_source") == "folders"
        else f"a stratified random split (seed {data.get('split_seed', 0)}, "
        f"{meta.get('training', {}).get('val_fraction', 0.2):.0%} of each class for validation)"
    )
    return [
        "## Data",
        "",
        f"- Dataset: **{md(data.get('name', '?'))}** ({md(data.get('source', '?'))})",
        f"- Classes ({len(classes)}, in output order): {md_list(classes)}",
        f"- Split: {how}",
        f"- Manifest fingerprint: `{data.get('fingerprint', '?')[:16]}`",
        *_version_line(data.get("version")),
        *_copies_lines(data.get("val_copies")),
        "",
        _table(["class", *splits], rows) if splits else "(no counts recorded)",
        "",
    ]


def val_copies_count(data: dict[str, Any]) -> int:
    """How many validation photos copy a training photo (``tlcore.data.near_copies``), as
    recorded with the run; 0 when none were found or the run predates the check."""
    try:
        return max(0, int(data.get("val_copies") or 0))
    except (TypeError, ValueError):
        return 0


def _copies_lines(value: Any) -> list[str]:
    """The warning that validation holds copies of training photos, when it does."""
    n = val_copies_count({"val_copies": value})
    if not n:
        return []
    photos = "photo is a copy" if n == 1 else "photos are copies"
    return [f"- **Warning: {n} validation {photos} of training photos** (identical, or "
            "resized, re-encoded or retouched), left where the dataset's `train/` and `val/` "
            "folders put them: the model saw them in training, so the validation numbers "
            "below are optimistic."]  # fmt: skip


def _version_line(version: Any) -> list[str]:
    """Which dataset version (tlcore.data.versions) trained the model: numbers only, no names."""
    if not isinstance(version, dict):
        return []
    try:
        number = int(version.get("number", 0))
        if number == 0:
            return ["- Dataset version: v0 (the original labels)"]
        fixed, left = int(version.get("relabelled", 0)), int(version.get("excluded", 0))
    except (TypeError, ValueError):
        return []
    return [f"- Dataset version: v{number} ({fixed} photos relabelled, {left} left out; "
            "the photo files unchanged)"]  # fmt: skip


_PRESET_TEXT = {
    "features": "only the new head (feature extraction: the backbone stays frozen)",
    "full": "every layer (full fine-tuning)",
    "progressive": "the head first, then one more layer group every {every} epoch(s)",
    "last-k": "the last {k} layer group(s), head included",
    "custom": "layer groups chosen by hand",
}


def _layers_text(freeze: dict[str, Any]) -> str:
    template = _PRESET_TEXT.get(str(freeze.get("preset")), "{label}")
    text = template.format(k=freeze.get("k", 1), every=freeze.get("every", 1), label="")
    return f"`{freeze_label(freeze)}`: {text}" if text else f"`{freeze_label(freeze)}`"


def _run_rows(cfg: dict[str, Any]) -> list[list[Any]]:
    """The training table's rows that photo and text model cards share."""
    return [
        ["pretrained weights", cfg.get("weights", "?")],
        ["layers trained", _layers_text(cfg.get("freeze") or {})],
        ["epochs", cfg.get("epochs")],
        ["learning rate", cfg.get("lr")],
        ["batch size", cfg.get("batch_size")],
        ["optimizer / schedule", f"{cfg.get('optimizer')} / {cfg.get('schedule')}"],
    ]


def _training_section(meta: dict[str, Any]) -> list[str]:
    cfg = meta.get("training", {})
    pre = meta["preprocessing"]
    rows = [
        ["architecture", f"`{meta['architecture']}` (timm)"],
        *_run_rows(cfg),
        ["weight decay", cfg.get("weight_decay")],
        ["label smoothing", cfg.get("label_smoothing")],
        ["augmentation", cfg.get("augment")],
        ["input size", "x".join(str(v) for v in pre["input_size"][1:])],
        ["normalisation", f"mean {pre['mean']}, std {pre['std']}"],
        ["resize / crop", f"{pre.get('interpolation')}, crop {pre.get('crop_pct')}"],
        ["seed", cfg.get("seed")],
    ]
    return ["## Training", "", _table(["setting", "value"], rows), ""]


def _metrics_section(meta: dict[str, Any]) -> list[str]:
    m = meta.get("metrics") or {}
    if not m.get("images"):
        return ["## Validation metrics", "", "No validation images: nothing was measured.", ""]
    n, acc = m["images"], m["accuracy"]
    low, high = wilson_interval(round(acc * n), n)
    per_class = [
        [
            md(r["class"]),
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['f1']:.3f}",
            r["support"],
        ]
        for r in m.get("per_class", [])
    ]
    lines = [
        "## Validation metrics",
        "",
        f"Measured at export on the {n} validation images, with the `{meta.get('checkpoint')}` "
        f"checkpoint (epoch {m.get('epoch', '?')} of {m.get('epochs_trained', '?')}).",
        "",
        f"- Accuracy: **{acc:.1%}** ({round(acc * n)} of {n}; 95% interval "
        f"{low:.1%} to {high:.1%})",
        f"- Macro F1: **{m['macro_f1']:.3f}**",
        f"- Validation loss: {m['loss']:.4f}",
        "",
        _table(["class", "precision", "recall", "F1", "support"], per_class),
        "",
        f"![Confusion matrix]({CONFUSION_FILE})",
        "",
    ]
    if m.get("confused_pairs"):
        lines += ["Most confused: " + "; ".join(md(p["text"]) for p in m["confused_pairs"][:5]), ""]
    return lines


def _trust_section(meta: dict[str, Any]) -> list[str]:
    """Calibration and "none of these" (tlcore.results.trust), with what was measured."""
    trust = meta.get("trust")
    if not isinstance(trust, dict):
        return []
    cal = trust.get("calibration") or {}
    lines = ['## Confidence and "none of these"', ""]
    if cal.get("ece_before") is not None and cal.get("ece_after") is not None:
        lines.append(
            f"- Probabilities are calibrated by temperature scaling (T = "
            f"{cal['temperature']:.3f}, fitted on the {cal.get('images', '?')} validation "
            "photos). Expected calibration error (the average gap between the confidence "
            f"shown and how often it is right): **{cal['ece_before']:.1%}** before, "
            f"**{cal['ece_after']:.1%}** after (each photo scored with a temperature fitted "
            "on the other validation photos)."
        )
    unknown = trust.get("unknown")
    if isinstance(unknown, dict):
        flagged = unknown.get("known_flagged")
        accepted = f" (measured: {1 - flagged:.0%})" if isinstance(flagged, float) else ""
        lines.append(
            f'- "None of these": a photo whose features are farther than '
            f"**{unknown['threshold']:.3f}** from every training photo's (k-nearest-neighbour "
            f"distance, k = {unknown.get('k', 1)}, features scaled to length 1) is reported as "
            f"unknown. The threshold accepts {unknown.get('accept', 0.95):.0%} of the "
            f"validation photos{accepted}."
        )
        ref = unknown.get("reference") or {}
        if ref.get("photos") and ref.get("auroc") is not None:
            lines.append(
                f"- Measured on {ref['photos']} photos of {ref.get('source', 'other data')} "
                f"(none of these classes): unknown-detection AUROC **{ref['auroc']:.3f}**, "
                f"{ref.get('flagged', 0):.0%} of them flagged at the threshold."
            )
        lines.append(
            "- ONNX and TorchScript exports return `logits`, `probabilities` (calibrated) and "
            "`unknown_score`; a photo is unknown when `unknown_score` is above "
            "`trust.unknown.threshold` in `tlcore.json`."
        )
    return [*lines, ""]


def _use_section(meta: dict[str, Any]) -> list[str]:
    classes = meta["classes"]
    n = (meta.get("metrics") or {}).get("images", 0)
    if isinstance((meta.get("trust") or {}).get("unknown"), dict):
        always = (
            '- It says "none of these" for photos far from all its training photos, but '
            "that check can miss: a photo of something else that looks like the training "
            "photos still gets one of these classes."
        )
    else:
        always = (
            "- It always answers with one of these classes, even for a photo that shows none "
            "of them; a low top probability is a hint, not a guarantee."
        )
    return [
        "## Intended use and limitations",
        "",
        f"- Intended use: sorting photos like the training photos into one of "
        f"{len(classes)} classes ({md_list(classes)}), with a person checking the results.",
        always,
        f"- The numbers above come from {n} validation photos of the same collection; on "
        "photos from another camera, place or season accuracy is usually lower. Measure it "
        "on your own photos before relying on it.",
        "- Mistakes follow the data: classes with few photos, or photos that differ from the "
        "training set (lighting, framing, background), are the most likely to be wrong.",
        "- Not for decisions about people, health or safety.",
        "",
    ]


def _load_section(meta: dict[str, Any]) -> list[str]:
    return [
        "## How to load it",
        "",
        "With tlcore (same preprocessing as during training, folder or zip):",
        "",
        "```python",
        "import tlcore",
        "",
        'predictor = tlcore.load("path/to/this/bundle")  # the folder or the .zip',
        'print(predictor.predict_files(["photo.jpg"])[0].label)',
        "```",
        "",
        "With timm alone, from this folder:",
        "",
        "```python",
        "import json",
        "",
        "import timm",
        "import torch",
        "from PIL import Image",
        "from safetensors.torch import load_file",
        "",
        'meta = json.load(open("tlcore.json"))',
        'model = timm.create_model(meta["architecture"], num_classes=len(meta["classes"]))',
        'model.load_state_dict(load_file("model.safetensors"))',
        "model.eval()",
        'transform = timm.data.create_transform(**meta["preprocessing"])',
        'image = Image.open("photo.jpg").convert("RGB")',
        'temperature = meta.get("trust", {}).get("calibration", {}).get("temperature", 1.0)',
        "with torch.no_grad():  # calibrated: logits divided by the fitted temperature",
        "    logits = model(transform(image).unsqueeze(0))",
        "    probabilities = (logits / temperature).softmax(1)[0]",
        'print(meta["classes"][int(probabilities.argmax())])',
        "```",
        "",
        "Command line: `tlcore predict path/to/this/bundle photos/`.",
        "",
    ]


def model_card(meta: dict[str, Any]) -> str:
    """The whole README.md of a bundle, from its ``tlcore.json`` contents."""
    m = meta.get("metrics") or {}
    data_name = meta.get("data", {}).get("name", "?")
    headline = (
        f"validation accuracy **{m['accuracy']:.1%}** on {m['images']} photos"
        if m.get("images")
        else "no validation measurement"
    )
    if m.get("images") and (copies := val_copies_count(meta.get("data", {}))):
        headline += f" (optimistic: {copies} of them copy training photos)"
    lines = [
        f"# {md(meta['architecture'])} for {md_list(meta['classes'])}",
        "",
        f"An image classifier fine-tuned on **{md(data_name)}** with tlcore "
        f"(run `{meta.get('run_id', '?')}`, exported {meta.get('created', '?')}): {headline}.",
        "",
        *_data_section(meta),
        *_training_section(meta),
        *_metrics_section(meta),
        *_trust_section(meta),
        *_use_section(meta),
        *_load_section(meta),
        "Files: `model.safetensors` (weights), `tlcore.json` (classes, preprocessing, "
        f"settings, metrics), `{CONFUSION_FILE}`, this card.",
        "",
    ]
    return "\n".join(lines)
