"""Post-training results as Markdown tables and a plot."""

import collections

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


def _label(target: str) -> str:
  return target if ":" in target else f"{float(target):.0%}"


def _format(values: list[float]) -> str:
  mean = f"{np.mean(values):.4f}"
  if len(values) < 2:
    return mean
  return f"{mean} ({min(values):.4f}-{max(values):.4f})"


def markdown(results: dict) -> str:
  """One table per metric: methods down, targets across; with several
  calibration seeds the mean and, in brackets, the range."""
  methods = list(dict.fromkeys(r["method"] for r in results["runs"]))
  targets = list(dict.fromkeys(r["target"] for r in results["runs"]))
  lines = [f"# {results['name']}", ""]
  for key, value in results["data"].items():
    lines.append(f"- {key}: {value}")
  seeds = sorted({r["seed"] for r in results["runs"]})
  lines += [f"- calibration seeds: {seeds}", ""]
  for metric, higher in results["metrics"].items():
    better = "higher" if higher else "lower"
    lines += [
      f"## {metric} ({better} is better; dense "
      f"{results['dense'].get(metric, float('nan')):.4f})"
      if metric in results["dense"]
      else f"## {metric} ({better} is better)",
      "",
      "| method | " + " | ".join(_label(t) for t in targets) + " |",
      "|---" * (len(targets) + 1) + "|",
    ]
    table = cells(results, metric)
    for method in methods:
      row = [
        _format(table[(method, t)]) if (method, t) in table else "-"
        for t in targets
      ]
      lines.append(f"| {method} | " + " | ".join(row) + " |")
    lines.append("")
  return "\n".join(lines)


def plot(results: dict, path: str) -> None:
  """Each metric against the target, one line per method, the dense value
  dashed; with several seeds, the mean and the range as error bars."""
  metrics = list(results["metrics"])
  targets = list(dict.fromkeys(r["target"] for r in results["runs"]))
  methods = list(dict.fromkeys(r["method"] for r in results["runs"]))
  fig, axes = plt.subplots(
    1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False
  )
  for ax, metric in zip(axes[0], metrics, strict=True):
    table = cells(results, metric)
    for method in methods:
      xs = [i for i, t in enumerate(targets) if (method, t) in table]
      values = [table[(method, targets[i])] for i in xs]
      mean = np.array([np.mean(v) for v in values])
      spread = np.array(
        [
          [m - min(v) for m, v in zip(mean, values, strict=True)],
          [max(v) - m for m, v in zip(mean, values, strict=True)],
        ]
      )
      ax.errorbar(xs, mean, yerr=spread, marker="o", capsize=3, label=method)
    if metric in results["dense"]:
      ax.axhline(results["dense"][metric], color="k", ls="--", label="dense")
    ax.set_xticks(range(len(targets)), [_label(t) for t in targets])
    ax.set_xlabel("target")
    ax.set_title(metric)
    ax.legend(fontsize=7)
  fig.suptitle(results["name"])
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
