"""Evaluations of a trained network: Brain-Score V1 (v1, brainscore/), Tiny-ImageNet-C (corruption), PGD (adversarial).

Each is an :class:`neurov1.evaluation.base.Evaluation` (``eval=<name>``: a ``_target_`` node).
"""
