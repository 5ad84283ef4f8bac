"""flat-output end to end with the Content API: spec/flat-output.md §17 scenarios 7 and 9 (the
reference's FlatOutputJobMiniclusterTest storeToItem and storeToItem_cart_storeInsertion), black
box through `logproc run flat-output` against the local Content API of
`logproc generate content --serve` serving the presets' catalogue (the test factory's 20 stores x
20 items x 4 promotions, fake-data.md §1.D; every item carries its storeId).

As in the §17 harness every record is at its event_api_timestamp and AddLatestImpressions is
off. The expected attributions come from the catalogue's rule (fake-data.md §2: with 20 items
per store, item i-1-m belongs to store s-1-ceil(m/20)) applied to the preset's input, not from a previous run; each
scenario also runs without the Content API, where the actions on items cannot reach the store
impressions, so the difference is the content join's doing.
"""
import os
import subprocess

import flatlib as F
from flatlib import pb

WORK = F.workdir("test_flat_output_content_api")
F.load_protos(WORK)
KEY = "acceptance-key-5c1e"


def store_of(item):
    """The presets' catalogue's store of item i-1-m (20 items per store, numbered across stores)."""
    m = int(item.rsplit("-", 1)[1])
    return "s-1-%d" % ((m - 1) // 20 + 1)


class ContentApi:
    """`logproc generate content --serve --port 0` with the presets' catalogue, its URL read from
    its first stdout line."""

    def __init__(self):
        self.proc = subprocess.Popen([F.BIN, "generate", "content", "--serve", "--port", "0",
                                      "--contentApiKey", KEY, "--stores=20", "--itemsPerStore=20",
                                      "--promotionsPerItem=4"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise SystemExit("content server did not start: %r %s" % (line, self.proc.stderr.read()))
        self.url = line.split()[-1]

    def stop(self):
        self.proc.terminate()
        self.proc.communicate(timeout=30)


def by_type(rows):
    got = {}
    for r in rows:
        t = r["action"]["action_type"]
        got[t] = got.get(t, 0) + 1
    return got


def run_both(name, recs, args):
    api = ContentApi()
    try:
        on = F.run_flat(WORK, name + "_on", recs, args + [
            "--contentApiRootUrl", api.url, "--contentApiKey", KEY, "--contentIdFieldKeys=storeId"])
    finally:
        api.stop()
    off = F.run_flat(WORK, name + "_off", recs, args + ["--contentIdFieldKeys=storeId"])
    return on, off


def test_store_to_item_joins_all_four_item_actions_to_the_store_impression(c):
    """§17.7: createStoreToItemBuilder, --skipViewJoin, field key storeId: 1 store impression and
    4 item actions (NAVIGATE, ADD_TO_CART, CHECKOUT, PURCHASE) → 4 joined actions, all on the
    store impression; CHECKOUT and PURCHASE carry the cart and single_cart_content {i-1-1, 1,
    USD 5000000}."""
    recs = F.generate(WORK, "s2i", ["--preset=createStoreToItemBuilder"])
    recs = [(lr.timing.event_api_timestamp, lr) for _, lr in recs]
    imps = [x for ts, lr in recs for x in F.children(ts, lr, "impression")]
    acts = [x for ts, lr in recs for x in F.children(ts, lr, "action")]
    c.eq((len(imps), len(acts)), (1, 4), "storeToItem: preset input")
    on, off = run_both("s2i", recs, ["--no-addLatestImpressions", "--skipViewJoin"])
    rows = on.rows("etl/joined_action")
    c.eq(by_type(rows), {"NAVIGATE": 1, "ADD_TO_CART": 1, "CHECKOUT": 1, "PURCHASE": 1},
         "storeToItem: joined actions by type")
    for r in rows:
        c.eq(r["ids"]["impression_id"], imps[0].impression_id,
             "storeToItem: %s on the store impression" % r["action"]["action_type"])
        if r["action"]["action_type"] in ("CHECKOUT", "PURCHASE"):
            line = r["action"]["single_cart_content"]
            c.check(line is not None and r["action"]["cart"] is not None,
                    "storeToItem: %s carries cart and single_cart_content" % r["action"]["action_type"])
            if line:
                c.eq((line["content_id"], line["quantity"], line["price_per_unit"]["currency_code"],
                      line["price_per_unit"]["amount_micros"]), ("i-1-1", 1, "USD", 5000000),
                     "storeToItem: the cart line")
    c.eq(on.rows("etl_side/content_api_error"), [], "storeToItem: no lookup failed")
    c.check(len(off.rows("etl/joined_action")) < 4,
            "storeToItem: without the Content API fewer actions join (%d)" % len(off.rows("etl/joined_action")))
    for o in (on, off):
        c.check(KEY not in o.proc.stderr and KEY not in o.proc.stdout, "the key is not logged")


def test_store_insertion_item_cart_attributes_item_actions_to_their_stores(c):
    """§17.9: createStoreInsertionItemShoppingCartBuilder (4 store impressions; actions on items)
    → 40 joined actions (ADD_TO_CART 4, NAVIGATE 4, CHECKOUT 16, PURCHASE 16), each cart line on
    the impression of its item's store through the Content API's storeId (i-1-181 → s-1-10)."""
    recs = F.generate(WORK, "cart", ["--preset=createStoreInsertionItemShoppingCartBuilder"])
    recs = [(lr.timing.event_api_timestamp, lr) for _, lr in recs]
    imps = [x for ts, lr in recs for x in F.children(ts, lr, "impression")]
    acts = [x for ts, lr in recs for x in F.children(ts, lr, "action")]
    c.eq(len(imps), 4, "storeInsertion: preset impressions")
    on, off = run_both("cart", recs, ["--no-addLatestImpressions"])
    rows = on.rows("etl/joined_action")
    c.eq(by_type(rows), {"ADD_TO_CART": 4, "NAVIGATE": 4, "CHECKOUT": 16, "PURCHASE": 16},
         "storeInsertion: joined actions by type")
    imp_of_store = {i.content_id: i.impression_id for i in imps}
    by_id = {a.action_id: a for a in acts}
    c.eq(store_of("i-1-181"), "s-1-10", "the spec's example attribution")
    seen = set()
    for r in rows:
        a = r["action"]
        raw = by_id.get(a["action_id"])
        if raw is None:
            c.check(False, "storeInsertion: unknown action %s" % a["action_id"])
            continue
        item = a["single_cart_content"]["content_id"] if a["single_cart_content"] else raw.content_id
        if item.startswith("i-"):
            want = imp_of_store.get(store_of(item))
            c.eq(r["ids"]["impression_id"], want,
                 "storeInsertion: %s %s on the impression of %s" % (a["action_type"], item, store_of(item)))
        seen.add((a["action_id"], item))
    c.eq(len(seen), len(rows), "storeInsertion: one joined action per (action, cart line)")
    off_rows = off.rows("etl/joined_action")
    c.check(len(off_rows) < len(rows), "storeInsertion: without the Content API fewer actions join "
            "(%d vs %d)" % (len(off_rows), len(rows)))
    off_keys = {(r["action"]["action_id"], r["ids"]["impression_id"]) for r in off_rows}
    on_keys = {(r["action"]["action_id"], r["ids"]["impression_id"]) for r in rows}
    c.check(off_keys <= on_keys, "storeInsertion: the Content API keeps every id-based attribution")
    c.eq(on.rows("etl_side/content_api_error"), [], "storeInsertion: no lookup failed")


F.run_tests([
    test_store_to_item_joins_all_four_item_actions_to_the_store_impression,
    test_store_insertion_item_cart_attributes_item_actions_to_their_stores,
], WORK)
