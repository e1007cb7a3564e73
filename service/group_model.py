"""A whole answer of one fit per group sent back as ``model``: each test row predicted by its group's model.

::

    TableRequest(model=GroupModel) --(test rows split by the by column)--> GroupRequest

The test table must carry the by column; a group the model does not have is a 422 naming
``test``. When every group's ``design`` is the same (a formula of numeric terms), the test
rows' design is rebuilt once for the whole table; otherwise each group's rows are rebuilt
with that group's own design (its own levels and transforms).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from service.errors import InvalidInput
from service.group_keys import in_group, take, test_groups, test_split
from service.request import FitRequest, GroupModel, GroupRequest, TableRequest
from service.tabular import predict_from_model


def predict_groups(request: TableRequest, model: GroupModel) -> GroupRequest:
    """Predict the test table with each row's own group's model."""
    test = request.test
    assert test is not None
    first = model.models[0]
    for i, member in enumerate(model.models):
        if member.coef.shape[0] != first.coef.shape[0] or member.single_target != first.single_target:
            raise InvalidInput(
                f"'model.groups' item {i} has another number of targets than item 0; the groups of one answer "
                "share their targets.",
                "model",
            )
    codes = test_groups(test, model.by, model.groups, request.options.missing, source="model")
    count = len(model.groups)
    if all(member.design == first.design for member in model.models):
        requests, index = shared_design(request, model, codes)
    else:
        requests, index = [], []
        positions = test_split(codes, np.ones(test.rows, dtype=bool), count)
        assert positions is not None
        for value, member, rows in zip(model.groups, model.models, positions, strict=True):
            with in_group(value, model.by):
                own = predict_from_model(replace(request, test=take(test, rows), model=member), member)
            assert own.test_rows is not None
            index.append(rows[own.test_rows])
            requests.append(replace(own, X_test=own.X_test if len(index[-1]) else None, test_rows=None))
    return GroupRequest(
        model.by, model.groups, tuple(requests), tuple(index), test.rows, options=request.options
    )


def shared_design(
    request: TableRequest, model: GroupModel, codes: np.ndarray
) -> tuple[list[FitRequest], list[np.ndarray]]:
    """The test rows' design built once (every group has the same design), then split by group."""
    first = model.models[0]
    whole = predict_from_model(replace(request, model=first), first)
    assert whole.X_test is not None and whole.test_rows is not None
    positions = test_split(codes, whole.test_rows, len(model.groups))
    assert positions is not None
    in_test = np.cumsum(whole.test_rows) - 1
    requests = []
    for i, (member, rows) in enumerate(zip(model.models, positions, strict=True)):
        if member.feature_names != first.feature_names or member.coef.shape[1] != first.coef.shape[1]:
            raise InvalidInput(
                f"'model.groups' item {i} has feature_names or coefficients that are not the columns of its design.",
                "model",
            )
        requests.append(
            replace(
                whole,
                X_test=whole.X_test[in_test[rows]] if len(rows) else None,
                feature_names=member.feature_names,
                target_names=member.target_names,
                model=member,
                formula=member.formula,
                design=member.design,
                test_rows=None,
            )
        )
    return requests, positions
