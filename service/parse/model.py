"""An earlier answer sent back as ``model``: its coefficients, intercepts and names, checked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from service.errors import InvalidInput, describe
from service.parse.values import plural, read_matrix, read_vector
from service.request import Model


def read_model(value: object) -> Model:
    """Read a model: ``coef``, ``intercept``, optional ``feature_names`` and ``target_names``."""
    if not isinstance(value, dict):
        raise InvalidInput(f"'model' must be an object with 'coef' and 'intercept'. Got {describe(value)} instead.", "model")
    for key in ("coef", "intercept"):
        if key not in value:
            raise InvalidInput(f"'model' must have {key!r} (an earlier answer has it). Got an object without it.", "model")
    coef = value["coef"]
    single = isinstance(coef, list) and bool(coef) and not isinstance(coef[0], (list, dict))
    with model_errors("coef"):
        matrix = read_matrix(coef, "coef")
    if matrix.names is not None:
        raise InvalidInput(
            "'model.coef' must be a list of numbers, or a list of lists with several targets. "
            "Got an object instead.",
            "model",
        )
    coefs = matrix.values.T if single else matrix.values  # (k, p)
    intercept = value["intercept"]
    with model_errors("intercept"):
        if single and isinstance(intercept, list):
            raise InvalidInput("'intercept' must be a number with one target. Got a list instead.", "intercept")
        intercepts = read_vector([intercept] if single else intercept, "intercept")
    if intercepts.size != coefs.shape[0]:
        raise InvalidInput(
            f"'model.intercept' has {plural(intercepts.size, 'value')}, but 'model.coef' has "
            f"{plural(coefs.shape[0], 'target')}.",
            "model",
        )
    feature_names = read_names(value, "feature_names", coefs.shape[1])
    target_names = read_names(value, "target_names", coefs.shape[0])
    formula = value.get("formula")
    if formula is not None and not isinstance(formula, str):
        raise InvalidInput(f"'model.formula' must be a string. Got {describe(formula)} instead.", "model")
    design = value.get("design")
    if design is not None and not isinstance(design, dict):
        raise InvalidInput(f"'model.design' must be an object. Got {describe(design)} instead.", "model")
    return Model(coefs, intercepts, feature_names, target_names, single, formula, design)


@contextmanager
def model_errors(key: str) -> Iterator[None]:
    """Let errors in part of a model name the field ``model`` (and the part, in the detail)."""
    try:
        yield
    except InvalidInput as exc:
        raise InvalidInput(exc.detail.replace(f"'{key}'", f"'model.{key}'", 1), "model") from None


def read_names(model: dict[str, object], key: str, count: int) -> tuple[str, ...] | None:
    """Read optional names of a model: unique strings, one per coefficient or target."""
    names = model.get(key)
    if names is None:
        return None
    if (
        not isinstance(names, list)
        or len(names) != count
        or not all(isinstance(n, str) for n in names)
        or len(set(names)) != len(names)
    ):
        raise InvalidInput(
            f"'model.{key}' must be a list of {count} distinct strings, one per "
            f"{'coefficient' if key == 'feature_names' else 'target'}. Got {describe(names)} instead.",
            "model",
        )
    return tuple(names)
