/* logproc command line: one entry point per subcommand, each in its own file. */
#ifndef LOGPROC_CLI_H
#define LOGPROC_CLI_H

/* Each takes the arguments after the subcommand word (argv[0] is the subcommand) and returns
 * the process exit status: 0 ok, 1 runtime failure, 2 usage error. */
int cli_run(int argc, char **argv);      /* logproc run JOB [flags]        (run_cmd.c) */
int cli_generate(int argc, char **argv); /* logproc generate logs|content  (generate_cmd.c) */
int cli_generate_content(int argc, char **argv); /* logproc generate content (content_cmd.c) */
int cli_inspect(int argc, char **argv);  /* logproc inspect PATH           (inspect_cmd.c) */
int cli_store(int argc, char **argv);    /* logproc store put|get|ls|...   (store_cmd.c) */
int cli_kafka_local(int argc, char **argv); /* logproc kafka-local     (kafka_local_cmd.c) */
int cli_list(int argc, char **argv);      /* logproc list                  (control_cmd.c) */
int cli_savepoint(int argc, char **argv); /* logproc savepoint JOB         (control_cmd.c) */
int cli_stop(int argc, char **argv);      /* logproc stop JOB              (control_cmd.c) */
int cli_cancel(int argc, char **argv);    /* logproc cancel JOB            (control_cmd.c) */

#endif
