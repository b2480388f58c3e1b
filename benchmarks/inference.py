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
ratio. LeNet-5 and ResNet-20 run with both convolution implementations
(`conv_impl='xla'` and `'shifts'`, `jaxprune.models.shift_conv`): the
speed-up compares the faster dense variant with the faster compacted one
(`impl_<model>_<variant>` names them); `compact_speedup_xla_<model>_<pct>`
is the same with XLA's convolution on both sides.

The conv floor table times the models' convolutions alone: every
`conv_general_dilated` of the dense and the compacted programs (shapes
and parameters read from the traced programs), at batch 256, as bare
calls in one jitted function with no jaxprune or flax code, a third as
many repetitions as at batch 256 (at least 3), in four
implementations: XLA's NHWC convolution (the models' own), NCHW, explicit
patches (`conv_general_dilated_patches`) and one matmul, and shifts
(`conv_by_shifts`: <= 3 input channels; XLA's above). `conv_floor_<model>_
<pct>` is bare-conv dense / compacted time (XLA, NHWC), `conv_floor_<impl>_
<model>_<pct>` the others, `conv_flop_ratio_<model>_<pct>` their FLOP
ratio: what the target can be judged against in the same run. For
LeNet-300-100, which has no convolution, the same is done for its matrix
products (every `dot_general`, bare, XLA's): `matmul_floor_lenet300_<pct>`.

A last table times LeNet-300-100 with unstructured masks at 90-99%
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
import dataclasses
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxprune
from jaxprune import compact, models
from jaxprune.compact import program
from jaxprune.models import shift_conv
from jaxprune.posttrain.calibration import conv_patches

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


def _impls(model) -> tuple[str, ...]:
  """The convolution implementations the model can run."""
  fields = {f.name for f in dataclasses.fields(model)}
  return shift_conv.IMPLS if "conv_impl" in fields else ("xla",)


def _jit(model):
  """`model.apply` jitted; with shifted convolutions, with the compiler
  options they need (`shift_conv.compiler_options`)."""
  shifts = getattr(model, "conv_impl", "xla") == "shifts"
  options = shift_conv.compiler_options() if shifts else None
  return jax.jit(model.apply, compiler_options=options)


def _faster(times: dict, names: list[str]) -> str:
  return min(names, key=lambda n: statistics.median(times[n]))


def compacted(name: str) -> tuple:
  """The model, its variables, example input and `{pct: (masks, compacted
  model, compacted variables)}` (L2 magnitude, every group at pct)."""
  cls, shape = MODELS[name]
  model = cls()
  example = jnp.zeros((1, *shape))
  variables = model.init(jax.random.key(0), example)
  units = compact.find_groups(model.apply, variables, example)
  small = {}
  for pct in PCTS:
    masks = compact.select_units(variables, units, pct / 100)
    full = compact.unit_masks(variables, masks, units)
    small[pct] = (
      full,
      *compact.compact_model(model, variables, masks, example),
    )
  return model, variables, example, small


def structured(name: str, reps: dict, result: dict, rows: list) -> None:
  shape = MODELS[name][1]
  model, variables, example, small = compacted(name)
  dense_macs = jaxprune.flops(model.apply, variables, None, example).dense
  impls = _impls(model)
  apply = jax.jit(model.apply)
  variants = {}
  for impl in impls:
    tag = "" if impl == "xla" else f"_{impl}"
    fast = _jit(model.clone(conv_impl=impl)) if tag else apply
    variants[f"dense{tag}"] = (fast, variables)
  for pct, (full, small_model, small_vars) in small.items():
    macs = jaxprune.flops(small_model.apply, small_vars, None, example).dense
    result[f"flop_ratio_{name}_{pct}"] = dense_macs / macs
    variants[f"masked_{pct}"] = (apply, jaxprune.apply_masks(variables, full))
    for impl in impls:
      tag = "" if impl == "xla" else f"_{impl}"
      run = small_model.clone(conv_impl=impl) if tag else small_model
      variants[f"compact_{pct}{tag}"] = (_jit(run), small_vars)
  for batch in BATCHES:
    x = jax.random.normal(jax.random.key(1), (batch, *shape))
    fns = {k: (lambda f=f, v=v, x=x: f(v, x)) for k, (f, v) in variants.items()}
    times = _timed(fns, reps[batch])
    tag = "" if batch == 256 else f"_b{batch}"
    suffixes = ["" if i == "xla" else f"_{i}" for i in impls]
    dense = _faster(times, [f"dense{t}" for t in suffixes])
    result[f"impl_{name}_dense_b{batch}"] = dense
    for k, t in times.items():
      result[f"ms_{name}_{k}_b{batch}"] = 1e3 * statistics.median(t)
    for pct in PCTS:
      best = _faster(times, [f"compact_{pct}{t}" for t in suffixes])
      result[f"impl_{name}_{pct}_b{batch}"] = best
      result[f"compact_speedup_{name}_{pct}{tag}"] = _ratio(times, dense, best)
      if len(impls) > 1:
        key = f"compact_speedup_xla_{name}_{pct}{tag}"
        result[key] = _ratio(times, "dense", f"compact_{pct}")
      key = f"masked_speedup_{name}_{pct}{tag}"
      result[key] = _ratio(times, "dense", f"masked_{pct}")
      if batch == 256:
        flop = result[f"flop_ratio_{name}_{pct}"]
        speed = result[f"compact_speedup_{name}_{pct}"]
        rows.append(
          (
            name,
            pct,
            flop,
            speed,
            result.get(f"compact_speedup_xla_{name}_{pct}", speed),
            result[f"masked_speedup_{name}_{pct}"],
            result[f"compact_speedup_{name}_{pct}_b1"],
            "PASS" if speed >= TARGET * flop else "FAIL",
          )
        )


def _convs(apply_fn, variables, example, name="conv_general_dilated"):
  """`(params, lhs shape, rhs shape, multiply-adds per image)` of every
  convolution (or, with `name='dot_general'`, every matrix product of a
  2-D kernel) in the program of `apply_fn(variables, example)`, the batch
  set to 256."""
  out = []
  for op in program.trace(apply_fn, variables, example).ops:
    if op.name == name:
      lhs, rhs = op.in_shapes
      macs = np.prod(op.out_shapes[0][1:]) * np.prod(rhs[:-1])
      out.append((op.params, (256, *lhs[1:]), rhs, int(macs)))
  return out


def _bare(impl: str, convs: list):
  """One jitted function running `convs` (inputs made for `impl`)."""
  nchw = ("NCHW", "OIHW", "NCHW")

  def one(params, x, k):
    if impl == "matmul":
      return lax.dot_general_p.bind(x, k, **params)
    pads, strides = params["padding"], params["window_strides"]
    if impl == "nchw":
      return lax.conv_general_dilated(
        x, k, strides, pads, dimension_numbers=nchw
      )
    if impl == "patches":
      rows = conv_patches(x, k.shape[:-2], strides, pads)
      return rows @ k.reshape(-1, k.shape[-1])
    if impl == "shifts":
      dims = params["dimension_numbers"]
      return shift_conv.conv_by_shifts(
        x, k, strides, pads, dimension_numbers=dims
      )
    return lax.conv_general_dilated_p.bind(x, k, **params)

  options = shift_conv.compiler_options() if impl == "shifts" else None
  fn = jax.jit(
    lambda args: [
      one(c[0], x, k) for c, (x, k) in zip(convs, args, strict=True)
    ],
    compiler_options=options,
  )
  args = []
  for i, (_, lhs, rhs, _) in enumerate(convs):
    x = jax.random.normal(jax.random.key(i), lhs)
    k = jax.random.normal(jax.random.key(100 + i), rhs)
    if impl == "nchw":
      x, k = jnp.transpose(x, (0, 3, 1, 2)), jnp.transpose(k, (3, 2, 0, 1))
    args.append((x, k))
  return lambda: fn(args)


CONV_IMPLS = ("xla", "nchw", "patches", "shifts")


def conv_floor(name: str, reps: int, result: dict, rows: list) -> None:
  """Bare convolutions of the dense and compacted models (module
  docstring): ratios per implementation."""
  model, variables, example, small = compacted(name)
  shapes = {"dense": _convs(model.apply, variables, example)}
  for pct, (_, small_model, small_vars) in small.items():
    shapes[pct] = _convs(small_model.apply, small_vars, example)
  macs = {k: sum(c[-1] for c in convs) for k, convs in shapes.items()}
  fns = {
    f"{impl}_{k}": _bare(impl, convs)
    for impl in CONV_IMPLS
    for k, convs in shapes.items()
  }
  times = _timed(fns, reps)
  for impl in CONV_IMPLS:
    key = f"conv_ms_{impl}_{name}_dense"
    result[key] = 1e3 * statistics.median(times[f"{impl}_dense"])
  for pct in PCTS:
    result[f"conv_flop_ratio_{name}_{pct}"] = float(macs["dense"] / macs[pct])
    for impl in CONV_IMPLS:
      key = (
        f"conv_floor_{name}_{pct}"
        if impl == "xla"
        else (f"conv_floor_{impl}_{name}_{pct}")
      )
      result[key] = _ratio(times, f"{impl}_dense", f"{impl}_{pct}")
      result[f"conv_ms_{impl}_{name}_{pct}"] = 1e3 * statistics.median(
        times[f"{impl}_{pct}"]
      )
    rows.append(
      (name, pct, result[f"conv_flop_ratio_{name}_{pct}"])
      + tuple(
        result[
          f"conv_floor_{name}_{pct}"
          if i == "xla"
          else f"conv_floor_{i}_{name}_{pct}"
        ]
        for i in CONV_IMPLS
      )
    )


def matmul_floor(name: str, reps: int, result: dict) -> None:
  """Bare matrix products of the dense and compacted models (module
  docstring): `matmul_floor_<name>_<pct>`, dense / compacted time."""
  model, variables, example, small = compacted(name)
  shapes = {"dense": _convs(model.apply, variables, example, "dot_general")}
  for pct, (_, small_model, small_vars) in small.items():
    shapes[pct] = _convs(small_model.apply, small_vars, example, "dot_general")
  times = _timed({k: _bare("matmul", v) for k, v in shapes.items()}, reps)
  for pct in PCTS:
    result[f"matmul_floor_{name}_{pct}"] = _ratio(times, "dense", pct)


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
  result, rows, floor_rows, sparse_rows = {}, [], [], []
  for name in args.models.split(","):
    structured(name, reps, result, rows)
    if name != "lenet300":  # the networks with convolutions
      conv_floor(name, max(3, reps[256] // 3), result, floor_rows)
    else:
      matmul_floor(name, reps[256], result)
  bcsr(reps, result, sparse_rows)
  if args.json:
    print(json.dumps(result, sort_keys=True))
    return
  print(
    f"{'model':9} {'removed':>7} {'flop ratio':>10} {'speed-up':>9} "
    f"{'xla only':>8} {'masked':>7} {'batch 1':>8}  "
    f"target: speed-up >= {TARGET} x flops"
  )
  for name, pct, flop, speed, xla, masked, b1, verdict in rows:
    print(
      f"{name:9} {pct:>6}% {flop:>10.2f} {speed:>9.2f} {xla:>8.2f} "
      f"{masked:>7.2f} {b1:>8.2f}  {verdict}"
    )
  floors = [k for k in result if k.startswith("matmul_floor_")]
  if floors:
    print("\nmatmul floor: bare matrix products, dense / compacted, batch 256")
    for key in floors:
      print(f"{key:30} {result[key]:>8.2f}")
  if floor_rows:
    print(
      f"\nconv floor: bare convolutions, dense / compacted time, batch 256\n"
      f"{'model':9} {'removed':>7} {'conv flops':>10} "
      + " ".join(f"{i:>8}" for i in CONV_IMPLS)
    )
    for name, pct, flop, *ratios in floor_rows:
      print(
        f"{name:9} {pct:>6}% {flop:>10.2f} "
        + " ".join(f"{r:>8.2f}" for r in ratios)
      )
  print(f"\n{'BCSR':9} {'sparsity':>8} {'batch':>6} {'speed-up':>9}")
  for name, pct, batch, speed in sparse_rows:
    print(f"{name:9} {pct:>7}% {batch:>6} {speed:>9.2f}")


if __name__ == "__main__":
  main()
