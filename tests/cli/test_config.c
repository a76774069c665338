/* Tests of src/cli/config.c: defaults, file, environment and flag precedence,
 * and the errors a user sees. */
#include "hs_test.h"
#include "hs_test_util.h"

#include "cli/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *write_config(const char *dir, const char *text)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/holoscope.yml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int load(struct cli_config *c, int argc, char **argv, char **envp, struct hs_err *err)
{
    int rest[16], nrest = 0;
    cli_config_init(c);
    int rc = cli_config_load(c, argc, argv, envp, rest, &nrest, err);
    if (rc == HS_OK)
        rc = cli_config_validate(c, err);
    return rc;
}

static void no_config_at_all_gives_the_documented_defaults(void **state)
{
    (void)state;
    struct cli_config c;
    struct hs_err err = {0};
    char *env[] = {NULL};
    assert_int_equal(load(&c, 0, NULL, env, &err), HS_OK);
    assert_string_equal(c.listen, "127.0.0.1:9190");
    assert_string_equal(c.data_dir, "./data");
    assert_int_equal(c.retention_ms, 15 * 86400000LL);
    assert_int_equal(c.wal_fsync, CLI_WAL_FSYNC_INTERVAL);
    assert_int_equal(c.http_max_header_bytes, 16384);
    cli_config_cleanup(&c);
}

static void environment_overrides_file_and_flags_override_environment(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("cfg");
    char *path = write_config(dir, "listen: 127.0.0.1:1000\ndata_dir: /from/file\n"
                                   "log:\n  level: warn\nstorage:\n  retention: 1d\n");
    char *argv[] = {"--config", path, "--listen=127.0.0.1:3000", "--data", "/from/flag"};
    char *env[] = {"HOLOSCOPE_LISTEN=127.0.0.1:2000", "HOLOSCOPE_LOG_LEVEL=debug",
                   "HOLOSCOPE_STORAGE_RETENTION=2d", NULL};
    struct cli_config c;
    struct hs_err err = {0};
    assert_int_equal(load(&c, 5, argv, env, &err), HS_OK);
    assert_string_equal(c.listen, "127.0.0.1:3000");
    assert_string_equal(c.data_dir, "/from/flag");
    assert_int_equal(c.log_level, HS_LOG_DEBUG);
    assert_int_equal(c.retention_ms, 2 * 86400000LL);
    cli_config_cleanup(&c);
    hs_test_rmdir(dir);
    free(dir);
}

static void unknown_key_is_reported_with_file_line_and_column(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("cfg");
    char *path = write_config(dir, "log:\n  level: info\n  colour: red\n");
    char *argv[] = {"--config", path};
    char *env[] = {NULL};
    struct cli_config c;
    struct hs_err err = {0};
    assert_int_equal(load(&c, 2, argv, env, &err), HS_EINVAL);
    char want[4200];
    snprintf(want, sizeof(want), "%s:3:3: unknown key \"log.colour\"", path);
    assert_string_equal(err.msg, want);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 3);
    cli_config_cleanup(&c);
    hs_test_rmdir(dir);
    free(dir);
}

static void wrong_types_in_the_file_are_errors_naming_the_key(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("cfg");
    const char *cases[][2] = {
        {"http:\n  max_connections: lots\n", "http.max_connections: expected a non-negative"},
        {"http:\n  max_connections: \"10\"\n", "http.max_connections: expected an integer"},
        {"storage:\n  wal:\n    fsync: sometimes\n", "expected interval or batch"},
        {"allow_remote: maybe\n", "allow_remote: expected true or false"},
        {"http: 5\n", "http: expected a map"},
        {"listen: [a, b]\n", "listen: expected a single value, got a list"},
        {"- a\n- b\n", "the configuration must be a map"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_config(dir, cases[i][0]);
        char *argv[] = {"--config", path};
        char *env[] = {NULL};
        struct cli_config c;
        struct hs_err err = {0};
        assert_int_not_equal(load(&c, 2, argv, env, &err), HS_OK);
        if (strstr(err.msg, cases[i][1]) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i][1]);
        assert_true(strncmp(err.msg, path, strlen(path)) == 0);
        cli_config_cleanup(&c);
    }
    hs_test_rmdir(dir);
    free(dir);
}

static void bad_environment_values_and_flags_name_the_variable_or_flag(void **state)
{
    (void)state;
    struct cli_config c;
    struct hs_err err = {0};
    char *env[] = {"HOLOSCOPE_HTTP_IDLE_TIMEOUT=forever", NULL};
    assert_int_equal(load(&c, 0, NULL, env, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "HOLOSCOPE_HTTP_IDLE_TIMEOUT: expected a duration"));
    cli_config_cleanup(&c);
    char *argv[] = {"--http.max-body-bytes", "12parsecs"};
    char *noenv[] = {NULL};
    assert_int_equal(load(&c, 2, argv, noenv, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "--http.max-body-bytes: expected a size"));
    cli_config_cleanup(&c);
    char *argv2[] = {"--listen"};
    assert_int_equal(load(&c, 1, argv2, noenv, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "--listen: missing value"));
    cli_config_cleanup(&c);
}

static void flags_that_are_not_settings_are_left_for_the_command(void **state)
{
    (void)state;
    struct cli_config c;
    struct hs_err err = {0};
    char *argv[] = {"positional", "--listen", "127.0.0.1:1", "--other", "--", "--data"};
    char *env[] = {NULL};
    int rest[8], nrest = 0;
    cli_config_init(&c);
    assert_int_equal(cli_config_load(&c, 6, argv, env, rest, &nrest, &err), HS_OK);
    assert_int_equal(nrest, 4);
    assert_int_equal(rest[0], 0);
    assert_int_equal(rest[1], 3);
    assert_int_equal(rest[2], 4);
    assert_int_equal(rest[3], 5);
    assert_string_equal(c.data_dir, "./data");
    cli_config_cleanup(&c);
}

static void listening_beyond_loopback_needs_allow_remote(void **state)
{
    (void)state;
    struct cli_config c;
    struct hs_err err = {0};
    char *env[] = {NULL};
    char *argv[] = {"--listen", "0.0.0.0:9190"};
    assert_int_equal(load(&c, 2, argv, env, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "allow_remote"));
    cli_config_cleanup(&c);
    char *argv2[] = {"--listen", "0.0.0.0:9190", "--allow_remote"};
    assert_int_equal(load(&c, 3, argv2, env, &err), HS_OK);
    cli_config_cleanup(&c);
    char *argv3[] = {"--listen", "[::1]:9190"};
    assert_int_equal(load(&c, 2, argv3, env, &err), HS_OK);
    cli_config_cleanup(&c);
    char *argv4[] = {"--listen", "nohost"};
    assert_int_equal(load(&c, 2, argv4, env, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "expected HOST:PORT"));
    cli_config_cleanup(&c);
}

static void an_empty_file_means_all_defaults(void **state)
{
    (void)state;
    char *dir = hs_test_tmpdir("cfg");
    char *path = write_config(dir, "# nothing set\n");
    char *argv[] = {"--config", path};
    char *env[] = {NULL};
    struct cli_config c;
    struct hs_err err = {0};
    assert_int_equal(load(&c, 2, argv, env, &err), HS_OK);
    assert_string_equal(c.listen, "127.0.0.1:9190");
    cli_config_cleanup(&c);
    hs_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_config_at_all_gives_the_documented_defaults),
        cmocka_unit_test(environment_overrides_file_and_flags_override_environment),
        cmocka_unit_test(unknown_key_is_reported_with_file_line_and_column),
        cmocka_unit_test(wrong_types_in_the_file_are_errors_naming_the_key),
        cmocka_unit_test(bad_environment_values_and_flags_name_the_variable_or_flag),
        cmocka_unit_test(flags_that_are_not_settings_are_left_for_the_command),
        cmocka_unit_test(listening_beyond_loopback_needs_allow_remote),
        cmocka_unit_test(an_empty_file_means_all_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
