"""Post-training results as Markdown tables and a plot.

Several workdirs of one model (more seeds or targets run apart) merge into
one table and plot:

  python -m jaxprune.experiments.posttrain_report W1 W2 \
    --plot=posttrain.png --out=posttrain.md
"""

import argparse
import collections
import json
import math
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def cells(results: dict, metric: str) -> dict[tuple[str, str], list[float]]:
  """`(method, target) -> [value per seed]` of `metric`.

  >>> cells({'runs': [{'method': 'wanda', 'target': '0.5', 'seed': s,
  ...   'cosine': 0.8 + s / 10} for s in (0, 1)]}, 'cosine')
  {('wanda', '0.5'): [0.8, 0.9]}
  """
  out = collections.defaultdict(list)
  for r in sorted(results["runs"], key=lambda r: r["seed"]):
    out[(r["method"], r["target"])].append(r[metric])
  return dict(out)


def merge(results: Sequence[dict], sources: Sequence[str]) -> dict:
  """One results dict from the results of several workdirs of one model.

  Args:
    results: results.json contents, each of the same experiment name,
      task, metrics, data and dense model.
    sources: where each came from (for the errors).

  Returns:
    The first results with the runs of all.

  Raises:
    ValueError: if two disagree on what must agree (a dense metric by more
      than 1e-6: another dense model), or hold the same method, target and
      seed, naming both sources.

  >>> a = {'name': 'm', 'task': 'lm', 'data': {}, 'metrics': {'bpc': False},
  ...   'dense': {'bpc': 3.0}, 'runs': [{'method': 'wanda', 'target': '0.5',
  ...   'seed': 0, 'bpc': 3.2}]}
  >>> b = dict(a, runs=[dict(a['runs'][0], seed=1, bpc=3.3)])
  >>> cells(merge([a, b], ['w0', 'w1']), 'bpc')
  {('wanda', '0.5'): [3.2, 3.3]}
  """
  first, origin = results[0], {}
  for r, source in zip(results, sources, strict=True):
    for key in ("name", "task", "metrics", "data"):
      if r[key] != first[key]:
        raise ValueError(
          f"{source}: {key} = {r[key]!r}, but {sources[0]} has "
          f"{first[key]!r}; merge only workdirs of one experiment"
        )
    for metric, value in first["dense"].items():
      other = r["dense"].get(metric, math.nan)
      if not abs(other - value) <= 1e-6:
        raise ValueError(
          f"{source}: dense {metric} = {other!r}, but {sources[0]} has "
          f"{value!r}; the workdirs pruned different dense models"
        )
    for run in r["runs"]:
      key = (run["method"], run["target"], run["seed"])
      if key in origin:
        raise ValueError(
          f"method {key[0]!r}, target {key[1]!r}, seed {key[2]} is in both "
          f"{origin[key]} and {source}"
        )
      origin[key] = source
  return dict(first, runs=[run for r in results for run in r["runs"]])


def _targets(results: dict) -> list[str]:
  """The targets of the runs: unstructured by sparsity, then N:M by M.

  >>> _targets({'runs': [{'target': t} for t in ('4:8', '0.7', '2:4', '0.5')]})
  ['0.5', '0.7', '2:4', '4:8']
  """
  found = {r["target"] for r in results["runs"]}
  return sorted(
    found,
    key=lambda t: (
      ":" in t,
      int(t.partition(":")[2] or 0),
      float(t.split(":")[0]),
    ),
  )


def _label(target: str) -> str:
  return target if ":" in target else f"{float(target):.0%}"


def _format(values: list[float], digits: int) -> str:
  mean = f"{np.mean(values):.{digits}f}"
  if len(values) < 2:
    return mean
  return f"{mean} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def markdown(results: dict, digits: int = 4) -> str:
  """One table per metric (and one of the mean relative output error of
  the pruned layers on the calibration data): methods down, targets
  across; with several calibration seeds the mean and, in brackets, the
  range; `digits` after the point. The layers pruned are listed, and the
  targets that pruned others."""
  methods = list(dict.fromkeys(r["method"] for r in results["runs"]))
  targets = _targets(results)
  lines = [f"# {results['name']}", ""]
  for key, value in results["data"].items():
    lines.append(f"- {key}: {value}")
  seeds = sorted({r["seed"] for r in results["runs"]})
  lines.append(f"- calibration seeds: {seeds}")
  layers = {
    t: ", ".join(
      sorted(
        {p for r in results["runs"] if r["target"] == t for p in r["layers"]}
      )
    )
    for t in targets
  }
  usual = collections.Counter(layers.values()).most_common(1)[0][0]
  lines.append(f"- layers pruned: {usual}")
  for t in targets:
    if layers[t] != usual:
      lines.append(f"- layers pruned at {_label(t)}: {layers[t]} only")
  lines.append("")
  metrics = dict(results["metrics"])
  if all("mean_rel_error" in r for r in results["runs"]):
    metrics["mean_rel_error"] = False
  for metric, higher in metrics.items():
    better = "higher" if higher else "lower"
    lines += [
      f"## {metric} ({better} is better; dense "
      f"{results['dense'].get(metric, float('nan')):.{digits}f})"
      if metric in results["dense"]
      else f"## {metric} ({better} is better)",
      "",
      "| method | " + " | ".join(_label(t) for t in targets) + " |",
      "|---" * (len(targets) + 1) + "|",
    ]
    table = cells(results, metric)
    for method in methods:
      row = [
        _format(table[(method, t)], digits) if (method, t) in table else "-"
        for t in targets
      ]
      lines.append(f"| {method} | " + " | ".join(row) + " |")
    lines.append("")
  return "\n".join(lines)


def _position(target: str, targets: list[str]) -> float:
  """Where a target sits on the sparsity axis: an unstructured target at
  its sparsity, N:M at 1 - N/M, moved right by 0.015 per N:M target before
  it so that 2:4 and 4:8 do not hide each other."""
  n, colon, m = target.partition(":")
  if not colon:
    return float(target)
  nm = [t for t in targets if ":" in t]
  return 1 - int(n) / int(m) + 0.015 * (nm.index(target) + 1)


_NM_MARKERS = ("s", "^", "D", "v", "P")


def plot(results: dict, path: str) -> None:
  """Each metric against the sparsity, one panel per metric: a line per
  method through its unstructured targets, the N:M targets as separate
  markers of the method's colour (square, triangle, ...) just right of their
  sparsity 1 - N/M; with several calibration seeds the mean and the range
  as error bars; the dense value dashed."""
  metrics = list(results["metrics"])
  targets = _targets(results)
  methods = list(dict.fromkeys(r["method"] for r in results["runs"]))
  nm = [t for t in targets if ":" in t]
  shape = dict(zip(nm, _NM_MARKERS * len(nm), strict=False))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  fig, axes = plt.subplots(
    1, len(metrics), figsize=(4.5 * len(metrics), 3.8), squeeze=False
  )
  for ax, metric in zip(axes[0], metrics, strict=True):
    table = cells(results, metric)
    for k, method in enumerate(methods):
      color = colors[k % len(colors)]
      for group in ([t for t in targets if ":" not in t], *[[t] for t in nm]):
        mine = [t for t in group if (method, t) in table]
        if not mine:
          continue
        values = [table[(method, t)] for t in mine]
        mean = np.array([np.mean(v) for v in values])
        low = mean - np.array([min(v) for v in values])
        high = np.array([max(v) for v in values]) - mean
        nm_target = ":" in mine[0]
        ax.errorbar(
          [_position(t, targets) for t in mine],
          mean,
          yerr=np.stack([low, high]),
          color=color,
          marker=shape[mine[0]] if nm_target else "o",
          ls="" if nm_target else "-",
          capsize=3,
          label=None if nm_target else method,
        )
    if metric in results["dense"]:
      ax.axhline(results["dense"][metric], color="k", ls="--", label="dense")
    for t in nm:
      ax.plot([], [], "k" + shape[t], ls="", label=t)
    ax.set_xlabel("sparsity of the pruned layers")
    ax.set_title(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
  seeds = sorted({r["seed"] for r in results["runs"]})
  fig.suptitle(
    f"{results['name']} (calibration seeds {', '.join(map(str, seeds))}"
    + ("; bars: range" if len(seeds) > 1 else "")
    + ")"
  )
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv: list[str] | None = None) -> None:
  """The command line: workdirs in, Markdown and plot out."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdirs", nargs="+", help="post-training workdirs")
  parser.add_argument("--out", help="Markdown file (default: print it)")
  parser.add_argument("--plot", help="PNG of each metric against sparsity")
  parser.add_argument(
    "--digits", type=int, default=4, help="digits after the point"
  )
  args = parser.parse_args(argv)
  loaded = []
  for workdir in args.workdirs:
    with open(os.path.join(workdir, "results.json")) as f:
      loaded.append(json.load(f))
  try:
    results = merge(loaded, args.workdirs)
  except ValueError as e:
    parser.exit(1, f"error: {e}\n")
  text = markdown(results, args.digits)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text)
  else:
    print(text, end="")
  if args.plot:
    plot(results, args.plot)


if __name__ == "__main__":
  main()
