#!/usr/bin/env python3
"""fleetgen: held-out agent-event traffic for testing agentwatch.

Generates a fleet of AI agents (agent-event v1 JSONL, globally time-sorted) with
labelled attacks, independently of the engine's own simulator so detection cannot be
tuned to one set of distributions.

    fleetgen.py --scenario {strong,moderate,change,mixed} --agents N --days D --seed S \\
                --out events.jsonl --labels labels.json [--changes changes.json] \\
                [--start 2026-03-02] [--approvals approvals.jsonl]
    fleetgen.py --validate events.jsonl        # check JSON, required fields, order

Fleet model:
  * teams share an owner and some systems; roles: support, sales, backoffice, research
    (office hours in their own UTC offset, Mon-Fri, lunch dip), devops (clustered
    bursty sessions, on-call spill-over, failing-build sessions), pipeline (hourly or
    nightly runs with MB-sized transfers, retried failed runs), monitor (24/7, Poisson
    or jittered periodic).
  * sizes: per agent and direction, gamma body (shape 0.7-3) with a capped Pareto tail;
    pace in calls/min while active 0.2-30, gamma inter-arrival gaps (bursty shape <1
    for some agents); day-to-day volume gamma noise; days off; off-hours background.
  * research agents touch brand-new harmless systems on 0.5-2% of events; everyone
    else has a few rarely used systems.
Every agent has its own random.Random seeded by (seed, agent_id); attacks and changes
use separate generators, so a given seed gives the same baseline fleet in every
scenario.

--approvals FILE (own random streams; without it the output is byte-identical):
  * every high-risk action (the global list of detectors/high_risk_action.toml: the
    fleet's k8s deletes, plus a few approved deletes/drops/purges/payments/grants that
    40% of agents with a matching system do, 0.15-1.2 a day) carries an `approval_id`,
    and FILE gets the agent-approval v1 records (JSON lines) that cover them: per agent
    one per action, one per work window (20 min-10 h) or standing (1-7 days, monitors
    and pipelines); issued 2 min-12 h before first use, expiry the next of 10 min..4 weeks
    that covers the last use (sometimes one or two longer), max_uses exact or with slack,
    `systems` on ~65% (sometimes `k8s.*`), action patterns, request_id on ~30%.
  * approval attacks, agents/10 of each kind, labelled with detector=high_risk_action:
    forged_approval (an id no record has: near copies, placeholders, plausible ids),
    foreign_approval (another agent's live approval, its action and system),
    expired_approval (own approval, 0-2 uses, then used 5 min-36 h after expiry) and
    reused_approval (1-3 extra uses of an exhausted single- or few-use approval, inside
    its validity window; its earlier uses are legitimate).
"""

import argparse
import bisect
import heapq
import json
import math
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from operator import itemgetter

SEC, MIN, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000
WEEK = 7 * DAY

SENSITIVE_CORE = ["hr.payroll", "finance.ledger", "iam.admin", "s3://secrets-vault",
                  "prod.db.customers", "payments.gateway"]
SENSITIVE_EXTRA = ["hr.records", "finance.forecast", "prod.db.billing",
                   "s3://payroll-exports", "iam.keys"]
SENSITIVE = set(SENSITIVE_CORE + SENSITIVE_EXTRA)

# action templates per system class: (action, data direction, weight)
CLASSES = {
    "docs": [("read", "in", 5), ("search", "in", 3)],
    "crm": [("read", "in", 5), ("search", "in", 3), ("write", "out", 2), ("list", "in", 1)],
    "mail": [("tool_call:send_email", "out", 3), ("read", "in", 4), ("search", "in", 1)],
    "tickets": [("read", "in", 4), ("write", "out", 3), ("list", "in", 2)],
    "bucket": [("list", "in", 2), ("read", "in", 5), ("write", "out", 3)],
    "db": [("read", "in", 6), ("search", "in", 2), ("write", "out", 1)],
    "chat": [("tool_call:post_message", "out", 3), ("read", "in", 2)],
    "calendar": [("read", "in", 2), ("tool_call:schedule_meeting", "out", 1)],
    "ci": [("tool_call:run_pipeline", "ctl", 3), ("read", "in", 3), ("list", "in", 1)],
    "repo": [("read", "in", 5), ("write", "out", 2), ("list", "in", 1), ("search", "in", 1)],
    "k8s": [("tool_call:kubectl", "ctl", 4), ("read", "in", 2), ("list", "in", 2),
            ("delete", "ctl", 0.15)],
    "metrics": [("read", "in", 6), ("list", "in", 1)],
    "web": [("tool_call:web_fetch", "in", 4), ("search", "in", 2)],
    "api": [("read", "in", 3), ("tool_call:http_post", "out", 1)],
    "admin": [("read", "in", 3), ("list", "in", 2), ("write", "out", 1)],
    "llm": [("tool_call:llm_complete", "llm", 4), ("tool_call:embed", "llm", 1)],
}

# system -> (class, size multiplier)
CATALOG = {
    "zendesk": ("tickets", 1.0), "kb.internal": ("docs", 1.5), "crm": ("crm", 1.0),
    "email": ("mail", 0.8), "slack": ("chat", 0.3), "jira": ("tickets", 0.8),
    "statuspage.api": ("api", 0.3), "docs.product": ("docs", 2.0),
    "billing.portal": ("api", 0.6), "translate.api": ("api", 0.5), "calendar": ("calendar", 0.3),
    "linkedin.api": ("api", 0.7), "docs.sales": ("docs", 2.5), "pricing.db": ("db", 0.6),
    "s3://sales-decks": ("bucket", 6.0), "gong.api": ("api", 3.0),
    "contracts.docusign": ("api", 2.0), "docs.policies": ("docs", 1.5),
    "erp.netsuite": ("db", 1.2), "expenses.api": ("api", 0.7), "hr.payroll": ("db", 1.5),
    "hr.records": ("db", 1.2), "finance.ledger": ("db", 2.0), "finance.forecast": ("docs", 3.0),
    "payments.gateway": ("api", 0.4), "s3://payroll-exports": ("bucket", 5.0),
    "github": ("repo", 1.0), "ci.jenkins": ("ci", 1.5), "logs.elastic": ("metrics", 3.0),
    "k8s.prod-api": ("k8s", 0.5), "k8s.staging": ("k8s", 0.5), "artifactory": ("bucket", 8.0),
    "pagerduty": ("api", 0.3), "terraform.state": ("bucket", 1.0),
    "metrics.prometheus": ("metrics", 1.0), "iam.admin": ("admin", 0.4),
    "s3://secrets-vault": ("bucket", 0.1), "prod.db.customers": ("db", 2.0),
    "iam.keys": ("admin", 0.2), "s3://raw-events": ("bucket", 1.0),
    "warehouse.snowflake": ("db", 1.0), "s3://warehouse": ("bucket", 1.0),
    "kafka.topics": ("bucket", 0.3), "etl.airflow": ("ci", 0.01), "s3://reports": ("bucket", 0.2),
    "s3://ml-features": ("bucket", 1.5), "crm-export.api": ("api", 0.5),
    "prod.db.replica": ("db", 1.0), "prod.db.billing": ("db", 1.0), "status.api": ("api", 0.5),
    "synthetics.api": ("api", 0.5), "dns.api": ("api", 0.2), "web.search": ("web", 1.0),
    "arxiv.api": ("web", 3.0), "wiki.internal": ("docs", 1.0),
    "s3://research-scratch": ("bucket", 4.0), "notebooks.jupyter": ("repo", 1.0),
    "ai.gateway": ("llm", 1.0),
}

# role: schedule, core systems, optional systems, (sensitive pool, prob of using some),
#       pace range (calls/min), weekday events target range, data size range in/out (bytes)
ROLES = {
    "support": dict(sched="office", core=["zendesk", "kb.internal", "crm", "email"],
                    opt=["slack", "jira", "statuspage.api", "docs.product", "billing.portal",
                         "translate.api"], sens=(["prod.db.customers"], 0.08),
                    pace=(0.6, 8), target=(280, 800), size_in=(4e3, 40e3), size_out=(1e3, 8e3),
                    sess_min=(3, 12)),
    "sales": dict(sched="office", core=["crm", "email", "calendar"],
                  opt=["linkedin.api", "docs.sales", "pricing.db", "s3://sales-decks", "slack",
                       "gong.api", "contracts.docusign"], sens=([], 0),
                  pace=(0.3, 6), target=(220, 700), size_in=(3e3, 50e3), size_out=(1e3, 15e3),
                  sess_min=(3, 10)),
    "backoffice": dict(sched="office", core=["email", "docs.policies"],
                       opt=["erp.netsuite", "expenses.api", "slack", "jira"],
                       sens=(["hr.payroll", "hr.records", "finance.ledger", "finance.forecast",
                              "payments.gateway", "s3://payroll-exports"], 1.0),
                       pace=(0.3, 4), target=(150, 550), size_in=(5e3, 120e3),
                       size_out=(2e3, 30e3), sess_min=(5, 15)),
    "research": dict(sched="office", core=["web.search", "kb.internal"],
                     opt=["arxiv.api", "wiki.internal", "s3://research-scratch",
                          "notebooks.jupyter", "docs.product", "github", "translate.api"],
                     sens=([], 0), pace=(1, 12), target=(250, 800), size_in=(20e3, 400e3),
                     size_out=(2e3, 40e3), sess_min=(10, 40)),
    "devops": dict(sched="devops", core=["github", "ci.jenkins", "logs.elastic"],
                   opt=["k8s.prod-api", "k8s.staging", "artifactory", "pagerduty",
                        "terraform.state", "metrics.prometheus", "slack", "jira"],
                   sens=(["iam.admin", "s3://secrets-vault", "prod.db.customers", "iam.keys"], 0.4),
                   pace=(3, 30), target=(250, 700), size_in=(10e3, 500e3),
                   size_out=(2e3, 100e3), sess_min=(3, 10)),
    "pipeline": dict(sched="pipeline", core=["s3://raw-events", "warehouse.snowflake"],
                     opt=["s3://warehouse", "kafka.topics", "etl.airflow", "s3://reports",
                          "s3://ml-features", "crm-export.api", "prod.db.replica"],
                     sens=(["prod.db.customers", "prod.db.billing", "finance.ledger"], 0.35),
                     pace=(8, 30), target=(200, 650), size_in=(2e6, 60e6),
                     size_out=(1e6, 40e6), sess_min=(0, 0)),
    "monitor": dict(sched="monitor", core=["metrics.prometheus", "status.api"],
                    opt=["logs.elastic", "pagerduty", "slack", "k8s.prod-api",
                         "synthetics.api", "dns.api"], sens=([], 0),
                    pace=(0.2, 0.45), target=(0, 0), size_in=(500, 8e3), size_out=(200, 2e3),
                    sess_min=(0, 0)),
}
ROLE_MIX = [("support", 22), ("sales", 15), ("backoffice", 12), ("research", 12),
            ("devops", 15), ("pipeline", 13), ("monitor", 11)]
TZ_CHOICES = [-8, -7, -5, -5, -3, 0, 0, 1, 1, 1, 2, 3, 5.5, 8, 9, 10]
TEAM_NAMES = ["atlas", "borealis", "cobalt", "delta", "ember", "fjord", "garnet", "harbor",
              "indigo", "juniper", "kestrel", "lumen", "meridian", "nimbus", "onyx", "pylon",
              "quartz", "rook", "sierra", "tundra", "umber", "vega", "willow", "xenon",
              "yarrow", "zephyr"]
FIRST = ["ana", "ben", "chloe", "dev", "elif", "femi", "greta", "hiro", "ines", "jonas",
         "kofi", "lena", "mateo", "nadia", "oscar", "priya", "quinn", "rosa", "sami", "tomas"]
LAST = ["okafor", "lindqvist", "tanaka", "moreau", "silva", "novak", "haddad", "kowalski",
        "reyes", "schmidt", "ito", "mensah", "ferrari", "olsen", "khan", "dubois"]
NOVEL_PREFIX = ["web.", "api.", "data.", "wiki.", "docs.", "s3://open-"]
NOVEL_WORDS = ["climate", "geo", "patents", "census", "weather", "transit", "energy",
               "nutrition", "astro", "genome", "maps", "sports", "music", "chess", "ocean",
               "forestry", "linguistics", "optics", "robotics", "tides"]
WEEKDAY_MULT = [1.1, 1.05, 1.0, 1.0, 0.82, 0.0, 0.0]


def sys_class(system):
    """(class, size multiplier) of a system, including team and novel systems."""
    if system in CATALOG:
        return CATALOG[system]
    if system.startswith("s3://"):
        return ("bucket", 2.0)
    if system.startswith("docs.") or system.startswith("wiki."):
        return ("docs", 1.0)
    return ("web", 1.0)


def poisson(rng, lam):
    """Poisson variate (Knuth for small means, normal approximation above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
    lim, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= lim:
            return k
        k += 1


def log_uniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


class Agent:
    """One agent: identity, systems, rates, size model and schedule parameters."""

    def __init__(self, idx, agent_id, role, team, owner, rng):
        R = ROLES[role]
        self.idx, self.agent_id, self.role, self.team, self.owner = idx, agent_id, role, team, owner
        self.sched = R["sched"]
        self.rng = rng
        self.tz = rng.choice(TZ_CHOICES)
        self.pace = log_uniform(rng, *R["pace"])
        self.kappa = rng.choice([0.5, 0.7, 1.0, 1.5, 2.5])  # gap shape: <1 bursty, >1 regular
        self.fail = rng.choice([0.0, 0.003, 0.01, 0.02, 0.035, 0.05]) * (0.5 if role == "monitor" else 1)
        self.deny = rng.choice([0.0, 0.0, 0.0005, 0.002])
        self.scale_in = log_uniform(rng, *R["size_in"])
        self.scale_out = log_uniform(rng, *R["size_out"])
        self.k_body = rng.uniform(0.7, 3.0)
        self.p_tail = rng.uniform(0.005, 0.04)
        self.alpha = rng.uniform(1.6, 2.6)
        self.target = log_uniform(rng, *R["target"]) if R["target"][1] else 0
        self.sess_mean = rng.uniform(*R["sess_min"]) if R["sess_min"][1] else 0
        self.sess_shape = rng.uniform(1.2, 3.0)
        self.day_off = rng.choice([0.0, 0.02, 0.04, 0.08]) if self.sched == "office" else 0.0
        self.day_shape = rng.uniform(4, 15)
        self.bg_rate = rng.choice([0, 0, 0, 0.4, 1.0, 2.5]) if self.sched in ("office", "devops") else 0
        self.explicit_success = rng.random() < 0.7
        self.rot_shift = WEEK - rng.randrange(WEEK)
        self.novel_p = rng.uniform(0.005, 0.02) if role == "research" else 0.0
        self.start_ms = self.end_ms = None            # set by Fleet
        self.pace_change = None                       # (t, pace x, size x)
        self.shift = None                             # (local day, hours)
        self.ai_adopt = None                          # (t, prob, prompt scale)
        self.systems = []
        self.sensitive = set()
        self.pairs, self.cum = [], []

    def build_pairs(self, rare):
        """Turn systems into weighted (action, system, direction, size mult) pairs."""
        rng, pairs, weights = self.rng, [], []
        total_rare = len(rare)
        for s in self.systems + rare:
            cls, smult = sys_class(s)
            sw = rng.gammavariate(0.8, 1.0) + 0.02
            if s in rare:
                sw = None
            acts = [a for a in CLASSES[cls] if rng.random() > 0.25] or CLASSES[cls][:1]
            for action, direction, w in acts:
                pairs.append((action, s, direction, smult * rng.lognormvariate(0, 0.4)))
                weights.append(-1 if sw is None else sw * w * rng.gammavariate(1.5, 1 / 1.5))
        common = sum(w for w in weights if w > 0)
        n_rare = sum(1 for w in weights if w < 0)
        for i, w in enumerate(weights):
            if w < 0:   # a rarely used system: ~1-3 events per two weeks
                weights[i] = common * 4e-4 / max(1, n_rare) * max(1, total_rare)
        self.pairs = pairs
        acc, self.cum = 0.0, []
        for w in weights:
            acc += w
            self.cum.append(acc)
        self.in_idx = [i for i, p in enumerate(pairs) if p[2] == "in" and p[1] not in rare]
        self.out_idx = [i for i, p in enumerate(pairs) if p[2] == "out" and p[1] not in rare]
        usual = self.in_idx + self.out_idx or list(range(len(pairs)))
        self.bg_pairs = rng.sample(usual, min(2, len(usual)))
        self.typ_in = self._typical("in")
        self.typ_out = self._typical("out")

    def body(self, rng):
        """Unit-median-ish size factor: gamma body with a capped Pareto tail."""
        if rng.random() < self.p_tail:
            return min(150.0, 2.0 * rng.paretovariate(self.alpha))
        return rng.gammavariate(self.k_body, 1.0 / self.k_body)

    def _typical(self, direction):
        idx = [i for i, p in enumerate(self.pairs) if p[2] == direction]
        if not idx:
            return None
        r = random.Random(self.agent_id + direction)
        w = [self.cum[i] - (self.cum[i - 1] if i else 0) for i in idx]
        scale = self.scale_in if direction == "in" else self.scale_out
        xs = sorted(scale * self.pairs[i][3] * self.body(r)
                    for i in r.choices(idx, weights=w, k=801))
        return xs[400]

    def profile_cum(self, shift_h=0.0):
        """Cumulative weights over 96 local quarter-hours of an office-style day."""
        rng = random.Random(self.agent_id + "prof")
        h0 = rng.gauss(9.0, 0.7) + shift_h
        length = rng.uniform(7.5, 9.5)
        lunch = h0 + rng.uniform(3.2, 4.5)
        dip = rng.uniform(0.25, 0.6)
        wide = self.role == "research"
        acc, cum = 0.0, []
        for b in range(96):
            x = b / 4 + 0.125
            if h0 <= x <= h0 + length:
                w = 1.0
                if x < h0 + 0.75:
                    w = 0.5
                if lunch <= x <= lunch + 1:
                    w *= dip
                if x > lunch + 1:
                    w *= 0.85
            else:
                w = 0.04 if wide and (h0 - 2 <= x <= h0 + length + 4) else 0.0
            acc += w
            cum.append(acc)
        return cum


class Fleet:
    """Builds teams and agents deterministically from the seed."""

    def __init__(self, n, days, seed, t0):
        self.t0, self.days, self.seed = t0, days, seed
        self.t_end = t0 + days * DAY
        rng = random.Random(f"{seed}:fleet")
        self.agents, self.teams = [], {}
        counters, names = {}, list(TEAM_NAMES)
        rng.shuffle(names)
        roles, weights = zip(*ROLE_MIX)
        tno = 0
        while len(self.agents) < n:
            tname = names[tno % len(names)] + ("" if tno < len(names) else str(tno // len(names)))
            owner = f"{FIRST[tno % len(FIRST)]}.{LAST[(tno * 7) % len(LAST)]}@corp.example"
            tno += 1
            primary = rng.choices(roles, weights)[0]
            size = min(n - len(self.agents), rng.choice([2, 3, 3, 4, 4, 5, 6, 7]))
            members = []
            for _ in range(size):
                role = primary if rng.random() > 0.2 else rng.choices(roles, weights)[0]
                counters[role] = counters.get(role, 0) + 1
                aid = f"fleet-{role}-{counters[role]}"
                ag = Agent(len(self.agents), aid, role, tname, owner, random.Random(f"{seed}:{aid}"))
                ag.start_ms, ag.end_ms = t0, self.t_end
                self.agents.append(ag)
                members.append(ag)
            self.teams[tname] = members
            team_sys = [f"s3://team-{tname}", f"docs.team-{tname}"]
            pool = sorted({s for m in members for s in ROLES[m.role]["opt"]})
            team_sys += rng.sample(pool, min(len(pool), rng.randint(0, 2)))
            for m in members:
                self._pick_systems(m, team_sys)
        self.by_id = {a.agent_id: a for a in self.agents}

    @staticmethod
    def _pick_systems(ag, team_sys):
        R, rng = ROLES[ag.role], ag.rng
        systems = list(R["core"])
        systems += [s for s in R["opt"] if rng.random() < 0.45]
        systems += [s for s in team_sys if rng.random() < 0.75 and s not in systems]
        pool, prob = R["sens"]
        if pool and rng.random() < prob:
            for s in rng.sample(pool, rng.randint(1, min(3, len(pool)))):
                systems.append(s)
        ag.systems = list(dict.fromkeys(systems))
        ag.sensitive = {s for s in ag.systems if s in SENSITIVE}
        unused = [s for s in R["opt"] + team_sys if s not in ag.systems]
        rare = rng.sample(unused, min(len(unused), rng.randint(0, 3)))
        ag.build_pairs(rare)

    def peers(self, ag):
        """Team members plus agents of the same role."""
        return [a for a in self.agents if a is not ag and (a.team == ag.team or a.role == ag.role)]


# ----------------------------------------------------------------------------- baseline

class Gen:
    """Per-agent baseline generator; events are tuples
    (t_ms, agent_idx, action, system, bytes_in, bytes_out, outcome, session)."""

    def __init__(self, ag, fleet):
        self.ag, self.fleet, self.rng = ag, fleet, random.Random(f"{fleet.seed}:gen:{ag.agent_id}")
        self.out, self.sess = [], 0
        self.novel = []

    def mults(self, t):
        pc = self.ag.pace_change
        return (pc[1], pc[2]) if pc and t >= pc[0] else (1.0, 1.0)

    def small(self):
        return int(80 + self.rng.gammavariate(2.0, 220.0))

    def emit(self, t, pi, sess, smult=1.0, fail=None):
        ag, rng = self.ag, self.rng
        action, system, direction, m = ag.pairs[pi]
        if direction == "in":
            b_in, b_out = int(ag.scale_in * m * smult * ag.body(rng)) + 1, self.small()
        elif direction == "out":
            b_in, b_out = self.small(), int(ag.scale_out * m * smult * ag.body(rng)) + 1
        else:
            b_in, b_out = self.small() * 3, self.small()
        r = rng.random()
        f = ag.fail if fail is None else fail
        if r < f:
            outcome, b_in = "failure", self.small() // 2
        elif r < f + ag.deny:
            outcome, b_in = "denied", 0
        else:
            outcome = "success"
        self.out.append((t, ag.idx, action, system, b_in, b_out, outcome, sess))

    def pick(self):
        return bisect.bisect_left(self.ag.cum, self.rng.random() * self.ag.cum[-1])

    def session(self, start, dur_ms, pace, smult, fail=None, kappa=None):
        """Events of one session: gamma gaps at `pace` calls/min, 1-3 focus pairs."""
        rng, ag = self.rng, self.ag
        self.sess += 1
        sid = self.sess
        focus = [self.pick() for _ in range(rng.randint(1, 3))]
        kap = kappa or ag.kappa
        mean_gap = 60_000.0 / pace
        t, end, novel_left, nov = start, start + dur_ms, 0, None
        while True:
            if novel_left:
                self.out.append((t, ag.idx, "tool_call:web_fetch", nov, int(ag.scale_in * ag.body(rng)),
                                 self.small(), "success", sid))
                novel_left -= 1
            elif ag.novel_p and rng.random() < ag.novel_p:
                nov = (rng.choice(NOVEL_PREFIX) + rng.choice(NOVEL_WORDS) + "-" +
                       rng.choice(NOVEL_WORDS) + str(rng.randint(1, 99)))
                self.out.append((t, ag.idx, "search", nov, int(ag.scale_in * ag.body(rng)),
                                 self.small(), "success", sid))
                novel_left = rng.randint(0, 4)
            else:
                pi = focus[rng.randrange(len(focus))] if rng.random() < 0.75 else self.pick()
                self.emit(t, pi, sid, smult, fail)
            t += int(rng.gammavariate(kap, mean_gap / kap)) + 1
            if t > end:
                return

    def local_days(self):
        ag, f = self.ag, self.fleet
        d0 = (ag.start_ms - f.t0) // DAY - 1
        d1 = (ag.end_ms - f.t0) // DAY + 1
        for d in range(d0, d1 + 1):
            yield d, (f.start_weekday + d) % 7, f.t0 + d * DAY - int(ag.tz * HOUR)

    def gen_office(self):
        ag, rng = self.ag, self.rng
        cums = {0: ag.profile_cum()}
        work_min = 8.5 * 60
        sess_events = max(1.0, ag.pace * ag.sess_mean)
        e_day = min(ag.target, 0.6 * ag.pace * work_min)
        per_day = e_day / sess_events
        for d, wd, base in self.local_days():
            weekend = wd >= 5
            if weekend and not (ag.role == "research" and rng.random() < 0.15):
                continue
            if rng.random() < ag.day_off:
                continue
            shift = ag.shift[1] if ag.shift and d >= ag.shift[0] else 0
            if shift not in cums:
                cums[shift] = ag.profile_cum(shift)
            cum = cums[shift]
            vol = (0.3 if weekend else WEEKDAY_MULT[wd]) * rng.gammavariate(ag.day_shape, 1 / ag.day_shape)
            for _ in range(poisson(rng, per_day * vol)):
                b = bisect.bisect_left(cum, rng.random() * cum[-1])
                st = base + b * 15 * MIN + rng.randrange(15 * MIN)
                pm, sm = self.mults(st)
                dur = rng.gammavariate(ag.sess_shape, ag.sess_mean / ag.sess_shape) * MIN
                self.session(st, int(dur), ag.pace * pm * rng.lognormvariate(0, 0.25), sm)

    def gen_devops(self):
        ag, rng = self.ag, self.rng
        cum = ag.profile_cum()
        sess_events = max(1.0, ag.pace * ag.sess_mean)
        clusters = ag.target / sess_events / 3.0
        for d, wd, base in self.local_days():
            rate = clusters * (0.12 if wd >= 5 else WEEKDAY_MULT[wd])
            for _ in range(poisson(rng, rate * rng.gammavariate(ag.day_shape, 1 / ag.day_shape))):
                if rng.random() < 0.8:
                    st = base + bisect.bisect_left(cum, rng.random() * cum[-1]) * 15 * MIN
                else:
                    st = base + rng.randrange(DAY)
                for _ in range(1 + int(rng.expovariate(0.5))):
                    st += rng.randrange(15 * MIN)
                    pm, sm = self.mults(st)
                    broken = rng.random() < 0.04   # a failing build, retried by hand
                    dur = int(rng.gammavariate(1.2, ag.sess_mean / 1.2) * MIN)
                    self.session(st, dur, ag.pace * pm * rng.lognormvariate(0, 0.35), sm,
                                 fail=rng.uniform(0.2, 0.5) if broken else None)
                    st += dur + int(rng.expovariate(1 / (20 * MIN)))

    def gen_pipeline(self):
        ag, rng = self.ag, self.rng
        hourly = rng.random() < 0.55
        weekday_only = (not hourly) and rng.random() < 0.3
        if hourly:
            off = rng.randrange(HOUR)
            slots = [h * HOUR + off for h in range(24)]
        else:
            slots = sorted(rng.randrange(0, 6 * HOUR) for _ in range(rng.randint(1, 3)))
        per_run = ag.target / len(slots)
        in_idx = ag.in_idx or list(range(len(ag.pairs)))
        out_idx = ag.out_idx or in_idx
        for d in range((ag.start_ms - self.fleet.t0) // DAY, (ag.end_ms - self.fleet.t0) // DAY + 1):
            wd = (self.fleet.start_weekday + d) % 7
            if weekday_only and wd >= 5:
                continue
            vol = 0.6 if wd >= 5 and hourly else 1.0
            for s in slots:
                st = self.fleet.t0 + d * DAY + s + int(rng.gauss(0, 20 * SEC))
                if rng.random() < 0.1:
                    st += int(rng.expovariate(1 / (3 * MIN)))
                pm, sm = self.mults(st)
                n = max(3, int(per_run * vol * pm * rng.gammavariate(8, 1 / 8)))
                self.run(st, n, ag.pace * pm, sm, in_idx, out_idx)

    def run(self, st, n, pace, sm, in_idx, out_idx):
        rng = self.rng
        self.sess += 1
        sid, t = self.sess, st
        abort = rng.randint(1, n) if rng.random() < 0.025 else None
        for i in range(n):
            pool = in_idx if i < 0.7 * n else out_idx
            if abort is not None and i >= abort:
                for _ in range(rng.randint(1, 3)):
                    self.emit(t, pool[rng.randrange(len(pool))], sid, sm, fail=1.0)
                    t += rng.randint(500, 20 * SEC)
                return self.run(t + rng.randint(5 * MIN, 15 * MIN), n, pace, sm, in_idx, out_idx)
            self.emit(t, pool[rng.randrange(len(pool))], sid, sm)
            t += int(rng.gammavariate(3.0, 60_000 / pace / 3.0)) + 1

    def gen_monitor(self):
        ag, rng = self.ag, self.rng
        periodic = rng.random() < 0.4
        amp = rng.uniform(0, 0.3)
        t = ag.start_ms + rng.randrange(MIN)
        while t < ag.end_ms:
            pm, sm = self.mults(t)
            rate = ag.pace * pm  # per minute
            if periodic:
                t += int(60_000 / rate * rng.uniform(0.95, 1.05))
            else:
                t += int(rng.expovariate(rate * (1 + amp)) * 60_000) + 1
                hour = ((t - self.fleet.t0) % DAY) / HOUR
                if rng.random() > (1 + amp * math.sin((hour - 8) / 24 * 2 * math.pi)) / (1 + amp):
                    continue
            self.emit(t, self.pick(), None, sm)

    def gen_background(self):
        ag, rng = self.ag, self.rng
        if not ag.bg_rate:
            return
        for h in range((ag.end_ms - ag.start_ms) // HOUR + 1):
            for _ in range(poisson(rng, ag.bg_rate)):
                t = ag.start_ms + h * HOUR + rng.randrange(HOUR)
                self.emit(t, ag.bg_pairs[rng.randrange(len(ag.bg_pairs))], None)

    def generate(self):
        getattr(self, "gen_" + self.ag.sched)()
        self.gen_background()
        lo, hi = self.ag.start_ms, self.ag.end_ms
        ev = [e for e in self.out if lo <= e[0] < hi]
        ev.sort(key=itemgetter(0))
        return ev


# ----------------------------------------------------------------------------- changes

def apply_rollout(ag, ev, rng):
    """After adoption, some events spawn an ai.gateway call a few seconds later."""
    t_a, q, prompt = ag.ai_adopt
    extra = []
    for e in ev:
        if e[0] >= t_a and rng.random() < q:
            action = "tool_call:llm_complete" if rng.random() < 0.8 else "tool_call:embed"
            t = e[0] + rng.randint(300, 6 * SEC)
            if t < ag.end_ms:
                extra.append((t, ag.idx, action, "ai.gateway", int(rng.gammavariate(2, 900)) + 200,
                              int(rng.gammavariate(1.5, prompt / 1.5)) + 100, "success", e[7]))
    ev.extend(extra)
    ev.sort(key=itemgetter(0))


def apply_outage(ag, ev, system, t_a, t_b, rng):
    """Every call to `system` in [t_a, t_b) fails; about half are retried once."""
    extra = []
    for i, e in enumerate(ev):
        if e[3] == system and t_a <= e[0] < t_b:
            ev[i] = e[:4] + (rng.randint(60, 400), e[5], "failure") + e[7:]
            if rng.random() < 0.5:
                t = e[0] + rng.randint(1 * SEC, 20 * SEC)
                outcome = "failure" if t < t_b else "success"
                extra.append((t, e[1], e[2], e[3], rng.randint(60, 400) if t < t_b else e[4],
                              e[5], outcome, e[7]))
    ev.extend(x for x in extra if x[0] < ag.end_ms)
    ev.sort(key=itemgetter(0))


# ----------------------------------------------------------------------------- attacks

class Attacker:
    """Injects one incident into an agent's sorted event list and returns its label."""

    def __init__(self, ag, ev, fleet, lo, hi, seed, tag):
        self.ag, self.ev, self.fleet, self.lo, self.hi = ag, ev, fleet, lo, hi
        self.rng = random.Random(f"{seed}:atk:{tag}:{ag.agent_id}")
        self.times = [e[0] for e in ev]
        self.g = Gen(ag, fleet)
        self.g.rng = self.rng

    def anchor(self):
        a = bisect.bisect_left(self.times, self.lo)
        b = bisect.bisect_left(self.times, self.hi)
        if b <= a:
            return None
        return self.rng.randrange(a, b)

    def finish(self, kind, strength, new, note):
        if not new:
            return None
        self.ev.extend(new)
        self.ev.sort(key=itemgetter(0))
        ts = [e[0] for e in new]
        return dict(agent_id=self.ag.agent_id, kind=kind, start=min(ts), end=max(ts),
                    strength=strength, note=note)

    def size_for(self, pi, factor):
        ag = self.ag
        d = ag.pairs[pi][2]
        typ = ag.typ_in if d == "in" else ag.typ_out
        b = int(typ * factor)
        small = self.g.small()
        return (b, small) if d == "in" else (small, b)

    def transfers(self, t0, span, n, size_fn, prefer_out):
        ag, rng = self.ag, self.rng
        sid = self.ev[self.anchor_i][7]
        new = []
        for k in range(n):
            pool = ag.out_idx if (prefer_out and ag.out_idx and rng.random() < 0.7) else (ag.in_idx + ag.out_idx)
            pi = pool[rng.randrange(len(pool))]
            b_in, b_out = size_fn(pi)
            t = t0 + int(span * k / max(1, n - 1) * rng.uniform(0.9, 1.0))
            new.append((t, ag.idx, ag.pairs[pi][0], ag.pairs[pi][1], b_in, b_out, "success", sid))
        return new

    def exfiltration(self, strength):
        ag, rng = self.ag, self.rng
        i = self.anchor_i = self.anchor()
        if i is None:
            return None
        t0 = self.ev[i][0] + rng.randint(SEC, 2 * MIN)
        if strength == "strong":
            big = max(ag.typ_in or 0, ag.typ_out or 0) > 400e3
            if big or rng.random() < 0.5:
                f = 10 ** rng.uniform(2, 4)
                new = self.transfers(t0, rng.uniform(1, 20) * MIN, rng.randint(3, 8),
                                     lambda pi: self.size_for(pi, f * rng.uniform(0.7, 1.3)), True)
                note = f"{len(new)} transfers ~{f:.0f}x typical"
            else:
                mb = rng.uniform(2, 9)
                new = self.transfers(t0, rng.uniform(2, 8) * MIN, rng.randint(50, 150),
                                     lambda pi: (self.g.small(), int(mb * 1e6 * rng.uniform(0.8, 1.2)))
                                     if ag.pairs[pi][2] == "out" else
                                     (int(mb * 1e6 * rng.uniform(0.8, 1.2)), self.g.small()), True)
                note = f"{len(new)} transfers of ~{mb:.1f} MB"
        else:
            f0 = rng.uniform(8, 20)
            new = self.transfers(t0, rng.uniform(4, 10) * MIN, rng.randint(15, 40),
                                 lambda pi: self.size_for(
                                     pi, min(20, max(8, f0 * rng.lognormvariate(0, 0.12)))), False)
            note = f"{len(new)} transfers ~{f0:.1f}x typical"
        return self.finish("exfiltration", strength, new, note)

    def slow_exfiltration(self, strength):
        rng, ev = self.rng, self.ev
        for _ in range(60):
            i = self.anchor()
            if i is None:
                return None
            w = rng.uniform(2, 6) * HOUR
            j = bisect.bisect_left(self.times, ev[i][0] + w)
            idx = [k for k in range(i, j) if ev[k][6] == "success" and
                   ev[k][3] != "ai.gateway"]
            if len(idx) >= 15 and ev[idx[-1]][0] - ev[idx[0]][0] >= HOUR:
                break
        else:
            return None
        changed = []
        for k in idx:
            e, f = ev[k], rng.uniform(2.5, 3.5)
            if e[4] >= e[5]:
                ev[k] = e[:4] + (int(e[4] * f), e[5]) + e[6:]
            else:
                ev[k] = e[:5] + (int(e[5] * f),) + e[6:]
            changed.append(ev[k][0])
        return dict(agent_id=self.ag.agent_id, kind="slow_exfiltration", start=min(changed),
                    end=max(changed), strength=strength,
                    note=f"{len(changed)} transfers x~3 over {w / HOUR:.1f} h")

    def runaway(self, strength):
        ag, rng = self.ag, self.rng
        i = self.anchor()
        if i is None:
            return None
        pm = self.g.mults(self.ev[i][0])[0]
        if strength == "strong":
            mult, dur = rng.uniform(20, 50), rng.uniform(10, 30) * MIN
        else:
            mult, dur = rng.uniform(5, 10), rng.uniform(9.5, 10.5) * MIN
        rate = min(1200.0, ag.pace * pm * mult)
        loopers = [k for k, p in enumerate(ag.pairs) if p[0].startswith("tool_call") or
                   p[0] in ("read", "search")] or list(range(len(ag.pairs)))
        pi = loopers[rng.randrange(len(loopers))]
        retry = rng.random() < (0.4 if strength == "strong" else 0.25)
        fail = rng.uniform(0.5, 0.9) if retry else ag.fail
        t = self.ev[i][0] + rng.randint(SEC, MIN)
        end, sid, new = t + dur, self.ev[i][7], []
        b_in, b_out = self.size_for(pi, 1.0) if ag.pairs[pi][2] in ("in", "out") else (900, 300)
        mean_gap = 60_000 / rate
        while t < end:
            ok = rng.random() >= fail
            new.append((int(t), ag.idx, ag.pairs[pi][0], ag.pairs[pi][1],
                        int(b_in * rng.uniform(0.95, 1.05)) if ok else 120,
                        int(b_out * rng.uniform(0.95, 1.05)), "success" if ok else "failure", sid))
            t += rng.gammavariate(4, mean_gap / 4)
        return self.finish("runaway", strength, new,
                           f"{mult:.1f}x pace {ag.pace * pm:.2f}/min for {dur / MIN:.0f} min"
                           + (" (retry loop)" if retry else ""))

    def first_access(self, strength, variant="sensitive"):
        ag, rng = self.ag, self.rng
        i = self.anchor()
        if i is None:
            return None
        peer_sys = {s for p in self.fleet.peers(ag) for s in p.systems}
        if variant == "peer":
            cands = sorted(s for s in peer_sys if s in SENSITIVE and s not in ag.systems)
        else:
            pool = SENSITIVE_CORE if strength == "strong" else sorted(SENSITIVE)
            cands = [s for s in pool if s not in peer_sys] or [s for s in pool if s not in ag.systems]
        if not cands:
            return None
        system = rng.choice(cands)
        acts = [a for a in CLASSES[sys_class(system)[0]] if a[1] == "in"]
        n, span = (rng.randint(2, 10), rng.uniform(1, 15) * MIN) if strength == "strong" else \
                  (rng.randint(1, 4), rng.uniform(0.5, 3) * MIN)
        t0, sid, new = self.ev[i][0] + rng.randint(SEC, MIN), self.ev[i][7], []
        typ = ag.typ_in or 5000
        for k in range(n):
            outcome = "denied" if k == 0 and rng.random() < 0.2 else "success"
            f = rng.uniform(1, 20) if strength == "strong" else rng.uniform(0.5, 2)
            new.append((t0 + int(span * k / max(1, n - 1)), ag.idx, rng.choice(acts)[0], system,
                        int(typ * f) if outcome == "success" else 0, self.g.small(), outcome, sid))
        return self.finish("first_access", strength, new, f"{variant}: {n} calls to {system}")


# ----------------------------------------------------------------------------- approvals
#
# Only with --approvals, from random streams of their own ("<seed>:apr..."), so the
# traffic without it is unchanged. An event that carries an approval is a 9-tuple: the
# baseline 8 fields + approval_id.

# what the built-in high_risk_action detector treats as high-risk (detectors/high_risk_action.toml)
HIGH_RISK = ["delete", "drop_*", "purge*", "transfer_funds", "payment:*", "grant_*",
             "set_permissions", "create_credential", "tool_call:wire_transfer"]
# high-risk actions that make sense on a system (extra benign ones, and what attacks try)
RISKY = {"k8s.prod-api": ["delete"], "k8s.staging": ["delete"],
         "payments.gateway": ["payment:refund", "payment:capture", "transfer_funds"],
         "finance.ledger": ["transfer_funds", "payment:adjustment"],
         "erp.netsuite": ["payment:vendor_payout"], "billing.portal": ["payment:refund"],
         "iam.admin": ["grant_role", "set_permissions"], "iam.keys": ["create_credential"],
         "warehouse.snowflake": ["drop_table", "purge_partition"],
         "s3://warehouse": ["delete", "purge_prefix"], "s3://raw-events": ["purge_prefix"],
         "s3://research-scratch": ["delete"], "terraform.state": ["delete"],
         "prod.db.replica": ["drop_index"], "crm": ["delete"], "zendesk": ["delete"]}
ATTACK_ANY = [("delete", 5), ("purge_records", 1), ("drop_table", 1), ("grant_admin", 1),
              ("set_permissions", 1), ("create_credential", 1), ("tool_call:wire_transfer", 1),
              ("transfer_funds", 1)]
APPROVERS = ["secops.oncall@corp.example", "change-board@corp.example",
             "it.admin@corp.example", "finance.controller@corp.example"]
DURATIONS = [10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 12 * HOUR,
             DAY, 2 * DAY, 3 * DAY, WEEK, 2 * WEEK, 4 * WEEK]
APR_KINDS = ["forged_approval", "foreign_approval", "expired_approval", "reused_approval"]


def is_high_risk(action):
    return any(fnmatchcase(action, p) for p in HIGH_RISK)


def iso_s(ms):
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Approvals:
    """Approval records for the fleet's high-risk actions, and the approval attacks."""

    def __init__(self, fleet, seed):
        self.fleet, self.seed = fleet, seed
        self.records, self.ids, self.forged = [], set(), set()
        self.by_agent = {}              # agent_id -> [record]
        self.busy = {}                  # agent_id -> [(start, end)] of labelled incidents
        self.n_extra = 0

    def new_id(self, rng, style):
        while True:
            if style == 0:
                aid = f"apr-{rng.randrange(10 ** 7):07d}"
            elif style == 1:
                aid = "APR-" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(10))
            else:
                aid = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-" \
                      f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}"
            if aid not in self.ids and aid not in self.forged:
                self.ids.add(aid)
                return aid

    def record(self, ag, rng, uses, max_uses=None, lead=None, dur=None, style=None, with_systems=None):
        """A record covering the (t, action, system) `uses` of agent `ag`."""
        ts = [u[0] for u in uses]
        lead = lead if lead is not None else log_uniform(rng, 2 * MIN, 5 * HOUR)
        issued = (min(ts) - int(lead)) // SEC * SEC
        if dur is None:
            need = max(ts) - issued + MIN
            i = next((k for k, d in enumerate(DURATIONS) if d > need), len(DURATIONS) - 1)
            i = min(len(DURATIONS) - 1, i + rng.choice([0, 0, 0, 1, 1, 2]))
            dur = max(DURATIONS[i], need)
        if max_uses is None:
            max_uses = len(uses) + (0 if rng.random() < 0.6 else rng.randint(1, 4))
        acts = sorted({u[1] for u in uses})
        if rng.random() < 0.25:   # broader than needed: a pattern or a sibling action
            extra = [a for s in {u[2] for u in uses} for a in RISKY.get(s, [])] + ["purge*", "drop_*"]
            acts = sorted(set(acts) | {rng.choice(extra)})
        if any(a.startswith("payment:") for a in acts) and rng.random() < 0.5:
            acts = sorted({a for a in acts if not a.startswith("payment:")} | {"payment:*"})
        rec = dict(approval_id=self.new_id(rng, style if style is not None else rng.choice([0, 0, 1, 2])),
                   agent_id=ag.agent_id, actions=acts)
        if with_systems is None:
            with_systems = rng.random() < 0.65
        if with_systems:
            systems = sorted({u[2] for u in uses})
            if len(systems) > 1 and all(s.startswith("k8s.") for s in systems) or \
                    (rng.random() < 0.15 and all(s.startswith("k8s.") for s in systems)):
                systems = ["k8s.*"]
            rec["systems"] = systems
        rec["approved_by"] = ag.owner if rng.random() < 0.6 else rng.choice(APPROVERS)
        rec["issued_at"], rec["expires_at"] = iso_s(issued), iso_s(issued + int(dur))
        if max_uses != 1 or rng.random() < 0.5:
            rec["max_uses"] = max_uses
        if rng.random() < 0.3:
            rec["request_id"] = f"{rng.getrandbits(128):032x}"
        if rng.random() < 0.2:
            rec["schema_version"] = 1
        rec["_t"] = (issued, issued + int(dur), max_uses)
        rec["_uses"] = list(uses)
        self.records.append(rec)
        self.by_agent.setdefault(ag.agent_id, []).append(rec)
        return rec

    def add_extras(self, ag, ev, rng):
        """Some agents with a risky system also do (approved) high-risk actions on it."""
        risky = [s for s in ag.systems if s in RISKY and not s.startswith("k8s.")]
        if not risky or rng.random() > 0.4:
            return
        on = [k for k, e in enumerate(ev) if e[3] in risky and e[6] == "success"]
        if not on:
            return
        n = poisson(rng, log_uniform(rng, 0.15, 1.2) * self.fleet.days)
        extra = []
        for _ in range(n):
            e = ev[on[rng.randrange(len(on))]]
            t = e[0] + rng.randint(2 * SEC, 90 * SEC)
            if t >= ag.end_ms:
                continue
            outcome = "failure" if rng.random() < 0.04 else "success"
            extra.append((t, ag.idx, rng.choice(RISKY[e[3]]), e[3], int(80 + rng.gammavariate(2, 300)),
                          int(100 + rng.gammavariate(2, 400)), outcome, e[7]))
        self.n_extra += len(extra)
        ev.extend(extra)
        ev.sort(key=itemgetter(0))

    def approve_benign(self, ag, ev, rng):
        """Give every high-risk event of the agent an approval that covers it."""
        idx = [k for k, e in enumerate(ev) if is_high_risk(e[2])]
        if not idx:
            return
        if ag.sched == "monitor" or ag.sched == "pipeline":
            style = rng.choice(["standing", "standing", "window"])
        else:
            style = rng.choices(["single", "window", "standing"], [0.35, 0.45, 0.2])[0]
        span = {"single": 2 * HOUR, "window": log_uniform(rng, 20 * MIN, 10 * HOUR),
                "standing": rng.choice([1, 2, 3, 7]) * DAY}[style]
        groups, cur = [], []
        for k in idx:
            if cur and (ev[k][0] - ev[cur[0]][0] > span or (style == "single" and rng.random() > 0.15)):
                groups.append(cur)
                cur = []
            cur.append(k)
        if cur:
            groups.append(cur)
        id_style = rng.choice([0, 0, 1, 2])
        for g in groups:
            lead = log_uniform(rng, 2 * MIN, 6 * HOUR) if style != "standing" else \
                log_uniform(rng, 10 * MIN, 12 * HOUR)
            rec = self.record(ag, rng, [(ev[k][0], ev[k][2], ev[k][3]) for k in g], lead=lead,
                              style=id_style)
            rec["_benign"] = True
            for k in g:
                ev[k] = ev[k][:8] + (rec["approval_id"],)

    # -- attacks

    def free_at(self, ag, t0, t1):
        return all(t1 + 3 * HOUR < a or t0 - 3 * HOUR > b for a, b in self.busy.get(ag.agent_id, ()))

    def target(self, ag, rng):
        """(action, system) an attacker would try with this agent."""
        risky = [s for s in ag.systems if s in RISKY]
        if risky and rng.random() < 0.7:
            s = rng.choice(risky)
            return rng.choice(RISKY[s]), s
        acts, w = zip(*ATTACK_ANY)
        return rng.choices(acts, w)[0], rng.choice(ag.systems)

    def attack(self, kind, ag, ev, rng, lo, hi):
        """Inject one approval attack on `ag`; returns its label or None."""
        times = [e[0] for e in ev]
        a, b = bisect.bisect_left(times, lo), bisect.bisect_left(times, hi)
        if b <= a:
            return None
        for _ in range(50):
            i = rng.randrange(a, b)
            t = ev[i][0] + rng.randint(2 * SEC, 2 * MIN)
            if self.free_at(ag, t - DAY if kind == "expired_approval" else t - 4 * HOUR, t + HOUR):
                break
        else:
            return None
        sid = ev[i][7]
        act, system = self.target(ag, rng)
        legit, bad, note = [], [], ""
        if kind == "forged_approval":
            mine = self.by_agent.get(ag.agent_id)
            aid = None
            if mine and rng.random() < 0.4:        # a near copy of one of its own ids
                base = rng.choice(mine)["approval_id"]
                aid = base[:-1] + ("0" if base[-1] != "0" else "1")
            elif rng.random() < 0.2:               # a placeholder
                aid = rng.choice(["approved", "apr-0000001", "ok", "manual-override", "N/A"])
            while aid is None or aid in self.ids:  # or just a plausible id nobody issued
                aid = self.new_id(rng, rng.choice([0, 1, 2]))
                self.ids.discard(aid)
            self.forged.add(aid)
            n = rng.choices([1, 2, 3], [6, 3, 1])[0]
            bad = [(t + k * rng.randint(20 * SEC, 5 * MIN), act, system, aid) for k in range(n)]
            note = f"{n} x {act} on {system} with unknown approval {aid}"
        elif kind == "foreign_approval":
            cands = []
            for r in self.records:
                if r["agent_id"] == ag.agent_id or not r.get("_benign"):
                    continue
                s, e, _ = r["_t"]
                if s + MIN < t < e - 10 * MIN:
                    cands.append(r)
            if not cands:   # take any other agent's benign approval, used in its window
                cands = [r for r in self.records if r.get("_benign") and r["agent_id"] != ag.agent_id
                         and lo < r["_t"][0] and r["_t"][1] < hi and r["_t"][1] - r["_t"][0] > 20 * MIN]
                if not cands:
                    return None
                r = rng.choice(cands)
                t = r["_t"][0] + MIN + rng.randrange(r["_t"][1] - r["_t"][0] - 12 * MIN)
                if not self.free_at(ag, t - 4 * HOUR, t + HOUR):
                    return None
                sid = None
            else:
                r = rng.choice(cands)
            _, act, system = rng.choice(r["_uses"])
            bad = [(t, act, system, r["approval_id"])]
            note = f"{act} on {system} with {r['approval_id']} granted to {r['agent_id']}"
        elif kind == "expired_approval":
            late = log_uniform(rng, 5 * MIN, 36 * HOUR)
            dur = rng.choice(DURATIONS[:7])
            expires = (t - int(late)) // SEC * SEC
            issued = expires - dur
            k = rng.choices([0, 1, 2], [3, 5, 2])[0]
            uses = sorted(issued + rng.randint(MIN, dur - MIN) for _ in range(k)) or \
                [issued + rng.randint(MIN, dur - MIN)]
            rec = self.record(ag, rng, [(u, act, system) for u in uses],
                              max_uses=k + rng.randint(1, 3), lead=uses[0] - issued, dur=dur)
            legit = [(u, act, system, rec["approval_id"]) for u in uses[:k]]
            n = rng.choices([1, 2], [4, 1])[0]
            bad = [(t + j * rng.randint(30 * SEC, 10 * MIN), act, system, rec["approval_id"]) for j in range(n)]
            note = f"{act} on {system} {late / MIN:.0f} min after {rec['approval_id']} expired ({k} uses before)"
        else:  # reused_approval
            own = [r for r in self.by_agent.get(ag.agent_id, ()) if r.get("_benign") and
                   r["_t"][2] == len(r["_uses"]) and lo < r["_t"][1] - 10 * MIN and r["_t"][0] < hi]
            if own and rng.random() < 0.6:
                r = rng.choice(own)
                last = max(u[0] for u in r["_uses"])
                t_lo = max(last + 30 * SEC, lo)
                if t_lo >= r["_t"][1] - 2 * MIN:
                    return None
                t = t_lo + rng.randrange(r["_t"][1] - 2 * MIN - t_lo)
                if not self.free_at(ag, t - 4 * HOUR, t + HOUR):
                    return None
                _, act, system = rng.choice(r["_uses"])
                sid = None
                rec, k = r, r["_t"][2]
            else:
                k = rng.choices([1, 2, 3], [6, 3, 1])[0]
                gap = log_uniform(rng, 1 * MIN, 3 * HOUR)
                uses = sorted(t - int(gap) * (j + 1) // k - rng.randrange(30 * SEC) for j in range(k))
                rec = self.record(ag, rng, [(u, act, system) for u in uses], max_uses=k)
                legit = [(u, act, system, rec["approval_id"]) for u in uses]
                if rec["_t"][1] <= t + 10 * MIN:   # keep the reuse inside the validity window
                    end = t + rng.choice([30 * MIN, HOUR, 4 * HOUR])
                    rec["_t"] = (rec["_t"][0], end, k)
                    rec["expires_at"] = iso_s(end)
            n = rng.choices([1, 2, 3], [5, 3, 2])[0]
            bad = [(t + j * rng.randint(20 * SEC, 8 * MIN), act, system, rec["approval_id"]) for j in range(n)]
            bad = [x for x in bad if x[0] < rec["_t"][1] - MIN] or bad[:1]
            note = f"{len(bad)} extra use(s) of {rec['approval_id']} (max_uses {k}) for {act} on {system}"
        new = []
        for j, (tt, aa, ss, aid) in enumerate(legit + bad):
            if tt >= ag.end_ms or tt < ag.start_ms:
                return None
            ok = j < len(legit) or rng.random() > 0.1
            new.append((tt, ag.idx, aa, ss, int(80 + rng.gammavariate(2, 300)) if ok else 60,
                        int(100 + rng.gammavariate(2, 400)), "success" if ok else "failure",
                        sid if j >= len(legit) else None, aid))
        ev.extend(new)
        ev.sort(key=itemgetter(0))
        ts = [x[0] for x in bad]
        self.busy.setdefault(ag.agent_id, []).append((min(ts), max(ts)))
        return dict(agent_id=ag.agent_id, kind=kind, start=min(ts), end=max(ts), strength="strong",
                    note=note, detector="high_risk_action")

    def write(self, path):
        self.records.sort(key=lambda r: (r["_t"][0], r["approval_id"]))
        with open(path, "w") as f:
            for r in self.records:
                f.write(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}) + "\n")


def apply_approvals(fleet, lists, labels, seed, path):
    """Approve the benign high-risk actions, inject the approval attacks, write the records."""
    ap = Approvals(fleet, seed)
    for ag, ev in zip(fleet.agents, lists):
        rng = random.Random(f"{seed}:apr:{ag.agent_id}")
        ap.add_extras(ag, ev, rng)
        ap.approve_benign(ag, ev, rng)
    for lab in labels:
        ap.busy.setdefault(lab["agent_id"], []).append((lab["start"], lab["end"]))
    benign = sum(1 for ev in lists for e in ev if len(e) > 8)
    rng = random.Random(f"{seed}:apr-attacks")
    per_kind = max(1, round(len(fleet.agents) / 10))
    order = list(range(len(fleet.agents)))
    rng.shuffle(order)
    out, pos = [], 0
    for kind in APR_KINDS:
        placed, tries = 0, 0
        while placed < per_kind and tries < 20 * per_kind:
            tries += 1
            ai = order[pos % len(order)]
            pos += 1
            ag, ev = fleet.agents[ai], lists[ai]
            lo = max(ag.start_ms, fleet.t0) + DAY
            hi = min(ag.end_ms, fleet.t_end) - 2 * HOUR
            lab = ap.attack(kind, ag, ev, random.Random(f"{seed}:apr-atk:{kind}:{placed}:{ag.agent_id}"), lo, hi)
            if lab:
                out.append(lab)
                placed += 1
        if placed < per_kind:
            print(f"warning: placed {placed} of {per_kind} {kind}", file=sys.stderr)
    ap.write(path)
    print(f"fleetgen: approvals: {len(ap.records)} records, {benign} approved high-risk events "
          f"({ap.n_extra} extra), {len(out)} approval attacks -> {path}", file=sys.stderr)
    return out


# ----------------------------------------------------------------------------- scenario

PLANS = {  # (kind, strength, variant, count)
    "strong": [("exfiltration", "strong", None, 10), ("first_access", "strong", None, 10),
               ("runaway", "strong", None, 10)],
    "moderate": [("exfiltration", "moderate", None, 10), ("slow_exfiltration", "moderate", None, 10),
                 ("runaway", "moderate", "low", 5), ("runaway", "moderate", None, 5),
                 ("first_access", "moderate", "peer", 5), ("first_access", "moderate", "sensitive", 5)],
    "change": [("exfiltration", "moderate", None, 3), ("slow_exfiltration", "moderate", None, 2),
               ("runaway", "moderate", "low", 1), ("runaway", "moderate", None, 1),
               ("first_access", "moderate", "peer", 1), ("first_access", "moderate", "sensitive", 2)],
    "mixed": [("exfiltration", "strong", None, 3), ("first_access", "strong", None, 3),
              ("runaway", "strong", None, 3), ("exfiltration", "moderate", None, 3),
              ("slow_exfiltration", "moderate", None, 3), ("runaway", "moderate", "low", 2),
              ("runaway", "moderate", None, 1), ("first_access", "moderate", "peer", 2),
              ("first_access", "moderate", "sensitive", 1)],
}


def plan_changes(fleet, rng, days):
    """Legitimate changes for `change`/`mixed`; mutates agents and returns the records."""
    def day(x):
        return x if days >= 17 else max(1, min(days - 1, int(round(x * days / 21))))
    t0, ags, n = fleet.t0, fleet.agents, len(fleet.agents)
    changes, order = [], list(ags)
    rng.shuffle(order)
    joiners = order[:max(1, round(n * 0.05))]
    retiree = order[len(joiners)]
    for ag in joiners:
        ag.start_ms = t0 + rng.randint(day(6), max(day(6), day(9))) * DAY + rng.randrange(DAY)
        changes.append(dict(kind="join", agents=[ag.agent_id], start=ag.start_ms))
    retiree.end_ms = t0 + day(13) * DAY + rng.randrange(DAY)
    changes.append(dict(kind="retire", agents=[retiree.agent_id], start=retiree.end_ms))
    busy = set(joiners) | {retiree}
    rest = [a for a in order if a not in busy]
    job = rest[:min(10, max(1, n // 8))]
    t_job = t0 + day(11) * DAY
    for ag in job:
        ag.pace_change = (t_job, 2.0, 3.0)
    changes.append(dict(kind="job_change", agents=[a.agent_id for a in job], start=t_job,
                        detail="pace x2, transfer sizes x3, for good"))
    office = [a for a in rest[len(job):] if a.sched == "office"]
    shifted = office[:min(6, max(1, n // 12))]
    for ag in shifted:
        ag.shift = (day(12), 3.0)
    changes.append(dict(kind="schedule_shift", agents=[a.agent_id for a in shifted],
                        start=t0 + day(12) * DAY, detail="working day 3 hours later (local days)"))
    t_roll = t0 + day(8) * DAY + 13 * HOUR
    alive = [a for a in ags if a.start_ms <= t_roll < a.end_ms]
    adopters = rng.sample(alive, int(round(0.6 * len(alive))))
    for ag in adopters:
        ag.ai_adopt = (t_roll + rng.randrange(4 * HOUR), rng.uniform(0.05, 0.25), log_uniform(rng, 1e3, 8e3))
    changes.append(dict(kind="rollout", system="ai.gateway", agents=sorted(a.agent_id for a in adopters),
                        start=t_roll, end=t_roll + 4 * HOUR))
    usage = {}
    for ag in ags:
        for s in ag.systems:
            if s not in SENSITIVE:
                usage[s] = usage.get(s, 0) + 1
    system = max(sorted(usage), key=usage.get)
    t_out = t0 + day(10) * DAY + 14 * HOUR + rng.randrange(2 * HOUR)
    users = [a.agent_id for a in ags if system in a.systems]
    changes.append(dict(kind="outage", system=system, agents=users, start=t_out, end=t_out + 90 * MIN))
    fleet.outage = (system, t_out, t_out + 90 * MIN)
    fleet.changed = set(a.agent_id for a in joiners + [retiree] + job + shifted)
    return changes


def assign_attacks(fleet, scenario, rng, min_day):
    """Pick distinct victims for the scenario's plan; returns [(agent, kind, strength, variant)]."""
    plan = PLANS[scenario]
    free = [a for a in fleet.agents if a.agent_id not in fleet.changed and
            a.end_ms - max(a.start_ms + 4 * DAY, fleet.t0 + min_day * DAY) > 6 * HOUR]
    total = sum(p[3] for p in plan)
    scale = min(1.0, 0.5 * len(free) / total)
    rng.shuffle(free)
    out = []
    for kind, strength, variant, count in plan:
        for _ in range(max(1, int(round(count * scale))) if free else 0):
            def ok(a):
                if kind == "first_access":
                    if a.sensitive:
                        return False
                    if variant == "peer":
                        return any(s in SENSITIVE and s not in a.systems
                                   for p in fleet.peers(a) for s in p.systems)
                if variant == "low":
                    return 0.3 <= a.pace <= 1.5
                return True
            cands = [a for a in free if ok(a)]
            if not cands and variant == "low":   # fall back to the slowest agents left
                cands = sorted(free, key=lambda a: a.pace)[:1]
            if not cands:
                print(f"warning: no victim for {kind}/{strength}/{variant}", file=sys.stderr)
                continue
            a = cands[0]
            free.remove(a)
            out.append((a, kind, strength, variant))
    return out


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


def write_events(path, fleet, lists, seed):
    """Merge per-agent sorted lists and write JSONL; returns the number of events."""
    day_cache, n = {}, 0
    ags = fleet.agents
    with open(path, "w", buffering=1 << 20) as f:
        buf = []
        for t, ai, action, system, b_in, b_out, outcome, sess, *apr in heapq.merge(*lists, key=itemgetter(0)):
            day, ms = divmod(t, DAY)
            pre = day_cache.get(day)
            if pre is None:
                pre = day_cache[day] = datetime.fromtimestamp(day * 86400, tz=timezone.utc).strftime("%Y-%m-%dT")
            h, ms = divmod(ms, HOUR)
            m, ms = divmod(ms, MIN)
            s, ms = divmod(ms, SEC)
            ag = ags[ai]
            line = (f'{{"event_id":"fg{seed}-{n:08d}","time":"{pre}{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z",'
                    f'"agent_id":"{ag.agent_id}","action":"{action}","system":"{system}",'
                    f'"owner":"{ag.owner}","credential_id":"cred-{ag.agent_id}-w{(t - fleet.t0 + ag.rot_shift) // WEEK}"')
            if sess is not None:
                line += f',"session_id":"s-{ag.agent_id}-{sess}"'
            line += f',"bytes_in":{b_in},"bytes_out":{b_out}'
            if outcome != "success" or ag.explicit_success:
                line += f',"outcome":"{outcome}"'
            if apr:
                line += f',"approval_id":{json.dumps(apr[0])}'
            buf.append(line + "}\n")
            n += 1
            if len(buf) >= 20000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return n


def generate(args):
    t_start = time.time()
    start = datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    t0 = int(start.timestamp() * 1000)
    days = args.days or (21 if args.scenario == "change" else 14)
    fleet = Fleet(args.agents, days, args.seed, t0)
    fleet.start_weekday = start.weekday()
    fleet.changed, fleet.outage = set(), None
    crng = random.Random(f"{args.seed}:changes")
    changes = plan_changes(fleet, crng, days) if args.scenario in ("change", "mixed") else []
    if args.scenario == "change":
        min_day = 14 if days >= 17 else max(4, int(days * 0.67))
    elif args.scenario == "mixed":
        min_day = 4
    else:
        min_day = 4
    attacks = assign_attacks(fleet, args.scenario, random.Random(f"{args.seed}:plan:{args.scenario}"), min_day)
    by_agent = {a.agent_id: (kind, st, var) for a, kind, st, var in attacks}
    lists, labels = [], []
    for ag in fleet.agents:
        ev = Gen(ag, fleet).generate()
        rng = random.Random(f"{args.seed}:chg:{ag.agent_id}")
        if ag.ai_adopt:
            apply_rollout(ag, ev, rng)
        if fleet.outage:
            apply_outage(ag, ev, *fleet.outage, rng)
        if ag.agent_id in by_agent:
            kind, strength, variant = by_agent[ag.agent_id]
            lo = max(ag.start_ms + 4 * DAY, t0 + min_day * DAY)
            atk = Attacker(ag, ev, fleet, lo, min(ag.end_ms, fleet.t_end) - 2 * HOUR, args.seed,
                           f"{args.scenario}:{kind}:{strength}")
            if kind == "first_access":
                lab = atk.first_access(strength, variant or "sensitive")
            else:
                lab = getattr(atk, kind)(strength)
            if lab:
                labels.append(lab)
            else:
                print(f"warning: could not place {kind} on {ag.agent_id}", file=sys.stderr)
        lists.append(ev)
    if args.approvals:
        labels += apply_approvals(fleet, lists, labels, args.seed, args.approvals)
    n = write_events(args.out, fleet, lists, args.seed)
    labels.sort(key=itemgetter("start"))
    for lab in labels:
        lab["start"], lab["end"] = iso(lab["start"]), iso(lab["end"])
    with open(args.labels, "w") as f:
        json.dump(labels, f, indent=1)
    if args.changes:
        for c in changes:
            for k in ("start", "end"):
                if k in c:
                    c[k] = iso(c[k])
        with open(args.changes, "w") as f:
            json.dump(changes, f, indent=1)
    kinds = {}
    for lab in labels:
        kinds[lab["kind"]] = kinds.get(lab["kind"], 0) + 1
    print(f"fleetgen: {args.scenario}: {len(fleet.agents)} agents x {days} days, {n} events, "
          f"{len(labels)} incidents {kinds}, {len(changes)} changes, {time.time() - t_start:.1f}s",
          file=sys.stderr)


def validate(path):
    """Check every line parses, has the required fields and the file is time-sorted."""
    req = ("event_id", "time", "agent_id", "action", "system")
    prev, ids, n, bad = "", set(), 0, 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                e = json.loads(line)
                assert all(isinstance(e.get(k), str) and e[k] for k in req), "missing field"
                assert len(e["time"]) == 24 and e["time"].endswith("Z"), "time format"
                datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
                assert e["time"] >= prev, "not sorted"
                assert e["event_id"] not in ids, "duplicate id"
                for k in ("bytes_in", "bytes_out"):
                    assert isinstance(e.get(k, 0), int) and e.get(k, 0) >= 0, k
                assert e.get("outcome", "success") in ("success", "failure", "denied"), "outcome"
                assert isinstance(e.get("approval_id", ""), str), "approval_id"
            except Exception as exc:  # noqa: BLE001 - report and go on
                bad += 1
                if bad <= 5:
                    print(f"line {n}: {exc}", file=sys.stderr)
                continue
            prev = e["time"]
            ids.add(e["event_id"])
    print(f"{path}: {n} lines, {bad} bad")
    return bad == 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scenario", choices=sorted(PLANS), default="strong")
    p.add_argument("--agents", type=int, default=120)
    p.add_argument("--days", type=int, default=None, help="default 14 (21 for change)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default="2026-03-02", help="first day (UTC), YYYY-MM-DD")
    p.add_argument("--out", default="events.jsonl")
    p.add_argument("--labels", default="labels.json")
    p.add_argument("--changes", default=None, help="write legitimate changes here (JSON)")
    p.add_argument("--approvals", default=None, metavar="FILE",
                   help="approve the high-risk actions (agent-approval v1 JSON lines written to FILE) "
                        "and inject approval attacks (forged, foreign, expired, reused)")
    p.add_argument("--validate", metavar="EVENTS", help="only validate an events file")
    args = p.parse_args()
    if args.validate:
        sys.exit(0 if validate(args.validate) else 1)
    generate(args)


if __name__ == "__main__":
    main()
