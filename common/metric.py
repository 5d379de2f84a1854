"""The competition metric: mean over postings of per-posting F1 (and precision, recall).

For posting i with predicted set P and true set T (both including i itself):
F1 = 2|P ∩ T| / (|P| + |T|), precision = |P ∩ T| / |P|, recall = |P ∩ T| / |T|.
Beside it, the entity-resolution figures (:func:`entity_resolution_scores`): pairwise precision,
recall and F1 over unordered pairs of distinct postings, and B-cubed (the means of the same
per-posting precision and recall, and their harmonic mean).
Predictions are given as (query, match) index pairs so that millions of them are scored with
bincounts, never a Python loop.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from .errors import InputError
from .pairs import pair_keys, split_keys, unique_keys


@dataclass(frozen=True)
class MatchScore:
    f1: float
    precision: float
    recall: float

    def as_dict(self, digits: int = 6) -> dict[str, float]:
        return {k: round(v, digits) for k, v in asdict(self).items()}


def per_posting_scores(query: np.ndarray, match: np.ndarray, labels: np.ndarray,
                       include_self: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-posting (f1, precision, recall) arrays for predicted pairs ``query → match``.

    ``labels`` holds one integer label code per posting. With ``include_self`` every posting's
    own id is added to its prediction (the submission rule). Duplicate pairs count once.
    """
    n = len(labels)
    query = np.asarray(query, dtype=np.int64)
    match = np.asarray(match, dtype=np.int64)
    if include_self:
        every = np.arange(n, dtype=np.int64)
        query, match = np.concatenate([query, every]), np.concatenate([match, every])
    query, match = split_keys(unique_keys(pair_keys(query, match, n)), n)
    true_size = np.bincount(labels, minlength=labels.max() + 1)[labels].astype(np.float64)
    hits = np.bincount(query, weights=labels[query] == labels[match], minlength=n)
    predicted = np.bincount(query, minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
    recall = hits / true_size
    f1 = 2 * hits / (predicted + true_size)
    return f1, precision, recall


def score_pairs(query: np.ndarray, match: np.ndarray, labels: np.ndarray,
                include_self: bool = True) -> MatchScore:
    f1, precision, recall = per_posting_scores(query, match, labels, include_self)
    return MatchScore(float(f1.mean()), float(precision.mean()), float(recall.mean()))


def entity_resolution_scores(query: np.ndarray, match: np.ndarray, labels: np.ndarray,
                             include_self: bool = True, digits: int = 6) -> dict[str, dict]:
    """Pairwise and B-cubed precision / recall / F1 of predicted pairs ``query → match``.

    Pairwise: a predicted pair is an unordered pair of distinct postings that either end lists;
    the truth is every unordered same-label pair. Precision is 0 when nothing is predicted and
    recall 1 when no pair is true (a catalog of singletons). B-cubed averages the per-posting
    precision and recall of :func:`per_posting_scores` (self included, as ``include_self``
    says) and takes their harmonic mean.
    """
    n = len(labels)
    query = np.asarray(query, dtype=np.int64)
    match = np.asarray(match, dtype=np.int64)
    distinct = query != match
    low = np.minimum(query[distinct], match[distinct])
    high = np.maximum(query[distinct], match[distinct])
    low, high = split_keys(unique_keys(pair_keys(low, high, n)), n)
    true_positive = int((labels[low] == labels[high]).sum())
    sizes = np.bincount(labels).astype(np.int64)
    true_pairs = int((sizes * (sizes - 1) // 2).sum())
    pairwise = precision_recall_f1(true_positive / len(low) if len(low) else 0.0,
                    true_positive / true_pairs if true_pairs else 1.0)
    _, precision, recall = per_posting_scores(query, match, labels, include_self)
    bcubed = precision_recall_f1(float(precision.mean()), float(recall.mean()))
    return {name: {k: round(v, digits) for k, v in figures.items()}
            for name, figures in (("pairwise", pairwise), ("bcubed", bcubed))}


def precision_recall_f1(precision: float, recall: float) -> dict[str, float]:
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def score_sets(predicted: dict[str, set[str]] | dict[str, list[str]],
               truth: dict[str, str]) -> MatchScore:
    """Reference implementation on Python sets, for tests and tiny inputs.

    ``truth`` maps posting id to label; ``predicted`` maps posting id to its predicted ids.
    Postings absent from ``predicted`` are scored as predicting nothing.
    """
    groups: dict[str, set[str]] = {}
    for pid, label in truth.items():
        groups.setdefault(label, set()).add(pid)
    f1s, precisions, recalls = [], [], []
    for pid, label in truth.items():
        t, p = groups[label], set(predicted.get(pid, ()))
        hit = len(t & p)
        f1s.append(2 * hit / (len(t) + len(p)))
        precisions.append(hit / len(p) if p else 0.0)
        recalls.append(hit / len(t))
    return MatchScore(float(np.mean(f1s)), float(np.mean(precisions)), float(np.mean(recalls)))


def score_submission(postings: pl.DataFrame, submission: pl.DataFrame,
                     submission_name: str = "<submission>") -> MatchScore:
    """Score a Kaggle-format submission (``posting_id``, ``matches``) against labelled postings.

    Every labelled posting must have a row; ids in ``matches`` that are not postings are errors.
    Self is not added: the submission is scored as written.
    """
    if "label_group" not in postings.columns:
        raise InputError("the postings have no label_group column, so nothing can be scored")
    query, match = submission_pairs(postings["posting_id"], submission, submission_name)
    from .postings import label_codes

    return score_pairs(query, match, label_codes(postings), include_self=False)


def submission_pairs(ids: pl.Series, submission: pl.DataFrame,
                     submission_name: str = "<submission>", postings_name: str = "the postings"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The (query, match) row pairs a submission lists over the postings ``ids``, in the order
    it lists them (each row's matches as written, so best first in `submit`'s output).

    A submission over other postings is refused: every posting needs exactly one row and every
    listed id must be one of ``ids`` (``postings_name`` says where they come from).
    """
    for column in ("posting_id", "matches"):
        if column not in submission.columns:
            raise InputError("required column is missing", file=submission_name, column=column)
    index = pl.DataFrame({"posting_id": ids, "row": np.arange(len(ids), dtype=np.int64)})
    sub = submission.select(pl.col("posting_id").cast(pl.String), pl.col("matches").cast(pl.String))
    sub = sub.with_row_index("sub_row", offset=1)
    dup = sub["posting_id"].is_duplicated()
    if dup.any():
        row = int(dup.arg_true()[0]) + 1
        raise InputError(f"posting_id {sub['posting_id'][row - 1]!r} appears more than once",
                         file=submission_name, row=row, column="posting_id")
    sub = sub.join(index, on="posting_id", how="left", maintain_order="left")
    unknown = sub.filter(pl.col("row").is_null())
    if unknown.height:
        raise InputError(f"posting_id {unknown['posting_id'][0]!r} is not in {postings_name}",
                         file=submission_name, row=int(unknown["sub_row"][0]), column="posting_id")
    if sub.height != len(ids):
        missing = index.join(sub, on="posting_id", how="anti")["posting_id"][0]
        raise InputError(f"no row for posting_id {missing!r} of {postings_name}",
                         file=submission_name)
    pairs = (sub.select("sub_row", pl.col("row").alias("query"),
                        pl.col("matches").fill_null("").str.split(" ").alias("match_id"))
             .explode("match_id").filter(pl.col("match_id") != "")
             .join(index.rename({"posting_id": "match_id", "row": "match"}), on="match_id",
                   how="left", maintain_order="left"))
    stray = pairs.filter(pl.col("match").is_null())
    if stray.height:
        raise InputError(f"matches lists {stray['match_id'][0]!r}, which is not in "
                         f"{postings_name}", file=submission_name, row=int(stray["sub_row"][0]),
                         column="matches")
    return pairs["query"].to_numpy(), pairs["match"].to_numpy()


def evaluate_submission(postings_path: str, submission_path: str) -> dict:
    """Score a submission CSV against a labelled postings file (``python cli.py evaluate``):
    the competition's ``f1``, ``precision``, ``recall`` and the ``pairwise`` and ``bcubed``
    figures of :func:`entity_resolution_scores`."""
    from .postings import has_labels, label_codes, load_postings

    postings = load_postings(postings_path)
    if not has_labels(postings):
        raise InputError("no label_group column: nothing to evaluate against",
                         file=postings_path, column="label_group")
    query, match = submission_pairs(postings["posting_id"], read_submission(submission_path),
                                    submission_path)
    labels = label_codes(postings)
    return {**score_pairs(query, match, labels, include_self=False).as_dict(),
            **entity_resolution_scores(query, match, labels, include_self=False)}


def read_submission(path: str | Path) -> pl.DataFrame:
    """A submission CSV read as text columns; a missing or unreadable file is an InputError."""
    if not Path(path).is_file():
        raise InputError("file not found", file=str(path))
    try:
        return pl.read_csv(path, infer_schema=False)
    except Exception as exc:
        raise InputError(f"not a readable CSV file ({str(exc).splitlines()[0]})",
                         file=str(path)) from None
