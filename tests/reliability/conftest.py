"""Real files for the reliability suite: noisy photos, class folders, a small fast run config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlcore.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def photo(path: Path, seed: int = 0, size: tuple[int, int] = (48, 40)) -> Path:
    """A unique noisy RGB JPEG (unique content, so no accidental duplicates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=85)
    return path


def class_folders(root: Path, names: dict[str, int], seed: int = 0) -> Path:
    """``root/<class>/<class>_NN.jpg`` with ``n`` photos per class."""
    for c, (name, n) in enumerate(names.items()):
        for i in range(n):
            photo(root / name / f"{name}_{i:02d}.jpg", seed=seed * 1000 + c * 100 + i)
    return root


def quick_config(sample_dir: Path, **overrides) -> TrainConfig:
    """Feature extraction at 64 px without augmentation: the fast path, seconds per run."""
    base = dict(data=str(sample_dir), img_size=64, epochs=2, batch_size=16, augment="none",
                device="cpu")  # fmt: skip
    return TrainConfig(**(base | overrides))


@pytest.fixture()
def data_root(tmp_path, monkeypatch) -> Path:
    """A ``TLCORE_DATA_ROOT`` for the app's folder picker, with a secret folder beside it."""
    root = tmp_path / "server-data"
    root.mkdir()
    (tmp_path / "secret").mkdir()
    monkeypatch.setenv("TLCORE_DATA_ROOT", str(root))
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Two classes of eight small real photos: runs on it spend their time in the worker, not I/O."""
    return class_folders(tmp_path_factory.mktemp("tiny") / "pets", {"cats": 8, "dogs": 8}, seed=4)


def error_line(stderr: str) -> str:
    """The one ``error: ...`` line a failed command prints last (progress lines may precede it)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, stderr
    return lines[-1]
