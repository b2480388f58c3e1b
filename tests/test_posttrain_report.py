"""Post-training results of several workdirs merged into one table and plot."""

import json

import pytest

from jaxprune.experiments import posttrain_report as report


def _results(runs, dense=3.0):
  """A results.json of a character model: `runs` as (method, target, seed,
  bits per character, pruned layers)."""
  return {
    "name": "charlm",
    "task": "lm",
    "data": {"calibration": "128 sequences"},
    "metrics": {"bits_per_char": False},
    "dense": {"bits_per_char": dense},
    "runs": [
      {
        "method": m,
        "target": t,
        "seed": s,
        "bits_per_char": v,
        "mean_rel_error": v / 10,
        "layers": {p: {"kept": 1, "size": 2} for p in layers},
      }
      for m, t, s, v, layers in runs
    ],
  }


BOTH = ("fc1", "fc2")


def _workdirs(tmp_path):
  """Seed 0 at 70% and 2:4; seed 1 of those and 4:8 with fc2 left dense."""
  first = _results(
    [
      ("wanda", "0.7", 0, 3.5, BOTH),
      ("wanda", "2:4", 0, 3.25, BOTH),
    ]
  )
  second = _results(
    [
      ("wanda", "0.7", 1, 3.75, BOTH),
      ("wanda", "2:4", 1, 3.5, BOTH),
      ("wanda", "4:8", 1, 3.125, ("fc1",)),
      ("wanda", "0.5", 1, 3.0625, BOTH),
    ]
  )
  paths = []
  for name, results in (("a", first), ("b", second)):
    (tmp_path / name).mkdir()
    (tmp_path / name / "results.json").write_text(json.dumps(results))
    paths.append(str(tmp_path / name))
  return paths


def test_workdirs_merge_into_one_table_and_plot(tmp_path):
  paths = _workdirs(tmp_path)
  out, png = tmp_path / "merged.md", tmp_path / "merged.png"
  report.main([*paths, f"--out={out}", f"--plot={png}"])
  table = out.read_text()
  # Targets by sparsity, then N:M; each cell the mean and the seeds' range.
  assert "| method | 50% | 70% | 2:4 | 4:8 |" in table
  assert (
    "| wanda | 3.0625 | 3.6250 (3.5000-3.7500) | 3.3750 (3.2500-3.5000) "
    "| 3.1250 |" in table
  )
  assert "- calibration seeds: [0, 1]" in table
  # 4:8 pruned other layers than the rest: the table says which.
  assert "- layers pruned: fc1, fc2\n- layers pruned at 4:8: fc1 only" in table
  assert "## mean_rel_error (lower is better)" in table
  assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_layers_everywhere_are_listed_once(tmp_path):
  results = _results(
    [
      ("magnitude", "0.5", 0, 3.5, BOTH),
      ("magnitude", "2:4", 0, 3.5, BOTH),
    ]
  )
  assert report.markdown(results).count("layers pruned") == 1


def test_another_dense_model_is_refused_naming_the_workdir():
  old = _results([("wanda", "0.5", 0, 3.5, BOTH)], dense=3.006)
  new = _results([("wanda", "0.5", 1, 3.2, BOTH)], dense=2.7)
  with pytest.raises(ValueError, match=r"new: dense bits_per_char = 2\.7, "):
    report.merge([old, new], ["old", "new"])


def test_a_run_in_two_workdirs_is_refused():
  a = _results([("wanda", "0.5", 0, 3.5, BOTH)])
  with pytest.raises(ValueError, match="seed 0 is in both a and b"):
    report.merge([a, a], ["a", "b"])


def test_command_line_error_is_one_line(tmp_path, capsys):
  paths = _workdirs(tmp_path)
  other = json.loads((tmp_path / "b" / "results.json").read_text())
  other["name"] = "minilm"
  (tmp_path / "b" / "results.json").write_text(json.dumps(other))
  with pytest.raises(SystemExit) as exit_:
    report.main(paths)
  assert exit_.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "name = 'minilm'" in err
  assert err.count("\n") == 1


def test_digits():
  results = _results(
    [
      ("magnitude", "0.5", 0, 3.5, BOTH),
      ("magnitude", "0.5", 1, 3.75, BOTH),
    ]
  )
  assert "| magnitude | 3.62 (3.50-3.75) |" in report.markdown(results, 2)
  assert "dense 3.00)" in report.markdown(results, 2)
