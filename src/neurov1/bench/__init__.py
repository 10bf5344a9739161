"""Benchmarks of the model, the data path and a GPU node: ``python -m neurov1.bench`` (see ``__main__``)."""
