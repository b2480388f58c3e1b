"""What an experiment keeps in its workdir: config, metrics, arrays.

Every file is written atomically (a temporary file renamed into place), so a
run killed at any point leaves either the old file or the new one. On
several hosts only the first one writes (`primary`); all of them read.
"""

import json
import os
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

from jaxprune.core.tree import path_str

CONFIG = "config.json"
METRICS = "metrics.jsonl"


def primary() -> bool:
  """Whether this process writes the workdir (the first of the hosts)."""
  return jax.process_index() == 0


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically (on the primary host only)."""
  if not primary():
    return
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_json(path: str, value: Any) -> None:
  """Writes `value` as indented JSON, atomically."""
  write_text(path, json.dumps(value, indent=1) + "\n")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if not isinstance(tree, dict):
    return {prefix: tree}
  out = {}
  for k, v in tree.items():
    out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
  return out


PER_HOST = "distributed.process_id"
"""The one config key that differs between the hosts of one run."""


def check_config(workdir: str, config: Any) -> None:
  """Records `config` in `workdir`, or checks it matches the recorded one.

  Args:
    workdir: the run's directory (created if missing).
    config: an ml_collections ConfigDict.

  Raises:
    ValueError: if `workdir` holds a run with another config, naming the
      keys that differ.
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG)
  new = json.loads(config.to_json())
  if not os.path.exists(path):
    write_json(path, new)
    return
  with open(path) as f:
    old = json.load(f)
  a, b = _flatten(old), _flatten(new)
  # Each host of a multi-host run has its own id; the first host records
  # its config, the others check theirs against it.
  for flat in (a, b):
    flat.pop(PER_HOST, None)
  if a == b:
    return
  diff = [
    f"{k}: {a.get(k, '<missing>')!r} -> {b.get(k, '<missing>')!r}"
    for k in sorted(set(a) | set(b))
    if a.get(k, "<missing>") != b.get(k, "<missing>")
  ]
  raise ValueError(
    f"workdir {workdir} holds a run with a different config "
    f"({'; '.join(diff)}); use a new --workdir, or delete {path} to start "
    "over"
  )


def save_tree(path: str, tree: Any) -> None:
  """Saves the array leaves of `tree` by key path (`.npz`), atomically (on
  the primary host only)."""
  if not primary():
    return
  arrays = {
    path_str(p): np.asarray(x) for p, x in jax.tree.leaves_with_path(tree)
  }
  tmp = f"{path}.tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)


def load_tree(path: str, template: Any) -> Any:
  """Reads what `save_tree` wrote onto `template`'s structure.

  >>> import tempfile, os, numpy as np
  >>> f = os.path.join(tempfile.mkdtemp(), 't.npz')
  >>> save_tree(f, {'a': np.ones(2, bool), 'b': None})
  >>> load_tree(f, {'a': np.zeros(2, bool), 'b': None})
  {'a': array([ True,  True]), 'b': None}
  """
  with np.load(path) as stored:
    return jax.tree.map_with_path(lambda p, _: stored[path_str(p)], template)


def save_trained(path: str, variables: Any, masks: Any) -> None:
  """Saves a trained model's variables and masks (`.npz`, compressed,
  atomically, on the primary host only); `load_trained` reads them."""
  if not primary():
    return
  arrays = {
    path_str(p): np.asarray(x)
    for p, x in jax.tree.leaves_with_path(
      {"variables": variables, "masks": masks}
    )
  }
  tmp = f"{path}.tmp.npz"
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)


def load_trained(path: str) -> tuple[dict, dict]:
  """`(variables, masks)` of a training an experiment kept, by its file.

  Args:
    path: a lottery run's `seed<n>/<arm>_round<r>.npz` or a sparse-training
      run's `seed<n>/trained.npz`.

  Returns:
    The variables as nested dicts of numpy arrays (`model.apply(variables,
    x)` takes them; `variables['params']` are the params), and the masks: a
    tree like `variables['params']`, bool arrays on pruned leaves and None
    on the others.

  >>> import tempfile, os, numpy as np
  >>> f = os.path.join(tempfile.mkdtemp(), 'imp_round01.npz')
  >>> save_trained(f, {'params': {'w': np.ones(2), 'b': np.ones(1)}},
  ...              {'w': np.array([True, False]), 'b': None})
  >>> variables, masks = load_trained(f)
  >>> variables['params']['w'], masks
  (array([1., 1.]), {'b': None, 'w': array([ True, False])})
  """
  tree = {}
  with np.load(path) as stored:
    for name in stored.files:
      *parents, leaf = name.split("/")
      node = tree
      for part in parents:
        node = node.setdefault(part, {})
      node[leaf] = stored[name]
  variables, kept = tree["variables"], tree.get("masks", {})

  def mask(path, _):
    node = kept
    for part in path_str(path).split("/"):
      node = node.get(part) if isinstance(node, dict) else None
    return node

  return variables, jax.tree.map_with_path(mask, variables["params"])


class MetricsLog:
  """Appends records to `metrics.jsonl`, each record once.

  A record is identified by the values of `key_fields`; records already in
  the file (from before a resume) are not written again. A line cut short
  by a kill is dropped when the log is opened.

  Args:
    workdir: the run's directory.
    key_fields: the fields that identify a record.

  Attributes:
    records: every record in the file, in order, for plots.
  """

  def __init__(self, workdir: str, key_fields: Iterable[str]):
    self.path = os.path.join(workdir, METRICS)
    self.key_fields = tuple(key_fields)
    records = []
    if os.path.exists(self.path):
      with open(self.path) as f:
        for line in f:
          try:
            records.append(json.loads(line))
          except json.JSONDecodeError:
            break
      write_text(self.path, "".join(json.dumps(r) + "\n" for r in records))
    self.records = records
    self._seen = {self._key(r) for r in records}

  def _key(self, record: dict) -> tuple:
    return tuple(record.get(k) for k in self.key_fields)

  def write(self, record: dict) -> bool:
    """Appends `record` unless already written; returns whether it was."""
    key = self._key(record)
    if key in self._seen:
      return False
    self._seen.add(key)
    self.records.append(record)
    if not primary():
      return True
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    return True
