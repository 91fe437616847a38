"""Aggregation of result records over seeds: mean ± std per metric, the gap to Retrain, the average gap.

A *group* is one method on one benchmark setting: records that share the dataset, the scenario
with its `seed` left out (kind, size, classes, relabeling, …) and the original model's
architecture and recipe. Within a group every record is one *run*, identified by
`(request hash, pretrained seed, seed)`: the request hash changes with the scenario's seed, the
pretrained seed with the original model, and `seed` is the seed of the unlearning run. Runs are
put in "seed order": by scenario seed, then pretrained seed, then run seed.

For each metric a row holds the per-run values in that order, their mean, their sample standard
deviation (ddof=1; 0 with a single run) and `n`. The gap to Retrain (seed 003 / SalUn style,
"|m − m_Retrain|") is taken **per run** against the Retrain record of the same run key, then
averaged over the runs ("mean of per-seed gaps", not "gap of means"):

- pairing removes what the two runs share (the same forget set, the same original model, the same
  seed), so the gap measures the method rather than seed-to-seed noise;
- |·| is not linear: with the gap of means, a method that overshoots Retrain on one seed and
  undershoots it on another would score a gap of 0. The mean of per-seed gaps is never smaller than
  the gap of means (triangle inequality) and cannot be won by such cancellation.

`avg_gap` is the mean of a method's gaps over `gap_metrics` (default `AVG_GAP_METRICS`: forget,
retain and test accuracy and `mia/svm_asr`), the leaderboard's ranking rule: lower is better,
Retrain scores 0.

Missing values are never silently dropped. A metric that is None (or NaN) in a record (a diverged
run, see `runner.result_record`) or absent from it although other runs of the group have it, keeps None in
`values`; its `mean`, `std`, the gap of that run and every average built on it are NaN, and the run
is listed in the row's `incomplete[metric]` (a metric of `gap_metrics` that no run has is listed
with all runs, and makes `avg_gap` NaN). A run with no Retrain record of the same key cannot
have a gap: it is listed in the row's `unpaired`, and the gaps are averaged over the paired runs
(`gap_n` says over how many); with no paired run at all a gap is NaN.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from jsonargparse import auto_cli

from benchmark.core.errors import UnlearnBenchError
from benchmark.core.record import ResultRecord, as_layout, read_records, run_identity
from benchmark.reports.tables import align, is_fraction

REFERENCE = "Retrain"
AVG_GAP_METRICS = ("forget/acc", "retain/acc", "test/acc", "mia/svm_asr")
"""The metrics whose gaps to Retrain are averaged into `avg_gap` (the leaderboard's ranking rule)."""
TABLE_METRICS = ("forget/acc", "retain/acc", "test/acc", "test_forget/acc", "test_retain/acc", "relabel/acc", "mia/svm_asr", "mia/efficacy",
                 "mia/loss_auc", "mia/ulira_acc", "mia/ulira_auc", "rt/epochs", "dist/weights", "dist/weights_retrain")
"""The metric columns of the printed tables, in order (those present in the records are shown)."""

RunKey = tuple[str, object, object]
"""(request hash, pretrained seed, seed): what a record and its Retrain counterpart share."""


def _scenario_without_seed(record: Mapping) -> dict:
    return {k: v for k, v in sorted(record.get("scenario", {}).items()) if k != "seed"}



class AggregateError(UnlearnBenchError, ValueError):
    """Records that cannot be put in one table (the same run twice)."""

def _context(record: Mapping) -> tuple:
    """What the records of one leaderboard table share: dataset, scenario without its seed, original model."""
    pretrained = record.get("pretrained") or {}
    return (record["dataset"], json.dumps(_scenario_without_seed(record), sort_keys=True), pretrained.get("arch"), pretrained.get("recipe"))


def _run_key(record: Mapping) -> RunKey:
    return (record["request"]["hash"], (record.get("pretrained") or {}).get("seed"), record["seed"])


def _seed_order(record: Mapping) -> tuple:
    def key(value):  # None sorts first, mixed types do not raise
        return (value is not None, str(type(value)), value if value is not None else 0)

    pretrained = record.get("pretrained") or {}
    return (key(record.get("scenario", {}).get("seed")), key(pretrained.get("seed")), key(record["seed"]), record["request"]["hash"])


def _seed_label(record: Mapping) -> dict:
    return {"scenario_seed": record.get("scenario", {}).get("seed"), "pretrained_seed": (record.get("pretrained") or {}).get("seed"),
            "seed": record["seed"], "request": record["request"]["hash"]}


def _value(record: Mapping, name: str) -> float | None:
    """The metric as a float, or None when absent, None (diverged) or NaN."""
    value = record["metrics"].get(name)
    return None if value is None or math.isnan(float(value)) else float(value)


def _as_float(value: object) -> float:
    return math.nan if value is None else float(value)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1); 0 for a single value, NaN for none."""
    if len(values) == 0:
        return math.nan
    return float(np.std(values, ddof=1)) if len(values) > 1 else (0.0 if math.isfinite(values[0]) else math.nan)


def aggregate(records: Iterable[ResultRecord | Mapping], gap_metrics: Sequence[str] = AVG_GAP_METRICS, reference: str = REFERENCE) -> list[dict]:
    """One row per (dataset, scenario without its seed, original model, method); see the module docstring.

    Args:
        records: result records (`benchmark.record.read_records`), or their file layout (as `benchmark.runner.run`
            returns them); of the layout only method, dataset, scenario, pretrained, request.hash, seed, metrics
            and diverged are read.
        gap_metrics: the metrics averaged into `avg_gap`.
        reference: the method the gaps are measured to.

    Returns:
        Rows in the order their context and method first appear in `records`, each a dict::

            {"method", "dataset", "scenario" (without its seed), "arch", "recipe", "n",
             "seeds": [{"scenario_seed", "pretrained_seed", "seed", "request"}, ...]  (seed order),
             "metrics": {name: {"values": [float | None, ...]  (seed order), "n", "mean", "std",
                                "gaps": [float | None, ...], "gap_n", "gap"}},
             "reference", "gap_metrics": [...], "avg_gap", "avg_gap_std",
             "incomplete": {name: [seed labels of runs where the value is None or absent]},
             "unpaired": [seed labels of runs without a `reference` record],
             "diverged": [seed labels of runs whose record says the training diverged]}

        `gaps` is aligned with `values` (None where the run has no reference record or either value
        is None); `gap` is NaN without any paired run and whenever a paired run's value is None.
        `avg_gap_std` is the sample std over paired runs of the per-run mean gap over `gap_metrics`.

    A method whose records in one setting hold several configurations (resolved hyperparameters, an original given as
    a checkpoint file, or the trainer's `numerics`: fp32 and bf16) gets a row per configuration, labelled `Method [8 hex digits]` (`core.record.run_identity`).

    Raises:
        AggregateError: two records of one group have the same run key (the same run twice).
    """
    groups: dict[tuple, list[Mapping]] = {}
    configurations: dict[tuple, set[str]] = {}
    for record in map(as_layout, records):
        checkpoint = (record.get("pretrained") or {}).get("checkpoint")
        given = None if "step" in (record.get("scenario") or {}) else checkpoint  # (a continual step starts from the last step's weights)
        identity = run_identity(record["method"], record.get("hparams") or {}, {"checkpoint": given} if given else None, record.get("numerics"))
        configurations.setdefault((*_context(record), record["method"]), set()).add(identity)
        groups.setdefault((*_context(record), record["method"], identity), []).append(record)
    groups = {(*context, method if len(configurations[(*context, method)]) == 1 else f"{method} [{identity}]"): members
              for (*context, method, identity), members in groups.items()}  # a method run with several configurations: a row each
    references: dict[tuple, dict[RunKey, Mapping]] = {}
    for (*context, method), members in groups.items():
        keys = [_run_key(r) for r in members]
        if len(set(keys)) != len(keys):
            duplicates = sorted({k for k in keys if keys.count(k) > 1}, key=str)
            raise AggregateError(f"{method} on {context[0]}: several records for the same run (request hash, pretrained seed, seed): {duplicates}")
        if method == reference or method.startswith(f"{reference} [") and tuple(context) not in references:
            references[tuple(context)] = dict(zip(keys, members))

    rows = []
    for (*context, method), members in groups.items():
        members = sorted(members, key=_seed_order)
        paired = references.get(tuple(context), {})
        partners = [paired.get(_run_key(r)) for r in members]
        names = list(dict.fromkeys(name for r in members for name in r["metrics"]))
        names += [name for name in gap_metrics if name not in names]
        metrics, incomplete = {}, {}
        for name in names:
            values = [_value(r, name) for r in members]
            if any(v is None for v in values):
                incomplete[name] = [_seed_label(r) for r, v in zip(members, values) if v is None]
            floats = [_as_float(v) for v in values]
            gaps = [None if p is None or v is None or _value(p, name) is None else abs(v - _value(p, name)) for v, p in zip(values, partners)]
            paired_gaps = [math.nan if g is None else g for g, p in zip(gaps, partners) if p is not None]
            metrics[name] = {"values": values, "n": len(values), "mean": _mean(floats), "std": _std(floats),
                             "gaps": gaps, "gap_n": len(paired_gaps), "gap": _mean(paired_gaps)}
        per_run = [_mean([math.nan if metrics[m]["gaps"][i] is None else metrics[m]["gaps"][i] for m in gap_metrics])
                   for i, p in enumerate(partners) if p is not None]
        scenario = _scenario_without_seed(members[0])
        rows.append({
            "method": method,
            "dataset": context[0],
            "scenario": scenario,
            "arch": context[2],
            "recipe": context[3],
            "n": len(members),
            "seeds": [_seed_label(r) for r in members],
            "metrics": metrics,
            "reference": reference,
            "gap_metrics": list(gap_metrics),
            "avg_gap": _mean([metrics[m]["gap"] for m in gap_metrics]),
            "avg_gap_std": _std(per_run),
            "incomplete": incomplete,
            "unpaired": [_seed_label(r) for r, p in zip(members, partners) if p is None],
            "diverged": [_seed_label(r) for r in members if r.get("diverged")],
        })
    return rows


# ---- table ----

def _number(value: float, percent: bool) -> str:
    return "nan" if value is None or math.isnan(value) else f"{100 * value:.2f}" if percent else f"{value:.3g}"


def _cell(entry: dict | None, percent: bool, gaps: bool) -> str:
    if entry is None:
        return "-"
    text = f"{_number(entry['mean'], percent)} ± {_number(entry['std'], percent)}"
    if gaps and entry["gap_n"]:
        text += f" ({_number(entry['gap'], percent)})"
    return text


def _describe(row: dict) -> str:
    scenario = ", ".join(f"{k}={v}" for k, v in row["scenario"].items())
    return f"{row['dataset']} · {scenario or 'no scenario'} · {row['arch'] or '?'} ({row['recipe'] or '?'})"


def format_aggregate_table(rows: list[dict], metrics: Sequence[str] | None = None, gaps: bool = True) -> str:
    """One table per setting: rows = methods, a "mean ± std" column per metric, then "avg gap".

    Accuracies and attack metrics (`is_fraction`) are in percent, their gaps in percentage points.
    With `gaps`, each cell is followed by its gap to Retrain in parentheses. Missing values show as
    `nan`, and a note under the table lists the runs where they are missing and the runs with no
    Retrain record.

    Args:
        rows: the output of `aggregate`.
        metrics: the metric columns (default: those of `TABLE_METRICS` present in the rows).
        gaps: show each metric's gap to Retrain next to its mean ± std.
    """
    blocks: dict[str, list[dict]] = {}
    for row in rows:
        blocks.setdefault(_describe(row), []).append(row)
    out = []
    for title, block in blocks.items():
        columns = list(metrics) if metrics is not None else [m for m in TABLE_METRICS if any(m in r["metrics"] for r in block)]
        gap_metrics = block[0]["gap_metrics"]
        gap_percent = all(is_fraction(m) for m in gap_metrics)
        header = ["method", "n", *columns, "avg gap"]
        lines = [[r["method"], str(r["n"]), *(_cell(r["metrics"].get(c), is_fraction(c), gaps) for c in columns),
                  f"{_number(r['avg_gap'], gap_percent)} ± {_number(r['avg_gap_std'], gap_percent)}"] for r in block]
        unit = "in %, gaps in percentage points" if gap_percent else "gaps in the metrics' own units"
        gap_note = f"(gap to {block[0]['reference']}), " if gaps else ""
        notes = [f"{title}; mean ± std over seeds (sample std), {gap_note}{unit}; "
                 f"avg gap = mean gap over {', '.join(gap_metrics)} (lower is better)"]
        for r in block:
            for name, runs in r["incomplete"].items():
                notes.append(f"  {r['method']}: {name} missing (None or absent) in {len(runs)} of {r['n']} runs: {_runs(runs)}")
            if r["diverged"]:
                notes.append(f"  {r['method']}: training diverged in {len(r['diverged'])} of {r['n']} runs: {_runs(r['diverged'])}")
            if r["unpaired"]:
                notes.append(f"  {r['method']}: no {r['reference']} record for {len(r['unpaired'])} of {r['n']} runs: {_runs(r['unpaired'])}")
        out.append("\n".join([notes[0], align(header, lines), *notes[1:]]))
    return "\n\n".join(out)


def _runs(seeds: list[dict]) -> str:
    return ", ".join(f"{s['scenario_seed']}/{s['pretrained_seed']}/{s['seed']}" for s in seeds) + " (scenario/pretrained/run seed)"


def _as_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=1)


def aggregate_folder(folder: str, metrics: list[str] | None = None, json: bool = False) -> list[dict]:
    """Print mean ± std over seeds of every result record under a folder, each metric's gap to Retrain and the average gap.

    Args:
        folder: folder of result records (searched recursively).
        metrics: metric columns, e.g. '[forget/acc, mia/svm_asr]' (default: the accuracies and attacks present).
        json: print the rows as JSON instead of a table.
    """
    rows = aggregate(read_records(folder))
    print(_as_json(rows) if json else format_aggregate_table(rows, metrics))
    return rows


if __name__ == "__main__":
    auto_cli(aggregate_folder)
