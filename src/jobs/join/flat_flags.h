/* flat-output's own flags (spec/flat-output.md §16, §14.1, §9), declared once in flat_flags.c. */
#ifndef LOGPROC_FLAT_FLAGS_H
#define LOGPROC_FLAT_FLAGS_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/flags.h"

typedef struct flat_opts {
    bool devMode;
    bool writeJoinedEventsToKafka;
    bool writeFlatResponseInsertionsToKafka;
    bool checkLateness;
    int64_t idJoinDurationMultiplier;
    bool skipViewJoin;
    int64_t viewInsertionJoinMin, viewInsertionJoinMax;
    int64_t combineDeliveryLogWindow;
    int64_t insertionImpressionJoinMin, insertionImpressionJoinMax;
    int64_t impressionActionJoinMin, impressionActionJoinMax;
    bool addLatestImpressions;
    bool writeHudiTables;
    int64_t extraAddLatestImpressionOutOfOrderness;
    int64_t flatResponseInsertionGapDuration;
    int64_t mergeDetailsCleanupPeriod;
    int64_t mergeDetailsMissingOutputDelay;
    int64_t mergeDetailsCleanupBuffer;
    int64_t batchCleanupAllMergeDetailsTimersBeforeTimestamp;
    bool writeMismatchError;
    flag_list nonBuyerUserSparseHash;
    bool textLogWatermarks;
    char *hudiSideDatabaseName;
    int64_t keepFirstImpressionDuration, keepFirstActionDuration;
    int64_t keepFirstViewDuration, keepFirstDeliveryLogDuration;
    /* FlatOutputKafka (§14.1) */
    char *joinedEventTopic, *flatResponseInsertionTopic;
    char *joinedUserEventTopic, *flatUserResponseInsertionTopic;
    int64_t maxJoinedEventOutOfOrderness, maxFlatResponseInsertionOutOfOrderness;
    /* Content API (§9; issue 6) */
    char *contentApiRootUrl, *contentApiKey, *contentApiSecretName, *region;
    int64_t contentApiTimeout;
    flag_list contentIdFieldKeys;
    int64_t contentApiCapacity, contentCacheMaxSize, contentApiMaxAttempts;
    flag_list contentApiMaxAttemptsPerStatusCode;
    int64_t contentApiMaxAllowedConsecutiveErrors;
    int64_t contentCacheExpiration;
    int64_t contentApiFailureCacheExpiration; /* logproc's: failures are cached this long */
    bool enableDummyContentApiLoader;
    /* derived by flat_flags_check */
    int64_t *non_buyer_hashes; /* --nonBuyerUserSparseHash as int64 (owned; flat_flags_free) */
    size_t n_non_buyer_hashes;
} flat_opts;

/* The table bound to o. */
flag_table flat_flags_table(flat_opts *o);

/* Cross-flag checks (Hudi rejected, nonBuyerUserSparseHash are int64, ...). 0 or -1 with err. */
int flat_flags_check(flat_opts *o, char *err, size_t errlen);

/* Frees what flat_flags_check derived (not the table's own strings: flags_free does those). */
void flat_flags_free(flat_opts *o);

#endif
