r"""MiniLM pruned by heads and FFN neurons without retraining.

  python -m launch.structured --config=configs/structured/minilm_fortunes.py \
    --workdir=/tmp/structured_minilm

all-MiniLM-L6-v2 (`jaxprune.models.pretrained`) on the labelled fortunes
(`jaxprune.data.text.labelled`: five categories, entries up to 400
characters, 64 tokens): 128 training entries, packed into full 64-token
sequences, calibrate; a logistic-regression
probe is fitted on the dense embeddings of the training entries; the 200
test entries measure cosine to dense and probe accuracy. Cases remove 25%
or 50% of the heads, or of the FFN neurons, of every layer; each is run
for every score x {none, rescale, liar}. See docs/results/structured.md
for the figures and runtime.

`:both50`: half the heads and half the FFN neurons of every layer (2.0x
fewer encoder FLOPs at 64 tokens, Kwon et al.'s operating point), three
scores.

`:quick`: one case, the magnitude score, 8 calibration entries, 64 training
and 32 test entries: a smoke run.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; preset `quick`."""
  config = ml_collections.ConfigDict()
  config.categories = ("computers", "food", "law", "love", "science")
  config.max_chars = 400
  config.length = 64
  config.batch = 32
  config.calibration = 128
  # Calibration texts back to back in full sequences (False: one padded
  # sequence per text, padding rows included in the statistics).
  config.pack = True
  config.train_entries = 100_000
  config.test_entries = 100_000
  config.probe_c = 1.0
  config.seed = 0
  config.ridge = 1e-3
  config.latency_repeats = 5
  # (name, fraction of heads removed, fraction of FFN neurons removed)
  config.cases = (
    ("ffn25", 0.0, 0.25),
    ("ffn50", 0.0, 0.5),
    ("heads25", 0.25, 0.0),
    ("heads50", 0.5, 0.0),
  )
  config.scores = ("magnitude", "activation", "fisher", "random")
  config.methods = ("none", "rescale", "liar")
  if arg == "quick":
    config.calibration = 8
    config.train_entries = 64
    config.test_entries = 32
    config.latency_repeats = 1
    config.cases = (("ffn50", 0.0, 0.5),)
    config.scores = ("magnitude",)
  elif arg == "both50":
    # Half the heads and half the FFN neurons: 2.0x fewer encoder FLOPs,
    # the operating point of Kwon et al.'s claim.
    config.cases = (("both50", 0.5, 0.5),)
    config.scores = ("magnitude", "activation", "fisher")
  elif arg:
    raise ValueError(
      f"unknown preset {arg!r}: expected 'quick', 'both50' or none"
    )
  return config
