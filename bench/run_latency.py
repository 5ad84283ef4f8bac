"""make bench, part four: event -> Kafka output latency of flat-output running live (Debian's
python3, standard library).

For each input rate (child records per second, default 5K, 20K and 50K):

1. Starts `logproc kafka-local` (loopback, one broker) with the input topic
   tracking.event.log-request and the output topic metrics.default.joined-event, 4 partitions each.
2. Starts flat-output live on it (`--no-kafkaGroup --parallelism 2`, Kafka in, joined events out
   in transactions committed at each checkpoint), with the configured delays set to zero
   (DELAY_FLAGS) and the state's retention windows shortened (RETENTION_FLAGS) so a one-second
   checkpoint stays small.
3. Starts kcat reading the output topic (read_committed, unbuffered, `-f '%T %p %h\\n'`): a
   reader thread stamps every chunk of its output with the wall clock when it arrives.
4. Feeds the input topic with 20 `logproc generate logs --realTime` processes started 10 ms
   apart (the CLI profile, distinct seeds; the user count and --delayMultiplier give the rate;
   each --startTime is its launch time on the wall clock, so each record's timestamp is its
   scheduled send time).
5. When the generators are done and the output stops growing, stops the job (SIGTERM: its final
   counters check that it read every input record), kcat and the cluster.

Latency of each joined event (docs/PERFORMANCE.md, "Event to Kafka output latency", defines it):
  reference = the output record's timestamp (its event time: the time of the input record it was
              produced for, or the timer that released it) + its generator's start offset;
  produced  = the poll time when kcat received it - reference (the mock cluster shows records of
              open transactions, so this is when the job produced it, plus one fetch);
  visible   = the end of the checkpoint whose transaction committed it - reference.
The run's steady part is cut into 5 windows of equal input time; the figures are the medians over
the windows of each window's p50/p90/p99/max. Results: bench/results/latency.json and
bench/results/latency.txt. `bench/run_latency.py --help` lists the options.
"""
import argparse
import bisect
import json
import math
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
import run as common  # noqa: E402  (machine facts, logging, record counting)
import run_kafka  # noqa: E402  (the kafka-local wrapper)

ROOT = common.ROOT
WORK = os.path.join(BENCH, "work", "latency")
RESULTS = common.RESULTS
IN_TOPIC = "tracking.event.log-request"
OUT_TOPIC = "metrics.default.joined-event"
PARTITIONS = 4
PARALLELISM = 2
DEFAULT_RATES = [5000, 10000, 20000, 50000]
CHECKPOINT_INTERVAL = "PT1S"  # --checkpointInterval
# The configured delays, all zero: the source watermark trails the newest record by 1 ms only,
# CombineDeliveryLog releases at the next watermark step, the joins wait for nothing ahead and
# AddLatestImpressions releases an action at the first watermark past it. What is left is the
# job's own latency (and the 1 ms watermark step, counted as latency).
DELAY_FLAGS = ["--maxLogRequestOutOfOrderness", "PT0S", "--combineDeliveryLogWindow", "PT0S",
               "--viewInsertionJoinMax", "PT0S", "--insertionImpressionJoinMax", "PT0S",
               "--impressionActionJoinMax", "PT0S", "--extraAddLatestImpressionOutOfOrderness", "PT0S",
               "--no-checkLateness", "--mergeDetailsMissingOutputDelay", "PT1S"]
# Retention (look-back) windows: they hold state, never an output. Every checkpoint is a full,
# synchronous snapshot on the task's worker thread, so its cost grows with the state: at the
# defaults (a day) every record of the run stays in state and each one-second checkpoint copies
# all of it (at 30 s and 5K child records/s: about 90 MB per task, 200-600 ms per checkpoint,
# and the job fell behind). 5 s of event time (12 simulated seconds at DELAY_MULTIPLIER) still
# covers the parents the CLI profile's children need: the run checks that every impression of the
# input comes out joined.
RETENTION = "PT5S"
RETENTION_FLAGS = ["--viewInsertionJoinMin", "-" + RETENTION, "--insertionImpressionJoinMin",
                   "-" + RETENTION, "--impressionActionJoinMin", "-" + RETENTION,
                   "--flatResponseInsertionGapDuration", RETENTION,
                   "--keepFirstImpressionDuration", RETENTION, "--keepFirstActionDuration", RETENTION,
                   "--keepFirstViewDuration", RETENTION, "--keepFirstDeliveryLogDuration", RETENTION,
                   "--mergeDetailsCleanupPeriod", "PT1S", "--mergeDetailsCleanupBuffer", "PT1S"]
# Generator: the CLI profile's simulated timeline is about 117 s (100 views 1 s apart per user, all
# users in lockstep); --delayMultiplier scales it. At 0.4 a run feeds 47 s of input. In lockstep
# every record falls on a multiple of 200 ms (the burst period), and a watermark only passes a
# burst when the next one arrives: one generator would add up to 200 ms of pure watermark wait to
# every output released by a watermark. So GENERATORS generators (distinct --seed: distinct ids)
# each take 1/GENERATORS of the users, started 200/GENERATORS ms apart: the input comes in bursts
# every 10 ms, as steady as real traffic at this scale, and an output's timestamp modulo the
# burst period names the generator whose start offset it carries.
DELAY_MULTIPLIER = 0.4
GENERATORS = 20
# The steady part of the input: its rate is flat between about 4% and 86% of the timeline.
STEADY = (0.10, 0.85)
WINDOWS = 5
CALIBRATION_USERS = 50
QUIET_S = 3.0          # the output is complete when it has not grown for this long
CATCHUP_MAX_S = 240.0  # after the input ends, give the job this long to drain its backlog
READY_MAX_S = 30.0
READ_PAUSE_S = 0.001

log = common.log
fail = common.fail
fmt_int = common.fmt_int
read_text = common.read_text


# ---------------------------------------------------------------- calibration

def calibrate(logproc, decode_bin):
    """Child records per user per simulated second over the steady part, from a small
    non-paced generation (deterministic: the same per-user shape at any user count)."""
    os.makedirs(WORK, exist_ok=True)
    rec = os.path.join(WORK, "calibrate.rec")
    m = common.run_measured([logproc, "generate", "logs", "--profile=cli",
                             "--users=%d" % CALIBRATION_USERS, "--delayMultiplier", str(DELAY_MULTIPLIER),
                             "--output", rec],
                            os.path.join(WORK, "calibrate.out"), os.path.join(WORK, "calibrate.err"))
    if m["exit_code"] != 0:
        fail("calibration generation failed", os.path.join(WORK, "calibrate.err"))
    counted = common.count_records(decode_bin, rec)
    ts = read_frame_times(rec)
    t0 = min(ts)
    span_ms = max(ts) - t0
    lo, hi = t0 + STEADY[0] * span_ms, t0 + STEADY[1] * span_ms
    steady_lr = sum(1 for t in ts if lo <= t < hi)
    child_per_lr = common.child_records(counted) / counted["records"]
    lr_rate = steady_lr / ((hi - lo) / 1000.0) / CALIBRATION_USERS
    burst = 0
    for t in ts:
        burst = math.gcd(burst, t - t0)
    os.unlink(rec)
    return {"users": CALIBRATION_USERS, "delay_multiplier": DELAY_MULTIPLIER,
            "log_requests": counted["records"],
            "child_records": common.child_records(counted), "child_per_log_request": child_per_lr,
            "log_requests_per_user_s": lr_rate,
            "child_records_per_user_s": lr_rate * child_per_lr,
            "span_s": span_ms / 1000.0, "burst_period_ms": burst}


def read_frame_times(path):
    """The timestamp of every frame of a record file (record_file.h: lengths at 4 and 8, the
    timestamp at 12, 28 bytes of framing)."""
    import struct
    out = []
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i + 28 <= len(data):
        klen, vlen = struct.unpack_from("<II", data, i + 4)
        out.append(struct.unpack_from("<q", data, i + 12)[0])
        i += 28 + klen + vlen
    return out


# ---------------------------------------------------------------- the output reader

class Reader:
    """kcat on a topic; a thread stamps each chunk of its stdout with time.time()."""

    def __init__(self, bootstrap, topic, fmt, name):
        self.argv = [shutil.which("kcat") or "kcat", "-C", "-b", bootstrap, "-t", topic,
                     "-o", "beginning", "-u", "-q", "-X", "isolation.level=read_committed",
                     "-X", "fetch.wait.max.ms=5", "-f", fmt]
        self.chunks = []
        self.lines = 0
        self.err_path = os.path.join(WORK, "kcat-%s.err" % name)
        errf = open(self.err_path, "w")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=errf)
        errf.close()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        # kcat -u writes line by line: one read per line would cost this process a third of a
        # core at 20K lines/s, on the machine the job runs on. A read returns what has arrived;
        # pausing READ_PAUSE_S after each lets the next read take a batch, at the price of
        # stamping a record up to that much late (counted as latency).
        fd = self.proc.stdout.fileno()
        pause = threading.Event()
        while True:
            b = os.read(fd, 1 << 20)
            t = time.time()
            if not b:
                return
            self.chunks.append((t, b))
            self.lines += b.count(b"\n")
            pause.wait(READ_PAUSE_S)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.thread.join(10)

    def first_seen(self):
        """{record timestamp: poll time of the first record with it} (format '%T')."""
        first, carry = {}, b""
        for t, b in self.chunks:
            parts = (carry + b).split(b"\n")
            carry = parts.pop()
            for line in parts:
                if line:
                    first.setdefault(int(line), t)
        return first

    def records(self):
        """[(poll time s, record timestamp ms, partition, task)] in arrival order."""
        out, carry = [], b""
        for t, b in self.chunks:
            data = carry + b
            parts = data.split(b"\n")
            carry = parts.pop()
            for line in parts:
                f = line.split(b" ", 2)
                if len(f) < 3:
                    continue
                out.append((t, int(f[0]), int(f[1]), f[2].decode(errors="replace")))
        return out


# ---------------------------------------------------------------- one rate

CKPT = re.compile(r"^ts=(\S+) .*component=checkpoint completed task=(\S+) id=(\d+) bytes=(\d+) "
                  r"duration_ms=(\d+)")
GEN_START = re.compile(r"^ts=(\S+) .*component=generate start ")
GEN_DONE = re.compile(r"component=generate done logRequests=(\d+) .* seconds=([\d.]+) .*"
                      r"views=(\d+) .*deliveryLogs=(\d+) .*impressions=(\d+) navigates=(\d+) "
                      r"addToCarts=(\d+) checkouts=(\d+) purchases=(\d+)")


def log_time(s):
    """ts=2026-11-26T14:17:22.479Z -> epoch seconds."""
    import datetime
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


# The mock cluster holds a fetch until fetch.wait.max.ms (librdkafka's default 500 ms) even when
# records are there: at the default the job's source alone waited about 250 ms on average (the
# first 5K run: p50 528 ms, against 283 ms with 5 ms). A real broker answers as soon as
# fetch.min.bytes (1) are there, so the job's consumer, like kcat below, asks for 5 ms.
JOB_KAFKA_PROPERTIES = ["fetch.wait.max.ms=5"]
JOB_EXTRA = []  # --kafkaProperty flags: JOB_KAFKA_PROPERTIES, or those of the command line


def set_checkpoint_interval(v):
    global CHECKPOINT_INTERVAL
    CHECKPOINT_INTERVAL = v


def flat_argv(logproc, bootstrap, out_dir, run_id):
    return ([logproc, "run", "flat-output", "-b", bootstrap, "--no-kafkaGroup", "--startFromEarliest",
             "-o", out_dir, "--parallelism", str(PARALLELISM), "--checkpointInterval",
             CHECKPOINT_INTERVAL, "--restPort", "-1", "--progressInterval", "PT0S",
             "--runId", run_id] + DELAY_FLAGS + RETENTION_FLAGS + JOB_EXTRA)


def tree_pids(pid):
    """pid and its descendants (flat-output's supervisor runs the job in a child process)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                todo.extend(int(c) for c in read_text("/proc/%d/task/%s/children" % (p, t)).split())
        except OSError:
            pass
    return out


def tree_cpu_s(pid):
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += run_kafka.proc_cpu_s(p)
        except OSError:
            pass
    return total


def tree_peak_rss(pid):
    best = 0
    for p in tree_pids(pid):
        try:
            for line in read_text("/proc/%d/status" % p).splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) * 1024)
        except OSError:
            pass
    return best


def wait_for(pred, limit_s, what, err_path=None):
    end = time.time() + limit_s
    stop = threading.Event()
    while not pred():
        if time.time() > end:
            fail("timed out waiting for %s" % what, err_path)
        stop.wait(0.05)


def pct(sorted_vals, q):
    """Nearest-rank percentile of a sorted list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(math.ceil(q / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def summary(vals):
    v = sorted(vals)
    return {"n": len(v), "p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99),
            "max": v[-1] if v else None}


def checkpoint_split(points, cklist):
    """Splits (reference s, arrival s, latency ms) by whether any task's checkpoint (start = end -
    duration) ran between the reference and the arrival: a checkpoint stops its worker thread,
    which runs other tasks too, so any of them may have held the record."""
    spans = sorted((c["end"] - c["duration_ms"] / 1000.0, c["end"]) for c in cklist)
    starts = [a for a, _ in spans]
    longest = max((b - a for a, b in spans), default=0.0)
    held, clear = [], []
    for ref, arr, lat in points:
        k = bisect.bisect_right(starts, arr)
        hit = False
        while k > 0:
            k -= 1
            a, b = spans[k]
            if a < ref - longest:
                break
            if b > ref:
                hit = True
                break
        (held if hit else clear).append(lat)
    total = len(held) + len(clear)
    return {"during_checkpoint": dict(summary(held), share=len(held) / total if total else None),
            "no_checkpoint": dict(summary(clear), share=len(clear) / total if total else None)}


def one_rate(logproc, rate, calib, run_no):
    per_gen = max(1, int(round(rate / calib["child_records_per_user_s"] / GENERATORS)))
    users = per_gen * GENERATORS
    burst = calib["burst_period_ms"]
    stagger = burst // GENERATORS
    if stagger < 1:
        fail("the generator's burst period (%d ms) is too short for %d generators" % (burst, GENERATORS))
    tag = "r%d" % rate
    out_dir = os.path.join(WORK, "out-" + tag)
    common.fresh_dir(out_dir)
    cluster = run_kafka.KafkaLocal(logproc)
    cluster.argv = [logproc, "kafka-local", "--port", "0", "--topic", "%s:%d" % (IN_TOPIC, PARTITIONS),
                    "--topic", "%s:%d" % (OUT_TOPIC, PARTITIONS)]
    job = reader = in_reader = None
    job_err = os.path.join(WORK, "flat-output-%s.err" % tag)
    gen_errs = [os.path.join(WORK, "generate-%s-%02d.err" % (tag, g)) for g in range(GENERATORS)]
    run_id = "1a7e%04x" % run_no
    load = {"before": list(os.getloadavg())}
    cluster.start()
    try:
        with open(job_err, "w") as ef, open(os.path.join(WORK, "flat-output-%s.out" % tag), "w") as of:
            job = subprocess.Popen(flat_argv(logproc, cluster.bootstrap, out_dir, run_id),
                                   stdin=subprocess.DEVNULL, stdout=of, stderr=ef)
        wait_for(lambda: read_text(job_err).count("assigned topic=%s" % IN_TOPIC) >= PARTITIONS
                 or job.poll() is not None, READY_MAX_S, "flat-output's partition assignment", job_err)
        if job.poll() is not None:
            fail("flat-output exited at start (%d)" % job.returncode, job_err)
        reader = Reader(cluster.bootstrap, OUT_TOPIC, "%T %p %h\n", "out")
        # the input topic too: when each input record became readable, to tell the job's
        # latency from the generators' (a generator behind its schedule sends late)
        in_reader = Reader(cluster.bootstrap, IN_TOPIC, "%T\n", "in")
        log("rate %s child records/s: %d generators of %d users, --delayMultiplier %s (%.0f s of "
            "input), started %d ms apart" % (fmt_int(rate), GENERATORS, per_gen, DELAY_MULTIPLIER,
                                             calib["span_s"], stagger))
        cpu0 = tree_cpu_s(job.pid)
        base_ms = int(time.time() * 1000) + 300
        gens, gen_argv = [], None
        tick = threading.Event()
        for g in range(GENERATORS):
            st = base_ms + g * stagger
            gen_argv = [logproc, "generate", "logs", "--profile=cli", "--users=%d" % per_gen,
                        "--seed", str(g + 1), "--realTime", "--delayMultiplier", str(DELAY_MULTIPLIER),
                        "--startTime", str(st), "--kafkaCompressionType", "lz4",
                        "--bootstrapServers", cluster.bootstrap]
            wait_s = st / 1000.0 - time.time()
            if wait_s > 0:
                tick.wait(wait_s)
            with open(gen_errs[g], "w") as ef:
                gens.append(subprocess.Popen(gen_argv, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=ef))
        for g, pr in enumerate(gens):
            if pr.wait() != 0:
                fail("generator %d failed (exit %d)%s" % (g, pr.returncode, cluster.gone()), gen_errs[g])
        gen_wall = time.time() - base_ms / 1000.0
        load["input_end"] = list(os.getloadavg())
        gen_end = time.time()
        cpu_input = tree_cpu_s(job.pid) - cpu0
        # the backlog drains: wait until the output has been quiet for QUIET_S
        last, last_t = -1, time.time()
        quiet = threading.Event()
        while True:
            n = reader.lines
            now = time.time()
            if n != last:
                last, last_t = n, now
            elif now - last_t >= QUIET_S:
                break
            if now - gen_end > CATCHUP_MAX_S:
                log("  the output was still growing %.0f s after the input ended" % CATCHUP_MAX_S)
                break
            if job.poll() is not None:
                fail("flat-output exited during the run (%d)%s" % (job.returncode, cluster.gone()), job_err)
            quiet.wait(0.1)
        drained_s = last_t - gen_end
        job_rss = tree_peak_rss(job.pid)
        job_cpu = tree_cpu_s(job.pid) - cpu0
        input_trim = run_kafka.kcat_offsets(cluster.bootstrap)
    finally:
        if job is not None and job.poll() is None:
            job.terminate()
            try:
                job.wait(60)
            except subprocess.TimeoutExpired:
                log("  flat-output did not stop within 60 s of SIGTERM: killed")
                job.kill()
                job.wait()
        if reader is not None:
            reader.stop()
        if in_reader is not None:
            in_reader.stop()
        cluster.stop()
    common.fresh_dir(out_dir)
    # record timestamps are startTime + simulated offset; each generator sends a record at its
    # own start (logged just before it reads its clock) + that offset, so its start offset
    # shifts every send time
    offsets, lrs, children, gen_s = [], 0, 0, 0.0
    for g in range(GENERATORS):
        gtext = read_text(gen_errs[g])
        gs, gd = GEN_START.search(gtext), GEN_DONE.search(gtext)
        if not gs or not gd:
            fail("generator %d's start/done lines are missing" % g, gen_errs[g])
        offsets.append(log_time(gs.group(1)) * 1000 - (base_ms + g * stagger))
        lrs += int(gd.group(1))
        children += (int(gd.group(3)) + int(gd.group(4)) + int(gd.group(5)) +
                     sum(int(gd.group(i)) for i in range(6, 10)))
        gen_s = max(gen_s, float(gd.group(2)))
    impressions = sum(int(GEN_DONE.search(read_text(e)).group(5)) for e in gen_errs)
    jtext = read_text(job_err)
    if "stop requested" not in jtext:
        log("  flat-output logged no stop (exit %s): its final counts are missing" % job.returncode)
    consumed = sum(int(v) for v in re.findall(
        r"numRecordsIn operator=source-kafka-%s task=\S+ value=(\d+)" % re.escape(IN_TOPIC), jtext))
    joined_imps = sum(int(v) for v in re.findall(
        r"numRecordsIn operator=sink-s3-etl-joined_impression task=\S+ value=(\d+)", jtext))
    ckpts = {}
    cklist = []
    for line in jtext.splitlines():
        m = CKPT.search(line)
        if m:
            end = log_time(m.group(1))
            ckpts.setdefault(m.group(2), []).append(end)
            cklist.append({"task": m.group(2), "id": int(m.group(3)), "bytes": int(m.group(4)),
                           "duration_ms": int(m.group(5)), "end": end})
    for v in ckpts.values():
        v.sort()
    recs = reader.records()
    in_first = in_reader.first_seen()
    in_lag = []  # input poll time - scheduled send time, per (generator, burst)
    for ts, t in in_first.items():
        slot, rem = divmod((ts - base_ms) % burst, stagger)
        if not rem and slot < GENERATORS:
            in_lag.append((t - (ts + offsets[slot]) / 1000.0) * 1000)
    prefix = "logproc.id=%s-" % run_id
    span_ms = calib["span_s"] * 1000
    bounds = [base_ms + span_ms * (STEADY[0] + (STEADY[1] - STEADY[0]) * i / WINDOWS)
              for i in range(WINDOWS + 1)]
    win_prod = [[] for _ in range(WINDOWS)]
    win_vis = [[] for _ in range(WINDOWS)]
    win_job = [[] for _ in range(WINDOWS)]
    all_prod, all_vis, all_job = [], [], []
    uncommitted = unattributed = 0
    points = []
    for poll, ts, part, hdr in recs:
        slot, rem = divmod((ts - base_ms) % burst, stagger)
        if rem or slot >= GENERATORS:
            unattributed += 1
            continue
        ref = (ts + offsets[slot]) / 1000.0
        prod = (poll - ref) * 1000
        points.append((ref, poll, prod))
        seen = in_first.get(ts)
        job_ms = (poll - seen) * 1000 if seen is not None else None
        if job_ms is not None:
            all_job.append(job_ms)
        task = None
        if hdr.startswith(prefix):
            task = hdr[len(prefix):].split(",")[0].rsplit("-", 1)[0]
        ends = ckpts.get(task, [])
        k = bisect.bisect_left(ends, poll)
        vis = (max(ends[k], poll) - ref) * 1000 if k < len(ends) else None
        if vis is None:
            uncommitted += 1
        all_prod.append(prod)
        if vis is not None:
            all_vis.append(vis)
        w = bisect.bisect_right(bounds, ts) - 1
        if 0 <= w < WINDOWS:
            win_prod[w].append(prod)
            if job_ms is not None:
                win_job[w].append(job_ms)
            if vis is not None:
                win_vis[w].append(vis)
    with open(os.path.join(WORK, "records-%s.tsv" % tag), "w") as f:
        f.write("poll_s\tts_ms\tpartition\ttask\n")
        for poll, ts, part, hdr in recs:
            f.write("%.4f\t%d\t%d\t%s\n" % (poll, ts, part, hdr))
    windows = [{"from_ms": bounds[i] - base_ms, "to_ms": bounds[i + 1] - base_ms,
                "produced": summary(win_prod[i]), "visible": summary(win_vis[i]),
                "job": summary(win_job[i])} for i in range(WINDOWS)]
    med = {}
    for kind in ("produced", "visible", "job"):
        med[kind] = {q: statistics.median([w[kind][q] for w in windows if w[kind][q] is not None])
                     if any(w[kind][q] is not None for w in windows) else None
                     for q in ("p50", "p90", "p99", "max")}
        med[kind]["n"] = sum(w[kind]["n"] for w in windows)
    in_s = calib["span_s"]
    steady_child_rate = calib["child_records_per_user_s"] * users
    steady_lr_rate = calib["log_requests_per_user_s"] * users
    # a partition's log start above 0 at the end: the mock dropped its oldest data (harmless when
    # the job had read it already; log_requests_consumed tells)
    trimmed = {p: c[1] for p, c in input_trim.items() if c[1] != 0}
    return {
        "target_child_records_per_s": rate,
        "users": users,
        "generators": GENERATORS,
        "generator_stagger_ms": stagger,
        "generator_argv_last": ["logproc"] + [a if a != cluster.bootstrap else "BOOTSTRAP"
                                              for a in gen_argv[1:]],
        "generator_seconds": gen_s,
        "generators_wall_s": gen_wall,
        "generator_start_offsets_ms": offsets,
        "output_records_unattributed": unattributed,
        "log_requests": lrs,
        "child_records": children,
        "steady_child_records_per_s": steady_child_rate,
        "steady_log_requests_per_s": steady_lr_rate,
        "mean_child_records_per_s": children / in_s,
        "job_cpu_share_note": "CPU seconds of the job (all its threads) / wall seconds of the input",
        "mean_log_requests_per_s": lrs / in_s,
        "output_records": len(recs),
        "uncommitted_at_stop": uncommitted,
        "output_quiet_after_input_s": drained_s,
        "job_cpu_s_during_input": cpu_input,
        "job_cpu_s": job_cpu,
        "job_cpu_share_during_input": cpu_input / gen_wall,
        "job_peak_rss_bytes": job_rss,
        "input_log_start_at_end": trimmed,
        "log_requests_consumed": consumed,
        "impressions": impressions,
        "joined_impressions_to_table": joined_imps,
        "joined_events_sent": sum(int(v) for v in re.findall(
            r"numRecordsIn operator=sink-kafka-%s task=\S+ value=(\d+)" % re.escape(OUT_TOPIC), jtext)),
        "checkpoints": len(cklist),
        "checkpoint_ms": summary([c["duration_ms"] for c in cklist]),
        "checkpoint_bytes_max": max((c["bytes"] for c in cklist), default=0),
        "all": {"produced": summary(all_prod), "visible": summary(all_vis), "job": summary(all_job)},
        "input_readable_after_send_ms": summary(in_lag),
        "produced_by_checkpoint": checkpoint_split(points, cklist),
        "windows": windows,
        "median": med,
        "loadavg": load,
    }


# ---------------------------------------------------------------- report

def fmt_ms(v):
    if v is None:
        return "-"
    return "%.0f" % v if abs(v) >= 100 else "%.1f" % v


def table_text(res):
    mach = res["machine"]
    lines = ["flat-output live, Kafka in and out: event -> joined-event topic latency",
             "machine: %s, %d cores; build %s (%s), commit %s%s" % (
                 mach["cpu_model"], mach["nproc"], mach["build_dir"], mach["build_type"],
                 (mach["git_commit"] or "?")[:10], " + uncommitted changes" if mach["git_dirty"] else ""),
             "job: %s" % " ".join(res["job_argv"]),
             "latency = arrival - (output record's event time + generator start offset); produced: "
             "kcat's poll time; visible: end of the committing checkpoint (%s)" % CHECKPOINT_INTERVAL,
             "medians over %d windows of input time (%d%%-%d%% of each run), ms" % (
                 WINDOWS, STEADY[0] * 100, STEADY[1] * 100),
             ""]
    lines.append("%9s %9s %8s | %7s %7s %7s %7s | %7s %7s %7s %7s | %7s %7s | %6s %6s %5s %s"
                 % ("child/s", "LR/s", "outputs", "p50", "p90", "p99", "max", "vis p50", "p90", "p99",
                    "max", "job p50", "p99", "ckpt", "drain", "load", "note"))
    for r in res["rates"]:
        p, v = r["median"]["produced"], r["median"]["visible"]
        note = []
        if r["log_requests_consumed"] != r["log_requests"]:
            note.append("LOST INPUT (%s of %s read)" % (fmt_int(r["log_requests_consumed"]),
                                                       fmt_int(r["log_requests"])))
        if r["joined_impressions_to_table"] < 0.99 * r["impressions"]:
            note.append("only %s of %s impressions joined" % (fmt_int(r["joined_impressions_to_table"]),
                                                              fmt_int(r["impressions"])))
        if r["output_quiet_after_input_s"] > 5:
            note.append("backlog")
        j = r["median"]["job"]
        lines.append("%9s %9s %8s | %7s %7s %7s %7s | %7s %7s %7s %7s | %7s %7s | %6s %5.1fs %5.2f %s"
                     % (fmt_int(r["steady_child_records_per_s"]), fmt_int(r["steady_log_requests_per_s"]),
                        fmt_int(r["output_records"]), fmt_ms(p["p50"]), fmt_ms(p["p90"]), fmt_ms(p["p99"]),
                        fmt_ms(p["max"]), fmt_ms(v["p50"]), fmt_ms(v["p90"]), fmt_ms(v["p99"]),
                        fmt_ms(v["max"]), fmt_ms(j["p50"]), fmt_ms(j["p99"]), fmt_ms(r["checkpoint_ms"]["p99"]),
                        r["output_quiet_after_input_s"], r["loadavg"]["input_end"][0], " ".join(note)))
    lines.append("")
    lines.append("per window (produced p99 / visible p99, ms):")
    for r in res["rates"]:
        lines.append("  %9s child/s: %s" % (fmt_int(r["steady_child_records_per_s"]), "  ".join(
            "%s/%s" % (fmt_ms(w["produced"]["p99"]), fmt_ms(w["visible"]["p99"])) for w in r["windows"])))
    lines.append("")
    lines.append("produced latency split by whether a checkpoint (of any task: a worker thread runs two) "
                 "ran between input and output, whole run:")
    for r in res["rates"]:
        c = r.get("produced_by_checkpoint")
        if not c:
            continue
        d, n = c["during_checkpoint"], c["no_checkpoint"]
        lines.append("  %9s child/s: no checkpoint %4.0f%% p50 %s p90 %s p99 %s | during one %4.0f%% p50 %s "
                     "p90 %s p99 %s" % (fmt_int(r["steady_child_records_per_s"]), 100 * (n["share"] or 0),
                                        fmt_ms(n["p50"]), fmt_ms(n["p90"]), fmt_ms(n["p99"]),
                                        100 * (d["share"] or 0), fmt_ms(d["p50"]), fmt_ms(d["p90"]),
                                        fmt_ms(d["p99"])))
    lines.append("")
    lines.append("job = from the first record of the input burst readable on the input topic to the "
                 "output readable (the generators' own lag left out)")
    lines.append("ckpt = p99 checkpoint duration (ms, snapshot + commit on the worker thread); drain = "
                 "seconds the output kept growing after the input ended; load = 1-min load average "
                 "at the end of the input")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description="event -> Kafka output latency of flat-output live "
                                             "(make bench, part four)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                    help="build tree holding logproc and bench/logproc-bench-decode (default build/release)")
    ap.add_argument("--rates", default=",".join(str(r) for r in DEFAULT_RATES),
                    help="input rates in child records/s, comma-separated (default %s)"
                    % ",".join(str(r) for r in DEFAULT_RATES))
    ap.add_argument("--checkpointInterval", default=CHECKPOINT_INTERVAL,
                    help="the job's checkpoint interval (default %s)" % CHECKPOINT_INTERVAL)
    ap.add_argument("--kafkaProperty", action="append", default=[],
                    help="librdkafka property key=value for the job's clients (repeatable; "
                         "default %s)" % " ".join(JOB_KAFKA_PROPERTIES))
    a = ap.parse_args()
    set_checkpoint_interval(a.checkpointInterval)
    for kv in a.kafkaProperty or JOB_KAFKA_PROPERTIES:
        JOB_EXTRA.extend(["--kafkaProperty", kv])
    build = os.path.abspath(a.build)
    logproc = os.path.join(build, "logproc")
    decode_bin = os.path.join(build, "bench", "logproc-bench-decode")
    for b in (logproc, decode_bin):
        if not os.access(b, os.X_OK):
            sys.exit("bench: %s is missing: build the release tree first (make build)" % b)
    if not shutil.which("kcat"):
        sys.exit("bench: kcat is not installed")
    rates = [int(x) for x in a.rates.split(",") if x]
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    common.WORK = WORK  # count_records writes its scratch files there
    t0 = time.perf_counter()
    mach = common.machine_facts(build)
    calib = calibrate(logproc, decode_bin)
    log("calibration: %.2f child records (%.2f LogRequests) per user per second at --delayMultiplier "
        "%s; bursts every %d ms" % (calib["child_records_per_user_s"], calib["log_requests_per_user_s"],
                                    DELAY_MULTIPLIER, calib["burst_period_ms"]))
    runs = []
    for i, rate in enumerate(rates):
        r = one_rate(logproc, rate, calib, i)
        runs.append(r)
        p, v = r["median"]["produced"], r["median"]["visible"]
        j = r["median"]["job"]
        log("  %s outputs; produced p50 %s p99 %s ms, visible p50 %s p99 %s ms, job p50 %s p99 %s ms; "
            "backlog drained %.1f s after the input; checkpoint p99 %s ms; load %.2f"
            % (fmt_int(r["output_records"]), fmt_ms(p["p50"]), fmt_ms(p["p99"]), fmt_ms(v["p50"]),
               fmt_ms(v["p99"]), fmt_ms(j["p50"]), fmt_ms(j["p99"]), r["output_quiet_after_input_s"],
               fmt_ms(r["checkpoint_ms"]["p99"]), r["loadavg"]["input_end"][0]))
    mach["loadavg_end"] = list(os.getloadavg())
    res = {
        "benchmark": "latency",
        "definitions": {
            "reference_time": "the output record's Kafka timestamp (the job sets it to the record's "
                              "event time: the timestamp of the input record it was emitted for, or the "
                              "timer time that released it) + the generator's start offset (its 'start' "
                              "log line minus --startTime), i.e. the scheduled send time of that input",
            "produced_ms": "kcat's poll time of the output record - reference time; the mock cluster "
                           "does not hide open transactions (INFRA.md), so this is the produce time "
                           "plus one fetch",
            "visible_ms": "end of the first checkpoint of the producing task (header logproc.id) "
                          "completed at or after the poll time (its transaction commit) - reference "
                          "time: what a read_committed consumer on a real broker would see",
            "job_ms": "kcat's poll time of the output record - poll time of the first input record "
                      "with the output's timestamp on the input topic (read by a second kcat): the "
                      "job's latency without the generators' lag behind their schedule",
            "configured_delays": "all zero (delay_flags); the 1 ms watermark step counts as latency",
            "windows": "%d equal windows of input time over %d%%-%d%% of each run; medians over "
                       "the windows of each window's percentile" % (WINDOWS, STEADY[0] * 100, STEADY[1] * 100),
            "rate_unit": "child records/s (views + delivery logs + impressions + actions, bench/run.py's "
                         "flat-output unit); LogRequests/s beside it",
        },
        "machine": mach,
        "calibration": calib,
        "job_argv": ["logproc"] + flat_argv("", "BOOTSTRAP", "bench/work/latency/out", "RUNID")[1:],
        "delay_flags": DELAY_FLAGS,
        "retention_flags": RETENTION_FLAGS,
        "checkpoint_interval": CHECKPOINT_INTERVAL,
        "parallelism": PARALLELISM,
        "partitions": PARTITIONS,
        "rates": runs,
        "harness_seconds": time.perf_counter() - t0,
    }
    text = table_text(res)
    log("")
    log(text)
    with open(os.path.join(RESULTS, "latency.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    with open(os.path.join(RESULTS, "latency.txt"), "w") as f:
        f.write(text)
    log("results: bench/results/latency.json, bench/results/latency.txt (%.0f s)" % res["harness_seconds"])


if __name__ == "__main__":
    main()
