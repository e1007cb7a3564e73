"""A ``FitResult`` into the bytes of an answer: JSON, or CSV for curl users."""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson

from service.request import FitResult, GroupResult, Intervals

#: A newline, for terminals. NaN, which marks a test row left out for a missing value, is written null.
JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE


def render_json(result: FitResult) -> bytes:
    """Render the JSON answer of the contract."""
    return orjson.dumps(fit_answer(result), option=JSON_OPTIONS)


def fit_answer(result: FitResult) -> dict[str, object]:
    """The JSON answer of one fit, as plain data (numpy arrays for orjson)."""
    single = result.single_target
    answer: dict[str, object] = {
        "coef": result.coef[0] if single else result.coef,
        "intercept": float(result.intercept[0]) if single else result.intercept,
    }
    if result.predictions is not None:
        answer["predictions"] = result.predictions[:, 0] if single else result.predictions
    if result.feature_names is not None:
        answer["feature_names"] = list(result.feature_names)
    if result.target_names is not None:
        answer["target_names"] = list(result.target_names)
    if result.formula is not None:
        answer["formula"] = result.formula
        answer["design"] = result.design
    answer["n_samples"] = result.n_samples
    answer["n_features"] = result.n_features
    answer["n_targets"] = result.n_targets
    answer["rank"] = result.rank
    answer["warnings"] = result.warnings
    if result.n_dropped is not None:
        answer["n_dropped"] = result.n_dropped
    if result.statistics is not None:
        answer["statistics"] = result.statistics[0] if single else result.statistics
    if result.anova is not None:
        answer["anova"] = result.anova[0] if single else result.anova
    if result.intervals is not None:
        answer["intervals"] = interval_answer(result.intervals, single)
    return answer


def target_labels(result: FitResult) -> list[str]:
    """Name each target's CSV column: its name, else ``y`` or ``y0``, ``y1``, ..."""
    if result.target_names is not None:
        return list(result.target_names)
    if result.n_targets == 1:
        return ["y"]
    return [f"y{j}" for j in range(result.n_targets)]


def render_csv(result: FitResult) -> bytes:
    """Render predictions as CSV: one column per target, then interval bounds if asked."""
    return render_table(target_labels(result), result.predictions, result.intervals)


def interval_answer(intervals: Intervals, single: bool) -> dict[str, object]:
    """The answer's ``intervals``: bounds as one list when there is a single target, else a column per target."""
    return {
        "lower": intervals.lower[:, 0] if single else intervals.lower,
        "upper": intervals.upper[:, 0] if single else intervals.upper,
        "level": intervals.level,
        "kind": intervals.kind,
    }


def render_table(labels: list[str], predictions: np.ndarray | None, intervals: Intervals | None) -> bytes:
    """Predictions as CSV: one column per target, then interval bounds if asked."""
    header = list(labels)
    columns: list[np.ndarray] = []
    if predictions is not None:
        columns = [predictions[:, j] for j in range(len(labels))]
    if intervals is not None:
        for j, label in enumerate(labels):
            header += [f"lower_{label}", f"upper_{label}"]
            columns += [intervals.lower[:, j], intervals.upper[:, j]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    if columns:
        table = np.column_stack(columns).tolist()
        # A test row left out for a missing value has empty cells, as R writes NA for it.
        writer.writerows([["" if v != v else repr(v) for v in row] for row in table])
    return out.getvalue().encode("utf-8")


def render_groups_json(result: GroupResult) -> bytes:
    """The answer of one fit per group: ``by``, ``groups`` (each a whole fit answer without predictions), predictions."""
    groups = []
    for value, fitted in zip(result.groups, result.results, strict=True):
        entry: dict[str, object] = {"group": value, **fit_answer(fitted)}
        entry.pop("predictions", None)
        entry.pop("intervals", None)
        groups.append(entry)
    answer: dict[str, object] = {"by": result.by, "groups": groups}
    single = result.single_target
    if result.predictions is not None:
        answer["predictions"] = result.predictions[:, 0] if single else result.predictions
    if result.intervals is not None:
        answer["intervals"] = interval_answer(result.intervals, single)
    if result.n_dropped is not None:
        answer["n_dropped"] = result.n_dropped
    return orjson.dumps(answer, option=JSON_OPTIONS)


def render_groups_csv(result: GroupResult) -> bytes:
    """The predictions of one fit per group as CSV: one row per test row, as for one fit."""
    return render_table(target_labels(result.results[0]), result.predictions, result.intervals)
