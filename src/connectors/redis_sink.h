/* The counter's Redis sink: commands pipelined to a Redis server over one connection (hiredis),
 * or, without a server, the same RESP bytes written to a file that `redis-cli --pipe` loads.
 *
 * Commands are buffered and sent in batches of `batch_commands`; a batch stays in memory until
 * every reply to it has been read, so a lost connection loses nothing: the sink reconnects and
 * sends the whole batch again (the counter's commands are absolute writes, HSET/HDEL/EXPIRE/
 * PERSIST, so a command applied twice leaves the same state). While the server cannot be reached
 * the calling thread blocks, waiting between attempts with a doubling backoff capped at
 * `backoff_max_ms`; after `retry_limit_ms` without a successful batch the call fails (0: retry
 * forever). Each retry is logged (component redis-sink, "retry attempt=N ...") and counted. An
 * error reply (WRONGTYPE, say) is not retried: it is counted and the first few are logged.
 *
 * The buffer of unsent and unacknowledged commands is limited to `max_buffer_bytes`; a command
 * that would pass it forces a flush first (a single bigger command is an error).
 *
 * File mode creates the parent directories, writes `path` as a hidden `.<name>.inprogress`
 * sibling and renames it at redis_sink_close, so a reader never loads a partial file; the bytes
 * depend only on the commands.
 * One sink per thread: nothing here is locked. */
#ifndef LOGPROC_REDIS_SINK_H
#define LOGPROC_REDIS_SINK_H

#include <stddef.h>
#include <stdint.h>

typedef struct redis_sink redis_sink;

typedef struct redis_sink_config {
    const char *url;         /* redis://[:password@]host[:port][/db]; NULL or "": file mode */
    const char *path;        /* file mode: the RESP file to publish */
    size_t batch_commands;   /* commands per round trip (0: 1000) */
    size_t max_buffer_bytes; /* hard limit of buffered bytes (0: 64 MiB) */
    int64_t timeout_ms;      /* connect, read and write timeout (0: 10 s) */
    int64_t backoff_max_ms;  /* longest wait between attempts (0: 5 s) */
    int64_t retry_limit_ms;  /* give up after this long failing (0: never) */
} redis_sink_config;

typedef struct redis_sink_stats {
    uint64_t commands;     /* accepted by redis_sink_command */
    uint64_t batches;      /* batches acknowledged (or written, in file mode) */
    uint64_t bytes;        /* RESP bytes acknowledged or written */
    uint64_t retries;      /* failed attempts that were retried */
    uint64_t reply_errors; /* error replies */
    uint64_t connects;     /* connections made */
} redis_sink_stats;

/* Parses a redis:// URL. Returns 0 with host (into host, hostcap), *port (default 6379), *db
 * (default 0) and password (into pass, passcap; "" when none), or -1 with err naming the URL. */
int redis_sink_parse_url(const char *url, char *host, size_t hostcap, int *port, int *db,
                         char *pass, size_t passcap, char *err, size_t errlen);

/* Creates a sink. In server mode it connects at once (blocking and retrying as above, so a server
 * that is down at start-up is waited for); in file mode it creates the in-progress file. Returns 0
 * with *out, or -1 with err (bad URL, retry limit reached, file not creatable). */
int redis_sink_new(const redis_sink_config *cfg, redis_sink **out, char *err, size_t errlen);

/* Queues one command (argv[i] is argvlen[i] bytes); sends the batch when it is full. Returns 0,
 * or -1 with err (the retry limit was reached, the command is over the buffer limit, a write
 * failed). */
int redis_sink_command(redis_sink *s, int argc, const char *const *argv, const size_t *argvlen,
                       char *err, size_t errlen);

/* Sends everything queued and waits for its replies (or writes it to the file). Returns 0 or -1
 * with err. */
int redis_sink_flush(redis_sink *s, char *err, size_t errlen);

/* Flushes, then in file mode syncs and publishes the file; in server mode closes the connection.
 * Returns 0 or -1 with err. The sink must still be freed. */
int redis_sink_close(redis_sink *s, char *err, size_t errlen);

/* Frees the sink; an unpublished in-progress file is removed. NULL is a no-op. */
void redis_sink_free(redis_sink *s);

void redis_sink_get_stats(const redis_sink *s, redis_sink_stats *out);
/* Bytes the sink has allocated for buffered commands (the batch's capacity): for the memory
 * budget. */
size_t redis_sink_buffer_bytes(const redis_sink *s);

/* "redis://host:port/db" or the file path, for log lines. */
const char *redis_sink_target(const redis_sink *s);

/* Caps a hiredis reader: an array reply claiming more than REDIS_MAX_REPLY_ELEMENTS elements is
 * a protocol error instead of an allocation of its claimed size (hiredis 0.14 trusts "*1000000000"
 * and callocs 8 GB). Every reader logproc uses goes through it. */
#define REDIS_MAX_REPLY_ELEMENTS (1 << 20)
struct redisReader;
void redis_reader_cap(struct redisReader *r);

#endif
