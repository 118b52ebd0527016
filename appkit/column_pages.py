"""The pages of a table of labels (several label columns per photo, one shared model).

``appkit.tasks.COLUMNS`` hands these whole pages over: the Data page's report of the
chosen table (``data_section``), the Train page (the columns to learn and the group
column, epochs, Start, the live view with a curve per task, Stop: ``train_page``), the
Evaluate page (per task: accuracy and per-class F1, or mAP, F1 and threshold per tag and
the tags that go together, the worst mistakes with their photos, and whether a model per
column would do better, ``appkit.column_compare``: ``evaluate_page``)
and the Predict page (photos or the camera -> every task's answer: ``predict_page``).
Task, class and tag names are the user's: Markdown goes through ``md``; tables and charts
show them as data, never as markup.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from appkit import active_run, inference, runview, state
from tlcore.data.columns import ITEM_WORDS, ColumnsData, read_columns, table_columns
from tlcore.data.images import UPLOAD_TYPES
from tlcore.data.markdown import md
from tlcore.data.task import PHOTO_COLUMNS, TEXT_COLUMNS
from tlcore.errors import TLCoreError
from tlcore.runs.run import ACTIVE_STATES, Run
from tlcore.training.config import suggested_settings

NO_GROUP = "(no group: split photo by photo)"
REFRESH_S = 3.0
METRIC_WORDS = {"accuracy": "accuracy", "macro_f1": "average F1 over classes",
                "map": "mean average precision", "micro_f1": "F1 over all tags"}  # fmt: skip


# -- Data -----------------------------------------------------------------------------------
def chosen_table() -> tuple[Path, list[str] | None, str | None] | None:
    """The chosen table of labels, its columns to learn and its group column (None: no table;
    ``appkit.column_sections.choose_table`` keeps them in the state)."""
    data = state.get("data") or {}
    if data.get("task") not in (PHOTO_COLUMNS.key, TEXT_COLUMNS.key):
        return None
    return Path(data["source"]), data.get("tasks"), data.get("group")


def show_tasks(data: ColumnsData) -> None:
    """Each label column as a task: one-of or tags (with its separator), and its counts."""
    for task in data.tasks:
        kind = f"tags separated by `{md(task.separator)}`" if task.kind == "tags" else "one of"
        counts = ", ".join(f"{md(c)} {n}" for c, n in task.counts.items())
        st.markdown(f"- **{md(task.name)}** ({kind}, {task.labelled} labelled): {counts}")


def data_section() -> None:
    """The chosen table: its tasks with their counts, the split in groups, what was skipped."""
    chosen = chosen_table()
    if chosen is None:
        return
    source, tasks, group = chosen
    try:
        data = read_columns(source, tasks=tasks, group=group)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    st.success(f"Ready to train: {len(data.tasks)} label columns learned together, "
               f"{len(data.items)} {ITEM_WORDS.get(data.modality, 'items')}.")  # fmt: skip
    show_tasks(data)
    _split_and_notes(data)


def _split_and_notes(data: ColumnsData) -> None:
    for line in data.summary().split("\n")[:2]:
        st.caption(md(line))
    for problem in data.problems:
        st.warning(md(problem))


# -- Train ----------------------------------------------------------------------------------
def train_page() -> None:
    """Columns, group, epochs and Start; then the followed run, live."""
    chosen = chosen_table()
    if chosen is None:  # (data_choice imports the task views: its link is written out here)
        st.warning("Choose a table of labels on the Data page first.")
        st.page_link("pages/data.py", label="Go to Data", icon=":material/photo_library:")
        return
    source, tasks, group = chosen
    text = state.get("data").get("task") == TEXT_COLUMNS.key
    freeze = _plan(text)
    backbone = "MiniLM" if text else "Lite0"
    how = "frozen" if freeze["preset"] == "features" else runview.preset_label(freeze).lower()
    st.markdown(f"**{md(state.get('data')['label'])}** · several labels per item: one shared "
                f"model (the bundled {backbone}, {md(how)}), one head per column.")  # fmt: skip
    _plan_note(freeze, text)
    try:
        _, others = table_columns(source)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    options = [NO_GROUP, *others]
    picked = st.selectbox(
        "Group column (who took the photo, which patient): each group stays on one side",
        options, index=options.index(group) if group in options else 0, key="columns_group",
    )  # fmt: skip
    group = None if picked == NO_GROUP else picked
    try:
        everything = read_columns(source, group=group)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    names = [t.name for t in everything.tasks]
    default = [t for t in (tasks or names) if t in names] or names
    learn = st.multiselect("Columns to learn together", names, default=default,
                           key="columns_train_tasks")  # fmt: skip
    if not learn:
        st.info("Choose at least one column.")
        return
    if (learn, group) != (tasks, chosen[2]):
        state.update(data={**state.get("data"), "tasks": learn, "group": group})
    try:
        data = read_columns(source, tasks=learn, group=group)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    _split_and_notes(data)
    fast = freeze["preset"] == "features"
    if fast:
        epochs = st.number_input("Epochs (passes of the heads over the cached embeddings)", 5,
                                 500, 60, step=5, key="columns_epochs")  # fmt: skip
        st.caption("Each photo goes through the backbone once (cached); each task's loss is "
                   "divided by its loss at chance, so a small task weighs as much as a big one.")  # fmt: skip
    else:
        suggested = suggested_settings(freeze)
        epochs = st.number_input("Epochs (passes over the photos, backbone and heads together)",
                                 1, 200, suggested["epochs"], key="columns_finetune_epochs")  # fmt: skip
        st.caption(f"Every epoch reads the photos through the backbone ({suggested['augment']} "
                   f"augmentation, learning rate {suggested['lr']:g}); each task's loss is "
                   "divided by its loss at chance, so a small task weighs as much as a big one.")  # fmt: skip
    if st.button("Start training", key="columns_start", type="primary"):
        _start(source, learn, group, int(epochs), freeze)
    follow_run()


def _plan(text: bool) -> dict[str, Any]:
    """The Layers page's plan; sentences keep MiniLM frozen (feature extraction)."""
    freeze = dict(state.get("freeze") or {"preset": "features"})
    return {"preset": "features"} if text else freeze


def _plan_note(freeze: dict[str, Any], text: bool) -> None:
    """Which Layers plan this run uses, and that only feature extraction takes the fast path."""
    label = runview.preset_label(freeze)
    if freeze["preset"] == "features":
        st.info(f"Layers: **{md(label)}**. The fast path: each {'sentence' if text else 'photo'} "
                "is embedded once and the heads learn on the cached embeddings, in seconds. "
                + ("Sentences always use it (fine-tuning MiniLM for label columns is not "
                   "written yet)." if text else "It is used only for feature extraction: "
                   "choose another plan on the Layers page to fine-tune the shared backbone."))  # fmt: skip
        return
    st.info(f"Layers: **{md(label)}** (from the Layers page). The shared backbone learns with "
            "one head per task, end to end on the photos, so there is no fast path: it is used "
            "only for feature extraction. Slower: minutes instead of seconds.")  # fmt: skip
    st.page_link("pages/layers.py", label="Change it on the Layers page",
                 icon=":material/layers:")  # fmt: skip


def _start(source: Path, tasks: list[str], group: str | None, epochs: int,
           freeze: dict[str, Any]) -> None:  # fmt: skip
    from tlcore.runs.columns_run import create_columns_run
    from tlcore.training.config import TrainConfig

    fast = freeze["preset"] == "features"
    suggested = suggested_settings(freeze)
    try:
        config = TrainConfig(data=str(source), epochs=epochs, lr=2e-3 if fast else suggested["lr"],
                             freeze=freeze, augment="none" if fast else suggested["augment"],
                             owner=state.owner_id(), val_fraction=float(state.get("val_fraction")),
                             seed=int(state.get("seed"))).validate()  # fmt: skip
        run, _ = create_columns_run(config, tasks, group)
        run.spawn_worker(resume=False)
        state.update(run_id=run.id)
    except TLCoreError as exc:
        st.error(md(exc))


def follow_run() -> None:
    """The followed run of label columns: state, Stop, a curve per task, the final scores."""
    run = active_run.followed()
    try:
        ours = run is not None and run.task.target == "columns"  # photos or sentences
    except TLCoreError:
        ours = False
    if not ours:
        st.caption("Press Start: a curve per task appears here while it learns.")
        return
    st.divider()
    st.subheader("Training run")
    busy = run.status().get("state") in ACTIVE_STATES

    @st.fragment(run_every=REFRESH_S if busy else None)
    def live() -> None:
        current = Run.open(run.dir)
        status = current.status()
        now = status.get("state")
        st.markdown(f"Run {md(current.id)}: **{md(now)}**. {md(status.get('message', ''))}")
        epochs = current.config.epochs
        st.progress(min(1.0, (status.get("epoch") or 0) / max(1, epochs)),
                    text=f"epoch {status.get('epoch') or 0} of {epochs}")  # fmt: skip
        if now in ACTIVE_STATES and st.button("Stop", key="columns_stop"):
            current.stop()
            st.toast("Stopping…")
        if now in ("stopped", "failed") and st.button("Resume", key="columns_resume"):
            try:  # it trains its heads again; a finished embedding pass is read from the cache
                current.resume()
                st.rerun(scope="app")
            except TLCoreError as exc:
                st.error(md(exc))
        task_curves(current)
        if now == "finished":
            for name, scores in (status.get("tasks") or {}).items():
                st.markdown(f"- **{md(name)}**: {_scores_text(scores)}")
            st.page_link("pages/evaluate.py", label="Next: evaluate each task →",
                         icon=":material/fact_check:")  # fmt: skip
        if busy and now not in ACTIVE_STATES:
            st.rerun(scope="app")

    live()


def task_curves(run: Run) -> None:
    """One chart per task: its validation scores every few epochs (``task_scores`` events)."""
    events = [e for e in run.metrics() if e.get("type") == "task_scores" and e.get("tasks")]
    if not events:
        st.caption("The curves appear after the first epochs.")
        return
    names = list(events[-1]["tasks"])
    for column, name in zip(st.columns(min(3, len(names))) * len(names), names, strict=False):
        rows = [{"epoch": e["epoch"], "score": METRIC_WORDS.get(k, k), "value": v}
                for e in events for k, v in (e["tasks"].get(name) or {}).items()
                if k in METRIC_WORDS and v is not None]  # fmt: skip
        with column:
            st.markdown(f"**{md(name)}**")
            if rows:
                st.line_chart(pd.DataFrame(rows), x="epoch", y="value", color="score", height=220)


def _scores_text(scores: dict[str, Any]) -> str:
    return ", ".join(f"{METRIC_WORDS.get(k, k)} {v:.3f}" for k, v in scores.items()
                     if k in METRIC_WORDS and isinstance(v, float))  # fmt: skip


# -- Evaluate -------------------------------------------------------------------------------
def evaluate_page(run: Run, checkpoint: str) -> None:
    """Per task, on the validation photos: the scores, per class or per tag, the worst mistakes."""
    from tlcore.runs.columns_run import evaluate_columns

    try:
        report = evaluate_columns(run)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    groups = report.get("groups") or {}
    said = f"Scored on {report['items']} validation {run.task.items} the model never trained on"
    if groups:
        said += (f" (whole groups: {groups.get('train', 0)} in training, "
                 f"{groups.get('val', 0)} in validation)")  # fmt: skip
    st.caption(said + ".")
    for name, entry in report["tasks"].items():
        st.subheader(md(name))
        if entry["kind"] == "tags":
            _tags_report(entry)
        else:
            _one_of_report(entry)
        _worst(name, entry)
    from appkit.column_compare import compare_section

    compare_section(run)  # the seeds' question: would a model per column do better?


def _one_of_report(entry: dict[str, Any]) -> None:
    a, b = st.columns(2)
    a.metric("Accuracy", _pct(entry.get("accuracy")))
    b.metric("Average F1 over classes", _pct(entry.get("macro_f1")),
             help="Each class's F1 (precision and recall together), averaged: a rare class "
             "counts as much as a common one.")  # fmt: skip
    st.dataframe([{"class": c, "F1": s["f1"], "validation items": s["support"]}
                  for c, s in entry.get("per_class", {}).items()], hide_index=True)  # fmt: skip


def _tags_report(entry: dict[str, Any]) -> None:
    a, b = st.columns(2)
    a.metric("Mean average precision", _pct(entry.get("map")),
             help="Per tag, how well the photos that carry it are ranked above the others; "
             "averaged over tags. It needs no threshold.")  # fmt: skip
    b.metric(
        "F1 over all tags",
        _pct(entry.get("micro_f1")),
        help="At each tag's threshold (chosen on the validation photos).",
    )
    st.markdown("**Per tag**: F1 at its threshold, chosen on the validation photos.")
    st.dataframe([{"tag": t, "threshold": s["threshold"], "F1": s["f1"],
                   "validation items with it": s["support"]}
                  for t, s in entry.get("per_tag", {}).items()], hide_index=True)  # fmt: skip
    pairs = entry.get("together") or []
    if pairs:
        st.markdown("**Tags that go together**: items that carry both, that the model gave "
                    "both, and both right.")  # fmt: skip
        st.dataframe([{"tags": " + ".join(p["tags"]), "carry both": p["true"],
                       "given both": p["predicted"], "right": p["right"]}
                      for p in pairs[:12]], hide_index=True)  # fmt: skip


def _worst(name: str, entry: dict[str, Any]) -> None:
    worst = entry.get("worst") or []
    if not worst:
        st.caption("No mistakes on the validation items.")
        return
    st.markdown("**Worst mistakes** (the most confident wrong answers):")
    for column, mistake in zip(st.columns(len(worst)), worst, strict=False):
        with column:
            if mistake.get("text"):
                st.markdown(f"> {md(mistake['text'])}")
            elif Path(mistake["path"]).is_file():
                st.image(mistake["path"], width="stretch")
            if isinstance(mistake["true"], list):
                st.caption(md(f"missed: {', '.join(mistake['missed']) or '-'}; "
                              f"extra: {', '.join(mistake['extra']) or '-'}"))  # fmt: skip
            else:
                st.caption(md(f"{mistake['true']}, taken for {mistake['predicted']} "
                              f"({mistake['probability']:.0%})"))  # fmt: skip


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


# -- Predict --------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading the trained model…", max_entries=2)
def _predictor(run_dir: str, stamp: tuple[int, int]) -> Any:
    from tlcore.runs.columns_run import columns_predictor

    return columns_predictor(Run(Path(run_dir)), cached=False)


def predict_page(run: Run, checkpoint: str) -> None:
    """Photos (or the camera) -> every task's answer, the tags above their thresholds."""
    files = list(st.file_uploader("Photos", type=list(UPLOAD_TYPES), accept_multiple_files=True,
                                  key="columns_predict_photos") or [])  # fmt: skip
    if st.toggle("Use the camera", key="columns_camera"):
        shot = st.camera_input("Take a photo", key="columns_camera_photo")
        if shot is not None:
            files.append(shot)
    if not files:
        st.info("Upload photos: every task's answer appears for each.")
        return
    try:
        predictor = _predictor(str(run.dir), inference.checkpoint_stamp(run, checkpoint))
        with tempfile.TemporaryDirectory() as folder:
            paths = []
            for i, upload in enumerate(files):
                path = Path(folder) / f"{i}{Path(upload.name).suffix.lower() or '.jpg'}"
                path.write_bytes(upload.getvalue())
                paths.append(str(path))
            answers = predictor.predict(paths)
            for upload, path, answer in zip(files, paths, answers, strict=True):
                show_answer(upload.name, path, answer)
    except TLCoreError as exc:
        st.error(md(exc))


def show_answer(name: str, path: str, answer: dict[str, Any]) -> None:
    """One photo and, per task, its answer and the probabilities behind it."""
    picture, words = st.columns([1, 3])
    picture.image(path, width="stretch")
    with words:
        st.markdown(f"**{md(name)}**")
        _task_answers(answer)


def _task_answers(answer: dict[str, Any]) -> None:
    """Per task: the class and its probability, or the tags above their thresholds; and
    every probability behind them."""
    for task, said in answer["tasks"].items():
        if "labels" in said:
            tags = ", ".join(f"{md(t)} ({p:.0%})" for t, p in said["probability"].items())
            st.markdown(f"- **{md(task)}**: {tags or 'no tag above its threshold'}")
        else:
            st.markdown(f"- **{md(task)}**: {md(said['label'])} ({said['probability']:.0%})")
    with st.expander("Probabilities"):
        st.dataframe([{"task": task, "class or tag": c, "probability": p}
                      for task, said in answer["tasks"].items()
                      for c, p in said["scores"].items()], hide_index=True)  # fmt: skip


def text_predict_page(run: Run, checkpoint: str) -> None:
    """Sentences, one a line -> every task's answer for each."""
    from tlcore.runs.columns_run import predict_columns

    typed = st.text_area("Sentences, one a line", key="columns_predict_texts")
    lines = [line.strip() for line in typed.splitlines() if line.strip()]
    if not lines:
        st.info("Type sentences: every task's answer appears for each.")
        return
    try:
        answers = predict_columns(run, lines)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    for line, answer in zip(lines, answers, strict=True):
        st.markdown(f"> {md(line)}")
        _task_answers(answer)
