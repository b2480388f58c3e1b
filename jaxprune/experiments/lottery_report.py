"""Lottery-ticket results: per-round summaries over seeds, table, plots."""

import collections

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ARM_LABELS = {
  "imp": "winning ticket (IMP)",
  "reinit": "random reinit",
  "random_mask": "random mask",
}


def summarize(runs: list[dict]) -> list[dict]:
  """Means and spreads over seeds, one row per (arm, round).

  Args:
    runs: per-training records with `arm`, `round`, `seed`, `remaining`,
      `early_stop_step`, `early_stop_test_accuracy`, `final_test_accuracy`.

  Returns:
    Rows sorted by arm then round, with `seeds`, `remaining` and, for each
    metric, `<metric>_mean`, `_min` and `_max`. Where every record has
    `inference_flops` and `training_flops`, the rows add their `relative`
    means (`inference_flops_mean`, `training_flops_mean`), and IMP rows
    `imp_training_mean`: the training FLOPs of IMP rounds 0 to this one,
    in dense trainings of a round (what finding and training the ticket
    cost).

  >>> summarize([{'arm': 'imp', 'round': 0, 'seed': s, 'remaining': 1.0,
  ...   'early_stop_step': 10 * s, 'early_stop_test_accuracy': 0.9,
  ...   'final_test_accuracy': 0.8} for s in (1, 3)])[0]['early_stop_step_mean']
  20.0
  """
  groups = collections.defaultdict(list)
  for r in runs:
    groups[(r["arm"], r["round"])].append(r)
  rows = []
  for (arm, rnd), group in sorted(groups.items()):
    row = {
      "arm": arm,
      "round": rnd,
      "seeds": sorted(r["seed"] for r in group),
      "remaining": group[0]["remaining"],
    }
    for metric in (
      "early_stop_step",
      "early_stop_test_accuracy",
      "final_test_accuracy",
    ):
      values = [r[metric] for r in group]
      row[f"{metric}_mean"] = float(np.mean(values))
      row[f"{metric}_min"] = float(np.min(values))
      row[f"{metric}_max"] = float(np.max(values))
    if all("training_flops" in r for r in runs):
      for metric in ("inference_flops", "training_flops"):
        row[f"{metric}_mean"] = float(
          np.mean([r[metric]["relative"] for r in group])
        )
      if arm == "imp":
        row["imp_training_mean"] = float(
          np.mean([_imp_total(runs, r["seed"], rnd) for r in group])
        )
    rows.append(row)
  return rows


def _imp_total(runs: list[dict], seed: int, last: int) -> float:
  """Training FLOPs of the IMP rounds 0 to `last` of `seed`, relative to
  dense training of one round."""
  imp = [
    r
    for r in runs
    if (r["arm"], r["seed"]) == ("imp", seed) and r["round"] <= last
  ]
  return (
    sum(r["training_flops"]["effective"] for r in imp)
    / (imp[0]["training_flops"]["dense"])
  )


def table(rows: list[dict]) -> str:
  """A Markdown table of `summarize`'s rows; with FLOPs, three more
  columns: inference and training FLOPs (% of dense) and, for IMP, the
  training FLOPs of all its rounds so far in dense trainings of a
  round."""
  flops = any("training_flops_mean" in r for r in rows)
  head = "| arm | round | weights remaining | early-stop iteration "
  head += "| test acc. at early stop | final test acc. | seeds |"
  rule = "|---|---:|---:|---:|---:|---:|---:|"
  if flops:
    head += " inference FLOPs | training FLOPs | IMP rounds' training |"
    rule += "---:|---:|---:|"
  lines = [head, rule]
  for r in rows:
    line = (
      f"| {r['arm']} | {r['round']} | {100 * r['remaining']:.1f}% "
      f"| {r['early_stop_step_mean']:.0f} "
      f"| {100 * r['early_stop_test_accuracy_mean']:.2f}% "
      f"| {100 * r['final_test_accuracy_mean']:.2f}% | {len(r['seeds'])} |"
    )
    if flops:
      total = r.get("imp_training_mean")
      line += (
        f" {100 * r['inference_flops_mean']:.1f}% "
        f"| {100 * r['training_flops_mean']:.1f}% "
        f"| {'' if total is None else f'{total:.2f}x'} |"
      )
    lines.append(line)
  return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str, title: str = "") -> None:
  """Test accuracy at early stop and early-stop iteration against the
  percentage of weights remaining (log axis), one line per arm, the band
  spanning the seeds."""
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  panels = [
    (axes[0], "early_stop_test_accuracy", "test accuracy at early stop", 100),
    (axes[1], "early_stop_step", "early-stop iteration", 1),
  ]
  for arm, label in ARM_LABELS.items():
    mine = sorted(
      (r for r in rows if r["arm"] == arm), key=lambda r: -r["remaining"]
    )
    if not mine:
      continue
    x = [100 * r["remaining"] for r in mine]
    for ax, metric, _, factor in panels:
      mean = [factor * r[f"{metric}_mean"] for r in mine]
      lo = [factor * r[f"{metric}_min"] for r in mine]
      hi = [factor * r[f"{metric}_max"] for r in mine]
      (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label)
      ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
  for ax, _, ylabel, _ in panels:
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("% of weights remaining")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.xaxis.set_major_locator(
      matplotlib.ticker.FixedLocator([100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1])
    )
    ax.xaxis.set_major_formatter(
      matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    )
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  seeds = max((len(r["seeds"]) for r in rows), default=1)
  spread = f"mean of {seeds} seeds; band: min to max"
  axes[0].legend(title="one seed" if seeds == 1 else spread)
  if title:
    fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
