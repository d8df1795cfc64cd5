#!/usr/bin/env bash
# Detection on traffic it was not shaped on, in one command: generates the held-out
# fleets (scripts/fleetgen.py and scripts/fleetgen2.py with fixed seeds; cached, so
# later runs only replay), replays each through agentwatch, scores it with
# scripts/fleetscore.py and prints one line per set against the detection issue's bars
# (recall; false alerts per 10k events, leaving out high_risk_action, whose alerts on
# this traffic are unapproved deletes the generators do not label; healthy agents
# revoked or suspended).
#
#   scripts/heldout.sh [--dir DIR] [--bin AGENTWATCH] [--detectors DIR] [--tag TAG]
#                      [--jobs N] [SET...]
#
# --detectors replays with a tuned detector directory instead of the built-in one (a
# copy of detectors/ with other budgets or params), to see what a change costs and buys.
# SET: strongN, moderateN, changeN (fleetgen.py, seed N; 14 days, change 21) or gN
# (fleetgen2.py, seed N; 14 days of attacks, or 21 days of change for the seeds in
# G_CHANGE). Default: the eighteen sets the README's figures come from.
# DIR (default ~/.cache/agentwatch/heldout) keeps the generated sets, and each run's
# alerts, scores and summaries under runs/TAG (default: the binary's commit).
# Generating all eighteen sets takes 15–30 minutes on 2 cores; replaying and
# scoring them about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

dir="${XDG_CACHE_HOME:-$HOME/.cache}/agentwatch/heldout"
bin=""
detectors=()
tag=""
jobs=2
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --detectors) detectors=(--detectors "$(realpath "$2")"); shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "heldout.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) sets+=("$1"); shift ;;
  esac
done
[ ${#sets[@]} -gt 0 ] || sets=(strong3 moderate3 change5 strong11 moderate11 change11
  moderate21 moderate22 change23 moderate31 change33 moderate41 change43
  g101 g102 g103 g104 g105)
G_CHANGE=" 102 105 107 "

if [ -z "$bin" ]; then
  cargo build --release --quiet --bin agentwatch
  bin="${CARGO_TARGET_DIR:-target}/release/agentwatch"
fi
[ -x "$bin" ] || { echo "heldout.sh: $bin is not an executable" >&2; exit 2; }
[ -n "$tag" ] || tag=$(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD || echo -dirty)${detectors[1]:+-$(basename "${detectors[1]}")}
mkdir -p "$dir/sets" "$dir/runs/$tag"

# The generator command line of one set, or nothing for a name it does not know.
generator() {
  local name=$1 out="$dir/sets/$1"
  case "$name" in
    strong[0-9]*|moderate[0-9]*)
      local scenario=${name%%[0-9]*} seed=${name##*[a-z]}
      echo "python3 $repo/scripts/fleetgen.py --scenario $scenario --agents 120 --days 14 --seed $seed --out $out.jsonl --labels $out.labels.json" ;;
    change[0-9]*)
      echo "python3 $repo/scripts/fleetgen.py --scenario change --agents 120 --days 21 --seed ${name#change} --out $out.jsonl --labels $out.labels.json --changes $out.changes.json" ;;
    g[0-9]*)
      local seed=${name#g}
      if [[ "$G_CHANGE" == *" $seed "* ]]; then
        echo "python3 $repo/scripts/fleetgen2.py --seed $seed --agents 120 --days 21 --scenario change --out $out.jsonl --labels $out.labels.json --changes $out.changes.json"
      else
        echo "python3 $repo/scripts/fleetgen2.py --seed $seed --agents 120 --days 14 --scenario attacks --out $out.jsonl --labels $out.labels.json"
      fi ;;
  esac
}

missing=()
for s in "${sets[@]}"; do
  [ -n "$(generator "$s")" ] || { echo "heldout.sh: unknown set '$s' (strongN, moderateN, changeN or gN)" >&2; exit 2; }
  [ -s "$dir/sets/$s.labels.json" ] || missing+=("$s")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== generating ${#missing[@]} set(s) into $dir/sets: ${missing[*]}" >&2
  for s in "${missing[@]}"; do
    # The labels file is written last, so a set with labels is complete.
    echo "$(generator "$s") >/dev/null && echo '   generated $s' >&2"
  done | xargs -P "$jobs" -I{} bash -c {}
fi

echo "== replaying ${#sets[@]} set(s) with $bin (tag $tag)" >&2
run="$dir/runs/$tag"
for s in "${sets[@]}"; do
  echo "'$bin' replay ${detectors[*]} --input '$dir/sets/$s.jsonl' --output '$run/$s.alerts.jsonl' 2>'$run/$s.log' \
    && python3 '$repo/scripts/fleetscore.py' '$run/$s.alerts.jsonl' '$dir/sets/$s.labels.json' \
       --events-file '$dir/sets/$s.jsonl' --summary '$run/$s.summary.json' >'$run/$s.score.txt' \
    || { echo 'heldout.sh: $s failed, see $run/$s.log' >&2; exit 255; }"
done | xargs -P "$jobs" -I{} bash -c {}

python3 - "$run" "${sets[@]}" <<'PY'
import json, sys
run, sets = sys.argv[1], sys.argv[2:]
print(f"{'set':12s} {'recall':>13s} {'false/10k':>9s} {'revoked':>7s}  missed")
tot_hit = tot_inc = tot_false = tot_events = 0
for s in sets:
    with open(f"{run}/{s}.summary.json") as f:
        m = json.load(f)
    false = m["false_alerts"] - m["false_by_detector"].get("high_risk_action", 0)
    per10k = 1e4 * false / m["events"]
    counts = {}
    for x in m["missed"]:
        counts[x["kind"]] = counts.get(x["kind"], 0) + 1
    print(f"{s:12s} {m['detected']:3d}/{m['incidents']:<3d} {m['detected'] / max(m['incidents'], 1):5.3f} "
          f"{per10k:9.3f} {m['healthy_revoked_or_suspended']:7d}  "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    tot_hit += m["detected"]; tot_inc += m["incidents"]; tot_false += false; tot_events += m["events"]
print(f"{'all':12s} {tot_hit:3d}/{tot_inc:<3d} {tot_hit / max(tot_inc, 1):5.3f} {1e4 * tot_false / tot_events:9.3f}")
print(f"(scores and missed incidents: {run}/SET.score.txt)")
PY
