"""`evaluate` metric modules of the paper's downstream metrics, one file each.

Load them with ``hf_synpre.metrics.load_metric(name)`` or ``evaluate.load(<path to the file>)``; the
arithmetic lives in ``t5_metrics.py`` (plain functions, re-exported by ``hf_synpre.metrics``).
"""
