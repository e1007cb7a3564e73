"""Pictures of a fit, as SVG or PNG bytes: no HTTP.

With one feature and one target the picture is the data itself: the training points, the
fitted line, the test predictions and, when an interval was asked, its band. Otherwise it
is R's first two diagnostic plots of ``plot.lm``: residuals against fitted values, and a
normal Q-Q plot of the standardized residuals, one row of panels per target.

The figure is drawn on a ``matplotlib.figure.Figure`` of its own with the Agg (PNG) or SVG
canvas, never through pyplot, whose global figure registry is not safe across the server's
threads. Fonts are the DejaVu fonts that matplotlib ships, so nothing is fetched. Importing
this module imports matplotlib (about half a second the first time), so the service imports
it only when a picture is asked for.

The cost stays bounded on large fits: each panel draws at most ``MAX_POINTS`` points, and
the whole figure at most about ``MAX_FIGURE_POINTS`` (an even sample past that, and the
figure says so); the standardized residuals need the leverage of every row, computed from
the small Gram matrix of the design a block of rows at a time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.stats
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from service.request import FitResult

Format = Literal["svg", "png"]
#: Points drawn per panel; past this many, an even sample of them (the figure says so).
MAX_POINTS = 2_000
#: Points drawn in the whole figure: with many targets, each panel draws fewer.
MAX_FIGURE_POINTS = 5_000
DPI = 100
#: Size in inches: the picture of one feature, and one row of diagnostic panels.
LINE_SIZE = (6.4, 4.8)
ROW_SIZE = (10.0, 4.0)
CHUNK_ROWS = 32_768
#: An eigenvalue of the (unit-scaled) Gram matrix below this fraction of the largest is a dependent direction.
RANK_TOLERANCE = 1e-12
# Colours of the picture (matplotlib's default cycle), named for what they show.
DATA, LINE, PREDICTED, REFERENCE = "#1f77b4", "#d62728", "#ff7f0e", "#7f7f7f"
# Nothing in the picture changes with the clock: the same fit draws the same bytes.
SVG_METADATA: dict[str, str | None] = {"Date": None}
PNG_METADATA: dict[str, str | None] = {"Software": None}


@dataclass(frozen=True)
class Training:
    """The training data of a fit, as the picture needs it."""

    X: np.ndarray  # (n, p)
    Y: np.ndarray  # (n, k)
    weights: np.ndarray | None  # (n,)
    X_test: np.ndarray | None  # (m, p)
    fit_intercept: bool


def figure_size(result: FitResult) -> tuple[int, int]:
    """The picture's size in pixels (width, height) for this fit."""
    width, height = LINE_SIZE if is_line(result) else (ROW_SIZE[0], ROW_SIZE[1] * result.n_targets)
    return round(width * DPI), round(height * DPI)


def is_line(result: FitResult) -> bool:
    """Tell whether the picture is the data and the fitted line (one feature, one target)."""
    return result.n_features == 1 and result.n_targets == 1


def draw(training: Training, result: FitResult, kind: Format) -> bytes:
    """Draw the picture of a fit as SVG or PNG bytes."""
    if is_line(result):
        figure = Figure(figsize=LINE_SIZE, dpi=DPI, layout="constrained")
        draw_line(figure, training, result)
    else:
        figure = Figure(figsize=(ROW_SIZE[0], ROW_SIZE[1] * result.n_targets), dpi=DPI, layout="constrained")
        draw_diagnostics(figure, training, result)
    FigureCanvasAgg(figure)  # the figure's own canvas: pyplot never holds it
    out = io.BytesIO()
    figure.savefig(out, format=kind, metadata=SVG_METADATA if kind == "svg" else PNG_METADATA)
    return out.getvalue()


def feature_label(result: FitResult) -> str:
    """The feature's name, or ``x0`` without names."""
    return result.feature_names[0] if result.feature_names else "x0"


def target_labels(result: FitResult) -> list[str]:
    """Each target's name, else ``y`` or ``y0``, ``y1``, ... as in the CSV answer."""
    if result.target_names is not None:
        return list(result.target_names)
    return ["y"] if result.n_targets == 1 else [f"y{j}" for j in range(result.n_targets)]


def sample(n: int, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` rows, evenly spread and in order (all when few)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.intp))


def note_thinning(figure: Figure, shown: int, total: int) -> None:
    """Say on the figure that only a sample of the points is drawn."""
    if shown < total:
        figure.text(
            0.99, 0.005, f"{shown:,} of {total:,} points drawn in each panel (an even sample)",
            ha="right", va="bottom", fontsize=8, color=REFERENCE, gid="thinned",
        )  # fmt: skip


def draw_line(figure: Figure, training: Training, result: FitResult) -> None:
    """The training points, the fitted line, the test predictions and the interval band."""
    ax = figure.add_subplot()
    ax.set_gid("panel-fit")
    x, y = training.X[:, 0], training.Y[:, 0]
    kept = sample(len(x))
    ax.plot(x[kept], y[kept], "o", ls="", ms=4, alpha=0.6, color=DATA, label="training data", gid="training")
    x_test = training.X_test[:, 0] if training.X_test is not None else np.empty(0)
    low, high = float(min(x.min(), x_test.min(initial=np.inf))), float(max(x.max(), x_test.max(initial=-np.inf)))
    ends = np.array([low, high])
    slope, intercept = float(result.coef[0, 0]), float(result.intercept[0])
    ax.plot(ends, intercept + slope * ends, color=LINE, lw=2, label="fitted line", gid="fitted-line")
    if result.predictions is not None and len(x_test):
        order = np.argsort(x_test, kind="stable")
        shown = order[sample(len(order))]
        if result.intervals is not None:
            intervals = result.intervals
            ax.fill_between(
                x_test[shown], intervals.lower[shown, 0], intervals.upper[shown, 0],
                color=PREDICTED, alpha=0.2, lw=0, gid="interval-band",
                label=f"{intervals.level:.0%} {intervals.kind} interval",
            )  # fmt: skip
            ax.vlines(
                x_test[shown], intervals.lower[shown, 0], intervals.upper[shown, 0], color=PREDICTED, lw=1, alpha=0.6
            )
        ax.plot(
            x_test[shown], result.predictions[shown, 0], "D", ls="", ms=6, color=PREDICTED,
            label="predictions", gid="predictions",
        )  # fmt: skip
    else:
        shown = np.empty(0)
    target = target_labels(result)[0]
    ax.set_xlabel(feature_label(result))
    ax.set_ylabel(target)
    sign = "-" if slope < 0 else "+"
    ax.set_title(f"{target} = {intercept:.4g} {sign} {abs(slope):.4g} {feature_label(result)}")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    note_thinning(figure, min(len(kept), MAX_POINTS), len(x))


def draw_diagnostics(figure: Figure, training: Training, result: FitResult) -> None:
    """Residuals against fitted values and a normal Q-Q plot, one row of panels per target."""
    X, Y, weights = training.X, training.Y, training.weights
    fitted = X @ result.coef.T + result.intercept
    residuals = Y - fitted
    used = np.ones(len(X), dtype=bool) if weights is None else weights > 0
    leverage, rank = hat_values(X, weights, training.fit_intercept)
    df_residual = int(used.sum()) - rank
    axes = figure.subplots(result.n_targets, 2, squeeze=False)
    budget = max(MAX_POINTS // 8, min(MAX_POINTS, MAX_FIGURE_POINTS // (2 * result.n_targets)))
    kept = sample(int(used.sum()), budget)
    rows = np.flatnonzero(used)[kept]
    for j, target in enumerate(target_labels(result)):
        left: Axes = axes[j, 0]
        right: Axes = axes[j, 1]
        left.set_gid(f"panel-residuals-{j}")
        right.set_gid(f"panel-qq-{j}")
        left.plot(fitted[rows, j], residuals[rows, j], "o", ls="", ms=3, alpha=0.5, color=DATA, gid=f"residuals-{j}")
        left.axhline(0.0, color=REFERENCE, ls="--", lw=1)
        left.set_xlabel(f"Fitted values of {target}")
        left.set_ylabel("Residuals")
        left.set_title(f"Residuals vs Fitted: {target}")
        left.grid(alpha=0.3)
        right.set_xlabel("Theoretical quantiles")
        right.set_ylabel(f"Standardized residuals of {target}")
        right.set_title(f"Normal Q-Q: {target}")
        right.grid(alpha=0.3)
        standardized = standardize(residuals[used, j], weights[used] if weights is not None else None, leverage[used], df_residual)
        if standardized is None:
            right.text(0.5, 0.5, "no residual degrees of freedom", ha="center", va="center", transform=right.transAxes)
            continue
        ordered = np.sort(standardized)
        picked = sample(len(ordered), budget)
        theoretical = scipy.stats.norm.ppf(plotting_positions(len(ordered))[picked])
        right.plot(theoretical, ordered[picked], "o", ls="", ms=3, alpha=0.5, color=DATA, gid=f"qq-{j}")
        ends = np.array([theoretical.min(), theoretical.max()])
        right.plot(ends, ends, color=REFERENCE, ls="--", lw=1)
    note_thinning(figure, len(rows), int(used.sum()))


def standardize(
    residuals: np.ndarray, weights: np.ndarray | None, leverage: np.ndarray, df_residual: int
) -> np.ndarray | None:
    """R's ``rstandard``: each residual over its standard error; ``None`` without residual freedom.

    Rows of leverage 1 have no standardized residual and are left out, as R's ``plot.lm`` does.
    """
    if df_residual <= 0:
        return None
    weighted = residuals if weights is None else residuals * np.sqrt(weights)
    sigma = float(np.sqrt(np.sum(weighted**2) / df_residual))
    spare = 1.0 - leverage
    defined = spare > 1e-10
    if sigma == 0 or not defined.any():
        return None
    return weighted[defined] / (sigma * np.sqrt(spare[defined]))


def plotting_positions(n: int) -> np.ndarray:
    """R's ``ppoints(n)``: the probabilities at which a normal Q-Q plot sets its points."""
    a = 3 / 8 if n <= 10 else 0.5
    positions: np.ndarray = (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)
    return positions


def hat_values(X: np.ndarray, weights: np.ndarray | None, fit_intercept: bool) -> tuple[np.ndarray, int]:
    """The leverage of every row and the rank of the design (intercept included), as R's ``hatvalues``.

    From the eigen-decomposition of the small Gram matrix ``D'WD`` of the weighted design
    (columns centred and scaled to unit length first, which leaves the leverage unchanged):
    ``h_i = sum_j (d_i . v_j)^2 / lambda_j`` over the eigenvalues above a relative cutoff.
    Both passes over the rows go a block at a time, so no second n-by-p array is made. The
    Gram matrix squares the condition number: accurate enough to draw, and far cheaper than
    a pivoted QR of the whole design.
    """
    n, p = X.shape
    root = None if weights is None else np.sqrt(weights)
    centre = np.average(X, axis=0, weights=weights) if fit_intercept else np.zeros(p)
    columns = p + int(fit_intercept)

    def design(rows: slice, scale: np.ndarray | None = None) -> np.ndarray:
        block: np.ndarray = X[rows] - centre
        if fit_intercept:
            block = np.column_stack([np.ones(block.shape[0]), block])
        if root is not None:
            block *= root[rows, None]
        if scale is not None:
            block /= scale
        return block

    blocks = [slice(start, min(start + CHUNK_ROWS, n)) for start in range(0, n, CHUNK_ROWS)]
    gram = np.zeros((columns, columns))
    for rows in blocks:
        block = design(rows)
        gram += block.T @ block
    scale = np.sqrt(np.diag(gram))
    scale[scale == 0] = 1.0
    eigenvalues, vectors = np.linalg.eigh(gram / np.outer(scale, scale))
    kept = eigenvalues > RANK_TOLERANCE * max(float(eigenvalues.max(initial=0.0)), np.finfo(float).tiny)
    rank = int(np.count_nonzero(kept))
    leverage = np.zeros(n)
    if rank == 0:
        return leverage, 0
    basis = vectors[:, kept] / np.sqrt(eigenvalues[kept])
    for rows in blocks:
        projected = design(rows, scale) @ basis
        leverage[rows] = np.einsum("ij,ij->i", projected, projected)
    return leverage, rank
