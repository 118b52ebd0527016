"""Helpers for the browser test: a live Streamlit server and Chromium via Playwright."""
