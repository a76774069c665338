/* Tests of src/core/buf.c, arena.c and alloc.c. */
#include "hs_test.h"

#include "core/core.h"

#include <string.h>

static void buf_refuses_to_grow_past_its_ceiling_and_keeps_contents(void **state)
{
    (void)state;
    struct hs_buf b;
    hs_buf_init(&b, 8);
    assert_int_equal(hs_buf_puts(&b, "12345"), HS_OK);
    assert_int_equal(hs_buf_puts(&b, "6789"), HS_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.p, "12345");
    assert_int_equal(hs_buf_puts(&b, "678"), HS_OK);
    assert_string_equal(b.p, "12345678");
    hs_buf_cleanup(&b);
}

static void buf_json_str_escapes_quotes_controls_and_backslashes(void **state)
{
    (void)state;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    const char in[] = "a\"b\\c\n\x01z";
    assert_int_equal(hs_buf_json_str(&b, in, sizeof(in) - 1), HS_OK);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\u0001z\"");
    hs_buf_cleanup(&b);
}

static void buf_printf_handles_output_longer_than_its_stack_buffer(void **state)
{
    (void)state;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(hs_buf_printf(&b, "<%s>", big), HS_OK);
    assert_int_equal(b.len, 1001);
    assert_int_equal(b.p[0], '<');
    assert_int_equal(b.p[1000], '>');
    hs_buf_cleanup(&b);
}

static int cleanups_run;
static void count_cleanup(void *arg)
{
    cleanups_run += *(int *)arg;
}

static void arena_runs_cleanups_on_reset_and_reuses_memory(void **state)
{
    (void)state;
    struct hs_arena a;
    hs_arena_init(&a, 1024, 0);
    int one = 1;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100; i++) {
            char *p = hs_arena_alloc(&a, 50);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % 16, 0);
            memset(p, 'a', 50);
        }
        char *big = hs_arena_alloc(&a, 10000);
        assert_non_null(big);
        memset(big, 'b', 10000);
        assert_int_equal(hs_arena_on_cleanup(&a, count_cleanup, &one), HS_OK);
        hs_arena_reset(&a);
        assert_int_equal(a.used_bytes, 0);
    }
    assert_int_equal(cleanups_run, 3);
    hs_arena_cleanup(&a);
}

static void arena_refuses_allocations_past_max_bytes(void **state)
{
    (void)state;
    struct hs_arena a;
    hs_arena_init(&a, 256, 100);
    assert_non_null(hs_arena_alloc(&a, 64));
    assert_null(hs_arena_alloc(&a, 64));
    hs_arena_cleanup(&a);
}

static void injected_allocation_failure_leaves_buffer_unchanged(void **state)
{
    (void)state;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(hs_buf_puts(&b, "abc"), HS_OK);
    hs_alloc_fail_after(0);
    char big[200];
    memset(big, 'z', sizeof(big));
    assert_int_equal(hs_buf_append(&b, big, sizeof(big)), HS_ENOMEM);
    assert_string_equal(b.p, "abc");
    assert_int_equal(hs_buf_append(&b, big, sizeof(big)), HS_OK);
    hs_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buf_refuses_to_grow_past_its_ceiling_and_keeps_contents),
        cmocka_unit_test(buf_json_str_escapes_quotes_controls_and_backslashes),
        cmocka_unit_test(buf_printf_handles_output_longer_than_its_stack_buffer),
        cmocka_unit_test(arena_runs_cleanups_on_reset_and_reuses_memory),
        cmocka_unit_test(arena_refuses_allocations_past_max_bytes),
        cmocka_unit_test(injected_allocation_failure_leaves_buffer_unchanged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
