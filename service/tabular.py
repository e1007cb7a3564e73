"""The design stage: a table-form request into matrices, as R's ``lm(formula, data)`` builds them.

::

    TableRequest --(formula read, design built, missing values failed or dropped)--> FitRequest

The formula (or the ``target`` shorthand for ``target ~ .``) is read against the training
table's columns by ``service.formulas``; ``service.formula_design`` builds the design on the
rows complete in every column the fit uses. With ``"missing": "fail"`` a missing value in
such a column is a 422 naming the table, the column and the row; with ``"drop"`` those rows
are left out (``n_dropped``), and a test row with a missing value gets no prediction (R's
``na.exclude``). A request in the matrix form passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from service.errors import InvalidInput, did_you_mean, excerpt
from service.formula_design import build_design, first_missing, rebuild_design, used_columns
from service.formulas import Formula, read_formula
from service.parse.fields import check_statistics_size
from service.parse.rules import dropped_warning
from service.request import FitRequest, Model, TableRequest
from service.settings import Limits
from service.table import Table

DROP_HINT = 'send "missing": "drop" to leave such rows out (as R\'s na.exclude)'


@dataclass(frozen=True)
class TableDesign:
    """A table-form request's design: the request in matrices, its formula, and the training rows it uses."""

    request: FitRequest
    formula: Formula
    rows: np.ndarray  # mask of the rows of train in the design (complete in every column the fit uses)
    weight: str | None


def design_request(request: FitRequest | TableRequest, limits: Limits) -> FitRequest:
    """Turn a table-form request into the matrices of its design; a matrix-form one is returned as it is."""
    if isinstance(request, FitRequest):
        return request
    if request.model is not None:
        assert isinstance(request.model, Model), "a model per group is predicted by service.grouping"
        return predict_from_model(request, request.model)
    return design_table(request, limits).request


def design_table(request: TableRequest, limits: Limits) -> TableDesign:
    """Read the formula against ``train`` and build its design, and the test rows' (``.`` leaves out ``by``)."""
    train = request.train
    assert train is not None
    options = request.options
    by = request.by
    text = request.formula if request.formula is not None else shorthand(train, request.target, request.weight, by)
    if request.formula is None and not options.fit_intercept:
        text += " - 1"
    weight = check_weight_column(train, request.weight)
    formula = read_formula(
        text, train.names, weight=weight, by=by, max_length=limits.max_formula_length, max_terms=limits.max_features
    )
    if by is not None and by in used_columns(formula, weight):
        raise InvalidInput(
            f"'formula' uses the column {excerpt(by)!r}, which is the 'by' column: it is constant within each "
            "group, so each group's fit cannot use it; leave it out of the formula (and 'weight').",
            "formula",
        )
    if options.missing == "fail":
        refuse_missing(first_missing(formula, train, weight), train)
    design = build_design(formula, train, weight=weight, max_columns=limits.max_features)
    X, Y = design.matrix, design.targets
    if X.shape[1] == 0:
        field = "formula" if request.formula is not None else ("target" if request.target is not None else "train")
        raise InvalidInput(
            f"'{field}' gives the formula {excerpt(formula.expanded)!r}, which has no term but the intercept, "
            "and LinearRegression needs at least one feature; add a term (or, with 'target', leave a column "
            "that is not a target).",
            field,
        )
    if X.shape[0] * X.shape[1] > limits.max_cells:
        raise InvalidInput(
            f"The design of 'train' has {X.shape[0] * X.shape[1]} values, but at most {limits.max_cells} are "
            "allowed (setting max_cells, FITSERVE_MAX_CELLS).",
            "train",
        )
    weights = None if weight is None else check_weights(train, weight, design.rows)
    n_dropped = int(train.rows - np.count_nonzero(design.rows))
    warnings = (dropped_warning(n_dropped, "training rows"),) if n_dropped else ()
    X_test = test_rows = None
    if request.test is not None:
        X_test, test_rows = new_rows(design.state, request.test, formula, options.missing, "test")
    fitted = replace(options, fit_intercept=design.intercept)
    check_statistics_size(fitted, X.shape[1], Y.shape[1], limits)
    fit_request = FitRequest(
        X_train=X,
        y_train=Y,
        X_test=X_test,
        sample_weight=weights,
        feature_names=design.feature_names,
        target_names=design.target_names,
        single_target=Y.shape[1] == 1,
        options=fitted,
        formula=formula.expanded,
        design=design.state,
        n_dropped=n_dropped if options.missing == "drop" else None,
        test_rows=test_rows,
        warnings=warnings,
        column_terms=design.column_terms,
    )
    return TableDesign(fit_request, formula, design.rows, weight)


def predict_from_model(request: TableRequest, model: Model) -> FitRequest:
    """Rebuild a model's design for the test table, and predict it with the model's coefficients."""
    assert request.test is not None and model.design is not None
    new = rebuild_design(model.design, request.test, field="model")
    if new.feature_names != model.feature_names:
        raise InvalidInput("'model' has feature_names that are not the columns its design makes.", "model")
    if model.coef.shape[1] != len(new.feature_names):
        raise InvalidInput("'model' has a number of coefficients other than its design's columns.", "model")
    if request.options.missing == "fail" and not new.rows.all():
        row = int(np.argmax(~new.rows))
        column = next(c.name for c in request.test.columns if c.missing is not None and c.missing[row])
        refuse_missing((row, column), request.test)
    return FitRequest(
        X_test=new.matrix,
        feature_names=model.feature_names,
        target_names=model.target_names,
        single_target=model.single_target,
        options=request.options,
        model=model,
        formula=model.formula,
        design=model.design,
        test_rows=new.rows,
    )


def shorthand(train: Table, target: str | None, weight: str | None, by: str | None = None) -> str:
    """The formula that ``target`` stands for (``<target> ~ .``); without it, the last column not the weight (or by)."""
    if target is None:
        candidates = [name for name in train.names if name not in (weight, by)]
        names = [candidates[-1] if candidates else train.names[-1]]
    else:
        names = [piece.strip() for piece in target.split(",")]
        for name in names:
            if name not in train:
                what = "an empty name" if not name else f"the column {excerpt(name)!r}"
                raise InvalidInput(
                    f"'target' names {what}, but 'train' has no such column;{did_you_mean(name, train.names)} "
                    f"its columns are: {listed(train.names)}.",
                    "target",
                )
        if len(set(names)) != len(names):
            raise InvalidInput("'target' names a column twice; each target is named once.", "target")
    return " + ".join(quoted(name) for name in names) + " ~ ."


def listed(names: tuple[str, ...], limit: int = 20) -> str:
    """Column names for a message, the first ``limit`` of them."""
    shown = ", ".join(repr(excerpt(name)) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def quoted(name: str) -> str:
    """A column name as a formula writes it: backticks unless it is a plain identifier."""
    return name if name.isidentifier() else f"`{name}`"


def check_weight_column(train: Table, weight: str | None) -> str | None:
    """The weight column's name, if it names a numeric column of ``train``."""
    if weight is None:
        return None
    if weight not in train:
        raise InvalidInput(
            f"'weight' names the column {excerpt(weight)!r}, but 'train' has no such column;"
            f"{did_you_mean(weight, train.names)} its columns are: {listed(train.names)}.",
            "weight",
        )
    train[weight].check()
    if train[weight].kind != "numeric":
        raise InvalidInput(f"'weight' names the column {excerpt(weight)!r}, which holds text, not numbers.", "weight")
    return weight


def check_weights(train: Table, weight: str, rows: np.ndarray) -> np.ndarray:
    """The weights of the rows used: each >= 0, not all zero."""
    values = train[weight].values
    negative = (values < 0) & rows
    if negative.any():
        row = int(np.argmax(negative))
        raise InvalidInput(
            f"'train' has {values[row]:.6g} in column {excerpt(weight)!r}, the weight column, at {train.where(row)}; "
            "weights must be >= 0.",
            "train",
        )
    used = np.ascontiguousarray(values[rows])
    if not used.any():
        raise InvalidInput(f"'train' column {excerpt(weight)!r}, the weight, is all zeros in the rows used.", "train")
    return used


def new_rows(state: dict[str, object], table: Table, formula: Formula, missing: str, role: str) -> tuple[np.ndarray, np.ndarray]:
    """The design columns of the test rows; with "fail", a missing value in a column they use is a 422."""
    if missing == "fail":
        found = None
        for name in formula.term_columns:
            column = table[name] if name in table else None
            if column is not None and column.has_missing and column.missing is not None:
                row = int(np.argmax(column.missing))
                if found is None or row < found[0]:
                    found = (row, name)
        refuse_missing(found, table)
    new = rebuild_design(state, table, field=role)
    return new.matrix, new.rows


def refuse_missing(found: tuple[int, str] | None, table: Table) -> None:
    """The 422 for a missing value in a column the fit uses, under "missing": "fail"."""
    if found is None:
        return
    row, column = found
    raise InvalidInput(
        f"'{table.role}' has a missing value in column {excerpt(column)!r} at {table.where(row)}, "
        f"a column the fit uses; {DROP_HINT}.",
        table.role,
    )

