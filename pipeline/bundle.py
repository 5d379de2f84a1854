"""The trained model as one folder: the only code that knows its layout.

::

    model/
      schema.json        first-stage features (name, group) in order, backend, model file, and the
                         settings `submit` replays: embedders, k, blend, feature_groups,
                         postprocess (fitted), filter / stack (sub-folder names or null), params
                         (the Matcher's constructor parameters, search among them), oof_metrics,
                         search_by_embedder (how the training candidates were searched),
                         candidates_fingerprint (the candidate table it was trained on)
      ranker.lgb.txt     the first-stage booster (ranker.xgb.json with XGBoost)
      importance.csv     gain per feature, and importance.png, its chart
      filter/            the first-pass pair filter: schema.json (+ filter_threshold), booster
      stack/             the second-stage ranker: schema.json (features = the first stage's, then
                         the score graph), booster, importance.csv / .png
      encoders/<name>/   each learned embedder's all-rows encoder (safetensors + config, and
                         arcface.json, its training settings); schema.json's embedder config
                         names it by the path relative to the model folder

Nothing is pickled. :meth:`ModelBundle.load` checks every part and refuses a folder that this
toolkit could not replay with an :class:`~common.errors.InputError` naming the file.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from candidates import SEARCH_METHODS
from common.atomic import read_json
from common.errors import InputError
from common.text import CLEANUP_VERSION
from embedders import copy_trained, is_learned
from features import (SCORE_GRAPH_FEATURES, SCORE_GRAPH_GROUP, FeatureTable, PairContext,
                      build_features)
from postprocess import PostProcessor
from ranker import SCHEMA_FILE, PairFilter, PairRanker, write_importance

FILTER_FOLDER = "filter"
STACK_FOLDER = "stack"
ENCODERS_FOLDER = "encoders"
TOOLKIT_VERSION = "0.1.0"

log = logging.getLogger(__name__)


@dataclass
class ModelBundle:
    """A fitted pipeline: first-stage ranker, optional filter and second stage, post-processing,
    and the settings that made the candidates (``embedders``, ``k``, ``blend``, ``allocation``,
    ``bridges``, ``list_depth``)."""

    ranker: PairRanker
    feature_groups: dict[str, str]      # feature → group, for the first stage's features
    embedders: list[dict]               # [{name, config}]
    k: int
    blend: dict | None
    groups: list[str]                   # the feature groups that were asked for
    processor: PostProcessor
    pair_filter: PairFilter | None = None
    filter_groups: dict[str, str] | None = None
    second: PairRanker | None = None
    params: dict | None = None          # the Matcher's parameters (plain data)
    search_by_embedder: dict | None = None  # per vector embedder, how training searched
    oof_metrics: dict | None = None
    allocation: dict | None = None      # global list allocation; None: top-k per posting
    bridges: dict | None = None         # photo bridges; None: none (models before them too)
    # how deep each list paired at training, replayed when matching (None: as the catalog has
    # photo links or not, as models before it did)
    list_depth: int | None = None
    candidates_fingerprint: str | None = None  # of the pairs it was trained on (None: older)
    score_quantiles: list | None = None  # of the out-of-fold scores (None: older models)
    coverage: dict | None = None  # per embedder, training postings with a vector (None: older)
    folder: Path | None = None          # where it was loaded from, for the refusal messages

    @property
    def second_groups(self) -> dict[str, str]:
        return {**self.feature_groups, **dict.fromkeys(SCORE_GRAPH_FEATURES, SCORE_GRAPH_GROUP)}

    # ------------------------------------------------------------------------------ writing

    def save(self, folder: str | Path) -> Path:
        """Write the bundle into ``folder`` (created), never leaving it half written: the model
        goes into a temporary sibling folder that replaces ``folder`` once complete, so a
        failed write (full disk) keeps the previous model. A folder holding other things than
        a model is written in place (parts this model lacks are removed)."""
        folder = Path(folder)
        if folder.is_dir() and any(folder.iterdir()) and not (folder / SCHEMA_FILE).is_file():
            return self._write(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp",
                                        dir=folder.parent))
        try:
            umask = os.umask(0o022)
            os.umask(umask)
            staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would make the model private
            self._write(staging)
            if folder.exists():
                retired = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", suffix=".tmp",
                                                dir=folder.parent))
                os.replace(folder, retired)
                os.replace(staging, folder)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    def _write(self, folder: Path) -> Path:
        if self.pair_filter is not None:
            self.pair_filter.save(folder / FILTER_FOLDER, self.filter_groups)
        elif (folder / FILTER_FOLDER).exists():
            shutil.rmtree(folder / FILTER_FOLDER)
        if self.second is not None:
            self.second.save(folder / STACK_FOLDER, self.second_groups, {"stage": 2})
            write_importance(self.second.gain_importance(), self.second_groups,
                             folder / STACK_FOLDER)
        elif (folder / STACK_FOLDER).exists():
            shutil.rmtree(folder / STACK_FOLDER)
        embedders = self._write_encoders(folder)
        self.ranker.save(folder, self.feature_groups, {
            "toolkit_version": TOOLKIT_VERSION, "embedders": embedders, "k": self.k,
            "blend": self.blend, "allocation": self.allocation, "bridges": self.bridges,
            "list_depth": self.list_depth, "filter": FILTER_FOLDER if self.pair_filter else None,
            "stack": STACK_FOLDER if self.second else None, "feature_groups": self.groups,
            "postprocess": self.processor.fitted_params(), "params": self.params,
            "oof_metrics": self.oof_metrics, "search_by_embedder": self.search_by_embedder,
            "candidates_fingerprint": self.candidates_fingerprint,
            "title_cleanup": CLEANUP_VERSION, "score_quantiles": self.score_quantiles,
            "coverage": self.coverage})
        write_importance(self.ranker.gain_importance(), self.feature_groups, folder)
        return folder

    def _write_encoders(self, folder: Path) -> list[dict]:
        """Copy each learned embedder's trained encoder into ``encoders/<name>/``; the specs as
        saved, naming it relative to the model folder (which can then move)."""
        specs, target_root = [], folder / ENCODERS_FOLDER
        if target_root.exists():
            shutil.rmtree(target_root)
        for spec in self.embedders:
            checkpoint = spec.get("config", {}).get("checkpoint")
            if is_learned(spec["name"]) and checkpoint:
                copy_trained(checkpoint, target_root / spec["name"])
                spec = {**spec, "config": {**spec["config"],
                                           "checkpoint": f"{ENCODERS_FOLDER}/{spec['name']}"}}
            specs.append(spec)
        return specs

    # ------------------------------------------------------------------------------ reading

    @staticmethod
    def locate(path: str | Path) -> Path:
        """The model folder itself, or the ``model`` folder of a work directory."""
        path = Path(path)
        if not (path / SCHEMA_FILE).exists() and (path / "model" / SCHEMA_FILE).exists():
            return path / "model"
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        """Read and check a saved bundle (a model folder or a work directory holding one)."""
        folder = cls.locate(path)
        ranker, schema = PairRanker.load(folder)
        where = str(folder / SCHEMA_FILE)
        _check_settings(schema, where)
        if schema.get("title_cleanup", 1) != CLEANUP_VERSION:
            # Its rankers learnt from titles cleaned another way (before version 2, byte escapes
            # were deleted, not decoded): the model still runs, a little off its own figures.
            log.warning(f"{where}: trained with title clean-up version "
                        f"{schema.get('title_cleanup', 1)}, this toolkit cleans titles with "
                        f"version {CLEANUP_VERSION}; retrain (`python cli.py train-ranker`) "
                        f"for figures that hold")
        processor = _postprocessor(schema, where)
        filter_folder = _part(schema, folder, "filter")
        pair_filter = PairFilter.load(filter_folder) if filter_folder else None
        second = _second_stage(schema, folder, ranker)
        filter_groups = None
        if pair_filter:  # PairRanker.load has checked this schema's feature list
            schema_json = read_json(filter_folder / SCHEMA_FILE, "train-ranker")
            filter_groups = {f["name"]: f["group"] for f in schema_json["features"]}
        return cls(ranker=ranker, feature_groups={f["name"]: f["group"]
                                                  for f in schema["features"]},
                   embedders=_resolve_encoders(schema["embedders"], folder), k=schema["k"],
                   blend=schema.get("blend"), allocation=schema.get("allocation"),
                   bridges=schema.get("bridges"), list_depth=schema.get("list_depth"),
                   groups=schema["feature_groups"], processor=processor,
                   pair_filter=pair_filter, filter_groups=filter_groups, second=second,
                   params=schema.get("params"), oof_metrics=schema.get("oof_metrics"),
                   search_by_embedder=schema.get("search_by_embedder"),
                   candidates_fingerprint=schema.get("candidates_fingerprint"),
                   score_quantiles=schema.get("score_quantiles"),
                   coverage=schema.get("coverage"), folder=folder)

    # ------------------------------------------------------------------------------ applying

    def filter_scores(self, ctx: PairContext) -> np.ndarray:
        """The first-pass filter's p(match) of ``ctx``'s pairs (one chunk of a table: which
        pairs it keeps is decided over the whole table's scores)."""
        cheap = build_features(ctx, self.pair_filter.groups)
        self.check_features(cheap.names, FILTER_FOLDER)
        return self.pair_filter.score(cheap.matrix(self.pair_filter.feature_names_))

    def first_stage_features(self, ctx: PairContext) -> FeatureTable:
        """The first stage's features of ``ctx``'s pairs, refused unless they are the model's."""
        features = build_features(ctx, self.groups)
        self.check_features(features.names)
        return features

    def check_features(self, built: list[str], part: str | None = None) -> None:
        """Refuse a model whose features (the first stage's, or the ``filter`` part's) are not
        the ones this toolkit builds, naming the schema file."""
        expected = self.pair_filter.feature_names_ if part == FILTER_FOLDER \
            else self.ranker.feature_names_
        if sorted(built) != sorted(expected):
            folder = (self.folder or Path()) / (part or "")
            raise InputError(f"the model's feature schema does not match the features this "
                             f"toolkit builds (unknown to it: {sorted(set(expected) - set(built))}"
                             f"; not in the model: {sorted(set(built) - set(expected))}); "
                             f"retrain", file=str(folder / SCHEMA_FILE))


def _check_settings(schema: dict, where: str) -> None:
    """The settings `submit` replays (but the post-processing, read by :func:`_postprocessor`)
    are present, well typed and buildable."""
    from embedders import create_embedder

    problems = []
    if not (isinstance(schema.get("k"), int) and schema["k"] >= 1):
        problems.append("'k' is not a positive integer")
    if not isinstance(schema.get("feature_groups"), list):
        problems.append("'feature_groups' is not a list")
    params = schema.get("params") or {}  # models before ann have no 'search': auto
    if not (isinstance(params, dict) and params.get("search", "auto") in SEARCH_METHODS):
        problems.append(f"'params' is not a dict whose 'search' is {'|'.join(SEARCH_METHODS)}")
    specs = schema.get("embedders")
    if not (isinstance(specs, list) and specs and all(
            isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("config", {}), dict) for e in specs)):
        problems.append("'embedders' is not a list of {name, config}")
    if problems:
        raise InputError(f"not a usable model schema: {'; '.join(problems)}", file=where)
    for spec in specs:
        try:
            create_embedder(spec["name"], **spec.get("config", {}))
        except InputError as exc:
            raise InputError(exc.reason, file=where) from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"embedder {spec['name']!r} cannot be built from its config ({exc})",
                             file=where) from None


def _resolve_encoders(specs: list[dict], folder: Path) -> list[dict]:
    """The saved specs with each learned embedder's encoder path made absolute (it is saved
    relative to the model folder), refused by name when the folder lacks it."""
    resolved = []
    for spec in specs:
        checkpoint = spec.get("config", {}).get("checkpoint")
        if is_learned(spec["name"]) and checkpoint and not Path(checkpoint).is_absolute():
            path = folder / checkpoint
            if not path.is_dir():
                raise InputError(f"the {spec['name']} encoder that schema.json names "
                                 f"({checkpoint}) is missing; copy the whole model folder, or "
                                 f"retrain", file=str(folder / SCHEMA_FILE))
            spec = {**spec, "config": {**spec["config"], "checkpoint": str(path)}}
        resolved.append(spec)
    return resolved


def _postprocessor(schema: dict, where: str) -> PostProcessor:
    try:
        return PostProcessor.from_params(schema["postprocess"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"unreadable 'postprocess' parameters ({exc!r}); retrain",
                         file=where) from None


def _part(schema: dict, folder: Path, key: str) -> Path | None:
    """The sub-folder of an optional part (filter, second stage) that schema.json names under
    ``key``; None when the model has no such part."""
    name = schema.get(key)
    if name is None:
        return None
    if not (isinstance(name, str) and (folder / name).is_dir()):
        raise InputError(f"'{key}' names no folder beside schema.json ({name!r})",
                         file=str(folder / SCHEMA_FILE))
    return folder / name


def _second_stage(schema: dict, folder: Path, first: PairRanker) -> PairRanker | None:
    part = _part(schema, folder, "stack")
    if part is None:
        return None
    second, _ = PairRanker.load(part)
    expected = first.feature_names_ + list(SCORE_GRAPH_FEATURES)
    if second.feature_names_ != expected:
        raise InputError(
            f"the second-stage ranker's features are not the first stage's followed by the "
            f"score-graph features (second stage only: "
            f"{sorted(set(second.feature_names_) - set(expected))}; expected only: "
            f"{sorted(set(expected) - set(second.feature_names_))}); retrain",
            file=str(part / SCHEMA_FILE))
    return second
