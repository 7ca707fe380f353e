"""`report.html`: one self-contained page built from run directories, written at the end of every
run and by `nnrun report RUN_DIR [RUN_DIR...]` (several directories: one comparison page).

It opens from disk with no network and no server: the CSS, the few lines of table script and the
Vega-Lite bundle (vl-convert's, inlined once per file) are in the page, and the PNG figures are
embedded as data. Vega-Lite over plotly by measurement: plotly's bundle alone is 4.8 MB, which
leaves no room under the 5 MB a 100-run sweep's page may take; Vega-Lite's is 0.9 MB.
"""

from __future__ import annotations

import base64
import datetime
import functools
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnrun.experiment.export import Tables, varied
from nnrun.experiment.figures import _band
from nnrun.experiment.rundir import REPORT
from nnrun.experiment.safefiles import is_plain_file, write_atomic
from nnrun.experiment.statistics import figure_names, figure_value, group_figure

#: The PNGs the page embeds as they are; loss.png and tune.png are redrawn interactive instead.
EMBEDDED = ("fit.png", "descent.png", "confusion.png")
_SERIES = {"train_loss": "train", "val_loss": "val"}


def write_report(run_dir: Path) -> Path:
    """Write `run_dir`/report.html (atomically) and return its path."""
    page = report_html([run_dir]).encode("utf-8")
    path = Path(run_dir) / REPORT
    write_atomic(path, lambda stream: stream.write(page))
    return path


def report_html(run_dirs: Sequence[Path]) -> str:
    """The page for one run directory, or a comparison page for several (groups side by side)."""
    tables = [Tables(Path(d)) for d in run_dirs]
    several = len(tables) > 1
    rows = [row for t in tables for row in result_rows(t, several)]
    charts = [loss_chart(tables, several), lr_chart(tables, several), tune_chart(tables)]
    parts = [experiment_section(t) for t in tables]
    parts.append(results_section(rows))
    titles = ("Loss curves", "Learning-rate sensitivity", "Tuning")
    for index, (title, chart) in enumerate(zip(titles, charts, strict=True)):
        if chart is not None:
            parts.append(f'<h2>{title}</h2><div class="chart" id="chart{index}"></div>')
    parts.extend(embedded_figures(t) for t in tables)
    parts.extend(failures_section(t) for t in tables)
    # built here from tested templates: altair's schema validation would only cost time
    specs = {f"chart{i}": c.to_dict(validate=False) for i, c in enumerate(charts) if c is not None}
    name = " vs ".join(str(t.summary.get("experiment", t.path.name)) for t in tables)
    return _page(name, "\n".join(p for p in parts if p), specs)


# sections -----------------------------------------------------------------------------------
def experiment_section(tables: Tables) -> str:
    environment = _environment(tables.path)
    written = datetime.datetime.fromtimestamp(
        (tables.path / "summary.json").stat().st_mtime, datetime.timezone.utc
    )
    config = (tables.path / "config.toml").read_text(encoding="utf-8")
    facts = {
        "experiment": tables.summary.get("experiment", ""),
        "run directory": str(tables.path),
        "date": written.strftime("%Y-%m-%d %H:%M UTC"),
        "nnrun": environment.get("nnrun", "?"),
        "torch": environment.get("torch", "?"),
        "runs": len(tables.summary["runs"]),
    }
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items())
    return (
        f'<section class="experiment"><h2>{_e(facts["experiment"])}</h2><dl>{items}</dl>'
        f"<details><summary>resolved config.toml</summary><pre>{_e(config)}</pre></details>"
        "</section>"
    )


def result_rows(tables: Tables, several: bool) -> list[dict[str, Any]]:
    """One row per group when there are seeds (and one per run outside any group, such as a
    tuning trial), one per run otherwise; cells are (shown text, sort value)."""
    entries = {e["name"]: e for e in tables.summary["runs"]}
    figures = figure_names(entries.values())
    keys = [k for k in varied(tables.hyperparameters) if k != "experiment.seed"]
    grouped = {run for g in tables.summary.get("groups") or [] for run in g["runs"]}
    rows = []
    for group in tables.summary.get("groups") or []:
        members = [entries[r] for r in group["runs"] if r in entries]
        row: dict[str, Any] = {"name": (group["name"], group["name"])}
        ok = sum(e["status"] == "ok" for e in members)
        row["status"] = (f"{ok}/{len(members)} ok", ok / max(len(members), 1))
        for figure in figures:
            row[figure] = _statistic(group_figure(group, figure))
        row.update(_epochs_and_time(members))
        first = tables.hyperparameters.get(group["runs"][0], {})
        row.update({k: _cell(first.get(k)) for k in keys})
        rows.append(row)
    for name, entry in entries.items():
        if name in grouped:
            continue
        row = {"name": (name, name), "status": (entry["status"], entry["status"])}
        for figure in figures:
            value = figure_value(entry, figure)
            row[figure] = (_number(value), value)
        row.update(_epochs_and_time([entry]))
        row.update({k: _cell(tables.hyperparameters[name].get(k)) for k in keys})
        rows.append(row)
    if several:
        for row in rows:
            row["run directory"] = (tables.path.name, tables.path.name)
    return rows


def results_section(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if "run directory" in columns:
        columns.insert(0, columns.pop(columns.index("run directory")))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            text, sort = row.get(column, ("", None))
            key = "" if sort is None else json.dumps(sort)
            cells.append(f"<td data-sort='{_e(key)}'>{_e(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<h2>Results</h2><input id="filter" type="search" placeholder="filter rows">'
        f'<table id="results"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def embedded_figures(tables: Tables) -> str:
    """The fit plot (one-input regression), the descent plot and confusion matrices, as drawn."""
    images = []
    for name in EMBEDDED:
        path = tables.path / name
        if is_plain_file(path):
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            images.append(
                f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
                f"<figcaption>{name}</figcaption></figure>"
            )
    return f"<h2>Figures</h2>{''.join(images)}" if images else ""


def failures_section(tables: Tables) -> str:
    failed = [e for e in tables.summary["runs"] if e["status"] != "ok"]
    log = tables.path / "failures.log"
    text = log.read_text(encoding="utf-8", errors="replace") if is_plain_file(log) else ""
    if not failed and not text:
        return ""
    items = "".join(
        f"<li>{_e(e['name'])}: {_e(e['status'])}"
        + (f" — {_e(e['error'])}" if e.get("error") else "")
        + "</li>"
        for e in failed
    )
    details = f"<details open><summary>failures.log</summary><pre>{_e(text)}</pre></details>"
    return f'<h2>Failures</h2><ul class="failures">{items}</ul>' + (details if text else "")


# charts -------------------------------------------------------------------------------------
def loss_chart(tables: Sequence[Tables], several: bool) -> Any:
    """Per group the median loss with its band (the `[report] band`), train and val, log scale;
    a checkbox shows every run's own curve."""
    bands: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for t in tables:
        band = _report_band(t.config)
        histories: dict[str, list[dict[str, Any]]] = {}
        for record in t.metrics:
            histories.setdefault(record["run"], []).append(record)
        by_group: dict[str, list[list[dict[str, Any]]]] = {}
        for run, history in histories.items():
            if run in t.groups or not t.groups:
                group = t.groups.get(run, run)
                label = f"{t.path.name}: {group}" if several else group
                by_group.setdefault(label, []).append(history)
            else:  # with seeds, a trial is a run of its configuration, not a group
                group = run.rsplit("/", 1)[0]
                label = f"{t.path.name}: {group}" if several else group
            for record in history:
                for key, series in _SERIES.items():
                    if _positive(record.get(key)):
                        runs.append(
                            {
                                "group": label,
                                "run": run,
                                "series": series,
                                "epoch": record["epoch"],
                                "loss": _rounded(record[key]),
                            }
                        )
        for label, group_histories in by_group.items():
            for key, series in _SERIES.items():
                for epoch, median, low, high in zip(
                    *_band(group_histories, key, band), strict=True
                ):
                    if _positive(median):
                        bands.append(
                            {
                                "group": label,
                                "series": series,
                                "epoch": epoch,
                                "median": _rounded(median),
                                "low": _rounded(max(low, median * 1e-3)),
                                "high": _rounded(high),
                            }
                        )
    if not bands:
        return None
    import altair as alt  # here, not above: a solve's report draws no chart and skips it

    show = alt.param(name="show_runs", value=False, bind=alt.binding_checkbox(name="show runs "))
    # the bands set the scale: a diverging run's curve is clipped, not squashing the rest
    bottom = min(b["low"] for b in bands)
    top = max(b["high"] for b in bands)
    log_y = alt.Scale(type="log", domain=[bottom, top])
    base = alt.Chart(alt.Data(name="bands")).encode(
        x=alt.X("epoch:Q"),
        color=alt.Color("group:N"),
    )
    area = base.mark_area(opacity=0.2, clip=True).encode(
        y=alt.Y("low:Q", scale=log_y, title="loss"),
        y2="high:Q",
    )
    line = base.mark_line(clip=True).encode(
        y=alt.Y("median:Q", scale=log_y), tooltip=["group:N", "epoch:Q", "median:Q"]
    )
    each = (
        alt.Chart(alt.Data(name="runs"))
        .mark_line(strokeWidth=0.8, clip=True, opacity=alt.expr("show_runs ? 0.5 : 0"))
        .encode(
            x="epoch:Q",
            y=alt.Y("loss:Q", scale=log_y),
            color="group:N",
            detail="run:N",
            tooltip=["run:N", "epoch:Q", "loss:Q"],
        )
    )
    panels = [
        alt.layer(
            area.transform_filter(alt.datum.series == series),
            line.transform_filter(alt.datum.series == series),
            each.transform_filter(alt.datum.series == series),
        ).properties(width=420, height=300, title=f"{series} loss")
        for series in _SERIES.values()
        if any(b["series"] == series for b in bands)
    ]
    # each dataset once at the top, not copied into every panel and layer
    chart = alt.hconcat(*panels).add_params(show)
    # set, not `.properties(datasets=...)`, which validates every data point against the schema
    # (seconds for a few thousand epochs); the page's specs are serialised unvalidated below
    chart.datasets = {"bands": bands, "runs": runs}
    return chart


def lr_chart(tables: Sequence[Tables], several: bool) -> Any:
    """The final figure against lr per optimizer, log x: every run a point, and each group of
    seeds its mean with the 95% CI as a bar. Drawn only when lr varies."""
    points, bars = [], []
    for t in tables:
        lrs = {run: h.get("optimizer.lr") for run, h in t.hyperparameters.items()}
        figure = _headline(t)
        if figure is None:
            continue
        for entry in t.summary["runs"]:
            lr, value = lrs.get(entry["name"]), figure_value(entry, figure)
            if _positive(lr) and value is not None:
                optimizer = t.hyperparameters[entry["name"]].get("optimizer.name", "?")
                label = f"{t.path.name}: {optimizer}" if several else optimizer
                points.append({"lr": lr, "value": value, "optimizer": label, "run": entry["name"]})
        for group in t.summary.get("groups") or []:
            stats = group_figure(group, figure)
            lr = lrs.get(group["runs"][0])
            if stats and stats.get("ci95") and _positive(lr):
                optimizer = t.hyperparameters[group["runs"][0]].get("optimizer.name", "?")
                label = f"{t.path.name}: {optimizer}" if several else optimizer
                low, high = stats["ci95"]
                bars.append(
                    {
                        "lr": lr,
                        "mean": stats["mean"],
                        "low": low,
                        "high": high,
                        "optimizer": label,
                        "group": group["name"],
                    }
                )
    if len({p["lr"] for p in points}) < 2:
        return None
    import altair as alt

    x = alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate")
    y = alt.Scale(type="log" if all(p["value"] > 0 for p in points) else "linear")
    dots = (
        alt.Chart(alt.Data(values=points))
        .mark_point(filled=True, opacity=0.6)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=figure, scale=y),
            color="optimizer:N",
            tooltip=["run:N", "lr:Q", "value:Q"],
        )
    )
    layers = [dots]
    if bars:
        whiskers = alt.Chart(alt.Data(values=bars))
        layers.append(
            whiskers.mark_rule(strokeWidth=2).encode(
                x=x, y=alt.Y("low:Q", scale=y), y2="high:Q", color="optimizer:N"
            )
        )
        layers.append(
            whiskers.mark_tick(thickness=2).encode(
                x=x,
                y="mean:Q",
                color="optimizer:N",
                tooltip=["group:N", "mean:Q", "low:Q", "high:Q"],
            )
        )
    return alt.layer(*layers).properties(width=560, height=340)


def tune_chart(tables: Sequence[Tables]) -> Any:
    """Each `[tune]` study's trials in order: every trial's value and the best so far."""
    points = []
    for t in tables:
        studies = t.summary.get("tune") or {}
        for config, study in studies.items():
            trials = [
                e
                for e in t.summary["runs"]
                if e.get("trial") is not None
                and e["name"].startswith(f"{config}/")
                and e.get("value") is not None
            ]
            best = None
            for entry in sorted(trials, key=lambda e: e["trial"]):
                value = entry["value"]
                better = best is None or (
                    value > best if study.get("mode") == "max" else value < best
                )
                best = value if better else best
                points.append(
                    {
                        "study": config,
                        "trial": entry["trial"],
                        "value": value,
                        "best": best,
                        "run": entry["name"],
                    }
                )
    if not points:
        return None
    import altair as alt

    tuned: dict[str, Any] = tables[0].summary.get("tune") or {}
    first: dict[str, Any] = next(iter(tuned.values()), {})
    metric = first.get("metric", "value")
    base = alt.Chart(alt.Data(values=points)).encode(x=alt.X("trial:Q"), color="study:N")
    dots = base.mark_point(filled=True, opacity=0.5).encode(
        y=alt.Y("value:Q", scale=alt.Scale(type="log"), title=metric), tooltip=["run:N", "value:Q"]
    )
    return alt.layer(dots, base.mark_line(interpolate="step-after").encode(y="best:Q")).properties(
        width=560, height=340
    )


# helpers ------------------------------------------------------------------------------------
def _headline(tables: Tables) -> str | None:
    """The figure the lr chart draws: the tuned metric's final value, else final_val_loss or
    final_loss."""
    names = figure_names(tables.summary["runs"])
    for name in ("final_val_loss", "final_loss"):
        if name in names:
            return name
    return names[0] if names else None


def _report_band(config: dict[str, Any]) -> str:
    runs = config.get("runs") or [{}]
    return str((runs[0].get("report") or {}).get("band", "minmax"))


def _environment(path: Path) -> dict[str, Any]:
    file = path / "environment.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8")) if is_plain_file(file) else {}
    except (OSError, ValueError):
        data = {}
    return data if isinstance(data, dict) else {}


def _statistic(stats: dict[str, Any] | None) -> tuple[str, float | None]:
    """A group's figure as "mean ± half its 95% CI" (the mean alone for one run)."""
    if not stats or stats.get("mean") is None:
        return "", None
    mean, ci95 = stats["mean"], stats.get("ci95")
    if not ci95:
        return _number(mean), mean
    return f"{_number(mean)} ± {_number((ci95[1] - ci95[0]) / 2)}", mean


def _epochs_and_time(entries: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    epochs: list[int] = sorted({e["epochs"] for e in entries if isinstance(e.get("epochs"), int)})
    seconds = sum(float(e.get("seconds") or 0.0) for e in entries)
    shown = (
        "" if not epochs else str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}–{epochs[-1]}"
    )
    return {
        "epochs": (shown, epochs[-1] if epochs else None),
        "seconds": (f"{seconds:.3g}", seconds),
    }


def _cell(value: Any) -> tuple[str, Any]:
    if isinstance(value, float):
        return _number(value), value
    if isinstance(value, int | str) and not isinstance(value, bool):
        return str(value), value
    text = json.dumps(value)
    return text, text


def _rounded(value: float) -> float:
    """Six significant digits: what a chart can show, at a third of the bytes of a full float."""
    return float(f"{value:.6g}")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: a "</" in a run name cannot close the tag."""
    return json.dumps(data).replace("</", "<\\/")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;white-space:nowrap}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}
th.up::after{content:" ▲"}th.down::after{content:" ▼"}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:600}
pre{background:#f8f8f8;padding:8px;max-height:30em;overflow:auto}
#filter{margin:6px 0;padding:4px;width:20em}figure{display:inline-block;margin:6px}
img{max-width:640px}
"""
#: Sort by a column (click its header again to reverse) and filter rows by any text.
_TABLE_SCRIPT = """
const table=document.getElementById('results');
const rows=()=>Array.from(table.tBodies[0].rows);
document.getElementById('filter').addEventListener('input',e=>{
  const q=e.target.value.toLowerCase();
  rows().forEach(r=>{r.style.display=r.textContent.toLowerCase().includes(q)?'':'none';});
});
table.tHead.rows[0].querySelectorAll('th').forEach((th,i)=>th.addEventListener('click',()=>{
  const up=!th.classList.contains('up');
  table.tHead.querySelectorAll('th').forEach(h=>h.classList.remove('up','down'));
  th.classList.add(up?'up':'down');
  const key=r=>{const s=r.cells[i].dataset.sort;return s===''?null:JSON.parse(s);};
  const sorted=rows().sort((a,b)=>{const x=key(a),y=key(b);
    if(x===null)return 1;if(y===null)return -1;return (x<y?-1:x>y?1:0)*(up?1:-1);});
  sorted.forEach(r=>table.tBodies[0].appendChild(r));
}));
"""


def _page(title: str, body: str, specs: dict[str, Any]) -> str:
    script = ""
    if specs:
        bundle = _vega_bundle()
        calls = "".join(
            f"vegaEmbed('#{div}',{_script_json(spec)},{{actions:false}});"
            for div, spec in specs.items()
        )
        script = f"<script>{bundle}</script><script>{calls}</script>"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>{body}"
        f"<script>{_TABLE_SCRIPT}</script>{script}</body></html>\n"
    )


@functools.cache
def _vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script, built once per process: vl-convert takes
    about 0.7 s to produce it, more than the rest of a report."""
    import vl_convert

    # the stub lacks snippet's default; the bundle holds no "</script" (a test checks)
    return vl_convert.javascript_bundle()  # type: ignore[call-arg]
