"""Lab: the teaching experiments built from the wings below.

Owns the five-way comparison (``compare``), the prototype few-shot classifier and its
curve (``fewshot``), the transfer-learning ladder of each task (``ladder``), domain
adaptation pairs (``adaptation_runs``) and the shifted demo target domain (``domain_shift``).
"""
