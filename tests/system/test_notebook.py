"""The example notebook: committed without outputs, and it runs from start to end in a fresh kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebook.ipynb"


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
