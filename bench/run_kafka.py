"""make bench, part three: Kafka in and out, and checkpoints (Debian's python3, standard library).

1. Starts `logproc kafka-local` (the embedded Kafka-protocol cluster, one broker, loopback only)
   with the topic tracking.event.log-request of 4 partitions, and fills it with
   `logproc generate logs --profile=cli --users=150 --kafkaCompressionType=zstd`, which also writes
   the same records to a record file in bench/work/kafka/ so that logproc-bench-decode counts its
   LogRequests and child records exactly as bench/run.py does. The mock cluster silently drops a
   partition's oldest batches past about 5 MiB (INFRA.md), so kcat then reads every partition
   back: each must start at offset 0 and the total must equal the generated count, or the harness
   stops.
2. Runs, round after round, kcat reading the whole topic (`kcat -C -e -q -o beginning -f '%s'`
   into /dev/null: the client library's own consume rate, the baseline) and
   `logproc run flat-output -b ... --endAtLatest --no-kafkaGroup --parallelism 1` into a fresh
   output directory (tables there, joined events to the topic metrics.default.joined-event on the
   same cluster), with wall time, CPU time and peak RSS measured as bench/run.py does (its own
   functions), and the cluster's CPU time read from /proc around each run.
3. Runs flat-output once more with --checkpointInterval PT1S and collects each checkpoint's
   bytes and duration_ms from its `component=checkpoint completed` log lines.
4. Writes bench/results/kafka.json (machine, workload, every run, medians, the ratio, the
   checkpoints) and bench/results/kafka.txt (the table it prints). docs/PERFORMANCE.md ("Kafka
   and checkpoints") quotes them.

The cluster is stopped at the end, whatever happens. `bench/run_kafka.py --help` lists the
options; the figures in the docs come from the defaults.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import run as common  # noqa: E402  (bench/run.py: measuring, machine facts, counting, summaries)

ROOT = common.ROOT
WORK = os.path.join(BENCH, "work", "kafka")
RESULTS = common.RESULTS

TOPIC = "tracking.event.log-request"
OUT_TOPIC = "metrics.default.joined-event"
PARTITIONS = 4
# 150 users of the CLI profile give 94,383 LogRequests. zstd stores about 27,500 of them per
# 5 MiB partition here (gzip about 23,000, lz4 about 13,800); the largest partition gets about
# 25,800, so nothing is trimmed. More users, or another codec, trip the check in fill_topic.
DEFAULT_USERS = 150
DEFAULT_CODEC = "zstd"
DEFAULT_RUNS = 5
# Long enough to be a small part of a run of about 12 s (at most one periodic checkpoint per
# task), short enough that periodic checkpointing is part of what is timed.
TIMED_INTERVAL = "PT10S"
CKPT_INTERVAL = "PT1S"
# Checkpoints below this size are the final ones of drained tasks (the state is empty): their
# fixed cost says nothing about the cost per byte, so they stay out of the per-100-MB medians.
CKPT_MIN_BYTES_FOR_RATE = 1_000_000
# scripts/demo.sh's join flags (the local deployment's windows), for --demo-join
DEMO_JOIN_FLAGS = ["--combineDeliveryLogWindow=PT5S", "--viewInsertionJoinMax=PT20S",
                   "--insertionImpressionJoinMax=PT20S", "--impressionActionJoinMax=PT20S",
                   "--flatResponseInsertionGapDuration=PT1M",
                   "--nonBuyerUserSparseHash=6102540093495235004",
                   "--nonBuyerUserSparseHash=4078401918190321518"]
# kafka-local prints BOOTSTRAP=... as soon as the mock listens; give it this long
BOOTSTRAP_WAIT_S = 20.0

log = common.log
fail = common.fail
fmt_int = common.fmt_int
read_text = common.read_text


def rel(path):
    return os.path.relpath(path, ROOT)


def clk_tck():
    return os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """User + system CPU seconds of a running process (its threads included), from
    /proc/<pid>/stat fields 14 and 15."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clk_tck()


# ---------------------------------------------------------------- the cluster

class KafkaLocal:
    """`logproc kafka-local` on the mock's own ephemeral loopback address (--port 0: no
    forwarder between the clients and the broker)."""

    def __init__(self, logproc):
        self.logproc = logproc
        self.proc = None
        self.bootstrap = None
        self.argv = [logproc, "kafka-local", "--port", "0", "--topic", "%s:%d" % (TOPIC, PARTITIONS)]

    def start(self):
        os.makedirs(WORK, exist_ok=True)
        self.err_path = os.path.join(WORK, "kafka-local.err")
        errf = open(self.err_path, "w")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=errf, text=True)
        errf.close()
        timer = threading.Timer(BOOTSTRAP_WAIT_S, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if not line.startswith("BOOTSTRAP="):
            self.stop()
            fail("kafka-local printed no BOOTSTRAP= line within %.0f s (got %r)"
                 % (BOOTSTRAP_WAIT_S, line), self.err_path)
        self.bootstrap = line.strip().split("=", 1)[1]
        # nothing else comes on stdout; drain it anyway so a write can never block the cluster
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        log("cluster: %s (pid %d)" % (self.bootstrap, self.proc.pid))

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def rss_bytes(self):
        try:
            for line in read_text("/proc/%d/status" % self.proc.pid).splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def gone(self):
        """A note for a failure message when the cluster is no longer running (a signal from
        outside, on a machine shared with other work, has been seen to stop it)."""
        if self.alive():
            return ""
        tail = read_text(self.err_path).splitlines()[-1:] if os.path.exists(self.err_path) else []
        return "; kafka-local exited first (code %s): %s" % (self.proc.returncode, " ".join(tail))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------- the workload

def kcat_offsets(bootstrap):
    """Reads the whole topic with kcat and returns {partition: [count, first offset, last offset]}."""
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", TOPIC, "-e", "-q", "-o", "beginning",
                        "-f", "%p %o\n"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        fail("kcat could not read %s: %s" % (TOPIC, r.stderr.strip()[-500:]))
    parts = {}
    for line in r.stdout.splitlines():
        p, o = (int(x) for x in line.split())
        c = parts.setdefault(p, [0, o, o])
        c[0] += 1
        c[1] = min(c[1], o)
        c[2] = max(c[2], o)
    return parts


GEN_KAFKA = re.compile(r"component=generate kafka .*records=(\d+) delivered=(\d+)")


def fill_topic(cluster, logproc, decode_bin, users, codec):
    rec = os.path.join(WORK, "cli-%du.rec" % users)
    flags = ["--profile=cli", "--users=%d" % users, "--kafkaCompressionType=%s" % codec]
    argv = [logproc, "generate", "logs"] + flags + ["--output", rec, "--bootstrapServers",
                                                    cluster.bootstrap]
    log("workload: logproc generate logs %s --output %s --bootstrapServers %s"
        % (" ".join(flags), rel(rec), cluster.bootstrap))
    out, err = os.path.join(WORK, "generate.out"), os.path.join(WORK, "generate.err")
    m = common.run_measured(argv, out, err)
    if m["exit_code"] != 0:
        fail("the generator failed (exit %d)" % m["exit_code"], err)
    g = GEN_KAFKA.search(read_text(err))
    if not g or g.group(1) != g.group(2):
        fail("the generator did not report every record delivered to Kafka", err)
    counted = common.count_records(decode_bin, rec)
    if counted["invalid"] or counted["bad_spans"]:
        fail("the generated file has %d undecodable records and %d bad spans"
             % (counted["invalid"], counted["bad_spans"]))
    produced = int(g.group(1))
    if produced != counted["records"]:
        fail("the generator produced %d records to Kafka but wrote %d to %s"
             % (produced, counted["records"], rel(rec)))
    parts = kcat_offsets(cluster.bootstrap)
    total = sum(c[0] for c in parts.values())
    trimmed = {p: c for p, c in parts.items() if c[1] != 0}
    if len(parts) != PARTITIONS or trimmed or total != produced:
        fail("TRIMMED: the mock cluster kept %d of %d records (partition: [count, first, last "
             "offset] %s); it drops a partition's oldest batches past about 5 MiB: lower --users "
             "or use a codec that compresses better" % (total, produced, sorted(parts.items())))
    log("workload: %s LogRequests in %d partitions (%s), every partition from offset 0; "
        "%s child records; produced in %.1f s"
        % (fmt_int(produced), len(parts), ", ".join(fmt_int(parts[p][0]) for p in sorted(parts)),
           fmt_int(common.child_records(counted)), m["wall_s"]))
    return {
        "generator_argv": ["logproc", "generate", "logs"] + flags +
                          ["--output", rel(rec), "--bootstrapServers", "BOOTSTRAP"],
        "users": users,
        "compression": codec,
        "generator_seconds": m["wall_s"],
        "log_requests": counted["records"],
        "value_bytes": counted["value_bytes"],
        "record_file_bytes": counted["file_bytes"],
        "children": counted["children"],
        "child_records": common.child_records(counted),
        "partitions": {str(p): {"records": c[0], "first_offset": c[1], "last_offset": c[2]}
                       for p, c in sorted(parts.items())},
        "record_file": rec,
        "trim_check": "every partition starts at offset 0 and kcat read back all %d records" % total,
        "cluster_rss_after_fill_bytes": cluster.rss_bytes(),
    }


# ---------------------------------------------------------------- the runs

def kcat_argv(bootstrap):
    return [shutil.which("kcat") or "kcat", "-C", "-b", bootstrap, "-t", TOPIC, "-e", "-q", "-o", "beginning",
            "-f", "%s"]


def one_kcat(cluster, wl):
    out, err = "/dev/null", os.path.join(WORK, "kcat.err")
    c0 = cluster.cpu_s()
    m = common.run_measured(kcat_argv(cluster.bootstrap), out, err)
    m["cluster_cpu_s"] = cluster.cpu_s() - c0
    if m["exit_code"] != 0:
        fail("kcat failed (exit %d)%s" % (m["exit_code"], cluster.gone()), err)
    m["records"] = wl["log_requests"]
    m["records_per_s"] = wl["log_requests"] / m["wall_s"]
    m["value_mb_per_s"] = wl["value_bytes"] / 1e6 / m["wall_s"]
    return m


KAFKA_ROW = re.compile(r"^\s+kafka\s+(\d+)\s.*\s(\S+)\s*$")
CKPT_LINE = re.compile(r"component=checkpoint completed task=(\S+) id=(\d+) bytes=(\d+) "
                       r"duration_ms=(\d+)(.*)$")


def flat_argv(logproc, bootstrap, out_dir, interval, run_no, extra):
    return [logproc, "run", "flat-output", "-b", bootstrap, "--endAtLatest", "--no-kafkaGroup",
            "--startFromEarliest",  # every run is group flat-output: not from its commits
            "-o", out_dir, "--parallelism", "1", "--checkpointInterval", interval,
            "--runId", "%08x" % (0xcafe0000 + run_no)] + list(extra)


def parse_checkpoints(stderr_text):
    cps = []
    for line in stderr_text.splitlines():
        m = CKPT_LINE.search(line)
        if m:
            cps.append({"task": m.group(1), "id": int(m.group(2)), "bytes": int(m.group(3)),
                        "duration_ms": int(m.group(4)), "final": "final=true" in m.group(5)})
    return cps


def one_flat(cluster, logproc, wl, interval, run_no, extra, strict):
    """One flat-output run from the topic's start to its end into a fresh directory (a leftover
    checkpoint store there would make it restore instead of reading from offset 0)."""
    out_dir = os.path.join(WORK, "flat-out")
    common.fresh_dir(out_dir)
    out, err = os.path.join(WORK, "flat-output.out"), os.path.join(WORK, "flat-output.err")
    os.sync()
    c0 = cluster.cpu_s()
    m = common.run_measured(flat_argv(logproc, cluster.bootstrap, out_dir, interval, run_no, extra),
                            out, err)
    m["cluster_cpu_s"] = cluster.cpu_s() - c0
    if m["exit_code"] != 0:
        fail("flat-output failed (exit %d)%s" % (m["exit_code"], cluster.gone()), err)
    text = read_text(out)
    tables = common.parse_summary(text, out_dir)
    if not tables:
        fail("flat-output printed no summary table:\n" + text)
    topic = None
    for line in text.splitlines():
        k = KAFKA_ROW.match(line)
        if k and k.group(2) == OUT_TOPIC:
            topic = int(k.group(1))
    if topic is None:
        fail("flat-output printed no line for the topic %s:\n%s" % (OUT_TOPIC, text))
    errt = read_text(err)
    src_in = sum(int(v) for v in re.findall(
        r"numRecordsIn operator=source-kafka-%s task=\S+ value=(\d+)" % re.escape(TOPIC), errt))
    if src_in != wl["log_requests"]:
        fail("flat-output read %d records from %s, the topic holds %d"
             % (src_in, TOPIC, wl["log_requests"]), err)
    imps = tables.get("etl/joined_impression", {}).get("rows")
    if strict and imps != wl["children"]["impression"]:
        fail("etl/joined_impression has %r rows, the workload has %d impressions"
             % (imps, wl["children"]["impression"]))
    cps = parse_checkpoints(errt)
    m.update({
        "tables": tables,
        "rows": sum(t["rows"] for t in tables.values()),
        "output_bytes": sum(t["bytes"] for t in tables.values()),
        "topic_records": topic,
        "log_requests": wl["log_requests"],
        "log_requests_per_s": wl["log_requests"] / m["wall_s"],
        "child_records_per_s": wl["child_records"] / m["wall_s"],
        "child_records_per_cpu_s": wl["child_records"] / m["cpu_s"] if m["cpu_s"] > 0 else None,
        "checkpoints": len(cps),
        "checkpoint_list": [[c["task"], c["id"], c["bytes"], c["duration_ms"], c["final"]] for c in cps],
        "checkpoint_ms_total": sum(c["duration_ms"] for c in cps),
        "checkpoint_bytes_total": sum(c["bytes"] for c in cps),
    })
    m["checkpoint_share_of_wall"] = m["checkpoint_ms_total"] / 1000.0 / m["wall_s"]
    common.fresh_dir(out_dir)
    return m, cps


def one_file(logproc, wl, run_no):
    """bench/run.py's flat-output run (--source, one thread, fresh directory, impressions checked)
    over the record file the generator wrote with the topic's records."""
    meta = {"log_requests": wl["log_requests"], "children": wl["children"]}
    m = common.one_flat(logproc, wl["record_file"], meta, 50 + run_no)
    m.pop("tables", None)
    m["log_requests_per_s"] = wl["log_requests"] / m["wall_s"]
    m["child_records_per_s"] = wl["child_records"] / m["wall_s"]
    m["child_records_per_cpu_s"] = wl["child_records"] / m["cpu_s"] if m["cpu_s"] > 0 else None
    return m


def median_block(runs, keys):
    med = {}
    for k in keys:
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            med[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return med


# ---------------------------------------------------------------- checkpoints

def checkpoint_summary(cps):
    def rate(c):  # ms per 100 MB (10^8 bytes)
        return c["duration_ms"] / (c["bytes"] / 1e8)
    tasks = []
    for task in sorted({c["task"] for c in cps}):
        mine = [c for c in cps if c["task"] == task]
        sized = [c for c in mine if c["bytes"] >= CKPT_MIN_BYTES_FOR_RATE]
        big = max(mine, key=lambda c: c["bytes"])
        tasks.append({
            "task": task,
            "checkpoints": len(mine),
            "median_ms_per_100mb": statistics.median(rate(c) for c in sized) if sized else None,
            "largest_bytes": big["bytes"],
            "largest_duration_ms": big["duration_ms"],
            "final_bytes": [c["bytes"] for c in mine if c["final"]],
            "final_duration_ms": [c["duration_ms"] for c in mine if c["final"]],
        })
    sized = [c for c in cps if c["bytes"] >= CKPT_MIN_BYTES_FOR_RATE]
    fit = None
    if len(sized) >= 3:
        # least squares duration = a + b * bytes over the checkpoints that hold state
        xs = [c["bytes"] / 1e8 for c in sized]
        ys = [c["duration_ms"] for c in sized]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx > 0:
            b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
            fit = {"fixed_ms": my - b * mx, "ms_per_100mb": b}
    return {
        "tasks": tasks,
        "median_ms_per_100mb": statistics.median(c["duration_ms"] / (c["bytes"] / 1e8) for c in sized)
        if sized else None,
        "largest_bytes": max(c["bytes"] for c in cps),
        "largest_duration_ms": max(cps, key=lambda c: c["bytes"])["duration_ms"],
        "total_ms": sum(c["duration_ms"] for c in cps),
        "total_bytes": sum(c["bytes"] for c in cps),
        "fit": fit,
        "pairs": sorted(({"task": c["task"], "id": c["id"], "bytes": c["bytes"],
                          "duration_ms": c["duration_ms"], "final": c["final"]} for c in cps),
                        key=lambda c: c["bytes"]),
    }


# ---------------------------------------------------------------- output

def table_text(res):
    mach, wl = res["machine"], res["workload"]
    lines = []
    lines.append("make bench: Kafka, %d runs of each line, medians (min-max); %s"
                 % (res["runs"], mach["date_utc"]))
    lines.append("cluster: logproc kafka-local, 1 broker on loopback, %s with %d partitions, "
                 "%s compression" % (TOPIC, PARTITIONS, wl["compression"]))
    lines.append("workload: logproc generate logs --profile=cli --users=%d -> %s LogRequests (%s per "
                 "partition, none trimmed), %s child records (views, delivery logs, impressions, "
                 "actions), %.1f MB of record values"
                 % (wl["users"], fmt_int(wl["log_requests"]),
                    " / ".join(fmt_int(p["records"]) for p in wl["partitions"].values()),
                    fmt_int(wl["child_records"]), wl["value_bytes"] / 1e6))
    lines.append("machine: %s, %d cores, load average at start %.2f; build %s (%s), commit %s%s"
                 % (mach["cpu_model"], mach["nproc"], mach["loadavg_start"][0], mach["build_dir"],
                    mach["build_type"], (mach["git_commit"] or "?")[:10],
                    " + uncommitted changes" if mach["git_dirty"] else ""))
    lines.append("kcat: %s" % " ".join(res["kcat"]["argv"][:-2] + ["'%s'", ">", "/dev/null"]))
    lines.append("flat-output: %s" % " ".join(res["flat_output"]["argv"]))
    lines.append("")
    kc, fo = res["kcat"]["median"], res["flat_output"]["median"]
    lines.append("%-26s %28s %28s %7s %7s %9s %10s"
                 % ("", "LogRequests/s (min-max)", "child records/s (min-max)", "wall s", "CPU s",
                    "peak RSS", "cluster CPU"))

    def rng(d):
        return "%s (%s-%s)" % (fmt_int(d["median"]), fmt_int(d["min"]), fmt_int(d["max"]))
    lines.append("%-26s %28s %28s %7.2f %7.2f %6.0f MB %9.2f s"
                 % ("kcat -C -e (to /dev/null)", rng(kc["records_per_s"]), "-",
                    kc["wall_s"]["median"], kc["cpu_s"]["median"], kc["peak_rss_bytes"]["median"] / 1e6,
                    kc["cluster_cpu_s"]["median"]))
    lines.append("%-26s %28s %28s %7.2f %7.2f %6.0f MB %9.2f s"
                 % ("flat-output Kafka->Kafka", rng(fo["log_requests_per_s"]), rng(fo["child_records_per_s"]),
                    fo["wall_s"]["median"], fo["cpu_s"]["median"], fo["peak_rss_bytes"]["median"] / 1e6,
                    fo["cluster_cpu_s"]["median"]))
    ff = res.get("flat_output_file")
    if ff:
        fm = ff["median"]
        lines.append("%-26s %28s %28s %7.2f %7.2f %6.0f MB %9s"
                     % ("flat-output record file", rng(fm["log_requests_per_s"]), rng(fm["child_records_per_s"]),
                        fm["wall_s"]["median"], fm["cpu_s"]["median"], fm["peak_rss_bytes"]["median"] / 1e6, "-"))
    r = res["ratios"]
    lines.append("")
    if r.get("kafka_over_file"):
        lines.append("flat-output Kafka->Kafka / from the record file (LogRequests/s): %.3f" % r["kafka_over_file"])
    lines.append("flat-output / kcat (LogRequests/s): %.3f (median of the per-round ratios %.3f)"
                 % (r["flat_over_kcat"], r["flat_over_kcat_per_round_median"]))
    lines.append("flat-output: %s child records per CPU second (its librdkafka threads included); "
                 "checkpoints (%s) took %.1f%% of its wall time (median)"
                 % (fmt_int(fo["child_records_per_cpu_s"]["median"]), res["flat_output"]["interval"],
                    100 * fo["checkpoint_share_of_wall"]["median"]))
    f = res["flat_output"]
    lines.append("flat-output writes %s rows to %d tables and %s joined events to %s"
                 % (fmt_int(f["rows"]), len(f["tables"]), fmt_int(f["topic_records"]), OUT_TOPIC))
    ck = res["checkpoints"]
    if not ck:
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.append("checkpoints: one flat-output run with --checkpointInterval %s: %.2f s wall "
                 "(timed runs' median %.2f s), %d checkpoints, %.0f MB, %.2f s in all"
                 % (ck["interval"], ck["run"]["wall_s"], fo["wall_s"]["median"], len(ck["pairs"]),
                    ck["total_bytes"] / 1e6, ck["total_ms"] / 1000.0))
    lines.append("  %-32s %5s %16s %14s %10s" % ("task", "count", "ms per 100 MB", "largest MB",
                                                   "its ms"))
    for t in ck["tasks"]:
        lines.append("  %-32s %5d %16s %14.1f %10d"
                     % (t["task"], t["checkpoints"],
                        "%.0f" % t["median_ms_per_100mb"] if t["median_ms_per_100mb"] is not None else "-",
                        t["largest_bytes"] / 1e6, t["largest_duration_ms"]))
    lines.append("  %-32s %5d %16s %14.1f %10d"
                 % ("all", len(ck["pairs"]),
                    "%.0f" % ck["median_ms_per_100mb"] if ck["median_ms_per_100mb"] is not None else "-",
                    ck["largest_bytes"] / 1e6, ck["largest_duration_ms"]))
    if ck["fit"]:
        lines.append("  least squares over the checkpoints >= 1 MB: duration = %.0f ms + %.0f ms per 100 MB"
                     % (ck["fit"]["fixed_ms"], ck["fit"]["ms_per_100mb"]))
    lines.append("  size / duration of every checkpoint (final ones of drained tasks marked *):")
    row = []
    for p in ck["pairs"]:
        row.append("%7.1f MB %4d ms%s" % (p["bytes"] / 1e6, p["duration_ms"], "*" if p["final"] else " "))
        if len(row) == 4:
            lines.append("    " + "   ".join(row))
            row = []
    if row:
        lines.append("    " + "   ".join(row))
    if mach.get("loadavg_end"):
        lines.append("")
        lines.append("load average at end %.2f (other processes share this machine's cores)"
                     % mach["loadavg_end"][0])
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="Kafka-to-Kafka flat-output vs kcat, and checkpoint "
                                             "cost (make bench, part three)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                    help="build tree holding logproc and bench/logproc-bench-decode (default build/release)")
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="rounds (default %d)" % DEFAULT_RUNS)
    ap.add_argument("--users", type=int, default=DEFAULT_USERS,
                    help="generator --users (default %d: 94,383 LogRequests, under the mock's "
                         "5 MiB per partition)" % DEFAULT_USERS)
    ap.add_argument("--codec", default=DEFAULT_CODEC, help="generator --kafkaCompressionType (default zstd)")
    ap.add_argument("--demo-join", action="store_true",
                    help="add scripts/demo.sh's join flags (the local deployment's windows) to flat-output")
    ap.add_argument("--no-checkpoints", action="store_true", help="skip the PT1S checkpoint run")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    logproc = os.path.join(build, "logproc")
    decode_bin = os.path.join(build, "bench", "logproc-bench-decode")
    for b in (logproc, decode_bin):
        if not os.access(b, os.X_OK):
            sys.exit("bench: %s is missing: build the release tree first (make build)" % b)
    if not shutil.which("kcat"):
        sys.exit("bench: kcat is not installed")
    if a.runs < 1:
        sys.exit("bench: --runs must be at least 1")
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    extra = DEMO_JOIN_FLAGS if a.demo_join else []
    t_start = time.perf_counter()
    mach = common.machine_facts(build)
    try:
        ver = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout.splitlines()
        mach["kcat"] = next(v.strip() for v in ver if v.strip().startswith("Version"))
    except (OSError, StopIteration):
        mach["kcat"] = None
    cluster = KafkaLocal(logproc)
    cluster.start()
    try:
        res = measure(a, cluster, logproc, decode_bin, mach, extra)
    finally:
        cluster.stop()
    res["harness_seconds"] = time.perf_counter() - t_start
    text = table_text(res)
    log("")
    log(text)
    with open(os.path.join(RESULTS, "kafka.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    with open(os.path.join(RESULTS, "kafka.txt"), "w") as f:
        f.write(text)
    log("results: bench/results/kafka.json, bench/results/kafka.txt (%.0f s)" % res["harness_seconds"])


def measure(a, cluster, logproc, decode_bin, mach, extra):
    wl = fill_topic(cluster, logproc, decode_bin, a.users, a.codec)
    strict = not extra
    kcat_runs, flat_runs, file_runs = [], [], []
    for i in range(a.runs):
        k = one_kcat(cluster, wl)
        kcat_runs.append(k)
        m, _ = one_flat(cluster, logproc, wl, TIMED_INTERVAL, i, extra, strict)
        flat_runs.append(m)
        if not extra:
            f = one_file(logproc, wl, i)
            file_runs.append(f)
        log("round %d/%d: kcat %.2f s (%s records/s), flat-output %.2f s (%s LogRequests/s, %s child "
            "records/s, %d checkpoints %d ms, peak RSS %.0f MB)"
            % (i + 1, a.runs, k["wall_s"], fmt_int(k["records_per_s"]), m["wall_s"],
               fmt_int(m["log_requests_per_s"]), fmt_int(m["child_records_per_s"]), m["checkpoints"],
               m["checkpoint_ms_total"], m["peak_rss_bytes"] / 1e6))
        if file_runs:
            log("           flat-output from the record file %.2f s (%s child records/s)"
                % (file_runs[-1]["wall_s"], fmt_int(file_runs[-1]["child_records_per_s"])))
        if not cluster.alive():
            fail("kafka-local exited during the runs", cluster.err_path)
    for key in ("rows", "topic_records"):
        vals = {r[key] for r in flat_runs}
        if len(vals) != 1:
            fail("flat-output's %s differ across runs: %s" % (key, sorted(vals)))
    base = ["wall_s", "cpu_s", "user_s", "sys_s", "peak_rss_bytes", "peak_rss_anon_bytes",
            "cluster_cpu_s"]
    kcat_med = median_block(kcat_runs, base + ["records_per_s", "value_mb_per_s"])
    flat_med = median_block(flat_runs, base + ["log_requests_per_s", "child_records_per_s",
                                               "child_records_per_cpu_s", "checkpoints",
                                               "checkpoint_ms_total", "checkpoint_share_of_wall"])
    ratio = flat_med["log_requests_per_s"]["median"] / kcat_med["records_per_s"]["median"]
    file_med = median_block(file_runs, base[:-1] + ["log_requests_per_s", "child_records_per_s",
                                                     "child_records_per_cpu_s"]) if file_runs else None
    per_round = [f["log_requests_per_s"] / k["records_per_s"] for f, k in zip(flat_runs, kcat_runs)]
    ck = None
    if not a.no_checkpoints:
        log("checkpoints: one flat-output run with --checkpointInterval %s" % CKPT_INTERVAL)
        m, cps = one_flat(cluster, logproc, wl, CKPT_INTERVAL, 90, extra, strict)
        if not cps:
            fail("the checkpoint run logged no completed checkpoint")
        ck = dict(checkpoint_summary(cps), interval=CKPT_INTERVAL,
                  argv=["logproc"] + flat_argv("", "BOOTSTRAP", "bench/work/kafka/flat-out",
                                               CKPT_INTERVAL, 90, extra)[1:],
                  run={k: m[k] for k in ("wall_s", "cpu_s", "user_s", "sys_s", "peak_rss_bytes",
                                         "peak_rss_anon_bytes", "cluster_cpu_s", "checkpoint_ms_total",
                                         "checkpoint_bytes_total", "checkpoint_share_of_wall")})
    mach["loadavg_end"] = list(os.getloadavg())
    mach["cluster_rss_end_bytes"] = cluster.rss_bytes()
    tables = flat_runs[0]["tables"]
    for r in flat_runs:
        r.pop("tables", None)
    return {
        "benchmark": "kafka",
        "definitions": {
            "records_per_s": "kcat: records of the topic / wall seconds of kcat (start, metadata, "
                             "fetch of every partition to its end, exit)",
            "log_requests_per_s": "flat-output: records of the topic / wall seconds from spawn to exit",
            "child_records_per_s": "views + delivery logs + impressions + actions of the input / wall "
                                   "seconds (bench/run.py's unit for flat-output)",
            "per_core": "flat-output --parallelism 1 runs every task on one worker thread; librdkafka's "
                        "own threads (fetch, decompression, produce) come on top: child_records_per_cpu_s "
                        "counts them",
            "ratio": "flat-output LogRequests/s / kcat records/s, same topic, same rounds",
            "cluster_cpu_s": "CPU seconds of the kafka-local process during the run (/proc/<pid>/stat)",
            "ms_per_100mb": "checkpoint duration_ms / (bytes / 10^8), over checkpoints of at least 1 MB",
            "checkpoint_list": "per flat-output run: [task, id, bytes, duration_ms, final] of each checkpoint",
            "checkpoint_duration": "job_checkpoint.c's duration_ms: snapshot, encode, store put, sinks' "
                                   "checkpoint-complete (table publish, Kafka transaction commit), on "
                                   "the task's worker thread",
        },
        "machine": mach,
        "workload": dict(wl, record_file=rel(wl["record_file"])),
        "cluster": {"argv": ["logproc"] + cluster.argv[1:], "brokers": 1, "partitions": PARTITIONS},
        "runs": a.runs,
        "kcat": {"argv": kcat_argv("BOOTSTRAP") + ["> /dev/null"], "runs": kcat_runs, "median": kcat_med},
        "flat_output": {"argv": ["logproc"] + flat_argv("", "BOOTSTRAP", "bench/work/kafka/flat-out",
                                                        TIMED_INTERVAL, 0, extra)[1:],
                        "interval": TIMED_INTERVAL, "join_flags": "scripts/demo.sh" if extra else "defaults",
                        "rows": flat_runs[0]["rows"], "output_bytes": flat_runs[0]["output_bytes"],
                        "topic_records": flat_runs[0]["topic_records"], "tables": tables,
                        "runs": flat_runs, "median": flat_med},
        "flat_output_file": {"argv": ["logproc"] + common.flat_output_argv(
                                 "", rel(wl["record_file"]), "bench/work/flat-out", 0)[1:],
                             "what": "the same records from the record file the generator wrote "
                                     "alongside (bench/run.py's flat-output line): what Kafka in and "
                                     "out costs on top",
                             "runs": file_runs, "median": file_med} if file_runs else None,
        "ratios": {"flat_over_kcat": ratio, "flat_over_kcat_per_round_median": statistics.median(per_round),
                   "kafka_over_file": flat_med["log_requests_per_s"]["median"] /
                   file_med["log_requests_per_s"]["median"] if file_med else None},
        "checkpoints": ck,
    }


if __name__ == "__main__":
    main()
