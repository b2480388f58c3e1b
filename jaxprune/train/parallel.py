"""Data parallelism for the trainer: one device, `pmap`, or `jit` on a mesh.

The trainer keeps one layout-free state between calls: a plain pytree of
single-device arrays ("canonical"). A `Layout` places it for training and
fetches it back:

- `none`: one device; placing and fetching do nothing.
- `pmap`: every local device holds a replica (a leading device axis); the
  step averages the loss, the gradient and BatchNorm statistics with
  `lax.pmean` over the axis `AXIS` before the optimizer (and hence the
  pruner) sees them.
- `sharded`: `jit` over a one-axis mesh `AXIS` of all devices, every host's
  included; the batch is sharded along it and the state replicated, so XLA
  inserts the gradient's all-reduce itself. With `shard_params` every state
  leaf of at least `MIN_SHARDED` entries is instead split along its largest
  axis the devices divide (params, masks and optimizer moments alike, as
  they share shapes): memory per device falls with the device count.

In both parallel layouts every replica updates its masks from the same
averaged gradient, params and key, so the masks stay bit-identical; `fetch`
checks that they did. The global batch (`batch_size`) is split evenly over
the devices. On several hosts each host builds only its own devices' part of
every batch (`host_rows`); the training set is small enough to be held whole
by every device (the MNIST family, CIFAR).
"""

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxprune.transform import state_of

AXIS = "data"
MODES = ("none", "pmap", "sharded")
MIN_SHARDED = 2**14


def initialize_distributed(settings: Mapping[str, Any]) -> None:
  """Joins this process to a multi-host run if `settings['enabled']`.

  Call it before any other JAX work.

  Args:
    settings: `config.distributed` (see `configs/parallel.py`):
      `coordinator_address`, `num_processes` and `process_id` for
      `jax.distributed.initialize`; empty values (`''`, `0`, `-1`) are left
      to JAX, which reads them from the cluster (Slurm, Open MPI, Cloud
      TPU) where it can.
  """
  if not settings["enabled"]:
    return
  # CPU hosts (tests, CPU clusters) reduce across processes with gloo;
  # GPU and TPU backends ignore the setting.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
    coordinator_address=settings["coordinator_address"] or None,
    num_processes=settings["num_processes"] or None,
    process_id=None if settings["process_id"] < 0 else settings["process_id"],
  )


def _place(x: Any, sharding: jax.sharding.Sharding) -> jax.Array:
  """`x`, the same on every host, as a global array with `sharding`."""
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])


def _first(x: jax.Array) -> jax.Array:
  """This host's first copy of a replicated array, on its own device."""
  return x.addressable_data(0)


def _check_replicas(state: Any, groups: Callable) -> None:
  """Raises if copies of a mask that must be equal are not.

  Args:
    state: a placed state holding a `jaxprune.wrap` optimizer state.
    groups: a mask leaf -> lists of this host's shards that hold the same
      entries.
  """
  for path, mask in jax.tree.leaves_with_path(state_of(state).masks):
    for shards in groups(mask):
      first = np.asarray(shards[0].data)
      for other in shards[1:]:
        if not np.array_equal(first, np.asarray(other.data)):
          raise RuntimeError(
            f"masks{jax.tree_util.keystr(path)}: device {other.device} "
            f"holds other values than {shards[0].device}; the replicas "
            "diverged"
          )


class Layout:
  """Where the training state and data live (mode `none`: one device).

  Attributes:
    mode: 'none', 'pmap' or 'sharded'.
    devices: the devices a step runs on.
    axis_name: the collective axis inside a `pmap`ped step, else None.
  """

  mode = "none"
  axis_name = None

  def __init__(self, devices: list):
    self.devices = devices

  @property
  def size(self) -> int:
    """How many devices share a batch."""
    return len(self.devices)

  def check_batch(self, field: str, batch_size: int) -> None:
    """Raises unless the devices split `batch_size` evenly."""
    if batch_size % self.size:
      raise ValueError(
        f"{field} = {batch_size}: parallel = {self.mode!r} splits each "
        f"batch over {self.size} devices; expected a multiple of {self.size}"
      )

  def compile(self, fn: Callable, mapped: tuple[bool, ...]) -> Callable:
    """`fn` compiled for this layout.

    Args:
      fn: the step or evaluation function.
      mapped: per argument, whether it is per device (placed state, batch
        positions) rather than read whole by every device (the data).
    """
    del mapped
    return jax.jit(fn)

  def place(self, state: Any) -> Any:
    """The canonical `state` laid out for `compile`d functions."""
    return state

  def fetch(self, state: Any) -> Any:
    """The canonical state (single-device arrays) from a placed one."""
    return state

  def data(self, x: np.ndarray) -> jax.Array:
    """A dataset array every device reads whole."""
    return jnp.asarray(x)

  def batches(self, indices: np.ndarray) -> Any:
    """`(steps, batch_size)` example indices as the step consumes them."""
    return indices

  def eval_data(self, batched: Any) -> Any:
    """Padded evaluation batches `(batches, size, ...)`, split by device
    (`size` a multiple of the device count)."""
    return batched

  def shared(self, x: np.ndarray) -> Any:
    """A small host value every device reads (which steps are active)."""
    return x

  def local(self, x: jax.Array) -> np.ndarray:
    """A value every device computed alike (a loss, the step), as numpy."""
    return np.asarray(_first(x))

  def constrain(self, x: jax.Array) -> jax.Array:
    """A batch inside the step, kept split over the devices."""
    return x

  def saveable(self, placed: Any) -> Any:
    """What a checkpoint holds: the same on disk for every layout."""
    return placed

  def from_saved(self, saved: Any) -> Any:
    """A placed state from a restored `saveable` one."""
    return saved


class PmapLayout(Layout):
  """One replica per local device, collectives over `AXIS`."""

  mode = "pmap"
  axis_name = AXIS

  def __init__(self, devices: list):
    super().__init__(devices)
    self._stacked = NamedSharding(jax.sharding.Mesh(devices, AXIS), P(AXIS))
    self._whole = NamedSharding(self._stacked.mesh, P())

  def compile(self, fn, mapped):
    in_axes = tuple(0 if m else None for m in mapped)
    # On several hosts pmap spans every host's devices by itself.
    devices = self.devices if jax.process_count() == 1 else None
    return jax.pmap(fn, axis_name=AXIS, in_axes=in_axes, devices=devices)

  def _stack(self, x):
    x = np.asarray(x)
    return _place(np.broadcast_to(x, (self.size,) + x.shape), self._stacked)

  def place(self, state):
    return jax.tree.map(self._stack, state)

  def fetch(self, state):
    _check_replicas(state, lambda x: [x.addressable_shards])
    return jax.tree.map(lambda x: _first(x)[0], state)

  def data(self, x):
    return _place(x, self._whole)

  def batches(self, indices):
    rows = host_rows(
      indices,
      self.size * jax.process_count(),
      self.size * jax.process_index(),
      self.size,
    )
    steps, width = rows.shape
    per_device = rows.reshape(steps, self.size, width // self.size)
    return _place(per_device.transpose(1, 0, 2), self._stacked)

  def eval_data(self, batched):
    def split(x):
      x = np.asarray(x)
      b, size = x.shape[:2]
      x = x.reshape((b, self.size, size // self.size) + x.shape[2:])
      return _place(np.moveaxis(x, 1, 0), self._stacked)

    return type(batched)(*map(split, batched))

  def local(self, x):
    return np.asarray(_first(x))[0]

  def saveable(self, placed):
    return self.fetch(placed)

  def from_saved(self, saved):
    return self.place(saved)


class ShardedLayout(Layout):
  """`jit` over a mesh: the batch sharded, the state replicated or, with
  `shard_params`, split."""

  mode = "sharded"

  def __init__(self, devices: list, shard_params: bool = False):
    super().__init__(devices)
    self.shard_params = shard_params
    self.mesh = jax.make_mesh(
      (self.size,),
      (AXIS,),
      axis_types=(jax.sharding.AxisType.Auto,),
      devices=devices,
    )
    self.replicated = NamedSharding(self.mesh, P())

  def sharding(self, shape: tuple[int, ...]) -> NamedSharding:
    """Where a state leaf of `shape` lives."""
    if not self.shard_params or np.prod(shape, dtype=int) < MIN_SHARDED:
      return self.replicated
    split = [a for a in np.argsort(shape)[::-1] if shape[a] % self.size == 0]
    if not split:
      return self.replicated
    spec = [None] * len(shape)
    spec[split[0]] = AXIS
    return NamedSharding(self.mesh, P(*spec))

  def place(self, state):
    return jax.tree.map(lambda x: _place(x, self.sharding(np.shape(x))), state)

  def fetch(self, state):
    def same_index(x):
      groups = {}
      for shard in x.addressable_shards:
        groups.setdefault(str(shard.index), []).append(shard)
      return groups.values()

    _check_replicas(state, same_index)

    def gather(x):
      if x.is_fully_replicated:
        return _first(x)
      whole = multihost_utils.process_allgather(x, tiled=True)
      return jax.device_put(whole, jax.local_devices()[0])

    return jax.tree.map(gather, state)

  def data(self, x):
    return _place(x, self.replicated)

  def batches(self, indices):
    sharding = NamedSharding(self.mesh, P(None, AXIS))
    spans = sharding.addressable_devices_indices_map(indices.shape).values()
    lo = min(span[1].start or 0 for span in spans)
    hi = max(span[1].stop or indices.shape[1] for span in spans)
    return jax.make_array_from_process_local_data(
      sharding, indices[:, lo:hi], indices.shape
    )

  def eval_data(self, batched):
    sharding = NamedSharding(self.mesh, P(None, AXIS))
    return type(batched)(*(_place(x, sharding) for x in batched))

  def shared(self, x):
    return _place(x, self.replicated)

  def constrain(self, x):
    return jax.lax.with_sharding_constraint(
      x, NamedSharding(self.mesh, P(AXIS))
    )


def host_rows(
  indices: np.ndarray, devices: int, first: int, count: int
) -> np.ndarray:
  """The columns of `(steps, batch)` indices that devices `first` to
  `first + count - 1` get when `devices` devices split each batch evenly.

  >>> host_rows(np.arange(8).reshape(1, 8), 4, 2, 2)
  array([[4, 5, 6, 7]])
  """
  width = indices.shape[1] // devices
  return indices[:, first * width : (first + count) * width]


def layout(
  mode: str,
  batch_size: int,
  *,
  devices: int | None = None,
  shard_params: bool = False,
) -> Layout:
  """The layout named `mode` ('none', 'pmap' or 'sharded').

  Args:
    mode: see the module docstring.
    batch_size: the global batch, split evenly over the devices.
    devices: how many devices (default: every local device for 'pmap',
      every host's for 'sharded'); fewer only on a single host.
    shard_params: for 'sharded', split large state leaves over the devices
      instead of replicating them.

  Raises:
    ValueError: for an unknown mode, a device count out of range or a
      batch the devices cannot split.
  """
  if mode not in MODES:
    raise ValueError(f"parallel = {mode!r}: expected one of {MODES}")
  if shard_params and mode != "sharded":
    raise ValueError(
      f"shard_params = True needs parallel = 'sharded'; got {mode!r}"
    )
  available = {"none": 1, "pmap": jax.local_device_count()}.get(
    mode, jax.device_count()
  )
  count = available if devices is None else devices
  if not 1 <= count <= available or (
    count < available and jax.process_count() > 1
  ):
    raise ValueError(
      f"devices = {devices}: parallel = {mode!r} can use 1 to {available} "
      "devices here (all of them when several hosts run)"
    )
  chosen = (jax.local_devices() if mode == "pmap" else jax.devices())[:count]
  if mode == "none":
    result = Layout(chosen)
  elif mode == "pmap":
    result = PmapLayout(chosen)
  else:
    result = ShardedLayout(chosen, shard_params)
  result.check_batch("batch_size", batch_size)
  return result
