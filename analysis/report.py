"""One self-contained HTML page with every table and figure: `ktbench report`.

Figures are embedded as base64 PNG, styles inline, nothing fetched: the file can be mailed or
archived on its own. A small inline script marks the page once every image has loaded
(`<body data-images-ok="true" data-images-loaded="N/M">`), which the browser test reads back.
"""
import base64
import datetime as dt
import html
from pathlib import Path

import pandas as pd

from analysis.figures import FIGURES, FigureData, png_bytes
from analysis.table_names import TABLE_NAMES
from analysis.tables import format_cell, sql_caption, table_source

_TITLES = {
    "success_rate": "Success rate per method",
    "success_rate_by_family": "Success rate per method and student family",
    "success_rate_per_student": "Success per student",
    "success_rate_by_dataset": "Success rate and transfer delta per dataset",
    "probes": "Linear probes: each model's head fitted on another dataset",
    "methods_vs_controls": "Methods beside control arms and the ensemble oracle",
    "gain_over_controls": "Gain beyond the controls, pair by pair, with paired tests",
    "seed_spread": "Training noise: spread across seeds",
    "paper_reference": "The paper's numbers beside this run's",
    "full_imagenet": "Per-student transfer delta (the paper's \u201cfull ImageNet\u201d table)",
    "delta_by_ts_diff": "Transfer delta by accuracy difference, fixed bins",
    "delta_by_ts_diff_curve": "Transfer delta by accuracy difference, 8 bins, upper quartile",
    "correlations": "Correlation of the transfer delta with model properties",
    "multi_teacher": "Multi-teacher transfer",
    "multi_teacher_vs_teachers": "Each multi-teacher run against its own teachers alone",
    "multi_teacher_epochs": "Multi-teacher transfer epoch by epoch",
    "knowledge_gain_loss": "Knowledge gain against knowledge loss per student family",
    "dp_supervision": "Supervised against unsupervised data partitioning, paired",
    "gain_size": "How large the gains are",
    "matched_students": "Students that differ in one property",
    "matched_students_by_property": "Students that differ in one property, summed up",
    "random_init_flips": "Complementary knowledge of a randomly initialised teacher",
    "pair_deltas": "Every pair",
    "complementary_knowledge": "Complementary knowledge",
    "complementary_knowledge_by_ts_diff": "Complementary knowledge by accuracy difference",
    "class_concentration": "Per-class concentration",
    "class_similarity": "Class-name similarity of the top-p% classes",
    "transfer_rate_by_top_classes": "Transfer rate by top-X% classes",
    "transfer_rate_by_student_params": "Transfer rate by student size",
    "run_status": "Run outcomes",
    "runs_not_ok": "Diverged and failed runs",
    "provenance": "Provenance",
}
_FIGURE_TITLES = {
    "complementary_knowledge": "Complementary knowledge vs accuracy difference (paper Fig. 1)",
    "class_histograms": "Per-class complementary knowledge: weaker, equal, stronger teacher",
    "entropy": "Entropy of per-class complementary knowledge vs \u03c1_pos",
    "success_rate": "Success rate per method",
    "delta_by_ts_diff": "Transfer delta vs accuracy difference",
    "transfer_rate_top_classes": "Transfer rate vs top-X% classes",
    "transfer_rate_student_params": "Transfer rate vs student size",
    "correlations": "Correlations with the transfer delta",
    "methods_vs_controls": "Methods, controls and the ensemble oracle",
    "class_similarity": "Class-name similarity of the top-X% classes",
    "knowledge_gain_loss": "Knowledge gain and loss per student family",
    "multi_teacher_epochs": "Multi-teacher transfer epoch by epoch",
    "matched_students": "Students that differ in one property",
}
# Tables shown next to each figure; the rest follow in the tables section.
_SECTIONS = [
    ("The paper beside this run", ["paper_reference"], []),
    ("Knowledge transfer", ["success_rate", "methods_vs_controls", "gain_over_controls",
                            "seed_spread", "success_rate_by_family",
                            "success_rate_by_dataset", "probes", "full_imagenet",
                            "gain_size", "delta_by_ts_diff", "delta_by_ts_diff_curve",
                            "correlations", "matched_students_by_property", "matched_students",
                            "knowledge_gain_loss",
                            "dp_supervision"],
     ["success_rate", "methods_vs_controls", "delta_by_ts_diff", "correlations",
      "matched_students", "knowledge_gain_loss"]),
    ("Multi-teacher transfer", ["multi_teacher", "multi_teacher_vs_teachers",
                                "multi_teacher_epochs"], ["multi_teacher_epochs"]),
    ("Complementary knowledge", ["complementary_knowledge", "complementary_knowledge_by_ts_diff",
                                 "random_init_flips", "class_concentration", "class_similarity"],
     ["complementary_knowledge", "class_histograms", "entropy", "class_similarity"]),
    ("Where transfer lands", ["transfer_rate_by_top_classes", "transfer_rate_by_student_params"],
     ["transfer_rate_top_classes", "transfer_rate_student_params"]),
    ("Runs", ["run_status", "runs_not_ok", "success_rate_per_student", "pair_deltas"], []),
]

_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #1d1d1f; background: #fff; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { font-size: 1.35rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.4rem; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .3rem; }
p.caption { color: #57606a; font-size: .88rem; margin: .2rem 0 .6rem; }
table { border-collapse: collapse; font-size: .84rem; margin: .4rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; }
th { background: #f3f5f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafbfc; }
.scroll { overflow-x: auto; }
figure { margin: 1rem 0 1.8rem; }
figure img { max-width: 100%; border: 1px solid #e1e4e8; }
figcaption { color: #57606a; font-size: .88rem; }
.empty { color: #8b949e; font-style: italic; }
p.note { background: #fff8c5; border: 1px solid #d4a72c; padding: .4rem .7rem; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: .15rem 1.2rem; }
dl.prov dt { font-weight: 600; } dl.prov dd { margin: 0; }
nav a { margin-right: .9rem; }
"""

_SCRIPT = """
(function () {
  function check() {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
    document.body.setAttribute('data-images-loaded', ok.length + '/' + imgs.length);
    document.body.setAttribute('data-images-ok', String(imgs.length > 0 && ok.length === imgs.length));
  }
  check();
  window.addEventListener('load', check);
})();
"""


def _html_table(df: pd.DataFrame) -> str:
    if df.empty:
        return '<p class="empty">No rows yet.</p>'
    numeric = [pd.api.types.is_numeric_dtype(t) for t in df.dtypes]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for row in df.itertuples(index=False):
        cells = "".join(f'<td{" class=num" if n else ""}>{html.escape(format_cell(v))}</td>'
                        for v, n in zip(row, numeric))
        rows.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _table_block(name: str, df: pd.DataFrame) -> str:
    return (f'<section id="table-{name}"><h3>{html.escape(_TITLES.get(name, name))} '
            f'<code>{table_source(name)}</code></h3>'
            f'<p class="caption">{html.escape(sql_caption(name))}</p>{_html_table(df)}</section>')


def _figure_block(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    title = html.escape(_FIGURE_TITLES.get(name, name))
    doc = html.escape((FIGURES[name].__doc__ or "").strip())
    return (f'<figure id="figure-{name}"><img alt="{title}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{title}.</b> {doc}</figcaption></figure>")


def render_report(results_dir) -> str:
    """The report's HTML text, from one snapshot of the results folder."""
    data = FigureData(results_dir)
    tables = data.tables
    provenance = tables["provenance"]
    prov = "".join(f"<dt>{html.escape(str(i))}</dt><dd>{html.escape(format_cell(v)) or '–'}</dd>"
                   for i, v in zip(provenance["item"], provenance["value"]))
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    seeds = dict(zip(provenance["item"], provenance["value"])).get("training seeds per pair")
    body = [f"<h1>ktbench report</h1><p class=caption>Results folder "
            f"<code>{html.escape(str(Path(results_dir).resolve()))}</code>, rendered {now}. "
            f"Figures show dataset <b>{html.escape(str(data.dataset or '–'))}</b>. Every table is "
            f"one SQL file in <code>analysis/sql/</code>; averages use ok runs only, diverged and "
            f"failed runs are counted beside them. Success rates and mean deltas carry 95% "
            f"bootstrap intervals (<code>_lo</code>, <code>_hi</code>; <code>ci95_over</code> "
            f"names what was resampled).</p>",
            *([f'<p class="note">Training seeds per pair: {html.escape(seeds)}. The intervals '
               f"show how the numbers vary over pairs and students, not how one training run "
               f"varies from the next (<code>ktbench plan --seeds 0,1,2</code>).</p>"]
              if seeds and seeds.startswith("1 (") else []),
            '<nav>' + "".join(f'<a href="#section-{i}">{html.escape(title)}</a>'
                              for i, (title, _, _) in enumerate(_SECTIONS)) + "</nav>",
            f'<section id="provenance"><h2>Provenance</h2><dl class="prov">{prov}</dl></section>']
    shown = {"provenance"}
    for i, (title, names, figures) in enumerate(_SECTIONS):
        body.append(f'<section id="section-{i}"><h2>{html.escape(title)}</h2>')
        for name in figures:
            fig = FIGURES[name](data)
            body.append(_figure_block(name, png_bytes(fig)))
        for name in names:
            body.append(_table_block(name, tables[name]))
            shown.add(name)
        body.append("</section>")
    drawn = {f for _, _, figures in _SECTIONS for f in figures}
    extra = [f for f in FIGURES if f not in drawn]
    if extra:
        body.append('<section id="section-figures"><h2>More figures</h2>'
                    + "".join(_figure_block(f, png_bytes(FIGURES[f](data))) for f in extra)
                    + "</section>")
    rest = [n for n in TABLE_NAMES if n not in shown]
    if rest:
        body.append('<section id="section-more"><h2>More tables</h2>'
                    + "".join(_table_block(n, tables[n]) for n in rest) + "</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>ktbench report</title><style>{_STYLE}</style></head>"
            f"<body data-images-ok=\"false\">{''.join(body)}"
            f"<script>{_SCRIPT}</script></body></html>\n")


def build_report(results_dir, out_file) -> Path:
    """Write the report to `out_file` (its folder is created); returns the path."""
    path = Path(out_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(results_dir), encoding="utf-8")
    return path
