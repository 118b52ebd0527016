"""A run as a standalone script: retrain the same model on the same split, torch + timm only.

Like jrieke/traingenerator, the point is teaching: a person sees, in one file
they can read and run, what the wizard did for them. The folder written by
``write_reproduction`` holds

- ``train.py``             the script (from ``tlcore.export.reproduce_template``), settings at the top
- ``split.json``           the run's train/val(/test) files relative to the data folder
- ``initial_weights.pt``   the pretrained backbone the run started from, as a plain
                           state dict (``torch.load(weights_only=True)``), so the script
                           runs offline whatever the source was (bundled, hub cache, file)

The freeze plan is written out as data (each layer group's parameter prefixes,
the epoch it starts training, its LR multiplier) computed here from
``tlcore.models.freezing``, so the script needs none of tlcore's code.
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tlcore import __version__
from tlcore.errors import DataError

if TYPE_CHECKING:
    from tlcore.data.manifest import Manifest
    from tlcore.runs.run import Run
    from tlcore.training.config import TrainConfig

SCRIPT_FILE = "train.py"
SPLIT_FILE = "split.json"
INITIAL_WEIGHTS_FILE = "initial_weights.pt"


def _relative(path: str, root: str) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)  # outside the root: keep it absolute (Path(root) / abs == abs)


def split_lists(manifest: Manifest) -> dict[str, Any]:
    """{"classes", "root", "train": [[relative path, label], ...], "val": ..., "test": ...}."""
    out: dict[str, Any] = {"classes": list(manifest.classes), "root": manifest.root}
    for split in ("train", "val", "test"):
        out[split] = [
            [_relative(it.path, manifest.root), it.label] for it in manifest.items_for(split)
        ]
    return out


def layer_group_table(model: torch.nn.Module, freeze: dict[str, Any], epochs: int) -> list[tuple]:
    """(name, parameter prefixes, first 1-based epoch it trains or None, lr multiplier) per group.

    Prefixes are module roots ('blocks.3', 'conv_head'); if two groups would share a
    root the group lists its full parameter names instead, so the mapping is exact.
    """
    from tlcore.models.freezing import FreezePlan, _module_root, _owner, layer_groups

    groups = layer_groups(model)
    plan = FreezePlan.from_dict(freeze)
    mults = plan.lr_multipliers(len(groups))
    first: list[int | None] = [None] * len(groups)
    for epoch in range(epochs):
        for i, trains in enumerate(plan.trainable_groups(len(groups), epoch)):
            if trains and first[i] is None:
                first[i] = epoch + 1
    roots = [list(dict.fromkeys(_module_root(_owner(n)) for n in g.param_names)) for g in groups]
    owner_of_root: dict[str, set[int]] = {}
    for i, group_roots in enumerate(roots):
        for root in group_roots:
            owner_of_root.setdefault(root, set()).add(i)
    table = []
    for i, group in enumerate(groups):
        shared = any(len(owner_of_root[r]) > 1 for r in roots[i])
        prefixes = list(group.param_names) if shared else roots[i]
        table.append((group.name, prefixes, first[i], float(mults[i])))
    return table


def literal(value: Any) -> str:
    """Python source for a plain value, strings in double quotes (as ruff format writes them)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'  # repr would write nan/inf, which are not Python literals
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise TypeError(f"{type(value).__name__} cannot be written into the script as a literal")


def doc_text(value: Any) -> str:
    """A value shown inside the script's docstring or a comment, never able to end either.

    The body of a JSON string escapes quotes, backslashes, newlines and every other
    control or non-ASCII character, and is also a valid body of a Python string: a
    dataset folder named with three quotes, a newline and some Python stays text in
    the docstring instead of becoming code that runs.
    """
    return json.dumps(str(value))[1:-1]


def _augment_block(augment: dict[str, Any] | None) -> str:
    """The augmentation settings one per line, as a person would write them."""
    if augment is None:
        return "None"
    return "{\n" + "".join(f"    {literal(k)}: {literal(v)},\n" for k, v in augment.items()) + "}"


def _groups_text(table: list[tuple]) -> str:
    return "\n".join(f"    {literal(tuple(row))}," for row in table)


def _not_reproduced(cfg: TrainConfig) -> str:
    """Settings of the run this plain script leaves out, said in its docstring."""
    left_out = []
    if getattr(cfg, "domain_adaptation", "none") not in ("none", None):
        left_out.append(f"domain adaptation ({cfg.domain_adaptation}) on unlabelled photos")
    if int(getattr(cfg, "nproc", 1) or 1) > 1:
        left_out.append(f"training on {cfg.nproc} GPUs at once (here: one device)")
    if not left_out:
        return ""
    return "\nNot reproduced here: " + doc_text("; ".join(left_out)) + ".\n"


def _run_temperature(run: Run) -> float | None:
    """The temperature fitted for the best checkpoint (tlcore.runs.trust_store), if any."""
    from tlcore.runs.trust_store import stored_trust

    trust = stored_trust(run, "best")
    return float(trust.calibration.temperature) if trust is not None else None


def _solved_head(run: Run) -> dict[str, Any] | None:
    """How the run's L-BFGS head solver fitted its head (its C), or None when the head
    trained by epochs of mini-batches (tlcore.training.head_solver)."""
    return next((e["head"] for e in reversed(run.epochs()) if e.get("head")), None)


def _head_note(head: dict[str, Any] | None, views: int) -> str:
    """What the docstring promises about matching the run, for how its head was trained."""
    if head is None:
        return (
            "The result is close to the run's, not identical\nto the last digit (the new head "
            "starts from other random numbers, and tlcore\nskips recomputing frozen layers, "
            "which changes floating-point rounding)."
        )
    note = (
        "As tlcore did for this run, the frozen backbone\nembeds every photo once and the "
        "head is solved to convergence (L-BFGS,\nC chosen by cross-validation on the "
        "training photos): that head is unique,\nso the validation accuracy is the run's "
        "final one, up to floating-point\nrounding. --head-solver sgd trains it by epochs "
        "of mini-batches instead."
    )
    if views:
        note += (
            f"\nThe {views} augmented views of each training photo are random: other pixels "
            "than\ntlcore's, so the head and its accuracy come out close, not identical."
        )
    return note


def render_script(run: Run, table: list[tuple], initial_weights: bool) -> str:
    """The text of train.py for ``run``."""
    from tlcore.data.dataset import _PRESET_ARGS
    from tlcore.data.manifest import Manifest
    from tlcore.export.reproduce_template import TEMPLATE
    from tlcore.runs.files import now_iso
    from tlcore.runs.run import freeze_label

    cfg = run.config
    manifest = Manifest.load(run.manifest_path)
    source = str(run.record.get("data", {}).get("source", manifest.root))
    augment = None if cfg.augment == "none" else _PRESET_ARGS[cfg.augment]
    head = _solved_head(run)
    weights_note = (
        f"{INITIAL_WEIGHTS_FILE}  the {cfg.weights} ImageNet weights the run started from"
        if initial_weights
        else "(no initial weights: the run trained from scratch)"
    )
    values = {
        "MODEL": doc_text(cfg.model),
        "DATASET": doc_text(Path(source).name or source),
        "RUN_ID": doc_text(run.id),
        "TLCORE_VERSION": __version__,
        "CREATED": doc_text(now_iso()),
        "WEIGHTS_NOTE": doc_text(weights_note),
        "NOT_REPRODUCED": _not_reproduced(cfg),
        "MODEL_REPR": literal(cfg.model),
        "CLASSES": literal(list(manifest.classes)),
        "DATA_ROOT": literal(manifest.root),
        "INITIAL_WEIGHTS": literal(INITIAL_WEIGHTS_FILE if initial_weights else None),
        "IMG_SIZE": literal(cfg.img_size),
        "EPOCHS": literal(cfg.epochs),
        "BATCH_SIZE": literal(cfg.batch_size),
        "LR": literal(cfg.lr),
        "OPTIMIZER": literal(cfg.optimizer),
        "MOMENTUM": literal(cfg.momentum),
        "WEIGHT_DECAY": literal(cfg.weight_decay),
        "SCHEDULE": literal(cfg.schedule),
        "WARMUP_EPOCHS": literal(cfg.warmup_epochs),
        "LABEL_SMOOTHING": literal(cfg.label_smoothing),
        "CLASS_BALANCED": literal(bool(cfg.class_balanced)),
        "EARLY_STOPPING": literal(cfg.early_stopping),
        "DROP_RATE": literal(cfg.drop_rate),
        "SEED": literal(cfg.seed),
        "NUM_WORKERS": literal(cfg.num_workers or 0),
        "AUGMENT": _augment_block(augment),
        "FREEZE_LABEL": doc_text(freeze_label(cfg.freeze)),
        "LAYER_GROUPS": _groups_text(table),
        "FREEZE_BN": literal(bool(cfg.freeze.get("freeze_bn", True))),
        "RUN_TEMPERATURE": literal(_run_temperature(run)),
        "HEAD_SOLVER": literal("lbfgs" if head is not None else "sgd"),
        "HEAD_C": literal(float(head["C"]) if head is not None else None),
        "AUGMENT_VIEWS": literal(int(cfg.augment_views or 0) if head is not None else 0),
        "HEAD_NOTE": _head_note(head, int(cfg.augment_views or 0)),
    }
    return string.Template(TEMPLATE).substitute(values)


def write_reproduction(run: Run, folder: Path) -> Path:
    """Write train.py, split.json and (for pretrained runs) initial_weights.pt into ``folder``."""
    from tlcore.data.manifest import Manifest
    from tlcore.models.factory import create_model

    cfg = run.config
    manifest = Manifest.load(run.manifest_path)
    if not manifest.items_for("train"):
        raise DataError(f"run {run.id} has no training images to reproduce.")
    folder.mkdir(parents=True, exist_ok=True)
    pretrained = cfg.weights != "scratch"
    probe = create_model(cfg.model, len(manifest.classes), "scratch")
    table = layer_group_table(probe, cfg.freeze, cfg.epochs)
    if pretrained:  # the backbone exactly as the run started from it, ImageNet head still on
        start = create_model(cfg.model, None, cfg.weights, cfg.drop_rate)
        state = {k: v.detach().cpu().contiguous() for k, v in start.state_dict().items()}
        torch.save(state, folder / INITIAL_WEIGHTS_FILE)
    (folder / SPLIT_FILE).write_text(json.dumps(split_lists(manifest), indent=1), encoding="utf-8")
    (folder / SCRIPT_FILE).write_text(render_script(run, table, pretrained), encoding="utf-8")
    return folder
