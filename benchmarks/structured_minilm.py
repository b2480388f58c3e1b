"""Latency of MiniLM compacted by heads and FFN neurons, against dense.

For each case of configs/structured/minilm_fortunes.py (and both50): the
encoder with that many heads and FFN neurons per layer (all-MiniLM-L6-v2's
shapes; weights random, which does not change the time), the sentence
embedding of a batch of 64-token inputs, jitted; dense and compacted
calls interleaved (ABBA), `speedup_<case>_b<batch>` = the median of dense
/ compacted time over pairs; `flop_ratio_<case>` from `jaxprune.flops`.

  python benchmarks/structured_minilm.py          # table
  python benchmarks/structured_minilm.py --json   # one JSON object
"""

import argparse
import json

import jax
import jax.numpy as jnp
from overhead import cpu_name, interleaved, ms, ratio

from jaxprune.compact import flops
from jaxprune.models.bert import BertEncoder

CASES = {
  "ffn25": (12, 1152),
  "ffn50": (12, 768),
  "heads25": (9, 1536),
  "heads50": (6, 1536),
  "both50": (6, 768),
}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--json", action="store_true")
  parser.add_argument("--reps", type=int, default=9)
  parser.add_argument("--batches", type=int, nargs="+", default=(1, 32))
  args = parser.parse_args()
  dense = BertEncoder()
  out = {"cpu": cpu_name()}
  for batch in args.batches:
    ids = jnp.ones((batch, 64), jnp.int32)

    def prepare(model, ids=ids):
      v = model.init(jax.random.key(0), ids, ids)
      f = jax.jit(lambda v, i: model.apply(v, i, i, method="embed"))
      macs = flops(lambda v, x: model.apply(v, x, x), v, None, ids).dense
      return (lambda: f(v, ids)), macs

    base, base_macs = prepare(dense)
    base()
    for case, (heads, ffn) in CASES.items():
      small = dense.clone(layer_heads=(heads,) * 6, layer_ffn=(ffn,) * 6)
      fn, macs = prepare(small)
      fn()
      times = interleaved({"dense": base, "small": fn}, args.reps)
      out[f"flop_ratio_{case}"] = base_macs / macs
      out[f"speedup_{case}_b{batch}"] = ratio(times["dense"], times["small"])
      out[f"dense_ms_{case}_b{batch}"] = ms(times["dense"])
      out[f"compact_ms_{case}_b{batch}"] = ms(times["small"])
  if args.json:
    print(json.dumps(out))
    return
  print(f"CPU: {out['cpu']}")
  print(
    "| case | FLOP ratio | "
    + " | ".join(f"speed-up b{b} (dense / compact ms)" for b in args.batches)
    + " |"
  )
  print("|---" * (2 + len(args.batches)) + "|")
  for case in CASES:
    cells = [
      f"{out[f'speedup_{case}_b{b}']:.2f} ({out[f'dense_ms_{case}_b{b}']:.1f}"
      f" / {out[f'compact_ms_{case}_b{b}']:.1f})"
      for b in args.batches
    ]
    print(f"| {case} | {out[f'flop_ratio_{case}']:.2f} | {' | '.join(cells)} |")


if __name__ == "__main__":
  main()
