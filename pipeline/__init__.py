"""Pipeline: the stages wired into one estimator, and the model bundle it saves.

Public API: :class:`Matcher` (fit / predict / predict_pairs / submit / save / load),
:class:`ModelBundle` (the saved model's folder layout and checks), :class:`Candidates` (what the
candidate stage hands on), :class:`Matching` (a matched catalog), :class:`ParameterError`,
:func:`ablate_work_dir`, :func:`train_work_dir`, :func:`train_embedder`; :data:`DEFAULT_EMBEDDERS`,
:data:`DEFAULT_POSTPROCESS`.
"""
from .ablation import ablate_work_dir
from .bundle import ModelBundle
from .embedder_training import train_embedder
from .inference import Matching
from .matcher import Matcher, train_work_dir
from .settings import DEFAULT_EMBEDDERS, DEFAULT_POSTPROCESS, ParameterError
from .stages import Candidates

__all__ = ["Candidates", "DEFAULT_EMBEDDERS", "DEFAULT_POSTPROCESS", "Matcher", "Matching",
           "ModelBundle", "ParameterError", "ablate_work_dir", "train_embedder",
           "train_work_dir"]
