/* logproc inspect: placeholder until its module lands. */
#include <stdio.h>
#include "cli/cli.h"

int cli_inspect(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "logproc inspect: not built yet\n");
    return 1;
}
