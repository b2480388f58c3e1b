r"""Post-training pruning of the character model on fortunes.

  python -m launch.posttrain --config=configs/posttrain/charlm_fortunes.py \
    --workdir=/tmp/posttrain_charlm_fortunes

The dense model is `configs/lm/char_fortunes.py`'s (4 blocks, width 128),
trained in `<workdir>/dense` first if `--config.dense_workdir` does not
point to a finished run of it. Magnitude, Wanda and SparseGPT at 50-80%
and 2:4, 4:8 on the 24 attention and MLP kernels of the blocks (the head
stays dense), sequential, 128 random training sequences of 128 characters
as calibration (seed 0): validation bits per character (1,960 sequences).

Presets: `quick` (the one-block quick char model, 20 training steps, 8
calibration sequences, 50 validation sequences, 50% and 2:4), `method=M`,
`sparsity=S`, `nm=N:M` (comma-separated; several `method`, `sparsity` or
`nm` make a smaller grid).
"""

import ml_collections

from configs.lm import char_fortunes
from configs.posttrain.base import grid, preset


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  quick = "quick" in (arg or "").split(",")
  config = grid("charlm_fortunes", "lm")
  config.dense = char_fortunes.get_config("quick" if quick else None)
  config.dense_workdir = ""
  config.exclude = ("positions",)  # the learned positions: no kernel
  return preset(
    config,
    arg,
    calibration=dict(size=8, batch_size=4),
    evaluation=dict(size=50),
    targets=("0.5", "2:4"),
  )
