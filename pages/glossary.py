"""Glossary: the words people meet in articles about transfer learning, tied to this app."""

import streamlit as st

from appkit import learn, navigation

navigation.through_app()

st.title("Glossary")
st.markdown(
    "Terms you will meet in articles and courses, what they mean, and whether this app does "
    "them (and where)."
)

for term, meaning, here in learn.GLOSSARY:
    st.markdown(f"**{term}**: {meaning}  \n*In this app:* {here}")

st.divider()
st.markdown("#### The ideas behind each step")
for step in ("data", "model", "layers", "train"):
    learn.learn(step)
st.page_link(
    "pages/compare.py", label="See it measured: Compare experiment", icon=":material/science:"
)
st.page_link(
    "pages/fewshot.py",
    label="See the ladder, zero-shot to trained: Few-shot page",
    icon=":material/stairs:",
)
st.page_link(
    "pages/network.py",
    label="See the features: What the network sees",
    icon=":material/visibility:",
)
