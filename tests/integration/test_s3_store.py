"""The object store through `logproc store`, against s3rver v5 (which checks SigV4 signatures),
with boto3 as the independent reader; then the local-directory backend through the same CLI.

s3rver comes from tools/testenv (scripts/deps.sh runs `npm ci` there): its absence is a failure,
not a skip. Everything runs on 127.0.0.1 with a port the kernel picks.
"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

SRC = os.environ.get("LOGPROC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TESTENV = os.path.join(SRC, "tools", "testenv")
BUCKET = "test"
CREDS = "S3RVER"
PART = 5 * 1024 * 1024

c = lptest.Checks()
work = lptest.workdir("s3store")


def start_server(datadir):
    return crashlib.start_s3server(datadir, BUCKET)


def store(args, env_extra=None, check=True):
    env = dict(os.environ)
    for k in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(k, None)
    env.update({"AWS_ACCESS_KEY_ID": CREDS, "AWS_SECRET_ACCESS_KEY": CREDS, "AWS_REGION": "us-east-1"})
    if env_extra:
        env.update(env_extra)
    p = subprocess.run([lptest.BIN, "store"] + args, capture_output=True, env=env)
    if check and p.returncode != 0:
        c.check(False, "logproc store %s exited %d: %s" % (" ".join(args[:3]), p.returncode,
                                                           p.stderr.decode(errors="replace")))
    return p


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def ls_lines(out):
    rows = []
    for line in out.decode().splitlines():
        size, key = line.split(" ", 1)
        rows.append((key, int(size)))
    return rows


small = os.urandom(1000)
big = os.urandom(12 * 1024 * 1024 + 12345)  # three parts of 5 MiB: 5, 5, and the rest
small_f = write(os.path.join(work, "small.bin"), small)
big_f = write(os.path.join(work, "big.bin"), big)
empty_f = write(os.path.join(work, "empty.bin"), b"")

srv, port = start_server(os.path.join(work, "s3data"))
endpoint = "http://127.0.0.1:%d" % port
S3 = ["--s3Endpoint=" + endpoint, "--s3Region=us-east-1", "--s3PartBytes=%d" % PART,
      "--s3RetryBackoff=PT0.01S"]
url = "s3://%s/pre" % BUCKET
boto = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=CREDS,
                    aws_secret_access_key=CREDS, region_name="us-east-1",
                    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


def boto_get(key):
    try:
        return boto.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except ClientError as e:
        return e.response["Error"]["Code"]


def boto_list(prefix):
    rows = []
    for page in boto.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        rows += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return rows


try:
    # ---- put: small, multipart, and keys that need encoding ----
    objects = {
        "dt=2024-01-01/hour=03/part-0.avro": small,
        "dt=2024-01-01/hour=03/with space \u00e9\u00fc \u65e5\u672c.bin": small[:10],
        "big/multipart.bin": big,
    }
    for key, data in objects.items():
        f = write(os.path.join(work, "obj.bin"), data)
        store(["put", url, key, f] + S3)
        got = boto_get("pre/" + key)
        c.check(got == data, "boto3 reads %r back identical (%s bytes)" % (key, len(data)))
    # reserved characters in a key: signed and read back right. (Kept out of the listings
    # below: s3rver escapes '&', "'", '<' and '>' twice in ListObjectsV2, which boto3 shows
    # too; our parser's unescaping is pinned by the unit test.)
    odd = "odd/a+b&c=d~e'f(1),g;h@i$j!*:%20.txt"
    store(["put", url, odd, small_f] + S3)
    c.check(boto_get("pre/" + odd) == small, "boto3 reads the reserved-character key back")
    c.check(store(["get", url, odd] + S3).stdout == small, "store get of the reserved-character key")
    store(["rm", url, odd] + S3)
    c.eq(boto_get("pre/" + odd), "NoSuchKey", "rm deletes")
    # the large object went up in parts: s3rver keeps no part ETag, but the upload path is the
    # only one that accepts a file above --s3PartBytes; our own get reads it back too
    p = store(["get", url, "big/multipart.bin"] + S3)
    c.check(hashlib.sha256(p.stdout).digest() == hashlib.sha256(big).digest(),
            "store get of the multipart object equals the file")
    p = store(["get", url, "dt=2024-01-01/hour=03/with space \u00e9\u00fc \u65e5\u672c.bin",
               os.path.join(work, "got.bin")] + S3)
    with open(os.path.join(work, "got.bin"), "rb") as fh:
        c.eq(fh.read(), small[:10], "store get into FILE (unicode key)")

    # ---- ls equals boto3's listing, in the same order ----
    p = store(["ls", url] + S3)
    mine = ls_lines(p.stdout)
    theirs = [(k[len("pre/"):], s) for k, s in boto_list("pre/")]
    c.eq(mine, theirs, "store ls equals boto3 list_objects_v2")
    c.eq(sorted(k for k, _ in mine), sorted(objects), "ls shows every key put")
    p = store(["ls", url, "dt=2024-01-01/"] + S3)
    c.eq([k for k, _ in ls_lines(p.stdout)], sorted(k for k in objects if k.startswith("dt=")),
         "ls with a prefix containing '='")

    # more than one ListObjectsV2 page (s3rver pages at 1000 keys): continuation tokens
    for i in range(1005):
        boto.put_object(Bucket=BUCKET, Key="pre/many/k%05d" % i, Body=b"x" * (i % 7))
    p = store(["ls", url, "many/"] + S3)
    rows = ls_lines(p.stdout)
    c.eq(len(rows), 1005, "ls follows continuation tokens past 1000 keys")
    c.eq(rows, [(k[len("pre/"):], s) for k, s in boto_list("pre/many/")], "paged ls equals boto3")

    # ---- two-phase publish ----
    key = "raw/t/dt=2024-01-01/hour=03/part-7.avro"
    p = store(["stage", url, key, big_f] + S3)
    handle = p.stdout.decode().strip()
    c.check(handle.startswith("s3mpu1:"), "stage prints an upload handle: %r" % handle[:40])
    c.check("pre/" + key not in [k for k, _ in boto_list("pre/raw/")], "staged key not listed")
    c.eq(boto_get("pre/" + key), "NoSuchKey", "staged key not readable")
    store(["publish", url, key, handle] + S3)
    c.check(boto_get("pre/" + key) == big, "published object identical to the staged file")
    p = store(["publish", url, key, handle] + S3)
    c.eq(p.returncode, 0, "a second publish of the same handle succeeds")
    c.check(boto_get("pre/" + key) == big, "still identical after the second publish")
    # an empty file is one empty part
    p = store(["stage", url, "raw/t/empty.avro", empty_f] + S3)
    store(["publish", url, "raw/t/empty.avro", p.stdout.decode().strip()] + S3)
    c.eq(boto_get("pre/raw/t/empty.avro"), b"", "an empty staged file publishes as an empty object")

    # ---- rm ----
    p = store(["rm", url, "odd/never-existed"] + S3)
    c.eq(p.returncode, 0, "rm of an absent key succeeds")

    # ---- errors ----
    p = store(["get", url, "no/such/key"] + S3, check=False)
    c.eq(p.returncode, 1, "get of an absent key exits 1")
    c.check(b"no/such/key" in p.stderr, "absent-key error names the key")
    p = store(["get", url, "big/multipart.bin", "--maxObjectBytes=1000"] + S3, check=False)
    c.eq(p.returncode, 1, "get over the size limit fails")
    c.check(b"%d bytes" % len(big) in p.stderr and b"limit of 1000" in p.stderr,
            "size-limit error names the size and the limit: %r" % p.stderr[-200:])
    secret = "wrong-Secret-5ea7c0de"
    p = store(["put", url, "x/denied", small_f] + S3, env_extra={"AWS_SECRET_ACCESS_KEY": secret},
              check=False)
    err = p.stderr.decode(errors="replace")
    c.check(p.returncode != 0, "a wrong secret fails")
    c.check("403" in err and "SignatureDoesNotMatch" in err, "wrong secret: 403 SignatureDoesNotMatch: %r" % err)
    c.check("pre/x/denied" in err and "PutObject" in err, "wrong-secret error names op and key")
    c.check(secret not in err and secret not in p.stdout.decode(errors="replace"),
            "the secret appears nowhere in the output")
    c.check(err.count("retry") == 0, "a 403 is not retried")
    c.eq(boto_get("pre/x/denied"), "NoSuchKey", "nothing written with a wrong secret")
finally:
    srv.send_signal(signal.SIGTERM)
    try:
        srv.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
        srv.wait()
    srv.stdout.close()
    srv.stderr.close()

# ---- a stopped server: retried, then a clear error ----
p = store(["put", url, "x/after-stop", small_f] + S3 + ["--s3MaxAttempts=3"], check=False)
err = p.stderr.decode(errors="replace")
c.eq(p.returncode, 1, "put to a stopped server fails")
c.eq(err.count("retry op=PutObject"), 2, "two retries logged before giving up")
c.check("after 3 attempts" in err and "pre/x/after-stop" in err,
        "final error counts attempts and names the key: %r" % err[-300:])

# ---- what s3rver does not check: the body hash, and retries that end in success ----
# A recording fake S3 on loopback: answers like S3 and keeps every request's
# x-amz-content-sha256 beside the SHA-256 of the body it really received.
import http.server  # noqa: E402
import threading  # noqa: E402
import urllib.parse  # noqa: E402

seen = []
fail_once = {"/b/retry/x"}


class FakeS3(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path, _, query = self.path.partition("?")
        seen.append((self.command, path, query, self.headers.get("x-amz-content-sha256"),
                     hashlib.sha256(body).hexdigest(), len(body)))
        if path in fail_once:
            fail_once.discard(path)
            return self.answer(503, b"<Error><Code>SlowDown</Code><Message>busy</Message></Error>")
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        if self.command == "POST" and "uploads" in q:
            return self.answer(200, b"<InitiateMultipartUploadResult><UploadId>u-1/x=y</UploadId>"
                                    b"</InitiateMultipartUploadResult>")
        if self.command == "POST" and path.endswith("/err200"):
            return self.answer(200, b"<Error><Code>InternalError</Code><Message>late</Message></Error>")
        if self.command in ("PUT", "POST"):
            return self.answer(200, b"", [("ETag", '"%s"' % hashlib.md5(body).hexdigest())])
        return self.answer(404)

    do_PUT = do_POST = do_GET = do_HEAD = do_DELETE = handle_any


fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeS3)
threading.Thread(target=fake.serve_forever, daemon=True).start()
F = ["--s3Endpoint=http://127.0.0.1:%d" % fake.server_address[1], "--s3PartBytes=%d" % PART,
     "--s3RetryBackoff=PT0.01S"]
store(["put", "s3://b", "dt=1/small", small_f] + F)
store(["put", "s3://b", "big", big_f] + F)
store(["put", "s3://b", "empty", empty_f] + F)
for m, path, query, claimed, actual, n in seen:
    c.eq(claimed, actual, "x-amz-content-sha256 of %s %s?%s (%d bytes)" % (m, path, query, n))
c.eq([(m, p, q) for m, p, q, _, _, _ in seen],
     [("PUT", "/b/dt%3D1/small", ""),
      ("POST", "/b/big", "uploads="),
      ("PUT", "/b/big", "partNumber=1&uploadId=u-1%2Fx%3Dy"),
      ("PUT", "/b/big", "partNumber=2&uploadId=u-1%2Fx%3Dy"),
      ("PUT", "/b/big", "partNumber=3&uploadId=u-1%2Fx%3Dy"),
      ("POST", "/b/big", "uploadId=u-1%2Fx%3Dy"),
      ("PUT", "/b/empty", "")],
     "request lines: encoded key, sorted and encoded query, '=' on valueless names")
c.eq([n for _, _, _, _, _, n in seen[2:5]], [PART, PART, len(big) - 2 * PART], "part sizes")
del seen[:]
p = store(["put", "s3://b", "retry/x", small_f] + F)
c.eq(p.returncode, 0, "a 503 then a 200: success")
c.eq(p.stderr.decode().count("retry op=PutObject"), 1, "one retry logged for one 503")
c.eq([(m, a, n) for m, _, _, _, a, n in seen], [("PUT", hashlib.sha256(small).hexdigest(), len(small))] * 2,
     "the retried PUT re-sent the whole body")
p = store(["put", "s3://b", "err200", big_f] + F, check=False)
c.eq(p.returncode, 1, "CompleteMultipartUpload answering 200 with <Error> is a failure")
c.check(b"InternalError" in p.stderr, "that error carries S3's code: %r" % p.stderr[-200:])
fake.shutdown()
fake.server_close()

# ---- the local-directory backend through the same CLI ----
root = os.path.join(work, "local")


def hidden_files(d):
    return [os.path.join(dp, n) for dp, dns, fns in os.walk(d) for n in fns + dns if n.startswith(".")]


for key, data in (("dt=2024-01-01/hour=03/a b \u00e9.bin", small), ("big/multipart.bin", big)):
    f = write(os.path.join(work, "obj.bin"), data)
    store(["put", root, key, f])
    with open(os.path.join(root, key), "rb") as fh:
        c.check(fh.read() == data, "local put writes %r whole" % key)
    c.eq(store(["get", root, key]).stdout, data, "local get %r" % key)
c.eq(hidden_files(root), [], "no temp files left after local puts")
p = store(["stage", root, "raw/t/part-1.avro", small_f])
handle = p.stdout.decode().strip()
c.eq(handle, "raw/t/.part-1.avro.pending", "local stage handle is the hidden name")
c.check("raw/t/part-1.avro" not in store(["ls", root]).stdout.decode(), "local staged key not listed")
c.eq(store(["get", root, "raw/t/part-1.avro"], check=False).returncode, 1, "local staged key not readable")
store(["publish", root, "raw/t/part-1.avro", handle])
c.eq(store(["get", root, "raw/t/part-1.avro"]).stdout, small, "local publish makes it visible")
c.eq(store(["publish", root, "raw/t/part-1.avro", handle]).returncode, 0, "local publish again: ok")
c.eq(hidden_files(root), [], "no hidden files after publish")
rows = ls_lines(store(["ls", root]).stdout)
c.eq(rows, sorted([("big/multipart.bin", len(big)), ("dt=2024-01-01/hour=03/a b \u00e9.bin", len(small)),
                   ("raw/t/part-1.avro", len(small))]), "local ls: size and key, in key order")
store(["rm", root, "raw/t/part-1.avro"])
c.check(not os.path.exists(os.path.join(root, "raw/t/part-1.avro")), "local rm deletes")
p = store(["put", root, "../escape", small_f], check=False)
c.eq(p.returncode, 1, "a key with '..' is refused")

shutil.rmtree(work, ignore_errors=True)
c.done()
