"""The pair ranker: a gradient-boosted binary classifier over pair features, saved without pickle
(LightGBM text model or XGBoost JSON model) beside a JSON schema of its features."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from common.atomic import atomic_path, write_json
from common.errors import InputError

from .backends import BACKENDS

SCHEMA_FILE = "schema.json"
SCHEMA_VERSION = 1


class PairRanker:
    """Scikit-learn-style estimator: parameters in ``__init__``, learned state in ``fit``.

    With ``valid_mask`` given to :meth:`fit`, those rows are held out for early stopping (at most
    ``rounds`` trees, stopping after ``early_stopping`` rounds without improvement). With a Dask
    ``client``, :meth:`fit` trains on its cluster (:mod:`ranker.dask_backend`); the fitted
    model is the same kind of booster.

    ``view_dropout`` hides ``view_columns`` (those of one view of the postings, e.g. the photo
    features: :func:`features.view_columns`) in that share of the training rows, drawn with
    ``seed``. A tree that never saw a missing value sends one down the branch of 0, which for a
    Hamming distance means "identical photos": a posting without a photo, or a title-only
    catalog, would look like a copy of every candidate. Trained with some rows hidden, the trees
    learn where a missing view goes and what the remaining features say without it.
    """

    def __init__(self, backend: str = "lightgbm", params: dict | None = None, rounds: int = 1000,
                 early_stopping: int = 50, num_threads: int = 0, seed: int = 42, client=None,
                 view_dropout: float = 0.0, view_columns: tuple[str, ...] = ()):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; known: {sorted(BACKENDS)}")
        self.backend = backend
        self.params = dict(params or {})
        self.rounds = rounds
        self.early_stopping = early_stopping
        self.num_threads = num_threads
        self.seed = seed
        self.client = client
        self.view_dropout = view_dropout
        self.view_columns = tuple(view_columns)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "client": None}  # a connection to a cluster, not model state

    def fit(self, X: np.ndarray, y: np.ndarray, feature_names: list[str],
            valid_mask: np.ndarray | None = None, weight: np.ndarray | None = None) -> PairRanker:
        if X.shape[1] != len(feature_names):
            raise ValueError(f"{X.shape[1]} columns but {len(feature_names)} feature names")
        self.model_ = BACKENDS[self.backend](self.params, self.num_threads, self.seed)
        self.feature_names_ = list(feature_names)
        fit = self.model_.fit
        if self.client is not None:
            from .dask_backend import fit_on_cluster

            fit = functools.partial(fit_on_cluster, self.model_, self.client)
        if valid_mask is not None and valid_mask.any():
            train = ~valid_mask
            # The early-stopping rows hide the view as often, so that the number of trees is
            # chosen for the mixture the model is trained for.
            self.best_iteration_ = fit(
                self._hide_view(X[train]), y[train], None if weight is None else weight[train],
                self._hide_view(X[valid_mask], seed=self.seed + 1), y[valid_mask], self.rounds,
                self.early_stopping, self.feature_names_)
        else:
            self.best_iteration_ = fit(self._hide_view(X, copy=True), y, weight, None, None,
                                       self.rounds, 0, self.feature_names_)
        return self

    def _hide_view(self, X: np.ndarray, copy: bool = False, seed: int | None = None
                   ) -> np.ndarray:
        """``X`` with :attr:`view_columns` set missing in a ``view_dropout`` share of rows,
        drawn with ``seed`` (default: the ranker's); in place unless ``copy`` (the caller's
        array is never changed)."""
        if not 0 <= self.view_dropout < 1:
            raise ValueError("view_dropout must be in [0, 1)")
        columns = [self.feature_names_.index(c) for c in self.view_columns
                   if c in self.feature_names_]
        if not self.view_dropout or not columns:
            return X
        if copy:
            X = X.copy()
        draw = np.random.default_rng(self.seed if seed is None else seed).random(len(X))
        rows = np.flatnonzero(draw < self.view_dropout)
        X[np.ix_(rows, columns)] = np.nan
        return X

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict(X), dtype=np.float32)

    def gain_importance(self) -> dict[str, float]:
        return dict(zip(self.feature_names_, map(float, self.model_.gain_importance())))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature contributions to the raw score (last column: the bias)."""
        return self.model_.contributions(X)

    def save(self, folder: str | Path, feature_groups: dict[str, str], extra: dict) -> None:
        """Write the model file and ``schema.json`` (features in order with their groups)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / self.model_.model_file) as tmp:
            self.model_.save(tmp)
        write_json(folder / SCHEMA_FILE, {
            "schema_version": SCHEMA_VERSION, "backend": self.backend,
            "model_file": self.model_.model_file, "best_iteration": self.best_iteration_,
            "features": [{"name": f, "group": feature_groups[f]} for f in self.feature_names_],
            **extra})

    @classmethod
    def load(cls, folder: str | Path) -> tuple[PairRanker, dict]:
        """Load a saved ranker and its schema; a schema or model file that does not agree with
        itself (version, backend, feature list) is refused with :class:`InputError`."""
        folder = Path(folder)
        schema_path = folder / SCHEMA_FILE
        if not schema_path.exists():
            raise InputError("no schema.json: not a model folder written by train-ranker",
                             file=str(folder))
        try:
            schema = json.loads(schema_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"not valid JSON ({exc})", file=str(schema_path)) from None
        if schema.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"schema_version {schema.get('schema_version')!r} is not "
                             f"{SCHEMA_VERSION}; retrain with this version", file=str(schema_path))
        backend = schema.get("backend")
        if backend not in BACKENDS or schema.get("model_file") != BACKENDS[backend].model_file:
            raise InputError(f"unknown backend or model file ({backend!r})", file=str(schema_path))
        features = schema.get("features")
        if not (isinstance(features, list) and features and all(
                isinstance(f, dict) and isinstance(f.get("name"), str)
                and isinstance(f.get("group"), str) for f in features)):
            raise InputError("'features' is not a list of {name, group}", file=str(schema_path))
        names = [f["name"] for f in features]
        if len(set(names)) != len(names):
            raise InputError("'features' names a feature more than once", file=str(schema_path))
        ranker = cls(backend=backend)
        ranker.model_ = BACKENDS[backend]({}, 0, 0)
        model_path = folder / schema["model_file"]
        try:
            ranker.model_.load(model_path)
        except Exception as exc:  # the libraries raise their own error types
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"model file cannot be read ({reason}); rerun `python cli.py "
                             f"train-ranker`", file=str(model_path)) from None
        stored = ranker.model_.feature_names()
        if stored is not None and stored != names:
            raise InputError(
                f"the model's features do not match schema.json (model file only: "
                f"{sorted(set(stored) - set(names))}; schema.json only: "
                f"{sorted(set(names) - set(stored))})", file=str(model_path))
        if ranker.model_.num_features() != len(names):  # XGBoost stores no names, only a count
            raise InputError(
                f"the model file has {ranker.model_.num_features()} features, schema.json "
                f"{len(names)}: they are from different runs; rerun `python cli.py "
                f"train-ranker`", file=str(model_path))
        ranker.feature_names_ = names
        ranker.best_iteration_ = schema.get("best_iteration")
        return ranker, schema
