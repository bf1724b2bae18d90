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
  p-value and |t|.

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
    for variant in decide["variants"]:
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

    if decide["metric"] == "revenue" and len(samples) == 2 and decide.get("p_value") is not None:
        a, b = samples.values()
        test = stats.ttest_ind(a, b, equal_var=False)
        check("Welch p-value", decide["p_value"], test.pvalue, CLOSE)
        check("Welch |t|", abs(decide["z"]), abs(test.statistic), CLOSE)

    print(f"scipy {scipy.__version__}: {len(problems)} disagreement(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
