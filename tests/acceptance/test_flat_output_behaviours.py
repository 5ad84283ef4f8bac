"""flat-output's top-15 acceptance behaviours (spec/flat-output.md §20), black-box through
`logproc run flat-output` on record files built here, one test per behaviour, named after it.

Common setup (§20): platform 1, log user "u1", T0 = 1601596151000 (2020-10-01 23:49:11 UTC), one
LogRequest per child whose event_api_timestamp is its record time, default flags, end of input
flushes everything. `dl(req, view, [(ins, content)...], crid, server, traffic)` builds the
DeliveryLog of §20's DL(...). Where the spec gives a whole joined record, the expected message
comes from flatlib's model of the rules (push-down, FixDeliveryLog, merge, pivot, stripping) and
is compared with the Kafka value and the Avro row field for field.
"""
import os

import flatlib as F
from flatlib import T0, pb

WORK = F.workdir("test_flat_output_behaviours")
F.load_protos(WORK)

DEBUG = {"debug_tiny_event", "debug_rhs_tiny_action", "debug_partial_response_insertion"}
MAIN = {"joined_impression", "joined_action", "flat_response_insertion"}
E = pb.execution
CI = pb.common.ClientInfo
NAVIGATE, PURCHASE = pb.event.NAVIGATE, pb.event.PURCHASE


def lr(ts, child, platform=1, luid="u1", eat=None):
    """A LogRequest at ts holding one child (View, DeliveryLog, Impression or Action)."""
    m = pb.event.LogRequest(platform_id=platform)
    if luid is not None:
        m.user_info.log_user_id = luid
    m.timing.event_api_timestamp = ts if eat is None else eat
    field = {pb.event.View: m.view, pb.execution.DeliveryLog: m.delivery_log,
             pb.event.Impression: m.impression, pb.event.Action: m.action}[type(child)]
    field.add().CopyFrom(child)
    return (ts, m)


def empty_lr(ts):
    """A LogRequest of user u1 without children: moves the source watermark, joins nothing."""
    m = pb.event.LogRequest(platform_id=1)
    m.user_info.log_user_id = "u1"
    m.timing.event_api_timestamp = ts
    return (ts, m)


def dl(req, view="", ins=(), crid="", server=E.API, traffic=CI.PRODUCTION):
    d = pb.execution.DeliveryLog()
    d.request.request_id = req
    if view:
        d.request.view_id = view
    if crid:
        d.request.client_request_id = crid
    d.request.client_info.client_type = CI.PLATFORM_SERVER
    if traffic:
        d.request.client_info.traffic_type = traffic
    for pos, (i, content) in enumerate(ins):
        r = d.response.insertion.add(content_id=content, position=pos)
        if i:
            r.insertion_id = i
    d.execution.execution_server = server
    return d


def imp(mid, insertion="", content="", request=""):
    return pb.event.Impression(impression_id=mid, insertion_id=insertion, content_id=content,
                               request_id=request)


def act(aid, impression="", content="", action_type=NAVIGATE, cart=()):
    a = pb.event.Action(action_id=aid, impression_id=impression, content_id=content,
                        action_type=action_type)
    for cid, q in cart:
        a.cart.contents.add(content_id=cid, quantity=q)
    return a


def happy(dlog=None, user_ids=False, **kw):
    """§20.1's records: View v1@T0, DL@T0+100, Impression m1{i1}@T0+200, Action a1{m1}@T0+300.
    With user_ids, every child (and the request) carries a user_id that must never come out."""
    recs = [lr(T0, pb.event.View(view_id="v1"), **kw),
            lr(T0 + 100, dlog if dlog is not None else dl("r1", "v1", [("i1", "c1")], "c-r1"), **kw),
            lr(T0 + 200, imp("m1", insertion="i1"), **kw),
            lr(T0 + 300, act("a1", impression="m1"), **kw)]
    if user_ids:
        for n, (_, m) in enumerate(recs):
            for ch in list(m.view) + [d.request for d in m.delivery_log] + list(m.impression) + list(m.action):
                ch.user_info.user_id = "user-%d" % n
    return recs


def stream(recs, kind):
    return [c for ts, lr_ in recs for c in F.children(ts, lr_, kind)]


def model(recs, pairs=None):
    """Joined impression per impression id from the model: views by id, delivery logs fixed
    (§2.6) and grouped by client_request_id (API/SDK slots), impression → insertion id given
    by `pairs` (default: its own insertion_id)."""
    views = {v.view_id: v for v in stream(recs, "view")}
    logs = [F.fix_delivery_log(d) for d in stream(recs, "delivery_log")]
    out = {}
    for m in stream(recs, "impression"):
        ins = (pairs or {}).get(m.impression_id, m.insertion_id)
        mine = [d for d in logs if any(i.insertion_id == ins for i in d.response.insertion)]
        if not mine:
            continue  # an impression the rules drop
        crid = mine[0].request.client_request_id
        group = [d for d in logs if crid and d.request.client_request_id == crid] or mine[:1]
        api = [d for d in group if d.execution.execution_server != E.SDK]
        sdk = [d for d in group if d.execution.execution_server == E.SDK]
        chosen = (sdk or api)[0]
        view = views.get(chosen.request.view_id)
        out[m.impression_id] = F.expect_joined_impression(view, api[0] if api else None,
                                                          sdk[0] if sdk else None, ins, m)
    return out


def joined(out, topic="metrics.default.joined-event"):
    imps, acts = [], []
    for ts, key, je in out.joined_events(topic):
        (acts if je.HasField("action") else imps).append((key, je))
    return imps, acts


def check_no_user_ids(c, out, what):
    for kind in ("etl", "etl_side"):
        for t in out.nonempty(kind):
            for r in out.rows(kind + "/" + t):
                c.eq(F.find_user_ids(r), [], "%s: user_id left in %s/%s" % (what, kind, t))


# ------------------------------------------------------------------------------------------

def test_happy_path_chain_joins_view_delivery_log_impression_and_action(c):
    """§20.1, with a user_id on every child (§12.4: none may come out), and the record times of
    §7.8/§8.1/§12.2/§12.3: the DL leaves CombineDeliveryLog at T0+100+2s, which releases m1
    (waiting for its named insertion) with that ts; a1 is released by m1 with the same ts and
    AddLatestImpressions emits it 0.5 s later; the FRI's session window ends a day after."""
    recs = happy(user_ids=True)
    out = F.run_flat(WORK, "happy", recs, ["--writeFlatResponseInsertionsToKafka"])
    c.eq(out.nonempty("etl"), MAIN, "happy: non-empty etl tables")
    c.eq(out.nonempty("etl_side"), DEBUG, "happy: non-empty etl_side tables (no late_*, no dropped_*)")
    want = model(recs)["m1"]
    ids = want.ids
    c.eq((ids.platform_id, ids.log_user_id, ids.view_id, ids.request_id, ids.insertion_id,
          ids.impression_id, want.timing.log_timestamp, want.response_insertion.content_id),
         (1, "u1", "v1", "r1", "i1", "m1", T0 + 200, "c1"), "happy: the model's joined impression")
    imps, acts = joined(out)
    c.eq(len(imps), 1, "happy: joined impressions on the topic")
    c.eq(len(acts), 1, "happy: joined actions on the topic")
    if imps:
        F.check_message(c, imps[0][1], want, "happy: joined impression")
        c.eq(imps[0][0], F.event_key(1, "u1"), "happy: record key")
    c.eq(sorted(ts - T0 for ts, _, _ in out.topic("metrics.default.joined-event")), [2100, 2600],
         "happy: record times of the joined impression and the joined action")
    fri_topic = out.topic("metrics.default.flat-response-insertion")
    c.eq([(ts - T0, k) for ts, k, _ in fri_topic], [(2100 + 86400000 - 1, F.event_key(1, "u1"))],
         "happy: the FRI topic's record (window end - 1, key)")
    action = stream(recs, "action")[0]
    want_a = F.expect_joined_action(want, action)
    want_a.latest_impressions.SetInParent()  # present and empty: m1 is the actioned content
    c.eq((want_a.action.action_id, want_a.timing.log_timestamp), ("a1", T0 + 300), "happy: model action")
    if acts:
        F.check_message(c, acts[0][1], want_a, "happy: joined action")
    ji, ja, fri = (out.rows("etl/" + t) for t in ("joined_impression", "joined_action",
                                                   "flat_response_insertion"))
    c.eq(len(ji), 1, "happy: joined_impression rows")
    c.eq(len(ja), 1, "happy: joined_action rows")
    c.eq(len(fri), 1, "happy: flat_response_insertion rows")
    if ji:
        F.check_avro_row(c, ji[0], want, "happy: joined_impression")
        c.check(ji[0]["view"] is not None, "happy: view present")
    if ja:
        F.check_avro_row(c, ja[0], want_a, "happy: joined_action")
        c.eq(ja[0]["latest_impressions"], {"impression": []}, "happy: latest_impressions present and empty")
    if fri:
        want_f = F.expect_fri([want], [F.expect_joined_action(want, action)])
        F.check_avro_row(c, fri[0], want_f, "happy: flat_response_insertion")
        c.eq((fri[0]["ids"]["impression_id"], [i["impression_id"] for i in fri[0]["impression"]],
              [a["action_id"] for a in fri[0]["action"]]), ("", ["m1"], ["a1"]),
             "happy: FRI ids without impression_id, one impression, one action")
        if fri_topic:
            F.check_message(c, pb.join.FlatResponseInsertion.FromString(fri_topic[0][2]), want_f,
                            "happy: FRI on its topic")
    for _, _, v in out.topic("metrics.default.joined-event"):
        c.eq(F.pb_user_ids(pb.join.JoinedEvent.FromString(v)), [], "happy: user_id on the topic")
    for t in MAIN:
        parts = [p for p, _ in out.parts("etl/" + t)]
        c.check(parts and all("/dt=2020-10-01/hour=23/" in p for p in parts),
                "happy: %s under dt=2020-10-01/hour=23: %r" % (t, parts))
    check_no_user_ids(c, out, "happy")


def test_batch_fields_are_pushed_down_and_log_user_ids_lower_cased(c):
    """§20.2: every LogRequest {platform 7, log_user_id "ABC", client_log_timestamp 5}, children
    without platform, user or timing → all land on (7, "abc")."""
    recs = happy(platform=7, luid="ABC")
    for _, m in recs:
        m.timing.client_log_timestamp = 5
        m.user_info.user_id = "batch-user"
    out = F.run_flat(WORK, "push_down", recs)
    c.eq(out.nonempty("etl"), MAIN, "push_down: non-empty etl tables")
    want = model(recs)["m1"]
    imps, acts = joined(out)
    c.eq(len(imps), 1, "push_down: joined impressions")
    if imps:
        F.check_message(c, imps[0][1], want, "push_down: joined impression")
        c.eq(imps[0][0], b"\x07\x00\x00\x00\x00\x00\x00\x00abc", "push_down: record key")
    for r in out.rows("etl/joined_impression"):
        c.eq((r["ids"]["platform_id"], r["ids"]["log_user_id"],
              r["view"]["timing"]["client_log_timestamp"],
              r["impression"]["timing"]["client_log_timestamp"]), (7, "abc", 5, 5),
             "push_down: ids and pushed-down client_log_timestamp")
    c.eq(len(acts), 1, "push_down: joined actions (the action found its impression under (7, abc))")
    check_no_user_ids(c, out, "push_down")


def test_invalid_records_become_validation_error_rows_and_join_nothing(c):
    """§20.3: an impression without log user and joinable ids → two rows; an action with a
    zero cart quantity → one; a DeliveryLog whose matrix row has 3 values for 2 headers → the
    row logproc adds (README decision). Rows partition by timing.eventApiTimestamp."""
    eat = 1601603351000  # 2020-10-02 01:49:11: not the record time, so the partition shows which
    bad_dl = dl("r1", "v1", [("i1", "c1")])
    bad_dl.request.insertion_matrix_headers.extend(["contentId", "storeId"])
    row = bad_dl.request.insertion_matrix.values.add().list_value
    for x in ("c1", "s1", "extra"):
        row.values.add().string_value = x
    recs = [lr(T0, imp("m1"), luid="", eat=eat),
            lr(T0 + 100, act("a1", content="c1", action_type=PURCHASE, cart=[("c1", 0)]), eat=eat),
            lr(T0 + 200, bad_dl, eat=eat)]
    out = F.run_flat(WORK, "validation", recs)
    c.eq(out.nonempty("etl"), set(), "validation: non-empty etl tables")
    c.eq(out.nonempty("etl_side"), {"validation_error"}, "validation: non-empty etl_side tables")
    rows = out.rows("etl_side/validation_error")
    got = sorted((r["recordType"], r["errorType"], r["field"], r["platformId"], r["logUserId"],
                  r["impressionId"], r["actionId"], r["requestId"], r["timing"]["logTimestamp"],
                  r["timing"]["eventApiTimestamp"]) for r in rows)
    want = sorted([
        ("IMPRESSION", "MISSING_FIELD", "LOG_USER_ID", 1, "", "m1", "", "", T0, eat),
        ("IMPRESSION", "MISSING_JOINABLE_ID", "MULTIPLE", 1, "", "m1", "", "", T0, eat),
        ("ACTION", "MISSING_FIELD", "CART_CONTENT_QUANTITY", 1, "u1", "", "a1", "", T0 + 100, eat),
        ("DELIVERY_LOG", "MISMATCHED_MATRIX_HEADER_LENGTH", "MULTIPLE", 1, "u1", "", "", "r1", T0 + 200, eat),
    ])
    c.eq(got, want, "validation: validation_error rows")
    F.check_partitions(c, out, "etl_side/validation_error",
                       lambda r: r["timing"]["eventApiTimestamp"], "validation")


def test_replay_traffic_is_not_joined_and_its_impression_and_action_are_dropped(c):
    """§20.4 (§2.4): REPLAY, INTERNAL, LOAD_TEST → no etl; the log as a TinyEvent in
    dropped_delivery_log_should_not_join, m1 and a1 dropped by the joins. SHADOW and UNKNOWN
    traffic join normally."""
    for name, traffic in (("replay", CI.REPLAY), ("internal", CI.INTERNAL), ("load_test", CI.LOAD_TEST)):
        out = F.run_flat(WORK, "traffic_" + name, happy(dl("r1", "v1", [("i1", "c1")], "c-r1",
                                                           traffic=traffic)))
        what = "traffic " + name
        c.eq(out.nonempty("etl"), set(), what + ": non-empty etl tables")
        c.eq(out.nonempty("etl_side"), {"dropped_delivery_log_should_not_join",
                                        "dropped_insertion_impressions", "dropped_impression_actions",
                                        "debug_rhs_tiny_action"}, what + ": non-empty etl_side tables")
        c.eq([(r["platform_id"], r["log_user_id"], r["log_timestamp"], r["view_id"], r["request_id"],
               r["insertion_id"], r["impression_id"]) for r in out.rows("etl_side/dropped_delivery_log_should_not_join")],
             [(1, "u1", T0 + 100, "v1", "r1", "", "")], what + ": the dropped log's TinyEvent")
        c.eq([(r["impression_id"], r["insertion_id"], r["log_timestamp"])
              for r in out.rows("etl_side/dropped_insertion_impressions")],
             [("m1", "i1", T0 + 200)], what + ": tiny m1 dropped")
        c.eq([(r["action_id"], r["impression_id"], r["log_timestamp"])
              for r in out.rows("etl_side/dropped_impression_actions")],
             [("a1", "m1", T0 + 300)], what + ": tiny a1 dropped")
    for name, traffic in (("shadow", CI.SHADOW), ("unknown", 0)):
        out = F.run_flat(WORK, "traffic_" + name, happy(dl("r1", "v1", [("i1", "c1")], "c-r1",
                                                           traffic=traffic)))
        c.eq(out.nonempty("etl"), MAIN, "traffic %s: joined normally" % name)
        c.eq(out.nonempty("etl_side"), DEBUG, "traffic %s: non-empty etl_side tables" % name)


def test_bot_user_agent_drops_the_delivery_log_and_okhttp_is_not_a_bot(c):
    """§20.5: a bingbot request user agent → dropped_delivery_log_is_bot ×1, m1 and a1 dropped
    by the joins, no etl; "okhttp/3.14.9" → normal output."""
    bing = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    c.check(F.is_bot(bing) and not F.is_bot("okhttp/3.14.9"), "bot: Appendix A's verdicts")
    d = dl("r1", "v1", [("i1", "c1")], "c-r1")
    d.request.device.browser.user_agent = bing
    out = F.run_flat(WORK, "bot_bing", happy(d))
    c.eq(out.nonempty("etl"), set(), "bot: non-empty etl tables")
    c.eq(out.nonempty("etl_side"), {"dropped_delivery_log_is_bot", "dropped_insertion_impressions",
                                    "dropped_impression_actions", "debug_rhs_tiny_action"},
         "bot: non-empty etl_side tables")
    c.eq([(r["log_timestamp"], r["view_id"], r["request_id"])
          for r in out.rows("etl_side/dropped_delivery_log_is_bot")],
         [(T0 + 100, "v1", "r1")], "bot: one dropped log")
    c.eq([r["impression_id"] for r in out.rows("etl_side/dropped_insertion_impressions")], ["m1"],
         "bot: m1 dropped")
    c.eq([r["action_id"] for r in out.rows("etl_side/dropped_impression_actions")], ["a1"], "bot: a1 dropped")
    d.request.device.browser.user_agent = "okhttp/3.14.9"
    out = F.run_flat(WORK, "bot_okhttp", happy(d))
    c.eq(out.nonempty("etl"), MAIN, "okhttp: joined normally")
    c.eq(out.nonempty("etl_side"), DEBUG, "okhttp: non-empty etl_side tables")


def test_api_and_sdk_logs_of_one_client_request_give_one_joined_impression(c):
    """§20.6: SDK PRODUCTION r1 [i1:c1] @T0+100 and API SHADOW r2 [i1':c1] @T0+150 with the same
    client_request_id and an execution insertion {i1', c1, feature_stage numeric{100: 0.5}}
    → one joined impression with r1's request, hidden_api_request r2 (SHADOW),
    api_execution{API}, the API execution insertion (matched by content, ids removed,
    feature_stage kept), sdk_execution{SDK}; request_insertion from the v1-SDK rewrite."""
    sdk = dl("r1", "v1", [("i1", "c1")], "c1", server=E.SDK)
    api = dl("r2", "v1", [("i1'", "c1")], "c1", server=E.API, traffic=CI.SHADOW)
    ex = pb.delivery.Insertion(insertion_id="i1'", content_id="c1")
    F.set_feature_stage(ex, numeric={100: 0.5})
    F.set_execution_insertions(api.execution, [ex])
    recs = [lr(T0, pb.event.View(view_id="v1")), lr(T0 + 100, sdk), lr(T0 + 150, api),
            lr(T0 + 200, imp("m1", insertion="i1")), lr(T0 + 300, act("a1", impression="m1"))]
    out = F.run_flat(WORK, "combine", recs)
    c.eq(out.nonempty("etl"), MAIN, "combine: non-empty etl tables")
    want = model(recs)["m1"]
    c.eq((want.ids.request_id, want.hidden_api_request.request_id,
          want.hidden_api_request.client_info.traffic_type, want.api_execution.execution_server,
          want.sdk_execution.execution_server, want.api_execution_insertion.insertion_id,
          want.api_execution_insertion.content_id, want.HasField("request_insertion")),
         ("r1", "r2", CI.SHADOW, E.API, E.SDK, "", "", True), "combine: the model's joined impression")
    imps, _ = joined(out)
    c.eq(len(imps), 1, "combine: exactly one joined impression")
    if imps:
        F.check_message(c, imps[0][1], want, "combine: joined impression")
        fs = F.feature_stage(imps[0][1].api_execution_insertion)
        c.check(fs is not None and abs(fs.features.numeric[100] - 0.5) < 1e-9,
                "combine: feature_stage kept on api_execution_insertion: %s" % F.text(fs))
    rows = out.rows("etl/joined_impression")
    c.eq(len(rows), 1, "combine: joined_impression rows")
    if rows:
        F.check_avro_row(c, rows[0], want, "combine: joined_impression")


def test_missing_response_insertion_ids_are_synthesized_from_request_position_and_content(c):
    """§20.7: response insertion {content c1, position 0} without id → "r1-0-c1", which an
    impression can name."""
    recs = happy(dl("r1", "v1", [("", "c1")], "c-r1"))
    recs[2] = lr(T0 + 200, imp("m1", insertion="r1-0-c1"))
    out = F.run_flat(WORK, "synthesized_id", recs)
    want = model(recs)["m1"]
    c.eq(want.ids.insertion_id, "r1-0-c1", "synthesized_id: model")
    rows = out.rows("etl/joined_impression")
    c.eq([r["ids"]["insertion_id"] for r in rows], ["r1-0-c1"], "synthesized_id: joined impression")
    if rows:
        F.check_avro_row(c, rows[0], want, "synthesized_id: joined_impression")
    c.eq(len(out.rows("etl/joined_action")), 1, "synthesized_id: the action joins too")


def test_insertion_matrix_becomes_request_insertion_properties(c):
    """§20.8: headers [contentId, storeId], row [c1, s1], response insertion i1:c1 → the joined
    impression's request_insertion.properties.struct is {storeId: "s1"} (no content_id there);
    the request keeps no matrix and no headers."""
    d = dl("r1", "v1", [("i1", "c1")], "c-r1")
    d.request.insertion_matrix_headers.extend(["contentId", "storeId"])
    row = d.request.insertion_matrix.values.add().list_value
    row.values.add().string_value = "c1"
    row.values.add().string_value = "s1"
    out = F.run_flat(WORK, "matrix", happy(d))
    imps, _ = joined(out)
    c.eq(len(imps), 1, "matrix: joined impressions")
    want = pb.delivery.Insertion()
    want.properties.struct.fields["storeId"].string_value = "s1"
    if imps:
        je = imps[0][1]
        F.check_message(c, je.request_insertion, want, "matrix: request_insertion")
        c.eq((len(je.request.insertion_matrix_headers), je.request.HasField("insertion_matrix"),
              len(je.request.insertion)), (0, False, 0), "matrix: request without matrix, headers, insertions")
    rows = out.rows("etl/joined_impression")
    if rows:
        F.check_avro_row(c, rows[0]["request_insertion"], want, "matrix: Avro request_insertion")
        c.eq((rows[0]["request"]["insertion_matrix"], rows[0]["request"]["insertion_matrix_headers"]),
             (None, []), "matrix: Avro request")


def test_delivery_log_without_view_id_joins_the_nearest_view_within_ten_minutes(c):
    """§20.9: View v1@T0, DL r1 without view_id @T0+100 → view attached, ids.view_id v1. With the
    view at T0-11min (outside -PT10M) → no view, and the log still joins downstream (J1 is right
    outer)."""
    for name, view_ts, has_view in (("near", T0, True), ("far", T0 - 11 * 60 * 1000, False)):
        recs = happy(dl("r1", "", [("i1", "c1")], "c-r1"))
        recs[0] = lr(view_ts, pb.event.View(view_id="v1"))
        out = F.run_flat(WORK, "inferred_view_" + name, recs)
        what = "inferred view (%s)" % name
        c.eq(out.nonempty("etl"), MAIN, what + ": non-empty etl tables")
        rows = out.rows("etl/joined_impression")
        c.eq([(r["ids"]["view_id"], r["view"] is not None) for r in rows],
             [("v1" if has_view else "", has_view)], what + ": view id and view")
        c.eq([r["view_id"] for r in out.rows("etl_side/debug_partial_response_insertion")],
             ["v1" if has_view else ""], what + ": the tiny insertion's view")


def test_impression_without_insertion_id_joins_the_nearest_insertion_of_the_same_content(c):
    """§20.10: DL r1 [i1:c1, i2:c2] @T0; m1{request r1, content c2} @T0+5s → insertion i2 (the
    content filter picks it out of r1's insertions); m2{content c9} matches nothing →
    dropped_insertion_impressions."""
    recs = [lr(T0, dl("r1", "", [("i1", "c1"), ("i2", "c2")], "c-r1")),
            lr(T0 + 5000, imp("m1", request="r1", content="c2")),
            lr(T0 + 6000, imp("m2", content="c9"))]
    out = F.run_flat(WORK, "inferred_insertion", recs)
    want = model(recs, {"m1": "i2"})["m1"]
    rows = out.rows("etl/joined_impression")
    c.eq([(r["ids"]["impression_id"], r["ids"]["insertion_id"], r["response_insertion"]["content_id"])
          for r in rows], [("m1", "i2", "c2")], "inferred insertion: joined impression")
    if rows:
        F.check_avro_row(c, rows[0], want, "inferred insertion: joined_impression")
    c.eq([(r["impression_id"], r["content_id"]) for r in out.rows("etl_side/dropped_insertion_impressions")],
         [("m2", "c9")], "inferred insertion: m2 dropped")
    c.eq(out.nonempty("etl_side"), {"dropped_insertion_impressions", "debug_tiny_event",
                                    "debug_partial_response_insertion"},
         "inferred insertion: non-empty etl_side tables")


def test_action_without_ids_joins_an_impression_of_its_content_within_one_day(c):
    """§20.11: DL r1 [i1:c1] @T0, m1{i1} @T0+1s. Action{content c1} @T0+1h → joined on m1. The
    same action at T0+1d+2s (its own run) → dropped_impression_actions. An action naming an
    unknown impression "zz" is dropped although its content matches (FK children are never
    inferred)."""
    base = [lr(T0, dl("r1", "", [("i1", "c1")], "c-r1")), lr(T0 + 1000, imp("m1", insertion="i1"))]
    hour, day = 3600 * 1000, 86400 * 1000
    out = F.run_flat(WORK, "action_1h", base + [lr(T0 + hour, act("a1", content="c1"))])
    rows = out.rows("etl/joined_action")
    c.eq([(r["action"]["action_id"], r["ids"]["impression_id"], r["timing"]["log_timestamp"]) for r in rows],
         [("a1", "m1", T0 + hour)], "action +1h: joined on m1")
    parts = [p for p, _ in out.parts("etl/joined_action")]
    c.check(parts and all("/dt=2020-10-02/hour=00/" in p for p in parts),
            "action +1h: partitioned by the action's event_api_timestamp: %r" % parts)
    out = F.run_flat(WORK, "action_1d", base + [lr(T0 + day + 2000, act("a1", content="c1"))])
    c.eq(out.nonempty("etl"), {"joined_impression", "flat_response_insertion"}, "action +1d+2s: no joined action")
    c.eq([(r["action_id"], r["content_id"]) for r in out.rows("etl_side/dropped_impression_actions")],
         [("a1", "c1")], "action +1d+2s: dropped")
    out = F.run_flat(WORK, "action_fk", base + [lr(T0 + 2000, act("a1", impression="zz", content="c1"))])
    c.eq(len(out.rows("etl/joined_action")), 0, "action on unknown impression: not joined")
    c.eq([(r["action_id"], r["impression_id"]) for r in out.rows("etl_side/dropped_impression_actions")],
         [("a1", "zz")], "action on unknown impression: dropped")


def test_purchase_cart_is_split_into_one_joined_action_per_cart_item(c):
    """§20.12: PURCHASE p1 {content c1, cart [{c1, 2}, {c2, 1}]} without ids → two joined
    actions p1: on m1 with single_cart_content {c1, 2}, on m2 with {c2, 1}; both keep content c1
    and the whole cart."""
    recs = [lr(T0, dl("r1", "", [("i1", "c1"), ("i2", "c2")], "c-r1")),
            lr(T0 + 1000, imp("m1", insertion="i1")), lr(T0 + 1100, imp("m2", insertion="i2")),
            lr(T0 + 2000, act("p1", content="c1", action_type=PURCHASE, cart=[("c1", 2), ("c2", 1)]))]
    out = F.run_flat(WORK, "cart_split", recs)
    rows = out.rows("etl/joined_action")
    got = sorted((r["action"]["action_id"], r["ids"]["impression_id"], r["ids"]["insertion_id"],
                  r["action"]["single_cart_content"]["content_id"],
                  r["action"]["single_cart_content"]["quantity"], r["action"]["content_id"],
                  [(x["content_id"], x["quantity"]) for x in r["action"]["cart"]["contents"]])
                 for r in rows)
    cart = [("c1", 2), ("c2", 1)]
    c.eq(got, [("p1", "m1", "i1", "c1", 2, "c1", cart), ("p1", "m2", "i2", "c2", 1, "c1", cart)],
         "cart split: joined actions")
    c.eq(len(out.rows("etl_side/debug_rhs_tiny_action")), 2, "cart split: two tiny actions")


def test_second_impression_of_one_insertion_is_redundant_and_its_action_moves_to_the_first(c):
    """§20.13: m1@T0+200 and m2@T0+300 on i1, a1 on m2 → joined_impression only m1; m2 in
    dropped_redundant_impression; the joined action on m1; the FRI of i1 lists only m1."""
    recs = [lr(T0, pb.event.View(view_id="v1")), lr(T0 + 100, dl("r1", "v1", [("i1", "c1")], "c-r1")),
            lr(T0 + 200, imp("m1", insertion="i1")), lr(T0 + 300, imp("m2", insertion="i1")),
            lr(T0 + 400, act("a1", impression="m2"))]
    out = F.run_flat(WORK, "redundant", recs)
    c.eq([r["ids"]["impression_id"] for r in out.rows("etl/joined_impression")], ["m1"],
         "redundant: joined impressions")
    c.eq([(r["impression_id"], r["insertion_id"]) for r in out.rows("etl_side/dropped_redundant_impression")],
         [("m2", "i1")], "redundant: dropped")
    c.eq([(r["action"]["action_id"], r["ids"]["impression_id"]) for r in out.rows("etl/joined_action")],
         [("a1", "m1")], "redundant: action re-pointed")
    c.eq([([i["impression_id"] for i in r["impression"]], [a["action_id"] for a in r["action"]])
          for r in out.rows("etl/flat_response_insertion")], [(["m1"], ["a1"])], "redundant: FRI of i1")


def test_duplicates_are_dropped_silently_and_ignore_usage_and_non_buyers_are_filtered(c):
    """§20.14: m1 sent twice within a day → one joined impression, no side output.
    request.user_info.ignore_usage → no etl; dropped_ignore_usage_joined_impression and
    _joined_action, no FRI. --nonBuyerUserSparseHash=42 with sparse_id{42: 1} on the API
    execution insertion → dropped_non_buyer_joined_impression and _joined_action."""
    recs = happy()
    recs.insert(3, lr(T0 + 250, imp("m1", insertion="i1")))
    out = F.run_flat(WORK, "dedupe", recs)
    c.eq(len(out.rows("etl/joined_impression")), 1, "dedupe: one joined impression")
    c.eq(out.nonempty("etl_side"), DEBUG, "dedupe: no side output")

    d = dl("r1", "v1", [("i1", "c1")], "c-r1")
    d.request.user_info.ignore_usage = True
    out = F.run_flat(WORK, "ignore_usage", happy(d))
    c.eq(out.nonempty("etl"), set(), "ignore_usage: no etl")
    c.eq(out.nonempty("etl_side"), DEBUG | {"dropped_ignore_usage_joined_impression",
                                            "dropped_ignore_usage_joined_action"},
         "ignore_usage: non-empty etl_side tables (no FRI table)")

    d = dl("r1", "v1", [("i1", "c1")], "c-r1")
    ex = pb.delivery.Insertion(insertion_id="i1", content_id="c1")
    F.set_feature_stage(ex, sparse={42: 1})
    F.set_execution_insertions(d.execution, [ex])
    out = F.run_flat(WORK, "non_buyer", happy(d), ["--nonBuyerUserSparseHash=42"])
    c.eq(out.nonempty("etl"), set(), "non_buyer: no etl")
    c.eq(out.nonempty("etl_side"), DEBUG | {"dropped_non_buyer_joined_impression",
                                            "dropped_non_buyer_joined_action"},
         "non_buyer: non-empty etl_side tables")
    c.eq([r["ids"]["impression_id"] for r in out.rows("etl_side/dropped_non_buyer_joined_impression")],
         ["m1"], "non_buyer: m1 dropped")
    out = F.run_flat(WORK, "non_buyer_unflagged", happy(d))
    c.eq(out.nonempty("etl"), MAIN, "non_buyer without the flag: joined normally")


def test_late_delivery_log_goes_to_late_side_output_and_labels_prefix_paths_and_topic(c):
    """§20.15: Impression{i1}@T0+10s read before DL r1 [i1]@T0 → the DL's tiny insertion in
    late_view_responseinsertions, the impression in dropped_insertion_impressions, no joined
    output. --jobLabel=blue → every table under <root>/blue/, topic
    metrics.blue.default.joined-event, key 01 00 00 00 00 00 00 00 "u1". event_api_timestamp
    1601603351000 → dt=2020-10-02/hour=01.

    The source publishes its watermark every 256 records (docs/RUNTIME.md "Time"), not after
    each one, so 300 empty LogRequests at T0+10s follow the impression: they move the
    watermark to T0+10s-1001 ms before the DL is read, which the spec's two-record run assumes."""
    filler = [empty_lr(T0 + 10000) for _ in range(300)]
    recs = [lr(T0 + 10000, imp("m1", insertion="i1"))] + filler + \
        [lr(T0, dl("r1", "", [("i1", "c1")], "c-r1"))]
    out = F.run_flat(WORK, "late", recs)
    c.eq(out.nonempty("etl"), set(), "late: no etl")
    c.eq(out.nonempty("etl_side"), {"late_view_responseinsertions", "dropped_insertion_impressions"},
         "late: non-empty etl_side tables")
    c.eq([(r["platform_id"], r["log_user_id"], r["request_id"], r["insertion_id"], r["content_id"],
           r["log_timestamp"]) for r in out.rows("etl_side/late_view_responseinsertions")],
         [(1, "u1", "r1", "i1", "c1", T0)], "late: the late tiny insertion")
    c.eq([r["impression_id"] for r in out.rows("etl_side/dropped_insertion_impressions")], ["m1"],
         "late: m1 dropped")

    eat = 1601603351000
    recs = happy()
    for _, m in recs:
        m.timing.event_api_timestamp = eat
    out = F.run_flat(WORK, "label", recs, ["--jobLabel=blue"])
    c.eq(sorted(os.listdir(out.root)), ["blue", "kafka"], "label: the root holds blue/ and the topics")
    blue = F.Out(os.path.join(out.root, "blue"), out.proc)
    c.eq(blue.nonempty("etl"), MAIN, "label: etl tables under blue/")
    c.eq(blue.nonempty("etl_side"), DEBUG, "label: etl_side tables under blue/")
    c.eq(os.listdir(os.path.join(out.root, "kafka")), ["metrics.blue.default.joined-event"], "label: topic")
    keys = {k for _, k, _ in out.topic("metrics.blue.default.joined-event")}
    c.eq(keys, {b"\x01\x00\x00\x00\x00\x00\x00\x00u1"}, "label: record keys")
    for t in MAIN:
        parts = [p for p, _ in blue.parts("etl/" + t)]
        c.check(parts and all("/dt=2020-10-02/hour=01/" in p for p in parts),
                "label: %s partitioned by event_api_timestamp: %r" % (t, parts))
    for t in DEBUG:
        parts = [p for p, _ in blue.parts("etl_side/" + t)]
        c.check(parts and all("/dt=2020-10-01/hour=23/" in p for p in parts),
                "label: %s partitioned by log_timestamp: %r" % (t, parts))


F.run_tests([
    test_happy_path_chain_joins_view_delivery_log_impression_and_action,
    test_batch_fields_are_pushed_down_and_log_user_ids_lower_cased,
    test_invalid_records_become_validation_error_rows_and_join_nothing,
    test_replay_traffic_is_not_joined_and_its_impression_and_action_are_dropped,
    test_bot_user_agent_drops_the_delivery_log_and_okhttp_is_not_a_bot,
    test_api_and_sdk_logs_of_one_client_request_give_one_joined_impression,
    test_missing_response_insertion_ids_are_synthesized_from_request_position_and_content,
    test_insertion_matrix_becomes_request_insertion_properties,
    test_delivery_log_without_view_id_joins_the_nearest_view_within_ten_minutes,
    test_impression_without_insertion_id_joins_the_nearest_insertion_of_the_same_content,
    test_action_without_ids_joins_an_impression_of_its_content_within_one_day,
    test_purchase_cart_is_split_into_one_joined_action_per_cart_item,
    test_second_impression_of_one_insertion_is_redundant_and_its_action_moves_to_the_first,
    test_duplicates_are_dropped_silently_and_ignore_usage_and_non_buyers_are_filtered,
    test_late_delivery_log_goes_to_late_side_output_and_labels_prefix_paths_and_topic,
], WORK)
