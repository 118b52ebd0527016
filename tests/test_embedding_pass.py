"""The embedding pass at the machine's limit (issue 32): decode only what the input needs,
read ahead of the network, run the network in the fastest runtime; same results."""

from __future__ import annotations

import threading

import pytest
import torch
from PIL import Image

from tlcore.data.dataset import ManifestDataset, build_transform, resolve_data_config
from tlcore.data.decoded_cache import decode_side
from tlcore.data.images import load_rgb
from tlcore.data.loading import EpochLoaders
from tlcore.data.prepare import prepare_data
from tlcore.errors import DataError
from tlcore.models.factory import create_model
from tlcore.training import features, onnx_backbone

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model():
    """The default backbone with its pretrained ImageNet head (its predictions are checked)."""
    return create_model("tf_efficientnet_lite0", None, "bundled").eval()


@pytest.fixture(scope="module")
def manifest(sample_dir, tmp_path_factory):
    return prepare_data(sample_dir, manifest_path=tmp_path_factory.mktemp("m") / "m.json").manifest


def _dataset(manifest, model, img_size, split="val"):
    transform = build_transform(resolve_data_config(model, img_size), train=False)
    return ManifestDataset(manifest, split, transform)


def test_big_jpegs_are_decoded_small_with_the_same_predictions(model, sample_dir, tmp_path):
    """A JPEG 8x the input's size is decoded at 1/4 scale (twice the size its resize
    needs) for a 224 px input; ImageNet predictions stay the same, features within
    0.995 cosine of a full decode."""
    transform = build_transform(resolve_data_config(model, 224), train=False)
    side = decode_side(transform)
    assert side == 256  # Resize(256) then CenterCrop(224)
    full, draft = [], []
    for index, path in enumerate(sorted(sample_dir.rglob("*.jpg"))[::30][:4]):
        big = tmp_path / f"{index}.jpg"
        with Image.open(path) as im:
            size = (2732, 2048) if im.width >= im.height else (2048, 2732)
            im.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(big, quality=92)
        small = load_rgb(big, min_side=side)
        assert sorted(small.size) == [512, 683]  # 1/4 scale: the short side >= 2 x 256
        whole = load_rgb(big)  # the old decode: full size, then shrunk to 2048 at most
        assert sorted(whole.size) == [1535, 2048]
        full.append(transform(whole))
        draft.append(transform(small))
    with torch.no_grad():
        maps = model.forward_features(torch.stack(full + draft))
        logits, pooled = model.forward_head(maps), model.forward_head(maps, pre_logits=True)
    n = len(full)
    assert torch.equal(logits[:n].argmax(1), logits[n:].argmax(1))
    cosine = torch.nn.functional.cosine_similarity(pooled[:n], pooled[n:])
    print(f"draft vs full decode: min cosine {cosine.min():.4f}")
    assert cosine.min() > 0.995


class _ThreadLog(torch.utils.data.Dataset):
    """A dataset that notes which threads read it (to show the reading is not the network's)."""

    def __init__(self, dataset: ManifestDataset) -> None:
        self.dataset, self.transform, self.threads = dataset, dataset.transform, set()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        self.threads.add(threading.current_thread().name)
        return self.dataset[index]


def test_reading_overlaps_the_network_with_identical_results(manifest, model):
    dataset = _ThreadLog(_dataset(manifest, model, 64))
    loader = torch.utils.data.DataLoader(dataset, batch_size=8)
    plain, y_plain = features.embed(model, loader, CPU, runtime="eager", overlap=False)
    assert dataset.threads == {threading.current_thread().name}
    dataset.threads.clear()
    seen: list[int] = []
    ahead, y_ahead = features.embed(model, loader, CPU, seen.append, runtime="eager")
    assert threading.current_thread().name not in dataset.threads  # read in other threads
    assert torch.equal(plain, ahead) and torch.equal(y_plain, y_ahead)
    assert sum(seen) == len(dataset) and len(seen) == len(loader)  # progress batch by batch


def test_random_augmentation_gives_the_same_views_with_the_overlap(manifest, model):
    """Random crops draw from the global RNG: read ahead but in order, the views are the same."""
    from tlcore.data.dataset import with_batch_normalize
    from tlcore.training.trainer import seed_everything

    transform = build_transform(resolve_data_config(model, 48), train=True, augment="light")
    dataset = with_batch_normalize(ManifestDataset(manifest, "val", transform))
    loader = EpochLoaders(8, CPU, 0).get(dataset, decoded=False)
    views = []
    for overlap in (False, True):
        seed_everything(7)
        views.append(features.embed(model, loader, CPU, runtime="eager", overlap=overlap)[0])
    assert torch.equal(views[0], views[1])


def test_a_photo_that_breaks_mid_pass_is_a_data_error(sample_dir, tmp_path, model):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(sample_dir, data)
    manifest = prepare_data(data, manifest_path=tmp_path / "m.json").manifest
    dataset = _dataset(manifest, model, 48)
    (data / dataset.items[5].path).write_bytes(b"not a photo any more")
    loader = EpochLoaders(4, CPU, 0).get(dataset, decoded=False)
    with pytest.raises(DataError, match="changed since the dataset was checked"):
        features.embed(model, loader, CPU, runtime="eager")


def test_onnxruntime_gives_the_eager_features_and_is_exported_once(manifest, model):
    from tlcore.training import embedding_cache

    dataset = _dataset(manifest, model, 64)
    loader = EpochLoaders(16, CPU, 0).get(dataset, decoded=False)
    eager, _ = features.embed(model, loader, CPU, runtime="eager")
    example, folder = torch.zeros(1, 3, 64, 64), embedding_cache.folder()
    onnx_backbone._sessions.pop(model, None)
    kept = onnx_backbone.runner(model, example, folder)  # a fresh export...
    assert kept is not None and not model.training  # ...leaves the model in eval mode
    assert len(list(folder.glob("backbone-*.onnx"))) == 1  # kept on disk for later passes
    fast, _ = features.embed(model, loader, CPU, runtime="onnxruntime")
    torch.testing.assert_close(fast, eager, atol=1e-4, rtol=1e-4)
    assert onnx_backbone.runner(model, example, folder) is kept  # not exported again
    onnx_backbone._sessions.pop(model, None)  # a new process: read from disk, no export
    assert onnx_backbone.exported_file(folder, model, tuple(example.shape))
    again, _ = features.embed(model, loader, CPU)  # "auto": a short pass, but the graph is there
    assert model in onnx_backbone._sessions
    torch.testing.assert_close(again, fast, atol=0, rtol=0)
    # a short pass at a small size with no graph yet stays eager (an export costs more)
    assert not onnx_backbone.worth_exporting(len(dataset), (1, 3, 64, 64))
    assert onnx_backbone.worth_exporting(80, (1, 3, 224, 224))
