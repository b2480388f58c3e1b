"""Data parallelism on 8 CPU devices against the single-device trainer.

The tests need 8 devices before JAX starts, so the ordinary test process
runs this file again in a child process with 8 forced CPU devices
(`test_on_eight_cpu_devices`); there the other tests run. The multi-host
test starts two more processes of 4 devices each, joined with
`jax.distributed` over localhost.
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

import jaxprune
from jaxprune import algorithms, data, models
from jaxprune.train import Trainer
from jaxprune.train.order import batch_indices
from jaxprune.train.parallel import layout

ROOT = pathlib.Path(__file__).resolve().parents[1]
# As a script (a host of the multi-host test) JAX must not start before
# `jax.distributed.initialize`.
EIGHT = __name__ != "__main__" and jax.device_count() == 8
needs_eight = pytest.mark.skipif(
  not EIGHT, reason="runs inside test_on_eight_cpu_devices"
)


def _env(devices: int) -> dict:
  return {
    **os.environ,
    "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    "PYTHONPATH": str(ROOT),
  }


# The child's tests in two halves of similar length, so that a parallel
# test run (`pytest -n 2`) runs them side by side.
HALVES = {
  "matches": "match_one or checkpoints",
  "the_rest": "not (match_one or checkpoints or on_eight)",
}


@pytest.mark.skipif(EIGHT, reason="this is the child process")
@pytest.mark.parametrize("half", list(HALVES))
def test_on_eight_cpu_devices(half):
  child = subprocess.run(
    [
      sys.executable,
      "-m",
      "pytest",
      "-q",
      "-p",
      "no:cacheprovider",
      "-k",
      HALVES[half],
      __file__,
    ],
    env=_env(8),
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert child.returncode == 0, child.stdout[-6000:] + child.stderr[-3000:]
  # Every selected test ran: none was skipped for want of 8 devices.
  passed = re.search(r"(\d+) passed", child.stdout)
  assert passed and int(passed.group(1)) >= 5, child.stdout[-3000:]
  assert "skipped" not in child.stdout, child.stdout[-3000:]


# Digits: 1,297 training, 200 validation and 300 test images; evaluation
# batches of 64 leave last batches of 8 and 44 real images.
STEPS = 40
BATCH = 64


def _pruner(name: str):
  if name == "granet":
    return algorithms.granet(
      0.9, begin=0, end=20, frequency=5, total_steps=STEPS, regrow_end=35
    )
  if name == "pdp":
    return algorithms.pdp(0.9, begin=5, end=25, harden_step=30)
  raise ValueError(name)


@pytest.fixture(scope="module")
def digits():
  return data.load("digits", seed=0)


def _trainer(digits, pruner, parallel="none", **kw):
  return Trainer(
    models.LeNet300(),
    digits,
    pruner=pruner,
    optimizer=optax.adam,
    learning_rate=3e-3,
    batch_size=BATCH,
    eval_every=20,
    # Chunks of 15 steps: some end early, at an evaluation (inactive steps).
    steps_per_dispatch=15,
    eval_batch_size=64,
    parallel=parallel,
    **kw,
  )


def _fit(digits, name, parallel="none", steps=STEPS, directory=None, **kw):
  trainer = _trainer(digits, _pruner(name), parallel, **kw)
  state = trainer.init(
    trainer.init_variables(jax.random.key(0)), seed=0, key=jax.random.key(1)
  )
  return trainer.fit(state, steps, checkpoint_dir=directory)


_reference = {}


def _single(digits, name):
  if name not in _reference:
    _reference[name] = _fit(digits, name)
  return _reference[name]


def _assert_same_run(a, b, atol=2e-5, rel=1e-5):
  params_b = jax.tree.leaves(b.state.params)
  for (path, x), y in zip(
    jax.tree.leaves_with_path(a.state.params), params_b, strict=True
  ):
    np.testing.assert_allclose(
      np.asarray(x), np.asarray(y), rtol=0, atol=atol, err_msg=str(path)
    )
  masks_a, masks_b = (jaxprune.masks_of(r.state.opt_state) for r in (a, b))
  for x, y in zip(*map(jax.tree.leaves, (masks_a, masks_b)), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert len(a.history) == len(b.history) == 3
  for ra, rb in zip(a.history, b.history, strict=True):
    assert ra.keys() == rb.keys()
    for k in ra:
      if ra[k] is not None:
        assert ra[k] == pytest.approx(rb[k], rel=rel, abs=1e-6), k


@needs_eight
@pytest.mark.parametrize(
  "name,parallel,extra",
  [
    ("granet", "sharded", {}),
    ("pdp", "pmap", {}),
    ("pdp", "sharded", {"shard_params": True}),
  ],
  # GraNet under pmap and with sharded params: the checkpoint tests below;
  # its pruning half is gradual magnitude pruning.
  ids=["granet-sharded", "pdp-pmap", "pdp-sharded_params"],
)
def test_eight_devices_match_one(digits, name, parallel, extra):
  one = _single(digits, name)
  eight = _fit(digits, name, parallel, **extra)
  # The masks changed during the run (pruned, regrown or hardened).
  kept = jaxprune.summary(jaxprune.masks_of(eight.state.opt_state)).density
  assert kept == pytest.approx(0.1, abs=0.002)
  if name == "pdp":
    # The soft mask's slope 2|w| / tau (about 10^3 here) magnifies the
    # last-bit differences of a reduction split over 8 devices.
    _assert_same_run(one, eight, atol=1e-3, rel=1e-3)
  else:
    _assert_same_run(one, eight)


def _placed_after_steps(digits, parallel, **kw):
  trainer = _trainer(digits, _pruner("granet"), parallel, **kw)
  state = trainer.init(trainer.init_variables(jax.random.key(0)), seed=0)
  placed = trainer.layout.place(state)
  indices = batch_indices(0, len(digits.train.labels), BATCH, 0, 20)
  placed, _ = trainer.train_chunk(
    placed,
    trainer._images,
    trainer._labels,
    trainer.layout.batches(indices),
    trainer.layout.shared(np.ones(20, bool)),
  )
  return trainer, placed


@needs_eight
@pytest.mark.parametrize("parallel", ["pmap", "sharded"])
def test_masks_are_bit_identical_on_every_device(digits, parallel):
  _, placed = _placed_after_steps(digits, parallel)
  masks = jaxprune.masks_of(placed.opt_state)
  for mask in jax.tree.leaves(masks):
    shards = mask.addressable_shards
    assert len({s.device for s in shards}) == 8
    for shard in shards[1:]:
      np.testing.assert_array_equal(
        np.asarray(shard.data), np.asarray(shards[0].data)
      )
  # 20 steps of GraNet: pruned to the schedule's sparsity at step 15.
  assert 0.1 < float(np.mean(np.asarray(shards[0].data))) < 0.99


@needs_eight
def test_sharded_params_give_masks_the_params_sharding(digits):
  _, placed = _placed_after_steps(digits, "sharded", shard_params=True)
  masks = jaxprune.masks_of(placed.opt_state)
  kernel = placed.params["fc1"]["kernel"]
  # fc1's kernel (64 x 300 on 8x8 digits) splits along its 64 inputs;
  # fc2's (300 x 100) has no axis 8 divides and fc3's is small: replicated.
  assert kernel.sharding.spec == jax.sharding.PartitionSpec("data")
  assert kernel.addressable_shards[0].data.shape == (8, 300)
  assert placed.params["fc2"]["kernel"].sharding.is_fully_replicated
  for path, mask in jax.tree.leaves_with_path(masks):
    (param,) = [
      p
      for q, p in jax.tree.leaves_with_path(placed.params)
      if jax.tree_util.keystr(q) == jax.tree_util.keystr(path)
    ]
    assert mask.sharding.is_equivalent_to(param.sharding, mask.ndim), path


@needs_eight
def test_a_diverged_replica_is_reported(digits):
  trainer, placed = _placed_after_steps(digits, "sharded")
  mask = placed.opt_state.masks["fc2"]["kernel"]
  copies = [np.asarray(s.data) for s in mask.addressable_shards]
  copies[5] = ~copies[5]
  broken = jax.make_array_from_single_device_arrays(
    mask.shape,
    mask.sharding,
    [
      jax.device_put(c, s.device)
      for c, s in zip(copies, mask.addressable_shards, strict=True)
    ],
  )
  masks = dict(placed.opt_state.masks, fc2={"kernel": broken, "bias": None})
  bad = placed.replace(opt_state=placed.opt_state.replace(masks=masks))
  with pytest.raises(
    RuntimeError, match=r"masks\['fc2'\]\['kernel'\].*diverged"
  ):
    trainer.layout.fetch(bad)


@needs_eight
@pytest.mark.parametrize("parallel", ["pmap", "sharded"])
def test_the_global_batch_is_split_in_device_order(parallel):
  indices = np.arange(3 * 64).reshape(3, 64)
  split = layout(parallel, 64).batches(indices)
  by_device = {
    s.device.id: np.asarray(s.data) for s in split.addressable_shards
  }
  for d in range(8):
    expected = indices[:, 8 * d : 8 * (d + 1)]
    np.testing.assert_array_equal(by_device[d].reshape(3, 8), expected)


@needs_eight
def test_the_last_partial_evaluation_batch_counts_once(digits):
  # 200 validation images in batches of 64: the last batch holds 8 real
  # images, all on device 0, and devices 1-7 hold only padding. Every
  # layout's accuracy equals a count over the 200 images.
  trainer = _trainer(digits, algorithms.fixed())
  state = trainer.init(trainer.init_variables(jax.random.key(3)), seed=0)
  logits = trainer.model.apply(
    state.variables, digits.validation.images, train=False
  )
  predicted = np.argmax(np.asarray(logits), -1)
  expected = float(np.mean(predicted == digits.validation.labels))
  for parallel in ("none", "pmap", "sharded"):
    result = _trainer(digits, algorithms.fixed(), parallel).evaluate(state)
    assert result["val_accuracy"] == pytest.approx(expected, abs=1e-6)


def test_bad_parallel_settings_are_refused():
  with pytest.raises(ValueError, match=r"parallel = 'dp'.*'none', 'pmap'"):
    layout("dp", 64)
  with pytest.raises(ValueError, match="shard_params = True needs"):
    layout("pmap", 64, shard_params=True)
  with pytest.raises(ValueError, match=r"devices = 99: .* 1 to"):
    layout("sharded", 64, devices=99)


@needs_eight
def test_batches_the_devices_cannot_split_are_refused(digits):
  with pytest.raises(ValueError, match=r"batch_size = 60: .*multiple of 8"):
    layout("sharded", 60)
  # Fewer devices than there are: 60 splits over 4.
  assert layout("pmap", 60, devices=4).size == 4


@needs_eight
@pytest.mark.parametrize(
  "first,second",
  [
    (("none", {}), ("pmap", {})),
    (("pmap", {}), ("sharded", {"shard_params": True})),
  ],
  ids=["1to8", "pmap_to_sharded_params"],
)
def test_checkpoints_move_between_device_counts(
  digits, tmp_path, first, second
):
  # Stop at step 20 under one layout, resume to 40 under another: the same
  # as the uninterrupted single-device run.
  _fit(digits, "granet", first[0], 20, str(tmp_path), **first[1])
  resumed = _fit(digits, "granet", second[0], STEPS, str(tmp_path), **second[1])
  _assert_same_run(_single(digits, "granet"), resumed)


@needs_eight
def test_one_imp_round_matches_one_device(tmp_path):
  from configs.lottery import lenet300_digits  # noqa: PLC0415
  from jaxprune.experiments import lottery  # noqa: PLC0415

  results = {}
  for parallel in ("none", "pmap"):
    config = lenet300_digits.get_config("quick")
    config.train.batch_size = 64
    config.train.eval_batch_size = 64
    config.arms = ("imp",)
    config.parallel = parallel
    results[parallel] = lottery.run(config, str(tmp_path / parallel))["runs"]
  one = results["none"]
  assert [r["round"] for r in one] == [0, 1]
  for a, b in zip(one, results["pmap"], strict=True):
    assert a["layers"] == b["layers"]  # the same IMP masks
    assert a["final_test_accuracy"] == pytest.approx(
      b["final_test_accuracy"], abs=1e-6
    )


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@needs_eight
def test_two_hosts_match_one(digits, tmp_path):
  # Two processes of 4 devices train GraNet 'sharded' over all 8, with
  # checkpoints; each host feeds only its half of every batch.
  port = _free_port()
  children = [
    subprocess.Popen(
      [sys.executable, __file__, str(port), str(process), str(tmp_path)],
      env=_env(4),
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for process in range(2)
  ]
  outputs = [child.communicate(timeout=600)[0] for child in children]
  for child, output in zip(children, outputs, strict=True):
    assert child.returncode == 0, output[-4000:]
  with open(tmp_path / "host0.json") as f:
    host0 = json.load(f)
  with open(tmp_path / "host1.json") as f:
    host1 = json.load(f)
  assert host0 == host1  # the same history and masks on both hosts
  one = _single(digits, "granet")
  expected = [[r["val_loss"], r["test_accuracy"]] for r in one.history]
  assert np.allclose(host0["history"], expected, rtol=1e-5, atol=0)
  masks = jaxprune.masks_of(one.state.opt_state)
  assert host0["kept"] == [int(np.sum(m)) for m in jax.tree.leaves(masks)]
  assert host0["first_kept"] == [
    np.flatnonzero(np.asarray(m).ravel())[:50].tolist()
    for m in jax.tree.leaves(masks)
  ]


@needs_eight
def test_two_hosts_run_the_launcher(tmp_path):
  # `launch.train` on two hosts of 4 devices, joined through the config:
  # one results.json and one metrics log, the same as one process's run.
  config = "configs/sparse/granet_lenet300_digits.py:quick"
  common = [
    f"--config={config}",
    "--config.parallel=sharded",
    "--config.train.batch_size=64",
  ]
  port = _free_port()
  children = [
    subprocess.Popen(
      [sys.executable, "-m", "launch.train", *common]
      + [
        f"--workdir={tmp_path / 'two'}",
        "--config.distributed.enabled=True",
        f"--config.distributed.coordinator_address=localhost:{port}",
        "--config.distributed.num_processes=2",
        f"--config.distributed.process_id={process}",
      ],
      env=_env(4),
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for process in range(2)
  ]
  outputs = [child.communicate(timeout=600)[0] for child in children]
  for child, output in zip(children, outputs, strict=True):
    assert child.returncode == 0, output[-4000:]
  one = subprocess.run(
    [sys.executable, "-m", "launch.train", *common]
    + [f"--workdir={tmp_path / 'one'}"],
    env=_env(8),
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert one.returncode == 0, one.stderr[-4000:]
  two, single = (
    json.loads((tmp_path / d / "results.json").read_text())["runs"]
    for d in ("two", "one")
  )
  for a, b in zip(two, single, strict=True):
    assert a["layers"] == b["layers"]
    assert a["final_test_accuracy"] == pytest.approx(
      b["final_test_accuracy"], abs=1e-6
    )
  steps = [
    json.loads(line)["step"]
    for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
  ]
  assert steps == sorted(set(steps))  # each evaluation written once


def _host(port: str, process: str, directory: str) -> None:
  """One host of `test_two_hosts_match_one`."""
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
    f"localhost:{port}", num_processes=2, process_id=int(process)
  )
  assert jax.device_count() == 8 and jax.local_device_count() == 4
  result = _fit(
    data.load("digits", seed=0),
    "granet",
    "sharded",
    directory=os.path.join(directory, "checkpoints"),
  )
  masks = jax.tree.leaves(jaxprune.masks_of(result.state.opt_state))
  out = {
    "history": [[r["val_loss"], r["test_accuracy"]] for r in result.history],
    "kept": [int(np.sum(m)) for m in masks],
    "first_kept": [
      np.flatnonzero(np.asarray(m).ravel())[:50].tolist() for m in masks
    ],
  }
  with open(os.path.join(directory, f"host{process}.json"), "w") as f:
    json.dump(out, f)


if __name__ == "__main__":
  _host(*sys.argv[1:])
