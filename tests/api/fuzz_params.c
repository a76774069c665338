/*
 * fuzz_params.c - libFuzzer harness for the Prometheus API's parameter
 * parsers: every input is tried as a time, a duration, a limit, a match[]
 * selector and a U__-escaped name.  Inputs never crash or leak; a selector
 * that parses has at least one matcher, each with a name and a value.
 */
#include "api/api.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    int64_t v;
    struct hs_err err;
    if (api_prom_parse_time(s, &v, &err) != HS_OK && err.msg[0] == '\0')
        abort();
    if (api_prom_parse_duration(s, &v, &err) != HS_OK && err.msg[0] == '\0')
        abort();
    if (api_prom_parse_limit(s, &v, &err) == HS_OK && v < 0)
        abort();

    struct hs_arena a;
    hs_arena_init(&a, 1024, 1 << 20);
    struct promql_matcher *ms = NULL;
    size_t n = 0;
    if (api_prom_parse_selector(s, &a, &ms, &n, &err) == HS_OK) {
        if (n == 0)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (ms[i].name == NULL || ms[i].value == NULL)
                abort();
        }
    }
    const char *name = NULL;
    if (api_prom_unescape_name(s, &a, &name) == HS_OK && name == NULL)
        abort();
    hs_arena_cleanup(&a);
    free(s);
    return 0;
}
