"""make bench, part two: the counter and content-metrics jobs (Debian's python3, standard library).

1. Prepares the input once into bench/work/metrics-jobs/ (gitignored): the generator's CLI
   profile with --users=200 (125,975 LogRequests), then `logproc run flat-output` over it for the
   joined events both jobs read. flat-output is the slow step (about 20 s for 200 users at its
   present speed of about 19K child records/s), so the cache is reused while the logproc binary
   and the flags are the same; --regenerate forces a new one.
2. counter: starts a private redis-server on a free loopback port in a temporary directory
   (--save '' --appendonly no), then runs, round after round, `logproc run counter` into its RESP
   file (no network: the baseline) and into that Redis (DB 10, flushed before each run). It
   measures wall time, CPU time and peak RSS as bench/run.py does (wait4 and a /proc poller),
   counts the commands Redis executed (INFO commandstats, reset before each run) and its CPU time,
   and checks them against the job's own count. One more Redis run goes under `perf record` when
   perf works here, and the samples are charged to our source files. Redis is stopped at the end,
   whatever happens.
3. content-metrics: runs `logproc run content-metrics` with every file output over the same
   LogRequests and joined events: input records/s, output rows/s, peak RSS.
4. Writes bench/results/counter.json|txt and bench/results/content-metrics.json|txt and prints
   the tables. docs/PERFORMANCE.md ("counter and content-metrics") quotes them.

`bench/run_metrics_jobs.py --help` lists the options.
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
WORK = os.path.join(BENCH, "work", "metrics-jobs")
RESULTS = os.path.join(BENCH, "results")

DEFAULT_USERS = 200
DEFAULT_RUNS = 5
REDIS_DB = 10
# redis-server answers PING within a few ms of its start; 200 tries 25 ms apart bound the wait
# to 5 s before the harness gives up.
REDIS_PING_TRIES = 200
REDIS_PING_GAP_S = 0.025
JOINED_TOPIC_DIR = os.path.join("kafka", "metrics.default.joined-event")


def log(msg):
    print(msg, flush=True)


def fail(msg, stderr_path=None):
    if stderr_path and os.path.exists(stderr_path):
        with open(stderr_path, errors="replace") as f:
            tail = f.read().splitlines()[-15:]
        msg += "\n  " + "\n  ".join(tail)
    raise SystemExit("bench: " + msg)


def read_text(path):
    with open(path, errors="replace") as f:
        return f.read()


def fmt_int(x):
    return format(int(round(x)), ",")


def rel(path):
    return os.path.relpath(path, ROOT)


# ---------------------------------------------------------------- measuring one process

def poll_rss(pid, peak, stop):
    """Keeps the largest RssAnon and RssFile (kB) of /proc/<pid>/status, every 10 ms: ru_maxrss
    also counts the resident pages of the memory-mapped inputs, which this separates out."""
    path = "/proc/%d/status" % pid
    while not stop.is_set():
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(("RssAnon:", "RssFile:")):
                        name, kb = line.split()[:2]
                        peak[name[:-1]] = max(peak.get(name[:-1], 0), int(kb))
        except OSError:
            return
        stop.wait(0.01)


def run_measured(argv, stdout_path, stderr_path):
    """Runs argv to completion (stdout and stderr to files). Wall seconds are perf_counter from
    just before posix_spawn to just after wait4; CPU seconds and ru_maxrss come from wait4."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    peak, stop = {}, threading.Event()
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    poller = threading.Thread(target=poll_rss, args=(pid, peak, stop), daemon=True)
    poller.start()
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    poller.join()
    return {
        "wall_s": wall,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_rss_bytes": ru.ru_maxrss * 1024,
        "peak_rss_anon_bytes": peak.get("RssAnon", 0) * 1024,
        "peak_rss_file_bytes": peak.get("RssFile", 0) * 1024,
        "exit_code": os.waitstatus_to_exitcode(status),
    }


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)


def median_summary(runs, keys):
    out = {}
    for k in keys:
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return out


# ---------------------------------------------------------------- logproc output

SUMMARY_ROW = re.compile(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s*$")
METRIC = re.compile(r"component=metrics (\w+) operator=(\S+) (?:output=\S+ )?task=(\d+) value=(-?\d+)")
SINK_DONE = re.compile(r"component=counter redis sink done .*commands=(\d+) batches=(\d+) "
                       r"retries=(\d+) replyErrors=(\d+)")


def parse_summary(stdout_text, out_dir):
    """The run summary's table: {path relative to the output root: rows}."""
    rows = {}
    for line in stdout_text.splitlines():
        m = SUMMARY_ROW.match(line)
        if m:
            rows[os.path.relpath(m.group(4), out_dir)] = int(m.group(1))
    return rows


def parse_metrics(stderr_text):
    """The final metric lines: {(name, operator): value summed over tasks}."""
    vals = {}
    for line in stderr_text.splitlines():
        m = METRIC.search(line)
        if m:
            key = (m.group(1), m.group(2))
            vals[key] = vals.get(key, 0) + int(m.group(4))
    return vals


# ---------------------------------------------------------------- machine facts

def git(*args):
    try:
        return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def first_line(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return None


def proc_field(path, prefix):
    try:
        for line in read_text(path).splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cmake_cache(build, key):
    try:
        for line in read_text(os.path.join(build, "CMakeCache.txt")).splitlines():
            if line.startswith(key + ":"):
                return line.split("=", 1)[1]
    except OSError:
        pass
    return None


def machine_facts(build):
    mem = proc_field("/proc/meminfo", "MemTotal")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "mem_total_bytes": int(mem.split()[0]) * 1024 if mem else None,
        "kernel": platform.release(),
        "compiler": first_line(["cc", "--version"]),
        "redis_server": first_line(["redis-server", "--version"]),
        "build_dir": rel(build),
        "build_type": cmake_cache(build, "CMAKE_BUILD_TYPE"),
        "c_flags_release": cmake_cache(build, "CMAKE_C_FLAGS_RELEASE"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": list(os.getloadavg()),
    }


# ---------------------------------------------------------------- the input

def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def prepare_input(logproc, users, regenerate):
    """The LogRequest file and flat-output's joined events, reused while the binary and the
    flags are unchanged. Returns the workload description (paths relative to the repo)."""
    os.makedirs(WORK, exist_ok=True)
    rec = os.path.join(WORK, "cli-%du.rec" % users)
    flat = os.path.join(WORK, "flat-%du" % users)
    gen_argv = ["generate", "logs", "--profile=cli", "--users=%d" % users, "--output", rel(rec)]
    flat_argv = ["run", "flat-output", "--source", rel(rec), "-o", rel(flat)]
    key = hashlib.sha256(json.dumps([file_sha256(logproc), gen_argv, flat_argv]).encode()).hexdigest()[:16]
    meta_path = os.path.join(WORK, "input-%du.json" % users)
    if not regenerate and os.path.exists(meta_path):
        meta = json.loads(read_text(meta_path))
        files = [os.path.join(ROOT, p) for p in meta.get("joined_event_files", [])]
        if meta.get("key") == key and files and all(os.path.exists(p) for p in files + [rec]):
            log("input: reusing %s and %s (same binary and flags)" % (rel(rec), rel(flat)))
            return meta
    log("input: generating %s (logproc %s)" % (rel(rec), " ".join(gen_argv)))
    for p in (rec, meta_path):
        if os.path.exists(p):
            os.remove(p)
    fresh_dir(flat)
    out, err = os.path.join(WORK, "generate.out"), os.path.join(WORK, "generate.err")
    g = run_measured([logproc] + [a if a != rel(rec) else rec for a in gen_argv], out, err)
    if g["exit_code"] != 0:
        fail("logproc generate failed (exit %d)" % g["exit_code"], err)
    m = re.search(r"component=generate done logRequests=(\d+)", read_text(err))
    if not m:
        fail("logproc generate printed no done line", err)
    log_requests = int(m.group(1))
    log("input: flat-output over %s LogRequests for the joined events (about 20 s for 200 users)"
        % fmt_int(log_requests))
    out, err = os.path.join(WORK, "flat-output.out"), os.path.join(WORK, "flat-output.err")
    f = run_measured([logproc, "run", "flat-output", "--source", rec, "-o", flat], out, err)
    if f["exit_code"] != 0:
        fail("flat-output failed (exit %d)" % f["exit_code"], err)
    tables = parse_summary(read_text(out), flat)
    joined = tables.get(JOINED_TOPIC_DIR)
    files = sorted(glob.glob(os.path.join(flat, JOINED_TOPIC_DIR, "part-*.rec")))
    if not joined or not files:
        fail("flat-output wrote no joined events under %s" % rel(os.path.join(flat, JOINED_TOPIC_DIR)), err)
    # only the joined events are read again: the other tables would just take disk space
    for name in os.listdir(flat):
        if name != "kafka":
            fresh_dir(os.path.join(flat, name))
    meta = {
        "key": key,
        "generator_argv": ["logproc"] + gen_argv,
        "flat_output_argv": ["logproc"] + flat_argv,
        "users": users,
        "log_requests": log_requests,
        "log_request_file_bytes": os.path.getsize(rec),
        "joined_events": joined,
        "joined_event_files": [rel(p) for p in files],
        "joined_event_bytes": sum(os.path.getsize(p) for p in files),
        "prep_seconds": {"generate": g["wall_s"], "flat_output": f["wall_s"]},
        "flat_output_peak_rss_bytes": f["peak_rss_bytes"],
    }
    with open(meta_path, "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    log("input: %s joined events (%.0f MB) in %.1f s of flat-output"
        % (fmt_int(joined), meta["joined_event_bytes"] / 1e6, f["wall_s"]))
    return meta


# ---------------------------------------------------------------- a private redis-server

class Resp:
    """A minimal RESP2 client over one socket, enough for PING, FLUSHALL, CONFIG and INFO."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.rf = self.sock.makefile("rb")

    def close(self):
        self.rf.close()
        self.sock.close()

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _reply(self):
        line = self.rf.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RuntimeError("redis error: " + body.decode(errors="replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            n = int(body)
            if n < 0:
                return None
            data = self.rf.read(n + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(body)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("unexpected redis reply %r" % line[:40])


def info_section(text):
    """INFO's 'key:value' lines as a dict of strings."""
    d = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            d[k] = v.strip()
    return d


def commandstats(conn):
    """{command: calls} from INFO commandstats (the harness's own INFO and CONFIG left out)."""
    calls = {}
    for k, v in info_section(conn.call("INFO", "commandstats")).items():
        if not k.startswith("cmdstat_"):
            continue
        name = k[len("cmdstat_"):]
        if name == "info" or name.startswith("config"):
            continue
        fields = dict(kv.split("=", 1) for kv in v.split(","))
        calls[name] = int(fields["calls"])
    return calls


def redis_cpu_s(conn):
    cpu = info_section(conn.call("INFO", "cpu"))
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


class RedisServer:
    """redis-server on a free loopback port in a temporary directory, no persistence."""

    def __init__(self):
        self.proc, self.dir, self.port = None, None, None

    def start(self):
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("redis-server is not installed")
        self.dir = tempfile.mkdtemp(prefix="logproc-bench-redis-")
        with socket.socket() as s:  # a port the kernel just handed out is free in practice
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        logf = open(os.path.join(self.dir, "redis.log"), "w")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", self.dir, "--save", "", "--appendonly", "no",
                                      "--daemonize", "no"],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        for _ in range(REDIS_PING_TRIES):
            if self.proc.poll() is not None:
                break
            try:
                c = Resp(self.port, timeout=1.0)
                try:
                    if c.call("PING") == "PONG":
                        return
                finally:
                    c.close()
            except (OSError, RuntimeError):
                pass
            time.sleep(REDIS_PING_GAP_S)
        tail = read_text(os.path.join(self.dir, "redis.log")).splitlines()[-5:]
        raise RuntimeError("redis-server on port %d did not answer PING: %s" % (self.port, " | ".join(tail)))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                c = Resp(self.port, timeout=2.0)
                try:
                    c.call("SHUTDOWN", "NOSAVE")
                except (OSError, ConnectionError, RuntimeError):
                    pass  # the server closes the connection instead of answering
                c.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.proc = None


# ---------------------------------------------------------------- counter

def counter_argv(logproc, meta, out_dir, url=None):
    argv = [logproc, "run", "counter"]
    for p in meta["joined_event_files"]:
        argv += ["--source", p if not logproc else os.path.join(ROOT, p)]
    argv += ["-o", out_dir, "--counterOutputStartTimestamp=1", "--parallelism", "1"]
    if url:
        argv.append("--redisUrl=" + url)
    return argv


def one_counter(logproc, meta, redis, run_no):
    """One counter run into Redis (redis given) or into its RESP file."""
    kind = "redis" if redis else "file"
    out_dir = os.path.join(WORK, "counter-out")
    fresh_dir(out_dir)
    out, err = os.path.join(WORK, "counter-%s.out" % kind), os.path.join(WORK, "counter-%s.err" % kind)
    conn = None
    url = None
    if redis:
        url = "redis://127.0.0.1:%d/%d" % (redis.port, REDIS_DB)
        conn = Resp(redis.port)
        conn.call("FLUSHALL")
        conn.call("CONFIG", "RESETSTAT")
        cpu0 = redis_cpu_s(conn)
    os.sync()
    m = run_measured(counter_argv(logproc, meta, out_dir, url), out, err)
    if m["exit_code"] != 0:
        if conn:
            conn.close()
        fail("counter (%s, run %d) failed (exit %d)" % (kind, run_no, m["exit_code"]), err)
    text = read_text(err)
    metrics = parse_metrics(text)
    events = metrics.get(("numRecordsIn", "source-kafka-metrics.default.joined-event"))
    if events != meta["joined_events"]:
        fail("counter read %r joined events, the input has %d" % (events, meta["joined_events"]), err)
    done = SINK_DONE.search(text)
    if not done:
        fail("counter printed no 'redis sink done' line", err)
    m.update(events=events, commands=int(done.group(1)), batches=int(done.group(2)),
             retries=int(done.group(3)), reply_errors=int(done.group(4)),
             command_records=metrics.get(("numRecordsIn", "sink-redis-counter")))
    if m["retries"] or m["reply_errors"]:
        fail("counter run %d had %d retries and %d error replies" % (run_no, m["retries"], m["reply_errors"]), err)
    if redis:
        m["redis_commandstats"] = commandstats(conn)
        m["redis_commands"] = sum(m["redis_commandstats"].values())
        m["redis_cpu_s"] = redis_cpu_s(conn) - cpu0
        conn.call("SELECT", REDIS_DB)
        m["redis_keys_after"] = conn.call("DBSIZE")
        conn.close()
    else:
        files = glob.glob(os.path.join(out_dir, "counter", "redis-commands-*.resp"))
        m["resp_bytes"] = sum(os.path.getsize(p) for p in files)
    fresh_dir(out_dir)
    w = m["wall_s"]
    m["events_per_s"] = events / w
    m["events_per_cpu_s"] = events / m["cpu_s"] if m["cpu_s"] > 0 else None
    if redis:
        both = m["cpu_s"] + m["redis_cpu_s"]
        m["events_per_cpu_s_with_redis"] = events / both if both > 0 else None
    m["commands_per_event"] = m["commands"] / events
    m["commands_per_s"] = m["commands"] / w
    return m


COUNTER_KEYS = ["wall_s", "cpu_s", "user_s", "sys_s", "peak_rss_bytes", "peak_rss_anon_bytes",
                "peak_rss_file_bytes", "events_per_s", "events_per_cpu_s", "events_per_cpu_s_with_redis",
                "commands_per_s", "redis_cpu_s"]


# ---------------------------------------------------------------- the counter profile
#
# One Redis run under `perf record -e cpu-clock --call-graph dwarf` (cpu-clock: this machine's
# perf has no hardware counters). Each sample is charged to the innermost frame in our binary or
# in a library other than libc; libc, the dynamic loader and the kernel are transparent, so a
# memcpy, a malloc or a send(2) counts for the code that called it. Frames of our binary are
# grouped by the source file defining the function (nm over the build tree's objects); an inlined
# frame belongs to the file of the function it was inlined into.

FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")
TRANSPARENT = re.compile(r"libc\.so|ld-linux|libm\.so|libgcc_s|kernel|vdso|^\[unknown\]$")


def function_files(build):
    """Function name -> source files defining it (relative to the repo, or gen/ for protoc-c's)."""
    nm = shutil.which("nm")
    files = {}
    if not nm:
        return files
    for obj in glob.glob(os.path.join(build, "CMakeFiles", "*.dir", "**", "*.o"), recursive=True):
        src = obj.split(".dir" + os.sep, 1)[1][:-2]
        if "gen/" in src:
            src = "gen/" + src.split("gen/", 1)[1]
        p = subprocess.run([nm, "--defined-only", obj], capture_output=True, text=True)
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "tTwW":
                files.setdefault(f[2].split(".")[0], set()).add(src)
    return files


def perf_samples(script_text):
    """Each sample's frames, innermost first, as [symbol, dso, holder symbol]."""
    frames = []
    for line in script_text.splitlines() + [""]:
        m = FRAME.match(line)
        if m:
            frames.append([m.group(2), m.group(3), None])
            continue
        if frames:
            holder = None
            for fr in reversed(frames):  # outermost first: an inlined frame's holder is below it
                if fr[1] == "inlined":
                    fr[1], fr[2] = holder[1] if holder else "[unknown]", holder[0] if holder else None
                else:
                    holder = fr
            yield frames
        frames = []


def profile_counter(logproc, build, meta, redis):
    perf = shutil.which("perf")
    if not perf:
        log("profile: skipped (perf is not installed)")
        return None
    check = os.path.join(WORK, "perf-check.data")
    p = subprocess.run([perf, "record", "-e", "cpu-clock", "-o", check, "--", "true"],
                       capture_output=True, text=True)
    for f in (check, check + ".old"):
        if os.path.exists(f):
            os.remove(f)
    if p.returncode != 0:
        log("profile: skipped (perf record does not work here: %s)"
            % (p.stderr.strip().splitlines() or ["?"])[-1])
        return None
    data = os.path.join(WORK, "counter-perf.data")
    for f in (data, data + ".old"):
        if os.path.exists(f):
            os.remove(f)
    out_dir = os.path.join(WORK, "counter-out")
    fresh_dir(out_dir)
    conn = Resp(redis.port)
    conn.call("FLUSHALL")
    conn.close()
    url = "redis://127.0.0.1:%d/%d" % (redis.port, REDIS_DB)
    argv = [perf, "record", "-e", "cpu-clock", "-F", "999", "--call-graph", "dwarf,16384",
            "-o", data, "--"] + counter_argv(logproc, meta, out_dir, url)
    log("profile: perf record -e cpu-clock -F 999 --call-graph dwarf over one counter run into Redis")
    m = run_measured(argv, os.path.join(WORK, "perf.out"), os.path.join(WORK, "perf.err"))
    fresh_dir(out_dir)
    if m["exit_code"] != 0:
        log("profile: perf record failed (exit %d); skipped" % m["exit_code"])
        return None
    p = subprocess.run([perf, "script", "-i", data, "-F", "ip,sym,dso"], capture_output=True, text=True)
    if p.returncode != 0:
        log("profile: perf script failed; skipped")
        return None
    prof = summarise_profile(p.stdout, os.path.realpath(logproc), function_files(build))
    if not prof:
        log("profile: no samples; skipped")
        return None
    return dict(prof, tool="perf record -e cpu-clock -F 999 --call-graph dwarf", wall_s=m["wall_s"],
                cpu_s=m["cpu_s"], perf_data=rel(data))


def summarise_profile(script_text, own, files):
    """Shares of the samples of `perf script -F ip,sym,dso` by source file, by charged function,
    by self time and inclusive; None without samples."""
    by_file, by_func, self_time, inclusive = {}, {}, {}, {}
    total = 0
    for frames in perf_samples(script_text):
        total += 1
        leaf = frames[0]
        key = "%s (%s)" % (leaf[0], os.path.basename(leaf[1]))
        self_time[key] = self_time.get(key, 0) + 1
        # our frames with their candidate files; a static name defined in several files takes
        # the file of the nearest frame (callers first) whose file is one of them and certain
        ours = []
        for sym, dso, holder in frames:
            if dso == own or os.path.basename(dso) == "logproc":
                ours.append(sorted(files.get((holder or sym).split("+")[0].split(".")[0], ())))
            else:
                ours.append(None)
        owner_file, owner_func = None, None
        seen = set()
        for i, ((sym, dso, holder), cands) in enumerate(zip(frames, ours)):
            if sym.endswith("@plt"):
                continue
            name = sym.split("+")[0]
            if cands is not None:
                if len(cands) > 1:
                    for d in range(1, len(frames)):
                        near = [ours[j] for j in (i + d, i - d) if 0 <= j < len(ours)]
                        hit = [c[0] for c in near if c and len(c) == 1 and c[0] in cands]
                        if hit:
                            cands = hit[:1]
                            break
                where = cands[0] if len(cands) == 1 else (" or ".join(cands) if cands else "logproc")
                if holder is None and name not in seen:
                    seen.add(name)
                    ik = "%s (%s)" % (name, where)
                    inclusive[ik] = inclusive.get(ik, 0) + 1
                if owner_file is None:
                    owner_file = where
                    owner_func = name if not holder else "%s inlined in %s" % (name, holder.split("+")[0])
                continue
            if TRANSPARENT.search(os.path.basename(dso)) or TRANSPARENT.search(dso):
                continue
            if owner_file is None:
                owner_file = os.path.basename(dso)
                owner_func = name
        if owner_file is None:
            owner_file = "kernel or libc without a caller in our code"
            owner_func = leaf[0]
        by_file[owner_file] = by_file.get(owner_file, 0) + 1
        fk = "%s (%s)" % (owner_func, owner_file)
        by_func[fk] = by_func.get(fk, 0) + 1
    if not total:
        return None
    pct = lambda n: round(100.0 * n / total, 2)
    top = lambda d, n: [{"name": k, "percent": pct(v)} for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:n]]
    return {
        "samples": total,
        "by_source_file": top(by_file, 40),
        "charged_functions": top(by_func, 40),
        "self_functions": top(self_time, 40),
        "inclusive_functions": top(inclusive, 60),
    }


def profile_lines(prof):
    lines = ["profile: one counter run into Redis, %s, %d samples; wall %.2f s, CPU %.2f s under perf"
             % (prof["tool"], prof["samples"], prof["wall_s"], prof["cpu_s"]),
             "(unwinding slows the run: read the shares, not the times; raw data: perf report -i %s --no-children)"
             % prof["perf_data"], "",
             "CPU by source file (the innermost frame in our code or a library; libc and kernel frames count",
             "for their caller):"]
    for e in prof["by_source_file"][:20]:
        lines.append("  %6.2f%%  %s" % (e["percent"], e["name"]))
    lines += ["", "functions charged (libc and kernel callees included):"]
    for e in prof["charged_functions"][:25]:
        lines.append("  %6.2f%%  %s" % (e["percent"], e["name"][:100]))
    lines += ["", "inclusive (the function and everything it calls; operators call the next ones downstream):"]
    for e in prof["inclusive_functions"]:
        if 1.0 <= e["percent"] < 90.0 and len(lines) < 200:
            lines.append("  %6.2f%%  %s" % (e["percent"], e["name"][:100]))
    lines += ["", "self time:"]
    for e in prof["self_functions"][:20]:
        lines.append("  %6.2f%%  %s" % (e["percent"], e["name"][:100]))
    return lines


def counter_text(res):
    wl, mach, redis = res["workload"], res["machine"], res["redis"]
    lines = ["make bench: counter, %d runs of each line, medians (min-max of the rate); %s"
             % (res["runs"], mach["date_utc"]),
             "workload: %s -> %s LogRequests; flat-output -> %s joined events, %.1f MB of record files"
             % (" ".join(wl["generator_argv"][:-2]), fmt_int(wl["log_requests"]), fmt_int(wl["joined_events"]),
                wl["joined_event_bytes"] / 1e6),
             "machine: %s, %d cores, load average at start %.2f; build %s (%s), commit %s%s"
             % (mach["cpu_model"], mach["nproc"], mach["loadavg_start"][0], mach["build_dir"], mach["build_type"],
                (mach["git_commit"] or "?")[:10], " + uncommitted changes" if mach["git_dirty"] else ""),
             "redis: redis-server %s, a private server on 127.0.0.1 (--save '' --appendonly no), DB %d flushed "
             "before each run" % (redis["version"] or "?", REDIS_DB),
             "",
             "%-22s %26s %11s %11s %9s %6s %6s %6s %8s %9s" % (
                 "1 worker thread", "events/s (min-max)", "ev/CPU-s", "ev/CPU-s+R", "cmds/s", "wall s",
                 "CPU s", "R CPU", "peak RSS", "anon RSS")]
    for label, key in (("counter -> RESP file", "file"), ("counter -> Redis", "redis")):
        med = res["sinks"][key]["median"]
        e = med["events_per_s"]
        with_r = med.get("events_per_cpu_s_with_redis")
        rc = med.get("redis_cpu_s")
        lines.append("%-22s %26s %11s %11s %9s %6.2f %6.2f %6s %5.0f MB %6.1f MB" % (
            label, "%s (%s-%s)" % (fmt_int(e["median"]), fmt_int(e["min"]), fmt_int(e["max"])),
            fmt_int(med["events_per_cpu_s"]["median"]), fmt_int(with_r["median"]) if with_r else "-",
            fmt_int(med["commands_per_s"]["median"]), med["wall_s"]["median"], med["cpu_s"]["median"],
            "%.2f" % rc["median"] if rc else "-", med["peak_rss_bytes"]["median"] / 1e6,
            med["peak_rss_anon_bytes"]["median"] / 1e6))
    c = res["commands"]
    lines += ["",
              "Redis commands per joined event: %.3f (%s commands for %s events, the same in every run and for both sinks;"
              % (c["per_event"], fmt_int(c["job_commands"]), fmt_int(wl["joined_events"])),
              "  Redis executed %s: %+d, the connection's own PING and SELECT, which the job does not count)"
              % (fmt_int(c["redis_executed"]), c["redis_executed"] - c["job_commands"]),
              "  by command: " + ", ".join("%s %s (%.3f/event)" % (k.upper(), fmt_int(v), v / wl["joined_events"])
                                           for k, v in sorted(c["by_command"].items(), key=lambda kv: -kv[1])),
              "  %s command records from the counting operators; %.1f bytes of RESP per event (%.1f MB);"
              % (fmt_int(c["command_records"]), c["resp_bytes"] / wl["joined_events"], c["resp_bytes"] / 1e6),
              "  %d keys are left in the DB: the end-of-input drain decays every count to zero (HDEL)"
              % c["keys_left_after_run"],
              "ev/CPU-s: events per CPU second of logproc; ev/CPU-s+R: the same with redis-server's CPU added;",
              "R CPU: redis-server's CPU seconds during the run (INFO cpu)",
              "peak RSS counts the memory-mapped joined-event file's resident pages; anon RSS is the process's own memory",
              "Redis over file: %.3f of the events/s; the job's CPU differs by %+.2f s, so the rest is waiting for replies"
              % (res["ratios"]["redis_over_file_events_per_s"], res["ratios"]["redis_minus_file_cpu_s"])]
    if mach.get("loadavg_end"):
        lines.append("load average at end %.2f (other processes share this machine's cores)" % mach["loadavg_end"][0])
    if res.get("profile"):
        lines += [""] + profile_lines(res["profile"])
    return "\n".join(lines) + "\n"


def redis_version(banner):
    m = re.search(r"\bv=(\S+)", banner or "")
    return m.group(1) if m else banner


def bench_counter(a, build, logproc, meta, mach):
    t0 = time.perf_counter()
    redis = RedisServer()
    file_runs, redis_runs, prof = [], [], None
    try:
        redis.start()
        log("counter: redis-server on 127.0.0.1:%d" % redis.port)
        for i in range(a.runs):
            f = one_counter(logproc, meta, None, i)
            file_runs.append(f)
            r = one_counter(logproc, meta, redis, i)
            redis_runs.append(r)
            log("counter round %d/%d: file %.2f s (%s events/s), Redis %.2f s (%s events/s, %s commands, "
                "redis CPU %.2f s), peak RSS %.0f MB"
                % (i + 1, a.runs, f["wall_s"], fmt_int(f["events_per_s"]), r["wall_s"], fmt_int(r["events_per_s"]),
                   fmt_int(r["redis_commands"]), r["redis_cpu_s"], r["peak_rss_bytes"] / 1e6))
        if not a.no_profile:
            prof = profile_counter(logproc, build, meta, redis)
    finally:
        redis.stop()
    counts = {r["commands"] for r in file_runs + redis_runs}
    if len(counts) != 1:
        fail("the counter wrote different command counts across runs or sinks: %s" % sorted(counts))
    mach = dict(mach, loadavg_end=list(os.getloadavg()))
    fm, rm = median_summary(file_runs, COUNTER_KEYS), median_summary(redis_runs, COUNTER_KEYS)
    by_cmd = dict(redis_runs[0]["redis_commandstats"])
    res = {
        "benchmark": "counter",
        "definitions": {
            "events": "joined events the job read (numRecordsIn of its joined-event source)",
            "events_per_s": "events / wall seconds of the process; --parallelism 1, so one worker thread (per core)",
            "events_per_cpu_s": "events / (user + system) CPU seconds of logproc",
            "events_per_cpu_s_with_redis": "events / (CPU seconds of logproc + redis-server's during the run)",
            "commands_per_event": "Redis commands the job wrote (its 'redis sink done' line) / events",
            "redis_cpu_s": "delta of redis-server's used_cpu_user + used_cpu_sys over the run",
            "peak_rss_bytes": "ru_maxrss of the process (wait4); it includes the mapped input's resident pages",
        },
        "machine": mach,
        "redis": {"version": redis_version(mach.get("redis_server")), "db": REDIS_DB,
                  "server_flags": ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]},
        "workload": meta,
        "runs": a.runs,
        "argv": {"file": ["logproc"] + counter_argv("", meta, "bench/work/metrics-jobs/counter-out")[1:],
                 "redis": ["logproc"] + counter_argv("", meta, "bench/work/metrics-jobs/counter-out",
                                                     "redis://127.0.0.1:PORT/%d" % REDIS_DB)[1:]},
        "commands": {
            "job_commands": redis_runs[0]["commands"],
            "per_event": redis_runs[0]["commands"] / meta["joined_events"],
            "redis_executed": redis_runs[0]["redis_commands"],
            "by_command": by_cmd,
            "command_records": redis_runs[0]["command_records"],
            "resp_bytes": file_runs[0]["resp_bytes"],
            "batches": redis_runs[0]["batches"],
            "keys_left_after_run": redis_runs[0]["redis_keys_after"],
        },
        "sinks": {"file": {"runs": file_runs, "median": fm}, "redis": {"runs": redis_runs, "median": rm}},
        "ratios": {
            "redis_over_file_events_per_s": rm["events_per_s"]["median"] / fm["events_per_s"]["median"],
            "redis_minus_file_cpu_s": rm["cpu_s"]["median"] - fm["cpu_s"]["median"],
        },
        "profile": prof,
    }
    text = counter_text(res)
    res["harness_seconds"] = time.perf_counter() - t0
    write_results("counter", res, text)
    log("")
    log(text)


# ---------------------------------------------------------------- content-metrics

CM_FLAGS = ["--outputParquet", "--outputCsv", "--outputCumulatedFiles", "--outputCumulatedKafka"]
CM_KEYS = ["wall_s", "cpu_s", "user_s", "sys_s", "peak_rss_bytes", "peak_rss_anon_bytes",
           "peak_rss_file_bytes", "input_records_per_s", "input_records_per_cpu_s", "output_rows_per_s",
           "content_events_per_s", "log_requests_per_s", "joined_events_per_s"]


def cm_argv(logproc, meta, rec, out_dir):
    argv = [logproc, "run", "content-metrics", "--source", rec]
    for p in meta["joined_event_files"]:
        argv += ["--joinedEventSource", os.path.join(ROOT, p) if logproc else p]
    return argv + ["-o", out_dir, "--parallelism", "1"] + CM_FLAGS


def one_cm(logproc, meta, run_no):
    out_dir = os.path.join(WORK, "cm-out")
    fresh_dir(out_dir)
    out, err = os.path.join(WORK, "content-metrics.out"), os.path.join(WORK, "content-metrics.err")
    rec = os.path.join(ROOT, meta["generator_argv"][-1])
    os.sync()
    m = run_measured(cm_argv(logproc, meta, rec, out_dir), out, err)
    if m["exit_code"] != 0:
        fail("content-metrics (run %d) failed (exit %d)" % (run_no, m["exit_code"]), err)
    tables = parse_summary(read_text(out), out_dir)
    metrics = parse_metrics(read_text(err))
    lr = metrics.get(("numRecordsIn", "source-kafka-tracking.event.log-request"))
    je = metrics.get(("numRecordsIn", "source-kafka-metrics.default.joined-event"))
    if lr != meta["log_requests"] or je != meta["joined_events"]:
        fail("content-metrics read %r LogRequests and %r joined events; the input has %d and %d"
             % (lr, je, meta["log_requests"], meta["joined_events"]), err)
    if not tables or any(t.endswith("invalid_record") and n for t, n in tables.items()):
        fail("content-metrics wrote no tables or invalid records: %r" % tables, err)
    fresh_dir(out_dir)
    w = m["wall_s"]
    m.update(tables=tables, log_requests=lr, joined_events=je, input_records=lr + je,
             output_rows=sum(tables.values()),
             content_events=metrics.get(("numRecordsOut", "derive-content-event")),
             late_dropped=metrics.get(("numLateRecordsDropped", "aggregate-hourly-content-metrics"), 0))
    m["input_records_per_s"] = m["input_records"] / w
    m["input_records_per_cpu_s"] = m["input_records"] / m["cpu_s"] if m["cpu_s"] > 0 else None
    m["log_requests_per_s"] = lr / w
    m["joined_events_per_s"] = je / w
    m["output_rows_per_s"] = m["output_rows"] / w
    m["content_events_per_s"] = m["content_events"] / w if m["content_events"] else None
    return m


def cm_text(res):
    wl, mach = res["workload"], res["machine"]
    med = res["median"]
    lines = ["make bench: content-metrics, %d runs, medians (min-max of the rate); %s" % (res["runs"], mach["date_utc"]),
             "workload: %s -> %s LogRequests (%.1f MB); flat-output -> %s joined events (%.1f MB)"
             % (" ".join(wl["generator_argv"][:-2]), fmt_int(wl["log_requests"]), wl["log_request_file_bytes"] / 1e6,
                fmt_int(wl["joined_events"]), wl["joined_event_bytes"] / 1e6),
             "machine: %s, %d cores, load average at start %.2f; build %s (%s), commit %s%s"
             % (mach["cpu_model"], mach["nproc"], mach["loadavg_start"][0], mach["build_dir"], mach["build_type"],
                (mach["git_commit"] or "?")[:10], " + uncommitted changes" if mach["git_dirty"] else ""),
             "flags: " + " ".join(CM_FLAGS) + " (one task reads both inputs)",
             "",
             "%-16s %28s %12s %14s %12s %7s %7s %9s %9s" % (
                 "1 thread", "input records/s (min-max)", "in/CPU-s", "content ev/s", "output rows/s",
                 "wall s", "CPU s", "peak RSS", "anon RSS")]
    i = med["input_records_per_s"]
    ce = med.get("content_events_per_s")
    lines.append("%-16s %28s %12s %14s %12s %7.2f %7.2f %6.0f MB %6.1f MB" % (
        "content-metrics", "%s (%s-%s)" % (fmt_int(i["median"]), fmt_int(i["min"]), fmt_int(i["max"])),
        fmt_int(med["input_records_per_cpu_s"]["median"]), fmt_int(ce["median"]) if ce else "-",
        "%.1f" % med["output_rows_per_s"]["median"], med["wall_s"]["median"], med["cpu_s"]["median"],
        med["peak_rss_bytes"]["median"] / 1e6, med["peak_rss_anon_bytes"]["median"] / 1e6))
    r0 = res["runs_detail"][0]
    lines += ["",
              "input records = %s LogRequests + %s joined events; they give %s content events (views, impressions,"
              % (fmt_int(r0["log_requests"]), fmt_int(r0["joined_events"]), fmt_int(r0["content_events"] or 0)),
              "  joined impressions, actions: derive-content-event's output); LogRequests/s %s, joined events/s %s"
              % (fmt_int(med["log_requests_per_s"]["median"]), fmt_int(med["joined_events_per_s"]["median"])),
              "output: %s rows over %d tables (%s): the CLI profile's traffic falls in one UTC hour and a few"
              % (fmt_int(r0["output_rows"]), len(r0["tables"]),
                 ", ".join("%s %d" % (t.split("/")[-1], n) for t, n in sorted(r0["tables"].items()) if n)),
              "  content ids, so the aggregates are few; the input rate is the figure that matters",
              "peak RSS counts the memory-mapped inputs' resident pages; anon RSS is the process's own memory"]
    if mach.get("loadavg_end"):
        lines.append("load average at end %.2f (other processes share this machine's cores)" % mach["loadavg_end"][0])
    return "\n".join(lines) + "\n"


def bench_cm(a, logproc, meta, mach):
    t0 = time.perf_counter()
    runs = []
    for i in range(a.runs):
        m = one_cm(logproc, meta, i)
        runs.append(m)
        log("content-metrics run %d/%d: %.2f s (%s input records/s, %d output rows, peak RSS %.0f MB, anon %.0f MB)"
            % (i + 1, a.runs, m["wall_s"], fmt_int(m["input_records_per_s"]), m["output_rows"],
               m["peak_rss_bytes"] / 1e6, m["peak_rss_anon_bytes"] / 1e6))
    if len({r["output_rows"] for r in runs}) != 1:
        fail("content-metrics wrote different row counts across runs: %s" % [r["output_rows"] for r in runs])
    mach = dict(mach, loadavg_end=list(os.getloadavg()))
    res = {
        "benchmark": "content-metrics",
        "definitions": {
            "input_records": "LogRequests + joined events read (numRecordsIn of the two sources)",
            "input_records_per_s": "input records / wall seconds; one task on one thread (per core)",
            "output_rows_per_s": "rows written over every output table / wall seconds",
            "content_events_per_s": "derive-content-event's output records / wall seconds",
            "peak_rss_bytes": "ru_maxrss of the process (wait4); it includes the mapped inputs' resident pages",
        },
        "machine": mach,
        "workload": meta,
        "runs": a.runs,
        "argv": ["logproc"] + cm_argv("", meta, meta["generator_argv"][-1], "bench/work/metrics-jobs/cm-out")[1:],
        "tables": runs[0]["tables"],
        "runs_detail": runs,
        "median": median_summary(runs, CM_KEYS),
    }
    text = cm_text(res)
    res["harness_seconds"] = time.perf_counter() - t0
    write_results("content-metrics", res, text)
    log("")
    log(text)


def write_results(name, res, text):
    out = results_dir(res["workload"]["users"])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, name + ".txt"), "w") as f:
        f.write(text)


def results_dir(users):
    """bench/results/ for the default workload only, so a quick look never replaces the figures
    docs/PERFORMANCE.md quotes."""
    return RESULTS if users == DEFAULT_USERS else WORK


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="counter and content-metrics throughput (part of make bench)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"),
                    help="build tree holding logproc (default build/release)")
    ap.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs of each line (default %d)" % DEFAULT_RUNS)
    ap.add_argument("--users", type=int, default=DEFAULT_USERS,
                    help="generator --users (default %d: 125,975 LogRequests, 333,310 joined events); with "
                         "another value the results go to bench/work/metrics-jobs/ instead of "
                         "bench/results/ (quick looks)" % DEFAULT_USERS)
    ap.add_argument("--regenerate", action="store_true", help="prepare the input even if cached")
    ap.add_argument("--no-profile", action="store_true", help="skip the perf run of the counter")
    ap.add_argument("--no-counter", action="store_true", help="skip the counter")
    ap.add_argument("--no-content-metrics", action="store_true", help="skip content-metrics")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    logproc = os.path.join(build, "logproc")
    if not os.access(logproc, os.X_OK):
        sys.exit("bench: %s is missing: build the release tree first (make build)" % logproc)
    if a.runs < 1 or a.users < 1:
        sys.exit("bench: --runs and --users must be at least 1")
    t0 = time.perf_counter()
    mach = machine_facts(build)
    meta = prepare_input(logproc, a.users, a.regenerate)
    if not a.no_counter:
        if shutil.which("redis-server"):
            bench_counter(a, build, logproc, meta, mach)
        else:
            log("counter: skipped (redis-server is not installed)")
    if not a.no_content_metrics:
        bench_cm(a, logproc, dict(meta), machine_facts(build))
    out = rel(results_dir(a.users))
    log("results: %s/counter.json|txt, %s/content-metrics.json|txt (%.0f s in all)"
        % (out, out, time.perf_counter() - t0))


if __name__ == "__main__":
    main()
