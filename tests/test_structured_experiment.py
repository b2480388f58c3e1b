"""The MiniLM structured experiment's helpers (the run itself is in
docs/results/structured.md: minutes, not a unit test)."""

import re

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.compact import find_groups
from jaxprune.experiments import structured
from jaxprune.models.bert import BertEncoder


def test_calibration_is_packed_without_padding():
  tokens = {
    "input_ids": np.array([[101, 5, 6, 102, 0], [101, 7, 102, 0, 0]]),
    "attention_mask": np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]]),
  }
  packed = structured.packed_tokens(tokens, 3)
  np.testing.assert_array_equal(
    packed["input_ids"], [[101, 5, 6], [102, 101, 7]]
  )
  np.testing.assert_array_equal(packed["attention_mask"], np.ones((2, 3)))


def test_cases_choose_each_layers_heads_or_ffn_neurons():
  model = BertEncoder(vocab_size=20, max_length=8, width=8, depth=2, heads=2)
  ids = jnp.ones((1, 4), jnp.int32)
  v = jax.eval_shape(model.init, jax.random.key(0), ids, ids)
  units = find_groups(model.apply, v, ids, ids)
  heads, fractions = structured.encoder_groups(units, 0.5, 0.0)
  assert [g.size for g in heads.groups] == [2, 2]
  assert set(fractions.values()) == {0.5}
  for pattern, group in zip(fractions, heads.groups, strict=True):
    assert [g for g in units.groups if re.search(pattern, g.name)] == [group]
  ffn, _ = structured.encoder_groups(units, 0.0, 0.25)
  assert [g.name for g in ffn.groups] == [
    "params/layer0/intermediate/kernel",
    "params/layer1/intermediate/kernel",
  ]


def test_table_has_one_row_per_case_and_score():
  records = [
    {
      "case": "dense",
      "score": "-",
      "method": "-",
      "accuracy": 0.9,
      "params": 2e6,
    },
    *(
      {
        "case": "ffn50",
        "score": "fisher",
        "method": m,
        "cosine": c,
        "accuracy": a,
        "params": 1e6,
        "speedup": 1.5,
        "flop_ratio": 2.0,
      }
      for m, c, a in (("none", 0.5, 0.6), ("liar", 0.75, 0.8))
    ),
  ]
  lines = structured.table(records).splitlines()
  assert lines[2] == "| dense | - | 1.000 / 0.900 | | | 2.00M | 1.00 | 1.00 |"
  assert lines[3] == (
    "| ffn50 | fisher | 0.500 / 0.600 | - | 0.750 / 0.800 | 1.00M | 2.00 "
    "| 1.50 |"
  )
