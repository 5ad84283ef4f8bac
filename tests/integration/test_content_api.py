"""The Content API end to end (issue 6; spec/flat-output.md §9, spec/fake-data.md §9):

- `logproc generate content --serve --port 0 --no-preload` starts empty on a loopback port
  (read from its `listening on` line); `logproc generate content --contentApiRootUrl` pushes the
  catalogue in PUT batches (a wrong key is refused with 401, named with the URL and never the
  key), after which the query endpoint answers the items' fields;
- flat-output on the createStoreInsertionItemShoppingCartBuilder preset (impressions on stores,
  actions on items) with --contentIdFieldKeys=storeId joins strictly more actions than the same
  run without the Content API, keeping every id-based attribution, and every added one is an
  item action on the impression of the item's store (the catalogue's storeId);
- the key appears in no stdout, stderr or output file of any run;
- GET /metrics of a live (Kafka-mode) job shows contentCacheHits > 0, contentCacheMisses > 0 and
  the hit rate contentCacheHitPercent;
- failures never fail the job: a server answering 503 to everything (retries counted, rows in
  etl_side/content_api_error with the attempts, then cached failures), a server slower than
  --contentApiTimeout (status 0 rows), and a field that is not a string (one row naming it) all
  end with exit 0 and the joins of a run without the Content API.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
from lptest import BIN, Checks, read_table, run, workdir  # noqa: E402

KEY = "it-secret-key-93b1d"
CATALOGUE = ["--stores=20", "--itemsPerStore=20", "--promotionsPerItem=4"]  # the presets' (§1.D)
c = Checks()
work = workdir("test_content_api")
procs = []


def serve(*args):
    """Starts the local Content API; returns (process, root URL) once it prints its line."""
    p = subprocess.Popen([BIN, "generate", "content", "--serve", "--port", "0",
                          "--contentApiKey", KEY] + list(args),
                         stdout=subprocess.PIPE, stderr=open(os.path.join(work, "serve.err"), "a"),
                         text=True)
    procs.append(p)
    line = p.stdout.readline()
    if not line.startswith("listening on http://127.0.0.1:"):
        raise SystemExit("content server did not start: %r" % line)
    return p, line.split()[-1]


def http(method, url, body, key=KEY):
    req = urllib.request.Request(url, data=body.encode(), method=method,
                                 headers={"Content-Type": "application/json", "x-api-key": key})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def query(url, ids):
    return http("POST", url + "v1/content/query", json.dumps({"content_ids": ids, "include_deleted": True}))


def flat(name, src, extra):
    out = os.path.join(work, name)
    p = run(["run", "flat-output", "--source", src, "-o", out, "--no-addLatestImpressions",
             "--contentIdFieldKeys=storeId", "--restPort=-1"] + extra, check=False)
    return out, p


def attributions(out):
    rows, _ = read_table(out, "etl/joined_action")
    return rows, {(r["action"]["action_id"], line_of(r), r["ids"]["impression_id"]) for r in rows}


def line_of(r):
    a = r["action"]
    return a["single_cart_content"]["content_id"] if a["single_cart_content"] else a["content_id"]


def key_nowhere(paths, procs_out, what):
    hits = [p for p in paths if KEY.encode() in open(p, "rb").read()]
    hits += [n for n, text in procs_out if KEY in text]
    c.eq(hits, [], what + ": the key appears nowhere")


def files_under(root):
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]


try:
    # ---- the server and the upload ----
    srv, url = serve("--no-preload")
    code, body = query(url, ["i-1-1"])
    c.eq((code, json.loads(body)), (200, {}), "an empty server knows no content")
    code, _ = query(url + "x/", ["i-1-1"])
    c.eq(code, 404, "an unknown path is 404")
    code, _ = http("POST", url + "v1/content/query", "{}", key="wrong")
    c.eq(code, 401, "a wrong key is 401")

    bad = run(["generate", "content", "--contentApiRootUrl", url, "--contentApiKey", "not-" + KEY]
              + CATALOGUE, check=False)
    c.check(bad.returncode != 0 and "401" in bad.stderr and url + "v1/content/batch" in bad.stderr,
            "a refused upload names the URL and the status: %r" % bad.stderr)
    c.check("not-" + KEY not in bad.stderr + bad.stdout, "a refused upload does not print its key")
    noslash = run(["generate", "content", "--contentApiRootUrl", url.rstrip("/"),
                   "--contentApiKey", KEY], check=False)
    c.check(noslash.returncode == 2 and "must end with" in noslash.stderr, "the root must end with /")

    batches = os.path.join(work, "batches.jsonl")
    up = run(["generate", "content", "--contentApiRootUrl", url, "--contentApiKey", KEY,
              "--output", batches] + CATALOGUE, check=False)
    c.eq(up.returncode, 0, "the upload succeeds (%s)" % up.stderr[-300:])
    lines = [json.loads(l) for l in open(batches)]
    c.eq([len(b) for b in lines], [100] * 20 + [20], "batches of 100 (2020 entries)")
    c.eq(lines[0].get("i-1-1"), {"type": "ITEM", "storeId": "s-1-1", "itemId": "i-1-1"},
         "an item's request fields, in the spec's key order")
    c.check(list(lines[0]["p-1-1"]) == ["type", "storeId", "itemId", "promotionId"],
            "a promotion's keys in order type, storeId, itemId, promotionId")
    code, body = query(url, ["i-1-181", "s-1-10", "nope"])
    got = json.loads(body) if code == 200 else {}
    c.eq(got.get("i-1-181", {}).get("storeId"), "s-1-10", "after the upload i-1-181 has storeId s-1-10")
    c.check("nope" not in got and "s-1-10" in got, "unknown ids are absent from the answer")

    # ---- the join, with and without the Content API ----
    src = os.path.join(work, "in.rec")
    run(["generate", "logs", "--preset=createStoreInsertionItemShoppingCartBuilder", "-o", src])
    off_out, off_p = flat("off", src, [])
    on_out, on_p = flat("on", src, ["--contentApiRootUrl", url, "--contentApiKey", KEY])
    c.eq((off_p.returncode, on_p.returncode), (0, 0), "both runs exit 0 (%s)" % on_p.stderr[-300:])
    off_rows, off_keys = attributions(off_out)
    on_rows, on_keys = attributions(on_out)
    c.check(len(on_rows) > len(off_rows), "the Content API joins more actions: %d > %d"
            % (len(on_rows), len(off_rows)))
    c.check(off_keys <= on_keys, "every attribution of the run without it is kept")
    imps, _ = read_table(on_out, "etl/joined_impression")
    store_imp = {r["response_insertion"]["content_id"]: r["ids"]["impression_id"] for r in imps}
    added = on_keys - off_keys
    c.check(added and all(item.startswith("i-1-") and imp == store_imp.get(
        "s-1-%d" % ((int(item.rsplit("-", 1)[1]) - 1) // 20 + 1)) for _, item, imp in added),
        "each added attribution puts an item action on its store's impression: %s" % sorted(added)[:3])
    errs, _ = read_table(on_out, "etl_side/content_api_error")
    c.eq(errs, [], "no lookup failed")
    m = re.search(r"operator=lookup-content-tiny-action .*cacheHits=(\d+) cacheMisses=(\d+) apiRequests=(\d+)",
                  on_p.stderr)
    c.check(m and int(m.group(1)) > 0 and int(m.group(2)) > 0 and int(m.group(3)) == int(m.group(2)),
            "the action lookup's final line: hits, misses, one request per miss")
    key_nowhere(files_under(on_out), [("stdout", on_p.stdout), ("stderr", on_p.stderr),
                                     ("upload", up.stdout + up.stderr)], "the joined run")

    nokey = run(["run", "flat-output", "--source", src, "-o", os.path.join(work, "nokey"),
                 "--contentApiRootUrl", url], check=False)
    c.check(nokey.returncode != 0 and "--contentApiKey" in nokey.stderr, "a root URL needs a key")
    slash = run(["run", "flat-output", "--source", src, "-o", os.path.join(work, "slash"),
                 "--contentApiRootUrl", url.rstrip("/"), "--contentApiKey", KEY], check=False)
    c.check(slash.returncode != 0 and "must end with" in slash.stderr and KEY not in slash.stderr,
            "flat-output refuses a root URL without the trailing /")
    dummy_out, dummy_p = flat("dummy", src, ["--enableDummyContentApiLoader"])
    c.eq(attributions(dummy_out)[1], off_keys, "the dummy loader passes records through unchanged")

    # ---- a field that is not a string: one failed lookup, the job goes on ----
    item = sorted(i for _, i, _ in added)[0]
    code, _ = http("PUT", url + "v1/content/batch", json.dumps({item: {"storeId": 5}}))
    c.eq(code, 200, "a batch PUT by hand")
    ns_out, ns_p = flat("nonstring", src, ["--contentApiRootUrl", url, "--contentApiKey", KEY])
    c.eq(ns_p.returncode, 0, "a non-string field does not fail the job")
    rows, _ = read_table(ns_out, "etl_side/content_api_error")
    first = [r for r in rows if not r["cached"]]
    c.check(first and all(r["contentId"] == item and r["status"] == 200 and r["attempts"] == 1
                          and "field storeId is a number, not a string" in r["error"] for r in first)
            and sorted(r["lookup"] for r in first) in (["action"], ["action", "insertion"]),
            "one row per lookup operator names the content and the field: %s" % first)
    c.check(all(r["contentId"] == item for r in rows), "every row is that content's")
    _, ns_keys = attributions(ns_out)
    c.check(not any(i == item for (_, i, _) in ns_keys - off_keys),
            "the item's actions went on without the store key")
    srv.terminate()
    srv.wait(30)

    # ---- every query answered 503: retries, then rows; the job ends with the plain joins ----
    srv, url = serve("--failEvery=1", "--failStatus=503", *CATALOGUE)
    f_out, f_p = flat("fail503", src, ["--contentApiRootUrl", url, "--contentApiKey", KEY,
                                       "--contentApiMaxAttempts=2"])
    c.eq(f_p.returncode, 0, "a failing Content API does not fail the job (%s)" % f_p.stderr[-300:])
    _, f_keys = attributions(f_out)
    c.eq(f_keys, off_keys, "with every lookup failing the joins are those without the Content API")
    rows, _ = read_table(f_out, "etl_side/content_api_error")
    fresh = [r for r in rows if not r["cached"]]
    cached = [r for r in rows if r["cached"]]
    c.check(fresh and all(r["status"] == 503 and r["attempts"] == 2 and "status 503" in r["error"]
                          and url + "v1/content/query" in r["error"] for r in fresh),
            "each failed lookup: status 503, 2 attempts, the URL: %s" % fresh[:1])
    c.eq(len({(r["lookup"], r["contentId"]) for r in fresh}), len(fresh),
         "one lookup per content and operator: later records use the cached failure")
    c.check(cached and all(r["attempts"] == 0 for r in cached), "records served by a cached failure get rows too")
    m = re.findall(r"apiRetries=(\d+) apiFailures=(\d+)", f_p.stderr)
    c.check(m and sum(int(r) for r, _ in m) == len(fresh) and sum(int(f) for _, f in m) == len(fresh),
            "one retry and one failure counted per failed lookup: %s" % m)
    key_nowhere(files_under(f_out), [("stderr", f_p.stderr), ("stdout", f_p.stdout)], "the failing run")
    srv.terminate()
    srv.wait(30)

    # ---- slower than the timeout: status 0 rows ----
    srv, url = serve("--delay=PT1S", *CATALOGUE)
    t_out, t_p = flat("timeout", src, ["--contentApiRootUrl", url, "--contentApiKey", KEY,
                                       "--contentApiTimeout=PT0.05S", "--contentApiMaxAttempts=1"])
    c.eq(t_p.returncode, 0, "timeouts do not fail the job")
    rows, _ = read_table(t_out, "etl_side/content_api_error")
    fresh = [r for r in rows if not r["cached"]]
    c.check(fresh and all(r["status"] == 0 and r["attempts"] == 1 for r in fresh),
            "a timeout is a status-0 row: %s" % fresh[:1])
    srv.terminate()
    srv.wait(30)

    # ---- a live job's /metrics ----
    srv, url = serve(*CATALOGUE)
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:1"])
    run(["generate", "logs", "--preset=createStoreInsertionItemShoppingCartBuilder",
         "--bootstrapServers", bs])
    log = os.path.join(work, "live.err")
    job = subprocess.Popen([BIN, "run", "flat-output", "-b", bs, "--no-kafkaGroup", "-o",
                            os.path.join(work, "live"), "--controlDir", os.path.join(work, "ctl"),
                            "--restPort", "0", "--contentApiRootUrl", url, "--contentApiKey", KEY,
                            "--contentIdFieldKeys=storeId"],
                           stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    procs.append(job)
    deadline = time.monotonic() + 120
    metrics = ""
    while time.monotonic() < deadline and job.poll() is None:
        mm = re.search(r"rest listening address=127\.0\.0\.1 port=(\d+)", open(log).read())
        if mm:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % mm.group(1), timeout=10) as r:
                    metrics = r.read().decode()
            except OSError:
                metrics = ""
            hits = re.search(r'logproc_contentCacheHits\{operator="lookup-content-tiny-action"[^}]*\} ([1-9]\d*)', metrics)
            misses = re.search(r'logproc_contentCacheMisses\{operator="lookup-content-tiny-action"[^}]*\} ([1-9]\d*)', metrics)
            if hits and misses:
                break
        time.sleep(0.2)
    c.check(re.search(r'logproc_contentCacheHits\{operator="lookup-content-tiny-action"[^}]*\} [1-9]', metrics),
            "GET /metrics: contentCacheHits > 0")
    c.check(re.search(r'logproc_contentCacheMisses\{operator="lookup-content-tiny-action"[^}]*\} [1-9]', metrics),
            "GET /metrics: contentCacheMisses > 0")
    c.check(re.search(r'logproc_contentCacheEntries\{operator="lookup-content-tiny-action"[^}]*\} [1-9]', metrics),
            "GET /metrics: the contentCacheEntries gauge")
    pct = [int(v) for v in re.findall(r'logproc_contentCacheHitPercent\{operator="lookup-content-tiny-action"[^}]*\} (\d+)', metrics)]
    c.check(pct and 1 <= max(pct) <= 99, "GET /metrics: the cache hit rate per task (%s %%)" % pct)
    c.check(KEY not in metrics, "the key is not in /metrics")
    job.terminate()
    job.wait(60)
    key_nowhere([log] + files_under(os.path.join(work, "live")) + files_under(os.path.join(work, "ctl")),
                [], "the live run's log, outputs, checkpoints and control files")
finally:
    crashlib.stop_all(procs)

if c.failed == 0:
    shutil.rmtree(work, ignore_errors=True)
else:
    print("work directory kept: " + work, file=sys.stderr)
c.done()
