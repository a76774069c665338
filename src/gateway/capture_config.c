/*
 * capture_config.c - the `capture:` section of the configuration and the
 * deterministic sampling decision (spec/gateway.md §8.4).
 *
 * Every key is checked here, user regexes included (they are compiled once
 * to report a bad one with its file position), so a configuration that
 * passes `holoscope check config` cannot fail later in capture_writer_new.
 */
#include "gateway/capture.h"

#include <string.h>

#define SAMPLE_SEED 0x63617074757265ull /* "capture": never change, sampling must be stable */

void capture_config_defaults(struct capture_config *c)
{
    memset(c, 0, sizeof(*c));
    c->dir = NULL;
    c->sampling_percentage = 0;
    c->sample_by_id = true;
    c->extensions = true;
    c->mode = CAPTURE_MODE_INPUT_AND_OUTPUT;
    c->stream_output = CAPTURE_STREAM_ASSEMBLED;
    c->max_body_bytes = 1u << 20;
    c->max_file_bytes = 64u << 20;
    c->max_file_age_ms = 10 * 60 * 1000;
    c->max_disk_bytes = 1ull << 30;
    c->queue_size = 1024;
    c->queue_max_bytes = 64u << 20;
    c->redact = true;
    c->score_quality = true;
    redact_config_defaults(&c->redaction);
    hs_arena_init(&c->arena, 4096, 0);
}

void capture_config_free(struct capture_config *c)
{
    if (c == NULL)
        return;
    hs_arena_cleanup(&c->arena);
    c->dir = NULL;
    c->redaction.custom = NULL;
    c->redaction.ncustom = 0;
}

bool capture_should_sample(const char *request_id, double percentage)
{
    if (!(percentage > 0))
        return false;
    if (percentage >= 100)
        return true;
    if (request_id == NULL)
        return false;
    uint64_t h = hs_hash64(request_id, strlen(request_id), SAMPLE_SEED);
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
    return u * 100.0 < percentage;
}

/* ---- parsing ---------------------------------------------------------------------- */

struct cparse {
    const struct hs_ydoc *doc;
    struct capture_config *c;
    struct hs_err *err;
};

static int key_error(struct cparse *p, const struct hs_ynode *n, const char *key, const char *what)
{
    return hs_ynode_error(p->doc, n, HS_EINVAL, p->err, "capture.%s: %s", key, what);
}

static int parse_str(struct cparse *p, const struct hs_ynode *v, const char *key, const char **out)
{
    const char *s;
    char what[64];
    snprintf(what, sizeof(what), "capture.%s", key);
    int rc = hs_ynode_str(p->doc, v, what, &s, p->err);
    if (rc != HS_OK)
        return rc;
    *out = hs_arena_strndup(&p->c->arena, s, strlen(s));
    return *out != NULL ? HS_OK : hs_err_set(p->err, HS_ENOMEM, "out of memory");
}

static int parse_enum(struct cparse *p, const struct hs_ynode *v, const char *key,
                      const char *const *names, int n, int *out)
{
    const char *s;
    char what[64];
    snprintf(what, sizeof(what), "capture.%s", key);
    int rc = hs_ynode_str(p->doc, v, what, &s, p->err);
    if (rc != HS_OK)
        return rc;
    for (int i = 0; i < n; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = i;
            return HS_OK;
        }
    }
    return hs_ynode_error(p->doc, v, HS_EINVAL, p->err, "capture.%s: unknown value \"%s\"", key, s);
}

static int parse_always(struct cparse *p, const struct hs_ynode *v)
{
    static const char *const names[] = {"http_error", "error_midstream", "stream_truncated",
                                        "finish_length"};
    if (v->type != HS_Y_SEQ)
        return key_error(p, v, "always_capture", "expected a list");
    p->c->always_capture = 0;
    for (size_t i = 0; i < v->n; i++) {
        int bit = 0;
        int rc = parse_enum(p, v->items[i], "always_capture", names, 4, &bit);
        if (rc != HS_OK)
            return rc;
        p->c->always_capture |= 1u << bit;
    }
    return HS_OK;
}

static int parse_rules(struct cparse *p, const struct hs_ynode *v)
{
    if (v->type != HS_Y_SEQ)
        return key_error(p, v, "redaction.rules", "expected a list");
    if (v->n > REDACT_MAX_CUSTOM)
        return hs_ynode_error(p->doc, v, HS_EINVAL, p->err,
                              "capture.redaction.rules: at most %d rules", REDACT_MAX_CUSTOM);
    struct redact_rule *rules = hs_arena_calloc(&p->c->arena, (v->n + 1) * sizeof(*rules));
    if (rules == NULL)
        return hs_err_set(p->err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        const struct hs_ynode *r = v->items[i];
        if (r->type != HS_Y_MAP)
            return key_error(p, r, "redaction.rules", "each rule is a map {name, regex}");
        for (size_t k = 0; k < r->n; k++) {
            const struct hs_ynode *key = r->items[2 * k];
            const char *ks = key->scalar != NULL ? key->scalar : "";
            if (strcmp(ks, "name") != 0 && strcmp(ks, "regex") != 0)
                return hs_ynode_error(p->doc, key, HS_EINVAL, p->err,
                                      "capture.redaction.rules: unknown key \"%s\"", ks);
        }
        const struct hs_ynode *name = hs_ynode_get(r, "name"), *re = hs_ynode_get(r, "regex");
        if (name == NULL || re == NULL)
            return key_error(p, r, "redaction.rules", "a rule needs name and regex");
        int rc = parse_str(p, name, "redaction.rules.name", &rules[i].name);
        if (rc == HS_OK)
            rc = parse_str(p, re, "redaction.rules.regex", &rules[i].pattern);
        if (rc != HS_OK)
            return rc;
        /* Compile it now so a bad regex is reported with its position. */
        struct redact_config one;
        redact_config_defaults(&one);
        for (int b = 0; b < REDACT_NBUILTIN; b++)
            one.is_disabled[b] = true;
        one.custom = &rules[i];
        one.ncustom = 1;
        struct hs_err e2 = {0};
        struct redactor *test = redactor_new(&one, &e2);
        if (test == NULL)
            return hs_ynode_error(p->doc, re, e2.code != 0 ? e2.code : HS_EINVAL, p->err,
                                  "capture.redaction.rules[%zu]: %s", i, e2.msg);
        redactor_free(test);
    }
    p->c->redaction.custom = rules;
    p->c->redaction.ncustom = v->n;
    return HS_OK;
}

static int parse_redaction(struct cparse *p, const struct hs_ynode *v)
{
    if (v->type != HS_Y_MAP)
        return key_error(p, v, "redaction", "expected a map");
    for (size_t i = 0; i < v->n; i++) {
        const struct hs_ynode *k = v->items[2 * i], *val = v->items[2 * i + 1];
        const char *ks = k->scalar != NULL ? k->scalar : "";
        int rc;
        if (strcmp(ks, "enabled") == 0) {
            rc = hs_ynode_bool(p->doc, val, "capture.redaction.enabled", &p->c->redact, p->err);
        } else if (strcmp(ks, "disable") == 0) {
            if (val->type != HS_Y_SEQ)
                return key_error(p, val, "redaction.disable", "expected a list of detector names");
            rc = HS_OK;
            for (size_t j = 0; j < val->n && rc == HS_OK; j++) {
                const char *s;
                rc = hs_ynode_str(p->doc, val->items[j], "capture.redaction.disable", &s, p->err);
                if (rc != HS_OK)
                    break;
                int t = redact_builtin_parse(s);
                if (t < 0)
                    return hs_ynode_error(p->doc, val->items[j], HS_EINVAL, p->err,
                                          "capture.redaction.disable: unknown detector \"%s\" "
                                          "(email, phone, credit_card, iban, us_ssn, ipv4, ipv6, "
                                          "secret)",
                                          s);
                p->c->redaction.is_disabled[t] = true;
            }
        } else if (strcmp(ks, "rules") == 0) {
            rc = parse_rules(p, val);
        } else {
            return hs_ynode_error(p->doc, k, HS_EINVAL, p->err,
                                  "capture.redaction: unknown key \"%s\"", ks);
        }
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

static int parse_size(struct cparse *p, const struct hs_ynode *v, const char *key, uint64_t *out,
                      bool zero_ok)
{
    char what[64];
    snprintf(what, sizeof(what), "capture.%s", key);
    int rc = hs_ynode_bytes(p->doc, v, what, out, p->err);
    if (rc == HS_OK && *out == 0 && !zero_ok)
        return key_error(p, v, key, "must be greater than 0");
    return rc;
}

static int parse_key(struct cparse *p, const char *ks, const struct hs_ynode *k,
                     const struct hs_ynode *v)
{
    static const char *const modes[] = {"InputAndOutput", "Input", "Output"};
    static const char *const outputs[] = {"assembled", "raw"};
    struct capture_config *c = p->c;
    if (strcmp(ks, "dir") == 0)
        return parse_str(p, v, ks, &c->dir);
    if (strcmp(ks, "sampling_percentage") == 0) {
        int rc =
            hs_ynode_f64(p->doc, v, "capture.sampling_percentage", &c->sampling_percentage, p->err);
        if (rc == HS_OK && !(c->sampling_percentage >= 0 && c->sampling_percentage <= 100))
            return key_error(p, v, ks, "must be between 0 and 100");
        return rc;
    }
    if (strcmp(ks, "sample_by_id") == 0)
        return hs_ynode_bool(p->doc, v, "capture.sample_by_id", &c->sample_by_id, p->err);
    if (strcmp(ks, "score_quality") == 0)
        return hs_ynode_bool(p->doc, v, "capture.score_quality", &c->score_quality, p->err);
    if (strcmp(ks, "extensions") == 0)
        return hs_ynode_bool(p->doc, v, "capture.extensions", &c->extensions, p->err);
    if (strcmp(ks, "mode") == 0)
        return parse_enum(p, v, ks, modes, 3, &c->mode);
    if (strcmp(ks, "stream_output") == 0)
        return parse_enum(p, v, ks, outputs, 2, &c->stream_output);
    if (strcmp(ks, "always_capture") == 0)
        return parse_always(p, v);
    if (strcmp(ks, "max_body_bytes") == 0)
        return parse_size(p, v, ks, &c->max_body_bytes, false);
    if (strcmp(ks, "max_file_bytes") == 0)
        return parse_size(p, v, ks, &c->max_file_bytes, false);
    if (strcmp(ks, "max_disk_bytes") == 0)
        return parse_size(p, v, ks, &c->max_disk_bytes, true);
    if (strcmp(ks, "queue_max_bytes") == 0)
        return parse_size(p, v, ks, &c->queue_max_bytes, false);
    if (strcmp(ks, "max_file_age") == 0) {
        int rc = hs_ynode_duration(p->doc, v, "capture.max_file_age", &c->max_file_age_ms, p->err);
        if (rc == HS_OK && c->max_file_age_ms < 1000)
            return key_error(p, v, ks, "must be at least 1s");
        return rc;
    }
    if (strcmp(ks, "queue_size") == 0) {
        int64_t n;
        int rc = hs_ynode_i64(p->doc, v, "capture.queue_size", &n, p->err);
        if (rc == HS_OK && (n < 1 || n > 1000000))
            return key_error(p, v, ks, "must be between 1 and 1000000");
        c->queue_size = (size_t)n;
        return rc;
    }
    if (strcmp(ks, "redaction") == 0)
        return parse_redaction(p, v);
    return hs_ynode_error(p->doc, k, HS_EINVAL, p->err, "capture: unknown key \"%s\"", ks);
}

int capture_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *node,
                         struct capture_config *out, struct hs_err *err)
{
    struct cparse p = {doc, out, err};
    if (node == NULL || hs_ynode_is_null(node))
        return HS_OK;
    if (node->type != HS_Y_MAP)
        return hs_ynode_error(doc, node, HS_EINVAL, err, "capture: expected a map");
    for (size_t i = 0; i < node->n; i++) {
        const struct hs_ynode *k = node->items[2 * i], *v = node->items[2 * i + 1];
        int rc = parse_key(&p, k->scalar != NULL ? k->scalar : "", k, v);
        if (rc != HS_OK)
            return rc;
    }
    if (out->dir != NULL && out->dir[0] == '\0')
        out->dir = NULL;
    return HS_OK;
}
