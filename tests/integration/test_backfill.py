"""Backfill: `logproc run JOB --source <dir or s3://...>` replays the archive tables.

Fake logs (cli profile, 20 users, starting a minute before an hour boundary so the tables have
two hourly partitions) are split by user into three record files, and raw-output archives each
into the same output root: raw/log-request then holds three parts per partition whose records
interleave in time. Then:

- flat-output from those tables equals flat-output from the same LogRequests in a record file
  whose record times are the event API timestamps (what a backfill runs on): as many records in
  every output, the same rows in etl/joined_impression, joined_action and
  flat_response_insertion except the fields the archive cannot hold (docs/OPERATIONS.md
  "Backfill": api_execution_insertion, from the private DeliveryExecution.execution_insertion,
  and LogRequest's private session and session_profile), and the same record times and keys in
  the joined-event topic;
- order: no record of the table replay is late anywhere (every late_* table stays empty), while
  the same three record files read one after the other do give late records, so the empty late
  tables show the merge ordered the parts;
- the counter from the etl/ joined tables leaves Redis in the same state as the counter from the
  joined-event topic's record file, writes the same hash fields with nearly all (98%) of their
  value sequences identical (a joined action's topic record time is its Kafka append time, which
  the archive does not hold), also with --counterOutputStartTimestamp and --wipe;
- content-metrics from the tables (--source raw root, --joinedEventSource flat root) writes the
  same rows as from the record files;
- the counter reading the joined tables from s3:// (s3rver with SigV4, a hidden in-progress object
  beside the parts) writes the same bytes as reading them from the local directory.
"""
import glob
import json
import os
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

B = lptest.BIN
START = 1601600340000  # 2020-10-02T00:59:00Z
# the fields the archive cannot hold, as Avro rows and as proto3 JSON name them
LOST = ("api_execution_insertion", "session", "session_profile", "apiExecutionInsertion",
        "sessionProfile")
c = lptest.Checks()
work = lptest.workdir("backfill")


def w(*parts):
    return os.path.join(work, *parts)


def run(job, args, env=None, check=True):
    p = subprocess.run([B, "run", job, "--restPort", "-1"] + args, capture_output=True,
                       text=True, env=env)
    if check and p.returncode != 0:
        raise SystemExit("logproc run %s %s failed (%d):\n%s" % (job, " ".join(args),
                                                                  p.returncode, p.stderr[-4000:]))
    return p


def frames(path):
    """(offset, ts, key, value) of every frame of a record file (docs/FORMATS.md)."""
    data = open(path, "rb").read()
    out, off = [], 0
    while off < len(data):
        assert data[off:off + 4] == lptest.SYNC, "not a frame at %d of %s" % (off, path)
        kl, vl, ts = struct.unpack_from("<IIq", data, off + 4)
        out.append((off, ts, data[off + 24:off + 24 + kl], data[off + 24 + kl:off + 24 + kl + vl]))
        off += 28 + kl + vl
    return out


def write_frames(path, items):
    with open(path, "wb") as f:
        for ts, key, value in items:
            f.write(lptest.frame(ts, key, value))


def inspect(path, typ=None):
    args = [B, "inspect", path] + (["--type=" + typ] if typ else [])
    p = subprocess.run(args, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in p.stdout.splitlines()]


def strip(row):
    for k in LOST:
        row.pop(k, None)
    return row


def table_rows(root, table):
    rows = []
    for p in sorted(glob.glob(os.path.join(root, table, "**", "part-*"), recursive=True)):
        if p.endswith(".jsonl") or p.endswith(".csv"):
            rows += [line for line in open(p).read().splitlines()]
        else:
            rows += [json.dumps(strip(r), sort_keys=True) for r in inspect(p)]
    return sorted(rows)


def summary(stdout, root):
    """records per output from a run's summary lines ("  12  1  345  <root>/etl/x")."""
    out = {}
    for line in stdout.splitlines():
        f = line.split()
        if len(f) == 4 and f[0].isdigit() and f[1].isdigit():
            out[os.path.relpath(f[3], root)] = int(f[0])
    return out


def tables_of(root):
    out = []
    for kind in ("etl", "etl_side"):
        d = os.path.join(root, kind)
        if os.path.isdir(d):
            out += [kind + "/" + t for t in sorted(os.listdir(d))]
    return out


def topic_records(root):
    """The joined-event topic's records as (timestamp, key) (their values are the joined
    tables' rows, compared there)."""
    out = []
    for p in glob.glob(os.path.join(root, "kafka", "*joined-event*", "part-*")):
        out += [(ts, key) for _, ts, key, _ in frames(p)]
    return sorted(out)


def resp_commands(path):
    data = open(path, "rb").read()
    cmds, i = [], 0
    while i < len(data):
        j = data.index(b"\r\n", i)
        n = int(data[i + 1:j])
        i, args = j + 2, []
        for _ in range(n):
            j = data.index(b"\r\n", i)
            ln = int(data[i + 1:j])
            args.append(data[j + 2:j + 2 + ln])
            i = j + 4 + ln
        cmds.append(args)
    return cmds


def field_sequences(cmds):
    """Per (hash, field): the values written, in order (None for a delete)."""
    seq = {}
    for cmd in cmds:
        op = cmd[0].upper()
        if op == b"HSET":
            for k in range(2, len(cmd), 2):
                seq.setdefault((cmd[1], cmd[k]), []).append(cmd[k + 1])
        elif op == b"HDEL":
            for f in cmd[2:]:
                seq.setdefault((cmd[1], f), []).append(None)
    return seq


def final_state(cmds):
    """What Redis holds after the commands: hashes and TTLs."""
    db, ttl = {}, {}
    for cmd in cmds:
        op = cmd[0].upper()
        if op == b"HSET":
            h = db.setdefault(cmd[1], {})
            for k in range(2, len(cmd), 2):
                h[cmd[k]] = cmd[k + 1]
        elif op == b"HDEL":
            h = db.get(cmd[1], {})
            for f in cmd[2:]:
                h.pop(f, None)
            if not h:
                db.pop(cmd[1], None)
        elif op == b"DEL":
            for k in cmd[1:]:
                db.pop(k, None)
        elif op == b"EXPIRE":
            ttl[cmd[1]] = cmd[2]
        elif op == b"PERSIST":
            ttl.pop(cmd[1], None)
        elif op == b"FLUSHDB":
            db.clear()
            ttl.clear()
    return db, ttl


def resp_of(root):
    files = sorted(glob.glob(os.path.join(root, "counter", "*.resp")))
    assert len(files) == 1, files
    return files[0]


def late_records(root):
    n = 0
    for t in tables_of(root):
        if t.startswith("etl_side/late_"):
            n += len(table_rows(root, t))
    return n


try:
    # ---- inputs: three record files by user, archived by raw-output into one root ----
    lptest.run(["generate", "logs", "--profile=cli", "--users=10", "--startTime=%d" % START,
                "--output", w("in.rec")])
    fr = frames(w("in.rec"))
    eat = {r["offset"]: int(r["value"].get("timing", {}).get("eventApiTimestamp", 0))
           for r in inspect(w("in.rec"))}
    groups = [[], [], []]
    for i, (off, ts, key, value) in enumerate(fr):
        groups[zlib.crc32(key) % 3].append((i, off, ts, key, value))
    for g, items in enumerate(groups):
        c.check(len(items) > 100, "group %d has records (%d)" % (g, len(items)))
        write_frames(w("part%d.rec" % g), [(ts, k, v) for _, _, ts, k, v in items])
        run("raw-output", ["--source", w("part%d.rec" % g), "-o", w("raw"),
                           "--runId", "0000000%d" % (g + 1)])
    parts = sorted(glob.glob(w("raw", "raw", "log-request", "dt=*", "hour=*", "part-*.avro")))
    hours = sorted({os.path.dirname(p) for p in parts})
    c.eq(len(hours), 2, "the archive has two hourly partitions")
    c.eq(len(parts), 6, "three parts in each partition")
    # the same LogRequests, record time = event API timestamp, in that order (ties: as written)
    order = sorted(range(len(fr)), key=lambda i: (eat[fr[i][0]], i))
    write_frames(w("eat.rec"), [(eat[fr[i][0]], fr[i][2], fr[i][3]) for i in order])
    # the three files one after the other: each in order, together out of order
    write_frames(w("concat.rec"), [(eat[off], k, v) for g in groups
                                   for _, off, _, k, v in sorted(g, key=lambda x: (eat[x[1]], x[0]))])

    # ---- flat-output: record file vs tables ----
    pr = run("flat-output", ["--source", w("eat.rec"), "-o", w("fR"), "--runId", "000000f1"])
    pt = run("flat-output", ["--source", w("raw"), "-o", w("fT"), "--runId", "000000f1"])
    c.check("backfill input=" in pt.stderr and "parts=6" in pt.stderr,
            "the run logs the backfill input and its parts")
    sr, st = summary(pr.stdout, w("fR")), summary(pt.stdout, w("fT"))
    c.check(len(sr) > 5 and sr == st, "every output gets as many records: %s vs %s" % (
        sorted(set(sr.items()) - set(st.items()))[:5], sorted(set(st.items()) - set(sr.items()))[:5]))
    for t in ("etl/joined_impression", "etl/joined_action", "etl/flat_response_insertion"):
        a, b = table_rows(w("fR"), t), table_rows(w("fT"), t)
        c.check(len(a) > 100 and a == b, "%s: %d rows from the record file, %d from the tables%s"
                % (t, len(a), len(b), " (rows differ)" if len(a) == len(b) else ""))
    ta, tb = topic_records(w("fR")), topic_records(w("fT"))
    c.check(len(ta) > 100 and ta == tb, "the joined-event topic: the same record times and keys "
            "(%d vs %d records)" % (len(ta), len(tb)))
    c.eq(late_records(w("fT")), 0, "no late record in the table replay")
    run("flat-output", ["--source", w("concat.rec"), "-o", w("fC"), "--runId", "000000f1"])
    c.check(late_records(w("fC")) > 0,
            "the parts read one after the other do give late records (%d)" % late_records(w("fC")))

    # ---- counter: joined-event topic vs etl/ tables ----
    topic = glob.glob(w("fR", "kafka", "*joined-event*", "part-*"))[0]
    for name, extra in (("full", ["--counterOutputStartTimestamp", "0"]),
                        ("gated", ["--counterOutputStartTimestamp", str(START + 60000), "--wipe"])):
        run("counter", ["--source", topic, "-o", w("cR" + name), "--runId", "000000c1"] + extra)
        run("counter", ["--source", w("fR"), "-o", w("cT" + name), "--runId", "000000c1"] + extra)
        a, b = resp_commands(resp_of(w("cR" + name))), resp_commands(resp_of(w("cT" + name)))
        c.check(len(a) > 1000, "%s: the counter wrote commands (%d)" % (name, len(a)))
        c.check(final_state(a) == final_state(b), "%s: Redis ends in the same state" % name)
        c.check(abs(len(a) - len(b)) * 100 <= len(a),
                "%s: as many commands, within 1%% (%d vs %d)" % (name, len(a), len(b)))
        # a joined action's topic record carries the action's Kafka append time, which the
        # archive does not hold (the replay uses its log timestamp): a count may be written
        # once before or after a window boundary's timer. Everything else is the same.
        fa, fb = field_sequences(a), field_sequences(b)
        diff = [k for k in fa if fa[k] != fb.get(k)]
        c.check(len(fa) > 100 and sorted(fa) == sorted(fb) and len(diff) * 50 <= len(fa),
                "%s: every hash field is written, and at least 98%% of them with the same values "
                "in the same order (%d of %d differ, first %r: %r vs %r)" % (
                    name, len(diff), len(fa), diff[:1], fa[diff[0]][:8] if diff else None,
                    fb.get(diff[0], [])[:8] if diff else None))
        if name == "gated":
            c.check(len(a) < len(resp_commands(resp_of(w("cRfull")))),
                    "gating drops the commands before the start timestamp")
            c.check(b"FLUSHDB" in [x[0].upper() for x in b[:5]], "--wipe flushes first")
            c.check(b"FLUSHDB" in [x[0].upper() for x in a[:5]], "--wipe flushes first (file)")

    # ---- content-metrics: record files vs tables ----
    out = ["--outputParquet", "--outputCsv", "--outputCumulatedFiles"]
    run("content-metrics", ["--source", w("eat.rec"), "--joinedEventSource", topic, "-o", w("mR"),
                            "--runId", "000000d1"] + out)
    run("content-metrics", ["--source", w("raw"), "--joinedEventSource", w("fR"), "-o", w("mT"),
                            "--runId", "000000d1"] + out)
    for t in ("etl/hourly_content_metrics", "etl/daily_content_metrics",
              "etl/cumulated_content_metrics"):
        a, b = table_rows(w("mR"), t), table_rows(w("mT"), t)
        c.check(len(a) > 0 and a == b, "%s: %d rows vs %d" % (t, len(a), len(b)))
    csv_a = sorted(glob.glob(w("mR", "etl", "daily_content_metrics_csv", "**", "part-*"), recursive=True))
    csv_b = sorted(glob.glob(w("mT", "etl", "daily_content_metrics_csv", "**", "part-*"), recursive=True))
    c.check(len(csv_a) == 1 and len(csv_b) == 1 and
            open(csv_a[0], "rb").read() == open(csv_b[0], "rb").read(), "the daily CSV is identical")

    # ---- s3:// ----
    srv, port = crashlib.start_s3server(w("s3data"), "test")
    try:
        import boto3
        from botocore.config import Config
        endpoint = "http://127.0.0.1:%d" % port
        boto = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="S3RVER",
                            aws_secret_access_key="S3RVER", region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}))
        n = 0
        for table in ("joined_impression", "joined_action"):
            for p in glob.glob(w("fR", "etl", table, "**", "part-*.avro"), recursive=True):
                key = "hist/" + os.path.relpath(p, w("fR"))
                boto.put_object(Bucket="test", Key=key, Body=open(p, "rb").read())
                n += 1
                # a writer's in-progress part beside it: skipped
                d, base = os.path.split(key)
                boto.put_object(Bucket="test", Key=d + "/." + base + ".inprogress", Body=b"junk")
        c.check(n >= 2, "parts uploaded")
        env = dict(os.environ)
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
            env.pop(k, None)
        env.update({"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER",
                    "AWS_ENDPOINT_URL": endpoint})
        run("counter", ["--source", "s3://test/hist", "-o", w("cS"), "--runId", "000000c1",
                        "--counterOutputStartTimestamp", "0", "--s3Endpoint", endpoint], env=env)
        c.check(open(resp_of(w("cS")), "rb").read() == open(resp_of(w("cTfull")), "rb").read(),
                "the counter from s3:// writes the same bytes as from the local tables")
        bad = run("counter", ["--source", "s3://test/nothing-here", "-o", w("cS2"),
                              "--counterOutputStartTimestamp", "0", "--s3Endpoint", endpoint],
                  env=env, check=False)
        c.check(bad.returncode != 0 and "s3://test/nothing-here" in bad.stderr and
                "etl/joined_impression" in bad.stderr,
                "an empty prefix fails naming what was looked for: %s" % bad.stderr[-300:])
    finally:
        srv.kill()
        srv.wait()
finally:
    subprocess.run(["rm", "-rf", work])
c.done()
