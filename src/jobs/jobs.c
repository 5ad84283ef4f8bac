#include <stdio.h>
#include <string.h>

#include "jobs/job.h"
#include "jobs/raw/raw_job.h"

extern const job_def flat_job_def;
extern const job_def counter_job_def;

const job_def *const job_defs[] = {&raw_job_def, &flat_job_def, &content_job_def, &counter_job_def, NULL};

const job_def *job_find(const char *name)
{
    for (int i = 0; job_defs[i]; i++)
        if (!strcmp(job_defs[i]->name, name)) return job_defs[i];
    return NULL;
}

int job_build_fail(rt_graph *g, const char *job, const char *what, char *err, size_t errlen)
{
    const char *why = rt_graph_error(g);
    snprintf(err, errlen, "%s: %s%s%s", job, what, *why ? ": " : "", why);
    return -1;
}
