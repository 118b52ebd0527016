"""The flags that several sub-commands share are spelt, defaulted and checked one way."""

from __future__ import annotations

import pytest

from tlcore.cli import build_parser, main

COMMANDS = {
    "train": [],
    "lr-find": [],
    "compare": [],
    "fewshot": [],
    "adapt": ["--target", "elsewhere"],
}


BAD = [
    ("--img-size", "8", "--img-size '8' is not valid: it must be a whole number from 32 to 2048."),
    ("--seed", str(2**70), "--seed '1180591620717411303424' is not valid"),
    ("--img-size", "big", "--img-size 'big' is not valid"),
    ("--batch-size", "0", "--batch-size '0' is not valid"),
    ("--seed", "1.5", "--seed '1.5' is not valid"),
]
CASES = [
    (command, *bad)
    for command in COMMANDS
    for bad in BAD
    if not (command == "fewshot" and bad[0] == "--batch-size")  # no batches: no training
]


@pytest.mark.parametrize(("command", "flag", "value", "message"), CASES)
def test_a_bad_shared_flag_gets_the_same_one_line_error(
    command, flag, value, message, sample_dir, capsys
):
    argv = [command, "--data", str(sample_dir), *COMMANDS[command], flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {err[0].removeprefix('error: ')}"] and message in err[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_shared_flags_have_the_same_defaults(command, sample_dir):
    args = build_parser().parse_args([command, "--data", str(sample_dir), *COMMANDS[command]])
    if args.model is None:  # train and lr-find pick the model by the kind of data (photos here)
        from tlcore.cli.train import _fit_text_data

        _fit_text_data(args)
    assert args.model == "tf_efficientnet_lite0"
    assert args.weights is None  # resolved per model: bundled when installed, else hub
    assert args.img_size is None and args.seed == "0" and args.device == "auto"


# a value just past each limit of TrainConfig that `tlcore train` takes as a flag
PAST_THE_LIMIT = [
    ("num_workers", "65"), ("nproc", "65"), ("max_tokens", "513"), ("warmup_epochs", "-1"),
    ("label_smoothing", "1"), ("augment_views", "33"), ("early_stopping", "1001"),
    ("val_fraction", "1"), ("lr", "0"),
]  # fmt: skip


@pytest.mark.parametrize(("setting", "value"), PAST_THE_LIMIT)
def test_the_cli_and_the_config_refuse_a_value_in_the_same_words(
    setting, value, sample_dir, capsys
):
    """One table of limits (``BOUNDS``): the flag's message is the config's, word for word."""
    from tlcore.errors import ConfigError
    from tlcore.training.config import BOUNDS, TrainConfig

    flag = "--" + setting.replace("_", "-")
    assert main(["train", "--data", str(sample_dir), flag, value]) == 2
    err = capsys.readouterr().err
    assert f"{flag} {value!r} is not valid: it must be {BOUNDS[setting].want}." in err
    kind = BOUNDS[setting].kind
    with pytest.raises(ConfigError, match="is not valid") as refused:
        TrainConfig(data=str(sample_dir), **{setting: kind(value)}).validate()
    assert BOUNDS[setting].want in str(refused.value)
