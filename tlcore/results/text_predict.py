"""A trained text model you can hand new sentences to: ``TextPredictor``.

The same object as the photo ``Predictor`` (classes, ``predict`` -> probabilities,
``top_k``, ``embed``, calibration and export hooks), with sentences in place of
photos: each is tokenized with the tokenizer the model was trained with, cut to
the run's ``max_tokens`` word pieces, exactly as training and validation saw it.
A CSV of texts in gives a CSV of predictions out.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlcore.errors import DataError, ModelError
from tlcore.results.predict import BATCH_SIZE, Prediction, Predictor

ENCODER_DIR = "encoder"  # a text bundle's tokenizer and encoder config
MAX_TEXT_CHARS = 100_000  # one "sentence" longer than this is not a sentence
TEXT_CSV_COLUMNS = ("text", "label", "probability", "top", "error")


class TextPredictor(Predictor):
    """A text model in eval mode, its class names and its tokenizer."""

    modality = "text"

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str],
        max_tokens: int,
        *,
        model_name: str = "",
        weights: str = "bundled",
        source: str = "",
        device: str = "cpu",
    ) -> None:
        from tlcore.data.text_dataset import load_tokenizer

        self._hold(model, classes, None, model_name, weights, source, device)
        self.data_config = {**model.text_config, "max_tokens": int(max_tokens)}
        self.tokenizer = load_tokenizer(self.data_config["tokenizer"])

    @classmethod
    def from_text_bundle(cls, bundle: str | Path, device: str = "cpu") -> TextPredictor:
        """A text bundle (folder or .zip): weights, classes and its own tokenizer and config."""
        from tlcore.models.text_models import create_text_model
        from tlcore.results.bundle_format import read_bundle
        from tlcore.results.trust import read_bundle_trust

        meta, state = read_bundle(bundle)
        folder = _bundle_folder(Path(bundle)) / ENCODER_DIR
        if not (folder / "config.json").is_file():
            raise ModelError(f"{bundle} is a text bundle without its {ENCODER_DIR}/ folder.")
        classes = list(meta["classes"])
        try:
            model = create_text_model(meta["architecture"], len(classes), "scratch", folder=folder)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]  # e.g. no "model_type"
            raise ModelError(
                f"{bundle} is not a usable text bundle: its {ENCODER_DIR}/config.json does not "
                f"describe an encoder transformers can build ({type(exc).__name__}: {first})."
            ) from None
        model.pad_id = int(meta["text"]["pad_id"])
        _load_state(model, state, str(bundle))
        predictor = cls(model, classes, meta["text"]["max_tokens"], model_name=meta["architecture"],
                        weights=meta.get("pretrained_weights", "bundled"), source=str(bundle),
                        device=device)  # fmt: skip
        return predictor.set_trust(read_bundle_trust(bundle, meta))  # the run's temperature

    # -- predicting ----------------------------------------------------------------------
    def token_ids(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids ``[N, tokens]`` as training saw them (cut to max_tokens, padding trimmed)."""
        from tlcore.data.text_dataset import TrimPadding, tokenize

        ids = tokenize(self.tokenizer, [str(t) for t in texts], self.data_config["max_tokens"])
        return TrimPadding(int(self.data_config["pad_id"]))(ids) if len(ids) else ids

    def preprocess(self, text: Any) -> torch.Tensor:  # type: ignore[override]
        """One text's ids padded to ``max_tokens`` (what the export checks stack)."""
        from tlcore.data.text_dataset import tokenize

        return tokenize(self.tokenizer, [str(text)], self.data_config["max_tokens"])[0]

    def _batches(self, texts: Sequence[str]):
        for start in range(0, len(texts), BATCH_SIZE):
            yield self.token_ids(texts[start : start + BATCH_SIZE]).to(self.device)

    @torch.no_grad()
    def logits(self, texts: Sequence[str]) -> torch.Tensor:  # type: ignore[override]
        out = [self.model(ids).float().cpu() for ids in self._batches(texts)]
        return torch.cat(out) if out else torch.empty(0, len(self.classes))

    @torch.no_grad()
    def logits_and_features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        logits, feats = [], []
        for ids in self._batches(texts):
            x = self.model.forward_features(ids)
            feats.append(self.model.forward_head(x, pre_logits=True).float().cpu())
            logits.append(self.model.forward_head(x).float().cpu())
        if not logits:
            return torch.empty(0, len(self.classes)), torch.empty(0, 0)
        return torch.cat(logits), torch.cat(feats)

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:  # type: ignore[override]
        """Sentence embeddings (N, D): what the head sees."""
        out = [self.model.forward_features(ids).float().cpu() for ids in self._batches(texts)]
        return torch.cat(out) if out else torch.empty(0, 0)

    def predict_texts(self, texts: Sequence[str], k: int = 3) -> list[Prediction]:
        """One Prediction per text (its ``path`` holds the text); empty texts get an error."""
        results = [Prediction(path=str(t)) for t in texts]
        good = [i for i, t in enumerate(texts) if str(t).strip()]
        for i in set(range(len(texts))) - set(good):
            results[i].error = "The text is empty."
        for i in good:
            if len(str(texts[i])) > MAX_TEXT_CHARS:
                results[i].path = str(texts[i])[:200] + "…"
        if good:
            probs = self.predict([str(texts[i])[:MAX_TEXT_CHARS] for i in good])
            for i, top in zip(good, self.top_k(probs, k), strict=True):
                results[i].top = top
                results[i].label, results[i].probability = top[0]
        return results

    def predict_files(self, paths: Sequence[str | Path], k: int = 3, names: Sequence[str] | None = None,
                      unknown_threshold: float | None = None) -> list[Prediction]:  # fmt: skip
        """Each file is a .txt (one text) or a CSV with a text column (one text a row)."""
        results: list[Prediction] = []
        for path in paths:
            path = Path(path)
            try:
                texts = read_texts(path.name, path.read_bytes())
            except (DataError, OSError) as exc:
                results.append(Prediction(path=path.name, error=str(exc)))
                continue
            results.extend(self.predict_texts(texts, k))
        return results


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], label: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(f"the weights in {label} do not fit this text model: {first}") from None


def _bundle_folder(bundle: Path) -> Path:
    """A bundle folder as is; a .zip extracted safely once (keyed by content) and its folder."""
    if bundle.is_dir():
        return bundle
    from tlcore.data.prepare import unpack_upload
    from tlcore.results.bundle_format import BUNDLE_META

    root = unpack_upload(bundle)
    found = sorted(root.rglob(BUNDLE_META), key=lambda p: len(p.parts))
    if not found:
        raise ModelError(f"{bundle.name} holds no {BUNDLE_META}: not a tlcore bundle.")
    return found[0].parent


def read_texts(name: str, data: bytes) -> list[str]:
    """Texts from an upload: a .csv/.tsv (its text column, or its only column) or a .txt."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(
            f"{name} is not UTF-8 text: save it as UTF-8 and upload it again."
        ) from None
    if not name.lower().endswith((".csv", ".tsv")):
        return [content.strip()] if content.strip() else []
    from tlcore.data.text_source import TEXT_COLUMNS

    rows = list(
        csv.reader(io.StringIO(content), delimiter="\t" if name.lower().endswith(".tsv") else ",")
    )
    if not rows:
        return []
    header = [h.strip().casefold() for h in rows[0]]
    column = next((header.index(c) for c in TEXT_COLUMNS if c in header), None)
    if column is None:
        if len(header) != 1:
            raise DataError(
                f"{name} needs a 'text' column (its first line has {len(header)} columns)."
            )
        return [r[0] for r in rows if r and r[0].strip()]  # one column, no header to skip
    return [r[column] if len(r) > column else "" for r in rows[1:] if any(c.strip() for c in r)]


def text_predictions_csv(results: Sequence[Prediction]) -> str:
    """One row per text: text, label, probability, top ("a 0.91; b 0.09"), error."""
    from tlcore.data.csv_safe import csv_text  # a text starting with = + - @ stays text

    rows = []
    for r in results:
        top = "; ".join(f"{name} {p:.4f}" for name, p in r.top)
        prob = "" if r.probability is None else f"{r.probability:.6f}"
        rows.append([r.path, r.label or "", prob, top, r.error or ""])
    return csv_text(TEXT_CSV_COLUMNS, rows)


def text_bundle_metadata(predictor: TextPredictor) -> dict[str, Any]:
    """What a text bundle's ``tlcore.json`` adds: the modality and how texts become ids."""
    return {
        "modality": "text",
        "text": {
            "max_tokens": int(predictor.data_config["max_tokens"]),
            "pad_id": int(predictor.data_config["pad_id"]),
            "tokenizer": ENCODER_DIR,
            "pooling": "mean" + (" + unit length" if predictor.model.normalize else ""),
        },
    }


def write_text_bundle_files(predictor: TextPredictor, folder: Path) -> None:
    """The tokenizer and encoder config beside the weights, so the bundle loads offline."""
    target = folder / ENCODER_DIR
    target.mkdir(parents=True, exist_ok=True)
    predictor.tokenizer.save_pretrained(str(target))
    encoder = object.__getattribute__(predictor.model, "_encoder")
    (target / "config.json").write_text(json.dumps(encoder.config.to_dict(), indent=1), "utf-8")
    source = Path(str(predictor.data_config["tokenizer"]))
    for extra in (
        "modules.json",
        "sentence_bert_config.json",
    ):  # pooling as the encoder's authors set it
        if (source / extra).is_file():
            shutil.copyfile(source / extra, target / extra)
