"""The export formats and their file names, apart from the exporter (which needs torch), so
the command line can list them in its help without importing torch."""

from __future__ import annotations

FORMATS = ("bundle", "onnx", "torchscript", "script")
FILE_NAMES = {
    "bundle": "bundle.zip",
    "onnx": "model.onnx",
    "torchscript": "model.torchscript.pt",
    "script": "reproduce.zip",
}
