"""What the Doctor page's answers do to the dataset (``tlcore.data.doctor_decisions``), on the
bundled sample: a version built from the answers relabels, leaves out and keeps the photos
named, and a photo kept is not asked about again."""

from __future__ import annotations

import pytest

from tlcore.data.doctor_decisions import (
    duplicate_decision,
    kept_paths,
    label_decision,
    outlier_decision,
)
from tlcore.data.prepare import prepare_data
from tlcore.data.versions import VersionStore
from tlcore.errors import DataError


def test_answers_become_a_version_that_relabels_leaves_out_and_keeps(sample_dir, tmp_path):
    prepared = prepare_data(sample_dir, manifest_path=tmp_path / "m.json")
    manifest = prepared.manifest
    ants = [it.path for it in manifest.items_for("train") if manifest.classes[it.label] == "ants"]
    a, b, c, d, e = ants[:5]
    decisions = (
        label_decision(a, "relabel", "bees", "looks like a bee")
        + label_decision(b, None, "bees", "undecided")  # not decided: no change
        + duplicate_decision(c, d, "keep-first")
        + outlier_decision(e, "keep", "odd one")
    )
    assert [(o.path, o.action, o.label) for o in decisions] == [
        (a, "relabel", "bees"), (d, "exclude", ""), (e, "keep", "")
    ]  # fmt: skip
    assert decisions[1].why == f"doctor: near-duplicate of {c.rsplit('/', 1)[-1]}"
    store = VersionStore.of(manifest, prepared.manifest_path)
    version = store.create(decisions, author="test")
    fixed = {it.path: store.manifest(version.number).classes[it.label]
             for it in store.manifest(version.number).items}  # fmt: skip
    assert fixed[a] == "bees" and d not in fixed and fixed[e] == "ants" and fixed[c] == "ants"
    assert kept_paths(version.overrides) == {e}
    both = duplicate_decision(c, d, "keep-both")
    assert [(o.path, o.action) for o in both] == [(c, "keep"), (d, "keep")]
    assert duplicate_decision(c, d, "keep-second")[0].path == c  # the first is left out


def test_an_answer_that_is_no_choice_is_refused_in_words():
    with pytest.raises(DataError, match="'delete' is not a decision about a label"):
        label_decision("x.jpg", "delete", "bees", "why")
    with pytest.raises(DataError, match="near-duplicate pair: use one of keep-first"):
        duplicate_decision("a.jpg", "b.jpg", "keep")
    assert outlier_decision("x.jpg", None, "why") == []
