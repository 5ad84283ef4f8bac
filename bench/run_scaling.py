"""make bench: --parallelism scaling, and the one-day backfill estimate (Debian's python3).

1. Scaling. Round after round (5 by default, interleaved so load from other processes falls on
   every variant alike), runs raw-output on the raw workload (cli-1600u: 1M LogRequests) and
   flat-output on the flat workload (cli-200u) from the record file, each with --parallelism 1
   and --parallelism 2 into a fresh directory. With one file and --parallelism 2 the job reads the
   file as two key shards (docs/OPERATIONS.md, "Scaling out"). Measured as bench/run.py measures
   (wall from spawn to reap, CPU and peak RSS from wait4, anonymous RSS from a /proc poller).
   Each run is checked: the same rows per table as every other run of the job, whatever its
   thread count. Derived: speedup = median wall(P1) / median wall(P2) (and the median of the
   per-round ratios), efficiency = speedup / 2.
2. The one-day backfill estimate (issue 8: 1B records on 2 cores, extrapolated): from the
   --parallelism 2 medians, the time 10^9 records would take at the measured rate, per job, for
   two units: LogRequests and child records (views + delivery logs + impressions + actions).
   The rates come from inputs of 1M (raw-output) and 126K (flat-output) LogRequests: the JSON
   says so and docs/PERFORMANCE.md discusses what the extrapolation leaves out (state growth).

Writes bench/results/scaling.json (every run, medians, speedups, estimate, machine) and
bench/results/scaling.txt (the table it prints). Options: --runs, --build, --no-raw, --no-flat.
"""
import argparse
import os
import statistics
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import run as common  # noqa: E402

ROOT, WORK, RESULTS = common.ROOT, common.WORK, common.RESULTS
DAY_RECORDS = 1_000_000_000
GOAL_DAY_MINUTES = 90


def one_job(logproc, job, src, threads, run_no):
    out_dir = os.path.join(WORK, "scale-out")
    common.fresh_dir(out_dir)
    out = os.path.join(WORK, "scale-%s.out" % job)
    err = os.path.join(WORK, "scale-%s.err" % job)
    argv = [logproc, "run", job, "--source", src, "-o", out_dir, "--parallelism", str(threads),
            "--runId", "%08x" % (0x5c000000 + run_no), "--restPort", "-1"]
    os.sync()
    m = common.run_measured(argv, out, err)
    if m["exit_code"] != 0:
        common.fail("%s --parallelism %d failed (exit %d)" % (job, threads, m["exit_code"]), err)
    text = common.read_text(out)
    m["tables"] = common.parse_summary(text, out_dir)
    if not m["tables"]:
        common.fail("%s printed no summary table:\n%s" % (job, text))
    tasks = [l for l in text.splitlines() if "task(s)" in l]
    m["tasks"] = tasks[0] if tasks else None
    m["rows"] = sum(t["rows"] for t in m["tables"].values())
    common.fresh_dir(out_dir)
    return m, argv


def decode_pair(decode_bin, src, run_no):
    """The machine's own scaling, measured in the same rounds: one checked decode of the file
    alone, then two at once (two processes, no shared state). Returns (wall alone, wall of the
    pair: from the first spawn to the last reap)."""
    import threading
    outs = [os.path.join(WORK, "scale-decode-%d.json" % i) for i in range(2)]
    errs = [os.path.join(WORK, "scale-decode-%d.err" % i) for i in range(2)]
    argv = [decode_bin, "--mode=checked", src]
    alone = common.run_measured(argv, outs[0], errs[0])
    res = [None, None]

    def go(i):
        res[i] = common.run_measured(argv, outs[i], errs[i])
    t0 = time.perf_counter()
    th = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    pair = time.perf_counter() - t0
    for r in [alone] + res:
        if r["exit_code"] != 0:
            common.fail("the decode bench failed (exit %d)" % r["exit_code"], errs[0])
    return alone["wall_s"], pair


def med(vals):
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def bench_job(a, logproc, decode_bin, job, users):
    src, meta = common.ensure_workload(logproc, decode_bin, users, False)
    children = sum(meta["children"][k] for k in ("view", "delivery_log", "impression", "action"))
    runs = {1: [], 2: []}
    argv = {}
    pairs = []
    for i in range(a.runs):
        pairs.append(decode_pair(decode_bin, src, i))
        for p in (1, 2):
            m, argv[p] = one_job(logproc, job, src, p, i)
            m["log_requests_per_s"] = meta["log_requests"] / m["wall_s"]
            m["child_records_per_s"] = children / m["wall_s"]
            m["rows_per_s"] = m["rows"] / m["wall_s"]
            runs[p].append(m)
        common.log("%s round %d/%d: --parallelism 1 %.2f s, --parallelism 2 %.2f s"
                   % (job, i + 1, a.runs, runs[1][-1]["wall_s"], runs[2][-1]["wall_s"]))
    want = {k: v["rows"] for k, v in runs[1][0]["tables"].items()}
    for p in (1, 2):
        for r in runs[p]:
            got = {k: v["rows"] for k, v in r["tables"].items()}
            if got != want:
                common.fail("%s --parallelism %d wrote other rows than --parallelism 1: %s vs %s"
                            % (job, p, got, want))
    for p in (1, 2):
        for r in runs[p]:
            r.pop("tables")
    summary = {}
    for p in (1, 2):
        summary[p] = {k: med([r[k] for r in runs[p]])
                      for k in ("wall_s", "cpu_s", "peak_rss_anon_bytes", "log_requests_per_s",
                                "child_records_per_s", "rows_per_s")}
    speedup = summary[1]["wall_s"]["median"] / summary[2]["wall_s"]["median"]
    per_round = [r1["wall_s"] / r2["wall_s"] for r1, r2 in zip(runs[1], runs[2])]
    # two processes at once do the work of two in `pair` seconds: the machine's own speedup
    machine = statistics.median([2 * alone / pair for alone, pair in pairs])
    est = {}
    for unit, key in (("log_requests", "log_requests_per_s"), ("child_records", "child_records_per_s")):
        rate = summary[2][key]["median"]
        est[unit] = {"rate_per_s_2_threads": rate, "minutes_for_1e9": DAY_RECORDS / rate / 60,
                     "goal_minutes": GOAL_DAY_MINUTES,
                     "met": DAY_RECORDS / rate / 60 <= GOAL_DAY_MINUTES}
    return {
        "job": job,
        "workload": dict(meta, path=os.path.relpath(src, ROOT), users=users, child_records=children),
        "argv": {p: ["logproc"] + v[1:] for p, v in argv.items()},
        "rows": runs[1][0]["rows"],
        "runs": {str(p): runs[p] for p in runs},
        "median": {str(p): summary[p] for p in summary},
        "speedup": speedup,
        "speedup_per_round_median": statistics.median(per_round),
        "efficiency": speedup / 2,
        "machine_speedup_two_processes": machine,
        "decode_pairs_s": [{"alone": x, "pair": y} for x, y in pairs],
        "speedup_over_machine": speedup / machine,
        "day_estimate": est,
    }


def table_text(res):
    lines = ["make bench: --parallelism scaling, %d rounds, medians (min-max); %s"
             % (res["runs"], res["machine"].get("date_utc", "")),
             "machine: %s, %s cores, load average at start %.2f, at end %.2f"
             % (res["machine"].get("cpu_model"), res["machine"].get("nproc"),
                res["machine"]["loadavg_start"][0], res["machine"]["loadavg_end"][0]),
             "",
             "%-12s %-9s %22s %14s %9s %8s %10s" % ("job", "threads", "child records/s", "LogRequests/s",
                                                   "wall s", "CPU s", "anon RSS")]
    for j in res["jobs"]:
        for p in ("1", "2"):
            s = j["median"][p]
            lines.append("%-12s %-9s %22s %14s %9.2f %8.2f %7.0f MB"
                         % (j["job"], p, "%s (%s-%s)" % (common.fmt_int(s["child_records_per_s"]["median"]),
                                                         common.fmt_int(s["child_records_per_s"]["min"]),
                                                         common.fmt_int(s["child_records_per_s"]["max"])),
                            common.fmt_int(s["log_requests_per_s"]["median"]), s["wall_s"]["median"],
                            s["cpu_s"]["median"], s["peak_rss_anon_bytes"]["median"] / 1e6))
        lines.append("%-12s speedup 2 threads / 1: %.2fx (per-round median %.2fx), efficiency %.0f%%;"
                     % ("", j["speedup"], j["speedup_per_round_median"], 100 * j["efficiency"]))
        lines.append("%-12s the machine's own: two decodes at once run %.2fx one alone, so the job "
                     "reaches %.0f%% of it" % ("", j["machine_speedup_two_processes"],
                                                100 * j["speedup_over_machine"]))
    lines += ["", "one simulated day of 10^9 records on 2 threads, at the measured --parallelism 2 rate "
              "(goal <= %d min):" % GOAL_DAY_MINUTES]
    for j in res["jobs"]:
        for unit, e in j["day_estimate"].items():
            lines.append("  %-12s 10^9 %-13s at %s/s: %.0f min (%s)"
                         % (j["job"], unit.replace("_", " "), common.fmt_int(e["rate_per_s_2_threads"]),
                            e["minutes_for_1e9"], "met" if e["met"] else "not met"))
    lines.append("  (rates from inputs of %s; see docs/PERFORMANCE.md for what the extrapolation leaves out)"
                 % ", ".join("%s LogRequests for %s" % (common.fmt_int(j["workload"]["log_requests"]), j["job"])
                             for j in res["jobs"]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description="--parallelism scaling and the one-day backfill estimate")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-raw", action="store_true")
    ap.add_argument("--no-flat", action="store_true")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    logproc = os.path.join(build, "logproc")
    decode_bin = os.path.join(build, "bench", "logproc-bench-decode")
    for b in (logproc, decode_bin):
        if not os.access(b, os.X_OK):
            sys.exit("bench: %s is missing: build the release tree first (make build)" % b)
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    t0 = time.perf_counter()
    mach = common.machine_facts(build)
    jobs = []
    if not a.no_raw:
        jobs.append(bench_job(a, logproc, decode_bin, "raw-output", common.DEFAULT_USERS))
    if not a.no_flat:
        jobs.append(bench_job(a, logproc, decode_bin, "flat-output", common.FLAT_USERS))
    mach["loadavg_end"] = list(os.getloadavg())
    res = {"benchmark": "scaling", "runs": a.runs, "machine": mach, "jobs": jobs,
           "definitions": {
               "speedup": "median wall seconds with --parallelism 1 / with --parallelism 2, same input, same rounds",
               "efficiency": "speedup / 2 threads",
               "machine_speedup_two_processes": "median over rounds of 2 x (wall of one checked decode "
                                                "alone) / (wall of two run at once): what two cores of "
                                                "this machine give two independent processes",
               "day_estimate": "10^9 records / the --parallelism 2 median rate; linear extrapolation "
                               "from the workload named, which holds less state than a day would",
           }}
    text = table_text(res)
    res["harness_seconds"] = time.perf_counter() - t0
    common.write_results("scaling", res, text)


if __name__ == "__main__":
    main()
