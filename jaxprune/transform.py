"""optax integration: a pruner wrapped around any optax optimizer.

One update of `wrap(inner, pruner)`:

1. on the pruner's update steps (`lax.cond`, so one compiled step serves the
   whole run) new masks are computed from the current params and the dense
   gradient;
2. the gradient is masked with the entries active both before and after,
   and so is every leaf of the inner state shaped like the params (found
   by the params' layout in the state, whatever the optimizer, including
   `optax.masked` and `optax.multi_transform`): entries that
   become active start from zero weight and zero state, and entries that are
   pruned drop their state. A pruner that `only_prunes` returns masks
   within the old ones, which are then the active entries themselves;
3. the inner optimizer runs on the masked gradient and the masked params;
4. its updates are replaced by `-params` at pruned entries, so that
   `optax.apply_updates(params, updates)` is masked on every step, the step
   where the masks change included.

The state the inner optimizer returns is stored as it is: pruned entries
see zero gradient, zero state and zero params, so optimizers whose state
stays zero under zero gradients (sgd with momentum, adam, adamw, lion,
rmsprop, ...) hold exactly zero there; any other optimizer's stray state is
masked away before its next update and can never move a pruned weight.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from jaxprune.core.keys import check_key
from jaxprune.core.tree import check_masks, map_masked, path_str
from jaxprune.core.types import Masks, Params


@flax.struct.dataclass
class PruneState:
  """State of a wrapped optimizer.

  Attributes:
    inner_state: the wrapped optimizer's state.
    masks: current masks (bool leaves, `None` where not pruned).
    step: number of updates done.
    aux: the pruner's own state.
    key: raw uint32 PRNG key data the pruner's randomness derives from.
    pruner: the pruner itself (static: not a pytree child).
  """

  inner_state: Any
  masks: Masks
  step: jax.Array
  aux: Any
  key: jax.Array
  pruner: Any = flax.struct.field(pytree_node=False)


def _key_data(key: jax.Array | None) -> jax.Array:
  """The key's raw data in a buffer of its own: `key_data` shares the
  key's buffer, and a step that donates the state would delete the
  caller's key with it."""
  if key is None:
    return jnp.zeros((2,), jnp.uint32)
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return jnp.array(key, jnp.uint32, copy=True)


def _zero(mask, x):
  return jnp.where(mask, x, jnp.zeros((), x.dtype))


def _param_trees(params_def, node) -> list | None:
  """`node`'s subtrees at the params' leaves if `node` is laid out like the
  params (as a moment or a masked optimizer's copy of them, where
  `optax.MaskedNode` stands in for the leaves left out), else None."""
  if params_def.num_leaves == 1 and params_def.num_nodes == 1:
    return [node] if hasattr(node, "shape") else None
  try:
    return params_def.flatten_up_to(node)
  except (ValueError, TypeError):
    return None


def _mask_state(state, masks):
  """Zeroes `state` where `masks` prune, in every subtree laid out like the
  params whose leaf has the mask's shape.

  `optax.tree_map_params` finds such subtrees from a placeholder `init`, which
  `optax.masked`, `optax.multi_transform` (and the optimizers built on them,
  such as `optax.contrib.muon`) cannot run; matching the layout finds them in
  any state, including the partial copies those keep."""
  mask_leaves, params_def = jax.tree.flatten(masks, is_leaf=lambda x: x is None)

  def is_params(node):
    return _param_trees(params_def, node) is not None

  def mask_one(s, m):
    if not hasattr(s, "shape"):
      # A state laid out like the params only at the top (tuple params and
      # a chain's tuple of states): look inside.
      return jax.tree.map(mask, s, is_leaf=is_params)
    return s if m is None or s.shape != m.shape else _zero(m, s)

  def mask(node):
    leaves = _param_trees(params_def, node)
    if leaves is None:  # a leaf of the state outside any params layout
      return node
    out = [mask_one(s, m) for s, m in zip(leaves, mask_leaves, strict=True)]
    return jax.tree.unflatten(params_def, out)

  return jax.tree.map(mask, state, is_leaf=is_params)


def wrap(
  inner: optax.GradientTransformation,
  pruner: Any,
  key: jax.Array | None = None,
) -> optax.GradientTransformationExtraArgs:
  """Keeps params sparse while `inner` trains them.

  Args:
    inner: any optax optimizer.
    pruner: a pruner (see `jaxprune.pruner`), e.g. from
      `jaxprune.algorithms` or `jaxprune.create`.
    key: a `jax.random.key(...)`, required by pruners that draw random
      masks (`pruner.needs_key`: random masks, RigL's and SET's random
      start, SET's random growth); mask updates use `fold_in(key, step)`.

  Returns:
    A transformation whose `update(grads, state, params)` needs params; the
    loss must be computed on `jaxprune.forward(params, state)` and
    differentiated through it (see `forward`).

  >>> import jax, jax.numpy as jnp, optax, jaxprune
  >>> params = {'w': jnp.arange(1.0, 9.0).reshape(2, 4)}
  >>> tx = jaxprune.wrap(optax.sgd(0.1), jaxprune.algorithms.magnitude(0.5))
  >>> state = tx.init(params)
  >>> grads = jax.tree.map(jnp.ones_like, params)
  >>> updates, state = tx.update(grads, state, params)
  >>> optax.apply_updates(params, updates)['w']
  Array([[0. , 0. , 0. , 0. ],
         [4.9, 5.9, 6.9, 7.9]], dtype=float32)
  """

  if key is not None:
    check_key(key, "jaxprune.wrap")

  def init_fn(params):
    if key is None and getattr(pruner, "needs_key", False):
      raise ValueError(
        f"pruner '{getattr(pruner, 'name', type(pruner).__name__)}' draws "
        "random masks: pass key=jax.random.key(...) to jaxprune.wrap"
      )
    key_data = _key_data(key)
    masks, aux = pruner.init(params, jax.random.wrap_key_data(key_data))
    check_masks(params, masks)
    inner_state = _mask_state(inner.init(params), masks)
    return PruneState(
      inner_state=inner_state,
      masks=masks,
      step=jnp.zeros((), jnp.int32),
      aux=aux,
      key=key_data,
      pruner=pruner,
    )

  def update_fn(grads, state, params=None, **extra_args):
    if params is None:
      raise ValueError("jaxprune.wrap's update needs params: update(g, s, p)")
    old = state.masks

    def new_masks(_):
      step_key = jax.random.fold_in(
        jax.random.wrap_key_data(state.key), state.step
      )
      return pruner.update(params, grads, old, state.aux, state.step, step_key)

    def change(_):
      new, aux = new_masks(None)
      return new, map_masked(jnp.logical_and, new, old), aux

    def keep(_):
      return old, old, state.aux

    update = pruner.is_update_step(state.step)
    if update is False:  # masks fixed since init: no update to compile
      masks, active, aux = keep(None)
    elif getattr(pruner, "only_prunes", False):
      # The new masks lie within the old ones, so they are the active
      # entries too: nothing reads the old masks after the cond, which would
      # make XLA copy every mask on every step.
      masks, aux = jax.lax.cond(
        update, new_masks, lambda _: (old, state.aux), None
      )
      active = masks
    else:
      masks, active, aux = jax.lax.cond(update, change, keep, None)
    # Masking the state on the way in fuses into the optimizer's own
    # elementwise work; masking its output would make XLA keep both copies.
    inner_state = _mask_state(state.inner_state, active)
    grads = map_masked(_zero, active, grads, absent=lambda g: g)
    inner_params = map_masked(_zero, masks, params, absent=lambda p: p)
    updates, inner_state = inner.update(
      grads, inner_state, inner_params, **extra_args
    )
    updates = map_masked(
      lambda m, u, p: jnp.where(m, u, -p),
      masks,
      updates,
      params,
      absent=lambda u, p: u,
    )
    new_state = state.replace(
      inner_state=inner_state, masks=masks, step=state.step + 1, aux=aux
    )
    return updates, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def state_of(state: Any) -> PruneState:
  """The `PruneState` inside an optimizer state (e.g. within a chain).

  Raises:
    ValueError: if there is none.
  """
  found = [
    s
    for s in jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, PruneState))
    if isinstance(s, PruneState)
  ]
  if not found:
    raise ValueError(
      "no jaxprune state found: pass the state of an optimizer built with "
      "jaxprune.wrap"
    )
  return found[0]


def set_masks(state: Any, masks: Masks) -> Any:
  """Returns `state` holding `masks`, its inner state masked to match.

  The masks are traced state, so a jitted step does not recompile. The
  caller keeps params masked (`jaxprune.apply_masks`), e.g. after a rewind.

  Raises:
    ValueError: if `masks` does not match the masks already held.
  """
  s = state_of(state)
  old = jax.tree.leaves_with_path(s.masks, is_leaf=lambda x: x is None)
  new_leaves = jax.tree.leaves_with_path(masks, is_leaf=lambda x: x is None)
  describe = lambda leaves: [
    (path_str(p), None if m is None else (tuple(m.shape), str(m.dtype)))
    for p, m in leaves
  ]
  if describe(old) != describe(new_leaves):
    raise ValueError(
      "set_masks: the new masks must have the same leaves, shapes, bool "
      f"dtype and None placement as the current ones; current "
      f"{describe(old)}, given {describe(new_leaves)}"
    )
  new = s.replace(masks=masks, inner_state=_mask_state(s.inner_state, masks))
  return jax.tree.map(
    lambda x: new if x is s else x,
    state,
    is_leaf=lambda x: isinstance(x, PruneState),
  )


def forward(params: Params, state: Any) -> Params:
  """The parameters the forward pass must use (identity for hard masks).

  Differentiate the loss through it,
  `jax.grad(lambda p: loss(jaxprune.forward(p, state)))(params)`: for hard
  masks it is the identity, so this is the dense gradient that growth and
  saliency need; for soft masks (PDP) the gradient also flows through the
  mask.
  """
  s = state_of(state)
  return s.pruner.forward(params, s.masks, s.aux)


def check(state: Any) -> None:
  """Raises on the host if the pruner met bad values inside a jitted step.

  A mask update under `jit` cannot raise (a host callback would slow every
  step); a pruner that found, e.g., non-finite scores keeps its old masks
  and records the problem in its state. Call this where the training loop
  reads values back anyway (after each chunk of steps, at evaluation).

  Raises:
    ValueError: naming the leaf and the problem.
  """
  s = state_of(state)
  check_fn = getattr(s.pruner, "check", None)
  if check_fn is not None:
    check_fn(s.masks, s.aux)


def masks_of(state: Any) -> Masks:
  """The current masks held in a wrapped optimizer's state."""
  return state_of(state).masks


def inner_state(state: Any) -> Any:
  """The state of the optimizer `jaxprune.wrap` wraps, e.g. to read its
  moments or its injected hyperparameters.

  >>> import jax.numpy as jnp, optax, jaxprune
  >>> tx = jaxprune.wrap(optax.sgd(0.1, momentum=0.9),
  ...                    jaxprune.algorithms.magnitude(0.5))
  >>> jaxprune.inner_state(tx.init({'w': jnp.ones((2, 2))}))[0].trace['w']
  Array([[0., 0.],
         [0., 0.]], dtype=float32)
  """
  return state_of(state).inner_state
