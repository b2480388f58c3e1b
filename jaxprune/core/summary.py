"""Per-leaf and global counts of what a mask (or a sparse param tree) keeps."""

import dataclasses

import jax
import numpy as np

from jaxprune.core.tree import check_masks, path_str


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
    all_sparsity = 1 - self.total_kept / max(self.total_size, 1)
    body = [
      (
        r.path,
        r.size,
        r.kept,
        f"{r.sparsity:.2%}" if r.pruned_leaf else "(dense)",
      )
      for r in self.rows
    ]
    body.append(("pruned leaves", self.size, self.kept, f"{self.sparsity:.2%}"))
    body.append(
      ("all leaves", self.total_size, self.total_kept, f"{all_sparsity:.2%}")
    )
    rows = [("leaf", "size", "kept", "sparsity")] + [
      (path, str(size), str(kept), note) for path, size, kept, note in body
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
      f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}"
      f"  {row[3]:>{widths[3]}}"
      for row in rows
    )


def summary(tree, masks=None) -> Summary:
  """Counts kept entries per leaf and overall.

  Args:
    tree: bool masks (True = kept), or params (nonzero = kept).
    masks: optional masks for `tree` when it holds params: leaves whose mask
      is `None` are reported as dense, not pruned.

  Raises:
    ValueError: if `masks` does not match `tree` leaf for leaf, naming the
      leaves (see `check_masks`).

  >>> import numpy as np
  >>> s = summary({'a': np.array([True, False]), 'b': np.ones(2, bool)})
  >>> s.kept, s.size, s.sparsity
  (3, 4, 0.25)
  """
  leaves = jax.tree.leaves_with_path(tree)
  if masks is None:
    flags = [True] * len(leaves)
  else:
    check_masks(tree, masks)
    flags = [
      m is not None for m in jax.tree.leaves(masks, is_leaf=lambda x: x is None)
    ]
  rows = []
  for (path, leaf), flag in zip(leaves, flags, strict=True):
    arr = np.asarray(leaf)
    rows.append(Row(path_str(path), arr.size, int(np.count_nonzero(arr)), flag))
  return Summary(tuple(rows))
