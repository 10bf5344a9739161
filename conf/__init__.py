"""neurov1's Hydra configs (installed as the package ``neurov1.conf``: ``pkg://neurov1.conf``)."""
