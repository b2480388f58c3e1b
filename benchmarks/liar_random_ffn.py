"""Why LIAR's fold-in fails after a random cut of half of MiniLM's FFN.

The structured experiment (configs/structured/minilm_fortunes.py) removes
50% of the FFN neurons of every layer; with random scores LIAR's fold-in
gives cosine 0.30 to the dense embeddings, worse than no reconstruction
(0.66), while it helps after magnitude, activation and Fisher scores. This
script, with the experiment's data, calibration and random scores:

1. names each layer's most active FFN neuron (largest |GELU output| over
   the calibration tokens) and whether each score keeps it;
2. per layer, on the dense model: the FFN output layer's squared error
   (`||x W + b - (x_S W_S' + b')||^2` per token, mean) without
   reconstruction and with the fold-in fitted on the calibration tokens,
   on those tokens and on the test entries' real tokens, split into
   [CLS]/[SEP] and the other tokens, and how far the fold-in moves the
   kept weights (`||W_S' - W_S|| / ||W_S||`);
3. the experiment's cosine and probe accuracy for random scores with and
   without each layer's most active neuron forced in (`none`, `liar`).

  PYTHONPATH=. python benchmarks/liar_random_ffn.py   # 10 min, 2 loaded cores

Results and reading: docs/structured.md ("LIAR after a random cut").
"""

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import LogisticRegression

from jaxprune.compact import find_groups, unit_masks
from jaxprune.core.selection import kept_count
from jaxprune.core.tree import apply_masks
from jaxprune.data import text

# The experiment's own data pipeline, so that the figures are its figures.
from jaxprune.experiments.structured import (
  encoder_groups,
  packed_tokens,
  token_batches,
)
from jaxprune.models import pretrained
from jaxprune.posttrain import reconstruct, unit_scores
from jaxprune.posttrain.calibration import linen_rows

CATEGORIES = ("computers", "food", "law", "love", "science")
RIDGE = 1e-3  # the experiment's
CLS, SEP = 101, 102


def _ffn_inputs(model, variables, batches) -> dict[int, np.ndarray]:
  """Layer -> the rows every FFN output layer reads (GELU outputs)."""
  rows = {}

  def interceptor(next_fn, args, kwargs, context):
    m = context.module
    if context.method_name == "__call__" and m.name == "output":
      layer = int(m.path[0].removeprefix("layer"))
      rows.setdefault(layer, []).append(np.asarray(linen_rows(m, args[0])[0]))
    return next_fn(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    for b in batches:
      model.apply(variables, *b, method="embed")
  return {k: np.concatenate(v).astype(np.float64) for k, v in rows.items()}


def main() -> None:
  start = time.perf_counter()
  model, variables = pretrained.load_minilm()
  data = text.labelled(CATEGORIES, max_chars=400)
  rng = np.random.default_rng(0)  # as the experiment's seed 0
  split = lambda s: np.sort(rng.permutation(np.flatnonzero(data.splits == s)))
  train, test = split("train"), split("test")
  calib = rng.permutation(train)[:128]
  tok = lambda idx: pretrained.tokenize(
    [data.texts[i] for i in idx], max_length=64, length=64
  )
  calib_b = token_batches(packed_tokens(tok(calib), 64), 32)
  test_tokens = tok(test)
  train_b, test_b = (
    token_batches(tok(train), 32),
    token_batches(test_tokens, 32),
  )
  ids = jnp.asarray(test_b[0][0][:1]), jnp.asarray(test_b[0][1][:1])
  units = find_groups(model.apply, variables, *ids)
  groups, fractions = encoder_groups(units, 0.0, 0.5)
  apply = lambda v, batch: model.apply(v, *batch, method="embed")
  scores = {
    name: [
      np.asarray(s)
      for s in unit_scores.scores(
        name,
        variables,
        groups,
        apply_fn=apply,
        batches=calib_b,
        key=jax.random.key(0),
      )
    ]
    for name in ("random", "magnitude", "activation")
  }
  keep = lambda s: np.isin(
    np.arange(s.size), np.argsort(-s, kind="stable")[: kept_count(s.size, 0.5)]
  )

  print("1. Most active FFN neuron per layer (calibration), kept by:")
  x_calib = _ffn_inputs(model, variables, calib_b)
  x_test = _ffn_inputs(model, variables, test_b)
  real = test_tokens["attention_mask"].reshape(-1).astype(bool)
  token = test_tokens["input_ids"].reshape(-1)[real]
  special = (token == CLS) | (token == SEP)
  top = []
  for layer, x in sorted(x_calib.items()):
    peak = np.abs(x).max(axis=0)
    top.append(int(np.argmax(peak)))
    kept = ", ".join(
      f"{name} {bool(keep(s[layer])[top[-1]])}" for name, s in scores.items()
    )
    median = np.median(peak)
    print(
      f"  layer{layer}: neuron {top[-1]}, max |x| {peak.max():.1f} "
      f"(median neuron {median:.2f}); {kept}"
    )

  print(
    "2. FFN output error per token, random cut, dense model: none / liar\n"
    "   layer | calibration | test all | test [CLS]/[SEP] | test others"
    " | ||dW_S||/||W_S||"
  )
  params = variables["params"]
  for layer, xc in sorted(x_calib.items()):
    w = np.asarray(params[f"layer{layer}"]["output"]["kernel"], np.float64)
    b = np.asarray(params[f"layer{layer}"]["output"]["bias"], np.float64)
    k = keep(scores["random"][layer])
    z = np.concatenate([xc, np.ones((len(xc), 1))], axis=1)
    w_liar, b_liar = reconstruct.fold_in(w, b, z.T @ z, k, RIDGE)
    w_liar, b_liar = np.asarray(w_liar, np.float64), np.asarray(b_liar)
    w_none = w * k[:, None]
    err = lambda x, w2, b2, w=w, b=b: np.sum(
      (x @ w + b - x @ w2 - b2) ** 2, axis=1
    )
    xt = x_test[layer][real]
    cn, cl = err(xc, w_none, b), err(xc, w_liar, b_liar)
    tn, tl = err(xt, w_none, b), err(xt, w_liar, b_liar)
    moved = np.linalg.norm(w_liar - w_none) / np.linalg.norm(w_none)
    print(
      f"   {layer} | {cn.mean():.1f} / {cl.mean():.1f} | {tn.mean():.1f} / "
      f"{tl.mean():.1f} | {tn[special].mean():.0f} / {tl[special].mean():.0f}"
      f" | {tn[~special].mean():.1f} / {tl[~special].mean():.1f} | {moved:.2f}"
    )

  print("3. Cosine to dense / probe accuracy on the test entries:")
  embed = jax.jit(lambda v, i, m: model.apply(v, i, m, method="embed"))
  embed_all = lambda v, bs: np.concatenate([embed(v, *b) for b in bs])
  dense = embed_all(variables, test_b)
  probe = LogisticRegression(max_iter=2000, C=1.0)
  probe.fit(embed_all(variables, train_b), data.labels[train])
  protected = [s.copy() for s in scores["random"]]
  for s, neuron in zip(protected, top, strict=True):
    s[neuron] = 2.0  # above every uniform score: kept, the count unchanged
  for name, s in (
    ("random", scores["random"]),
    ("random, most active kept", protected),
  ):
    masks = unit_scores.select(variables, groups, s, fractions)
    for method in ("none", "liar"):
      pruned = reconstruct.reconstruct(
        apply, variables, masks, units, calib_b, method, RIDGE
      )
      pruned = apply_masks(pruned, unit_masks(pruned, masks, units))
      out = embed_all(pruned, test_b)
      accuracy = np.mean(probe.predict(out) == data.labels[test])
      cosine = np.mean(np.sum(out * dense, axis=1))
      print(f"  {name} / {method}: {cosine:.3f} / {accuracy:.3f}")
  print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
  main()
