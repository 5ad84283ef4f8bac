#!/usr/bin/python3
"""Avro files written by logproc, read by an independent reader (Debian's python3-avro with
python3-snappy), compared with the canonical proto3 JSON of the wire vectors.

The files come from the unit-test binary test_avro_roundtrip in helper mode (it sits beside
$LOGPROC_BIN in the build directory): every wire vector as event.LogRequest, once with snappy and
default blocks and once with the null codec and small blocks, plus one file per derived table
(schemas/*.avsc) with fixed rows.

Checks: the reader accepts the header schema and every block; record counts; every Avro field of
every record equals the vector's JSON value (absent JSON keys are the proto3 defaults, enums by
name with unnamed numbers as UNRECOGNIZED, 64-bit values compared modulo 2^64, floats within a
relative 1e-6, bytes from base64, maps and google.protobuf.Struct/Value/ListValue in their JSON
forms); every JSON key has an Avro field; the derived files carry their .avsc and the rows.
"""
import base64
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import avro.datafile
import avro.io
import avro.schema

failures = []
cut_values = 0


def fail(msg):
    failures.append(msg)
    if len(failures) > 50:
        report_and_exit()


def report_and_exit():
    for f in failures[:50]:
        print("FAIL:", f)
    print("%d failure(s)" % len(failures))
    sys.exit(1)


def camel(name):
    """protoc's json_name: drop each '_' and upper-case the next character."""
    return re.sub(r"_(.)", lambda m: m.group(1).upper(), name)


WKT = re.compile(r"^com\.google\.protobuf\.(Struct|Value|ListValue)(\d+)$")


def is_map_entry(schema):
    return (isinstance(schema, avro.schema.RecordSchema) and schema.name.endswith("Entry")
            and [f.name for f in schema.fields] == ["key", "value"])


def parse_number(j):
    if isinstance(j, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(j, None) \
            if j in ("NaN", "Infinity", "-Infinity") else float(j)
    return float(j)


def close(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) or abs(a - b) < 1e-30


def cmp_primitive(t, v, j, path):
    kind = t.type
    if kind == "long" or kind == "int":
        bits = 64 if kind == "long" else 32
        want = int(j) if j is not None else 0
        if not isinstance(v, int) or (v - want) % (1 << bits) != 0:
            fail("%s: %s %r, JSON %r" % (path, kind, v, j))
    elif kind in ("float", "double"):
        want = parse_number(j) if j is not None else 0.0
        if not close(float(v), want):
            fail("%s: %s %r, JSON %r" % (path, kind, v, j))
    elif kind == "boolean":
        if v is not bool(j):
            fail("%s: boolean %r, JSON %r" % (path, v, j))
    elif kind == "string":
        if v != (j if j is not None else ""):
            fail("%s: string %r, JSON %r" % (path, v, j))
    elif kind == "bytes":
        want = b""
        if j:
            try:
                want = base64.b64decode(j, validate=True)
            except ValueError:
                want = base64.urlsafe_b64decode(j + "=" * (-len(j) % 4))
        if v != want:
            fail("%s: bytes %r, JSON %r" % (path, v, j))
    else:
        fail("%s: unexpected primitive %s" % (path, kind))


def cmp_value_record(level, rec, j, path):
    """A Value<level> record against a JSON value."""
    global cut_values
    nested = "struct_value" in rec
    default = {"null_value": "NULL_VALUE", "number_value": 0.0, "string_value": "",
               "bool_value": False}
    expect = dict(default)
    want_struct = want_list = None
    if j is None:
        pass
    elif isinstance(j, bool):
        expect["bool_value"] = j
    elif isinstance(j, (int, float)):
        expect["number_value"] = float(j)
    elif isinstance(j, str):
        expect["string_value"] = j
    elif isinstance(j, dict):
        want_struct = j
    elif isinstance(j, list):
        want_list = j
    for k, want in expect.items():
        got = rec[k]
        if k == "number_value":
            if not close(got, want):
                fail("%s.%s: %r, JSON %r" % (path, k, got, j))
        elif got != want:
            fail("%s.%s: %r, JSON %r" % (path, k, got, j))
    if not nested:
        if want_struct is not None or want_list is not None:
            cut_values += 1  # deeper than the schema's depth 5: cut
        return
    if want_struct is None:
        if rec["struct_value"] is not None:
            fail("%s.struct_value: set, JSON %r" % (path, j))
    else:
        if rec["struct_value"] is None:
            fail("%s.struct_value: null, JSON %r" % (path, j))
        else:
            cmp_struct(level + 1, rec["struct_value"], want_struct, path + ".struct_value")
    if want_list is None:
        if rec["list_value"] is not None:
            fail("%s.list_value: set, JSON %r" % (path, j))
    else:
        if rec["list_value"] is None:
            fail("%s.list_value: null, JSON %r" % (path, j))
        else:
            cmp_list(level + 1, rec["list_value"], want_list, path + ".list_value")


def cmp_struct(level, rec, j, path):
    if not isinstance(j, dict):
        fail("%s: Struct%d, JSON %r" % (path, level, j))
        return
    entries = rec["fields"]
    if len(entries) != len(j):
        fail("%s: %d entries, JSON has %d" % (path, len(entries), len(j)))
    for e in entries:
        if e["key"] not in j:
            fail("%s: key %r not in JSON" % (path, e["key"]))
            continue
        val = e["value"]
        if val is None:
            if j[e["key"]] is not None:
                fail("%s[%r]: null value, JSON %r" % (path, e["key"], j[e["key"]]))
            continue
        cmp_value_record(level, val, j[e["key"]], "%s[%r]" % (path, e["key"]))


def cmp_list(level, rec, j, path):
    if not isinstance(j, list) or len(rec["values"]) != len(j):
        fail("%s: ListValue%d of %d, JSON %r" % (path, level, len(rec["values"]), j))
        return
    for i, (v, jv) in enumerate(zip(rec["values"], j)):
        cmp_value_record(level, v, jv, "%s[%d]" % (path, i))


def cmp_record(schema, val, j, path):
    m = WKT.match(schema.fullname)
    if m:
        kind, level = m.group(1), int(m.group(2))
        if kind == "Struct":
            cmp_struct(level, val, j, path)
        elif kind == "ListValue":
            cmp_list(level, val, j, path)
        else:
            cmp_value_record(level, val, j, path)
        return
    if j is None:
        j = {}
    if not isinstance(j, dict):
        fail("%s: record %s, JSON %r" % (path, schema.fullname, j))
        return
    known = set()
    for f in schema.fields:
        jn = camel(f.name)
        known.add(jn)
        cmp_type(f.type, val[f.name], j.get(jn), path + "." + f.name)
    for k in j:
        if k not in known:
            fail("%s: JSON key %s has no field in %s" % (path, k, schema.fullname))


def cmp_map(entry_schema, entries, j, path):
    j = j or {}
    if not isinstance(j, dict) or len(entries) != len(j):
        fail("%s: %d map entries, JSON %r" % (path, len(entries), j))
        return
    key_type = entry_schema.fields[0].type.type
    for e in entries:
        k = e["key"]
        match = None
        for jk in j:
            if key_type in ("long", "int"):
                bits = 64 if key_type == "long" else 32
                if (int(jk) - k) % (1 << bits) == 0:
                    match = jk
            elif key_type == "boolean":
                if (jk == "true") == k:
                    match = jk
            elif jk == k:
                match = jk
        if match is None:
            fail("%s: map key %r not in JSON" % (path, k))
            continue
        cmp_type(entry_schema.fields[1].type, e["value"], j[match], "%s[%s]" % (path, match))


def cmp_type(t, v, j, path):
    if isinstance(t, avro.schema.UnionSchema):
        branches = t.schemas
        if len(branches) != 2 or branches[0].type != "null":
            fail("%s: union %s is not [null, X]" % (path, t))
            return
        if j is None:
            if v is not None:
                fail("%s: absent in JSON but not null" % path)
        elif v is None:
            fail("%s: null but JSON has %r" % (path, j))
        else:
            cmp_type(branches[1], v, j, path)
    elif isinstance(t, avro.schema.ArraySchema):
        if is_map_entry(t.items) and (j is None or isinstance(j, dict)):
            cmp_map(t.items, v, j, path)
            return
        jl = j if j is not None else []
        if not isinstance(jl, list) or len(v) != len(jl):
            fail("%s: array of %d, JSON %r" % (path, len(v), j))
            return
        for i, (av, jv) in enumerate(zip(v, jl)):
            cmp_type(t.items, av, jv, "%s[%d]" % (path, i))
    elif isinstance(t, avro.schema.RecordSchema):
        cmp_record(t, v, j, path)
    elif isinstance(t, avro.schema.EnumSchema):
        if j is None:
            want = t.symbols[0]
        elif isinstance(j, str):
            want = j
        else:
            want = "UNRECOGNIZED"
        if v != want:
            fail("%s: enum %r, JSON %r" % (path, v, j))
    else:
        cmp_primitive(t, v, j, path)


def read_all(path):
    with open(path, "rb") as f:
        r = avro.datafile.DataFileReader(f, avro.io.DatumReader())
        schema = avro.schema.parse(r.get_meta("avro.schema").decode("utf-8"))
        codec = r.get_meta("avro.codec").decode("utf-8")
        recs = list(r)
        r.close()
    return schema, codec, recs


def check_log_requests(out, data):
    with open(os.path.join(out, "vectors.txt")) as f:
        names = [line.strip() for line in f if line.strip()]
    wire = os.path.join(data, "vectors", "wire")
    expected = sorted(n for n in os.listdir(wire) if n.endswith(".pb"))
    if names != expected:
        fail("vectors.txt lists %d vectors, the directory has %d" % (len(names), len(expected)))
    schema, codec, recs = read_all(os.path.join(out, "log_request.avro"))
    if codec != "snappy":
        fail("log_request.avro codec %s" % codec)
    if schema.fullname != "ai.promoted.proto.event.LogRequest":
        fail("log_request.avro schema %s" % schema.fullname)
    if len(recs) != len(names):
        fail("log_request.avro has %d records for %d vectors" % (len(recs), len(names)))
    for name, rec in zip(names, recs):
        with open(os.path.join(wire, name[:-3] + ".json")) as f:
            j = json.load(f)
        cmp_record(schema, rec, j, name + ":LogRequest")
    schema2, codec2, recs2 = read_all(os.path.join(out, "log_request_null.avro"))
    if codec2 != "null":
        fail("log_request_null.avro codec %s" % codec2)
    if recs2 != recs:
        fail("the null-codec file reads differently from the snappy file")
    return len(recs)


def derived_rows():
    """The rows test_avro_roundtrip --write puts in each derived table (keep in step)."""
    rows = {k: [] for k in ("log_user_user", "delivery_log_ids", "request_insertion_ids",
                            "response_insertion_ids", "invalid_record")}
    servers = {1: "API", 2: "SDK", 3: "SIMPLE_API"}
    for i in range(3):
        s1, s2 = "id-%d" % i, "\u00fc-%d" % i
        rows["log_user_user"].append({"platformId": i - 1, "eventApiTimestamp": 1663099208000 + i,
                                      "logUserId": s1, "userId": s2})
        rows["delivery_log_ids"].append({
            "platformId": i, "eventApiTimestamp": 100 + i, "logUserId": s1, "viewId": s2,
            "requestId": "req", "clientRequestId": "", "executionServer": servers[i + 1],
            "searchQuery": "q", "userAgent": "ua"})
        rows["request_insertion_ids"].append({
            "platformId": i, "eventApiTimestamp": 100 + i, "requestId": "req", "contentId": s1,
            "retrievalRank": None if i == 1 else i * 10})
        rows["response_insertion_ids"].append({
            "platformId": i, "eventApiTimestamp": 100 + i, "requestId": "req",
            "insertionId": s1, "contentId": s2, "position": i})
        rows["invalid_record"].append({
            "source": "in.rec", "partition": -1, "offset": 64 * i,
            "timestamp": 1000 * i if i else -1, "error": s1, "raw": bytes([0, i, 0xff]),
            "raw_length": 3})
    return rows


def check_derived(out, src):
    for name, want in derived_rows().items():
        schema, codec, recs = read_all(os.path.join(out, name + ".avro"))
        with open(os.path.join(src, "schemas", name + ".avsc")) as f:
            avsc = avro.schema.parse(f.read())
        if schema.to_json() != avsc.to_json():
            fail("%s.avro: header schema differs from schemas/%s.avsc" % (name, name))
        if schema.namespace != "ai.promoted.metrics.common":
            fail("%s: namespace %s" % (name, schema.namespace))
        if recs != want:
            fail("%s.avro rows %r, want %r" % (name, recs, want))


def main():
    binary = os.environ.get("LOGPROC_BIN")
    data = os.environ.get("LOGPROC_TEST_DATA")
    src = os.environ.get("LOGPROC_SOURCE_DIR")
    if not binary or not data or not src:
        print("LOGPROC_BIN, LOGPROC_TEST_DATA and LOGPROC_SOURCE_DIR must be set (run via ctest)")
        return 1
    helper = os.path.join(os.path.dirname(binary), "test_avro_roundtrip")
    if not os.access(helper, os.X_OK):
        print("helper %s not built" % helper)
        return 1
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run([helper, "--write", out], capture_output=True, text=True)
        if p.returncode != 0:
            print("helper failed:", p.stdout, p.stderr)
            return 1
        n = check_log_requests(out, data)
        check_derived(out, src)
    if failures:
        report_and_exit()
    print("ok: %d LogRequest records and 5 derived tables read by python3-avro %s match "
          "(%d values cut at depth 5)" % (n, getattr(avro, "__version__", "?"), cut_values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
