"""Retraining-free structured pruning of MiniLM, judged by its embeddings.

For each case (fractions of attention heads and FFN neurons removed in
every layer), each unit score and each reconstruction method: select the
units (`posttrain.unit_scores`), reconstruct the layers that read them from
calibration text (`posttrain.reconstruct`), then measure on the test
entries of the labelled fortunes: the mean cosine of the pruned to the
dense sentence embeddings and the accuracy of a logistic-regression
classifier fitted on the dense embeddings of the training entries. Each
case's compacted model gives the parameter count and the latency
(dense / compacted time, interleaved repetitions, medians).

Records go to `metrics.jsonl` one per (case, score, method) as they
finish, so a rerun resumes; `results.json` holds them all at the end.
"""

import os
import re
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import LogisticRegression

from jaxprune.compact import (
  Units,
  compact_model,
  find_groups,
  flops,
  unit_masks,
)
from jaxprune.core.tree import apply_masks
from jaxprune.data import text
from jaxprune.experiments import workdir as wd
from jaxprune.models import pretrained
from jaxprune.posttrain import reconstruct, unit_scores

RESULTS = "results.json"


def token_batches(tokens: dict, size: int) -> list[tuple]:
  """`(input_ids, attention_mask)` batches of `size` texts, in order."""
  n = len(tokens["input_ids"])
  return [
    tuple(tokens[k][i : i + size] for k in ("input_ids", "attention_mask"))
    for i in range(0, n, size)
  ]


def packed_tokens(tokens: dict, length: int) -> dict:
  """The real tokens of all texts, back to back, cut into full sequences
  of `length` (calibration without padding rows)."""
  real = tokens["attention_mask"].astype(bool)
  ids = tokens["input_ids"][real]
  ids = ids[: len(ids) // length * length].reshape(-1, length)
  return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def encoder_groups(
  units: Units, heads: float, ffn: float
) -> tuple[Units, dict]:
  """The encoder's head and FFN groups of each layer (of `find_groups`),
  and a fraction for each (keyed by a pattern matching exactly its
  name)."""
  chosen, fractions = [], {}
  for g in units.groups:
    reads = {(m.path.rsplit("/", 2)[-2], m.axis) for m in g.members}
    if ("out", 0) in reads and heads > 0:
      chosen.append(g)
      fractions[f"^{re.escape(g.name)}$"] = heads
    elif ("output", 0) in reads and ffn > 0:
      chosen.append(g)
      fractions[f"^{re.escape(g.name)}$"] = ffn
  return Units(tuple(chosen), units.fixed), fractions


def count(tree: Any) -> int:
  """The number of entries in the arrays of `tree`."""
  return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


def _macs(model, variables, batch) -> int:
  """Multiply-adds of the encoder on `batch` (`jaxprune.flops`)."""
  apply = lambda v, b: model.apply(v, *b)
  return flops(apply, variables, None, tuple(map(jnp.asarray, batch))).dense


def latency(calls: list[tuple], repeats: int) -> list[float]:
  """Median seconds of each `(fn, args)`, calls interleaved."""
  for f, args in calls:
    jax.block_until_ready(f(*args))
  times = [[] for _ in calls]
  for _ in range(repeats):
    for (f, args), t in zip(calls, times, strict=True):
      start = time.perf_counter()
      jax.block_until_ready(f(*args))
      t.append(time.perf_counter() - start)
  return [float(np.median(t)) for t in times]


def table(records: list[dict]) -> str:
  """A markdown table of the records: one row per case and score, cosine
  / accuracy per method, then the compacted model's size, FLOP ratio
  (dense / compacted multiply-adds) and measured speed-up."""
  dense = next(r for r in records if r["case"] == "dense")
  rows = {}
  for r in records:
    if r["case"] != "dense":
      rows.setdefault((r["case"], r["score"]), {})[r["method"]] = r
  methods = ("none", "rescale", "liar")
  lines = [
    "| case | score | "
    + " | ".join(f"{m} cos / acc" for m in methods)
    + " | params | FLOP ratio | speed-up |",
    "|---" * (len(methods) + 5) + "|",
    f"| dense | - | 1.000 / {dense['accuracy']:.3f} | | | "
    f"{dense['params'] / 1e6:.2f}M | 1.00 | 1.00 |",
  ]
  for (case, score), by in rows.items():
    cells = [
      f"{by[m]['cosine']:.3f} / {by[m]['accuracy']:.3f}" if m in by else "-"
      for m in methods
    ]
    any_r = next(iter(by.values()))
    lines.append(
      f"| {case} | {score} | {' | '.join(cells)} | "
      f"{any_r['params'] / 1e6:.2f}M | "
      f"{any_r.get('flop_ratio', float('nan')):.2f} | {any_r['speedup']:.2f} |"
    )
  return "\n".join(lines)


def run(config: Any, workdir: str) -> dict:
  """Runs every (case, score, method) of `config`; returns the results."""
  os.makedirs(workdir, exist_ok=True)
  wd.check_config(workdir, config)
  log = wd.MetricsLog(workdir, ("case", "score", "method"))
  model, variables = pretrained.load_minilm()
  data = text.labelled(tuple(config.categories), max_chars=config.max_chars)
  rng = np.random.default_rng(config.seed)
  # Entries come in file order (by category): subsets are random.
  split = lambda s, n: np.sort(
    rng.permutation(np.flatnonzero(data.splits == s))[:n]
  )
  train = split("train", config.train_entries)
  test = split("test", config.test_entries)
  calib = rng.permutation(train)[: config.calibration]
  tok = lambda idx: pretrained.tokenize(
    [data.texts[i] for i in idx], max_length=config.length, length=config.length
  )
  train_b, test_b = (token_batches(tok(i), config.batch) for i in (train, test))
  calib_tokens = tok(calib)
  packed = (
    packed_tokens(calib_tokens, config.length) if config.pack else calib_tokens
  )
  calib_b = token_batches(packed, config.batch)
  embed = jax.jit(
    lambda v, ids, mask: model.apply(v, ids, mask, method="embed")
  )
  embed_all = lambda v, bs: np.concatenate([embed(v, *b) for b in bs])

  dense_train = embed_all(variables, train_b)
  dense_test = embed_all(variables, test_b)
  probe = LogisticRegression(max_iter=2000, C=config.probe_c)
  probe.fit(dense_train, data.labels[train])
  accuracy = lambda e: float(np.mean(probe.predict(e) == data.labels[test]))
  log.write(
    {
      "case": "dense",
      "score": "-",
      "method": "-",
      "cosine": 1.0,
      "accuracy": accuracy(dense_test),
      "params": count(variables),
    }
  )
  w, b = jnp.asarray(probe.coef_.T), jnp.asarray(probe.intercept_)

  def loss(v, batch):  # the probe's cross-entropy, for Fisher scores
    ids, mask, label = batch
    logits = embed(v, ids, mask) @ w + b
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(label)), label])

  labels = data.labels[calib]
  one_by_one = [
    (
      calib_tokens["input_ids"][i : i + 1],
      calib_tokens["attention_mask"][i : i + 1],
      labels[i : i + 1],
    )
    for i in range(len(calib))
  ]
  apply_linen = lambda v, batch: model.apply(v, *batch, method="embed")
  ids = jnp.asarray(test_b[0][0][:1]), jnp.asarray(test_b[0][1][:1])
  units = find_groups(model.apply, variables, *ids)
  done = {(r["case"], r["score"], r["method"]) for r in log.records}
  compacted = {}  # case -> parameter count, latency
  for score in config.scores:
    for case, heads, ffn in config.cases:
      groups, fractions = encoder_groups(units, heads, ffn)
      small = compacted.get(case)
      s = None
      for method in config.methods:
        if (case, score, method) in done:
          continue
        start = time.perf_counter()
        if s is None:
          s = unit_scores.scores(
            score,
            variables,
            groups,
            apply_fn=apply_linen,
            loss_fn=loss,
            batches=one_by_one if score in ("taylor", "fisher") else calib_b,
            key=jax.random.key(config.seed),
          )
        masks = unit_scores.select(variables, groups, s, fractions)
        pruned = reconstruct.reconstruct(
          apply_linen, variables, masks, units, calib_b, method, config.ridge
        )
        pruned = apply_masks(pruned, unit_masks(pruned, masks, units))
        out = embed_all(pruned, test_b)
        record = {
          "case": case,
          "heads_removed": heads,
          "ffn_removed": ffn,
          "score": score,
          "method": method,
          "cosine": float(np.mean(np.sum(out * dense_test, axis=1))),
          "accuracy": accuracy(out),
          "seconds": time.perf_counter() - start,
        }
        if small is None:
          small_model, small_vars = compact_model(model, pruned, masks, *ids)
          small_embed = jax.jit(
            lambda v, i, m, sm=small_model: sm.apply(v, i, m, method="embed")
          )
          check = small_embed(small_vars, *test_b[0])
          dense_s, small_s = latency(
            [
              (embed, (variables, *test_b[0])),
              (small_embed, (small_vars, *test_b[0])),
            ],
            config.latency_repeats,
          )
          small = compacted[case] = {
            "params": count(small_vars),
            "compact_error": float(np.max(np.abs(check - out[: len(check)]))),
            "dense_ms": 1e3 * dense_s,
            "compact_ms": 1e3 * small_s,
            "speedup": dense_s / small_s,
            "flop_ratio": _macs(model, variables, test_b[0])
            / _macs(small_model, small_vars, test_b[0]),
          }
        log.write({**record, **small})
        print(
          f"{case} {score} {method}: cosine {record['cosine']:.4f} "
          f"accuracy {record['accuracy']:.4f}",
          flush=True,
        )
  results = {"config": config.to_dict(), "records": log.records}
  wd.write_json(os.path.join(workdir, RESULTS), results)
  return results
