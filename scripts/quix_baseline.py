#!/usr/bin/env python3
"""The naive per-agent z-score job on Quix Streams: the peer in the Kafka comparison.

The job of scripts/zscore_naive.py (per agent, the running mean and variance of log
bytes per event and of calls per minute, and the systems it has touched; an event is
flagged when either z-score exceeds 4 or the system is new after 100 events), written
as a Quix Streams application: the state lives in Quix's RocksDB store, keyed by the
record key (the agent id), with Quix's changelog topics, and flagged events go to an
output topic. scripts/kafka-load.sh runs it on the same topic as the bare consumer and
`agentwatch run` when QUIX=1, and prints its records/s from its first record to its
last, as the other two measure.

    quix_baseline.py BROKERS TOPIC RECORDS STATE_DIR

Needs `pip install quixstreams` (kafka-load.sh makes a virtualenv for it).
"""

import math
import sys
import time

from quixstreams import Application, State

from zscore_naive import Running, event_ms


def running(triple):
    """The Running statistics held in the agent's state as [n, mean, m2]."""
    stats = Running()
    stats.n, stats.mean, stats.m2 = triple
    return stats


def stored(stats):
    """The state form of Running statistics."""
    return [stats.n, stats.mean, stats.m2]


def main(brokers, topic_name, records, state_dir):
    app = Application(
        broker_address=brokers,
        consumer_group="quix-baseline",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        use_changelog_topics=True,
        loglevel="WARNING",
    )
    events = app.topic(topic_name, value_deserializer="json")
    alerts = app.topic(topic_name + "-quix-alerts", value_serializer="json")
    seen = {"count": 0, "first": None}

    def score(event, state: State):
        now = time.perf_counter()
        if seen["first"] is None:
            seen["first"] = now
        seen["count"] += 1
        size = math.log1p(event.get("bytes_in", 0) + event.get("bytes_out", 0))
        minute = event_ms(event["time"]) // 60_000
        agent = state.get("agent", None) or {
            "bytes": [0, 0.0, 0.0], "rate": [0, 0.0, 0.0],
            "systems": [], "minute": None, "calls": 0, "events": 0,
        }
        sizes, rate = running(agent["bytes"]), running(agent["rate"])
        alert = sizes.z(size) > 4.0
        if agent["minute"] != minute:
            if agent["minute"] is not None:
                rate.add(agent["calls"])
            agent["minute"], agent["calls"] = minute, 0
        agent["calls"] += 1
        alert |= rate.z(agent["calls"]) > 4.0
        system = event["system"]
        alert |= agent["events"] >= 100 and system not in agent["systems"]
        sizes.add(size)
        agent["bytes"], agent["rate"] = stored(sizes), stored(rate)
        if system not in agent["systems"]:
            agent["systems"].append(system)
        agent["events"] += 1
        state.set("agent", agent)
        if seen["count"] >= records:
            elapsed = now - seen["first"]
            print(f"quix streams: {seen['count']} records in {elapsed:.2f} s "
                  f"= {seen['count'] / max(elapsed, 1e-9):.0f} records/s", flush=True)
            app.stop()
        return {"agent_id": event["agent_id"], "event_id": event.get("event_id")} if alert else None

    sdf = app.dataframe(events)
    sdf = sdf.apply(score, stateful=True)
    sdf = sdf.filter(lambda flagged: flagged is not None)
    sdf.to_topic(alerts)
    app.run()
    if seen["count"] < records:
        print(f"quix_baseline.py: stopped after {seen['count']} of {records} records",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
