"""Runs: a training run is a directory, written by a worker process and read by anyone.

Owns the run folder (``run.Run``: create, start, stop, resume, status), its file
formats (``files``: atomic JSON, event lines), the queue of runs waiting for a device
(``queue``), the worker process (``worker``), clean-up (``prune``), a shared server's
caps (``limits``), and a run's model and score (``scoring.load_predictor``,
``scoring.evaluate_run``).
"""
