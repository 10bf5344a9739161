"""Small shared helpers: atomic file writes, Hydra instantiation of callbacks and loggers, run naming."""
