"""Results: what a trained model says about photos, and how good it is.

Owns the ``predict.Predictor`` (a model, its classes and its evaluation preprocessing),
the bundle file format it loads (``bundle_format``), scores from predicted
probabilities (``evaluation``) and explanations (``explain``: Grad-CAM, embedding maps).
Works on models, classes and photos; run directories belong to ``tlcore.runs``.
"""
