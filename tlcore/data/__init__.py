"""Data: from a user's folder or zip to photos a model can read.

Owns the safe unzip (``archive``), the scan of a dataset's layout (``scan``), reading one
image (``images``), the report of problems in words (``report``), the train/val split
saved as a manifest (``manifest``), where datasets come from (``sources``, ``gallery``),
the Dataset, transforms and caches (``dataset``, ``decoded_cache``, ``loading``).

Main entry points: ``prepare.prepare_data`` (folder or zip -> report + manifest) and
``dataset.ManifestDataset``. The lowest wing: it imports no other wing.
"""
