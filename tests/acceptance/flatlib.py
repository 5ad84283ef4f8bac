"""Shared helpers of the flat-output acceptance tests (run with Debian's /usr/bin/python3).

Black-box only: inputs are record files written here (lptest.frame), LogRequests are built with
Python classes that protoc generates from the repository's .proto files at test time, and the
outputs are read back with python3-avro (the Avro tables) and a record-file reader written here
from docs/FORMATS.md (the Kafka topic stand-ins). Nothing here calls logproc except `run`.

Also here: the private fields that logproc keeps as protobuf unknown fields
(DeliveryExecution.execution_insertion = 1, Insertion.feature_stage = 17; spec README "Wire
schema") are reached through tiny "view" messages declaring only that field, so everything else
of the message rides along as unknown fields; and a Python model of the spec's merge rules
(flat-output.md §1.2 push-down, §11.2/§11.3 merge details, §12.2 pivot, §12.4 stripping) that
the end-to-end tests compare the job's outputs against, message for message.
"""
import glob
import os
import re
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from lptest import BIN, SYNC, Checks, crc32c, event_key, frame, workdir  # noqa: E402,F401

SRC = os.environ.get("LOGPROC_SOURCE_DIR", os.path.join(HERE, "..", ".."))
T0 = 1601596151000  # 2020-10-01 23:49:11 UTC, the spec's common instant

# ------------------------------------------------------------------------------------------
# protobuf classes, compiled at test time

_VIEWS_PROTO = """
syntax = "proto2";
package acctest;
import "delivery/delivery.proto";
import "logproc/private.proto";
// Declares only the private field, so the rest of the message stays unknown fields.
message ExecutionView { repeated delivery.Insertion execution_insertion = 1; }
message InsertionView { optional logproc.priv.FeatureStage feature_stage = 17; }
"""


class _Pb:
    pass


pb = _Pb()


def load_protos(work):
    """Compiles proto/**/*.proto (and the view messages) into work/py and imports them into
    `pb`: pb.event, pb.delivery, pb.execution, pb.common, pb.join, pb.priv, pb.views, pb.struct."""
    out = os.path.join(work, "py")
    os.makedirs(os.path.join(out, "acctest_src"), exist_ok=True)
    proto_dir = os.path.join(SRC, "proto")
    files = sorted(os.path.relpath(p, proto_dir)
                   for p in glob.glob(os.path.join(proto_dir, "**", "*.proto"), recursive=True))
    with open(os.path.join(out, "acctest_src", "views.proto"), "w") as f:
        f.write(_VIEWS_PROTO)
    subprocess.run(["protoc", "-I", proto_dir, "-I", os.path.join(out, "acctest_src"),
                    "-I", "/usr/include", "--python_out=" + out] + files + ["views.proto"],
                   check=True)
    sys.path.insert(0, out)
    import importlib
    pb.event = importlib.import_module("event.event_pb2")
    pb.delivery = importlib.import_module("delivery.delivery_pb2")
    pb.execution = importlib.import_module("delivery.execution_pb2")
    pb.common = importlib.import_module("common.common_pb2")
    pb.join = importlib.import_module("logproc.join_pb2")
    pb.priv = importlib.import_module("logproc.private_pb2")
    pb.views = importlib.import_module("views_pb2")
    from google.protobuf import struct_pb2, text_format
    pb.struct = struct_pb2
    pb.text = text_format
    return pb


def set_execution_insertions(execution, insertions):
    """Appends execution insertions (private field 1) to a delivery.DeliveryExecution."""
    v = pb.views.ExecutionView()
    v.execution_insertion.extend(insertions)
    execution.MergeFromString(v.SerializeToString())


def execution_insertions(execution):
    return list(pb.views.ExecutionView.FromString(execution.SerializeToString()).execution_insertion)


def execution_without_insertions(execution):
    """A copy of a delivery.DeliveryExecution without the private field 1."""
    data = execution.SerializeToString()
    x = pb.execution.DeliveryExecution()
    x.MergeFromString(b"".join(raw for num, raw in wire_fields(data) if num != 1))
    return x


def set_feature_stage(insertion, numeric=None, sparse=None):
    """Sets the private Insertion.feature_stage (17) {features {numeric, sparse_id}}."""
    v = pb.views.InsertionView()
    for k, x in (numeric or {}).items():
        v.feature_stage.features.numeric[k] = x
    for k, x in (sparse or {}).items():
        v.feature_stage.features.sparse_id[k] = x
    insertion.MergeFromString(v.SerializeToString())


def feature_stage(insertion):
    v = pb.views.InsertionView.FromString(insertion.SerializeToString())
    return v.feature_stage if v.HasField("feature_stage") else None


def _varint(data, pos):
    x = shift = 0
    while True:
        b = data[pos]
        pos += 1
        x |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return x, pos


def wire_fields(data):
    """(field number, raw bytes of the whole field) for each top-level field of a message."""
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _varint(data, pos)
        wt = tag & 7
        if wt == 0:
            _, pos = _varint(data, pos)
        elif wt == 1:
            pos += 8
        elif wt == 2:
            n, pos = _varint(data, pos)
            pos += n
        elif wt == 5:
            pos += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield tag >> 3, data[start:pos]


# ------------------------------------------------------------------------------------------
# record files and runs

def read_records(path, verify=True):
    """Frames of a record file (docs/FORMATS.md): [(timestamp, key, value)]; CRCs checked."""
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 0
    while pos < len(data):
        if data[pos:pos + 4] != SYNC:
            raise ValueError("%s: no sync marker at %d" % (path, pos))
        klen, vlen, ts = struct.unpack_from("<IIq", data, pos + 4)
        end = pos + 24 + klen + vlen
        if verify:
            if struct.unpack_from("<I", data, pos + 20)[0] != crc32c(data[pos:pos + 20]):
                raise ValueError("%s: header_crc at %d" % (path, pos))
            if struct.unpack_from("<I", data, end)[0] != crc32c(data[pos:end]):
                raise ValueError("%s: frame_crc at %d" % (path, pos))
        out.append((ts, data[pos + 24:pos + 24 + klen], data[pos + 24 + klen:end]))
        pos = end + 4
    return out


def write_records(path, records):
    """records: (ts, LogRequest or bytes[, key]); the key defaults to the Event API's."""
    with open(path, "wb") as f:
        for r in records:
            ts, m = r[0], r[1]
            if isinstance(m, (bytes, bytearray)):
                value = bytes(m)
                lr = pb.event.LogRequest.FromString(value)
            else:
                value, lr = m.SerializeToString(), m
            key = r[2] if len(r) > 2 else event_key(lr.platform_id, lr.user_info.log_user_id)
            f.write(frame(ts, key, value))


def generate(work, name, args):
    """`logproc generate logs ARGS -o FILE`: [(ts, LogRequest)]."""
    path = os.path.join(work, name + ".gen.rec")
    p = subprocess.run([BIN, "generate", "logs", "-o", path] + list(args),
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("logproc generate logs %s failed:\n%s" % (" ".join(args), p.stderr))
    return [(ts, pb.event.LogRequest.FromString(v)) for ts, _, v in read_records(path)]


class Out:
    """One finished flat-output run: its root, and readers of what it wrote (each table is read
    once: python3-avro is slow on the joined records)."""

    def __init__(self, root, proc):
        self.root, self.proc = root, proc
        self._parts = {}

    def parts(self, table):
        """[(part path, rows of that part)] of every published part of the table."""
        if table not in self._parts:
            paths = sorted(glob.glob(os.path.join(self.root, table, "**", "part-*"), recursive=True))
            self._parts[table] = [(p, read_table_part(p)) for p in paths]
        return self._parts[table]

    def rows(self, table):
        return [r for _, rows in self.parts(table) for r in rows]

    def nonempty(self, kind):
        """Names of the tables under <root>/<kind> holding at least one record."""
        names = set()
        for d in sorted(glob.glob(os.path.join(self.root, kind, "*"))):
            if os.path.isdir(d) and self.rows(kind + "/" + os.path.basename(d)):
                names.add(os.path.basename(d))
        return names

    def topic(self, name):
        """Frames of every published part of the topic's record files: [(ts, key, value)]."""
        frames = []
        for p in sorted(glob.glob(os.path.join(self.root, "kafka", name, "part-*"))):
            frames.extend(read_records(p))
        return frames

    def joined_events(self, name="metrics.default.joined-event"):
        return [(ts, key, pb.join.JoinedEvent.FromString(v)) for ts, key, v in self.topic(name)]


def read_table_part(path):
    import avro.datafile
    import avro.io
    with open(path, "rb") as f:
        return list(avro.datafile.DataFileReader(f, avro.io.DatumReader()))


def run_flat(work, name, records, args=(), expect_ok=True):
    """Writes records (a list for write_records, or the bytes of a whole record file) to
    <work>/<name>/in.rec and runs `logproc run flat-output` on it."""
    d = os.path.join(work, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    src = os.path.join(d, "in.rec")
    if isinstance(records, bytes):
        with open(src, "wb") as f:
            f.write(records)
    else:
        write_records(src, records)
    root = os.path.join(d, "out")
    cmd = [BIN, "run", "flat-output", "--source", src, "-o", root, "--runId", "acce0001"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True)
    if expect_ok and p.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stderr[-4000:]))
    return Out(root, p)


# ------------------------------------------------------------------------------------------
# checks shared by the tests

def partition_of(ts):
    """The UTC dt=/hour= directory of an epoch-millisecond timestamp."""
    import datetime
    t = datetime.datetime.fromtimestamp(ts / 1000.0, tz=datetime.timezone.utc)
    return "dt=%s/hour=%02d" % (t.strftime("%Y-%m-%d"), t.hour)


def check_partitions(c, out, table, ts_of, what):
    """Every row of every part of the table sits under the partition of ts_of(row)."""
    n = 0
    for path, rows in out.parts(table):
        for r in rows:
            n += 1
            want = partition_of(ts_of(r))
            c.check(("/" + want + "/") in path, "%s: %s row in %s, want %s" % (what, table, path, want))
    c.check(n > 0, "%s: %s has rows to check partitions of" % (what, table))
    return n


def find_user_ids(obj, path=""):
    """Paths of non-empty `user_id` values anywhere in an Avro row (dicts and lists)."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "user_id" and v:
                found.append(path + "." + k)
            else:
                found.extend(find_user_ids(v, path + "." + k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found.extend(find_user_ids(v, "%s[%d]" % (path, i)))
    return found


def pb_user_ids(m, path=""):
    """Paths of set `user_id` fields anywhere in a protobuf message."""
    found = []
    for fd, v in m.ListFields():
        if fd.name == "user_id" and v:
            found.append(path + "." + fd.name)
        elif fd.message_type is not None:
            if fd.label == fd.LABEL_REPEATED:
                if fd.message_type.GetOptions().map_entry:
                    continue
                for i, x in enumerate(v):
                    found.extend(pb_user_ids(x, "%s.%s[%d]" % (path, fd.name, i)))
            else:
                found.extend(pb_user_ids(v, path + "." + fd.name))
    return found


def text(m):
    return pb.text.MessageToString(m, as_one_line=True) if m is not None else "None"


def check_message(c, got, want, what):
    """Equal messages: the same deterministic serialization (unknown fields such as the private
    feature_stage included), or else equal fields (map entries may come in another order)."""
    same = got is not None and want is not None and \
        got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)
    if not same and got is not None and want is not None and got == want:
        same = True
    c.check(same, "%s:\n  got  %s\n  want %s" % (what, text(got), text(want)))


# ------------------------------------------------------------------------------------------
# the bot patterns of flat-output.md Appendix A, for an independent isBot

_BOT_PATTERNS = [
    " daum[\\s/]", " deusu/", "(?:^|\\s)site", "@[a-z]", "\\(at\\)[a-z]", "\\(github\\.com/",
    "\\[at\\][a-z]", "^12345", "^<", "^ace explorer", "^acoon", "^active", "^ad muncher",
    "^anglesharp/", "^apple-pubsub/", "^astute srm", "^avsdevicesdk/", "^bidtellect/", "^biglotron",
    "^blackboard safeassign", "^blocknote.net", "^braze sender", "^camo asset proxy",
    "^captivenetworksupport", "^castro", "^clamav[\\s/]", "^cobweb/", "^coccoc", "^dap ",
    "^ddg[_-]android", "^discourse", "^dispatch/\\d", "^downcast/", "^duckduckgo", "^enigma browser",
    "^evernote clip resolver", "^facebook", "^faraday", "^fdm[\\s/]\\d", "^getright/", "^gozilla/",
    "^hatena", "^hobbit", "^hotzonu", "^hwcdn/", "^infox-wisg", "^invision", "^jeode/", "^jetbrains",
    "^jetty/", "^jigsaw", "^linkdex", "^lwp-", "^lwp::simple", "^mailchimp\\.com$", "^metauri",
    "^microsoft bits", "^microsoft data", "^microsoft office existence",
    "^microsoft office protocol discovery", "^microsoft windows network diagnostics",
    "^microsoft-cryptoapi", "^microsoft-webdav-miniredir", "^movabletype",
    "^mozilla/\\d\\.\\d \\(compatible;?\\)$", "^my browser$", "^navermailapp", "^netsurf",
    "^node-superagent", "^octopus", "^offline explorer", "^ossproxy", "^pagething", "^panscient",
    "^perimeterx", "^php", "^postrank", "^python", "^ramblermail", "^read", "^reed", "^restsharp/",
    "^shareaza", "^shockwave flash", "^smallproxy", "^snapchat", "^space bison", "^sprinklr", "^svn",
    "^swcd ", "^t-online browser", "^taringa", "^test certificate info", "^the knowledge ai",
    "^thinklab", "^traackr.com", "^tumblr/", "^vbulletin", "^venus/fedoraplanet", "^w3c",
    "^webbandit/", "^webcopier", "^wget", "^whatsapp", "^www-mechanize", "^xenu link sleuth",
    "^yahoo", "^yandex", "^zdm/\\d", "^zeushdthree", "adbeat\\.com", "appinsights", "archive",
    "ask jeeves/teoma", "bit\\.ly/", "bluecoat drtr", "bot", "browsex", "burpcollaborator",
    "capture", "catch", "check", "chrome-lighthouse", "chromeframe", "client", "cloud", "crawl",
    "daemon", "dareboost", "datanyze", "dataprovider", "dejaclick", "dmbrowser", "download", "email",
    "evc-batch/", "feed", "fetch", "firephp", "freesafeip", "ghost", "gomezagent", "google",
    "headlesschrome/", "httrack", "hubspot marketing grader", "hydra", "ibisbrowser", "images",
    "index", "ips-agent", "java", "jorgee", "library", "mail\\.ru/", "manager", "monitor",
    "neustar wpm", "news", "nutch", "offbyone", "optimize", "pagespeed", "parse", "perl", "phantom",
    "pingdom", "powermarks", "preview", "probe", "ptst[\\s/]\\d", "reader", "rigor", "rss", "scan",
    "scrape", "search", "server", "sogou", "sparkler/", "spider", "statuscake", "stumbleupon\\.com",
    "supercleaner", "synapse", "synthetic", "toolbar", "torrent", "tracemyfile", "transcoder",
    "trendsmapresolver", "twingly recon", "url", "valid", "virtuoso", "wappalyzer", "webglance",
    "webkit2png", "websitemetadataretriever", "whatcms/", "wordpress", "zgrab",
]
_BOT = re.compile("|".join(_BOT_PATTERNS), re.ASCII)


def is_bot(ua):
    """Appendix A on ASCII-only user agents (enough for the agents these tests use)."""
    return bool(ua) and _BOT.search(ua.lower()) is not None


# ------------------------------------------------------------------------------------------
# a model of the merge rules, from the spec's words

_REQUEST_LEVEL = ("platform_id", "timing", "user_info", "client_info", "session_id",
                  "auto_view_id", "view_id", "request_id")


def _lower_if_upper(s):
    return s.lower() if any(ch.isupper() for ch in s) else s


def push_down(lr, child, kind):
    """§1.2 push-down on a copy of one child of lr; kind: view, delivery_log, impression, action."""
    c = type(child)()
    c.CopyFrom(child)
    if not c.platform_id:
        c.platform_id = lr.platform_id
    target = c
    if kind == "delivery_log":
        c.request.platform_id = c.platform_id
        target = c.request
    luid_b = lr.user_info.log_user_id.lower()
    if lr.HasField("user_info"):
        if not target.user_info.log_user_id:
            target.user_info.log_user_id = luid_b
        else:
            target.user_info.log_user_id = _lower_if_upper(target.user_info.log_user_id)
    elif target.HasField("user_info"):
        target.user_info.log_user_id = _lower_if_upper(target.user_info.log_user_id)
    if lr.HasField("timing"):
        target.timing.SetInParent()
        for f in ("client_log_timestamp", "event_api_timestamp"):
            if not getattr(target.timing, f) and getattr(lr.timing, f):
                setattr(target.timing, f, getattr(lr.timing, f))
    if lr.HasField("client_info"):
        target.client_info.SetInParent()
        for f in ("client_type", "traffic_type"):
            if not getattr(target.client_info, f) and getattr(lr.client_info, f):
                setattr(target.client_info, f, getattr(lr.client_info, f))
    if kind == "action" and lr.HasField("device") and not c.HasField("device"):
        c.device.SetInParent()
    return c


def children(ts, lr, kind):
    """Pushed-down children of one kind with SetLogTimestamp (§2.1) applied."""
    field = {"view": "view", "delivery_log": "delivery_log", "impression": "impression",
             "action": "action"}[kind]
    out = []
    for ch in getattr(lr, field):
        c = push_down(lr, ch, kind)
        (c.request if kind == "delivery_log" else c).timing.log_timestamp = ts
        out.append(c)
    return out


def fix_delivery_log(dl):
    """§2.6 on a copy: fill empty response insertion ids, then the v1 optimized SDK rewrite."""
    d = type(dl)()
    d.CopyFrom(dl)
    for ins in d.response.insertion:
        if not ins.insertion_id:
            ins.insertion_id = "%s-%d-%s" % (d.request.request_id, ins.position, ins.content_id)
    if d.execution.execution_server == pb.execution.SDK and not d.request.insertion and \
            d.response.insertion:
        rebuilt = []
        for ins in d.response.insertion:
            r = d.request.insertion.add()
            r.CopyFrom(ins)
            r.ClearField("position")
            rebuilt.append(pb.delivery.Insertion(insertion_id=ins.insertion_id,
                                                 content_id=ins.content_id, position=ins.position))
        del d.response.insertion[:]
        d.response.insertion.extend(rebuilt)
    return d


def _strip_user_info(m):
    if m.HasField("user_info"):
        m.user_info.ClearField("log_user_id")
        m.user_info.ClearField("user_id")
        if not m.user_info.ListFields():
            m.ClearField("user_info")


def _bundle_insertion(ins, drop_content):
    x = type(ins)()
    x.CopyFrom(ins)
    for f in _REQUEST_LEVEL:
        x.ClearField(f)
    x.ClearField("insertion_id")
    if drop_content:
        x.ClearField("content_id")
    return x


def put(field, src):
    """Copies src into a sub-message field and marks it present even when src is empty."""
    field.SetInParent()
    field.CopyFrom(src)


def _set_id(ids, field, value):
    if value and not getattr(ids, field):
        setattr(ids, field, value)


def expect_joined_impression(view, api, sdk, insertion_id, impression):
    """§11.2 build order from the full records (pushed down, log timestamps set): the View (or
    None), the API and SDK DeliveryLogs of the combined log (either may be None), the tiny
    insertion id, the Impression. Then §12.4's user_id stripping."""
    je = pb.join.JoinedEvent()
    ids = je.ids
    if view is not None:
        _set_id(ids, "platform_id", view.platform_id)
        _set_id(ids, "log_user_id", view.user_info.log_user_id)
        _set_id(ids, "session_id", view.session_id)
        _set_id(ids, "view_id", view.view_id)
        put(je.view, view)
        for f in ("platform_id", "session_id", "view_id"):
            je.view.ClearField(f)
        _strip_user_info(je.view)
    chosen = sdk if sdk is not None else api
    req = chosen.request
    _set_id(ids, "platform_id", req.platform_id)
    _set_id(ids, "log_user_id", req.user_info.log_user_id)
    _set_id(ids, "session_id", req.session_id)
    _set_id(ids, "view_id", req.view_id)
    _set_id(ids, "request_id", req.request_id)
    put(je.request, req)
    for f in ("platform_id", "session_id", "request_id", "view_id", "insertion"):
        je.request.ClearField(f)
    _strip_user_info(je.request)
    if api is not None and sdk is not None:
        h = je.hidden_api_request
        h.request_id = api.request.request_id
        put(h.timing, api.request.timing)
        put(h.client_info, api.request.client_info)
    put(je.response, chosen.response)
    je.response.ClearField("insertion")
    if api is not None and api.HasField("execution"):
        put(je.api_execution, execution_without_insertions(api.execution))
    if sdk is not None and sdk.HasField("execution"):
        put(je.sdk_execution, execution_without_insertions(sdk.execution))
    ids.insertion_id = insertion_id
    resp = [i for i in chosen.response.insertion if i.insertion_id == insertion_id][0]
    put(je.response_insertion, _bundle_insertion(resp, False))
    reqins = [i for i in chosen.request.insertion if i.content_id == resp.content_id]
    if reqins:
        put(je.request_insertion, _bundle_insertion(reqins[0], True))
    if api is not None:
        ex = execution_insertions(api.execution)
        match = [i for i in ex if i.insertion_id == insertion_id] or \
            [i for i in ex if i.content_id == resp.content_id]
        if match:
            put(je.api_execution_insertion, _bundle_insertion(match[0], True))
    for f, v in (("platform_id", impression.platform_id),
                 ("log_user_id", impression.user_info.log_user_id),
                 ("session_id", impression.session_id), ("view_id", impression.view_id),
                 ("request_id", impression.request_id), ("insertion_id", impression.insertion_id),
                 ("impression_id", impression.impression_id)):
        _set_id(ids, f, v)
    put(je.impression, impression)
    for f in ("platform_id", "session_id", "impression_id", "view_id", "request_id", "insertion_id"):
        je.impression.ClearField(f)
    _strip_user_info(je.impression)
    put(je.timing, impression.timing)
    return je


def expect_joined_action(joined_impression, action, tiny_content_id=None):
    """§11.3: the joined impression whole plus the Action; single_cart_content for a cart."""
    je = pb.join.JoinedEvent()
    je.CopyFrom(joined_impression)
    a = je.action
    put(a, action)
    for f in ("platform_id", "session_id", "view_id", "request_id", "insertion_id", "impression_id"):
        a.ClearField(f)
    _strip_user_info(a)
    for f, v in (("platform_id", action.platform_id), ("log_user_id", action.user_info.log_user_id),
                 ("session_id", action.session_id), ("view_id", action.view_id),
                 ("request_id", action.request_id), ("insertion_id", action.insertion_id),
                 ("impression_id", action.impression_id)):
        _set_id(je.ids, f, v)
    if action.HasField("cart"):
        content = tiny_content_id if tiny_content_id is not None else action.content_id
        hit = [cc for cc in action.cart.contents if cc.content_id == content]
        if hit:
            put(a.single_cart_content, hit[0])
            if not a.single_cart_content.quantity:
                a.single_cart_content.quantity = 1
    put(je.timing, action.timing)
    return je


def expect_fri(joined_impressions, joined_actions):
    """§12.2: one FlatResponseInsertion from the joined events of one insertion's window."""
    src = joined_impressions[0] if joined_impressions else joined_actions[0]
    f = pb.join.FlatResponseInsertion()
    put(f.ids, src.ids)
    f.ids.ClearField("impression_id")
    put(f.timing, src.request.timing)
    for name in ("session_profile", "session", "view", "request", "request_insertion", "response",
                 "response_insertion", "api_execution", "api_execution_insertion", "sdk_execution"):
        getattr(f, name).CopyFrom(getattr(src, name))
        getattr(f, name).SetInParent()
    if src.HasField("hidden_api_request"):
        put(f.hidden_api_request, src.hidden_api_request)
    for j in joined_impressions:
        i = f.impression.add()
        i.CopyFrom(j.impression)
        i.impression_id = j.ids.impression_id
    for j in joined_actions:
        f.action.add().CopyFrom(j.action)
    return f


# ------------------------------------------------------------------------------------------
# Avro rows against protobuf messages (the mapping of other-jobs §A.5 / flat-output §14.2)

def _avro_scalar(fd, v):
    if fd.type == fd.TYPE_ENUM:
        ev = fd.enum_type.values_by_number.get(v)
        return ev.name if ev is not None else "UNRECOGNIZED"
    if fd.type in (fd.TYPE_UINT64, fd.TYPE_FIXED64) and v >= 1 << 63:
        return v - (1 << 64)
    if fd.type == fd.TYPE_FLOAT:
        return struct.unpack("<f", struct.pack("<f", v))[0]
    return v


def avro_diff(row, msg, path="", out=None):
    """Differences between an Avro row and a protobuf message: every declared field compared,
    unset messages must be null, unset scalars their defaults, maps as {key, value} arrays."""
    out = [] if out is None else out
    if row is None:
        out.append(path + ": null row for a present message")
        return out
    for fd in msg.DESCRIPTOR.fields:
        p = path + "." + fd.name
        if fd.name not in row:
            out.append(p + ": no such Avro field")
            continue
        r, v = row[fd.name], getattr(msg, fd.name)
        if fd.label == fd.LABEL_REPEATED:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                vf = fd.message_type.fields_by_name["value"]
                got = {e["key"]: e["value"] for e in r}
                if sorted(got) != sorted(v.keys()):
                    out.append("%s: keys %r, want %r" % (p, sorted(got), sorted(v.keys())))
                    continue
                for k in v:
                    if vf.message_type is not None:
                        avro_diff(got[k], v[k], "%s[%r]" % (p, k), out)
                    elif got[k] != _avro_scalar(vf, v[k]):
                        out.append("%s[%r]: %r, want %r" % (p, k, got[k], v[k]))
                continue
            if len(r) != len(v):
                out.append("%s: %d elements, want %d" % (p, len(r), len(v)))
                continue
            for i, (ri, vi) in enumerate(zip(r, v)):
                if fd.message_type is not None:
                    avro_diff(ri, vi, "%s[%d]" % (p, i), out)
                elif ri != _avro_scalar(fd, vi):
                    out.append("%s[%d]: %r, want %r" % (p, i, ri, vi))
        elif fd.message_type is not None:
            if not msg.HasField(fd.name):
                if r is not None:
                    out.append(p + ": present, want null")
            elif r is None:
                out.append(p + ": null, want present")
            else:
                avro_diff(r, v, p, out)
        elif r != _avro_scalar(fd, v):
            out.append("%s: %r, want %r" % (p, r, _avro_scalar(fd, v)))
    return out


def check_avro_row(c, row, msg, what):
    d = avro_diff(row, msg)
    c.check(not d, "%s: Avro row differs from the message: %s" % (what, "; ".join(d[:8])))


# ------------------------------------------------------------------------------------------
# test driver

def run_tests(tests, work=None):
    """Runs test(c) for each function, each counted on one Checks; an exception fails that test
    and the others still run. Removes the work directory when everything passed (it is kept for
    a look otherwise), prints the final 'N passed, N failed' line and exits."""
    import traceback
    c = Checks()
    for t in tests:
        before = c.failed
        try:
            t(c)
        except SystemExit as e:
            c.failed += 1
            print("FAIL: %s: %s" % (t.__name__, e), file=sys.stderr)
        except Exception:
            c.failed += 1
            print("FAIL: %s raised:\n%s" % (t.__name__, traceback.format_exc()), file=sys.stderr)
        print("%s %s" % ("ok  " if c.failed == before else "FAIL", t.__name__))
    if work and not c.failed:
        shutil.rmtree(work, ignore_errors=True)
    elif work:
        print("work directory kept: " + work, file=sys.stderr)
    c.done()
