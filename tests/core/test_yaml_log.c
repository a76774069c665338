/* Tests of src/core/yaml.c and log.c. */
#include "hs_test.h"

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct hs_ydoc *parse(const char *text, struct hs_err *err)
{
    return hs_ydoc_parse(text, strlen(text), "cfg.yml", err);
}

static void yaml_tree_keeps_line_and_column_of_every_node(void **state)
{
    (void)state;
    struct hs_err err = {0};
    struct hs_ydoc *d = parse("a: 1\nb:\n  c: [x, 'y']\n", &err);
    assert_non_null(d);
    struct hs_ynode *b = hs_ynode_get(d->root, "b");
    assert_non_null(b);
    struct hs_ynode *c = hs_ynode_get(b, "c");
    assert_int_equal(c->type, HS_Y_SEQ);
    assert_int_equal(c->n, 2);
    assert_int_equal(c->items[1]->line, 3);
    assert_int_equal(c->items[1]->col, 10);
    assert_true(c->items[1]->is_quoted);
    hs_ydoc_free(d);
}

static void yaml_syntax_error_names_file_line_and_column(void **state)
{
    (void)state;
    struct hs_err err = {0};
    struct hs_ydoc *d = parse("a: 1\nb: [1, 2\n", &err);
    assert_null(d);
    assert_int_equal(err.code, HS_EPARSE);
    assert_true(strncmp(err.msg, "cfg.yml:", 8) == 0);
    assert_true(err.line >= 2);
}

static void yaml_duplicate_keys_are_an_error(void **state)
{
    (void)state;
    struct hs_err err = {0};
    assert_null(parse("a: 1\na: 2\n", &err));
    assert_non_null(strstr(err.msg, "cfg.yml:2:1: duplicate key \"a\""));
}

static void yaml_typed_readers_reject_wrong_types_with_position(void **state)
{
    (void)state;
    struct hs_err err = {0};
    struct hs_ydoc *d = parse("n: abc\nd: 5m\nq: \"12\"\n", &err);
    assert_non_null(d);
    int64_t v;
    assert_int_equal(hs_ynode_i64(d, hs_ynode_get(d->root, "n"), "n", &v, &err), HS_EINVAL);
    assert_string_equal(err.msg, "cfg.yml:1:4: n: expected an integer, got \"abc\"");
    assert_int_equal(hs_ynode_duration(d, hs_ynode_get(d->root, "d"), "d", &v, &err), HS_OK);
    assert_int_equal(v, 300000);
    assert_int_equal(hs_ynode_i64(d, hs_ynode_get(d->root, "q"), "q", &v, &err), HS_EINVAL);
    hs_ydoc_free(d);
}

static void yaml_empty_document_has_no_root(void **state)
{
    (void)state;
    struct hs_err err = {0};
    struct hs_ydoc *d = parse("# nothing\n", &err);
    assert_non_null(d);
    assert_null(d->root);
    hs_ydoc_free(d);
}

static void log_writes_one_logfmt_line_with_quoted_values(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    hs_log_setup(HS_LOG_INFO, HS_LOG_LOGFMT, f);
    hs_log(HS_LOG_DEBUG, "hidden");
    hs_log(HS_LOG_INFO, "listening", HS_LSTR("addr", "127.0.0.1:9190"), HS_LINT("conns", 3),
           HS_LSTR("note", "two words"));
    fclose(f);
    hs_log_setup(HS_LOG_INFO, HS_LOG_LOGFMT, NULL);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "level=info msg=listening addr=127.0.0.1:9190 conns=3 "
                                "note=\"two words\"\n"));
    assert_non_null(strstr(out, "ts="));
    free(out);
}

static void log_writes_valid_json_objects(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    hs_log_setup(HS_LOG_DEBUG, HS_LOG_JSON, f);
    hs_log(HS_LOG_WARN, "odd \"thing\"", HS_LF64("ratio", 0.5), HS_LBOOL("ok", false));
    fclose(f);
    hs_log_setup(HS_LOG_INFO, HS_LOG_LOGFMT, NULL);
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"odd \\\"thing\\\"\",\"ratio\":0.5,"
                                "\"ok\":false}\n"));
    assert_int_equal(out[0], '{');
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(yaml_tree_keeps_line_and_column_of_every_node),
        cmocka_unit_test(yaml_syntax_error_names_file_line_and_column),
        cmocka_unit_test(yaml_duplicate_keys_are_an_error),
        cmocka_unit_test(yaml_typed_readers_reject_wrong_types_with_position),
        cmocka_unit_test(yaml_empty_document_has_no_root),
        cmocka_unit_test(log_writes_one_logfmt_line_with_quoted_values),
        cmocka_unit_test(log_writes_valid_json_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
