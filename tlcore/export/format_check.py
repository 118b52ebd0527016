"""What an export's check found: one record for every format and task (a classifier's
probabilities, a detector's boxes, a table's tasks), so the page and the CLI show each the
same way. Its own module: the task table's builders and ``graph_export`` both use it, and
it imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class FormatCheck:
    """How closely an exported file reproduces PyTorch, measured on real images."""

    format: str
    runtime: str
    images: int
    batch_sizes: list[int]
    max_abs_diff: float
    tolerance: float
    same_top_class: bool
    passed: bool
    seconds: float
    # with a fitted detector (tlcore.export.trusted_graph): the "none of these" score too
    unknown_max_diff: float | None = None
    same_unknown: bool | None = None
    summary: str = ""  # a task's own sentence (a detector's boxes: tlcore.export.box_onnx)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """One sentence for the page and the terminal."""
        if self.summary:
            return self.summary
        verdict = "matches" if self.passed else "does NOT match"
        top = "the same" if self.same_top_class else "a different"
        return (
            f"{self.runtime} {verdict} PyTorch on {self.images} real photos "
            f"(batches of {' and '.join(map(str, self.batch_sizes))}): largest probability "
            f"difference {self.max_abs_diff:.1e} (limit {self.tolerance:.0e}), {top} top class "
            f"for every photo{self._unknown_text()}."
        )

    def _unknown_text(self) -> str:
        if self.same_unknown is None:
            return ""
        same = "the same" if self.same_unknown else "a DIFFERENT"
        return (
            f", and {same} 'none of these' decision (largest unknown-score difference "
            f"{self.unknown_max_diff:.1e})"
        )
