"""The Matcher's settings as plain data: parsing the compact forms the command line uses
(``tfidf,minilm:model_path=…``, ``threshold,score_blend``) and checking ranges."""
from __future__ import annotations

import json
import re
from typing import Any

from candidates import ALLOCATIONS, SEARCH_METHODS
from common.errors import InputError
from postprocess import POSTPROCESS_STEPS

from .transfer import ADAPT_MODES

DEFAULT_EMBEDDERS = "tfidf,tfidf_char,phash"
DEFAULT_POSTPROCESS = ",".join(POSTPROCESS_STEPS)
# Query postings per chunk when matching: a 70,000-posting catalog is one chunk (as fast as
# unchunked); a million postings make ten of about 1 GB each.
DEFAULT_CHUNK_SIZE = 100_000
# Share of training pairs whose photo features are hidden, so that the rankers learn what a
# missing photo means (see ranker.PairRanker): a posting without one, a title-only catalog.
VIEW_DROPOUT = 0.1
BACKENDS = ("lightgbm", "xgboost")
BRIDGE_MODES = ("auto", "on", "off")
SYMMETRISATIONS = ("mean", "max", "none")


class ParameterError(InputError, ValueError):
    """A Matcher parameter outside its range. ``parameter`` is its name (the command line's
    option is the same with dashes); ``requirement`` what it must be."""

    def __init__(self, parameter: str, requirement: str):
        self.parameter, self.requirement = parameter, requirement
        super().__init__(f"{parameter} {requirement}")


# Separators of the compact form: a comma before the next embedder's name, a colon before the
# next key=: so JSON values keep theirs (training={"lr":2e-4,"batch_size":32}).
_NEXT_EMBEDDER = re.compile(r",(?=\s*[A-Za-z_]\w*\s*(?::|,|$))")
_NEXT_SETTING = re.compile(r":(?=[A-Za-z_]\w*=)")


def embedder_specs(embedders: str | list) -> list[dict]:
    """``"a,b:key=value:key2=value2"`` (or a list of such names, or of ``{name, config}``) →
    ``[{name, config}]`` with every default filled in; values are JSON where they parse."""
    from embedders import create_embedder

    items = [n.strip() for n in _NEXT_EMBEDDER.split(embedders) if n.strip()] \
        if isinstance(embedders, str) else list(embedders)
    specs = []
    for item in items:
        if isinstance(item, dict):
            name, overrides = item.get("name"), dict(item.get("config", {}))
        else:
            name, *settings = _NEXT_SETTING.split(item)
            overrides = {}
            for setting in settings:
                key, sep, value = setting.partition("=")
                if not sep:
                    raise InputError(f"embedder setting {setting!r} is not key=value")
                overrides[key] = _json_or_text(value)
        try:
            specs.append({"name": name, "config": create_embedder(name, **overrides).get_config()})
        except (TypeError, ValueError) as exc:
            raise InputError(f"embedder {name!r}: {exc}") from None
    if not specs:
        raise InputError("--embedders names no embedder")
    return specs


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def postprocess_steps(steps: str | list[str] | tuple[str, ...]) -> list[str]:
    """The named post-processing steps in their fixed order, ``threshold`` always first."""
    names = [n.strip() for n in steps.split(",") if n.strip()] if isinstance(steps, str) \
        else list(steps)
    if "threshold" not in names:
        names.insert(0, "threshold")
    unknown = [n for n in names if n not in POSTPROCESS_STEPS]
    if unknown:
        raise InputError(f"--postprocess names unknown steps {unknown} "
                         f"(known: {', '.join(POSTPROCESS_STEPS)})")
    # The steps always run in their fixed order, whatever order they are named in.
    return [n for n in POSTPROCESS_STEPS if n in names]


def feature_groups(groups: str | list[str] | None) -> list[str] | None:
    if groups is None or isinstance(groups, list):
        return groups
    return groups.split(",") if groups else None


def blend_spec(depth: int, iterations: int, power: float) -> dict | None:
    """Neighbour blending of the vectors before the search; None when off (depth 0)."""
    if depth <= 0:
        return None
    return {"depth": depth, "iterations": iterations, "power": power}


def bridges_by_default(embedders: list[dict]) -> bool:
    """What ``bridges="auto"`` gives for these embedder specs: photo bridges unless a learned
    embedder is among them (its lists already reach a product's other wordings; see
    :meth:`Matcher._bridges <pipeline.matcher.Matcher._bridges>`)."""
    from embedders import is_learned

    return not any(is_learned(spec["name"]) for spec in embedders)


def spec_params(blend: dict | None, allocation: dict | None, bridges: dict | None,
                embedders: list[dict]) -> dict:
    """The Matcher parameters that :func:`blend_spec`, :func:`candidates.allocation_spec` and
    :func:`candidates.bridge_spec` turned into the recorded ``blend``, ``allocation`` and
    ``bridges`` (None: no blending, top-k per posting, no bridges, as recorded before each
    existed) for these ``embedders`` (specs): ``bridges`` is ``auto`` where that gives what
    was recorded (no bridges beside a learned embedder, bridges elsewhere)."""
    blend = blend or {}
    mode = "auto" if (bridges is not None) == bridges_by_default(embedders) \
        else "on" if bridges else "off"
    bridge_params = {"bridges": mode}
    if bridges:
        bridge_params.update(bridge_out=bridges["out"], bridge_in=bridges["in"],
                             bridge_list_depth=bridges["list_depth"])
    return {"blend_depth": blend.get("depth", 0), "blend_iterations": blend.get("iterations", 1),
            "blend_power": blend.get("power", 1.0),
            "allocation": "global" if allocation else "per_posting",
            "search_depth": allocation["depth"] if allocation else None, **bridge_params}


def check_ranges(params: dict) -> None:
    """Raise :class:`ParameterError` for the first parameter outside its range."""
    at_least = {"k": 1, "folds": 2, "blend_iterations": 1, "bridge_out": 0, "bridge_in": 0,
                "bridge_list_depth": 1}
    for name, smallest in at_least.items():
        if params[name] < smallest:
            raise ParameterError(name, f"must be at least {smallest}")
    if params["chunk_size"] is not None and params["chunk_size"] < 1:
        raise ParameterError("chunk_size", "must be at least 1 (or None: all at once)")
    if params["stack"] and params["folds"] < 3:
        # Its nested cross-validation trains first-stage models outside two folds at a time.
        raise ParameterError("folds", "must be at least 3 with the second stage (or turn it "
                                      "off: --no-stack, stack=False)")
    if not 0 < params["negative_rate"] <= 1:
        raise ParameterError("negative_rate", "must be in (0, 1]")
    if not 0 <= params["view_dropout"] < 1:
        raise ParameterError("view_dropout", "must be in [0, 1) (0: off)")
    if not 0 <= params["filter_threshold"] < 1:
        raise ParameterError("filter_threshold", "must be in [0, 1) (0: no filter)")
    if params["filter_max_pairs"] is not None and params["filter_max_pairs"] < 1:
        raise ParameterError("filter_max_pairs", "must be at least 1 (or None: no bound)")
    if params["backend"] not in BACKENDS:
        raise ParameterError("backend", f"must be one of {', '.join(BACKENDS)}")
    if params["symmetrise"] not in SYMMETRISATIONS:
        raise ParameterError("symmetrise", f"must be one of {', '.join(SYMMETRISATIONS)}")
    if params["search"] not in SEARCH_METHODS:
        raise ParameterError("search", f"must be one of {', '.join(SEARCH_METHODS)}")
    if params["allocation"] not in ALLOCATIONS:
        raise ParameterError("allocation", f"must be one of {', '.join(ALLOCATIONS)}")
    if params["search_depth"] is not None and params["search_depth"] < params["k"]:
        raise ParameterError("search_depth", "must be at least k (default: 2·k)")
    if params["bridges"] not in BRIDGE_MODES:
        raise ParameterError("bridges", f"must be one of {', '.join(BRIDGE_MODES)}")
    if params["adapt"] not in ADAPT_MODES:
        raise ParameterError("adapt", f"must be one of {', '.join(ADAPT_MODES)}")
