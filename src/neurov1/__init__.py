"""neurov1: neuro-constrained CNNs scored against macaque V1 (Pogoncheff, Granley & Beyeler, NeurIPS 2023)."""

__version__ = "0.1.0"
