#include "jobs/join/bot_filter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/text.h"
#include "jobs/join/join_records.h"
#include "jobs/join/tiny.h"
#include "runtime/buf.h"
#include "runtime/metrics.h"

/* Appendix A, verbatim: the Java string values of the isbot list the reference uses (without the
 * patterns that break okhttp/ccc, and without "http"). */
static const char *const patterns[] = {
    " daum[\\s/]",
    " deusu/",
    "(?:^|\\s)site",
    "@[a-z]",
    "\\(at\\)[a-z]",
    "\\(github\\.com/",
    "\\[at\\][a-z]",
    "^12345",
    "^<",
    "^ace explorer",
    "^acoon",
    "^active",
    "^ad muncher",
    "^anglesharp/",
    "^apple-pubsub/",
    "^astute srm",
    "^avsdevicesdk/",
    "^bidtellect/",
    "^biglotron",
    "^blackboard safeassign",
    "^blocknote.net",
    "^braze sender",
    "^camo asset proxy",
    "^captivenetworksupport",
    "^castro",
    "^clamav[\\s/]",
    "^cobweb/",
    "^coccoc",
    "^dap ",
    "^ddg[_-]android",
    "^discourse",
    "^dispatch/\\d",
    "^downcast/",
    "^duckduckgo",
    "^enigma browser",
    "^evernote clip resolver",
    "^facebook",
    "^faraday",
    "^fdm[\\s/]\\d",
    "^getright/",
    "^gozilla/",
    "^hatena",
    "^hobbit",
    "^hotzonu",
    "^hwcdn/",
    "^infox-wisg",
    "^invision",
    "^jeode/",
    "^jetbrains",
    "^jetty/",
    "^jigsaw",
    "^linkdex",
    "^lwp-",
    "^lwp::simple",
    "^mailchimp\\.com$",
    "^metauri",
    "^microsoft bits",
    "^microsoft data",
    "^microsoft office existence",
    "^microsoft office protocol discovery",
    "^microsoft windows network diagnostics",
    "^microsoft-cryptoapi",
    "^microsoft-webdav-miniredir",
    "^movabletype",
    "^mozilla/\\d\\.\\d \\(compatible;?\\)$",
    "^my browser$",
    "^navermailapp",
    "^netsurf",
    "^node-superagent",
    "^octopus",
    "^offline explorer",
    "^ossproxy",
    "^pagething",
    "^panscient",
    "^perimeterx",
    "^php",
    "^postrank",
    "^python",
    "^ramblermail",
    "^read",
    "^reed",
    "^restsharp/",
    "^shareaza",
    "^shockwave flash",
    "^smallproxy",
    "^snapchat",
    "^space bison",
    "^sprinklr",
    "^svn",
    "^swcd ",
    "^t-online browser",
    "^taringa",
    "^test certificate info",
    "^the knowledge ai",
    "^thinklab",
    "^traackr.com",
    "^tumblr/",
    "^vbulletin",
    "^venus/fedoraplanet",
    "^w3c",
    "^webbandit/",
    "^webcopier",
    "^wget",
    "^whatsapp",
    "^www-mechanize",
    "^xenu link sleuth",
    "^yahoo",
    "^yandex",
    "^zdm/\\d",
    "^zeushdthree",
    "adbeat\\.com",
    "appinsights",
    "archive",
    "ask jeeves/teoma",
    "bit\\.ly/",
    "bluecoat drtr",
    "bot",
    "browsex",
    "burpcollaborator",
    "capture",
    "catch",
    "check",
    "chrome-lighthouse",
    "chromeframe",
    "client",
    "cloud",
    "crawl",
    "daemon",
    "dareboost",
    "datanyze",
    "dataprovider",
    "dejaclick",
    "dmbrowser",
    "download",
    "email",
    "evc-batch/",
    "feed",
    "fetch",
    "firephp",
    "freesafeip",
    "ghost",
    "gomezagent",
    "google",
    "headlesschrome/",
    "httrack",
    "hubspot marketing grader",
    "hydra",
    "ibisbrowser",
    "images",
    "index",
    "ips-agent",
    "java",
    "jorgee",
    "library",
    "mail\\.ru/",
    "manager",
    "monitor",
    "neustar wpm",
    "news",
    "nutch",
    "offbyone",
    "optimize",
    "pagespeed",
    "parse",
    "perl",
    "phantom",
    "pingdom",
    "powermarks",
    "preview",
    "probe",
    "ptst[\\s/]\\d",
    "reader",
    "rigor",
    "rss",
    "scan",
    "scrape",
    "search",
    "server",
    "sogou",
    "sparkler/",
    "spider",
    "statuscake",
    "stumbleupon\\.com",
    "supercleaner",
    "synapse",
    "synthetic",
    "toolbar",
    "torrent",
    "tracemyfile",
    "transcoder",
    "trendsmapresolver",
    "twingly recon",
    "url",
    "valid",
    "virtuoso",
    "wappalyzer",
    "webglance",
    "webkit2png",
    "websitemetadataretriever",
    "whatcms/",
    "wordpress",
    "zgrab",
};

#define N_PATTERNS (sizeof patterns / sizeof patterns[0])

size_t bot_filter_pattern_count(void)
{
    return N_PATTERNS;
}

const char *bot_filter_pattern(size_t i)
{
    return i < N_PATTERNS ? patterns[i] : NULL;
}

/* ---- Java regex -> PCRE2 ---- */

/* Java's `.` without DOTALL: anything but a line terminator. */
static const char java_dot[] = "[^\\n\\r\\x{85}\\x{2028}\\x{2029}]";
/* Java's `$` without MULTILINE: at the end, or before a final line terminator; \r\n is one
 * terminator and `$` never matches between its two characters. */
static const char java_dollar[] =
    "(?:\\z|(?=[\\r\\x{85}\\x{2028}\\x{2029}]\\z)|(?<!\\r)(?=\\n\\z)|(?=\\r\\n\\z))";

/* Appends the rewrite of one Java pattern to b: `.` and `$` outside character classes are
 * replaced, everything else (escapes, classes, groups) is copied. The patterns use no nested
 * classes, \Q..\E or comments, so tracking escapes and one class level is exact for them. */
static int translate(rt_buf *b, const char *p)
{
    int in_class = 0;
    for (; *p; p++) {
        if (*p == '\\' && p[1]) {
            if (rt_buf_append(b, p, 2)) return -1;
            p++;
            continue;
        }
        if (in_class) {
            if (*p == ']') in_class = 0;
        } else if (*p == '[') {
            in_class = 1;
            if (rt_buf_append(b, p, 1)) return -1;
            /* a ']' right after '[' or '[^' is a literal member */
            if (p[1] == '^') {
                if (rt_buf_append(b, ++p, 1)) return -1;
            }
            if (p[1] == ']') {
                if (rt_buf_append(b, ++p, 1)) return -1;
            }
            continue;
        } else if (*p == '.') {
            if (rt_buf_append(b, java_dot, sizeof java_dot - 1)) return -1;
            continue;
        } else if (*p == '$') {
            if (rt_buf_append(b, java_dollar, sizeof java_dollar - 1)) return -1;
            continue;
        }
        if (rt_buf_append(b, p, 1)) return -1;
    }
    return 0;
}

/* ---- the shared compiled pattern ---- */

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static pcre2_code *shared_code;
static int shared_refs;

static int shared_acquire(char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&shared_lock);
    if (!shared_code) {
        rt_buf b;
        rt_buf_init(&b, 1 << 20);
        for (size_t i = 0; i < N_PATTERNS && rc == 0; i++) {
            /* each alternative in its own group, so a pattern's ^ or $ binds to it alone */
            if ((i && rt_buf_append(&b, "|", 1)) || rt_buf_append(&b, "(?:", 3) ||
                translate(&b, patterns[i]) || rt_buf_append(&b, ")", 1))
                rc = -1;
        }
        if (rc) {
            snprintf(err, errlen, "bot filter: out of memory building the pattern");
        } else {
            int ec;
            PCRE2_SIZE off;
            shared_code = pcre2_compile((PCRE2_SPTR)b.data, b.len, PCRE2_UTF, &ec, &off, NULL);
            if (!shared_code) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(ec, msg, sizeof msg);
                snprintf(err, errlen, "bot filter: PCRE2 rejects the patterns at offset %zu: %s",
                         (size_t)off, (const char *)msg);
                rc = -1;
            } else {
                /* JIT is an optimisation: without it (unsupported CPU) matching interprets */
                (void)pcre2_jit_compile(shared_code, PCRE2_JIT_COMPLETE);
            }
        }
        rt_buf_free(&b);
    }
    if (rc == 0) shared_refs++;
    pthread_mutex_unlock(&shared_lock);
    return rc;
}

static void shared_release(void)
{
    pthread_mutex_lock(&shared_lock);
    if (--shared_refs == 0) {
        pcre2_code_free(shared_code);
        shared_code = NULL;
    }
    pthread_mutex_unlock(&shared_lock);
}

/* ---- matcher ---- */

struct bot_filter {
    pcre2_code *code; /* shared */
    pcre2_match_data *md;
    char *lower;
    size_t lower_cap;
};

int bot_filter_new(bot_filter **out, char *err, size_t errlen)
{
    *out = NULL;
    bot_filter *bf = calloc(1, sizeof *bf);
    if (!bf) {
        snprintf(err, errlen, "bot filter: out of memory");
        return -1;
    }
    if (shared_acquire(err, errlen)) {
        free(bf);
        return -1;
    }
    bf->code = shared_code;
    if (!(bf->md = pcre2_match_data_create(1, NULL))) {
        snprintf(err, errlen, "bot filter: out of memory");
        bot_filter_free(bf);
        return -1;
    }
    *out = bf;
    return 0;
}

void bot_filter_free(bot_filter *bf)
{
    if (!bf) return;
    pcre2_match_data_free(bf->md);
    free(bf->lower);
    shared_release();
    free(bf);
}

int bot_filter_is_bot(bot_filter *bf, const char *ua, size_t len)
{
    if (!ua || len == 0) return 0;
    if (len > BOT_FILTER_MAX_UA_BYTES) return -1;
    size_t need = text_lower_cap(len);
    if (need > bf->lower_cap) {
        size_t cap = bf->lower_cap ? bf->lower_cap : 256;
        while (cap < need)
            cap *= 2;
        char *p = realloc(bf->lower, cap);
        if (!p) return -1;
        bf->lower = p;
        bf->lower_cap = cap;
    }
    size_t n;
    text_lower(ua, len, bf->lower, &n);
    int rc = pcre2_match(bf->code, (PCRE2_SPTR)bf->lower, n, 0, 0, bf->md, NULL);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return -1; /* invalid UTF-8, match limit */
}

int bot_filter_traffic_priority(int traffic_type)
{
    switch (traffic_type) {
    case 4:
        return 2; /* SHADOW */
    case 2:       /* REPLAY */
    case 3:       /* INTERNAL */
    case 5:
        return 1; /* LOAD_TEST */
    default:
        return 3; /* PRODUCTION, UNKNOWN, anything unrecognized */
    }
}

bool bot_filter_should_join(int traffic_type)
{
    return bot_filter_traffic_priority(traffic_type) > 1;
}

/* ---- operator ---- */

typedef struct bot_op {
    bot_filter_stream stream;
    bot_filter *bf;
    rt_counter *bots, *should_not, *not_searched;
} bot_op;

static int bot_open(rt_op *op)
{
    bot_op *b = rt_op_self(op);
    char err[256];
    if (bot_filter_new(&b->bf, err, sizeof err)) return rt_op_fail(op, "%s", err);
    if (rt_op_counter(op, "numDroppedBots", &b->bots) ||
        rt_op_counter(op, "numDroppedShouldNotJoin", &b->should_not) ||
        rt_op_counter(op, "numUserAgentsNotSearched", &b->not_searched))
        return rt_op_fail(op, "out of memory");
    int rc = b->stream == BOT_FILTER_VIEW
                 ? rt_op_set_port_name(op, 1, "dropped_view_is_bot")
                 : rt_op_set_port_name(op, 1, "dropped_delivery_log_should_not_join") ||
                       rt_op_set_port_name(op, 2, "dropped_delivery_log_is_bot");
    return rc ? rt_op_fail(op, "out of memory") : 0;
}

static const char *user_agent(const Common__Device *d)
{
    return d && d->browser && d->browser->user_agent ? d->browser->user_agent : "";
}

static int is_bot(rt_op *op, bot_op *b, const char *ua)
{
    int r = bot_filter_is_bot(b->bf, ua, strlen(ua));
    if (r < 0) {
        rt_counter_add(b->not_searched, 1);
        return 0;
    }
    return r;
}

static int emit_tiny(rt_op *op, int port, const rt_record *rec, Event__TinyEvent *te)
{
    rt_record r = {.ts = rec->ts,
                   .type = REC_TINY_EVENT,
                   .data = te,
                   .key = rec->key,
                   .key_len = rec->key_len};
    return rt_emit(op, port, &r);
}

static int bot_process(rt_op *op, int input, const rt_record *rec)
{
    bot_op *b = rt_op_self(op);
    Event__TinyEvent te;
    if (b->stream == BOT_FILTER_VIEW) {
        if (rec->type != REC_VIEW) return rt_op_fail(op, "record type %d is not a view", rec->type);
        const Event__View *v = rec->data;
        if (!is_bot(op, b, user_agent(v->device))) return rt_emit(op, 0, rec);
        rt_counter_add(b->bots, 1);
        tiny_of_view(v, &te);
        return emit_tiny(op, 1, rec, &te);
    }
    if (rec->type != REC_DELIVERY_LOG)
        return rt_op_fail(op, "record type %d is not a delivery log", rec->type);
    const Delivery__DeliveryLog *dl = rec->data;
    const Delivery__Request *rq = dl->request;
    int traffic = rq && rq->client_info && rq->client_info->has_traffic_type
                      ? (int)rq->client_info->traffic_type
                      : 0;
    if (!bot_filter_should_join(traffic)) {
        rt_counter_add(b->should_not, 1);
        tiny_of_delivery_log(dl, &te);
        return emit_tiny(op, 1, rec, &te);
    }
    if (is_bot(op, b, user_agent(rq ? rq->device : NULL))) {
        rt_counter_add(b->bots, 1);
        tiny_of_delivery_log(dl, &te);
        return emit_tiny(op, 2, rec, &te);
    }
    return rt_emit(op, 0, rec);
}

static void bot_close(rt_op *op)
{
    bot_op *b = rt_op_self(op);
    bot_filter_free(b->bf);
    free(b);
}

static const rt_op_vtbl bot_vtbl = {.open = bot_open, .process = bot_process, .close = bot_close};

int bot_filter_op_add(rt_graph *g, const char *uid, bot_filter_stream stream, rt_op **out)
{
    bot_op *b = calloc(1, sizeof *b);
    if (!b) return -1;
    b->stream = stream;
    int nout = stream == BOT_FILTER_VIEW ? 2 : 3;
    if (rt_graph_add_op(g, uid, "bot-filter", &bot_vtbl, b, 1, nout, out)) {
        free(b);
        return -1;
    }
    return 0;
}
