/*
 * fuzz_rule_file.c - libFuzzer harness for rule files and templates.
 *
 * The input is loaded as a rule file; whatever loads is evaluated once on
 * an empty store.  The input is also expanded as a template.  Nothing may
 * crash, leak or abort: bad input only ever yields an error.
 */
#include "core/core.h"
#include "promql/promql.h"
#include "rules/rules.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct hs_err err;
    hs_err_clear(&err);
    struct hs_buf out;
    hs_buf_init(&out, 0);
    struct hs_label l[] = {{"instance", "a:1"}, {"job", "j"}};
    struct hs_labels ls = {2, l};
    HS_IGNORE_RESULT(rules_template_expand(text, &ls, NULL, 1.5, &out, &err));
    hs_buf_cleanup(&out);

    struct rules_set *s = rules_set_new();
    if (s && rules_set_add_text(s, "fuzz.yml", text, size, NULL, NULL, &err) == HS_OK) {
        struct promql_mem *mem = promql_mem_new();
        struct promql_engine *e = promql_engine_new(NULL);
        if (mem && e) {
            struct promql_storage st;
            promql_mem_storage(mem, &st);
            struct rules_manager_opts o = {0};
            o.engine = e;
            o.storage = &st;
            rules_mem_sink(mem, &o.sink);
            struct rules_manager *m = rules_manager_new(&o, &err);
            if (m) {
                if (rules_manager_update(m, s, &err) == HS_OK)
                    HS_IGNORE_RESULT(rules_manager_eval_all(m, 1700000000000LL, &err));
                s = NULL;
                rules_manager_free(m);
            }
        }
        promql_engine_free(e);
        promql_mem_free(mem);
    }
    rules_set_free(s);
    free(text);
    return 0;
}
