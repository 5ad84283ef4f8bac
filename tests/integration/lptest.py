"""Shared helpers for logproc's Python integration tests (run with Debian's /usr/bin/python3).

An independent record-file writer (from docs/FORMATS.md, not from our C code), an Avro table
reader on python3-avro, and a tiny check collector so a test reports every failure it finds.
"""
import glob
import os
import struct
import subprocess
import sys
import tempfile

import avro.datafile
import avro.io

BIN = os.environ.get("LOGPROC_BIN", "logproc")
DATA = os.environ.get("LOGPROC_TEST_DATA", os.path.join(os.path.dirname(__file__), "..", "data"))

_TABLE = []
for _b in range(256):
    _c = _b
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    for x in data:
        c = (c >> 8) ^ _TABLE[(c ^ x) & 0xFF]
    return c ^ 0xFFFFFFFF


SYNC = b"\xF7LR\xFE"


def frame(ts, key, value):
    """One record-file frame: sync, lengths, timestamp, header CRC, key, value, frame CRC."""
    head = SYNC + struct.pack("<IIq", len(key), len(value), ts)
    head += struct.pack("<I", crc32c(head))
    body = head + key + value
    return body + struct.pack("<I", crc32c(body))


def event_key(platform, log_user_id):
    return struct.pack("<Q", platform) + log_user_id.encode()


def read_table(root, table):
    """Every record of every published part of <root>/<table>, and the part paths.
    Hidden (dot) files are skipped, as readers of the layout do."""
    parts = sorted(glob.glob(os.path.join(root, table, "**", "part-*"), recursive=True))
    rows = []
    for p in parts:
        with open(p, "rb") as f:
            rows.extend(avro.datafile.DataFileReader(f, avro.io.DatumReader()))
    return rows, parts


def run(args, check=True):
    p = subprocess.run([BIN] + args, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit("logproc %s failed (%d):\n%s" % (" ".join(args), p.returncode, p.stderr))
    return p


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL:", what, file=sys.stderr)

    def eq(self, got, want, what):
        self.check(got == want, "%s: got %r, want %r" % (what, got, want))

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed or not self.passed else 0)


def workdir(name):
    return tempfile.mkdtemp(prefix=name + ".")
