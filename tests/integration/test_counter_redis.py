"""The counter job against a real redis-server on loopback (spec/other-jobs.md §B).

1. Generated logs -> flat-output -> the joined-event record file, plus one marker event 40
   minutes after the data (its own keys), -> `logproc run counter --no-drain
   --redisUrl=redis://127.0.0.1:P/1`: the job stops at the marker's watermark, so the state read
   back is the one of that instant (the counts of the windows ending on the hour are written,
   none has decayed yet).
   The keys, fields, values and TTLs read back equal those predicted from the joined events by
   the rules of §B.3-§B.10 (computed here, from the spec, with python3-protobuf): platform-device,
   content-device, log-user, query, content-query and last-time-log-user-event exactly, and the
   last-time-log-user-query entries as far as the top-query gate lets them through (each must be
   a prediction). The start-up metadata hashes are checked too.
   With --wipe and a checkpoint store, a second run restores the final checkpoint and leaves
   Redis as the first left it (FLUSHDB is for a fresh start only).
2. The same run without a URL writes a RESP file; `redis-cli --pipe` loads it into a fresh
   database, whose contents equal the direct run's.
3. Redis down at start: the job waits; when it logs its first retry the server is started, and
   the final contents equal the direct run's.
4. Redis stopped mid-run: the job talks to the server through a small proxy here that forwards a
   fixed number of command bytes (cutting a batch in the middle), then stops the server with
   SHUTDOWN SAVE and drops the connection. When the job logs a retry the server is started again
   from its dump, and the final contents equal the direct run's.
Nothing sleeps to synchronise: servers are polled for PING a bounded number of times, and the
job's retries are seen in its log.
"""
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

from lptest import BIN, Checks, event_key, frame, run, workdir

c = Checks()
work = workdir("test_counter_redis")
SRC = os.environ.get("LOGPROC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))

# ---- a tiny RESP client ----


class Redis:
    def __init__(self, port, db=0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        if db:
            self.cmd("SELECT", str(db))

    def close(self):
        self.s.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._reply()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """redis-server on a loopback port, in its own directory."""

    def __init__(self, port, name):
        self.port = port
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "redis.log"), "a")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(400):  # bounded polling for PING
            try:
                r = Redis(self.port)
                ok = r.cmd("PING") == b"PONG"
                r.close()
                if ok:
                    return
            except (OSError, ConnectionError):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.025)
        raise SystemExit("redis-server on port %d did not answer PING" % self.port)

    def stop(self, save=False):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            r = Redis(self.port)
            r.s.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$%d\r\n%s\r\n" % ((4, b"SAVE") if save else (6, b"NOSAVE")))
            try:
                r._reply()
            except (ConnectionError, OSError):
                pass
            r.close()
        except OSError:
            pass
        self.proc.wait(timeout=30)
        self.log.close()


def dump(port, db):
    """Every key of db: {key: (type, {field: value} or value, ttl)}."""
    r = Redis(port, db)
    out = {}
    cursor = b"0"
    while True:
        cursor, keys = r.cmd("SCAN", cursor, "COUNT", "1000")
        for k in keys:
            t = r.cmd("TYPE", k)
            val = r.cmd("HGETALL", k) if t == b"hash" else None
            h = dict(zip(val[::2], val[1::2])) if val is not None else None
            out[k] = (t, h, r.cmd("TTL", k))
        if cursor == b"0":
            break
    r.close()
    return out


def same_state(a, b, what):
    """Equal keys, fields and values; TTLs equal within a minute (they count down)."""
    c.eq(sorted(a), sorted(b), what + ": the same keys")
    diff = [k for k in a if k in b and (a[k][0], a[k][1]) != (b[k][0], b[k][1])]
    c.eq(diff[:3], [], what + ": the same fields and values")
    ttl = [k for k in a if k in b and (a[k][2] < 0) != (b[k][2] < 0) or
           (k in b and a[k][2] >= 0 and abs(a[k][2] - b[k][2]) > 60)]
    c.eq(ttl[:3], [], what + ": the same TTLs")


# ---- input: generated logs through flat-output ----

logs = os.path.join(work, "logs.rec")
run(["generate", "logs", "--profile=local", "--output", logs])
flat = os.path.join(work, "flat")
run(["run", "flat-output", "--source", logs, "-o", flat, "--combineDeliveryLogWindow=PT5S",
     "--viewInsertionJoinMax=PT20S", "--insertionImpressionJoinMax=PT20S",
     "--impressionActionJoinMax=PT20S"])
topic = os.path.join(flat, "kafka", "metrics.default.joined-event")
parts = sorted(p for p in os.listdir(topic) if p.startswith("part-"))
c.eq(len(parts), 1, "flat-output wrote one joined-event part")
joined = os.path.join(topic, parts[0])

# ---- the prediction, from the spec ----

gen = os.path.join(work, "py")
os.makedirs(gen)
protos = []
for d, _, files in os.walk(os.path.join(SRC, "proto")):
    protos += [os.path.relpath(os.path.join(d, f), os.path.join(SRC, "proto")) for f in files if f.endswith(".proto")]
subprocess.run(["protoc", "-I", os.path.join(SRC, "proto"), "-I", "/usr/include", "--python_out=" + gen] + protos,
               check=True)
sys.path.insert(0, gen)
from logproc import join_pb2  # noqa: E402


def frames(path):
    b = open(path, "rb").read()
    i = 0
    while i < len(b):
        k, v, ts = struct.unpack_from("<IIq", b, i + 4)
        yield ts, b[i + 24 + k:i + 24 + k + v]
        i += 28 + k + v


XXP1, XXP2, XXP3, XXP4, XXP5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                                0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
M64 = (1 << 64) - 1


def xxh64(data, seed=0):
    """xxHash64, from its specification."""
    rotl = lambda x, r: ((x << r) | (x >> (64 - r))) & M64
    rnd = lambda acc, lane: (rotl((acc + lane * XXP2) & M64, 31) * XXP1) & M64
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + XXP1 + XXP2) & M64, (seed + XXP2) & M64, seed, (seed - XXP1) & M64]
        while i + 32 <= n:
            for j in range(4):
                v[j] = rnd(v[j], struct.unpack_from("<Q", data, i + 8 * j)[0])
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & M64
        for j in range(4):
            h = ((h ^ rnd(0, v[j])) * XXP1 + XXP4) & M64
    else:
        h = (seed + XXP5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h = ((rotl(h ^ rnd(0, struct.unpack_from("<Q", data, i)[0]), 27) * XXP1) + XXP4) & M64
        i += 8
    if i + 4 <= n:
        h = ((rotl(h ^ ((struct.unpack_from("<I", data, i)[0] * XXP1) & M64), 23) * XXP2) + XXP3) & M64
        i += 4
    while i < n:
        h = (rotl(h ^ ((data[i] * XXP5) & M64), 11) * XXP1) & M64
        i += 1
    h ^= h >> 33
    h = (h * XXP2) & M64
    h ^= h >> 29
    h = (h * XXP3) & M64
    return h ^ (h >> 32)


assert "%x" % xxh64(b"query two") == "41809fa5f00aefaa"

# uap-core's families of the generator's two user agents
FAMILIES = {
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/96.0.4664.110 Safari/537.36": ("Mac OS X", "Chrome"),
    "Mozilla/5.0 (Linux; Android 7.0; SM-G930V Build/NRD90M) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/59.0.3071.125 Mobile Safari/537.36": ("Android", "Chrome Mobile"),
    "": ("Other", "Other"),
}
J, U, Q = b"\x1f", b"\x1du", b"\x1dq"
T_ITEM_DEVICE, T_LOG_USER = 129 << 13, 151 << 13
T_QUERY, T_ITEM_QUERY = 166 << 13, 177 << 13
T_LU_ITEM, T_LU_ITEM_AGO, T_LU_QUERY, T_LU_QUERY_AGO = 164 << 13, 165 << 13, 190 << 13, 191 << 13
WINDOWS = (2, 4, 6, 8)  # HOUR, DAY, DAY_7, DAY_30


def first(*vals):
    for v in vals:
        if v:
            return v
    return vals[-1]


def first_blank(*vals):
    for v in vals:
        if v.strip():
            return v
    return vals[-1]


events = []
for ts, value in frames(joined):
    e = join_pb2.JoinedEvent()
    e.ParseFromString(value)
    platform = first(e.ids.platform_id, e.user.platform_id, e.view.platform_id, e.request.platform_id,
                     e.response_insertion.platform_id, e.impression.platform_id, e.action.platform_id)
    luid = first_blank(e.ids.log_user_id, e.user.user_info.log_user_id, e.view.user_info.log_user_id,
                       e.request.user_info.log_user_id, e.response_insertion.user_info.log_user_id,
                       e.impression.user_info.log_user_id, e.action.user_info.log_user_id)
    content = first_blank(e.response_insertion.content_id, e.api_execution_insertion.content_id,
                          e.impression.content_id, e.action.content_id)
    eat = first(*[m.timing.event_api_timestamp for m in (e.action, e.impression, e.response_insertion,
                                                       e.request, e.view, e.session, e.user)])
    lts = first(*[m.timing.log_timestamp for m in (e, e.action, e.impression, e.api_execution_insertion,
                                                 e.response_insertion, e.request, e.view, e.session,
                                                 e.user)])
    if not e.HasField("action") and e.HasField("impression"):
        metric = 32
    else:
        at = e.action.action_type
        metric = 0 if at == 1 or at > 19 else at << 5
    count = e.action.single_cart_content.quantity if e.action.HasField("single_cart_content") else 1
    q = e.request.search_query.lower()
    os_f, ua_f = FAMILIES[e.request.device.browser.user_agent]
    # stream U (§B.2): the reduced copy's view of the event
    has_imp = e.HasField("impression") and e.impression.content_id != ""
    if e.HasField("action"):
        u_metric = metric
    else:
        u_metric = 32 if has_imp else 0
    u_eat = first(e.timing.event_api_timestamp if e.HasField("action") else 0,
                  e.response_insertion.timing.event_api_timestamp, e.user.timing.event_api_timestamp)
    u_content = first_blank(e.response_insertion.content_id, "", e.impression.content_id if has_imp else "",
                            e.action.content_id if e.HasField("action") else "")
    u_luid = first_blank(e.ids.log_user_id, e.user.user_info.log_user_id,
                         e.response_insertion.user_info.log_user_id, "")
    events.append(dict(p=platform, luid=luid.encode(), content=content.encode(), eat=eat, lts=lts,
                       metric=metric, count=count, q=q, hash=b"%x" % xxh64(q.encode()),
                       os=os_f.encode(), ua=ua_f.encode(), u_metric=u_metric, u_eat=u_eat,
                       u_content=u_content.encode(), u_luid=u_luid))

HOUR = 3600000
start = min(e["eat"] for e in events)
hour_end = start - start % HOUR + HOUR
c.check(len(events) > 500, "the joined-event file holds the local profile's events")
c.check(all(hour_end - HOUR < e["eat"] < hour_end and e["lts"] < hour_end and
            (hour_end - HOUR < e["u_eat"] < hour_end or e["u_eat"] == 0) for e in events),
        "the events lie in one hour and one 4-hour window (the prediction relies on it)")
# flat-output's joined impressions carry no response_insertion.timing, so on stream U their event
# time is 0 (§B.2: it comes from response_insertion): their counts fall in 1970 windows that are
# dropped at the first timer, and their last-time entries are cleaned up at once (the cleanup
# timer is not before the record time): nothing of them is left
u_events = [e for e in events if e["u_eat"]]
c.check(0 < len(u_events) < len(events), "stream U keeps the actions and loses the impressions")
MARK = hour_end + 40 * 60000  # the marker's time: the windows ending at hour_end have fired

# the marker: a NAVIGATE of its own log user and content, 40 minutes after the data
m = join_pb2.JoinedEvent()
m.ids.platform_id = 1
m.ids.log_user_id = "marker-user"
m.timing.log_timestamp = m.timing.event_api_timestamp = MARK
m.action.action_type = 2
m.action.content_id = "marker-content"
m.action.timing.log_timestamp = m.action.timing.event_api_timestamp = MARK
m.request.search_query = "marker query"
source = os.path.join(work, "joined-and-marker.rec")
with open(joined, "rb") as f, open(source, "wb") as g:
    g.write(f.read())
    g.write(frame(MARK + 20000, event_key(1, "marker-user"), m.SerializeToString()))


def avro_long(v):
    u = (v << 1) ^ (v >> 63)
    out = b""
    while u >= 0x80:
        out += bytes([(u & 0x7F) | 0x80])
        u >>= 7
    return out + bytes([u])


def luu_datum(platform, ts, luid, uid):
    return (avro_long(platform) + avro_long(ts) + avro_long(len(luid)) + luid + avro_long(len(uid)) +
            uid)


# LogUserUser: every log user is user "user-<first 8 characters>" from a minute before the data;
# one more, after the marker, carries the LogUserUser watermark past everything
users = {}
for e in events:
    users[(e["p"], e["u_luid"])] = ("user-" + e["u_luid"][:8]).encode()
luu = os.path.join(work, "log-user-user.rec")
with open(luu, "wb") as g:
    for (p, lu), uid in sorted(users.items()):
        g.write(frame(start - 60000, event_key(p, lu), luu_datum(p, start - 60000, lu.encode(), uid)))
    g.write(frame(MARK + 60000, event_key(1, "nobody"), luu_datum(1, MARK + 60000, b"nobody", b"none")))


def add(state, key, field, v):
    state.setdefault(key, {})
    state[key][field] = state[key].get(field, 0) + v


def dec(p):
    return str(p).encode()


counts, expected_ttl = {}, {}
for e in events:
    P = dec(e["p"])
    dev = e["os"] + J + e["ua"] + J
    for w in WINDOWS:
        add(counts, P, dev + dec(T_ITEM_DEVICE | e["metric"] | w), e["count"])
        add(counts, P + J + e["content"], dev + dec(T_ITEM_DEVICE | e["metric"] | w), e["count"])
        add(counts, P + J + U + J + e["luid"], dec(T_LOG_USER | e["metric"] | w), e["count"])
        add(counts, P + J + Q + J + e["hash"], dec(T_QUERY | e["metric"] | w), e["count"])
        add(counts, P + J + e["content"] + J + Q + J + e["hash"], dec(T_ITEM_QUERY | e["metric"] | w), e["count"])
    expected_ttl[P] = -1
    for k in (P + J + e["content"], P + J + U + J + e["luid"], P + J + Q + J + e["hash"],
              P + J + e["content"] + J + Q + J + e["hash"]):
        expected_ttl[k] = 5184000
last_time = {}
for e in events:
    k = dec(e["p"]) + J + U + J + e["luid"] + J + e["content"]
    add(last_time, k, dec(T_LU_ITEM | e["metric"] | 10), 1)
    last_time[k][dec(T_LU_ITEM_AGO | e["metric"])] = e["eat"]  # the last processed event's
    expected_ttl[k] = 8035200
T_USER, T_U_ITEM, T_U_ITEM_AGO, T_U_QUERY, T_U_QUERY_AGO = (140 << 13, 162 << 13, 163 << 13,
                                                            188 << 13, 189 << 13)
u_ago = {}  # last-time user x content: the hours-ago value must be one of these event times
for e in u_events:
    P = dec(e["p"])
    uid = users[(e["p"], e["u_luid"])]
    for w in WINDOWS:
        add(counts, P + J + U + J + uid, dec(T_USER | e["u_metric"] | w), 1)
    expected_ttl[P + J + U + J + uid] = 5184000
    k = P + J + U + J + uid + J + e["u_content"]
    add(last_time, k, dec(T_U_ITEM | e["u_metric"] | 10), 1)
    u_ago.setdefault(k, {}).setdefault(dec(T_U_ITEM_AGO | e["u_metric"]), set()).add(e["u_eat"])
    last_time[k][dec(T_U_ITEM_AGO | e["u_metric"])] = e["u_eat"]
    expected_ttl[k] = 8035200
mk = b"1" + J + U + J + b"marker-user" + J + b"marker-content"
last_time[mk] = {dec(T_LU_ITEM | 64 | 10): 1, dec(T_LU_ITEM_AGO | 64): MARK}
expected_ttl[mk] = 8035200
predicted = {}
for src in (counts, last_time):
    for k, fields in src.items():
        h = {f: str(v).encode() for f, v in fields.items() if v != 0}
        if h:
            predicted[k] = h

# ---- 1. direct run ----

ARGS = ["--counterOutputStartTimestamp=1", "--no-drain", "--logUserUserSource=" + luu,
        "--searchQueryWindowMinThreshold=2", "--searchQueryWindowSize=P1D",
        "--searchQueryWindowSlide=PT1H", "--redisTimeout=PT5S", "--redisRetryMaxBackoff=PT0.2S",
        "--redisRetryTimeout=PT2M", "--runId=0000c0de"]
port = free_port()
server = Server(port, "direct")
server.start()
p = run(["run", "counter", "--source", source, "-o", os.path.join(work, "out1"), "--wipe",
         "--redisUrl=redis://127.0.0.1:%d/1" % port] + ARGS)
c.check("start-up metadata written" in p.stderr, "the job logs the metadata write")
base = dump(port, 1)

meta_rows = base.pop(b"\x1d\x1frow_format", (None, {}, None))
meta_ids = base.pop(b"\x1d\x1ffeature_ids", (None, {}, None))
c.eq(meta_rows[1].get(b"platform-device"), b"os,user_agent,fid:value", "row_format of platform-device")
c.eq(meta_rows[1].get(b"log-user"), b"fid:value", "row_format of log-user")
c.eq(len(meta_rows[1]), 10, "row formats of the ten tables")
cd = meta_ids[1].get(b"content-device", b"").split(b",")
c.check(len(cd) == 80 and b"1056834" in cd, "feature_ids of content-device: 80 ids with 1056834")
c.eq(meta_rows[2], -1, "the metadata keys do not expire")

lt_query = {k: v for k, v in base.items() if J + Q + J in k and k.split(J)[1] == U}
got = {k: v[1] for k, v in base.items() if k not in lt_query}
c.eq(sorted(got), sorted(predicted), "the keys predicted from the joined events")
# the last-time user x content timestamp is the last processed event's, and the join releases
# events by watermark, not in file order: it must be one of the key's event times
for k, fields in u_ago.items():
    for f, times in fields.items():
        if k in got and f in got[k] and int(got[k][f]) in times:
            predicted[k][f] = got[k][f]
wrong = [(k, got[k], predicted[k]) for k in predicted if k in got and got[k] != predicted[k]]
c.eq(wrong[:2], [], "every field and value as predicted")
ttl_wrong = [(k, base[k][2]) for k in predicted if k in base and not (
    base[k][2] == -1 if expected_ttl[k] < 0 else expected_ttl[k] - 120 <= base[k][2] <= expected_ttl[k])]
c.eq(ttl_wrong[:3], [], "TTLs: platform keys none, counts 5184000, last-time 8035200")
c.check(any(k.startswith(b"1" + J + b"i-") for k in got), "content-device keys are written")
c.check(any(k.startswith(b"1" + J + U + J + b"user-") for k in got), "user keys are written")

# the last-time log-user query table: what passed the gate must be a prediction
lq = {}
for e in events:
    k = dec(e["p"]) + J + U + J + e["luid"] + J + Q + J + e["hash"]
    lq.setdefault(k, {}).setdefault(e["metric"], []).append(e["eat"])
    k = dec(e["p"]) + J + U + J + users[(e["p"], e["u_luid"])] + J + Q + J + e["hash"]
    lq.setdefault(k, {}).setdefault(e["u_metric"], []).append(e["u_eat"])
bad = []
for k, (t, h, ttl) in lt_query.items():
    user = k.split(J)[2].startswith(b"user-")
    count_type, ago_type = (T_U_QUERY, T_U_QUERY_AGO) if user else (T_LU_QUERY, T_LU_QUERY_AGO)
    for f, v in h.items():
        n = int(f)
        metric = n & (0xff << 5)
        if n == count_type | metric | 10:
            ok = k in lq and 0 < int(v) <= len(lq[k].get(metric, []))
        else:
            ok = n == ago_type | metric and k in lq and int(v) in lq[k].get(metric, [])
        if not ok:
            bad.append((k, f, v))
c.eq(bad[:3], [], "last-time log-user and user query entries are predictions")
c.check(any(k.split(J)[2].startswith(b"user-") for k in lt_query), "last-time user query entries are written")

# ---- 1b. --wipe applies to a fresh start only: a restart from a checkpoint keeps the counts ----

ck = os.path.join(work, "ck-wipe")
wipe_args = ["run", "counter", "--source", source, "-o", os.path.join(work, "out1b"), "--wipe",
             "--checkpointDir", ck, "--redisUrl=redis://127.0.0.1:%d/3" % port] + ARGS
run(wipe_args)
first_state = dump(port, 3)
c.check(len(first_state) > 100, "the checkpointed run wrote %d keys" % len(first_state))
p = run(wipe_args)  # restores the final checkpoint: nothing to replay, nothing to wipe
c.check("restoring task=" in p.stderr, "the second run restores its checkpoint")
same_state(dump(port, 3), first_state, "a restored counter with --wipe keeps what Redis holds")

# ---- 2. the RESP file loaded with redis-cli --pipe ----

out2 = os.path.join(work, "out2")
run(["run", "counter", "--source", source, "-o", out2] + ARGS)
resp = os.path.join(out2, "counter", "redis-commands-0.resp")
c.check(os.path.isfile(resp), "the RESP file is published under <root>/counter/")
c.eq([f for f in os.listdir(os.path.dirname(resp)) if f.startswith(".")], [], "no in-progress file is left")
with open(resp, "rb") as f:
    piped = subprocess.run(["redis-cli", "-p", str(port), "-n", "2", "--pipe"], stdin=f,
                           capture_output=True, text=True)
c.check(piped.returncode == 0 and "errors: 0" in piped.stdout, "redis-cli --pipe loads the file: " + piped.stdout[-200:])
loaded = dump(port, 2)
loaded.pop(b"\x1d\x1frow_format", None)
loaded.pop(b"\x1d\x1ffeature_ids", None)
same_state(loaded, base, "RESP file vs direct run")
run(["run", "counter", "--source", source, "-o", os.path.join(work, "out3")] + ARGS)
with open(resp, "rb") as f1, open(os.path.join(work, "out3", "counter", "redis-commands-0.resp"), "rb") as f2:
    c.check(f1.read() == f2.read(), "the RESP file is the same bytes on every run")
# the reference's local deployment line (§G), with this server for redis-master:6379
G = ("--jobLabel=blue --s3Bucket=promoted-event-logs --sideOutputDebugLogging --wipe "
     "--counterService=redis://127.0.0.1:%d/10 --counterOutputStartTimestamp=1 --startFromEarliest "
     "--parallelism=1 --maxParallelism=1 --procAndEventWatermarkGenerator "
     "--watermarkIdlenessProcessingTimeTrailingDuration=PT1M --checkpointInterval=PT1M" % port).split()
p = run(["run", "counter", "--source", source, "-o", os.path.join(work, "outg")] + G, check=False)
c.eq(p.returncode, 0, "the §G counter line runs (stderr: %s)" % p.stderr[-300:])
g10 = dump(port, 10)
c.check(b"\x1d\x1frow_format" in g10 and b"\x1d\x1ffeature_ids" in g10, "§G: metadata in DB 10")
c.check(not any(k.startswith(b"1" + J) for k in g10), "§G: drained, every count has decayed to a delete")
for flag in ("--s3Bucket",):
    c.eq(len([l for l in p.stderr.splitlines() if "level=warn" in l and flag in l]), 1,
         "§G: one warning names " + flag)
server.stop()


def run_until_retry(args, on_retry):
    """Runs the job; calls on_retry() once when its log shows the first retry. Returns
    (exit status, stderr, retried)."""
    proc = subprocess.Popen([BIN, "run", "counter", "--source", source] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, retried = [], False
    for line in proc.stderr:
        lines.append(line)
        if not retried and "component=redis-sink" in line and "retry attempt=" in line:
            retried = True
            on_retry()
    proc.stdout.read()
    return proc.wait(timeout=300), "".join(lines), retried


def state_without_meta(port, db):
    d = dump(port, db)
    d.pop(b"\x1d\x1frow_format", None)
    d.pop(b"\x1d\x1ffeature_ids", None)
    return d


# ---- 3. down at start ----

port3 = free_port()
server3 = Server(port3, "late")
rc, err, retried = run_until_retry(["-o", os.path.join(work, "out4"), "--wipe",
                                    "--redisUrl=redis://127.0.0.1:%d/1" % port3] + ARGS, server3.start)
c.check(retried, "the job retries while Redis is down at start")
c.eq(rc, 0, "the job finishes once Redis is up (stderr: %s)" % err[-300:])
if rc == 0:
    same_state(state_without_meta(port3, 1), base, "Redis down at start vs uninterrupted")
server3.stop()

# ---- 4. stopped mid-run, through a proxy that cuts a batch ----

port4, pport = free_port(), free_port()
server4 = Server(port4, "midrun")
server4.start()
CUT = os.path.getsize(resp) * 2 // 5  # command bytes forwarded before the server is stopped


class Proxy(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", pport))
        self.ls.listen(4)
        self.sent = 0
        self.cut = False
        self.stopping = False

    def run(self):
        while not self.stopping:
            r, _, _ = select.select([self.ls], [], [], 0.2)
            if not r:
                continue
            cl, _ = self.ls.accept()
            try:
                up = socket.create_connection(("127.0.0.1", port4), timeout=5)
            except OSError:
                cl.close()  # the server is down: the job sees a closed connection and retries
                continue
            self.pump(cl, up)
            cl.close()
            up.close()

    def pump(self, cl, up):
        while True:
            r, _, _ = select.select([cl, up], [], [], 30)
            if not r:
                return
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                if s is cl:
                    if not self.cut and self.sent + len(data) >= CUT:
                        up.sendall(data[:CUT - self.sent])
                        self.sent = CUT
                        self.cut = True
                        server4.stop(save=True)  # the server goes down mid-batch, data saved
                        return
                    self.sent += len(data)
                    up.sendall(data)
                else:
                    cl.sendall(data)


proxy = Proxy()
proxy.start()
rc, err, retried = run_until_retry(["-o", os.path.join(work, "out5"), "--redisBatchCommands=100",
                                    "--redisUrl=redis://127.0.0.1:%d/1" % pport] + ARGS, server4.start)
proxy.stopping = True
proxy.join(timeout=5)
c.check(proxy.cut, "the proxy cut the connection after %d command bytes" % CUT)
c.check(retried, "the job retries after the server stopped mid-run")
c.eq(rc, 0, "the job finishes after the restart (stderr: %s)" % err[-300:])
if rc == 0:
    same_state(state_without_meta(port4, 1), base, "Redis stopped mid-run vs uninterrupted")
server4.stop()
if not c.failed:
    shutil.rmtree(work, ignore_errors=True)
c.done()
