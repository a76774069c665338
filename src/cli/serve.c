/*
 * serve.c - `holoscope serve`: the long-running process.
 *
 * Start-up order: configuration (file < env < flags) and logging; data
 * directory; event loop and signal events; HTTP server with the management
 * endpoints; then readiness.  SIGTERM and SIGINT start a graceful shutdown
 * (stop accepting, finish in-flight requests within shutdown_timeout, flush
 * state); a second signal stops at once.  SIGHUP (and POST /-/reload)
 * re-reads the configuration file and applies what can change live.
 *
 * Threading: everything here runs on the main thread, which runs the loop.
 */
#include "cli/internal.h"

#include "api/api.h"
#include "http/http.h"

#include "buildinfo.h"

#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

const char cli_help_serve[] =
    "NAME\n"
    "       holoscope serve - run the store, the API, the dashboard and the collectors\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope serve [--config FILE] [--listen HOST:PORT] [--data DIR] [OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "       Runs holoscope in the foreground until SIGTERM or SIGINT. It listens on\n"
    "       127.0.0.1:9190 by default and keeps its data in ./data. Endpoints:\n"
    "       /-/healthy, /-/ready, /-/reload (POST) and /metrics (holoscope's own\n"
    "       metrics in the Prometheus text format).\n"
    "\n"
    "       Settings come from, in increasing precedence: built-in defaults, the YAML\n"
    "       file given with --config, HOLOSCOPE_* environment variables, and flags.\n"
    "       SIGHUP re-reads the configuration file; a graceful shutdown lets\n"
    "       in-flight requests finish within shutdown_timeout.\n"
    "\n"
    "OPTIONS\n";

const char cli_help_serve_tail[] =
    "\n"
    "EXIT STATUS\n"
    "       0 after a clean shutdown, 1 on a runtime failure (for example the address\n"
    "       is in use), 2 on a usage or configuration error.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope serve\n"
    "       holoscope serve --listen 127.0.0.1:9300 --data /var/lib/holoscope\n"
    "       HOLOSCOPE_LOG_FORMAT=json holoscope serve --config holoscope.yml\n";

struct server {
    struct cli_config cfg;
    char **argv; /* for reload: the same flags apply again on top of the file */
    int argc;
    char **envp;
    struct event_base *base;
    struct http_server *http;
    struct api_metrics *metrics;
    struct api_admin admin;
    struct event *sig_term, *sig_int, *sig_hup;
    bool is_stopping;
    int exit_code;
};

static int apply_logging(const struct cli_config *c)
{
    hs_log_setup(c->log_level, c->log_format, NULL);
    return HS_OK;
}

/* Re-reads the configuration; applies what can change without a restart. */
static int reload(void *arg, struct hs_err *err)
{
    struct server *s = arg;
    struct cli_config fresh;
    cli_config_init(&fresh);
    int *rest = hs_calloc((size_t)s->argc + 1, sizeof(int));
    int nrest = 0, rc = rest ? HS_OK : HS_ENOMEM;
    if (rc == HS_OK)
        rc = cli_config_load(&fresh, s->argc, s->argv, s->envp, rest, &nrest, err);
    if (rc == HS_OK)
        rc = cli_config_validate(&fresh, err);
    hs_free(rest);
    if (rc != HS_OK) {
        cli_config_cleanup(&fresh);
        return rc;
    }
    if (strcmp(fresh.listen, s->cfg.listen) != 0 || strcmp(fresh.data_dir, s->cfg.data_dir) != 0)
        hs_log(HS_LOG_WARN, "listen and data_dir changes take effect after a restart");
    apply_logging(&fresh);
    /* Swap: the old strings (and file tree) go, the new ones stay. */
    struct cli_config old = s->cfg;
    s->cfg = fresh;
    cli_config_cleanup(&old);
    hs_log(HS_LOG_INFO, "configuration reloaded",
           HS_LSTR("file", s->cfg.config_file ? s->cfg.config_file : "(none)"));
    return HS_OK;
}

static void on_shutdown_done(void *arg)
{
    struct server *s = arg;
    hs_log(HS_LOG_INFO, "http server stopped");
    event_base_loopexit(s->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *s = arg;
    if (sig == SIGHUP) {
        struct hs_err err = {0};
        if (reload(s, &err) != HS_OK)
            hs_log(HS_LOG_ERROR, "reload failed; keeping the running configuration",
                   HS_LSTR("err", err.msg));
        return;
    }
    if (s->is_stopping) {
        hs_log(HS_LOG_WARN, "second signal: stopping now");
        event_base_loopbreak(s->base);
        return;
    }
    s->is_stopping = true;
    s->admin.is_ready = false;
    hs_log(HS_LOG_INFO, "shutting down", HS_LSTR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
           HS_LINT("timeout_ms", s->cfg.shutdown_timeout_ms));
    http_server_shutdown(s->http, s->cfg.shutdown_timeout_ms, on_shutdown_done, s);
}

static int start_http(struct server *s, struct hs_err *err)
{
    struct http_server_config hc;
    http_server_config_defaults(&hc);
    hc.listen = s->cfg.listen;
    hc.max_connections = (int)HS_MIN(s->cfg.http_max_connections, 1000000);
    hc.max_header_bytes = (size_t)s->cfg.http_max_header_bytes;
    hc.max_body_bytes = (size_t)s->cfg.http_max_body_bytes;
    hc.header_timeout_ms = s->cfg.http_header_timeout_ms;
    hc.read_timeout_ms = s->cfg.http_read_timeout_ms;
    hc.write_timeout_ms = s->cfg.http_write_timeout_ms;
    hc.idle_timeout_ms = s->cfg.http_idle_timeout_ms;
    s->http = http_server_new(s->base, &hc, err);
    if (s->http == NULL)
        return err ? err->code : HS_ENOMEM;
    s->metrics = api_metrics_new(hs_now_seconds());
    if (s->metrics == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    s->admin.metrics = s->metrics;
    s->admin.reload = reload;
    s->admin.reload_arg = s;
    http_server_set_observer(s->http, api_metrics_observe_http, s->metrics);
    http_server_set_error_formatter(s->http, api_error_formatter, NULL);
    int rc = api_admin_register(s->http, &s->admin);
    if (rc != HS_OK)
        return hs_err_set(err, rc, "registering routes: %s", hs_strerror(rc));
    return http_server_start(s->http, err);
}

static int add_signal(struct server *s, int sig, struct event **ev)
{
    *ev = evsignal_new(s->base, sig, on_signal, s);
    if (*ev == NULL || evsignal_add(*ev, NULL) != 0)
        return HS_ENOMEM;
    return HS_OK;
}

static void server_cleanup(struct server *s)
{
    if (s->sig_term)
        event_free(s->sig_term);
    if (s->sig_int)
        event_free(s->sig_int);
    if (s->sig_hup)
        event_free(s->sig_hup);
    http_server_free(s->http);
    api_metrics_free(s->metrics);
    if (s->base)
        event_base_free(s->base);
    cli_config_cleanup(&s->cfg);
}

static int run(struct server *s)
{
    struct hs_err err = {0};
    int rc = hs_mkdir_p(s->cfg.data_dir, &err);
    if (rc != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot use the data directory", HS_LSTR("err", err.msg));
        return CLI_EXIT_FAILURE;
    }
    s->base = event_base_new();
    if (s->base == NULL) {
        hs_log(HS_LOG_ERROR, "cannot create the event loop");
        return CLI_EXIT_FAILURE;
    }
    if (add_signal(s, SIGTERM, &s->sig_term) != HS_OK || add_signal(s, SIGINT, &s->sig_int) != HS_OK ||
        add_signal(s, SIGHUP, &s->sig_hup) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot install signal handlers");
        return CLI_EXIT_FAILURE;
    }
    if (start_http(s, &err) != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start the HTTP server", HS_LSTR("listen", s->cfg.listen),
               HS_LSTR("err", err.msg));
        return CLI_EXIT_FAILURE;
    }
    hs_log(HS_LOG_INFO, "holoscope started", HS_LSTR("version", HS_VERSION),
           HS_LSTR("revision", HS_COMMIT), HS_LSTR("data_dir", s->cfg.data_dir));
    hs_log(HS_LOG_INFO, "listening", HS_LSTR("listen", s->cfg.listen),
           HS_LINT("port", http_server_port(s->http)));
    s->admin.is_ready = true;
    event_base_dispatch(s->base);
    hs_log(HS_LOG_INFO, "holoscope stopped");
    return CLI_EXIT_OK;
}

int cli_cmd_serve(int argc, char **argv, char **envp)
{
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_serve, stdout);
        cli_config_print_help(stdout);
        fputs(cli_help_serve_tail, stdout);
        return CLI_EXIT_OK;
    }
    struct server s;
    memset(&s, 0, sizeof(s));
    s.argc = argc - 1;
    s.argv = argv + 1;
    s.envp = envp;
    cli_config_init(&s.cfg);
    struct hs_err err = {0};
    int *rest = hs_calloc((size_t)argc + 1, sizeof(int));
    int nrest = 0;
    if (rest == NULL) {
        fprintf(stderr, "holoscope serve: out of memory\n");
        cli_config_cleanup(&s.cfg);
        return CLI_EXIT_FAILURE;
    }
    int rc = cli_config_load(&s.cfg, s.argc, s.argv, envp, rest, &nrest, &err);
    if (rc == HS_OK && nrest > 0)
        rc = hs_err_set(&err, HS_EINVAL, "unknown option or argument \"%s\" (see holoscope serve "
                                         "--help)",
                        s.argv[rest[0]]);
    hs_free(rest);
    if (rc == HS_OK)
        rc = cli_config_validate(&s.cfg, &err);
    if (rc != HS_OK) {
        fprintf(stderr, "holoscope serve: %s\n", err.msg);
        cli_config_cleanup(&s.cfg);
        return CLI_EXIT_USAGE;
    }
    apply_logging(&s.cfg);
    signal(SIGPIPE, SIG_IGN);
    int code = run(&s);
    server_cleanup(&s);
    return code;
}
