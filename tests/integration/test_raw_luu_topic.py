"""raw-output's LogUserUser topic (spec other-jobs §A.7, --writeLogUserUserEventsToKafka): the
pre-dedupe LogUserUser stream, key = 8-byte little-endian platform id then log_user_id, value =
the Avro binary of LogUserUser (schemas/log_user_user.avsc), read here with python3-avro. With
record-file input it is written as a record file under <root>/kafka/<topic>/; with a label the
topic is metrics.<label>.default.log-user-user-event; without the flag there is no topic.
"""
import glob
import io
import os
import struct
import sys

import avro.io
import avro.schema

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

SRC = os.environ.get("LOGPROC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
c = lptest.Checks()
work = lptest.workdir("raw-luu")
inp = os.path.join(work, "in.rec")
lptest.run(["generate", "logs", "--profile", "local", "--output", inp])

out = os.path.join(work, "out")
lptest.run(["run", "raw-output", "--source", inp, "-o", out, "--jobLabel", "blue",
            "--writeLogUserUserEventsToKafka"])
topic_dir = os.path.join(out, "kafka", "metrics.blue.default.log-user-user-event")
parts = sorted(glob.glob(os.path.join(topic_dir, "part-*.rec")))
c.check(len(parts) >= 1, "the labelled topic's record file exists: %s" % parts)
frames = [f for p in parts for f in crashlib.frames(p)]

schema = avro.schema.parse(open(os.path.join(SRC, "schemas", "log_user_user.avsc")).read())
reader = avro.io.DatumReader(schema)
pairs, bad_key = set(), 0
for ts, key, value in frames:
    d = reader.read(avro.io.BinaryDecoder(io.BytesIO(value)))
    want = struct.pack("<Q", d["platformId"]) + d["logUserId"].encode()
    bad_key += key != want
    pairs.add((d["platformId"], d["logUserId"], d["userId"]))
c.check(len(frames) > 0, "the topic has %d records" % len(frames))
c.check(bad_key == 0, "every key is le64(platform_id) + log_user_id of its value (%d are not)" % bad_key)

rows, _ = lptest.read_table(os.path.join(out, "blue"), "raw/log-user-user")
table = set((r["platformId"], r["logUserId"], r["userId"]) for r in rows)
c.check(len(frames) > len(rows), "the topic is the pre-dedupe stream (%d records, %d table rows)"
        % (len(frames), len(rows)))
c.check(pairs == table, "its distinct (platform, log user, user) equal the deduplicated table's")

plain = os.path.join(work, "plain")
lptest.run(["run", "raw-output", "--source", inp, "-o", plain])
c.check(not os.path.exists(os.path.join(plain, "kafka")), "without the flag there is no topic")
c.done()
