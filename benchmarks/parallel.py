"""Data-parallel training steps on 1, 2, 4 and 8 devices.

Times `jaxprune.train.Trainer`'s compiled step (`train_chunk`) for two
recipes at an equal batch per device (weak scaling: the global batch grows
with the device count):

- `lenet`: LeNet-300-100, 28x28x1 inputs, 60 examples per device, 20 steps
  a dispatch (`lax.scan`), as the lottery configs run it;
- `conv`: Conv-2, 28x28x1 inputs, 16 examples per device, one step a
  dispatch, as the conv configs run on CPU.

Each runs Adam under `gradual_magnitude(0.9, begin=0, end=10**6,
frequency=100)` (the mask-update `lax.cond` in every step, a mask update
every 100 steps) on random data with the shapes of Fashion-MNIST. Layouts:
`none` on 1 device, and `pmap` and `sharded` on 1, 2, 4 and 8 devices. All
of them are timed in one process, interleaved (every repetition calls each
once, in alternating order). Figures:

- `steps_per_s[recipe][layout][devices]`: training steps per second;
- `step_ratio[recipe][layout][devices]`: median over repetitions of (that
  step's time / the `none` step's time in the same repetition); 1.0 is
  perfect weak scaling.

The script asks XLA for 8 CPU devices (`XLA_FLAGS`, unless already set);
where JAX runs on accelerators it uses those instead, as many of 1, 2, 4
and 8 as there are. Forced CPU devices share this machine's cores, so there
the ratios measure the cost of splitting a batch (about the device count
when compute-bound), not a speed-up.

  python benchmarks/parallel.py            # table
  python benchmarks/parallel.py --json     # one JSON object on stdout
  python benchmarks/parallel.py --quick    # fewer repetitions
"""

import os
import sys

if "jax" not in sys.modules and "--xla_force_host" not in os.environ.get(
  "XLA_FLAGS", ""
):
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8"
  )

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from overhead import cpu_name, interleaved, ratio  # noqa: E402

import jaxprune  # noqa: E402
from jaxprune.data.dataset import Dataset, Split  # noqa: E402
from jaxprune.models import Conv2, LeNet300  # noqa: E402
from jaxprune.train import Trainer  # noqa: E402
from jaxprune.train.order import batch_indices  # noqa: E402

RECIPES = {
  "lenet": dict(model=LeNet300, per_device=60, chunk=20),
  "conv": dict(model=Conv2, per_device=16, chunk=1),
}
DEVICES = (1, 2, 4, 8)


def _dataset(n: int = 4096) -> Dataset:
  rng = np.random.default_rng(0)
  split = lambda m: Split(
    rng.standard_normal((m, 28, 28, 1)).astype(np.float32),
    rng.integers(0, 10, m).astype(np.int32),
  )
  return Dataset("random", 10, split(n), split(64), split(64))


def _runner(recipe: dict, dataset: Dataset, parallel: str, devices: int):
  """A function running one dispatch (`chunk` steps) of the recipe."""
  batch = recipe["per_device"] * devices
  trainer = Trainer(
    recipe["model"](),
    dataset,
    pruner=jaxprune.algorithms.gradual_magnitude(
      0.9, begin=0, end=10**6, frequency=100
    ),
    optimizer=optax.adam,
    learning_rate=1e-3,
    batch_size=batch,
    eval_every=recipe["chunk"],
    eval_batch_size=8 * devices,
    parallel=parallel,
    devices=devices,
  )
  state = trainer.init(trainer.init_variables(jax.random.key(0)), seed=0)
  layout = trainer.layout
  placed = layout.place(state)
  chunk = recipe["chunk"]
  indices = batch_indices(0, len(dataset.train.labels), batch, 0, chunk)
  inputs = (
    trainer._images,
    trainer._labels,
    layout.batches(indices),
    layout.shared(np.ones(chunk, bool)),
  )

  def run():
    nonlocal placed
    placed, losses = trainer.train_chunk(placed, *inputs)
    return losses

  for _ in range(2):  # compile, warm up
    jax.block_until_ready(run())
  return run


def measure(reps: int) -> dict:
  dataset = _dataset()
  out = {"steps_per_s": {}, "step_ratio": {}}
  for name, recipe in RECIPES.items():
    print(f"compiling {name} ...", file=sys.stderr)
    runners = {("none", 1): _runner(recipe, dataset, "none", 1)}
    for parallel in ("pmap", "sharded"):
      for devices in [d for d in DEVICES if d <= jax.local_device_count()]:
        runners[parallel, devices] = _runner(recipe, dataset, parallel, devices)
    print(f"timing {name} ({reps} repetitions) ...", file=sys.stderr)
    times = interleaved(runners, reps)
    base = times["none", 1]
    steps, ratios = {}, {}
    for (parallel, devices), t in times.items():
      steps.setdefault(parallel, {})[devices] = recipe["chunk"] / (
        statistics.median(t)
      )
      ratios.setdefault(parallel, {})[devices] = ratio(t, base)
    out["steps_per_s"][name] = steps
    out["step_ratio"][name] = ratios
  out.update(
    devices=jax.device_count(),
    platform=jax.devices()[0].platform,
    jax_version=jax.__version__,
    cpu=cpu_name(),
    cores=os.cpu_count(),
    reps=reps,
  )
  return out


def table(out: dict) -> str:
  lines = [
    f"{out['devices']} {out['platform']} devices ({out['cpu']}, "
    f"{out['cores']} cores), {out['reps']} repetitions; ratio = step time / "
    "single-device step time at equal per-device batch",
    "",
    f"{'recipe':8} {'layout':8} "
    + " ".join(f"{f'{d} dev steps/s':>14} {'ratio':>6}" for d in DEVICES),
  ]
  for name in RECIPES:
    for parallel in ("none", "pmap", "sharded"):
      cells = []
      for d in DEVICES:
        steps = out["steps_per_s"][name][parallel].get(d)
        r = out["step_ratio"][name][parallel].get(d)
        cells.append(f"{steps:14.1f} {r:6.2f}" if steps else f"{'':14} {'':6}")
      lines.append(f"{name:8} {parallel:8} " + " ".join(cells))
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--json", action="store_true", help="print JSON only")
  parser.add_argument("--quick", action="store_true", help="3 repetitions")
  parser.add_argument("--reps", type=int, default=15, help="repetitions")
  args = parser.parse_args()
  out = measure(3 if args.quick else args.reps)
  print(json.dumps(out) if args.json else table(out))


if __name__ == "__main__":
  main()
