"""The README.md of an exported text bundle: the photo card's sections, said for sentences.

Data, settings and the validation numbers come from the same ``tlcore.json`` fields
as for photos (``tlcore.export.model_card`` renders the shared parts); what
differs is how inputs are prepared (a tokenizer, not pixels) and how to load it.
"""

from __future__ import annotations

from typing import Any

from tlcore.data.markdown import md, md_list
from tlcore.export.model_card import (
    CONFUSION_FILE,
    _data_section,
    _run_rows,
    _table,
    wilson_interval,
)


def _training_section(meta: dict[str, Any]) -> list[str]:
    cfg, text = meta.get("training", {}), meta.get("text", {})
    rows = [
        ["encoder", f"`{meta['architecture']}` (BERT family, transformers)"],
        *_run_rows(cfg),
        ["word pieces read per text", text.get("max_tokens")],
        ["sentence pooling", text.get("pooling")],
        ["seed", cfg.get("seed")],
    ]
    return ["## Training", "", _table(["setting", "value"], rows), ""]


def _metrics_section(meta: dict[str, Any]) -> list[str]:
    m = meta.get("metrics") or {}
    if not m.get("images"):
        return ["## Validation metrics", "", "No validation texts: nothing was measured.", ""]
    n, acc = m["images"], m["accuracy"]
    low, high = wilson_interval(round(acc * n), n)
    rows = [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
             r["support"]] for r in m.get("per_class", [])]  # fmt: skip
    lines = [
        "## Validation metrics", "",
        f"Measured at export on the {n} validation texts, with the `{meta.get('checkpoint')}` "
        f"checkpoint (epoch {m.get('epoch', '?')} of {m.get('epochs_trained', '?')}).", "",
        f"- Accuracy: **{acc:.1%}** ({round(acc * n)} of {n}; 95% interval {low:.1%} to {high:.1%})",
        f"- Macro F1: **{m['macro_f1']:.3f}**", "",
        _table(["class", "precision", "recall", "F1", "support"], rows), "",
        f"![Confusion matrix]({CONFUSION_FILE})", "",
    ]  # fmt: skip
    if m.get("confused_pairs"):
        lines += ["Most confused: " + "; ".join(p["text"] for p in m["confused_pairs"][:5]), ""]
    return lines


def _calibration_line(meta: dict[str, Any]) -> str:
    """What a probability means here: temperature-scaled when the run was calibrated."""
    cal = (meta.get("trust") or {}).get("calibration") or {}
    if not isinstance(cal.get("temperature"), int | float):
        return "- The probabilities are the model's raw softmax scores (not calibrated)."
    measured = ""
    if isinstance(cal.get("ece_before"), float) and isinstance(cal.get("ece_after"), float):
        measured = (
            f" Expected calibration error {cal['ece_before']:.1%} before, {cal['ece_after']:.1%} "
            "after (each text scored with a temperature fitted without it)."
        )
    return (
        f"- The probabilities are calibrated by temperature scaling (T = {cal['temperature']:.3f}, "
        f"fitted on the {cal.get('images', '?')} validation texts).{measured} `model.onnx` "
        "gives the raw scores: divide them by T before the softmax."
    )


def text_model_card(meta: dict[str, Any]) -> str:
    """The whole README.md of a text bundle, from its ``tlcore.json`` contents."""
    m = meta.get("metrics") or {}
    text = meta.get("text", {})
    headline = (f"validation accuracy **{m['accuracy']:.1%}** on {m['images']} texts"
                if m.get("images") else "no validation measurement")  # fmt: skip
    lines = [
        f"# {md(meta['architecture'])} for {md_list(meta['classes'])}", "",
        f"A text classifier fine-tuned on **{md(meta.get('data', {}).get('name', '?'))}** with tlcore "
        f"(run `{meta.get('run_id', '?')}`, exported {meta.get('created', '?')}): {headline}.", "",
        *_data_section(meta), *_training_section(meta), *_metrics_section(meta),
        "## Limits", "",
        "- It always answers with one of these classes, even for a text about something else.",
        f"- Only the first {text.get('max_tokens')} word pieces of a text are read.",
        _calibration_line(meta),
        "- The numbers above come from validation texts of the same collection; texts from "
        "another source or time are usually harder. Measure on your own texts first.", "",
        "## Use it", "",
        "With tlcore: `tlcore predict path/to/this/bundle \"a sentence\"` or, in Python:", "",
        "```python", "import tlcore", "",
        'predictor = tlcore.load("path/to/this/bundle")',
        'print(predictor.predict_texts(["a sentence"])[0].label)', "```", "",
        "Without tlcore: `model.onnx` (if exported) takes `input_ids` (int64, batch x tokens) "
        f"from the tokenizer in `{text.get('tokenizer', 'encoder')}/`, padded with id "
        f"{text.get('pad_id')}; the padding is masked inside the model.", "",
        "Files: `model.safetensors` (weights), `tlcore.json` (classes, settings, metrics), "
        f"`{text.get('tokenizer', 'encoder')}/` (tokenizer and encoder config), "
        f"`{CONFUSION_FILE}`, this card.", "",
    ]  # fmt: skip
    return "\n".join(lines)
