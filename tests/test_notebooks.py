"""Every notebook in colabs/ runs top to bottom and is stored without outputs.

The notebooks run in quick mode (JAXPRUNE_QUICK=1) with the temporary
directory as working directory, so what they write (the lottery workdir)
lands there. Their first cell installs jaxprune only where it is missing,
so nothing is downloaded here.
"""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colabs").glob("*.ipynb"))
CELL_TIMEOUT_S = 300


def test_notebooks_found():
  names = {path.stem for path in NOTEBOOKS}
  expected = {"quick_start", "lottery_tickets", "sparse_training", "flax_nnx"}
  assert expected <= names, sorted(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_without_outputs(path):
  notebook = nbformat.read(path, as_version=4)
  nbformat.validate(notebook)
  for index, cell in enumerate(notebook.cells):
    if cell.cell_type != "code":
      continue
    assert cell.outputs == [], f"cell {index} has outputs"
    assert cell.execution_count is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_runs_in_quick_mode(path, tmp_path, monkeypatch):
  # The kernel inherits the environment of this process; it imports this
  # checkout's jaxprune and configs, as an install would.
  monkeypatch.setenv("JAXPRUNE_QUICK", "1")
  monkeypatch.setenv("PYTHONPATH", str(ROOT))
  notebook = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(
    notebook,
    timeout=CELL_TIMEOUT_S,
    kernel_name="python3",
    resources={"metadata": {"path": str(tmp_path)}},
  )
  client.execute()  # Raises CellExecutionError on the first failing cell.
  errors = [
    output
    for cell in notebook.cells
    if cell.cell_type == "code"
    for output in cell.outputs
    if output.output_type == "error"
  ]
  assert not errors
  # Progress bars refresh every 30 s at most in a notebook: a few bar lines
  # per cell in the stored output, not one per evaluation (the lottery
  # notebook's quick run has 16 trainings of 9 evaluations each).
  for cell in notebook.cells:
    streams = [o.text for o in cell.get("outputs", []) if "text" in o]
    assert sum(text.count("step/s") for text in streams) <= 12, streams[-3:]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_clones_nothing(path):
  # The configs come with `pip install`; no notebook fetches the repository.
  assert "git clone" not in path.read_text()
