"""Reports: PNG plots (matplotlib, Agg backend) and a self-contained HTML page.

matplotlib is imported inside the functions that draw, so ``import lstmkit`` stays fast and the
package works without it until a plot is asked for. Every file is written atomically (temp + rename).

- :func:`~lstmkit.reports.plots.plot_forecasts` — history, forecast and interval of a few series
- :func:`~lstmkit.reports.plots.plot_training` — training (and validation) loss per epoch
- :func:`~lstmkit.reports.plots.plot_metrics` — sMAPE per model (and group)
- :func:`~lstmkit.reports.html.write_report` — one HTML file with the table and the PNGs embedded
"""

from __future__ import annotations

from lstmkit.reports.html import write_report
from lstmkit.reports.plots import plot_forecasts, plot_metrics, plot_training

__all__ = ["plot_forecasts", "plot_training", "plot_metrics", "write_report"]
