"""What a `lax.cond` branch that is not taken costs per call, by its size.

`jaxprune.wrap` keeps the mask update in a `lax.cond` that ordinary steps
do not take. This script measures, in one process, a small jitted function
(`x + 1` on a 300x100 array) whose untaken branch holds n reductions, for
several n: each call's time, interleaved round-robin over the variants,
median of the repetitions, and the cost per reduction fitted by least
squares. On XLA:CPU the per-call cost grows with n although the branch never
runs: the runtime sets up one entry of its buffer table per buffer
allocation of the whole program, and every reduction adds allocations for
the values of its reducer computation.

  python benchmarks/untaken_branch.py           # table
  python benchmarks/untaken_branch.py --json    # one JSON object on stdout
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

SIZES = (0, 25, 50, 100, 150)


def variant(n: int):
  """`x + 1`, with a branch of n reductions that `flag=False` skips."""

  def f(x, flag):
    def update(x):
      return x + sum(jnp.sum(x * i) for i in range(n))

    return jax.lax.cond(flag, update, lambda x: x + 1, x)

  return jax.jit(f)


def run(reps: int) -> dict:
  x = jnp.ones((300, 100))
  flag = jnp.asarray(False)
  fns = {n: variant(n) for n in SIZES}
  for f in fns.values():
    jax.block_until_ready(f(x, flag))
  times = {n: [] for n in SIZES}
  for _ in range(reps):
    for n, f in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(f(x, flag))
      times[n].append(time.perf_counter() - start)
  us = {n: 1e6 * statistics.median(t) for n, t in times.items()}
  slope = np.polyfit(list(us), list(us.values()), 1)[0]
  return {
    "us_per_call": {str(n): round(v, 2) for n, v in us.items()},
    "us_per_untaken_reduction": round(float(slope), 3),
    "reps": reps,
    "backend": jax.default_backend(),
  }


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--json", action="store_true")
  parser.add_argument("--reps", type=int, default=2000)
  args = parser.parse_args()
  if args.reps < 1:
    parser.error(f"--reps={args.reps}: expected at least 1")
  result = run(args.reps)
  if args.json:
    print(json.dumps(result, sort_keys=True))
    return
  print("reductions in the untaken branch | us per call")
  for n, v in result["us_per_call"].items():
    print(f"{n:>32} | {v:.1f}")
  print(f"fitted: {result['us_per_untaken_reduction']} us per reduction")


if __name__ == "__main__":
  main()
