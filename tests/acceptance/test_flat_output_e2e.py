"""flat-output end to end: the scenarios of spec/flat-output.md §17 (the reference's
FlatOutputJobMiniclusterTest) 1-6 and 8, black-box through `logproc run flat-output`.

Inputs are the reference's fake data: `logproc generate logs --profile=factory` (the test
factory's LogRequests: platform 1, log user 00000000-...-0001, view 22222222-...-0001 and so on)
or the createItemShoppingCartBuilder preset, edited where a scenario says so. The §17 harness
ran every record at its event_api_timestamp, so the frames here carry that time (spec README
"Time"); it also ran without AddLatestImpressions (--no-addLatestImpressions).

Each expected JoinedEvent and FlatResponseInsertion is built from the input records with
flatlib's model of the spec's rules (push-down §1.2, merge §11.2/§11.3, pivot §12.2, user_id
stripping §12.4) and compared field for field with the Kafka record value (protobuf) and with
the Avro row; the tests also pin the exact set of non-empty etl/ and etl_side/ tables, the
record key, the dt/hour partitions, and that no user_id survives anywhere.
"""
import os

import flatlib as F
from flatlib import pb

WORK = F.workdir("test_flat_output_e2e")
F.load_protos(WORK)

DEBUG = {"debug_tiny_event", "debug_rhs_tiny_action", "debug_partial_response_insertion"}
MAIN = {"joined_impression", "joined_action", "flat_response_insertion"}
LUID = "00000000-0000-0000-0000-000000000001"
T_FULL = 1601603351000  # 2020-10-02 01:49:11 UTC


def factory(name, *extra):
    """The factory's records, each at its event_api_timestamp (the §17 harness's clock)."""
    recs = F.generate(WORK, name, ["--profile=factory"] + list(extra))
    return [(lr.timing.event_api_timestamp, lr) for _, lr in recs]


def stream(recs, kind):
    return [c for ts, lr in recs for c in F.children(ts, lr, kind)]


def delivery_logs(recs):
    """(api, sdk) of the one client request of the factory data."""
    api = sdk = None
    for d in stream(recs, "delivery_log"):
        if d.execution.execution_server == pb.execution.SDK:
            sdk = d
        else:
            api = d
    return api, sdk


def expected(recs, skip_view=False):
    """The joined impression, joined action and FRI the rules give for one-of-each data."""
    views = stream(recs, "view")
    api, sdk = delivery_logs(recs)
    imp = stream(recs, "impression")[0]
    act = stream(recs, "action")[0]
    ji = F.expect_joined_impression(None if skip_view else views[0], api, sdk, imp.insertion_id, imp)
    ja = F.expect_joined_action(ji, act)
    return ji, ja, F.expect_fri([ji], [ja])


def split_joined(out, topic="metrics.default.joined-event"):
    imps, acts = [], []
    for ts, key, je in out.joined_events(topic):
        (acts if je.HasField("action") else imps).append((ts, key, je))
    return imps, acts


def check_outputs(c, out, ji, ja, fri, what, topic="metrics.default.joined-event", prefix=""):
    """Kafka values equal the model; Avro rows equal the Kafka values; keys, partitions and
    user_id stripping as the spec says."""
    imps, acts = split_joined(out, topic)
    c.eq(len(imps), 1, what + ": joined impressions on " + topic)
    c.eq(len(acts), 1, what + ": joined actions on " + topic)
    key = F.event_key(1, LUID)
    for ts, k, je in imps + acts:
        c.eq(k, key, what + ": record key (8-byte LE platform id + log_user_id)")
        c.eq(F.pb_user_ids(je), [], what + ": user_id left in a Kafka value")
    if imps:
        F.check_message(c, imps[0][2], ji, what + ": joined impression")
        c.eq(F.feature_stage(imps[0][2].api_execution_insertion),
             F.feature_stage(ji.api_execution_insertion),
             what + ": the private feature_stage of the execution insertion on the topic")
    if acts:
        F.check_message(c, acts[0][2], ja, what + ": joined action")
    for table, want, ts_of in (
            ("etl/joined_impression", ji, lambda r: r["impression"]["timing"]["event_api_timestamp"]),
            ("etl/joined_action", ja, lambda r: r["action"]["timing"]["event_api_timestamp"]),
            ("etl/flat_response_insertion", fri, lambda r: r["request"]["timing"]["event_api_timestamp"])):
        rows = out.rows(prefix + table)
        c.eq(len(rows), 1, what + ": rows of " + table)
        if rows:
            F.check_avro_row(c, rows[0], want, what + ": " + table)
            c.eq(F.find_user_ids(rows[0]), [], what + ": user_id left in " + table)
        F.check_partitions(c, out, prefix + table, ts_of, what)


def test_one_full_event_gives_exactly_the_three_etl_tables_and_the_three_debug_tables(c):
    """§17.1: one view, DeliveryLog (API), impression and action, PARTIAL and FULL detail, and
    under --jobLabel=blue; partitions follow event_api_timestamp."""
    cases = [
        ("partial", factory("partial", "--miniSdkRate=0"), [], "", "dt=2020-10-01/hour=23"),
        ("full", factory("full", "--miniSdkRate=0", "--detail=FULL", "--startTime=%d" % T_FULL),
         [], "", "dt=2020-10-02/hour=01"),
        ("blue", factory("blue", "--miniSdkRate=0"), ["--jobLabel=blue"], "blue/",
         "dt=2020-10-01/hour=23"),
    ]
    for name, recs, args, prefix, part in cases:
        out = F.run_flat(WORK, "one_full_event_" + name, recs, ["--no-addLatestImpressions"] + args)
        what = "one full event (%s)" % name
        base = F.Out(os.path.join(out.root, prefix.rstrip("/")) if prefix else out.root, out.proc)
        c.eq(base.nonempty("etl"), MAIN, what + ": non-empty etl tables")
        c.eq(base.nonempty("etl_side"), DEBUG, what + ": non-empty etl_side tables")
        if prefix:
            c.eq(sorted(os.listdir(out.root)), ["blue", "kafka"],
                 what + ": every table under <root>/blue/ (and the topic stand-in)")
        topic = "metrics.blue.default.joined-event" if prefix else "metrics.default.joined-event"
        ji, ja, fri = expected(recs)
        c.eq(ji.api_execution.execution_server, pb.execution.API, what + ": the log is an API log")
        c.check(ji.HasField("api_execution_insertion"), what + ": the model finds the execution insertion")
        c.check(F.feature_stage(ji.api_execution_insertion) is not None,
                what + ": the execution insertion carries the private feature_stage")
        check_outputs(c, out, ji, ja, fri, what, topic, prefix)
        parts = [p for p, _ in base.parts("etl/joined_impression")]
        c.check(parts and all("/" + part + "/" in p for p in parts),
                what + ": joined_impression under %s: %r" % (part, parts))


def test_sdk_and_shadow_api_logs_of_one_client_request_give_one_joined_impression_with_the_hidden_api_request(c):
    """§17.2: an SDK log and its shadow-traffic API copy (same client_request_id) combine; the
    joined events carry the SDK request, hidden_api_request (the shadow's request id, timing and
    client_info {PLATFORM_SERVER, SHADOW}), the shadow's execution insertion, and both
    executions."""
    recs = factory("shadow", "--miniSdkRate=1", "--shadowTrafficRate=1")
    api, sdk = delivery_logs(recs)
    c.check(api is not None and sdk is not None, "shadow: the data has an SDK log and its shadow")
    if api is None or sdk is None:
        return
    c.eq(api.request.client_request_id, sdk.request.client_request_id, "shadow: one client request id")
    out = F.run_flat(WORK, "shadow", recs, ["--no-addLatestImpressions"])
    c.eq(out.nonempty("etl"), MAIN, "shadow: non-empty etl tables")
    c.eq(out.nonempty("etl_side"), DEBUG, "shadow: non-empty etl_side tables")
    ji, ja, fri = expected(recs)
    h = ji.hidden_api_request
    c.eq(h.request_id, "33333333-3333-3333-0000-000000000002", "shadow: model hidden request id")
    c.eq((h.client_info.client_type, h.client_info.traffic_type),
         (pb.common.ClientInfo.PLATFORM_SERVER, pb.common.ClientInfo.SHADOW), "shadow: model client_info")
    c.eq(ji.sdk_execution.execution_server, pb.execution.SDK, "shadow: model sdk_execution")
    c.check(ji.HasField("api_execution_insertion"), "shadow: model api_execution_insertion")
    check_outputs(c, out, ji, ja, fri, "shadow")


def test_ignore_usage_on_the_request_drops_the_joined_impression_and_action_into_their_side_tables(c):
    """§17.3: request.user_info.ignore_usage → no etl table; the dropped tables are exactly
    dropped_ignore_usage_joined_impression and _joined_action, holding the joined events."""
    recs = factory("ignore_usage", "--miniSdkRate=0")
    for _, lr in recs:
        for d in lr.delivery_log:
            d.request.user_info.ignore_usage = True
    out = F.run_flat(WORK, "ignore_usage", recs, ["--no-addLatestImpressions"])
    c.eq(out.nonempty("etl"), set(), "ignore_usage: non-empty etl tables")
    c.eq(out.nonempty("etl_side"), DEBUG | {"dropped_ignore_usage_joined_action",
                                            "dropped_ignore_usage_joined_impression"},
         "ignore_usage: non-empty etl_side tables")
    c.eq(out.topic("metrics.default.joined-event"), [], "ignore_usage: nothing on the topic")
    ji, ja, _ = expected(recs)
    c.check(ji.request.user_info.ignore_usage, "ignore_usage: the model keeps the flag")
    for table, want in (("etl_side/dropped_ignore_usage_joined_impression", ji),
                        ("etl_side/dropped_ignore_usage_joined_action", ja)):
        rows = out.rows(table)
        c.eq(len(rows), 1, "ignore_usage: rows of " + table)
        if rows:
            F.check_avro_row(c, rows[0], want, "ignore_usage: " + table)
        F.check_partitions(c, out, table, lambda r: r["timing"]["log_timestamp"], "ignore_usage")


def test_non_buyer_sparse_hash_on_the_execution_insertion_drops_the_joined_events_into_the_non_buyer_tables(c):
    """§17.4: feature_stage.features.sparse_id{4078401918190321518: 1} on the API execution
    insertion and --nonBuyerUserSparseHash=4078401918190321518 → no etl table; dropped tables
    exactly dropped_non_buyer_joined_impression and _joined_action."""
    h = 4078401918190321518
    recs = factory("non_buyer", "--miniSdkRate=0")
    for _, lr in recs:
        for d in lr.delivery_log:
            ex = F.execution_insertions(d.execution)
            for i in ex:
                set_sparse = F.feature_stage(i)
                F.set_feature_stage(i, sparse={h: 1})
                if set_sparse is None:
                    raise SystemExit("non_buyer: the factory's execution insertion has no feature_stage")
            server = d.execution.execution_server
            d.ClearField("execution")
            d.execution.execution_server = server
            F.set_execution_insertions(d.execution, ex)
    out = F.run_flat(WORK, "non_buyer", recs,
                     ["--no-addLatestImpressions", "--nonBuyerUserSparseHash=%d" % h])
    c.eq(out.nonempty("etl"), set(), "non_buyer: non-empty etl tables")
    c.eq(out.nonempty("etl_side"), DEBUG | {"dropped_non_buyer_joined_impression",
                                            "dropped_non_buyer_joined_action"},
         "non_buyer: non-empty etl_side tables")
    ji, ja, _ = expected(recs)
    fs = F.feature_stage(ji.api_execution_insertion)
    c.check(fs is not None and fs.features.sparse_id[h] == 1, "non_buyer: model's execution insertion")
    for table, want in (("etl_side/dropped_non_buyer_joined_impression", ji),
                        ("etl_side/dropped_non_buyer_joined_action", ja)):
        rows = out.rows(table)
        c.eq(len(rows), 1, "non_buyer: rows of " + table)
        if rows:
            F.check_avro_row(c, rows[0], want, "non_buyer: " + table)
    # a hash that is not on the insertion drops nothing
    out = F.run_flat(WORK, "non_buyer_other_hash", recs,
                     ["--no-addLatestImpressions", "--nonBuyerUserSparseHash=42"])
    c.eq(out.nonempty("etl"), MAIN, "non_buyer, other hash: non-empty etl tables")


def test_bot_user_agent_on_the_request_drops_the_delivery_log_and_its_impression_and_action(c):
    """§17.5: request.device.browser.user_agent "google bot" → no etl table; dropped tables
    exactly dropped_delivery_log_is_bot, dropped_insertion_impressions,
    dropped_impression_actions; of the debug tables only debug_rhs_tiny_action."""
    recs = factory("bot", "--miniSdkRate=0")
    c.check(F.is_bot("google bot"), "bot: 'google bot' matches Appendix A")
    for _, lr in recs:
        for d in lr.delivery_log:
            d.request.device.browser.user_agent = "google bot"
    out = F.run_flat(WORK, "bot", recs, ["--no-addLatestImpressions"])
    c.eq(out.nonempty("etl"), set(), "bot: non-empty etl tables")
    c.eq(out.nonempty("etl_side"), {"dropped_delivery_log_is_bot", "dropped_impression_actions",
                                    "dropped_insertion_impressions", "debug_rhs_tiny_action"},
         "bot: non-empty etl_side tables")
    ts, lr = [(ts, lr) for ts, lr in recs if lr.delivery_log][0]
    dl = lr.delivery_log[0]
    rows = out.rows("etl_side/dropped_delivery_log_is_bot")
    c.eq([(r["platform_id"], r["log_user_id"], r["log_timestamp"], r["view_id"], r["request_id"],
           r["insertion_id"]) for r in rows],
         [(1, LUID, ts, dl.request.view_id, dl.request.request_id, "")], "bot: the dropped log's TinyEvent")
    imp = stream(recs, "impression")[0]
    act = stream(recs, "action")[0]
    c.eq([r["impression_id"] for r in out.rows("etl_side/dropped_insertion_impressions")],
         [imp.impression_id], "bot: the impression in dropped_insertion_impressions")
    c.eq([r["action_id"] for r in out.rows("etl_side/dropped_impression_actions")],
         [act.action_id], "bot: the action in dropped_impression_actions")


def test_skip_view_join_without_views_gives_outputs_without_view_and_session_id(c):
    """§17.6: --skipViewJoin and no View records → the joined events have no `view` and no
    ids.session_id (the FRI's view is present but empty: §12.2 sets it unconditionally)."""
    recs = [(ts, lr) for ts, lr in factory("skip_view", "--miniSdkRate=0") if not lr.view]
    out = F.run_flat(WORK, "skip_view", recs, ["--no-addLatestImpressions", "--skipViewJoin"])
    c.eq(out.nonempty("etl"), MAIN, "skip_view: non-empty etl tables")
    c.eq(out.nonempty("etl_side"), DEBUG, "skip_view: non-empty etl_side tables")
    ji, ja, fri = expected(recs, skip_view=True)
    c.check(not ji.HasField("view") and not ji.ids.session_id, "skip_view: model has no view")
    check_outputs(c, out, ji, ja, fri, "skip_view")
    for table in ("etl/joined_impression", "etl/joined_action"):
        for r in out.rows(table):
            c.eq((r["view"], r["ids"]["session_id"], r["ids"]["view_id"]),
                 (None, "", ji.ids.view_id), "skip_view: %s view, session id, view id" % table)


def test_item_shopping_cart_splits_each_checkout_and_purchase_into_one_joined_action_per_cart_item(c):
    """§17.8: the createItemShoppingCartBuilder preset (16 impressions; NAVIGATE 16, ADD_TO_CART 4,
    CHECKOUT 4, PURCHASE 4, every checkout/purchase carrying the 4-item cart) → 16 joined
    impressions and 52 joined actions (NAVIGATE 16, ADD_TO_CART 4, CHECKOUT 16, PURCHASE 16):
    each cart line is joined to the impression of its item, keeps the action's raw content_id,
    and carries that line as single_cart_content."""
    recs = F.generate(WORK, "cart", ["--preset=createItemShoppingCartBuilder"])
    recs = [(lr.timing.event_api_timestamp, lr) for _, lr in recs]
    imps = stream(recs, "impression")
    acts = stream(recs, "action")
    names = pb.event.ActionType.Name
    count = {}
    for a in acts:
        count[names(a.action_type)] = count.get(names(a.action_type), 0) + 1
    c.eq((len(imps), count), (16, {"NAVIGATE": 16, "ADD_TO_CART": 4, "CHECKOUT": 4, "PURCHASE": 4}),
         "cart: preset input")
    out = F.run_flat(WORK, "cart", recs, ["--no-addLatestImpressions"])
    c.eq(out.nonempty("etl"), MAIN, "cart: non-empty etl tables")
    ji_rows = out.rows("etl/joined_impression")
    ja_rows = out.rows("etl/joined_action")
    c.eq(len(ji_rows), 16, "cart: joined impressions")
    got = {}
    for r in ja_rows:
        got[r["action"]["action_type"]] = got.get(r["action"]["action_type"], 0) + 1
    c.eq(got, {"NAVIGATE": 16, "ADD_TO_CART": 4, "CHECKOUT": 16, "PURCHASE": 16}, "cart: joined actions by type")
    imp_of_content = {i.content_id: i.impression_id for i in imps}
    by_id = {a.action_id: a for a in acts}
    seen = set()
    for r in ja_rows:
        a = r["action"]
        raw = by_id.get(a["action_id"])
        if raw is None:
            c.check(False, "cart: unknown action id %s" % a["action_id"])
            continue
        c.eq(a["content_id"], raw.content_id, "cart: %s keeps its raw content_id" % a["action_id"])
        if a["action_type"] in ("CHECKOUT", "PURCHASE"):
            line = a["single_cart_content"]
            c.check(line is not None, "cart: %s has single_cart_content" % a["action_id"])
            if line is None:
                continue
            seen.add((a["action_id"], line["content_id"]))
            c.eq(r["ids"]["impression_id"], imp_of_content[line["content_id"]],
                 "cart: %s line %s joined to its item's impression" % (a["action_id"], line["content_id"]))
            want = [x for x in raw.cart.contents if x.content_id == line["content_id"]][0]
            c.eq((line["quantity"], line["price_per_unit"]["currency_code"],
                  line["price_per_unit"]["amount_micros"]),
                 (want.quantity, "USD", want.price_per_unit.amount_micros),
                 "cart: %s line %s" % (a["action_id"], line["content_id"]))
            c.eq(len(a["cart"]["contents"]), 4, "cart: %s keeps the whole cart" % a["action_id"])
        else:
            c.eq(r["ids"]["impression_id"], imp_of_content[raw.content_id],
                 "cart: %s %s joined to the impression of its content" % (a["action_type"], a["action_id"]))
    want = {(a.action_id, x.content_id) for a in acts if a.action_type in (3, 8) for x in a.cart.contents}
    c.eq(seen, want, "cart: one joined action per (checkout/purchase, cart line)")
    i11 = [x for a in acts for x in a.cart.contents if x.content_id == "i-1-1"]
    c.check(i11 and i11[0].quantity == 1 and i11[0].price_per_unit.amount_micros == 5000000,
            "cart: the preset's i-1-1 line is quantity 1 at $5")


F.run_tests([
    test_one_full_event_gives_exactly_the_three_etl_tables_and_the_three_debug_tables,
    test_sdk_and_shadow_api_logs_of_one_client_request_give_one_joined_impression_with_the_hidden_api_request,
    test_ignore_usage_on_the_request_drops_the_joined_impression_and_action_into_their_side_tables,
    test_non_buyer_sparse_hash_on_the_execution_insertion_drops_the_joined_events_into_the_non_buyer_tables,
    test_bot_user_agent_on_the_request_drops_the_delivery_log_and_its_impression_and_action,
    test_skip_view_join_without_views_gives_outputs_without_view_and_session_id,
    test_item_shopping_cart_splits_each_checkout_and_purchase_into_one_joined_action_per_cart_item,
], WORK)
