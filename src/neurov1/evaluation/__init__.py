"""Evaluations of a trained network: Brain-Score V1 (v1, brainscore/), Tiny-ImageNet-C (corruption), PGD (adversarial).

Each kind is an :class:`neurov1.evaluation.kind.Evaluation` (``eval=<kind>``: a ``_target_`` node).
"""
