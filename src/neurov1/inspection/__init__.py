"""Analyses of a trained model's learned components (paper Sec. 4.3, Figures F.1 and F.2).

- :mod:`.parameters`: learned center-surround (DoG) widths and scales, tuned-normalization widths and weights.
- :mod:`.polar`: an image and its cortical-magnification transform, at input level and on the model's stem.
- :mod:`.stimuli`: maximally activating stimuli of the artificial V1 layer's channels by gradient ascent.
- :mod:`.diversity`: mean pairwise LPIPS between those stimuli and the one-way ANOVA between models.

``python -m neurov1.analyze`` runs them on a checkpoint and writes the figures and one JSON of numbers.
"""

SUMMARY_FILE = "analysis.json"
