"""tlcore: the library behind the no-code transfer-learning app.

Data, models, freezing, training runs, metrics and export, usable from Python
or the ``tlcore`` command line. It never imports streamlit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tlcore.results.predict import Predictor

__version__ = "0.1.0"


def load(source: Any, checkpoint: str = "best", device: str = "cpu") -> Predictor:
    """A ready ``Predictor`` from an exported bundle (folder or .zip) or a run id/folder.

    Imported lazily so ``import tlcore`` stays light (no torch until a model is needed).
    """
    from tlcore.runs.scoring import load_model

    return load_model(source, checkpoint=checkpoint, device=device)
