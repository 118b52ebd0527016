"""`tlcore models` and `tlcore layers` print what the library computes, and fail in words."""

from __future__ import annotations

import json

from tlcore.cli import main


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_models_json_lists_the_catalog(capsys):
    assert main(["models", "--json"]) == 0
    rows = last_json(capsys.readouterr().out)["models"]
    lite0 = next(r for r in rows if r["name"] == "tf_efficientnet_lite0")
    assert lite0["availability"] == "bundled" and lite0["top1"] == 74.83
    assert len(rows) >= 15


def test_models_table_is_readable(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "name",
        "family",
        "params_m",
        "top1",
        "input_size",
        "availability",
    ]
    assert "tf_efficientnet_lite0" in out and "bundled" in out


def test_layers_json_matches_the_freeze_plan(capsys):
    argv = [
        "layers",
        "tf_efficientnet_lite0",
        "--freeze",
        "last-2",
        "--weights",
        "bundled",
        "--num-classes",
        "3",
        "--lr-decay",
        "0.5",
        "--json",
    ]
    assert main(argv) == 0
    data = last_json(capsys.readouterr().out)
    groups = data["groups"]
    assert groups[0]["group"] == "stem" and groups[-1]["group"] == "head"
    assert [g["trainable"] for g in groups][-3:] == [False, True, True]
    assert data["trainable_params"] == sum(g["params"] for g in groups if g["trainable"])
    assert groups[-1]["params"] == 1280 * 3 + 3
    assert groups[-2]["lr_mult"] == 0.5
    assert data["weights"]["source"] == "bundled"


def test_layers_table_and_progressive_epoch(capsys):
    assert main(["layers", "resnet18", "--freeze", "progressive", "--epoch", "2"]) == 0
    out = capsys.readouterr().out
    assert "group" in out.splitlines()[0] and "layer4" in out
    assert "freeze=progressive at epoch 2" in out
    assert out.count("yes") == 3


def test_layers_errors_are_one_line_and_exit_2(capsys):
    assert main(["layers", "resnt18"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown model name") and "resnet18" in err
    assert main(["layers", "resnet18", "--weights", "hub"]) == 2
    err = capsys.readouterr().err
    assert "hub" in err and "scratch" in err and "Traceback" not in err
    assert main(["layers", "resnet18", "--freeze", "half"]) == 2
    assert "Unknown freeze preset" in capsys.readouterr().err
