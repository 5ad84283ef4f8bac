#include "jobs/counter/counter_fields.h"

#include <string.h>

#include <utf8proc.h>

#include "formats/text.h"
#include "jobs/counter/counter_tables.h"

/* Java's Character.isWhitespace: the Unicode space, line and paragraph separators except the
 * non-breaking ones, plus \t..\r and the four information separators U+001C..U+001F. */
static bool java_whitespace(utf8proc_int32_t c)
{
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return true;
    if (c == 0xA0 || c == 0x2007 || c == 0x202F) return false;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
           cat == UTF8PROC_CATEGORY_ZP;
}

bool cfield_is_blank(const char *s, size_t len)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0) return false; /* invalid bytes are not whitespace */
        if (!java_whitespace(c)) return false;
        i += (size_t)n;
    }
    return true;
}

size_t cfield_utf16_length(const char *s, size_t len)
{
    size_t units = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)s[i];
        if ((b & 0xC0) != 0x80) units++; /* a lead byte (or an ASCII byte) starts a char */
        if ((b & 0xF8) == 0xF0) units++; /* 4-byte sequences are surrogate pairs */
    }
    return units;
}

static bool blank(const char *s)
{
    return !s || cfield_is_blank(s, strlen(s));
}

/* firstNotEmpty over up to 8 candidates (NULL counts as ""). */
static const char *first_not_blank(const char *const *c, int n)
{
    for (int i = 0; i < n; i++)
        if (!blank(c[i])) return c[i];
    return c[n - 1] ? c[n - 1] : "";
}

#define UI(m) ((m) && (m)->user_info ? (m)->user_info : NULL)

uint64_t cfield_platform_id(const Event__JoinedEvent *e)
{
    uint64_t c[] = {
        e->ids ? e->ids->platform_id : 0,
        e->user ? e->user->platform_id : 0,
        e->view ? e->view->platform_id : 0,
        e->request ? e->request->platform_id : 0,
        e->response_insertion ? e->response_insertion->platform_id : 0,
        e->impression ? e->impression->platform_id : 0,
        e->action ? e->action->platform_id : 0,
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        if (c[i]) return c[i];
    return 0;
}

const char *cfield_log_user_id(const Event__JoinedEvent *e)
{
    const Common__UserInfo *u[] = {UI(e->user),       UI(e->view),
                                   UI(e->request),    UI(e->response_insertion),
                                   UI(e->impression), UI(e->action)};
    const char *c[7] = {e->ids ? e->ids->log_user_id : NULL};
    for (int i = 0; i < 6; i++)
        c[i + 1] = u[i] ? u[i]->log_user_id : NULL;
    return first_not_blank(c, 7);
}

const char *cfield_user_id(const Event__JoinedEvent *e)
{
    const Common__UserInfo *u[] = {UI(e->user),       UI(e->view),
                                   UI(e->request),    UI(e->response_insertion),
                                   UI(e->impression), UI(e->action)};
    const char *c[7] = {e->ids ? e->ids->user_id : NULL};
    for (int i = 0; i < 6; i++)
        c[i + 1] = u[i] ? u[i]->user_id : NULL;
    return first_not_blank(c, 7);
}

const char *cfield_content_id(const Event__JoinedEvent *e)
{
    const char *c[] = {
        e->response_insertion ? e->response_insertion->content_id : NULL,
        e->api_execution_insertion ? e->api_execution_insertion->content_id : NULL,
        e->impression ? e->impression->content_id : NULL,
        e->action ? e->action->content_id : NULL,
    };
    return first_not_blank(c, 4);
}

#define TM(m) ((m) ? (m)->timing : NULL)

static int64_t first_ts(const Common__Timing *const *t, int n, bool log)
{
    for (int i = 0; i < n; i++) {
        if (!t[i]) continue;
        uint64_t v = log ? t[i]->log_timestamp : t[i]->event_api_timestamp;
        if (v) return (int64_t)v;
    }
    return 0;
}

int64_t cfield_log_timestamp(const Event__JoinedEvent *e)
{
    const Common__Timing *t[] = {e->timing,
                                 TM(e->action),
                                 TM(e->impression),
                                 TM(e->api_execution_insertion),
                                 TM(e->response_insertion),
                                 TM(e->request),
                                 TM(e->view),
                                 TM(e->session),
                                 TM(e->user)};
    return first_ts(t, 9, true);
}

int64_t cfield_event_api_timestamp(const Event__JoinedEvent *e)
{
    const Common__Timing *t[] = {TM(e->action),  TM(e->impression), TM(e->response_insertion),
                                 TM(e->request), TM(e->view),       TM(e->session),
                                 TM(e->user)};
    return first_ts(t, 7, false);
}

int64_t cfield_count(const Event__JoinedEvent *e)
{
    if (e->action && e->action->single_cart_content)
        return e->action->single_cart_content->quantity;
    return 1;
}

int cfield_metric(const Event__JoinedEvent *e)
{
    if (!e->action && e->impression) return CMETRIC_IMPRESSION;
    int type = e->action ? (int)e->action->action_type : 0;
    if (type == EVENT__ACTION_TYPE__CUSTOM_ACTION_TYPE || type < 0 || type > 19)
        return CMETRIC_UNKNOWN;
    return type << 5;
}

int cfield_extract(const Event__JoinedEvent *e, ua_family *ua, char *qbuf, size_t qcap,
                   counter_fields *out)
{
    out->event = e;
    out->platform_id = (int64_t)cfield_platform_id(e);
    out->log_user_id = cfield_log_user_id(e);
    out->user_id = cfield_user_id(e);
    out->content_id = cfield_content_id(e);
    out->log_ts = cfield_log_timestamp(e);
    out->event_ts = cfield_event_api_timestamp(e);
    out->count = cfield_count(e);
    out->metric = cfield_metric(e);
    const char *q = e->request && e->request->search_query ? e->request->search_query : "";
    size_t qn = strlen(q);
    if (text_lower_cap(qn) > qcap) return -1;
    text_lower(q, qn, qbuf, &out->query_len);
    out->query = qbuf;
    out->query_hash = ctable_query_hash(qbuf, out->query_len);
    const char *agent = e->request && e->request->device && e->request->device->browser &&
                                e->request->device->browser->user_agent
                            ? e->request->device->browser->user_agent
                            : "";
    ua_family_result r;
    ua_family_parse(ua, agent, strlen(agent), &r);
    out->os = r.os;
    out->os_len = r.os_len;
    out->ua = r.ua;
    out->ua_len = r.ua_len;
    return 0;
}
