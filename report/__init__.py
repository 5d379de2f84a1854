"""The run report: one self-contained HTML page that shows what a trained run does.

It reads only the artifacts of a work directory (postings, candidates.json, features,
out-of-fold scores, metrics.json, the model and, when present, the ablation outputs), re-applies
the saved post-processing to the out-of-fold scores and lays out the run summary, the plots and
galleries of predicted groups with the worst mistakes first.

Public API: :func:`build_report`, :class:`ReportResult`, :data:`SIZE_BUCKETS`.
"""
from .build import ReportResult, build_report
from .run import SIZE_BUCKETS

__all__ = ["ReportResult", "SIZE_BUCKETS", "build_report"]
