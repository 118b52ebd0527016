"""What the pages show for labelled sentences in place of their photo sections.

The task table (``appkit.tasks``) points here for texts: the examples on Data, the text
encoders on Model, sentences instead of thumbnails on Evaluate, a text box and a CSV of
texts on Predict, the transfer-learning ladder on Few-shot, and the words that pushed a
decision as highlighted text. Everything a user typed or uploaded is escaped before it
reaches the page.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from appkit import charts, state
from appkit.text import md
from tlcore.data.prepare import PreparedData
from tlcore.errors import TLCoreError
from tlcore.models.text_catalog import TEXT_CATALOG, text_catalog_rows

BADGES = {"bundled": "bundled · offline", "cached": "cached · offline",
          "needs internet": "needs internet"}  # fmt: skip


# -- Data ------------------------------------------------------------------------------------
def examples(prepared: PreparedData, per_class: int = 5) -> None:
    """A few training sentences of each label, to check the labels by eye."""
    manifest = prepared.manifest
    st.subheader("Examples per label")
    st.caption("Check that each list really shows its label: mislabelled texts teach mistakes.")
    words = getattr(prepared.report, "words", {}) or {}
    if words:
        st.caption(f"Words per text: {words['min']} to {words['max']} (median {words['median']}).")
    for index, name in enumerate(manifest.classes):
        texts = [it.text for it in manifest.items if it.label == index][:per_class]
        st.markdown(f"**{md(name)}**")
        st.dataframe(pd.DataFrame({"text": texts}), hide_index=True, width="stretch",
                     key=f"text_examples_{index}")  # fmt: skip


# -- Model -----------------------------------------------------------------------------------
def model_page() -> None:
    """Step 2 for texts: the sentence encoders, with where their weights come from."""
    st.title("2 · A model that already knows language")
    st.info(
        "**What does *pretrained* mean for text?** These encoders read billions of words and "
        "learned which words and phrases mean similar things; all-MiniLM-L6-v2 was then "
        "trained on a billion sentence pairs to put sentences that mean the same close "
        "together. We keep that knowledge and only teach the last step: your labels.",
        icon=":material/lightbulb:",
    )
    rows = text_catalog_rows()
    st.dataframe(
        pd.DataFrame({
            "model": [r["name"] for r in rows], "family": [r["family"] for r in rows],
            "weights": [BADGES[r["availability"]] for r in rows],
            "parameters (M)": [r["params_m"] for r in rows],
            "transformer layers": [r["layers"] for r in rows], "note": [r["note"] for r in rows],
        }),
        hide_index=True, width="stretch", key="text_catalog",
    )  # fmt: skip
    names = [e.name for e in TEXT_CATALOG]
    current = state.get("model") if state.get("model") in names else names[0]
    available = {r["name"]: r["availability"] for r in rows}
    chosen = st.radio("Text encoder", names, index=names.index(current), key="text_model",
                      format_func=lambda n: f"{n} ({BADGES[available[n]]})")  # fmt: skip
    if chosen != state.get("model"):
        state.update(model=chosen, weights="bundled" if available[chosen] == "bundled" else "hub",
                     freeze={"preset": "features"})  # fmt: skip
    if available[chosen] == "needs internet":
        st.warning(f"{md(chosen)} is not on this machine: it is downloaded when training starts.")
    st.page_link("pages/layers.py", label="Next: choose which layers learn →",
                 icon=":material/layers:")  # fmt: skip


def where(item: str) -> str:
    """A text's place as its reader knows it: ``.../reviews.csv:336`` is "reviews.csv,
    line 336" (the server's folders mean nothing to the person who uploaded the file)."""
    path, _, line = item.rpartition(":")
    if path and line.isdigit():
        return f"{Path(path).name}, line {line}"
    return Path(item).name


# -- words that pushed a decision --------------------------------------------------------------
TOWARD_RGB, AWAY_RGB = "28, 126, 214", "232, 89, 12"  # blue, orange


def highlighted(explanation: Any) -> str:
    """The text as HTML, each word tinted by its push: blue toward the class, orange away.

    Not green and red: those read as good and bad, and a review predicted "negative" had its
    most negative words in green. Blue and orange say nothing of their own (and stay apart
    for the common colour blindnesses)."""
    parts = []
    for piece, score in explanation.segments():
        text = html.escape(piece)
        if score is None or abs(score) < 0.05:
            parts.append(text)
            continue
        colour = TOWARD_RGB if score > 0 else AWAY_RGB
        parts.append(f'<span title="{score:+.2f}" style="background: rgba({colour}, '
                     f'{0.15 + 0.7 * abs(score):.2f}); border-radius: 3px; padding: 0 2px">'
                     f"{text}</span>")  # fmt: skip
    return '<div class="tl-why" style="line-height: 2">' + "".join(parts) + "</div>"


def show_why(predictor: Any, text: str, key: str) -> None:
    """Integrated gradients for ``text``, kept per model and text so reruns are instant."""
    from tlcore.results.text_explain import explain_text

    cache = st.session_state.setdefault("tl_text_why", {})
    cache_key = (key, predictor.source, text)
    try:
        if cache_key not in cache:
            with st.spinner("Finding the words that pushed the decision…"):
                cache[cache_key] = explain_text(predictor, text)
    except TLCoreError as exc:
        st.error(md(exc))
        return
    why = cache[cache_key]
    st.markdown(highlighted(why), unsafe_allow_html=True)
    st.caption(f"Blue words pushed toward **{md(why.target)}** ({why.probability:.0%}), orange "
               "ones away from it; the stronger the colour, the stronger the push (measured by "
               "integrated gradients)." + (" Only the beginning of this long text was read." if why.truncated else ""))  # fmt: skip


# -- Evaluate --------------------------------------------------------------------------------
def evaluate_sections(run: Any, checkpoint: str, report: Any, predictor: Any) -> None:
    """The hardest validation texts and why the model decided as it did on one of them."""
    st.subheader("Hardest texts")
    st.caption("The validation texts the model got most wrong, wrong and sure of it first. "
               "Check them for wrong labels too.")  # fmt: skip
    worst = report.worst[:12]
    st.dataframe(
        pd.DataFrame({
            "text": [m.path for m in worst], "true": [m.true for m in worst],
            "guessed": [m.predicted for m in worst],
            "sure": [round(m.confidence, 3) for m in worst],
            "right": ["yes" if m.correct else "no" for m in worst],
        }),
        hide_index=True, width="stretch", key="hardest_texts",
    )  # fmt: skip
    st.subheader("Which words pushed the decision")
    if not worst:
        return
    choices = {f"{m.true} → {m.predicted} · {m.path[:70]}": m.path for m in worst}
    label = st.selectbox("Text", list(choices), key="why_text")
    if label:
        show_why(predictor, choices[label], f"{run.id}:{checkpoint}")


# -- Predict ---------------------------------------------------------------------------------
def predict_section(run: Any, checkpoint: str, predictor: Any, top_k: int) -> None:
    """Type a sentence, or upload a CSV of texts and download a CSV of predictions."""
    from tlcore.results.text_predict import read_texts, text_predictions_csv

    single, batch = st.tabs(["Type a text", "Batch (CSV of texts)"])
    with single:
        text = st.text_area("A sentence to classify", key="predict_text",
                            placeholder="The battery died after two days.")  # fmt: skip
        if st.button("Predict", key="predict_text_go", type="primary"):
            st.session_state["tl_predicted_text"] = text
            if not text.strip():
                st.warning("Type a sentence first.")
        typed = st.session_state.get("tl_predicted_text")
        if typed:
            result = predictor.predict_texts([typed], k=top_k)[0]
            if result.error:
                st.error(md(result.error))
            else:
                st.markdown(f"**{md(result.label)}** · {result.probability:.1%}")
                st.dataframe(pd.DataFrame([{"label": n, "probability": round(p, 4)}
                                           for n, p in result.top]),
                             hide_index=True, key="text_top")  # fmt: skip
                show_why(predictor, typed, f"{run.id}:{checkpoint}")
    with batch:
        upload = st.file_uploader("A .csv with a text column (or a .txt, one text)",
                                  type=["csv", "tsv", "txt"], key="predict_text_csv")  # fmt: skip
        if upload is not None:
            try:
                texts = read_texts(upload.name, upload.getvalue())
                with st.spinner(f"Classifying {len(texts)} texts…"):
                    results = predictor.predict_texts(texts, k=top_k)
            except TLCoreError as exc:
                st.error(md(exc))
                return
            st.dataframe(pd.DataFrame([{"text": r.path, "label": r.label,
                                        "probability": r.probability, "error": r.error}
                                       for r in results]),
                         hide_index=True, width="stretch", key="text_batch")  # fmt: skip
            st.download_button("Download the predictions (CSV)", text_predictions_csv(results),
                               file_name="predictions.csv", mime="text/csv",
                               key="text_batch_csv")  # fmt: skip


# -- Few-shot --------------------------------------------------------------------------------
@st.cache_data(show_spinner="Embedding every text once…", max_entries=4)
def _ladder(manifest_path: str, fingerprint: str, owner: str | None) -> dict[str, Any]:
    from tlcore.data.manifest import Manifest
    from tlcore.lab.text_ladder import text_ladder

    return text_ladder(Manifest.load(manifest_path), owner=owner).to_dict()


def ladder_section(prepared: PreparedData) -> None:
    """Zero-shot from the label names, 1-10 examples per label, all of them, a trained model."""
    manifest = prepared.manifest

    st.subheader("The transfer-learning ladder for texts")
    st.markdown(
        "The sentence encoder already puts texts that mean the same close together, so the "
        "**label names** alone (zero-shot) or the average of a **few example sentences** per "
        "label (few-shot) classify new texts with no training at all."
    )
    if not st.button("Measure the ladder", key="text_ladder_go", type="primary"):
        return
    try:
        ladder = _ladder(str(prepared.manifest_path), manifest.fingerprint(), state.runs_owner())
    except TLCoreError as exc:
        st.error(md(exc))
        return
    st.plotly_chart(charts.transfer_ladder(ladder), key="text_ladder_chart")
    st.dataframe(pd.DataFrame([{"rung": r["label"], "accuracy": round(r["accuracy"], 3),
                                "how": r["detail"]} for r in ladder["rungs"]]),
                 hide_index=True, key="text_ladder_table")  # fmt: skip
