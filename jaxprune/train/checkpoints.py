"""Atomic checkpoints of a training state and its JSON metadata (orbax)."""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpoints:
  """A directory of numbered checkpoints, each a pytree plus JSON.

  Saves are atomic (orbax writes a temporary directory and renames it) and
  asynchronous; `close` waits for the last one. A checkpoint is only ever
  read back through `restore`, onto a template of the same structure.

  >>> import tempfile, jax.numpy as jnp
  >>> with Checkpoints(tempfile.mkdtemp()) as ckpt:
  ...   ckpt.save(3, {'w': jnp.ones(2)}, {'note': 'hi'})
  >>> with Checkpoints(ckpt.directory) as ckpt:
  ...   ckpt.latest_step(), ckpt.restore({'w': jnp.zeros(2)})[1]
  (3, {'note': 'hi'})
  """

  def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
    self.directory = os.fspath(directory)
    self._manager = ocp.CheckpointManager(
      os.path.abspath(self.directory),
      options=ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True
      ),
    )

  def latest_step(self) -> int | None:
    """The step of the newest complete checkpoint, or None."""
    return self._manager.latest_step()

  def save(self, step: int, state: Any, meta: dict) -> None:
    """Starts saving `state` and `meta` (JSON-able) as checkpoint `step`."""
    self._manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
      ),
    )

  def restore(self, template: Any, step: int | None = None) -> tuple:
    """`(state, meta)` of checkpoint `step` (default: the latest).

    Args:
      template: a pytree with the saved state's structure, shapes and
        dtypes (for instance a freshly initialised state).
      step: which checkpoint.
    """
    step = self.latest_step() if step is None else step
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    out = self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
      ),
    )
    return out.state, out.meta

  def close(self) -> None:
    """Waits for pending saves and releases the directory."""
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self) -> "Checkpoints":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
