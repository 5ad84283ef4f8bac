"""`make local`'s script brings the whole stack up on loopback and takes it down again.

scripts/local.sh up, with LOCAL_DIR in a temporary folder, the binary from LOGPROC_BIN and
every port chosen free by the kernel, must leave:
- a pid file per long-running component whose process is alive and runs inside the folder, and
  an env file naming the ports the test asked for;
- Kafka answering: `logproc inspect kafka://tracking.event.log-request` prints exactly the
  records the fake log generator reports it delivered (and the generator exited 0);
- the S3 server listing the bucket (boto3, signed with the local keys), Redis answering PING and
  holding the counter's start-up metadata in DB 10 (so the counter reached that Redis);
- every job answering 200 on /healthz at the port it was given;
- progress: raw-output publishes raw/impression parts into the bucket whose rows (read with
  python3-avro, not with logproc) are every impression the generator made, within a deadline.
Then scripts/local.sh down must leave no process of those pid files, no listener on any of the
ports, and no folder.
"""
import glob
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lptest  # noqa: E402

BIN = os.path.abspath(lptest.BIN) if os.sep in lptest.BIN else lptest.BIN
SRC = os.environ.get("LOGPROC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(SRC, "scripts", "local.sh")
BUCKET = "promoted-event-logs"
JOBS = ["raw-output", "flat-output", "counter", "content-metrics"]

c = lptest.Checks()
work = tempfile.mkdtemp(prefix="local_stack.")
local_dir = os.path.join(work, "stack")


def free_ports(n):
    """n distinct ports the kernel reports free (all bound at once, so they differ)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def alive(pid):
    """The process exists and is not a zombie (an unreaped child of a container's pid 1)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def read_env(path):
    out = {}
    for line in open(path):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            out[k] = v
    return out


def local(*args, timeout=300):
    return subprocess.run(["bash", SCRIPT] + list(args), env=env, capture_output=True, text=True,
                          timeout=timeout)


names = ["KAFKA", "S3", "REDIS", "CONTENT_API"] + [j.upper().replace("-", "_") for j in JOBS]
ports = dict(zip(names, free_ports(len(names))))
env = dict(os.environ, LOCAL_DIR=local_dir, LOGPROC_BIN=BIN, LOCAL_CHECKPOINT_INTERVAL="PT1S",
           LOCAL_START_TIMEOUT="60", LOCAL_STOP_TIMEOUT="30")
env.update({"LOCAL_%s_PORT" % k: str(v) for k, v in ports.items()})
has_content = subprocess.run([BIN, "generate", "content", "--help"],
                             capture_output=True).returncode == 0
long_running = ["kafka", "s3", "redis"] + (["content-generator"] if has_content else []) + JOBS
pids = {}

try:
    up = local("up")
    c.eq(up.returncode, 0, "local.sh up exits 0 (stderr: %s)" % up.stderr[-2000:])
    for name in long_running:
        path = os.path.join(local_dir, name + ".pid")
        c.check(os.path.exists(path), name + " has a pid file")
        if os.path.exists(path):
            pids[name] = int(open(path).read())
            c.check(alive(pids[name]), "%s (pid %d) is alive" % (name, pids[name]))
            cwd = os.readlink("/proc/%d/cwd" % pids[name]) if alive(pids[name]) else ""
            c.check(cwd.startswith(os.path.realpath(local_dir)), name + " runs inside the folder")
        c.check(os.path.exists(os.path.join(local_dir, "logs", name + ".log")),
                name + " has a log file")
    c.check(f"{BUCKET}" in up.stdout and "clean-local" in up.stdout,
            "the summary names the bucket and how to stop")

    e = read_env(os.path.join(local_dir, "env"))
    c.eq(e.get("KAFKA"), "127.0.0.1:%d" % ports["KAFKA"], "env KAFKA is the port asked for")
    c.eq(e.get("S3_ENDPOINT"), "http://127.0.0.1:%d" % ports["S3"], "env S3_ENDPOINT")
    c.eq(e.get("REDIS_URL"), "redis://127.0.0.1:%d/10" % ports["REDIS"], "env REDIS_URL (DB 10)")
    for j in JOBS:
        var = j.upper().replace("-", "_")
        c.eq(e.get("REST_" + var), "http://127.0.0.1:%d" % ports[var], "env REST_" + var)
    if has_content:
        c.eq(e.get("CONTENT_API"), "http://127.0.0.1:%d/" % ports["CONTENT_API"], "env CONTENT_API")

    # the generator ran once, to completion, and Kafka holds what it delivered
    c.eq(open(os.path.join(local_dir, "log-generator.rc")).read().strip(), "0",
         "the log generator exited 0")
    gen_log = open(os.path.join(local_dir, "logs", "log-generator.log")).read()
    delivered = int(re.findall(r"delivered=(\d+)", gen_log)[-1])
    impressions = int(re.findall(r" impressions=(\d+)", gen_log)[-1])
    c.check(delivered > 0 and impressions > 0, "the generator delivered records with impressions")
    r = subprocess.run([BIN, "inspect", "kafka://tracking.event.log-request", "-b", e["KAFKA"]],
                       capture_output=True, text=True, timeout=120)
    c.eq(r.returncode, 0, "inspect of the LogRequest topic exits 0")
    c.eq(len(r.stdout.splitlines()), delivered, "Kafka holds every record the generator delivered")

    if has_content:
        # the local Content API answers a query for a catalogue id with the stack's key
        req = urllib.request.Request(
            e["CONTENT_API"] + "v1/content/query", method="POST",
            data=b'{"content_ids":["s-1-1"],"include_deleted":true}',
            headers={"Content-Type": "application/json", "x-api-key": e["CONTENT_API_KEY"]})
        body = urllib.request.urlopen(req, timeout=10).read().decode()
        c.check('"s-1-1"' in body, "the Content API knows the catalogue's store s-1-1: " + body[:200])

    # S3: the bucket lists through an independent client
    import boto3
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=e["S3_ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id=e["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=e["AWS_SECRET_ACCESS_KEY"],
                      config=Config(s3={"addressing_style": "path"}))
    c.eq(s3.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"], 200,
         "the bucket exists")

    r = subprocess.run(["redis-cli", "-p", str(ports["REDIS"]), "ping"], capture_output=True,
                       text=True)
    c.eq(r.stdout.strip(), "PONG", "redis answers PING")
    # the counter writes its start-up metadata before its first command, record or checkpoint
    # (after a possible restore, so that --wipe applies to a fresh start only): poll for it
    deadline = time.monotonic() + 60
    while True:
        r = subprocess.run(["redis-cli", "-p", str(ports["REDIS"]), "-n", "10", "dbsize"],
                           capture_output=True, text=True)
        if (r.stdout.strip().isdigit() and int(r.stdout) > 0) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    c.check(r.stdout.strip().isdigit() and int(r.stdout) > 0,
            "the counter wrote its start-up metadata into DB 10 (dbsize %r)" % r.stdout.strip())

    for j in JOBS:
        port = ports[j.upper().replace("-", "_")]
        try:
            code = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=10).status
        except OSError as ex:
            code = str(ex)
        c.eq(code, 200, j + " /healthz answers 200")

    # progress: raw-output's impression parts in the bucket hold every generated impression
    import avro.datafile
    import avro.io
    prefix = "blue/raw/impression/"
    rows, keys, deadline = 0, [], time.monotonic() + 45
    while time.monotonic() < deadline:
        listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        keys = [o["Key"] for o in listing.get("Contents", []) if "/part-" in o["Key"]]
        rows = 0
        for k in keys:
            body = s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()
            rows += sum(1 for _ in avro.datafile.DataFileReader(io.BytesIO(body),
                                                                avro.io.DatumReader()))
        if rows >= impressions:
            break
        time.sleep(0.5)
    c.check(len(keys) > 0, "raw-output published raw/impression parts into the bucket")
    c.eq(rows, impressions, "raw/impression in the bucket holds every generated impression")
    c.check(not any(os.path.basename(k).startswith(".") for k in keys), "no hidden part is listed")
finally:
    down = local("down")
    c.eq(down.returncode, 0, "local.sh down exits 0 (stderr: %s)" % down.stderr[-2000:])
    for name, pid in pids.items():
        c.check(not alive(pid), "%s (pid %d) is gone after down" % (name, pid))
    for name, port in ports.items():
        if name != "CONTENT_API" or has_content:
            c.check(not listening(port), "nothing listens on %s's port %d" % (name, port))
    c.check(not os.path.exists(local_dir), "the folder is removed")
    # a failed down must not leave this test's processes behind (only the pids it read)
    for pid in pids.values():
        if alive(pid):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    if not glob.glob(os.path.join(work, "*")):
        os.rmdir(work)

c.done()
