/* RESP, the Redis serialization protocol (version 2), as far as a writer of commands needs it: a
 * command is an array of bulk strings, `*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument.
 * The same bytes go over a connection and into the command files that `redis-cli --pipe`
 * loads, so the two sinks cannot disagree. Arguments are binary-safe. */
#ifndef LOGPROC_RESP_H
#define LOGPROC_RESP_H

#include <stddef.h>

#include "runtime/buf.h"

/* Appends one command (argc >= 1 arguments; argv[i] is argvlen[i] bytes, any bytes) to out.
 * Returns 0, or -1 if out's limit would be passed (out is then unchanged). O(total length). */
int resp_append_command(rt_buf *out, int argc, const char *const *argv, const size_t *argvlen);

/* Bytes resp_append_command would append. */
size_t resp_command_size(int argc, const size_t *argvlen);

#endif
