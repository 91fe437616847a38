"""The renderer: `leaderboard/README.md` (a table per track) and `leaderboard/index.html`, from the entries alone.

Every row is made the same way from its entry: the ranking rule of the track (`rank`), mean ± std
per metric column, the per-seed flags (diverged, missing values). The page is one self-contained
file (inline CSS, JS and SVG; no network): click a column header to sort by it, a method's name to
see its config, and a plot per track shows forget vs test accuracy. The output depends on the files
only, so rendering twice gives identical files.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from benchmark.core.paths import atomic_write_bytes
from benchmark.core.record import finite
from benchmark.leaderboard.entries import load_entries
from benchmark.leaderboard.schema import as_records
from benchmark.leaderboard.tracks import LEADERBOARD, Track, list_tracks, load_track
from benchmark.reports.aggregate import aggregate
from benchmark.reports.tables import is_fraction

NULL = "—"


def rank(track: Track, entries: list[dict]) -> list[dict]:
    """The track's rows, best first: its rule (`avg_gap`, lower is better) orders them; references are listed, not ranked.

    Each row: method, entry, `avg_gap` / `avg_gap_std` (None when not computable: a null value of a gap
    metric, or no reference entry), `rank` (None for references and unranked rows), `reference`,
    `diverged` (number of runs), `n`, `metrics` {name: {mean, std, values}}, `notes`.
    """
    records = [record for entry in entries for record in as_records(entry)]
    aggregated = {row["method"]: row for row in aggregate(records, track.ranking.gap_metrics, track.ranking.reference)} if records else {}
    rows = []
    for entry in entries:
        row = aggregated[entry["method"]]
        notes = []
        if row["diverged"]:
            notes.append(f"diverged in {len(row['diverged'])}/{row['n']} runs")
        missing = sorted({s["seed"] for name, runs in row["incomplete"].items() if name in track.metrics for s in runs})
        if missing and not row["diverged"]:
            notes.append(f"values missing in seeds {missing}")
        if row["unpaired"]:
            notes.append(f"no {track.ranking.reference} entry for {len(row['unpaired'])} runs")
        rows.append({"method": entry["method"], "entry": entry, "reference": entry["method"] in track.references,
                     "avg_gap": finite(row["avg_gap"]), "avg_gap_std": finite(row["avg_gap_std"]), "n": row["n"],
                     "diverged": len(row["diverged"]), "metrics": entry["metrics"], "notes": notes, "rank": None})
    if track.ranking.rule == "goal":
        rows.sort(key=lambda r: _goal_key(track, r))
        rankable = [r for r in rows if _goal_key(track, r)[0] < 2]
    else:
        rows.sort(key=lambda r: (r["avg_gap"] is None, r["avg_gap"] if r["avg_gap"] is not None else 0.0, r["method"]))
        rankable = [r for r in rows if r["avg_gap"] is not None]
    position = 0
    for row in rows:
        if not row["reference"] and row in rankable:
            position += 1
            row["rank"] = position
    return rows


def _goal_key(track: Track, row: dict) -> tuple:
    """The `goal` rule's order: 0 = at the goal in every run, 1 = not, 2 = unrankable (a value missing or a run diverged);
    then the keep metrics' means, higher first."""
    ranking, metrics = track.ranking, row["metrics"]
    values = (metrics.get(ranking.goal_metric) or {}).get("values") or []
    keep = [(metrics.get(m) or {}).get("mean") for m in ranking.keep_metrics]
    if row["diverged"] or not values or None in values or None in keep:
        return (2, (), row["method"])
    return (0 if all(v == ranking.goal_value for v in values) else 1, tuple(-k for k in keep), row["method"])


def ranking_note(track: Track, rows: list[dict]) -> str | None:
    """What the gap-to-reference ranking rewards on this track, from its own numbers: closeness to the reference on
    every gap metric, not forgetting as such. Said when the reference itself keeps most of D_f and a row that
    forgets nothing (the Original reference) would beat ranked methods."""
    if track.ranking.rule != "avg_gap":
        return None
    by_method = {row["method"]: row for row in rows}
    reference, original = by_method.get(track.ranking.reference), by_method.get("Original")
    metric = next((m for m in ("forget/acc", "forgotten/acc") if m in track.ranking.gap_metrics), None)
    if reference is None or original is None or metric is None or (reference["metrics"].get(metric) or {}).get("mean") is None:
        return None
    kept = reference["metrics"][metric]["mean"]
    ranked = [row for row in rows if row["rank"] is not None]
    if kept < 0.5 or original["avg_gap"] is None or not ranked or original["avg_gap"] > ranked[0]["avg_gap"]:
        return None
    percent = all(is_fraction(m) for m in track.ranking.gap_metrics)
    return (f"what the ranking rewards: closeness to {track.ranking.reference} on every gap metric, not forgetting as such — "
            f"{track.ranking.reference} itself still classifies {100 * kept:.1f} % of the forget images correctly ({metric}), so the "
            f"unranked Original, which forgets nothing, has an average gap of {_number(original['avg_gap'], percent)} against "
            f"the #1 method's {_number(ranked[0]['avg_gap'], percent)}; a method ranks well here by changing the model as "
            f"little as {track.ranking.reference} would, and a method that misclassifies every forget image ranks low")


def columns(track: Track, entries: list[dict]) -> list[str]:
    """The track's metric columns that some entry reports."""
    return [name for name in track.metrics if any(name in e["metrics"] for e in entries)]


def _number(value: float | None, percent: bool) -> str:
    if value is None:
        return NULL
    return f"{100 * value:.2f}" if percent else f"{value:.3g}"


def cell(metric: dict | None, name: str) -> str:
    if metric is None or metric["mean"] is None:
        return NULL
    percent = is_fraction(name)
    return f"{_number(metric['mean'], percent)} ± {_number(metric['std'], percent)}"


def gap_cell(row: dict, track: Track) -> str:
    percent = all(is_fraction(m) for m in track.ranking.gap_metrics)
    return NULL if row["avg_gap"] is None else f"{_number(row['avg_gap'], percent)} ± {_number(row['avg_gap_std'], percent)}"


def _rank_text(row: dict) -> str:
    return "ref." if row["reference"] else str(row["rank"]) if row["rank"] is not None else NULL


def _scenario_text(track: Track) -> str:
    args = ", ".join(f"{k}={v}" for k, v in track.scenario.get("init_args", {}).items())
    seeded = f"; `{track.scenario['seed_arg']}` = the run's seed" if track.scenario.get("seed_arg") else ""
    return f"`{track.scenario['class']}({args})`{seeded}"


def protocol_lines(track: Track) -> list[str]:
    p = track.pretrained
    requests = ", ".join(f"{r['seed']}: `{(r['request'] or 'unstamped')[:12]}`" for r in track.runs)
    gap = ", ".join(f"`{m}`" for m in track.ranking.gap_metrics)
    percent = "percentage points" if all(is_fraction(m) for m in track.ranking.gap_metrics) else "the metrics' units"
    return [
        f"dataset `{track.dataset}`; original model `{p['arch']}`, recipe `{p.get('recipe')}`, pretraining seed {p.get('seed', 0)}, "
        f"weights sha256 `{(p['sha256'] or 'unstamped')[:16]}`",
        f"scenario {_scenario_text(track)}; seeds and request hashes {requests}",
        _ranking_text(track, gap, percent),
        f"values: mean ± sample std over {len(track.runs)} seeds, accuracies and attack scores in %, `cost/seconds` in seconds; "
        f"{NULL} = not measured (a diverged model has no accuracy); `verify` tolerance {track.tolerance} (absolute, per value)",
    ]


def _ranking_text(track: Track, gap: str, percent: str) -> str:
    r, references = track.ranking, " and ".join(track.references)
    average = f"average over {gap} of the gap to {r.reference} (|m − m_{r.reference}| per seed, averaged over the seeds; in {percent})"
    if r.rule == "goal":
        goal = f"{100 * r.goal_value:g} %" if is_fraction(r.goal_metric) else f"{r.goal_value:g}"
        keep = ", then ".join(f"`{m}`" for m in r.keep_metrics)
        return (f"ranking: the paper's goal — first the rows with `{r.goal_metric}` = {goal} in every run, then the others, each by "
                f"mean {keep}, higher first; {references} are references, not ranked; rows with a diverged run or a missing "
                f"value are listed last, unranked; the avg gap column is the {average}, shown, not ranked by")
    return (f"ranking: {average}, lower is better; {references} are references, not ranked; "
            f"rows with a null gap (a diverged run) are listed last, unranked")


# ---- README.md ----

def pending_text(stale: list[str]) -> str:
    """The line under a track whose entries are partly awaiting recomputation (`load_entries`' `stale`)."""
    return (f"Awaiting recomputation under the current schema and track version: {', '.join(stale)} "
            "(their files predate a change of the protocol, e.g. schema 2's membership-inference fix or a new original model)")


def render_markdown(tracks: list[tuple[Track, list[dict]]], pending: dict[str, list[str]] | None = None) -> str:
    out = ["# Leaderboard", "",
           "Generated by `python cli.py render` from `tracks/*.yaml` and `entries/<track>/*.json`; do not edit by hand. "
           "The sortable page with configs and plots is `index.html`; how to add a method: the top-level README (\"Leaderboard: adding your method in four steps\").", ""]
    for track, entries in tracks:
        out += [f"## {track.title} (`{track.name}`)", ""]
        if track.description:
            out += [track.description, ""]
        out += [f"- {line}" for line in protocol_lines(track)] + [""]
        if (pending or {}).get(track.name):
            out += [f"**{pending_text(pending[track.name])}.**", ""]
        if not entries:
            out += ["No entries yet.", ""]
            continue
        names = columns(track, entries)
        note = ranking_note(track, rank(track, entries))
        if note:
            out += [f"**Note:** {note}.", ""]
        out.append("| rank | method | avg gap ↓ | " + " | ".join(f"`{n}`" for n in names) + " | notes |")
        out.append("|---:|---|---:|" + "---:|" * len(names) + "---|")
        for row in rank(track, entries):
            method = row["method"] + (" (reference)" if row["reference"] else "")
            cells = [_rank_text(row), method, gap_cell(row, track), *(cell(row["metrics"].get(n), n) for n in names), "; ".join(row["notes"])]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


# ---- index.html ----

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
div.scroll { overflow-x: auto; max-width: 100%; }
table.board { border-collapse: collapse; margin: .5em 0 1em; }
p.note { background: #fff8e1; padding: .4em .6em; border-left: 3px solid #e0a800; }
table.board th, table.board td { border-bottom: 1px solid #ddd; padding: .3em .6em; text-align: right; vertical-align: top; white-space: nowrap; }
table.board th:nth-child(2), table.board td:nth-child(2), table.board td.notes { text-align: left; }
table.board th { cursor: pointer; background: #f4f4f4; user-select: none; }
table.board th[aria-sort=ascending]::after { content: " ▲"; }
table.board th[aria-sort=descending]::after { content: " ▼"; }
tr.reference td { color: #555; font-style: italic; }
tr.diverged td.notes { color: #b00; }
details summary { cursor: pointer; color: #0645ad; }
details pre { text-align: left; font-size: 12px; background: #f8f8f8; padding: .5em; max-width: 520px; overflow: auto; white-space: pre-wrap; }
.protocol { color: #444; font-size: 13px; }
svg text { font: 11px system-ui, sans-serif; }
"""

JS = """
document.querySelectorAll('table.board').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute('data-sort'), y = b.cells[col].getAttribute('data-sort');
        if (x === '' || y === '') { return (x === '') - (y === ''); }  /* no value: always last */
        var fx = Number(x), fy = Number(y);
        var c = (isNaN(fx) || isNaN(fy)) ? x.localeCompare(y) : fx - fy;
        return ascending ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _attr(value) -> str:
    return "" if value is None else repr(float(value)) if isinstance(value, (int, float)) else html.escape(str(value), quote=True)


def _details(entry: dict) -> str:
    shown = {"config": entry["config"], "source": entry["source"], "code": entry["code"], "hardware": entry["hardware"],
             "runs": [{k: run[k] for k in ("seed", "request", "diverged", "stopped_at") if k in run} for run in entry["runs"]]}
    return f"<details><summary>{html.escape(entry['method'])}</summary><pre>{html.escape(json.dumps(shown, indent=1))}</pre></details>"


LABEL_WIDTH, LABEL_HEIGHT = 80, 12
"""The room (px) a point's label takes in the scatter: labels closer than this are moved apart."""


def label_position(x: float, y: float, placed: list[tuple[float, float]], low: float, high: float) -> tuple[float, float]:
    """Where a label wanted at (x, y) goes: the nearest of y, y ± 12, y ± 24, … (within [low, high]) that overlaps no
    label in `placed`, to which it is added; overlapping points (e.g. Original and FineTune) thus keep readable names."""
    for step in range(40):
        candidate = y + LABEL_HEIGHT * ((step + 1) // 2) * (1 if step % 2 else -1)
        if low <= candidate <= high and all(abs(x - px) >= LABEL_WIDTH or abs(candidate - py) >= LABEL_HEIGHT for px, py in placed):
            placed.append((x, candidate))
            return x, candidate
    placed.append((x, y))
    return x, y


def plot_svg(track: Track, rows: list[dict], x_name: str = "forget/acc", y_name: str = "test/acc") -> str:
    """Scatter of the rows' mean `x_name` vs mean `y_name` (in %), references hollow; rows without values listed under it."""
    width, height, left, right, top, bottom = 460, 320, 50, 110, 15, 40
    inner_w, inner_h = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + inner_w * v

    def sy(v: float) -> float:
        return top + inner_h * (1 - v)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(y_name)} vs {html.escape(x_name)}, {html.escape(track.name)}">',
             f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#999"/>']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{sx(tick):.1f}" y1="{top + inner_h}" x2="{sx(tick):.1f}" y2="{top + inner_h + 4}" stroke="#999"/>'
                     f'<text x="{sx(tick):.1f}" y="{top + inner_h + 16}" text-anchor="middle">{int(100 * tick)}</text>'
                     f'<line x1="{left - 4}" y1="{sy(tick):.1f}" x2="{left}" y2="{sy(tick):.1f}" stroke="#999"/>'
                     f'<text x="{left - 7}" y="{sy(tick) + 4:.1f}" text-anchor="end">{int(100 * tick)}</text>')
    parts.append(f'<text x="{left + inner_w / 2}" y="{height - 6}" text-anchor="middle">{html.escape(x_name)} (%)</text>'
                 f'<text x="12" y="{top + inner_h / 2}" text-anchor="middle" transform="rotate(-90 12 {top + inner_h / 2})">{html.escape(y_name)} (%)</text>')
    left_out, placed = [], []
    for row in rows:
        x, y = (row["metrics"].get(name, {}).get("mean") for name in (x_name, y_name))
        if x is None or y is None:
            left_out.append(row["method"] + (f" (diverged {row['diverged']}/{row['n']})" if row["diverged"] else ""))
            continue
        fill = "none" if row["reference"] else "#1f77b4"
        wanted = sy(y) - 5
        label_x, label_y = label_position(sx(x) + 6, wanted, placed, low=top + 10, high=height - 2)
        leader = f'<line x1="{sx(x):.1f}" y1="{sy(y):.1f}" x2="{label_x - 1:.1f}" y2="{label_y - 4:.1f}" stroke="#bbb"/>' if label_y != wanted else ""
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{fill}" stroke="#1f77b4"><title>{html.escape(row["method"])}: '
                     f'{x_name} {100 * x:.2f} %, {y_name} {100 * y:.2f} %</title></circle>'
                     f'{leader}<text x="{label_x:.1f}" y="{label_y:.1f}">{html.escape(row["method"])}</text>')
    parts.append("</svg>")
    note = f'<p class="protocol">Not plotted (no value): {html.escape(", ".join(left_out))}.</p>' if left_out else ""
    return "".join(parts) + note


def render_html(tracks: list[tuple[Track, list[dict]]], pending: dict[str, list[str]] | None = None) -> str:
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">', '<title>UnlearnBench leaderboard</title>',
           f"<style>{CSS}</style></head><body>", "<h1>UnlearnBench leaderboard</h1>",
           "<p>Generated from the track files and entries in <code>leaderboard/</code>. Click a column header to sort by it, "
           "a method's name to see its config.</p>"]
    for track, entries in tracks:
        out.append(f'<section id="{html.escape(track.name)}"><h2>{html.escape(track.title)} (<code>{html.escape(track.name)}</code>)</h2>')
        if track.description:
            out.append(f"<p>{html.escape(track.description)}</p>")
        out.append('<ul class="protocol">' + "".join(f"<li>{html.escape(line).replace('`', '')}</li>" for line in protocol_lines(track)) + "</ul>")
        if (pending or {}).get(track.name):
            out.append(f'<p class="note pending">{html.escape(pending_text(pending[track.name]))}.</p>')
        if not entries:
            out.append("<p>No entries yet.</p></section>")
            continue
        names = columns(track, entries)
        rows = rank(track, entries)
        header = ["rank", "method", "avg gap ↓", *names, "notes"]
        note = ranking_note(track, rows)
        if note:
            out.append(f'<p class="note"><b>Note:</b> {html.escape(note)}.</p>')
        out.append('<div class="scroll">')
        out.append(f'<table class="board" data-track="{html.escape(track.name)}"><thead><tr>'
                   + "".join(f'<th data-key="{html.escape(h)}">{html.escape(h)}</th>' for h in header) + "</tr></thead><tbody>")
        for row in rows:
            classes = " ".join(c for c in ("reference" if row["reference"] else "", "diverged" if row["diverged"] else "") if c)
            cells = [f'<td data-sort="{_attr(row["rank"] if row["rank"] is not None else (0 if row["reference"] else None))}">{_rank_text(row)}</td>',
                     f'<td data-sort="{_attr(row["method"])}">{_details(row["entry"])}</td>',
                     f'<td data-sort="{_attr(row["avg_gap"])}">{gap_cell(row, track)}</td>']
            for name in names:
                metric = row["metrics"].get(name)
                cells.append(f'<td data-sort="{_attr(metric["mean"] if metric else None)}">{cell(metric, name)}</td>')
            cells.append(f'<td class="notes" data-sort="{_attr("; ".join(row["notes"]))}">{html.escape("; ".join(row["notes"]))}</td>')
            out.append(f'<tr class="{classes}" data-method="{html.escape(row["method"])}">' + "".join(cells) + "</tr>")
        out.append("</tbody></table></div>")
        out.append(plot_svg(track, rows))
        out.append("</section>")
    out.append(f"<script>{JS}</script></body></html>")
    return "\n".join(out) + "\n"


def render(leaderboard: Path = LEADERBOARD) -> list[Path]:
    """Write `README.md` and `index.html` of `leaderboard` from its tracks and entries; return their paths."""
    leaderboard = Path(leaderboard)
    tracks, pending = [], {}
    for track in (load_track(name, leaderboard) for name in list_tracks(leaderboard)):
        tracks.append((track, load_entries(track, leaderboard, stale=pending.setdefault(track.name, []))))
    written = []
    for name, text in (("README.md", render_markdown(tracks, pending)), ("index.html", render_html(tracks, pending))):
        path = leaderboard / name
        atomic_write_bytes(path, text.encode())
        written.append(path)
    return written
