#!/usr/bin/env python3
"""
fleetgen2.py - independent synthetic generator of AI-agent fleet activity logs.

A second opinion next to fleetgen.py: written by a session that read neither src/sim,
fleetgen.py nor the detectors, from the detection issue's description of fleets and
attacks alone, with its own roles, schedules, size mixtures (second modes, Pareto
tails) and noise (expired tokens, broken deploys, rate limits, retries). Score it
with fleetscore.py as fleetgen.py's output.

Produces JSON-lines events (sorted by time) plus a labels file of injected
attacks (exfiltration, slow_exfiltration, runaway, first_access) and, for the
"change" scenario, a file describing legitimate (unlabelled) changes.

stdlib only; deterministic for a given --seed.

    python3 fleetgen2.py --seed 101 --agents 120 --days 14 --scenario attacks \
        --out a101.jsonl --labels a101-labels.json [--changes c.json] [--noise n.json]
"""
import argparse
import bisect
import heapq
import json
import math
import random
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from operator import itemgetter

T0_DT = datetime(2026, 5, 4, tzinfo=timezone.utc)  # a Monday
DAY = 86400.0
OUTCOMES = ("success", "failure", "denied")
INF = 1e18

# ---------------------------------------------------------------------------
# Catalogue: system kinds -> action templates
# (action, weight, direction, median payload bytes)
# direction: 0 = payload comes in (bytes_in), 1 = payload goes out (bytes_out),
#            2 = both (bytes_out payload, bytes_in a fraction), 3 = none (tiny)
# ---------------------------------------------------------------------------
KIND_ACTIONS = {
    "saas": [("read", 40, 0, 12e3), ("search", 25, 0, 8e3), ("list", 12, 0, 5e3),
             ("update", 14, 1, 3e3), ("write", 8, 1, 6e3), ("delete", 1, 3, 0)],
    "ticket": [("read", 35, 0, 9e3), ("search", 20, 0, 7e3), ("write", 15, 1, 4e3),
               ("update", 25, 1, 2e3), ("list", 5, 0, 5e3)],
    "search": [("search", 85, 0, 25e3), ("read", 15, 0, 40e3)],
    "db": [("read", 45, 0, 35e3), ("search", 15, 0, 12e3), ("list", 8, 0, 3e3),
           ("write", 18, 1, 5e3), ("update", 14, 1, 1.5e3)],
    "bucket": [("read", 38, 0, 900e3), ("write", 25, 1, 700e3), ("list", 32, 0, 10e3),
               ("delete", 5, 3, 0)],
    "feed": [("read", 70, 0, 400e3), ("list", 30, 0, 6e3)],
    "api": [("read", 50, 0, 5e3), ("write", 25, 1, 3e3), ("update", 10, 1, 1.5e3),
            ("list", 15, 0, 4e3)],
    "api_read": [("read", 60, 0, 30e3), ("search", 40, 0, 20e3)],
    "email": [("tool_call:send_email", 75, 1, 14e3), ("read", 25, 0, 30e3)],
    "chat": [("tool_call:post_message", 55, 1, 900), ("read", 30, 0, 7e3),
             ("search", 15, 0, 9e3)],
    "translate": [("tool_call:translate", 100, 2, 2.5e3)],
    "webhook": [("tool_call:http_post", 100, 1, 6e3)],
    "repo": [("read", 35, 0, 22e3), ("search", 14, 0, 9e3), ("list", 14, 0, 6e3),
             ("write", 16, 1, 9e3), ("update", 10, 1, 3e3),
             ("tool_call:create_pr", 6, 1, 5e3), ("tool_call:git_clone", 5, 0, 8e6)],
    "ci": [("tool_call:trigger_build", 30, 1, 1.2e3), ("read", 50, 0, 60e3),
           ("list", 20, 0, 5e3)],
    "artifact": [("read", 50, 0, 4e6), ("write", 20, 1, 5e6), ("list", 30, 0, 8e3)],
    "doc": [("read", 45, 0, 55e3), ("search", 30, 0, 12e3), ("write", 13, 1, 25e3),
            ("update", 12, 1, 9e3)],
    "k8s": [("list", 28, 0, 22e3), ("read", 35, 0, 14e3),
            ("tool_call:kubectl_logs", 15, 0, 250e3),
            ("tool_call:kubectl_apply", 8, 1, 6e3), ("update", 8, 1, 3e3),
            ("tool_call:kubectl_exec", 6, 2, 2e3)],
    "exec": [("tool_call:run_code", 60, 2, 5e3), ("tool_call:run_tests", 40, 0, 45e3)],
    "registry": [("read", 70, 0, 1.5e6), ("search", 30, 0, 15e3)],
    "llm": [("tool_call:llm_complete", 90, 2, 9e3), ("tool_call:embed", 10, 2, 4e3)],
    "warehouse": [("write", 45, 1, 3e6), ("tool_call:run_query", 35, 0, 400e3),
                  ("read", 20, 0, 1.2e6)],
    "stream": [("read", 60, 0, 600e3), ("write", 40, 1, 350e3)],
    "payment": [("read", 40, 0, 3e3), ("tool_call:create_payment", 15, 1, 1.5e3),
                ("list", 30, 0, 12e3), ("update", 10, 1, 1e3),
                ("tool_call:refund", 5, 1, 1e3)],
    "calendar": [("read", 50, 0, 6e3), ("tool_call:create_event", 30, 1, 2e3),
                 ("update", 20, 1, 1.5e3)],
    "websearch": [("tool_call:web_search", 100, 0, 35e3)],
    "webfetch": [("tool_call:http_get", 85, 0, 180e3), ("tool_call:http_post", 15, 1, 4e3)],
    "esign": [("tool_call:send_envelope", 40, 1, 250e3), ("read", 60, 0, 20e3)],
    "metrics": [("read", 50, 0, 40e3), ("search", 30, 0, 30e3), ("list", 20, 0, 8e3)],
    "pager": [("read", 60, 0, 5e3), ("tool_call:ack_incident", 25, 1, 600),
              ("update", 15, 1, 1e3)],
    "logs": [("search", 75, 0, 150e3), ("read", 25, 0, 70e3)],
    "secrets": [("read", 85, 0, 1.2e3), ("list", 15, 0, 2.5e3)],
    "iam": [("read", 50, 0, 6e3), ("list", 40, 0, 15e3), ("update", 10, 1, 2e3)],
    "iac": [("tool_call:tf_plan", 60, 0, 80e3), ("tool_call:tf_apply", 15, 1, 20e3),
            ("read", 25, 0, 30e3)],
    "cloudapi": [("list", 45, 0, 30e3), ("read", 40, 0, 8e3), ("update", 15, 1, 2e3)],
    "admin": [("read", 50, 0, 10e3), ("list", 35, 0, 20e3), ("update", 15, 1, 2e3)],
}

SYSTEM_KIND = {
    # support
    "zendesk": "saas", "kb.search": "search", "crm": "saas", "prod.db.orders": "db",
    "billing.invoices": "saas", "email.gateway": "email", "slack": "chat",
    "shipping.api": "api", "translate.api": "translate", "webhooks.partner": "webhook",
    "llm.api": "llm", "s3://support-attachments": "bucket",
    # coding
    "github": "repo", "jira": "ticket", "ci.jenkins": "ci", "artifactory": "artifact",
    "confluence": "doc", "k8s.staging": "k8s", "sandbox.exec": "exec", "sentry": "api",
    "staging.db.app": "db", "npm.registry": "registry", "pypi": "registry",
    # data / etl
    "prod.db.customers": "db", "prod.db.events": "db", "warehouse.snowflake": "warehouse",
    "s3://datalake-raw": "bucket", "s3://datalake-curated": "bucket",
    "kafka.events": "stream", "airflow": "api", "analytics.db": "db", "dbt.cloud": "api",
    # finance
    "payments.api": "payment", "finance.ledger": "db", "erp.netsuite": "saas",
    "bank.statements": "feed", "tax.service": "api", "gdrive": "doc",
    "expense.tool": "saas", "finance.reports": "doc", "finance.treasury": "admin",
    # sales
    "calendar": "calendar", "web.search": "websearch", "linkedin.api": "api_read",
    "docusign": "esign", "cpq.quotes": "saas", "hubspot": "saas",
    # it-ops
    "k8s.prod": "k8s", "monitoring.datadog": "metrics", "pagerduty": "pager",
    "logs.elastic": "logs", "vault.secrets": "secrets", "iam.roles": "iam",
    "terraform.cloud": "iac", "cloud.aws.ec2": "cloudapi", "dns.route53": "cloudapi",
    "statuspage": "api", "admin.console": "admin",
    # research
    "web.fetch": "webfetch", "arxiv.api": "api_read", "s3://research-datasets": "bucket",
    "notebook.jupyter": "exec", "wiki.internal": "doc",
    # hr
    "hr.workday": "saas", "hr.payroll": "saas", "ats.greenhouse": "saas",
    "hr.benefits": "saas", "lms.training": "saas",
    # security monitoring
    "siem.splunk": "logs", "iam.audit": "logs", "edr.crowdstrike": "api",
    "cloudtrail": "logs", "vault.audit": "logs", "threatintel.api": "api_read",
    # exploration pool (never in role lists)
    "pubmed.api": "api_read", "s3://public-datasets": "bucket", "huggingface.hub": "registry",
    "kaggle.api": "api_read", "patents.api": "api_read", "news.api": "api_read",
    "sec.filings.api": "api_read", "wikipedia.api": "api_read", "dockerhub": "registry",
    "stackoverflow.api": "api_read", "readthedocs": "api_read", "grafana": "metrics",
    "staging.db.sandbox": "db", "s3://shared-scratch": "bucket", "crates.io": "registry",
    "maven.central": "registry", "cloud.gcp.compute": "cloudapi",
    "status.cloudflare": "api_read",
    # sensitive systems nobody in a role uses routinely (first_access targets)
    "iam.admin": "admin", "secrets.manager": "secrets", "prod.db.payments": "db",
    "billing.admin": "admin", "hr.compensation": "saas",
    # rolled out in the change scenario
    "docs.notion": "doc",
}

EXPLORE_POOLS = {
    "research": ["pubmed.api", "s3://public-datasets", "huggingface.hub", "kaggle.api",
                 "patents.api", "news.api", "sec.filings.api", "wikipedia.api"],
    "coding": ["dockerhub", "stackoverflow.api", "readthedocs", "grafana",
               "staging.db.sandbox", "s3://shared-scratch", "crates.io", "maven.central"],
    "itops": ["grafana", "cloud.gcp.compute", "status.cloudflare", "s3://shared-scratch"],
    "other": ["wiki.internal", "confluence", "gdrive", "calendar", "s3://shared-scratch"],
}

CROSS_POOL = ["slack", "jira", "confluence", "gdrive", "calendar", "github", "web.search",
              "llm.api", "wiki.internal", "email.gateway", "crm"]

EXTRA_SENSITIVE = ["iam.admin", "admin.console", "secrets.manager", "finance.treasury",
                   "prod.db.payments", "billing.admin", "hr.compensation"]

# per-kind error-rate multipliers (flaky external services fail more)
KIND_ERR = {"webfetch": 6.0, "websearch": 2.0, "llm": 3.0, "translate": 2.0,
            "webhook": 3.0, "api_read": 2.0, "ci": 2.5, "iac": 2.0, "registry": 1.5}

ROLE_DEFS = {
    "support": dict(
        code="support", share=0.15, calls_day=1300, pace=(3, 20), sess=8,
        sched=[("diurnal", 0.6), ("office", 0.4)], explore=0.05,
        systems=[("zendesk", 10, 1), ("kb.search", 8, 1), ("crm", 5, 0),
                 ("prod.db.orders", 4, 0), ("billing.invoices", 2, 0),
                 ("email.gateway", 4, 0), ("slack", 1, 0), ("shipping.api", 2, 0),
                 ("translate.api", 1, 0), ("webhooks.partner", 0.6, 0), ("llm.api", 3, 0),
                 ("s3://support-attachments", 1, 0)],
        teams=["support-emea", "support-amer", "support-apac", "cx-escalations",
               "support-tier2"], size_f={}),
    "coding": dict(
        code="code", share=0.18, calls_day=500, pace=(2, 15), sess=22,
        sched=[("office", 0.75), ("irregular", 0.25)], explore=0.7,
        systems=[("github", 10, 1), ("jira", 4, 0), ("ci.jenkins", 4, 0),
                 ("artifactory", 1.5, 0), ("confluence", 2, 0), ("k8s.staging", 1.5, 0),
                 ("sandbox.exec", 6, 0), ("sentry", 1, 0), ("staging.db.app", 1.5, 0),
                 ("npm.registry", 1, 0), ("pypi", 1, 0), ("llm.api", 4, 0), ("slack", 1, 0)],
        teams=["platform", "checkout-dev", "mobile", "web-frontend", "infra-tools",
               "search-dev"], size_f={}),
    "etl": dict(
        code="etl", share=0.11, calls_day=700, pace=(8, 30), sess=20,
        sched=[("batch", 0.85), ("diurnal", 0.15)], explore=0.02,
        systems=[("warehouse.snowflake", 8, 1), ("prod.db.orders", 6, 0),
                 ("prod.db.customers", 3, 0), ("prod.db.events", 6, 0),
                 ("s3://datalake-raw", 5, 0), ("s3://datalake-curated", 4, 0),
                 ("kafka.events", 3, 0), ("airflow", 1, 1), ("analytics.db", 2, 0),
                 ("dbt.cloud", 1, 0)],
        teams=["data-eng", "analytics", "ml-platform", "bi-team"],
        size_f={"db": 25.0, "bucket": 2.0}),
    "finance": dict(
        code="fin", share=0.10, calls_day=250, pace=(0.5, 6), sess=10,
        sched=[("office", 0.75), ("batch", 0.25)], explore=0.05,
        systems=[("billing.invoices", 6, 1), ("payments.api", 4, 0), ("finance.ledger", 5, 0),
                 ("erp.netsuite", 5, 0), ("email.gateway", 2, 0), ("bank.statements", 1, 0),
                 ("tax.service", 1, 0), ("gdrive", 2, 0), ("expense.tool", 2, 0),
                 ("finance.reports", 2, 0), ("finance.treasury", 0.5, 0), ("slack", 1, 0)],
        teams=["billing-ops", "accounting", "fp-and-a", "treasury-ops"], size_f={}),
    "sales": dict(
        code="sales", share=0.13, calls_day=220, pace=(0.3, 5), sess=7,
        sched=[("office", 0.9), ("irregular", 0.1)], explore=0.1,
        systems=[("crm", 10, 1), ("email.gateway", 6, 0), ("calendar", 3, 0),
                 ("web.search", 3, 0), ("gdrive", 2, 0), ("slack", 1, 0),
                 ("linkedin.api", 2, 0), ("docusign", 0.5, 0), ("cpq.quotes", 1.5, 0),
                 ("hubspot", 3, 0), ("llm.api", 2, 0)],
        teams=["sales-na", "sales-eu", "partnerships", "growth", "sales-apac"], size_f={}),
    "itops": dict(
        code="ops", share=0.11, calls_day=500, pace=(1, 10), sess=6,
        sched=[("poller", 0.45), ("diurnal", 0.25), ("office", 0.30)], explore=0.4,
        systems=[("monitoring.datadog", 8, 1), ("k8s.prod", 8, 0), ("k8s.staging", 3, 0),
                 ("pagerduty", 2, 0), ("logs.elastic", 6, 0), ("vault.secrets", 2, 0),
                 ("iam.roles", 1, 0), ("terraform.cloud", 1.5, 0), ("github", 2, 0),
                 ("slack", 2, 0), ("cloud.aws.ec2", 3, 0), ("dns.route53", 0.5, 0),
                 ("statuspage", 0.5, 0), ("admin.console", 0.3, 0)],
        teams=["sre", "it-helpdesk", "netops", "cloud-ops"], size_f={}),
    "research": dict(
        code="research", share=0.10, calls_day=380, pace=(2, 20), sess=16,
        sched=[("irregular", 0.6), ("office", 0.4)], explore=1.0,
        systems=[("web.search", 10, 1), ("web.fetch", 10, 1), ("arxiv.api", 3, 0),
                 ("confluence", 2, 0), ("gdrive", 2, 0), ("s3://research-datasets", 2, 0),
                 ("notebook.jupyter", 3, 0), ("llm.api", 5, 0), ("wiki.internal", 2, 0),
                 ("slack", 1, 0)],
        teams=["research", "strategy", "ml-research", "market-intel"], size_f={}),
    "hr": dict(
        code="hr", share=0.05, calls_day=120, pace=(0.2, 3), sess=6,
        sched=[("office", 1.0)], explore=0.05,
        systems=[("hr.workday", 8, 1), ("hr.payroll", 3, 0), ("ats.greenhouse", 5, 0),
                 ("calendar", 3, 0), ("email.gateway", 4, 0), ("gdrive", 2, 0),
                 ("slack", 1, 0), ("hr.benefits", 2, 0), ("lms.training", 1, 0)],
        teams=["people-ops", "recruiting", "talent"], size_f={}),
    "secmon": dict(
        code="secmon", share=0.07, calls_day=1100, pace=(2, 12), sess=8,
        sched=[("poller", 0.8), ("diurnal", 0.2)], explore=0.1,
        systems=[("siem.splunk", 10, 1), ("logs.elastic", 6, 0), ("iam.audit", 4, 0),
                 ("edr.crowdstrike", 3, 0), ("cloudtrail", 5, 0), ("vault.audit", 2, 0),
                 ("jira", 1, 0), ("slack", 1, 0), ("threatintel.api", 2, 0)],
        teams=["secops", "detection", "soc"], size_f={}),
}

FIRST = ["maria", "james", "aiko", "lena", "omar", "priya", "diego", "sofia", "chen", "noah",
         "fatima", "lukas", "amara", "ivan", "grace", "mateo", "yuki", "hannah", "ravi",
         "elena", "kwame", "ines", "tomas", "zoe", "arjun", "clara", "felix", "nadia",
         "samir", "julia", "oskar", "mei", "pablo", "anya", "leo", "sara"]
LAST = ["rossi", "smith", "tanaka", "schmidt", "haddad", "sharma", "garcia", "moreau",
        "wang", "johnson", "ali", "novak", "okafor", "petrov", "kim", "lopez", "sato",
        "becker", "iyer", "costa", "mensah", "silva", "horvat", "dubois", "patel", "meyer",
        "nielsen", "khan", "bauer", "ferreira", "lindqvist", "zhang", "ruiz", "ivanova"]

# UTC offsets in May (DST applied), weighted
TZS = [(-7, 3), (-4, 4), (-5, 2), (-3, 1), (1, 4), (2, 4), (3, 1), (5.5, 2), (8, 2),
       (9, 1), (10, 1)]


def is_sensitive(s):
    return (s.startswith("hr.") or "payroll" in s or "finance" in s or s.startswith("iam")
            or "admin" in s or "secret" in s or "vault" in s or s.startswith("prod.db")
            or "payment" in s)


def wchoice(rng, items):
    """items: list of (value, weight)."""
    tot = sum(w for _, w in items)
    u = rng.random() * tot
    acc = 0.0
    for v, w in items:
        acc += w
        if u < acc:
            return v
    return items[-1][0]


def poisson(rng, lam):
    if lam <= 0:
        return 0
    if lam < 40:
        lim = math.exp(-lam)
        k = 0
        p = rng.random()
        while p > lim:
            k += 1
            p *= rng.random()
        return k
    return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))


def loguniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def make_fmt(days):
    daystr = [(T0_DT + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days + 3)]

    def fmt(ms):
        d, r = divmod(ms, 86400000)
        h, r = divmod(r, 3600000)
        m, r = divmod(r, 60000)
        s, r = divmod(r, 1000)
        return f"{daystr[d]}T{h:02d}:{m:02d}:{s:02d}.{r:03d}Z"
    return fmt


class Agent:
    pass


# ---------------------------------------------------------------------------
# Fleet design
# ---------------------------------------------------------------------------
def make_pairs(rng, ag, system):
    """Per-(action,system) behaviour of one agent: list of pair tuples + weights."""
    kind = SYSTEM_KIND[system]
    tmpl = KIND_ACTIONS[kind]
    role_sf = ROLE_DEFS[ag.role]["size_f"].get(kind, 1.0)
    read_only = rng.random() < 0.3
    kerr = KIND_ERR.get(kind, 1.0) * math.exp(0.5 * rng.gauss(0, 1))
    out, ws = [], []
    for act, w, dcode, med in tmpl:
        if act == "delete" and (system.startswith("prod") or rng.random() < 0.5):
            continue
        if read_only and act in ("write", "update", "delete") and len(tmpl) > 1:
            continue
        if dcode == 3:
            med_a = 1.0
        else:
            med_a = med * role_sf * ag.size_f * math.exp(0.5 * rng.gauss(0, 1))
            med_a = max(200.0, med_a)
        sg = ag.width * rng.uniform(0.8, 1.25)
        p_tail = rng.uniform(0.003, 0.03)
        alpha = rng.uniform(1.1, 2.2)
        inv_alpha = 1.0 / alpha
        tail_cut = 1.0 - 100.0 ** (-alpha)  # Pareto truncated at 100x its scale
        if rng.random() < 0.35:
            p_bi = rng.uniform(0.05, 0.25)
            bishift = math.log(rng.uniform(3.0, 10.0))
        else:
            p_bi, bishift = 0.0, 0.0
        perr = min(0.25, ag.err * kerr)
        out.append((act, system, dcode, math.log(med_a), sg, p_tail, inv_alpha, p_bi,
                    bishift, perr, ag.deny, med_a, tail_cut))
        ws.append(w * rng.gammavariate(1.5, 1 / 1.5))
    if not out:  # everything filtered: keep the first non-delete action
        act, w, dcode, med = [x for x in tmpl if x[0] != "delete"][0]
        med_a = max(200.0, med * role_sf * ag.size_f)
        out.append((act, system, dcode, math.log(med_a), ag.width, 0.01, 0.6, 0.0, 0.0,
                    ag.err, ag.deny, med_a, 0.99))
        ws.append(1.0)
    return out, ws


def cum(ws):
    c, acc = [], 0.0
    for w in ws:
        acc += w
        c.append(acc)
    return c


def build_epoch(ag, weights):
    names = list(weights)
    sw = [weights[n] for n in names]
    tabs = []
    for n in names:
        prs, pw = ag.pairs[n]
        tabs.append((prs, cum(pw)))
    return (names, cum(sw), tabs)


def pick_tz(rng):
    return wchoice(rng, TZS)


def build_fleet(rng, n_agents, days):
    roles = list(ROLE_DEFS)
    shares = [ROLE_DEFS[r]["share"] for r in roles]
    tot = sum(shares)
    raw = [n_agents * s / tot for s in shares]
    counts = [int(x) for x in raw]
    order = sorted(range(len(roles)), key=lambda i: -(raw[i] - counts[i]))
    for i in order[: n_agents - sum(counts)]:
        counts[i] += 1

    used_people = set()

    def person():
        while True:
            f, l = rng.choice(FIRST), rng.choice(LAST)
            if (f, l) not in used_people:
                used_people.add((f, l))
                return f"{f}.{l}@corp.example"

    teams = []
    for role, cnt in zip(roles, counts):
        names = list(ROLE_DEFS[role]["teams"])
        rng.shuffle(names)
        left, k = cnt, 0
        while left > 0:
            size = min(left, rng.randint(2, 7))
            if left - size == 1:
                size += 1
            nm = names[k % len(names)]
            if k >= len(names):
                nm = f"{nm}-{k // len(names) + 1}"
            k += 1
            tsys = [f"s3://{nm}"]
            SYSTEM_KIND.setdefault(tsys[0], "bucket")
            if rng.random() < 0.6:
                tsys.append(f"svc.{nm}")
                SYSTEM_KIND.setdefault(tsys[1], "api")
            teams.append(dict(name=nm, role=role, size=size, tz=pick_tz(rng),
                              owner=person(), systems=tsys, members=[]))
            left -= size

    agents = []
    role_num = Counter()
    for team in teams:
        for _ in range(team["size"]):
            ag = Agent()
            ag.role = team["role"]
            role_num[ag.role] += 1
            ag.aid = f"agt-{ROLE_DEFS[ag.role]['code']}-{role_num[ag.role]}"
            ag.team = team
            agents.append(ag)
    # mixed teams: ~10% of agents belong to a team of another role
    for ag in agents:
        if rng.random() < 0.10:
            others = [t for t in teams if t["role"] != ag.role]
            if others:
                ag.team = rng.choice(others)
    for i, ag in enumerate(agents):
        ag.idx = i
        ag.owner = ag.team["owner"]
        ag.team["members"].append(ag)
        setup_agent(rng, ag, days)
    return agents, teams


def setup_agent(rng, ag, days):
    rd = ROLE_DEFS[ag.role]
    team = ag.team
    # ---- behaviour parameters
    ag.size_f = math.exp(0.6 * rng.gauss(0, 1))
    ag.width = rng.uniform(0.35, 1.3)
    ag.small_mu = math.log(rng.uniform(250, 1500))
    ag.err = min(0.05, 0.005 * math.exp(0.8 * rng.gauss(0, 1)))
    ag.deny = min(0.02, 0.0015 * math.exp(0.9 * rng.gauss(0, 1)))
    ag.retry_p = rng.uniform(0.4, 0.95)
    ag.max_retry = rng.randint(1, 4)
    ag.backoff = rng.uniform(0.5, 3.0)
    ag.pace = loguniform(rng, *rd["pace"])
    ag.calls_day = rd["calls_day"] * math.exp(0.6 * rng.gauss(0, 1))
    ag.sess_med = max(1.0, rd["sess"] * math.exp(0.4 * rng.gauss(0, 1)))
    ag.sess_sg = rng.uniform(0.5, 1.0)
    ag.gap_sg = rng.uniform(0.5, 1.2)
    ag.stick = rng.uniform(0.4, 0.85)
    ag.repeat_p = rng.uniform(0.05, 0.3)
    ag.day_sig = rng.uniform(0.1, 0.3)
    ag.join_t = 0.0
    ag.retire_t = INF
    ag.jobchange_t = INF
    ag.episodes = []
    ag.explore_plan = []
    ag.bulk_plan = []
    ag.creds = [(-INF, f"cred-{ag.aid}-a")]
    ag.sys_cred = {}
    ag.epoch_events = []  # (t, system, share)

    # ---- systems
    breadth = rng.uniform(0.35, 0.9)
    w = {}
    for name, bw, core in rd["systems"]:
        p = breadth * (0.55 + 0.45 * min(1.0, bw / 6.0))
        if core or rng.random() < p:
            w[name] = bw * rng.gammavariate(0.8, 1.25) + 0.05
    for name in team["systems"]:
        if rng.random() < 0.55:
            w[name] = rng.uniform(0.4, 4.0)
    if rng.random() < 0.15:
        other = [s for s in CROSS_POOL if s not in w]
        if other:
            w[rng.choice(other)] = rng.uniform(0.2, 1.0)
    pool = [s for s, _, _ in rd["systems"]] + team["systems"]
    while len(w) < 3:
        cand = [s for s in pool if s not in w]
        w[rng.choice(cand)] = rng.uniform(0.3, 2.0)
    if len(w) > 15:
        cores = {s for s, _, c in rd["systems"] if c}
        for s in sorted((s for s in w if s not in cores), key=lambda s: w[s])[: len(w) - 15]:
            del w[s]
    ag.base_weights = w
    ag.pairs = {}
    for s in w:
        ag.pairs[s] = make_pairs(rng, ag, s)
    # a persistent permission misconfiguration on one pair
    # (on a minor system: a broken permission on a hot path would get fixed quickly)
    minor = sorted(w, key=lambda s: -w[s])[3:]
    if minor and rng.random() < 0.12:
        s = rng.choice(minor)
        prs, pw = ag.pairs[s]
        j = rng.randrange(len(prs))
        p = list(prs[j])
        p[10] = rng.uniform(0.1, 0.4)
        prs[j] = tuple(p)
        ag.misconfig = (s, p[0], p[10])
    else:
        ag.misconfig = None

    # ---- schedule
    st = wchoice(rng, rd["sched"])
    tz = team["tz"] if rng.random() < 0.8 else pick_tz(rng)
    sch = dict(type=st, tz=tz, shift_t=INF, shift_h=0.0)
    if st == "office":
        sch.update(start=rng.uniform(7.5, 10.0), length=rng.uniform(7.0, 10.5),
                   lunch=rng.random() < 0.7, bg=rng.uniform(0.003, 0.03),
                   eve=rng.uniform(0.0, 0.15), eve_len=rng.uniform(1.0, 3.0))
        u = rng.random()
        sch["wkend"] = (rng.uniform(0, 0.03) if u < 0.6 else
                        rng.uniform(0.03, 0.15) if u < 0.9 else rng.uniform(0.2, 0.5))
    elif st == "diurnal":
        sch.update(amp=rng.uniform(0.1, 0.85), peak=rng.uniform(11, 16),
                   wkf=rng.uniform(0.5, 1.0))
    elif st == "irregular":
        sch.update(p_active=rng.uniform(0.3, 0.85), pref_start=rng.uniform(0, 24),
                   pref_span=rng.uniform(8, 20))
    elif st == "batch":
        if ag.role == "finance":
            n_runs = 1
            first_local = rng.uniform(19, 23.5)
        else:
            n_runs = rng.choice([1, 1, 1, 2, 2, 3, 4])
            first_local = rng.uniform(0.5, 5.0)
        sch["runs"] = [((first_local + k * 24.0 / n_runs - tz) % 24.0) * 3600.0
                       for k in range(n_runs)]
        sch["weekdays_only"] = rng.random() < 0.25
        sch["micro"] = (rng.random() < 0.25)
        sch["micro_off"] = rng.uniform(0, 3600)
        ag.stick = rng.uniform(0.6, 0.9)
        ag.repeat_p = rng.uniform(0.3, 0.6)
        ag.gap_sg = rng.uniform(0.3, 0.6)
        ag.day_sig = rng.uniform(0.08, 0.2)
    elif st == "poller":
        cyc = rng.randint(1, 3)
        sch["period"] = min(900.0, max(20.0, 86400.0 * cyc / ag.calls_day))
        top = sorted(w, key=lambda s: -w[s])[:cyc]
        pp = []
        for s in top:
            prs, pw = ag.pairs[s]
            reads = [(p, x) for p, x in zip(prs, pw) if p[2] == 0]
            pp.append(max(reads, key=lambda z: z[1])[0] if reads else prs[0])
        sch["poll_pairs"] = pp
        sch["inc_rate"] = rng.uniform(0.1, 0.5)
        ag.day_sig = rng.uniform(0.05, 0.12)
    ag.sched = sch

    # day-to-day variation
    df = []
    for d in range(days + 1):
        f = math.exp(ag.day_sig * rng.gauss(0, 1))
        u = rng.random()
        if u < 0.025:
            f *= rng.uniform(1.8, 3.0)
        elif u < 0.05:
            f *= rng.uniform(0.1, 0.4)
        df.append(f)
    ag.dayf = df
    ag.backfill_days = {d for d in range(days) if rng.random() < 0.04}


def finalize_epochs(ag):
    w = dict(ag.base_weights)
    ag.epochs = [build_epoch(ag, w)]
    ag.epoch_starts = [-INF]
    for t, s, share in sorted(ag.epoch_events, key=itemgetter(0)):
        tot = sum(w.values())
        w = dict(w)
        w[s] = tot * share / (1.0 - share)
        ag.epochs.append(build_epoch(ag, w))
        ag.epoch_starts.append(t)
    ag.ever = set(w)  # every system the agent will ever be configured for
    for _, s, _ in ag.explore_plan:
        ag.ever.add(s)


# ---------------------------------------------------------------------------
# Noise and changes planning
# ---------------------------------------------------------------------------
def plan_noise(rng, agents, days, H):
    noise = []
    for ag in agents:
        lo, hi = max(ag.join_t, 0.5 * DAY), min(ag.retire_t, H)
        if hi - lo < DAY:
            continue
        if rng.random() < 0.12:  # expired token: denials + retries, then new credential
            a = rng.uniform(lo, hi)
            b = a + rng.uniform(10, 120) * 60
            ag.episodes.append((a, b, "token", None, 1.0))
            letter = chr(ord("a") + len(ag.creds))
            ag.creds.append((b, f"cred-{ag.aid}-{letter}"))
            noise.append(dict(kind="expired_token", agent_id=ag.aid, start=a, end=b))
        if rng.random() < 0.15:  # broken deploy: many errors
            a = rng.uniform(lo, hi)
            b = a + rng.uniform(20, 240) * 60
            s = rng.choice(list(ag.base_weights)) if rng.random() < 0.4 else None
            rate = rng.uniform(0.3, 0.9)
            ag.episodes.append((a, b, "deploy", s, rate))
            noise.append(dict(kind="broken_deploy", agent_id=ag.aid, start=a, end=b,
                              system=s, rate=round(rate, 2)))
        if rng.random() < 0.12:  # rate limited on one system
            a = rng.uniform(lo, hi)
            b = a + rng.uniform(5, 30) * 60
            s = rng.choice(list(ag.base_weights))
            rate = rng.uniform(0.4, 0.7)
            ag.episodes.append((a, b, "ratelimit", s, rate))
            noise.append(dict(kind="rate_limited", agent_id=ag.aid, start=a, end=b,
                              system=s, rate=round(rate, 2)))
        if rng.random() < 0.25:  # planned credential rotation
            a = rng.uniform(lo, hi)
            letter = chr(ord("a") + len(ag.creds))
            ag.creds.append((a, f"cred-{ag.aid}-{letter}"))
        ag.creds.sort(key=itemgetter(0))
        if rng.random() < 0.15:  # separate credential for one sensitive system
            sens = [s for s in ag.base_weights if is_sensitive(s)]
            if sens:
                s = rng.choice(sens)
                ag.sys_cred[s] = f"cred-{ag.aid}-{s.split('.')[0].split(':')[0]}"
        # legit bulk transfers (exports, reports, backfills)
        nb = (1 if rng.random() < 0.3 else 0) + (1 if rng.random() < 0.08 else 0)
        for _ in range(nb):
            a = rng.uniform(lo, hi)
            ag.bulk_plan.append((a, rng.randint(1, 6), rng.uniform(4, 15)))
        # exploration of new non-sensitive systems
        rate = ROLE_DEFS[ag.role]["explore"] * days / 14.0
        pool = EXPLORE_POOLS.get(ag.role, EXPLORE_POOLS["other"])
        for _ in range(poisson(rng, rate)):
            cand = [s for s in pool if s not in ag.base_weights and
                    all(s != e[1] for e in ag.explore_plan)]
            if not cand:
                break
            s = rng.choice(cand)
            a = rng.uniform(lo, hi)
            n = rng.randint(1, 8)
            ag.explore_plan.append((a, s, n))
            ag.pairs[s] = make_pairs(rng, ag, s)
            adopt = rng.random() < 0.4
            if adopt:
                ag.epoch_events.append((a + 1.0, s, rng.uniform(0.02, 0.08)))
            noise.append(dict(kind="exploration", agent_id=ag.aid, start=a, system=s,
                              calls=n, adopted=adopt))
    for ag in agents:
        for a, n, m in ag.bulk_plan:
            noise.append(dict(kind="legit_bulk_transfer", agent_id=ag.aid, start=a,
                              calls=n, mult=round(m, 1)))
    # fleet-wide blips of shared systems
    use = Counter(s for ag in agents for s in ag.base_weights)
    shared = [(s, c) for s, c in sorted(use.items()) if c >= 5]
    sysfail = {}
    for _ in range(max(2, days // 4)):
        if not shared:
            break
        s = wchoice(rng, shared)
        a = rng.uniform(0.5 * DAY, H - DAY)
        b = a + rng.uniform(5, 40) * 60
        rate = rng.uniform(0.2, 0.6)
        sysfail.setdefault(s, []).append((a, b, rate, False))
        noise.append(dict(kind="shared_system_blip", system=s, start=a, end=b,
                          rate=round(rate, 2)))
    return noise, sysfail


def plan_changes(rng, agents, days, H, sysfail):
    changes = []
    pool = list(agents)
    rng.shuffle(pool)
    taken = set()

    def take(pred, n):
        out = []
        for ag in pool:
            if len(out) >= n:
                break
            if ag.aid not in taken and pred(ag):
                out.append(ag)
                taken.add(ag.aid)
        return out

    # agents joining mid-stream
    for ag in take(lambda a: a.sched["type"] != "poller", 4):
        ag.join_t = rng.uniform(5, 15) * DAY + rng.uniform(0, DAY)
        ag.join_t = math.floor(ag.join_t / DAY) * DAY + rng.uniform(0.2, 0.6) * DAY
        changes.append(dict(kind="agent_joined", agents=[ag.aid], start=ag.join_t, end=H,
                            system=None, detail=f"new {ag.role} agent of {ag.owner} "
                            f"starts operating (permanent)"))
    # one retired agent
    for ag in take(lambda a: True, 1):
        ag.retire_t = rng.uniform(12, 16) * DAY
        changes.append(dict(kind="agent_retired", agents=[ag.aid], start=ag.retire_t, end=H,
                            system=None, detail="agent decommissioned, no activity afterwards"))
    # job changes: pace x2, sizes x3
    for ag in take(lambda a: True, 8):
        ag.jobchange_t = rng.uniform(6, 16) * DAY
        changes.append(dict(kind="job_change", agents=[ag.aid], start=ag.jobchange_t, end=H,
                            system=None, detail="job changed for good: call pace x2, "
                            "transfer sizes x3 (permanent)"))
    # working-day shifts of office agents
    for ag in take(lambda a: a.sched["type"] == "office", 6):
        h = rng.choice([-4, -3, -2, 2, 3, 4]) * 1.0
        ag.sched["shift_t"] = math.floor(rng.uniform(7, 15)) * DAY
        ag.sched["shift_h"] = h
        changes.append(dict(kind="schedule_shift", agents=[ag.aid], start=ag.sched["shift_t"],
                            end=H, system=None,
                            detail=f"working day shifted by {h:+.0f}h (permanent)"))
    # new system rolled out to ~60% of agents over 1-2 days
    sysname = "docs.notion"
    r_start = 8 * DAY + rng.uniform(12, 15) * 3600
    r_len = rng.uniform(24, 48) * 3600
    cand = [a for a in agents if a.join_t == 0.0 and a.retire_t == INF
            and a.sched["type"] != "poller"]
    rng.shuffle(cand)
    n_roll = min(len(cand), int(round(0.6 * len(agents))))
    per_agent = {}
    for ag in cand[:n_roll]:
        t = r_start + rng.uniform(0, r_len)
        ag.pairs[sysname] = make_pairs(rng, ag, sysname)
        ag.epoch_events.append((t, sysname, rng.uniform(0.05, 0.25)))
        per_agent[ag.aid] = t
    changes.append(dict(kind="new_system_rollout", agents=sorted(per_agent), start=r_start,
                        end=r_start + r_len, system=sysname,
                        detail=f"{sysname} rolled out to {len(per_agent)} agents; each "
                        "uses it from its adoption time on", per_agent_adoption=per_agent))
    # outage of the most shared system
    use = Counter(s for ag in agents for s in ag.base_weights)
    top = max(sorted(use), key=lambda s: use[s])
    a = 11 * DAY + rng.uniform(13, 16) * 3600
    b = a + rng.uniform(60, 120) * 60
    sysfail.setdefault(top, []).append((a, b, 1.0, True))
    users = sorted(ag.aid for ag in agents if top in ag.base_weights)
    changes.append(dict(kind="outage", agents=users, start=a, end=b, system=top,
                        detail=f"{top} unavailable; calls fail with errors and are retried"))
    return changes, taken


# ---------------------------------------------------------------------------
# Normal traffic
# ---------------------------------------------------------------------------
def sched_value(sch, t):
    lt = t + sch["tz"] * 3600.0
    if t >= sch["shift_t"]:
        lt -= sch["shift_h"] * 3600.0
    ld = math.floor(lt / DAY)
    wd = ld % 7
    h = (lt - ld * DAY) / 3600.0
    if sch["type"] == "office":
        if wd < 5:
            s = sch["start"]
            e = s + sch["length"]
            if s <= h < e:
                if h < s + 0.5:
                    return 0.6
                if sch["lunch"] and s + 3.5 <= h < s + 4.5:
                    return 0.5
                return 1.0
            if e <= h < e + sch["eve_len"]:
                return sch["bg"] + sch["eve"]
            return sch["bg"]
        if 10 <= h < 17:
            return sch["bg"] + sch["wkend"]
        return sch["bg"]
    # diurnal
    v = 1.0 + sch["amp"] * math.cos(2 * math.pi * (h - sch["peak"]) / 24.0)
    if wd >= 5:
        v *= sch["wkf"]
    return v


def gen_normal(ag, H, days, sysfail, seed, gday):
    rng = random.Random(f"{seed}/traffic/{ag.aid}")
    rnd = rng.random
    gauss = rng.gauss
    expf = math.exp
    bis = bisect.bisect_right
    ev = []
    app = ev.append
    t_lo = ag.join_t
    t_hi = min(H, ag.retire_t)
    eps = ag.episodes
    ep_lo = min((e[0] for e in eps), default=INF)
    ep_hi = max((e[1] for e in eps), default=-INF)
    small_mu = ag.small_mu
    retry_p, max_retry, backoff = ag.retry_p, ag.max_retry, ag.backoff
    jc_t = ag.jobchange_t
    sysfail_get = sysfail.get
    epochs, ep_starts = ag.epochs, ag.epoch_starts
    skey_ctr = [0]

    def new_skey():
        skey_ctr[0] += 1
        return skey_ctr[0]

    def outcome(t, sysname, perr, pdeny):
        if ep_lo <= t < ep_hi:
            for a, b, kind, s, rate in eps:
                if a <= t < b and (s is None or s == sysname):
                    if kind == "token":
                        return 2, False
                    if rate > perr:
                        perr = rate
        w = sysfail_get(sysname)
        if w is not None:
            for a, b, rate, is_out in w:
                if a <= t < b:
                    if is_out:
                        return 1, True
                    if rate > perr:
                        perr = rate
        u = rnd()
        if u < perr:
            return 1, False
        if u < perr + pdeny:
            return 2, False
        return 0, False

    def sizes(pr, oc, mult):
        dcode = pr[2]
        small = int(expf(small_mu + 0.45 * gauss(0.0, 1.0)))
        if dcode == 3:
            return int(small * 0.5), small
        if oc and dcode == 0:
            return int(expf(5.8 + 0.6 * gauss(0.0, 1.0))), small
        u = rnd()
        if u < pr[5]:
            big = pr[11] * 3.0 * (1.0 - rnd() * pr[12]) ** (-pr[6])
        elif u < pr[5] + pr[7]:
            big = expf(pr[3] + pr[8] + 0.7 * pr[4] * gauss(0.0, 1.0))
        else:
            big = expf(pr[3] + pr[4] * gauss(0.0, 1.0))
        big = int(min(5e9, big * mult))
        if oc:
            return int(expf(5.8 + 0.6 * gauss(0.0, 1.0))), big
        if dcode == 0:
            return big, small
        if dcode == 1:
            return small, big
        return int(big * (0.1 + 0.5 * rnd())), big

    def emit(t, pr, skey, mult):
        oc, outg = outcome(t, pr[1], pr[9], pr[10])
        bi, bo = sizes(pr, oc, mult)
        app((t, skey, pr[0], pr[1], bi, bo, oc))
        if oc:
            if outg:
                n = max_retry + 2
            elif rnd() < (retry_p if oc == 1 else 0.4 * retry_p):
                n = max_retry
            else:
                return t
            k = 0
            while k < n and oc:
                t += backoff * (2.0 ** k) * (0.75 + 0.5 * rnd())
                if t >= t_hi:
                    return t
                oc, outg = outcome(t, pr[1], pr[9], pr[10])
                bi, bo = sizes(pr, oc, mult)
                app((t, skey, pr[0], pr[1], bi, bo, oc))
                k += 1
        return t

    def session(t0, n, gap_mean, gap_sg, stick, repeat_p, mult, skey):
        ep = epochs[bis(ep_starts, t0) - 1]
        names, scum, tabs = ep
        tot = scum[-1]
        fi = bis(scum, rnd() * tot)
        t = t0
        last = None
        half = 0.5 * gap_sg * gap_sg
        for _ in range(n):
            if t >= t_hi:
                break
            if last is not None and rnd() < repeat_p:
                pr = last
            else:
                if rnd() < 0.05:
                    fi = bis(scum, rnd() * tot)
                si = fi if rnd() < stick else bis(scum, rnd() * tot)
                prs, pcum = tabs[si]
                pr = prs[bis(pcum, rnd() * pcum[-1])] if len(prs) > 1 else prs[0]
            last = pr
            t = emit(t, pr, skey, mult)
            g = gap_mean * expf(gap_sg * gauss(0.0, 1.0) - half)
            if rnd() < 0.04:
                g *= 3.0 + 12.0 * rnd()
            t += g

    def sess_len(med):
        return max(1, min(3000, int(round(med * expf(ag.sess_sg * gauss(0.0, 1.0))))))

    sch = ag.sched
    st = sch["type"]
    mean_len = ag.sess_med * math.exp(0.5 * ag.sess_sg ** 2)
    gap0 = 60.0 / ag.pace

    def run_interactive(t0, med=None, pace_mult=1.0):
        if t0 < t_lo or t0 >= t_hi:
            return
        n = sess_len(med or ag.sess_med)
        g = gap0 / pace_mult
        m = 1.0
        if t0 >= jc_t:
            n *= 2
            g /= 2.0
            m = 3.0
        session(t0, n, g, ag.gap_sg, ag.stick, ag.repeat_p, m, new_skey())

    if st in ("office", "diurnal"):
        sums = []
        sch_ref = dict(sch, shift_t=INF)
        for d in range(7):
            sums.append(sum(sched_value(sch_ref, d * DAY + (b + 0.5) * 600.0)
                            for b in range(144)))
        ref = (sum(sorted(sums)[-5:]) / 5.0) if st == "office" else sum(sums) / 7.0
        sess_per_ref = ag.calls_day / mean_len
        for d in range(days):
            if (d + 1) * DAY <= t_lo or d * DAY >= t_hi:
                continue
            vals = [sched_value(sch, d * DAY + (b + 0.5) * 600.0) for b in range(144)]
            c = cum(vals)
            lam = sess_per_ref * c[-1] / ref * ag.dayf[d] * gday[d]
            starts = sorted(d * DAY + (bis(c, rnd() * c[-1]) + rnd()) * 600.0
                            for _ in range(poisson(rng, lam)))
            for t0 in starts:
                run_interactive(t0)
    elif st == "irregular":
        exp_hours = 2.0 * 2.25
        sph = ag.calls_day / (sch["p_active"] * exp_hours * mean_len)
        for d in range(days):
            if (d + 1) * DAY <= t_lo or d * DAY >= t_hi:
                continue
            starts = []
            if rnd() < sch["p_active"] * min(1.3, ag.dayf[d]):
                for _ in range(rng.randint(1, 3)):
                    bs = d * DAY + (sch["pref_start"] + rnd() * sch["pref_span"]) * 3600.0
                    dur = (0.5 + 3.5 * rnd()) * 3600.0
                    k = poisson(rng, sph * dur / 3600.0 * ag.dayf[d] * gday[d])
                    starts.extend(bs + rnd() * dur for _ in range(k))
            for _ in range(poisson(rng, 0.2)):
                starts.append(d * DAY + rnd() * DAY)
            for t0 in sorted(starts):
                run_interactive(t0)
    elif st == "batch":
        runs = sch["runs"]
        per_run = ag.calls_day / len(runs)
        for d in range(days):
            if (d + 1) * DAY <= t_lo or d * DAY >= t_hi:
                continue
            for off in runs:
                t0 = d * DAY + off + 90.0 * rnd()
                if sch["weekdays_only"]:
                    lt = t0 + sch["tz"] * 3600.0
                    if math.floor(lt / DAY) % 7 >= 5:
                        continue
                if rnd() < 0.05:
                    t0 += 600 + 4800 * rnd()
                if rnd() < 0.015 or t0 < t_lo or t0 >= t_hi:
                    continue
                n = per_run * ag.dayf[d] * (2.5 if d in ag.backfill_days else 1.0)
                g, m = gap0, 1.0
                if t0 >= jc_t:
                    n, g, m = n * 2, g / 2, 3.0
                session(t0, max(5, int(n)), g, ag.gap_sg, ag.stick, ag.repeat_p, m,
                        new_skey())
            if sch["micro"]:
                for hh in range(24):
                    t0 = d * DAY + hh * 3600.0 + sch["micro_off"] + 30 * rnd()
                    if t_lo <= t0 < t_hi:
                        m = 3.0 if t0 >= jc_t else 1.0
                        session(t0, rng.randint(3, 12), gap0, ag.gap_sg, ag.stick,
                                ag.repeat_p, m, new_skey())
    elif st == "poller":
        period = sch["period"]
        pp = sch["poll_pairs"]
        t = t_lo + rnd() * period
        hour_keys = {}
        while t < t_hi:
            jc = t >= jc_t
            m = 3.0 if jc else 1.0
            hk = int(t // 3600)
            sk = hour_keys.get(hk)
            if sk is None:
                sk = hour_keys[hk] = new_skey()
            tc = t
            for pr in pp:
                tc = emit(tc, pr, sk, m) + 0.2 + 1.5 * rnd()
            if rnd() < 0.05:  # drill-down
                session(tc, rng.randint(2, 6), 3.0, 0.5, ag.stick, 0.1, m, sk)
            t += period / (2.0 if jc else 1.0) * (0.9 + 0.2 * rnd())
        span_days = (t_hi - t_lo) / DAY
        for _ in range(poisson(rng, sch["inc_rate"] * span_days)):
            t0 = t_lo + rnd() * (t_hi - t_lo)
            run_interactive(t0, med=rng.randint(20, 150), pace_mult=1.0)

    ev.sort(key=itemgetter(0))
    times = [e[0] for e in ev]

    def anchor(ta):
        i = bisect.bisect_left(times, ta)
        if i >= len(ev):
            return None
        return ev[i]

    # legit bulk transfers
    for ta, n, mult in ag.bulk_plan:
        a = anchor(ta)
        if a is None:
            continue
        prs = [(p, x) for s in ag.base_weights for p, x in zip(*ag.pairs[s])
               if p[2] != 3 and s == a[3]] or \
              [(p, x) for s in ag.base_weights for p, x in zip(*ag.pairs[s]) if p[2] != 3]
        pr = wchoice(rng, prs)
        t = a[0] + 1.0 + rnd() * 30
        for _ in range(n):
            if t >= t_hi:
                break
            emit(t, pr, a[1], mult * rng.uniform(0.7, 1.3))
            t += 5 + 300 * rnd()
    # exploration of a new system
    for ta, s, n in ag.explore_plan:
        a = anchor(ta)
        if a is None:
            continue
        prs = [p for p in ag.pairs[s][0] if p[2] != 3] or ag.pairs[s][0]
        t = a[0] + 1.0 + rnd() * 20
        for _ in range(n):
            if t >= t_hi:
                break
            t = emit(t, rng.choice(prs), a[1], 1.0) + 3 + 57 * rnd()
    ev.sort(key=itemgetter(0))
    ag.ev = ev
    ag.skey_next = skey_ctr[0] + 1


# ---------------------------------------------------------------------------
# Attacks
# ---------------------------------------------------------------------------
def data_pairs(ag, t=None):
    """(pair, weight) over the agent's current systems, payload-bearing only."""
    ep = ag.epochs[0]
    names, scum, tabs = ep
    out = []
    prev = 0.0
    for n, c, (prs, pcum) in zip(names, scum, tabs):
        sw = c - prev
        prev = c
        pprev = 0.0
        for p, pc in zip(prs, pcum):
            out.append((p, sw * (pc - pprev) / pcum[-1]))
            pprev = pc
    return [(p, w) for p, w in out if p[2] != 3]


def inject_attacks(rng, agents, days, H, first_day, kinds, excluded):
    """kinds: list of (kind, strength, sub).  Returns labels."""
    n = len(kinds)
    span = days - first_day
    order = list(kinds)
    rng.shuffle(order)
    used = set(excluded)
    labels = []
    cache = {}

    def times_of(ag):
        if ag.aid not in cache:
            cache[ag.aid] = [e[0] for e in ag.ev]
        return cache[ag.aid]

    first_use = {}

    def fu(ag):
        if ag.aid not in first_use:
            d = {}
            for e in ag.ev:
                if e[3] not in d:
                    d[e[3]] = e[0]
            first_use[ag.aid] = d
        return first_use[ag.aid]

    def day_events(ag, d):
        ts = times_of(ag)
        lo = bisect.bisect_left(ts, d * DAY)
        hi = bisect.bisect_left(ts, (d + 1) * DAY)
        return lo, hi

    def small(ag):
        return int(math.exp(ag.small_mu + 0.45 * rng.gauss(0, 1)))

    def mk(ag, t, sk, pr, mult, oc=0):
        med = pr[11]
        big = int(med * mult)
        sm = small(ag)
        if pr[2] == 0:
            return (t, sk, pr[0], pr[1], big, sm, oc)
        if pr[2] == 1:
            return (t, sk, pr[0], pr[1], sm, big, oc)
        return (t, sk, pr[0], pr[1], int(big * rng.uniform(0.1, 0.6)), big, oc)

    def new_sk(ag):
        ag.skey_next += 1
        return ag.skey_next

    def fa_target(ag, sub):
        owner_agents = ag.team["members"]
        if sub == "sensitive":
            owner_sys = set()
            for o in owner_agents:
                owner_sys |= o.ever
                owner_sys |= set(fu(o))
            cand = sorted({s for a in agents for s in a.base_weights if is_sensitive(s)}
                          | set(EXTRA_SENSITIVE))
            cand = [s for s in cand if s not in owner_sys]
            return rng.choice(cand) if cand else None
        mine = ag.ever | set(fu(ag))
        cand = set()
        for o in owner_agents:
            if o is ag:
                continue
            for s, t in fu(o).items():
                if s not in mine and t < first_day * DAY and s in o.base_weights \
                        and s != "docs.notion":
                    cand.add(s)
        cand = sorted(cand)
        return rng.choice(cand) if cand else None

    for i, (kind, strength, sub) in enumerate(order):
        d = first_day + (i * span) // n
        need = {"exfiltration": 5, "slow_exfiltration": 40, "runaway": 10,
                "first_access": 3}[kind]
        cands = []
        for ag in agents:
            if ag.aid in used:
                continue
            if kind == "slow_exfiltration" and ag.sched["type"] == "batch":
                continue
            if ag.join_t > 0 or ag.retire_t < INF:
                continue
            lo, hi = day_events(ag, d)
            if hi - lo < need:
                continue
            cands.append(ag)
        rng.shuffle(cands)
        chosen, target = None, None
        for ag in cands:
            if kind == "first_access":
                target = fa_target(ag, sub)
                if target is None:
                    continue
            chosen = ag
            break
        if chosen is None:
            print(f"warning: no agent for {kind} on day {d + 1}", file=sys.stderr)
            continue
        ag = chosen
        used.add(ag.aid)
        lo, hi = day_events(ag, d)
        dev = ag.ev[lo:hi]
        new = []
        if kind == "exfiltration":
            if rng.random() < 0.7:
                a = rng.choice(dev)
                t0, sk0 = a[0], (a[1] if rng.random() < 0.5 else new_sk(ag))
            else:
                t0, sk0 = d * DAY + rng.uniform(0, DAY - 1200), new_sk(ag)
            if strength == "strong":
                cnt, mlo, mhi, dur = rng.randint(20, 40), 14.0, 30.0, rng.uniform(5, 12) * 60
            else:
                cnt, mlo, mhi, dur = rng.randint(10, 20), 8.0, 14.0, rng.uniform(8, 15) * 60
            dp = data_pairs(ag)
            prs = [wchoice(rng, dp) for _ in range(rng.randint(1, 2))]
            ts = sorted([t0, t0 + dur] + [t0 + rng.uniform(0, dur) for _ in range(cnt - 2)])
            for t in ts:
                new.append(mk(ag, t, sk0, rng.choice(prs), rng.uniform(mlo, mhi)))
            desc = ", ".join(f"{p[0]} {p[1]} ({'bytes_in' if p[2] == 0 else 'bytes_out'}"
                             f" typical {p[11]:.0f} B)" for p in prs)
            note = (f"{cnt} transfers at {mlo:.0f}-{mhi:.0f}x typical size within "
                    f"{dur / 60:.1f} min via {desc}")
        elif kind == "slow_exfiltration":
            if strength == "strong":
                cnt, mlo, mhi = rng.randint(60, 150), 3.2, 4.0
            else:
                cnt, mlo, mhi = rng.randint(20, 70), 2.5, 3.2
            dur = rng.uniform(2, 6) * 3600
            # window start: an actual working moment in the first 60% of the day's events
            a = dev[rng.randrange(max(1, int(len(dev) * 0.6)))]
            t0 = min(a[0], H - dur - 60)
            ts_all = times_of(ag)
            wl = bisect.bisect_left(ts_all, t0)
            wh = bisect.bisect_left(ts_all, t0 + dur)
            win = ag.ev[wl:wh]
            dp = data_pairs(ag)
            prs = [wchoice(rng, dp) for _ in range(rng.randint(1, 3))]
            sk_own = new_sk(ag)
            ts = []
            for j in range(cnt):
                if j == 0:
                    ts.append((t0, win[0][1] if win else sk_own))
                elif j == 1:
                    ts.append((t0 + dur, sk_own))
                elif win and rng.random() < 0.75:
                    e = rng.choice(win)
                    ts.append((min(t0 + dur, max(t0, e[0] + rng.uniform(-30, 30))), e[1]))
                else:
                    ts.append((t0 + rng.uniform(0, dur), sk_own))
            ts.sort()
            for t, sk in ts:
                mult = min(mhi, max(mlo, rng.uniform(mlo, mhi) * rng.uniform(0.95, 1.05)))
                new.append(mk(ag, t, sk, rng.choice(prs), mult))
            desc = ", ".join(f"{p[0]} {p[1]} (typical {p[11]:.0f} B)" for p in prs)
            note = (f"{cnt} transfers at {mlo:.1f}-{mhi:.1f}x typical size spread over "
                    f"{dur / 3600:.1f} h, interleaved with normal work, via {desc}")
        elif kind == "runaway":
            ts_all = times_of(ag)
            hist = Counter(int(t // 60) for t in ts_all[: bisect.bisect_left(ts_all, d * DAY)])
            base = (sum(hist.values()) / len(hist)) if hist else 1.0
            k = rng.uniform(7, 10) if strength == "strong" else rng.uniform(5, 7)
            dur = (rng.uniform(12, 20) if strength == "strong" else rng.uniform(8, 14)) * 60
            rate = k * base  # calls per minute
            a = rng.choice(dev)
            t0, sk = a[0] + rng.uniform(0.5, 5), a[1]
            prs = [(p, w) for p, w in data_pairs(ag) if not p[0].startswith("delete")]
            pr = wchoice(rng, prs)
            mode = wchoice(rng, [("ok", 0.55), ("err", 0.25), ("mixed", 0.2)])
            m0 = math.exp(pr[4] * 0.5 * rng.gauss(0, 1))
            t = t0
            gap = 60.0 / rate
            while t < t0 + dur and t < H:
                oc = 0 if mode == "ok" else 1 if mode == "err" else (1 if rng.random() < 0.3
                                                                       else 0)
                e = mk(ag, t, sk, pr, m0 * math.exp(0.1 * rng.gauss(0, 1)), oc)
                if oc:
                    e = (e[0], e[1], e[2], e[3], int(math.exp(5.8 + 0.6 * rng.gauss(0, 1))),
                         e[5] if pr[2] in (1, 2) else small(ag), oc)
                new.append(e)
                t += gap * rng.uniform(0.75, 1.25)
            note = (f"loop of {pr[0]} on {pr[1]} at {rate:.1f}/min (~{k:.1f}x the agent's "
                    f"{base:.2f} calls per active minute) for {dur / 60:.1f} min, "
                    f"{len(new)} calls, outcome mode {mode}")
        else:  # first_access
            cnt = rng.randint(3, 5) if strength == "strong" else rng.randint(1, 2)
            if rng.random() < 0.8:
                a = rng.choice(dev)
                t, sk = a[0] + rng.uniform(1, 60), a[1]
            else:
                t, sk = d * DAY + rng.uniform(0, DAY - 900), new_sk(ag)
            prs, pw = make_pairs(rng, ag, target)
            okp = [p for p in prs if p[0] in ("read", "list", "search")] or \
                  [p for p in prs if p[2] != 3]
            for _ in range(cnt):
                pr = rng.choice(okp)
                oc = 2 if (sub == "sensitive" and rng.random() < 0.3) else 0
                e = mk(ag, t, sk, pr, math.exp(pr[4] * rng.gauss(0, 1)), oc)
                if oc:
                    e = (e[0], e[1], e[2], e[3], int(math.exp(5.8 + 0.6 * rng.gauss(0, 1))),
                         small(ag), oc)
                new.append(e)
                t += rng.uniform(5, 120)
            if sub == "sensitive":
                note = (f"{cnt} calls to sensitive {target}, which no agent of owner "
                        f"{ag.owner} uses")
            else:
                mates = sorted(o.aid for o in ag.team["members"]
                               if o is not ag and target in fu(o))
                note = (f"{cnt} calls to {target}, used by teammates {','.join(mates)} "
                        f"but never by this agent")
        new = [e for e in new if e[0] < H]
        if not new:
            print(f"warning: empty {kind} attack on {ag.aid}", file=sys.stderr)
            continue
        ag.ev.extend(new)
        ag.ev.sort(key=itemgetter(0))
        cache.pop(ag.aid, None)
        labels.append(dict(agent_id=ag.aid, kind=kind, strength=strength,
                           start_t=new[0][0], end_t=new[-1][0], n_events=len(new),
                           note=note, role=ag.role))
    return labels


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------
def agent_stream(ag):
    aid, owner = ag.aid, ag.owner
    sess_map = {}
    sess_base = ag.sess_base
    creds = ag.creds
    ci = 0
    nc = len(creds)
    sys_cred = ag.sys_cred
    idx = ag.idx
    pre = f',"agent_id":"{aid}","action":"'
    own = f'","owner":"{owner}","credential_id":"'
    sp = f'","session_id":"sess-{aid}-'
    for t, sk, act, sysname, bi, bo, oc in ag.ev:
        while ci + 1 < nc and creds[ci + 1][0] <= t:
            ci += 1
        cred = sys_cred.get(sysname) or creds[ci][1]
        sn = sess_map.get(sk)
        if sn is None:
            sn = sess_map[sk] = sess_base + len(sess_map)
        yield (int(t * 1000.0), idx,
               f'{pre}{act}","system":"{sysname}{own}{cred}{sp}{sn}",'
               f'"bytes_in":{bi},"bytes_out":{bo},"outcome":"{OUTCOMES[oc]}"}}\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--agents", type=int, default=120)
    ap.add_argument("--days", type=int, default=None)
    ap.add_argument("--scenario", choices=["attacks", "change"], default="attacks")
    ap.add_argument("--out", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--changes", default=None)
    ap.add_argument("--noise", default=None,
                    help="optional: write unlabelled noise episodes (for diagnosis)")
    args = ap.parse_args()
    days = args.days or (14 if args.scenario == "attacks" else 21)
    H = days * DAY
    clock = time.time()
    rng = random.Random(args.seed)

    agents, teams = build_fleet(rng, args.agents, days)
    changes, changed = [], set()
    noise, sysfail = plan_noise(rng, agents, days, H)
    if args.scenario == "change":
        changes, changed = plan_changes(rng, agents, days, H, sysfail)
    for ag in agents:
        finalize_epochs(ag)
        ag.sess_base = rng.randint(1, 400)
    gday = [math.exp(0.08 * rng.gauss(0, 1)) for _ in range(days + 1)]

    for ag in agents:
        gen_normal(ag, H, days, sysfail, args.seed, gday)
    t_gen = time.time() - clock

    # attack plan
    if args.scenario == "attacks":
        per = 10
        kinds = []
        for k in ("exfiltration", "slow_exfiltration", "runaway", "first_access"):
            strengths = ["strong"] * 3 + ["moderate"] * (per - 3)
            rng.shuffle(strengths)
            for j, s in enumerate(strengths):
                sub = ("sensitive" if j % 2 == 0 else "teammate") if k == "first_access" else None
                kinds.append((k, s, sub))
    else:
        base = [("exfiltration", None), ("exfiltration", None), ("exfiltration", None),
                ("slow_exfiltration", None), ("slow_exfiltration", None),
                ("runaway", None), ("runaway", None), ("runaway", None),
                ("first_access", "sensitive"), ("first_access", "teammate")]
        strengths = ["strong"] * 3 + ["moderate"] * 7
        rng.shuffle(strengths)
        kinds = [(k, s, sub) for (k, sub), s in zip(base, strengths)]
    labels = inject_attacks(rng, agents, days, H, 4, kinds, changed)

    # annotate changes with what actually happened in the generated traffic
    by_id = {ag.aid: ag for ag in agents}
    for c in changes:
        if c["kind"] == "agent_joined":
            ag = by_id[c["agents"][0]]
            c["planned_join"] = c["start"]
            if ag.ev:
                c["start"] = ag.ev[0][0]
        elif c["kind"] == "agent_retired":
            ag = by_id[c["agents"][0]]
            if ag.ev:
                c["last_event"] = ag.ev[-1][0]
        elif c["kind"] == "new_system_rollout":
            fu = {}
            for aid in c["agents"]:
                for e in by_id[aid].ev:
                    if e[3] == c["system"]:
                        fu[aid] = e[0]
                        break
            c["per_agent_first_use"] = fu

    # write events
    fmt = make_fmt(days)
    n = 0
    out_counts = Counter()
    with open(args.out, "w", buffering=1 << 20) as f:
        buf = []
        for ms, _, tail in heapq.merge(*(agent_stream(ag) for ag in agents)):
            buf.append(f'{{"event_id":"g2-{n:08d}","time":"{fmt(ms)}"{tail}')
            n += 1
            if len(buf) >= 50000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))

    def iso(t):
        return fmt(int(t * 1000.0))

    lab_out = []
    for lb in sorted(labels, key=lambda x: x["start_t"]):
        lab_out.append(dict(agent_id=lb["agent_id"], kind=lb["kind"], start=iso(lb["start_t"]),
                            end=iso(lb["end_t"]), strength=lb["strength"], note=lb["note"],
                            n_events=lb["n_events"], role=lb["role"]))
    with open(args.labels, "w") as f:
        json.dump(lab_out, f, indent=1)
    if args.changes:
        ch_out = []
        for c in changes:
            c = dict(c)
            c["start"] = iso(c["start"])
            c["end"] = iso(min(c["end"], H - 0.001))
            for k in ("per_agent_adoption", "per_agent_first_use"):
                if k in c:
                    c[k] = {a: iso(v) for a, v in c[k].items()}
            for k in ("planned_join", "last_event"):
                if k in c:
                    c[k] = iso(c[k])
            ch_out.append(c)
        with open(args.changes, "w") as f:
            json.dump(ch_out, f, indent=1)
    if args.noise:
        nz = []
        for x in noise:
            x = dict(x)
            for k in ("start", "end"):
                if k in x:
                    x[k] = iso(min(max(0.0, x[k]), H - 0.001))
            nz.append(x)
        with open(args.noise, "w") as f:
            json.dump(nz, f, indent=1)

    # summary
    oc = Counter()
    roles = Counter(ag.role for ag in agents)
    scheds = Counter(ag.sched["type"] for ag in agents)
    for ag in agents:
        for e in ag.ev:
            oc[e[6]] += 1
    allsys = sorted({e[3] for ag in agents for e in ag.ev})
    nsens = sum(1 for s in allsys if is_sensitive(s))
    lk = Counter((lb["kind"], lb["strength"]) for lb in labels)
    w = sys.stderr.write
    w(f"fleetgen2: scenario={args.scenario} seed={args.seed} agents={len(agents)} "
      f"owners={len(teams)} days={days}\n")
    w(f"  events={n}  (gen {t_gen:.1f}s, total {time.time() - clock:.1f}s)\n")
    w(f"  outcomes: " + ", ".join(f"{OUTCOMES[k]}={v} ({v / n:.2%})"
                                  for k, v in sorted(oc.items())) + "\n")
    w(f"  roles: {dict(sorted(roles.items()))}\n  schedules: {dict(sorted(scheds.items()))}\n")
    w(f"  systems seen: {len(allsys)} ({nsens} sensitive by name)\n")
    w(f"  labels: {len(labels)} " + ", ".join(f"{k}/{s}={v}" for (k, s), v in
                                             sorted(lk.items())) + "\n")
    if changes:
        w(f"  changes: " + ", ".join(f"{k}={v}" for k, v in
                                     sorted(Counter(c['kind'] for c in changes).items())) + "\n")
    w(f"  noise episodes: " + ", ".join(f"{k}={v}" for k, v in
                                        sorted(Counter(x['kind'] for x in noise).items())) + "\n")


if __name__ == "__main__":
    main()
