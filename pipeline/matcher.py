"""The whole matcher as one estimator, in the scikit-learn style.

>>> matcher = Matcher(embedders="tfidf,tfidf_char,phash", k=50).fit(train)   # doctest: +SKIP
>>> submission = matcher.predict(test)                                       # doctest: +SKIP
>>> matcher.save("model"); Matcher.load("model").predict(test)               # doctest: +SKIP

Parameters are plain data set in ``__init__`` and checked in :meth:`fit`; what fitting learns
lives in attributes ending in ``_``: ``bundle_`` (the models and fitted post-processing, see
:class:`~pipeline.bundle.ModelBundle`), ``cv_report_`` (the out-of-fold figures, as in
``metrics.json``), ``oof_scores_`` (the out-of-fold pair scores) and ``candidates_report_``.
"""
from __future__ import annotations

import contextlib
import inspect
from pathlib import Path

import polars as pl

from candidates import (BRIDGE_IN, BRIDGE_LIST_DEPTH, BRIDGE_OUT, allocation_spec, bridge_spec,
                        recall_by_source, save_neighbours)
from common.atomic import atomic_path, write_json, write_parquet
from common.console import Timer
from common.errors import InputError
from common.folds import require_label_groups
from common.labels import PairLabels
from common.postings import has_labels, label_codes, load_postings, validate_postings
from common.workdir import WorkDir
from ranker import FILTER_MAX_PAIRS

from .bundle import ModelBundle
from .inference import Matching, match
from .pair_training import train_on_labels
from .settings import (DEFAULT_CHUNK_SIZE, DEFAULT_EMBEDDERS, DEFAULT_POSTPROCESS, VIEW_DROPOUT,
                       blend_spec, bridges_by_default, check_ranges, embedder_specs,
                       feature_groups, postprocess_steps, spec_params)
from .stages import (Candidates, embed, images_folder, postings_fingerprint, search,
                     table_fingerprint)
from .training import train


class Matcher:
    """Postings in, match sets out: embedders → candidates → (filter) → features → one or two
    ranker stages → post-processing.

    ``embedders`` takes the command line's form (``"tfidf,minilm:model_path=/m"``) or a list
    of names or ``{name, config}`` dicts; ``postprocess`` and ``groups`` a comma-separated
    string or a list. ``search`` is how each vector embedder's top-``k`` lists are found:
    ``exact``, ``ann`` (approximate, :mod:`candidates.ann`) or ``auto`` (ann from the measured
    crossover size on, decided per catalog); ``allocation`` is which list entries become pairs:
    ``per_posting`` (each posting's top ``k``) or ``global`` (each embedder keeps the k·n most
    similar (posting, neighbour) entries of the whole catalog from lists ``search_depth`` deep,
    default 2·k, at least 5 per posting: long lists where a product is posted often, short
    ones elsewhere; :mod:`candidates.allocate`). ``bridges`` (``on``, ``off`` or ``auto``: on
    unless a learned embedder is among the embedders) adds photo bridges: for two postings with
    near-identical photos, one is paired with the other's best ``bridge_out`` neighbours and
    with the postings listing the other among their best ``bridge_in``; where a catalog has such
    photos, each list then pairs only its first ``bridge_list_depth`` entries
    (:mod:`candidates.bridges`). ``blend_depth`` (0: off) blends each vector
    with its nearest neighbours' before the search (:func:`candidates.blend_neighbours`): the
    blended vectors find the pairs; the features read the plain and the blended cosines.
    ``cache_dir`` is a work directory: embeddings are cached there (a rerun reuses them) and
    every artifact of ``candidates`` and ``train-ranker`` is written there.
    ``chunk_size`` is how many query postings' pairs matching a catalog filters, featurises and
    scores at a time (None: all at once): it bounds the memory, the results do not depend on it.
    ``adapt`` is how matching treats a catalog unlike the training one (:mod:`pipeline.transfer`):
    ``auto`` switches to the conservative post-processing where it detects one, ``always`` and
    ``never`` force the conservative and the saved one.
    ``view_dropout`` is the share of training pairs whose photo features every ranker trains
    without (see :class:`ranker.PairRanker`), so that a posting without a photo, or a catalog
    without any, is scored on what it has rather than as an identical photo.
    ``client`` (a ``distributed.Client``) runs the work as Dask tasks on its cluster
    (:mod:`pipeline.distributed`): matching gives the same pairs and scores, training fits the
    rankers with ``lightgbm.dask`` / ``xgboost.dask``.
    """

    def __init__(self, embedders: str | list = DEFAULT_EMBEDDERS, k: int = 50,
                 search: str = "auto", allocation: str = "per_posting",
                 search_depth: int | None = None, blend_depth: int = 0, blend_iterations: int = 1,
                 blend_power: float = 1.0, bridges: str = "auto", bridge_out: int = BRIDGE_OUT,
                 bridge_in: int = BRIDGE_IN, bridge_list_depth: int = BRIDGE_LIST_DEPTH,
                 backend: str = "lightgbm", folds: int = 5, seed: int = 42,
                 negative_rate: float = 0.25, symmetrise: str = "mean",
                 filter_threshold: float = 0.01, filter_max_pairs: int | None = FILTER_MAX_PAIRS,
                 groups: str | list[str] | None = None,
                 stack: bool = True, weight_by_group_size: bool = False,
                 view_dropout: float = VIEW_DROPOUT,
                 postprocess: str | list[str] = DEFAULT_POSTPROCESS,
                 chunk_size: int | None = DEFAULT_CHUNK_SIZE, adapt: str = "auto",
                 cache_dir: str | Path | None = None, client=None):
        self.embedders = embedders
        self.k = k
        self.search = search
        self.allocation = allocation
        self.search_depth = search_depth
        self.blend_depth = blend_depth
        self.blend_iterations = blend_iterations
        self.blend_power = blend_power
        self.bridges = bridges
        self.bridge_out = bridge_out
        self.bridge_in = bridge_in
        self.bridge_list_depth = bridge_list_depth
        self.backend = backend
        self.folds = folds
        self.seed = seed
        self.negative_rate = negative_rate
        self.symmetrise = symmetrise
        self.filter_threshold = filter_threshold
        self.filter_max_pairs = filter_max_pairs
        self.groups = groups
        self.stack = stack
        self.weight_by_group_size = weight_by_group_size
        self.view_dropout = view_dropout
        self.postprocess = postprocess
        self.chunk_size = chunk_size
        self.adapt = adapt
        self.cache_dir = cache_dir
        self.client = client

    # ------------------------------------------------------------------ scikit-learn protocol

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Matcher:
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; known: {self._param_names()}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = type(self)().get_params()
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k]]
        return f"Matcher({', '.join(changed)})"

    def validate_params(self) -> dict:
        """The parameters in canonical plain data (embedder configs filled in, step lists in
        their order), as the model records them; raises
        :class:`~pipeline.settings.ParameterError` (a ``ValueError``) on a value out of range
        and :class:`~common.errors.InputError` on an unknown embedder or step."""
        params = self.get_params()
        check_ranges(params)
        # Where, in how many chunks and on which cluster a run works changes its memory and
        # speed, not what the model is.
        params.pop("cache_dir")
        params.pop("chunk_size")
        params.pop("adapt")
        params.pop("client")
        params.update(embedders=embedder_specs(self.embedders),
                      postprocess=postprocess_steps(self.postprocess),
                      groups=feature_groups(self.groups))
        return params

    # ------------------------------------------------------------------ fitting

    def fit(self, postings, images: str | Path | None = None, labels=None) -> Matcher:
        """Find candidates in the labelled ``postings`` (a polars or pandas DataFrame, or a CSV
        or parquet path) and train every stage under protocol P1 (``find_candidates`` checks the
        parameters before any work). ``labels``: pair labels instead of (or beside)
        ``label_group`` (see :meth:`fit_candidates`)."""
        return self.fit_candidates(self.find_candidates(postings, images), labels=labels)

    def find_candidates(self, postings, images: str | Path | None = None) -> Candidates:
        """Embed ``postings`` and search their candidate pairs (``python cli.py candidates``);
        with ``cache_dir`` the artifacts and ``candidates.json`` are written there."""
        params = self.validate_params()
        timer = Timer()
        with timer.step("load"):  # refused input is refused before the lock creates anything
            frame, source = _postings_frame(postings)
            images = images_folder(images)
        with self._locked():
            return self._find_candidates(params, frame, source, images, timer)

    def _find_candidates(self, params: dict, frame: pl.DataFrame, source: str | None,
                         images: Path | None, timer: Timer) -> Candidates:
        with timer.step("load"):
            work = self._work()
            if work is not None:
                work.remove_stale_temporaries()
                write_parquet(work.postings, frame)
        embeddings = embed(frame, params["embedders"], work and work.embeddings, images, timer,
                           self.client)
        blend = blend_spec(self.blend_depth, self.blend_iterations, self.blend_power)
        allocation = allocation_spec(self.allocation, self.k, self.search_depth)
        bridges = self._bridges(params["embedders"])
        found = search(embeddings, self.k, blend, timer, self.search, self.client, allocation,
                       bridges)
        if work is not None:
            with timer.step("write"):
                write_parquet(work.candidates, found.table)
                save_neighbours(work.neighbours, found.neighbours)
        table = found.table
        report = {"postings": source, "images": str(images.resolve()) if images else None,
                  "postings_fingerprint": postings_fingerprint(frame),
                  "candidates_fingerprint": table_fingerprint(table),
                  "rows": frame.height, "k": self.k, "embedders": params["embedders"],
                  "search": self.search, "search_by_embedder": found.search,
                  "blend": blend, "allocation": allocation, "bridges": bridges,
                  "list_depth": found.list_depth, "pairs": table.height,
                  "pairs_per_posting": round(table.height / frame.height, 3),
                  "seconds": {**timer.seconds, **found.seconds, "total": timer.total}}
        if has_labels(frame):
            recall = recall_by_source(table, label_codes(frame))
            report["recall"] = recall.pop("all")
            report["recall_by_embedder"] = recall
        if work is not None:
            write_json(work.candidates_report, report)
        self.candidates_report_ = report
        return Candidates(frame, embeddings, table, found.neighbours, report)

    def fit_candidates(self, candidates: Candidates, timer: Timer | None = None,
                       labels=None) -> Matcher:
        """Train on candidates found earlier (``python cli.py train-ranker``; see
        :meth:`Candidates.load`); ``timer`` collects the seconds per stage.

        ``labels`` (a :class:`~common.labels.PairLabels`, a labels file or a DataFrame with
        ``posting_id_a``, ``posting_id_b``, ``match``) trains from answered pairs instead
        (:mod:`pipeline.pair_training`): one ranker stage, no filter, the 0.5 cut; the
        postings then need no ``label_group``."""
        params = self.validate_params()
        mine = {"embedders": params["embedders"], "k": self.k, "search": self.search,
                "blend": blend_spec(self.blend_depth, self.blend_iterations, self.blend_power),
                "allocation": allocation_spec(self.allocation, self.k, self.search_depth),
                "bridges": self._bridges(params["embedders"])}
        recorded = {"search": "exact", **candidates.report}  # reports before ann: exact
        # An embedder setting added since the candidates were found is at its default there.
        recorded["embedders"] = embedder_specs(recorded["embedders"])
        differ = [key for key, value in mine.items() if recorded.get(key) != value]
        if differ:  # the model would record settings its candidates were not searched with
            raise ValueError(f"the candidates were searched with other {', '.join(differ)} than "
                             f"this Matcher's: set_params(**candidates.search_params()) first")
        labels_source = str(labels) if isinstance(labels, (str, Path)) else None
        if labels is not None:
            labels = pair_labels(labels, candidates.postings)
        elif not has_labels(candidates.postings):
            raise InputError("the postings have no label_group column; training needs labels "
                             "(or pair labels: --labels)",
                             file=candidates.report.get("postings"), column="label_group")
        else:
            require_label_groups(label_codes(candidates.postings), self.folds,
                                 candidates.report.get("postings"))
        work = self._work()
        with self._locked():
            if work is not None:
                work.remove_stale_temporaries()
            if labels is not None:
                fitted = train_on_labels(candidates, labels, params, work, timer, self.client,
                                         self.chunk_size, source=labels_source)
            else:
                fitted = train(candidates, params, work, timer, self.client, self.chunk_size)
        self.bundle_ = fitted.bundle
        self.cv_report_ = fitted.metrics
        self.oof_scores_ = fitted.oof_scores
        return self

    # ------------------------------------------------------------------ matching

    def match(self, postings, images: str | Path | None = None,
              timer: Timer | None = None) -> Matching:
        """Candidates, scores and match sets of a new catalog; ``timer`` collects the seconds
        per stage. With ``cache_dir`` the embeddings are cached there."""
        bundle = self._fitted()
        check_ranges(self.get_params())
        timer = timer or Timer()
        with timer.step("load"):
            frame, _ = _postings_frame(postings)
            images = images_folder(images)
        work = self._work()
        with self._locked():  # the embeddings cache is written there
            embeddings = embed(frame, bundle.embedders, work and work.embeddings, images, timer,
                               self.client)
        found = search(embeddings, bundle.k, bundle.blend, timer, self.search, self.client,
                       bundle.allocation, bundle.bridges, bundle.list_depth)
        # match() lets go of what it has used (at a million postings, the whole candidate
        # table is 2 GiB), so nothing here may keep a reference to it.
        candidates = Candidates(frame, embeddings, found.table, found.neighbours)
        searched = found.search
        del found, embeddings, frame
        result = match(bundle, candidates, timer, self.chunk_size, self.client, self.adapt)
        result.search = searched
        return result

    def predict(self, postings, images: str | Path | None = None) -> pl.DataFrame:
        """The submission table: ``posting_id`` and ``matches`` (space-separated ids, self
        first, at most 50)."""
        return self.match(postings, images).submission

    def predict_pairs(self, postings, images: str | Path | None = None) -> pl.DataFrame:
        """Every scored pair of a new catalog: ``i``, ``j`` (row indices), ``p`` (the last
        stage's p(match)) and ``kept`` (in the final match sets)."""
        return self.match(postings, images).pairs

    def submit(self, postings, out: str | Path, images: str | Path | None = None) -> Matching:
        """Write the submission CSV to ``out`` (atomically); with ``cache_dir``, also
        ``submit.json`` (counts and seconds per stage) there."""
        with self._locked():
            return self._submit(postings, out, images)

    def _submit(self, postings, out: str | Path, images: str | Path | None) -> Matching:
        timer = Timer()
        result = self.match(postings, images, timer)
        with timer.step("write"):
            with atomic_path(out) as tmp:
                result.submission.write_csv(tmp)
        result.seconds = {**timer.seconds, "total": timer.total}
        work = self._work()
        if work is not None:
            sizes = result.submission["matches"].str.count_matches(" ") + 1
            write_json(work.root / "submit.json", {
                "postings": result.submission.height, "candidate_pairs": result.candidate_pairs,
                "pairs": result.pairs.height,
                "matches_per_posting": round(float(sizes.mean()), 3), "out": str(out),
                "search_by_embedder": result.search, "chunk_size": self.chunk_size,
                "score_shift": result.score_shift, "coverage": result.coverage,
                "coverage_gaps": result.coverage_gaps, "differences": result.differences,
                "postprocess": "conservative" if result.adapted else "saved",
                "sole_code_pairs": result.sole_code_pairs,
                "seconds": result.seconds})
        return result

    # ------------------------------------------------------------------ persistence

    def save(self, folder: str | Path) -> Path:
        """Write the fitted model (see :mod:`pipeline.bundle` for the layout); into a work
        directory's ``model`` folder only while no other run writes that directory."""
        bundle = self._fitted()
        parent = Path(folder).parent
        if not (parent / "candidates.json").is_file():
            return bundle.save(folder)
        with WorkDir(parent).lock():
            return bundle.save(folder)

    @classmethod
    def load(cls, folder: str | Path, cache_dir: str | Path | None = None) -> Matcher:
        """A fitted Matcher from a model folder (or a work directory holding ``model/``)."""
        bundle = ModelBundle.load(folder)
        params = dict(bundle.params or {})
        params.update(embedders=bundle.embedders, k=bundle.k, cache_dir=cache_dir)
        # What match() replays is the bundle's search, whatever the defaults were when it was
        # saved: models before global lists allocated per posting.
        params.update(spec_params(bundle.blend, bundle.allocation, bundle.bridges,
                                  bundle.embedders))
        if bundle.pair_filter is not None:  # models before the bound record none in params
            params["filter_max_pairs"] = bundle.pair_filter.max_pairs
        matcher = cls(**{k: v for k, v in params.items() if k in cls._param_names()})
        matcher.bundle_ = bundle
        return matcher

    # ------------------------------------------------------------------ helpers

    def _fitted(self) -> ModelBundle:
        if not hasattr(self, "bundle_"):
            raise RuntimeError("this Matcher is not fitted yet: call fit() or Matcher.load()")
        return self.bundle_

    def _locked(self):
        """The work directory's writer lock, when there is one."""
        work = self._work()
        return work.lock() if work is not None else contextlib.nullcontext()

    def _bridges(self, specs: list[dict]) -> dict | None:
        """The photo bridges to search with. ``auto`` leaves them out beside a learned
        embedder: its lists already reach a product's other wordings, and on Shopee train
        with ``arcface_text`` the bridges cost 0.0038 of P1 F1 (0.8232 → 0.8194; README,
        "Candidate lists"), where on the default embedders they add 0.0015."""
        if self.bridges == "off" or (self.bridges == "auto" and not bridges_by_default(specs)):
            return None
        return bridge_spec(self.bridge_out, self.bridge_in, self.bridge_list_depth)

    def _work(self) -> WorkDir | None:
        return WorkDir(self.cache_dir) if self.cache_dir is not None else None


def train_work_dir(matcher: Matcher, root: str | Path, timer: Timer | None = None,
                   labels=None) -> dict:
    """``python cli.py train-ranker``: fit ``matcher`` on the candidates in work directory
    ``root`` (on pair ``labels`` where given) and save the model into ``root/model``, as its
    only writer throughout (no other run can change the candidates under the fit); returns
    the metrics."""
    timer = timer or Timer()
    with WorkDir(root).lock():
        candidates = Candidates.load(root, timer)
        matcher.set_params(**candidates.search_params()).fit_candidates(candidates, timer,
                                                                         labels)
        matcher.save(Path(root) / "model")
    return matcher.cv_report_


def pair_labels(labels, postings: pl.DataFrame) -> PairLabels:
    """:class:`PairLabels` from labels given as such, as a file path or as a DataFrame."""
    if isinstance(labels, PairLabels):
        return labels
    if isinstance(labels, (str, Path)):
        return PairLabels.read(labels, postings["posting_id"])
    if not isinstance(labels, pl.DataFrame):
        labels = pl.from_pandas(labels)
    return PairLabels.from_frame(labels, postings["posting_id"])


def _postings_frame(postings) -> tuple[pl.DataFrame, str | None]:
    """Validated postings from a path, a polars or a pandas DataFrame, and where they came
    from (the resolved path, or None for a frame)."""
    if isinstance(postings, (str, Path)):
        return load_postings(postings), str(Path(postings).resolve())
    if not isinstance(postings, pl.DataFrame):
        try:
            postings = pl.from_pandas(postings)
        except (TypeError, ValueError, ImportError) as exc:
            raise InputError(f"postings must be a polars or pandas DataFrame or a file path, not "
                             f"{type(postings).__name__} ({exc})") from None
    return validate_postings(postings, "<postings frame>"), None
