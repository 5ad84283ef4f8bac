"""Join maxima far above the join minima lose nothing (docs/JOIN.md "Join maxima above zero").

    logproc generate logs --profile local --users 1 --viewsPerSession 500 --autoViewsPerSession 0
    logproc run flat-output ... --viewInsertionJoinMax=X --insertionImpressionJoinMax=X
        --impressionActionJoinMax=X                                   for X = PT20S and P1D

One hot user: 500 views, their DeliveryLogs and 3,500 impressions, none of them carrying a parent
id, so every view, insertion and impression join is inferred (fake-data §5). A child without a
parent id chooses its parent at ts + |joinMax| among the parents logged down to |joinMin| before
it, so a larger maximum only widens what it may choose from: every impression (and action) that
joins with PT20S must join with P1D too. With P1D each join also holds its output watermark back
a day, so the three joins resolve everything at the end of input; the children's timers
(ts + 1 d) then fire after the parents' own (ts + |joinMin|), which, when parents were dropped at
T - |joinMin| as the reference does, took every parent away before almost every child chose:
7 of 3,500 impressions joined.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flatlib as F  # noqa: E402

WORK = F.workdir("acc-join-maxima")
GEN_ARGS = ["--profile", "local", "--users", "1", "--viewsPerSession", "500",
            "--autoViewsPerSession", "0"]


def maxima(x):
    return ["--viewInsertionJoinMax=" + x, "--insertionImpressionJoinMax=" + x,
            "--impressionActionJoinMax=" + x, "--restPort", "-1"]


def hot_user_input():
    F.load_protos(WORK)
    recs = F.generate(WORK, "hot", GEN_ARGS)
    with open(os.path.join(WORK, "hot.gen.rec"), "rb") as f:
        data = f.read()
    impressions = {imp.impression_id for _, lr in recs for imp in lr.impression}
    actions = {a.action_id for _, lr in recs for a in lr.action}
    return data, impressions, actions


def joined(out):
    imps = {r["ids"]["impression_id"] for r in out.rows("etl/joined_impression")}
    redundant = len(out.rows("etl_side/dropped_redundant_impression"))
    acts = {r["action"]["action_id"] for r in out.rows("etl/joined_action")}
    return imps, redundant, acts


def test_day_long_join_maxima_join_every_impression_and_action_a_twenty_second_one_joins(c):
    data, impressions, actions = hot_user_input()
    c.eq(len(impressions), 3500, "impressions in the generated input (500 views x 7)")
    short = F.run_flat(WORK, "pt20s", data, maxima("PT20S"))
    day = F.run_flat(WORK, "p1d", data, maxima("P1D"))
    s_imps, s_red, s_acts = joined(short)
    d_imps, d_red, d_acts = joined(day)
    # the short run is the yardstick: nearly every impression joins (kept or redundant)
    c.check(len(s_imps) + s_red >= 0.99 * len(impressions),
            "PT20S: %d joined + %d redundant of %d impressions" % (len(s_imps), s_red,
                                                                   len(impressions)))
    c.check(s_imps <= impressions, "PT20S: joined impressions are input impressions")
    c.check(len(s_acts) >= 0.9 * len(actions),
            "PT20S: %d of %d actions joined" % (len(s_acts), len(actions)))
    lost = sorted(s_imps - d_imps)
    c.check(not lost, "P1D loses %d impressions PT20S joins, e.g. %s" % (len(lost), lost[:3]))
    lost = sorted(s_acts - d_acts)
    c.check(not lost, "P1D loses %d actions PT20S joins, e.g. %s" % (len(lost), lost[:3]))
    # nothing the short run keeps goes to the drop tables of the long one
    for table in ("dropped_insertion_impressions", "dropped_impression_actions",
                  "late_insertion_impressions", "late_impression_actions"):
        c.check(len(day.rows("etl_side/" + table)) <= len(short.rows("etl_side/" + table)),
                "P1D %s: %d rows, PT20S %d" % (table, len(day.rows("etl_side/" + table)),
                                                len(short.rows("etl_side/" + table))))


F.run_tests([test_day_long_join_maxima_join_every_impression_and_action_a_twenty_second_one_joins],
            WORK)
