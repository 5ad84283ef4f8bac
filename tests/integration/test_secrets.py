"""Secrets are never printed (issue 7): every job runs with every secret it can take, on the
success path and on the failure paths, and no secret appears in anything logproc produced.

Secrets set:
- AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (the S3 server checks SigV4 with its own key, so the
  successful runs use it; the failure runs use unique wrong ones);
- the Redis password in --redisUrl (redis-server with requirepass);
- the Content API key (--contentApiKey; `logproc generate content --serve` checks it);
- a Kafka client password (--kafkaProperty sasl.password=..., which the client must not echo).

Runs (Kafka from `logproc kafka-local`, tables to S3, counter to Redis, all bounded with
--endAtLatest): raw-output, flat-output with the content join, content-metrics, counter; a live
flat-output whose REST API is read (/, /metrics, /jobs, /jobs/<id>, /status, /plan,
/checkpoints) and which is then stopped with `logproc stop`; and the failure paths: a wrong S3
secret and session token, a wrong Redis password, a wrong Content API key, a Kafka password
property the client refuses.

Searched: every stdout and stderr, every REST answer, and every file under the test's folder
(tables, staging, checkpoints, control files, the S3 server's objects).
"""
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

BIN = lptest.BIN
c = lptest.Checks()
work = lptest.workdir("secrets")
procs = []

S3_KEY = "S3RVER"  # s3rver's fixed key: the successful S3 runs must use it
WRONG_S3 = "wrongS3secret-7f3a9c21d4"
TOKEN = "sessionToken-51c0ffee9d"
REDIS_PW = "redisPassword-8e2b77aa1f"
WRONG_REDIS_PW = "wrongRedis-4d5e6f7a8b"
CONTENT_KEY = "contentKey-0a1b2c3d4e5f"
WRONG_CONTENT_KEY = "wrongContentKey-99887766"
KAFKA_PW = "kafkaPassword-3141592653"
SECRETS = [WRONG_S3, TOKEN, REDIS_PW, WRONG_REDIS_PW, CONTENT_KEY, WRONG_CONTENT_KEY, KAFKA_PW]
outputs = []  # (what, text)


def env_with(secret=S3_KEY, token=None):
    e = dict(os.environ)
    for k in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
        e.pop(k, None)
    e.update({"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": secret})
    if token:
        e["AWS_SESSION_TOKEN"] = token
    return e


def logproc(what, args, env=None):
    p = subprocess.run([BIN] + args, capture_output=True, text=True, env=env or env_with(), timeout=600)
    outputs.append((what + " stdout", p.stdout))
    outputs.append((what + " stderr", p.stderr))
    return p


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.read().decode("utf-8", "replace")
    except OSError as e:
        return "ERROR %s" % e


try:
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:2",
                                                  "metrics.default.joined-event:2"])
    s3, s3port = crashlib.start_s3server(os.path.join(work, "s3data"), "test")
    procs.append(s3)
    endpoint = "http://127.0.0.1:%d" % s3port
    rport = crashlib.free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--requirepass", REDIS_PW, "--dir", work],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(redis)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(rport), "--no-auth-warning", "-a", REDIS_PW, "ping"],
                          capture_output=True, text=True).stdout.strip() == "PONG":
            break
        time.sleep(0.05)
    serve_log = os.path.join(work, "serve.out")
    serve = subprocess.Popen([BIN, "generate", "content", "--serve", "--port", "0", "--contentApiKey",
                              CONTENT_KEY], stdout=open(serve_log, "w"), stderr=subprocess.STDOUT)
    procs.append(serve)
    api = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and api is None:
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", open(serve_log).read())
        api = m.group(1) if m else None
        time.sleep(0.05) if api is None else None
    c.check(api is not None, "the local Content API serves")

    p = logproc("generate logs", ["generate", "logs", "--profile", "local", "--bootstrapServers", bs,
                                  "--kafkaProperty", "sasl.password=" + KAFKA_PW])
    if p.returncode != 0:  # the generator may not take --kafkaProperty: generate without it
        p = logproc("generate logs", ["generate", "logs", "--profile", "local", "--bootstrapServers", bs])
    c.eq(p.returncode, 0, "the generator writes to Kafka")

    common = ["-b", bs, "--endAtLatest", "--startFromEarliest", "--s3Endpoint", endpoint,
              "--kafkaProperty", "sasl.password=" + KAFKA_PW, "--restPort", "0",
              "--localStagingDir", os.path.join(work, "staging"),
              "--controlDir", os.path.join(work, "ctl")]
    content = ["--contentApiRootUrl", api or "http://127.0.0.1:1/", "--contentApiKey", CONTENT_KEY,
               "--contentIdFieldKeys", "storeId"]
    runs = [
        ("raw-output", ["run", "raw-output", "-o", "s3://test/raw"] + common),
        ("flat-output", ["run", "flat-output", "-o", "s3://test/flat"] + common + content),
        ("content-metrics", ["run", "content-metrics", "-o", "s3://test/cm", "--outputCumulatedFiles"] + common),
        ("counter", ["run", "counter", "-o", os.path.join(work, "counter"), "--counterOutputStartTimestamp=1",
                     "--no-drain", "--redisUrl", "redis://:%s@127.0.0.1:%d/0" % (REDIS_PW, rport)]
         + [a for a in common if a != "--s3Endpoint" and a != endpoint]),
    ]
    for name, args in runs:
        p = logproc(name, args, env_with(token=None))
        c.eq(p.returncode, 0, "%s with its secrets succeeds (%s)" % (name, p.stderr[-400:]))
    keys = subprocess.run(["redis-cli", "-p", str(rport), "--no-auth-warning", "-a", REDIS_PW, "dbsize"],
                          capture_output=True, text=True).stdout.strip()
    c.check(keys.isdigit() and int(keys) > 0, "the counter wrote into the password-protected Redis (%s keys)" % keys)

    # a live job: its REST answers, then `logproc stop`
    log = os.path.join(work, "live.err")
    live = subprocess.Popen([BIN, "run", "flat-output", "-o", "s3://test/live", "--jobLabel", "sec",
                             "--no-kafkaGroup", "--checkpointInterval", "PT0.5S"]
                            + [a for a in common if a != "--endAtLatest"] + content,
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env_with())
    procs.append(live)
    rest = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and live.poll() is None and rest is None:
        text = open(log).read()
        m = re.search(r"rest listening address=127\.0\.0\.1 port=(\d+)", text)
        if m and "component=checkpoint completed" in text:
            rest = "http://127.0.0.1:%s" % m.group(1)
        else:
            time.sleep(0.1)
    c.check(rest is not None, "the live job serves REST")
    if rest:
        for path in ["/", "/metrics", "/jobs", "/jobs/sec.flat-output", "/jobs/sec.flat-output/status",
                     "/jobs/sec.flat-output/plan", "/jobs/sec.flat-output/checkpoints",
                     "/jobs/sec.flat-output/metrics"]:
            body = get(rest + path)
            c.check(not body.startswith("ERROR"), "GET %s answers" % path)
            outputs.append(("GET " + path, body))
    p = logproc("stop", ["stop", "flat-output", "--jobLabel", "sec", "--controlDir", os.path.join(work, "ctl")])
    c.eq(p.returncode, 0, "logproc stop stops the live job")
    live.wait(60)

    # failure paths
    p = logproc("raw-output wrong S3 secret", ["run", "raw-output", "-o", "s3://test/bad"] + common,
                env_with(WRONG_S3, TOKEN))
    c.check(p.returncode != 0 and "test" in p.stderr, "a wrong S3 secret fails the run, naming the bucket")
    p = logproc("counter wrong Redis password",
                ["run", "counter", "-o", os.path.join(work, "counter-bad"), "--counterOutputStartTimestamp=1",
                 "--redisRetryTimeout", "PT1S",
                 "--redisUrl", "redis://:%s@127.0.0.1:%d/0" % (WRONG_REDIS_PW, rport)]
                + [a for a in common if a != "--s3Endpoint" and a != endpoint])
    c.check(p.returncode != 0, "a wrong Redis password fails the run")
    c.check("127.0.0.1:%d" % rport in p.stderr, "the error names the Redis server")
    p = logproc("redis url typo", ["run", "counter", "-o", os.path.join(work, "c3"),
                                   "--counterOutputStartTimestamp=1", "--redisUrl",
                                   "redis://:%s@127.0.0.1:notaport/0" % REDIS_PW] + common)
    c.check(p.returncode != 0 and "***" in p.stderr, "a bad Redis URL is named with its password hidden")
    p = logproc("bad Kafka property", ["run", "raw-output", "-o", os.path.join(work, "badprop"),
                                       "--kafkaProperty", "sasl.password.typo=" + KAFKA_PW]
                + [a for a in common if a != "--s3Endpoint" and a != endpoint])
    c.check(p.returncode != 0 and "sasl.password.typo" in p.stderr,
            "a Kafka property librdkafka refuses is named, its value hidden: " + p.stderr[-200:])
    p = logproc("flat-output wrong content key",
                ["run", "flat-output", "-o", os.path.join(work, "flat-badkey")]
                + [a for a in common if a != "--s3Endpoint" and a != endpoint]
                + ["--contentApiRootUrl", api or "http://127.0.0.1:1/", "--contentApiKey", WRONG_CONTENT_KEY,
                   "--contentIdFieldKeys", "storeId"])
    c.eq(p.returncode, 0, "a wrong Content API key does not fail the job")
    rows = subprocess.run([BIN, "inspect"] + sorted(
        os.path.join(d, f) for d, _, fs in os.walk(os.path.join(work, "flat-badkey", "etl_side", "content_api_error"))
        for f in fs if f.startswith("part-")), capture_output=True, text=True).stdout
    c.check("401" in rows, "its lookups fail with 401 into etl_side/content_api_error")
    outputs.append(("content_api_error rows", rows))
finally:
    crashlib.stop_all(procs)

outputs.append(("content API server", open(os.path.join(work, "serve.out")).read()
                if os.path.exists(os.path.join(work, "serve.out")) else ""))
leaks = []
for what, text in outputs:
    for s in SECRETS:
        if s in text:
            leaks.append((what, s))
for d, _, files in os.walk(work):
    for f in files:
        path = os.path.join(d, f)
        try:
            data = open(path, "rb").read()
        except OSError:
            continue
        for s in SECRETS:
            if s.encode() in data:
                leaks.append((os.path.relpath(path, work), s))
c.eq(leaks[:5], [], "no secret in any output, REST answer or file")
c.check(len(outputs) > 20, "%d outputs searched" % len(outputs))
if not c.failed:
    shutil.rmtree(work, ignore_errors=True)
c.done()
