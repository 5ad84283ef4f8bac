#include "connectors/resp.h"

#include <stdio.h>
#include <string.h>

#include "formats/text.h"

static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10)
        v /= 10, n++;
    return n;
}

size_t resp_command_size(int argc, const size_t *argvlen)
{
    size_t n = 1 + digits((size_t)argc) + 2;
    for (int i = 0; i < argc; i++)
        n += 1 + digits(argvlen[i]) + 2 + argvlen[i] + 2;
    return n;
}

int resp_append_command(rt_buf *out, int argc, const char *const *argv, const size_t *argvlen)
{
    size_t need = resp_command_size(argc, argvlen);
    if (rt_buf_reserve(out, need)) return -1;
    char *p = (char *)out->data + out->len;
    *p++ = '*';
    p += text_u64_dec(p, (uint64_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p += text_u64_dec(p, argvlen[i]);
        *p++ = '\r';
        *p++ = '\n';
        if (argvlen[i]) memcpy(p, argv[i], argvlen[i]);
        p += argvlen[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    out->len += need;
    return 0;
}
