"""PDP soft masks against numpy references: the threshold, the mask's shape,
its gradient (finite differences in float64), the ramp, the budgets, exact
hardening (unstructured, N:M, channel), training through jaxprune.wrap under
jit with one compilation, and bad inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxprune
from jaxprune.algorithms.pdp import DENSE, HARD, SOFT, hard_masks, pdp
from jaxprune.core import selection
from jaxprune.core.tree import path_str

IN, HID, OUT = 12, 16, 8
KERNELS = ("fc1", "fc2")


def mlp_params(key):
  k1, k2 = jax.random.split(key)
  return {
    "fc1": {"kernel": jax.random.normal(k1, (IN, HID)), "bias": jnp.ones(HID)},
    "fc2": {"kernel": jax.random.normal(k2, (HID, OUT)), "bias": jnp.ones(OUT)},
  }


def apply(params, x):
  h = jnp.tanh(x @ params["fc1"]["kernel"] + params["fc1"]["bias"])
  return h @ params["fc2"]["kernel"] + params["fc2"]["bias"]


def make_step(tx, apply_fn=apply, x_shape=(16, IN), y_dim=OUT):
  """A jitted train step differentiating through the soft forward pass."""
  x = jax.random.normal(jax.random.key(7), x_shape)
  y = jax.random.normal(jax.random.key(8), (x_shape[0], y_dim))

  @jax.jit
  def step(params, state):
    def loss(p):
      out = apply_fn(jaxprune.forward(p, state), x)
      return jnp.mean((out - y) ** 2)

    grads = jax.grad(loss)(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


def kernel_leaves(tree):
  """{path: leaf} of the PDP aux leaves, skipping unpruned (None) ones."""
  return {
    path_str(p): x
    for p, x in jax.tree.leaves_with_path(
      tree, is_leaf=lambda x: hasattr(x, "kept")
    )
  }


# numpy references


def sigmoid(z):
  return 0.5 * (1.0 + np.tanh(0.5 * z))


def np_midpoint(scores, k):
  """Midway between the k-th and (k+1)-th largest scores, float32."""
  s = np.sort(np.asarray(scores, np.float32).ravel())[::-1]
  if k == s.size:
    return s[-1]
  if k == 0:
    return s[0]
  return np.float32(0.5) * (s[k - 1] + s[k])


def np_topk(scores, k):
  """The k largest, ties to the lower flat index."""
  flat = np.asarray(scores, np.float64).ravel()
  order = np.lexsort((np.arange(flat.size), -flat))
  keep = np.zeros(flat.size, bool)
  keep[order[:k]] = True
  return keep.reshape(np.shape(scores))


def np_kept(units, pruned, step, begin, end):
  """Units kept by the update of `step` under the linear ramp."""
  r = np.float32(min(1.0, max(0.0, (step - begin + 1) / (end - begin + 1))))
  return units - int(np.round(r * np.float32(pruned)))


def np_soft(w, t, tau, structure=None):
  """w * sigmoid((score^2 - t^2) / tau) in float64."""
  w = np.asarray(w, np.float64)
  t = np.asarray(t, np.float64)
  if structure is None:
    return w * sigmoid((w**2 - t**2) / tau)
  moved = np.moveaxis(w, structure.axis, -1)
  if isinstance(structure, jaxprune.Channel):
    s2 = (moved**2).reshape(-1, moved.shape[-1]).sum(0)
    out = moved * sigmoid((s2 - t**2) / tau)
  else:
    g = moved.reshape(*moved.shape[:-1], -1, structure.m)
    out = (g * sigmoid((g**2 - t[..., None] ** 2) / tau)).reshape(moved.shape)
  return np.moveaxis(out, -1, structure.axis)


def np_groups(w, structure):
  moved = np.moveaxis(np.asarray(w), structure.axis, -1)
  return moved.reshape(*moved.shape[:-1], -1, structure.m)


def np_norms(w, axis):
  moved = np.moveaxis(np.asarray(w, np.float32), axis, -1)
  return np.sqrt((moved**2).reshape(-1, moved.shape[-1]).sum(0))


# The threshold search


@pytest.mark.parametrize("kind", ["normal", "ties", "zeros"])
def test_boundary_matches_sorted_values(kind):
  rng = np.random.default_rng(0)
  cold = jax.jit(selection.boundary)
  warm = jax.jit(lambda x, k, v, s: selection.boundary(x, k, (v, s)))
  for n in (1, 130, 3000, 10007, 70001):
    x = np.abs(rng.normal(size=n)).astype(np.float32)
    if kind == "ties":
      x = np.round(x * 4) / 4
    elif kind == "zeros":
      x[: n // 2] = 0.0
    s = np.sort(x)[::-1]
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
      want = (s[k - 1] if k else np.inf, s[k] if k < n else -np.inf)
      near = s[min(k, n - 1)]
      got = [
        cold(x, k),
        warm(x, k, near, np.float32(1e-3)),  # good guess
        warm(x, k, np.float32(50.0), np.float32(1e-6)),  # far above
        warm(x, k, np.float32(-3.0), np.float32(0.0)),  # below, no step
      ]
      for kept_min, pruned_max in got:
        assert (float(kept_min), float(pruned_max)) == want, (n, k)


# The soft mask


@pytest.mark.parametrize("relative", [False, True])
def test_mask_is_half_at_t_and_ninety_percent_tau_ln9_above(relative):
  params = {"w": jnp.arange(1.0, 9.0).reshape(2, 4) / 8}
  tau = 0.1 if relative else 1e-3
  pruner = pdp(
    0.5, begin=0, end=0, harden_step=9, tau=tau, tau_relative=relative
  )
  key = jax.random.key(0)
  masks, aux = pruner.init(params, key)
  masks, aux = pruner.update(params, None, masks, aux, jnp.int32(0), key)
  t = np.float32(aux.leaves["w"].t)
  assert t == np_midpoint(np.asarray(params["w"]), 4) == np.float32(0.5625)
  width = tau * t**2 if relative else tau
  probe = np.sqrt(
    [t**2, t**2 + width * np.log(9), t**2 - width * np.log(9), 0.0]
  )
  probe = np.concatenate([probe, probe]).reshape(2, 4).astype(np.float32)
  out = pruner.forward({"w": jnp.asarray(probe)}, masks, aux)["w"]
  m = np.asarray(out)[0, :3] / probe[0, :3]
  np.testing.assert_allclose(m, [0.5, 0.9, 0.1], rtol=1e-4)
  assert float(out[0, 3]) == 0.0


@pytest.mark.parametrize(
  "structure",
  [None, jaxprune.NM(4), jaxprune.NM(2, axis=0), jaxprune.Channel()],
  ids=["unstructured", "nm_last", "nm_axis0", "channel"],
)
def test_gradient_flows_through_mask_as_finite_differences(structure):
  """d/dw of sum(c * w m(w)), t held fixed, against float64 central
  differences of a numpy implementation of the same formula."""
  tau = 2e-2
  params = {"w": 0.3 * jax.random.normal(jax.random.key(1), (8, 12))}
  dist = "global" if structure is None else "uniform"
  pruner = pdp(
    0.5,
    begin=0,
    end=0,
    harden_step=9,
    tau=tau,
    distribution=dist,
    structure=structure,
  )
  tx = jaxprune.wrap(optax.sgd(0.0), pruner)
  state = tx.init(params)
  _, state = tx.update(params, state, params)
  t = np.asarray(state.aux.leaves["w"].t, np.float64)
  c = np.asarray(jax.random.normal(jax.random.key(2), (8, 12)), np.float64)

  def loss(p):
    return jnp.sum(jaxprune.forward(p, state)["w"] * c)

  got = np.asarray(jax.grad(loss)(params)["w"])
  w = np.asarray(params["w"], np.float64)
  np.testing.assert_allclose(
    np.asarray(jaxprune.forward(params, state)["w"]),
    np_soft(w, t, tau, structure),
    rtol=1e-5,
    atol=1e-6,
  )
  eps, want = 1e-6, np.zeros_like(w)
  for i in np.ndindex(w.shape):
    d = np.zeros_like(w)
    d[i] = eps
    f = lambda x: np.sum(np_soft(x, t, tau, structure) * c)
    want[i] = (f(w + d) - f(w - d)) / (2 * eps)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  assert np.abs(got - c).max() > 0.1  # not a straight-through gradient


# Training through jaxprune.wrap


BEGIN, END, HARDEN, STEPS, SPARSITY = 2, 6, 8, 11, 0.75


@pytest.mark.parametrize(
  "inner",
  [optax.adam(1e-2), optax.sgd(0.05, momentum=0.9)],
  ids=["adam", "sgd_momentum"],
)
def test_global_run_matches_numpy_step_by_step(inner):
  """Dense warm-up, global budgets fixed at `begin`, the ramp, t equal to
  the numpy midpoint at every soft step, exact hardening, one compile."""
  params = mlp_params(jax.random.key(3))
  pruner = pdp(SPARSITY, begin=BEGIN, end=END, harden_step=HARDEN)
  tx = jaxprune.wrap(inner, pruner)
  state = tx.init(params)
  step = make_step(tx)
  budgets = None
  for s in range(STEPS):
    before = {k: np.asarray(params[k]["kernel"]) for k in KERNELS}
    eff = jaxprune.forward(params, state)
    params, state = step(params, state)
    masks = jaxprune.masks_of(state)
    leaves = kernel_leaves(state.aux.leaves)
    if s <= BEGIN:  # no soft mask before the update of `begin` acts
      for k in KERNELS:
        np.testing.assert_array_equal(eff[k]["kernel"], before[k])
    if s == BEGIN:  # one global magnitude ranking at the final sparsity
      scores = np.concatenate([np.abs(before[k]).ravel() for k in KERNELS])
      keep = np_topk(scores, int(selection.kept_count(scores.size, SPARSITY)))
      sizes = [before[k].size for k in KERNELS]
      kept = np.split(keep, np.cumsum(sizes)[:-1])
      budgets = {
        k: n - int(m.sum())
        for k, n, m in zip(KERNELS, sizes, kept, strict=True)
      }
    for k in KERNELS:
      leaf = leaves[f"{k}/kernel"]
      if s < BEGIN:
        assert int(state.aux.phase) == DENSE and int(leaf.pruned) == 0
        continue
      assert int(leaf.pruned) == budgets[k]
      n = before[k].size
      assert int(leaf.kept) == np_kept(n, budgets[k], s, BEGIN, END)
      if s < HARDEN:
        assert int(state.aux.phase) == SOFT
        assert bool(np.all(masks[k]["kernel"]))
        assert float(leaf.t) == np_midpoint(np.abs(before[k]), int(leaf.kept))
      else:
        assert int(state.aux.phase) == HARD
        want = np_topk(np.abs(before[k]), n - budgets[k])
        np.testing.assert_array_equal(masks[k]["kernel"], want)
        assert bool(np.all(np.asarray(params[k]["kernel"])[~want] == 0))
    if s > HARDEN:  # fine-tuning: forward is the identity
      for k in KERNELS:
        np.testing.assert_array_equal(
          jaxprune.forward(params, state)[k]["kernel"], params[k]["kernel"]
        )
  total = sum(params[k]["kernel"].size for k in KERNELS)
  kept = jaxprune.summary(jaxprune.masks_of(state)).kept
  assert kept == int(selection.kept_count(total, SPARSITY))
  assert step._cache_size() == 1


def test_ramp_is_linear_and_reaches_the_target():
  p = pdp(0.9, begin=10, end=19)
  r = [float(p.ramp(s)) for s in (9, 10, 14, 19, 30)]
  np.testing.assert_allclose(r, [0.0, 0.1, 0.5, 1.0, 1.0], rtol=1e-6)
  assert p.harden_step == 19 and float(p.ramp(19)) == 1.0


def conv_params(key):
  k1, k2 = jax.random.split(key)
  return {
    "conv": {"kernel": jax.random.normal(k1, (3, 3, 4, 8))},
    "fc": {"kernel": jax.random.normal(k2, (8 * 4 * 4, 8))},
  }


def conv_apply(params, x):
  h = jax.lax.conv_general_dilated(
    x,
    params["conv"]["kernel"],
    (1, 1),
    "SAME",
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )
  return jnp.tanh(h).reshape(x.shape[0], -1) @ params["fc"]["kernel"]


@pytest.mark.parametrize(
  "structure",
  [jaxprune.NM(4), jaxprune.NM(4, axis=-2), jaxprune.Channel()],
  ids=["nm_last", "nm_inputs", "channel"],
)
def test_structured_thresholds_and_hardening(structure):
  params = conv_params(jax.random.key(4))
  pruner = pdp(
    0.5,
    begin=0,
    end=1,
    harden_step=3,
    distribution="uniform",
    structure=structure,
  )
  tx = jaxprune.wrap(optax.adam(1e-2), pruner)
  state = tx.init(params)
  step = make_step(tx, conv_apply, (2, 4, 4, 4), 8)
  for s in range(5):
    before = jax.tree.map(np.asarray, params)
    params, state = step(params, state)
    leaves = kernel_leaves(state.aux.leaves)
    for name in ("conv", "fc"):
      w, leaf = before[name]["kernel"], leaves[f"{name}/kernel"]
      units = w.shape[structure.axis]
      if isinstance(structure, jaxprune.NM):
        units = structure.m
      assert int(leaf.kept) == np_kept(units, units // 2, s, 0, 1)
      mask = np.asarray(jaxprune.masks_of(state)[name]["kernel"])
      if s < 3:
        assert mask.all()
      if isinstance(structure, jaxprune.NM):
        groups = np.abs(np_groups(w, structure))
        if s < 3:  # one t per group, from the weights the update saw
          want = np.apply_along_axis(np_midpoint, -1, groups, int(leaf.kept))
          np.testing.assert_array_equal(np.asarray(leaf.t), want)
        else:  # exactly n of every m, the largest of each group
          kept = np_groups(mask, structure)
          assert (kept.sum(-1) == 2).all()
          flat = groups.reshape(-1, structure.m)
          want = np.stack([np_topk(g, 2) for g in flat])
          np.testing.assert_array_equal(kept.reshape(-1, structure.m), want)
      else:
        norms = np_norms(w, structure.axis)
        if s < 3:  # norms summed in another order: equal up to rounding
          want = np_midpoint(norms, int(leaf.kept))
          np.testing.assert_allclose(float(leaf.t), want, rtol=1e-6)
        else:  # whole channels, the largest norms
          np.testing.assert_array_equal(
            mask, np.broadcast_to(np_topk(norms, units // 2), w.shape)
          )
  assert step._cache_size() == 1


def test_hard_masks_evaluate_the_hard_model_in_any_phase():
  params = mlp_params(jax.random.key(5))
  pruner = pdp(0.5, begin=1, end=3, harden_step=5, distribution="uniform")
  tx = jaxprune.wrap(optax.sgd(0.01), pruner)
  state = tx.init(params)
  step, evaluate = make_step(tx), jax.jit(hard_masks)
  assert all(bool(m.all()) for m in jax.tree.leaves(evaluate(params, state)))
  for s in range(7):
    params, state = step(params, state)
    got = evaluate(params, state)
    leaves = kernel_leaves(state.aux.leaves)
    for k in KERNELS:
      want = np_topk(
        np.abs(params[k]["kernel"]), int(leaves[f"{k}/kernel"].kept)
      )
      if s >= 5:
        want = jaxprune.masks_of(state)[k]["kernel"]
      np.testing.assert_array_equal(got[k]["kernel"], want)
      assert got[k]["bias"] is None
  with pytest.raises(ValueError, match="hard_masks needs the state"):
    hard_masks(params, optax.sgd(0.1).init(params))


def test_nonfinite_weights_at_begin_keep_dense_and_check_raises():
  params = mlp_params(jax.random.key(6))
  params["fc2"]["kernel"] = params["fc2"]["kernel"].at[0, 0].set(jnp.nan)
  tx = jaxprune.wrap(optax.sgd(0.0), pdp(0.5, begin=0, end=2))
  state = tx.init(params)
  _, state = jax.jit(tx.update)(params, state, params)
  assert int(state.aux.phase) == DENSE
  with pytest.raises(ValueError, match="'fc2/kernel' contain NaN"):
    jaxprune.check(state)


def test_create_maps_config_keys_to_the_factory():
  p = jaxprune.create(
    {
      "algorithm": "pdp",
      "sparsity": 0.8,
      "begin": 5,
      "end": 50,
      "harden_step": 60,
      "tau": 1e-5,
      "tau_relative": True,
      "distribution": "erk",
    }
  )
  assert (p.sparsity, p.begin, p.end, p.harden_step) == (0.8, 5, 50, 60)
  assert (p.tau, p.tau_relative, p.distribution) == (1e-5, True, "erk")


def test_bad_inputs_raise_clear_errors():
  with pytest.raises(ValueError, match=r"sparsity=1.5: a sparsity must be"):
    pdp(1.5, begin=0, end=1)
  with pytest.raises(ValueError, match=r"sparsity=-0.1: a sparsity must be"):
    pdp(-0.1, begin=0, end=1)
  for tau in (0.0, -1e-4, float("nan")):
    with pytest.raises(ValueError, match=rf"tau={tau}: expected a finite"):
      pdp(0.5, begin=0, end=1, tau=tau)
  with pytest.raises(ValueError, match="begin=5, end=2, harden_step=2"):
    pdp(0.5, begin=5, end=2)
  with pytest.raises(ValueError, match="end=4, harden_step=3"):
    pdp(0.5, begin=0, end=4, harden_step=3)
  with pytest.raises(ValueError, match=r"distribution='global'.*NM\(m=4"):
    pdp(0.5, begin=0, end=1, structure=jaxprune.NM(4))
  with pytest.raises(ValueError, match="distribution='best' is unknown"):
    pdp(0.5, begin=0, end=1, distribution="best")
  params = {"w": jnp.ones((6, 6))}
  nm = pdp(
    0.5, begin=0, end=1, distribution="uniform", structure=jaxprune.NM(4)
  )
  with pytest.raises(ValueError, match=r"leaf 'w'.*m=4.*\(6, 6\) has 6"):
    jaxprune.wrap(optax.sgd(0.1), nm).init(params)
  ch = pdp(
    0.5, begin=0, end=1, distribution="uniform", structure=jaxprune.Channel(2)
  )
  with pytest.raises(ValueError, match="leaf 'w' of shape .* has no axis 2"):
    jaxprune.wrap(optax.sgd(0.1), ch).init(params)
  with pytest.raises(ValueError, match="takes no \\['temperature'\\]"):
    jaxprune.create(
      {
        "algorithm": "pdp",
        "sparsity": 0.5,
        "begin": 0,
        "end": 1,
        "temperature": 1.0,
      }
    )
