"""What a post-training experiment prunes and how it judges the result.

A `Task` holds a trained model as `posttrain.prune` takes it, its dense
variables, the calibration batches of a seed and the evaluation of any
variables; the experiment (`posttrain.run`) only loops over methods and
targets. Three kinds, `config.task`:

- 'embedding': all-MiniLM-L6-v2 (`jaxprune.models.pretrained`). Metrics:
  the mean cosine similarity of pruned to dense sentence embeddings of the
  held-out (validation and test split) fortunes of `probe.categories`, and
  the accuracy on them of a nearest-centroid classifier of the category
  whose centroids are the dense embeddings of the training-split entries.
  Calibration: random training-split fortunes (any category) of at least
  `calibration.length` tokens, truncated to that length (no padding).
- 'lm': a character model trained by `config.dense` (validation bits per
  character). Calibration: random training sequences.
- 'classifier': an image classifier trained by `config.dense` (test
  accuracy, without retraining and after `finetune.steps` steps of sparse
  fine-tuning under `jaxprune.algorithms.fixed` and the pruned masks).
  Calibration: random training images.

The dense model of 'lm' and 'classifier' is read from `dense_workdir`
(default `<workdir>/dense`), trained there first by
`jaxprune.experiments.sparse.run(config.dense, ...)` if it is not finished.
"""

import dataclasses
import functools
import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxprune.algorithms import fixed
from jaxprune.core.policy import Policy
from jaxprune.data import Split, load, text
from jaxprune.experiments import checks, sparse
from jaxprune.train import Trainer, evaluation

KINDS = ("embedding", "lm", "classifier")


class Task(NamedTuple):
  """A trained model, its calibration data and its metrics.

  Attributes:
    apply: `apply(variables, batch)`, the model as `posttrain.prune` runs it.
    variables: the dense variables (`{'params': ...}`).
    calibration: `seed -> list of batches` (`calibration.size` examples).
    evaluate: `variables -> {metric: value}`.
    finetune: `(variables, masks, seed, policy) -> {metric: value}` after
      a sparse fine-tune under `masks` (made with `policy`), or None.
    metrics: the metrics' names, the first the headline one, each with
      whether higher is better.
    about: what the results record of the data: calibration set and
      evaluation split.
  """

  apply: Callable[[Any, Any], Any]
  variables: Any
  calibration: Callable[[int], list]
  evaluate: Callable[[Any], dict]
  finetune: Callable[[Any, Any, int, Policy], dict] | None
  metrics: dict[str, bool]
  about: dict[str, str]


def _batches(x: Any, batch_size: int) -> list:
  """`x` (an array or a dict of arrays) cut into batches along axis 0."""
  n = len(jax.tree.leaves(x)[0])
  return [
    jax.tree.map(lambda a, i=i: jnp.asarray(a[i : i + batch_size]), x)
    for i in range(0, n, batch_size)
  ]


def _pick(n: int, size: int, seed: int, what: str) -> np.ndarray:
  """`size` distinct indices below `n`, drawn from `seed`."""
  if size > n:
    raise ValueError(f"calibration.size = {size}: only {n} {what} to draw from")
  return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def dense_model(config: ml_collections.ConfigDict, workdir: str):
  """`(model, variables)` of the trained dense model (trained first if its
  workdir has not finished)."""
  directory = config.dense_workdir or os.path.join(workdir, "dense")
  try:
    return sparse.trained(directory)
  except FileNotFoundError:
    sparse.run(config.dense, directory)
    return sparse.trained(directory)


def untrained(config: ml_collections.ConfigDict) -> tuple | None:
  """`(apply, variables, batch)` of the dense model a classifier or
  character-model task trains, untrained and abstract (shapes only: its
  targets can be checked before anything trains); None for a pretrained
  model (the embedding task), which trains nothing."""
  if config.task == "embedding":
    return None
  dataset = checks.dataset(config.dense)
  model = checks.model(config.dense, dataset.num_classes)
  batch = dataset.train.images[:1]
  variables = jax.eval_shape(model.init, jax.random.key(0), batch)
  if config.task == "classifier":
    return (lambda v, x: model.apply(v, x, train=False)), variables, batch
  return (lambda v, x: model.apply(v, x)), variables, batch


def _split_head(split: Split, size: int) -> Split:
  return split if not size else Split(split.images[:size], split.labels[:size])


def _evaluator(model, split: Split, batch_size: int) -> Callable:
  data = evaluation.batched(split, batch_size)
  logits = lambda v, x: model.apply(v, x, train=False)
  return jax.jit(lambda v: evaluation.evaluate(logits, v, data))


def lm(config: ml_collections.ConfigDict, workdir: str) -> Task:
  """The character model's task (see the module docstring)."""
  model, variables = dense_model(config, workdir)
  d = config.dense.dataset
  dataset = load(d.name, seed=d.seed)
  split = _split_head(dataset.validation, config.evaluation.size)
  run = _evaluator(model, split, config.evaluation.batch_size)

  def evaluate(v):
    loss = float(run(v)["loss"])
    return {"bits_per_char": loss / math.log(2), "perplexity": math.exp(loss)}

  c = config.calibration
  train = dataset.train.images

  def calibration(seed):
    index = _pick(len(train), c.size, seed, "training sequences")
    return _batches(train[index], c.batch_size)

  return Task(
    apply=lambda v, x: model.apply(v, x),
    variables=variables,
    calibration=calibration,
    evaluate=evaluate,
    finetune=None,
    metrics={"bits_per_char": False, "perplexity": False},
    about={
      "calibration": (
        f"{c.size} random training sequences of {train.shape[1]} "
        f"characters ({d.name})"
      ),
      "evaluation": (
        f"validation split, {len(split.labels)} sequences of "
        f"{split.labels.shape[1]} characters"
      ),
    },
  )


def classifier(config: ml_collections.ConfigDict, workdir: str) -> Task:
  """The image classifier's task (see the module docstring)."""
  model, variables = dense_model(config, workdir)
  d = config.dense.dataset
  dataset = load(d.name, seed=d.seed)
  split = _split_head(dataset.test, config.evaluation.size)
  run = _evaluator(model, split, config.evaluation.batch_size)
  evaluate = lambda v: {"test_accuracy": float(run(v)["accuracy"])}
  c, f = config.calibration, config.finetune
  train = dataset.train.images

  def calibration(seed):
    index = _pick(len(train), c.size, seed, "training images")
    return _batches(train[index], c.batch_size)

  finetune = None
  metrics = {"test_accuracy": True}
  if f.steps:
    trainers = {}

    def finetune(v, masks, seed, policy):
      if policy not in trainers:  # one compiled trainer per policy
        trainers[policy] = Trainer(
          model,
          dataclasses.replace(dataset, test=split),
          pruner=fixed(policy=policy),
          optimizer=optax.adam,
          learning_rate=f.learning_rate,
          batch_size=f.batch_size,
          eval_every=f.steps,
          steps_per_dispatch=config.dense.train.steps_per_dispatch,
          eval_batch_size=config.evaluation.batch_size,
        )
      trainer = trainers[policy]
      state = trainer.init(dict(v), masks["params"], seed=seed)
      result = trainer.fit(state, f.steps)
      return {"finetuned_test_accuracy": float(result.final["test_accuracy"])}

    metrics["finetuned_test_accuracy"] = True
  return Task(
    apply=lambda v, x: model.apply(v, x, train=False),
    variables=variables,
    calibration=calibration,
    evaluate=evaluate,
    finetune=finetune,
    metrics=metrics,
    about={
      "calibration": f"{c.size} random training images ({d.name})",
      "evaluation": f"test split, {len(split.labels)} images",
      "finetune": (
        f"{f.steps} steps of Adam {f.learning_rate:g}, batch {f.batch_size}, "
        "masks fixed"
        if f.steps
        else "none"
      ),
    },
  )


def _centroids(x: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
  means = np.stack([x[labels == k].mean(0) for k in range(classes)])
  return means / np.linalg.norm(means, axis=1, keepdims=True)


@functools.cache
def _long_fortunes(length: int) -> tuple[str, ...]:
  """Training-split fortunes (any category) of at least `length` tokens."""
  from jaxprune.models import pretrained

  pool = [
    entry
    for entries in text.read_fortunes().values()
    for entry in entries
    if text.split_of(entry) == "train"
  ]
  counter = pretrained.tokenizer(10_000)
  counter.no_padding()
  lengths = [len(e.ids) for e in counter.encode_batch(pool)]
  return tuple(e for e, n in zip(pool, lengths, strict=True) if n >= length)


def minilm_calibration(
  size: int, length: int, seed: int, batch_size: int
) -> list[dict]:
  """MiniLM calibration batches: `size` random training-split fortunes (any
  category) of at least `length` tokens, cut to `length` (no padding).

  Raises:
    ValueError: if fewer than `size` fortunes are that long.
  """
  from jaxprune.models import pretrained

  pool = _long_fortunes(length)
  index = _pick(len(pool), size, seed, "long enough training fortunes")
  batch = pretrained.tokenize([pool[i] for i in index], max_length=length)
  return _batches(batch, batch_size)


def embedding(config: ml_collections.ConfigDict, workdir: str) -> Task:
  """MiniLM's task (see the module docstring)."""
  from jaxprune.models import pretrained

  model, variables = pretrained.load_minilm()
  p, c = config.probe, config.calibration
  data = text.labelled(tuple(p.categories), max_chars=p.max_chars)
  labels, splits = data.labels, data.splits
  held = np.flatnonzero(splits != "train")
  if config.evaluation.size:
    held = held[: config.evaluation.size]
  fit = np.flatnonzero(splits == "train")
  tokens = lambda texts: pretrained.tokenize(
    texts, max_length=p.length, length=p.length
  )
  embed = jax.jit(lambda v, b: model.apply(v, **b, method="embed"))

  def embeddings(v, index):
    batches = _batches(tokens([data.texts[i] for i in index]), p.batch_size)
    return np.concatenate([np.asarray(embed(v, b)) for b in batches])

  # The probe: centroids of the dense embeddings, fitted once.
  cache = os.path.join(workdir, "dense_embeddings.npz")
  if os.path.exists(cache):
    with np.load(cache) as stored:
      fit_x, dense_x = stored["fit"], stored["held"]
  else:
    fit_x, dense_x = embeddings(variables, fit), embeddings(variables, held)
    np.savez(cache, fit=fit_x, held=dense_x)
  centroids = _centroids(fit_x, labels[fit], len(data.categories))

  def evaluate(v):
    x = embeddings(v, held)
    predicted = np.argmax(x @ centroids.T, axis=1)
    return {
      "cosine": float(np.mean(np.sum(x * dense_x, axis=1))),
      "probe_accuracy": float(np.mean(predicted == labels[held])),
    }

  def calibration(seed):
    return minilm_calibration(c.size, c.length, seed, c.batch_size)

  return Task(
    apply=lambda v, b: model.apply(v, **b),
    variables=variables,
    calibration=calibration,
    evaluate=evaluate,
    finetune=None,
    metrics={"cosine": True, "probe_accuracy": True},
    about={
      "calibration": (
        f"{c.size} random training-split fortunes (any category) of at "
        f"least {c.length} tokens, truncated to {c.length}"
      ),
      "evaluation": (
        f"{len(held)} validation and test split fortunes of "
        f"{list(data.categories)} (at most {p.max_chars} characters, "
        f"{p.length} tokens); probe: nearest centroid of {len(fit)} dense "
        "training-split embeddings"
      ),
    },
  )


def build(config: ml_collections.ConfigDict, workdir: str) -> Task:
  """The task `config.task` names."""
  return {"embedding": embedding, "lm": lm, "classifier": classifier}[
    config.task
  ](config, workdir)
