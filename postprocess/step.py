"""What every post-processing step shares, scikit-learn style: ``__init__`` parameters stay as
given (None means "tune it"), ``fit`` stores what it learned in attributes with a trailing
underscore (a parameter given explicitly is simply copied), and ``apply`` reads only those. The
fitted values are plain data (:meth:`Step.fitted_params`, :meth:`Step.from_fitted`), saved in the
model's ``schema.json``."""
from __future__ import annotations

from typing import Any, ClassVar


class Step:
    name: ClassVar[str]
    # The fitted values, in the order ``fitted_params`` lists them; each lives in the attribute of
    # its name plus "_". The value is what ``from_fitted`` restores when the saved data lacks it.
    fitted: ClassVar[dict[str, Any]] = {}

    def fitted_params(self) -> dict:
        """The fitted values as plain data: what :meth:`from_fitted` restores."""
        return {key: getattr(self, f"{key}_") for key in self.fitted}

    @classmethod
    def from_fitted(cls, **values) -> Step:
        """A fitted step from :meth:`fitted_params`. Other keys are passed to ``__init__`` (an
        unknown one is a ``TypeError``)."""
        fitted = {key: values.pop(key, default) for key, default in cls.fitted.items()}
        step = cls(**values)
        for key, value in fitted.items():
            setattr(step, f"{key}_", value)
        return step

    def _choices(self, key: str, grid) -> list:
        """The values of parameter ``key`` that ``fit`` tries: the given one, else ``grid``'s."""
        given = getattr(self, key)
        if given is not None:
            return [given]
        if grid is None:
            raise ValueError(f"{type(self).__name__} has no grid to tune {key!r} on")
        return list(grid)

    def __getattr__(self, attribute: str):
        # Only reached when normal look-up fails: name the usual cause of a missing fitted value.
        if attribute.endswith("_") and attribute[:-1] in type(self).fitted:
            raise AttributeError(f"{type(self).__name__} is not fitted: call fit(), or build it "
                                 f"with {type(self).__name__}.from_fitted(...)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")
