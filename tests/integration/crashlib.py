"""Helpers of the crash tests: run a job, kill it with SIGKILL at random moments (after it has
made progress: a new checkpoint line, or a random number of them), restart it until it exits 0,
and read what it published, so the test compares that with an uninterrupted run."""
import glob
import io
import json
import os
import random
import signal
import subprocess
import time

import avro.datafile
import avro.io


def table_rows(root):
    """{table dir relative to root: sorted list of rows as canonical JSON} for every published
    Avro part under root (hidden in-progress parts are skipped, as readers skip them)."""
    out = {}
    for path in glob.glob(os.path.join(root, "**", "part-*.avro"), recursive=True):
        rel = os.path.relpath(path, root).split(os.sep)
        table = "/".join(p for p in rel[:-1] if not p.startswith(("dt=", "hour=")))
        partition = "/".join(p for p in rel[:-1] if p.startswith(("dt=", "hour=")))
        with open(path, "rb") as f:
            reader = avro.datafile.DataFileReader(f, avro.io.DatumReader())
            rows = out.setdefault(table, [])
            for r in reader:
                rows.append(partition + " " + json.dumps(r, sort_keys=True, default=repr))
            reader.close()
    for v in out.values():
        v.sort()
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
                   log=None, max_restarts=200):
    """Runs cmd until it exits 0, killing it with SIGKILL `kills` times. Each kill waits for a
    random number (0..2) of new progress lines on stderr (so it lands after some checkpoint) and
    then a random delay of 0..300 ms, so kills fall before, during and after checkpoints and
    publishes. Returns (number of kills done, total starts, the last run's stdout)."""
    done = starts = 0
    while True:
        starts += 1
        assert starts <= max_restarts, "too many restarts"
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if done < kills:
            want = rng.randint(0, 2)
            seen = 0
            import selectors
            sel = selectors.DefaultSelector()
            sel.register(p.stderr, selectors.EVENT_READ)
            buf = b""
            while seen < want and p.poll() is None:
                if sel.select(timeout=0.5):
                    chunk = os.read(p.stderr.fileno(), 65536)
                    if not chunk:
                        break
                    buf += chunk
                    seen = buf.count(progress)
            time.sleep(rng.random() * 0.3)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
                p.stdout.read()
                p.stderr.read()
                done += 1
                if log:
                    log("kill %d (after %d checkpoint lines)" % (done, seen))
                continue
        out, err = p.communicate()
        if p.returncode != 0:
            raise AssertionError("run failed (%d): %s" % (p.returncode, err.decode()[-3000:]))
        return done, starts, out.decode()
