"""An earlier answer sent back as ``model``: its coefficients, intercepts and names, checked.

An answer of one fit per group (``by``) comes back whole: ``read_group_model`` reads its
``by`` column, and each entry of ``groups`` as a model of its own, as strictly as one answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from service.design_functions import sorted_levels
from service.errors import InvalidInput, describe, excerpt
from service.parse.values import plural, read_matrix, read_vector
from service.request import GroupModel, Model


def read_model(value: object) -> Model:
    """Read a model: ``coef``, ``intercept``, optional ``feature_names`` and ``target_names``."""
    if not isinstance(value, dict):
        raise InvalidInput(f"'model' must be an object with 'coef' and 'intercept'. Got {describe(value)} instead.", "model")
    if "coef" not in value and "groups" in value:
        raise InvalidInput(
            "'model' is an answer of one fit per group ('by', 'groups'): it predicts a 'test' table that has "
            "the 'by' column, not 'X_test'.",
            "model",
        )
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


def is_group_model(value: object) -> bool:
    """Tell whether a ``model`` is an answer of one fit per group (it has ``by`` or ``groups``, no ``coef``)."""
    return isinstance(value, dict) and "coef" not in value and ("by" in value or "groups" in value)


def read_group_model(value: object, max_groups: int) -> GroupModel:
    """Read an answer of one fit per group: ``by``, and ``groups`` in sorted order, each a formula fit's model."""
    assert isinstance(value, dict)
    by, groups = value.get("by"), value.get("groups")
    if not isinstance(by, str):
        raise InvalidInput(f"'model.by' must be the name of the by column (a string). Got {describe(by)} instead.", "model")
    if not isinstance(groups, list) or not groups:
        raise InvalidInput(f"'model.groups' must be a non-empty list of fits. Got {describe(groups)} instead.", "model")
    if len(groups) > max_groups:
        raise InvalidInput(
            f"'model.groups' has {len(groups)} groups, but at most {max_groups} are allowed "
            "(setting max_groups, FITSERVE_MAX_GROUPS).",
            "model",
        )
    values: list[str | bool | int] = []
    models: list[Model] = []
    for i, entry in enumerate(groups):
        if not isinstance(entry, dict) or "group" not in entry:
            raise InvalidInput(
                f"'model.groups' item {i} must be a fit with its 'group'. Got {describe(entry)} instead.", "model"
            )
        values.append(group_value(entry["group"], i))
        try:
            model = read_model(entry)
        except InvalidInput as exc:
            raise InvalidInput(f"In 'model.groups' item {i}: {exc.detail}", "model") from None
        if model.design is None:
            raise InvalidInput(f"'model.groups' item {i} has no 'design': it was not fitted from a table.", "model")
        models.append(model)
    numeric = [type(v) is int for v in values]
    if any(numeric) and not all(numeric):
        raise InvalidInput("'model.groups' mixes numbers and text as group values; a by column holds one kind.", "model")
    ordered = [float(v) for v in values] if all(numeric) else values
    if sorted_levels(np.asarray(ordered, dtype=np.float64 if all(numeric) else object)) != ordered:
        raise InvalidInput("'model.groups' are not in sorted order of distinct group values, as an answer gives them.", "model")
    return GroupModel(by, tuple(values), tuple(models))


def group_value(value: object, index: int) -> str | bool | int:
    """A group's value: text, a boolean, or an integer (a JSON number without a fraction)."""
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)) and math.isfinite(value) and float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    raise InvalidInput(
        f"'model.groups' item {index} has the group {excerpt(describe(value))}, which is not text or an integer.", "model"
    )
