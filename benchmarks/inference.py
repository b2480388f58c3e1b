"""Inference latency of dense, masked, compacted and BCSR networks.

For LeNet-300-100, LeNet-5 and ResNet-20 with 25%, 50% and 75% of the
units of every group removed (L2 magnitude, `jaxprune.compact`), times the
jitted forward pass at batch 1 and batch 256 of

- the dense network;
- the masked network (same shapes, the removed units zeroed);
- the compacted network (physically smaller);

and reports `compact_speedup_<model>_<pct>` (dense time / compacted time at
batch 256, `_b1` at batch 1), `masked_speedup_<model>_<pct>` (dense /
masked: masks alone speed nothing up) and `flop_ratio_<model>_<pct>` (dense
multiply-adds / compacted), with the target speed-up >= 0.8 of the FLOP
ratio. A second table times LeNet-300-100 with unstructured masks at 90-99%
as BCSR (`jaxprune.compact.export_bcsr`) against dense:
`bcsr_speedup_lenet300_<pct>_b<batch>`.

All variants of one model and batch run interleaved, one call each per
repetition, so machine noise hits them alike; times are medians, speed-ups
are medians of per-repetition ratios.

  python -m benchmarks.inference            # tables
  python -m benchmarks.inference --json     # one JSON object on stdout
  python -m benchmarks.inference --quick    # fewer repetitions
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

import jaxprune
from jaxprune import compact, models

MODELS = {
  "lenet300": (models.LeNet300, (28, 28, 1)),
  "lenet5": (models.LeNet5, (28, 28, 1)),
  "resnet20": (models.ResNet20, (32, 32, 3)),
}
PCTS = (25, 50, 75)
BATCHES = (1, 256)
BCSR_PCTS = (90, 95, 98, 99)
TARGET = 0.8


def _timed(fns: dict, reps: int) -> dict:
  """name -> list of seconds per repetition, the calls interleaved."""
  for fn in fns.values():
    jax.block_until_ready(fn())
  times = {name: [] for name in fns}
  for _ in range(reps):
    for name, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn())
      times[name].append(time.perf_counter() - start)
  return times


def _ratio(times, num, den) -> float:
  return statistics.median(
    a / b for a, b in zip(times[num], times[den], strict=True)
  )


def structured(name: str, reps: dict, result: dict, rows: list) -> None:
  cls, shape = MODELS[name]
  model = cls()
  example = jnp.zeros((1, *shape))
  variables = model.init(jax.random.key(0), example)
  units = compact.find_groups(model.apply, variables, example)
  dense_macs = jaxprune.flops(model.apply, variables, None, example).dense
  apply = jax.jit(model.apply)
  variants = {"dense": (apply, variables)}
  for pct in PCTS:
    masks = compact.select_units(variables, units, pct / 100)
    full = compact.unit_masks(variables, masks, units)
    small_model, small = compact.compact_model(model, variables, masks, example)
    macs = jaxprune.flops(small_model.apply, small, None, example).dense
    result[f"flop_ratio_{name}_{pct}"] = dense_macs / macs
    variants[f"masked_{pct}"] = (apply, jaxprune.apply_masks(variables, full))
    variants[f"compact_{pct}"] = (jax.jit(small_model.apply), small)
  for batch in BATCHES:
    x = jax.random.normal(jax.random.key(1), (batch, *shape))
    fns = {k: (lambda f=f, v=v, x=x: f(v, x)) for k, (f, v) in variants.items()}
    times = _timed(fns, reps[batch])
    tag = "" if batch == 256 else f"_b{batch}"
    result[f"ms_{name}_dense_b{batch}"] = 1e3 * statistics.median(
      times["dense"]
    )
    for pct in PCTS:
      for kind in ("compact", "masked"):
        key = f"{kind}_speedup_{name}_{pct}{tag}"
        result[key] = _ratio(times, "dense", f"{kind}_{pct}")
        result[f"ms_{name}_{kind}_{pct}_b{batch}"] = 1e3 * statistics.median(
          times[f"{kind}_{pct}"]
        )
      if batch == 256:
        flop = result[f"flop_ratio_{name}_{pct}"]
        speed = result[f"compact_speedup_{name}_{pct}"]
        rows.append(
          (
            name,
            pct,
            flop,
            speed,
            result[f"masked_speedup_{name}_{pct}"],
            result[f"compact_speedup_{name}_{pct}_b1"],
            "PASS" if speed >= TARGET * flop else "FAIL",
          )
        )


def bcsr(reps: dict, result: dict, rows: list) -> None:
  model = models.LeNet300()
  example = jnp.zeros((1, 28, 28, 1))
  variables = model.init(jax.random.key(0), example)
  apply = jax.jit(model.apply)
  sparse_apply = jax.jit(
    lambda v, k, x: compact.apply_sparse(model.apply, v, k, x)
  )
  for batch in BATCHES:
    x = jax.random.normal(jax.random.key(1), (batch, 28, 28, 1))
    fns = {"dense": lambda x=x: apply(variables, x)}
    for pct in BCSR_PCTS:
      pruned, masks = jaxprune.prune(variables, pct / 100)
      kernels = compact.export_bcsr(pruned, masks, min_sparsity=0.0)
      fns[f"bcsr_{pct}"] = lambda p=pruned, k=kernels, x=x: sparse_apply(
        p, k, x
      )
    times = _timed(fns, reps[batch])
    for pct in BCSR_PCTS:
      key = f"bcsr_speedup_lenet300_{pct}_b{batch}"
      result[key] = _ratio(times, "dense", f"bcsr_{pct}")
      rows.append(("lenet300", pct, batch, result[key]))


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--json", action="store_true", help="print one JSON object"
  )
  parser.add_argument("--quick", action="store_true", help="fewer repetitions")
  parser.add_argument(
    "--models", default=",".join(MODELS), help="comma-separated subset"
  )
  args = parser.parse_args(argv)
  reps = {1: 50, 256: 7} if args.quick else {1: 200, 256: 21}
  result, rows, sparse_rows = {}, [], []
  for name in args.models.split(","):
    structured(name, reps, result, rows)
  bcsr(reps, result, sparse_rows)
  if args.json:
    print(json.dumps(result, sort_keys=True))
    return
  print(
    f"{'model':9} {'removed':>7} {'flop ratio':>10} {'speed-up':>9} "
    f"{'masked':>7} {'batch 1':>8}  target: speed-up >= {TARGET} x flops"
  )
  for name, pct, flop, speed, masked, b1, verdict in rows:
    print(
      f"{name:9} {pct:>6}% {flop:>10.2f} {speed:>9.2f} {masked:>7.2f} "
      f"{b1:>8.2f}  {verdict}"
    )
  print(f"\n{'BCSR':9} {'sparsity':>8} {'batch':>6} {'speed-up':>9}")
  for name, pct, batch, speed in sparse_rows:
    print(f"{name:9} {pct:>7}% {batch:>6} {speed:>9.2f}")


if __name__ == "__main__":
  main()
