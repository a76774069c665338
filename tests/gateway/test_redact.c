/* Tests of src/gateway/redact.c: detectors, validators, JSON and SSE modes. */
#include "hs_test.h"

#include "gateway/redact.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct redactor *new_default(void)
{
    struct hs_err err = {0};
    struct redactor *r = redactor_new(NULL, &err);
    assert_non_null(r);
    return r;
}

/* Redacts 'in' as text; returns a malloc'd copy of the result. */
static char *red_text(const struct redactor *r, const char *in, struct redact_counts *c)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err err = {0};
    assert_int_equal(redact_text(r, in, strlen(in), &b, c, &err), HS_OK);
    char *s = strdup(b.p != NULL ? b.p : "");
    hs_buf_cleanup(&b);
    return s;
}

static void expect_text(const struct redactor *r, const char *in, const char *want)
{
    char *got = red_text(r, in, NULL);
    if (strcmp(got, want) != 0)
        fail_msg("redact(\"%s\")\n  got  \"%s\"\n  want \"%s\"", in, got, want);
    free(got);
}

static void redact_replaces_emails_and_counts_them(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    struct redact_counts c = {{0}};
    char *s = red_text(r, "mail jane.doe+x@example.co.uk or bob@corp.io now", &c);
    assert_string_equal(s, "mail [REDACTED:EMAIL] or [REDACTED:EMAIL] now");
    assert_int_equal(c.n[REDACT_EMAIL], 2);
    free(s);
    expect_text(r, "no at sign here", "no at sign here");
    expect_text(r, "user@localhost is not an address", "user@localhost is not an address");
    redactor_free(r);
}

static void redact_card_numbers_pass_only_with_a_valid_luhn(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    expect_text(r, "card 4111 1111 1111 1111 ok", "card [REDACTED:CREDIT_CARD] ok");
    expect_text(r, "card 4111-1111-1111-1111.", "card [REDACTED:CREDIT_CARD].");
    expect_text(r, "card 5500005555555559", "card [REDACTED:CREDIT_CARD]");
    expect_text(r, "amex 378282246310005", "amex [REDACTED:CREDIT_CARD]");
    /* one digit off: Luhn fails, kept */
    expect_text(r, "card 4111 1111 1111 1112 ok", "card 4111 1111 1111 1112 ok");
    expect_text(r, "order 4111111111111112", "order 4111111111111112");
    assert_true(redact_luhn_valid("79927398713", 11));
    assert_false(redact_luhn_valid("79927398710", 11));
    assert_false(redact_luhn_valid("7", 1));
    redactor_free(r);
}

static void redact_finds_phones_ssns_ibans_and_ip_addresses(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    expect_text(r, "call +14155550132 now", "call [REDACTED:PHONE] now");
    expect_text(r, "call +1 415 555 0132", "call [REDACTED:PHONE]");
    expect_text(r, "call (415) 555-0132.", "call [REDACTED:PHONE].");
    expect_text(r, "call 415-555-0132", "call [REDACTED:PHONE]");
    expect_text(r, "ssn 123-45-6789", "ssn [REDACTED:US_SSN]");
    expect_text(r, "not ssn 666-45-6789 or 000-12-3456", "not ssn 666-45-6789 or 000-12-3456");
    expect_text(r, "iban GB82 WEST 1234 5698 7654 32 end", "iban [REDACTED:IBAN] end");
    expect_text(r, "iban DE89370400440532013000", "iban [REDACTED:IBAN]");
    expect_text(r, "bad GB82WEST12345698765433", "bad GB82WEST12345698765433");
    expect_text(r, "host 10.0.0.5:8000", "host [REDACTED:IPV4]:8000");
    expect_text(r, "version 1.2.3 and 999.1.1.1", "version 1.2.3 and 999.1.1.1");
    expect_text(r, "v6 2001:db8::8a2e:370:7334 and ::1", "v6 [REDACTED:IPV6] and [REDACTED:IPV6]");
    expect_text(r, "time 12:30:45 and std::vector", "time 12:30:45 and std::vector");
    expect_text(r, "date 2026-01-01T00:00:01Z", "date 2026-01-01T00:00:01Z");
    redactor_free(r);
}

static void redact_removes_api_keys_bearer_tokens_and_jwts(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    expect_text(r, "key sk-abcdefghijklmnopqrstuvwxyz0123", "key [REDACTED:SECRET]");
    expect_text(r, "aws AKIAIOSFODNN7EXAMPLE.", "aws [REDACTED:SECRET].");
    expect_text(r, "gh ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "gh [REDACTED:SECRET]");
    expect_text(r, "Authorization: Bearer abc.def-123_456", "Authorization: [REDACTED:SECRET]");
    expect_text(r, "t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl x",
                "t [REDACTED:SECRET] x");
    /* a secret holding digits wins over the phone/card detectors */
    expect_text(r, "sk-41111111111111111111111", "[REDACTED:SECRET]");
    redactor_free(r);
}

static void redact_detectors_can_be_switched_off_and_user_rules_added(void **state)
{
    (void)state;
    struct redact_config c;
    redact_config_defaults(&c);
    c.is_disabled[REDACT_EMAIL] = true;
    struct redact_rule rules[] = {{"ORDER_ID", "ORD-[0-9]{6}"}, {"name", "Zoë"}};
    c.custom = rules;
    c.ncustom = 2;
    struct hs_err err = {0};
    struct redactor *r = redactor_new(&c, &err);
    assert_non_null(r);
    assert_int_equal(redactor_ntypes(r), REDACT_NBUILTIN + 2);
    assert_string_equal(redactor_type_name(r, REDACT_NBUILTIN), "ORDER_ID");
    struct redact_counts n = {{0}};
    char *s = red_text(r, "a@b.com ORD-123456 Zoë", &n);
    assert_string_equal(s, "a@b.com [REDACTED:ORDER_ID] [REDACTED:name]");
    assert_int_equal(n.n[REDACT_NBUILTIN], 1);
    assert_int_equal(n.n[REDACT_NBUILTIN + 1], 1);
    free(s);
    redactor_free(r);
}

static void redactor_new_reports_a_bad_user_regex_with_its_offset(void **state)
{
    (void)state;
    struct redact_config c;
    redact_config_defaults(&c);
    struct redact_rule rules[] = {{"broken", "abc(def"}};
    c.custom = rules;
    c.ncustom = 1;
    struct hs_err err = {0};
    assert_null(redactor_new(&c, &err));
    assert_int_equal(err.code, HS_EINVAL);
    assert_non_null(strstr(err.msg, "redaction rule broken"));
    assert_non_null(strstr(err.msg, "offset 7"));
    struct redact_rule bad_name[] = {{"has space", "x"}};
    c.custom = bad_name;
    assert_null(redactor_new(&c, &err));
    assert_int_equal(err.code, HS_EINVAL);
}

static void redact_text_survives_invalid_utf8_and_nul_bytes(void **state)
{
    (void)state;
    struct redact_config c;
    redact_config_defaults(&c);
    struct redact_rule rules[] = {{"WORD", "secret\\w*"}};
    c.custom = rules;
    c.ncustom = 1;
    struct hs_err err = {0};
    struct redactor *r = redactor_new(&c, &err);
    assert_non_null(r);
    const char in[] = "\xff\xfe a@b.com \0 secretive \xc3";
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(redact_text(r, in, sizeof(in) - 1, &b, NULL, &err), HS_OK);
    const char want[] = "\xff\xfe [REDACTED:EMAIL] \0 [REDACTED:WORD] \xc3";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.p, want, sizeof(want) - 1);
    hs_buf_cleanup(&b);
    redactor_free(r);
}

static void redact_json_rewrites_only_string_values_and_stays_valid(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    const char *in = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"mail me at a\\u0040b.com \\\"now\\\"\\n\"}],\"n\":4111111111111111,"
                     "\"a@b.com\":true, \"keep\" : \"x\\/y\"}";
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err err = {0};
    bool is_json = false;
    struct redact_counts c = {{0}};
    assert_int_equal(redact_json(r, in, strlen(in), &b, &c, &is_json, &err), HS_OK);
    assert_true(is_json);
    assert_string_equal(b.p, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"mail me at [REDACTED:EMAIL] \\\"now\\\"\\n\"}],"
                             "\"n\":4111111111111111,\"a@b.com\":true, \"keep\" : \"x\\/y\"}");
    assert_int_equal(c.n[REDACT_EMAIL], 1);
    json_error_t je;
    json_t *j = json_loads(b.p, 0, &je);
    assert_non_null(j);
    json_decref(j);
    hs_buf_cleanup(&b);
    redactor_free(r);
}

static void redact_json_treats_malformed_json_as_text(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    const char *in = "{\"a\": x@y.org, \"b\": 415-555-0132";
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err err = {0};
    bool is_json = true;
    assert_int_equal(redact_json(r, in, strlen(in), &b, NULL, &is_json, &err), HS_OK);
    assert_false(is_json);
    assert_string_equal(b.p, "{\"a\": [REDACTED:EMAIL], \"b\": [REDACTED:PHONE]");
    hs_buf_cleanup(&b);
    /* nesting deeper than the walker's limit is not JSON to it: still redacted */
    struct hs_buf deep;
    hs_buf_init(&deep, 0);
    for (int i = 0; i < 600; i++)
        assert_int_equal(hs_buf_putc(&deep, '['), HS_OK);
    assert_int_equal(hs_buf_puts(&deep, "\"a@b.com\""), HS_OK);
    hs_buf_init(&b, 0);
    assert_int_equal(redact_json(r, deep.p, deep.len, &b, NULL, &is_json, &err), HS_OK);
    assert_false(is_json);
    assert_null(strstr(b.p, "a@b.com"));
    hs_buf_cleanup(&b);
    hs_buf_cleanup(&deep);
    redactor_free(r);
}

static void redact_sse_redacts_each_event_and_keeps_framing(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    const char *in = "data: {\"choices\":[{\"delta\":{\"content\":\"to a@b.com\"}}]}\r\n\r\n"
                     ": comment 10.1.2.3\n"
                     "data: [DONE]\n\n";
    struct hs_buf b;
    hs_buf_init(&b, 0);
    struct hs_err err = {0};
    assert_int_equal(redact_sse(r, in, strlen(in), &b, NULL, &err), HS_OK);
    assert_string_equal(b.p,
                        "data: {\"choices\":[{\"delta\":{\"content\":\"to [REDACTED:EMAIL]\"}}]}"
                        "\r\n\r\n: comment [REDACTED:IPV4]\ndata: [DONE]\n\n");
    hs_buf_cleanup(&b);
    redactor_free(r);
}

static void redact_json_escape_writes_minimal_escapes(void **state)
{
    (void)state;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    const char in[] = "a\"\\/\b\f\n\r\t\x01\x1f\xc3\xa9";
    assert_int_equal(redact_json_escape(in, sizeof(in) - 1, &b), HS_OK);
    assert_string_equal(b.p, "a\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\xc3\xa9");
    hs_buf_cleanup(&b);
}

static void redactor_new_fails_cleanly_when_any_allocation_fails(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        struct hs_err err = {0};
        hs_alloc_fail_after(n);
        struct redactor *r = redactor_new(NULL, &err);
        hs_alloc_fail_after(-1);
        if (r != NULL) {
            redactor_free(r);
            assert_true(n > 0);
            break;
        }
        assert_int_equal(err.code, HS_ENOMEM);
    }
}

static void redact_json_fails_cleanly_when_any_allocation_fails(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    const char *in = "{\"x\":\"a@b.com and 10.0.0.1\",\"y\":[\"c@d.org\"]}";
    for (long n = 0;; n++) {
        struct hs_buf b;
        hs_buf_init(&b, 0);
        struct hs_err err = {0};
        hs_alloc_fail_after(n);
        int rc = redact_json(r, in, strlen(in), &b, NULL, NULL, &err);
        hs_alloc_fail_after(-1);
        hs_buf_cleanup(&b);
        if (rc == HS_OK)
            break;
        assert_int_equal(rc, HS_ENOMEM);
    }
    redactor_free(r);
}

/* Not a pass/fail timing: prints the redaction throughput for the report. */
static void redact_json_throughput_is_printed(void **state)
{
    (void)state;
    struct redactor *r = new_default();
    struct hs_buf in;
    hs_buf_init(&in, 0);
    assert_int_equal(hs_buf_puts(&in, "{\"messages\":["), HS_OK);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(hs_buf_printf(&in,
                                       "%s{\"role\":\"user\",\"content\":\"Paragraph %d: the "
                                       "quick brown fox jumps over the lazy dog while the "
                                       "gateway streams tokens to clients, mail ops%d@example.com "
                                       "or call +1 415 555 %04d about invoice 2026-%d.\"}",
                                       i > 0 ? "," : "", i, i, i % 10000, i),
                         HS_OK);
    assert_int_equal(hs_buf_puts(&in, "]}"), HS_OK);
    struct hs_buf out;
    hs_buf_init(&out, 0);
    struct hs_err err = {0};
    int64_t t0 = hs_mono_ns();
    int rounds = 5;
    for (int k = 0; k < rounds; k++) {
        hs_buf_reset(&out);
        assert_int_equal(redact_json(r, in.p, in.len, &out, NULL, NULL, &err), HS_OK);
    }
    double s = (double)(hs_mono_ns() - t0) / 1e9;
    printf("# redact_json: %.1f MB/s over %zu bytes x %d\n",
           (double)in.len * rounds / 1e6 / (s > 0 ? s : 1e-9), in.len, rounds);
    assert_null(strstr(out.p, "@example.com"));
    hs_buf_cleanup(&out);
    hs_buf_cleanup(&in);
    redactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redact_replaces_emails_and_counts_them),
        cmocka_unit_test(redact_card_numbers_pass_only_with_a_valid_luhn),
        cmocka_unit_test(redact_finds_phones_ssns_ibans_and_ip_addresses),
        cmocka_unit_test(redact_removes_api_keys_bearer_tokens_and_jwts),
        cmocka_unit_test(redact_detectors_can_be_switched_off_and_user_rules_added),
        cmocka_unit_test(redactor_new_reports_a_bad_user_regex_with_its_offset),
        cmocka_unit_test(redact_text_survives_invalid_utf8_and_nul_bytes),
        cmocka_unit_test(redact_json_rewrites_only_string_values_and_stays_valid),
        cmocka_unit_test(redact_json_treats_malformed_json_as_text),
        cmocka_unit_test(redact_sse_redacts_each_event_and_keeps_framing),
        cmocka_unit_test(redact_json_escape_writes_minimal_escapes),
        cmocka_unit_test(redactor_new_fails_cleanly_when_any_allocation_fails),
        cmocka_unit_test(redact_json_fails_cleanly_when_any_allocation_fails),
        cmocka_unit_test(redact_json_throughput_is_printed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
