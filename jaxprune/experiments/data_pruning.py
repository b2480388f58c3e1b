"""The data-diet experiment: score the training set, keep part, retrain.

Scores are computed once per workdir, on the (possibly label-corrupted)
training split, and cached in `scores/<name>.npy`:

- 'el2n', 'grand_early': EL2N averaged over `scores.models` models (seeds
  `SCORE_SEED + i`) trained on all the data for `scores.step` steps, and
  GraNd over the first `scores.grand_models` of them; 'grand_init': GraNd
  of those models untrained.
- 'forgetting': forgetting events (`jaxprune.data_pruning.forgetting`)
  counted over `scores.forgetting_steps` steps of one model.
- 'input_norm', 'random' (uniform draws from `SCORE_SEED`).

Then for each method (`METHODS`: a score and a selection), keep fraction
and seed, a model trains on the selected subset (`Trainer(subset=...)`)
for `train.steps` steps ('steps' budget) or for as many epochs as the full
run ('epochs': `ceil(steps * kept / n)` steps); 'full' is the run on all
the data. Each run's record lands in `runs/<method>/keep<f>_seed<s>.json`;
reruns skip what is done.

Config keys (see `configs/data_pruning/`), each used as named:
  dataset.name, dataset.seed: `jaxprune.data.load`; dataset.train_size
    (0: all) keeps only the first examples of the training split.
  label_noise: the fraction of training labels corrupted
    (`corrupt_labels`, seeded by dataset.seed).
  model.name; optimizer.*, schedule.*, weight_decay: as in
    `jaxprune.experiments.sparse`.
  train.steps, train.batch_size, train.eval_every, train.eval_batch_size;
    train.budget: 'steps' or 'epochs'.
  scores.models, scores.grand_models (<= models), scores.step,
    scores.forgetting_steps, scores.batch_size (EL2N),
    scores.grand_batch_size (examples per chunk of per-example gradients,
    for models that are not a network of Dense layers: see
    `_grand_scorer`).
  selection.offset (the 'el2n_offset' skip), selection.ccs_offset,
    selection.strata (CCS), selection.per_class.
  methods, keep_fractions, seeds: the grid.

The workdir holds config.json, scores/, runs/, results.json, results.md and
accuracy.png (test accuracy against the fraction kept).
"""

import dataclasses
import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from jaxprune.algorithms import fixed
from jaxprune.data import Split, load
from jaxprune.data_pruning import forgetting
from jaxprune.data_pruning.noise import corrupt_labels
from jaxprune.data_pruning.scores import (
  el2n,
  grand,
  grand_dense,
  input_norm,
  random_scores,
)
from jaxprune.data_pruning.selection import check_scores, select
from jaxprune.experiments import costs
from jaxprune.experiments import data_pruning_report as report
from jaxprune.experiments import workdir as wd
from jaxprune.experiments.sparse import _learning_rate, _optimizer
from jaxprune.models import get as get_model
from jaxprune.train import Trainer
from jaxprune.transform import masks_of

RESULTS = "results.json"
REPORT = "results.md"
PLOT = "accuracy.png"
SCORE_SEED = 1000
SCORES = (
  "el2n",
  "grand_init",
  "grand_early",
  "forgetting",
  "input_norm",
  "random",
)
METHODS = {
  "random": ("random", "hardest"),
  "el2n_hardest": ("el2n", "hardest"),
  "el2n_easiest": ("el2n", "easiest"),
  "el2n_offset": ("el2n", "offset"),
  "el2n_ccs": ("el2n", "ccs"),
  "grand_init": ("grand_init", "hardest"),
  "grand_early": ("grand_early", "hardest"),
  "forgetting": ("forgetting", "hardest"),
  "input_norm": ("input_norm", "hardest"),
}
"""Method -> (score, selection); 'random' keeps the top of random scores."""
BUDGETS = ("steps", "epochs")


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad key of `config`."""
  unknown = [m for m in config.methods if m not in METHODS]
  if unknown:
    raise ValueError(
      f"config.methods: {unknown} unknown; known: {list(METHODS)}"
    )
  for f in config.keep_fractions:
    if not (isinstance(f, int | float) and 0 < f <= 1):
      raise ValueError(
        f"config.keep_fractions: {f!r} is not a fraction in (0, 1]"
      )
  if config.train.budget not in BUDGETS:
    raise ValueError(
      f"config.train.budget = {config.train.budget!r}: expected one of "
      f"{BUDGETS}"
    )
  if not config.seeds:
    raise ValueError("config.seeds is empty: give at least one seed")
  if not 0 <= config.label_noise < 1:
    raise ValueError(
      f"config.label_noise = {config.label_noise!r}: expected a fraction in "
      "[0, 1)"
    )
  for key in ("offset", "ccs_offset"):
    value = config.selection[key]
    if not 0 <= value < 1:
      raise ValueError(
        f"config.selection.{key} = {value!r}: expected a fraction in [0, 1)"
      )
  s = config.scores
  if not 1 <= s.grand_models <= s.models:
    raise ValueError(
      f"config.scores.grand_models = {s.grand_models!r}: expected 1 to "
      f"scores.models = {s.models}"
    )
  for key in ("models", "grand_models", "step", "forgetting_steps"):
    if not (isinstance(s[key], int) and s[key] >= 1):
      raise ValueError(
        f"config.scores.{key} = {s[key]!r}: expected a positive integer"
      )


def dataset(config) -> tuple[Any, np.ndarray]:
  """The dataset (training split cut to `dataset.train_size`, labels
  corrupted by `label_noise`) and the indices of the corrupted labels."""
  data = load(config.dataset.name, seed=config.dataset.seed)
  train = data.train
  size = config.dataset.train_size
  if size:
    train = Split(train.images[:size], train.labels[:size])
  labels, corrupted = corrupt_labels(
    train.labels, config.label_noise, data.num_classes, seed=config.dataset.seed
  )
  train = Split(train.images, labels.astype(np.int32))
  return dataclasses.replace(data, train=train), corrupted


def _trainer(config, data, hook=None) -> Trainer:
  t = config.train
  return Trainer(
    get_model(config.model.name, num_classes=data.num_classes),
    data,
    pruner=fixed(),
    optimizer=_optimizer(config),
    learning_rate=_learning_rate(config),
    batch_size=t.batch_size,
    eval_every=t.eval_every,
    eval_batch_size=t.eval_batch_size,
    example_hook=hook,
  )


def _start(trainer, seed, extra=None):
  variables = trainer.init_variables(jax.random.key(seed))
  return trainer.init(variables, seed=seed, extra=extra)


def _grand_scorer(model, apply_fn, images, labels, s):
  """`params -> GraNd scores`: `grand_dense` where the model allows it (a
  network of Dense layers), `grand` otherwise."""
  params = model.init(jax.random.key(0), images[:1])["params"]
  try:
    grand_dense(model, params, images[:2], labels[:2], batch_size=2)
  except ValueError:
    return lambda p: grand(
      apply_fn, p, images, labels, batch_size=s.grand_batch_size
    )
  return lambda p: grand_dense(
    model, p, images, labels, batch_size=s.batch_size
  )


def compute_scores(config, data, names) -> dict[str, np.ndarray]:
  """The scores `names`, in a dict; see the module docstring."""
  s = config.scores
  train = data.train
  images, labels = jnp.asarray(train.images), jnp.asarray(train.labels)
  n = len(train.labels)
  out = {}
  if "input_norm" in names:
    out["input_norm"] = input_norm(images)
  if "random" in names:
    out["random"] = random_scores(jax.random.key(SCORE_SEED), n)
  model_scores = {"el2n", "grand_init", "grand_early"} & set(names)
  if model_scores:
    trainer = _trainer(config, data)
    model = trainer.model
    apply_fn = lambda p, x: model.apply({"params": p}, x, train=False)
    score_grand = _grand_scorer(model, apply_fn, images, labels, s)
    sums = dict.fromkeys(model_scores, 0.0)
    for i in range(s.models):
      state = _start(trainer, SCORE_SEED + i)
      grand_here = i < s.grand_models
      if "grand_init" in sums and grand_here:
        sums["grand_init"] += score_grand(state.variables["params"])
      if sums.keys() - {"grand_init"}:
        params = trainer.fit(state, s.step).state.variables["params"]
      if "el2n" in sums:
        sums["el2n"] += el2n(
          apply_fn, params, images, labels, batch_size=s.batch_size
        )
      if "grand_early" in sums and grand_here:
        sums["grand_early"] += score_grand(params)
    count = lambda k: s.grand_models if k.startswith("grand") else s.models
    out.update({k: v / count(k) for k, v in sums.items()})
  if "forgetting" in names:
    trainer = _trainer(config, data, hook=forgetting.update)
    state = _start(trainer, SCORE_SEED, extra=forgetting.init(n))
    state = trainer.fit(state, s.forgetting_steps).state
    out["forgetting"] = forgetting.scores(state.extra)
  return {k: check_scores(np.asarray(v), n, k) for k, v in out.items()}


def _cached_scores(config, data, workdir) -> dict[str, np.ndarray]:
  """Every score the methods need, computed once and kept in the workdir;
  EL2N always (results report where corrupted labels rank by it)."""
  directory = os.path.join(workdir, "scores")
  os.makedirs(directory, exist_ok=True)
  names = sorted({METHODS[m][0] for m in config.methods} | {"el2n"})
  path = lambda name: os.path.join(directory, f"{name}.npy")
  missing = [n for n in names if not os.path.exists(path(n))]
  if missing:
    print(f"scoring: {', '.join(missing)}")
    for name, values in compute_scores(config, data, missing).items():
      if wd.primary():
        np.save(path(name), values)
  n = len(data.train.labels)
  return {n_: check_scores(np.load(path(n_)), n, n_) for n_ in names}


def subset(config, method, scores, labels, keep_fraction) -> np.ndarray:
  """The indices `method` keeps at `keep_fraction`."""
  score, how = METHODS[method]
  sel = config.selection
  offset = {"offset": sel.offset, "ccs": sel.ccs_offset}.get(how, 0.0)
  return select(
    scores[score],
    keep_fraction,
    method=how,
    offset=offset,
    strata=sel.strata,
    key=jax.random.key(SCORE_SEED),
    labels=labels if sel.per_class else None,
  )


def _train(config, trainer, indices, seed, corrupted) -> dict:
  """Trains one model on `indices` (None: all); its record."""
  data = trainer.dataset
  n = len(data.train.labels)
  kept = n if indices is None else len(indices)
  steps = config.train.steps
  if config.train.budget == "epochs":
    steps = math.ceil(steps * kept / n)
  begin = time.perf_counter()
  trainer = trainer.with_subset(indices)
  result = trainer.fit(_start(trainer, seed), steps)
  noisy = (
    len(corrupted) if indices is None else np.isin(indices, corrupted).sum()
  )
  return {
    "seed": seed,
    "kept": kept,
    "steps": steps,
    "budget": config.train.budget,
    "epochs": steps * config.train.batch_size / kept,
    "noisy_fraction": float(noisy / kept),
    "final_test_accuracy": result.final["test_accuracy"],
    "final_val_accuracy": result.final["val_accuracy"],
    "best_val_test_accuracy": result.early_stop["test_accuracy"],
    "wall_time_s": time.perf_counter() - begin,
    "inference_flops": costs.inference(
      trainer, masks_of(result.state.opt_state)
    ),
    # Against the full-data run's budget: the same steps or fewer.
    "training_flops": costs.training(
      trainer, result.history, config.train.steps
    ),
  }


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) the data-pruning grid of `config` in `workdir`.

  Returns:
    The content of results.json: `runs` (one record per method, keep
    fraction and seed: test accuracy at the end and at the best
    validation evaluation, examples kept, steps, epochs, fraction of
    corrupted labels kept, seconds, `inference_flops` and
    `training_flops`, the latter against the full-data run's
    `train.steps`, as `costs` gives them), `summary` (per method and keep
    fraction, over seeds) and `scores` (rank correlations between scores;
    with label noise, the fraction of corrupted labels among the top 10%
    of each score).

  Raises:
    ValueError: for a bad config, or a workdir holding another config.
  """
  check(config)
  wd.check_config(workdir, config)
  data, corrupted = dataset(config)
  scores = _cached_scores(config, data, workdir)
  grid = [("full", 1.0)] + [
    (m, f) for m in config.methods for f in config.keep_fractions
  ]
  trainer = _trainer(config, data)
  runs = []
  for method, fraction in tqdm.tqdm(grid, unit="subset"):
    directory = os.path.join(workdir, "runs", method)
    os.makedirs(directory, exist_ok=True)
    indices = None
    if method != "full":
      indices = subset(config, method, scores, data.train.labels, fraction)
    for seed in config.seeds:
      path = os.path.join(directory, f"keep{fraction:g}_seed{seed}.json")
      if os.path.exists(path):
        with open(path) as f:
          runs.append(json.load(f))
        continue
      record = {
        "method": method,
        "keep_fraction": fraction,
        **_train(config, trainer, indices, seed, corrupted),
      }
      wd.write_json(path, record)
      runs.append(record)
  results = {
    "model": config.model.name,
    "dataset": config.dataset.name,
    "train_size": len(data.train.labels),
    "label_noise": config.label_noise,
    "budget": config.train.budget,
    "runs": runs,
    "summary": report.summarize(runs),
    "scores": report.score_stats(scores, corrupted),
  }
  wd.write_json(os.path.join(workdir, RESULTS), results)
  wd.write_text(os.path.join(workdir, REPORT), report.markdown(results))
  if wd.primary():
    report.plot(results, os.path.join(workdir, PLOT))
  return results
