/* logproc generate: placeholder until its module lands. */
#include <stdio.h>
#include "cli/cli.h"

int cli_generate(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "logproc generate: not built yet\n");
    return 1;
}
