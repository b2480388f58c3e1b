"""Config checks the experiments share, each naming the user's config key.

Every experiment runs its checks, loads its data and builds its model,
pruner and optimizer before it writes anything to its workdir, so a config
that cannot run leaves nothing behind.
"""

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import flax.linen as nn
import ml_collections
import optax

from jaxprune.data import Dataset, load
from jaxprune.models import get as get_model


def fraction(key: str, value: Any) -> None:
  """Raises unless `value` is a number in [0, 1).

  >>> fraction('sparsity', 1.5)
  Traceback (most recent call last):
  ...
  ValueError: config.sparsity = 1.5: expected a fraction in [0, 1)
  """
  number = isinstance(value, int | float) and not isinstance(value, bool)
  if not (number and 0 <= value < 1):
    raise ValueError(f"config.{key} = {value!r}: expected a fraction in [0, 1)")


def positive(key: str, value: Any) -> None:
  """Raises unless `value` is a positive integer."""
  if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
    raise ValueError(f"config.{key} = {value!r}: expected a positive integer")


def optax_function(
  section: str, name: str, arguments: Iterable[str] = ()
) -> Callable[..., Any]:
  """`optax.<name>`, named by `config.<section>.name`, once it is known to
  take `arguments` (the section's other keys).

  >>> optax_function('optimizer', 'adamm')
  Traceback (most recent call last):
  ...
  ValueError: config.optimizer.name = 'adamm': not a function of optax
  >>> optax_function('optimizer', 'adam', ['learning_rate', 'momentum'])
  Traceback (most recent call last):
  ...
  ValueError: config.optimizer: optax.adam takes no ['momentum']; it takes [...]
  """
  function = getattr(optax, name, None) if isinstance(name, str) else None
  if not callable(function):
    raise ValueError(
      f"config.{section}.name = {name!r}: not a function of optax"
    )
  accepted = inspect.signature(function).parameters
  if not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
    unknown = sorted(set(arguments) - set(accepted))
    if unknown:
      raise ValueError(
        f"config.{section}: optax.{name} takes no {unknown}; it takes "
        f"{list(accepted)}"
      )
  return function


def dataset(config: ml_collections.ConfigDict) -> Dataset:
  """The dataset `config.dataset` names (`name`, `seed`, and where the
  config has them `data_dir`, the folder of local files, and `test_size`,
  the test images drawn from 'digits')."""
  section = config.dataset
  data_dir = section.get("data_dir") or None
  try:
    return load(
      section.name,
      seed=section.seed,
      data_dir=data_dir,
      test_size=section.get("test_size"),
    )
  except ValueError as e:
    raise ValueError(f"config.dataset.name: {e}") from e


def model(config: ml_collections.ConfigDict, num_classes: int) -> nn.Module:
  """The model `config.model.name` names, for `num_classes` classes, built
  with the other `config.model.*` keys as keyword arguments."""
  try:
    return get_model(**config.model.to_dict(), num_classes=num_classes)
  except (ValueError, TypeError) as e:
    raise ValueError(f"config.model.name: {e}") from e
