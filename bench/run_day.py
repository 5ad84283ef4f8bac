"""make bench: a backfill of more than 50M rows on 2 threads, and the one-day extrapolation.

Issue 8 asks for one simulated day of 10^9 records backfilled on the 2 cores, extrapolated from a
run of at least 50M. This measures it for raw-output, the job whose state stays bounded per
record at that size (flat-output's state at this scale does not fit this machine's memory:
docs/PERFORMANCE.md, "One day"):

1. The workload: the CLI profile with --users 8000 (bench/run.py's generator flags, cached in
   bench/work/ like the others): about 5.0M LogRequests, 7.1 GB, which raw-output turns into about
   54M rows.
2. raw-output --source <record file> --parallelism 2 into bench/work/day/archive: the archive,
   as the live job would have written it (timed: the topic's replay).
3. raw-output --source bench/work/day/archive --parallelism 2 into bench/work/day/replay: the
   backfill from the archive's Avro tables (the raw/log-request table, read in event-time order
   by the Avro source), timed.
   Each is measured as bench/run.py measures a process (wall from spawn to reap, CPU and peak
   RSS from wait4, anonymous RSS from the /proc poller) and checked: raw/log-request holds one row
   per LogRequest in both, and the replay's tables hold the archive's row counts.
4. Derived: rows/s and LogRequests/s of each run, and minutes for 10^9 rows and for 10^9
   LogRequests at those rates (a linear extrapolation: raw-output's per-record work does not grow
   with the input, its state grows linearly: keep-first keys for the retention).

One run (a 54M-row run takes minutes; its variation is in the rates of bench/run.py's 5 rounds).
Needs about 20 GB free under bench/work; the outputs are deleted at the end (the input is kept,
--clean deletes it too). Writes bench/results/day.json and bench/results/day.txt.
"""
import argparse
import os
import shutil
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import run as common  # noqa: E402

ROOT, WORK, RESULTS = common.ROOT, common.WORK, common.RESULTS
DAY = os.path.join(WORK, "day")
USERS = 8000
MIN_ROWS = 50_000_000
NEED_BYTES = 20 << 30
GOAL_MINUTES = 90


def one(logproc, src, out_dir, label):
    common.fresh_dir(out_dir)
    out, err = os.path.join(DAY, label + ".out"), os.path.join(DAY, label + ".err")
    argv = [logproc, "run", "raw-output", "--source", src, "-o", out_dir, "--parallelism", "2",
            "--runId", "da000001", "--restPort", "-1", "--progressInterval", "PT10S"]
    os.sync()
    m = common.run_measured(argv, out, err)
    if m["exit_code"] != 0:
        common.fail("raw-output (%s) failed (exit %d)" % (label, m["exit_code"]), err)
    m["tables"] = common.parse_summary(common.read_text(out), out_dir)
    m["rows"] = sum(t["rows"] for t in m["tables"].values())
    m["argv"] = ["logproc"] + [os.path.relpath(x, ROOT) if x.startswith(ROOT) else x for x in argv[1:]]
    return m


def main():
    ap = argparse.ArgumentParser(description="a >50M-row raw-output backfill on 2 threads")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--users", type=int, default=USERS)
    ap.add_argument("--clean", action="store_true", help="also delete the generated input at the end")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    logproc = os.path.join(build, "logproc")
    decode_bin = os.path.join(build, "bench", "logproc-bench-decode")
    for b in (logproc, decode_bin):
        if not os.access(b, os.X_OK):
            sys.exit("bench: %s is missing: build the release tree first (make build)" % b)
    os.makedirs(DAY, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    free = shutil.disk_usage(WORK).free
    cached = os.path.join(WORK, "cli-%du.rec" % a.users)
    have = os.path.getsize(cached) if os.path.exists(cached) else 0
    if free + have < NEED_BYTES:
        common.log("day: skipped: %.1f GB free under bench/work, the run needs about %.0f GB"
                   % (free / 1e9, NEED_BYTES / 1e9))
        return
    t0 = time.perf_counter()
    mach = common.machine_facts(build)
    src, meta = common.ensure_workload(logproc, decode_bin, a.users, False)
    archive, replay = os.path.join(DAY, "archive"), os.path.join(DAY, "replay")
    try:
        common.log("day: raw-output from the record file (%s LogRequests), 2 threads"
                   % common.fmt_int(meta["log_requests"]))
        rec = one(logproc, src, archive, "from-record-file")
        common.log("day: %.1f s, %s rows" % (rec["wall_s"], common.fmt_int(rec["rows"])))
        common.log("day: raw-output from the archive's tables, 2 threads")
        bf = one(logproc, archive, replay, "from-archive")
        common.log("day: %.1f s, %s rows" % (bf["wall_s"], common.fmt_int(bf["rows"])))
    finally:
        for d in (archive, replay):
            if os.path.exists(d):
                shutil.rmtree(d)
        if a.clean and os.path.exists(src):
            os.unlink(src)
    for m, what in ((rec, "record file"), (bf, "archive")):
        lr = m["tables"].get("raw/log-request", {}).get("rows")
        if lr != meta["log_requests"]:
            common.fail("raw/log-request from the %s has %r rows, the input %d LogRequests"
                        % (what, lr, meta["log_requests"]))
    want = {k: v["rows"] for k, v in rec["tables"].items()}
    got = {k: v["rows"] for k, v in bf["tables"].items()}
    mach["loadavg_end"] = list(os.getloadavg())
    runs = {}
    for m, key in ((rec, "from_record_file"), (bf, "from_archive")):
        m["rows_per_s"] = m["rows"] / m["wall_s"]
        m["log_requests_per_s"] = meta["log_requests"] / m["wall_s"]
        m["minutes_for_1e9_rows"] = 1e9 / m["rows_per_s"] / 60
        m["minutes_for_1e9_log_requests"] = 1e9 / m["log_requests_per_s"] / 60
        runs[key] = m
    res = {
        "benchmark": "day",
        "machine": mach,
        "workload": dict(meta, path=os.path.relpath(src, ROOT), users=a.users),
        "min_rows": MIN_ROWS,
        "rows_at_least_min": rec["rows"] >= MIN_ROWS,
        "tables_equal": want == got,
        "table_rows": {"from_record_file": want, "from_archive": got},
        "runs": runs,
        "goal_minutes": GOAL_MINUTES,
        "method": "one raw-output run per input with --parallelism 2 (two key shards, two threads); "
                  "minutes for 10^9 = 10^9 / measured rate / 60; raw-output's work per record is "
                  "constant and its state (keep-first keys) linear in the input",
        "harness_seconds": time.perf_counter() - t0,
    }
    for m in runs.values():
        m.pop("tables", None)
    lines = ["make bench: one-day estimate, raw-output on 2 threads; %s" % mach.get("date_utc", ""),
             "machine: %s, %s cores, load average at start %.2f, at end %.2f"
             % (mach.get("cpu_model"), mach.get("nproc"), mach["loadavg_start"][0], mach["loadavg_end"][0]),
             "input: %s LogRequests (%.1f GB record file, --users %d)"
             % (common.fmt_int(meta["log_requests"]), meta["file_bytes"] / 1e9, a.users), "",
             "%-30s %12s %12s %14s %8s %8s %10s %12s %14s" % ("raw-output --parallelism 2", "rows",
                                                            "rows/s", "LogRequests/s", "wall s", "CPU s",
                                                            "anon RSS", "1e9 rows", "1e9 LogRequests")]
    for key, label in (("from_record_file", "from the record file"), ("from_archive", "from the archive (Avro)")):
        m = runs[key]
        lines.append("%-30s %12s %12s %14s %8.1f %8.1f %7.0f MB %8.0f min %10.0f min"
                     % (label, common.fmt_int(m["rows"]), common.fmt_int(m["rows_per_s"]),
                        common.fmt_int(m["log_requests_per_s"]), m["wall_s"], m["cpu_s"],
                        m["peak_rss_anon_bytes"] / 1e6, m["minutes_for_1e9_rows"],
                        m["minutes_for_1e9_log_requests"]))
    lines.append("")
    lines.append("rows >= 50M: %s; the replay's tables hold the archive's row counts: %s; goal: 10^9 in <= %d min"
                 % ("yes" if res["rows_at_least_min"] else "NO", "yes" if res["tables_equal"] else "NO (see JSON)",
                    GOAL_MINUTES))
    text = "\n".join(lines) + "\n"
    common.write_results("day", res, text)


if __name__ == "__main__":
    main()
