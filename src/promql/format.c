/*
 * format.c - a query's canonical text (Prometheus' /api/v1/format_query):
 * parse with the module's parser, print with its printer.
 */
#include "promql/promql.h"

#include "promql/ast.h"

#include <string.h>

int promql_format_query(const char *text, struct hs_buf *out, struct hs_err *err)
{
    struct hs_arena arena;
    hs_arena_init(&arena, 16384, 0);
    struct promql_node *n = promql__parse(text, strlen(text), &arena, err);
    int rc = n != NULL ? promql__print(n, out) : (err ? err->code : HS_EPARSE);
    if (n != NULL && rc != HS_OK)
        hs_err_set(err, rc, "%s", hs_strerror(rc));
    hs_arena_cleanup(&arena);
    return rc;
}
