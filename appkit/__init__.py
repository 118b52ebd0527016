"""App-side helpers for the Streamlit pages: state, sidebar, charts, run views.

This package may import streamlit and plotly; it never imports torch. Anything a
notebook or the CLI could also use belongs in ``tlcore`` instead.
"""
