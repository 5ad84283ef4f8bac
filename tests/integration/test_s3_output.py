"""Jobs writing their tables to S3 (-o s3://bucket/prefix, -s bucket), against s3rver v5 (which
checks SigV4 signatures), with boto3 as the independent reader:

- raw-output to S3 publishes the same part names, with the same Avro rows, as the same run
  (same --runId) into a local directory; the bucket shows no hidden or pending object, and the
  local staging directory keeps no file;
- -s/--s3Bucket with a job label puts the tables under s3://bucket/<label>/;
- flat-output with checkpoints in S3, killed with SIGKILL after its first completed checkpoint
  and restarted until it exits 0, publishes exactly the rows (tables and the topic's record
  file) of an uninterrupted local run;
- a wrong secret fails the run with an error naming the bucket and SignatureDoesNotMatch, and
  the secret appears nowhere in the output.

s3rver comes from tools/testenv (scripts/deps.sh runs `npm ci` there): its absence is a failure.
"""
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

SRC = os.environ.get("LOGPROC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TESTENV = os.path.join(SRC, "tools", "testenv")
BUCKET = "test"
CREDS = "S3RVER"
RUN = "00c0ffee"

c = lptest.Checks()
work = lptest.workdir("s3output")


def start_server(datadir):
    return crashlib.start_s3server(datadir, BUCKET)


def job_env(secret=CREDS, endpoint=None):
    env = dict(os.environ)
    for k in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
        env.pop(k, None)
    env.update({"AWS_ACCESS_KEY_ID": CREDS, "AWS_SECRET_ACCESS_KEY": secret})
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


def logproc(args, env, check=True):
    p = subprocess.run([lptest.BIN] + args, capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise SystemExit("logproc %s failed (%d):\n%s" % (" ".join(args[:2]), p.returncode,
                                                          p.stderr[-3000:]))
    return p


def boto_keys(prefix=""):
    keys = []
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def download(prefix, dest):
    """Every object under prefix into dest (same relative paths); returns the relative keys."""
    rels = []
    for key in boto_keys(prefix):
        rel = key[len(prefix):]
        path = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(boto.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        rels.append(rel)
    return sorted(rels)


def local_files(root):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return sorted(out)


def hidden(keys):
    return [k for k in keys if any(seg.startswith(".") for seg in k.split("/"))]


src = os.path.join(work, "in.rec")
lptest.run(["generate", "logs", "--profile", "local", "--output", src])
srv, port = start_server(os.path.join(work, "s3data"))
endpoint = "http://127.0.0.1:%d" % port
boto = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=CREDS,
                    aws_secret_access_key=CREDS, region_name="us-east-1",
                    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
S3 = ["--s3Endpoint", endpoint, "--s3RetryBackoff", "PT0.01S"]

try:
    # ---- raw-output: S3 and a local directory give the same parts and rows ----
    staging = os.path.join(work, "staging")
    local = os.path.join(work, "raw-local")
    logproc(["run", "raw-output", "--source", src, "-o", local, "--runId", RUN], job_env())
    # no AWS_ENDPOINT_URL in the environment: --s3Endpoint alone reaches the server
    p = logproc(["run", "raw-output", "--source", src, "-o", "s3://%s/out" % BUCKET, "--runId", RUN,
                 "--localStagingDir", staging] + S3, job_env())
    want = local_files(local)
    c.check(len(want) >= 10 and all(os.path.basename(f).startswith("part-") for f in want),
            "the local run published parts only: %s" % want[:3])
    got_dir = os.path.join(work, "raw-s3")
    got = download("out/", got_dir)
    c.eq(got, want, "S3 keys under out/ are the local run's part paths")
    rows_s3, rows_local = crashlib.table_rows(got_dir), crashlib.table_rows(local)
    c.check(len(rows_local) >= 10 and sum(map(len, rows_local.values())) > 1000,
            "the local run has rows in every table")
    c.eq(sorted(rows_s3), sorted(rows_local), "the same tables")
    for t in rows_local:
        c.check(rows_s3.get(t) == rows_local[t], "table %s: the same Avro rows" % t)
    c.eq(hidden(boto_keys()), [], "no hidden (staged, temporary) object is listed")
    c.eq(local_files(staging), [], "the staging directory keeps no file")
    c.check("s3://%s/out/raw/log-request" % BUCKET in p.stdout,
            "the summary names the S3 table: " + p.stdout[-300:])

    # ---- -s/--s3Bucket: the root is s3://bucket, the label below it ----
    logproc(["run", "raw-output", "--source", src, "-s", BUCKET, "--jobLabel", "blue",
             "--runId", RUN, "--localStagingDir", staging] + S3, job_env())
    blue = sorted(k[len("blue/"):] for k in boto_keys("blue/"))
    c.eq(blue, want, "-s %s --jobLabel blue publishes the same parts under blue/" % BUCKET)

    # ---- flat-output with checkpoints in S3, killed once after a checkpoint ----
    big = os.path.join(work, "in60.rec")
    lptest.run(["generate", "logs", "--profile", "local", "--users", "60", "--output", big])
    flat_local = os.path.join(work, "flat-local")
    logproc(["run", "flat-output", "--source", big, "-o", flat_local], job_env())
    # the endpoint in the environment too: the checkpoint store reads it there
    env = job_env(endpoint=endpoint)
    cmd = [lptest.BIN, "run", "flat-output", "--source", big, "-o", "s3://%s/flat" % BUCKET,
           "--checkpointDir", "s3://%s/ck" % BUCKET, "--checkpointInterval", "PT0.2S",
           "--localStagingDir", staging] + S3
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    killed = False
    for line in proc.stderr:
        if b"component=checkpoint completed" in line:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
    proc.stderr.close()
    rc = proc.wait()
    c.check(killed and rc == -signal.SIGKILL,
            "the first run was killed after its first checkpoint (rc %d)" % rc)
    starts = 1
    while True:
        starts += 1
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode == 0 or starts > 4:
            break
    c.eq(p.returncode, 0, "the restarted run exits 0 (stderr: %s)" % p.stderr[-1500:])
    c.check("restor" in p.stderr, "the restart restores from the checkpoint")
    flat_dir = os.path.join(work, "flat-s3")
    keys = download("flat/", flat_dir)
    c.check(keys and all(os.path.basename(k).startswith("part-") for k in keys),
            "only published parts under flat/: %s" % keys[:4])
    want_rows = crashlib.table_rows(flat_local)
    got_rows = crashlib.table_rows(flat_dir)
    c.check(sum(map(len, want_rows.values())) > 1000, "the uninterrupted run has rows")
    c.eq(sorted(got_rows), sorted(want_rows), "flat-output tables after the crash")
    for t in want_rows:
        c.check(got_rows.get(t) == want_rows[t],
                "table %s: rows after a crash equal the uninterrupted run's (%d vs %d)"
                % (t, len(got_rows.get(t, [])), len(want_rows[t])))
    c.check(crashlib.topic_files_rows(flat_dir) == crashlib.topic_files_rows(flat_local),
            "the joined-event topic's record files hold the same records")
    c.eq(hidden(boto_keys()), [], "no hidden object after the crash and restore")

    # ---- a wrong secret: the bucket and S3's code are named, the secret is not ----
    secret = "wrongSECRETvalue0123456789"
    p = logproc(["run", "raw-output", "--source", src, "-o", "s3://%s/bad" % BUCKET,
                 "--localStagingDir", staging] + S3, job_env(secret=secret), check=False)
    c.check(p.returncode != 0, "a wrong secret fails the run")
    c.check("SignatureDoesNotMatch" in p.stderr and "s3://%s/bad/raw/" % BUCKET in p.stderr,
            "the error names the bucket and SignatureDoesNotMatch: " + p.stderr[-600:])
    c.check(secret not in p.stderr and secret not in p.stdout, "the secret appears nowhere")
    c.eq(boto_keys("bad/"), [], "nothing was published by the failed run")
finally:
    srv.send_signal(signal.SIGTERM)
    try:
        srv.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
        srv.wait()
    srv.stdout.close()
    srv.stderr.close()

shutil.rmtree(work, ignore_errors=True)
c.done()
