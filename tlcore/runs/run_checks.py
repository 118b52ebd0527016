"""What a run folder must be before tlcore opens it: a real folder, settings of the right types.

A run folder is written by tlcore, but anyone with access to the runs folder can
change it: link it to a folder elsewhere (the worker then wrote ``log.txt`` and
``status.json`` there), or put ``"epochs": "ten"`` in its ``config.json`` (shown as
"1/ten" epochs, then a failure deep in the worker). ``Run.open`` / ``Run.from_id`` and
``Run.config`` (``tlcore.runs.run``) ask these checks and refuse in one line.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from tlcore.errors import RunError
from tlcore.training.config import TrainConfig

_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "dict": (dict,),
    "list": (list,), "None": (type(None),),
}  # fmt: skip


def refuse_links(path: Path) -> None:
    """RunError when ``path``, or an entry the worker writes or reads in it, is a symbolic link.

    A run is a real folder inside the runs folder: ``runs/NAME`` linked to a folder
    elsewhere once had the worker append ``log.txt`` and replace ``status.json`` there.
    """
    path = Path(path)
    if path.is_symlink():
        raise RunError(
            f"{path} is a link (to {os.readlink(path)}), not a run folder: tlcore opens only "
            "real folders inside the runs folder, so it never writes through a link."
        )
    for folder in (path, path / "checkpoints", path / "exports"):
        try:
            entries = list(folder.iterdir()) if folder.is_dir() else []
        except OSError:
            continue  # an unreadable folder says so where it is read
        linked = next((p for p in entries if p.is_symlink()), None)
        if linked is not None:
            raise RunError(
                f"{linked} is a link, not a file of the run: tlcore opens only run folders "
                "whose files are real, so it never reads or writes through a link."
            )


def config_type_problems(values: dict[str, Any]) -> list[str]:
    """Settings in a run's config.json whose JSON type is not the setting's (``"epochs":
    "ten"``, a list for a name), one phrase each; unknown keys are a newer version's."""
    problems = []
    for f in dataclasses.fields(TrainConfig):
        if f.name not in values or not isinstance(f.type, str):
            continue
        names = [part.strip().split("[")[0] for part in f.type.split("|")]
        if any(n not in _KINDS for n in names):
            continue  # a type this check does not know: TrainConfig.validate judges it
        value = values[f.name]
        if f.name == "freeze" and isinstance(value, str):
            continue  # a preset's name ("last-3") is a plan too (TrainConfig.__post_init__)
        allowed = tuple(t for n in names for t in _KINDS[n])
        is_bool = isinstance(value, bool)
        if not isinstance(value, allowed) or (is_bool and "bool" not in names):
            shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
            problems.append(f"{f.name} is {shown}, not {' or '.join(names)}")
    freeze = values.get("freeze")
    if isinstance(freeze, dict) and not isinstance(freeze.get("preset"), str):
        problems.append("freeze has no preset name")
    return problems
