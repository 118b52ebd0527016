"""Lab: the teaching experiments built from the wings below.

Owns the five-way comparison (``compare``), the prototype few-shot classifier and its
curve (``fewshot``), the transfer-learning ladder of each task (``ladder``), domain
adaptation pairs (``adaptation_runs``), the shifted demo target domain (``domain_shift``) and
one shared model against a model per label column (``columns_compare``).
"""
