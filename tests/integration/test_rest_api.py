"""The REST API, driven with curl and with `logproc list|savepoint|stop|cancel` against a live
flat-output job reading `logproc kafka-local`:

- /healthz; /metrics (Prometheus text: the operators' record counts, their per-second rates,
  the tasks' pendingRecords and the checkpoint gauges); GET /jobs, /jobs/<id>,
  /jobs/<id>/metrics?get=, /jobs/<id>/status (operators with counts and rates, tasks with
  watermarks and backlog, checkpoints), /jobs/<id>/plan (Flink's shape: nodes and inputs),
  /jobs/<id>/checkpoints; `/` (the status page: one HTML file without external assets);
- POST /jobs/<id>/savepoints (a savepoint with _metadata at the requested place); unknown paths
  (404), other methods (405), an oversized body (413);
- the periodic metric log lines (--metricsLogInterval) with numRecordsOut and
  numRecordsOutPerSecond per operator;
- the CLI over HTTP: `logproc list` shows the job's REST url and state, `logproc savepoint --rest`
  works with no control directory at all, `logproc cancel` ends the job at once (exit 137,
  no final checkpoint), the restarted job resumes from its checkpoint, and `logproc stop` (the
  url found in the control directory) stops it with exit 0;
- with the default port 8081 taken, a job serves REST on a free port instead.
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


def start_job(log):
    job = subprocess.Popen([BIN, "run", "flat-output", "-b", bs, "--no-kafkaGroup", "--jobLabel",
                            "api", "-o", os.path.join(work, "out"), "--controlDir", ctl,
                            "--checkpointInterval", "PT0.5S", "--restPort", "0",
                            "--metricsLogInterval", "PT0.5S", "--progressInterval", "PT0.2S"],
                           stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    procs.append(job)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and job.poll() is None:
        text = open(log).read()
        m = re.search(r"rest listening address=127\.0\.0\.1 port=(\d+)", text)
        if m and "component=checkpoint completed" in text:
            return job, "http://127.0.0.1:%s" % m.group(1)
        time.sleep(0.1)
    return job, None


def poll_json(url, pred, timeout=30):
    """GETs url until pred(json) holds (the sampler needs two samples for rates)."""
    deadline = time.monotonic() + timeout
    doc = None
    while time.monotonic() < deadline:
        code, body = curl(url)
        doc = json.loads(body) if code == 200 else None
        if doc is not None and pred(doc):
            return doc
        time.sleep(0.2)
    return doc


def cli(*args):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=120)


ctl = os.path.join(work, "ctl")
try:
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:4"])
    subprocess.run([BIN, "generate", "logs", "--profile", "local", "--bootstrapServers", bs],
                   capture_output=True, check=True)
    job, rest = start_job(os.path.join(work, "job.err"))
    c.check(rest is not None, "the job logs its REST port and checkpoints")
    jid = "api.flat-output"

    code, body = curl(rest + "/healthz")
    c.check(code == 200 and body.strip() == "ok", "/healthz: %d %r" % (code, body))
    code, body = curl(rest + "/metrics")
    c.check(code == 200 and re.search(r'numRecordsOut\{[^}]*operator="sink-s3-etl-joined_impression"', body),
            "/metrics has the joined-impression sink's numRecordsOut")
    c.check(re.search(r"lastCheckpointSize\{[^}]*\} [1-9]", body) is not None,
            "/metrics has a non-zero lastCheckpointSize")
    c.check(re.search(r'pendingRecords\{task="tracking.event.log-request-\d"\} \d+', body) is not None,
            "/metrics has each task's pendingRecords")
    code, body = curl(rest + "/jobs")
    c.check(code == 200 and json.loads(body)["jobs"][0]["id"] == jid, "/jobs: " + body)
    code, body = curl(rest + "/jobs/" + jid)
    c.check(code == 200 and json.loads(body)["name"] == "flat-output"
            and json.loads(body)["state"] == "RUNNING", "/jobs/<id>: " + body)

    code, body = curl(rest + "/jobs/%s/metrics?get=lastCheckpointSize,numRecordsOut,noSuchMetric" % jid)
    got = {m["id"]: int(m["value"]) for m in json.loads(body)} if code == 200 else {}
    c.check(got.get("lastCheckpointSize", 0) > 0 and got.get("numRecordsOut", 0) > 0
            and "noSuchMetric" not in got, "/jobs/<id>/metrics?get=: %s" % body)
    code, body = curl(rest + "/jobs/%s/metrics" % jid)
    c.check(code == 200 and {"id": "numRecordsIn"} in json.loads(body), "the metric names are listed")

    # status: rates appear once the sampler has two samples
    st = poll_json(rest + "/jobs/%s/status" % jid,
                   lambda d: any("numRecordsInPerSecond" in o for o in d.get("operators", []))
                   and len(d.get("tasks", [])) == 4
                   and all(t.get("numberOfCompletedCheckpoints", 0) > 0 for t in d["tasks"]))
    c.check(st is not None and st["jid"] == jid and st["state"] == "RUNNING", "status names the job")
    ops = {o["id"]: o for o in (st or {}).get("operators", [])}
    ja = ops.get("join-impression-action", {})
    c.check(ja.get("numRecordsIn", 0) > 0 and "numRecordsOutPerSecond" in ja
            and "join-insertion-impression" in ja.get("inputs", []),
            "status: join-impression-action has records, a rate and its input: %s" % ja)
    c.check(ops.get("decode-log-request", {}).get("numRecordsIn", 0) > 0
            if "decode-log-request" in ops else any(not o.get("inputs") and o.get("numRecordsIn", 0) > 0
                                                    for o in ops.values()),
            "status: the root operator counts its input")
    c.check(any("side" in o and sum(o["side"].values()) >= 0 for o in ops.values()),
            "status: side outputs are listed per operator")
    tasks = (st or {}).get("tasks", [])
    c.check(len(tasks) == 4 and all(t.get("numberOfCompletedCheckpoints", 0) > 0
                                    and isinstance(t.get("sourceWatermark"), int)
                                    and "pendingRecords" in t for t in tasks),
            "status: 4 tasks with watermarks, backlog and checkpoints: %s" % tasks[:1])
    c.check((st or {}).get("checkpoints", {}).get("completed", 0) >= 4
            and (st or {}).get("checkpoints", {}).get("lastTime", 0) > 0, "status: job checkpoints")
    code, body = curl(rest + "/metrics")
    c.check(re.search(r'numRecordsInPerSecond\{operator="join-impression-action",task=[^}]*\} [0-9.]+', body)
            is not None, "/metrics has per-operator rates")
    code, body = curl(rest + "/jobs/%s/plan" % jid)
    plan = json.loads(body)["plan"] if code == 200 else {}
    nodes = {n["id"]: n for n in plan.get("nodes", [])}
    c.check(plan.get("jid") == jid and {"id": "join-insertion-impression"}
            in nodes.get("join-impression-action", {}).get("inputs", []), "/plan: nodes and inputs")
    c.check(set(nodes) == set(ops), "the plan and the status list the same operators")
    code, body = curl(rest + "/jobs/%s/checkpoints" % jid)
    ck = json.loads(body) if code == 200 else {}
    c.check(ck.get("counts", {}).get("completed", 0) >= 4
            and ck.get("latest", {}).get("completed", {}).get("state_size", 0) > 0, "/checkpoints: " + body[:200])
    code, body = curl(rest + "/")
    c.check(code == 200 and "<script>" in body and "/status" in body, "/ serves the status page")
    c.check(not re.search(r'(src|href)\s*=\s*"(https?:)?//', body), "the status page has no external assets")

    target = os.path.join(work, "sp")
    code, body = curl("-X", "POST", rest + "/jobs/%s/savepoints" % jid, "-d",
                      json.dumps({"target-directory": target}))
    c.check(code == 200 and json.loads(body).get("location") == target, "savepoint: %d %s" % (code, body))
    c.check(os.path.isfile(os.path.join(target, "_metadata")), "the savepoint has _metadata")

    code, _ = curl(rest + "/nothing")
    c.check(code == 404, "an unknown path is 404 (%d)" % code)
    code, _ = curl("-X", "DELETE", rest + "/jobs")
    c.check(code == 405, "DELETE is 405 (%d)" % code)
    code, _ = curl("-X", "PUT", rest + "/jobs/" + jid)
    c.check(code == 405, "PUT is 405 (%d)" % code)
    code, _ = curl("-X", "POST", rest + "/jobs/%s/stop" % jid, "-d", "x" * 70000)
    c.check(code == 413, "a body over 64 KiB is 413 (%d)" % code)
    c.check(job.poll() is None, "the job still runs after the refused stop")

    # periodic metric lines (--metricsLogInterval): counts and rates per operator
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "numRecordsOutPerSecond" not in open(os.path.join(work, "job.err")).read():
        time.sleep(0.2)
    text = open(os.path.join(work, "job.err")).read()
    c.check(re.search(r"numRecordsOut operator=join-impression-action task=\S+ value=\d+", text) and
            re.search(r"numRecordsOutPerSecond operator=join-impression-action task=\S+ value=[\d.]+", text),
            "the metric log lines carry numRecordsOut and numRecordsOutPerSecond per operator")

    # the progress line: records read, event-time position, what is left (the Kafka backlog)
    prog = re.findall(r'component=progress records=(\d+) rate=\d+/s event_time=(\S+) left="(\d+) records"',
                      open(os.path.join(work, "job.err")).read())
    c.check(prog and int(prog[-1][0]) > 0 and prog[-1][1].startswith("20") and int(prog[-1][2]) == 0,
            "progress lines count the records read and reach an empty backlog: %s" % prog[-1:])

    # the CLI over HTTP
    p = cli("list", "--controlDir", ctl)
    c.check(p.returncode == 0 and re.search(r"api\.flat-output\s+pid \d+\s+RUNNING\s+" + re.escape(rest), p.stdout),
            "list shows the job, its state and REST url: %r" % p.stdout)
    p = cli("list", "--rest", rest)
    c.check(p.returncode == 0 and "api.flat-output" in p.stdout and "RUNNING" in p.stdout,
            "list --rest asks the REST API: %r" % p.stdout)
    sp2 = os.path.join(work, "sp2")
    p = cli("savepoint", "flat-output", "--jobLabel", "api", "--rest", rest, "--controlDir",
            os.path.join(work, "no-such-dir"), "--savepointPath", sp2)
    c.check(p.returncode == 0 and p.stdout.strip() == sp2 and os.path.isfile(os.path.join(sp2, "_metadata")),
            "savepoint --rest (no control directory): %r %r" % (p.stdout, p.stderr))
    ckdir = os.path.join(work, "out", "checkpoints", jid)
    p = cli("cancel", "flat-output", "--jobLabel", "api", "--rest", rest)
    c.check(p.returncode == 0 and "cancelled" in p.stdout, "cancel over HTTP: %r %r" % (p.stdout, p.stderr))
    job.wait(60)
    c.check(job.returncode == 137, "a cancelled job ends at once (exit %s)" % job.returncode)
    text = open(os.path.join(work, "job.err")).read()
    after = text.split("cancelled through the REST API", 1)
    c.check(len(after) == 2 and "checkpoint completed" not in after[1],
            "no checkpoint after the cancel")

    # restart: resumes from the checkpoints; stop through the url published in the control dir
    job, rest = start_job(os.path.join(work, "job2.err"))
    c.check(rest is not None, "the job restarts")
    text = open(os.path.join(work, "job2.err")).read()
    c.check(text.count("restoring task=") == 4, "the restart restores its 4 tasks' checkpoints")
    p = cli("stop", "flat-output", "--jobLabel", "api", "--controlDir", ctl)
    c.check(p.returncode == 0, "stop over HTTP: %r %r" % (p.stdout, p.stderr))
    job.wait(60)
    c.check(job.returncode == 0, "the stopped job exits 0")
    p = cli("list", "--controlDir", ctl)
    c.check("api.flat-output" not in p.stdout, "list no longer shows the stopped job")

    # the default port taken (here by a socket of ours, or by another job): a free port instead
    import socket
    hold = socket.socket()
    try:
        hold.bind(("127.0.0.1", 8081))
        hold.listen(1)
    except OSError:
        pass  # someone else holds 8081: taken either way
    rec = os.path.join(work, "small.rec")
    subprocess.run([BIN, "generate", "logs", "--profile", "local", "--users", "1", "--output", rec],
                   capture_output=True, check=True)
    p = subprocess.run([BIN, "run", "raw-output", "--source", rec, "-o", os.path.join(work, "raw"),
                        "--controlDir", ctl], capture_output=True, text=True)
    hold.close()
    m = re.search(r"rest listening address=127\.0\.0\.1 port=(\d+)", p.stderr)
    c.check(p.returncode == 0 and "rest port 8081 is taken: using a free port" in p.stderr
            and m and m.group(1) != "8081", "with 8081 taken the job serves REST on a free port")
finally:
    crashlib.stop_all(procs)
c.done()
