"""The status page at `/`, rendered by headless Chromium (Debian's chromium) against a live
flat-output job reading `logproc kafka-local`, checked for what a person looks for:

- the job's name and run id in the title bar, its state RUNNING;
- the operator graph: an SVG node per operator uid, with the joins among them;
- the operators table: the root operator and the joins with non-zero record counts;
- the tasks table: the four partitions' tasks, with completed checkpoints and a checkpoint time;
- the cards: completed checkpoints > 0, a last-checkpoint time, records in > 0.

The DOM is the one Chromium holds after the page's scripts ran (--dump-dom), so the test fails if
the page's fetches, its JSON handling or its rendering break. A screenshot is kept in
$LOGPROC_ARTIFACTS/status_page.png.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashlib  # noqa: E402
import lptest  # noqa: E402

BIN = lptest.BIN
c = lptest.Checks()
work = lptest.workdir("status-page")
procs = []
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
artifacts = os.environ.get("LOGPROC_ARTIFACTS") or os.path.join(work, "artifacts")
os.makedirs(artifacts, exist_ok=True)


class Dom(HTMLParser):
    """Text per element id (tables, cards) and the graph's node uids."""

    def __init__(self):
        super().__init__()
        self.stack, self.text, self.node_uids, self.rows = [], {}, [], {}
        self.row = None
        self.cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append(a.get("id"))
        if tag == "g" and "data-uid" in a:
            self.node_uids.append(a["data-uid"])
        if tag == "tr":
            self.row = []
        if tag == "td":
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "td" and self.row is not None:
            self.row.append(self.cell)
            self.cell = None
        if tag == "tr" and self.row:
            table = next((i for i in reversed(self.stack) if i in ("operators", "tasks")), None)
            if table:
                self.rows.setdefault(table, []).append(self.row)
            self.row = None
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        for i in self.stack:
            if i:
                self.text[i] = self.text.get(i, "") + data


def chrome(*args):
    return subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" +
                           os.path.join(work, "profile")] + list(args),
                          capture_output=True, text=True, timeout=120)


def num(s):
    return int(s.replace(",", "")) if re.fullmatch(r"[\d,]+", s or "") else -1


try:
    c.check(chromium is not None, "Debian's chromium is installed (scripts/deps.sh)")
    bs = crashlib.start_kafka_local(work, procs, ["tracking.event.log-request:4"])
    subprocess.run([BIN, "generate", "logs", "--profile", "local", "--bootstrapServers", bs],
                   capture_output=True, check=True)
    log = os.path.join(work, "job.err")
    job = subprocess.Popen([BIN, "run", "flat-output", "-b", bs, "--no-kafkaGroup", "--jobLabel",
                            "page", "-o", os.path.join(work, "out"), "--controlDir",
                            os.path.join(work, "ctl"), "--checkpointInterval", "PT0.5S",
                            "--restPort", "0"], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    procs.append(job)
    rest = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and job.poll() is None:
        text = open(log).read()
        m = re.search(r"rest listening address=127\.0\.0\.1 port=(\d+)", text)
        if m and text.count("component=checkpoint completed") >= 8:
            rest = "http://127.0.0.1:%s/" % m.group(1)
            break
        time.sleep(0.1)
    c.check(rest is not None, "the job serves REST and has checkpointed")

    # The page is loaded until its scripts have filled it in (body data-loaded); a page that
    # never loads fails the checks below.
    # Every task checkpoints on its own clock: load again until all four have (bounded).
    dom = None
    for _ in range(20):
        p = chrome("--virtual-time-budget=5000", "--dump-dom", rest)
        if 'data-loaded="1"' in p.stdout:
            dom = p.stdout
            d = Dom()
            d.feed(dom)
            if len(d.rows.get("tasks", [])) == 4 and all(num(t[5]) > 0 for t in d.rows["tasks"]):
                break
    c.check(dom is not None, "Chromium rendered the page and its scripts ran")
    d = Dom()
    d.feed(dom or "")
    title = d.text.get("job-title", "")
    c.check("page.flat-output" in title and "flat-output" in title and re.search(r"run [0-9a-f]{8}", title),
            "the title names the job and its run: %r" % title)
    c.check("RUNNING" in d.text.get("card-state", ""), "the state card says RUNNING")
    for uid in ("join-view-insertion", "join-insertion-impression", "join-impression-action",
                "sink-s3-etl-joined_impression"):
        c.check(uid in d.node_uids, "the graph has a node for %s" % uid)
    ops = {r[0]: r for r in d.rows.get("operators", [])}
    c.check(set(ops) == set(d.node_uids) and len(ops) > 20,
            "the operators table and the graph list the same %d operators" % len(ops))
    for uid in ("join-impression-action", "sink-s3-etl-joined_impression"):
        c.check(uid in ops and num(ops[uid][1]) > 0, "%s shows a non-zero record count: %s" % (uid, ops.get(uid)))
    tasks = d.rows.get("tasks", [])
    c.check(len(tasks) == 4 and all(num(t[5]) > 0 and re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", t[6])
                                    for t in tasks),
            "the tasks table shows 4 tasks with checkpoints and their times: %s" % tasks[:1])
    c.check(num(d.text.get("card-checkpoints", "").replace("completed checkpoints", "")) > 0,
            "the checkpoints card counts completed checkpoints")
    c.check(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", d.text.get("card-last-checkpoint", "")),
            "the last-checkpoint card shows a time")
    c.check(num(d.text.get("card-records-in", "").replace("records in", "")) > 0, "records in > 0")

    shot = os.path.join(artifacts, "status_page.png")
    if os.path.exists(shot):
        os.unlink(shot)
    chrome("--virtual-time-budget=5000", "--window-size=1400,1600", "--screenshot=" + shot, rest)
    c.check(os.path.isfile(shot) and open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n",
            "a PNG screenshot is kept at %s" % shot)
finally:
    crashlib.stop_all(procs)
c.done()
