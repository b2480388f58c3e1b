"""The public surface: prune, create, summary, and errors for bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

import jaxprune
from jaxprune.core.tree import check_masks

PUBLIC = [
  "prune",
  "wrap",
  "forward",
  "masks_of",
  "set_masks",
  "summary",
  "create",
  "apply_masks",
  "Policy",
  "NM",
  "Channel",
  "ScorePruner",
  "PruneState",
  "inner_state",
  "algorithms",
]


def test_public_names_import():
  for name in PUBLIC:
    assert getattr(jaxprune, name) is not None


def params():
  rng = np.random.default_rng(0)
  return {
    "conv": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 4, 8)), jnp.float32)},
    "fc": {
      "kernel": jnp.asarray(rng.normal(size=(72, 10)), jnp.float32),
      "bias": jnp.zeros(10),
    },
  }


def test_prune_layerwise_exact_counts_and_values():
  p = params()
  pruned, masks = jaxprune.prune(p, 0.7)
  for layer in ("conv", "fc"):
    w = np.asarray(p[layer]["kernel"])
    k = w.size - round(0.7 * w.size)
    order = np.lexsort((np.arange(w.size), -np.abs(w).ravel()))
    expect = np.zeros(w.size, bool)
    expect[order[:k]] = True
    np.testing.assert_array_equal(
      np.asarray(masks[layer]["kernel"]).ravel(), expect
    )
    np.testing.assert_array_equal(
      np.asarray(pruned[layer]["kernel"]).ravel(),
      np.where(expect, w.ravel(), 0),
    )
  assert masks["fc"]["bias"] is None


def test_prune_global_vs_layerwise():
  p = params()
  p["fc"]["kernel"] = p["fc"]["kernel"] * 0.01  # fc far smaller than conv
  _, glob = jaxprune.prune(p, 0.5, distribution="global")
  total = 288 + 720
  kept = [int(glob[k]["kernel"].sum()) for k in ("conv", "fc")]
  assert sum(kept) == total - round(0.5 * total)
  flat = np.concatenate(
    [np.abs(np.asarray(p[k]["kernel"])).ravel() for k in ("conv", "fc")]
  )
  order = np.lexsort((np.arange(total), -flat))
  expect = np.zeros(total, bool)
  expect[order[: total // 2]] = True
  np.testing.assert_array_equal(
    np.concatenate(
      [np.asarray(glob[k]["kernel"]).ravel() for k in ("conv", "fc")]
    ),
    expect,
  )
  assert kept[0] > 280  # the small-valued layer gives up most of its weights
  _, guarded = jaxprune.prune(p, 0.9, distribution="global", min_fraction=0.05)
  assert int(guarded["fc"]["kernel"].sum()) == int(0.05 * total)
  assert sum(int(guarded[k]["kernel"].sum()) for k in ("conv", "fc")) == (
    total - round(0.9 * total)
  )


def test_prune_random_exact_erk_counts_and_key():
  p = params()
  _, a = jaxprune.prune(
    p, 0.8, score="random", distribution="erk", key=jax.random.key(1)
  )
  _, b = jaxprune.prune(
    p, 0.8, score="random", distribution="erk", key=jax.random.key(2)
  )
  dens = 1 - np.asarray(
    jaxprune.core.allocation.erk([(3, 3, 4, 8), (72, 10)], 0.8)
  )
  for i, layer in enumerate(("conv", "fc")):
    n = p[layer]["kernel"].size
    expect = n - int(np.round(np.float32(1 - dens[i]) * np.float32(n)))
    assert int(a[layer]["kernel"].sum()) == expect
  assert not np.array_equal(
    np.asarray(a["fc"]["kernel"]), np.asarray(b["fc"]["kernel"])
  )


def test_prune_nm_and_channel():
  p = params()
  _, nm = jaxprune.prune(
    p,
    0.5,
    structure=jaxprune.NM(m=4, axis=-2),
    policy=jaxprune.Policy(exclude=["conv"]),
  )
  groups = np.asarray(nm["fc"]["kernel"]).T.reshape(10, 18, 4)
  assert (groups.sum(-1) == 2).all()
  _, ch = jaxprune.prune(p, 0.25, structure=jaxprune.Channel())
  kept_channels = np.asarray(ch["conv"]["kernel"]).reshape(-1, 8).all(0)
  assert kept_channels.sum() == 6
  assert (
    np.asarray(ch["conv"]["kernel"]).reshape(-1, 8).any(0) == kept_channels
  ).all()


def test_create_from_config_dict_and_configdict():
  cfg = ConfigDict(
    {
      "algorithm": "global_magnitude",
      "sparsity": 0.9,
      "min_fraction": 0.001,
      "policy": {"exclude": ["bias"]},
    }
  )
  pruner = jaxprune.create(cfg)
  assert pruner.distribution == "global" and pruner.min_fraction == 0.001
  assert pruner.policy.exclude == ("bias",)
  random = jaxprune.create(
    {"algorithm": "random", "sparsity": 0.5, "distribution": "er"}
  )
  assert random.distribution == "er"


def test_create_builds_structures_from_config_mappings():
  cfg = ConfigDict(
    {
      "algorithm": "gradual_magnitude",
      "final_sparsity": 0.75,
      "begin": 0,
      "end": 2,
      "frequency": 1,
      "structure": {"kind": "nm", "m": 4, "axis": -2},
    }
  )
  pruner = jaxprune.create(cfg)
  assert pruner.structure == jaxprune.NM(m=4, axis=-2)
  tx = jaxprune.wrap(optax.sgd(0.0), pruner)
  p = params()
  state = tx.init(p)
  zero = jax.tree.map(jnp.zeros_like, p)
  for _ in range(3):
    _, state = tx.update(zero, state, p)
  # 1:4 along the input axis: of every 4 consecutive inputs of an output
  # (and of a 3x3 position), the largest |w| is kept, exactly one.
  for name in ("conv", "fc"):
    w = np.abs(np.asarray(p[name]["kernel"]))
    mask = np.asarray(jaxprune.masks_of(state)[name]["kernel"])
    groups = np.moveaxis(w, -2, -1).reshape(-1, 4)
    expected = groups == groups.max(-1, keepdims=True)
    kept = np.moveaxis(mask, -2, -1).reshape(-1, 4)
    np.testing.assert_array_equal(kept, expected)
  channel = jaxprune.create(
    {
      "algorithm": "magnitude",
      "sparsity": 0.5,
      "structure": {"kind": "channel"},
    }
  )
  assert channel.structure == jaxprune.Channel(axis=-1)
  same = jaxprune.create(
    {"algorithm": "magnitude", "sparsity": 0.5, "structure": jaxprune.NM(2)}
  )
  assert same.structure == jaxprune.NM(2)
  none = {"algorithm": "magnitude", "sparsity": 0.5, "structure": None}
  assert jaxprune.create(none).structure is None


@pytest.mark.parametrize(
  "structure, message",
  [
    ({"kind": "block"}, r"structure.kind='block': expected one of \['nm'"),
    ({"m": 4}, r"structure.kind=None: expected one of"),
    ("2:4", r"structure='2:4': expected None, jaxprune.NM"),
    ({"kind": "nm", "m": 0}, r"structure.m=0: expected an integer >= 2"),
    ({"kind": "nm", "m": 4.0}, r"structure.m=4.0: expected an integer"),
    ({"kind": "nm", "m": True}, r"structure.m=True: expected an integer"),
    (
      {"kind": "nm", "m": 4, "n": 2},
      r"kind 'nm' takes no \['n'\]; it takes \['m', 'axis'\] \(n follows",
    ),
    (
      {"kind": "channel", "axis": "out"},
      r"structure.axis='out': expected an integer",
    ),
    ({"kind": "channel", "m": 4}, r"kind 'channel' takes no \['m'\]"),
  ],
)
def test_create_rejects_bad_structures_naming_field_and_value(
  structure, message
):
  config = {"algorithm": "magnitude", "sparsity": 0.5, "structure": structure}
  with pytest.raises(ValueError, match=message):
    jaxprune.create(config)


def test_structures_validate_their_fields():
  with pytest.raises(ValueError, match=r"m=1: expected an integer >= 2"):
    jaxprune.NM(1)
  with pytest.raises(ValueError, match=r"axis=None: expected an integer"):
    jaxprune.Channel(axis=None)
  assert jaxprune.NM(np.int64(4)).m == 4


def test_bad_inputs_raise_clear_errors():
  p = params()
  with pytest.raises(ValueError, match=r"sparsity=1.5.*\[0, 1\]"):
    jaxprune.prune(p, 1.5)
  with pytest.raises(
    ValueError, match=r"algorithm='rigl2' is unknown.*magnitude"
  ):
    jaxprune.create({"algorithm": "rigl2"})
  with pytest.raises(ValueError, match=r"takes no \['sparsty'\]"):
    jaxprune.create({"algorithm": "magnitude", "sparsty": 0.5})
  with pytest.raises(ValueError, match="distribution='erx' is unknown"):
    jaxprune.prune(p, 0.5, distribution="erx")
  with pytest.raises(ValueError, match="pattern 'fc9' matches no parameter"):
    jaxprune.prune(p, 0.5, policy=jaxprune.Policy(fixed={"fc9": 0.0}))
  with pytest.raises(ValueError, match="leaf 'fc/kernel'.*divisible by 3"):
    jaxprune.prune(
      p,
      0.5,
      structure=jaxprune.NM(m=3, axis=-1),
      policy=jaxprune.Policy(exclude=["conv"]),
    )
  with pytest.raises(ValueError, match="needs key"):
    jaxprune.prune(p, 0.5, score="random")
  with pytest.raises(ValueError, match="needs gradients"):
    jaxprune.prune(p, 0.5, score="saliency")


def test_mask_tree_mismatch_names_leaf():
  p = params()
  _, masks = jaxprune.prune(p, 0.5)
  bad = dict(masks, fc=dict(masks["fc"], kernel=jnp.ones((2, 2), bool)))
  with pytest.raises(ValueError, match="mask for 'fc/kernel' has shape"):
    check_masks(p, bad)
  with pytest.raises(ValueError, match="missing from masks"):
    check_masks(p, {"conv": masks["conv"]})


def test_non_finite_scores_name_the_leaf():
  p = params()
  p["fc"]["kernel"] = p["fc"]["kernel"].at[0, 0].set(jnp.nan)
  with pytest.raises(ValueError, match="scores of 'fc/kernel' contain NaN"):
    jaxprune.prune(p, 0.5)
  # Magnitude pruning at step 0 ranks the params in `tx.init`.
  tx = jaxprune.wrap(optax.sgd(0.1), jaxprune.algorithms.magnitude(0.5))
  with pytest.raises(ValueError, match="scores of 'fc/kernel' contain NaN"):
    tx.init(p)
  # Under jit the masks stay as they were and the state records the leaf,
  # in `init` and in an update alike.
  state = jax.jit(tx.init)(p)
  assert bool(jaxprune.masks_of(state)["fc"]["kernel"].all())
  with pytest.raises(ValueError, match="scores of 'fc/kernel' contain NaN"):
    jaxprune.check(state)
  later = jaxprune.algorithms.magnitude(0.5, step=1)
  tx = jaxprune.wrap(optax.sgd(0.1), later)
  state = tx.init(p)
  for _ in range(2):
    _, state = jax.jit(tx.update)(p, state, p)
  assert int(state.step) == 2
  assert bool(jaxprune.masks_of(state)["fc"]["kernel"].all())
  with pytest.raises(ValueError, match="scores of 'fc/kernel' contain NaN"):
    jaxprune.check(state)


def test_summary_table():
  _, masks = jaxprune.prune(params(), 0.5)
  s = jaxprune.summary(masks)
  assert (s.size, s.kept) == (1008, 504)
  text = str(s)
  assert "conv/kernel" in text and "50.00%" in text
  assert s.as_dict()["leaves"]["fc/kernel"]["kept"] == 360


def numpy_masks(p, sparsity):
  """Layerwise magnitude masks by numpy: lower index first among ties."""
  out = {}
  for layer in ("conv", "fc"):
    w = np.abs(np.asarray(p[layer]["kernel"])).ravel()
    k = w.size - int(np.round(np.float32(sparsity) * np.float32(w.size)))
    keep = np.zeros(w.size, bool)
    keep[np.lexsort((np.arange(w.size), -w))[:k]] = True
    out[layer] = keep.reshape(p[layer]["kernel"].shape)
  return out


def test_prune_compiles_once_for_a_sweep_and_under_jit():
  from jaxprune import api

  p = params()
  jaxprune.prune(p, 0.1)
  before = api._prune._cache_size()
  for s in (0.0, 0.25, 0.5, 0.9, 1.0):
    _, masks = jaxprune.prune(p, s)
    for layer, expect in numpy_masks(p, s).items():
      np.testing.assert_array_equal(np.asarray(masks[layer]["kernel"]), expect)
  assert api._prune._cache_size() == before  # no compilation per sparsity
  # A traced sparsity under the caller's jit.
  sweep = jax.jit(jax.vmap(lambda s: jaxprune.prune(p, s)[1]["fc"]["kernel"]))
  got = np.asarray(sweep(jnp.array([0.3, 0.6])))
  for i, s in enumerate((0.3, 0.6)):
    np.testing.assert_array_equal(got[i], numpy_masks(p, s)["fc"])


def test_bad_keys_and_missing_keys_say_what_is_expected():
  p = params()
  with pytest.raises(
    ValueError, match=r"key=42 is not a PRNG key.*jax\.random\.key"
  ):
    jaxprune.prune(p, 0.5, score="random", key=42)
  with pytest.raises(ValueError, match=r"jaxprune.wrap: key=42 is not a PRNG"):
    jaxprune.wrap(optax.sgd(0.1), jaxprune.algorithms.rigl(0.5, end=10), key=42)
  with pytest.raises(ValueError, match=r"key=an array of float32\[2\]"):
    jaxprune.prune(p, 0.5, key=jnp.zeros(2))
  # Pruners that draw random masks need a key; legacy raw keys are fine.
  for pruner in (
    jaxprune.algorithms.rigl(0.5, end=10),
    jaxprune.algorithms.set_(0.5, end=10),
    jaxprune.algorithms.random(0.5),
  ):
    with pytest.raises(ValueError, match=f"'{pruner.name}' draws random masks"):
      jaxprune.wrap(optax.sgd(0.1), pruner).init(p)
    jaxprune.wrap(optax.sgd(0.1), pruner, key=jax.random.PRNGKey(0)).init(p)
  # GraNet from a dense start with gradient growth draws nothing.
  granet = jaxprune.algorithms.granet(
    0.5, begin=0, end=10, frequency=5, total_steps=20
  )
  assert not granet.needs_key
  jaxprune.wrap(optax.sgd(0.1), granet).init(p)


def test_integer_leaves_are_refused_by_name():
  p = params()
  p["fc"]["kernel"] = jnp.full((72, 10), 2**24 + 1, jnp.int32)
  with pytest.raises(
    ValueError,
    match=r"leaf 'fc/kernel' has dtype int32.*"
    r"Policy\(exclude=\['fc/kernel'\]\)",
  ):
    jaxprune.prune(p, 0.5)
  with pytest.raises(ValueError, match="leaf 'fc/kernel' has dtype int32"):
    jaxprune.wrap(optax.sgd(0.1), jaxprune.algorithms.magnitude(0.5)).init(p)
  # Excluded, it passes through untouched.
  pruned, masks = jaxprune.prune(
    p, 0.5, policy=jaxprune.Policy(exclude=["fc/kernel"])
  )
  assert masks["fc"]["kernel"] is None
  np.testing.assert_array_equal(pruned["fc"]["kernel"], p["fc"]["kernel"])


def test_apply_masks_and_summary_name_mismatched_leaves():
  p = params()
  _, masks = jaxprune.prune(p, 0.5)
  row = dict(masks, fc=dict(masks["fc"], kernel=jnp.ones(10, bool)))
  with pytest.raises(
    ValueError,
    match=r"mask for 'fc/kernel' has shape \(10,\), expected .* \(72, 10\)",
  ):
    jaxprune.apply_masks(p, row)
  with pytest.raises(
    ValueError, match=r"missing from masks: \['fc/bias', 'fc/kernel'\]"
  ):
    jaxprune.apply_masks(p, {"conv": masks["conv"]})
  with pytest.raises(
    ValueError, match=r"missing from masks: \['conv/kernel'\]"
  ):
    jaxprune.summary(p, {"fc": masks["fc"]})


def test_channel_axis_out_of_range_names_the_leaf():
  p = params()
  with pytest.raises(
    ValueError, match=r"leaf 'fc/kernel': Channel\(axis=3\).*\(72, 10\)"
  ):
    jaxprune.prune(
      p,
      0.5,
      structure=jaxprune.Channel(axis=3),
      policy=jaxprune.Policy(exclude=["conv"]),
    )


def test_inner_state_accessor():
  p = params()
  tx = jaxprune.wrap(optax.adam(1e-2), jaxprune.algorithms.magnitude(0.5))
  state = tx.init(p)
  inner = jaxprune.inner_state(optax.chain(optax.identity(), tx).init(p)[1])
  assert inner is not None
  adam = jaxprune.inner_state(state)[0]
  assert int(adam.count) == 0
  assert jax.tree.structure(adam.mu) == jax.tree.structure(p)


def test_summary_columns_align_whatever_the_names():
  for p in (
    {"w": jnp.ones((2, 2))},
    {"a" * 40: {"kernel": jnp.ones((300, 400))}, "b": jnp.ones((3, 3))},
  ):
    _, masks = jaxprune.prune(p, 0.5, policy=jaxprune.Policy(include=["."]))
    lines = str(jaxprune.summary(p, masks)).splitlines()
    assert len({len(line) for line in lines}) == 1, lines
    # every number column ends where its header ends
    header = lines[0]
    for title in ("size", "kept", "sparsity"):
      end = header.index(title) + len(title)
      for line in lines[1:]:
        assert line[end - 1] != " " and (end == len(line) or line[end] == " ")
