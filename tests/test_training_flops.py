"""Training FLOPs measured by the trainer, against hand-worked counts.

The net: 64 inputs (8x8 digits) -> Dense(16) -> Dense(10). One example's
dense forward pass costs 64 * 16 + 16 * 10 = 1184 multiply-adds, one per
kernel weight; biases cost none. Batches of 4, 10 steps.
"""

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

import jaxprune
from jaxprune import algorithms, data
from jaxprune.train import Trainer
from jaxprune.train.cost import ForwardCost

DENSE = 64 * 16 + 16 * 10
BATCH = 4


class _TwoLayer(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = nn.relu(nn.Dense(16, name="fc1")(x.reshape((x.shape[0], -1))))
    return nn.Dense(10, name="fc2")(x)


class _ConvNet(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = nn.relu(nn.Conv(4, (3, 3), padding="SAME", name="conv1")(x))
    x = nn.relu(nn.Conv(6, (3, 3), strides=2, name="conv2")(x))
    return nn.Dense(10, name="fc")(x.reshape((x.shape[0], -1)))


@pytest.fixture(scope="module")
def digits():
  return data.load("digits", seed=0)


def _macs(digits, pruner, steps=10, steps_per_dispatch=10):
  trainer = Trainer(
    _TwoLayer(),
    digits,
    pruner=pruner,
    optimizer=optax.sgd,
    learning_rate=0.01,
    batch_size=BATCH,
    eval_every=5,
    steps_per_dispatch=steps_per_dispatch,
  )
  variables = trainer.init_variables(jax.random.key(0))
  state = trainer.init(variables, seed=0, key=jax.random.key(1))
  history = trainer.fit(state, steps).history
  assert trainer.flops.dense == DENSE
  return [r["train_macs"] for r in history]


def test_static_sparse_training_costs_three_forward_passes_a_step(digits):
  # 75% of each kernel pruned: 256 + 40 kept weights, 296 multiply-adds.
  pruner = algorithms.random(0.75, distribution="uniform")
  macs = _macs(digits, pruner)
  assert macs == [0, BATCH * 5 * 3 * 296, BATCH * 10 * 3 * 296]


def test_rigl_adds_the_dense_gradient_on_its_update_steps(digits):
  # Updates at steps 3 and 6 (end): those backward passes are dense,
  # 2 * 296 + 1184 instead of 3 * 296. The counts stay at 296.
  pruner = algorithms.rigl(0.75, end=6, frequency=3, distribution="uniform")
  macs = _macs(digits, pruner)
  extra = DENSE - 296
  assert macs == [
    0,
    BATCH * (5 * 3 * 296 + extra),
    BATCH * (10 * 3 * 296 + 2 * extra),
  ]


def test_set_grows_at_random_with_no_dense_gradient(digits):
  pruner = algorithms.set_(0.75, end=6, frequency=3, distribution="uniform")
  assert _macs(digits, pruner)[-1] == BATCH * 10 * 3 * 296


@pytest.mark.parametrize("steps_per_dispatch", [10, 1])
def test_masks_changing_inside_a_dispatch_are_counted_from_the_next_step(
  digits, steps_per_dispatch
):
  # One-shot magnitude pruning at step 3 to 50% of each kernel: steps 0-3
  # run dense, steps 4-9 at 512 + 80 = 592 multiply-adds.
  pruner = algorithms.magnitude(0.5, step=3)
  macs = _macs(digits, pruner, steps_per_dispatch=steps_per_dispatch)
  assert macs == [
    0,
    BATCH * 3 * (4 * DENSE + 1 * 592),
    BATCH * 3 * (4 * DENSE + 6 * 592),
  ]


def test_forward_cost_rounds_each_layer_down_as_flops_does():
  from jaxprune.compact.flops import Flops

  # A conv kernel of 3x3x1x2 read at 10 output positions: 180 at full
  # density, 10 per weight; a product of activations costs 7 always.
  counted = Flops({"conv": (180, 180), "dot_general:4": (7, 7)}, 187, 187)
  cost = ForwardCost(counted, {"conv": np.ones((3, 3, 1, 2), bool)})
  np.testing.assert_array_equal(cost.forward([[18], [5], [0]]), [187, 57, 7])
  assert cost.training([[18], [5]], [False, True], 2) == 2 * (
    3 * 187 + 2 * 57 + 187
  )


def test_kept_counts_give_the_traced_count_of_a_conv_net(digits):
  # Conv and Dense kernels: each weight costs its layer's output positions,
  # so counts per leaf reproduce `jaxprune.flops` at any masks.
  from jaxprune import flops
  from jaxprune.experiments import costs

  trainer = Trainer(
    _ConvNet(),
    digits,
    pruner=algorithms.random(0.8, distribution="erk"),
    optimizer=optax.sgd,
    learning_rate=0.01,
    batch_size=BATCH,
    eval_every=5,
  )
  variables = trainer.init_variables(jax.random.key(0))
  state = trainer.init(variables, seed=0, key=jax.random.key(1))
  masks = jaxprune.masks_of(state.opt_state)
  x = np.zeros((1, 8, 8, 1), np.float32)
  apply = lambda p, x: trainer.model.apply({"params": p}, x)
  traced = flops(apply, state.params, masks, x)
  assert costs.inference(trainer, masks) == {
    "dense": traced.dense,
    "effective": traced.effective,
    "relative": traced.effective / traced.dense,
  }
  assert traced.effective < traced.dense


def _run(seed, accuracy, inference, training):
  return {
    "seed": seed,
    "final_test_accuracy": accuracy,
    "early_stop_test_accuracy": accuracy,
    "early_stop_step": 10,
    "sparsity": 0.9,
    "wall_time_s": 1.0,
    "inference_flops": {"dense": 10, "effective": 1, "relative": inference},
    "training_flops": {"dense": 30, "effective": 3, "relative": training},
  }


def test_reports_summarize_and_plot_training_flops(tmp_path):
  from jaxprune.experiments import sparse_report

  runs = [_run(0, 0.8, 0.1, 0.1), _run(1, 0.9, 0.1, 0.3)]
  row = {"method": "m", "target_sparsity": 0.9, **sparse_report.summarize(runs)}
  assert row["training_flops"]["mean"] == pytest.approx(0.2)
  assert "| 10.00 | 20.00 |" in sparse_report.details([row])
  sparse_report.flops_plot([row], str(tmp_path / "flops.png"))
  assert (tmp_path / "flops.png").stat().st_size > 0
  # Results from before the FLOPs were measured: no columns, no plot.
  old = [{k: v for k, v in r.items() if "flops" not in k} for r in runs]
  row = {"method": "m", "target_sparsity": 0.9, **sparse_report.summarize(old)}
  assert "training_flops" not in row
  with pytest.raises(ValueError, match="no run recorded training_flops"):
    sparse_report.flops_plot([row], str(tmp_path / "none.png"))


def test_granet_pruning_alone_needs_no_dense_gradient():
  # Pruning every 10 steps in [0, 100], regrowth only until step 50: the
  # updates of steps 60-100 read |w| alone.
  pruner = algorithms.granet(
    0.9, begin=0, end=100, frequency=10, total_steps=200, regrow_end=50
  )
  steps = [0, 10, 50, 55, 60, 100, 150]
  assert [bool(pruner.dense_gradient(t)) for t in steps] == [
    True,
    True,
    True,
    False,
    False,
    False,
    False,
  ]
  assert [bool(pruner.is_update_step(t)) for t in steps] == [
    True,
    True,
    True,
    False,
    True,
    True,
    False,
  ]
  assert not algorithms.set_(0.9, end=100).dense_gradient(50)
