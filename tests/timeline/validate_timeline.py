#!/usr/bin/env python3
"""validate_timeline.py JSON [KEY=VALUE ...] — checks that a file is trace-event
JSON as ui.perfetto.dev and chrome://tracing load it, the way apfsim export
writes it, and optionally that summary counts have given values.

Structure checked: a {"traceEvents": [...], "displayTimeUnit": "ns"} object;
every event has ph, ts, pid, tid; ts written with exactly three decimals (µs
with ns precision, from integers); B/E balanced and properly nested per
thread track with matching names; async b/e balanced per (pid, cat, id);
flows paired s<->f by (cat, name, id), the end not before the start;
timestamps monotone per track; metadata names present. Prints the summary
as JSON; exits 1 with a message on the first violation."""
import json
import re
import sys
from collections import Counter, defaultdict

PHASES = set("BEXibesfM")


def fail(msg):
    print(f"validate_timeline: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    path = sys.argv[1]
    text = open(path, encoding="ascii").read()
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        fail("not a {\"traceEvents\": [...]} object")
    if doc.get("displayTimeUnit") != "ns":
        fail("displayTimeUnit is not \"ns\"")
    for m in re.finditer(r'"(ts|dur)":([^,}]*)', text):
        if not re.fullmatch(r"\d+\.\d{3}", m.group(2)):
            fail(f"{m.group(1)} {m.group(2)!r} is not microseconds with 3 decimals")

    events = doc["traceEvents"]
    stacks = defaultdict(list)     # (pid, tid) -> open B names
    async_open = {}                # (pid, cat, id) -> name
    flows = defaultdict(list)      # (cat, name, id) -> [(ph, ts)]
    last_ts = {}                   # track -> ts
    names = {"process": {}, "thread": {}}
    summary = Counter()
    for i, e in enumerate(events):
        where = f"event {i} ({json.dumps(e)[:120]})"
        for k in ("ph", "ts", "pid", "tid"):
            if k not in e:
                fail(f"{where}: no {k}")
        ph, ts = e["ph"], e["ts"]
        if ph not in PHASES:
            fail(f"{where}: unknown phase {ph!r}")
        if not isinstance(ts, (int, float)) or ts < 0:
            fail(f"{where}: bad ts")
        if not all(isinstance(e[k], int) for k in ("pid", "tid")):
            fail(f"{where}: pid/tid not integers")
        summary["events"] += 1
        summary[f"ph_{ph}"] += 1
        if ph == "M":
            kind = e.get("name")
            if kind in ("process_name", "thread_name"):
                n = e.get("args", {}).get("name")
                if not isinstance(n, str) or not n:
                    fail(f"{where}: metadata without args.name")
                if kind == "process_name":
                    names["process"][e["pid"]] = n
                else:
                    names["thread"][e["tid"]] = n
            continue
        if ph in "be":
            for k in ("cat", "id", "name"):
                if k not in e:
                    fail(f"{where}: async event without {k}")
            track = ("async", e["pid"], e["cat"], e["id"])
        else:
            track = ("thread", e["pid"], e["tid"])
        if track in last_ts and ts < last_ts[track]:
            fail(f"{where}: ts {ts} before {last_ts[track]} on the same track")
        last_ts[track] = ts
        if e["tid"] not in names["thread"] and ph not in "be":
            fail(f"{where}: tid {e['tid']} has no thread_name")
        if ph == "B":
            stacks[(e["pid"], e["tid"])].append(e.get("name"))
        elif ph == "E":
            st = stacks[(e["pid"], e["tid"])]
            if not st:
                fail(f"{where}: E without an open B")
            opened = st.pop()
            if e.get("name") is not None and e["name"] != opened:
                fail(f"{where}: E {e['name']!r} closes B {opened!r}")
            summary["slices"] += 1
            summary[f"slices_pid{e['pid']}"] += 1
        elif ph == "X":
            if "dur" not in e or e["dur"] < 0:
                fail(f"{where}: X without dur")
            summary["slices"] += 1
        elif ph == "b":
            key = (e["pid"], e["cat"], e["id"])
            if key in async_open:
                fail(f"{where}: async slice {key} begun twice")
            async_open[key] = e["name"]
        elif ph == "e":
            key = (e["pid"], e["cat"], e["id"])
            if key not in async_open:
                fail(f"{where}: async end without begin")
            if async_open.pop(key) != e["name"]:
                fail(f"{where}: async end name differs from its begin")
            summary["async_slices"] += 1
            summary[f"async_{e['cat']}"] += 1
        elif ph in "sf":
            for k in ("cat", "id", "name"):
                if k not in e:
                    fail(f"{where}: flow without {k}")
            flows[(e["cat"], e["name"], e["id"])].append((ph, ts))
        elif ph == "i":
            summary[f"instants_{e.get('cat')}"] += 1
            summary["instants"] += 1
    for key, st in stacks.items():
        if st:
            fail(f"track {key}: B {st[-1]!r} never ended")
    if async_open:
        fail(f"async slices never ended: {sorted(async_open)[:3]}")
    for key, marks in flows.items():
        if sorted(p for p, _ in marks) != ["f", "s"]:
            fail(f"flow {key}: {marks} is not one s and one f")
        ts = dict(marks)
        if ts["f"] < ts["s"]:
            fail(f"flow {key}: ends before it starts")
    summary["flows"] = len(flows)
    summary["processes"] = len(names["process"])
    summary["threads"] = len(names["thread"])
    summary["vcpu_tracks"] = sum(1 for n in names["thread"].values() if n.startswith("vCPU "))
    summary["task_tracks"] = sum(1 for n in names["thread"].values() if n.startswith("pid "))
    print(json.dumps(dict(sorted(summary.items()))))
    for arg in sys.argv[2:]:
        k, v = arg.split("=", 1)
        if str(summary.get(k, 0)) != v:
            fail(f"{k} is {summary.get(k, 0)}, expected {v}")


if __name__ == "__main__":
    main()
