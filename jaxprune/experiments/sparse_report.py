"""Sparse-training results: summaries over seeds, tables and plots.

Collects the results.json of several `jaxprune.experiments.sparse` workdirs
into one comparison, method by target sparsity:

  python -m jaxprune.experiments.sparse_report /tmp/sparse_* \
    --out results.md --plot accuracy.png --flops-plot flops.png

`--flops-plot` draws test accuracy against training FLOPs, as the RigL
and GraNet papers do (`flops_plot`).

Spreads are sample standard deviations over seeds (0 for one seed).
"""

import argparse
import collections
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

METRICS = (
  "final_test_accuracy",
  "early_stop_test_accuracy",
  "early_stop_step",
  "sparsity",
  "wall_time_s",
)
OPTIONAL = (
  "soft_test_accuracy",
  "hardened_test_accuracy",
  "hardening_step",
)
"""Metrics of some methods only (PDP's soft and hardened models), summarized
where every run of a row has them."""
FLOPS = {
  "inference_flops": "inference FLOPs",
  "training_flops": "training FLOPs",
}
"""Costs relative to dense (the `relative` of each run's record,
`jaxprune.experiments.costs`), summarized where every run of a row has
them."""
ACCURACIES = {
  "final_test_accuracy": "final test accuracy",
  "early_stop_test_accuracy": "test accuracy at early stop",
}
HARDENING = {
  "soft_test_accuracy": "soft test accuracy at hardening",
  "hardened_test_accuracy": "hardened test accuracy (no fine-tuning)",
}
LABELS = {**ACCURACIES, **HARDENING}


def summarize(runs: list[dict]) -> dict:
  """`seeds`, and the mean, standard deviation, min and max of each metric
  (and of each `OPTIONAL` one every run has, and of the `FLOPS` relative
  to dense where every run recorded them).

  >>> s = summarize([{'seed': s, 'final_test_accuracy': a,
  ...   'early_stop_test_accuracy': a, 'early_stop_step': 10, 'sparsity': 0.9,
  ...   'wall_time_s': 1.0} for s, a in ((0, 0.8), (1, 0.9))])
  >>> s['seeds'], round(s['final_test_accuracy']['mean'], 6)
  ([0, 1], 0.85)
  """
  out = {"seeds": sorted(r["seed"] for r in runs)}
  optional = [m for m in OPTIONAL if all(m in r for r in runs)]
  columns = {m: [r[m] for r in runs] for m in (*METRICS, *optional)}
  for metric in FLOPS:
    if all(metric in r for r in runs):
      columns[metric] = [r[metric]["relative"] for r in runs]
  for metric, column in columns.items():
    values = np.array(column, np.float64)
    out[metric] = {
      "mean": float(values.mean()),
      "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
      "min": float(values.min()),
      "max": float(values.max()),
    }
  return out


def collect(workdirs: list[str]) -> list[dict]:
  """One row per (method, target sparsity) over the workdirs' results.json.

  Runs of the same method and target from several workdirs are pooled.

  Returns:
    Rows sorted by method then target: `method`, `target_sparsity`,
    `workdirs`, and `summarize`'s fields.

  Raises:
    ValueError: if the workdirs hold several models or datasets, or one
      seed twice for a method and target.
  """
  groups = collections.defaultdict(lambda: ([], []))
  setups = set()
  for workdir in workdirs:
    with open(os.path.join(workdir, "results.json")) as f:
      results = json.load(f)
    setups.add((results["model"], results["dataset"]))
    runs, dirs = groups[(results["method"], results["target_sparsity"])]
    seen = {r["seed"] for r in runs} & {r["seed"] for r in results["runs"]}
    if seen:
      raise ValueError(
        f"{workdir} repeats seeds {sorted(seen)} of {dirs} for "
        f"{results['method']} at sparsity {results['target_sparsity']}"
      )
    runs.extend(results["runs"])
    dirs.append(workdir)
  if len(setups) > 1:
    raise ValueError(
      f"the workdirs hold several (model, dataset) pairs: {sorted(setups)}; "
      "compare one at a time"
    )
  return [
    {
      "method": method,
      "target_sparsity": target,
      "workdirs": dirs,
      **summarize(runs),
    }
    for (method, target), (runs, dirs) in sorted(groups.items())
  ]


def _percent(stats: dict) -> str:
  return f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f}"


def pivot(rows: list[dict], metric: str = "final_test_accuracy") -> str:
  """A Markdown table of an accuracy in %, methods by target sparsity
  (only the methods that have it)."""
  rows = [r for r in rows if metric in r]
  targets = sorted({r["target_sparsity"] for r in rows})
  cells = {(r["method"], r["target_sparsity"]): r for r in rows}
  methods = list(dict.fromkeys(r["method"] for r in rows))
  lines = [
    f"| {LABELS[metric]} (%) | "
    + " | ".join(f"sparsity {t:g}" for t in targets)
    + " |",
    "|---|" + "---:|" * len(targets),
  ]
  for m in methods:
    row = [
      _percent(cells[(m, t)][metric]) if (m, t) in cells else ""
      for t in targets
    ]
    lines.append(f"| {m} | " + " | ".join(row) + " |")
  return "\n".join(lines) + "\n"


def details(rows: list[dict]) -> str:
  """A Markdown table with one line per row: measured sparsity, seeds,
  both accuracies, early-stop step, training time and, where the runs
  recorded them, inference and training FLOPs in % of dense."""
  lines = [
    "| method | target | sparsity | seeds | final test acc. (%) "
    "| test acc. at early stop (%) | early-stop step | train time (s) "
    "| inference FLOPs (% of dense) | training FLOPs (% of dense) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    flops = [f"{100 * r[m]['mean']:.2f}" if m in r else "" for m in FLOPS]
    lines.append(
      f"| {r['method']} | {r['target_sparsity']:g} "
      f"| {r['sparsity']['mean']:.4f} | {len(r['seeds'])} "
      f"| {_percent(r['final_test_accuracy'])} "
      f"| {_percent(r['early_stop_test_accuracy'])} "
      f"| {r['early_stop_step']['mean']:.0f} "
      f"| {r['wall_time_s']['mean']:.1f} | {flops[0]} | {flops[1]} |"
    )
  return "\n".join(lines) + "\n"


def markdown(rows: list[dict]) -> str:
  """Both accuracy pivots, the soft and hardened ones where some rows have
  them, and the detail table."""
  metrics = list(ACCURACIES)
  metrics += [m for m in HARDENING if any(m in r for r in rows)]
  return "\n".join([pivot(rows, m) for m in metrics] + [details(rows)])


def zoom_range(values: list[float]) -> tuple[float, float] | None:
  """The y-range of a zoomed row, or None when none is needed: the values
  without the outliers, those more than 3 interquartile ranges below the
  median (a collapsed method flattens every other line when the axis
  spans it), with a margin of a tenth of that range.

  >>> zoom_range([88.0, 87.5, 86.0, 85.0, 71.6])
  (84.7, 88.3)
  >>> zoom_range([88.0, 87.5, 86.0, 85.0]) is None
  True
  """
  q1, median, q3 = np.percentile(values, [25, 50, 75])
  kept = [v for v in values if v >= median - 3 * (q3 - q1)]
  if len(kept) == len(values):
    return None
  margin = (max(kept) - min(kept)) / 10
  return round(min(kept) - margin, 6), round(max(kept) + margin, 6)


def plot(rows: list[dict], path: str, title: str = "") -> None:
  """Test accuracy (final, at early stop) against the percentage of weights
  remaining (log axis), one line per method, error bars spanning one
  standard deviation; dense runs (target 0) are a dashed line. When some
  points lie far below the rest (`zoom_range`), a second row shows the
  same lines on the range of the others."""
  methods = dict.fromkeys(r["method"] for r in rows)
  styles = _styles(methods)
  zoom = zoom_range([100 * r[m]["mean"] for r in rows for m in ACCURACIES])
  n_rows = 1 if zoom is None else 2
  fig, axes = plt.subplots(
    n_rows, 2, figsize=(11, 4 * n_rows), sharey="row", squeeze=False
  )
  for row, ax_row in enumerate(axes):
    for ax, metric in zip(ax_row, ACCURACIES, strict=True):
      _accuracy_panel(ax, rows, methods, styles, metric)
      if row == 1:
        ax.set_ylim(*zoom)
        ax.set_title("zoom: without the points far below the rest")
  axes[0][0].legend(fontsize="small")
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _styles(methods) -> dict:
  """Up to 20 colours, each with its own marker: the default cycle repeats
  its 10 colours, and a sweep has more methods than that."""
  return {
    m: dict(color=plt.get_cmap("tab20")(i % 20), marker="osD^vP*Xph"[i % 10])
    for i, m in enumerate(methods)
  }


def flops_plot(
  rows: list[dict],
  path: str,
  title: str = "",
  metric: str = "final_test_accuracy",
) -> None:
  """Test accuracy against training FLOPs in % of dense training (log
  axis), as in the RigL and GraNet papers: one line per method through its
  target sparsities, each point labelled with its target; dense runs are a
  star at their cost (100%) and a dashed line. Rows without training FLOPs
  are left out.

  Raises:
    ValueError: if no row has training FLOPs.
  """
  rows = [r for r in rows if "training_flops" in r]
  if not rows:
    raise ValueError(
      "no run recorded training_flops (results.json written before they "
      "were measured): rerun the experiments to plot them"
    )
  methods = dict.fromkeys(r["method"] for r in rows)
  styles = _styles(methods)
  fig, ax = plt.subplots(figsize=(7, 5))
  for method in methods:
    mine = sorted(
      (r for r in rows if r["method"] == method),
      key=lambda r: r["training_flops"]["mean"],
    )
    y = [100 * r[metric]["mean"] for r in mine]
    x = [100 * r["training_flops"]["mean"] for r in mine]
    if all(r["target_sparsity"] == 0 for r in mine):
      ax.axhline(y[0], color="gray", linestyle="--")
      ax.plot(x[0], y[0], "*", color="gray", markersize=10, label=method)
      continue
    std = [100 * r[metric]["std"] for r in mine]
    ax.errorbar(x, y, yerr=std, capsize=3, label=method, **styles[method])
    for r, xi, yi in zip(mine, x, y, strict=True):
      ax.annotate(
        f"{r['target_sparsity']:g}",
        (xi, yi),
        textcoords="offset points",
        xytext=(4, 3),
        fontsize="x-small",
        color=styles[method]["color"],
      )
  ax.set_xscale("log")
  ax.set_xlabel("training FLOPs (% of dense training)")
  ax.set_ylabel(f"{LABELS[metric]} (%)")
  ax.grid(True, which="both", alpha=0.3)
  ax.xaxis.set_major_formatter(
    matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
  )
  # Minor ticks labelled at 2, 3 and 5 times a power of ten only.
  ax.xaxis.set_minor_formatter(
    matplotlib.ticker.FuncFormatter(
      lambda v, _: f"{v:g}" if f"{v:e}"[0] in "235" else ""
    )
  )
  ax.legend(fontsize="x-small", ncol=2)
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _accuracy_panel(ax, rows, methods, styles, metric) -> None:
  """One method per line of `metric` against the weights remaining."""
  ticks = set()
  for method in methods:
    mine = sorted(
      (r for r in rows if r["method"] == method),
      key=lambda r: r["target_sparsity"],
    )
    mean = [100 * r[metric]["mean"] for r in mine]
    std = [100 * r[metric]["std"] for r in mine]
    if all(r["target_sparsity"] == 0 for r in mine):
      ax.axhline(mean[0], color="gray", linestyle="--", label=method)
      continue
    x = [100 * (1 - r["sparsity"]["mean"]) for r in mine]
    ticks.update(round(v, 1) for v in x)
    ax.errorbar(x, mean, yerr=std, capsize=3, label=method, **styles[method])
  ax.set_xscale("log")
  ax.invert_xaxis()
  ax.set_xlabel("% of weights remaining")
  ax.set_ylabel(f"{ACCURACIES[metric]} (%)")
  ax.grid(True, which="both", alpha=0.3)
  # Ticks at the runs' densities, labelled plainly (no 2x10^0).
  ax.set_xticks(sorted(ticks))
  ax.xaxis.set_major_formatter(
    matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
  )
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def curves(
  records: list[dict], path: str, title: str = "", early_stop_from: int = 0
) -> None:
  """Validation loss and test accuracy against the step, one line per seed
  (`records` as in metrics.jsonl); a dotted line marks `early_stop_from`,
  where early stopping starts to look, and a cross each seed's early-stop
  evaluation (the least validation loss from there on); the legend says
  so."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  panels = [
    (axes[0], "val_loss", "validation loss", 1),
    (axes[1], "test_accuracy", "test accuracy (%)", 100),
  ]
  for seed in sorted({r["seed"] for r in records}):
    mine = sorted(
      (r for r in records if r["seed"] == seed), key=lambda r: r["step"]
    )
    early = min(
      (r for r in mine if r["step"] >= early_stop_from),
      key=lambda r: r["val_loss"],
      default=None,
    )
    for ax, key, _, factor in panels:
      steps = [r["step"] for r in mine]
      (line,) = ax.plot(
        steps, [factor * r[key] for r in mine], label=f"seed {seed}"
      )
      if early is not None:
        ax.plot(early["step"], factor * early[key], "x", color=line.get_color())
  marks = [
    matplotlib.lines.Line2D(
      [], [], color="gray", marker="x", linestyle="", label="early stop"
    )
  ]
  for ax, _, ylabel, _ in panels:
    if early_stop_from:
      ax.axvline(
        early_stop_from,
        color="gray",
        linestyle=":",
        label=f"early stopping from step {early_stop_from}",
      )
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
  handles, _ = axes[1].get_legend_handles_labels()
  axes[1].legend(handles=handles + marks)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv: list[str] | None = None) -> None:
  """The command line: workdirs in, Markdown and plot out."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("workdirs", nargs="+", help="sparse-training workdirs")
  parser.add_argument("--out", help="Markdown file (default: print it)")
  parser.add_argument("--plot", help="PNG of accuracy against sparsity")
  parser.add_argument(
    "--flops-plot",
    help="PNG of test accuracy against training FLOPs (%% of dense)",
  )
  parser.add_argument("--title", default="", help="the plot's title")
  parser.add_argument(
    "--methods", help="comma-separated methods to keep (default: all)"
  )
  args = parser.parse_args(argv)
  rows = collect(args.workdirs)
  if args.methods:
    keep = args.methods.split(",")
    unknown = sorted(set(keep) - {r["method"] for r in rows})
    if unknown:
      raise ValueError(
        f"--methods names {unknown}, not in the workdirs; they hold "
        f"{sorted({r['method'] for r in rows})}"
      )
    rows = [r for r in rows if r["method"] in keep]
  text = markdown(rows)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text)
  else:
    print(text, end="")
  if args.plot:
    plot(rows, args.plot, title=args.title)
  if args.flops_plot:
    flops_plot(rows, args.flops_plot, title=args.title)


if __name__ == "__main__":
  main()
