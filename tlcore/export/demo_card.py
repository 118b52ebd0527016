"""The model card a demo shows beside Predict: the one an export would write, made in memory.

A demo of a run shows what its exported bundle's README.md would say (settings, data,
validation numbers from the kept outputs, how sure it is); a demo of a bundle shows the
card made from the bundle's own ``tlcore.json``. Nothing is written to disk, and the
dataset is named without the folder it lies in on the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlcore.export.tasks import export_task, model_task

if TYPE_CHECKING:
    from tlcore.results.predict import Predictor
    from tlcore.runs.run import Run


def demo_card(source: Run | str | Path, predictor: Predictor | None = None) -> str:
    """The Markdown model card of a run's best checkpoint or of an exported bundle."""
    from tlcore.runs.run import Run

    if isinstance(source, Run):
        from tlcore.export.bundle import bundle_metadata
        from tlcore.runs.scoring import load_predictor

        predictor = predictor or load_predictor(source, "best")
        meta: dict[str, Any] = bundle_metadata(source, "best", predictor)
    else:
        from tlcore.results.bundle_format import bundle_meta

        meta = bundle_meta(source)
    data = dict(meta.get("data") or {})
    data["source"] = data.get("name", "")  # a visitor learns the dataset's name, not server paths
    return export_task(model_task(meta)).model_card({**meta, "data": data})
