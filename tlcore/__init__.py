"""tlcore: the library behind the no-code transfer-learning app.

Data, models, freezing, training runs, metrics and export, usable from Python
or the ``tlcore`` command line. It never imports streamlit.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# OpenMP threads that wait by sleeping, not spinning (read once, when torch loads; a value
# the user set wins). On a 2-core machine with one core busy (the app's server and browser
# while a run trains), a Lite0 forward pass ran 36.3 photos/s with sleeping threads against
# 23.3 with spinning ones, and 52.8 vs 50.3 with nothing else running
# (`python -m benchmarks threads`).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from tlcore.results.predict import Predictor

__version__ = "0.1.0"


def load(source: Any, checkpoint: str = "best", device: str = "cpu") -> Predictor:
    """A ready ``Predictor`` from an exported bundle (folder or .zip) or a run id/folder.

    Imported lazily so ``import tlcore`` stays light (no torch until a model is needed).
    """
    from tlcore.runs.scoring import load_model

    return load_model(source, checkpoint=checkpoint, device=device)
