"""content-metrics end to end on the generator's local profile, read back by independent readers.

generate logs --profile=local -> flat-output (the local deployment's join flags) -> content-metrics
on the LogRequests and flat-output's joined-event record file, every output on, one-minute
cumulated steps. The expected figures are computed here from the inputs alone, by the rules of
spec/other-jobs.md §C:
- the LogRequests as `logproc inspect` prints them (views, impressions, actions and cart rows,
  each deduped by (platform, id), bucketed by the record timestamp's UTC hour and day);
- the joined events decoded from flat-output's record file with Python protobuf classes that
  protoc generates here from proto/ (not logproc's decoder), kept when they have no action,
  deduped by (platform, impression id), bucketed by FlatUtil.getLogTimestamp;
and compared with the hourly and daily Avro tables (python3-avro), the daily CSV (csv module,
plus the exact header line), the cumulated JSON lines (json module: every step of every key, the
last step equal to the day's totals) and the cumulated topic's record file (frames parsed here).
The default counts an action with a cart once per cart row; --doubleCountCartActions adds the
action's own content id (the reference), checked on the daily table.
"""
import collections
import csv
import datetime
import glob
import json
import os
import struct
import subprocess
import sys

import avro.datafile
import avro.io

from lptest import Checks, run, workdir

c = Checks()
work = workdir("test_content_metrics")
src = os.path.join(work, "in.rec")
run(["generate", "logs", "--profile=local", "--output", src])
flat = os.path.join(work, "flat")
run(["run", "flat-output", "--source", src, "-o", flat, "--runId", "0000f1a7",
     "--combineDeliveryLogWindow=PT5S", "--viewInsertionJoinMax=PT20S",
     "--insertionImpressionJoinMax=PT20S", "--impressionActionJoinMax=PT20S"])
joined_files = sorted(glob.glob(os.path.join(flat, "kafka", "metrics.default.joined-event", "part-*.rec")))
c.eq(len(joined_files), 1, "flat-output writes one joined-event record file")

out = os.path.join(work, "out")
ARGS = ["run", "content-metrics", "--source", src, "-o", out, "--runId", "0000c0de",
        "--outputParquet", "--outputCsv", "--outputCumulatedFiles", "--outputCumulatedKafka",
        "--cumulatedWindowStep=INTERVAL '1' MINUTE"]
for f in joined_files:
    ARGS += ["--joinedEventSource", f]
run(ARGS)

# ---- the inputs, independently ----

HOUR, DAY = 3600000, 86400000
COLS = ["view_count", "impression_count", "joined_impression_count",
        "joined_impression_position_sum", "navigate_count", "add_to_cart_count",
        "checkout_count", "purchase_count", "gmv_usd_micros"]
ACTION_COL = {"NAVIGATE": 4, "ADD_TO_CART": 5, "CHECKOUT": 6, "PURCHASE": 7}


def frames(path):
    """(timestamp, key, value) of every frame of a record file (docs/FORMATS.md)."""
    data = open(path, "rb").read()
    i, res = 0, []
    while i < len(data):
        assert data[i:i + 4] == b"\xF7LR\xFE", "frame marker at %d" % i
        kl, vl, ts = struct.unpack_from("<IIq", data, i + 4)
        res.append((ts, data[i + 24:i + 24 + kl], data[i + 24 + kl:i + 24 + kl + vl]))
        i += 24 + kl + vl + 4
    return res


events = []  # (ts, platform, content, column, value)
seen = set()
inputs = [json.loads(l) for l in run(["inspect", src]).stdout.splitlines()]
for rec in inputs:
    ts, lr = rec["timestamp"], rec["value"]
    lp = int(lr.get("platformId", "0"))

    def first(kind, child, idf):
        p = int(child.get("platformId", "0")) or lp
        key = (kind, p, child.get(idf, ""))
        if key in seen:
            return None
        seen.add(key)
        return p

    for v in lr.get("view", []):
        p = first("view", v, "viewId")
        if p is not None and v.get("contentId"):
            events.append((ts, p, v["contentId"], 0, 1))
    for im in lr.get("impression", []):
        p = first("impression", im, "impressionId")
        if p is not None and im.get("contentId"):
            events.append((ts, p, im["contentId"], 1, 1))
    for a in lr.get("action", []):
        p = first("action", a, "actionId")
        if p is None:
            continue
        col = ACTION_COL.get(a.get("actionType", ""))
        rows = [r for r in a.get("cart", {}).get("contents", []) if r.get("contentId")]
        for r in rows:
            q = int(r.get("quantity", "0"))
            if col is not None:
                events.append((ts, p, r["contentId"], col, q))
            if col == 7:
                events.append((ts, p, r["contentId"], 8,
                               q * int(r.get("pricePerUnit", {}).get("amountMicros", "0"))))
        own = a.get("contentId")
        if own:
            # the action's own row: always in the reference; here only without cart rows
            events.append((ts, p, own, col if col is not None else -1, 1 if col is not None else 0,
                           "own-with-cart" if rows else "own"))

# joined impressions: decoded with protoc's Python classes
pb = os.path.join(work, "pb")
os.makedirs(pb)
protos = [os.path.relpath(p, os.path.join(os.environ.get("LOGPROC_SOURCE_DIR", "."), "proto"))
          for p in glob.glob(os.path.join(os.environ.get("LOGPROC_SOURCE_DIR", "."), "proto", "**", "*.proto"),
                             recursive=True)]
subprocess.run(["protoc", "-I", os.path.join(os.environ.get("LOGPROC_SOURCE_DIR", "."), "proto"),
                "-I", "/usr/include", "--python_out", pb] + protos, check=True)
sys.path.insert(0, pb)
from logproc import join_pb2  # noqa: E402


def log_timestamp(e):
    """FlatUtil.getLogTimestamp: the first non-zero timing.log_timestamp in this order."""
    if e.HasField("timing") and e.timing.log_timestamp:
        return e.timing.log_timestamp
    for f in ["action", "impression", "api_execution_insertion", "response_insertion", "request",
              "view", "session", "user"]:
        if e.HasField(f) and getattr(e, f).timing.log_timestamp:
            return getattr(e, f).timing.log_timestamp
    return 0


def platform_of(e):
    for f in ["ids", "user", "view", "request", "response_insertion", "impression", "action"]:
        if e.HasField(f) and getattr(e, f).platform_id:
            return getattr(e, f).platform_id
    return 0


joined_total = joined_actions = 0
for f in joined_files:
    for ts, key, value in frames(f):
        e = join_pb2.JoinedEvent.FromString(value)
        joined_total += 1
        if e.HasField("action"):
            joined_actions += 1
            continue
        k = ("joined", platform_of(e), e.ids.impression_id)
        if k in seen:
            continue
        seen.add(k)
        cid = e.response_insertion.content_id
        if cid:
            lt = log_timestamp(e) or ts
            events.append((lt, e.ids.platform_id, cid, 2, 1))
            events.append((lt, e.ids.platform_id, cid, 3, e.response_insertion.position))
c.check(joined_total > joined_actions > 0, "the joined-event file holds joined impressions and actions")


def expected(size, double):
    sums = collections.defaultdict(lambda: [0] * 9)
    for ev in events:
        ts, p, cid, col, v = ev[:5]
        if len(ev) == 6 and ev[5] == "own-with-cart" and not double:
            continue
        s = sums[(ts - ts % size, p, cid)]
        if col >= 0:
            s[col] += v
    return sums


def part(ms, hourly):
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime("dt=%Y-%m-%d/hour=%H" if hourly else "dt=%Y-%m-%d")


def table_rows(root, table):
    """{(partition, platform_id, content_id): the nine sums} of every published part."""
    parts = sorted(glob.glob(os.path.join(root, table, "**", "part-*.avro"), recursive=True))
    got = collections.Counter()
    res = {}
    for p in parts:
        with open(p, "rb") as fh:
            for r in avro.datafile.DataFileReader(fh, avro.io.DatumReader()):
                pr = os.path.relpath(os.path.dirname(p), os.path.join(root, table))
                k = (pr, r["platform_id"], r["content_id"])
                got[k] += 1
                res[k] = [r[cname] for cname in COLS]
    c.eq([k for k, n in got.items() if n > 1], [], table + ": one row per partition, platform and content")
    return res


for table, size, hourly in [("etl/hourly_content_metrics", HOUR, True),
                            ("etl/daily_content_metrics", DAY, False)]:
    want = {(part(w, hourly), p, cid): v for (w, p, cid), v in expected(size, False).items()}
    got = table_rows(out, table)
    c.eq(sorted(got), sorted(want), table + ": the same (partition, platform, content) keys")
    for k in sorted(want):
        c.eq(got.get(k), want[k], "%s %s" % (table, k))

for table in ["hourly_content_metrics", "daily_content_metrics", "daily_content_metrics_csv",
              "cumulated_content_metrics"]:
    dirs = {os.path.dirname(p) for p in glob.glob(os.path.join(out, "etl", table, "**", "part-*"),
                                                 recursive=True)}
    c.check(dirs, table + " has parts")
    for d in sorted(dirs):
        c.check(os.path.isfile(os.path.join(d, "_SUCCESS")), d + ": _SUCCESS beside the parts")

daily = {(part(w, False), p, cid): v for (w, p, cid), v in expected(DAY, False).items()}
c.check(any(v[2] for v in daily.values()), "some joined impressions were counted")
c.check(any(v[6] for v in daily.values()), "some checkouts were counted")

# ---- CSV ----
csvs = sorted(glob.glob(os.path.join(out, "etl", "daily_content_metrics_csv", "dt=*", "part-*.csv")))
c.check(len(csvs) >= 1, "the daily CSV table has parts")
csv_rows = {}
for f in csvs:
    text = open(f, newline="").read()
    c.eq(text.split("\n")[0],
         "date,platform_id,content_id,view_count,impression_count,joined_impression_count,"
         "\"joined_impression_position_sum\",navigate_count,add_to_cart_count,checkout_count,"
         "purchase_count,gmv_usd_micros", f + ": the header line, once, first")
    c.check(text.endswith("\n") and "\r" not in text, f + ": lines end with \\n")
    rd = list(csv.reader(text.splitlines()))
    dt = os.path.basename(os.path.dirname(f))
    for r in rd[1:]:
        c.eq(dt, "dt=" + r[0], f + ": the date column is the partition's")
        csv_rows[(dt, int(r[1]), r[2])] = [int(x) for x in r[3:]]
c.eq(csv_rows, daily, "the CSV rows are the daily figures")

# ---- cumulated JSON lines and the topic ----
jsonl = sorted(glob.glob(os.path.join(out, "etl", "cumulated_content_metrics", "dt=*", "part-*.jsonl")))
c.check(len(jsonl) >= 1, "the cumulated table has parts")
lines = []
for f in jsonl:
    lines += [json.loads(l) for l in open(f).read().splitlines()]
latest = {}
steps = collections.Counter()
for o in lines:
    h, b = o["header"], o["body"]
    c.eq(list(o), ["header", "body"], "a cumulated row has header and body only")
    c.eq((h["version"], h["sourceId"], h["correlationId"], h["messageType"]),
         ("1.0", "Metric", "TODO", "content-metrics"), "header constants")
    dt, plat, cid = h["id"].split("@", 2)
    c.eq((plat, cid), (str(h["platformId"]), b["contentId"]), "id is <dt>@<platform>@<content>")
    end = h["eventDateTimestamp"]
    steps[h["id"]] += 1
    if h["id"] not in latest or end > latest[h["id"]][0]:
        latest[h["id"]] = (end, b["metrics"])
names = ["views", "impressions", "joinedImpressions", "joinedImpressionPositionSum", "navigates",
         "addToCarts", "checkouts", "purchases", "gmvUsd"]
first_minute = {}
for ev in events:
    k = (ev[0] - ev[0] % DAY, ev[1], ev[2])
    first_minute[k] = min(first_minute.get(k, ev[0]), ev[0])
for (pdt, p, cid), v in daily.items():
    id_ = "%s@%d@%s" % (pdt[3:], p, cid)
    c.check(id_ in latest, "a cumulated row for " + id_)
    if id_ not in latest:
        continue
    end, m = latest[id_]
    c.eq(end[11:], "00:00:00Z", id_ + ": the last step ends at midnight")
    c.eq([m[n] for n in names], v, id_ + ": the last step holds the day's totals")
    day = int(datetime.datetime.strptime(pdt[3:], "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    first = first_minute[(day, p, cid)]
    c.eq(steps[id_], (day + DAY - (first - first % 60000)) // 60000,
         id_ + ": one row per minute from its first event's minute to midnight")
topic = sorted(glob.glob(os.path.join(out, "kafka", "metrics.blue.default.cumulated-content-metrics", "part-*.rec")))
c.eq(len(topic), 1, "one record file for the cumulated topic")
tframes = frames(topic[0]) if topic else []
c.eq(len(tframes), len(lines), "the topic has a record per cumulated row")
for ts, key, value in tframes[:50]:
    o = json.loads(value)
    c.eq(key, b"", "topic records have no key")
    c.eq(o["dt"], o["header"]["id"].split("@")[0], "the topic value carries dt")

# ---- the reference's double counting ----
out2 = os.path.join(work, "out2")
args2 = [a if a != out else out2 for a in ARGS if a not in ("--outputCsv", "--outputCumulatedFiles",
                                                          "--outputCumulatedKafka")]
run(args2 + ["--doubleCountCartActions"])
want2 = {(part(w, False), p, cid): v for (w, p, cid), v in expected(DAY, True).items()}
got2 = table_rows(out2, "etl/daily_content_metrics")
c.eq(got2, want2, "--doubleCountCartActions: the reference's figures")
c.check(got2 != daily, "double counting changes the figures on this input")

c.done()
