"""How the rules read a body's fields, whatever its type, and the options every form shares."""

from __future__ import annotations

import numpy as np

from service.errors import InvalidInput, describe
from service.parse.values import Matrix
from service.request import COV_TYPES, INTERVALS, MISSING, Options
from service.settings import Limits
from service.table import Table


class Fields:
    """Read access to the decoded fields of a body, by name."""

    def names(self) -> list[str]:
        """The field names, in the body's order."""
        raise NotImplementedError

    def matrix(self, name: str) -> Matrix:
        """The field as a matrix."""
        raise NotImplementedError

    def vector(self, name: str) -> np.ndarray:
        """The field as a flat vector of numbers."""
        raise NotImplementedError

    def table(self, name: str) -> Table:
        """The field as a typed table."""
        raise NotImplementedError

    def value(self, name: str) -> object:
        """The field as plain Python data (for options and small objects)."""
        raise NotImplementedError


def read_options(fields: Fields, present: set[str], has_test: bool, test: str = "X_test") -> Options:
    """Read the options, each with its default when absent."""
    flags: dict[str, bool] = {}
    for name in ("fit_intercept", "positive", "statistics"):
        if name in present:
            value = fields.value(name)
            if value is not True and value is not False:
                raise InvalidInput(f"'{name}' must be true or false. Got {describe(value)} instead.", name)
            flags[name] = value
    interval = "none"
    if "interval" in present:
        value = fields.value("interval")
        if value not in INTERVALS or not isinstance(value, str):
            raise InvalidInput(
                f"'interval' must be one of \"none\", \"confidence\", \"prediction\". Got {describe(value)} instead.",
                "interval",
            )
        interval = value
        if interval != "none" and not has_test:
            raise InvalidInput(
                f"'interval' is {interval!r}, but there is no {test!r} to give intervals for.", "interval"
            )
    level = 0.95
    if "level" in present:
        value = fields.value("level")
        if type(value) not in (int, float) or not 0 < value < 1:  # type: ignore[operator]
            raise InvalidInput(f"'level' must be a number between 0 and 1 (exclusive). Got {describe(value)} instead.", "level")
        level = float(value)  # type: ignore[arg-type]
    missing = "fail"
    if "missing" in present:
        value = fields.value("missing")
        if value not in MISSING or not isinstance(value, str):
            raise InvalidInput(f"'missing' must be \"fail\" or \"drop\". Got {describe(value)} instead.", "missing")
        missing = value
    cov_type = "nonrobust"
    if "cov_type" in present:
        value = fields.value("cov_type")
        if value not in COV_TYPES or not isinstance(value, str):
            choices = ", ".join(f'"{name}"' for name in COV_TYPES)
            raise InvalidInput(f"'cov_type' must be one of {choices}. Got {describe(value)} instead.", "cov_type")
        cov_type = value
    if "anova" in present:
        value = fields.value("anova")
        if value is not True and value is not False:
            raise InvalidInput(f"'anova' must be true or false. Got {describe(value)} instead.", "anova")
        flags["anova"] = value
    return Options(
        fit_intercept=flags.get("fit_intercept", True),
        positive=flags.get("positive", False),
        statistics=flags.get("statistics", False),
        interval=interval,
        level=level,
        missing=missing,
        cov_type=cov_type,
        anova=flags.get("anova", False),
    )


def check_statistics_size(options: Options, features: int, targets: int, limits: Limits) -> None:
    """Refuse statistics (intervals, anova) past the size limit: their cost grows with targets x terms."""
    if not options.statistics and options.interval == "none" and not options.anova:
        return
    terms = targets * (features + int(options.fit_intercept))
    if terms > limits.max_statistics_terms:
        field = "statistics" if options.statistics else "interval" if options.interval != "none" else "anova"
        raise InvalidInput(
            f"'{field}' asks for {terms} coefficient statistics ({targets} targets x "
            f"{features + int(options.fit_intercept)} terms), but at most {limits.max_statistics_terms} "
            "are allowed (setting max_statistics_terms, FITSERVE_MAX_STATISTICS_TERMS).",
            field,
        )


#: Fields that need the training data, in either form: with a ``model``, each is a 422 naming ``model``.
TRAINING_ONLY = ("X_train", "y_train", "sample_weight", "train", "formula", "target", "weight", "by", "statistics", "interval", "cov_type", "anova")


def check_model_alone(endpoint: str, present: set[str]) -> None:
    """Refuse a ``model`` on /fit, or with any field that needs the training data."""
    if endpoint != "predict":
        raise InvalidInput("'model' is only taken by /predict; /fit always fits training data.", "model")
    for name in TRAINING_ONLY:
        if name in present:
            raise InvalidInput(
                f"'model' cannot come with {name!r}: a model predicts without training data "
                "(statistics and intervals need the training data, so fit again for them).",
                "model",
            )


def prediction_rows_given(endpoint: str, present: set[str], field: str) -> bool:
    """Whether the rows to predict (``X_test`` or ``test``) are given; /predict requires them."""
    if field in present:
        return True
    if endpoint == "predict":
        raise InvalidInput(
            f"{field!r} is required on /predict (use /fit to fit without predicting). Got a body without it.",
            field,
        )
    return False


def check_prediction_rows(rows: int, field: str, limits: Limits) -> None:
    """Refuse more rows to predict than the limit."""
    if rows > limits.max_prediction_rows:
        raise InvalidInput(
            f"{field!r} has {rows} rows, but at most {limits.max_prediction_rows} are allowed "
            "(setting max_prediction_rows, FITSERVE_MAX_PREDICTION_ROWS).",
            field,
        )
