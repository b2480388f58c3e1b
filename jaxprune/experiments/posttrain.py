"""Post-training pruning experiments: methods x targets x calibration seeds.

A trained model (`posttrain_tasks`: MiniLM, a character model, an image
classifier) is pruned once by `jaxprune.posttrain.prune` for every method
in `config.methods`, target in `config.targets` and seed in
`config.calibration.seeds`, and each pruned model is evaluated (and, for a
classifier, fine-tuned under its masks).

Config keys (see `configs/posttrain/`):
  name: the experiment's label.
  task: 'embedding', 'lm' or 'classifier' (`posttrain_tasks`).
  methods: `jaxprune.posttrain.METHODS` names.
  targets: strings, an unstructured sparsity ('0.5') or N:M ('2:4').
  sequential: `prune`'s `sequential` (block by block).
  prune_head: `prune`'s `prune_head` (also prune the last layer called;
    True for an encoder, whose last layer is no classifier head).
  exclude: patterns of leaves never pruned (`Policy.exclude`), such as
    learned position tables.
  nm_exclude: patterns of kernels left dense under N:M targets (those whose
    input width is no multiple of M).
  calibration.size, .batch_size, .seeds (and .length for 'embedding'):
    examples drawn per seed, batch size, the seeds.
  evaluation.size, .batch_size: examples evaluated (0: the whole split).
  dense, dense_workdir ('lm', 'classifier'): the training config of the
    dense model and where it is (default `<workdir>/dense`).
  finetune.steps, .learning_rate, .batch_size ('classifier').
  probe.categories, .max_chars, .length, .batch_size ('embedding').

The workdir holds config.json, metrics.jsonl (one record per pruned model,
written as it finishes), results.json (the dense metrics, every run and
the data used), results.md (a table per metric) and posttrain.png, the
last three rewritten after every run. A rerun skips the runs already in
metrics.jsonl.
"""

import os
import time
from typing import Any

import ml_collections
import numpy as np
import tqdm

from jaxprune import posttrain as pt
from jaxprune.core.policy import Policy
from jaxprune.experiments import posttrain_report as report
from jaxprune.experiments import posttrain_tasks as tasks
from jaxprune.experiments import workdir as wd

RESULTS = "results.json"
TABLE = "results.md"
PLOT = "posttrain.png"


def parse_target(target: str) -> dict[str, Any]:
  """`prune`'s `sparsity` or `nm` from a target string.

  >>> parse_target('0.6'), parse_target('2:4')
  ({'sparsity': 0.6}, {'nm': (2, 4)})

  Raises:
    ValueError: for anything but a float in [0, 1) or N:M with 0 < N < M.
  """
  n, colon, m = str(target).partition(":")
  if colon:
    if n.isdigit() and m.isdigit() and 0 < int(n) < int(m):
      return {"nm": (int(n), int(m))}
  else:
    try:
      value = float(target)
    except ValueError:
      value = -1.0
    if 0 <= value < 1:
      return {"sparsity": value}
  raise ValueError(
    f"config.targets: {target!r} is neither a sparsity in [0, 1) ('0.5') "
    "nor N:M with integers 0 < N < M ('2:4')"
  )


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad key of `config`."""
  if config.task not in tasks.KINDS:
    raise ValueError(
      f"config.task = {config.task!r}: expected one of {list(tasks.KINDS)}"
    )
  unknown = [m for m in config.methods if m not in pt.METHODS]
  if unknown or not config.methods:
    raise ValueError(
      f"config.methods = {tuple(config.methods)!r}: expected a non-empty "
      f"tuple of {list(pt.METHODS)}"
    )
  if not config.targets:
    raise ValueError("config.targets is empty: give at least one target")
  for target in config.targets:
    parse_target(target)
  c = config.calibration
  for key in ("size", "batch_size"):
    if not (isinstance(c[key], int) and c[key] >= 1):
      raise ValueError(
        f"config.calibration.{key} = {c[key]!r}: expected a positive integer"
      )
  if not c.seeds:
    raise ValueError("config.calibration.seeds is empty: give a seed")


def _policy(config: ml_collections.ConfigDict, goal: dict) -> Policy:
  """The kernels a target prunes: all but `exclude` (and `nm_exclude`
  under N:M)."""
  exclude = tuple(config.exclude)
  if "nm" in goal:
    exclude += tuple(config.nm_exclude)
  return Policy(exclude=exclude)


def _check_targets(config, apply, variables, batch) -> None:
  """Raises ValueError, naming the target, for an N:M target some pruned
  layer's input width does not allow (before any pruning or training)."""
  for target in config.targets:
    goal = parse_target(target)
    if "nm" not in goal:
      continue
    try:
      pt.pruned_layers(
        apply,
        variables,
        batch,
        nm=goal["nm"],
        policy=_policy(config, goal),
        prune_head=config.prune_head,
      )
    except ValueError as e:
      raise ValueError(
        f"config.targets: {target!r}: {e}; leave such layers dense under "
        "N:M with config.nm_exclude"
      ) from e


def _run_one(task, config, method, target, seed) -> dict:
  """Prunes with one method, target and seed; the run's record."""
  goal = parse_target(target)
  policy = _policy(config, goal)
  start = time.perf_counter()
  result = pt.prune(
    task.apply,
    task.variables,
    task.calibration(seed),
    method=method,
    sequential=config.sequential,
    prune_head=config.prune_head,
    policy=policy,
    **goal,
  )
  seconds = time.perf_counter() - start
  kept = sum(r.kept for r in result.report.values())
  size = sum(r.size for r in result.report.values())
  record = {
    "method": method,
    "target": target,
    "seed": seed,
    **task.evaluate(result.params),
    "sparsity": 1 - kept / size,
    "mean_rel_error": float(
      np.mean([r.rel_error for r in result.report.values()])
    ),
    "prune_seconds": seconds,
    "layers": {
      path: {"kept": r.kept, "size": r.size, "rel_error": r.rel_error}
      for path, r in result.report.items()
    },
  }
  if task.finetune is not None:
    record.update(task.finetune(result.params, result.masks, seed, policy))
  return record


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or completes) a post-training experiment in `workdir`.

  Args:
    config: see the module docstring and `configs/posttrain/`.
    workdir: where everything is written; a rerun skips finished runs.

  Returns:
    The content of results.json: `name`, `task`, `data` (calibration set
    and evaluation split), `dense` (the dense model's metrics), `metrics`
    (name -> whether higher is better) and `runs` (one record per method,
    target and seed: the metrics, the sparsity reached over the pruned
    layers, the mean relative output error of the layers on the
    calibration data, seconds and per-layer counts).

  Raises:
    ValueError: for a bad config (before anything runs) or a workdir
      holding another config.
  """
  check(config)
  untrained = tasks.untrained(config)
  if untrained is not None:  # checked before the dense model trains
    _check_targets(config, *untrained)
  wd.check_config(workdir, config)
  # Setup: the trained model, its data and its dense metrics.
  task = tasks.build(config, workdir)
  if untrained is None:
    first = task.calibration(config.calibration.seeds[0])[0]
    _check_targets(config, task.apply, task.variables, first)
  dense = task.evaluate(task.variables)
  log = wd.MetricsLog(workdir, ("method", "target", "seed"))
  grid = [
    (method, target, seed)
    for seed in config.calibration.seeds
    for target in config.targets
    for method in config.methods
  ]
  keys = set(grid)

  def report_runs() -> dict:
    """results.json, results.md and the plot of the runs so far."""
    runs = [
      r for r in log.records if (r["method"], r["target"], r["seed"]) in keys
    ]
    results = {
      "name": config.name,
      "task": config.task,
      "data": task.about,
      "dense": dense,
      "metrics": task.metrics,
      "runs": runs,
    }
    wd.write_json(os.path.join(workdir, RESULTS), results)
    wd.write_text(os.path.join(workdir, TABLE), report.markdown(results))
    if wd.primary() and runs:
      report.plot(results, os.path.join(workdir, PLOT))
    return results

  # The grid: every run not in metrics.jsonl yet; the reports after each.
  done = {(r["method"], r["target"], r["seed"]) for r in log.records}
  for method, target, seed in tqdm.tqdm(grid, unit="run"):
    if (method, target, seed) in done:
      continue
    log.write(_run_one(task, config, method, target, seed))
    report_runs()
  results = report_runs()
  return results
