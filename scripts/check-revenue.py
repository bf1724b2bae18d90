#!/usr/bin/python3
"""Independent check of `volley ab decide --json` on conversions and revenue, with scipy.

Usage: check-revenue.py ORDERS.csv ARMS.csv DECIDE.json

ORDERS.csv is what was imported (`email`, `order_id`, `value`, ...); ARMS.csv names the
variant each delivered recipient got (`email`, `variant`); DECIDE.json is the output of
`volley ab decide CAMPAIGN --json`. For each variant the script rebuilds revenue per recipient
(the sum of its orders, 0 for recipients without one; the first row of an order id counts, as
in Volley) and checks, against scipy:

- the conversion rate and its Wilson interval (`binomtest(...).proportion_ci("wilson")`);
- revenue per recipient and its interval: a t interval (`t.interval`) when Volley says
  `welch`, a percentile bootstrap (`scipy.stats.bootstrap`, 20,000 resamples) when it says
  `bootstrap` (within 10 % of the interval's width plus 1 % of the mean: Monte Carlo error);
- with two variants and metric `revenue`, Welch's test (`ttest_ind(equal_var=False)`): the
  p-value and |t|;
- with a holdout (ARMS.csv names its recipients `holdout`): the holdout's own figures as
  above, and each variant's lift over it: the difference in conversion rate with Newcombe's
  hybrid score interval (built from scipy's Wilson limits), and the difference in revenue
  per recipient with Welch's interval (Welch–Satterthwaite degrees of freedom, `t.ppf`) or a
  two-sample percentile bootstrap.

Exit 0 when everything agrees, 1 with every disagreement listed otherwise.
"""

import csv
import json
import sys

import numpy as np
import scipy
from scipy import stats

CLOSE = 1e-6


def read_orders(path):
    seen = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                value = float(row["value"])
            except ValueError:
                continue
            if value < 0 or not row.get("order_id"):
                continue
            seen.setdefault(row["order_id"], (row["email"].strip().lower(), value))
    return seen.values()


def check_lift(decide, samples, confidence, check):
    """Each variant minus the holdout: conversion rate (Newcombe) and revenue per recipient."""
    h = samples["holdout"]
    for variant in decide["variants"]:
        vid = variant["id"]
        a = samples[vid]
        lift = variant["lift"]
        ka, na, kh, nh = int((a > 0).sum()), len(a), int((h > 0).sum()), len(h)
        pa, ph = ka / na, kh / nh
        la, ua = stats.binomtest(ka, na).proportion_ci(confidence, method="wilson")
        lh, uh = stats.binomtest(kh, nh).proportion_ci(confidence, method="wilson")
        rate = lift["conversion_rate"]
        check(f"{vid} lift in conversion rate", rate["value"], pa - ph, CLOSE)
        check(f"{vid} lift in conversion rate low", rate["low"],
              pa - ph - np.sqrt((pa - la) ** 2 + (uh - ph) ** 2), CLOSE)
        check(f"{vid} lift in conversion rate high", rate["high"],
              pa - ph + np.sqrt((ua - pa) ** 2 + (ph - lh) ** 2), CLOSE)
        rev = lift["revenue_per_recipient"]
        diff = a.mean() - h.mean()
        check(f"{vid} lift in revenue per recipient", rev["value"], diff, CLOSE)
        if rev["method"] == "welch":
            va, vh = a.var(ddof=1) / na, h.var(ddof=1) / nh
            df = (va + vh) ** 2 / (va ** 2 / (na - 1) + vh ** 2 / (nh - 1))
            half = stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(va + vh)
            low, high, tolerance = diff - half, diff + half, CLOSE
        else:
            boot = stats.bootstrap((a, h), lambda x, y, axis: x.mean(axis) - y.mean(axis),
                                   confidence_level=confidence, n_resamples=20000,
                                   method="percentile", random_state=7)
            low, high = boot.confidence_interval
            tolerance = 0.10 * (high - low) + 0.01 * abs(diff)
        print(f"    {vid} over the holdout: revenue interval by {rev['method']}")
        check(f"{vid} lift in revenue per recipient low", rev["low"], low, tolerance)
        check(f"{vid} lift in revenue per recipient high", rev["high"], high, tolerance)


def main(orders_path, arms_path, decide_path):
    with open(arms_path, newline="") as f:
        arm_of = {r["email"].strip().lower(): r["variant"] for r in csv.DictReader(f)}
    with open(decide_path) as f:
        decide = json.load(f)
    confidence = decide["confidence"]
    spend = {}
    for email, value in read_orders(orders_path):
        if email in arm_of:
            spend[email] = spend.get(email, 0.0) + value
    problems = []

    def check(what, volley, expected, tolerance):
        ok = abs(volley - expected) <= tolerance
        print(f"{'ok ' if ok else 'BAD'} {what}: volley {volley:.6f}, scipy {expected:.6f}")
        if not ok:
            problems.append(what)

    samples = {}
    arms = list(decide["variants"])
    if decide.get("holdout"):
        arms.append(dict(decide["holdout"], id="holdout"))
    for variant in arms:
        vid, n = variant["id"], variant["recipients"]
        values = [v for e, v in spend.items() if arm_of[e] == vid]
        k = len(values)
        sample = np.array(values + [0.0] * (n - k))
        samples[vid] = sample
        conv = variant["conversions"]
        check(f"{vid} converting recipients", conv["recipients"], k, 0)
        ci = stats.binomtest(k, n).proportion_ci(confidence, method="wilson")
        check(f"{vid} conversion rate", conv["rate"]["value"], k / n, CLOSE)
        check(f"{vid} conversion rate low", conv["rate"]["low"], ci.low, CLOSE)
        check(f"{vid} conversion rate high", conv["rate"]["high"], ci.high, CLOSE)
        rev = variant["revenue"]
        check(f"{vid} revenue total", rev["total"], sample.sum(), 1e-6)
        per = rev["per_recipient"]
        mean = sample.mean()
        check(f"{vid} revenue per recipient", per["value"], mean, CLOSE)
        if per["method"] == "welch":
            low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=stats.sem(sample))
            tolerance = CLOSE
        else:
            boot = stats.bootstrap((sample,), np.mean, confidence_level=confidence,
                                   n_resamples=20000, method="percentile", random_state=7)
            low, high = boot.confidence_interval
            tolerance = 0.10 * (high - low) + 0.01 * mean
        print(f"    {vid}: {k} of {n} converted, interval by {per['method']}")
        check(f"{vid} revenue per recipient low", per["low"], low, tolerance)
        check(f"{vid} revenue per recipient high", per["high"], high, tolerance)

    if "holdout" in samples:
        check_lift(decide, samples, confidence, check)

    if decide["metric"] == "revenue" and len(decide["variants"]) == 2 and decide.get("p_value") is not None:
        a, b = (samples[v["id"]] for v in decide["variants"])
        test = stats.ttest_ind(a, b, equal_var=False)
        check("Welch p-value", decide["p_value"], test.pvalue, CLOSE)
        check("Welch |t|", abs(decide["z"]), abs(test.statistic), CLOSE)

    print(f"scipy {scipy.__version__}: {len(problems)} disagreement(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
