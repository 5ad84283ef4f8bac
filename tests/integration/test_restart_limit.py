"""The supervisor gives up after --restartAttempts consecutive failures (job_supervise.h).

raw-output reads `logproc kafka-local` and writes its tables to S3 (s3rver), with checkpoints in
a local directory so that a restarted worker can start; the S3 server is stopped for good after
the first checkpoint, and more logs are written. Every worker then fails at its next checkpoint (one S3 attempt, no failed
checkpoint tolerated), the supervisor restarts it twice (`--restartAttempts 2`), and then exits
1 saying it gives up. Also: the pid in the control directory is the supervisor's while the
workers come and go.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

BIN = lptest.BIN
c = lptest.Checks()
work = lptest.workdir("restart-limit")
procs = []


def text(path):
    return open(path).read() if os.path.exists(path) else ""


try:
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:1"])
    subprocess.run([BIN, "generate", "logs", "--profile", "local", "--bootstrapServers", bs],
                   capture_output=True, check=True)
    s3, s3port = crashlib.start_s3server(os.path.join(work, "s3"), "test")
    procs.append(s3)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
    env.pop("AWS_SESSION_TOKEN", None)
    log = os.path.join(work, "job.err")
    ctl = os.path.join(work, "ctl")
    job = subprocess.Popen([BIN, "run", "raw-output", "-b", bs, "--no-kafkaGroup", "--startFromEarliest",
                            "-o", "s3://test/out", "--s3Endpoint", "http://127.0.0.1:%d" % s3port,
                            "--checkpointDir", os.path.join(work, "ck"), "--checkpointInterval", "PT0.2S",
                            "--s3MaxAttempts", "1", "--tolerableCheckpointFailureNumber", "0",
                            "--restartAttempts", "2", "--restartDelay", "PT0.1S", "--restartMaxDelay", "PT0.2S",
                            "--localStagingDir", os.path.join(work, "staging"), "--controlDir", ctl,
                            "--restPort", "-1"], stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
    procs.append(job)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "component=checkpoint completed" not in text(log):
        time.sleep(0.1)
    c.check("component=checkpoint completed" in text(log), "the job checkpoints while S3 is up")
    pid_file = os.path.join(ctl, "raw-output.pid")
    c.eq(text(pid_file).strip(), str(job.pid), "the control directory names the supervisor's pid")
    s3.terminate()
    s3.wait(30)
    # more input: its parts must go to S3 at the next checkpoint (an idle job touches no store)
    subprocess.run([BIN, "generate", "logs", "--profile", "local", "--seed", "2", "--bootstrapServers", bs],
                   capture_output=True, check=True)
    job.wait(120)
    out = text(log)
    c.eq(job.returncode, 1, "the supervisor gives up with exit 1")
    c.check(re.search(r"restarting from the last checkpoint in \d+ ms \(attempt 1/2\)", out) and
            re.search(r"attempt 2/2", out), "two restarts were made")
    c.check("2 consecutive failures (--restartAttempts 2): giving up" in out, "then it gives up, saying why")
    c.eq(len(re.findall(r"the worker \(pid \d+\) failed", out)), 3, "three workers failed")
finally:
    crashlib.stop_all(procs)
c.done()
