#!/usr/bin/env python3
"""Independent check of `volley ab decide --json` under repeated looks (stdlib only).

Given a campaign whose test share has gone out, with its tracked click links per variant,
this clicks a seeded random selection of them in batches (a look after each batch), runs
`volley ab decide CAMPAIGN --json` at every look, and checks the verdict against its own
implementation of the mixture SPRT of Johari, Koomen, Pekelis & Walsh ("Always Valid
Inference", 2015/2022): Lambda = sqrt(V/(V+t2)) * exp(t2*d^2 / (2V(V+t2))), p = min(1, 1/Lambda),
confidence sequence d -/+ sqrt(V(V+t2)/t2 * (2 ln(1/a) + ln((V+t2)/V))), with
V = sum p~(1-p~)/n, p~ = (s+1/2)/(n+1), t2 = mixture_sd^2.

Usage: ab-check-sequential.py VOLLEY CAMPAIGN_TOML TRACKING_ADDR CLICKS_JSON
  [--rates A=0.1,B=0.45] [--looks 5] [--seed 7] [--mixture-sd 0.05] [--min-lift 0.01]
CLICKS_JSON: {"A": ["/c/...", ...], "B": [...]} (one tracked link per delivered message).
Prints one line per look; exits 1 at the first disagreement.
"""

import argparse
import http.client
import json
import math
import random
import subprocess
import sys

BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/130.0 Safari/537.36")


def msprt(s1, n1, s2, n2, tau, alpha):
    """(lift, p, (low, high)) for sample 1 against sample 2."""
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0, (-1.0, 1.0)
    lift = s1 / n1 - s2 / n2
    v = sum(((s + 0.5) / (n + 1)) * (1 - (s + 0.5) / (n + 1)) / n for s, n in ((s1, n1), (s2, n2)))
    t2 = tau * tau
    log_lambda = 0.5 * math.log(v / (v + t2)) + t2 * lift * lift / (2 * v * (v + t2))
    p = min(1.0, math.exp(-log_lambda))
    r = math.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + math.log((v + t2) / v)))
    return lift, p, (max(-1.0, lift - r), min(1.0, lift + r))


def click(addr, path):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers={"User-Agent": BROWSER})
        status = conn.getresponse().status
    finally:
        conn.close()
    if status != 302:
        raise SystemExit(f"click {path}: HTTP {status}, expected a 302 redirect")


def decide(volley, campaign):
    out = subprocess.run([volley, "ab", "decide", campaign, "--json"], capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        raise SystemExit(f"volley ab decide failed ({out.returncode}): {out.stderr}")
    return json.loads(out.stdout)


def close(a, b, what, look):
    if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
        raise SystemExit(f"look {look}: {what}: volley says {a!r}, this check {b!r}")


def check(verdict, args, look):
    """Checks one verdict against the independent computation; returns a short summary."""
    alpha = 1 - verdict["confidence"]
    if verdict["method"] != "sequential":
        raise SystemExit(f"look {look}: method {verdict['method']!r}, expected sequential")
    variants = verdict["variants"]
    short = [v for v in variants if v["trials"] < args.min_per_variant]
    if short:
        if verdict["verdict"] != "inconclusive" or verdict["stop"] is not None:
            raise SystemExit(f"look {look}: a winner or a stop below min_per_variant")
        return "too few"
    ranked = sorted(variants, key=lambda v: -v["rate"])  # stable: first on a tie
    leader = ranked[0]
    k = len(variants)
    pairs = k * (k - 1) // 2
    comparisons = {c["other"]: c for c in verdict["comparisons"]}
    worst = 0.0
    for other in ranked[1:]:
        lift, p, (low, high) = msprt(leader["successes"], leader["trials"], other["successes"],
                                     other["trials"], args.mixture_sd, alpha / pairs)
        c = comparisons.get(other["id"])
        if c is None or c["leader"] != leader["id"]:
            raise SystemExit(f"look {look}: no comparison of {leader['id']} with {other['id']}")
        close(c["lift"], lift, "lift", look)
        close(c["p_value"], min(1.0, p * pairs), "always-valid p", look)
        close(c["ci_low"], low, "confidence sequence, low", look)
        close(c["ci_high"], high, "confidence sequence, high", look)
        worst = max(worst, min(1.0, p * pairs))
    wins = worst <= alpha and leader["rate"] > ranked[1]["rate"]
    futile = not wins and all(
        -args.min_lift < c["ci_low"] and c["ci_high"] < args.min_lift for c in comparisons.values())
    expected = "winner" if wins else ("futility" if futile else None)
    if verdict["stop"] not in (expected, "max_wait" if expected is None else expected):
        raise SystemExit(f"look {look}: stop {verdict['stop']!r}, this check says {expected!r}")
    if wins != (verdict["winner"] == leader["id"]):
        raise SystemExit(f"look {look}: winner {verdict['winner']!r}, this check says "
                         f"{leader['id'] if wins else None!r}")
    return f"{'winner ' + leader['id'] if wins else ('futility' if futile else 'inconclusive')}, p = {worst:.4g}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("volley")
    ap.add_argument("campaign")
    ap.add_argument("tracking")
    ap.add_argument("clicks")
    ap.add_argument("--rates", default="A=0.1,B=0.45")
    ap.add_argument("--looks", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mixture-sd", type=float, default=0.05)
    ap.add_argument("--min-lift", type=float, default=0.01)
    ap.add_argument("--min-per-variant", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with open(args.clicks) as f:
        links = json.load(f)
    rates = dict((k, float(v)) for k, v in (kv.split("=") for kv in args.rates.split(",")))
    # Who clicks, decided once; their clicks arrive spread over the looks.
    clickers = {vid: [l for l in paths if rng.random() < rates[vid]] for vid, paths in links.items()}
    for vid in clickers:
        rng.shuffle(clickers[vid])
    said = []
    for look in range(1, args.looks + 1):
        for vid, paths in clickers.items():
            start = len(paths) * (look - 1) // args.looks
            end = len(paths) * look // args.looks
            for path in paths[start:end]:
                click(args.tracking, path)
        verdict = decide(args.volley, args.campaign)
        counts = ", ".join(f"{v['id']} {v['successes']}/{v['trials']}" for v in verdict["variants"])
        summary = check(verdict, args, look)
        said.append(summary)
        print(f"look {look}: {counts}: {summary} (volley: {verdict['verdict']}, stop {verdict['stop']}) agrees")
    print(f"{args.looks} looks agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
