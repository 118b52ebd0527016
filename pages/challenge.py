"""The class challenge: students submit finished runs to a hidden test part; the teacher runs it.

The teacher (``?admin=<TLCORE_ADMIN_TOKEN>``) creates and closes challenges and sees the board
as a chart, the validation-vs-test gap and a CSV; a student picks a display name, trains on
the challenge's data, submits a finished run and sees their entries and the board.
"""

import streamlit as st

from appkit import challenge_view, navigation, state
from appkit.text import md
from tlcore.runs.challenge import list_challenges

navigation.through_app()

st.title("Class challenge")

if state.is_admin():
    st.caption("Teacher view: every challenge, its board with run ids, and the CSV.")
    challenge_view.teacher_part()
    st.stop()

challenges = list_challenges()
if not challenges:
    st.info("No challenge yet: your teacher creates one (with the admin link).")
    st.stop()
titles = {f"{c.title} ({'open' if c.is_open() else 'closed'})": c for c in challenges}
picked = (
    st.selectbox("Challenge", list(titles), key="ch_pick")
    if len(titles) > 1
    else next(iter(titles))
)
challenge = titles[picked]
st.markdown(f"## {md(challenge.title)}")
challenge_view.student_part(challenge)
