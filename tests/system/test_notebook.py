"""The example notebook: committed without outputs, and it runs from start to end in a fresh kernel.

Its fit of the penguins table (text columns, gaps, a formula) is checked against statsmodels'
formula API fitted here, in the test, on the same CSV, and its ``n_dropped`` against pandas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebook.ipynb"
PENGUINS = NOTEBOOK.parent / "data" / "penguins.csv"
#: The last cell the test runs, after the notebook's own: the answers its penguin cells received, as JSON.
PROBE_MARK = "penguin answers: "
PROBE = (
    "import json\n"
    "print(" + repr(PROBE_MARK) + " + json.dumps({'formula': formula, 'fitted': fitted, 'predicted': predicted,"
    " 'again': again, 'test': new_penguins.astype(object).where(new_penguins.notna(), None).to_dict('list')}))"
)
RELATIVE = 1e-9


def read_notebook() -> Any:
    """The committed notebook."""
    return nbformat.read(NOTEBOOK, as_version=4)


def text_of(cell: Any) -> str:
    """Everything a code cell showed as text: streams, and the plain or HTML form of its results."""
    parts: list[str] = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            data = output["data"]
            parts.append(data.get("text/plain", "") + data.get("text/html", ""))
    return "\n".join(parts)


def test_the_committed_notebook_has_no_outputs() -> None:
    notebook = read_notebook()
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert [cell.outputs for cell in code] == [[] for _ in code]
    assert [cell.execution_count for cell in code] == [None for _ in code]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook, run in a python3 kernel whose files (history, caches, connection) stay in a tmp dir."""
    home = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLBACKEND", "Agg")  # no window opens
        patch.setenv("MPLCONFIGDIR", str(home / "matplotlib"))
        patch.setenv("IPYTHONDIR", str(home / "ipython"))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
        patch.setenv("JUPYTER_PLATFORM_DIRS", "1")
        patch.delenv("FITSERVE_TOKEN", raising=False)
        notebook = read_notebook()
        notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
        client = NotebookClient(
            notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(home)}}
        )
        client.execute()
    return notebook


@pytest.mark.live
def test_the_notebook_runs_without_errors(executed: Any) -> None:
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    errors = [output for cell in code for output in cell.outputs if output["output_type"] == "error"]
    assert errors == []
    assert all(cell.execution_count is not None for cell in code)


@pytest.mark.live
def test_the_notebook_shows_statistics_predictions_reuse_and_a_plot(executed: Any) -> None:
    shown = {cell.id: text_of(cell) for cell in executed.cells if cell.cell_type == "code"}
    everything = "\n".join(shown.values())
    # The coefficient table, by term, with the DataFrame's column names as feature names.
    table = next(text for text in shown.values() if "std_error" in text and "p_value" in text)
    assert "(Intercept)" in table and "area" in table and "rooms" in table
    assert "feature_names: ['area', 'rooms']" in everything
    assert "target_names: ['price']" in everything
    assert "r_squared" in everything
    # Predictions with their interval, and the same predictions again from the model.
    assert any("predicted" in text and "lower" in text and "upper" in text for text in shown.values())
    assert "same predictions as the fit: True" in everything
    assert "n_samples: None" in everything
    # The error answer, caught as a ServiceError naming its field.
    assert "422 X_test" in everything
    plots = [
        output
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output["output_type"] == "display_data" and "image/png" in output["data"]
    ]
    assert len(plots) == 1
    # The service's own picture (client.fit(..., picture="svg")): R's diagnostic plots, by name.
    pictures = [
        output["data"]["image/svg+xml"]
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output["output_type"] in ("display_data", "execute_result") and "image/svg+xml" in output["data"]
    ]
    assert len(pictures) == 1
    assert "Standardized residuals of price" in pictures[0] and "Fitted values of price" in pictures[0]


def close(mine: Any, theirs: Any) -> bool:
    """Equal to ``RELATIVE`` (relative to statsmodels' value), element by element."""
    mine, theirs = np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float)
    return mine.shape == theirs.shape and bool(np.all(np.abs(mine - theirs) <= RELATIVE * np.abs(theirs)))


@pytest.fixture(scope="module")
def penguin_answers(executed: Any) -> dict[str, Any]:
    """What the notebook's penguin cells received from the service (printed by the probe cell)."""
    text = text_of(executed.cells[-1])
    assert text.startswith(PROBE_MARK)
    answers: dict[str, Any] = json.loads(text[len(PROBE_MARK) :])
    return answers


@pytest.mark.live
def test_the_penguins_fit_is_statsmodels_fit_on_the_complete_rows(penguin_answers: dict[str, Any]) -> None:
    table = pd.read_csv(PENGUINS)
    formula, fitted = penguin_answers["formula"], penguin_answers["fitted"]
    assert any(table[name].dtype.kind not in "biuf" for name in table)  # a text column, as pandas reads it
    reference = smf.ols(formula, data=table, missing="drop").fit()
    # n_dropped as pandas counts the rows with a gap in a column the formula uses
    used = ["body_mass_g", "flipper_length_mm", "species", "sex"]
    assert set(used) == {name for name in table if name in formula}
    assert fitted["n_dropped"] == int(table[used].isna().any(axis=1).sum()) == len(table) - reference.nobs == 11
    assert fitted["n_samples"] == reference.nobs
    assert any("11 training rows" in warning for warning in fitted["warnings"])
    # the design's columns are statsmodels' (patsy's), each with statsmodels' estimate
    assert sorted(fitted["feature_names"]) == sorted(name for name in reference.params.index if name != "Intercept")
    assert close(fitted["coef"], reference.params[fitted["feature_names"]])
    assert close(fitted["intercept"], reference.params["Intercept"])
    stats = fitted["statistics"]
    rows = {row["term"]: row for row in stats["coefficients"]}
    terms = ["Intercept", *fitted["feature_names"]]
    assert list(rows) == ["(Intercept)", *fitted["feature_names"]]
    ours = list(rows.values())
    assert close([row["std_error"] for row in ours], reference.bse[terms])
    assert close([row["t_value"] for row in ours], reference.tvalues[terms])
    assert close([row["p_value"] for row in ours], reference.pvalues[terms])
    assert close([[row["ci_lower"], row["ci_upper"]] for row in ours], reference.conf_int().loc[terms])
    assert close(
        [stats["r_squared"], stats["adj_r_squared"], stats["f_statistic"], stats["f_p_value"], stats["df_residual"]],
        [reference.rsquared, reference.rsquared_adj, reference.fvalue, reference.f_pvalue, reference.df_resid],
    )


@pytest.mark.live
def test_the_penguins_predictions_are_statsmodels_and_a_gap_is_null(penguin_answers: dict[str, Any]) -> None:
    table = pd.read_csv(PENGUINS)
    reference = smf.ols(penguin_answers["formula"], data=table, missing="drop").fit()
    test = pd.DataFrame(penguin_answers["test"])
    gap = test.isna().any(axis=1).to_numpy()
    assert gap.any() and not gap.all()
    predicted = penguin_answers["predicted"]
    complete = test[~gap].astype({"flipper_length_mm": float})
    frame = reference.get_prediction(complete).summary_frame(alpha=0.05)
    predictions = np.array(predicted["predictions"], dtype=object)
    assert all(value is None for value in predictions[gap])
    assert close(list(predictions[~gap]), frame["mean"])
    for bound, column in (("lower", "obs_ci_lower"), ("upper", "obs_ci_upper")):
        values = np.array(predicted["intervals"][bound], dtype=object)
        assert all(value is None for value in values[gap])
        assert close(list(values[~gap]), frame[column])
    # the answer sent back as a model predicts the same rows the same way, gap included
    again = penguin_answers["again"]["predictions"]
    assert [value is None for value in again] == list(gap)
    assert close([v for v in again if v is not None], frame["mean"])


@pytest.mark.live
def test_the_notebook_shows_the_penguins_fit_beside_statsmodels(executed: Any) -> None:
    shown = {cell.id: text_of(cell) for cell in executed.cells if cell.cell_type == "code"}
    everything = "\n".join(shown.values())
    assert "missing cells by column: {'bill_length_mm': 2" in everything
    assert "422 train" in everything and "'body_mass_g' at row 3" in everything  # the default, missing="fail"
    assert "n_dropped: 11  (pandas counts 11 incomplete rows)" in everything
    assert "species[T.Gentoo]" in everything and "flipper_length_mm:species[T.Gentoo]" in everything
    assert "422 test" in everything and "Emperor" in everything  # a level training did not have
    assert "same predictions as the fit: True" in everything
    side_by_side = next(text for text in shown.values() if "statsmodels std_error" in text)
    assert "fitserve" in side_by_side and "sex[T.male]" in side_by_side
    worst = [float(line.rsplit(" ", 1)[1]) for line in everything.splitlines() if "largest relative difference" in line]
    assert len(worst) == 4 and max(worst) <= RELATIVE
