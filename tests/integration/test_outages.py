"""Outages of 30 s mid-run (issue 7): the S3 server, the Kafka cluster and Redis are each made
unavailable for 30 s while a job runs on them, then brought back. The job retries within bounds,
and past them its worker fails and is restarted from its last checkpoint (job_supervise.h) until
the service is back; nothing is lost or duplicated: the outputs equal an uninterrupted run's.

- S3: raw-output (Kafka in, tables and checkpoints in S3) runs unbounded; the S3 server (s3rver,
  its objects on disk) is stopped after the first checkpoint, more logs go to Kafka during the
  outage, and after 30 s the server starts again on the same port and folder. The job must log
  restarts during the outage and checkpoints after it; `logproc stop` then ends it with exit 0,
  and its tables equal a run over the same topic into a local directory.
- Kafka: flat-output (Kafka in, the joined-event topic out, tables in a directory) runs
  unbounded; the `logproc kafka-local` process is stopped (SIGSTOP: every broker stops answering)
  for 30 s, then continued. The job must log that it noticed (a retry, failure or restart) and go
  on checkpointing; stopped with --drain, its tables equal an uninterrupted (drained) run's and
  its topic holds each record id with one value.
- Redis: the counter (unbounded) writes into redis-server, which is shut down (saving its data)
  for 30 s and started again; the counter's sink retries (back-pressure: it stops taking
  records), catches up, is stopped, and its Redis contents equal an uninterrupted run's.

The 30 s are the outage's length, not a synchronisation: every wait for the job polls its log,
its exit or the servers with a deadline.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

BIN = lptest.BIN
c = lptest.Checks()
work = lptest.workdir("outages")
procs = []
OUTAGE = 30.0


def s3env():
    e = dict(os.environ)
    for k in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
        e.pop(k, None)
    e.update({"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"})
    return e


def wait_for(pred, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    c.check(False, "timed out waiting for " + what)
    return False


def text(path):
    return open(path).read() if os.path.exists(path) else ""


def generate(bs, seed, users=6):
    p = subprocess.run([BIN, "generate", "logs", "--profile", "cli", "-u", str(users), "--seed", str(seed),
                        "--bootstrapServers", bs], capture_output=True, text=True)
    c.eq(p.returncode, 0, "generator (seed %d): %s" % (seed, p.stderr[-300:]))


def stop_job(job, label, ctl, name, drain=False):
    p = subprocess.run([BIN, "stop", job, "--jobLabel", label, "--controlDir", ctl, "--timeout", "PT3M"]
                       + (["--drain"] if drain else []), capture_output=True, text=True)
    c.eq(p.returncode, 0, "%s: logproc stop (%s)" % (name, p.stderr[-300:]))


def download(bucket_dir, dest):
    """The published objects of an s3rver bucket folder, as files under dest (s3rver keeps each
    object as <key>._S3rver_object)."""
    for d, _, files in os.walk(bucket_dir):
        for f in files:
            if f.endswith("._S3rver_object"):
                rel = os.path.relpath(os.path.join(d, f[:-len("._S3rver_object")]), bucket_dir)
                os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
                with open(os.path.join(d, f), "rb") as src, open(os.path.join(dest, rel), "wb") as out:
                    out.write(src.read())


try:
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:2",
                                                  "metrics.default.joined-event:2"])
    kafka_proc = procs[-1]
    generate(bs, 1)

    # ---------------- S3 ----------------
    s3dir = os.path.join(work, "s3data")
    s3, s3port = crashlib.start_s3server(s3dir, "test")
    procs.append(s3)
    ctl = os.path.join(work, "ctl")
    log = os.path.join(work, "raw.err")
    raw = subprocess.Popen([BIN, "run", "raw-output", "-b", bs, "--no-kafkaGroup", "--startFromEarliest",
                            "--jobLabel", "s3", "-o", "s3://test/out", "--s3Endpoint",
                            "http://127.0.0.1:%d" % s3port, "--checkpointDir", "s3://test/ck",
                            "--checkpointInterval", "PT0.5S", "--s3MaxAttempts", "3",
                            "--restartDelay", "PT0.5S", "--restartMaxDelay", "PT4S", "--restartAttempts", "-1",
                            "--localStagingDir", os.path.join(work, "staging"), "--controlDir", ctl,
                            "--restPort", "-1"],
                           stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=s3env())
    procs.append(raw)
    wait_for(lambda: "component=checkpoint completed" in text(log), "raw-output's first checkpoint")
    s3.terminate()
    s3.wait(30)
    down_at = time.monotonic()
    generate(bs, 2)  # more input while S3 is down
    wait_for(lambda: text(log).count("restarting from the last checkpoint") >= 2,
             "raw-output's worker to fail and restart during the outage")
    left = OUTAGE - (time.monotonic() - down_at)
    if left > 0:
        time.sleep(left)  # the rest of the outage
    mark = len(text(log))
    s3, _ = crashlib.start_s3server(s3dir, "test", port=s3port)
    procs.append(s3)
    c.check(raw.poll() is None, "raw-output is still running after 30 s without S3")
    wait_for(lambda: "component=checkpoint completed" in text(log)[mark:], "a checkpoint after S3 is back")
    # every record of the topic is in a completed checkpoint: the group's offsets reach the ends
    wait_for(lambda: all(co == hi for co, hi in crashlib.committed_and_ends(
        bs, "s3.loglogrequest", "tracking.event.log-request").values()), "raw-output to catch up")
    stop_job("raw-output", "s3", ctl, "S3")
    raw.wait(120)
    c.eq(raw.returncode, 0, "raw-output exits 0 after the S3 outage")
    ref = subprocess.run([BIN, "run", "raw-output", "-b", bs, "--no-kafkaGroup", "--startFromEarliest",
                          "--endAtLatest", "--jobLabel", "ref", "-o", os.path.join(work, "ref-raw"),
                          "--controlDir", os.path.join(work, "ctl-ref"), "--restPort", "-1"],
                         capture_output=True, text=True)
    c.eq(ref.returncode, 0, "the reference raw-output run")
    got_dir = os.path.join(work, "got-raw")
    download(os.path.join(s3dir, "test", "out"), got_dir)
    want = crashlib.table_rows(os.path.join(work, "ref-raw", "ref"))
    got = crashlib.table_rows(os.path.join(got_dir, "s3"))
    c.check(sum(len(v) for v in want.values()) > 1000, "the reference archived rows")
    for t in sorted(set(want) | set(got)):
        c.check(want.get(t, []) == got.get(t, []), "S3 outage: table %s: %d rows, reference %d"
                % (t, len(got.get(t, [])), len(want.get(t, []))))
    s3.terminate()

    # ---------------- Kafka ----------------
    log = os.path.join(work, "flat.err")
    flat = subprocess.Popen([BIN, "run", "flat-output", "-b", bs, "--no-kafkaGroup", "--startFromEarliest",
                             "-o", os.path.join(work, "flat"), "--checkpointInterval", "PT0.5S",
                             "--restartDelay", "PT0.5S", "--restartMaxDelay", "PT4S", "--restartAttempts", "-1",
                             "--controlDir", ctl, "--restPort", "-1"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    procs.append(flat)
    wait_for(lambda: "component=checkpoint completed" in text(log), "flat-output's first checkpoint")
    kafka_proc.send_signal(signal.SIGSTOP)
    time.sleep(OUTAGE)  # the outage: every broker stopped
    mark = len(text(log))
    kafka_proc.send_signal(signal.SIGCONT)
    c.check(flat.poll() is None, "flat-output is still running after 30 s without Kafka")
    wait_for(lambda: "component=checkpoint completed" in text(log)[mark:], "a checkpoint after Kafka is back")
    generate(bs, 3)  # input after the outage flows too
    wait_for(lambda: all(co == hi for co, hi in crashlib.committed_and_ends(
        bs, "joinuser", "tracking.event.log-request").values()), "flat-output to catch up")
    stop_job("flat-output", "live", ctl, "Kafka", drain=True)  # drained, as the bounded reference ends
    flat.wait(120)
    c.eq(flat.returncode, 0, "flat-output exits 0 after the Kafka outage")
    ref = subprocess.run([BIN, "run", "flat-output", "-b", bs, "--no-kafkaGroup", "--startFromEarliest",
                          "--endAtLatest", "--jobLabel", "ref", "-o", os.path.join(work, "ref-flat"),
                          "--controlDir", os.path.join(work, "ctl-ref"), "--restPort", "-1"],
                         capture_output=True, text=True)
    c.eq(ref.returncode, 0, "the reference flat-output run")
    want = crashlib.table_rows(os.path.join(work, "ref-flat", "ref"))
    got = crashlib.table_rows(os.path.join(work, "flat"))
    c.check(sum(len(v) for v in want.values()) > 1000, "the reference joined rows")
    for t in sorted(set(want) | set(got)):
        c.check(want.get(t, []) == got.get(t, []), "Kafka outage: table %s: %d rows, reference %d"
                % (t, len(got.get(t, [])), len(want.get(t, []))))
    ids = {}
    for _, _, key, value, headers in crashlib.kafka_records(bs, "metrics.default.joined-event"):
        ids.setdefault(headers.get("logproc.id"), set()).add(value)
    c.check(len(ids) == len(want.get("etl/joined_impression", [])) + len(want.get("etl/joined_action", [])),
            "the topic holds one id per joined event (%d)" % len(ids))
    c.check(all(len(v) == 1 for v in ids.values()), "no record id carries two values")

    # ---------------- Redis ----------------
    rport = crashlib.free_port()
    rdir = os.path.join(work, "redis")
    os.makedirs(rdir)

    def redis_start():
        p = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", rdir,
                              "--appendonly", "no", "--save", ""], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(rport), "ping"], capture_output=True,
                                        text=True).stdout.strip() == "PONG", "redis-server")
        return p

    def redis_dump(db):
        keys = subprocess.run(["redis-cli", "-p", str(rport), "-n", str(db), "--scan"], capture_output=True,
                              text=True).stdout.split()
        out = {}
        for k in keys:
            out[k] = subprocess.run(["redis-cli", "-p", str(rport), "-n", str(db), "hgetall", k],
                                    capture_output=True, text=True).stdout
        return out

    redis = redis_start()
    counter_args = ["--joinedEventTopic", "metrics.default.joined-event", "--counterOutputStartTimestamp=1",
                    "--no-drain", "--startFromEarliest", "--endAtLatest", "--no-kafkaGroup", "--restPort", "-1",
                    "-b", bs]
    r = subprocess.run([BIN, "run", "counter", "--redisUrl", "redis://127.0.0.1:%d/1" % rport, "-o",
                        os.path.join(work, "c-ref"), "--controlDir", os.path.join(work, "ctl-c1"), "--jobLabel", "c1"]
                       + counter_args, capture_output=True, text=True)
    c.eq(r.returncode, 0, "the reference counter run")
    want = redis_dump(1)
    log = os.path.join(work, "counter.err")
    live_args = [a for a in counter_args if a != "--endAtLatest"]
    counter = subprocess.Popen([BIN, "run", "counter", "--redisUrl", "redis://127.0.0.1:%d/2" % rport,
                                "-o", os.path.join(work, "c-out"), "--controlDir", ctl,
                                "--jobLabel", "c2", "--redisBatchCommands", "50", "--checkpointInterval", "PT0.2S"]
                               + live_args, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    procs.append(counter)
    wait_for(lambda: "start-up metadata written" in text(log), "the counter to write to Redis")
    subprocess.run(["redis-cli", "-p", str(rport), "shutdown", "save"], capture_output=True)
    redis.wait(30)
    down_at = time.monotonic()
    wait_for(lambda: "retry attempt" in text(log) or counter.poll() is not None, "the counter to retry")
    left = OUTAGE - (time.monotonic() - down_at)
    if left > 0:
        time.sleep(left)
    c.check(counter.poll() is None, "the counter is still running after 30 s without Redis")
    redis = redis_start()
    wait_for(lambda: all(co == hi for co, hi in crashlib.committed_and_ends(
        bs, "c2.countEvents", "metrics.default.joined-event").values()), "the counter to catch up")
    stop_job("counter", "c2", ctl, "Redis")
    counter.wait(120)
    c.eq(counter.returncode, 0, "the counter exits 0 after the Redis outage")
    got = redis_dump(2)
    c.check(len(want) > 10 and got == want, "Redis outage: %d keys, reference %d, equal: %s"
            % (len(got), len(want), got == want))
finally:
    crashlib.stop_all(procs)
c.done()
