"""Step 4: set a few knobs, start training, and watch the model learn, live."""

import streamlit as st

from appkit import (
    active_run,
    data_choice,
    data_versions,
    lr_find_view,
    model_choice,
    navigation,
    runview,
    state,
    tasks,
    time_estimate,
    train_setup,
)
from appkit.learn import learn
from appkit.text import md, md_list
from tlcore.errors import TLCoreError
from tlcore.runs.run import ACTIVE_STATES, Run
from tlcore.training.config import AUGMENTS, suggested_settings
from tlcore.training.distributed import gpu_count

navigation.through_app()

IMAGE_SIZES = [64, 96, 128, 160, 192, 224, 240, 256, 260, 288, 320, 384]
BATCH_SIZES = [4, 8, 16, 32, 64, 128]
MIN_LR, MAX_LR = 1e-5, 1.0
AUGMENT_HELP = {
    "none": "none: the photos as they are (with feature extraction each photo goes through "
    "the network only once: the fastest choice)",
    "light": "light: random crops and flips (a little more robust)",
    "strong": "strong: crops, flips, colour and rotation changes (for harder, varied data)",
}

SETTING_WORDS = {
    "lr": "learning rate",
    "augment": "augmentation",
    "augment_views": "augmented views",
    "label_smoothing": "label smoothing",
    "early_stopping": "early stopping",
}

st.title("4 · Train")
learn("train")
if (page := data_choice.data_view().train_page) is not None:  # boxes, several label columns
    page()
    st.stop()

# --- what will be trained -----------------------------------------------------------------
data = state.get("data")
prepared = data_choice.prepared_or_none()
ready = prepared is not None and prepared.report.trainable
view = data_choice.data_view()  # what differs for photos and texts (appkit.tasks)
if not ready:
    data_choice.point_to_data_page(
        "Choose a dataset that is ready to train on the Data page first."
    )
else:
    st.markdown(  # dataset, class and checkpoint names are the user's: text, never Markdown
        f"**{md(data['label'])}** ({md_list(prepared.report.classes)}) · model "
        f"{md(state.get('model'))} · "
        f"{runview.preset_label(state.get('freeze'))}"
    )
    # label fixes saved on the Doctor page: say which version the run trains on
    if (
        data_versions.has_versions(prepared)
        and len(data_versions.version_store(prepared).versions()) > 1
    ):
        version = data_versions.chosen_version(prepared)
        st.markdown(f"Dataset version: **{md(version.summary())}**")
        st.page_link("pages/doctor.py", icon=":material/stethoscope:",
                     label="Choose another version on the Doctor page")  # fmt: skip

# --- settings that suit the freeze plan ---------------------------------------------------
settings_now = train_setup.train_settings()
suggested = suggested_settings(state.get("freeze"))
suggested = {k: v for k, v in suggested.items() if k not in view.fixed_settings}  # e.g. texts
APPLIED = ("epochs", "lr", "augment", "augment_views", "label_smoothing", "early_stopping")
offer = {k: suggested[k] for k in APPLIED if k in suggested and settings_now.get(k) != suggested[k]}
scale = suggested.get("backbone_lr_scale")
try:
    lr_mult = model_choice.backbone_lr_mult(scale) if scale not in (None, 1) else None
except TLCoreError:  # a plan the Layers page reports as broken: nothing to suggest for it
    lr_mult = None
plan_label = runview.preset_label(state.get("freeze"))
dismissed = st.session_state.setdefault("tl_suggestion_dismissed", set())
if plan_label not in dismissed and (
    offer or (lr_mult is not None and state.get("freeze").get("lr_mult") != lr_mult)
):

    def use_suggested() -> None:
        state.update(train={**state.get("train"), **offer})
        if lr_mult is not None:
            state.update(freeze={**state.get("freeze"), "lr_mult": lr_mult})
        state.refresh_widgets(*(f"train_{k}" for k in APPLIED), "groups")

    with st.container(border=True, key="suggested_settings"):
        words = [f"{SETTING_WORDS.get(k, k)} **{v:g}**" if isinstance(v, float)
                 else f"{SETTING_WORDS.get(k, k)} **{v}**" for k, v in offer.items()]  # fmt: skip
        if lr_mult is not None:
            words.append(f"pretrained layers learn at **×{scale:g}** the learning rate")
        st.markdown(f"**Suggested for {plan_label}:** " + ", ".join(words))
        if suggested.get("reason"):
            st.caption(suggested["reason"])
        use, keep = st.columns([1, 3])
        use.button("Use these settings", key="use_suggested", on_click=use_suggested)
        keep.button("Keep mine", key="keep_settings", on_click=dismissed.add, args=(plan_label,))

# --- the knobs ----------------------------------------------------------------------------
st.subheader("Settings")
if view.settings_note:
    st.caption(view.settings_note)
left, middle, right = st.columns(3)
with left:
    epochs = st.number_input(
        "Epochs",
        1,
        200,
        value=int(settings_now["epochs"]),
        key=state.widget_key("train_epochs"),
        help=f"How many times the model sees every training {view.task.item}. 5–10 is plenty "
        "for feature extraction; fine-tuning may need more.",
    )
    batch_size = st.selectbox(
        "Batch size",
        BATCH_SIZES,
        index=BATCH_SIZES.index(int(settings_now["batch_size"]))
        if int(settings_now["batch_size"]) in BATCH_SIZES
        else 2,
        key=state.widget_key("train_batch_size"),
        help=f"{view.items.capitalize()} per step. Smaller uses less memory; 16 suits a laptop.",
    )
    img_size = int(settings_now["img_size"])  # texts: no pixels (view.settings_note says so)
    if view.pixels:
        img_size = st.select_slider(
            "Image size (pixels)",
            sorted({*IMAGE_SIZES, img_size}),
            value=img_size,
            key=state.widget_key("train_img_size"),
            help="Photos are resized to this square. The model's own size is the most "
            "accurate; smaller is faster.",
        )
with middle:
    lr = st.number_input(
        "Learning rate",
        min_value=MIN_LR,
        max_value=MAX_LR,
        step=1e-4,
        format="%.5f",
        value=min(max(float(settings_now["lr"]), MIN_LR), MAX_LR),
        key=state.widget_key("train_lr"),
        help="How big each correction step is. Too high: the loss jumps around or explodes; "
        "too low: nothing happens. 0.001 suits feature extraction; use 10× less for a full "
        "fine-tune. Or let the range test below suggest one.",
    )
    lr_note = st.empty()  # filled below, once the chosen settings are known
    find_lr = st.button("Find learning rate", key="find_lr", disabled=not ready)
    early_stopping = st.number_input(
        "Early stopping (epochs without improvement, 0 = off)",
        0,
        50,
        value=int(settings_now["early_stopping"]),
        key=state.widget_key("train_early_stopping"),
        help="Stop when validation accuracy has not improved for this many epochs.",
    )
with right:
    augment = settings_now["augment"]  # kept for photos; a text run keeps view.fixed_settings
    if view.pixels:  # random crops and flips mean nothing for a sentence
        augment = st.radio(
            "Augmentation",
            list(AUGMENTS),
            format_func=lambda a: AUGMENT_HELP.get(a, a),
            index=list(AUGMENTS).index(settings_now["augment"]),
            key=state.widget_key("train_augment"),
            help="Random changes to the training photos so the model cannot memorise them.",
        )
    label_smoothing = st.slider(
        "Label smoothing",
        0.0,
        0.3,
        step=0.05,
        value=float(settings_now["label_smoothing"]),
        key=state.widget_key("train_label_smoothing"),
        help="Tells the model not to be 100% sure; 0.1 often helps a little with few photos.",
    )
    nproc, gpus = 1, gpu_count()
    if gpus > 1:  # on a machine with one GPU or none there is nothing to choose
        nproc = st.selectbox(
            "GPUs (processes)",
            list(range(1, gpus + 1)),
            index=min(max(int(settings_now.get("nproc", 1)), 1), gpus) - 1,
            key=state.widget_key("train_nproc"),
            help="Train on several GPUs at once (PyTorch DistributedDataParallel, started with "
            "torchrun). The batch size is per GPU, so 2 GPUs with batch 16 see 32 photos a step.",
        )

chosen = {
    "epochs": int(epochs),
    "batch_size": int(batch_size),
    "img_size": int(img_size),
    "lr": float(lr),
    "early_stopping": int(early_stopping),
    "augment": augment,
    "label_smoothing": float(label_smoothing),
    "nproc": int(nproc),
}
if chosen != {k: settings_now[k] for k in chosen}:
    state.update(train={**state.get("train"), **chosen})
if ready:
    try:
        solved = train_setup.head_is_solved(train_setup.build_config())
    except TLCoreError:  # a bad setting: the estimate below says which
        solved = False
    if solved:
        pixels = view.pixels  # augmentation applies to photos only
        lr_note.caption(
            "Not used with these settings: with the network frozen "
            + ("and no augmentation, " if pixels else "")
            + f"the new last layer is calculated in one go from each of the {view.items}' "
            "features instead of being learned step by step, and the epochs only pace the "
            f"live curves. How simple to keep it is chosen by trying several on the training "
            f"{view.items} (for the curious: a logistic regression, its regularisation chosen "
            "by cross-validation)."
            + (
                " With light or strong augmentation the head learns step by step at this "
                "learning rate."
                if pixels
                else ""
            )  # fmt: skip
        )

# --- learning-rate range test (in its own process; appkit.lr_find_view) -------------------
if find_lr:
    lr_find_view.start()
lr_find_view.section(MIN_LR, MAX_LR)

# --- how long it will take (drawn above the Start button, measured after it) -----------
# The first estimate measures the model on this machine (seconds, longer for texts); the
# Start button is drawn first, so a click is never kept waiting for the measurement.
estimate_box = st.container()


def show_estimate() -> None:
    """The time estimate, or why there is none (tlcore.training.estimate)."""
    try:
        estimate = time_estimate.run_estimate()
    except TLCoreError as exc:
        st.warning(f"No time estimate: {md(exc)}")
    else:
        (st.success if estimate.fast_path else st.info)(
            f"**Estimated time: {estimate.text}** on this machine. {estimate.work}",
            icon=":material/timer:",
        )
        speed = estimate.speed
        rate_digits = 1 if speed.forward_s > 0.1 else 0  # "0.6 photos/s", "85 photos/s"
        size = f"{speed.img_size} px" if estimate.items == "photos" else (
            f"{speed.img_size} word pieces a text")  # fmt: skip
        st.caption(
            (f"**Faster:** {estimate.tip} " if estimate.tip else "")
            + f"Measured here: {1 / max(speed.forward_s, 1e-9):,.{rate_digits}f} "
            f"{estimate.items}/s through {md(speed.model)} at {size} on {speed.device}. "
            "A rough guide: other "
            "programs busy on this machine can make the run much slower (or faster, once they "
            "stop)."
        )


# --- start / stop / resume ----------------------------------------------------------------
run = active_run.followed()
if run is not None and tasks.run_view(run).train_page is not None:  # boxes, label columns:
    run = None  # its curves are its own Train page's, shown when its data is chosen
run_state = run.status().get("state") if run is not None else None
busy = run_state in ACTIVE_STATES
start_label = "Start another run (it waits in the queue)" if busy else "Start training"
if st.button(start_label, key="start", type="primary", disabled=not ready):
    try:
        with st.spinner("Preparing the run…"):
            run = Run.start(train_setup.build_config())
        state.update(run_id=run.id)
        st.rerun()
    except TLCoreError as exc:
        st.error(md(exc))

if ready:
    with estimate_box:
        show_estimate()

if run is None:
    st.caption("Press Start: curves and the confusion matrix appear here while it learns.")
    st.stop()

st.divider()
st.subheader("Training run")


# Two parts refresh on their own clocks while the run is active: the progress bar, the
# numbers and Stop every STATUS_REFRESH_S (cheap), the charts every CHART_REFRESH_S. Every
# refresh costs the server and the browser CPU that the training on the same machine pays
# for: at one refresh of everything every 2 s, training ran 0.83x as fast with the page
# open on 2 cores; split like this, 0.93-1.00x (benchmarks/bench_live_view.py).
STATUS_REFRESH_S, CHART_REFRESH_S = 3.0, 6.0


@st.fragment(run_every=STATUS_REFRESH_S if busy else None)
def live_status() -> None:
    """Re-read the run's status while it is active; the page stays usable."""
    current = Run.open(run.dir)
    info = runview.progress_summary(current)
    now = info["status"].get("state")
    buttons = st.columns(4)
    if now in ACTIVE_STATES and buttons[0].button("Stop", key="stop"):
        current.stop()
        st.toast("Stopping after the current step…")
    if now in ("stopped", "failed") and buttons[0].button("Resume", key="resume"):
        try:
            current.resume()
            st.rerun(scope="app")
        except TLCoreError as exc:
            st.error(md(exc))
    runview.headline(info["epochs"], now)
    if busy and now not in ACTIVE_STATES:
        st.rerun(scope="app")  # the run ended: stop polling and redraw everything once


@st.fragment(run_every=CHART_REFRESH_S if busy else None)
def live_charts() -> None:
    """Curves and the confusion matrix; events parsed and figures rebuilt only when
    metrics.jsonl grew (appkit.runview)."""
    current = Run.open(run.dir)
    steps, epochs = runview.split_events(current)
    runview.curves(steps, epochs, key="train")
    runview.confusion(epochs, key="train")
    if current.status().get("state") == "finished":
        st.page_link(
            "pages/evaluate.py", label="Next: evaluate the model →", icon=":material/fact_check:"
        )


live_status()
live_charts()
