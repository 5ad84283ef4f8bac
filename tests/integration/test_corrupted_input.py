"""10^5 corrupted records mixed into valid traffic (issue 7): the valid outputs equal a clean
run's, and every corrupted record is accounted for in the side outputs.

The valid traffic is the generator's local profile (20 users, 3,163 LogRequests). Into its record
file go 100,000 corrupted records, in runs between the valid frames, of two families:

- frame-level (50,000), each a bad span of the reader (docs/FORMATS.md, "Reading"): garbage
  without a sync marker; a frame whose header CRC fails; a frame whose payload CRC fails; a frame
  over --maxRecordBytes;
- payload-level (50,000): a frame that verifies but whose value is not a LogRequest (a field with
  wire type 7, a length past the end of the message, a truncated varint, a group end tag).

Every frame-level corruption is followed by a frame with a verified header (the reader then
resyncs on it, so each corruption is exactly one bad span), and payload-corrupt frames carry the
timestamp of the valid frame before them (so they cannot move the watermark).

raw-output and flat-output run on the clean and on the mixed file. Then:
- every raw table but invalid-record, and every etl table, equals the clean run's row for row;
- invalid-record (raw-output) and etl_side/invalid_record (flat-output) have exactly 100,000
  rows: one per corruption, at its byte offset, with the error its kind predicts;
- the jobs exit 0.
"""
import json
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
from lptest import SYNC, Checks, crc32c, frame, read_table, run, workdir  # noqa: E402

c = Checks()
work = workdir("test_corrupted_input")
rng = random.Random(7)
N_FRAME, N_PAYLOAD = 50_000, 50_000
MAX_RECORD = 4096

clean = os.path.join(work, "clean.rec")
run(["generate", "logs", "--profile", "local", "--users", "20", "--output", clean])
valid = crashlib.frames(clean)


def garbage():
    n = rng.randint(1, 64)
    b = bytes(rng.randrange(256) for _ in range(n))
    return b.replace(SYNC[:1], b"\x00")  # no marker byte: never a frame start


def bad_header(ts, key, value):
    f = bytearray(frame(ts, key, value))
    f[20] ^= 0xFF  # inside header_crc
    return bytes(f)


def bad_payload_crc(ts, key, value):
    f = bytearray(frame(ts, key, value))
    f[-1] ^= 0xFF
    return bytes(f)


def over_limit(ts, key):
    return frame(ts, key, b"\x0a" + b"x" * MAX_RECORD)


NOT_PROTOBUF = [
    b"\x0f\x01",                 # field 1, wire type 7
    b"\x0a\xff\x01abc",          # length 255, 3 bytes left
    b"\x08\xff\xff\xff",         # truncated varint
    b"\x0c",                     # end group without a start
]

FRAME_KINDS = [
    ("garbage", "no sync marker"),
    ("header", "header_crc mismatch"),
    ("payload_crc", "frame_crc mismatch"),
    ("over_limit", "over --maxRecordBytes"),
]

# Layout: each valid frame is preceded by a run of corruptions: pairs (frame-level, then
# payload-level), so every frame-level corruption is followed by a verified header.
pairs_per_gap = [0] * len(valid)
for _ in range(N_FRAME):
    pairs_per_gap[rng.randrange(1, len(valid))] += 1
out = bytearray()
expected = []  # (offset, family, expected error fragment)
key = struct.pack("<Q", 1) + b"corrupt"
for i, (ts, k, v) in enumerate(valid):
    prev_ts = valid[i - 1][0] if i else ts
    for _ in range(pairs_per_gap[i]):
        kind, err = FRAME_KINDS[rng.randrange(len(FRAME_KINDS))]
        off = len(out)
        if kind == "garbage":
            out += garbage()
        elif kind == "header":
            out += bad_header(prev_ts, key, b"\x08\x01")
        elif kind == "payload_crc":
            out += bad_payload_crc(prev_ts, key, b"\x08\x01")
        else:
            out += over_limit(prev_ts, key)
        expected.append((off, "frame", err))
        off = len(out)
        out += frame(prev_ts, key, NOT_PROTOBUF[rng.randrange(len(NOT_PROTOBUF))])
        expected.append((off, "payload", ""))
    out += frame(ts, k, v)
mixed = os.path.join(work, "mixed.rec")
with open(mixed, "wb") as f:
    f.write(out)
c.eq(len(expected), N_FRAME + N_PAYLOAD, "corrupted records written")


def canon(rows):
    return sorted(json.dumps(r, sort_keys=True, default=repr) for r in rows)


def tables(root):
    res = []
    for d, _, files in os.walk(root):
        if any(f.startswith("part-") for f in files):
            rel = os.path.relpath(d, root).split(os.sep)
            cut = next((i for i, p in enumerate(rel) if p.startswith("dt=") or p.startswith("hour=")), len(rel))
            res.append("/".join(rel[:cut]))
    return sorted(set(res))


def check_invalid(rows, job):
    c.eq(len(rows), N_FRAME + N_PAYLOAD, job + ": one invalid-record row per corruption")
    by_off = {}
    for r in rows:
        off = r.get("offset")
        by_off[off] = r
    missing = [e for e in expected if e[0] not in by_off]
    c.eq(missing[:3], [], job + ": every corruption's offset has its row")
    wrong = []
    for off, family, frag in expected:
        r = by_off.get(off)
        if r is None:
            continue
        text = json.dumps(r, default=repr)
        if family == "frame" and frag not in text:
            wrong.append((off, frag, text[:200]))
        if family == "payload" and "no sync" in text:
            wrong.append((off, "a decode error", text[:200]))
    c.eq(wrong[:3], [], job + ": each row names its corruption")


for job, invalid_table in (("raw-output", "raw-side/invalid-record"), ("flat-output", "etl_side/invalid_record")):
    outs = {}
    for name, path in (("clean", clean), ("mixed", mixed)):
        root = os.path.join(work, job + "-" + name)
        p = run(["run", job, "--source", path, "-o", root, "--maxRecordBytes", str(MAX_RECORD)], check=False)
        c.eq(p.returncode, 0, "%s on the %s file exits 0 (%s)" % (job, name, p.stderr[-300:]))
        outs[name] = root
    main_tables = [t for t in tables(outs["clean"]) if t != invalid_table and not t.startswith("kafka")]
    c.check(len(main_tables) >= 3, "%s: %d tables to compare" % (job, len(main_tables)))
    c.eq(sorted(t for t in tables(outs["mixed"]) if t != invalid_table and not t.startswith("kafka")),
         main_tables, job + ": the mixed run writes the same tables")
    for t in main_tables:
        a, _ = read_table(outs["clean"], t)
        b, _ = read_table(outs["mixed"], t)
        c.check(len(a) > 0 and canon(a) == canon(b), "%s %s: %d rows equal the clean run's (%d)" % (job, t, len(b), len(a)))
    kc = crashlib.topic_files_rows(outs["clean"])
    km = crashlib.topic_files_rows(outs["mixed"])
    c.check(kc == km, job + ": the topic records equal the clean run's")
    rows, _ = read_table(outs["mixed"], invalid_table)
    check_invalid(rows, job)
    clean_rows, _ = read_table(outs["clean"], invalid_table) if os.path.isdir(os.path.join(outs["clean"], invalid_table)) else ([], [])
    c.eq(len(clean_rows), 0, job + ": the clean run has no invalid records")

c.done()
