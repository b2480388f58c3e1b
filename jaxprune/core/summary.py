"""Per-leaf and global counts of what a mask (or a sparse param tree) keeps."""

import dataclasses

import jax
import numpy as np

from jaxprune.core.tree import path_str


@dataclasses.dataclass(frozen=True)
class Row:
  path: str
  size: int
  kept: int
  pruned_leaf: bool

  @property
  def sparsity(self) -> float:
    return 1.0 - self.kept / self.size if self.size else 0.0


@dataclasses.dataclass(frozen=True)
class Summary:
  """What `jaxprune.summary` returns; `str()` prints a table.

  Attributes:
    rows: one per leaf (`pruned_leaf` False for leaves without a mask).
    size / kept: totals over the leaves that have a mask.
    total_size / total_kept: totals over every leaf.
  """

  rows: tuple[Row, ...]

  @property
  def size(self) -> int:
    return sum(r.size for r in self.rows if r.pruned_leaf)

  @property
  def kept(self) -> int:
    return sum(r.kept for r in self.rows if r.pruned_leaf)

  @property
  def sparsity(self) -> float:
    """Sparsity over the pruned leaves."""
    return 1.0 - self.kept / self.size if self.size else 0.0

  @property
  def density(self) -> float:
    return 1.0 - self.sparsity

  @property
  def total_size(self) -> int:
    return sum(r.size for r in self.rows)

  @property
  def total_kept(self) -> int:
    return sum(r.kept for r in self.rows)

  def as_dict(self) -> dict:
    """Plain numbers, for JSON."""
    return {
      "leaves": {
        r.path: {"size": r.size, "kept": r.kept, "sparsity": r.sparsity}
        for r in self.rows
      },
      "size": self.size,
      "kept": self.kept,
      "sparsity": self.sparsity,
      "total_size": self.total_size,
      "total_kept": self.total_kept,
    }

  def __str__(self) -> str:
    width = max([len(r.path) for r in self.rows] + [6])
    lines = [f"{'leaf':<{width}} {'size':>10} {'kept':>10} {'sparsity':>9}"]
    for r in self.rows:
      note = f"{r.sparsity:9.2%}" if r.pruned_leaf else "  (dense)"
      lines.append(f"{r.path:<{width}} {r.size:>10} {r.kept:>10} {note}")
    lines.append(
      f"{'pruned leaves':<{width}} {self.size:>10} {self.kept:>10} "
      f"{self.sparsity:9.2%}"
    )
    lines.append(
      f"{'all leaves':<{width}} {self.total_size:>10} {self.total_kept:>10} "
      f"{1 - self.total_kept / max(self.total_size, 1):9.2%}"
    )
    return "\n".join(lines)


def summary(tree, masks=None) -> Summary:
  """Counts kept entries per leaf and overall.

  Args:
    tree: bool masks (True = kept), or params (nonzero = kept).
    masks: optional masks for `tree` when it holds params: leaves whose mask
      is `None` are reported as dense, not pruned.

  >>> import numpy as np
  >>> s = summary({'a': np.array([True, False]), 'b': np.ones(2, bool)})
  >>> s.kept, s.size, s.sparsity
  (3, 4, 0.25)
  """
  leaves = jax.tree.leaves_with_path(tree)
  if masks is None:
    flags = [True] * len(leaves)
  else:
    flags = [
      m is not None for m in jax.tree.leaves(masks, is_leaf=lambda x: x is None)
    ]
  rows = []
  for (path, leaf), flag in zip(leaves, flags, strict=True):
    arr = np.asarray(leaf)
    rows.append(Row(path_str(path), arr.size, int(np.count_nonzero(arr)), flag))
  return Summary(tuple(rows))
