"""Entry point of the web app: ``streamlit run app.py``."""

import streamlit as st

st.set_page_config(page_title="Transfer learning studio", page_icon="🧠", layout="wide")
st.title("Transfer learning studio")
st.write("Teach a computer to tell your pictures apart, starting from a model that already knows a lot.")
