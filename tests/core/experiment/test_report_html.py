"""report.html, read with an HTML parser: one results row per group (or run), the right values
(against numpy and scipy on summary.json), every plot present and drawable, no network reference;
and, where a Chromium is installed, the page loaded headless renders its table and charts."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser

import numpy as np
import pytest
import vl_convert
from click.testing import CliRunner
from experiments import two_optimizers
from scipy import stats

from nnrun.cli import main
from nnrun.experiment import report_html as report
from nnrun.experiment.export import Tables

EXPERIMENT = two_optimizers(
    "reported",
    5,
    [0, 1, 2],
    3,
    runs='\n[[runs]]\nname = "blows-up"\noptimizer = { name = "sgd", lr = 1e6 }\n',
)


class Page(HTMLParser):
    """The parts of a page the tests look at: table headers and cells, tags with attributes."""

    def __init__(self, text: str):
        super().__init__()
        self.headers: list[str] = []
        self.rows: list[list[tuple[str, str]]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._cell: list[str] | None = None
        self._sort = ""
        self._where = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("thead", "tbody", "script"):
            self._where = tag
        if tag == "tr" and self._where == "tbody":
            self.rows.append([])
        if tag in ("th", "td"):
            self._cell, self._sort = [], dict(attrs).get("data-sort") or ""
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            text = "".join(self._cell).strip()
            if tag == "th":
                self.headers.append(text)
            else:
                self.rows[-1].append((text, self._sort))
            self._cell = None
        if tag == "script":
            self._where = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._where == "script":
            self.scripts[-1] += data

    def column(self, name: str) -> list[tuple[str, str]]:
        index = self.headers.index(name)
        return [row[index] for row in self.rows]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    (folder / "e.toml").write_text(textwrap.dedent(EXPERIMENT))
    result = invoke(folder / "e.toml", "--out", folder / "out", "-q")
    assert result.exit_code in (0, 1), result.output  # the diverging group is not a success
    return folder / "out"


@pytest.fixture(scope="module")
def page(run_dir):
    return Page((run_dir / "report.html").read_text(encoding="utf-8"))


def test_every_run_writes_a_report_with_one_table_row_per_group(run_dir, page):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [name for name, _ in page.column("name")] == [g["name"] for g in summary["groups"]]
    assert len(page.rows) == 3
    for column in ("status", "final_loss", "final_val_loss", "epochs", "seconds"):
        assert column in page.headers
    # every varied hyperparameter is a column, and nothing that is the same everywhere
    assert {"optimizer.name", "optimizer.lr"} <= set(page.headers)
    assert "model.layers" not in page.headers


def test_the_table_shows_each_groups_mean_and_95_percent_interval(run_dir, page):
    summary = json.loads((run_dir / "summary.json").read_text())
    entries = {e["name"]: e for e in summary["runs"]}
    cells = dict(zip([n for n, _ in page.column("name")], page.column("final_loss"), strict=True))
    for group in ("sgd", "adam"):
        values = np.array([entries[f"{group}/seed={s}"]["final_loss"] for s in (0, 1, 2)])
        text, sort = cells[group]
        half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
        assert json.loads(sort) == pytest.approx(values.mean(), rel=1e-12)
        assert text == f"{values.mean():.4g} ± {half:.4g}"
    lrs = dict(zip([n for n, _ in page.column("name")], page.column("optimizer.lr"), strict=True))
    assert (json.loads(lrs["sgd"][1]), json.loads(lrs["adam"][1])) == (0.1, 0.01)
    status = dict(zip([n for n, _ in page.column("name")], page.column("status"), strict=True))
    for group in summary["groups"]:  # n counts the runs that finished ok
        assert status[group["name"]][0] == f"{group['n']}/{len(group['runs'])} ok"
    assert status["sgd"][0] == "3/3 ok" and status["blows-up"][0] != "3/3 ok"


def test_every_plot_is_present_and_vega_draws_it(run_dir, page):
    divs = {
        a.get("id") for tag, a in page.tags if tag == "div" and "chart" in (a.get("class") or "")
    }
    assert divs == {"chart0", "chart1"}  # loss curves and lr sensitivity; no [tune] here
    calls = page.scripts[-1]
    assert all(f"vegaEmbed('#{div}'" in calls for div in divs)
    tables = [Tables(run_dir)]
    for chart in (report.loss_chart(tables, False), report.lr_chart(tables, False)):
        svg = vl_convert.vegalite_to_svg(chart.to_dict())
        assert svg.count("<path") > 10  # axes, bands, lines and points were drawn
    images = [a["src"] for tag, a in page.tags if tag == "img"]
    assert any(src.startswith("data:image/png;base64,") for src in images)  # fit.png


def test_the_page_refers_to_nothing_on_the_network(page):
    for tag, attrs in page.tags:
        for name in ("src", "href", "data", "action", "poster"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "ftp:")), (tag, name, value)
    inline = [s for s in page.scripts if s.strip()]
    assert len(inline) == 3  # the table's script, the Vega bundle once, the charts


def test_failures_are_listed_with_their_status(page, run_dir):
    section = (run_dir / "report.html").read_text(encoding="utf-8").split("<h2>Failures</h2>")
    assert len(section) == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    failed = [e for e in summary["runs"] if e["status"] != "ok"]
    assert failed  # lr = 1e6 diverges on some seeds
    for entry in failed:
        assert f"{entry['name']}: {entry['status']}" in section[1]


def test_a_bundle_free_of_closing_script_tags():
    assert "</script" not in vl_convert.javascript_bundle().lower()


def test_report_over_several_run_directories_puts_their_groups_side_by_side(run_dir, tmp_path):
    out = tmp_path / "both.html"
    result = invoke("report", run_dir, run_dir, "--out", out)
    assert result.exit_code == 0, result.output
    both = Page(out.read_text(encoding="utf-8"))
    assert both.headers[0] == "run directory"
    assert len(both.rows) == 6
    assert invoke("report", run_dir, run_dir).exit_code == 2  # several need --out


def test_report_of_a_folder_that_is_no_run_directory_is_a_one_line_error(tmp_path):
    result = invoke("report", tmp_path)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and not (tmp_path / "report.html").exists()


CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary on this machine")
def test_chromium_renders_the_table_and_charts_offline(run_dir):
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            (run_dir / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rendered = Page(dom)
    assert len(rendered.rows) == 3
    assert sum(tag in ("svg", "canvas") for tag, _ in rendered.tags) >= 2


SWEEP = """
[experiment]
name = "hundred"
seed = 1
seeds = [0, 1, 2, 3, 4]

[data]
expr = "x**2"
n = 64
split = { val = 0.25 }

[model]
layers = [1, 8, 1]

[optimizer]
name = "sgd"

[train]
epochs = 40

[sweep]
"optimizer.name" = ["sgd", "adam", "rmsprop", "lion"]
"optimizer.lr" = [0.001, 0.003, 0.01, 0.03, 0.1]
"""


@pytest.mark.slow
def test_a_100_run_sweeps_page_stays_under_5_mb(tmp_path):
    (tmp_path / "e.toml").write_text(textwrap.dedent(SWEEP))
    result = invoke(tmp_path / "e.toml", "--out", tmp_path / "out", "-q", "--jobs", "2")
    assert result.exit_code == 0, result.output
    page = tmp_path / "out" / "report.html"
    assert len(json.loads((tmp_path / "out" / "summary.json").read_text())["runs"]) == 100
    assert page.stat().st_size < 5 * 1024 * 1024
    assert len(Page(page.read_text(encoding="utf-8")).rows) == 20  # one per group
