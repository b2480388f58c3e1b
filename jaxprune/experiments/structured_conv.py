"""Retraining-free structured pruning of an image classifier's channels.

The trained dense model (`config.dense`, a sparse-training config; found in
`dense_workdir`, default `<workdir>/dense`, or trained there first, as the
post-training experiments do) loses `config.fraction` of the units of
every group `jaxprune.compact.find_groups` finds: each convolution's output
channels, each hidden layer's units, and each stretch of a residual stream
(removed in every block that writes to it). For each unit score
(`posttrain.unit_scores`) and reconstruction method
(`posttrain.reconstruct`: none, rescale, LIAR's fold-in; BatchNorm'd
convolutions take their intercept through the norm's running mean), the
pruned model is compacted (`compact_model`) and measured:

- `accuracy`: test accuracy (the first `evaluation.size` test images, 0:
  all) of the compacted model, no training;
- `finetuned_accuracy`: after `finetune.steps` steps of Adam on the
  compacted model (`jaxprune.train.Trainer`, batch statistics updated);
- `params`, `macs` (`jaxprune.flops`, one image) and, once per score (the
  methods share the compacted shapes), `dense_ms` / `compact_ms` at batch
  `latency.batch` (medians of interleaved repetitions) and their ratio
  `speedup`; `compact_error`, the largest difference between the compacted
  and the masked model's logits on that batch.

With `norm_passes` (set by a preset; absent: 0), the compacted model's
BatchNorm statistics are then re-estimated on the calibration images
(`recalibrate`, forward passes only; no `compact_error` then).

Calibration: `calibration.size` random training images (seed
`calibration.seed`), in batches of `calibration.batch_size` (one image a
batch for the 'fisher' and 'taylor' scores, from the cross-entropy on
their labels). The workdir holds config.json, metrics.jsonl (a record per
score and method, written as each finishes: a rerun resumes),
results.json, results.md and structured.png.
"""

import dataclasses
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np
import optax

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxprune.algorithms import fixed  # noqa: E402
from jaxprune.compact import (  # noqa: E402
  compact_model,
  find_groups,
  flops,
  unit_masks,
)
from jaxprune.core.tree import apply_masks  # noqa: E402
from jaxprune.data import Split, load  # noqa: E402
from jaxprune.experiments import workdir as wd  # noqa: E402
from jaxprune.experiments.posttrain_tasks import dense_model  # noqa: E402
from jaxprune.experiments.structured import count, latency  # noqa: E402
from jaxprune.posttrain import reconstruct, unit_scores  # noqa: E402
from jaxprune.train import Trainer, evaluation  # noqa: E402

RESULTS = "results.json"
TABLE = "results.md"
PLOT = "structured.png"


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad key of `config`."""
  if not 0 < config.fraction < 1:
    raise ValueError(
      f"config.fraction = {config.fraction!r}: expected the fraction of "
      "units removed, in (0, 1)"
    )
  for key, known in (
    ("scores", unit_scores.SCORES),
    ("methods", reconstruct.METHODS),
  ):
    values = tuple(config[key])
    if not values or any(v not in known for v in values):
      raise ValueError(
        f"config.{key} = {values!r}: expected a non-empty tuple of "
        f"{list(known)}"
      )
  for key in ("size", "batch_size"):
    value = config.calibration[key]
    if not (isinstance(value, int) and value >= 1):
      raise ValueError(
        f"config.calibration.{key} = {value!r}: expected a positive integer"
      )


def _batches(images: np.ndarray, labels: np.ndarray, size: int) -> list:
  return [
    (jnp.asarray(images[i : i + size]), jnp.asarray(labels[i : i + size]))
    for i in range(0, len(labels), size)
  ]


def recalibrate(model, variables: dict, batches: list, passes: int) -> dict:
  """`variables` with BatchNorm running statistics re-estimated: `passes`
  forward passes in training mode over each calibration batch (no
  gradient, params unchanged); each moves the averages by the norms'
  momentum towards the batch's statistics."""
  step = jax.jit(
    lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])[1]
  )
  variables = dict(variables)
  for _ in range(passes):
    for x in batches:
      variables.update(step(variables, x))
  return variables


def table(records: list[dict]) -> str:
  """A markdown table: one row per score, the test accuracy without and
  after the fine-tune per method, then the compacted model's parameters,
  FLOP ratio (dense / compacted multiply-adds) and measured speed-up."""
  dense = next(r for r in records if r["score"] == "dense")
  rows = {}
  for r in records:
    if r["score"] != "dense":
      rows.setdefault(r["score"], {})[r["method"]] = r
  methods = list(dict.fromkeys(r["method"] for r in records[1:]))
  pct = lambda x: f"{100 * x:.2f}"
  lines = [
    "| score | "
    + " | ".join(f"{m}: acc. / fine-tuned (%)" for m in methods)
    + " | params | FLOP ratio | speed-up |",
    "|---" + "|---:" * (len(methods) + 3) + "|",
    f"| dense | {pct(dense['accuracy'])} |"
    + " |" * (len(methods) - 1)
    + f" {dense['params']:,} | 1.00 | 1.00 |",
  ]
  for score, by in rows.items():
    cells = [
      f"{pct(by[m]['accuracy'])} / {pct(by[m]['finetuned_accuracy'])}"
      if m in by
      else "-"
      for m in methods
    ]
    r = next(iter(by.values()))
    lines.append(
      f"| {score} | {' | '.join(cells)} | {r['params']:,} | "
      f"{dense['macs'] / r['macs']:.2f} | {r['speedup']:.2f} |"
    )
  return "\n".join(lines)


def plot(records: list[dict], path: str) -> None:
  """Test accuracy per score and method, without and after the
  fine-tune, against the dense model's."""
  dense = next(r for r in records if r["score"] == "dense")
  pruned = [r for r in records if r["score"] != "dense"]
  scores = list(dict.fromkeys(r["score"] for r in pruned))
  methods = list(dict.fromkeys(r["method"] for r in pruned))
  width = 0.8 / len(methods)
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
  for ax, key, title in zip(
    axes,
    ("accuracy", "finetuned_accuracy"),
    ("no training", "after the fine-tune"),
    strict=True,
  ):
    for j, method in enumerate(methods):
      values = [
        next(
          (
            100 * r[key]
            for r in pruned
            if (r["score"], r["method"]) == (s, method)
          ),
          np.nan,
        )
        for s in scores
      ]
      ax.bar(np.arange(len(scores)) + j * width, values, width, label=method)
    ax.axhline(100 * dense["accuracy"], color="k", ls="--", label="dense")
    ax.set_xticks(np.arange(len(scores)) + width * (len(methods) - 1) / 2)
    ax.set_xticklabels(scores)
    ax.set_title(title)
  axes[0].set_ylabel("test accuracy (%)")
  fig.tight_layout()
  fig.legend(
    *axes[1].get_legend_handles_labels(),
    loc="upper center",
    bbox_to_anchor=(0.5, 0.02),
    ncol=4,
  )
  fig.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(fig)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or completes) the experiment in `workdir`; returns results.json
  (`config` and `records`: the dense model's, then one per score and
  method).

  Raises:
    ValueError: for a bad config (before anything runs) or a workdir
      holding another config.
  """
  check(config)
  os.makedirs(workdir, exist_ok=True)
  wd.check_config(workdir, config)
  model, variables = dense_model(config, workdir)
  d = config.dense.dataset
  dataset = load(d.name, seed=d.seed, data_dir=d.get("data_dir") or None)
  log = wd.MetricsLog(workdir, ("score", "method"))
  train = dataset.train
  c = config.calibration
  rng = np.random.default_rng(c.seed)
  pick = np.sort(rng.choice(len(train.labels), c.size, replace=False))
  calib = _batches(train.images[pick], train.labels[pick], c.batch_size)
  one_by_one = _batches(train.images[pick], train.labels[pick], 1)
  images = [x for x, _ in calib]
  apply = lambda v, x: model.apply(v, x, train=False)
  e = config.evaluation
  head = lambda split: Split(
    split.images[: e.size or None], split.labels[: e.size or None]
  )
  test = evaluation.batched(head(dataset.test), e.batch_size)
  accuracy = jax.jit(
    lambda m, v: evaluation.evaluate(
      lambda v, x: m.apply(v, x, train=False), v, test
    )["accuracy"],
    static_argnums=0,
  )
  one = jnp.asarray(dataset.test.images[:1])
  macs = lambda m, v: flops(m.apply, v, None, one).dense
  if not log.records:
    log.write(
      {
        "score": "dense",
        "method": "-",
        "accuracy": float(accuracy(model, variables)),
        "params": count(variables["params"]),
        "macs": macs(model, variables),
      }
    )

  def loss(v, batch):
    x, y = batch
    logits = apply(v, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  units = find_groups(model.apply, variables, one)
  f = config.finetune
  # The trainer's validation record is unused: one evaluation batch.
  tune_data = dataclasses.replace(
    dataset,
    test=head(dataset.test),
    validation=Split(
      dataset.validation.images[: e.batch_size],
      dataset.validation.labels[: e.batch_size],
    ),
  )
  trainers = {}  # compacted shapes -> Trainer (compiled once)
  bench = jnp.asarray(dataset.test.images[: config.latency.batch])
  dense_fn = jax.jit(apply)
  done = {(r["score"], r["method"]) for r in log.records}
  for score in config.scores:
    timing, s = None, None
    for method in config.methods:
      if (score, method) in done:
        continue
      start = time.perf_counter()
      if s is None:
        s = unit_scores.scores(
          score,
          variables,
          units,
          apply_fn=apply,
          loss_fn=loss,
          batches=one_by_one if score in ("taylor", "fisher") else images,
          key=jax.random.key(c.seed),
        )
      masks = unit_scores.select(variables, units, s, config.fraction)
      pruned = reconstruct.reconstruct(
        apply, variables, masks, units, images, method, config.ridge
      )
      pruned = apply_masks(pruned, unit_masks(pruned, masks, units))
      small, small_vars = compact_model(model, pruned, masks, one)
      if config.get("norm_passes") and "batch_stats" in small_vars:
        small_vars = recalibrate(small, small_vars, images, config.norm_passes)
        pruned = None  # the masked model keeps the dense statistics
      small_fn = jax.jit(lambda v, x, m=small: m.apply(v, x, train=False))
      error = None
      if pruned is not None:
        error = float(
          jnp.max(
            jnp.abs(small_fn(small_vars, bench) - dense_fn(pruned, bench))
          )
        )
      if timing is None:
        dense_s, small_s = latency(
          [(dense_fn, (variables, bench)), (small_fn, (small_vars, bench))],
          config.latency.repeats,
        )
        timing = {
          "dense_ms": 1e3 * dense_s,
          "compact_ms": 1e3 * small_s,
          "speedup": dense_s / small_s,
        }
      record = {
        "score": score,
        "method": method,
        "params": count(small_vars["params"]),
        "macs": macs(small, small_vars),
        "compact_error": error,
        **timing,
      }
      if not f.steps:
        record["accuracy"] = float(accuracy(small, small_vars))
      else:  # the trainer evaluates before its first step and after its last
        shapes = str(jax.tree.map(jnp.shape, small_vars))
        if shapes not in trainers:
          trainers[shapes] = Trainer(
            small,
            tune_data,
            pruner=fixed(),
            optimizer=optax.adam,
            learning_rate=f.learning_rate,
            batch_size=f.batch_size,
            eval_every=f.steps,
            steps_per_dispatch=1,
            eval_batch_size=e.batch_size,
          )
        trainer = trainers[shapes]
        state = trainer.init(dict(small_vars), seed=c.seed)
        history = trainer.fit(state, f.steps).history
        record["accuracy"] = float(history[0]["test_accuracy"])
        record["finetuned_accuracy"] = float(history[-1]["test_accuracy"])
      record["seconds"] = time.perf_counter() - start
      log.write(record)
      print(
        f"{score} {method}: accuracy {record['accuracy']:.4f} "
        f"fine-tuned {record.get('finetuned_accuracy', float('nan')):.4f} "
        f"({record['seconds']:.0f} s)",
        flush=True,
      )
  results = {"config": config.to_dict(), "records": log.records}
  wd.write_json(os.path.join(workdir, RESULTS), results)
  wd.write_text(os.path.join(workdir, TABLE), table(log.records) + "\n")
  if wd.primary():
    plot(log.records, os.path.join(workdir, PLOT))
  return results
