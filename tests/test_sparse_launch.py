"""The sparse-training entry point, end to end on the embedded digits."""

import importlib
import json
import pathlib

import jax
import jax.numpy as jnp
import matplotlib.image
import optax
import pytest

import jaxprune
from jaxprune.core.tree import path_str
from jaxprune.data import DEFAULT_DIRS
from jaxprune.experiments import sparse, sparse_report
from jaxprune.experiments.workdir import load_trained
from jaxprune.train import Trainer

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = "configs/sparse/granet_lenet300_digits.py:quick"
# LeNet-300-100 on 8x8 inputs: 64 * 300 + 300 * 100 + 100 * 10 weights.
WEIGHTS = 50_200


def _module(name):
  return importlib.import_module(f"configs.sparse.{name}")


def _config(name, arg=None):
  return _module(name).get_config(arg)


@pytest.fixture(scope="module")
def granet_run(tmp_path_factory, launch):
  workdir = tmp_path_factory.mktemp("granet")
  return workdir, launch("launch.train", QUICK, workdir)


def test_granet_smoke_run_ends_exactly_on_the_target(granet_run):
  workdir, stdout = granet_run
  assert f"plot:    {workdir / sparse.PLOT}" in stdout
  assert f"results: {workdir / sparse.RESULTS}" in stdout
  assert f"table:   {workdir / sparse.TABLE}" in stdout
  assert f"weights: {workdir}/seed<n>/trained.npz" in stdout
  # The short table: a header, a rule and the method's row.
  table = [line for line in stdout.splitlines() if line.startswith("|")]
  assert table[0].startswith("| method | target | sparsity | seeds |")
  assert table[2].startswith("| granet_dense | 0.9 | 0.9000 | 1 |")
  assert len(table) == 3
  for name in (
    "config.json",
    "metrics.jsonl",
    "results.json",
    "results.md",
    "curves.png",
  ):
    assert (workdir / name).stat().st_size > 0, name
  assert (
    "| granet_dense | 0.9 | 0.9000 | 1 |"
    in (workdir / "results.md").read_text()
  )
  results = json.loads((workdir / "results.json").read_text())
  assert results["method"] == "granet_dense"
  assert results["target_sparsity"] == 0.9
  (run,) = results["runs"]
  # 10% of 50,200 is 5,020 exactly: GraNet's global pruning hits it.
  assert (run["seed"], run["kept"], run["size"]) == (0, 5_020, WEIGHTS)
  assert run["sparsity"] == 1 - 5_020 / WEIGHTS
  assert sum(r["kept"] for r in run["layers"].values()) == 5_020
  variables, masks = load_trained(str(workdir / "seed0" / sparse.TRAINED))
  kept = {
    path_str(p): int(m.sum()) for p, m in jax.tree.leaves_with_path(masks)
  }
  assert kept == {p: layer["kept"] for p, layer in run["layers"].items()}
  for layer in ("fc1", "fc2", "fc3"):
    kernel = variables["params"][layer]["kernel"]
    assert not kernel[~masks[layer]["kernel"]].any()
  # Every kept weight is one multiply-add per example.
  assert run["inference_flops"] == {
    "dense": WEIGHTS,
    "effective": 5_020,
    "relative": 5_020 / WEIGHTS,
  }
  # Training from dense: 3 multiply-adds a weight and example, above the
  # final count (pruning), never above dense training's.
  training = run["training_flops"]
  batch = json.loads((workdir / "config.json").read_text())["train"]
  assert training["dense"] == 3 * WEIGHTS * batch["batch_size"] * 100
  assert 5_020 / WEIGHTS < training["relative"] < 1.0
  assert run["final_step"] == 100
  # Early stopping only looks after the last pruning update (step 50).
  assert run["early_stop_step"] in (75, 100)
  assert 0.0 <= run["final_test_accuracy"] <= 1.0
  assert results["summary"]["seeds"] == [0]
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [0, 25, 50, 75, 100]
  assert not (workdir / "seed0" / "checkpoints").exists()


def test_rerun_skips_the_finished_seed(granet_run, monkeypatch):
  workdir, _ = granet_run
  before = json.loads((workdir / "results.json").read_text())
  metrics = (workdir / "metrics.jsonl").read_text()

  def no_training(*args, **kwargs):
    raise AssertionError("a finished seed was trained again")

  monkeypatch.setattr(Trainer, "fit", no_training)
  after = sparse.run(_config("granet_lenet300_digits", "quick"), str(workdir))
  assert after == before
  assert (workdir / "metrics.jsonl").read_text() == metrics


def test_a_different_config_is_refused(granet_run):
  workdir, _ = granet_run
  config = _config("granet_lenet300_digits", "quick,sparsity=0.8")
  with pytest.raises(ValueError, match=r"different config.*sparsity"):
    sparse.run(config, str(workdir))


class _Killed(Exception):
  pass


def test_snip_run_resumes_after_an_interruption(tmp_path, monkeypatch, capsys):
  base = _module("base")
  config = base.recipe(
    "snip",
    dataset="digits",
    sparsity=0.95,
    steps=50,
    eval_every=25,
    steps_per_dispatch=25,
    checkpoint_every=25,
    eval_batch_size=500,
    seeds=(0,),
  )
  config.lock()

  def killed(opt_state):
    raise _Killed

  # Killed after its first checkpoint (step 25), at the pruner check.
  monkeypatch.setattr(sparse, "check", killed)
  with pytest.raises(_Killed):
    sparse.run(config, str(tmp_path))
  monkeypatch.undo()
  evaluated = []
  evaluate = Trainer._evaluate_placed

  def counted(self, state):
    evaluated.append(int(self.layout.local(state.step)))
    return evaluate(self, state)

  monkeypatch.setattr(Trainer, "_evaluate_placed", counted)
  capsys.readouterr()
  results = sparse.run(config, str(tmp_path))
  assert evaluated == [50]  # resumed at 25, not restarted
  checkpoints = tmp_path / "seed0" / "checkpoints"
  assert capsys.readouterr().out == (
    f"resuming seed 0 from step 25 (checkpoint in {checkpoints})\n"
  )
  (run,) = results["runs"]
  # SNIP ranks globally: 5% of 50,200 kept, 2,510 exactly.
  assert (run["kept"], run["final_step"]) == (2_510, 50)
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in lines] == [0, 25, 50]


def test_report_pivots_methods_by_sparsity(granet_run, tmp_path):
  workdir, _ = granet_run
  out, plot = tmp_path / "report.md", tmp_path / "report.png"
  sparse_report.main([str(workdir), "--out", str(out), "--plot", str(plot)])
  text = out.read_text()
  assert "| final test accuracy (%) | sparsity 0.9 |" in text
  assert "| granet_dense | " in text
  assert plot.stat().st_size > 0
  with pytest.raises(ValueError, match=r"repeats seeds \[0\]"):
    sparse_report.collect([str(workdir), str(workdir)])


def _row(method, target, accuracy):
  acc = dict(mean=accuracy, std=0.001)
  return dict(
    method=method,
    target_sparsity=target,
    sparsity=dict(mean=target, std=0.0),
    final_test_accuracy=acc,
    early_stop_test_accuracy=acc,
  )


@pytest.mark.parametrize("collapsed, height", [(0.86, 480), (0.70, 960)])
def test_plot_adds_a_zoomed_row_only_when_a_point_lies_far_below(
  collapsed, height, tmp_path
):
  rows = [_row("dense", 0.0, 0.88)]
  for target, a, b in [(0.9, 0.88, 0.87), (0.98, 0.86, collapsed)]:
    rows += [_row("a", target, a), _row("b", target, b)]
  rows += [_row("c", 0.9, 0.875), _row("c", 0.98, 0.865)]
  path = tmp_path / "plot.png"
  sparse_report.plot(rows, str(path))
  # 4 inches a row at 120 dpi: one row, or a second zoomed one.
  assert matplotlib.image.imread(path).shape[0] == height


BASE = _module("base")
CONV = [
  f"{m}_{model}_fashion_mnist"
  for m in BASE.METHODS
  for model in ("conv4", "lenet5")
]
METHODS = (
  [f"{m}_lenet300_fashion_mnist" for m in BASE.METHODS]
  + ["granet_lenet300_digits"]
  + CONV
)


def _targets(config):
  """Every sparsity the method's factories receive."""
  settings = [config.pruner, config.get("prune_at_init", {})]
  return {
    s[k] for s in settings for k in ("sparsity", "final_sparsity") if k in s
  }


@pytest.mark.parametrize("name", METHODS)
def test_configs_build_their_pruner_with_every_preset(name):
  for arg in (None, "quick"):
    jaxprune.create(_config(name, arg).pruner)
  with pytest.raises(ValueError, match="quick"):
    _config(name, "nonsense")
  if name.startswith("dense"):
    with pytest.raises(ValueError, match="no sparsity"):
      _config(name, "sparsity=0.95")
    return
  config = _config(name, "quick,sparsity=0.95")
  config.lock()
  assert _targets(config) == {0.95}
  config.sparsity = 0.8  # as --config.sparsity=0.8 does
  assert _targets(config) == {0.8}


STRUCTURED = [
  f"{m}_{model}_fashion_mnist"
  for m in BASE.STRUCTURED
  for model in ("lenet300", "conv4", "lenet5")
]


def _init(config):
  """The wrapped optimizer's state on the config's model, at 28x28x1."""
  model = jaxprune.models.get(config.model.name, num_classes=10)
  x = jnp.zeros((1, 28, 28, 1))
  params = model.init(jax.random.key(0), x)["params"]
  tx = jaxprune.wrap(optax.sgd(0.1), jaxprune.create(config.pruner))
  return tx.init(params)


def _pruned(state):
  masks = jaxprune.masks_of(state)
  flat = jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None)
  return {path_str(p) for p, m in flat if m is not None}


@pytest.mark.parametrize("name", STRUCTURED)
@pytest.mark.parametrize(
  "arg, kind, sparsity",
  [
    ("nm=2:4", "nm", 0.5),
    ("nm=1:4", "nm", 0.75),
    ("channel=0.5", "channel", 0.5),
  ],
)
def test_structured_presets_build_on_the_model(name, arg, kind, sparsity):
  config = _config(name, f"quick,{arg}")
  config.lock()
  method = config.name.removesuffix(f"_{kind}")
  assert method in BASE.STRUCTURED
  assert config.sparsity == sparsity and _targets(config) == {sparsity}
  assert config.pruner.distribution == "uniform"
  axis = -2 if kind == "nm" else -1
  assert config.pruner.structure.kind == kind
  assert config.pruner.structure.axis == axis
  sparse._check(config)
  pruned = _pruned(_init(config))
  # conv1 (one input channel) has no group of 4, nor has LeNet-5's conv2
  # (6); the output layer keeps its channels (classes).
  kernels = {"fc1/kernel", "fc2/kernel", "fc3/kernel"}
  convs = {"conv4": 4, "lenet5": 2, "lenet300": 0}[name.split("_")[-3]]
  kernels |= {f"conv{i}/kernel" for i in range(1, convs + 1)}
  dense = {"nm": {"conv1/kernel"}, "channel": {"fc3/kernel"}}[kind]
  if kind == "nm" and "lenet5" in name:
    dense = dense | {"conv2/kernel"}
  assert pruned == kernels - dense


@pytest.mark.parametrize("name", [n for n in METHODS if "magnitude" in n])
def test_global_preset_ranks_all_weights(name):
  config = _config(name, "global,sparsity=0.95")
  assert config.name.endswith("_global")
  assert config.pruner.distribution == "global"
  assert jaxprune.create(config.pruner).distribution == "global"


@pytest.mark.parametrize(
  "name, arg, message",
  [
    ("pdp_lenet300_fashion_mnist", "nm=4:2", r"nm='4:2': expected N:M"),
    ("pdp_lenet300_fashion_mnist", "nm=0:4", r"nm='0:4': expected N:M"),
    ("pdp_lenet300_fashion_mnist", "nm=2/4", r"nm='2/4': expected N:M"),
    ("pdp_conv4_fashion_mnist", "nm=2:4,channel=0.5", r"'channel' applies"),
    ("pdp_lenet300_fashion_mnist", "global", r"'global' applies to"),
    ("rigl_lenet300_fashion_mnist", "nm=2:4", r"'nm' applies to .*'rigl'"),
    ("pdp_lenet300_fashion_mnist", "channel", r"unknown preset 'channel'"),
  ],
)
def test_bad_presets_name_the_value_and_what_is_expected(name, arg, message):
  with pytest.raises(ValueError, match=message):
    _config(name, arg)


def test_runner_refuses_an_nm_sparsity_that_is_not_a_multiple_of_1_over_m(
  tmp_path,
):
  config = _config("gradual_magnitude_lenet300_fashion_mnist", "nm=2:4")
  config.sparsity = 0.9  # 3.6 of every 4
  with pytest.raises(
    ValueError,
    match=r"pruner.final_sparsity = 0.9 with an N:M structure of m = 4: "
    r"expected a multiple of 1/4",
  ):
    sparse.run(config, str(tmp_path))


def _digits(config):
  config.dataset.name = "digits"
  config.train.eval_batch_size = 500
  return config


@pytest.mark.parametrize(
  "name, arg",
  [
    ("pdp_conv4_fashion_mnist", "quick,nm=2:4"),
    ("oneshot_magnitude_conv4_fashion_mnist", "quick,channel=0.5"),
    ("gradual_magnitude_conv4_fashion_mnist", "quick"),
  ],
)
def test_conv4_configs_smoke_run_a_few_steps(name, arg, tmp_path):
  # Conv-4 on the embedded 8x8 digits: 20 steps, one per dispatch.
  config = _digits(_config(name, arg))
  (run,) = sparse.run(config, str(tmp_path))["runs"]
  assert run["final_step"] == 20
  # Per-leaf budgets: every pruned leaf at exactly its rounded count.
  for path, layer in run["layers"].items():
    size = layer["size"]
    assert layer["kept"] == size - round(config.sparsity * size), path
  if name.startswith("pdp"):
    assert run["hardening_step"] == 15


@pytest.mark.skipif(
  not pathlib.Path(DEFAULT_DIRS["fashion_mnist"]).is_dir(),
  reason="Fashion-MNIST is absent (apt-get install dataset-fashion-mnist)",
)
def test_lenet5_channel_config_smoke_runs_on_fashion_mnist(tmp_path):
  # LeNet-5 needs 28x28 images: 20 steps of PDP with whole channels on the
  # real data, hardened at step 15 (the quick preset's 3/4).
  config = _config("pdp_lenet5_fashion_mnist", "quick,channel=0.5")
  (run,) = sparse.run(config, str(tmp_path))["runs"]
  assert run["final_step"] == 20 and run["hardening_step"] == 15
  # Half the output channels of every kernel but the output layer's:
  # conv1 3 of 6 (75 of 150 weights), conv2 8 of 16, fc1 60 of 120, fc2
  # 42 of 84.
  kept = {path: layer["kept"] for path, layer in run["layers"].items()}
  assert kept == {
    "conv1/kernel": 75,
    "conv2/kernel": 1_200,
    "fc1/kernel": 24_000,
    "fc2/kernel": 5_040,
  }


@pytest.mark.parametrize(
  "name", ["granet_sparse_conv4_fashion_mnist", "synflow_conv4_fashion_mnist"]
)
def test_conv4_global_methods_smoke_run_to_the_exact_total(name, tmp_path):
  # One ranking of all kernels: the total is exact, each layer is not fixed.
  config = _digits(_config(name, "quick"))
  (run,) = sparse.run(config, str(tmp_path))["runs"]
  assert run["final_step"] == 20
  size = sum(layer["size"] for layer in run["layers"].values())
  kept = sum(layer["kept"] for layer in run["layers"].values())
  assert (run["size"], run["kept"]) == (size, kept)
  assert kept == size - round(0.9 * size)
  fractions = {
    layer["kept"] / layer["size"] for layer in run["layers"].values()
  }
  assert len(fractions) > 1


def test_pdp_run_records_soft_and_hardened_accuracy_and_resumes(
  tmp_path, monkeypatch
):
  config = BASE.recipe(
    "pdp",
    dataset="digits",
    sparsity=0.9,
    steps=40,
    eval_every=10,
    steps_per_dispatch=10,
    checkpoint_every=20,
    eval_batch_size=500,
    seeds=(0,),
  )
  config.lock()
  # Soft from step 5 (begin 4), full target from 20, hardened at 30.
  assert config.pruner.harden_step == 30
  checks = []

  def killed(opt_state):
    checks.append(opt_state)
    if len(checks) == 2:  # at step 30, hardening.json written
      raise _Killed

  monkeypatch.setattr(sparse, "check", killed)
  with pytest.raises(_Killed):
    sparse.run(config, str(tmp_path))
  monkeypatch.undo()
  hardening = json.loads((tmp_path / "seed0" / "hardening.json").read_text())
  results = sparse.run(config, str(tmp_path))
  (run,) = results["runs"]
  assert run["hardening_step"] == hardening["step"] == 30
  records = [
    json.loads(line)
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
  ]
  assert [r["step"] for r in records] == [0, 10, 20, 30, 40]
  # metrics.jsonl holds the soft model's evaluation at step 30.
  (soft,) = [r for r in records if r["step"] == 30]
  assert run["soft_test_accuracy"] == soft["test_accuracy"]
  assert hardening["soft"]["val_loss"] == soft["val_loss"]
  hard = hardening["hard"]
  assert run["hardened_test_accuracy"] == hard["test_accuracy"]
  assert 0.0 <= hard["test_accuracy"] <= 1.0 and hard != hardening["soft"]
  # Early stopping looks at hard models only.
  assert run["early_stop_step"] == 40
  assert run["kept"] == 5_020
  summary = results["summary"]
  assert summary["soft_test_accuracy"]["mean"] == run["soft_test_accuracy"]
  rows = sparse_report.collect([str(tmp_path)])
  text = sparse_report.markdown(rows)
  assert "| soft test accuracy at hardening (%) | sparsity 0.9 |" in text
  assert "| hardened test accuracy (no fine-tuning) (%) |" in text
