"""V1 alignment with Brain-Score (paper Sec. 3.2): the wrapper, the benchmarks, offline data, scoring, reports.

Entry point: ``python -m neurov1.evaluate ckpt_path=... eval=v1``; in training: ``callbacks=v1``.
"""
