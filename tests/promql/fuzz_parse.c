/*
 * fuzz_parse.c - libFuzzer harness for the PromQL parser and printer.
 *
 * Any input must parse or fail with an error, never crash.  Whatever parses
 * is printed, and the printed text must parse again and print identically
 * (the printer's output is canonical), otherwise the harness aborts so the
 * fuzzer records the input.
 */
#include "core/core.h"
#include "promql/ast.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hs_arena arena;
    struct hs_err err = {0};
    hs_arena_init(&arena, 4096, 64u << 20);
    struct promql_node *n = promql__parse((const char *)data, size, &arena, &err);
    if (n != NULL) {
        struct hs_buf a, b;
        hs_buf_init(&a, 0);
        hs_buf_init(&b, 0);
        if (promql__print(n, &a) == HS_OK) {
            struct promql_node *m = promql__parse(a.p, a.len, &arena, &err);
            if (m == NULL) {
                fprintf(stderr, "printed query does not parse: %s\n  %s\n", a.p, err.msg);
                abort();
            }
            if (promql__print(m, &b) != HS_OK || strcmp(a.p, b.p) != 0) {
                fprintf(stderr, "printing is not stable:\n  %s\n  %s\n", a.p, b.p ? b.p : "");
                abort();
            }
        }
        hs_buf_cleanup(&a);
        hs_buf_cleanup(&b);
    }
    hs_arena_cleanup(&arena);
    return 0;
}
