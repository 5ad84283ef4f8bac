/* The bot filter and the ShouldJoin traffic-type filter of flat-output (spec/flat-output.md
 * §2.4, §2.5, Appendix A).
 *
 * isBot(ua): the user agent is lower-cased like Java's String.toLowerCase(Locale.ROOT)
 * (formats/text.h) and searched, unanchored, for any of the 202 patterns of Appendix A joined
 * with '|'. The patterns are Java regexes; they are compiled once per process with PCRE2 in UTF
 * mode after a small rewrite that gives them Java's semantics:
 *   - `.` outside a class becomes a class excluding Java's line terminators
 *     (\n \r U+0085 U+2028 U+2029: PCRE2 would also exclude VT and FF with NEWLINE_ANY);
 *   - `$` becomes an assertion: end of input, or before one final line terminator (\r\n counts
 *     as one, and there is no match between its \r and \n), as Java's non-multiline `$`;
 *   - `\s` and `\d` stay ASCII-only (no PCRE2_UCP), as Java without UNICODE_CHARACTER_CLASS.
 * No PCRE2_CASELESS: the input is already lower-cased and every pattern is lower-case ASCII, so
 * a caseless match could only add matches Java does not make (PCRE2's Unicode caseless sets let
 * 's' and [a-z] match U+017F LONG S, which Java's lower-casing keeps and Java's ASCII
 * case-insensitive matching never equates with 's'). docs/JOIN.md has the details. */
#ifndef LOGPROC_JOIN_BOT_FILTER_H
#define LOGPROC_JOIN_BOT_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/graph.h"

/* Longest user agent the filter lower-cases and searches (bytes); a longer one is not
 * searched: bot_filter_is_bot returns -1 for it. Records are at most --maxRecordBytes anyway. */
#define BOT_FILTER_MAX_UA_BYTES ((size_t)4 << 20)

typedef struct bot_filter bot_filter;

/* The patterns of Appendix A, as the Java string values (static storage). */
size_t bot_filter_pattern_count(void);
const char *bot_filter_pattern(size_t i);

/* Creates a matcher. The compiled pattern (PCRE2, JIT when available) is shared by all matchers
 * of the process and compiled by the first bot_filter_new; each matcher has its own match data
 * and lower-casing buffer, so one matcher per thread. Returns 0 with *out, or -1 with err (a
 * pattern PCRE2 rejects: names the offset, or out of memory). */
int bot_filter_new(bot_filter **out, char *err, size_t errlen);
/* Frees the matcher (and the shared pattern with the last one). NULL is a no-op. */
void bot_filter_free(bot_filter *bf);

/* isBot: 1 when the lower-cased ua (len bytes of UTF-8) contains a match of any pattern, 0 when
 * not (an empty ua is not a bot), -1 when it could not be searched (over
 * BOT_FILTER_MAX_UA_BYTES, invalid UTF-8, out of memory). Cost: O(len) lower-casing plus one
 * PCRE2 search; allocates only when the buffer grows. */
int bot_filter_is_bot(bot_filter *bf, const char *ua, size_t len);

/* The ShouldJoin priority of a request.client_info.traffic_type number (§2.4): PRODUCTION,
 * UNKNOWN and unrecognized values 3; SHADOW 2; REPLAY, INTERNAL, LOAD_TEST 1. Also the slot
 * priority of CombineDeliveryLog (§5). */
int bot_filter_traffic_priority(int traffic_type);
/* ShouldJoin: priority > 1. */
bool bot_filter_should_join(int traffic_type);

typedef enum {
    BOT_FILTER_VIEW,         /* REC_VIEW in; UA = view.device.browser.user_agent */
    BOT_FILTER_DELIVERY_LOG, /* REC_DELIVERY_LOG in; ShouldJoin, then isBot on
                                request.device.browser.user_agent */
} bot_filter_stream;

/* Adds the filter operator of one stream. Views: port 0 non-bot views (the input record, as
 * is), port 1 "dropped_view_is_bot" TinyEvent {platform_id, log_user_id, log_timestamp,
 * view_id}. DeliveryLogs: port 0 kept logs, port 1 "dropped_delivery_log_should_not_join" and
 * port 2 "dropped_delivery_log_is_bot", both TinyEvent {platform_id, log_user_id,
 * log_timestamp = request lt, view_id, request_id} (REC_TINY_EVENT, the input's ts and key).
 * A UA that cannot be searched counts as not a bot (counter numUserAgentsNotSearched).
 * Counters: numDroppedBots, numDroppedShouldNotJoin. Returns 0 or -1 (out of memory; a pattern
 * that does not compile fails rt_graph_open). */
int bot_filter_op_add(rt_graph *g, const char *uid, bot_filter_stream stream, rt_op **out);

#endif
