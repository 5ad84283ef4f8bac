#include "jobs/content/content_flags.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/log.h"

#define C(f) offsetof(content_opts, f)
#define DAY_MS 86400000LL

static const flag_def content_defs[] = {
    /* §C.7 */
    {"jobName", NULL, FLAG_STRING, "content-metrics", C(jobName),
     "job name; with a non-live label it becomes <label>.<jobName>, the cumulated rows' messageType", 0},
    {"region", NULL, FLAG_STRING, "", C(region), "AWS region of the Kinesis stream", 0},
    {"overrideInputLabel", NULL, FLAG_STRING, "", C(overrideInputLabel),
     "label of the joined-event topic to read; empty: --jobLabel", 0},
    {"outputParquet", NULL, FLAG_BOOL, NULL, C(outputParquet),
     "write the hourly and daily tables (Avro here, the reference's Parquet columns)", 0},
    {"outputCsv", NULL, FLAG_BOOL, NULL, C(outputCsv), "write the daily CSV table", 0},
    {"outputCumulatedFiles", NULL, FLAG_BOOL, NULL, C(outputCumulatedFiles),
     "write the cumulated rows as JSON lines under etl/cumulated_content_metrics", 0},
    {"outputCumulatedKafka", NULL, FLAG_BOOL, NULL, C(outputCumulatedKafka),
     "write the cumulated rows for the topic " "metrics.blue.default.cumulated-content-metrics "
     "(a record file under <root>/kafka/ until the Kafka sink lands)", 0},
    {"outputCumulatedKinesis", NULL, FLAG_BOOL, NULL, C(outputCumulatedKinesis),
     "write the cumulated rows to Kinesis; nothing is written there yet", FLAG_PENDING},
    {"cumulatedWindowStep", NULL, FLAG_STRING, "INTERVAL '1' DAY", C(cumulatedWindowStep),
     "step of the cumulated windows (max a day): INTERVAL 'n' SECOND|MINUTE|HOUR|DAY, or ISO-8601", 0},
    {"kinesisStream", NULL, FLAG_STRING, "", C(kinesisStream),
     "Kinesis stream of the cumulated rows (required with --outputCumulatedKinesis)", 0},
    {"keepFirstViewDuration", NULL, FLAG_DURATION, "PT6H", C(keepFirstViewDuration),
     "dedupe retention of views", 0},
    {"keepFirstImpressionDuration", NULL, FLAG_DURATION, "P1D", C(keepFirstImpressionDuration),
     "dedupe retention of impressions", 0},
    {"keepFirstActionDuration", NULL, FLAG_DURATION, "P1D", C(keepFirstActionDuration),
     "dedupe retention of actions", 0},
    {"keepFirstJoinedImpressionDuration", NULL, FLAG_DURATION, "PT6H",
     C(keepFirstJoinedImpressionDuration), "dedupe retention of joined impressions", 0},
    /* Kafka (§1.4) */
    {"joinedEventTopic", NULL, FLAG_STRING, "", C(joinedEventTopic),
     "joined-event topic instead of metrics[.<input label>].<kafkaDataset>.joined-event", 0},
    {"maxJoinedEventOutOfOrderness", NULL, FLAG_DURATION, "PT1S", C(maxJoinedEventOutOfOrderness),
     "bounded out-of-orderness of the joined-event source watermark", 0},
    {"maxPollJoinedEvent", NULL, FLAG_STRING, "500", C(maxPollJoinedEvent), "unused here",
     FLAG_IGNORED},
    {"maxPollFlatResponseInsertion", NULL, FLAG_STRING, "500", C(maxPollFlatResponseInsertion),
     "unused here", FLAG_IGNORED},
    {"maxPollLogUserUser", NULL, FLAG_STRING, "500", C(maxPollLogUserUser), "unused here",
     FLAG_IGNORED},
    {"joinedUserEventTopic", NULL, FLAG_STRING, "", C(joinedUserEventTopic), "unused here",
     FLAG_IGNORED},
    {"flatUserResponseInsertionTopic", NULL, FLAG_STRING, "", C(flatUserResponseInsertionTopic),
     "unused here", FLAG_IGNORED},
    {"flatResponseInsertionTopic", NULL, FLAG_STRING, "", C(flatResponseInsertionTopic),
     "unused here", FLAG_IGNORED},
    {"logUserUserTopic", NULL, FLAG_STRING, "", C(logUserUserTopic), "unused here", FLAG_IGNORED},
    {"maxFlatResponseInsertionOutOfOrderness", NULL, FLAG_DURATION, "PT1S",
     C(maxFlatResponseInsertionOutOfOrderness), "unused here", FLAG_IGNORED},
    {"maxLogUserUserOutOfOrderness", NULL, FLAG_DURATION, "PT1S", C(maxLogUserUserOutOfOrderness),
     "unused here", FLAG_IGNORED},
    /* logproc */
    {"joinedEventSource", NULL, FLAG_LIST, NULL, C(joinedEventSource),
     "record file of the joined-event topic (repeatable; flat-output writes them under "
     "<root>/kafka/<topic>/), or flat-output's etl/joined_impression and etl/joined_action "
     "tables (a directory or s3:// prefix); read in the same task as every --source", 0},
    {"doubleCountCartActions", NULL, FLAG_BOOL, NULL, C(doubleCountCartActions),
     "count an action with a cart for its own content id as well as per cart row (the reference)",
     0},
};

flag_table content_flags_table(content_opts *o)
{
    flag_table t = FLAG_TABLE("content-metrics", content_defs, o);
    return t;
}

int content_parse_interval(const char *s, int64_t *ms)
{
    if (!strncasecmp(s, "INTERVAL", 8) && isspace((unsigned char)s[8])) {
        const char *p = s + 8;
        while (isspace((unsigned char)*p)) p++;
        if (*p++ != '\'') return -1;
        errno = 0;
        char *end;
        long long n = strtoll(p, &end, 10);
        if (end == p || *end != '\'' || errno || n <= 0) return -1;
        p = end + 1;
        while (isspace((unsigned char)*p)) p++;
        static const struct {
            const char *unit;
            int64_t ms;
        } units[] = {{"SECOND", 1000}, {"MINUTE", 60000}, {"HOUR", 3600000}, {"DAY", DAY_MS}};
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t ul = strlen(units[i].unit);
            if (strncasecmp(p, units[i].unit, ul)) continue;
            const char *q = p + ul;
            if (*q == 's' || *q == 'S') q++;
            while (isspace((unsigned char)*q)) q++;
            if (*q || n > DAY_MS / units[i].ms) return -1;
            *ms = n * units[i].ms;
            return 0;
        }
        return -1;
    }
    return flags_parse_duration(s, ms);
}

int content_flags_check(const job_common_opts *c, content_opts *o, char *err, size_t errlen)
{
    if (!o->outputParquet && !o->outputCsv && !o->outputCumulatedFiles &&
        !o->outputCumulatedKafka && !o->outputCumulatedKinesis) {
        snprintf(err, errlen, "content-metrics needs at least one output: --outputParquet, "
                              "--outputCsv, --outputCumulatedFiles, --outputCumulatedKafka or "
                              "--outputCumulatedKinesis");
        return -1;
    }
    if (o->outputCumulatedKinesis && !*o->kinesisStream) {
        snprintf(err, errlen, "flag --outputCumulatedKinesis needs --kinesisStream");
        return -1;
    }
    if (o->outputCumulatedKinesis && !*o->region) {
        snprintf(err, errlen, "flag --outputCumulatedKinesis needs --region");
        return -1;
    }
    int64_t step;
    if (content_parse_interval(o->cumulatedWindowStep, &step) || step <= 0 || DAY_MS % step) {
        snprintf(err, errlen,
                 "flag --cumulatedWindowStep=%s: want INTERVAL 'n' SECOND|MINUTE|HOUR|DAY or an "
                 "ISO-8601 duration that divides one day",
                 o->cumulatedWindowStep);
        return -1;
    }
    o->cumulated_step_ms = step;
    if (o->maxJoinedEventOutOfOrderness < 0) {
        snprintf(err, errlen, "flag --maxJoinedEventOutOfOrderness: must not be negative");
        return -1;
    }
    if (o->outputParquet)
        log_info("content-metrics", "--outputParquet: the hourly and daily tables are written as "
                                    "Avro container files with the same columns");
    if (!o->joinedEventSource.n && c->source.n)
        log_warn("content-metrics", "no --joinedEventSource: the joined impression counts are 0");
    char topic[200];
    content_joined_event_topic(c, o, topic, sizeof topic);
    if ((size_t)snprintf(o->joined_source_uid, sizeof o->joined_source_uid, "%s%s",
                         c->kafkaSourceUidPrefix, topic) >= sizeof o->joined_source_uid) {
        snprintf(err, errlen, "source uid %s%s is over %zu bytes", c->kafkaSourceUidPrefix, topic,
                 sizeof o->joined_source_uid - 1);
        return -1;
    }
    return 0;
}

void content_job_name(const job_common_opts *c, const content_opts *o, char *buf, size_t cap)
{
    job_label_prefix(c->jobLabel, o->jobName, buf, cap);
}

void content_joined_event_topic(const job_common_opts *c, const content_opts *o, char *buf,
                                size_t cap)
{
    if (*o->joinedEventTopic) {
        snprintf(buf, cap, "%s", o->joinedEventTopic);
        return;
    }
    const char *label = *o->overrideInputLabel ? o->overrideInputLabel : c->jobLabel;
    if (job_label_is_live(label)) snprintf(buf, cap, "metrics.%s.joined-event", c->kafkaDataset);
    else snprintf(buf, cap, "metrics.%s.%s.joined-event", label, c->kafkaDataset);
}
