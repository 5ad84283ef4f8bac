"""Savepoints (issue 5): a savepoint written by an older build (checkpoint format version 1, the
fixture tests/data/savepoints/v1, made by tests/data/savepoints/make_fixture.sh) still restores.

The fixture is a live flat-output job's `stop --savepoint` after it had consumed the whole
generated local-profile topic, plus the tables it had published by then. This test regenerates
the same topic on a fresh kafka-local (the generator is deterministic; topic.txt pins its
per-partition counts and digests), restores the savepoint (a copy: tests/data is never written)
into a fresh root (the same relative `-o out` as the fixture's job, in a fresh working
directory) that holds a copy of those published tables, finishes the topic with
--endAtLatest, and checks that the restored run restored every task, exits 0, and that the
fixture's published rows plus the new run's equal an uninterrupted run's tables, row for row.
It also pins the files' envelope (magic, format version 1, a savepoint flag, the CRC32C), so a
future format change keeps this directory as the "previous release" fixture.
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

BIN = lptest.BIN
FIXTURE = os.path.join(lptest.DATA, "savepoints", "v1")
TOPIC = "tracking.event.log-request"
MAGIC = b"LPCKPT\r\n"
CKPT_SAVEPOINT = 2
JOIN = ["--combineDeliveryLogWindow=PT5S", "--viewInsertionJoinMax=PT20S",
        "--insertionImpressionJoinMax=PT20S", "--impressionActionJoinMax=PT20S",
        "--flatResponseInsertionGapDuration=PT1M",
        "--nonBuyerUserSparseHash=6102540093495235004",
        "--nonBuyerUserSparseHash=4078401918190321518"]
c = lptest.Checks()
work = lptest.workdir("savepoint-fixture")
procs = []


def tree_digest(root):
    """{relative path: sha256} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def varint(b, i):
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        if not x & 0x80:
            return v, i
        shift += 7


def read_envelope(path):
    """The header fields of a checkpoint file, read per runtime/checkpoint.h's byte layout
    (independently of the C decoder), or an error string."""
    b = open(path, "rb").read()
    if b[:8] != MAGIC:
        return "bad magic %r" % b[:8]
    version, hlen = struct.unpack_from("<II", b, 8)
    h = b[16:16 + hlen]
    i, fields = 0, {"version": version}
    for name in ("job", "run_id", "task"):
        n, i = varint(h, i)
        fields[name] = h[i:i + n].decode()
        i += n
    fields["id"], fields["created_ms"], fields["flags"], fields["watermark"] = \
        struct.unpack_from("<qqIq", h, i)
    if i + 28 != hlen:
        return "header length %d, fields end at %d" % (hlen, i + 28)
    (slen,) = struct.unpack_from("<Q", b, 16 + hlen)
    end = 16 + hlen + 8 + slen
    if end + 4 != len(b):
        return "state length %d does not fit the file's %d bytes" % (slen, len(b))
    fields["state_len"] = slen
    fields["crc_ok"] = struct.unpack_from("<I", b, end)[0] == lptest.crc32c(b[:end])
    return fields


try:
    before = tree_digest(FIXTURE)
    c.check(before, "the fixture %s exists" % FIXTURE)

    # ---- the envelope: what a "format version 1" file is ----
    meta = open(os.path.join(FIXTURE, "savepoint", "_metadata")).read().splitlines()
    tasks = sorted(l.split(" ", 1)[1] for l in meta if l.startswith("task "))
    c.eq(len(tasks), 4, "tasks listed in _metadata")
    for t in tasks:
        env = read_envelope(os.path.join(FIXTURE, "savepoint", t + ".ckpt"))
        if isinstance(env, str):
            c.check(False, "%s.ckpt: %s" % (t, env))
            continue
        c.eq(env["version"], 1, "%s.ckpt format version" % t)
        c.eq(env["job"], "flat-output", "%s.ckpt job" % t)
        c.eq(env["task"], t, "%s.ckpt task" % t)
        c.check(env["flags"] & CKPT_SAVEPOINT, "%s.ckpt has the savepoint flag" % t)
        c.check(env["state_len"] > 0, "%s.ckpt holds state" % t)
        c.check(env["crc_ok"], "%s.ckpt CRC32C verifies" % t)

    # ---- fresh copies: the job only ever sees these ----
    savepoint = os.path.join(work, "savepoint")
    shutil.copytree(os.path.join(FIXTURE, "savepoint"), savepoint)
    # the fixture's job wrote to the relative root "out" and its table sinks' state names the
    # parts it published that way, so the restore runs in the fresh work dir with -o out
    root = os.path.join(work, "out")
    shutil.copytree(os.path.join(FIXTURE, "published"), os.path.join(root, "fx"))

    # ---- the same topic on a fresh cluster ----
    bs = crashlib.start_kafka_local(work, procs, [TOPIC + ":4"])
    gen = subprocess.run([BIN, "generate", "logs", "--profile", "local", "--bootstrapServers", bs],
                         capture_output=True, text=True)
    c.check(gen.returncode == 0, "generator wrote to Kafka: " + gen.stderr[-500:])
    recs = crashlib.kafka_records(bs, TOPIC)
    want = sorted(open(os.path.join(FIXTURE, "topic.txt")).read().splitlines())
    got = []
    for p in sorted(set(r[0] for r in recs)):
        part = sorted((r[1], r[3]) for r in recs if r[0] == p)
        c.check([o for o, _ in part] == list(range(len(part))), "partition %d offsets 0..n-1" % p)
        digest = hashlib.sha256(b"".join(v for _, v in part)).hexdigest()
        got.append("partition %d records %d values-sha256 %s" % (p, len(part), digest))
    c.check(got == want, "the generator still writes the topic the fixture's offsets refer to: "
            "got %s, the fixture's topic.txt says %s" % (got, want))

    # ---- an uninterrupted reference run ----
    ref_root = os.path.join(work, "ref")
    r = subprocess.run([BIN, "run", "flat-output", "-b", bs, "--endAtLatest", "--no-kafkaGroup",
                        "--jobLabel", "ref", "-o", ref_root, "--controlDir",
                        os.path.join(work, "ctl-ref")] + JOIN,
                       capture_output=True, text=True, timeout=300)
    c.check(r.returncode == 0, "uninterrupted run: " + r.stderr[-1500:])

    # ---- the restore ----
    t0 = time.monotonic()
    r = subprocess.run([BIN, "run", "flat-output", "-b", bs, "--fromSavepoint", savepoint,
                        "--endAtLatest", "--no-kafkaGroup", "--jobLabel", "fx", "-o", "out",
                        "--checkpointDir", os.path.join(work, "ck"),
                        "--controlDir", os.path.join(work, "ctl")] + JOIN,
                       capture_output=True, text=True, timeout=300, cwd=work)
    print("restored run: %.1f s" % (time.monotonic() - t0), flush=True)
    c.check(r.returncode == 0, "the restored run exits 0: " + r.stderr[-1500:])
    restored = sorted(l.split("restoring task=", 1)[1].split(" ", 1)[0]
                      for l in r.stderr.splitlines()
                      if "restoring task=" in l and "from=" + savepoint in l)
    c.eq(restored, tasks, "tasks restored from the fixture's savepoint")

    # ---- rows: fixture's published + the new run's == uninterrupted ----
    ref = crashlib.table_rows(os.path.join(ref_root, "ref"))
    union = crashlib.table_rows(os.path.join(root, "fx"))
    old = crashlib.table_rows(os.path.join(FIXTURE, "published"))
    n_ref = sum(len(v) for v in ref.values())
    n_old = sum(len(v) for v in old.values())
    c.check(n_ref > 1000, "the reference wrote rows (%d)" % n_ref)
    # both halves matter: the fixture published some rows, and the restored state the rest
    c.check(0 < n_old < n_ref, "the fixture holds part of the rows (%d of %d)" % (n_old, n_ref))
    c.check(set(ref), "the reference wrote tables")
    for t in sorted(set(ref) | set(union)):
        x, y = ref.get(t, []), union.get(t, [])
        c.check(x == y, "table %s: %d rows uninterrupted, %d fixture + restore" % (t, len(x), len(y)))

    c.check(tree_digest(FIXTURE) == before, "the fixture in tests/data is unchanged")
finally:
    crashlib.stop_all(procs)
if not c.failed:
    shutil.rmtree(work, ignore_errors=True)
c.done()
