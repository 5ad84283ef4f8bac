#include "ops/status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/record.h"

/* The value of key in "k=v,k=v" labels, copied into buf ("" when absent). */
static const char *label(const char *labels, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);
    buf[0] = 0;
    for (const char *p = labels; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            size_t vl = n - kl - 1;
            if (vl >= cap) vl = cap - 1;
            memcpy(buf, p + kl + 1, vl);
            buf[vl] = 0;
            return buf;
        }
        p = end ? end + 1 : NULL;
    }
    return buf;
}

static int is_watermark(const char *name)
{
    size_t n = strlen(name);
    return n >= 9 && !strcmp(name + n - 9, "Watermark");
}

/* Folds one value into obj[name]: watermarks keep the minimum of the known ones (null while
 * none is known), everything else adds up. */
static int fold_int(json_t *obj, const char *name, int64_t v)
{
    json_t *old = json_object_get(obj, name);
    if (is_watermark(name)) {
        if (v == RT_TIME_MIN) return old ? 0 : json_object_set_new(obj, name, json_null());
        if (json_is_integer(old) && json_integer_value(old) <= v) return 0;
        return json_object_set_new(obj, name, json_integer(v));
    }
    int64_t base = json_is_integer(old) ? json_integer_value(old) : 0;
    return json_object_set_new(obj, name, json_integer(base + v));
}

static int fold_real(json_t *obj, const char *name, double v)
{
    json_t *old = json_object_get(obj, name);
    double base = json_is_real(old) ? json_real_value(old) : 0;
    return json_object_set_new(obj, name, json_real(base + v));
}

/* The object of id in arr (created at the end, with "id", when missing); idx maps ids to it. */
static json_t *entry(json_t *arr, json_t *idx, const char *id)
{
    json_t *e = json_object_get(idx, id);
    if (e) return e;
    e = json_object();
    if (!e || json_object_set_new(e, "id", json_string(id)) || json_array_append_new(arr, e)) return NULL;
    json_object_set(idx, id, e);
    return e;
}

static int dump(json_t *root, rt_buf *out)
{
    if (!root) return -1;
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(root);
    if (!s) return -1;
    int rc = rt_buf_append(out, s, strlen(s));
    rc |= rt_buf_put_u8(out, '\n');
    free(s);
    return rc ? -1 : 0;
}

static json_t *str_or_empty(const char *s)
{
    return json_string(s ? s : "");
}

static json_t *job_head(const ops_job_info *info)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "jid", str_or_empty(info->id));
    json_object_set_new(o, "name", str_or_empty(info->job));
    json_object_set_new(o, "state", str_or_empty(info->state));
    json_object_set_new(o, "run", str_or_empty(info->run_id));
    json_object_set_new(o, "startTime", json_integer(info->start_time_ms));
    json_object_set_new(o, "now", json_integer(info->now_ms));
    json_object_set_new(o, "duration", json_integer(info->now_ms - info->start_time_ms));
    json_object_set_new(o, "checkpointStore", str_or_empty(info->checkpoint_store));
    return o;
}

static json_t *load_plan(const ops_job_info *info)
{
    if (!info->plan_json) return json_array();
    json_error_t je;
    json_t *p = json_loads(info->plan_json, 0, &je);
    if (!json_is_array(p)) {
        json_decref(p);
        return NULL;
    }
    return p;
}

int ops_status_json(const ops_job_info *info, const rt_metrics_snap *cur,
                    const rt_metrics_snap *prev, rt_buf *out)
{
    json_t *root = job_head(info);
    json_t *ops = load_plan(info);
    json_t *opidx = json_object(), *tasks = json_array(), *taskidx = json_object();
    json_t *other = json_array();
    int rc = (!root || !ops || !opidx || !tasks || !taskidx || !other) ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(ops); i++) {
        json_t *op = json_array_get(ops, i);
        json_t *id = json_object_get(op, "id");
        if (!json_is_string(id)) {
            rc = -1;
            break;
        }
        json_object_set(opidx, json_string_value(id), op);
    }
    for (size_t i = 0; rc == 0 && i < cur->n; i++) {
        const rt_metric_sample *s = &cur->samples[i];
        char opb[256], outb[256], taskb[256];
        const char *opid = label(s->labels, "operator", opb, sizeof opb);
        const char *output = label(s->labels, "output", outb, sizeof outb);
        const char *task = label(s->labels, "task", taskb, sizeof taskb);
        int counter = s->kind == RT_METRIC_COUNTER;
        double rate = counter ? rt_metrics_rate(cur, prev, i) : 0;
        char rname[300];
        snprintf(rname, sizeof rname, "%.250sPerSecond", s->name);
        if (*opid) {
            json_t *op = entry(ops, opidx, opid);
            if (!op) {
                rc = -1;
                break;
            }
            if (*output) {
                json_t *side = json_object_get(op, "side");
                if (!side) {
                    side = json_object();
                    json_object_set_new(op, "side", side);
                }
                rc = side ? fold_int(side, output, s->value) : -1;
            } else {
                rc = fold_int(op, s->name, s->value);
                if (rc == 0 && counter && prev) rc = fold_real(op, rname, rate);
            }
        } else if (*task && !strchr(s->labels, ',')) {
            json_t *t = entry(tasks, taskidx, task);
            rc = t ? fold_int(t, s->name, s->value) : -1;
            if (rc == 0 && counter && prev) rc = fold_real(t, rname, rate);
        } else {
            json_t *o = json_object();
            rc = o ? 0 : -1;
            if (o) {
                json_object_set_new(o, "name", json_string(s->name));
                json_object_set_new(o, "labels", json_string(s->labels));
                json_object_set_new(o, "value", json_integer(s->value));
                if (counter && prev) json_object_set_new(o, "perSecond", json_real(rate));
                rc = json_array_append_new(other, o);
            }
        }
    }
    /* the job's checkpoints, from the tasks' */
    json_t *ck = json_object();
    int64_t completed = 0, last_time = 0, last_dur = 0, size = 0;
    for (size_t i = 0; ck && i < json_array_size(tasks); i++) {
        json_t *t = json_array_get(tasks, i);
        completed += json_integer_value(json_object_get(t, "numberOfCompletedCheckpoints"));
        size += json_integer_value(json_object_get(t, "lastCheckpointSize"));
        int64_t tt = json_integer_value(json_object_get(t, "lastCheckpointTime"));
        int64_t td = json_integer_value(json_object_get(t, "lastCheckpointDuration"));
        if (tt > last_time) last_time = tt;
        if (td > last_dur) last_dur = td;
    }
    if (!ck) rc = -1;
    if (rc == 0) {
        json_object_set_new(ck, "completed", json_integer(completed));
        json_object_set_new(ck, "lastTime", last_time ? json_integer(last_time) : json_null());
        json_object_set_new(ck, "lastDuration", json_integer(last_dur));
        json_object_set_new(ck, "lastSize", json_integer(size));
        json_object_set_new(root, "operators", ops);
        json_object_set_new(root, "tasks", tasks);
        json_object_set_new(root, "checkpoints", ck);
        json_object_set_new(root, "other", other);
        ops = tasks = ck = other = NULL;
    }
    json_decref(ops);
    json_decref(tasks);
    json_decref(ck);
    json_decref(other);
    json_decref(opidx);
    json_decref(taskidx);
    if (rc) {
        json_decref(root);
        return -1;
    }
    return dump(root, out);
}

int ops_plan_json(const ops_job_info *info, rt_buf *out)
{
    json_t *nodes = json_array(), *plan = json_object(), *root = json_object();
    json_t *ops = load_plan(info);
    int rc = (!nodes || !plan || !root || !ops) ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(ops); i++) {
        json_t *op = json_array_get(ops, i), *n = json_object(), *ins = json_array();
        json_t *inputs = json_object_get(op, "inputs");
        for (size_t k = 0; n && ins && k < json_array_size(inputs); k++) {
            json_t *in = json_object();
            if (in) json_object_set(in, "id", json_array_get(inputs, k));
            json_array_append_new(ins, in);
        }
        if (!n || !ins) {
            json_decref(n);
            json_decref(ins);
            rc = -1;
            break;
        }
        json_object_set(n, "id", json_object_get(op, "id"));
        json_object_set(n, "description", json_object_get(op, "name"));
        json_object_set_new(n, "inputs", ins);
        rc = json_array_append_new(nodes, n);
    }
    json_decref(ops);
    if (rc) {
        json_decref(nodes);
        json_decref(plan);
        json_decref(root);
        return -1;
    }
    json_object_set_new(plan, "jid", str_or_empty(info->id));
    json_object_set_new(plan, "name", str_or_empty(info->job));
    json_object_set_new(plan, "nodes", nodes);
    json_object_set_new(root, "plan", plan);
    return dump(root, out);
}

int ops_checkpoints_json(const ops_job_info *info, const rt_metrics_snap *cur, rt_buf *out)
{
    (void)info;
    json_t *tasks = json_array(), *idx = json_object();
    int rc = (!tasks || !idx) ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < cur->n; i++) {
        const rt_metric_sample *s = &cur->samples[i];
        const char *key = !strcmp(s->name, "numberOfCompletedCheckpoints") ? "completed"
                          : !strcmp(s->name, "lastCheckpointTime")         ? "latest_ack_timestamp"
                          : !strcmp(s->name, "lastCheckpointSize")         ? "state_size"
                          : !strcmp(s->name, "lastCheckpointDuration")     ? "end_to_end_duration"
                                                                           : NULL;
        char taskb[256];
        const char *task = label(s->labels, "task", taskb, sizeof taskb);
        if (!key || !*task) continue;
        json_t *t = entry(tasks, idx, task);
        rc = t ? json_object_set_new(t, key, json_integer(s->value)) : -1;
    }
    int64_t completed = 0, ack = 0, size = 0, dur = 0;
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        json_t *t = json_array_get(tasks, i);
        completed += json_integer_value(json_object_get(t, "completed"));
        size += json_integer_value(json_object_get(t, "state_size"));
        int64_t a = json_integer_value(json_object_get(t, "latest_ack_timestamp"));
        int64_t d = json_integer_value(json_object_get(t, "end_to_end_duration"));
        if (a > ack) ack = a;
        if (d > dur) dur = d;
    }
    json_decref(idx);
    json_t *root = rc ? NULL : json_object();
    json_t *counts = root ? json_object() : NULL, *latest = root ? json_object() : NULL;
    if (!root || !counts || !latest) {
        json_decref(tasks);
        json_decref(root);
        json_decref(counts);
        json_decref(latest);
        return -1;
    }
    json_object_set_new(counts, "completed", json_integer(completed));
    json_t *last = json_null();
    if (completed) {
        last = json_object();
        json_object_set_new(last, "latest_ack_timestamp", json_integer(ack));
        json_object_set_new(last, "state_size", json_integer(size));
        json_object_set_new(last, "end_to_end_duration", json_integer(dur));
    }
    json_object_set_new(latest, "completed", last);
    json_object_set_new(root, "counts", counts);
    json_object_set_new(root, "latest", latest);
    json_object_set_new(root, "tasks", tasks);
    return dump(root, out);
}
