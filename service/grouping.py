"""One fit per group (``by``): the design stage that splits a table-form request into one request per group.

::

    TableRequest(by=...) --(by column read, groups found, rows split)--> GroupRequest

The formula is read once, and the design is built once on the whole table (which checks every
cell, and names its row in the table). Where the design's columns do not depend on the rows
they are built from (numeric terms, and categorical columns as main effects: see
``service.group_levels``), each group's rows are a slice of that one design, sorted by group
with numpy, and its columns those of the levels it has: formulaic takes milliseconds per
design, which 20,000 groups cannot afford. Otherwise (``C``, ``poly``, ``center``, ``scale``,
a categorical column in an interaction) each group's design is built on its own rows, as R's
``lm`` on the group's subset builds it. Either way a level absent from a group is not a column
of its fit, and each group's ``design`` is its own, so its entry in the answer works as a
``model`` on its own.

The groups, and each row's, come from ``service.group_keys``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from service.design_functions import level_label
from service.errors import InvalidInput, excerpt
from service.formula_design import build_design
from service.formulas import Formula
from service.group_keys import (
    Groups,
    boundaries,
    group_prefix,
    in_group,
    read_groups,
    take,
    test_groups,
    test_split,
)
from service.group_levels import check_test_levels, group_levels, main_effect_columns
from service.parse.rules import dropped_warning
from service.request import FitRequest, GroupRequest, Options, TableRequest
from service.settings import Limits
from service.tabular import check_weights, design_table, new_rows


def design_groups(request: TableRequest, limits: Limits) -> GroupRequest:
    """Split a table-form request with ``by`` into one fit request per group."""
    by, train = request.by, request.train
    assert by is not None and train is not None
    whole = design_table(request, limits)
    groups = read_groups(train, by, request.options.missing, limits)
    test_codes = (
        None
        if request.test is None
        else test_groups(request.test, by, groups.values, request.options.missing)
    )
    categorical = main_effect_columns(whole.formula, train)
    split = split_own if categorical is None else split_whole
    requests, test_index = split(
        request, whole.request, whole.formula, whole.rows, whole.weight, groups, test_codes, limits
    )
    dropped = int(np.count_nonzero(groups.codes < 0))
    return GroupRequest(
        by=by,
        groups=groups.values,
        requests=tuple(requests),
        test_index=test_index,
        test_rows=None if request.test is None else request.test.rows,
        # Only when some rows had no group: the answer keeps the contract's shape otherwise.
        n_dropped=dropped or None,
        options=request.options,
    )


def group_options(options: Options, has_test: bool) -> Options:
    """A group's options: intervals only where it has test rows, with the statistics every group then gives."""
    if options.interval == "none" or has_test:
        return options
    return replace(options, statistics=True, interval="none")


def split_whole(
    request: TableRequest,
    whole: FitRequest,
    formula: Formula,
    rows: np.ndarray,
    weight: str | None,
    groups: Groups,
    test_codes: np.ndarray | None,
    limits: Limits,
) -> tuple[list[FitRequest], tuple[np.ndarray, ...] | None]:
    """Each group's rows as a slice of the one design built on the whole table (its levels' columns only)."""
    X, Y, w = whole.X_train, whole.y_train, whole.sample_weight
    assert X is not None and Y is not None and request.train is not None
    count = len(groups.values)
    codes = groups.codes[rows]
    table_rows = np.flatnonzero(rows)
    if not (codes >= 0).all():  # rows without a group ("missing": "drop")
        keep = codes >= 0
        X, Y, codes, table_rows = X[keep], Y[keep], codes[keep], table_rows[keep]
        w = None if w is None else w[keep]
    categorical = main_effect_columns(formula, request.train) or []
    assert whole.design is not None
    levels = (
        group_levels(categorical, request.train, table_rows, codes, count, whole.design)
        if categorical
        else None
    )
    if categorical and levels is None:
        return split_own(request, whole, formula, rows, weight, groups, test_codes, limits)
    order, starts = boundaries(codes, count)
    check_group_rows(starts, groups, request, w, order)
    if not (np.diff(order) > 0).all():
        X, Y = X[order], Y[order]
        w = None if w is None else w[order]
    dropped = np.bincount(groups.codes[~rows & (groups.codes >= 0)], minlength=count)
    complete = None
    X_test = whole.X_test
    if whole.test_rows is not None:
        complete = whole.test_rows
    positions = test_split(test_codes, complete, count)
    if levels is not None and request.test is not None and test_codes is not None and complete is not None:
        check_test_levels(levels, request.test, test_codes, complete, groups.values)
    # The rows of X_test (complete test rows only) of each test table row.
    in_test = None if complete is None else np.cumsum(complete) - 1
    requests = []
    drop = request.options.missing == "drop"
    for g in range(count):
        start, stop = starts[g], starts[g + 1]
        test_g = (
            None if positions is None or X_test is None or in_test is None else X_test[in_test[positions[g]]]
        )
        has_test = test_g is not None and len(test_g) > 0
        X_g, names, state = X[start:stop], whole.feature_names, whole.design
        if levels is not None:
            columns, names, state = levels.columns(g)
            if not len(columns):
                raise InvalidInput(
                    f"{group_prefix(groups.values[g], request.by)}the formula has no column in this group (its "
                    "categorical terms have one level here), and LinearRegression needs at least one feature.",
                    "train",
                )
            X_g = X_g[:, columns]
            test_g = None if test_g is None else test_g[:, columns]
        requests.append(
            replace(
                whole,
                X_train=X_g,
                feature_names=names,
                design=state,
                y_train=Y[start:stop],
                sample_weight=None if w is None else w[start:stop],
                X_test=test_g if has_test else None,
                options=group_options(whole.options, has_test),
                n_dropped=int(dropped[g]) if drop else None,
                test_rows=None,
                warnings=(dropped_warning(int(dropped[g]), "training rows"),) if dropped[g] else (),
            )
        )
    return requests, None if positions is None else tuple(positions)


def check_group_rows(
    starts: np.ndarray, groups: Groups, request: TableRequest, weights: np.ndarray | None, order: np.ndarray
) -> None:
    """Refuse a group with no row to fit on: all its rows missing a value, or all of weight 0."""
    empty = np.diff(starts) == 0
    if empty.any():
        g = int(np.argmax(empty))
        raise InvalidInput(
            f"'train' has no row without a missing value in the columns the fit uses in the group "
            f"{level_label(groups.values[g])!r} of 'by' ({excerpt(str(request.by))!r}), so it cannot be fitted.",
            "train",
        )
    if weights is not None:
        positive = np.add.reduceat((weights[order] > 0).astype(np.int64), starts[:-1])
        if not positive.all():
            g = int(np.argmin(positive))
            raise InvalidInput(
                f"'train' has only weights of 0 in the group {level_label(groups.values[g])!r} of 'by' "
                f"({excerpt(str(request.by))!r}): a group needs a row of positive weight to be fitted.",
                "train",
            )


def split_own(
    request: TableRequest,
    whole: FitRequest,
    formula: Formula,
    rows: np.ndarray,
    weight: str | None,
    groups: Groups,
    test_codes: np.ndarray | None,
    limits: Limits,
) -> tuple[list[FitRequest], tuple[np.ndarray, ...] | None]:
    """Each group's design built on its own rows, as R's ``lm`` on the group's subset."""
    train, test = request.train, request.test
    assert train is not None
    count = len(groups.values)
    order, starts = boundaries(groups.codes[groups.codes >= 0], count)
    table_rows = np.flatnonzero(groups.codes >= 0)[order]
    test_positions = None
    if test is not None and test_codes is not None:
        test_positions = test_split(test_codes, np.ones(test.rows, dtype=bool), count)
    requests, index = [], []
    for g in range(count):
        members = table_rows[starts[g] : starts[g + 1]]
        with in_group(groups.values[g], request.by):
            sub = take(train, members)
            design = build_design(formula, sub, weight=weight, max_columns=limits.max_features)
            if design.matrix.shape[1] == 0:
                raise InvalidInput(
                    "the formula has no column in this group (its categorical terms have one level here), "
                    "and LinearRegression needs at least one feature.",
                    "train",
                )
            weights = None if weight is None else check_weights(sub, weight, design.rows)
            X_test = test_rows = None
            if test is not None and test_positions is not None:
                X_test, complete = new_rows(
                    design.state, take(test, test_positions[g]), formula, request.options.missing, "test"
                )
                test_rows = test_positions[g][complete]
                index.append(test_rows)
        n_dropped = int(len(members) - np.count_nonzero(design.rows))
        has_test = test_rows is not None and len(test_rows) > 0
        requests.append(
            replace(
                whole,
                X_train=design.matrix,
                y_train=design.targets,
                sample_weight=weights,
                X_test=X_test if has_test else None,
                feature_names=design.feature_names,
                options=group_options(replace(whole.options, fit_intercept=design.intercept), has_test),
                design=design.state,
                n_dropped=n_dropped if request.options.missing == "drop" else None,
                test_rows=None,
                warnings=(dropped_warning(n_dropped, "training rows"),) if n_dropped else (),
            )
        )
    return requests, None if test is None else tuple(index)
