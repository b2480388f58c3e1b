r"""A character-level transformer on Debian's fortunes: the language model
post-training pruning is judged on (perplexity, bits per character).

  python -m launch.train --config=configs/lm/char_fortunes.py \
    --workdir=/tmp/lm_char_fortunes

`jaxprune.models.CharLM` (4 decoder blocks, width 128, 4 heads, context
128; 0.83M params) on `jaxprune.data.load('fortunes_chars')` (16,080
training sequences of 128 characters, 1,960 validation, 2,088 test), dense:
Adam 2e-3 with a cosine decay to 2e-4, batch 32, 6,000 steps (about 12
epochs), one seed. Validation loss `l` (nats per character) gives
`l / ln 2` bits per character; the training split's unigram entropy is
4.79 bits. Measured (docs/results/char_lm.md): 2.325 validation bits per
character (perplexity 5.0), 17 minutes on 2 idle CPU cores. The final
variables stay in the workdir: `jaxprune.experiments.sparse.trained(workdir)`
returns `(model, variables)`.

`:quick`: a one-block model of width 32 for 20 steps, a smoke run.
"""

import ml_collections

from configs.sparse.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; preset `quick`."""
  config = recipe(
    "dense",
    dataset="fortunes_chars",
    model="char_lm",
    learning_rate=2e-3,
    steps=6000,
    eval_every=1000,
    steps_per_dispatch=50,
    checkpoint_every=1000,
    eval_batch_size=250,
    seeds=(0,),
  )
  config.model.update(dict(width=128, depth=4, heads=4, context=128))
  config.train.batch_size = 32
  config.schedule = dict(
    name="cosine_decay_schedule",
    decay_steps=config.train.get_ref("steps"),
    alpha=0.1,
  )
  if "quick" in (arg or "").split(","):
    config.model.update(dict(width=32, depth=1, heads=2))
  return preset(
    config,
    arg,
    steps=20,
    eval_every=10,
    steps_per_dispatch=10,
    checkpoint_every=10,
  )
