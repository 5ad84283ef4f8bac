"""--parallelism on a record file (issue 8): key shards give N tasks to N threads.

A file-mode raw-output or flat-output run with --parallelism N (--maxParallelism, which defaults
to it) and fewer than N files reads each file as N key shards, as N Kafka partitions keyed the
same way would hold it. This test pins:

1. flat-output and raw-output with --parallelism 2 run two tasks (labels 0s0 and 0s1, in the
   part names) and write exactly the rows of a --parallelism 1 run (every table, as multisets);
2. the shards split by user: no log user id has joined impressions in both tasks' parts;
3. a checkpoint store written with 2 shards refuses a run with 1 (the message names the flag to
   use), and accepts --parallelism 1 --maxParallelism 2: its tasks restore (final checkpoints)
   and nothing is written twice.
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lptest import Checks, run, workdir  # noqa: E402

c = Checks()
work = workdir("test_parallelism")
rec = os.path.join(work, "in.rec")
run(["generate", "logs", "--profile", "cli", "--users", "6", "--output", rec])


def tables(root):
    """Every table directory under root that holds parts (relative paths)."""
    out = set()
    for p in glob.glob(os.path.join(root, "**", "part-*"), recursive=True):
        rel = os.path.relpath(p, root).split(os.sep)
        # <dir>/<table>/dt=.../[hour=.../]part-*
        out.add(os.path.join(rel[0], rel[1]))
    return sorted(out)


def rows(root, table):
    """The table's rows as sorted JSON lines (logproc inspect: python3-avro is too slow for
    tens of thousands of rows), and its part paths."""
    parts = sorted(glob.glob(os.path.join(root, table, "**", "part-*"), recursive=True))
    got = []
    for p in parts:
        got.extend(l for l in run(["inspect", p]).stdout.splitlines() if l)
    return sorted(got), parts


def task_of(part):
    # part-<run>-<task>-<commit>-<seq>.avro
    return os.path.basename(part).split("-")[2]


for job in ("flat-output", "raw-output"):
    out = {}
    for p in (1, 2):
        d = os.path.join(work, "%s-p%d" % (job, p))
        r = run(["run", job, "--source", rec, "-o", d, "--parallelism", str(p), "--runId", "ab12cd34",
                 "--restPort", "-1"])
        c.check(("%d task(s)" % p) in r.stdout, "%s --parallelism %d: %d task(s) in %r" % (job, p, p, r.stdout[:200]))
        out[p] = d
    t1, t2 = tables(out[1]), tables(out[2])
    c.eq(t2, t1, "%s: the same tables with 1 and 2 threads" % job)
    c.check(len(t1) >= 3, "%s: tables written (%d)" % (job, len(t1)))
    for t in t1:
        if t.startswith("kafka"):
            continue
        a, _ = rows(out[1], t)
        b, parts = rows(out[2], t)
        c.check(a == b, "%s %s: --parallelism 2 wrote the rows of --parallelism 1 (%d vs %d)" % (job, t, len(b), len(a)))
        labels = {task_of(p) for p in parts}
        c.check(labels <= {"0s0", "0s1"}, "%s %s: part task labels %r" % (job, t, labels))
    if job == "flat-output":
        users = {}
        _, parts = rows(out[2], "etl/joined_impression")
        c.eq({task_of(p) for p in parts}, {"0s0", "0s1"}, "joined impressions from both shards")
        for p in parts:
            for line in run(["inspect", p]).stdout.splitlines():
                luid = json.loads(line)["ids"]["log_user_id"]
                users.setdefault(luid, set()).add(task_of(p))
        c.check(len(users) >= 5, "joined impressions of %d users" % len(users))
        both = [u for u, s in users.items() if len(s) > 1]
        c.eq(both, [], "users whose joined impressions came from two shards")

# 3. the checkpoint store keeps the shard count
ck = os.path.join(work, "ck")
o = os.path.join(work, "ckout")
base = ["run", "flat-output", "--source", rec, "-o", o, "--checkpointDir", ck, "--restPort", "-1",
        "--restartAttempts", "0"]
run(base + ["--parallelism", "2"])
first, _ = rows(o, "etl/joined_impression")
c.check(len(first) > 0, "checkpointed run wrote joined impressions")
r = run(base + ["--parallelism", "1"], check=False)
c.check(r.returncode != 0, "a store of 2 shards refuses a 1-shard run (exit %d)" % r.returncode)
c.check("key shards" in r.stderr and "--maxParallelism=2" in r.stderr,
        "the refusal names the shard count and the flag: %r" % r.stderr[-400:])
r = run(base + ["--parallelism", "1", "--maxParallelism", "2"], check=False)
c.eq(r.returncode, 0, "--parallelism 1 --maxParallelism 2 on the same store: exit (%s)" % r.stderr[-300:])
c.check(len(re.findall(r"restoring task=0s[01] ", r.stderr)) == 2,
        "both shard tasks restored: %r" % re.findall(r"restoring task=\S+", r.stderr))
again, _ = rows(o, "etl/joined_impression")
c.check(again == first, "nothing written twice after the restore (%d rows, had %d)" % (len(again), len(first)))
c.done()
