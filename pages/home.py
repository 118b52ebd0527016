"""First screen: tell a newcomer what to do in one sentence and offer the sample."""

import streamlit as st

from appkit import challenge_view, data_choice, navigation, state
from appkit.text import md
from tlcore.errors import TLCoreError

navigation.through_app()

st.title("Transfer learning studio")
st.markdown(
    "#### Put your photos in one folder per label, upload them, and in a few minutes you "
    "will have a model that tells them apart."
)

if st.button(
    "Try the sample (ants vs bees)", type="primary", key="try_sample", icon=":material/play_arrow:"
):
    try:
        with st.spinner("Reading the sample photos…"):
            data_choice.choose_sample()
        state.update(model=state.DEFAULT_MODEL, weights="bundled", freeze={"preset": "features"})
        st.switch_page("pages/data.py")
    except TLCoreError as exc:
        st.error(md(exc))

st.caption("No files needed: 120 photos of ants and bees come with the app.")
challenge_view.home_notice()  # a class challenge, when the teacher has opened one

st.divider()
st.markdown("### How it works")
steps = st.columns(4)
steps[0].markdown("**1 · Data**  \nA zip with one folder per label, or images per label.")
steps[1].markdown("**2 · Model**  \nA network already trained on 1.3 million photos.")
steps[2].markdown("**3 · Layers**  \nKeep what it knows; retrain only the last part.")
steps[3].markdown("**4 · Train**  \nWatch it learn, live; then compare runs.")

with st.expander("Why does this work with only a few photos? (for teachers)"):
    st.markdown(
        "A network trained on ImageNet has already learned to see edges, textures, "
        "shapes and object parts. Those features are useful for almost any photo, so "
        "instead of learning to see from scratch we **reuse** them and train only a "
        "small new final layer (the *head*) for your labels. That is *transfer "
        "learning*: it needs tens of images per label instead of thousands, and each photo "
        "goes through the big network only once (the Train page says how long that takes "
        "on your machine). On the Layers page you can unfreeze more of the "
        "network, or on the Model page start from random weights, and compare the "
        "runs side by side."
    )
    st.markdown(
        "**Learn mode**: every wizard step has a closed *Learn: ...* panel with the idea "
        "behind it. For a class demo, the **Compare experiment** trains your photos five "
        "ways (from scratch to fully fine-tuned) with one click, **What the network sees** "
        "shows the pretrained filters and feature maps, and the **Glossary** ties the "
        "textbook terms to what the app does."
    )
    st.page_link("pages/compare.py", label="Compare experiment", icon=":material/science:")
