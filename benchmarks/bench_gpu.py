"""GPU training throughput: fp32 eager vs bf16 autocast + channels_last (+ torch.compile).

Synthetic 224 px batches (as timm's ``benchmark.py`` measures train
throughput), every layer training, SGD; the fast variants use tlcore's own
device helpers (``autocast``, ``to_device`` with channels_last) and
``nn.Module.compile`` as ``TrainConfig(compile=True)`` does. Reference: timm's
published train throughput (results/benchmark-train-amp-nhwc-pt112-cu113-rtx3090.csv,
AMP + NHWC, batch 512, RTX 3090); a different GPU makes that a sanity check,
not a pass/fail. Without CUDA every row says so and nothing is measured.
"""

from __future__ import annotations

import time

import torch

from benchmarks import row, say

MODELS = ("tf_efficientnet_lite0", "resnet50")
TIMM_PUBLISHED_RTX3090 = {"tf_efficientnet_lite0": 2134.89, "resnet50": 1218.01}  # images/s
IMG_SIZE, BATCH, WARMUP, STEPS = 224, 256, 10, 30


def images_per_s(name: str, fast: bool, compile_model: bool) -> tuple[float, float]:
    """(images/s, peak GiB) of training steps on one synthetic batch."""
    import timm

    from tlcore.devices import autocast, to_device

    device = torch.device("cuda")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = timm.create_model(name, pretrained=False, num_classes=1000).to(device).train()
    if fast:
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        model.compile()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(BATCH, 3, IMG_SIZE, IMG_SIZE)
    images = to_device(images, device) if fast else images.to(device)
    targets = torch.randint(0, 1000, (BATCH,), device=device)

    def step() -> None:
        context = autocast(device) if fast else torch.autocast("cuda", enabled=False)
        with context:
            loss = torch.nn.functional.cross_entropy(model(images).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(WARMUP):
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(STEPS):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30
    return BATCH * STEPS / seconds, peak


def run() -> list[dict]:
    if not torch.cuda.is_available():
        say("skipped: no CUDA device")
        return [
            row(f"gpu {name}", None, None, None, ">= 2x; within 10% of timm", None, "images/s",
                "skipped: no CUDA device")
            for name in MODELS
        ]  # fmt: skip
    say(f"{torch.cuda.get_device_name(0)}, {IMG_SIZE} px, batch {BATCH}, {STEPS} timed steps")
    rows = []
    for name in MODELS:
        fp32, fp32_mem = images_per_s(name, fast=False, compile_model=False)
        bf16, bf16_mem = images_per_s(name, fast=True, compile_model=False)
        say(f"{name}: fp32 eager {fp32:.0f} img/s ({fp32_mem:.1f} GiB), "
            f"bf16+channels_last {bf16:.0f} img/s ({bf16_mem:.1f} GiB)")  # fmt: skip
        rows.append(row(f"gpu {name}: bf16+channels_last vs fp32 eager", bf16, fp32, bf16 / fp32,
                        ">= 2x", bf16 / fp32 >= 2, "images/s",
                        f"peak {bf16_mem:.1f} vs {fp32_mem:.1f} GiB"))  # fmt: skip
        try:
            compiled, compiled_mem = images_per_s(name, fast=True, compile_model=True)
        except Exception as exc:  # a missing compiler must not hide the eager numbers
            say(f"{name}: torch.compile failed: {type(exc).__name__}: {exc}")
            compiled, compiled_mem = None, None
        if compiled is not None:
            rows.append(row(f"gpu {name}: + torch.compile vs fp32 eager", compiled, fp32,
                            compiled / fp32, "report", None, "images/s",
                            f"peak {compiled_mem:.1f} GiB"))  # fmt: skip
        best = max(bf16, compiled or 0.0)
        published = TIMM_PUBLISHED_RTX3090[name]
        rows.append(row(f"gpu {name}: vs timm published (RTX 3090)", best, published,
                        best / published, "within 10% (same GPU only)", None, "images/s",
                        f"this GPU: {torch.cuda.get_device_name(0)}"))  # fmt: skip
    return rows
