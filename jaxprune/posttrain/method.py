"""A post-training method as a value: what `jaxprune.create` returns for
`algorithm='posttrain'`."""

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from jaxprune.core.policy import Policy
from jaxprune.posttrain.sequential import Result, prune
from jaxprune.posttrain.solvers import METHODS, check_target


@dataclasses.dataclass(frozen=True)
class PostTrain:
  """`jaxprune.posttrain.prune` with its settings fixed; fields are its
  keyword arguments. Call it as `method(model, params, batches)`.

  >>> import jaxprune
  >>> m = jaxprune.create({'algorithm': 'posttrain', 'method': 'wanda',
  ...   'nm': (2, 4), 'policy': {'exclude': ['fc1']}})
  >>> m.name, m.nm, m.policy.exclude
  ('wanda', (2, 4), ('fc1',))
  """

  method: str = "sparsegpt"
  sparsity: float | None = None
  nm: tuple[int, int] | None = None
  policy: Policy = Policy()
  sequential: bool = True
  blocks: str | None = None
  prune_head: bool = False
  options: Mapping[str, Any] | None = None

  def __post_init__(self):
    if self.method not in METHODS:
      raise ValueError(
        f"method={self.method!r} is unknown; expected one of {list(METHODS)}"
      )
    if self.nm is not None:
      object.__setattr__(self, "nm", tuple(int(v) for v in self.nm))
    check_target(self.sparsity, self.nm)

  @property
  def name(self) -> str:
    return self.method

  def __call__(self, model: Any, params: Any, batches: Iterable[Any]) -> Result:
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
    return prune(model, params, batches, **fields)
