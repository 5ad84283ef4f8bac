/* logproc run JOB [flags] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "jobs/job.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: logproc run JOB [flags]\n\njobs:\n");
    for (int i = 0; job_defs[i]; i++) fprintf(out, "  %-16s %s\n", job_defs[i]->name, job_defs[i]->help);
    fprintf(out, "\n'logproc run JOB --help' lists the job's flags with their defaults.\n");
}

int cli_run(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const job_def *def = job_find(argv[1]);
    if (!def) {
        fprintf(stderr, "logproc run: unknown job '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return job_run_main(def, argc - 2, argv + 2);
}
