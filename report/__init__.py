"""The run report and the browse page: self-contained HTML pages that show what a trained run
does.

The report reads only the artifacts of a work directory (postings, candidates.json, features,
out-of-fold scores, metrics.json, the model and, when present, the ablation outputs), re-applies
the saved post-processing to the out-of-fold scores and lays out the run summary, the plots and
galleries of predicted groups with the worst mistakes first. The browse page carries every
posting's predicted and true group (out of fold, or of any submission) with a search by id and
title words.

Public API: :func:`build_report`, :class:`ReportResult`, :data:`SIZE_BUCKETS`,
:func:`build_browse_page`, :class:`BrowseResult`.
"""
from .browse import BrowseResult, build_browse_page
from .build import ReportResult, build_report
from .run import SIZE_BUCKETS

__all__ = ["BrowseResult", "ReportResult", "SIZE_BUCKETS", "build_browse_page", "build_report"]
