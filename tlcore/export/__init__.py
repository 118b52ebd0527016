"""Export: a trained run packed to travel.

Owns the bundle with its metrics and model card (``bundle``, ``model_card``), ONNX and
TorchScript files checked against PyTorch (``graph_export``), the standalone ``train.py``
(``reproduce`` and its ``reproduce_template``), and the run exporter that writes any of
them atomically (``exporter.export_run``, ``exporter.export_into_run``). What an export
of each task carries (formats, check inputs, model card, extra files) is one table, ``tasks``.
"""
