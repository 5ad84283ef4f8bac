"""Helpers of the Kafka, checkpoint and S3 tests: start kafka-local, s3rver and stop what a test
started; run a job, kill it with SIGKILL at random moments and restart it until it exits 0; read
what it published (tables, topic record files, Kafka topics, committed offsets, Redis), so a test
compares that with an uninterrupted run."""
import glob
import os
import signal
import subprocess
import time


def table_rows(root, inspect_bin=None):
    """{table dir relative to root: sorted list of rows as JSON lines} for every published Avro
    part under root (hidden in-progress parts are skipped, as readers skip them). The rows are
    printed by `logproc inspect` (fast; what is compared is two runs' rows, and the Avro files
    themselves are checked by independent readers in other tests)."""
    bin_ = inspect_bin or os.environ.get("LOGPROC_BIN", "logproc")
    by_table = {}
    for path in glob.glob(os.path.join(root, "**", "part-*.avro"), recursive=True):
        rel = os.path.relpath(path, root).split(os.sep)
        table = "/".join(p for p in rel[:-1] if not p.startswith(("dt=", "hour=")))
        partition = "/".join(p for p in rel[:-1] if p.startswith(("dt=", "hour=")))
        by_table.setdefault(table, []).append((partition, path))
    out = {}
    for table, parts in by_table.items():
        rows = []
        for partition in sorted(set(p for p, _ in parts)):
            paths = sorted(x for p, x in parts if p == partition)
            for i in range(0, len(paths), 500):
                r = subprocess.run([bin_, "inspect"] + paths[i:i + 500], capture_output=True)
                assert r.returncode == 0, r.stderr.decode()[-2000:]
                rows.extend(partition + " " + l for l in r.stdout.decode().splitlines())
        rows.sort()
        out[table] = rows
    return out


def frames(path):
    """(ts, key, value) of every frame of a record file (the file form of a topic)."""
    import struct
    data = open(path, "rb").read()
    i, res = 0, []
    while i + 28 <= len(data):
        assert data[i:i + 4] == b"\xf7LR\xfe", "bad frame marker in %s at %d" % (path, i)
        klen, vlen, ts = struct.unpack_from("<IIq", data, i + 4)
        k = data[i + 24:i + 24 + klen]
        v = data[i + 24 + klen:i + 24 + klen + vlen]
        res.append((ts, k, v))
        i += 28 + klen + vlen
    return res


def topic_files_rows(root):
    """{topic: sorted [(ts, key, value)]} of the record-file topics under root/kafka."""
    out = {}
    for path in glob.glob(os.path.join(root, "kafka", "*", "part-*.rec")):
        topic = os.path.basename(os.path.dirname(path))
        out.setdefault(topic, []).extend(frames(path))
    for v in out.values():
        v.sort()
    return out


def run_with_kills(cmd, kills, rng, env=None, progress=b"component=checkpoint completed",
                   log=None, max_restarts=400, max_delay=0.6, after_delay=0.2):
    """Runs cmd until it exits 0, killing it with SIGKILL `kills` times first. 30% of the kills
    wait for a new progress line on stderr (a checkpoint) and come 0..after_delay s after it, so they
    land during commits and publishes; the others come at a random 0..max_delay s after the
    start, so they land during restores, processing and checkpoint writes. Returns (kills done,
    starts, the last run's stdout); kills done is less than asked only when the job finished
    before the kill came."""
    import selectors
    done = starts = 0
    while True:
        starts += 1
        assert starts <= max_restarts, "too many restarts"
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if done < kills:
            after_line = rng.random() < 0.3
            delay = rng.random() * (after_delay if after_line else max_delay)
            sel = selectors.DefaultSelector()
            sel.register(p.stderr, selectors.EVENT_READ)
            buf, start = b"", time.monotonic()
            deadline = start + 120
            while p.poll() is None and time.monotonic() < deadline:
                if after_line and progress in buf:
                    break
                if not after_line and time.monotonic() - start >= delay:
                    break
                if sel.select(timeout=0.02):
                    chunk = os.read(p.stderr.fileno(), 65536)
                    if not chunk:
                        break
                    buf += chunk
            if after_line:
                time.sleep(delay)
            sel.close()
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
                p.stdout.read()
                p.stderr.read()
                done += 1
                if log:
                    log("kill %d (%s)" % (done, "after a checkpoint" if after_line else "at random"))
                continue
        out, err = p.communicate()
        if p.returncode != 0:
            raise AssertionError("run failed (%d): %s" % (p.returncode, err.decode()[-3000:]))
        return done, starts, out.decode()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_line(path, prefix, proc, timeout=30):
    """Polls a process's output file for a line starting with prefix (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            for line in open(path):
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("no %s line in %s" % (prefix, path))


class Resp:
    """A minimal RESP client (enough for SCAN, TYPE, HGETALL, TTL, SELECT)."""

    def __init__(self, port, db=0):
        import socket
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
        if db:
            self.cmd("SELECT", str(db))

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._reply()

    def _reply(self):
        line = self.f.readline()[:-2]
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def dump(self):
        """{key: (sorted hash items, has a TTL)} of the selected db."""
        keys, cursor = [], b"0"
        while True:
            cursor, batch = self.cmd("SCAN", cursor, "COUNT", "1000")
            keys.extend(batch)
            if cursor == b"0":
                break
        out = {}
        for k in keys:
            typ = self.cmd("TYPE", k)
            if typ == b"hash":
                items = self.cmd("HGETALL", k)
                val = sorted(zip(items[::2], items[1::2]))
            else:
                val = typ
            out[k] = (val, self.cmd("TTL", k) > 0)
        return out

    def close(self):
        self.s.close()


def kafka_records(bootstrap, topic):
    """Every record of topic (all partitions, from the start to the end): a list of
    (partition, offset, key, value, headers dict)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "crash-test-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    eof, out = set(), []
    deadline = time.monotonic() + 60
    while len(eof) < len(parts) and time.monotonic() < deadline:
        for m in c.consume(num_messages=10000, timeout=0.2):
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    eof.add(m.partition())
                    continue
                raise RuntimeError(str(m.error()))
            out.append((m.partition(), m.offset(), m.key(), m.value(), dict(m.headers() or [])))
    c.close()
    assert len(eof) == len(parts), "topic %s not read to its end" % topic
    return out


def committed_and_ends(bootstrap, group, topic):
    """{partition: (committed offset of group, end offset)} of topic."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    parts = [TopicPartition(topic, p) for p in sorted(md.topics[topic].partitions)]
    out = {}
    for tp in c.committed(parts, timeout=10):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
        out[tp.partition] = (tp.offset, hi)
    c.close()
    return out


def start_kafka_local(work, procs, topics):
    """Starts `logproc kafka-local` on a free loopback port with the given "name:partitions"
    topics (its output in work/kafka.out), adds it to procs, and returns its bootstrap address."""
    port = free_port()
    args = [os.environ.get("LOGPROC_BIN", "logproc"), "kafka-local", "--port", str(port)]
    for t in topics:
        args += ["--topic", t]
    path = os.path.join(work, "kafka.out")
    kl = subprocess.Popen(args, stdout=open(path, "w"), stderr=subprocess.STDOUT)
    procs.append(kl)
    return wait_line(path, "BOOTSTRAP=", kl)


def stop_all(procs):
    """Terminates the processes a test started (those still running), then kills stragglers."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def start_s3server(datadir, bucket="test", port=0):
    """Starts s3rver v5 (tools/testenv/s3server.js, which checks SigV4 signatures) on a free
    loopback port with one bucket. Returns (process, port). Its absence is a failure: scripts/
    deps.sh installs it."""
    import select
    src = os.environ.get("LOGPROC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
    testenv = os.path.join(src, "tools", "testenv")
    if not os.path.isdir(os.path.join(testenv, "node_modules", "@20minutes", "s3rver")):
        raise SystemExit("s3rver is not installed in tools/testenv: run scripts/deps.sh")
    p = subprocess.Popen(["node", os.path.join(testenv, "s3server.js"), datadir, str(port), bucket],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if r:
            line = p.stdout.readline()
            break
    if not line.startswith("listening "):
        p.kill()
        raise SystemExit("s3server did not start: %r %s" % (line, p.stderr.read()))
    return p, int(line.split()[1])
