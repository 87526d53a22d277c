"""M3 competition benchmark: lstmkit's Forecaster vs. Theta, ETS, seasonal naive and Naive2.

All 3003 series, the official train/test split and horizons (Yearly 6, Quarterly 8, Monthly 18,
Other 8), one global model per category with the Forecaster's default configuration. sMAPE (M3
definition) and MASE per category and overall (the "All" column averages every forecast point, the
M3 convention), next to the published numbers (Oreshkin et al. 2020, Table 14) and to statsforecast's
Theta and AutoETS run in this same script, with wall times (fit + predict).

    python benchmarks/forecast_m3.py                   # everything (ETS takes a few minutes)
    python benchmarks/forecast_m3.py --categories monthly --no-ets
    python benchmarks/forecast_m3.py --ensemble 5      # the ensemble preset
    python benchmarks/forecast_m3.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from lstmkit.data import datasets
from lstmkit.tasks import baselines
from lstmkit.tasks.forecaster import Forecaster
from lstmkit.training import metrics

CATEGORIES = ("yearly", "quarterly", "monthly", "other")
PUBLISHED = {  # sMAPE; Oreshkin et al. 2020 (N-BEATS), Table 14
    "Naive2 (published)": {"yearly": 17.88, "quarterly": 9.95, "monthly": 16.91, "other": 6.30, "all": 15.47},
    "Theta (published)": {"yearly": 16.90, "quarterly": 8.96, "monthly": 13.85, "other": 4.41, "all": 13.01},
    "ForecastPro (published)": {"yearly": 17.14, "quarterly": 9.77, "monthly": 13.86, "other": 4.60, "all": 13.19},
    "N-BEATS (published)": {"yearly": 15.93, "quarterly": 8.84, "monthly": 13.11, "other": 4.24, "all": 12.37},
}


def actual_matrix(ds, ids) -> np.ndarray:
    test = ds.test.assign(k=ds.test.groupby("unique_id").cumcount())
    return test.pivot(index="unique_id", columns="k", values="y").loc[list(ids)].to_numpy(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--categories", default=",".join(CATEGORIES))
    ap.add_argument("--no-ets", action="store_true", help="skip AutoETS (the slowest baseline)")
    ap.add_argument("--ensemble", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("LSTMKIT_THREADS", 2)))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a Forecaster parameter")
    ap.add_argument("--json", help="write all results to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.processor())
    print(f"# M3 benchmark — {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads")
    print(f"# Forecaster(ensemble={args.ensemble}, seed={args.seed}, {overrides or 'defaults'})\n")

    models = ["lstmkit", "theta", *([] if args.no_ets else ["ets"]), "seasonal_naive", "naive2"]
    rows = {m: {} for m in models}
    points = {m: [] for m in models}
    seconds = {m: {} for m in models}
    for cat in args.categories.split(","):
        ds = datasets.load(f"m3-{cat}")
        H, m = ds.horizon, ds.season_length
        t0 = time.perf_counter()
        f = Forecaster(H, season_length=m, ensemble=args.ensemble, seed=args.seed, **overrides)
        f.fit(ds.df[["unique_id", "ds", "y"]])
        fc = {"lstmkit": f.predict(output="array")[..., 0]}
        seconds["lstmkit"][cat] = time.perf_counter() - t0
        hist = f.panel_.y.astype(np.float64)
        y = actual_matrix(ds, f.panel_.ids)
        for name, fn in (("theta", baselines.theta), ("ets", baselines.ets)):
            if name in models:
                t0 = time.perf_counter()
                fc[name] = fn(hist, H, m, n_jobs=args.threads)
                seconds[name][cat] = time.perf_counter() - t0
        fc["seasonal_naive"] = baselines.seasonal_naive(hist, H, m)
        fc["naive2"] = baselines.naive2(hist, H, m)
        scale = metrics.mase_scale(hist, m)
        for name in models:
            rows[name][cat] = {"smape": metrics.smape(y, fc[name]), "mase": metrics.mase(y, fc[name], scale)}
            points[name].append((y, fc[name], scale))
        line = "  ".join(f"{n} {rows[n][cat]['smape']:.2f}" for n in models)
        print(f"{cat:<9} (N={len(y)}, h={H}): {line}  | lstmkit {seconds['lstmkit'][cat]:.1f} s", flush=True)

    for name in models:  # "All": every forecast point of every category, as in the M3 tables
        num = sum(float(np.nansum(200 * np.abs(y - f_) / (np.abs(y) + np.abs(f_)))) for y, f_, _ in points[name])
        cnt = sum(int(np.isfinite(y).sum()) for y, _, _ in points[name])
        mase_all = np.concatenate([np.abs(y - f_).mean(1) / s for y, f_, s in points[name]])
        rows[name]["all"] = {"smape": num / cnt, "mase": float(np.nanmean(mase_all))}
        seconds[name]["all"] = sum(seconds[name].values())

    cats = args.categories.split(",") + ["all"]
    print("\n| sMAPE | " + " | ".join(c.capitalize() for c in cats) + " | wall s (all) |")
    print("|---|" + "---|" * (len(cats) + 1))
    for name in models:
        wall = f"{seconds[name]['all']:.1f}" if seconds[name] else ""
        print(f"| {name} | " + " | ".join(f"{rows[name][c]['smape']:.2f}" for c in cats) + f" | {wall} |")
    if set(cats) >= set(CATEGORIES):
        for name, vals in PUBLISHED.items():
            print(f"| {name} | " + " | ".join(f"{vals[c]:.2f}" for c in cats) + " | |")
    print("\n| MASE | " + " | ".join(c.capitalize() for c in cats) + " |")
    print("|---|" + "---|" * len(cats))
    for name in models:
        print(f"| {name} | " + " | ".join(f"{rows[name][c]['mase']:.3f}" for c in cats) + " |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "seconds": seconds, "args": vars(args)}, fh, indent=2)


if __name__ == "__main__":
    main()
