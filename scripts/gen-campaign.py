#!/usr/bin/env python3
"""Writes a benchmark campaign's inputs into WORK: list.csv (N recipients over DOMAINS
domains, d0.example … with first_name and city), zone.txt (an MX for each domain, spread
over HOSTS MX host names under SUFFIX, all on 127.0.0.1) and the bodies.

    scripts/gen-campaign.py WORK N DOMAINS HOSTS [--suffix bench.test] [--size 10k|1k]

--size 10k (default): body.html and body.txt, about 10 KB in all, personalised.
--size 1k: body.txt only, about 1 KB.
"""
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("work")
parser.add_argument("recipients", type=int)
parser.add_argument("domains", type=int)
parser.add_argument("hosts", type=int)
parser.add_argument("--suffix", default="bench.test")
parser.add_argument("--size", choices=["10k", "1k"], default="10k")
args = parser.parse_args()
work = args.work

if args.size == "10k":
    para = "Volley delivers every message personalised, signed and on time. " * 80
    with open(f"{work}/body.html", "w") as f:
        f.write("<html><body><h1>Hello {{ first_name }}</h1><p>News for {{ city }}.</p><p>"
                + para + "</p></body></html>\n")
    text = para[:4000]
else:
    text = "Volley at scale. " * 60
with open(f"{work}/body.txt", "w") as f:
    f.write("Hello {{ first_name }},\nNews for {{ city }}.\n" + text + "\n")
with open(f"{work}/list.csv", "w") as f:
    f.write("email,first_name,city\n")
    for i in range(args.recipients):
        f.write(f"user{i}@d{i % args.domains}.example,Name{i},City{i % 37}\n")
with open(f"{work}/zone.txt", "w") as f:
    f.write("$TTL 3600\n")
    for h in range(args.hosts):
        f.write(f"mx{h}.{args.suffix} A 127.0.0.1\n")
    for d in range(args.domains):
        f.write(f"d{d}.example MX 10 mx{d % args.hosts}.{args.suffix}\n")
