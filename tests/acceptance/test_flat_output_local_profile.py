"""The generator's local profile through flat-output with the local deployment's arguments
(spec/fake-data.md §8, issue 3): every output predicted record by record by an independent
Python model of the join rules, and the drops explained.

    logproc generate logs --profile=local -o local.rec
    logproc run flat-output --source local.rec --combineDeliveryLogWindow=PT5S
        --viewInsertionJoinMax=PT20S --insertionImpressionJoinMax=PT20S
        --impressionActionJoinMax=PT20S --flatResponseInsertionGapDuration=PT1M
        --nonBuyerUserSparseHash=6102540093495235004 --nonBuyerUserSparseHash=4078401918190321518

What the rules make of the generator's timeline, and why each figure is what it is
---------------------------------------------------------------------------------
The input (fake-data §1.C, §3, §4): 10 users in lock-step. Per user, relative to the start,
view i is sent at 1+i s (i = 0..9), its DeliveryLog (request i, no view_id: setupForInferredIds)
at 1.5+i s, the impressions of request i at 3.5+i s, navigates at 8.5+i s, checkouts at 13.5+i s
and purchases at 18.5+i s (each a simulated send time, which is the record time and so every
record's log_timestamp). Every request lists the same 10 items (i-1-1, i-1-10, i-1-100,
i-1-11 ... i-1-17: the catalogue sorted as strings, fake-data §2) and count(0.7, 10) = 7 of them
are impressed: the first 7, so 10 users x 10 requests x 7 = 700 impressions, none carrying an
insertion, request or view id. About 20% of the requests are SDK logs with a shadow-traffic API
copy at the same instant and with the same client_request_id (shadowTrafficRate 1.0).

1. CombineDeliveryLog (window 5 s): each SDK log and its shadow copy share a client request id
   and a send time, so they pair into one combined log; the SDK copy is the one the joins see.
   100 combined logs of 10 insertions each.
2. View join (J1, nearest view of the user in [lt-10m, lt+20s], ties to the later, §7.7):
   request i at 1.5+i s is exactly 0.5 s from view i and view i+1, so the tie gives view i+1;
   request 9 has no view after it and takes view 9. Every log joins: 1000 tiny insertions =
   debug_partial_response_insertion 1000, nothing dropped or late.
3. Insertion join (J2, nearest insertion in [lt-30m, lt+20s] in the user's scope of the
   impression's content id, the only id it has, §7.10): the impressions of request b are logged
   at 3.5+b s, which is exactly the log time of request b+2 (1.5+(b+2) s); an exact hit wins, so
   batch b joins request b+2 for b = 0..7. Batches 8 and 9 (11.5 s and 12.5 s) come after the
   last request (10.5 s); no insertion lies within 20 s after them, so they take the nearest
   earlier one, request 9's. Requests 0 and 1 get no impression; request 9 gets three batches
   (7, 8 and 9). All 700 join: dropped_insertion_impressions 0.
4. Redundant impressions (§10, key = the insertion id): the first impression of an insertion is
   the root, later ones within a day are redundant. On request 9, batch 7 arrives first and is
   kept; batches 8 and 9 are redundant: 2 batches x 7 impressions x 10 users =
   dropped_redundant_impression 140, and joined_impression 700 - 140 = 560.
5. Action join (J3, nearest impression in [lt-1d, lt+20s] of the action's content id):
   navigate i (and the add-to-cart in its LogRequest) at 8.5+i s hits the impression logged at
   the same instant, batch i+5's, for i = 0..4 (for i = 3 and 4 that is a redundant impression of
   batch 8 or 9); every later action (navigates i >= 5, the checkouts, the purchases) comes
   after the last impression batch (12.5 s) and takes the nearest earlier impression of its
   content, batch 9's. The reducer re-points an action on a redundant impression to the root of
   its insertion, batch 7's (§10). Checkout and purchase carts hold only the action's own item,
   so each action is one tiny action: debug_rhs_tiny_action = the input's actions (navigates +
   add-to-carts + checkouts + purchases; 173 with the default seed), all joined: joined_action =
   debug_rhs_tiny_action, dropped_impression_actions 0.
6. Flat response insertions (session window per insertion, gap 1 min): each impressed insertion
   has one kept impression, and the record times of its joined events (the joins' timer times)
   lie less than a minute apart, so one window each: flat_response_insertion =
   joined_impression = 560.
7. debug_tiny_event = the reducer's output = 560 impressions + the joined actions' tiny actions
   (733); the joined-event topic holds the 560 joined impressions and the joined actions.
8. Nothing else: the generator sets no ignore_usage (0 dropped_ignore_usage_*); its execution
   insertions carry numeric features only, no sparse ids, so neither non-buyer hash can match
   (0 dropped_non_buyer_*); every record has a log user id and a content id (0 validation_error);
   the user agents are Chrome ones that match no bot pattern and the traffic is PRODUCTION or
   SHADOW (0 dropped_delivery_log_*, dropped_view_is_bot); the input is in time order and every
   operator's watermark hold-back covers its inputs' delays (0 late_*); every merge finds its
   records (0 dropped_merge_*); no two records share an id (0 mismatch_error, 0 duplicates).

The model below does not hard-code any of this: it applies the rules (push-down, validation,
dedupe, filters, combine, the three nearest-selection joins with the literal binary search of
§7.3/§7.7, the content filter, the reducer, merge, filters, session windows) to the records read
from the generated file, predicts every output record by id, and the test compares the job's
outputs with those predictions id for id. The narrative above is then checked against the model
(per user, batches 0..9 join requests 2..9, 9, 9; 14 redundant per user).

Event time. A join evaluates a waiting child when its watermark passes the child's timer; which
parents it can see then depends on the watermarks. The model computes, for every record and
timer, the source watermark level at which it happens (a parent emitted at level E is seen by a
timer firing at level F when E <= F: the runtime fires upstream operators first), and asserts as
preconditions that every parent inside a child's window is visible, that no record is late and
that no action reaches the reducer before its root. Those hold under any watermark polling
schedule (per record, or every N records as the runtime does), so the predictions do not depend
on how often the source publishes its watermark.
"""
import collections

import flatlib as F
from flatlib import pb

WORK = F.workdir("test_flat_output_local_profile")
F.load_protos(WORK)

ARGS = ["--combineDeliveryLogWindow=PT5S", "--viewInsertionJoinMax=PT20S",
        "--insertionImpressionJoinMax=PT20S", "--impressionActionJoinMax=PT20S",
        "--flatResponseInsertionGapDuration=PT1M",
        "--nonBuyerUserSparseHash=6102540093495235004",
        "--nonBuyerUserSparseHash=4078401918190321518"]
W = 5000                       # --combineDeliveryLogWindow
M1, M2, M3 = 20000, 20000, 20000   # the joins' maxOOO (the *JoinMax flags)
MIN1, MIN2, MIN3 = 600000, 1800000, 86400000  # the joins' maxTime (defaults of the *JoinMin flags)
GAP = 60000                    # --flatResponseInsertionGapDuration
TTL = MIN3                     # redundant-impression ttl = |impressionActionJoinMin|
HASHES = [6102540093495235004, 4078401918190321518]
OOO = 1001                     # source watermark = max ts - --maxLogRequestOutOfOrderness - 1
KEEP = {"view": 6 * 3600000, "delivery_log": 86400000, "impression": 86400000, "action": 86400000}
CI = pb.common.ClientInfo
E = pb.execution


class Model:
    def __init__(self):
        self.pre = []        # violated preconditions
        self.side = collections.Counter()

    def need(self, cond, what):
        if not cond:
            self.pre.append(what)


# ---- §7.3 / §7.7: the literal binary search, insertion and nearest selection ----

def bsearch(lts, key):
    lo, hi = 0, len(lts) - 1
    while lo <= hi:
        mid = (lo + hi) >> 1
        if lts[mid] < key:
            lo = mid + 1
        elif lts[mid] > key:
            hi = mid - 1
        else:
            return mid, True
    return lo, False


def scope_insert(scope, lt, item):
    i, _ = bsearch([x[0] for x in scope], lt)
    scope.insert(i, (lt, item))


def nearest(scope, r, max_time, max_ooo):
    if not scope:
        return None
    lts = [x[0] for x in scope]
    i, hit = bsearch(lts, r)
    if hit:
        pick = scope[i]
    elif i == len(scope):
        pick = scope[-1]
    elif i == 0:
        pick = scope[0]
    else:
        e, l = r - lts[i - 1], lts[i] - r
        ev, lv = e <= max_time, l <= max_ooo
        if not ev and not lv:
            return None
        pick = scope[i - 1] if ev and (not lv or e < l) else scope[i]
    if pick[0] < r - max_time or pick[0] > r + max_ooo:
        return None
    return pick[1]


def infer(m, parents, child, rscopes, lscopes, content, max_time, max_ooo, fire, what):
    """Nearest parent of child (dict with lt) among parents (dicts with lt, level, seq) visible
    at level `fire`: the first right scope that yields a join wins (§7.5)."""
    r = child["lt"]
    for p in parents:
        if r - max_time <= p["lt"] <= r + max_ooo:
            m.need(p["level"] <= fire, "%s: parent %s not visible at the child's timer" % (what, p["id"]))
    visible = sorted((p for p in parents if p["level"] <= fire), key=lambda p: (p["level"], p["seq"]))
    for sid in rscopes(child):
        if not sid:
            continue
        scope = []
        for p in visible:
            if sid in lscopes(p):
                scope_insert(scope, p["lt"], p)
        if content:
            ids = {child["content_id"]} - {""}
            if ids:
                scope = [x for x in scope if x[1]["content_id"] in ids]
        pick = nearest(scope, r, max_time, max_ooo)
        if pick is not None:
            return pick
    return None


# ---- the pipeline ----

def run_model(recs):
    m = Model()
    levels, mx = [], None
    for ts, _ in recs:
        levels.append(float("-inf") if mx is None else mx - OOO)
        mx = ts if mx is None else max(mx, ts)

    # split, push-down, SetLogTimestamp; per child: ts, arrival level, order
    streams = {k: [] for k in ("view", "delivery_log", "impression", "action")}
    seq = 0
    for n, (ts, lr) in enumerate(recs):
        for kind in streams:
            for ch in F.children(ts, lr, kind):
                seq += 1
                streams[kind].append({"msg": ch, "ts": ts, "lt": ts, "level": levels[n], "seq": seq})
                # a record is late for the joins only behind their watermark; sorted input never is
                m.need(ts >= levels[n], "input out of time order at record %d" % n)

    def keep_first(kind, key):
        seen, out = {}, []
        for x in streams[kind]:
            k = key(x["msg"])
            if k in seen and x["ts"] < seen[k] + KEEP[kind]:
                continue
            seen[k] = x["ts"]
            out.append(x)
        return out

    def luid(msg, kind):
        return (msg.request if kind == "delivery_log" else msg).user_info.log_user_id

    # views: validate, keep-first, bot filter
    views = [x for x in streams["view"] if luid(x["msg"], "view")]
    m.side["validation_error"] += len(streams["view"]) - len(views)
    streams["view"] = views
    views = []
    for x in keep_first("view", lambda v: (v.platform_id, v.view_id)):
        if F.is_bot(x["msg"].device.browser.user_agent):
            m.side["dropped_view_is_bot"] += 1
        else:
            views.append(x)

    # delivery logs: validate, keep-first, traffic and bot filters, FixDeliveryLog
    ok = []
    for x in streams["delivery_log"]:
        req = x["msg"].request
        errs = (not req.user_info.log_user_id) + \
            any(len(v.list_value.values) != len(req.insertion_matrix_headers)
                for v in req.insertion_matrix.values)
        m.side["validation_error"] += errs
        if not errs:
            ok.append(x)
    streams["delivery_log"] = ok
    logs = []
    for x in keep_first("delivery_log", lambda d: (d.platform_id, d.request.request_id)):
        t = x["msg"].request.client_info.traffic_type
        prio = 2 if t == CI.SHADOW else 1 if t in (CI.REPLAY, CI.INTERNAL, CI.LOAD_TEST) else 3
        if prio <= 1:
            m.side["dropped_delivery_log_should_not_join"] += 1
        elif F.is_bot(x["msg"].request.device.browser.user_agent):
            m.side["dropped_delivery_log_is_bot"] += 1
        else:
            x["msg"] = F.fix_delivery_log(x["msg"])
            x["prio"] = prio
            logs.append(x)

    # impressions and actions: keep-first, then validation
    imps = []
    for x in keep_first("impression", lambda i: (i.platform_id, i.impression_id)):
        i = x["msg"]
        if not i.user_info.log_user_id or not (i.insertion_id or i.content_id):
            m.side["validation_error"] += (not i.user_info.log_user_id) + (not (i.insertion_id or i.content_id))
            continue
        m.need(not (i.insertion_id or i.request_id or i.view_id),
               "impression %s names a parent: the model covers inferred joins only" % i.impression_id)
        imps.append(x)
    acts = []
    for x in keep_first("action", lambda a: (a.platform_id, a.action_id)):
        a = x["msg"]
        cart = list(a.cart.contents)
        errs = (not a.user_info.log_user_id) + \
            (not (a.impression_id or a.insertion_id or a.content_id) and all(not c.content_id for c in cart)) + \
            any(c.quantity == 0 for c in cart) + any(not c.content_id for c in cart)
        if errs:
            m.side["validation_error"] += errs
            continue
        m.need(not (a.impression_id or a.insertion_id or a.request_id or a.view_id),
               "action %s names a parent: the model covers inferred joins only" % a.action_id)
        acts.append(x)

    # CombineDeliveryLog: one combined log per (user, client request id), emitted at first + W
    groups = collections.OrderedDict()
    for x in logs:
        req = x["msg"].request
        k = (x["msg"].platform_id, req.user_info.log_user_id, req.client_request_id)
        m.need(req.client_request_id != "", "a log without client request id")
        groups.setdefault(k, []).append(x)
    combined = []
    for k, members in groups.items():
        first = members[0]["ts"]
        for x in members:
            # joins the pending log iff it is read before the timer first+W fires
            m.need(x["level"] < first + W and x["ts"] - OOO < first + W,
                   "log %s near its combine window's end" % x["msg"].request.request_id)
        slots = {}
        for x in members:
            slot = "sdk" if x["msg"].execution.execution_server == E.SDK else "api"
            if slot not in slots or x["prio"] >= slots[slot]["prio"]:
                slots[slot] = x
        chosen = slots.get("sdk") or slots["api"]
        combined.append({"api": slots.get("api"), "sdk": slots.get("sdk"), "chosen": chosen,
                         "ts": first + W, "level": first + W, "lt": chosen["lt"],
                         "seq": chosen["seq"], "key": k[:2]})

    users = sorted({c["key"] for c in combined} |
                   {(x["msg"].platform_id, x["msg"].user_info.log_user_id) for x in views + imps + acts})

    out = {"insertions": [], "j2": [], "j3": [], "dropped_imp": [], "dropped_act": [], "tiny_actions": []}
    bundle = {}
    for c in combined:
        for ins in c["chosen"]["msg"].response.insertion:
            bundle[(c["key"], ins.insertion_id)] = c

    for key in users:
        uviews = [{"id": v["msg"].view_id, "lt": v["lt"], "level": v["level"], "seq": v["seq"],
                   "session_id": v["msg"].session_id} for v in views
                  if (v["msg"].platform_id, luid(v["msg"], "view")) == key]
        # J1: view x insertion (right outer, luid scope), J1's watermark = source - W
        j1 = []
        for c in (x for x in combined if x["key"] == key):
            req = c["chosen"]["msg"].request
            m.need(not req.view_id, "request %s names its view: the model covers inferred joins only" % req.request_id)
            t1 = c["ts"] + M1
            fire = t1 + W
            child = {"lt": c["lt"], "content_id": ""}
            v = infer(m, uviews, child, lambda ch: [req.view_id, key[1]], lambda p: {key[1]}, False, MIN1, M1, fire,
                      "J1 " + req.request_id)
            for ins in c["chosen"]["msg"].response.insertion:
                j1.append({"key": key, "id": ins.insertion_id, "insertion_id": ins.insertion_id,
                           "content_id": ins.content_id, "request_id": req.request_id,
                           "view_id": v["id"] if v else "", "session_id": v["session_id"] if v else "",
                           "lt": c["lt"], "ts": t1, "level": fire, "seq": c["seq"]})
        out["insertions"].extend(j1)
        m.need(len({p["id"] for p in j1}) == len(j1), "duplicate insertion ids of user %r" % (key,))

        # J2: insertion x impression; J2's watermark = source - W - M1
        for x in (x for x in imps if (x["msg"].platform_id, x["msg"].user_info.log_user_id) == key):
            i = x["msg"]
            t2 = x["ts"] + M2
            fire = t2 + W + M1
            child = {"lt": x["lt"], "content_id": i.content_id}
            p = infer(m, j1, child, lambda ch: [i.insertion_id, i.request_id, i.view_id, i.content_id],
                      lambda p: {p["request_id"], p["view_id"], p["content_id"]}, True, MIN2, M2, fire,
                      "J2 " + i.impression_id)
            if p is None:
                out["dropped_imp"].append(i.impression_id)
                continue
            out["j2"].append({"id": i.impression_id, "impression_id": i.impression_id, "action_id": "",
                              "insertion_id": p["insertion_id"], "request_id": p["request_id"],
                              "view_id": p["view_id"], "session_id": p["session_id"],
                              "content_id": p["content_id"], "lt": x["lt"], "ts": t2, "level": fire,
                              "seq": x["seq"], "key": key, "imp_ts": x["ts"]})
        uj2 = [p for p in out["j2"] if p["key"] == key]

        # tiny actions (cart split, §6) and J3; J3's watermark = source - W - M1 - M2
        pending = set()
        for x in (x for x in acts if (x["msg"].platform_id, x["msg"].user_info.log_user_id) == key):
            a = x["msg"]
            contents = [a.content_id]
            split = a.action_type in (pb.event.CHECKOUT, pb.event.PURCHASE) and len(a.cart.contents) > 0
            if split:
                contents = []
                for cid in [a.content_id] + [cc.content_id for cc in a.cart.contents]:
                    if cid and cid not in contents:
                        contents.append(cid)
            for cid in contents:
                out["tiny_actions"].append((a.action_id, cid))
                pk = a.action_id + "\x01" + cid
                if pk in pending:
                    m.side["dropped_action_duplicate_pending"] += 1
                    continue
                pending.add(pk)
                t3 = x["ts"] + M3
                fire = t3 + W + M1 + M2
                child = {"lt": x["lt"], "content_id": cid}
                # a cart split clears the action's parent ids (§6)
                ids = ["", "", "", ""] if split else [a.impression_id, a.insertion_id, a.request_id, a.view_id]
                p = infer(m, uj2, child, lambda ch: ids + [cid],
                          lambda p: {p["insertion_id"], p["request_id"], p["view_id"], p["content_id"]},
                          True, MIN3, M3, fire, "J3 " + a.action_id)
                if p is None:
                    out["dropped_act"].append((a.action_id, cid))
                    continue
                out["j3"].append({"id": a.action_id, "impression_id": p["impression_id"],
                                  "action_id": a.action_id, "insertion_id": p["insertion_id"],
                                  "request_id": p["request_id"], "view_id": p["view_id"],
                                  "content_id": cid, "lt": x["lt"], "ts": t3, "level": fire,
                                  "seq": x["seq"], "key": key})

    # ReduceRedundantTinyImpressions, in arrival order (level, J2 before J3, seq)
    events = sorted([(e["level"], 0, e["seq"], e) for e in out["j2"]] +
                    [(e["level"], 1, e["seq"], e) for e in out["j3"]], key=lambda t: t[:3])
    roots, reduced, redundant = {}, [], []
    for _, stage, _, e in events:
        k = (e["key"], e["insertion_id"]) if e["insertion_id"] else (e["key"], "", e["view_id"], e["content_id"])
        if stage == 0:
            r = roots.get(k)
            if r is None or e["ts"] > r["replace_after"]:
                roots[k] = {"root": e, "replace_after": e["ts"] + TTL}
                reduced.append(dict(e))
            else:
                redundant.append(e)
        else:
            r = roots.get(k)
            m.need(r is not None, "action %s reaches the reducer before its root" % e["action_id"])
            if r is None:
                continue
            root = r["root"]
            m.need(root["level"] <= e["level"], "action %s could overtake its root" % e["action_id"])
            if e["impression_id"] == root["impression_id"]:
                reduced.append(dict(e))
            else:
                x = dict(root)
                x.update(action_id=e["action_id"], lt=e["lt"], ts=e["ts"], level=e["level"])
                reduced.append(x)

    # merges, filters, session windows
    joined_imp, joined_act = {}, []
    for e in reduced:
        if e["action_id"]:
            continue
        c = bundle[(e["key"], e["insertion_id"])]
        m.need(c["level"] <= e["level"], "impression %s before its delivery log" % e["impression_id"])
        joined_imp[e["impression_id"]] = dict(e, combined=c)
    for e in reduced:
        if e["action_id"]:
            m.need(e["impression_id"] in joined_imp, "action %s without joined impression" % e["action_id"])
            joined_act.append(dict(e, combined=joined_imp[e["impression_id"]]["combined"]))

    def non_buyer(e):
        api = e["combined"]["api"]
        if api is None:
            return False
        ex = F.execution_insertions(api["msg"].execution)
        hit = [i for i in ex if i.insertion_id == e["insertion_id"]] or \
            [i for i in ex if i.content_id == e["content_id"]]
        fs = F.feature_stage(hit[0]) if hit else None
        return fs is not None and any(fs.features.sparse_id.get(h) == 1 for h in HASHES)

    def ignore_usage(e):
        return e["combined"]["chosen"]["msg"].request.user_info.ignore_usage

    for kind, coll in (("joined_impression", list(joined_imp.values())), ("joined_action", joined_act)):
        for e in coll:
            e["dropped"] = ("dropped_ignore_usage_" + kind) if ignore_usage(e) else \
                ("dropped_non_buyer_" + kind) if non_buyer(e) else None
            if e["dropped"]:
                m.side[e["dropped"]] += 1
    fri_in = collections.defaultdict(list)
    for e in list(joined_imp.values()) + joined_act:
        if not e["dropped"]:
            fri_in[(e["key"], e["insertion_id"])].append(e)
    fris = []
    for k, es in fri_in.items():
        es.sort(key=lambda e: e["ts"])
        cur = [es[0]]
        for e in es[1:]:
            if e["ts"] - cur[-1]["ts"] <= GAP:
                cur.append(e)
            else:
                fris.append(cur)
                cur = [e]
        fris.append(cur)

    m.out = out
    m.views = [{"key": (v["msg"].platform_id, luid(v["msg"], "view")), "id": v["msg"].view_id, "lt": v["lt"]}
               for v in views]
    m.reduced, m.redundant = reduced, redundant
    m.joined_imp, m.joined_act, m.fris = joined_imp, joined_act, fris
    m.side["debug_partial_response_insertion"] = len(out["insertions"])
    m.side["debug_rhs_tiny_action"] = len(out["tiny_actions"])
    m.side["debug_tiny_event"] = len(reduced)
    m.side["dropped_redundant_impression"] = len(redundant)
    m.side["dropped_insertion_impressions"] = len(out["dropped_imp"])
    m.side["dropped_impression_actions"] = len(out["dropped_act"])
    return m


def ms(it):
    return collections.Counter(it)


def compare(c, out, m, recs, what):
    """The job's outputs against the model's predictions, record by record."""
    # every side table the model predicts non-empty, and no other
    want_side = {k for k, v in m.side.items() if v}
    c.eq(out.nonempty("etl_side"), want_side, what + ": non-empty etl_side tables")
    c.eq(out.nonempty("etl"), {"joined_impression", "joined_action", "flat_response_insertion"},
         what + ": non-empty etl tables")
    for t, n in sorted(m.side.items()):
        c.eq(len(out.rows("etl_side/" + t)), n, what + ": rows of etl_side/" + t)

    # J1: each tiny insertion's view and request
    got = ms((r["insertion_id"], r["request_id"], r["view_id"], r["content_id"], r["log_timestamp"])
             for r in out.rows("etl_side/debug_partial_response_insertion"))
    want = ms((p["insertion_id"], p["request_id"], p["view_id"], p["content_id"], p["lt"])
              for p in m.out["insertions"])
    c.eq(got == want, True, what + ": debug_partial_response_insertion equals the model (%d rows)" % len(want))

    # tiny actions
    c.eq(ms((r["action_id"], r["content_id"]) for r in out.rows("etl_side/debug_rhs_tiny_action")),
         ms(m.out["tiny_actions"]), what + ": debug_rhs_tiny_action equals the model")

    # joined impressions, per impression id
    rows = out.rows("etl/joined_impression")
    got = {r["ids"]["impression_id"]: (r["ids"]["insertion_id"], r["ids"]["request_id"], r["ids"]["view_id"],
                                       r["ids"]["session_id"], r["response_insertion"]["content_id"])
           for r in rows}
    want = {k: (e["insertion_id"], e["request_id"], e["view_id"], e["session_id"], e["content_id"])
            for k, e in m.joined_imp.items() if not e["dropped"]}
    c.eq(len(rows), len(want), what + ": joined_impression rows")
    bad = [k for k in set(got) | set(want) if got.get(k) != want.get(k)]
    c.eq(bad[:5], [], what + ": joined impressions whose insertion, request, view or session differ from the model")

    # redundant impressions, per impression id
    got = {r["impression_id"]: r["insertion_id"] for r in out.rows("etl_side/dropped_redundant_impression")}
    want = {e["impression_id"]: e["insertion_id"] for e in m.redundant}
    c.eq(got == want, True, what + ": dropped_redundant_impression equals the model (%d)" % len(want))

    # joined actions
    got = ms((r["action"]["action_id"], r["ids"]["impression_id"], r["ids"]["insertion_id"])
             for r in out.rows("etl/joined_action"))
    want = ms((e["action_id"], e["impression_id"], e["insertion_id"]) for e in m.joined_act if not e["dropped"])
    c.eq(got == want, True, what + ": joined_action equals the model (%d)" % sum(want.values()))

    # the reducer's output
    got = ms((r["impression_id"], r["action_id"], r["insertion_id"]) for r in out.rows("etl_side/debug_tiny_event"))
    want = ms((e["impression_id"], e["action_id"], e["insertion_id"]) for e in m.reduced)
    c.eq(got == want, True, what + ": debug_tiny_event equals the model")

    # flat response insertions: one per session window, with its impressions and actions
    got = ms((r["ids"]["insertion_id"], tuple(sorted(i["impression_id"] for i in r["impression"])),
              tuple(sorted(a["action_id"] for a in r["action"])))
             for r in out.rows("etl/flat_response_insertion"))
    want = ms((w[0]["insertion_id"], tuple(sorted(e["impression_id"] for e in w if not e["action_id"])),
               tuple(sorted(e["action_id"] for e in w if e["action_id"]))) for w in m.fris)
    c.eq(got == want, True, what + ": flat_response_insertion equals the model (%d)" % sum(want.values()))

    # the topic: joined impressions and actions, keyed by platform and log user
    frames = out.joined_events()
    got = ms((k, je.ids.impression_id, je.action.action_id) for _, k, je in frames)
    want = ms([(F.event_key(r["ids"]["platform_id"], r["ids"]["log_user_id"]), r["ids"]["impression_id"], "")
               for r in out.rows("etl/joined_impression")] +
              [(F.event_key(r["ids"]["platform_id"], r["ids"]["log_user_id"]), r["ids"]["impression_id"],
                r["action"]["action_id"]) for r in out.rows("etl/joined_action")])
    c.eq(got == want, True, what + ": the joined-event topic holds the joined tables' records (%d)" % len(frames))
    c.eq([je.ids.impression_id for _, _, je in frames if F.pb_user_ids(je)], [], what + ": user_id left on the topic")

    # partitions and user_id stripping
    F.check_partitions(c, out, "etl/joined_impression",
                       lambda r: r["impression"]["timing"]["event_api_timestamp"], what)
    F.check_partitions(c, out, "etl/joined_action", lambda r: r["action"]["timing"]["event_api_timestamp"], what)
    F.check_partitions(c, out, "etl/flat_response_insertion",
                       lambda r: r["request"]["timing"]["event_api_timestamp"], what)
    for t in ("joined_impression", "joined_action", "flat_response_insertion"):
        left = [r["ids"]["insertion_id"] for r in out.rows("etl/" + t) if F.find_user_ids(r)]
        c.eq(left[:3], [], what + ": user_id left in etl/" + t)
    c.check(all(lr.user_info.user_id for _, lr in recs), "the input carries user ids (so stripping is tested)")


_cache = {}


def local_input():
    """The generated records and the model's predictions for them (computed once)."""
    if not _cache:
        _cache["recs"] = F.generate(WORK, "local", ["--profile=local"])
        _cache["model"] = run_model(_cache["recs"])
    return _cache["recs"], _cache["model"]


def test_local_profile_outputs_equal_the_rules_applied_to_the_generated_timeline(c):
    recs, m = local_input()
    c.eq(m.pre, [], "the model's preconditions (visibility, lateness, order) hold")
    compare(c, F.run_flat(WORK, "local", recs, ARGS), m, recs, "local")

    # the narrative of the module comment, checked against the model: per user, request i takes
    # view i+1 (request 9 view 9), impression batch b joins request b+2 (b <= 7) and batches 8
    # and 9 request 9, whose batches 8 and 9 are redundant
    views_of = collections.defaultdict(list)
    for v in m.views:
        views_of[v["key"]].append((v["lt"], v["id"]))
    shapes = collections.Counter()
    for key in sorted(views_of):
        view_index = {vid: n for n, (_, vid) in enumerate(sorted(views_of[key]))}
        reqs = sorted({(p["lt"], p["request_id"], p["view_id"]) for p in m.out["insertions"] if p["key"] == key})
        req_index = {r: n for n, (_, r, _) in enumerate(reqs)}
        batches = collections.defaultdict(set)
        for e in m.out["j2"]:
            if e["key"] == key:
                batches[e["imp_ts"]].add(req_index[e["request_id"]])
        redundant_batches = sorted({e["imp_ts"] for e in m.redundant if e["key"] == key})
        shapes[(tuple(view_index[v] for _, _, v in reqs),
                tuple(tuple(sorted(batches[t])) for t in sorted(batches)),
                tuple(sorted(batches).index(t) for t in redundant_batches),
                sum(1 for e in m.redundant if e["key"] == key))] += 1
    c.eq(dict(shapes), {((1, 2, 3, 4, 5, 6, 7, 8, 9, 9),
                         ((2,), (3,), (4,), (5,), (6,), (7,), (8,), (9,), (9,), (9,)),
                         (8, 9), 14): 10},
         "per user: request i -> view i+1, batch b -> request b+2 then 9, 9; batches 8 and 9 redundant")


def test_local_profile_outputs_do_not_depend_on_how_often_the_watermark_advances(c):
    """The same input with 255 empty LogRequests (another user, same time) after each record:
    the source now publishes its watermark after every real record (docs/RUNTIME.md: every 256
    records) instead of every 256, and the outputs are the same predictions, as the model's
    preconditions promise for the local arguments."""
    recs, m = local_input()
    empty = pb.event.LogRequest(platform_id=1)
    empty.user_info.log_user_id = "nobody"
    data = []
    for ts, lr in recs:
        data.append(F.frame(ts, F.event_key(1, lr.user_info.log_user_id), lr.SerializeToString()))
        empty.timing.event_api_timestamp = ts
        data.append(F.frame(ts, F.event_key(1, "nobody"), empty.SerializeToString()) * 255)
    compare(c, F.run_flat(WORK, "local_padded", b"".join(data), ARGS), m, recs, "watermark per record")


F.run_tests([test_local_profile_outputs_equal_the_rules_applied_to_the_generated_timeline,
             test_local_profile_outputs_do_not_depend_on_how_often_the_watermark_advances], WORK)
