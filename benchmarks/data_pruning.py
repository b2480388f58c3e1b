"""Data-pruning scores against the passes they are compared with.

LeNet-300-100 on the Fashion-MNIST training split (55,000 examples; the
'digits' data where Fashion-MNIST is missing), in one process:

- `el2n_vs_eval`: `jaxprune.data_pruning.el2n` over the training split
  (batches of 1,000) / one `jaxprune.train.evaluate` pass over the same
  split, same batches. Target <= 1.3.
- `grand_vmap_vs_epoch` (no target): the generic `grand` (vmapped
  per-example gradients, 128 at once), for any model, against the same
  epoch; `--no-vmap` skips it.
- `grand_vs_epoch`: `jaxprune.data_pruning.grand_dense` over the training
  split (batches of 1,000) / one training epoch of the same model
  (`Trainer.fit`, batch 128, Adam, the whole epoch scanned in one call, no
  evaluation). Target <= 3.0.

Each pair is compiled first, then timed `--reps` times interleaved (ABBA);
a ratio is the median of the per-repetition ratios.

  python benchmarks/data_pruning.py           # table
  python benchmarks/data_pruning.py --json    # one JSON object on stdout
  python benchmarks/data_pruning.py --quick   # 2 repetitions
"""

import argparse
import json
import sys

import jax
import jax.numpy as jnp
import optax
from overhead import cpu_name, interleaved, ms, ratio

from jaxprune.algorithms import fixed
from jaxprune.data import load
from jaxprune.data_pruning import el2n, grand, grand_dense
from jaxprune.models import LeNet300
from jaxprune.train import Trainer, batch_indices, batched, evaluate

TARGETS = {"el2n_vs_eval": 1.3, "grand_vs_epoch": 3.0}
BATCH_SIZE = 128
EVAL_BATCH_SIZE = 1000


def run(reps: int, log, vmap: bool = True) -> dict:
  try:
    data = load("fashion_mnist", seed=0)
  except FileNotFoundError as e:
    log(f"note: Fashion-MNIST not found ({e}); using 'digits' instead")
    data = load("digits", seed=0)
  n = len(data.train.labels)
  epoch = n // BATCH_SIZE
  model = LeNet300(num_classes=data.num_classes)
  trainer = Trainer(
    model,
    data,
    pruner=fixed(),
    optimizer=optax.adam,
    learning_rate=1e-3,
    batch_size=BATCH_SIZE,
    eval_every=epoch,
    steps_per_dispatch=epoch,
  )
  state = trainer.init(trainer.init_variables(jax.random.key(0)), seed=0)
  params = state.params
  images, labels = (
    jnp.asarray(data.train.images),
    jnp.asarray(data.train.labels),
  )
  split = batched(data.train, EVAL_BATCH_SIZE)
  apply_fn = lambda p, x: model.apply({"params": p}, x)
  logits_fn = lambda v, x: model.apply(v, x)
  # The split is an argument, as in the trainer (not a baked-in constant).
  eval_fn = jax.jit(lambda p, s: evaluate(logits_fn, {"params": p}, s))
  chunk = lambda: trainer.train_chunk(
    state,
    trainer._images,
    trainer._labels,
    *_epoch_batches(n, epoch),
  )
  fns = {
    "el2n": lambda: el2n(
      apply_fn, params, images, labels, batch_size=EVAL_BATCH_SIZE
    ),
    "eval": lambda: eval_fn(params, split),
    "grand": lambda: grand_dense(
      model, params, images, labels, batch_size=EVAL_BATCH_SIZE
    ),
    "epoch": chunk,
  }
  if vmap:
    fns["grand_vmap"] = lambda: grand(
      apply_fn, params, images, labels, batch_size=BATCH_SIZE
    )
  log("compiling")
  for fn in fns.values():
    jax.block_until_ready(fn())
  log(f"timing {reps} repetitions")
  times = interleaved(fns, reps)
  return {
    "examples": n,
    "epoch_steps": epoch,
    "reps": reps,
    "cpu": cpu_name(),
    "devices": jax.device_count(),
    "ms": {name: ms(t) for name, t in times.items()},
    "el2n_vs_eval": ratio(times["el2n"], times["eval"]),
    "grand_vs_epoch": ratio(times["grand"], times["epoch"]),
    **(
      {"grand_vmap_vs_epoch": ratio(times["grand_vmap"], times["epoch"])}
      if vmap
      else {}
    ),
    "targets": TARGETS,
  }


def _epoch_batches(n: int, steps: int):
  """One epoch's batch indices and the all-active flags, as the trainer's
  compiled chunk takes them."""
  indices = batch_indices(0, n, BATCH_SIZE, 0, steps)
  return jnp.asarray(indices), jnp.ones(steps, bool)


def table(r: dict) -> str:
  lines = [
    f"LeNet-300-100, {r['examples']} training examples, {r['reps']} reps, "
    f"{r['cpu']} ({r['devices']} device(s))",
    "",
    f"{'pass':<8}{'ms':>10}",
  ]
  lines += [f"{k:<8}{v:>10.1f}" for k, v in r["ms"].items()]
  lines.append("")
  lines.append(f"{'ratio':<16}{'value':>8}{'target':>8}")
  for k, target in r["targets"].items():
    mark = "ok" if r[k] <= target else "MISSED"
    lines.append(f"{k:<16}{r[k]:>8.3f}{target:>8.1f}  {mark}")
  if "grand_vmap_vs_epoch" in r:
    lines.append(f"{'grand_vmap_vs_epoch':<16}{r['grand_vmap_vs_epoch']:>8.3f}")
  return "\n".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--json", action="store_true", help="print JSON")
  parser.add_argument("--quick", action="store_true", help="2 repetitions")
  parser.add_argument("--reps", type=int, default=None, help="default 6")
  parser.add_argument(
    "--no-vmap", action="store_true", help="skip the generic vmapped grand"
  )
  args = parser.parse_args(argv)
  reps = args.reps if args.reps is not None else 2 if args.quick else 6
  if reps < 1:
    parser.error("--reps must be >= 1")
  log = lambda msg: print(msg, file=sys.stderr, flush=True)
  result = run(reps, log, vmap=not args.no_vmap)
  print(json.dumps(result, sort_keys=True) if args.json else table(result))


if __name__ == "__main__":
  main()
