"""tlcore: the library behind the no-code transfer-learning app.

Data, models, freezing, training runs, metrics and export, usable from Python
or the ``tlcore`` command line. It never imports streamlit.
"""

__version__ = "0.1.0"
