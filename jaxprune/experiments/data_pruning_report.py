"""Data-pruning results: summaries over seeds, score statistics, a table
and a plot."""

import collections

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

METRIC = "final_test_accuracy"


def summarize(runs: list[dict]) -> list[dict]:
  """Per (method, keep fraction): seeds, mean and sample std of the final
  test accuracy, mean examples kept, steps and noisy fraction, and the
  mean training FLOPs relative to the full-data run (`training_flops`)
  where every record has them.

  >>> rows = summarize([{'method': 'm', 'keep_fraction': 0.5, 'seed': s,
  ...   'final_test_accuracy': a, 'kept': 5, 'steps': 9,
  ...   'noisy_fraction': 0.0} for s, a in ((0, 0.8), (1, 0.9))])
  >>> rows[0]['seeds'], round(rows[0]['mean'], 6), round(rows[0]['std'], 4)
  ([0, 1], 0.85, 0.0707)
  """
  groups = collections.defaultdict(list)
  for r in runs:
    groups[r["method"], r["keep_fraction"]].append(r)
  rows = []
  for (method, fraction), group in groups.items():
    acc = np.array([r[METRIC] for r in group])
    flops = {}
    if all("training_flops" in r for r in group):
      relative = [r["training_flops"]["relative"] for r in group]
      flops["training_flops"] = float(np.mean(relative))
    rows.append(
      {
        **flops,
        "method": method,
        "keep_fraction": fraction,
        "seeds": sorted(r["seed"] for r in group),
        "mean": float(acc.mean()),
        "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
        "kept": float(np.mean([r["kept"] for r in group])),
        "steps": float(np.mean([r["steps"] for r in group])),
        "noisy_fraction": float(np.mean([r["noisy_fraction"] for r in group])),
      }
    )
  return rows


def _ranks(x: np.ndarray) -> np.ndarray:
  """Average ranks (ties share their mean rank), for Spearman."""
  order = np.argsort(x, kind="stable")
  ranks = np.empty(len(x))
  ranks[order] = np.arange(len(x))
  _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
  sums = np.bincount(inverse, ranks)
  return (sums / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
  """Spearman's rank correlation of `a` and `b`.

  >>> round(spearman(np.array([1., 2., 3.]), np.array([10., 30., 20.])), 4)
  0.5
  """
  ra, rb = _ranks(a), _ranks(b)
  return float(np.corrcoef(ra, rb)[0, 1])


def score_stats(scores: dict, corrupted: np.ndarray) -> dict:
  """Rank correlations between scores and, with corrupted labels, the
  fraction of them among each score's top 10% (ties to the lower index)."""
  names = sorted(scores)
  stats = {
    "spearman": {
      f"{a}~{b}": spearman(scores[a], scores[b])
      for i, a in enumerate(names)
      for b in names[i + 1 :]
    }
  }
  if len(corrupted):
    n = len(next(iter(scores.values())))
    top = max(1, n // 10)
    stats["corrupted_in_top10"] = {
      name: float(
        np.isin(np.argsort(-s, kind="stable")[:top], corrupted).mean()
      )
      for name, s in scores.items()
    }
  return stats


def markdown(results: dict) -> str:
  """Method by keep fraction: mean ± std of the final test accuracy (%)."""
  rows = results["summary"]
  fractions = sorted({r["keep_fraction"] for r in rows}, reverse=True)
  cell = {(r["method"], r["keep_fraction"]): r for r in rows}
  methods = list(dict.fromkeys(r["method"] for r in rows))
  lines = [
    f"{results['model']} on {results['dataset']} ({results['train_size']} "
    f"training examples, label noise {results['label_noise']:g}, same "
    f"{results['budget']}): final test accuracy (%), mean ± std over seeds",
    "",
    "| method | " + " | ".join(f"keep {f:g}" for f in fractions) + " |",
    "|---|" + "---|" * len(fractions),
  ]
  for m in methods:
    values = [
      f"{100 * c['mean']:.2f} ± {100 * c['std']:.2f}"
      if (c := cell.get((m, f)))
      else ""
      for f in fractions
    ]
    lines.append(f"| {m} | " + " | ".join(values) + " |")
  if all("training_flops" in r for r in rows):
    lines += [
      "",
      "Training FLOPs, % of the full-data run (`train.steps` steps):",
      "",
      "| method | " + " | ".join(f"keep {f:g}" for f in fractions) + " |",
      "|---|" + "---|" * len(fractions),
    ]
    for m in methods:
      values = [
        f"{100 * c['training_flops']:.1f}" if (c := cell.get((m, f))) else ""
        for f in fractions
      ]
      lines.append(f"| {m} | " + " | ".join(values) + " |")
  stats = results["scores"]
  if "corrupted_in_top10" in stats:
    lines += ["", "Corrupted labels among each score's top 10%:", ""]
    lines += [
      f"- {k}: {100 * v:.1f}%" for k, v in stats["corrupted_in_top10"].items()
    ]
  lines += ["", "Spearman rank correlations between scores:", ""]
  lines += [f"- {k}: {v:.3f}" for k, v in stats["spearman"].items()]
  return "\n".join(lines) + "\n"


def plot(results: dict, path: str) -> None:
  """Final test accuracy against the fraction kept, a line per method
  (error bars: one std over seeds), the full-data run dashed."""
  rows = results["summary"]
  fig, ax = plt.subplots(figsize=(8, 5))
  methods = list(dict.fromkeys(r["method"] for r in rows))
  for i, m in enumerate(methods):
    mine = sorted(
      (r for r in rows if r["method"] == m), key=lambda r: r["keep_fraction"]
    )
    mean = [100 * r["mean"] for r in mine]
    if m == "full":
      ax.axhline(mean[0], color="gray", linestyle="--", label=m)
      continue
    ax.errorbar(
      [r["keep_fraction"] for r in mine],
      mean,
      yerr=[100 * r["std"] for r in mine],
      capsize=3,
      label=m,
      color=plt.get_cmap("tab10")(i % 10),
      marker="osD^vP*Xph"[i % 10],
    )
  ax.set_xlabel("fraction of training examples kept")
  ax.set_ylabel("final test accuracy (%)")
  ax.set_title(
    f"{results['model']} on {results['dataset']}, label noise "
    f"{results['label_noise']:g}, same {results['budget']}"
  )
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize="small")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
