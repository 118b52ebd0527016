"""The embedding pass (read -> decode -> resize -> network) against the network alone.

Same photos, same process, sides taking turns: the bundled sample (320 px photos)
and a temp folder of generated 4000x3000 JPEGs (the sample upscaled with a little
noise, so the files weigh what a phone's do; never committed). For each:

- network alone: the pass's runtime on already decoded, stacked tensors;
- whole pass: ``features.embed`` over the product's loader (``EpochLoaders``,
  ``decoded=False``, as the trainer's fast path) with today's defaults: JPEG draft
  decode, reading in threads ahead of the network, onnxruntime;
- old pass: the loop before issue 32 (full decode, one photo after the other,
  eager PyTorch) on the same loader.

Then the network runtimes on the same tensors (eager, channels-last, torch.compile,
onnxruntime: the product keeps the simplest within 5 % of the best), the one-off
export, and the text encoder's pass over sentences, eager against onnxruntime.
"""

from __future__ import annotations

import io
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks import row, sample_manifest, say, timed

IMG_SIZE, BATCH, BIG_PHOTOS, BIG = 224, 32, 16, (4000, 3000)
ROUNDS = 3  # turns per side; the best is kept (the machine is shared)


def make_big_photos(source: Path, dest: Path, n: int) -> None:
    """``n`` 12-megapixel JPEGs (quality 90, ~3 MB) in class folders, from the sample."""
    rng = np.random.default_rng(0)
    photos = sorted(source.rglob("*.jpg"))[:: max(1, len(sorted(source.rglob("*.jpg"))) // n)][:n]
    for index, path in enumerate(photos):
        out = dest / path.parent.name / f"{index:03d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            size = BIG if im.width >= im.height else BIG[::-1]
            big = np.asarray(im.convert("RGB").resize(size, Image.Resampling.BICUBIC), np.int16)
        noise = rng.integers(-12, 13, big.shape, dtype=np.int16)  # sensor grain: phone-size files
        Image.fromarray(np.clip(big + noise, 0, 255).astype(np.uint8)).save(out, quality=90)


def old_transform(transform: Any) -> Any:
    """The same transform behind a no-op first step: ``decode_side`` is None, no draft."""
    from torchvision import transforms as T

    return T.Compose([T.Lambda(lambda image: image), *transform.transforms])


def best(fn: Callable[[], Any]) -> float:
    return min(timed(fn)[0] for _ in range(ROUNDS))


def runtimes(model: Any, batches: list[torch.Tensor]) -> dict[str, float | str]:
    """Seconds of each network runtime over ``batches`` (or why it cannot run here), the
    runtimes taking turns round by round, simplest first."""
    import copy

    from tlcore.training import onnx_backbone
    from tlcore.training.devices import missing_compiler

    def eager_of(net: Any, channels_last: bool = False) -> Callable[[], list[torch.Tensor]]:
        def go() -> list[torch.Tensor]:
            with torch.inference_mode():
                return [net.forward_head(net.forward_features(
                    x.contiguous(memory_format=torch.channels_last) if channels_last else x),
                    pre_logits=True) for x in batches]  # fmt: skip

        return go

    contenders: dict[str, Callable[[], list[torch.Tensor]] | str] = {"eager": eager_of(model)}
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    contenders["channels-last"] = eager_of(last, channels_last=True)
    reason = missing_compiler(torch.device("cpu"))
    if reason:
        contenders["torch.compile"] = f"unavailable: {reason}"
    else:
        compiled = copy.deepcopy(model)
        compiled.forward_features = torch.compile(compiled.forward_features)
        started = time.perf_counter()
        eager_of(compiled)()  # compiled outside the timing
        say(f"torch.compile: {time.perf_counter() - started:.1f} s to compile")
        contenders["torch.compile"] = eager_of(compiled)
    run = onnx_backbone.runner(model, batches[0], None)
    contenders["onnxruntime"] = (lambda: [run(x) for x in batches]) if run else "export failed"
    reference = torch.cat(eager_of(model)())
    for name, go in contenders.items():
        if not isinstance(go, str):
            diff = (torch.cat(go()) - reference).abs().max().item()
            say(f"{name}: max |features - eager| {diff:.1e}")
    seconds: dict[str, list[float]] = {
        k: [] for k, v in contenders.items() if not isinstance(v, str)
    }
    for _ in range(ROUNDS):
        for name in seconds:
            seconds[name].append(timed(contenders[name])[0])
    return {k: (min(seconds[k]) if k in seconds else v) for k, v in contenders.items()}


def passes(name: str, manifest: Any, model: Any, folder: Path) -> list[dict]:
    """Network alone, whole pass and old pass on one set of photos; rows of ratios."""
    from tlcore.data.dataset import ManifestDataset, build_transform, resolve_data_config
    from tlcore.data.loading import EpochLoaders
    from tlcore.training import features

    transform = build_transform(resolve_data_config(model, IMG_SIZE), train=False)
    new_sets = [ManifestDataset(manifest, s, transform) for s in ("train", "val")]
    old_sets = [ManifestDataset(manifest, s, old_transform(transform)) for s in ("train", "val")]
    loaders = EpochLoaders(BATCH, torch.device("cpu"), 0)
    n = sum(len(d) for d in new_sets)
    cpu = torch.device("cpu")

    def whole(sets: list[Any], runtime: str, overlap: bool) -> Callable[[], Any]:
        return lambda: [features.embed(model, loaders.get(d, decoded=False), cpu,
                                       runtime=runtime, overlap=overlap)[0] for d in sets]  # fmt: skip

    new_x = torch.cat(whole(new_sets, "auto", True)())  # warm-up: file cache, graph, kernels
    old_x = torch.cat(whole(old_sets, "eager", False)())
    cos = torch.nn.functional.cosine_similarity(new_x, old_x).min().item()
    tensors = [x for d in new_sets for x, _ in loaders.get(d, decoded=False)]
    run = features._network(model, cpu, "auto", n, tensors[0])
    times: dict[str, list[float]] = {"network": [], "whole": [], "old": []}
    for _ in range(ROUNDS):  # taking turns: a burst of load elsewhere hits all three
        times["network"].append(timed(lambda: [run(x) for x in tensors])[0])
        times["whole"].append(timed(whole(new_sets, "auto", True))[0])
        times["old"].append(timed(whole(old_sets, "eager", False))[0])
    net, new, old = (min(times[k]) for k in ("network", "whole", "old"))
    say(f"{name}: {n} photos; network alone {n / net:.1f} photos/s, whole pass {n / new:.1f}, "
        f"old pass {n / old:.1f}; min cosine(new, old features) {cos:.4f}")  # fmt: skip
    target = "1.5x" if name == "samples" else "4x"
    return [
        row(f"whole pass vs network alone, {name}", n / new, n / net, net / new, ">= 0.9x",
            net / new >= 0.9, "photos/s", "ratio = whole / network alone"),
        row(f"whole pass vs old pass, {name}", n / new, n / old, old / new, f">= {target}",
            old / new >= float(target[:-1]), "photos/s", "ratio = new / old"),
    ]  # fmt: skip


def export_seconds(model: Any) -> float:
    """A fresh export of the backbone's graph and its session (what a first pass pays once)."""
    from tlcore.training import onnx_backbone

    onnx_backbone._sessions.pop(model, None)
    example = torch.zeros(1, 3, IMG_SIZE, IMG_SIZE)
    return timed(lambda: onnx_backbone.runner(model, example, None))[0]


def text_encoder() -> list[dict]:
    """The bundled MiniLM's transformer over review sentences, eager against onnxruntime,
    on the same tokenized batches (tokenizing and pooling are the same on both sides)."""
    import csv

    import onnxruntime as ort

    from tlcore.models.minilm import load_sentence_encoder

    source = Path(__file__).resolve().parents[1] / "assets" / "reviews-amazon"
    files = sorted(source.rglob("*.csv"))
    if not files:
        say(f"text encoder: no sample sentences under {source}; skipped")
        return []
    with files[0].open(encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)][:256]
    encoder = load_sentence_encoder()
    bert, tokenizer = encoder[0].auto_model.eval(), encoder.tokenizer
    batches = [tokenizer(texts[i : i + BATCH], padding=True, truncation=True, return_tensors="pt",
                         max_length=encoder.max_seq_length) for i in range(0, len(texts), BATCH)]  # fmt: skip

    class Hidden(torch.nn.Module):  # positional inputs for the tracer, the last hidden states out
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=ids, attention_mask=mask, use_cache=False)[0]

    def eager() -> list[torch.Tensor]:
        with torch.inference_mode():
            return [
                bert(input_ids=b["input_ids"], attention_mask=b["attention_mask"])[0]
                for b in batches
            ]

    buffer = io.BytesIO()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Hidden().eval(), (batches[0]["input_ids"], batches[0]["attention_mask"]), buffer,
                          input_names=["ids", "mask"], output_names=["hidden"], opset_version=17,
                          dynamic_axes={"ids": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"},
                                        "hidden": {0: "b", 1: "t"}}, dynamo=False)  # fmt: skip
    bert.eval()  # the exporter restores the wrapper's training mode, down into the encoder
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    export = time.perf_counter() - started

    def onnx() -> list[np.ndarray]:
        return [session.run(None, {"ids": b["input_ids"].numpy(), "mask": b["attention_mask"].numpy()})[0]
                for b in batches]  # fmt: skip

    diff = max(  # over real tokens: padded positions' states are never pooled
        float((np.abs(o - e.numpy()) * b["attention_mask"].numpy()[..., None]).max())
        for o, e, b in zip(onnx(), eager(), batches, strict=True)
    )
    eager_s, onnx_s = best(eager), best(onnx)
    n = len(texts)
    say(f"text encoder ({len(texts)} sentences): eager {n / eager_s:.0f}/s, onnxruntime "
        f"{n / onnx_s:.0f}/s, max |diff| {diff:.1e}, one-off export {export:.1f} s")  # fmt: skip
    return [row("text encoder: onnxruntime vs eager (network alone)", n / onnx_s, n / eager_s,
                eager_s / onnx_s, "measure only", None, "sentences/s",
                f"export {export:.1f} s once")]  # fmt: skip


def run() -> list[dict]:
    from tlcore import settings
    from tlcore.models.factory import create_model

    rows: list[dict] = []
    model = create_model("tf_efficientnet_lite0", None, "bundled").eval()
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        tmp_path = Path(tmp)
        say(f"tf_efficientnet_lite0 at {IMG_SIZE} px, batch {BATCH}, {torch.get_num_threads()} "
            f"threads; best of {ROUNDS} turns")  # fmt: skip
        big = tmp_path / "big"
        started = time.perf_counter()
        make_big_photos(settings.sample_data_dir(), big, BIG_PHOTOS)
        sizes = [p.stat().st_size for p in big.rglob("*.jpg")]
        say(f"made {len(sizes)} JPEGs at {BIG[0]}x{BIG[1]}, {np.mean(sizes) / 1e6:.1f} MB each "
            f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
        for name, data in (("samples", None), ("12 MP", big)):
            work = tmp_path / name.replace(" ", "")
            work.mkdir()
            rows += passes(name, sample_manifest(work, data), model, tmp_path)
        export = export_seconds(model)
        say(f"one-off export of the backbone to ONNX + session: {export:.2f} s")
        batches = [torch.randn(BATCH, 3, IMG_SIZE, IMG_SIZE, generator=torch.Generator().manual_seed(i))
                   for i in range(2)]  # fmt: skip
        found = runtimes(model, batches)
        for name, value in found.items():
            shown = (
                value if isinstance(value, str) else f"{len(batches) * BATCH / value:.1f} photos/s"
            )
            say(f"runtime {name}: {shown}")
        timings = {k: v for k, v in found.items() if not isinstance(v, str)}
        fastest = min(timings.values())
        simplest = next(
            k for k, v in timings.items() if v <= fastest * 1.05
        )  # dict order: simplest first
        say(f"simplest runtime within 5 % of the best: {simplest}")
        photos = len(batches) * BATCH
        ort_s = timings.get("onnxruntime")
        rows.append(row("network runtime: onnxruntime vs eager", photos / ort_s if ort_s else None,
                        photos / found["eager"], found["eager"] / ort_s if ort_s else None,
                        "the product's choice", simplest == "onnxruntime", "photos/s",
                        f"simplest within 5 %: {simplest}"))  # fmt: skip
    return rows + text_encoder()
