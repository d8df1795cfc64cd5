#!/usr/bin/env python3
"""The naive per-agent z-score job in plain Python: the yardstick for replay's speed.

Per agent it keeps the running mean and variance of log bytes per event and of calls
per minute, and the set of systems it has touched; an event is flagged when either
z-score exceeds 4 or the system is new after 100 events. This is the afternoon script
a security team would write before reaching for agentwatch, so `scripts/bench.sh`
reports replay's events/s as a multiple of this script's on the same file.

    scripts/zscore_naive.py EVENTS.jsonl
"""

import json
import math
import sys
import time
from datetime import datetime


class Running:
    """Welford's running mean and variance."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def z(self, x):
        if self.n < 30:
            return 0.0
        sd = math.sqrt(self.m2 / (self.n - 1)) or 1e-9
        return (x - self.mean) / sd

    def add(self, x):
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)


class Agent:
    __slots__ = ("bytes", "rate", "systems", "minute", "calls", "events")

    def __init__(self):
        self.bytes, self.rate = Running(), Running()
        self.systems, self.minute, self.calls, self.events = set(), None, 0, 0


def event_ms(value):
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def main(path):
    started = time.perf_counter()
    agents, events, flagged = {}, 0, 0
    with open(path, "rb") as lines:
        for line in lines:
            try:
                event = json.loads(line)
                agent_id, system = event["agent_id"], event["system"]
                minute = event_ms(event["time"]) // 60_000
            except (ValueError, KeyError, TypeError):
                continue
            events += 1
            agent = agents.get(agent_id)
            if agent is None:
                agent = agents[agent_id] = Agent()
            size = math.log1p(event.get("bytes_in", 0) + event.get("bytes_out", 0))
            alert = agent.bytes.z(size) > 4.0
            if agent.minute != minute:
                if agent.minute is not None:
                    agent.rate.add(agent.calls)
                agent.minute, agent.calls = minute, 0
            agent.calls += 1
            alert |= agent.rate.z(agent.calls) > 4.0
            alert |= agent.events >= 100 and system not in agent.systems
            flagged += alert
            agent.bytes.add(size)
            agent.systems.add(system)
            agent.events += 1
    seconds = time.perf_counter() - started
    print(
        f"zscore_naive: {events} events, {len(agents)} agents, {flagged} flagged "
        f"in {seconds:.3f} s ({events / max(seconds, 1e-9):.0f} events/s)"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: zscore_naive.py EVENTS.jsonl")
    main(sys.argv[1])
