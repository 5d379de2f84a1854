"""TF-IDF title embedders, fitted on the catalog being matched (no labels needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
import sklearn
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

from common.codes import fold_codes
from common.text import clean_titles

from .base import Embedder, Embedding, l2_normalise_rows


class TfidfEmbedder(Embedder):
    """TF-IDF over title word or character n-grams.

    With ``svd_components`` the sparse matrix is projected by a seeded truncated SVD (LSA) to a
    dense L2-normalised matrix; without it the vectors stay sparse. Character n-grams need the
    projection: their sparse self-product is dense. Accents are folded (``strip_accents``,
    scikit-learn's option) after the shared clean-up (:func:`common.text.clean_titles`). The
    SVD is fitted on at most ``svd_fit_rows`` rows (a seeded sample; None: all) and projects
    every row: its randomized passes over a million rows' character n-grams cost minutes, the
    projection one product. With ``fold_codes`` the model codes in titles are written whole
    (:func:`common.codes.folded`: `CNSL-3033` and `cnsl 3033` are `cnsl3033`), so that their
    n-grams are the same however a seller separates them.
    """

    name = "tfidf"
    kind = "sparse"

    def __init__(self, analyzer: str = "word", ngram_range: tuple[int, int] = (1, 1),
                 min_df: int = 1, max_df: float = 1.0, binary: bool = False,
                 sublinear_tf: bool = True, stop_words: str | None = None,
                 max_features: int | None = None, svd_components: int | None = None,
                 svd_fit_rows: int | None = 100_000, strip_accents: str | None = "unicode",
                 fold_codes: bool = False, seed: int = 0):
        self.analyzer = analyzer
        self.ngram_range = tuple(ngram_range)
        self.min_df = min_df
        self.max_df = max_df
        self.binary = binary
        self.sublinear_tf = sublinear_tf
        self.stop_words = stop_words
        self.max_features = max_features
        self.svd_components = svd_components
        self.svd_fit_rows = svd_fit_rows
        self.strip_accents = strip_accents
        self.fold_codes = fold_codes
        self.seed = seed
        if svd_components:
            self.kind = "dense"

    def titles(self, titles: pl.Series) -> list[str]:
        """The texts the vectorizer reads: cleaned titles (codes folded with ``fold_codes``)."""
        cleaned = clean_titles(titles)
        return fold_codes(cleaned) if self.fold_codes else cleaned

    def model_fingerprint(self) -> str:
        # "lsa-1": LSA vectors made on one BLAS thread; caches of the earlier ones (the thread
        # count's) are made again.
        lsa = "-lsa-1" if self.svd_components else ""
        return f"scikit-learn-{sklearn.__version__}{lsa}"

    def vectorizer(self, counts: tuple | None = None) -> TfidfVectorizer:
        """scikit-learn's vectorizer with these settings; with ``counts`` (:func:`merge_counts`)
        one whose counting pass over the titles is done already."""
        vectorizer = (TfidfVectorizer if counts is None else _CountedVectorizer)(
            analyzer=self.analyzer, ngram_range=self.ngram_range, min_df=self.min_df,
            max_df=self.max_df, binary=self.binary, sublinear_tf=self.sublinear_tf,
            stop_words=self.stop_words, max_features=self.max_features, dtype=np.float32,
            # "Éclair" and "eclair" are one term to a sparse model ("unicode": NFKD, marks
            # dropped; None keeps accents).
            strip_accents=self.strip_accents,
            # Single-character tokens ("3", "x", "l") carry sizes and variants in titles.
            **({"token_pattern": r"(?u)\b\w+\b"} if self.analyzer == "word" else {}))
        vectorizer.counts = counts
        return vectorizer

    def embed(self, postings: pl.DataFrame, images_dir: Path | None = None,
              counts: tuple | None = None) -> Embedding:
        """The vectors of ``postings``; ``counts`` are their titles' term counts made
        elsewhere (:func:`count_terms` over chunks, as Dask tasks, then :func:`merge_counts`),
        which give the same vectors."""
        titles = self.titles(postings["title"])
        missing = np.array([t == "" for t in titles], dtype=bool)
        vectorizer = self.vectorizer(counts)
        try:
            matrix = vectorizer.fit_transform(titles)
        except ValueError:  # empty vocabulary: every title blank or only stop words
            empty = np.zeros((len(titles), 1), dtype=np.float32)
            vectors = empty if self.kind == "dense" else sp.csr_matrix(empty)
            return Embedding(self.name, self.kind, vectors, np.ones(len(titles), dtype=bool))
        missing |= np.diff(matrix.indptr) == 0
        if self.svd_components:
            components = min(self.svd_components, matrix.shape[1] - 1, matrix.shape[0] - 1)
            if components >= 1:
                svd = TruncatedSVD(components, algorithm="randomized", n_iter=5,
                                   random_state=self.seed)
                # Identical titles have zero variance: scikit-learn then warns while computing
                # explained_variance_ratio_, which is not used here.
                with np.errstate(divide="ignore", invalid="ignore"):
                    dense = self._project(svd, matrix)
            else:
                dense = matrix.toarray()
            return Embedding(self.name, "dense", l2_normalise_rows(dense), missing)
        return Embedding(self.name, "sparse", l2_normalise_rows(matrix), missing)

    def _project(self, svd: TruncatedSVD, matrix: sp.csr_matrix) -> np.ndarray:
        rows = matrix.shape[0]
        # The randomized SVD's dense steps (QR, the small SVD) run in BLAS / LAPACK, whose
        # sums follow the thread count: on one thread (a Dask worker sets OMP_NUM_THREADS=1)
        # the vectors moved by up to 5e-5 and the scores of a generated catalog by 0.003.
        # One BLAS thread here gives the same vectors however many cores the process has.
        with threadpool_limits(limits=1, user_api="blas"):
            if self.svd_fit_rows is None or rows <= self.svd_fit_rows:
                return svd.fit_transform(matrix)
            sample = np.random.default_rng(self.seed).choice(rows, self.svd_fit_rows,
                                                             replace=False)
            svd.fit(matrix[np.sort(sample)])
            return svd.transform(matrix)


class _CountedVectorizer(TfidfVectorizer):
    """A TfidfVectorizer whose counting pass was made elsewhere (``counts``: the vocabulary and
    counts matrix of :func:`merge_counts`): ``fit_transform`` then runs scikit-learn's own
    pruning, column sorting and weighting on them."""

    def _count_vocab(self, raw_documents, fixed_vocab):
        vocabulary, counts = self.counts
        if not vocabulary:
            raise ValueError("empty vocabulary")
        return dict(vocabulary), counts.copy()


def count_terms(embedder: TfidfEmbedder, titles: pl.Series) -> tuple[dict, object]:
    """One chunk of titles' term counts by scikit-learn's own counting pass: the vocabulary in
    first-occurrence order (term → column) and the counts matrix; a chunk without any term
    gives an empty vocabulary and its row count."""
    try:
        return embedder.vectorizer()._count_vocab(embedder.titles(titles), False)
    except ValueError:  # no term at all
        return {}, len(titles)


def merge_counts(parts: list[tuple[dict, object]]) -> tuple[dict, object]:
    """The vocabulary and counts one pass over every title gives, from consecutive chunks'
    (:func:`count_terms`): a term's column is the rank of its first occurrence in the whole
    catalog, and each row's entries are in column order."""
    vocabulary: dict[str, int] = {}
    mappings = []
    for terms, _ in parts:
        mapping = np.empty(len(terms), dtype=np.int64)
        for term, column in terms.items():
            mapping[column] = vocabulary.setdefault(term, len(vocabulary))
        mappings.append(mapping)
    made = [counts for _, counts in parts if not isinstance(counts, int)]
    if not made:
        return {}, None
    rows, indices, data, lengths = 0, [], [], [np.zeros(1, dtype=np.int64)]
    for (_, counts), mapping in zip(parts, mappings):
        if isinstance(counts, int):
            rows += counts
            lengths.append(np.zeros(counts, dtype=np.int64))
            continue
        rows += counts.shape[0]
        indices.append(mapping[counts.indices])
        data.append(counts.data)
        lengths.append(np.diff(counts.indptr).astype(np.int64))
    indptr = np.cumsum(np.concatenate(lengths))
    wide = indptr[-1] > np.iinfo(np.int32).max
    index_type = np.int64 if wide else np.int32
    merged = type(made[0])((np.concatenate(data), np.concatenate(indices).astype(index_type),
                            indptr.astype(index_type)), shape=(rows, len(vocabulary)),
                           dtype=made[0].dtype)
    merged.sort_indices()
    return vocabulary, merged
