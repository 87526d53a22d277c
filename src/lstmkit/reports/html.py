"""A self-contained HTML report: one file, the PNGs embedded as base64, inline CSS, no external assets."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

# Metrics where a smaller value is better; the best model per group is marked on these.
LOWER_IS_BETTER = ("sMAPE", "MASE", "MAE", "RMSE", "CRPS")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#666;font-size:.85rem}
table{border-collapse:collapse;font-size:.9rem;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .7rem;border-bottom:1px solid #eee;text-align:right} th{background:#f5f5f5}
td.l,th.l{text-align:left} td.best{font-weight:700;color:#0a6d0a} tr.lstm td{background:#f3f8fd}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0} ul{padding-left:1.2rem} code{background:#f5f5f5;padding:0 .2rem}
"""


def best_mask(table: pd.DataFrame) -> pd.DataFrame:
    """Booleans, same shape as ``table``: True where a lower-is-better metric is its group's minimum."""
    mask = pd.DataFrame(False, index=table.index, columns=table.columns)
    keys = table["group"] if "group" in table.columns else pd.Series("all", index=table.index)
    for col in LOWER_IS_BETTER:
        if col not in table.columns:
            continue
        vals = pd.to_numeric(table[col], errors="coerce")
        best = vals.groupby(keys).transform("min")
        rivals = vals.notna().groupby(keys).transform("sum")  # a metric only one model has (CRPS) has no winner
        mask[col] = vals.notna() & (vals == best) & (rivals >= 2)
    return mask


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.1f}"
    return str(v)


def table_html(table: pd.DataFrame) -> str:
    """The metrics table as an HTML table; the best value per group on lower-is-better metrics in bold."""
    mask = best_mask(table)
    head = "".join(f'<th class="{"l" if not _numeric(table[c]) else ""}">{html.escape(str(c))}</th>' for c in table.columns)
    body = []
    for i, row in table.iterrows():
        cls = ' class="lstm"' if row.get("model") == "lstm" else ""
        cells = []
        for c in table.columns:
            klass = ["l"] if not _numeric(table[c]) else []
            if mask.at[i, c]:
                klass.append("best")
            attr = f' class="{" ".join(klass)}"' if klass else ""
            cells.append(f"<td{attr}>{html.escape(_fmt(row[c]))}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col)


def _image_html(name: str, path: str | Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    alt = html.escape(name)
    return f'<h2>{alt}</h2>\n<img alt="{alt}" src="data:image/png;base64,{data}">'


def write_report(
    path: str | Path,
    title: str,
    metrics_table: pd.DataFrame | str | None = None,
    images: Mapping[str, str | Path] | None = None,
    notes: str | Sequence[str] = (),
) -> Path:
    """Write one self-contained HTML page: title, notes, the metrics table and the images.

    Args:
        metrics_table: a DataFrame (rendered as a table; the best per group marked on lower-is-better
            metrics) or preformatted text.
        images: section title → PNG path; each PNG is embedded as base64 (no link to the file).
        notes: a paragraph, or a list of lines shown as bullet points (paths, settings, timings).
    """
    from lstmkit import __version__
    from lstmkit.training.checkpoint import atomic_write_bytes

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">lstmkit {html.escape(__version__)} · '
        f"{_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}</p>",
    ]
    if isinstance(notes, str):
        parts.append(f"<p>{html.escape(notes)}</p>")
    elif notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>")
    if metrics_table is not None:
        parts.append("<h2>Metrics</h2>")
        if isinstance(metrics_table, pd.DataFrame):
            parts.append('<p class="meta">Lower is better for ' + ", ".join(c for c in LOWER_IS_BETTER if c in metrics_table.columns)
                         + "; the best per group is in bold green.</p>")  # fmt: skip
            parts.append(table_html(metrics_table))
        else:
            parts.append(f"<pre>{html.escape(str(metrics_table))}</pre>")
    for name, img in (images or {}).items():
        parts.append(_image_html(name, img))
    parts.append("</body></html>\n")
    path = Path(path)
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))
    return path
