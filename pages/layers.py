"""Step 3: decide which layers keep their ImageNet knowledge and which learn your labels."""

import streamlit as st

from appkit import charts, model_choice, navigation, state
from appkit.learn import learn
from appkit.runview import preset_label
from appkit.text import md
from tlcore.errors import TLCoreError

navigation.through_app()

PRESETS = [
    (
        "features",
        "Feature extraction",
        "Only the new head learns. The fastest choice and the safest with few photos: "
        "without per-epoch augmentation each photo goes through the network just once. "
        "Start here.",
    ),
    (
        "last-k",
        "Fine-tune the last K groups",
        "The head and the top K−1 groups learn. Try it when you have a few hundred photos "
        "per label or they look unlike everyday photos (X-rays, microscopy).",
    ),
    (
        "full",
        "Full fine-tune",
        "Every layer learns. Slowest; needs many photos and a small learning rate, or it "
        "forgets what it knew.",
    ),
    (
        "progressive",
        "Progressive unfreezing",
        "Head first, then one more group from the top every few epochs: a gentle middle way.",
    ),
]


def choose_preset(preset: str) -> None:
    """A preset replaces hand-made per-group choices; K, E and the LR decay are kept."""
    plan = dict(state.get("freeze"))
    k = int(st.session_state.get(state.widget_key("k"), max(plan.get("k", 3), 2)))
    every = int(st.session_state.get(state.widget_key("every"), plan.get("every", 1)))
    decay = float(st.session_state.get(state.widget_key("lr_decay"), plan.get("lr_decay", 1.0)))
    state.update(freeze={"preset": preset, "k": k, "every": every, "lr_decay": decay})
    state.refresh_widgets("groups")


st.title("3 · Which layers learn?")
learn("layers")
with st.expander("What does freezing do?", expanded=False):
    st.markdown(
        "A network is a stack of layers: the first ones detect edges and colours, the "
        "middle ones textures and parts, the last ones whole objects; the **head** at the "
        "end turns that into your labels. A **frozen** layer keeps its ImageNet weights; a "
        "**trainable** layer is adjusted to your photos. Freezing more means faster training "
        "and less risk of *overfitting* (memorising your few photos); unfreezing more lets "
        "the model adapt when your photos look very different from ImageNet."
    )

try:
    plan = model_choice.freeze_plan()
    rows = model_choice.layer_summary(plan)
except TLCoreError as exc:
    st.error(md(exc))
    if st.button("Reset to feature extraction", key="reset_plan"):
        choose_preset("features")
        st.rerun()
    st.stop()

# --- presets ------------------------------------------------------------------------------
st.subheader("Presets")
columns = st.columns(len(PRESETS))
for column, (preset, title, why) in zip(columns, PRESETS, strict=True):
    with column:
        chosen = plan.preset == preset
        st.button(
            title,
            icon=":material/check:" if chosen else None,
            key=f"preset_{preset}",
            type="primary" if chosen else "secondary",
            on_click=choose_preset,
            args=(preset,),
            width="stretch",
        )
        st.caption(why)
        if preset == "last-k":
            k = st.number_input(
                "K (groups, head included)",
                1,
                len(rows),
                value=min(plan.k if plan.preset == "last-k" else 3, len(rows)),
                key=state.widget_key("k"),
            )
        if preset == "progressive":
            every = st.number_input(
                "one more group every … epochs",
                1,
                20,
                value=plan.every,
                key=state.widget_key("every"),
            )

if (plan.preset == "last-k" and k != plan.k) or (
    plan.preset == "progressive" and every != plan.every
):
    state.update(freeze={**plan.to_dict(), "k": int(k), "every": int(every)})
    state.refresh_widgets("groups")
    st.rerun()

# --- the picture --------------------------------------------------------------------------
total = sum(r["params"] for r in rows)
trainable = sum(r["params"] for r in rows if r["trainable"])
left, right = st.columns([1, 2])
left.metric(
    "Trainable parameters",
    f"{trainable:,}",
    help="Numbers the training adjusts. The rest keep their ImageNet values.",
)
left.metric("of all parameters", f"{total:,}", f"{trainable / max(total, 1):.2%} train")
left.markdown(f"**Plan:** {preset_label(plan.to_dict())}")
if plan.preset == "progressive":
    schedule = [
        f"epoch {epoch + 1}: {sum(plan.trainable_groups(len(rows), epoch))} groups"
        for epoch in range(0, min(len(rows), 6) * plan.every, plan.every)
    ]
    left.caption("Schedule — " + "; ".join(schedule))
right.plotly_chart(charts.layer_groups(rows), key="layer_chart")

# --- group by group -----------------------------------------------------------------------
st.subheader("Group by group")
st.caption(
    "Switch single groups on or off, and give each its own learning-rate multiplier "
    "(×1 = the learning rate you set on the Train page; lower near the input is common)."
)
decay = st.slider(
    "Discriminative learning rates: each group lower down gets × this",
    0.1,
    1.0,
    value=float(plan.lr_decay),
    step=0.05,
    key=state.widget_key("lr_decay"),
    help="1.0 = same rate everywhere. 0.5 halves the rate at each step towards the input.",
)
if decay != plan.lr_decay and plan.lr_mult is None:
    state.update(freeze={**plan.to_dict(), "lr_decay": float(decay)})
    state.refresh_widgets("groups")
    st.rerun()

groups_key = f"{state.widget_key('groups')}_{state.get('model')}"
header = st.columns([3, 2, 2, 2])
for column, text in zip(header, ["group", "parameters", "trains", "LR ×"], strict=True):
    column.markdown(f"**{text}**")
flags, mults = [], []
for i, row in enumerate(rows):
    name, params, train, mult = st.columns([3, 2, 2, 2])
    name.markdown(f"`{row['group']}` · {row['layers']} layer{'s' if row['layers'] != 1 else ''}")
    params.markdown(f"{row['params']:,}")
    flags.append(
        train.toggle(
            "trains",
            value=bool(row["trainable"]),
            key=f"{groups_key}_train_{i}",
            label_visibility="collapsed",
        )
    )
    mults.append(
        mult.number_input(
            "LR multiplier",
            0.0,
            10.0,
            step=0.1,
            format="%.3f",
            value=float(row["lr_mult"]),
            key=f"{groups_key}_lr_{i}",
            label_visibility="collapsed",
        )
    )

if flags != [r["trainable"] for r in rows] or mults != [r["lr_mult"] for r in rows]:
    custom = {**plan.to_dict(), "lr_mult": [float(m) for m in mults]}
    if flags != [r["trainable"] for r in rows]:
        custom.update(preset="custom", trainable=flags)
    state.update(freeze=custom)
    st.rerun()

st.caption(
    "The Train page offers settings that suit this plan (epochs, learning rates, "
    "augmentation) and estimates how long the run takes on this machine before you start."
)
st.page_link("pages/train.py", label="Next: train →", icon=":material/model_training:")
