"""Why a text model decided what it decided: the words that pushed it, and which way.

The text twin of Grad-CAM: integrated gradients (Sundararajan et al. 2017, with
captum's ``LayerIntegratedGradients``) on the word-embedding layer, from a
baseline where every word is ``[PAD]`` to the real sentence. Each word piece
gets a share of the change in the predicted class's probability; pieces are
summed back into the words of the original text (the tokenizer's offsets), so
"unbelievably" is one highlighted word, and the original spacing and
punctuation are kept for display. A positive score pushed toward the class, a
negative one away from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from tlcore.results.text_predict import TextPredictor


STEPS = 32  # integration steps: enough for a stable ranking of a sentence's words
METHOD = "integrated gradients (captum), word embeddings, [PAD] baseline"


@dataclass
class WordScore:
    """One word of the text: where it is (characters), what it says, how it pushed."""

    word: str
    start: int
    end: int
    score: float  # signed, the largest |score| in the text is 1.0


@dataclass
class TextExplanation:
    """The words of one text with their push toward ``target`` (the predicted class by default)."""

    text: str
    target: str
    probability: float
    words: list[WordScore] = field(default_factory=list)
    method: str = METHOD
    truncated: bool = False  # only the first max_tokens word pieces were read

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def strongest(self, n: int = 5) -> list[WordScore]:
        return sorted(self.words, key=lambda w: -abs(w.score))[:n]

    def text_summary(self) -> str:
        """'positive: great (+1.00), waste (-0.41), ...' for a terminal."""
        parts = ", ".join(f"{w.word} ({w.score:+.2f})" for w in self.strongest())
        return f"{self.target}: {parts}"

    def segments(self) -> list[tuple[str, float | None]]:
        """The whole text in order as (piece, score or None for the gaps between words)."""
        out: list[tuple[str, float | None]] = []
        at = 0
        for w in sorted(self.words, key=lambda w: w.start):
            if w.start > at:
                out.append((self.text[at : w.start], None))
            out.append((self.text[w.start : w.end], w.score))
            at = max(at, w.end)
        if at < len(self.text):
            out.append((self.text[at:], None))
        return out


def explain_text(predictor: TextPredictor, text: str, target: int | str | None = None,
                 steps: int = STEPS) -> TextExplanation:  # fmt: skip
    """Integrated-gradients word scores of ``text`` for ``target`` (default: the top class)."""
    from captum.attr import LayerIntegratedGradients

    model = predictor.model.eval()
    max_tokens = int(predictor.data_config["max_tokens"])
    pad_id = int(predictor.data_config["pad_id"])
    enc = predictor.tokenizer(str(text), truncation=True, max_length=max_tokens,
                              return_offsets_mapping=True, return_tensors="pt")  # fmt: skip
    ids = enc["input_ids"].to(predictor.device)
    word_ids = enc.word_ids(0)
    offsets = enc["offset_mapping"][0].tolist()
    with torch.no_grad():
        probs = (model(ids).float() / predictor.temperature).softmax(-1)[0]
    if target is None:
        index = int(probs.argmax())
    elif isinstance(target, str):
        index = predictor.classes.index(target)
    else:
        index = int(target)
    special = torch.tensor([w is None for w in word_ids], device=ids.device)
    baseline = torch.where(special, ids, torch.full_like(ids, pad_id))

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return model(batch).float().softmax(-1)[:, index]

    layer = model.embeddings.word_embeddings
    lig = LayerIntegratedGradients(forward, layer)
    attributions = lig.attribute(ids, baselines=baseline, n_steps=int(steps),
                                 internal_batch_size=int(steps))  # fmt: skip
    per_token = attributions.sum(-1)[0].detach().float().cpu()
    words: dict[int, list[Any]] = {}
    for t, w in enumerate(word_ids):
        if w is None:
            continue
        start, end = offsets[t]
        entry = words.setdefault(w, [start, end, 0.0])
        entry[0], entry[1] = min(entry[0], start), max(entry[1], end)
        entry[2] += float(per_token[t])
    scale = max((abs(v[2]) for v in words.values()), default=0.0) or 1.0
    scored = [WordScore(str(text)[s:e], int(s), int(e), v / scale) for s, e, v in words.values()]
    n_tokens = len(predictor.tokenizer(str(text), truncation=False)["input_ids"])
    return TextExplanation(text=str(text), target=predictor.classes[index],
                           probability=float(probs[index]), words=scored,
                           truncated=n_tokens > max_tokens)  # fmt: skip
