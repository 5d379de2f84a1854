"""Training a pair ranker on a Dask cluster: ``lightgbm.dask`` or ``xgboost.dask`` on dask
arrays whose row blocks lie one per worker (``PairRanker(client=...)``).

The fitted booster is the kind the local backends hold, so predicting, saving and loading do
not change. LightGBM's Dask training has no early stopping of its own that is safe: each worker
would judge the trees on its own share of the validation rows, and workers that stop at
different trees hang the network. Here every worker holds the whole validation set and, data-
parallel training building the same trees everywhere, scores it after each tree identically,
so all stop at the same tree. XGBoost's collective reduces the validation metric itself.
"""
from __future__ import annotations

import numpy as np

from .backends import LightGBMBackend, XGBoostBackend

# How long training waits for a cluster that has no worker registered yet.
WORKER_WAIT_SECONDS = 300


def fit_on_cluster(backend, client, X, y, weight, X_valid, y_valid, rounds: int,
                   early_stopping: int, feature_names: list[str]) -> int:
    """``backend.fit`` (same arguments and result: the trees kept) trained on ``client``'s
    workers; the booster lands in ``backend``."""
    if isinstance(backend, LightGBMBackend):
        return _fit_lightgbm(backend, client, X, y, weight, X_valid, y_valid, rounds,
                             early_stopping, feature_names)
    if isinstance(backend, XGBoostBackend):
        return _fit_xgboost(backend, client, X, y, weight, X_valid, y_valid, rounds,
                            early_stopping)
    raise ValueError(f"no Dask training for the {backend.name} backend")


def _fit_lightgbm(backend: LightGBMBackend, client, X, y, weight, X_valid, y_valid, rounds,
                  early_stopping, feature_names) -> int:
    from lightgbm.dask import DaskLGBMClassifier

    # lightgbm.dask gives each worker its own thread count.
    params = {k: v for k, v in backend.params.items() if k != "num_threads"}
    model = DaskLGBMClassifier(client=PartOrder(client), n_estimators=rounds, **params)
    callbacks = [] if X_valid is None else [ValidationStop(X_valid, y_valid, early_stopping)]
    X, y, weight = _partitioned(client, X, y, weight)
    model.fit(X, y, sample_weight=weight, feature_name=feature_names, callbacks=callbacks)
    backend.booster = model.booster_
    return int(backend.booster.best_iteration or backend.booster.current_iteration())


def _fit_xgboost(backend: XGBoostBackend, client, X, y, weight, X_valid, y_valid, rounds,
                 early_stopping) -> int:
    from xgboost import dask as dxgb

    params = {k: v for k, v in backend.params.items() if k != "nthread"}
    X, y, weight = _partitioned(client, X, y, weight)
    train = dxgb.DaskQuantileDMatrix(client, X, y, weight=weight, max_bin=params["max_bin"])
    evals = []
    if X_valid is not None:
        evals = [(dxgb.DaskDMatrix(client, *_partitioned(client, X_valid, y_valid)), "valid")]
    found = dxgb.train(client, params, train, num_boost_round=rounds, evals=evals,
                       early_stopping_rounds=early_stopping if evals else None,
                       verbose_eval=False)
    backend.booster = found["booster"]
    return backend.keep_best(rounds, bool(evals))


class PartOrder:
    """The client, but for ``who_has``, which lists the futures in the order given.
    lightgbm.dask numbers the workers (their rank in LightGBM's network) in the order the client
    lists the training parts, and each rank bins its own range of features from its own rows;
    the client's own order is a set's, which changes from process to process, and the trees
    would change with it."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name: str):
        return getattr(self.client, name)

    def who_has(self, futures=None, **kwargs) -> dict:
        found = self.client.who_has(futures, **kwargs)
        return {future.key: found[future.key] for future in futures}


class ValidationStop:
    """LightGBM callback: early stopping on the binary log-loss of the whole validation set,
    which every worker scores alike (after ``patience`` trees without a better loss, or at the
    last tree, training ends at the best one)."""

    order = 30

    def __init__(self, X: np.ndarray, y: np.ndarray, patience: int):
        self.X, self.y, self.patience = X, np.asarray(y, dtype=np.float64), patience

    def __call__(self, env) -> None:
        from lightgbm.callback import EarlyStopException

        if env.iteration == env.begin_iteration:
            self.raw, self.trees = np.zeros(len(self.y)), 0
            self.best, self.best_iteration = np.inf, env.iteration
        trees = env.model.current_iteration()  # an iteration that finds no split adds no tree
        if trees > self.trees:
            # The training's threads: OpenMP's default for this thread may be another (numba's
            # kernels of the feature tasks set it), and idle threads spinning beside the other
            # workers slow every step of the network.
            self.raw += env.model.predict(self.X, raw_score=True, start_iteration=self.trees,
                                          num_iteration=trees - self.trees,
                                          num_threads=env.params.get("num_threads", 1))
            self.trees = trees
        loss = float(np.mean(np.logaddexp(0.0, self.raw) - self.y * self.raw))
        if loss < self.best:
            self.best, self.best_iteration = loss, env.iteration
        if env.iteration - self.best_iteration >= self.patience \
                or env.iteration == env.end_iteration - 1:
            raise EarlyStopException(self.best_iteration,
                                     [("valid", "binary_logloss", self.best, False)])


def _partitioned(client, *arrays) -> list:
    """Dask arrays of ``arrays`` (None stays None), row block w of each on worker w."""
    import dask.array as da

    if not client.scheduler_info()["workers"]:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)  # TimeoutError names the wait
    workers = sorted(client.scheduler_info()["workers"])
    rows = len(arrays[0])
    bounds = np.linspace(0, rows, min(len(workers), max(rows, 1)) + 1).astype(int)
    out = []
    for array in arrays:
        if array is None:
            out.append(None)
            continue
        blocks = [da.from_delayed(client.scatter(array[lo:hi], workers=[worker], hash=False),
                                  shape=(hi - lo, *array.shape[1:]), dtype=array.dtype)
                  for worker, lo, hi in zip(workers, bounds[:-1], bounds[1:])]
        out.append(da.concatenate(blocks))
    return out
