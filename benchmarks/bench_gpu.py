"""GPU training throughput: fp32 eager vs bf16 autocast + channels_last (+ torch.compile).

Synthetic 224 px batches (as timm's ``benchmark.py`` measures train
throughput), every layer training, SGD; the fast variants use tlcore's own
device helpers (``autocast``, ``to_device`` with channels_last) and
``nn.Module.compile`` as ``TrainConfig(compile=True)`` does. Reference: timm's
published train throughput (results/benchmark-train-amp-nhwc-pt112-cu113-rtx3090.csv,
AMP + NHWC, batch 512, RTX 3090); a different GPU makes that a sanity check,
not a pass/fail. A GPU too small for batch 512 in fp32 halves it (and says so).
Without CUDA every row says so and nothing is measured.
"""

from __future__ import annotations

import time

import torch

from benchmarks import row, say

MODELS = ("tf_efficientnet_lite0", "resnet50")
TIMM_PUBLISHED_RTX3090 = {"tf_efficientnet_lite0": 2134.89, "resnet50": 1218.01}  # images/s
IMG_SIZE, BATCH, WARMUP, STEPS = 224, 512, 10, 30  # timm's csv: batch 512 for both


def images_per_s(
    name: str,
    fast: bool,
    compile_model: bool,
    device: torch.device | None = None,
    batch: int = BATCH,
    steps: int = STEPS,
    warmup: int = WARMUP,
) -> tuple[float, float | None]:
    """(images/s, peak GiB or None off CUDA) of training steps on one synthetic batch.

    ``device`` and the sizes are parameters so the test suite can run this body on a
    CPU with a tiny model; the benchmark itself always measures CUDA at 224 px.
    """
    import timm

    from tlcore.training.devices import autocast, to_device, uses_channels_last

    device = device or torch.device("cuda")
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = timm.create_model(name, pretrained=False, num_classes=1000).to(device).train()
    if fast and uses_channels_last(device):
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        model.compile()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, 3, IMG_SIZE, IMG_SIZE)
    images = to_device(images, device) if fast else images.to(device)
    targets = torch.randint(0, 1000, (batch,), device=device)

    def step() -> None:
        context = autocast(device) if fast else torch.autocast(device.type, enabled=False)
        with context:
            loss = torch.nn.functional.cross_entropy(model(images).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return batch * steps / seconds, peak


def fp32_at_largest_batch(name: str) -> tuple[int, tuple[float, float | None]]:
    """fp32 eager at timm's batch, halved until it fits this GPU (every variant then uses it)."""
    batch = BATCH
    while True:
        try:
            return batch, images_per_s(name, fast=False, compile_model=False, batch=batch)
        except torch.OutOfMemoryError:
            if batch <= 32:
                raise
            batch //= 2
            say(f"{name}: out of GPU memory in fp32; trying batch {batch}")


def run() -> list[dict]:
    if not torch.cuda.is_available():
        say("skipped: no CUDA device")
        return [
            row(f"gpu {name}", None, None, None, ">= 2x; within 10% of timm", None, "images/s",
                "skipped: no CUDA device")
            for name in MODELS
        ]  # fmt: skip
    say(f"{torch.cuda.get_device_name(0)}, {IMG_SIZE} px, {STEPS} timed steps")
    rows = []
    for name in MODELS:
        batch, (fp32, fp32_mem) = fp32_at_largest_batch(name)
        bf16, bf16_mem = images_per_s(name, fast=True, compile_model=False, batch=batch)
        say(f"{name}, batch {batch}: fp32 eager {fp32:.0f} img/s ({fp32_mem:.1f} GiB), "
            f"bf16+channels_last {bf16:.0f} img/s ({bf16_mem:.1f} GiB)")  # fmt: skip
        rows.append(row(f"gpu {name}: bf16+channels_last vs fp32 eager", bf16, fp32, bf16 / fp32,
                        ">= 2x", bf16 / fp32 >= 2, "images/s",
                        f"batch {batch}; peak {bf16_mem:.1f} vs {fp32_mem:.1f} GiB"))  # fmt: skip
        try:
            compiled, compiled_mem = images_per_s(name, True, True, batch=batch)
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
                        f"this GPU: {torch.cuda.get_device_name(0)}, batch {batch}"))  # fmt: skip
    return rows
