"""raw-output on the generator's local profile, read back by an independent Avro reader
(python3-avro), against the generator's own counts and the input as `logproc inspect` prints it:

- every table holds exactly the records the generator reports (700 impressions, ...), since the
  generator never repeats an id;
- raw/log-request equals the input record for record (platform, user ids, timestamps, children);
- the child tables carry the input's ids (every impression id, action id, view id once), with
  user_id cleared, partitioned by the Event API timestamp's UTC hour;
- running twice with one --runId is refused (a published part is never overwritten).
"""
import collections
import datetime
import json
import os
import re
import shutil

from lptest import Checks, read_table, run, workdir

c = Checks()
work = workdir("test_raw_output_generated")
src = os.path.join(work, "in.rec")
gen = run(["generate", "logs", "--profile=local", "--output", src])
done = [l for l in gen.stderr.splitlines() if " done " in l]
c.check(len(done) == 1, "the generator logs one 'done' line with its counts")
counts = dict(re.findall(r"(\w+)=(\d+)", done[0])) if done else {}
counts = {k: int(v) for k, v in counts.items() if v.isdigit()}
c.eq(counts.get("impressions"), 700, "the local profile generates 700 impressions")

inputs = [json.loads(l) for l in run(["inspect", src]).stdout.splitlines()]
c.eq(len(inputs), counts.get("logRequests"), "inspect prints every generated LogRequest")

out = os.path.join(work, "out")
run(["run", "raw-output", "--source", src, "-o", out, "--runId", "0badcafe"])

def rows(table):
    r, _ = read_table(out, table)
    return r

actions = sum(counts.get(k, 0) for k in ("navigates", "addToCarts", "checkouts", "purchases"))
expect = {
    "raw/log-request": counts.get("logRequests"),
    "raw/user": counts.get("users"),
    "raw/cohort-membership": counts.get("cohortMemberships"),
    "raw/view": counts.get("views"),
    "raw/auto-view": counts.get("autoViews"),
    "raw/delivery-log": counts.get("deliveryLogs"),
    "raw/impression": counts.get("impressions"),
    "raw/action": actions,
    "raw/diagnostics": counts.get("diagnostics"),
    "raw-side/delivery-log-ids": counts.get("deliveryLogs"),
    "raw-side/response-insertion-ids": counts.get("responseInsertions"),
    "raw-side/invalid-record": 0,
}
tables = {t: rows(t) for t in expect}
for t, n in expect.items():
    c.eq(len(tables[t]), n, t + " rows")

# raw/log-request: the input, record for record, in order
for i, (inp, row) in enumerate(zip(inputs, tables["raw/log-request"])):
    v = inp["value"]
    c.eq(row["platform_id"], int(v.get("platformId", "0")), "log-request %d platform_id" % i)
    c.eq(row["user_info"]["user_id"], v["userInfo"].get("userId", ""), "log-request %d user_id kept" % i)
    c.eq(row["user_info"]["log_user_id"], v["userInfo"].get("logUserId", ""), "log-request %d log_user_id" % i)
    c.eq(row["timing"]["event_api_timestamp"], int(v["timing"].get("eventApiTimestamp", "0")),
         "log-request %d event_api_timestamp" % i)
    for f, k in [("impression", "impression"), ("action", "action"), ("view", "view"),
                 ("delivery_log", "deliveryLog"), ("auto_view", "autoView")]:
        c.eq(len(row[f]), len(v.get(k, [])), "log-request %d %s count" % (i, f))

# child tables: the input's ids, each once
def input_ids(key, idf):
    return sorted(ch.get(idf, "") for inp in inputs for ch in inp["value"].get(key, []))

for table, key, idf, avf in [("raw/impression", "impression", "impressionId", "impression_id"),
                             ("raw/action", "action", "actionId", "action_id"),
                             ("raw/view", "view", "viewId", "view_id"),
                             ("raw/auto-view", "autoView", "autoViewId", "auto_view_id")]:
    c.eq(sorted(r[avf] for r in tables[table]), input_ids(key, idf), table + " ids")
    c.eq([r for r in tables[table] if r["user_info"] and r["user_info"]["user_id"]], [],
         table + ": user_id cleared")

# partitions: each impression sits in the UTC hour of its event_api_timestamp
_, parts = read_table(out, "raw/impression")
for p in parts:
    m = re.search(r"dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/part-0badcafe-0-0-\d+\.avro$", p)
    c.check(m is not None, "part path %s follows dt=/hour=/part-<run>-<task>-<commit>-<seq>.avro" % p)
for r in tables["raw/impression"]:
    t = datetime.datetime.fromtimestamp(r["timing"]["event_api_timestamp"] / 1000, datetime.timezone.utc)
    want = "dt=%s/hour=%02d" % (t.strftime("%Y-%m-%d"), t.hour)
    c.check(any(want in p for p in parts), "impression %s partition %s exists" % (r["impression_id"], want))

# the same run id again: refused, nothing overwritten
again = run(["run", "raw-output", "--source", src, "-o", out, "--runId", "0badcafe"], check=False)
c.check(again.returncode != 0, "a second run with the same --runId fails")
c.check("already published" in again.stderr, "and says the part is already published")
c.eq(len(rows("raw/impression")), 700, "raw/impression still holds 700 rows after the refused run")

shutil.rmtree(work)
c.done()
