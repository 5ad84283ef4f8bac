"""raw-output end to end on the wire vectors plus bad input, read back by an independent Avro
reader (python3-avro):

- every LogRequest lands in raw/log-request with its field values;
- each child table holds exactly the records the spec's dedupe keys let through (computed here
  from the vectors' JSON, independently of the C code), user_id cleared where the spec says;
- a truncated frame header, garbage bytes, an undecodable protobuf and a record over
  --maxRecordBytes each become one raw-side/invalid-record row naming source, offset and error,
  and every valid record is still written;
- nothing is published as a hidden or in-progress file.
"""
import base64
import glob
import json
import os
import shutil

from lptest import Checks, DATA, event_key, frame, read_table, run, workdir

c = Checks()
work = workdir("test_raw_output")
wire = os.path.join(DATA, "vectors", "wire")
vectors = []
for pb in sorted(glob.glob(os.path.join(wire, "*.pb"))):
    with open(pb, "rb") as f:
        raw = f.read()
    with open(pb[:-3] + ".json") as f:
        vectors.append((os.path.basename(pb), raw, json.load(f)))
c.check(len(vectors) == 154, "154 wire vectors present")

limit = max(len(v[1]) for v in vectors) + 64
t0 = 1601596151000
src = os.path.join(work, "in.rec")
data = b""
offsets = {}
for i, (name, raw, js) in enumerate(vectors):
    if i == 10:
        offsets["garbage"] = len(data)
        data += b"this is not a frame" * 3
    if i == 20:
        offsets["undecodable"] = len(data)
        data += frame(t0 + 5, b"", b"\x0a\xff\xff\xff\xff\x0f")  # field 1 with an impossible length
    if i == 30:
        offsets["oversize"] = len(data)
        data += frame(t0 + 6, b"", b"\x08\x01" + b"\x00" * (limit + 10))
    data += frame(t0 + i, event_key(int(js.get("platformId", "0")), ""), raw)
offsets["truncated"] = len(data)
data += frame(t0 + 999, b"", b"\x08\x01")[:10]  # the frame header is cut short by end of file
with open(src, "wb") as f:
    f.write(data)

out = os.path.join(work, "out")
p = run(["run", "raw-output", "--source", src, "-o", out, "--maxRecordBytes", str(limit),
         "--runId", "00c0ffee"])
c.check("raw/log-request" in p.stdout, "summary names the log-request table")

# ---- invalid records ----
inv, _ = read_table(out, "raw-side/invalid-record")
c.eq(len(inv), 4, "invalid-record rows")
by_off = {r["offset"]: r for r in inv}
for what, words in [("garbage", "sync marker"), ("undecodable", "event.LogRequest"),
                    ("oversize", "--maxRecordBytes"), ("truncated", "truncated")]:
    r = by_off.get(offsets[what])
    c.check(r is not None, "%s: an invalid-record row at offset %d" % (what, offsets[what]))
    if r:
        c.check(words in r["error"], "%s: error %r mentions %r" % (what, r["error"], words))
        c.eq(r["source"], src, what + ": source")
        c.eq(r["partition"], -1, what + ": partition")
        c.check(len(r["raw"]) <= limit, what + ": raw cut at --maxRecordBytes")
r = by_off.get(offsets["oversize"])
if r:
    c.check(r["raw_length"] > limit, "oversize: raw_length %r is the whole record" % r["raw_length"])
r = by_off.get(offsets["undecodable"])
if r:
    c.eq(r["timestamp"], t0 + 5, "undecodable: timestamp")
    c.eq(r["raw"], b"\x0a\xff\xff\xff\xff\x0f", "undecodable: raw bytes")

# ---- every LogRequest, as received ----
lrs, parts = read_table(out, "raw/log-request")
c.eq(len(lrs), len(vectors), "raw/log-request rows")
for (name, raw, js), row in zip(vectors, lrs):
    # uint64 is an Avro long: the same 64 bits read as signed (as Java's long)
    c.eq(row["platform_id"] & (2**64 - 1), int(js.get("platformId", "0")), name + ": platform_id")
    ui = js.get("userInfo")
    c.eq(row["user_info"] is not None, ui is not None, name + ": user_info presence")
    if ui and row["user_info"]:
        c.eq(row["user_info"]["user_id"], ui.get("userId", ""), name + ": user_id kept")
        c.eq(row["user_info"]["log_user_id"], ui.get("logUserId", ""), name + ": log_user_id")
    for field, key in [("view", "view"), ("impression", "impression"), ("action", "action"),
                       ("delivery_log", "deliveryLog"), ("user", "user")]:
        c.eq(len(row[field]), len(js.get(key, [])), name + ": " + field + " count")
    imps = js.get("impression", [])
    for k, imp in enumerate(imps):
        c.eq(row["impression"][k]["impression_id"], imp.get("impressionId", ""),
             name + ": impression[%d].impression_id" % k)

# ---- child tables: exactly what the dedupe keys let through ----
def platform(js_child, js_lr):
    return int(js_child.get("platformId", "0")) or int(js_lr.get("platformId", "0"))

def distinct(key, id_of):
    seen, n = set(), 0
    for _, _, js in vectors:
        for ch in js.get(key, []):
            k = (platform(ch, js), id_of(ch))
            if k not in seen:
                seen.add(k)
                n += 1
    return n

expect = {
    "raw/view": distinct("view", lambda v: v.get("viewId", "")),
    "raw/auto-view": distinct("autoView", lambda v: v.get("autoViewId", "")),
    "raw/impression": distinct("impression", lambda v: v.get("impressionId", "")),
    "raw/action": distinct("action", lambda v: v.get("actionId", "")),
    "raw/cohort-membership": distinct("cohortMembership", lambda v: v.get("membershipId", "")),
    "raw/delivery-log": distinct("deliveryLog", lambda v: v.get("request", {}).get("requestId", "")),
    "raw/user": sum(len(js.get("user", [])) for _, _, js in vectors),
    "raw/diagnostics": sum(len(js.get("diagnostics", [])) for _, _, js in vectors),
}
for table, n in expect.items():
    rows, _ = read_table(out, table)
    c.eq(len(rows), n, table + " rows")
    if table in ("raw/view", "raw/impression", "raw/action", "raw/diagnostics"):
        kept = [r for r in rows if r["user_info"] and r["user_info"]["user_id"]]
        c.eq(len(kept), 0, table + ": user_id cleared")

# log-user-user rows: one per (platform, hour, user_id, log_user_id) with both ids
dl_ids, _ = read_table(out, "raw-side/delivery-log-ids")
c.eq(len(dl_ids), expect["raw/delivery-log"], "delivery-log-ids rows: one per kept delivery log")

# ---- no hidden or in-progress file is left published ----
hidden = [p for p in glob.glob(os.path.join(out, "**", ".*"), recursive=True)]
c.eq(hidden, [], "hidden files left under the output root")

shutil.rmtree(work)
c.done()
