#!/usr/bin/env python3
"""fleetscore: score agentwatch alerts against fleetgen labels.

    fleetscore.py ALERTS.jsonl LABELS.json [--events N | --events-file EVENTS.jsonl]
                  [--agents A --days D] [--agent-days X] [--summary FILE]

ALERTS.jsonl may mix alert objects (`alert_id`, `agent_id`, `time`, `detector`...) and
command objects (`command_id`, `action`, `agent_id`, `time`). An alert on an incident's
agent between the incident's start and end + 30 min detects it; every other alert is a
false alert. A label with a `detector` (e.g. the approval attacks, held to
`high_risk_action`) counts only that detector's alerts; the others in its window are
neither hits nor false alerts (as `agentwatch replay --labels`). Prints recall per
incident kind (and per strength when labels carry it; with the first alert's detector
and, for policy alerts, its `evidence.context.rule`), false alerts (total, per
detector and rule, per 10k events, per agent-day), commands against healthy agents, and
the missed incidents. Always exits 0.
"""

import argparse
import json
import signal
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone

GRACE_MS = 30 * 60_000


def to_ms(value):
    """RFC 3339 string (any fraction, Z or offset) or epoch milliseconds -> epoch ms."""
    if isinstance(value, (int, float)):
        return int(value)
    s = value.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    if "." in s:  # fromisoformat before 3.11 wants exactly 3 or 6 fraction digits
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        s = head + "." + (rest[:i] + "000000")[:6] + rest[i:]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def load_alerts(path):
    """Split the file into (alerts, commands); unparseable lines are counted and skipped."""
    alerts, commands, bad = [], [], 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                if "command_id" in obj and "action" in obj:
                    commands.append(dict(agent_id=obj["agent_id"], action=obj["action"],
                                         t=to_ms(obj["time"])))
                elif "alert_id" in obj or "detector" in obj:
                    det = obj.get("detector") or {}
                    ctx = (obj.get("evidence") or {}).get("context") or {}
                    alerts.append(dict(agent_id=obj["agent_id"], t=to_ms(obj["time"]),
                                       detector=det.get("id", "?") if isinstance(det, dict) else str(det),
                                       kind=det.get("kind", "?") if isinstance(det, dict) else "?",
                                       severity=obj.get("severity"), anomaly=obj.get("anomaly"),
                                       rule=ctx.get("rule") if isinstance(ctx, dict) else None,
                                       event_ids=obj.get("event_ids") or []))
                else:
                    bad += 1
            except (ValueError, KeyError, TypeError):
                bad += 1
    return alerts, commands, bad


def count_events(path):
    """(events, agent-days with at least one event, agents) of an events file."""
    n, days, agents = 0, set(), set()
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            n += 1
            try:
                e = json.loads(line)
            except ValueError:
                continue
            t = e.get("time")
            day = t[:10] if isinstance(t, str) else int(t) // 86_400_000
            days.add((e.get("agent_id"), day))
            agents.add(e.get("agent_id"))
    return n, len(days), agents


def fmt_ms(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + "Z"


def main():
    p = argparse.ArgumentParser(description="score alerts against fleetgen labels")
    p.add_argument("alerts")
    p.add_argument("labels")
    p.add_argument("--events", type=int, help="number of events replayed")
    p.add_argument("--events-file", help="count events and agent-days from this file")
    p.add_argument("--agents", type=int, help="agents (for agent-days, without an events file)")
    p.add_argument("--days", type=float, help="days (for agent-days, without an events file)")
    p.add_argument("--agent-days", type=float, help="agent-days, overriding any estimate")
    p.add_argument("--summary", metavar="FILE",
                   help="also write the figures as one JSON object to FILE (scripts/heldout.sh reads it)")
    args = p.parse_args()

    with open(args.labels) as f:
        incidents = json.load(f)
    for inc in incidents:
        inc["s"], inc["e"] = to_ms(inc["start"]), to_ms(inc["end"])
        inc["hits"] = []
    alerts, commands, bad = load_alerts(args.alerts)

    n_events, agent_days, agents = args.events, None, set()
    if args.events_file:
        n, agent_days, agents = count_events(args.events_file)
        n_events = n_events or n
    if args.agents and args.days:
        agent_days = agent_days or args.agents * args.days
    if args.agent_days:
        agent_days = args.agent_days

    by_agent = defaultdict(list)
    for inc in incidents:
        by_agent[inc["agent_id"]].append(inc)
    false = []
    for a in alerts:
        matched = False
        for inc in by_agent.get(a["agent_id"], ()):
            if inc["s"] <= a["t"] <= inc["e"] + GRACE_MS:
                if inc.get("detector") in (None, a["detector"]):
                    inc["hits"].append(a)
                matched = True   # another detector in a detector-bound window: not false either
        if not matched:
            false.append(a)

    print(f"alerts: {len(alerts)}  commands: {len(commands)}"
          + (f"  unparsed lines: {bad}" if bad else "")
          + (f"  events: {n_events}" if n_events else "")
          + (f"  agent-days: {agent_days:g}" if agent_days else ""))

    print("\nrecall per incident kind:")
    groups = defaultdict(list)
    for inc in incidents:
        groups[inc["kind"]].append(inc)
    tot_hit = 0
    for kind in sorted(groups):
        incs = groups[kind]
        hit = sum(1 for i in incs if i["hits"])
        tot_hit += hit
        line = f"  {kind:20s} {hit:3d}/{len(incs):<3d} ({100.0 * hit / len(incs):5.1f}%)"
        strengths = sorted({i.get("strength") for i in incs if i.get("strength")})
        if len(strengths) > 1:
            line += "  " + "  ".join(
                f"{s}: {sum(1 for i in incs if i.get('strength') == s and i['hits'])}/"
                f"{sum(1 for i in incs if i.get('strength') == s)}" for s in strengths)
        dets = Counter(a["detector"] for i in incs for a in i["hits"][:1])
        if dets:
            line += "  first by: " + ", ".join(f"{d}={c}" for d, c in dets.most_common())
        rules = Counter(a["rule"] for i in incs for a in i["hits"][:1] if a.get("rule"))
        if rules:
            line += "  rule: " + ", ".join(f"{r}={c}" for r, c in rules.most_common())
        held = sorted({i["detector"] for i in incs if i.get("detector")})
        if held:
            line += "  (held to " + ", ".join(held) + ")"
        print(line)
    if incidents:
        print(f"  {'all':20s} {tot_hit:3d}/{len(incidents):<3d} ({100.0 * tot_hit / len(incidents):5.1f}%)")
        delays = sorted((min(a["t"] for a in i["hits"]) - i["s"]) / 60_000 for i in incidents if i["hits"])
        if delays:
            print(f"  time to first alert (min): median {delays[len(delays) // 2]:.1f}, max {delays[-1]:.1f}")

    print(f"\nfalse alerts: {len(false)}")
    if n_events:
        print(f"  per 10k events: {10_000.0 * len(false) / n_events:.3f}")
    if agent_days:
        print(f"  per agent-day:  {len(false) / agent_days:.4f}")
    for det, c in Counter(a["detector"] for a in false).most_common():
        kinds = Counter(a["anomaly"] for a in false if a["detector"] == det)
        extra = (f" per 10k: {10_000.0 * c / n_events:.3f}" if n_events else "")
        print(f"  {det:28s} {c:6d}{extra}  ({', '.join(f'{k}={v}' for k, v in kinds.most_common(3))})")
        rules = Counter(a["rule"] for a in false if a["detector"] == det and a.get("rule"))
        if rules:
            print(f"  {'':28s} rules: " + ", ".join(f"{k}={v}" for k, v in rules.most_common()))
    worst = Counter(a["agent_id"] for a in false).most_common(5)
    if worst:
        print("  noisiest agents: " + ", ".join(f"{a}={c}" for a, c in worst))

    attacked = set(by_agent)
    healthy_hard, healthy_soft = defaultdict(Counter), defaultdict(Counter)
    outside = Counter()
    for c in commands:
        if c["agent_id"] not in attacked:
            target = healthy_soft if c["action"] == "require_approval" else healthy_hard
            target[c["agent_id"]][c["action"]] += 1
        elif not any(i["s"] <= c["t"] <= i["e"] + GRACE_MS for i in by_agent[c["agent_id"]]):
            outside[c["action"]] += 1
    print(f"\nhealthy agents revoked or suspended: {len(healthy_hard)}")
    for a in sorted(healthy_hard):
        print(f"  {a}: " + ", ".join(f"{k}={v}" for k, v in sorted(healthy_hard[a].items())))
    print(f"healthy agents sent require_approval: {len(healthy_soft)}")
    for a in sorted(healthy_soft):
        print(f"  {a}: require_approval={healthy_soft[a]['require_approval']}")
    if outside:
        print("commands on attacked agents outside their incident windows: "
              + ", ".join(f"{k}={v}" for k, v in sorted(outside.items())))
    if agents:
        print(f"healthy agents in events: {len(agents - attacked)} of {len(agents)}")

    missed = [i for i in incidents if not i["hits"]]
    print(f"\nmissed incidents: {len(missed)}")
    for i in sorted(missed, key=lambda i: (i["kind"], i["s"])):
        note = f"  [{i.get('strength', '')}] {i.get('note', '')}" if i.get("note") else ""
        print(f"  {i['kind']:18s} {i['agent_id']:24s} {fmt_ms(i['s'])} .. {fmt_ms(i['e'])}{note}")
    if args.summary:
        summary = {
            "events": n_events,
            "incidents": len(incidents),
            "detected": sum(1 for i in incidents if i["hits"]),
            "recall_by_kind": {k: [sum(1 for i in v if i["hits"]), len(v)] for k, v in sorted(groups.items())},
            "false_alerts": len(false),
            "false_by_detector": dict(Counter(a["detector"] for a in false).most_common()),
            "healthy_revoked_or_suspended": len(healthy_hard),
            "healthy_require_approval": len(healthy_soft),
            "missed": [{"kind": i["kind"], "agent_id": i["agent_id"], "start": fmt_ms(i["s"])}
                       for i in sorted(missed, key=lambda i: (i["kind"], i["s"]))],
        }
        with open(args.summary, "w") as f:
            json.dump(summary, f)
            f.write("\n")
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    main()
