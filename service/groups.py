"""One fit per group (``by``), from request to result: a fresh ``LinearRegression`` per group.

::

    TableRequest(by=..., or a model per group) --design_groups--> GroupRequest --fit_groups--> GroupResult

Each group is fitted by ``service.fitting.fit``, as any request is, so every statistic,
warning, weight and interval works per group; a group too small for its terms is fitted
anyway, with the warnings and ``null`` statistics of any such fit. The test table's
predictions (and intervals) are put back in its row order, each row by its group's fit.
"""

from __future__ import annotations

from typing import TypeGuard

import numpy as np

from service.errors import InvalidInput
from service.fitting import fit
from service.group_keys import group_prefix
from service.group_model import predict_groups
from service.grouping import design_groups as split_groups
from service.request import FitResult, GroupModel, GroupRequest, GroupResult, Intervals, TableRequest
from service.settings import Limits


def is_group_request(request: object) -> TypeGuard[TableRequest]:
    """Tell whether a parsed request asks for one fit per group (``by``, or a model per group)."""
    return isinstance(request, TableRequest) and (
        request.by is not None or isinstance(request.model, GroupModel)
    )


def design_groups(request: TableRequest, limits: Limits) -> GroupRequest:
    """One request per group: from ``train`` and ``by``, or from a model per group and ``test``."""
    if isinstance(request.model, GroupModel):
        return predict_groups(request, request.model)
    return split_groups(request, limits)


def fit_groups(request: GroupRequest) -> GroupResult:
    """Fit every group, and place each test row's prediction (and interval) at its row."""
    results: list[FitResult] = []
    for value, group in zip(request.groups, request.requests, strict=True):
        try:
            results.append(fit(group))
        except InvalidInput as error:
            raise InvalidInput(group_prefix(value, request.by) + error.detail, error.field) from None
    first = results[0]
    predictions = intervals = None
    if request.test_index is not None and request.test_rows is not None:
        shape = (request.test_rows, first.n_targets)
        predictions = np.full(shape, np.nan)
        for rows, result in zip(request.test_index, results, strict=True):
            if result.predictions is not None:
                predictions[rows] = result.predictions
        # Asked even when no group has a test row to give one for (every row null): the key is there.
        if request.options.interval != "none":
            lower, upper = np.full(shape, np.nan), np.full(shape, np.nan)
            for rows, result in zip(request.test_index, results, strict=True):
                if result.intervals is not None:
                    lower[rows], upper[rows] = result.intervals.lower, result.intervals.upper
            intervals = Intervals(lower, upper, request.options.level, request.options.interval)
    return GroupResult(
        by=request.by,
        groups=request.groups,
        results=tuple(results),
        predictions=predictions,
        intervals=intervals,
        single_target=first.single_target,
        target_names=first.target_names,
        n_dropped=request.n_dropped,
    )


def fit_sizes(result: GroupResult) -> tuple[int | None, int, int]:
    """Sizes for the access log and metrics: training rows of all groups, the widest group, targets."""
    rows = [r.n_samples for r in result.results if r.n_samples is not None]
    return (
        sum(rows) if rows else None,
        max(r.n_features for r in result.results),
        result.results[0].n_targets,
    )
