"""The rules of the table form: a training table, a formula or a target, a test table.

The fields are checked in the order of the contract's "Tables and formulas" table (``train``,
``formula``, ``target``, ``test``, ``weight``, ``by``), then the options shared with the matrix form.
What a formula says is read by the design stage (``service.tabular``), against the columns
the table has; here a formula is only a string.
"""

from __future__ import annotations

from service.errors import InvalidInput, describe
from service.parse.fields import (
    Fields,
    check_model_alone,
    check_prediction_rows,
    prediction_rows_given,
    read_options,
)
from service.parse.model import is_group_model, read_group_model, read_model
from service.request import Endpoint, GroupModel, Model, TableRequest
from service.settings import Limits
from service.table import Table


def build_table_request(fields: Fields, endpoint: Endpoint, present: set[str], limits: Limits) -> TableRequest:
    """Check a request in the table form."""
    if "model" in present:
        return build_model_request(fields, endpoint, present, limits)
    if "train" not in present:
        alternative = " (or 'model', to predict from an earlier fit)" if endpoint == "predict" else ""
        raise InvalidInput(f"'train' is required{alternative}. Got a body without it.", "train")
    train = fields.table("train")
    cells = train.rows * len(train)
    if cells > limits.max_cells:
        raise InvalidInput(
            f"'train' has {cells} cells, but at most {limits.max_cells} are allowed "
            "(setting max_cells, FITSERVE_MAX_CELLS).",
            "train",
        )
    formula = text(fields, present, "formula")
    target = text(fields, present, "target")
    if formula is not None and target is not None:
        raise InvalidInput(
            "'target' is shorthand for the formula '<target> ~ .', so it cannot come with 'formula'; "
            "give one of them.",
            "target",
        )
    test = read_test(fields, endpoint, present, limits)
    weight = text(fields, present, "weight")
    by = text(fields, present, "by")
    if formula is not None and "fit_intercept" in present:
        raise InvalidInput(
            "'fit_intercept' cannot come with 'formula': the formula says whether there is an intercept "
            "('- 1' or '+ 0' removes it).",
            "fit_intercept",
        )
    options = read_options(fields, present, has_test=test is not None, test="test")
    return TableRequest(train, test, formula, target, weight, options, by=by)


def build_model_request(fields: Fields, endpoint: Endpoint, present: set[str], limits: Limits) -> TableRequest:
    """Check a request that predicts a test table from an earlier formula fit."""
    check_model_alone(endpoint, present)
    value = fields.value("model")
    model: Model | GroupModel
    if is_group_model(value):
        model = read_group_model(value, limits.max_groups)
    else:
        model = read_model(value)
        if model.design is None:
            raise InvalidInput(
                "'model' has no 'design', so it cannot predict a 'test' table: it was not fitted from a table "
                "and a formula. Send the rows to predict as 'X_test'.",
                "model",
            )
    test = read_test(fields, endpoint, present, limits)
    options = read_options(fields, present, has_test=True, test="test")
    return TableRequest(None, test, options=options, model=model)


def text(fields: Fields, present: set[str], name: str) -> str | None:
    """A string field, if present."""
    if name not in present:
        return None
    value = fields.value(name)
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' must be a string. Got {describe(value)} instead.", name)
    return value


def read_test(fields: Fields, endpoint: Endpoint, present: set[str], limits: Limits) -> Table | None:
    """The test table, required on /predict."""
    if not prediction_rows_given(endpoint, present, "test"):
        return None
    test = fields.table("test")
    check_prediction_rows(test.rows, "test", limits)
    return test
