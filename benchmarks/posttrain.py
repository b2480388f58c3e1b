"""Post-training pruning of all-MiniLM-L6-v2: SparseGPT's cost.

Measures, in one process:

- `sparsegpt_vs_wanda`: whole-model `jaxprune.posttrain.prune` with
  SparseGPT over the same with Wanda, both sequential at 50% on all 36
  kernels, on the same calibration batches (128 training-split fortunes of
  64 tokens, `posttrain_tasks.minilm_calibration`, seed 0), the
  calibration forward passes included. Each method runs once to compile,
  then `--reps` times interleaved (ABBA); the ratio is the median of the
  paired ratios. Target <= 2.0.
- `sparsegpt_vs_numpy`: the jitted solver `jaxprune.posttrain.sparsegpt`
  on layer 0's feed-forward kernels (384 -> 1536 and 1536 -> 384, with their
  real calibration statistics) over a plain float64 numpy SparseGPT written
  here from the paper's algorithm (damping 0.01, blocks of 128, the mask of
  a block from w^2 / U_jj^2 pooled over its rows, column-by-column error
  compensation, the lazy update of later blocks). The median over
  `--layer-reps` interleaved calls (numpy's time varies by a third between
  calls here), compiled first; the masks are compared (fraction of entries that
  differ; ties can differ between float32 and float64). Target <= 0.2.
- `peak_rss_mb`: the process's peak resident memory after all of it.
- per-layer solver seconds (median over the 6 layers of each kind) of the
  last whole-model run of each method.

  python benchmarks/posttrain.py            # table
  python benchmarks/posttrain.py --json     # one JSON object on stdout
  python benchmarks/posttrain.py --quick    # 32 sequences, 1 rep
"""

import argparse
import json
import resource
import statistics
import sys
import time

import jax
import numpy as np
from overhead import cpu_name, interleaved, ratio

from jaxprune import posttrain as pt
from jaxprune.experiments.posttrain_tasks import minilm_calibration
from jaxprune.models import pretrained

SPARSITY = 0.5
LENGTH = 64
LAYERS = ("params/layer0/intermediate/kernel", "params/layer0/output/kernel")


def numpy_sparsegpt(
  w: np.ndarray, hessian: np.ndarray, sparsity: float, block: int = 128
) -> tuple[np.ndarray, np.ndarray]:
  """SparseGPT in float64 numpy, `w` as `(outputs, inputs)`; returns the
  new weights and the kept mask. Each block prunes round(s * its entries)
  of the smallest w^2 / U_jj^2."""
  w = w.astype(np.float64).copy()
  h = hessian.astype(np.float64).copy()
  dead = np.diag(h) == 0
  h[dead, dead] = 1.0
  w[:, dead] = 0.0
  h += 0.01 * np.mean(np.diag(h)) * np.eye(len(h))
  u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: u.T @ u = H^-1
  keep = np.ones(w.shape, bool)
  for start in range(0, w.shape[1], block):
    stop = min(start + block, w.shape[1])
    ub = u[start:stop, start:stop]
    wb = w[:, start:stop].copy()
    score = wb**2 / np.diag(ub) ** 2
    pruned = int(round(sparsity * score.size))
    order = np.argsort(score, axis=None, kind="stable")[:pruned]
    kb = np.ones(score.size, bool)
    kb[order] = False
    kb = kb.reshape(score.shape)
    errors = np.zeros_like(wb)
    for j in range(stop - start):
      q = np.where(kb[:, j], wb[:, j], 0.0)
      err = (wb[:, j] - q) / ub[j, j]
      wb[:, j:] -= np.outer(err, ub[j, j:])
      wb[:, j] = q
      errors[:, j] = err
    w[:, start:stop] = wb
    w[:, stop:] -= errors @ u[start:stop, stop:]
    keep[:, start:stop] = kb
  return w, keep


def whole_model(model, variables, batches, reps: int, log) -> dict:
  apply = lambda v, b: model.apply(v, **b)
  reports = {}

  def prune(method):
    def call():
      result = pt.prune(
        apply,
        variables,
        batches,
        method=method,
        sparsity=SPARSITY,
        prune_head=True,
      )
      reports[method] = result.report
      return result.params

    return call

  calls = {m: prune(m) for m in ("sparsegpt", "wanda")}
  first = {}
  for name, call in calls.items():
    start = time.perf_counter()
    jax.block_until_ready(call())
    first[name] = time.perf_counter() - start
    log(f"{name}: first whole-model run {first[name]:.1f} s")
  times = interleaved(calls, reps)
  per_layer = {}
  for method, report in reports.items():
    kinds = {}
    for path, r in report.items():
      kinds.setdefault(path.split("/")[-2], []).append(r.seconds)
    per_layer[method] = {k: statistics.median(v) for k, v in kinds.items()}
  return {
    "sparsegpt_vs_wanda": ratio(times["sparsegpt"], times["wanda"]),
    "sparsegpt_s": statistics.median(times["sparsegpt"]),
    "wanda_s": statistics.median(times["wanda"]),
    "first_run_s": first,
    "per_layer_solver_s": per_layer,
  }


def versus_numpy(model, variables, batches, reps: int, log) -> dict:
  apply = lambda v, b: model.apply(v, **b)
  stats = pt.calibrate(apply, variables, batches, list(LAYERS))
  out = {}
  for path in LAYERS:
    name = path.split("/")[-2]
    kernel = variables["params"]["layer0"][name]["kernel"]
    s = stats[path]
    jitted = lambda k=kernel, s=s: pt.sparsegpt(k, s, sparsity=SPARSITY)[0]
    jax.block_until_ready(jitted())  # compile
    w = np.asarray(kernel).T
    hessian = np.asarray(s.hessian)
    reference = lambda w=w, h=hessian: numpy_sparsegpt(w, h, SPARSITY)
    times = interleaved({"jax": jitted, "numpy": reference}, reps)
    new, mask = pt.sparsegpt(kernel, s, sparsity=SPARSITY)
    ref_w, ref_mask = reference()
    differ = float(np.mean(ref_mask != np.asarray(mask).T))
    same = ref_mask == np.asarray(mask).T
    gap = np.max(np.abs(np.asarray(new).T - ref_w)[same])
    out[name] = {
      "shape": list(w.shape),
      "ratio": ratio(times["jax"], times["numpy"]),
      "jax_s": statistics.median(times["jax"]),
      "numpy_s": statistics.median(times["numpy"]),
      "mask_differ_fraction": differ,
      "max_weight_gap_where_masks_agree": float(gap),
    }
    log(f"{name} {w.shape}: {out[name]}")
  return {
    "sparsegpt_vs_numpy": max(v["ratio"] for v in out.values()),
    "layers": out,
  }


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--json", action="store_true", help="print JSON")
  parser.add_argument("--quick", action="store_true", help="a smoke run")
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--layer-reps", type=int, default=11)
  args = parser.parse_args(argv)
  log = lambda s: print(s, file=sys.stderr)
  size, reps = (32, 1) if args.quick else (128, args.reps)
  layer_reps = 1 if args.quick else args.layer_reps
  model, variables = pretrained.load_minilm()
  batches = minilm_calibration(size, LENGTH, 0, 32)
  result = {
    "cpu": cpu_name(),
    "devices": jax.device_count(),
    "calibration": f"{size} fortunes of {LENGTH} tokens",
    "reps": reps,
    "layer_reps": layer_reps,
  }
  result.update(versus_numpy(model, variables, batches, layer_reps, log))
  result.update(whole_model(model, variables, batches, reps, log))
  result["peak_rss_mb"] = (
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  )
  if args.json:
    print(json.dumps(result, sort_keys=True))
    return
  rows = [
    ("sparsegpt_vs_wanda (target <= 2.0)", result["sparsegpt_vs_wanda"]),
    ("  SparseGPT whole model, s", result["sparsegpt_s"]),
    ("  Wanda whole model, s", result["wanda_s"]),
    ("sparsegpt_vs_numpy (target <= 0.2)", result["sparsegpt_vs_numpy"]),
  ]
  for name, v in result["layers"].items():
    rows += [
      (f"  {name} {v['shape']} jax / numpy", v["ratio"]),
      (f"  {name} masks differing", v["mask_differ_fraction"]),
    ]
  rows.append(("peak_rss_mb", result["peak_rss_mb"]))
  for method, kinds in result["per_layer_solver_s"].items():
    for kind, s in kinds.items():
      rows.append((f"  {method} {kind} solver, s", s))
  print(
    f"{result['cpu']}, {result['devices']} device(s), {result['calibration']}"
  )
  for name, value in rows:
    print(f"{name:45s} {value:10.4f}")


if __name__ == "__main__":
  main()
