"""One round of the LeNet-300-100 lottery recipe: jaxprune against plain JAX.

Times, in one process, one IMP round as `configs/lottery/
lenet300_fashion_mnist.py` runs it: LeNet-300-100 trained `--steps` steps
(default 5,000) on Fashion-MNIST with Adam 1.2e-3 and batch 60 under a
20%-pruned mask set (layerwise 20% / 20% / 10%, from theta_0), evaluated on
the validation and test splits at step 0 and every 250 steps. Two sides:

- jaxprune: `jaxprune.train.Trainer` built as the lottery runner builds it
  (pruner `fixed()`, 250 steps a dispatch), `trainer.init(theta_0, masks)`
  (which calls `jaxprune.set_masks`) and `trainer.fit` without checkpoints.
- plain: a hand-written IMP loop: a jitted (donating) step doing forward,
  grad, `optax.adam` update and `apply_updates`, then params times masks;
  a Python loop over steps, each batch gathered with numpy on the host from
  the same batch order (`jaxprune.train.order.batch_indices`); a jitted
  whole-split evaluation of validation and test at the same steps.

Both are compiled by a warm-up round of 250 steps, run twice: the compile
time is the first minus the second. The measured rounds are interleaved, the
order alternating (ABBA), so load from other processes hits both sides alike.
`round_ratio` is median jaxprune round / median plain round.

  python benchmarks/lottery.py             # table
  python benchmarks/lottery.py --json      # one JSON object on stdout
  python benchmarks/lottery.py --quick     # 1,000 steps, 2 rounds a side
"""

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from overhead import cpu_name, interleaved, ratio

import jaxprune
from jaxprune.algorithms import fixed, lottery
from jaxprune.data import load
from jaxprune.models import get as get_model
from jaxprune.train import Trainer
from jaxprune.train.order import batch_indices

TARGET = 1.0
SEED = 0
LEARNING_RATE = 1.2e-3
BATCH_SIZE = 60
EVAL_EVERY = 250
EVAL_BATCH_SIZE = 1000
RATE, RATES = 0.2, {"fc3": 0.1}


def load_dataset(log):
  try:
    return load("fashion_mnist", seed=SEED)
  except FileNotFoundError as e:
    log(f"note: Fashion-MNIST not found ({e}); using 'digits' instead")
    return load("digits", seed=SEED)


def jaxprune_round(dataset, theta_0, masks):
  """`steps -> final record`: one round through the library's Trainer."""
  trainer = Trainer(
    get_model("lenet300", num_classes=dataset.num_classes),
    dataset,
    pruner=fixed(),
    optimizer=optax.adam,
    learning_rate=LEARNING_RATE,
    batch_size=BATCH_SIZE,
    eval_every=EVAL_EVERY,
    steps_per_dispatch=EVAL_EVERY,
    eval_batch_size=EVAL_BATCH_SIZE,
  )

  def run(steps):
    state = trainer.init(theta_0, masks, seed=SEED)
    return trainer.fit(state, steps).final

  return run


def plain_round(dataset, theta_0, masks):
  """`steps -> final record`: one round of a hand-written jitted loop."""
  model = get_model("lenet300", num_classes=dataset.num_classes)
  tx = optax.adam(LEARNING_RATE)
  images, labels = dataset.train
  splits = {
    name: (jnp.asarray(split.images), jnp.asarray(split.labels))
    for name, split in (("val", dataset.validation), ("test", dataset.test))
  }
  # Float masks on every leaf: ones where jaxprune leaves a leaf unpruned.
  masks = jax.tree.map(
    lambda m, p: jnp.ones_like(p) if m is None else m.astype(p.dtype),
    masks,
    theta_0["params"],
    is_leaf=lambda x: x is None,
  )

  def loss_fn(params, x, y):
    logits = model.apply({"params": params}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def step(params, opt_state, masks, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return jax.tree.map(jnp.multiply, params, masks), opt_state, loss

  step = jax.jit(step, donate_argnums=(0, 1))

  @jax.jit
  def evaluate(params, x, y):
    logits = model.apply({"params": params}, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return loss.mean(), (jnp.argmax(logits, -1) == y).mean()

  def record(params, t, losses):
    train_loss = np.mean(jax.device_get(losses)) if losses else None
    out = {"step": t, "train_loss": train_loss}
    for name, (x, y) in splits.items():
      loss, accuracy = evaluate(params, x, y)
      out[f"{name}_loss"] = float(loss)
      out[f"{name}_accuracy"] = float(accuracy)
    return out

  def run(steps):
    params = jax.tree.map(jnp.multiply, theta_0["params"], masks)
    opt_state = tx.init(params)
    order = batch_indices(SEED, len(labels), BATCH_SIZE, 0, steps)
    history, losses = [record(params, 0, [])], []
    for t in range(steps):
      batch = order[t]
      params, opt_state, loss = step(
        params, opt_state, masks, images[batch], labels[batch]
      )
      losses.append(loss)
      if (t + 1) % EVAL_EVERY == 0 or t + 1 == steps:
        history.append(record(params, t + 1, losses))
        losses = []
    return history[-1]

  return run


def run(steps: int, reps: int, log) -> dict:
  dataset = load_dataset(log)
  model = get_model("lenet300", num_classes=dataset.num_classes)
  x = jnp.zeros((1,) + dataset.train.images.shape[1:])
  theta_0 = dict(model.init(jax.random.fold_in(jax.random.key(SEED), 0), x))
  # Round 1 of IMP: the dense masks with 20% / 20% / 10% removed.
  dense = jaxprune.masks_of(
    jaxprune.wrap(optax.adam(LEARNING_RATE), fixed()).init(theta_0["params"])
  )
  masks = lottery.next_masks(theta_0["params"], dense, RATE, rates=RATES)
  sides = {
    "jaxprune": jaxprune_round(dataset, theta_0, masks),
    "plain": plain_round(dataset, theta_0, masks),
  }
  out = {}
  warm = min(steps, EVAL_EVERY)
  for name, fn in sides.items():
    log(f"{name}: compiling (two warm-up rounds of {warm} steps) ...")
    times = []
    for _ in range(2):
      t0 = time.perf_counter()
      fn(warm)
      times.append(time.perf_counter() - t0)
    out[f"{name}_compile_s"] = round(times[0] - times[1], 3)
  finals = {}

  def measured(name):
    def call():
      log(f"{name}: round of {steps} steps ...")
      finals[name] = sides[name](steps)

    return call

  t = interleaved({name: measured(name) for name in sides}, reps)
  for name in sides:
    out[f"{name}_round_s"] = round(statistics.median(t[name]), 3)
    out[f"{name}_rounds_s"] = [round(s, 3) for s in t[name]]
    for split in ("val", "test"):
      key = f"{split}_accuracy"
      out[f"{name}_{key}"] = round(finals[name][key], 4)
  out["round_ratio"] = round(out["jaxprune_round_s"] / out["plain_round_s"], 3)
  out["round_ratio_paired"] = round(ratio(t["jaxprune"], t["plain"]), 3)
  out.update(
    steps=steps,
    reps=reps,
    dataset=dataset.name,
    remaining=round(jaxprune.summary(masks).density, 4),
    jax_version=jax.__version__,
    devices=[str(d) for d in jax.devices()],
    cpu=cpu_name(),
    cores=os.cpu_count(),
  )
  return out


def table(r: dict) -> str:
  verdict = "PASS" if r["round_ratio"] <= TARGET else "FAIL"
  rows = [
    ("jaxprune round (s)", f"{r['jaxprune_round_s']:.2f}"),
    ("plain round (s)", f"{r['plain_round_s']:.2f}"),
    ("round_ratio", f"{r['round_ratio']:.3f}  (<= {TARGET}: {verdict})"),
    ("round_ratio_paired (info)", f"{r['round_ratio_paired']:.3f}"),
    ("jaxprune compile (s)", f"{r['jaxprune_compile_s']:.2f}"),
    ("plain compile (s)", f"{r['plain_compile_s']:.2f}"),
    ("jaxprune val / test accuracy", _accuracies(r, "jaxprune")),
    ("plain val / test accuracy", _accuracies(r, "plain")),
  ]
  width = max(len(name) for name, _ in rows)
  lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
  lines.append(
    f"\n{r['steps']} steps on {r['dataset']}, {100 * r['remaining']:.1f}% "
    f"of weights kept, {r['reps']} rounds a side;\n{r['cpu']}, "
    f"{r['cores']} cores, jax {r['jax_version']}"
  )
  return "\n".join(lines)


def _accuracies(r: dict, name: str) -> str:
  return f"{r[f'{name}_val_accuracy']:.4f} / {r[f'{name}_test_accuracy']:.4f}"


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--json", action="store_true", help="print JSON")
  parser.add_argument(
    "--quick", action="store_true", help="1,000 steps, 2 rounds a side"
  )
  parser.add_argument(
    "--steps", type=int, default=None, help="steps a round (default 5,000)"
  )
  parser.add_argument(
    "--reps", type=int, default=None, help="rounds a side (default 3)"
  )
  args = parser.parse_args(argv)
  steps = args.steps if args.steps is not None else 1000 if args.quick else 5000
  reps = args.reps if args.reps is not None else 2 if args.quick else 3
  if steps < 1 or reps < 1:
    parser.error("--steps and --reps must be >= 1")
  log = lambda msg: print(msg, file=sys.stderr, flush=True)
  result = run(steps, reps, log)
  if args.json:
    print(json.dumps(result, sort_keys=True))
  else:
    print(table(result))


if __name__ == "__main__":
  main()
