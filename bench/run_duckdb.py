"""make bench, part three: content-metrics' daily aggregation against DuckDB on the same rows.

Issue 8's figure "content-metrics daily aggregation time / DuckDB's on the same rows" (goal at
most 1.0), measured in one run, medians of at least 5 rounds. Debian's python3, standard library;
DuckDB is npm's @duckdb/node-api, pinned in bench/duckdb/package-lock.json and installed by
`scripts/deps.sh bench` (never by the test deps).

1. Input: bench/run_metrics_jobs.py's (the CLI profile, 200 users, and flat-output's joined
   events, cached in bench/work/metrics-jobs/ while the binary and flags are the same).
2. "The same rows", exported once, untimed, into bench/work/duckdb/: one row per content event
   (spec/other-jobs.md §C.2, docs/CONTENT_METRICS.md) with the columns the daily aggregation
   reads: event_time_ms, platform_id, content_id and the nine counts. They are derived here from
   `logproc inspect`'s JSON of the LogRequests and of the joined events (deduped by the same keys
   as the job, the first copy kept), written as CSV, and turned into Parquet by DuckDB
   (bench/duckdb/daily.mjs prepare). Their number must equal the job's derive-content-event
   output count.
3. Rounds, interleaved: `logproc run content-metrics ... --outputCsv --parallelism 1` (only the
   daily aggregation and its CSV sink are built), the whole process's wall time; then
   `node bench/duckdb/daily.mjs run` with threads=1 and with DuckDB's default thread count, each
   timing the aggregation straight over the Parquet file, the load into an in-memory table, and
   the aggregation over that table.
4. Cross-check: every DuckDB result (every query of every run) must equal the rows of every
   timed run's daily CSV and of one untimed --outputParquet run's daily_content_metrics Avro
   table read with `logproc inspect`; any difference fails the harness.
5. Writes bench/results/duckdb.json and bench/results/duckdb.txt (docs/PERFORMANCE.md,
   "content-metrics against DuckDB", quotes them).

`bench/run_duckdb.py --help` lists the options.
"""
import argparse
import csv
import glob
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import run_metrics_jobs as mj

BENCH = mj.BENCH
ROOT = mj.ROOT
WORK = os.path.join(BENCH, "work", "duckdb")
DUCKDB_DIR = os.path.join(BENCH, "duckdb")
DAILY_MJS = os.path.join(DUCKDB_DIR, "daily.mjs")

DEFAULT_RUNS = 5
DEFAULT_REPEAT = 5
# Bump when the export rules below change, so a cached export is not reused.
EXPORT_VERSION = 1

COLS = ["view_count", "impression_count", "joined_impression_count",
        "joined_impression_position_sum", "navigate_count", "add_to_cart_count",
        "checkout_count", "purchase_count", "gmv_usd_micros"]
ACTION_COL = {"NAVIGATE": 4, "ADD_TO_CART": 5, "CHECKOUT": 6, "PURCHASE": 7}
DAY_MS = 86400000
# The job's only flag beyond the inputs: the daily CSV, whose sink needs the daily aggregation
# and nothing else (--outputParquet would add the hourly aggregation and its Avro sink).
CM_FLAGS = ["--outputCsv"]
CM_DAILY_CSV = os.path.join("etl", "daily_content_metrics_csv")
CM_DAILY_AVRO = os.path.join("etl", "daily_content_metrics")

log, fail, fmt_int, rel, read_text = mj.log, mj.fail, mj.fmt_int, mj.rel, mj.read_text


# ---------------------------------------------------------------- the same rows

def inspect_lines(logproc, path, msg_type):
    """Yields the parsed JSON lines `logproc inspect` prints for a record file."""
    p = subprocess.Popen([logproc, "inspect", "--type=" + msg_type, path], stdout=subprocess.PIPE,
                         bufsize=1 << 20)
    for line in p.stdout:
        yield json.loads(line)
    if p.wait() != 0:
        fail("logproc inspect %s exited with %d" % (rel(path), p.returncode))


def u64(d, k):
    return int(d.get(k, "0"))


def joined_platform(e):
    """FlatUtil.getPlatformId (jobs/join/joined_filters.h): ids, then the first non-zero of
    user, view, request, response insertion, impression, action."""
    for f in ["ids", "user", "view", "request", "responseInsertion", "impression", "action"]:
        p = u64(e.get(f, {}), "platformId")
        if p:
            return p
    return 0


def joined_log_timestamp(e):
    """FlatUtil.getLogTimestamp: the first non-zero timing.logTimestamp in this order."""
    t = u64(e.get("timing", {}), "logTimestamp")
    if t:
        return t
    for f in ["action", "impression", "apiExecutionInsertion", "responseInsertion", "request",
              "view", "session", "user"]:
        t = u64(e.get(f, {}).get("timing", {}), "logTimestamp")
        if t:
            return t
    return 0


def content_events(logproc, meta):
    """Yields (event_time_ms, platform_id, content_id, counts[9]) for every content event of the
    input, by the job's rules: keep-first dedupe by (platform, id) per kind, the child's platform
    or its LogRequest's, an action once per cart row with a content id and for its own content id
    only when no cart row has one (the default, no --doubleCountCartActions), other action types
    a row of zeros. Dedupe is global here; the job forgets a key after its retention (PT6H, P1D),
    which cannot matter for input spanning less time than that (the cross-check would show it)."""
    seen = set()

    def first(kind, p, ident):
        key = (kind, p, ident)
        if key in seen:
            return False
        seen.add(key)
        return True

    rec = os.path.join(ROOT, meta["generator_argv"][-1])
    for r in inspect_lines(logproc, rec, "event.LogRequest"):
        ts, lr = r["timestamp"], r["value"]
        lp = u64(lr, "platformId")
        for kind, col, idf in (("view", 0, "viewId"), ("impression", 1, "impressionId")):
            for c in lr.get(kind, []):
                p = u64(c, "platformId") or lp
                if first(kind, p, c.get(idf, "")) and c.get("contentId"):
                    v = [0] * 9
                    v[col] = 1
                    yield ts, p, c["contentId"], v
        for a in lr.get("action", []):
            p = u64(a, "platformId") or lp
            if not first("action", p, a.get("actionId", "")):
                continue
            col = ACTION_COL.get(a.get("actionType", ""))
            rows = [c for c in a.get("cart", {}).get("contents", []) if c.get("contentId")]
            if a.get("contentId") and not rows:
                v = [0] * 9
                if col is not None:
                    v[col] = 1
                yield ts, p, a["contentId"], v
            for c in rows:
                v = [0] * 9
                q = u64(c, "quantity")
                if col is not None:
                    v[col] = q
                if col == 7:
                    v[8] = q * u64(c.get("pricePerUnit", {}), "amountMicros")
                yield ts, p, c["contentId"], v
    for path in meta["joined_event_files"]:
        for r in inspect_lines(logproc, os.path.join(ROOT, path), "event.JoinedEvent"):
            e = r["value"]
            if "action" in e:  # joined actions are not joined impressions (§C.1)
                continue
            if not first("joined", joined_platform(e), e.get("ids", {}).get("impressionId", "")):
                continue
            ri = e.get("responseInsertion", {})
            if ri.get("contentId"):
                v = [0] * 9
                v[2], v[3] = 1, u64(ri, "position")
                yield joined_log_timestamp(e) or r["timestamp"], u64(e.get("ids", {}), "platformId"), ri["contentId"], v


def node_json(argv, what):
    p = subprocess.run(["node", DAILY_MJS] + argv, capture_output=True, text=True, cwd=DUCKDB_DIR)
    if p.returncode != 0:
        fail("%s failed (exit %d):\n%s" % (what, p.returncode, p.stderr[-3000:]))
    return json.loads(p.stdout.splitlines()[-1])


def prepare_rows(logproc, meta, regenerate):
    """The exported content events as Parquet, cached while the input and export rules are the
    same. Returns a description (paths relative to the repo, counts, what it cost)."""
    os.makedirs(WORK, exist_ok=True)
    users = meta["users"]
    csv_path = os.path.join(WORK, "content-events-%du.csv" % users)
    pq_path = os.path.join(WORK, "content-events-%du.parquet" % users)
    desc_path = os.path.join(WORK, "content-events-%du.json" % users)
    key = hashlib.sha256(json.dumps([meta["key"], EXPORT_VERSION]).encode()).hexdigest()[:16]
    if not regenerate and os.path.exists(desc_path) and os.path.exists(pq_path):
        desc = json.loads(read_text(desc_path))
        if desc.get("key") == key:
            log("rows: reusing %s (%s content events)" % (rel(pq_path), fmt_int(desc["rows"])))
            return desc
    log("rows: exporting the content events of %s LogRequests and %s joined events (untimed)"
        % (fmt_int(meta["log_requests"]), fmt_int(meta["joined_events"])))
    t0 = time.perf_counter()
    n = 0
    days = set()
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["event_time_ms", "platform_id", "content_id"] + COLS)
        for ts, p, cid, v in content_events(logproc, meta):
            w.writerow([ts, p, cid] + v)
            days.add(ts // DAY_MS)
            n += 1
    t_export = time.perf_counter() - t0
    t0 = time.perf_counter()
    if os.path.exists(pq_path):
        os.remove(pq_path)
    got = node_json(["prepare", csv_path, pq_path], "daily.mjs prepare")
    t_parquet = time.perf_counter() - t0
    if got["rows"] != n:
        fail("DuckDB read %d rows back from %s; the export wrote %d" % (got["rows"], rel(csv_path), n))
    desc = {
        "key": key,
        "export_version": EXPORT_VERSION,
        "rows": n,
        "days": len(days),
        "columns": ["event_time_ms", "platform_id", "content_id"] + COLS,
        "csv": rel(csv_path),
        "csv_bytes": os.path.getsize(csv_path),
        "parquet": rel(pq_path),
        "parquet_bytes": os.path.getsize(pq_path),
        "export_seconds": t_export,
        "parquet_seconds": t_parquet,
    }
    with open(desc_path, "w") as fh:
        json.dump(desc, fh, indent=2)
        fh.write("\n")
    log("rows: %s content events, %.1f MB CSV, %.1f MB Parquet (export %.1f s, Parquet %.1f s)"
        % (fmt_int(n), desc["csv_bytes"] / 1e6, desc["parquet_bytes"] / 1e6, t_export, t_parquet))
    return desc


# ---------------------------------------------------------------- our side

def norm(row):
    """(dt, platform_id, content_id, nine ints): the form both sides are compared in."""
    return (str(row[0]), int(row[1]), str(row[2])) + tuple(int(x) for x in row[3:12])


def read_daily_csv(out_dir):
    rows = []
    for path in sorted(glob.glob(os.path.join(out_dir, CM_DAILY_CSV, "dt=*", "part-*.csv"))):
        with open(path, newline="") as f:
            r = csv.reader(f)
            header = next(r)
            if header != ["date", "platform_id", "content_id"] + COLS:
                fail("unexpected daily CSV header in %s: %r" % (rel(path), header))
            rows += [norm(x) for x in r]
    return sorted(rows)


def read_daily_avro(logproc, out_dir):
    """daily_content_metrics read back with `logproc inspect` (dt from the partition path)."""
    rows = []
    for path in sorted(glob.glob(os.path.join(out_dir, CM_DAILY_AVRO, "dt=*", "part-*.avro"))):
        dt = os.path.basename(os.path.dirname(path))[3:]
        p = subprocess.run([logproc, "inspect", path], capture_output=True, text=True)
        if p.returncode != 0:
            fail("logproc inspect %s failed: %s" % (rel(path), p.stderr[-500:]))
        for line in p.stdout.splitlines():
            d = json.loads(line)
            d = d.get("value", d)
            rows.append(norm([dt, d["platform_id"], d["content_id"]] +
                             [unwrap(d[c]) for c in COLS]))
    return sorted(rows)


def unwrap(v):
    """An Avro ["null","long"] as JSON: the bare value or {"long": value}."""
    return v["long"] if isinstance(v, dict) else v


def cm_argv(logproc, meta, out_dir, flags):
    argv = [logproc, "run", "content-metrics", "--source", os.path.join(ROOT, meta["generator_argv"][-1])]
    for p in meta["joined_event_files"]:
        argv += ["--joinedEventSource", os.path.join(ROOT, p)]
    return argv + ["-o", out_dir, "--parallelism", "1"] + flags


def one_cm(logproc, meta, rows_desc, run_no):
    out_dir = os.path.join(WORK, "cm-out")
    mj.fresh_dir(out_dir)
    out, err = os.path.join(WORK, "content-metrics.out"), os.path.join(WORK, "content-metrics.err")
    os.sync()
    m = mj.run_measured(cm_argv(logproc, meta, out_dir, CM_FLAGS), out, err)
    if m["exit_code"] != 0:
        fail("content-metrics (run %d) failed (exit %d)" % (run_no, m["exit_code"]), err)
    metrics = mj.parse_metrics(read_text(err))
    lr = metrics.get(("numRecordsIn", "source-kafka-tracking.event.log-request"))
    je = metrics.get(("numRecordsIn", "source-kafka-metrics.default.joined-event"))
    if lr != meta["log_requests"] or je != meta["joined_events"]:
        fail("content-metrics read %r LogRequests and %r joined events; the input has %d and %d"
             % (lr, je, meta["log_requests"], meta["joined_events"]), err)
    ce = metrics.get(("numRecordsOut", "derive-content-event"))
    if ce != rows_desc["rows"]:
        fail("content-metrics derived %r content events; the exported rows are %d: not the same rows"
             % (ce, rows_desc["rows"]), err)
    late = metrics.get(("numLateRecordsDropped", "aggregate-daily-content-metrics"), 0)
    rows = read_daily_csv(out_dir)
    mj.fresh_dir(out_dir)
    w = m["wall_s"]
    m.update(log_requests=lr, joined_events=je, input_records=lr + je, content_events=ce,
             late_dropped=late, output_rows=len(rows))
    m["input_records_per_s"] = m["input_records"] / w
    m["content_events_per_s"] = ce / w
    return m, rows


def avro_check_run(logproc, meta):
    """One untimed run with --outputParquet: the daily Avro table, read with logproc inspect."""
    out_dir = os.path.join(WORK, "cm-avro")
    mj.fresh_dir(out_dir)
    out, err = os.path.join(WORK, "content-metrics-avro.out"), os.path.join(WORK, "content-metrics-avro.err")
    m = mj.run_measured(cm_argv(logproc, meta, out_dir, ["--outputParquet"]), out, err)
    if m["exit_code"] != 0:
        fail("content-metrics --outputParquet failed (exit %d)" % m["exit_code"], err)
    rows = read_daily_avro(logproc, out_dir)
    mj.fresh_dir(out_dir)
    return rows


# ---------------------------------------------------------------- DuckDB's side

def one_duckdb(rows_desc, threads, repeat, run_no):
    out, err = os.path.join(WORK, "duckdb.out"), os.path.join(WORK, "duckdb.err")
    node = shutil.which("node")
    argv = [node, DAILY_MJS, "run", os.path.join(ROOT, rows_desc["parquet"]),
            "--threads", str(threads), "--repeat", str(repeat)]
    os.sync()
    m = mj.run_measured(argv, out, err)
    if m["exit_code"] != 0:
        fail("daily.mjs --threads %s (run %d) failed (exit %d)" % (threads, run_no, m["exit_code"]), err)
    d = json.loads(read_text(out).splitlines()[-1])
    if d["input_rows"] != rows_desc["rows"]:
        fail("DuckDB loaded %d rows; the export has %d" % (d["input_rows"], rows_desc["rows"]))
    if not d["rows_consistent"]:
        fail("DuckDB's in-memory and file queries gave different rows (threads %s)" % threads)
    rows = sorted(norm(r) for r in d.pop("rows"))
    d["mem_query_median_s"] = statistics.median(d["mem_query_s"])
    d["process_wall_s"] = m["wall_s"]
    d["process_cpu_s"] = m["cpu_s"]
    d["peak_rss_bytes"] = m["peak_rss_bytes"]
    d["output_rows"] = len(rows)
    return d, rows


def diff_rows(a, b, what):
    if a == b:
        return
    sa, sb = set(a), set(b)
    only_a, only_b = sorted(sa - sb)[:5], sorted(sb - sa)[:5]
    fail("%s: rows differ (%d vs %d rows); first only in ours: %r; first only in DuckDB's: %r"
         % (what, len(a), len(b), only_a, only_b))


# ---------------------------------------------------------------- results

def summary(vals):
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def bench(a, logproc, build):
    t_start = time.perf_counter()
    mach = mj.machine_facts(build)
    mach["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    meta = mj.prepare_input(logproc, a.users, a.regenerate)
    rows_desc = prepare_rows(logproc, meta, a.regenerate)
    variants = [("duckdb_t1", 1), ("duckdb_default", "default")]
    ours, duck = [], {name: [] for name, _ in variants}
    reference = None
    for i in range(a.runs):
        m, rows = one_cm(logproc, meta, rows_desc, i)
        if reference is None:
            reference = rows
        diff_rows(rows, reference, "content-metrics run %d against run 1" % (i + 1))
        ours.append(m)
        line = ["round %d/%d: content-metrics %.3f s" % (i + 1, a.runs, m["wall_s"])]
        for name, threads in variants:
            d, drows = one_duckdb(rows_desc, threads, a.repeat, i)
            diff_rows(reference, drows, "content-metrics against DuckDB (threads %s, run %d)" % (threads, i + 1))
            duck[name].append(d)
            line.append("DuckDB threads=%d: file %.1f ms, load+query %.1f ms, in-memory %.2f ms"
                        % (d["threads"], d["file_query_s"] * 1e3, d["load_plus_query_s"] * 1e3,
                           d["mem_query_median_s"] * 1e3))
        log("; ".join(line))
    avro_rows = avro_check_run(logproc, meta)
    diff_rows(avro_rows, reference, "daily_content_metrics (Avro, logproc inspect) against the daily CSV")
    mach["loadavg_end"] = list(os.getloadavg())

    med = {"content_metrics": {k: summary([r[k] for r in ours]) for k in
                               ["wall_s", "cpu_s", "peak_rss_bytes", "peak_rss_anon_bytes",
                                "input_records_per_s", "content_events_per_s"]}}
    dkeys = ["file_query_s", "load_s", "load_plus_query_s", "mem_query_median_s", "setup_s",
             "process_wall_s", "process_cpu_s", "peak_rss_bytes"]
    for name, _ in variants:
        med[name] = {k: summary([r[k] for r in duck[name]]) for k in dkeys}
    ratios = {}
    for name, _ in variants:
        for k, label in [("load_plus_query_s", "load_plus_query"), ("file_query_s", "file_query"),
                         ("mem_query_median_s", "in_memory_query"), ("process_wall_s", "node_process")]:
            per_round = [o["wall_s"] / d[k] for o, d in zip(ours, duck[name])]
            ratios["%s_%s" % (name, label)] = {
                "of_medians": med["content_metrics"]["wall_s"]["median"] / med[name][k]["median"],
                "median_of_rounds": statistics.median(per_round),
                "per_round": per_round,
            }
    goal = ratios["duckdb_t1_load_plus_query"]["of_medians"]
    res = {
        "benchmark": "content-metrics daily aggregation vs DuckDB",
        "goal": {"figure": "content-metrics daily aggregation time / DuckDB's on the same rows",
                 "target_max": 1.0,
                 "measured": goal,
                 "measured_as": "content-metrics whole-process wall (median) / DuckDB threads=1 "
                                "load-from-Parquet + query (median)",
                 "met": goal <= 1.0},
        "definitions": {
            "same_rows": "one row per content event (views, impressions, joined impressions, actions and "
                         "cart rows with a content id, deduped as the job does), columns event_time_ms, "
                         "platform_id, content_id and the nine counts; their number equals the job's "
                         "derive-content-event output",
            "content_metrics_wall_s": "logproc run content-metrics --outputCsv --parallelism 1, whole "
                                      "process from spawn to reap: decode of every input record, dedupe, "
                                      "derive, daily aggregation, CSV sink",
            "input_records": "LogRequests + joined events the job reads",
            "file_query_s": "DuckDB: the daily aggregation straight over read_parquet",
            "load_s": "DuckDB: CREATE TABLE events AS SELECT * FROM read_parquet",
            "load_plus_query_s": "load_s + the first aggregation over the loaded table",
            "mem_query_median_s": "median of --repeat aggregations over the loaded table",
            "process_wall_s": "the node process from spawn to reap (node start, module load, instance, "
                              "all the queries above)",
            "ratio": "content-metrics wall / the DuckDB figure; of_medians divides the medians, "
                     "median_of_rounds is the median of each round's ratio",
        },
        "machine": mach,
        "workload": meta,
        "rows": rows_desc,
        "runs": a.runs,
        "repeat": a.repeat,
        "argv": {
            "content_metrics": ["logproc"] + [rel(x) if os.path.isabs(x) else x for x in
                                              cm_argv(logproc, meta, os.path.join(WORK, "cm-out"), CM_FLAGS)[1:]],
            "content_metrics_avro_check": ["logproc", "run", "content-metrics", "...", "--outputParquet"],
            "duckdb": ["node", "bench/duckdb/daily.mjs", "run", rows_desc["parquet"], "--threads", "1|default",
                       "--repeat", str(a.repeat)],
        },
        "duckdb_version": duck["duckdb_t1"][0]["duckdb_version"],
        "duckdb_threads": {name: duck[name][0]["threads"] for name, _ in variants},
        "cross_check": {"daily_rows": len(reference), "equal": True,
                        "compared": "every DuckDB query of every run = every timed run's daily CSV = "
                                    "the untimed --outputParquet run's daily Avro table (logproc inspect)"},
        "daily_rows": [list(r) for r in reference],
        "runs_detail": {"content_metrics": ours, **duck},
        "median": med,
        "ratios": ratios,
    }
    text = result_text(res)
    res["harness_seconds"] = time.perf_counter() - t_start
    out = mj.results_dir(a.users)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "duckdb.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "duckdb.txt"), "w") as f:
        f.write(text)
    log("")
    log(text)
    log("results: %s/duckdb.json|txt (%.0f s)" % (rel(out), res["harness_seconds"]))


def result_text(res):
    wl, mach, rd, med, rat = res["workload"], res["machine"], res["rows"], res["median"], res["ratios"]
    ms = lambda s: "%.1f" % (s * 1e3)  # noqa: E731
    lines = [
        "make bench: content-metrics daily aggregation vs DuckDB %s, %d rounds, medians (min-max); %s"
        % (res["duckdb_version"], res["runs"], mach["date_utc"]),
        "input: %s LogRequests + %s joined events (generate --profile=cli --users=%d; flat-output)"
        % (fmt_int(wl["log_requests"]), fmt_int(wl["joined_events"]), wl["users"]),
        "same rows: %s content events (%s, %.2f MB Parquet); daily table: %d rows, equal on both sides"
        % (fmt_int(rd["rows"]), ", ".join(rd["columns"][:3]) + " + 9 counts", rd["parquet_bytes"] / 1e6,
           res["cross_check"]["daily_rows"]),
        "machine: %s, %d cores, load average %.2f at start, %.2f at end; build %s (%s), commit %s%s; node %s"
        % (mach["cpu_model"], mach["nproc"], mach["loadavg_start"][0], mach["loadavg_end"][0], mach["build_dir"],
           mach["build_type"], (mach["git_commit"] or "?")[:10], " + uncommitted changes" if mach["git_dirty"] else "",
           mach["node"]),
        "",
        "%-40s %22s %22s %22s" % ("", "content-metrics", "DuckDB threads=%d" % res["duckdb_threads"]["duckdb_t1"],
                                  "DuckDB threads=%d" % res["duckdb_threads"]["duckdb_default"]),
    ]

    def cell(s):
        return "%s (%s-%s)" % (ms(s["median"]), ms(s["min"]), ms(s["max"]))
    cm = med["content_metrics"]
    t1, td = med["duckdb_t1"], med["duckdb_default"]
    lines += [
        "%-40s %22s %22s %22s" % ("whole process wall, ms", cell(cm["wall_s"]), cell(t1["process_wall_s"]),
                                  cell(td["process_wall_s"])),
        "%-40s %22s %22s %22s" % ("query over the Parquet file, ms", "-", cell(t1["file_query_s"]),
                                  cell(td["file_query_s"])),
        "%-40s %22s %22s %22s" % ("load Parquet + query, ms", "-", cell(t1["load_plus_query_s"]),
                                  cell(td["load_plus_query_s"])),
        "%-40s %22s %22s %22s" % ("query on the loaded table, ms", "-", cell(t1["mem_query_median_s"]),
                                  cell(td["mem_query_median_s"])),
        "%-40s %22s" % ("input records/s (content-metrics)", fmt_int(cm["input_records_per_s"]["median"])),
        "%-40s %22s %22s %22s" % (
            "content events/s", fmt_int(cm["content_events_per_s"]["median"]),
            fmt_int(rd["rows"] / t1["load_plus_query_s"]["median"]),
            fmt_int(rd["rows"] / td["load_plus_query_s"]["median"])),
        "",
        "ratio content-metrics wall / DuckDB (of the medians; median of the per-round ratios):",
    ]
    for name, label in [("duckdb_t1", "threads=1"), ("duckdb_default", "default threads")]:
        for k, what in [("load_plus_query", "load + query"), ("file_query", "query over the file"),
                        ("in_memory_query", "in-memory query"), ("node_process", "node process")]:
            r = rat["%s_%s" % (name, k)]
            lines.append("  %-18s %-22s %10.1f  (%.1f)" % (label, what, r["of_medians"], r["median_of_rounds"]))
    g = res["goal"]
    lines += ["",
              "goal (issue 8): content-metrics / DuckDB threads=1 load + query <= %.1f: measured %.1f, %s"
              % (g["target_max"], g["measured"], "met" if g["met"] else "NOT met"),
              "content-metrics: %s (one task, one thread; CSV sink only)" % " ".join(CM_FLAGS)]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description="content-metrics daily aggregation vs DuckDB (part of make bench)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                    help="build tree holding logproc (default build/release)")
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="rounds (default %d)" % DEFAULT_RUNS)
    ap.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                    help="in-memory queries per DuckDB run (default %d)" % DEFAULT_REPEAT)
    ap.add_argument("--users", type=int, default=mj.DEFAULT_USERS,
                    help="generator --users (default %d, run_metrics_jobs.py's input, shared with it); "
                         "with another value the results go to bench/work/metrics-jobs/" % mj.DEFAULT_USERS)
    ap.add_argument("--regenerate", action="store_true", help="prepare the input and the rows even if cached")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    logproc = os.path.join(build, "logproc")
    if not os.access(logproc, os.X_OK):
        sys.exit("bench: %s is missing: build the release tree first (make build)" % logproc)
    if not os.path.isdir(os.path.join(DUCKDB_DIR, "node_modules", "@duckdb", "node-api")):
        sys.exit("bench: @duckdb/node-api is not installed: run scripts/deps.sh bench")
    if a.runs < 1 or a.users < 1 or a.repeat < 1:
        sys.exit("bench: --runs, --repeat and --users must be at least 1")
    bench(a, logproc, build)


if __name__ == "__main__":
    main()
