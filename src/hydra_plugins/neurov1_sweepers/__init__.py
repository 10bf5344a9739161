"""neurov1's Hydra sweepers; Hydra finds them in the ``hydra_plugins`` namespace package."""
