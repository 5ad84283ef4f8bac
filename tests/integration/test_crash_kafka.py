"""Exactly-once across crashes (issue 5): flat-output and counter read a generated stream from
Kafka (`logproc kafka-local` on loopback) and are killed with SIGKILL at 20 or more random
moments each, then restarted from their checkpoints until they finish. What they published must
equal an uninterrupted run of the same job on the same topic:

- flat-output's tables, row for row (every table, every partition directory);
- flat-output's Kafka topic: every record carries the header logproc.id; a record seen twice has
  the same id and bytes both times (the embedded cluster does not hide aborted transactions from
  readers, so a replayed epoch's earlier attempt stays visible there); de-duplicated by id, the
  values equal the uninterrupted run's; the last start's transactions all committed;
- counter's Redis contents (every hash, field and value, and which keys have a TTL), written by a
  crashed run into one database and an uninterrupted one into another of a real redis-server.

The kills wait for a random number (0-2) of new checkpoint lines and then a random 0-300 ms, so
they land before, during and after checkpoints, commits and publishes.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

BIN = lptest.BIN
KILLS = int(os.environ.get("LOGPROC_CRASH_KILLS", "20"))
SEED = int(os.environ.get("LOGPROC_CRASH_SEED", "20261126"))
c = lptest.Checks()
work = lptest.workdir("crash-kafka")
rng = random.Random(SEED)
T0 = time.monotonic()
print("seed %d, %d kills per job" % (SEED, KILLS))

procs = []


def start(cmd, name):
    out = open(os.path.join(work, name + ".out"), "w")
    err = open(os.path.join(work, name + ".err"), "w")
    p = subprocess.Popen(cmd, stdout=out, stderr=err)
    procs.append(p)
    return p


try:
    # ---- the cluster and the input ----
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:4"])
    gen = subprocess.run([BIN, "generate", "logs", "--profile", "cli", "-u", "12",
                          "--bootstrapServers", bs], capture_output=True, text=True)
    c.check(gen.returncode == 0, "generator wrote to Kafka: " + gen.stderr[-500:])

    JOIN = ["--combineDeliveryLogWindow=PT5S", "--viewInsertionJoinMax=PT20S",
            "--insertionImpressionJoinMax=PT20S", "--impressionActionJoinMax=PT20S",
            "--flatResponseInsertionGapDuration=PT1M"]

    def flat(label, root):
        return [BIN, "run", "flat-output", "-b", bs, "--endAtLatest", "--no-kafkaGroup",
                "--jobLabel", label, "-o", root, "--controlDir", os.path.join(work, "ctl-" + label),
                "--checkpointInterval", "PT0.3S", "--logLevel", "info"] + JOIN

    # ---- flat-output: uninterrupted, then crashed ----
    ref_root, crash_root = os.path.join(work, "ref"), os.path.join(work, "crash")
    r = subprocess.run(flat("ref", ref_root), capture_output=True, text=True)
    c.check(r.returncode == 0, "uninterrupted flat-output: " + r.stderr[-2000:])
    kills, starts, last = crashlib.run_with_kills(flat("crash", crash_root), KILLS, rng)
    print("flat-output: %d kills over %d starts (%.0f s)" % (kills, starts, time.monotonic() - T0))
    c.check(kills >= KILLS, "flat-output was killed %d times (want %d)" % (kills, KILLS))

    co = crashlib.committed_and_ends(bs, "crash.joinuser", "tracking.event.log-request")
    c.check(len(co) == 4 and all(a == b for a, b in co.values()),
            "the group's committed offsets are the partitions' ends (checkpointed offsets are "
            "committed): %s" % co)
    ref = crashlib.table_rows(os.path.join(ref_root, "ref"))
    got = crashlib.table_rows(os.path.join(crash_root, "crash"))
    c.check(sum(len(v) for v in ref.values()) > 1000, "the uninterrupted run wrote rows")
    for t in sorted(set(ref) | set(got)):
        a, b = ref.get(t, []), got.get(t, [])
        c.check(a == b, "table %s: %d rows uninterrupted, %d after crashes" % (t, len(a), len(b)))

    # ---- flat-output's Kafka topic ----
    t1 = time.monotonic()
    ref_k = crashlib.kafka_records(bs, "metrics.ref.default.joined-event")
    got_k = crashlib.kafka_records(bs, "metrics.crash.default.joined-event")
    print("read the topics in %.1f s" % (time.monotonic() - t1))
    c.check(len(ref_k) > 1000, "the uninterrupted run wrote %d joined events" % len(ref_k))
    missing_id = [r for r in got_k if "logproc.id" not in r[4]]
    c.check(not missing_id, "every record carries logproc.id (%d do not)" % len(missing_id))
    by_id = {}
    conflict = 0
    for r in got_k:
        i = r[4].get("logproc.id")
        if i in by_id and by_id[i] != (r[2], r[3]):
            conflict += 1
        by_id.setdefault(i, (r[2], r[3]))
    c.check(conflict == 0, "a repeated id always carries the same key and value (%d differ)" % conflict)
    print("joined-event: %d records read, %d distinct ids, %d uninterrupted" %
          (len(got_k), len(by_id), len(ref_k)))
    c.check(sorted(v for v in by_id.values()) == sorted((r[2], r[3]) for r in ref_k),
            "de-duplicated by id, the topic equals the uninterrupted run's")
    txn = [l for l in last.splitlines() if l.strip().startswith("kafka ")]
    c.check(len(txn) == 1 and "abort=0" in txn[0], "the last start's transactions: %s" % txn)
    if txn:
        f = dict(kv.split("=") for kv in txn[0].split() if "=" in kv)
        c.check(int(f.get("begin", 0)) == int(f.get("commit", -1)),
                "every transaction begun by the last start committed: %s" % txn[0])

    # ---- counter into Redis: uninterrupted (db 1), crashed (db 2) ----
    t1 = time.monotonic()
    rport = crashlib.free_port()
    rdir = os.path.join(work, "redis")
    os.makedirs(rdir, exist_ok=True)
    redis = start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", rdir], "redis")
    for _ in range(400):
        try:
            crashlib.Resp(rport).close()
            break
        except OSError:
            time.sleep(0.025)

    def counter(db, name):
        # both runs are in one group: start from the earliest offsets, not its commits. --wipe
        # (FLUSHDB at a fresh start) must not apply to a restart from a checkpoint: a wipe
        # there loses the counts the replay does not rewrite
        return [BIN, "run", "counter", "-b", bs, "--endAtLatest", "--no-drain", "--startFromEarliest",
                "--wipe",
                "--joinedEventTopic", "metrics.ref.default.joined-event",
                "--counterOutputStartTimestamp=1", "--redisUrl",
                "redis://127.0.0.1:%d/%d" % (rport, db), "-o", os.path.join(work, name),
                "--controlDir", os.path.join(work, "ctl-" + name), "--checkpointInterval", "PT0.1S"]

    print("redis up in %.1f s" % (time.monotonic() - t1))
    t1 = time.monotonic()
    r = subprocess.run(counter(1, "counter-ref"), capture_output=True, text=True)
    c.check(r.returncode == 0, "uninterrupted counter: " + r.stderr[-2000:])
    print("uninterrupted counter: %.1f s" % (time.monotonic() - t1))
    kills, starts, _ = crashlib.run_with_kills(
        counter(2, "counter-crash"), KILLS, rng, max_delay=0.35, after_delay=0.05,
        log=lambda m: print("%.1f %s" % (time.monotonic() - T0, m)))
    print("counter: %d kills over %d starts (%.0f s)" % (kills, starts, time.monotonic() - T0))
    c.check(kills >= KILLS, "counter was killed %d times (want %d)" % (kills, KILLS))
    a, b = crashlib.Resp(rport, 1), crashlib.Resp(rport, 2)
    da, db = a.dump(), b.dump()
    a.close(), b.close()
    c.check(len(da) > 100, "the uninterrupted counter wrote %d keys" % len(da))
    diff = [k for k in set(da) | set(db) if da.get(k) != db.get(k)]
    c.check(not diff, "Redis after crashes equals the uninterrupted run (%d keys differ, e.g. %r)"
            % (len(diff), diff[:3]))
finally:
    crashlib.stop_all(procs)
c.done()
