#include "jobs/join/flat_flags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(f) offsetof(flat_opts, f)

static const flag_def flat_defs[] = {
    {"devMode", NULL, FLAG_BOOL, NULL, F(devMode), "run sortedness asserts in AddLatestImpressions", 0},
    {"writeJoinedEventsToKafka", NULL, FLAG_BOOL, "true", F(writeJoinedEventsToKafka),
     "write joined impressions and actions to the joined-event topic", 0},
    {"writeFlatResponseInsertionsToKafka", NULL, FLAG_BOOL, NULL,
     F(writeFlatResponseInsertionsToKafka), "write flat response insertions to their topic", 0},
    {"checkLateness", NULL, FLAG_BOOL, "true", F(checkLateness),
     "route records behind the watermark to the joins' late side outputs", 0},
    {"idJoinDurationMultiplier", NULL, FLAG_INT, "1", F(idJoinDurationMultiplier),
     "multiplies the joins' cleanup horizons", 0},
    {"skipViewJoin", NULL, FLAG_BOOL, NULL, F(skipViewJoin),
     "pass delivery logs through the view join unjoined; merges ignore views", 0},
    {"viewInsertionJoinMin", NULL, FLAG_DURATION, "-PT10M", F(viewInsertionJoinMin),
     "how far back a delivery log looks for its view", 0},
    {"viewInsertionJoinMax", NULL, FLAG_DURATION, "PT0S", F(viewInsertionJoinMax),
     "how far forward a view may be (and the view join's watermark delay)", 0},
    {"combineDeliveryLogWindow", NULL, FLAG_DURATION, "PT2S", F(combineDeliveryLogWindow),
     "window pairing API and SDK delivery logs of one client request", 0},
    {"insertionImpressionJoinMin", NULL, FLAG_DURATION, "-PT30M", F(insertionImpressionJoinMin),
     "how far back an impression looks for its insertion", 0},
    {"insertionImpressionJoinMax", NULL, FLAG_DURATION, "PT0S", F(insertionImpressionJoinMax),
     "how far forward an insertion may be", 0},
    {"impressionActionJoinMin", NULL, FLAG_DURATION, "-P1D", F(impressionActionJoinMin),
     "how far back an action looks for its impression; also the redundant-impression ttl", 0},
    {"impressionActionJoinMax", NULL, FLAG_DURATION, "PT0S", F(impressionActionJoinMax),
     "how far forward an impression may be", 0},
    {"addLatestImpressions", NULL, FLAG_BOOL, "true", F(addLatestImpressions),
     "decorate joined actions with the user's latest impressions", 0},
    {"writeHudiTables", NULL, FLAG_BOOL, NULL, F(writeHudiTables),
     "Hudi output (out of scope: rejected)", 0},
    {"extraAddLatestImpressionOutOfOrderness", NULL, FLAG_DURATION, "PT0.5S",
     F(extraAddLatestImpressionOutOfOrderness), "extra wait before an action is decorated", 0},
    {"flatResponseInsertionGapDuration", NULL, FLAG_DURATION, "P1D",
     F(flatResponseInsertionGapDuration), "session gap of the flat response insertion pivot", 0},
    {"mergeDetailsCleanupPeriod", NULL, FLAG_DURATION, "PT30S", F(mergeDetailsCleanupPeriod),
     "period of the merge-details state cleanup", 0},
    {"mergeDetailsMissingOutputDelay", NULL, FLAG_DURATION, "PT0S",
     F(mergeDetailsMissingOutputDelay), "wait for missing parents before dropping a merge", 0},
    {"mergeDetailsCleanupBuffer", NULL, FLAG_DURATION, "PT30S", F(mergeDetailsCleanupBuffer),
     "extra retention of merge-details state", 0},
    {"batchCleanupAllMergeDetailsTimersBeforeTimestamp", NULL, FLAG_INT, "0",
     F(batchCleanupAllMergeDetailsTimersBeforeTimestamp),
     "merge-details timers before this (ms) also clean up", 0},
    {"writeMismatchError", NULL, FLAG_BOOL, "true", F(writeMismatchError),
     "write etl_side/mismatch_error", 0},
    {"nonBuyerUserSparseHash", NULL, FLAG_LIST, NULL, F(nonBuyerUserSparseHash),
     "sparse feature hash (int64, repeatable) marking non-buyers", 0},
    {"textLogWatermarks", NULL, FLAG_BOOL, NULL, F(textLogWatermarks), "log watermarks", 0},
    {"hudiSideDatabaseName", NULL, FLAG_STRING, NULL, F(hudiSideDatabaseName),
     "Hudi side database (Hudi is rejected)", 0},
    {"keepFirstImpressionDuration", NULL, FLAG_DURATION, "P1D", F(keepFirstImpressionDuration),
     "dedupe retention of impressions", 0},
    {"keepFirstActionDuration", NULL, FLAG_DURATION, "P1D", F(keepFirstActionDuration),
     "dedupe retention of actions", 0},
    {"keepFirstViewDuration", NULL, FLAG_DURATION, "PT6H", F(keepFirstViewDuration),
     "dedupe retention of views (logproc also dedupes views)", 0},
    {"keepFirstDeliveryLogDuration", NULL, FLAG_DURATION, "P1D", F(keepFirstDeliveryLogDuration),
     "dedupe retention of delivery logs by request_id (logproc also dedupes delivery logs)", 0},
    {"joinedEventTopic", NULL, FLAG_STRING, "", F(joinedEventTopic),
     "joined-event topic instead of metrics[.<label>].<kafkaDataset>.joined-event", 0},
    {"flatResponseInsertionTopic", NULL, FLAG_STRING, "", F(flatResponseInsertionTopic),
     "flat-response-insertion topic instead of the default pattern", 0},
    {"joinedUserEventTopic", NULL, FLAG_STRING, "", F(joinedUserEventTopic), "unused here",
     FLAG_IGNORED},
    {"flatUserResponseInsertionTopic", NULL, FLAG_STRING, "", F(flatUserResponseInsertionTopic),
     "unused here", FLAG_IGNORED},
    {"maxJoinedEventOutOfOrderness", NULL, FLAG_DURATION, "PT1S", F(maxJoinedEventOutOfOrderness),
     "unused by this job", FLAG_IGNORED},
    {"maxFlatResponseInsertionOutOfOrderness", NULL, FLAG_DURATION, "PT1S",
     F(maxFlatResponseInsertionOutOfOrderness), "unused by this job", FLAG_IGNORED},
    {"contentApiRootUrl", NULL, FLAG_STRING, "", F(contentApiRootUrl),
     "Content API root (must end with /); non-empty: look up the content of tiny insertions "
     "and actions there (the content join)", 0},
    {"contentApiKey", NULL, FLAG_STRING, "", F(contentApiKey),
     "Content API key, sent as x-api-key (never logged); required with --contentApiRootUrl", 0},
    {"contentApiSecretName", NULL, FLAG_STRING, "", F(contentApiSecretName),
     "secret holding the Content API key (no secrets manager here: give --contentApiKey)",
     FLAG_PENDING},
    {"region", NULL, FLAG_STRING, "", F(region), "AWS region of the secret", 0},
    {"contentApiTimeout", NULL, FLAG_DURATION, "PT1S", F(contentApiTimeout),
     "timeout of one Content API request (a timeout is retried like an error, never fatal)", 0},
    {"contentIdFieldKeys", NULL, FLAG_LIST, NULL, F(contentIdFieldKeys),
     "property/field names holding other content ids (ordered, repeatable)", 0},
    {"contentApiCapacity", NULL, FLAG_INT, "10", F(contentApiCapacity),
     "Content API calls in flight (lookups here are synchronous, one at a time per task, with "
     "the cache in front)", FLAG_IGNORED},
    {"contentCacheMaxSize", NULL, FLAG_INT, "50000", F(contentCacheMaxSize),
     "content cache entries per lookup operator and task (least recently used evicted)", 0},
    {"contentApiMaxAttempts", NULL, FLAG_INT, "3", F(contentApiMaxAttempts),
     "attempts per lookup and status code (1..100)", 0},
    {"contentApiMaxAttemptsPerStatusCode", NULL, FLAG_MAP, NULL,
     F(contentApiMaxAttemptsPerStatusCode),
     "STATUS=ATTEMPTS overriding --contentApiMaxAttempts for one status (0: transport errors "
     "and timeouts)", 0},
    {"contentApiMaxAllowedConsecutiveErrors", NULL, FLAG_INT, "0",
     F(contentApiMaxAllowedConsecutiveErrors),
     "failed lookups tolerated before the reference fails the job (logproc never fails it: "
     "failures go to etl_side/content_api_error)", FLAG_IGNORED},
    {"contentCacheExpiration", NULL, FLAG_DURATION, "P1D", F(contentCacheExpiration),
     "content cache TTL after last access", 0},
    {"contentApiFailureCacheExpiration", NULL, FLAG_DURATION, "PT10S",
     F(contentApiFailureCacheExpiration),
     "how long a failed lookup is remembered (its records go on without foreign keys)", 0},
    {"enableDummyContentApiLoader", NULL, FLAG_BOOL, NULL, F(enableDummyContentApiLoader),
     "insert the content lookup operators as pass-throughs (no Content API calls)", 0},
};

flag_table flat_flags_table(flat_opts *o)
{
    flag_table t = FLAG_TABLE("flat-output", flat_defs, o);
    return t;
}

int flat_flags_check(flat_opts *o, char *err, size_t errlen)
{
    if (o->writeHudiTables) {
        snprintf(err, errlen, "flag --writeHudiTables: Hudi output is not supported by logproc "
                              "(the Avro tables under etl/ hold the same records)");
        return -1;
    }
    if (o->idJoinDurationMultiplier < 1) {
        snprintf(err, errlen, "flag --idJoinDurationMultiplier=%lld: must be >= 1",
                 (long long)o->idJoinDurationMultiplier);
        return -1;
    }
    if (o->combineDeliveryLogWindow < 0 || o->flatResponseInsertionGapDuration <= 0 ||
        o->mergeDetailsCleanupPeriod <= 0) {
        snprintf(err, errlen, "flags --combineDeliveryLogWindow, --flatResponseInsertionGapDuration "
                              "and --mergeDetailsCleanupPeriod must be positive durations");
        return -1;
    }
    flat_flags_free(o);
    o->non_buyer_hashes = calloc(o->nonBuyerUserSparseHash.n + 1, sizeof *o->non_buyer_hashes);
    if (!o->non_buyer_hashes) return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < o->nonBuyerUserSparseHash.n; i++) {
        const char *v = o->nonBuyerUserSparseHash.items[i];
        char *end;
        errno = 0;
        long long h = strtoll(v, &end, 10);
        if (!*v || *end || errno) {
            snprintf(err, errlen, "flag --nonBuyerUserSparseHash=%s: not an int64", v);
            return -1;
        }
        o->non_buyer_hashes[o->n_non_buyer_hashes++] = h;
    }
    return 0;
}

void flat_flags_free(flat_opts *o)
{
    free(o->non_buyer_hashes);
    o->non_buyer_hashes = NULL;
    o->n_non_buyer_hashes = 0;
}
