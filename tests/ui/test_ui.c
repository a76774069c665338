/*
 * test_ui.c - the dashboard's asset table: every asset is embedded, gzip
 * copies inflate back to the original, names carry content hashes that
 * index.html references, cache headers and ETags are right, and unknown
 * paths are 404.
 */
#include "ui/ui.h"

#include "hs_test.h"

#include <zlib.h>

#include <string.h>

static struct ui *new_ui(void)
{
    struct hs_err err = {0};
    struct ui *u = ui_new(&err);
    if (u == NULL)
        fail_msg("ui_new: %s", err.msg);
    return u;
}

static void ui_embeds_the_page_the_scripts_and_uplot(void **state)
{
    (void)state;
    struct ui *u = new_ui();
    const char *names[] = {"index.html",        "app.js",       "lib.js", "views.js", "app.css",
                           "uPlot.iife.min.js", "uPlot.min.css"};
    for (size_t i = 0; i < HS_ARRAY_LEN(names); i++) {
        const struct ui_asset *a = ui_asset_find(u, names[i]);
        if (a == NULL)
            fail_msg("asset %s is not embedded", names[i]);
        assert_true(a->len > 100);
    }
    assert_int_equal(ui_asset_count(u), HS_ARRAY_LEN(names));
    assert_null(ui_asset_at(u, ui_asset_count(u)));
    assert_string_equal(ui_asset_find(u, "app.js")->content_type, "text/javascript; charset=utf-8");
    assert_string_equal(ui_asset_find(u, "app.css")->content_type, "text/css; charset=utf-8");
    assert_string_equal(ui_asset_find(u, "index.html")->content_type, "text/html; charset=utf-8");
    ui_free(u);
}

static void ui_gzip_copies_inflate_to_the_original_bytes(void **state)
{
    (void)state;
    struct ui *u = new_ui();
    for (size_t i = 0; i < ui_asset_count(u); i++) {
        const struct ui_asset *a = ui_asset_at(u, i);
        unsigned char *out = hs_malloc(a->len + 1);
        assert_non_null(out);
        z_stream z;
        memset(&z, 0, sizeof z);
        assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
        z.next_in = (Bytef *)(uintptr_t)a->gz;
        z.avail_in = (uInt)a->gz_len;
        z.next_out = out;
        z.avail_out = (uInt)a->len + 1;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, a->len);
        inflateEnd(&z);
        assert_memory_equal(out, a->data, a->len);
        hs_free(out);
        if (a->len > 4096)
            assert_true(a->gz_len < a->len / 2);
    }
    ui_free(u);
}

static void ui_index_references_every_asset_by_its_hashed_name(void **state)
{
    (void)state;
    struct ui *u = new_ui();
    const struct ui_asset *page = ui_asset_find(u, "index.html");
    char *html = hs_strndup((const char *)page->data, page->len);
    assert_non_null(html);
    for (size_t i = 0; i < ui_asset_count(u); i++) {
        const struct ui_asset *a = ui_asset_at(u, i);
        if (a == page)
            continue;
        assert_string_not_equal(a->name, a->hashed_name);
        char want[256];
        snprintf(want, sizeof want, "\"assets/%s\"", a->hashed_name);
        if (strstr(html, want) == NULL)
            fail_msg("index.html lacks %s", want);
        snprintf(want, sizeof want, "\"assets/%s\"", a->name);
        assert_null(strstr(html, want));
        /* "app.<12 hex>.js": the hash sits before the extension. */
        const char *dot = strchr(a->hashed_name, '.');
        assert_non_null(dot);
        assert_int_equal(strspn(dot + 1, "0123456789abcdef"), 12);
        assert_true(hs_has_suffix(a->hashed_name, strchr(a->name, '.')));
        assert_ptr_equal(ui_asset_find(u, a->hashed_name), a);
    }
    hs_free(html);
    ui_free(u);
}

static void ui_hashed_assets_are_immutable_and_the_page_is_revalidated(void **state)
{
    (void)state;
    struct ui *u = new_ui();
    const struct ui_asset *js = ui_asset_find(u, "app.js");
    char path[300];
    snprintf(path, sizeof path, "/assets/%s", js->hashed_name);
    struct ui_response r;

    ui_resolve(u, path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.cache_control, "public, max-age=31536000, immutable");
    assert_string_equal(r.etag, js->etag);
    assert_false(r.is_gzip);
    assert_int_equal(r.len, js->len);
    assert_ptr_equal(r.body, js->data);

    ui_resolve(u, "/", "gzip, deflate, br", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.cache_control, "no-cache");
    assert_string_equal(r.content_type, "text/html; charset=utf-8");
    assert_true(r.is_gzip);
    assert_ptr_equal(r.body, ui_asset_find(u, "index.html")->gz);

    ui_resolve(u, "/index.html", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.cache_control, "no-cache");

    /* The plain name works too, but is revalidated like the page. */
    ui_resolve(u, "/assets/app.js", "gzip", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.cache_control, "no-cache");
    ui_free(u);
}

static void ui_gzip_is_chosen_only_when_the_client_accepts_it(void **state)
{
    (void)state;
    struct ui *u = new_ui();
    struct ui_response r;
    ui_resolve(u, "/assets/app.css", "identity", NULL, &r);
    assert_false(r.is_gzip);
    ui_resolve(u, "/assets/app.css", "gzip;q=0, identity", NULL, &r);
    assert_false(r.is_gzip);
    ui_resolve(u, "/assets/app.css", "br, GZIP;q=0.5", NULL, &r);
    assert_true(r.is_gzip);
    ui_resolve(u, "/assets/app.css", "*", NULL, &r);
    assert_true(r.is_gzip);
    ui_resolve(u, "/assets/app.css", "xgzip", NULL, &r);
    assert_false(r.is_gzip);
    ui_free(u);
}

static void ui_answers_304_when_if_none_match_names_the_etag(void **state)
{
    (void)state;
    struct ui *u = new_ui();
    const struct ui_asset *page = ui_asset_find(u, "index.html");
    char inm[128];
    snprintf(inm, sizeof inm, "\"other\", W/%s", page->etag);
    struct ui_response r;
    ui_resolve(u, "/", "gzip", inm, &r);
    assert_int_equal(r.status, 304);
    assert_null(r.body);
    assert_string_equal(r.etag, page->etag);
    ui_resolve(u, "/", "gzip", "\"other\"", &r);
    assert_int_equal(r.status, 200);
    ui_free(u);
}

static void ui_unknown_paths_are_404(void **state)
{
    (void)state;
    struct ui *u = new_ui();
    const char *bad[] = {
        "/assets/nope.js", "/assets/",     "/assets/index.html",         "/assets/../ui.c",
        "/assets/a/b.js",  "/favicon.ico", "/assets/app.000000000000.js"};
    struct ui_response r;
    for (size_t i = 0; i < HS_ARRAY_LEN(bad); i++) {
        ui_resolve(u, bad[i], "gzip", NULL, &r);
        if (r.status != 404)
            fail_msg("%s answered %d", bad[i], r.status);
        assert_false(r.is_gzip);
        assert_non_null(r.body);
    }
    char longp[UI_MAX_PATH_BYTES + 20];
    memset(longp, 'a', sizeof longp);
    memcpy(longp, "/assets/", 8);
    longp[sizeof longp - 1] = 0;
    ui_resolve(u, longp, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    ui_resolve(u, NULL, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    ui_free(u);
}

static void ui_new_fails_cleanly_when_memory_runs_out(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        struct hs_err err = {0};
        hs_alloc_fail_after(n);
        struct ui *u = ui_new(&err);
        hs_alloc_fail_after(-1);
        if (u != NULL) {
            assert_true(n > 3);
            ui_free(u);
            break;
        }
        assert_int_equal(err.code, HS_ENOMEM);
        assert_true(n < 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ui_embeds_the_page_the_scripts_and_uplot),
        cmocka_unit_test(ui_gzip_copies_inflate_to_the_original_bytes),
        cmocka_unit_test(ui_index_references_every_asset_by_its_hashed_name),
        cmocka_unit_test(ui_hashed_assets_are_immutable_and_the_page_is_revalidated),
        cmocka_unit_test(ui_gzip_is_chosen_only_when_the_client_accepts_it),
        cmocka_unit_test(ui_answers_304_when_if_none_match_names_the_etag),
        cmocka_unit_test(ui_unknown_paths_are_404),
        cmocka_unit_test(ui_new_fails_cleanly_when_memory_runs_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
