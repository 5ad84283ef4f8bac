"""Savepoints (issue 5): a live flat-output job (Kafka input, no end) gets `logproc savepoint`,
then `logproc stop --savepoint`; a new run restores that savepoint with --fromSavepoint and
finishes the topic. What the two runs published together equals an uninterrupted run's tables,
row for row. Also: `logproc list` shows the job, a savepoint has _metadata and one file per
task, and restoring from a directory without _metadata is refused with a clear error.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

BIN = lptest.BIN
c = lptest.Checks()
work = lptest.workdir("savepoint")
procs = []
JOIN = ["--combineDeliveryLogWindow=PT5S", "--viewInsertionJoinMax=PT20S",
        "--insertionImpressionJoinMax=PT20S", "--impressionActionJoinMax=PT20S",
        "--flatResponseInsertionGapDuration=PT1M"]
ctl = os.path.join(work, "ctl")


def cli(*args):
    print("logproc", " ".join(args), flush=True)
    return subprocess.run([BIN] + list(args) + ["--controlDir", ctl, "--timeout", "PT2M"],
                          capture_output=True, text=True)


try:
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:4"])
    gen = subprocess.run([BIN, "generate", "logs", "--profile", "cli", "-u", "16",
                          "--bootstrapServers", bs], capture_output=True, text=True)
    c.check(gen.returncode == 0, "generator wrote to Kafka")

    ref_root = os.path.join(work, "ref")
    r = subprocess.run([BIN, "run", "flat-output", "-b", bs, "--endAtLatest", "--no-kafkaGroup",
                        "--jobLabel", "ref", "-o", ref_root, "--controlDir",
                        os.path.join(work, "ctl-ref")] + JOIN, capture_output=True, text=True)
    c.check(r.returncode == 0, "uninterrupted run: " + r.stderr[-1500:])

    # the live job: no end; checkpoints into root/checkpoints
    root = os.path.join(work, "out")
    # its log goes to a file (a pipe nobody reads would fill and block the job)
    live_log = os.path.join(work, "live.err")
    live = subprocess.Popen([BIN, "run", "flat-output", "-b", bs, "--no-kafkaGroup",
                             "--jobLabel", "sp", "-o", root, "--controlDir", ctl,
                             "--checkpointInterval", "PT0.5S"] + JOIN,
                            stdout=subprocess.DEVNULL, stderr=open(live_log, "w"))
    procs.append(live)
    deadline = time.monotonic() + 120
    seen = False
    while not seen and time.monotonic() < deadline and live.poll() is None:
        seen = "component=checkpoint completed" in open(live_log).read()
        time.sleep(0.1)
    c.check(seen, "the live job checkpoints")

    ls = cli("list")
    c.check("sp.flat-output" in ls.stdout and "pid %d" % live.pid in ls.stdout,
            "logproc list shows the job and its pid: " + ls.stdout)

    sp1 = cli("savepoint", "flat-output", "--jobLabel", "sp")
    c.check(sp1.returncode == 0, "logproc savepoint: " + sp1.stderr)
    path1 = sp1.stdout.strip()
    c.check(os.path.isfile(os.path.join(path1, "_metadata")), "the savepoint %s has _metadata" % path1)
    ckpts = sorted(f for f in os.listdir(path1) if f.endswith(".ckpt")) if os.path.isdir(path1) else []
    c.check(len(ckpts) == 4, "one file per task (%s)" % ckpts)
    c.check(live.poll() is None, "the job runs on after a savepoint")

    sp2 = cli("stop", "flat-output", "--jobLabel", "sp", "--savepoint",
              "--savepointPath", os.path.join(work, "stop-savepoint"))
    c.check(sp2.returncode == 0, "logproc stop --savepoint: " + sp2.stderr)
    path2 = sp2.stdout.strip()
    c.check(path2 == os.path.join(work, "stop-savepoint"), "stop prints the savepoint path")
    live.wait(60)
    c.check(live.returncode == 0, "the stopped job exits 0")
    c.check(not os.path.exists(os.path.join(ctl, "sp.flat-output.pid")), "its pid file is gone")
    gone = cli("savepoint", "flat-output", "--jobLabel", "sp")
    c.check(gone.returncode != 0 and "no running job" in gone.stderr,
            "a savepoint of a stopped job fails clearly: " + gone.stderr)

    # restore into a fresh checkpoint store and finish the topic
    print("restoring", flush=True)
    bad = subprocess.run([BIN, "run", "flat-output", "-b", bs, "--endAtLatest", "--no-kafkaGroup",
                          "--jobLabel", "sp", "-o", root, "--controlDir", ctl,
                          "--checkpointDir", os.path.join(work, "ck-bad"),
                          "--fromSavepoint", os.path.join(work, "ref")] + JOIN,
                         capture_output=True, text=True, timeout=120)
    c.check(bad.returncode != 0 and "_metadata" in bad.stderr,
            "a directory without _metadata is refused: " + bad.stderr[-300:])
    r = subprocess.run([BIN, "run", "flat-output", "-b", bs, "--endAtLatest", "--no-kafkaGroup",
                        "--jobLabel", "sp", "-o", root, "--controlDir", ctl,
                        "--checkpointDir", os.path.join(work, "ck2"), "--fromSavepoint", path2]
                       + JOIN, capture_output=True, text=True, timeout=300)
    c.check(r.returncode == 0, "the restored run finishes: " + r.stderr[-1500:])
    c.check("restoring task=" in r.stderr and "stop-savepoint" in r.stderr,
            "it restored its tasks from the savepoint")

    ref = crashlib.table_rows(os.path.join(ref_root, "ref"))
    got = crashlib.table_rows(os.path.join(root, "sp"))
    c.check(sum(len(v) for v in ref.values()) > 1000, "the reference wrote rows")
    for t in sorted(set(ref) | set(got)):
        x, y = ref.get(t, []), got.get(t, [])
        c.check(x == y, "table %s: %d rows uninterrupted, %d over stop + restore" % (t, len(x), len(y)))
finally:
    crashlib.stop_all(procs)
c.done()
