"""Scale-out and rebalance (issue 5): two flat-output processes with the same job label form one
Kafka consumer group and split the input topic's partitions; one is killed with SIGKILL after
the split; the other is assigned every partition, restores the dead one's tasks from the shared
checkpoint store and finishes them. The tables published between them equal an uninterrupted
single-process run's, row for row, and the topic output de-duplicated by record id equals it.
"""
import os
import selectors
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

BIN = lptest.BIN
c = lptest.Checks()
work = lptest.workdir("rebalance")
procs = []


class Job:
    """A logproc process whose stderr lines are collected as they come."""

    def __init__(self, cmd, name):
        self.name = name
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(self.p)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.p.stderr, selectors.EVENT_READ)
        self.err = b""

    def read(self, timeout):
        if self.sel.select(timeout=timeout):
            chunk = os.read(self.p.stderr.fileno(), 65536)
            self.err += chunk
            return bool(chunk)
        return True

    def wait_for(self, pred, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.err):
                return True
            if not self.read(0.1) and self.p.poll() is not None:
                break
        return pred(self.err)


JOIN = ["--combineDeliveryLogWindow=PT5S", "--viewInsertionJoinMax=PT20S",
        "--insertionImpressionJoinMax=PT20S", "--impressionActionJoinMax=PT20S",
        "--flatResponseInsertionGapDuration=PT1M"]

try:
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:4"])
    gen = subprocess.run([BIN, "generate", "logs", "--profile", "cli", "-u", "24",
                          "--bootstrapServers", bs], capture_output=True, text=True)
    c.check(gen.returncode == 0, "generator wrote to Kafka")

    # the reference: one process reading every partition
    ref_root = os.path.join(work, "ref")
    r = subprocess.run([BIN, "run", "flat-output", "-b", bs, "--endAtLatest", "--no-kafkaGroup",
                        "--jobLabel", "ref", "-o", ref_root, "--controlDir",
                        os.path.join(work, "ctl-ref")] + JOIN, capture_output=True, text=True)
    c.check(r.returncode == 0, "uninterrupted run: " + r.stderr[-1500:])

    # two processes of one group (label "pair"), sharing the output root and checkpoint store
    root = os.path.join(work, "pair")

    def member(name):
        return Job([BIN, "run", "flat-output", "-b", bs, "--endAtLatest", "--jobLabel", "pair",
                    "-o", root, "--controlDir", os.path.join(work, "ctl-" + name),
                    "--checkpointInterval", "PT0.3S",
                    # a dead member leaves the group after 6 s, not Kafka's default 45 s
                    "--kafkaProperty", "session.timeout.ms=6000",
                    "--kafkaProperty", "heartbeat.interval.ms=500"] + JOIN, name)

    a = member("a")
    c.check(a.wait_for(lambda e: b"assigned partitions=4" in e), "a joins and gets all 4 partitions")
    b = member("b")
    # the group rebalances: each member ends up with 2 partitions
    split = lambda e: e.count(b"assigned partitions=2") >= 1
    c.check(a.wait_for(split) and b.wait_for(split), "a and b split the partitions 2 and 2")
    # a has made progress on its half: a checkpoint after the split, then it dies
    pos = a.err.rfind(b"assigned partitions=2")
    c.check(a.wait_for(lambda e: b"component=checkpoint completed" in e[pos:]),
            "a checkpoints its half")
    a.p.send_signal(signal.SIGKILL)
    a.p.wait()
    c.check(b.wait_for(lambda e: b"assigned partitions=4" in e[e.find(b"assigned partitions=2"):]),
            "after a dies, b is assigned all 4 partitions")
    c.check(b.wait_for(lambda e: b"restoring task=" in e), "b restores tasks from the checkpoint store")
    while b.p.poll() is None:
        b.read(0.2)
    b.err += b.p.stderr.read()
    c.check(b.p.returncode == 0, "b finishes every partition and exits 0: %s" % b.err[-1500:].decode())

    ref = crashlib.table_rows(os.path.join(ref_root, "ref"))
    got = crashlib.table_rows(os.path.join(root, "pair"))
    c.check(sum(len(v) for v in ref.values()) > 1000, "the reference wrote rows")
    for t in sorted(set(ref) | set(got)):
        x, y = ref.get(t, []), got.get(t, [])
        c.check(x == y, "table %s: %d rows uninterrupted, %d with the rebalance" % (t, len(x), len(y)))
    ref_k = crashlib.kafka_records(bs, "metrics.ref.default.joined-event")
    got_k = crashlib.kafka_records(bs, "metrics.pair.default.joined-event")
    by_id = {}
    for rec in got_k:
        by_id.setdefault(rec[4].get("logproc.id"), (rec[2], rec[3]))
    c.check(None not in by_id, "every output record has an id")
    c.check(sorted(by_id.values()) == sorted((x[2], x[3]) for x in ref_k),
            "the topic de-duplicated by id equals the uninterrupted run's (%d read, %d ids, %d ref)"
            % (len(got_k), len(by_id), len(ref_k)))
finally:
    crashlib.stop_all(procs)
c.done()
