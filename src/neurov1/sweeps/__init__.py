"""Ablation sweeps: greedy backward elimination of components."""
