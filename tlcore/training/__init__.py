"""Training: one run's settings and the loop that trains a model on a manifest.

Owns ``config.TrainConfig``, the ``trainer.Trainer`` loop and its callbacks, the
feature-extraction fast path (``features``), the learning-rate finder (``lr_find``),
devices and precision (``devices``), several processes (``distributed``), checkpoint
files (``checkpoints``), the per-epoch counting (``metrics``) and the DANN trainer
(``domain_adaptation``). It knows nothing of run directories: ``tlcore.runs`` does.
"""
