#!/usr/bin/env bash
# logproc inspect: record files written by an independent writer (Python, from the bytes in
# docs/FORMATS.md) print as JSON lines with the right offsets, timestamps, keys and values; bad
# frames print error lines at the right offsets and make the exit status 1; Avro files print as
# JSON objects; --raw on every wire vector equals its .json (the vectors' contract, item 2).
set -euo pipefail
: "${LOGPROC_BIN:?}" "${LOGPROC_TEST_DATA:?}"
work=$(mktemp -d "${TMPDIR:-/tmp}/test_inspect.XXXXXX")
trap 'rm -rf "$work"' EXIT
export WORK="$work"

/usr/bin/python3 - <<'PY'
import base64, json, math, os, struct, subprocess, sys, glob

BIN = os.environ["LOGPROC_BIN"]
DATA = os.environ["LOGPROC_TEST_DATA"]
WORK = os.environ["WORK"]
WIRE = os.path.join(DATA, "vectors", "wire")
failures = []

def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)

# ---- an independent record-file writer, from docs/FORMATS.md ----
TABLE = []
for b in range(256):
    c = b
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    TABLE.append(c)

def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    for x in data:
        c = (c >> 8) ^ TABLE[(c ^ x) & 0xFF]
    return c ^ 0xFFFFFFFF

SYNC = b"\xF7LR\xFE"

def frame(ts, key, value):
    head = SYNC + struct.pack("<IIq", len(key), len(value), ts)
    head += struct.pack("<I", crc32c(head))
    body = head + key + value
    return body + struct.pack("<I", crc32c(body))

def make_key(platform, user):
    return struct.pack("<Q", platform) + user.encode()

def run(*args):
    p = subprocess.run([BIN, "inspect", *args], capture_output=True)
    return p.returncode, p.stdout.decode(), p.stderr.decode()

def lines(out):
    return [json.loads(l) for l in out.splitlines()]

# ---- JSON equality with float tolerance (the vectors' rule) ----
def same(a, b, path="$"):
    if isinstance(a, bool) or isinstance(b, bool):
        return (a is b) or (type(a) is bool and type(b) is bool and a == b) or \
            (print(f"  {path}: {a!r} != {b!r}", file=sys.stderr) and False)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a == b or math.isclose(a, b, rel_tol=1e-6):
            return True
        print(f"  {path}: {a!r} != {b!r}", file=sys.stderr)
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            print(f"  {path}: keys {sorted(set(a) ^ set(b))} differ", file=sys.stderr)
            return False
        return all(same(a[k], b[k], f"{path}.{k}") for k in a)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            print(f"  {path}: {len(a)} items != {len(b)}", file=sys.stderr)
            return False
        return all(same(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b)))
    if a != b:
        print(f"  {path}: {a!r} != {b!r}", file=sys.stderr)
    return a == b

def vector(name):
    with open(os.path.join(WIRE, name + ".pb"), "rb") as f:
        pb = f.read()
    with open(os.path.join(WIRE, name + ".json")) as f:
        js = json.load(f)
    return pb, js

# ---- 1. a good record file ----
v2, j2 = vector("002-impression-action")
v3, j3 = vector("003-nested-struct")
v4, j4 = vector("004-random00")
v0, j0 = vector("000-empty")
records = [
    (1601596151000, make_key(1, "user-1"), v2, {"platformId": "1", "logUserId": "user-1"}, j2),
    (1601596152000, make_key(2**64 - 1, "ü \"q\"\n"), v3,
     {"platformId": "18446744073709551615", "logUserId": "ü \"q\"\n"}, j3),
    (-5, b"", v4, "", j4),                               # empty key: base64 ""
    (0, b"\x01\x02\x03", v0, "AQID", j0),                # short key: base64; empty value: {}
    (7, make_key(3, "") + b"\xff", v2, base64.b64encode(make_key(3, "") + b"\xff").decode(), j2),
]
good = b""
offsets = []
for ts, key, value, _, _ in records:
    offsets.append(len(good))
    good += frame(ts, key, value)
path = os.path.join(WORK, "good.rec")
with open(path, "wb") as f:
    f.write(good)
rc, out, err = run(path)
check(rc == 0, f"good file exits 0 (got {rc}, stderr {err!r})")
got = lines(out)
check(len(got) == len(records), f"good file: {len(got)} lines for {len(records)} records")
for g, off, (ts, _, _, key, js) in zip(got, offsets, records):
    check(g.get("offset") == off, f"offset {g.get('offset')} == {off}")
    check(g.get("timestamp") == ts, f"timestamp {g.get('timestamp')} == {ts}")
    check(g.get("key") == key, f"key {g.get('key')!r} == {key!r}")
    check(same(g.get("value"), js), f"value at {off} equals the vector's JSON")
    check("error" not in g, f"no error at {off}")

# ---- 2. a corrupted copy: garbage, a flipped value bit, a truncated tail ----
f0 = frame(10, make_key(1, "a"), v2)
f1 = frame(11, make_key(1, "b"), v3)
f2 = frame(12, make_key(1, "c"), v4)
f3 = frame(13, make_key(1, "d"), v2)
garbage = b"not a frame" + SYNC + b"\x00" * 30
bad1 = bytearray(f1)
bad1[len(bad1) - 10] ^= 0x04
data = f0 + garbage + bytes(bad1) + f2 + f3[:20]
o_garbage = len(f0)
o_bad1 = o_garbage + len(garbage)
o_f2 = o_bad1 + len(bad1)
o_tail = o_f2 + len(f2)
path = os.path.join(WORK, "bad.rec")
with open(path, "wb") as f:
    f.write(data)
rc, out, err = run(path)
check(rc == 1, f"corrupted file exits 1 (got {rc})")
got = lines(out)
want = [(0, None), (o_garbage, "no sync marker"), (o_bad1, "frame_crc mismatch"), (o_f2, None),
        (o_tail, "truncated frame header")]
check([g["offset"] for g in got] == [w[0] for w in want],
      f"corrupted file offsets {[g['offset'] for g in got]} == {[w[0] for w in want]}")
for g, (off, error) in zip(got, want):
    if error is None:
        check("value" in g and "error" not in g, f"record at {off} prints its value")
    else:
        check(error in g.get("error", ""), f"error at {off}: {g.get('error')!r} has {error!r}")
check(got[1].get("length") == len(garbage), "garbage span length")
check(got[2].get("timestamp") == 11, "a frame whose header verified keeps its timestamp")
check(same(got[3]["value"], j4), "the record after the bad ones is intact")

# ---- 3. a record over --maxRecordBytes ----
path = os.path.join(WORK, "limit.rec")
with open(path, "wb") as f:
    f.write(frame(1, b"k" * 8, v2) + frame(2, b"k" * 8, v4) + frame(3, b"", b""))
check(8 + len(v2) <= 100 < len(v4), "fixture sizes fit the limit test")
rc, out, err = run("--maxRecordBytes=100", path)
got = lines(out)
check(rc == 1, "over-limit file exits 1")
check(len(got) == 3 and got[0].get("timestamp") == 1 and got[2].get("timestamp") == 3,
      "records around the over-limit one are printed")
check(len(got) == 3 and got[1].get("error") == f"value_length {len(v4)} over --maxRecordBytes 100",
      f"over-limit error names field and limit: {got[1] if len(got) > 1 else None}")

# ---- 4. a value that is not a LogRequest ----
path = os.path.join(WORK, "notpb.rec")
with open(path, "wb") as f:
    f.write(frame(1, b"", b"\xff\xff\xff") + frame(2, b"", v2))
rc, out, err = run(path)
got = lines(out)
check(rc == 1, "undecodable value exits 1")
check(len(got) == 2 and "event.LogRequest" in got[0].get("error", "") and
      got[0].get("raw") == base64.b64encode(b"\xff\xff\xff").decode(),
      f"undecodable value is reported with its raw bytes: {got[:1]}")
check(len(got) == 2 and same(got[1].get("value"), j2), "the next record still prints")

# ---- 5. --type picks the message type ----
struct_ab = bytes.fromhex("0a080a016112031a0162")  # Struct {"a": "b"}
path = os.path.join(WORK, "struct.rec")
with open(path, "wb") as f:
    f.write(frame(1, b"", struct_ab))
rc, out, err = run("--type=google.protobuf.Struct", path)
check(rc == 0 and lines(out) and lines(out)[0].get("value") == {"a": "b"},
      f"--type=google.protobuf.Struct prints a Struct: {out!r} {err!r}")
rc, out, err = run("--type=nope.Nothing", path)
check(rc == 2 and "--type" in err, f"unknown --type is a usage error naming the flag: {err!r}")
rc, out, err = run("--type=list")
check(rc == 0 and "event.LogRequest" in out.split() and "delivery.DeliveryLog" in out.split(),
      "--type=list names the generated types")

# ---- 6. empty and missing files ----
path = os.path.join(WORK, "empty.rec")
open(path, "wb").close()
rc, out, err = run(path)
check(rc == 0 and out == "", "an empty file is a record file of no records")
rc, out, err = run(os.path.join(WORK, "missing.rec"))
check(rc == 1 and "missing.rec" in err, f"a missing file names the path: {err!r}")
rc, out, err = run()
check(rc == 2, "no PATH is a usage error")

# ---- 7. Avro object container files ----
import avro.datafile, avro.io, avro.schema
schema = avro.schema.parse(json.dumps({
    "type": "record", "name": "Row", "fields": [
        {"name": "id", "type": "string"}, {"name": "n", "type": "long"},
        {"name": "score", "type": "double"}, {"name": "ok", "type": "boolean"},
        {"name": "tags", "type": {"type": "array", "items": "int"}},
        {"name": "maybe", "type": ["null", "string"]}]}))
rows = [{"id": "r%d" % i, "n": 2**40 + i, "score": i / 3.0, "ok": i % 2 == 0,
         "tags": list(range(i % 4)), "maybe": None if i % 3 else "m%d" % i} for i in range(50)]
path = os.path.join(WORK, "rows.avro")
with open(path, "wb") as f:
    w = avro.datafile.DataFileWriter(f, avro.io.DatumWriter(), schema)
    for r in rows:
        w.append(r)
    w.close()
rc, out, err = run(path)
got = lines(out)
check(rc == 0, f"avro file exits 0 ({err!r})")
check(len(got) == len(rows) and all(same(g, r) for g, r in zip(got, rows)),
      "avro rows print as plain JSON objects (unions unwrapped) equal to what was written")

# ---- 8. --raw on every wire vector equals its .json ----
pbs = sorted(glob.glob(os.path.join(WIRE, "*.pb")))
check(len(pbs) > 100, f"wire vectors present ({len(pbs)})")
for pb in pbs:
    with open(pb[:-3] + ".json") as f:
        want = json.load(f)
    rc, out, err = run("--raw", pb)
    ok = rc == 0 and len(out.splitlines()) == 1
    check(ok and same(json.loads(out), want, os.path.basename(pb)),
          f"--raw {os.path.basename(pb)} equals its .json (rc {rc}, {err.strip()!r})")
rc, out, err = run("--raw", "--maxRecordBytes=10", os.path.join(WIRE, "002-impression-action.pb"))
check(rc == 1 and "--maxRecordBytes 10" in err, f"--raw over the limit names it: {err!r}")

if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("test_inspect: all checks passed")
PY
