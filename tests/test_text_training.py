"""Fine-tuning the top of a text encoder: its frozen bottom runs once, with the same results.

Real review sentences and the real bundled all-MiniLM-L6-v2 weights, 32 word
pieces per text: the cached hidden states resume the forward pass exactly where the
full model would be; a run trained from them equals one through the full model,
dropout included, also when it stops and resumes from its checkpoint; and the
command line's lr-find and compare treat a CSV of texts sensibly.
"""

from __future__ import annotations

import pytest
import torch
from text_run_fixture import review_rows, write_csv

from tlcore.cli import main as cli_main
from tlcore.data.text_dataset import TrimPadding, load_tokenizer, tokenize
from tlcore.models.factory import create_model
from tlcore.models.freezing import FreezePlan, apply_freeze, layer_groups
from tlcore.training import frozen_layers

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("texts") / "reviews-48.csv", review_rows())


def test_cached_states_resume_the_forward_pass_of_the_full_model():
    model = create_model(MODEL, 2)
    groups = layer_groups(model)
    apply_freeze(model, groups, FreezePlan.parse("last-3"), 0)  # layers.4, layers.5, head
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert frozen_layers.cache_depth(model, [trainable]) == 4
    assert frozen_layers.cache_depth(model, [{"embeddings.LayerNorm.weight"}]) == 0
    rows = review_rows(8)
    ids = tokenize(load_tokenizer(model.text_config["tokenizer"]), [t for t, _ in rows], 64)
    labels = torch.tensor([label == "positive" for _, label in rows]).long()
    trim = TrimPadding(model.pad_id)
    loader = [(trim(ids[i : i + 4]), labels[i : i + 4]) for i in range(0, len(ids), 4)]
    states = frozen_layers.run_frozen(model, loader, 4, torch.device("cpu"))
    assert torch.equal(states.labels, labels)
    index = torch.tensor([13, 2, 7, 0, 11])  # sentences of other batches, of other lengths
    batch = trim(ids[index])
    hidden, mask = states.batch(index)
    assert hidden.shape[:2] == batch.shape and torch.equal(mask, batch != model.pad_id)
    with torch.no_grad():
        full = model.eval()(batch)
        cached = model.forward_head(model.forward_from(hidden, mask, 4))
    assert torch.allclose(cached, full, atol=1e-5) and not torch.allclose(full, 0 * full)
    model.train()  # the layers that learn drop out; the same seed gives the same masks
    logits = []
    for inputs in (batch, (hidden, mask)):
        torch.manual_seed(1)
        out = (
            model(inputs)
            if isinstance(inputs, torch.Tensor)
            else model.forward_head(model.forward_from(*inputs, 4))
        )
        out.logsumexp(1).sum().backward()
        logits.append((out.detach(), model.layers[4].output.dense.weight.grad.clone()))
        model.zero_grad()
    assert torch.allclose(logits[0][0], logits[1][0], atol=1e-5)
    assert torch.allclose(logits[0][1], logits[1][1], atol=1e-5)


def test_training_on_cached_states_equals_the_full_model_and_resumes(reviews_csv, tmp_path):
    from tlcore.data.prepare import prepare_data
    from tlcore.training.checkpoints import load_checkpoint, save_checkpoint
    from tlcore.training.config import TrainConfig
    from tlcore.training.trainer import Callback, Trainer

    manifest = prepare_data(reviews_csv, val_fraction=0.2, seed=0).manifest
    config = TrainConfig(data=str(reviews_csv), model=MODEL, epochs=2, max_tokens=32,
                         freeze=FreezePlan.parse("last-3").to_dict(), augment="none",
                         device="cpu", lr=1e-3)  # fmt: skip

    class StopAfterOne(Callback):
        def on_epoch_end(self, trainer, event):
            trainer.request_stop("stop after epoch 1")

    cache = tmp_path / "cache"
    first = Trainer(config, manifest, callbacks=[StopAfterOne()], cache_dir=cache)
    assert first.frozen_depth == 4 and not first.fast_path
    assert first.fit() == "stopped" and first.embedding_cache_hits == 0
    save_checkpoint(tmp_path, "last", first.model, first.state_dict())
    resumed = Trainer(config, manifest, cache_dir=cache)  # as the worker resumes a run
    resumed.load_state_dict(load_checkpoint(tmp_path, "last", resumed.model))
    assert resumed.fit() == "finished" and resumed.embedding_cache_hits == 2  # from disk
    full = Trainer(config, manifest)
    full.frozen_depth = 0  # the same run through the whole model, every epoch
    full.fit()
    assert not full.frozen and resumed.best == full.best
    ours, theirs = resumed.model.state_dict(), full.model.state_dict()
    assert max((ours[k] - theirs[k]).abs().max().item() for k in ours) < 1e-5
    before = first.model.state_dict()  # after epoch 1: the top layers learned on, not the rest
    assert not torch.equal(
        ours["layers.5.output.dense.weight"], before["layers.5.output.dense.weight"]
    )
    assert torch.equal(ours["layers.3.output.dense.weight"], before["layers.3.output.dense.weight"])


def test_lr_find_compare_and_estimate_on_a_csv_of_texts(reviews_csv, capsys, tmp_path):
    argv = ["--data", str(reviews_csv), "--max-tokens", "32", "--freeze", "last-3"]
    assert cli_main(["lr-find", *argv, "--steps", "5", "--json"]) == 0
    assert "suggested lr" in capsys.readouterr().out
    assert cli_main(["train", *argv, "--epochs", "3", "--estimate"]) == 0  # says, starts nothing
    out = capsys.readouterr().out
    assert out.startswith("estimated time: about ") and "through the 4 frozen layers once" in out
    assert not list((tmp_path / "runs").glob("2*"))  # no run directory
    assert (
        cli_main(["compare", "--data", str(reviews_csv), "--model", "tf_efficientnet_lite0"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "photo model but the data are texts" in err
    import argparse

    from tlcore.cli.compare import base_config, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["compare", "--data", str(reviews_csv)])
    assert base_config(args).model == MODEL  # left out: the text encoder for texts


def test_a_text_run_gets_a_time_estimate_measured_on_its_own_batches(reviews_csv):
    from tlcore.data.prepare import prepare_data
    from tlcore.models.minilm import minilm_dir
    from tlcore.training.config import TrainConfig
    from tlcore.training.estimate import estimate_run, machine_speed, text_batch_width

    manifest = prepare_data(reviews_csv, val_fraction=0.2, seed=0).manifest
    n_train, n_val = (len(manifest.items_for(s)) for s in ("train", "val"))

    def config(freeze: str) -> TrainConfig:
        return TrainConfig(data=str(reviews_csv), model=MODEL, epochs=3, max_tokens=32,
                           freeze=FreezePlan.parse(freeze).to_dict(), augment="none",
                           batch_size=8, device="cpu")  # fmt: skip

    width = text_batch_width(manifest, config("last-3"))
    tokenizer = load_tokenizer(str(minilm_dir()))
    lengths = [len(tokenizer(it.text)["input_ids"]) for it in manifest.items_for("train")]
    mean = sum(lengths) / len(lengths)  # a batch is as wide as its longest text, up to 32
    assert width % 8 == 0 and mean < width <= 32 and min(lengths) < 20
    speed = machine_speed(MODEL, width, "cpu")
    assert speed.img_size == width and speed.n_groups == 8 and 0 < speed.forward_s < speed.train_s
    runs = {
        f: estimate_run(config(f), n_train, n_val, speed) for f in ("features", "last-3", "full")
    }
    assert (
        runs["features"].fast_path and "48 texts goes through the encoder" in runs["features"].work
    )
    assert "the 48 texts go through the 4 frozen layers once" in runs["last-3"].work.lower()
    assert "top 2 layers" in runs["last-3"].work and runs["last-3"].items == "texts"
    assert runs["features"].seconds < runs["last-3"].seconds < runs["full"].seconds
