"""The REST API's first endpoints (issue 6 grows it), driven with curl against a live
flat-output job reading `logproc kafka-local`: /healthz, /metrics (Prometheus text with the
operators' record counts and the checkpoint gauges), GET /jobs and /jobs/<id>, POST
/jobs/<id>/savepoints (a savepoint with _metadata at the requested place), unknown paths (404),
other methods (405), an oversized body (413), and POST /jobs/<id>/stop (the job exits 0).
The server binds 127.0.0.1 on a port the kernel picks (--restPort 0), read from the log.
"""
import json
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
work = lptest.workdir("rest")
procs = []


def curl(*args):
    r = subprocess.run(["curl", "-s", "-m", "120", "-w", "\n%{http_code}"] + list(args),
                       capture_output=True, text=True)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


try:
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:4"])
    subprocess.run([BIN, "generate", "logs", "--profile", "local", "--bootstrapServers", bs],
                   capture_output=True, check=True)
    log = os.path.join(work, "job.err")
    job = subprocess.Popen([BIN, "run", "flat-output", "-b", bs, "--no-kafkaGroup", "--jobLabel",
                            "api", "-o", os.path.join(work, "out"), "--controlDir",
                            os.path.join(work, "ctl"), "--checkpointInterval", "PT0.5S",
                            "--restPort", "0"], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    procs.append(job)
    rest = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and job.poll() is None:
        text = open(log).read()
        m = re.search(r"rest listening address=127\.0\.0\.1 port=(\d+)", text)
        if m and "component=checkpoint completed" in text:
            rest = "http://127.0.0.1:%s" % m.group(1)
            break
        time.sleep(0.1)
    c.check(rest is not None, "the job logs its REST port and checkpoints")

    code, body = curl(rest + "/healthz")
    c.check(code == 200 and body.strip() == "ok", "/healthz: %d %r" % (code, body))
    code, body = curl(rest + "/metrics")
    c.check(code == 200 and re.search(r'numRecordsOut\{[^}]*operator="sink-s3-etl-joined_impression"', body),
            "/metrics has the joined-impression sink's numRecordsOut")
    c.check(re.search(r"lastCheckpointSize\{[^}]*\} [1-9]", body) is not None,
            "/metrics has a non-zero lastCheckpointSize")
    code, body = curl(rest + "/jobs")
    c.check(code == 200 and json.loads(body)["jobs"][0]["id"] == "api.flat-output", "/jobs: " + body)
    code, body = curl(rest + "/jobs/api.flat-output")
    c.check(code == 200 and json.loads(body)["name"] == "flat-output", "/jobs/<id>: " + body)

    code, body = curl(rest + "/jobs/api.flat-output/metrics?get=lastCheckpointSize,numRecordsOut,noSuchMetric")
    got = {m["id"]: int(m["value"]) for m in json.loads(body)} if code == 200 else {}
    c.check(got.get("lastCheckpointSize", 0) > 0 and got.get("numRecordsOut", 0) > 0
            and "noSuchMetric" not in got, "/jobs/<id>/metrics?get=: %s" % body)
    code, body = curl(rest + "/jobs/api.flat-output/metrics")
    c.check(code == 200 and {"id": "numRecordsIn"} in json.loads(body), "the metric names are listed")

    target = os.path.join(work, "sp")
    code, body = curl("-X", "POST", rest + "/jobs/api.flat-output/savepoints", "-d",
                      json.dumps({"target-directory": target}))
    c.check(code == 200 and json.loads(body).get("location") == target, "savepoint: %d %s" % (code, body))
    c.check(os.path.isfile(os.path.join(target, "_metadata")), "the savepoint has _metadata")

    code, _ = curl(rest + "/nothing")
    c.check(code == 404, "an unknown path is 404 (%d)" % code)
    code, _ = curl("-X", "DELETE", rest + "/jobs")
    c.check(code == 405, "DELETE is 405 (%d)" % code)
    code, _ = curl("-X", "POST", rest + "/jobs/api.flat-output/stop", "-d", "x" * 70000)
    c.check(code == 413, "a body over 64 KiB is 413 (%d)" % code)
    c.check(job.poll() is None, "the job still runs after the refused stop")

    code, body = curl("-X", "POST", rest + "/jobs/api.flat-output/stop", "-d", "{}")
    c.check(code == 202, "stop: %d %s" % (code, body))
    job.wait(60)
    c.check(job.returncode == 0, "the stopped job exits 0")
finally:
    crashlib.stop_all(procs)
c.done()
