/*
 * server.c - the simulated fleet over real HTTP: every replica an
 * OpenAI-compatible server (chat and legacy completions, streamed as SSE or
 * answered as JSON, /v1/models, /health), its engine's /metrics and the
 * fault control endpoint /sim/faults; every node a dcgm-exporter /metrics.
 *
 * Everything runs on the fleet's thread and event_base.  Each replica keeps
 * its engine's clock on the monotonic clock (microseconds since fleet
 * start) and a timer at the end of the engine step under way: when it
 * fires, the engine runs up to now and its token events become SSE chunks
 * at once.  A 100 ms tick applies faults (start, end, replica down / up),
 * advances the GPUs and notices a stop request.  Faults are the one state
 * shared with other threads (sim_fleet_inject, sim_fleet_clear_faults):
 * they live in an array under 'lock'.
 *
 * Request lifetime: a generate request becomes a struct sim_call held until
 * its engine request finishes (SIM_EVENT_FINISH), which answers or ends the
 * stream.  A client that goes away aborts its engine request; the finish
 * event then only releases the HTTP request.  A replica going down forgets
 * its HTTP requests (freed with the server) and aborts their engine
 * requests.  Stream writes ignore backpressure: chunks are a few hundred
 * bytes per token and a slow client at worst grows its connection buffer
 * for the length of one answer.
 */
#include "sim/internal.h"

#include "http/http.h"

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define SIM_MAX_ACTIVE_FAULTS 256
#define SIM_TICK_MS           100
#define SIM_MAX_BODY_BYTES    (4u << 20)

struct sim_call;
struct sim_fleet;

/* Requests counted per handler for vLLM's http_requests_total. */
static const char *const counted_handlers[] = {"/v1/chat/completions", "/v1/completions",
                                               "/v1/models", "/health", "/metrics"};
#define N_COUNTED HS_ARRAY_LEN(counted_handlers)

struct sim_replica {
    struct sim_fleet *f;
    int eng, idx;
    struct sim_engine *engine;
    struct http_server *http; /* NULL while down */
    int port;
    char url[96];
    struct event *timer;
    struct sim_call *calls; /* in-flight generate requests */
    struct sim_rng rng;
    uint64_t seq;
    /* fault state, loop thread */
    double error_ratio, quality_ratio;
    bool is_down, is_idle, is_throttled;
    int64_t last_busy_us;
    uint64_t http_count[N_COUNTED][3]; /* 2xx, 4xx, 5xx */
    struct sim_gpu **gpus;
    int n_gpus;
};

struct sim_node {
    struct sim_fleet *f;
    int eng, idx;
    struct http_server *http;
    int port;
    char url[96];
    char host[96];
    struct sim_gpu **gpus;
    size_t n_gpus;
};

struct sim_afault {
    int kind;
    int eng, rep; /* rep -1: every replica */
    double magnitude;
    int64_t start_ms, end_ms; /* fleet clock; end -1: until cleared */
    char target[256];
};

struct sim_fleet {
    struct sim_config cfg; /* copy; engines and strings owned below */
    struct sim_engine_config *engines;
    struct hs_arena strings;
    struct event_base *base;
    struct event *tick;
    pthread_t thread;
    bool is_thread_started;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards faults, n_faults */
    struct sim_afault faults[SIM_MAX_ACTIVE_FAULTS];
    size_t n_faults;
    struct sim_replica *reps;
    size_t n_reps;
    struct sim_node *nodes;
    size_t n_nodes;
    struct sim_gpu *gpus;
    size_t n_gpus;
    struct sim_gpu **gpu_ptrs; /* per replica, then per node */
    int64_t t0_ns;             /* monotonic start: the engines' clock origin */
    int64_t created_s;         /* wall-clock start, for /v1/models */
    int64_t last_tick_us;
};

struct sim_call {
    struct sim_call *next, *prev;
    struct sim_replica *rep;
    struct http_request *req; /* NULL once the HTTP side is gone */
    uint64_t id;
    bool is_chat, is_stream, include_usage, is_client_gone;
    int quality;
    uint64_t seed;
    int64_t created;
    char rid[48];
    int prompt_tokens;
    struct hs_buf text; /* non-streamed answer */
};

static int64_t fleet_now_us(const struct sim_fleet *f)
{
    return (hs_mono_ns() - f->t0_ns) / 1000;
}

/* ---- engine driving ---- */

static void on_step_timer(evutil_socket_t fd, short what, void *arg);

static void kick(struct sim_replica *rep)
{
    int64_t now = fleet_now_us(rep->f);
    sim_engine_run_until(rep->engine, now);
    int64_t next = sim_engine_next_event_us(rep->engine);
    if (next < 0) {
        evtimer_del(rep->timer);
        return;
    }
    int64_t d = next - now;
    if (d < 0)
        d = 0;
    struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
    evtimer_add(rep->timer, &tv);
}

static void on_step_timer(evutil_socket_t fd, short what, void *arg)
{
    kick(arg);
}

/* ---- JSON output helpers ---- */

static const char *error_type(int status)
{
    switch (status) {
    case 400:
        return "BadRequestError";
    case 404:
        return "NotFoundError";
    case 503:
        return "ServiceUnavailableError";
    default:
        return status >= 500 ? "InternalServerError" : "BadRequestError";
    }
}

static int format_error(void *arg, int status, const char *msg, struct hs_buf *out,
                        const char **content_type)
{
    int rc = hs_buf_puts(out, "{\"error\":{\"message\":");
    if (!rc)
        rc = hs_buf_json_str(out, msg, strlen(msg));
    if (!rc)
        rc = hs_buf_printf(out, ",\"type\":\"%s\",\"param\":null,\"code\":%d}}", error_type(status),
                           status);
    *content_type = "application/json";
    return rc;
}

static void respond_buf(struct http_request *r, int status, struct hs_buf *b)
{
    http_respond(r, status, "application/json", b->p, b->len);
    hs_buf_cleanup(b);
}

/* ---- generate requests ---- */

static void call_unlink(struct sim_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->rep->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void call_free(struct sim_call *c)
{
    hs_buf_cleanup(&c->text);
    hs_free(c);
}

static int chunk_head(struct sim_call *c, struct hs_buf *b)
{
    struct sim_replica *rep = c->rep;
    int rc = hs_buf_printf(
        b, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", c->rid,
        c->is_chat ? "chat.completion.chunk" : "text_completion", (long long)c->created);
    const char *model = rep->f->engines[rep->eng].model;
    if (!rc)
        rc = hs_buf_json_str(b, model, strlen(model));
    return rc;
}

static void stream_send(struct sim_call *c, struct hs_buf *b, int rc)
{
    if (!rc && c->req && !c->is_client_gone)
        HS_IGNORE_RESULT(http_stream_write(c->req, b->p, b->len));
    hs_buf_cleanup(b);
}

static void send_role_chunk(struct sim_call *c)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = chunk_head(c, &b);
    if (!rc)
        rc = hs_buf_puts(&b, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                             "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],"
                             "\"usage\":null}\n\n");
    stream_send(c, &b, rc);
}

static void send_token(struct sim_call *c, const char *tok, size_t n)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = chunk_head(c, &b);
    if (!rc)
        rc = hs_buf_puts(&b, c->is_chat ? ",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                                        : ",\"choices\":[{\"index\":0,\"text\":");
    if (!rc)
        rc = hs_buf_json_str(&b, tok, n);
    if (!rc)
        rc = hs_buf_puts(&b, c->is_chat ? "},\"logprobs\":null,\"finish_reason\":null}],"
                                          "\"usage\":null}\n\n"
                                        : ",\"logprobs\":null,\"finish_reason\":null}],"
                                          "\"usage\":null}\n\n");
    stream_send(c, &b, rc);
}

static int usage_json(struct hs_buf *b, int prompt, int completion)
{
    return hs_buf_printf(b,
                         "{\"prompt_tokens\":%d,\"total_tokens\":%d,\"completion_tokens\":%d,"
                         "\"prompt_tokens_details\":null}",
                         prompt, prompt + completion, completion);
}

static void send_final(struct sim_call *c, const char *reason, int completion)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = chunk_head(c, &b);
    if (!rc)
        rc =
            hs_buf_printf(&b,
                          c->is_chat ? ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                                       "\"finish_reason\":\"%s\",\"stop_reason\":null}],"
                                       "\"usage\":null}\n\n"
                                     : ",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,"
                                       "\"finish_reason\":\"%s\",\"stop_reason\":null}],"
                                       "\"usage\":null}\n\n",
                          reason);
    if (!rc && c->include_usage) {
        rc = chunk_head(c, &b);
        if (!rc)
            rc = hs_buf_puts(&b, ",\"choices\":[],\"usage\":");
        if (!rc)
            rc = usage_json(&b, c->prompt_tokens, completion);
        if (!rc)
            rc = hs_buf_puts(&b, "}\n\n");
    }
    if (!rc)
        rc = hs_buf_puts(&b, "data: [DONE]\n\n");
    stream_send(c, &b, rc);
}

static void answer_json(struct sim_call *c, const char *reason, int completion)
{
    struct sim_replica *rep = c->rep;
    const char *model = rep->f->engines[rep->eng].model;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc =
        hs_buf_printf(&b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", c->rid,
                      c->is_chat ? "chat.completion" : "text_completion", (long long)c->created);
    if (!rc)
        rc = hs_buf_json_str(&b, model, strlen(model));
    if (!rc)
        rc = hs_buf_puts(&b, c->is_chat ? ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                                          "\"assistant\",\"content\":"
                                        : ",\"choices\":[{\"index\":0,\"text\":");
    if (!rc)
        rc = hs_buf_json_str(&b, c->text.p ? c->text.p : "", c->text.len);
    if (!rc)
        rc = hs_buf_printf(&b,
                           "%s,\"logprobs\":null,\"finish_reason\":\"%s\",\"stop_reason\":null}],"
                           "\"usage\":",
                           c->is_chat ? ",\"refusal\":null}" : "", reason);
    if (!rc)
        rc = usage_json(&b, c->prompt_tokens, completion);
    if (!rc)
        rc = hs_buf_putc(&b, '}');
    if (rc) {
        hs_buf_cleanup(&b);
        http_respond_error(c->req, 500, "out of memory");
        return;
    }
    respond_buf(c->req, 200, &b);
}

static void on_engine_event(void *arg, int event, const struct sim_request_info *info)
{
    struct sim_call *c = arg;
    if (event == SIM_EVENT_TOKEN) {
        char tok[64];
        size_t n = sim_text_token(c->seed, c->quality, info->output_tokens - 1, tok, sizeof(tok));
        if (!c->req || c->is_client_gone)
            return;
        if (c->is_stream) {
            if (n > 0)
                send_token(c, tok, n);
        } else if (hs_buf_append(&c->text, tok, n) != HS_OK) {
            sim_engine_abort(c->rep->engine, c->id, info->now_us);
        }
        return;
    }
    call_unlink(c);
    if (c->req) {
        if (c->is_client_gone) {
            http_stream_end(c->req);
        } else if (info->finish_reason == SIM_FINISH_ABORT) {
            if (c->is_stream) {
                struct hs_buf b;
                hs_buf_init(&b, 0);
                int rc = hs_buf_puts(&b, "data: {\"error\":{\"message\":\"request aborted by the "
                                         "engine\",\"type\":\"InternalServerError\","
                                         "\"param\":null,\"code\":500}}\n\ndata: [DONE]\n\n");
                stream_send(c, &b, rc);
                http_stream_end(c->req);
            } else {
                http_respond_error(c->req, 500, "request aborted by the engine");
            }
        } else {
            const char *reason = info->finish_reason == SIM_FINISH_LENGTH ? "length" : "stop";
            if (c->is_stream) {
                send_final(c, reason, info->output_tokens);
                http_stream_end(c->req);
            } else {
                answer_json(c, reason, info->output_tokens);
            }
        }
    }
    call_free(c);
}

static void on_client_close(struct http_request *r, void *arg)
{
    struct sim_call *c = arg;
    struct sim_replica *rep = c->rep;
    c->is_client_gone = true;
    sim_engine_abort(rep->engine, c->id, fleet_now_us(rep->f)); /* may free c */
    kick(rep);
}

/* Rough token count of a text: a token per 4 bytes, at least one. */
static int text_tokens(const char *s, size_t n)
{
    return (int)(n / 4) + 1;
}

static int prompt_tokens_of(json_t *body, bool is_chat, struct hs_buf *why)
{
    size_t total = 0;
    if (is_chat) {
        json_t *msgs = json_object_get(body, "messages");
        if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
            HS_IGNORE_RESULT(hs_buf_puts(why, "messages: expected a non-empty array"));
            return -1;
        }
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m)
        {
            json_t *content = json_object_get(m, "content");
            total += 4;
            if (json_is_string(content)) {
                total +=
                    (size_t)text_tokens(json_string_value(content), json_string_length(content));
            } else if (json_is_array(content)) {
                size_t j;
                json_t *part;
                json_array_foreach(content, j, part)
                {
                    json_t *t = json_object_get(part, "text");
                    if (json_is_string(t))
                        total += (size_t)text_tokens(json_string_value(t), json_string_length(t));
                }
            } else if (!json_is_null(content) || !json_is_object(m)) {
                HS_IGNORE_RESULT(hs_buf_printf(why,
                                               "messages[%zu].content: expected a string "
                                               "or an array of parts",
                                               i));
                return -1;
            }
        }
    } else {
        json_t *p = json_object_get(body, "prompt");
        if (json_is_string(p)) {
            total = (size_t)text_tokens(json_string_value(p), json_string_length(p));
        } else if (json_is_array(p) && json_array_size(p) > 0) {
            size_t i;
            json_t *x;
            json_array_foreach(p, i, x)
            {
                if (json_is_string(x))
                    total += (size_t)text_tokens(json_string_value(x), json_string_length(x));
                else
                    total += 1; /* token ids */
            }
        } else {
            HS_IGNORE_RESULT(hs_buf_puts(why, "prompt: expected a string or an array"));
            return -1;
        }
    }
    return total > 10000000 ? 10000000 : (int)total;
}

/* Reads an optional positive integer field; -1 on a bad value. */
static int opt_int(json_t *body, const char *key, int *out)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 10000000)
        return -1;
    *out = (int)json_integer_value(v);
    return 0;
}

static void reply_error(struct http_request *r, int status, const char *msg)
{
    http_respond_error(r, status, msg);
}

static int parse_generate(struct http_request *r, struct sim_replica *rep, json_t *body,
                          struct sim_call *c, struct sim_request_params *p)
{
    char msg[512];
    const char *served = rep->f->engines[rep->eng].model;
    json_t *model = json_object_get(body, "model");
    if (!json_is_string(model)) {
        reply_error(r, 400, "model: expected a string");
        return -1;
    }
    if (strcmp(json_string_value(model), served) != 0) {
        snprintf(msg, sizeof(msg), "The model `%.200s` does not exist.", json_string_value(model));
        reply_error(r, 404, msg);
        return -1;
    }
    int n = 1;
    if (opt_int(body, "n", &n) != 0 || n != 1) {
        reply_error(r, 400, "n: only n=1 is supported by the simulator");
        return -1;
    }
    int max_tokens = 0;
    if (opt_int(body, "max_tokens", &max_tokens) != 0 ||
        opt_int(body, "max_completion_tokens", &max_tokens) != 0) {
        reply_error(r, 400, "max_tokens: expected a positive integer");
        return -1;
    }
    json_t *stream = json_object_get(body, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        reply_error(r, 400, "stream: expected a boolean");
        return -1;
    }
    c->is_stream = json_is_true(stream);
    json_t *so = json_object_get(body, "stream_options");
    c->include_usage = json_is_true(json_object_get(so, "include_usage"));
    struct hs_buf why;
    hs_buf_init(&why, 512);
    int prompt = prompt_tokens_of(body, c->is_chat, &why);
    if (prompt < 0) {
        reply_error(r, 400, why.p ? why.p : "bad request");
        hs_buf_cleanup(&why);
        return -1;
    }
    hs_buf_cleanup(&why);
    p->prompt_tokens = prompt;
    p->max_tokens = max_tokens;
    p->output_tokens = 0;
    c->prompt_tokens = prompt;
    return 0;
}

static void pick_quality(struct sim_replica *rep, struct sim_call *c, struct sim_request_params *p)
{
    c->quality = SIM_TEXT_GOOD;
    if (rep->quality_ratio > 0 && sim__rng_unit(&rep->rng) < rep->quality_ratio)
        c->quality = 1 + (int)(sim__rng_next(&rep->rng) % 3);
    if (c->quality == SIM_TEXT_EMPTY)
        p->output_tokens = 1;
    else if (c->quality == SIM_TEXT_REFUSAL)
        p->output_tokens = 10;
    else if (c->quality == SIM_TEXT_REPETITIVE)
        p->output_tokens = 1 << 20; /* runs into max_tokens */
}

static void ignore_engine_event(void *arg, int event, const struct sim_request_info *info)
{
    (void)arg;
    (void)event;
    (void)info;
}

static void handle_generate(struct http_request *r, struct sim_replica *rep, bool is_chat)
{
    if (rep->is_idle) {
        reply_error(r, 503, "no capacity assigned to this replica");
        return;
    }
    if (rep->error_ratio > 0 && sim__rng_unit(&rep->rng) < rep->error_ratio) {
        /* the engine fails the request: counted as aborted in its own metrics
           (SGLang num_aborted_requests_total, vLLM finished_reason="abort"), as a
           real engine's internal error is */
        struct sim_request_params p = {0};
        struct hs_err err = {0};
        uint64_t id;
        int64_t now = fleet_now_us(rep->f);
        if (sim_engine_submit(rep->engine, &p, now, ignore_engine_event, NULL, &id, &err) == HS_OK)
            sim_engine_abort(rep->engine, id, now);
        reply_error(r, 500, "simulated upstream failure");
        return;
    }
    size_t len;
    const char *text = http_request_body(r, &len);
    json_error_t jerr;
    json_t *body = json_loadb(text, len, 0, &jerr);
    if (!body || !json_is_object(body)) {
        char msg[300];
        if (body)
            snprintf(msg, sizeof(msg), "request body: expected a JSON object");
        else
            snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        json_decref(body);
        reply_error(r, 400, msg);
        return;
    }
    struct sim_call *c = hs_calloc(1, sizeof(*c));
    if (!c) {
        json_decref(body);
        reply_error(r, 500, "out of memory");
        return;
    }
    c->rep = rep;
    c->req = r;
    c->is_chat = is_chat;
    hs_buf_init(&c->text, 1u << 24);
    struct sim_request_params p;
    int prc = parse_generate(r, rep, body, c, &p);
    json_decref(body);
    if (prc != 0) {
        call_free(c);
        return;
    }
    pick_quality(rep, c, &p);
    c->seed = sim__rng_next(&rep->rng);
    c->created = hs_now_ms() / 1000;
    snprintf(c->rid, sizeof(c->rid), "%s-%016llx", is_chat ? "chatcmpl" : "cmpl",
             (unsigned long long)c->seed);
    struct hs_err err;
    int64_t now = fleet_now_us(rep->f);
    sim_engine_run_until(rep->engine, now);
    if (sim_engine_submit(rep->engine, &p, now, on_engine_event, c, &c->id, &err) != HS_OK) {
        call_free(c);
        reply_error(r, err.code == HS_EINVAL ? 400 : 503, err.msg);
        return;
    }
    c->next = rep->calls;
    if (rep->calls)
        rep->calls->prev = c;
    rep->calls = c;
    http_stream_on_close(r, on_client_close, c);
    if (c->is_stream) {
        if (http_stream_start(r, 200, "text/event-stream") != HS_OK) {
            c->is_client_gone = true;
            sim_engine_abort(rep->engine, c->id, now);
        } else if (is_chat) {
            send_role_chunk(c);
        }
    }
    kick(rep);
}

static void on_chat(struct http_request *r, void *arg)
{
    handle_generate(r, arg, true);
}

static void on_completions(struct http_request *r, void *arg)
{
    handle_generate(r, arg, false);
}

static void on_models(struct http_request *r, void *arg)
{
    struct sim_replica *rep = arg;
    const struct sim_engine_config *e = &rep->f->engines[rep->eng];
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    if (!rc)
        rc = hs_buf_json_str(&b, e->model, strlen(e->model));
    if (!rc)
        rc = hs_buf_printf(&b,
                           ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"%s\","
                           "\"root\":",
                           (long long)rep->f->created_s, e->kind == SIM_SGLANG ? "sglang" : "vllm");
    if (!rc)
        rc = hs_buf_json_str(&b, e->model, strlen(e->model));
    if (!rc)
        rc = hs_buf_printf(&b, ",\"max_model_len\":%d}]}", e->max_model_len);
    if (rc) {
        hs_buf_cleanup(&b);
        http_respond_error(r, 500, "out of memory");
        return;
    }
    respond_buf(r, 200, &b);
}

static void on_health(struct http_request *r, void *arg)
{
    http_respond(r, 200, NULL, NULL, 0);
}

static void on_metrics(struct http_request *r, void *arg)
{
    struct sim_replica *rep = arg;
    kick(rep);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = sim_engine_metrics(rep->engine, &b);
    if (!rc && rep->f->engines[rep->eng].kind == SIM_VLLM) {
        rc = hs_buf_puts(&b, "# HELP http_requests_total Total number of requests by method, "
                             "status and handler.\n# TYPE http_requests_total counter\n");
        static const char *cls[] = {"2xx", "4xx", "5xx"};
        for (size_t h = 0; !rc && h < N_COUNTED; h++)
            for (int k = 0; !rc && k < 3; k++)
                if (rep->http_count[h][k] > 0)
                    rc = hs_buf_printf(&b,
                                       "http_requests_total{handler=\"%s\",method=\"%s\","
                                       "status=\"%s\"} %.1f\n",
                                       counted_handlers[h], h < 2 ? "POST" : "GET", cls[k],
                                       (double)rep->http_count[h][k]);
    }
    if (rc) {
        hs_buf_cleanup(&b);
        http_respond_error(r, 500, "out of memory");
        return;
    }
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    hs_buf_cleanup(&b);
}

static void observe(void *arg, const char *handler, const char *method, int status,
                    double duration_s, uint64_t request_bytes, uint64_t response_bytes)
{
    struct sim_replica *rep = arg;
    int k = status >= 500 ? 2 : status >= 400 ? 1 : status >= 200 && status < 300 ? 0 : -1;
    if (k < 0)
        return;
    for (size_t h = 0; h < N_COUNTED; h++)
        if (strcmp(handler, counted_handlers[h]) == 0)
            rep->http_count[h][k]++;
}

/* ---- faults ---- */

static double default_magnitude(int kind)
{
    static const double d[SIM_FAULT_KINDS] = {1.8, 0.75, 0.5, 0.6, 1.0, 1.0, 1.0};
    return d[kind];
}

static int fault_add(struct sim_fleet *f, const struct sim_fault *in, int64_t start_ms,
                     struct hs_err *err)
{
    int kind = sim__fault_kind(in->kind);
    if (kind < 0)
        return hs_err_set(err, HS_EINVAL,
                          "unknown fault kind \"%s\" (throttle, kv_shrink, errors, truncation, "
                          "quality, replica_down, idle_gpu)",
                          in->kind ? in->kind : "");
    int eng, rep;
    if (sim__fault_target(&f->cfg, in->target, &eng, &rep) != HS_OK)
        return hs_err_set(err, HS_EINVAL, "unknown fault target \"%s\" (ENGINE or ENGINE/REPLICA)",
                          in->target ? in->target : "");
    if (!(in->magnitude >= 0) || in->magnitude > 1000 || in->duration_ms < 0 || start_ms < 0)
        return hs_err_set(err, HS_EINVAL, "fault magnitude or duration out of range");
    pthread_mutex_lock(&f->lock);
    if (f->n_faults >= SIM_MAX_ACTIVE_FAULTS) {
        pthread_mutex_unlock(&f->lock);
        return hs_err_set(err, HS_ETOOBIG, "more than %d faults", SIM_MAX_ACTIVE_FAULTS);
    }
    struct sim_afault *a = &f->faults[f->n_faults++];
    a->kind = kind;
    a->eng = eng;
    a->rep = rep;
    a->magnitude = in->magnitude > 0 ? in->magnitude : default_magnitude(kind);
    if (kind == SIM_FAULT_KV_SHRINK && a->magnitude > 0.99)
        a->magnitude = 0.99;
    if ((kind == SIM_FAULT_ERRORS || kind == SIM_FAULT_TRUNCATION || kind == SIM_FAULT_QUALITY) &&
        a->magnitude > 1)
        a->magnitude = 1;
    if (kind == SIM_FAULT_THROTTLE && a->magnitude < 1)
        a->magnitude = 1;
    a->start_ms = start_ms;
    a->end_ms = in->duration_ms > 0 ? start_ms + in->duration_ms : -1;
    snprintf(a->target, sizeof(a->target), "%s", in->target);
    pthread_mutex_unlock(&f->lock);
    return HS_OK;
}

static int start_replica_http(struct sim_replica *rep, struct hs_err *err);

static void replica_set_down(struct sim_replica *rep)
{
    /* the HTTP requests go with the server; the engine requests are aborted */
    for (struct sim_call *c = rep->calls; c; c = c->next)
        c->req = NULL;
    http_server_free(rep->http);
    rep->http = NULL;
    int64_t now = fleet_now_us(rep->f);
    struct sim_call *c = rep->calls;
    while (c) {
        struct sim_call *next = c->next;
        sim_engine_abort(rep->engine, c->id, now);
        c = next;
    }
    kick(rep);
    hs_log(HS_LOG_INFO, "sim replica down", HS_LSTR("engine", rep->f->engines[rep->eng].name),
           HS_LINT("replica", rep->idx), HS_LINT("port", rep->port));
}

/* Derives every replica's fault state from the active faults.  Loop thread. */
static void apply_faults(struct sim_fleet *f)
{
    int64_t now_ms = fleet_now_us(f) / 1000;
    for (size_t i = 0; i < f->n_reps; i++) {
        struct sim_replica *rep = &f->reps[i];
        struct sim_engine_faults ef = {1.0, 1.0, 0.0};
        bool down = false, idle = false, throttled = false;
        double errors = 0, quality = 0;
        pthread_mutex_lock(&f->lock);
        for (size_t k = 0; k < f->n_faults; k++) {
            const struct sim_afault *a = &f->faults[k];
            if (a->eng != rep->eng || (a->rep >= 0 && a->rep != rep->idx))
                continue;
            if (now_ms < a->start_ms || (a->end_ms >= 0 && now_ms >= a->end_ms))
                continue;
            switch (a->kind) {
            case SIM_FAULT_THROTTLE:
                ef.step_time_factor = HS_MAX(ef.step_time_factor, a->magnitude);
                throttled = true;
                break;
            case SIM_FAULT_KV_SHRINK:
                ef.kv_fraction = HS_MIN(ef.kv_fraction, 1.0 - a->magnitude);
                break;
            case SIM_FAULT_ERRORS:
                errors = HS_MAX(errors, a->magnitude);
                break;
            case SIM_FAULT_TRUNCATION:
                ef.truncation_ratio = HS_MAX(ef.truncation_ratio, a->magnitude);
                break;
            case SIM_FAULT_QUALITY:
                quality = HS_MAX(quality, a->magnitude);
                break;
            case SIM_FAULT_REPLICA_DOWN:
                down = true;
                break;
            default:
                idle = true;
                break;
            }
        }
        pthread_mutex_unlock(&f->lock);
        sim_engine_set_faults(rep->engine, &ef);
        rep->error_ratio = errors;
        rep->quality_ratio = quality;
        rep->is_idle = idle;
        rep->is_throttled = throttled;
        if (down && rep->http)
            replica_set_down(rep);
        rep->is_down = down;
        if (!down && !rep->http) {
            struct hs_err err;
            if (start_replica_http(rep, &err) != HS_OK)
                hs_log(HS_LOG_WARN, "sim replica restart failed", HS_LSTR("error", err.msg));
            else
                hs_log(HS_LOG_INFO, "sim replica up", HS_LINT("port", rep->port));
        }
        kick(rep);
    }
    /* forget faults that have ended */
    pthread_mutex_lock(&f->lock);
    size_t w = 0;
    for (size_t k = 0; k < f->n_faults; k++)
        if (f->faults[k].end_ms < 0 || now_ms < f->faults[k].end_ms)
            f->faults[w++] = f->faults[k];
    f->n_faults = w;
    pthread_mutex_unlock(&f->lock);
}

static int faults_json(struct sim_fleet *f, const struct sim_replica *only, struct hs_buf *b)
{
    int64_t now_ms = fleet_now_us(f) / 1000;
    static const char *names[] = {"throttle", "kv_shrink",    "errors",  "truncation",
                                  "quality",  "replica_down", "idle_gpu"};
    int rc = hs_buf_puts(b, "{\"faults\":[");
    pthread_mutex_lock(&f->lock);
    bool first = true;
    for (size_t k = 0; !rc && k < f->n_faults; k++) {
        const struct sim_afault *a = &f->faults[k];
        if (only && (a->eng != only->eng || (a->rep >= 0 && a->rep != only->idx)))
            continue;
        rc = hs_buf_printf(b, "%s{\"kind\":\"%s\",\"target\":", first ? "" : ",", names[a->kind]);
        if (!rc)
            rc = hs_buf_json_str(b, a->target, strlen(a->target));
        if (!rc)
            rc = hs_buf_printf(b, ",\"magnitude\":%g,\"active\":%s,\"remaining_s\":", a->magnitude,
                               now_ms >= a->start_ms ? "true" : "false");
        if (!rc)
            rc = a->end_ms < 0 ? hs_buf_puts(b, "null}")
                               : hs_buf_printf(b, "%.3f}", (double)(a->end_ms - now_ms) / 1000.0);
        first = false;
    }
    pthread_mutex_unlock(&f->lock);
    if (!rc)
        rc = hs_buf_puts(b, "]}");
    return rc;
}

static void on_apply_later(evutil_socket_t fd, short what, void *arg)
{
    apply_faults(arg);
}

/* Applies faults from the loop, outside any server callback (a replica going
 * down frees its server, which must not happen inside its own handler). */
static void apply_faults_soon(struct sim_fleet *f)
{
    struct timeval zero = {0, 0};
    if (event_base_once(f->base, -1, EV_TIMEOUT, on_apply_later, f, &zero) != 0)
        hs_log(HS_LOG_WARN, "sim: cannot schedule fault application; the next tick applies it");
}

static void on_faults(struct http_request *r, void *arg)
{
    struct sim_replica *rep = arg;
    struct sim_fleet *f = rep->f;
    const char *method = http_request_method(r);
    char target[256];
    snprintf(target, sizeof(target), "%s/%d", f->engines[rep->eng].name, rep->idx);
    if (strcmp(method, "DELETE") == 0) {
        /* ?target=ENGINE or ENGINE/REPLICA, or all; default this replica */
        const char *t = http_request_param(r, "target");
        int e, k;
        if (t && strcmp(t, "all") != 0 && sim__fault_target(&f->cfg, t, &e, &k) != HS_OK) {
            reply_error(r, 400, "target: expected ENGINE, ENGINE/REPLICA or all");
            return;
        }
        sim_fleet_clear_faults(f, t ? (strcmp(t, "all") == 0 ? NULL : t) : target);
        apply_faults_soon(f);
    } else if (strcmp(method, "POST") == 0) {
        size_t len;
        const char *text = http_request_body(r, &len);
        json_error_t jerr;
        json_t *body = json_loadb(text, len, 0, &jerr);
        json_t *kind = json_object_get(body, "kind"), *mag = json_object_get(body, "magnitude");
        json_t *dur = json_object_get(body, "duration_s"), *tgt = json_object_get(body, "target");
        json_t *start = json_object_get(body, "start_s");
        if (!json_is_object(body) || !json_is_string(kind) || (mag && !json_is_number(mag)) ||
            (dur && !json_is_number(dur)) || (start && !json_is_number(start)) ||
            (tgt && !json_is_string(tgt))) {
            json_decref(body);
            reply_error(r, 400,
                        "expected {\"kind\": string, \"magnitude\": number, "
                        "\"duration_s\": number, \"target\"?: string, \"start_s\"?: number}");
            return;
        }
        double d = dur ? json_number_value(dur) : 0, s = start ? json_number_value(start) : 0;
        if (!(d >= 0 && d < 1e7) || !(s >= 0 && s < 1e7)) {
            json_decref(body);
            reply_error(r, 400, "duration_s and start_s must be >= 0");
            return;
        }
        struct sim_fault fault = {json_string_value(kind), tgt ? json_string_value(tgt) : target,
                                  mag ? json_number_value(mag) : 0, 0, (int64_t)(d * 1000.0)};
        struct hs_err err;
        int rc = fault_add(f, &fault, fleet_now_us(f) / 1000 + (int64_t)(s * 1000.0), &err);
        json_decref(body);
        if (rc != HS_OK) {
            reply_error(r, 400, err.msg);
            return;
        }
        apply_faults_soon(f);
    }
    struct hs_buf b;
    hs_buf_init(&b, 0);
    if (faults_json(f, rep, &b) != HS_OK) {
        hs_buf_cleanup(&b);
        http_respond_error(r, 500, "out of memory");
        return;
    }
    respond_buf(r, 200, &b);
}

/* ---- nodes ---- */

static void on_node_metrics(struct http_request *r, void *arg)
{
    struct sim_node *n = arg;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    if (sim__gpu_metrics((const struct sim_gpu *const *)n->gpus, n->n_gpus, n->host, &b) != HS_OK) {
        hs_buf_cleanup(&b);
        http_respond_error(r, 500, "out of memory");
        return;
    }
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    hs_buf_cleanup(&b);
}

static void update_gpus(struct sim_fleet *f, double dt_s)
{
    for (size_t i = 0; i < f->n_reps; i++) {
        struct sim_replica *rep = &f->reps[i];
        const struct sim_engine_config *e = &f->engines[rep->eng];
        struct sim_engine_stats st;
        sim_engine_get_stats(rep->engine, &st);
        double busy = dt_s > 0 ? (double)(st.busy_us - rep->last_busy_us) * 1e-6 / dt_s : 0;
        rep->last_busy_us = st.busy_us;
        double kv_share = e->kv_blocks > 0 ? (double)st.kv_blocks_used / e->kv_blocks : 0;
        struct sim_gpu_load load = {
            .busy = busy,
            .fb_used_mib =
                (e->weights_gib + e->kv_cache_gib * kv_share) * 1024.0 / rep->n_gpus + 700.0,
            .power_idle_w = e->gpu_power_idle_w,
            .power_max_w = e->gpu_power_max_w,
            .is_throttled = rep->is_throttled,
            .is_idle_fault = rep->is_idle,
        };
        for (int g = 0; g < rep->n_gpus; g++)
            sim__gpu_update(rep->gpus[g], dt_s, &load);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sim_fleet *f = arg;
    if (atomic_load(&f->stop)) {
        event_base_loopbreak(f->base);
        return;
    }
    int64_t now = fleet_now_us(f);
    apply_faults(f);
    update_gpus(f, (double)(now - f->last_tick_us) * 1e-6);
    f->last_tick_us = now;
}

/* ---- start and stop ---- */

static struct http_server *new_server(struct sim_fleet *f, int port, struct hs_err *err)
{
    struct http_server_config hc;
    http_server_config_defaults(&hc);
    char listen[300];
    snprintf(listen, sizeof(listen), "%s:%d", f->cfg.host, port);
    hc.listen = listen;
    hc.max_body_bytes = SIM_MAX_BODY_BYTES;
    hc.idle_timeout_ms = 60000;
    struct http_server *s = http_server_new(f->base, &hc, err);
    if (s)
        http_server_set_error_formatter(s, format_error, NULL);
    return s;
}

static int start_replica_http(struct sim_replica *rep, struct hs_err *err)
{
    struct http_server *s = new_server(rep->f, rep->port, err);
    if (!s)
        return err ? err->code : HS_EIO;
    int rc =
        http_server_route(s, "POST", "/v1/chat/completions", "/v1/chat/completions", on_chat, rep);
    if (!rc)
        rc =
            http_server_route(s, "POST", "/v1/completions", "/v1/completions", on_completions, rep);
    if (!rc)
        rc = http_server_route(s, "GET", "/v1/models", "/v1/models", on_models, rep);
    if (!rc)
        rc = http_server_route(s, "GET", "/health", "/health", on_health, rep);
    if (!rc)
        rc = http_server_route(s, "GET", "/metrics", "/metrics", on_metrics, rep);
    if (!rc)
        rc = http_server_route(s, NULL, "/sim/faults", "/sim/faults", on_faults, rep);
    if (!rc)
        rc = http_server_start(s, err);
    else
        hs_err_set(err, rc, "out of memory");
    if (rc) {
        http_server_free(s);
        return rc;
    }
    http_server_set_observer(s, observe, rep);
    rep->port = http_server_port(s);
    if (!rep->url[0]) /* a restart keeps the port: other threads may read the URL */
        snprintf(rep->url, sizeof(rep->url), "http://%s:%d", rep->f->cfg.host, rep->port);
    rep->http = s;
    return HS_OK;
}

static int start_node_http(struct sim_node *n, struct hs_err *err)
{
    struct http_server *s = new_server(n->f, n->port, err);
    if (!s)
        return err ? err->code : HS_EIO;
    int rc = http_server_route(s, "GET", "/metrics", "/metrics", on_node_metrics, n);
    if (!rc)
        rc = http_server_start(s, err);
    else
        hs_err_set(err, rc, "out of memory");
    if (rc) {
        http_server_free(s);
        return rc;
    }
    n->port = http_server_port(s);
    snprintf(n->url, sizeof(n->url), "http://%s:%d", n->f->cfg.host, n->port);
    n->http = s;
    return HS_OK;
}

static const char *keep(struct sim_fleet *f, const char *s)
{
    return s ? hs_arena_strndup(&f->strings, s, strlen(s)) : NULL;
}

static int copy_config(struct sim_fleet *f, const struct sim_config *c, struct hs_err *err)
{
    f->cfg = *c;
    f->cfg.owned = NULL;
    f->cfg.faults = NULL;
    f->cfg.n_faults = 0;
    f->engines = hs_calloc(c->n_engines, sizeof(*f->engines));
    if (!f->engines)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    f->cfg.engines = f->engines;
    f->cfg.host = keep(f, c->host);
    bool ok = f->cfg.host != NULL;
    for (size_t i = 0; i < c->n_engines; i++) {
        f->engines[i] = c->engines[i];
        f->engines[i].name = keep(f, c->engines[i].name);
        f->engines[i].model = keep(f, c->engines[i].model);
        f->engines[i].gpu_model = keep(f, c->engines[i].gpu_model);
        ok = ok && f->engines[i].name && f->engines[i].model && f->engines[i].gpu_model;
    }
    return ok ? HS_OK : hs_err_set(err, HS_ENOMEM, "out of memory");
}

/* Builds replicas, GPUs and nodes (no sockets yet). */
static int build(struct sim_fleet *f, struct hs_err *err)
{
    size_t n_reps = 0, n_gpus = 0, n_nodes = 0;
    int per_node = f->cfg.gpus_per_node;
    for (size_t i = 0; i < f->cfg.n_engines; i++) {
        size_t g = (size_t)f->engines[i].replicas * (size_t)f->engines[i].gpus_per_replica;
        n_reps += (size_t)f->engines[i].replicas;
        n_gpus += g;
        n_nodes += (g + (size_t)per_node - 1) / (size_t)per_node;
    }
    f->reps = hs_calloc(n_reps, sizeof(*f->reps));
    f->gpus = hs_calloc(n_gpus, sizeof(*f->gpus));
    f->nodes = hs_calloc(n_nodes, sizeof(*f->nodes));
    struct sim_gpu **gp = hs_calloc(n_gpus * 2, sizeof(*gp)); /* replica view, node view */
    f->gpu_ptrs = gp;
    if (!f->reps || !f->gpus || !f->nodes || !gp)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    size_t r = 0, g = 0, nd = 0, port = (size_t)f->cfg.base_port;
    for (size_t i = 0; i < f->cfg.n_engines; i++) {
        const struct sim_engine_config *e = &f->engines[i];
        size_t first_gpu = g;
        for (int k = 0; k < e->replicas; k++, r++) {
            struct sim_replica *rep = &f->reps[r];
            f->n_reps = r + 1; /* sim_fleet_stop frees what was built */
            rep->f = f;
            rep->eng = (int)i;
            rep->idx = k;
            rep->port = port ? (int)port++ : 0;
            uint64_t seed = f->cfg.seed * 1000003u + r * 7919u + 1;
            sim__rng_seed(&rep->rng, seed ^ 0x5bd1e995u);
            rep->engine = sim_engine_new(e, seed, f->cfg.speed, err);
            if (!rep->engine)
                return err ? err->code : HS_EINVAL;
            rep->timer = evtimer_new(f->base, on_step_timer, rep);
            if (!rep->timer)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            rep->gpus = &gp[g];
            rep->n_gpus = e->gpus_per_replica;
            for (int j = 0; j < e->gpus_per_replica; j++, g++) {
                gp[g] = &f->gpus[g];
                sim__gpu_init(&f->gpus[g], (int)((g - first_gpu) % (size_t)per_node),
                              f->cfg.seed * 31u + g, e->gpu_model, e->gpu_memory_gib);
                snprintf(f->gpus[g].pod, sizeof(f->gpus[g].pod), "%s-%d", e->name, k);
                f->gpus[g].container = e->kind == SIM_SGLANG ? "sglang" : "vllm";
            }
        }
        for (size_t j = first_gpu; j < g; j += (size_t)per_node, nd++) {
            struct sim_node *n = &f->nodes[nd];
            n->f = f;
            n->eng = (int)i;
            n->idx = (int)((j - first_gpu) / (size_t)per_node);
            snprintf(n->host, sizeof(n->host), "sim-%s-node-%d", e->name, n->idx);
            n->gpus = &gp[n_gpus + j];
            n->n_gpus = HS_MIN((size_t)per_node, g - j);
            for (size_t x = 0; x < n->n_gpus; x++)
                n->gpus[x] = &f->gpus[j + x];
        }
    }
    f->n_reps = r;
    f->n_gpus = g;
    f->n_nodes = nd;
    for (size_t i = 0; i < f->n_nodes; i++)
        f->nodes[i].port = port ? (int)port++ : 0;
    return HS_OK;
}

static void *fleet_main(void *arg)
{
    struct sim_fleet *f = arg;
    event_base_dispatch(f->base);
    return NULL;
}

struct sim_fleet *sim_fleet_start(const struct sim_config *c, struct hs_err *err)
{
    if (sim_config_validate(c, err) != HS_OK)
        return NULL;
    struct sim_fleet *f = hs_calloc(1, sizeof(*f));
    if (!f) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    hs_arena_init(&f->strings, 4096, 0);
    pthread_mutex_init(&f->lock, NULL);
    atomic_init(&f->stop, false);
    f->t0_ns = hs_mono_ns();
    f->created_s = hs_now_ms() / 1000;
    int rc = copy_config(f, c, err);
    if (!rc) {
        f->base = event_base_new();
        if (!f->base)
            rc = hs_err_set(err, HS_ENOMEM, "cannot create an event base");
    }
    if (!rc)
        rc = build(f, err);
    for (size_t i = 0; !rc && i < f->n_reps; i++)
        rc = start_replica_http(&f->reps[i], err);
    for (size_t i = 0; !rc && i < f->n_nodes; i++)
        rc = start_node_http(&f->nodes[i], err);
    for (size_t i = 0; !rc && i < c->n_faults; i++)
        rc = fault_add(f, &c->faults[i], c->faults[i].start_ms, err);
    if (!rc) {
        f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, f);
        struct timeval tv = {0, SIM_TICK_MS * 1000};
        if (!f->tick || event_add(f->tick, &tv) != 0)
            rc = hs_err_set(err, HS_ENOMEM, "cannot add the fleet timer");
    }
    if (!rc) {
        apply_faults(f);
        if (pthread_create(&f->thread, NULL, fleet_main, f) != 0)
            rc = hs_err_set(err, HS_EIO, "cannot start the fleet thread");
        else
            f->is_thread_started = true;
    }
    if (rc) {
        sim_fleet_stop(f);
        return NULL;
    }
    return f;
}

size_t sim_fleet_endpoint_count(const struct sim_fleet *f)
{
    return f->n_reps + f->n_nodes;
}

int sim_fleet_endpoint(const struct sim_fleet *f, size_t i, struct sim_endpoint *out)
{
    memset(out, 0, sizeof(*out));
    out->metrics_path = "/metrics";
    if (i < f->n_reps) {
        const struct sim_replica *rep = &f->reps[i];
        const struct sim_engine_config *e = &f->engines[rep->eng];
        out->kind = SIM_ENDPOINT_REPLICA;
        out->engine = e->name;
        out->model = e->model;
        out->backend = e->kind == SIM_SGLANG ? "sglang" : "vllm";
        out->replica = rep->idx;
        out->base_url = rep->url;
        out->port = rep->port;
        return HS_OK;
    }
    i -= f->n_reps;
    if (i >= f->n_nodes)
        return HS_ENOTFOUND;
    const struct sim_node *n = &f->nodes[i];
    out->kind = SIM_ENDPOINT_NODE;
    out->engine = f->engines[n->eng].name;
    out->model = f->engines[n->eng].model;
    out->backend = "dcgm";
    out->replica = n->idx;
    out->base_url = n->url;
    out->port = n->port;
    return HS_OK;
}

int sim_fleet_inject(struct sim_fleet *f, const struct sim_fault *fault, struct hs_err *err)
{
    if (fault->start_ms < 0)
        return hs_err_set(err, HS_EINVAL, "fault start must be >= 0");
    return fault_add(f, fault, fleet_now_us(f) / 1000 + fault->start_ms, err);
}

void sim_fleet_clear_faults(struct sim_fleet *f, const char *target)
{
    int eng = -1, rep = -1;
    if (target && sim__fault_target(&f->cfg, target, &eng, &rep) != HS_OK)
        return;
    pthread_mutex_lock(&f->lock);
    size_t w = 0;
    for (size_t k = 0; k < f->n_faults; k++) {
        const struct sim_afault *a = &f->faults[k];
        /* an engine target clears all its faults; a replica target its own
         * and the engine-wide ones that reach it are kept */
        bool hit = !target || (a->eng == eng && (rep < 0 || a->rep == rep));
        if (!hit)
            f->faults[w++] = f->faults[k];
    }
    f->n_faults = w;
    pthread_mutex_unlock(&f->lock);
}

void sim_fleet_stop(struct sim_fleet *f)
{
    if (!f)
        return;
    if (f->is_thread_started) {
        atomic_store(&f->stop, true);
        pthread_join(f->thread, NULL);
    }
    for (size_t i = 0; i < f->n_reps; i++) {
        struct sim_replica *rep = &f->reps[i];
        for (struct sim_call *c = rep->calls; c; c = c->next)
            c->req = NULL;
        http_server_free(rep->http);
        struct sim_call *c = rep->calls;
        while (c) {
            struct sim_call *next = c->next;
            call_free(c);
            c = next;
        }
        if (rep->timer)
            event_free(rep->timer);
        sim_engine_free(rep->engine);
    }
    for (size_t i = 0; i < f->n_nodes; i++)
        http_server_free(f->nodes[i].http);
    if (f->tick)
        event_free(f->tick);
    hs_free(f->gpu_ptrs);
    hs_free(f->reps);
    hs_free(f->nodes);
    hs_free(f->gpus);
    hs_free(f->engines);
    if (f->base)
        event_base_free(f->base);
    hs_arena_cleanup(&f->strings);
    pthread_mutex_destroy(&f->lock);
    hs_free(f);
}
