/* Tests of src/core/labels.c and hash.c. */
#include "hs_test.h"

#include "core/core.h"

#include <string.h>

static void labels_sort_then_get_finds_every_name(void **state)
{
    (void)state;
    struct hs_label v[] = {{"job", "a"}, {"__name__", "up"}, {"instance", "x:1"}};
    struct hs_labels ls = {3, v};
    hs_labels_sort(&ls);
    assert_string_equal(ls.v[0].name, "__name__");
    assert_true(hs_labels_valid(&ls));
    assert_string_equal(hs_labels_get(&ls, "job"), "a");
    assert_string_equal(hs_labels_get(&ls, "instance"), "x:1");
    assert_null(hs_labels_get(&ls, "zone"));
}

static void labels_dup_packs_a_copy_that_compares_equal(void **state)
{
    (void)state;
    struct hs_label v[] = {{"a", "1"}, {"b", "two"}};
    struct hs_labels ls = {2, v};
    struct hs_labels *d = hs_labels_dup(&ls);
    assert_non_null(d);
    assert_int_equal(hs_labels_cmp(&ls, d), 0);
    assert_true(hs_labels_hash(&ls) == hs_labels_hash(d));
    hs_labels_free(d);
}

static void labels_hash_tells_name_value_boundaries_apart(void **state)
{
    (void)state;
    struct hs_label x[] = {{"a", "bc"}};
    struct hs_label y[] = {{"ab", "c"}};
    struct hs_labels lx = {1, x}, ly = {1, y};
    assert_true(hs_labels_hash(&lx) != hs_labels_hash(&ly));
}

static void labels_format_escapes_values_and_puts_the_name_first(void **state)
{
    (void)state;
    struct hs_label v[] = {{"__name__", "m"}, {"a", "x\"y\n"}, {"b", "\\"}};
    struct hs_labels ls = {3, v};
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(hs_labels_format(&ls, &b), HS_OK);
    assert_string_equal(b.p, "m{a=\"x\\\"y\\n\", b=\"\\\\\"}");
    hs_buf_cleanup(&b);
}

static void names_follow_the_prometheus_character_rules(void **state)
{
    (void)state;
    assert_true(hs_metric_name_valid("vllm:num_requests", 17));
    assert_false(hs_label_name_valid("vllm:x", 6));
    assert_false(hs_label_name_valid("1abc", 4));
    assert_true(hs_label_name_valid("_x1", 3));
    assert_false(hs_metric_name_valid("", 0));
}

static void crc32c_matches_the_standard_check_value(void **state)
{
    (void)state;
    assert_int_equal(hs_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Incremental computation equals one-shot. */
    uint32_t c = hs_crc32c(0, "1234", 4);
    c = hs_crc32c(c, "56789", 5);
    assert_int_equal(c, 0xE3069283u);
    unsigned char zeros[32] = {0};
    assert_int_equal(hs_crc32c(0, zeros, 32), 0x8A9136AAu);
}

static void hash64_is_deterministic_and_spreads_small_changes(void **state)
{
    (void)state;
    uint64_t a = hs_hash64("hello world", 11, 0);
    assert_true(a == hs_hash64("hello world", 11, 0));
    assert_true(a != hs_hash64("hello worle", 11, 0));
    assert_true(a != hs_hash64("hello world", 11, 1));
    assert_true(hs_hash64("", 0, 0) != hs_hash64("\0", 1, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_sort_then_get_finds_every_name),
        cmocka_unit_test(labels_dup_packs_a_copy_that_compares_equal),
        cmocka_unit_test(labels_hash_tells_name_value_boundaries_apart),
        cmocka_unit_test(labels_format_escapes_values_and_puts_the_name_first),
        cmocka_unit_test(names_follow_the_prometheus_character_rules),
        cmocka_unit_test(crc32c_matches_the_standard_check_value),
        cmocka_unit_test(hash64_is_deterministic_and_spreads_small_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
