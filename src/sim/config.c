/*
 * config.c - the simulator's configuration: defaults, the YAML reader for
 * `holoscope sim --config` (the `sim:` shape documented at sim_config_parse
 * in sim.h) and validation.  Parsed arrays live in one block owned by the
 * config ('owned'); strings point into the YAML document.
 */
#include "sim/internal.h"

#include <string.h>

#define SIM_MAX_ENGINES 64
#define SIM_MAX_FAULTS  256

struct owned {
    struct sim_engine_config *engines;
    struct sim_fault *faults;
};

void sim_config_defaults(struct sim_config *c)
{
    memset(c, 0, sizeof(*c));
    c->host = "127.0.0.1";
    c->seed = 1;
    c->speed = 1.0;
    c->gpus_per_node = 8;
}

void sim_config_free(struct sim_config *c)
{
    struct owned *o = c->owned;
    if (o) {
        hs_free(o->engines);
        hs_free(o->faults);
        hs_free(o);
    }
    sim_config_defaults(c);
}

static const char *const fault_kinds[] = {"throttle", "kv_shrink",    "errors",  "truncation",
                                          "quality",  "replica_down", "idle_gpu"};

int sim__fault_kind(const char *kind)
{
    for (size_t i = 0; kind && i < HS_ARRAY_LEN(fault_kinds); i++)
        if (strcmp(kind, fault_kinds[i]) == 0)
            return (int)i;
    return -1;
}

/* Plain printable text without quotes or backslashes: names end up in label
 * values, URLs and JSON. */
static bool clean_text(const char *s)
{
    if (!s || !*s || strlen(s) > 200)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
            return false;
    return true;
}

int sim__fault_target(const struct sim_config *c, const char *target, int *engine, int *replica)
{
    if (!target)
        return HS_EINVAL;
    const char *slash = strrchr(target, '/');
    size_t nlen = strlen(target);
    *replica = -1;
    for (int pass = 0; pass < 2; pass++) {
        /* first the whole string as an engine name, then "engine/replica" */
        size_t len = pass == 0 ? nlen : (slash ? (size_t)(slash - target) : 0);
        if (pass == 1 && !slash)
            break;
        for (size_t i = 0; i < c->n_engines; i++) {
            const char *n = c->engines[i].name;
            if (strlen(n) != len || memcmp(n, target, len) != 0)
                continue;
            *engine = (int)i;
            if (pass == 0)
                return HS_OK;
            int64_t r;
            if (hs_parse_i64(slash + 1, &r) != HS_OK || r < 0 || r >= c->engines[i].replicas)
                return HS_EINVAL;
            *replica = (int)r;
            return HS_OK;
        }
    }
    return HS_EINVAL;
}

int sim_config_validate(const struct sim_config *c, struct hs_err *err)
{
    if (c->n_engines == 0)
        return hs_err_set(err, HS_EINVAL, "sim: no engines configured");
    if (c->n_engines > SIM_MAX_ENGINES)
        return hs_err_set(err, HS_ETOOBIG, "sim: more than %d engines", SIM_MAX_ENGINES);
    if (c->n_faults > SIM_MAX_FAULTS)
        return hs_err_set(err, HS_ETOOBIG, "sim: more than %d faults", SIM_MAX_FAULTS);
    if (!clean_text(c->host))
        return hs_err_set(err, HS_EINVAL, "sim: bad host");
    if (c->base_port < 0 || c->base_port > 65535)
        return hs_err_set(err, HS_EINVAL, "sim: base_port must be 0..65535");
    if (!(c->speed > 0) || c->speed > 1000)
        return hs_err_set(err, HS_EINVAL, "sim: speed must be > 0 and <= 1000");
    if (c->gpus_per_node < 1 || c->gpus_per_node > 16)
        return hs_err_set(err, HS_EINVAL, "sim: gpus_per_node must be 1..16");
    size_t ports = 0;
    for (size_t i = 0; i < c->n_engines; i++) {
        const struct sim_engine_config *e = &c->engines[i];
        if (!clean_text(e->name) || strchr(e->name, '/') || strchr(e->name, ':'))
            return hs_err_set(err, HS_EINVAL,
                              "sim: engine %zu: name must be plain text without '/' or ':'", i);
        if (!clean_text(e->model) || !clean_text(e->gpu_model))
            return hs_err_set(err, HS_EINVAL, "sim: engine %s: bad model or gpu_model", e->name);
        if (e->kind != SIM_VLLM && e->kind != SIM_SGLANG)
            return hs_err_set(err, HS_EINVAL, "sim: engine %s: bad kind", e->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->engines[j].name, e->name) == 0)
                return hs_err_set(err, HS_EINVAL, "sim: engine name %s used twice", e->name);
        struct sim_engine *probe = sim_engine_new(e, 1, c->speed, err);
        if (!probe)
            return err ? err->code : HS_EINVAL;
        sim_engine_free(probe);
        ports += (size_t)e->replicas + 1;
    }
    if (c->base_port > 0 && (size_t)c->base_port + ports * 2 > 65535)
        return hs_err_set(err, HS_EINVAL, "sim: base_port leaves too few ports");
    for (size_t i = 0; i < c->n_faults; i++) {
        const struct sim_fault *f = &c->faults[i];
        int eng, rep;
        if (sim__fault_kind(f->kind) < 0)
            return hs_err_set(err, HS_EINVAL,
                              "sim: fault %zu: unknown kind \"%s\" (throttle, kv_shrink, errors, "
                              "truncation, quality, replica_down, idle_gpu)",
                              i, f->kind ? f->kind : "");
        if (sim__fault_target(c, f->target, &eng, &rep) != HS_OK)
            return hs_err_set(err, HS_EINVAL, "sim: fault %zu: unknown target \"%s\"", i,
                              f->target ? f->target : "");
        if (f->magnitude < 0 || f->magnitude > 1000 || f->start_ms < 0)
            return hs_err_set(err, HS_EINVAL, "sim: fault %zu: magnitude or start out of range", i);
    }
    return HS_OK;
}

/* ---- YAML ---- */

static int get_int(const struct hs_ydoc *d, const struct hs_ynode *v, const char *what, int *out,
                   struct hs_err *err)
{
    int64_t x;
    int rc = hs_ynode_i64(d, v, what, &x, err);
    if (rc)
        return rc;
    if (x < -1000000000 || x > 1000000000)
        return hs_ynode_error(d, v, HS_EINVAL, err, "%s: out of range", what);
    *out = (int)x;
    return HS_OK;
}

static int parse_kind(const struct hs_ydoc *d, const struct hs_ynode *v, enum sim_kind *out,
                      struct hs_err *err)
{
    const char *s;
    int rc = hs_ynode_str(d, v, "kind", &s, err);
    if (rc)
        return rc;
    if (strcmp(s, "vllm") == 0)
        *out = SIM_VLLM;
    else if (strcmp(s, "sglang") == 0)
        *out = SIM_SGLANG;
    else
        return hs_ynode_error(d, v, HS_EINVAL, err, "kind: expected vllm or sglang, got \"%s\"", s);
    return HS_OK;
}

static int parse_engine(const struct hs_ydoc *d, const struct hs_ynode *m,
                        struct sim_engine_config *e, struct hs_err *err)
{
    static const struct {
        const char *key;
        size_t off;
    } ints[] = {
        {"replicas", offsetof(struct sim_engine_config, replicas)},
        {"gpus_per_replica", offsetof(struct sim_engine_config, gpus_per_replica)},
        {"kv_blocks", offsetof(struct sim_engine_config, kv_blocks)},
        {"block_size", offsetof(struct sim_engine_config, block_size)},
        {"max_num_seqs", offsetof(struct sim_engine_config, max_num_seqs)},
        {"max_model_len", offsetof(struct sim_engine_config, max_model_len)},
        {"default_max_tokens", offsetof(struct sim_engine_config, default_max_tokens)},
    };
    static const struct {
        const char *key;
        size_t off;
    } dbls[] = {
        {"step_base_ms", offsetof(struct sim_engine_config, step_base_ms)},
        {"step_per_seq_ms", offsetof(struct sim_engine_config, step_per_seq_ms)},
        {"step_per_kv_ktok_ms", offsetof(struct sim_engine_config, step_per_kv_ktok_ms)},
        {"prefill_per_token_ms", offsetof(struct sim_engine_config, prefill_per_token_ms)},
        {"prompt_len_median", offsetof(struct sim_engine_config, prompt_len_median)},
        {"prompt_len_sigma", offsetof(struct sim_engine_config, prompt_len_sigma)},
        {"output_len_median", offsetof(struct sim_engine_config, output_len_median)},
        {"output_len_sigma", offsetof(struct sim_engine_config, output_len_sigma)},
        {"weights_gib", offsetof(struct sim_engine_config, weights_gib)},
        {"gpu_memory_gib", offsetof(struct sim_engine_config, gpu_memory_gib)},
        {"kv_cache_gib", offsetof(struct sim_engine_config, kv_cache_gib)},
        {"gpu_power_idle_w", offsetof(struct sim_engine_config, gpu_power_idle_w)},
        {"gpu_power_max_w", offsetof(struct sim_engine_config, gpu_power_max_w)},
    };
    if (m->type != HS_Y_MAP)
        return hs_ynode_error(d, m, HS_EINVAL, err, "engine: expected a mapping");
    sim_engine_config_defaults(e);
    e->name = NULL;
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        const char *key = k->scalar ? k->scalar : "";
        int rc = HS_EINVAL;
        bool known = false;
        if (strcmp(key, "name") == 0 || strcmp(key, "model") == 0 ||
            strcmp(key, "gpu_model") == 0) {
            const char **dst = key[0] == 'n' ? &e->name : key[0] == 'm' ? &e->model : &e->gpu_model;
            rc = hs_ynode_str(d, v, key, dst, err);
            known = true;
        } else if (strcmp(key, "kind") == 0) {
            rc = parse_kind(d, v, &e->kind, err);
            known = true;
        }
        for (size_t j = 0; !known && j < HS_ARRAY_LEN(ints); j++)
            if (strcmp(key, ints[j].key) == 0) {
                rc = get_int(d, v, key, (int *)((char *)e + ints[j].off), err);
                known = true;
            }
        for (size_t j = 0; !known && j < HS_ARRAY_LEN(dbls); j++)
            if (strcmp(key, dbls[j].key) == 0) {
                rc = hs_ynode_f64(d, v, key, (double *)((char *)e + dbls[j].off), err);
                known = true;
            }
        if (!known)
            return hs_ynode_error(d, k, HS_EINVAL, err, "engine: unknown field \"%s\"", key);
        if (rc)
            return rc;
    }
    if (!e->name)
        return hs_ynode_error(d, m, HS_EINVAL, err, "engine: name is required");
    return HS_OK;
}

static int parse_fault(const struct hs_ydoc *d, const struct hs_ynode *m, struct sim_fault *f,
                       struct hs_err *err)
{
    if (m->type != HS_Y_MAP)
        return hs_ynode_error(d, m, HS_EINVAL, err, "fault: expected a mapping");
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        const char *key = k->scalar ? k->scalar : "";
        int rc;
        if (strcmp(key, "kind") == 0) {
            rc = hs_ynode_str(d, v, key, &f->kind, err);
            if (!rc && sim__fault_kind(f->kind) < 0)
                rc = hs_ynode_error(d, v, HS_EINVAL, err, "kind: unknown fault kind \"%s\"",
                                    f->kind);
        } else if (strcmp(key, "target") == 0) {
            rc = hs_ynode_str(d, v, key, &f->target, err);
        } else if (strcmp(key, "magnitude") == 0) {
            rc = hs_ynode_f64(d, v, key, &f->magnitude, err);
        } else if (strcmp(key, "start") == 0) {
            rc = hs_ynode_duration(d, v, key, &f->start_ms, err);
        } else if (strcmp(key, "duration") == 0) {
            rc = hs_ynode_duration(d, v, key, &f->duration_ms, err);
        } else {
            return hs_ynode_error(d, k, HS_EINVAL, err, "fault: unknown field \"%s\"", key);
        }
        if (rc)
            return rc;
    }
    if (!f->kind || !f->target)
        return hs_ynode_error(d, m, HS_EINVAL, err, "fault: kind and target are required");
    return HS_OK;
}

static int parse_list(const struct hs_ydoc *d, const struct hs_ynode *v, const char *what,
                      size_t max, size_t *n)
{
    if (v->type != HS_Y_SEQ)
        return hs_ynode_error(d, v, HS_EINVAL, NULL, "%s: expected a list", what);
    if (v->n > max)
        return HS_ETOOBIG;
    *n = v->n;
    return HS_OK;
}

static int parse_top(const struct hs_ydoc *d, const struct hs_ynode *node, struct sim_config *out,
                     struct owned *o, struct hs_err *err)
{
    for (size_t i = 0; i < node->n; i++) {
        const struct hs_ynode *k = node->items[2 * i], *v = node->items[2 * i + 1];
        const char *key = k->scalar ? k->scalar : "";
        int rc = HS_OK;
        int64_t x;
        if (strcmp(key, "host") == 0) {
            rc = hs_ynode_str(d, v, key, &out->host, err);
        } else if (strcmp(key, "base_port") == 0) {
            rc = get_int(d, v, key, &out->base_port, err);
        } else if (strcmp(key, "gpus_per_node") == 0) {
            rc = get_int(d, v, key, &out->gpus_per_node, err);
        } else if (strcmp(key, "seed") == 0) {
            rc = hs_ynode_i64(d, v, key, &x, err);
            out->seed = (uint64_t)x;
        } else if (strcmp(key, "speed") == 0) {
            rc = hs_ynode_f64(d, v, key, &out->speed, err);
        } else if (strcmp(key, "engines") == 0 || strcmp(key, "faults") == 0) {
            bool eng = key[0] == 'e';
            size_t n = 0;
            rc = parse_list(d, v, key, eng ? SIM_MAX_ENGINES : SIM_MAX_FAULTS, &n);
            if (rc == HS_ETOOBIG)
                return hs_ynode_error(d, v, rc, err, "%s: too many entries", key);
            if (rc)
                return hs_ynode_error(d, v, rc, err, "%s: expected a list", key);
            void *arr = hs_calloc(n ? n : 1, eng ? sizeof(*o->engines) : sizeof(*o->faults));
            if (!arr)
                return hs_err_set(err, HS_ENOMEM, "out of memory");
            if (eng) {
                hs_free(o->engines);
                o->engines = arr;
                out->engines = arr;
                out->n_engines = 0;
            } else {
                hs_free(o->faults);
                o->faults = arr;
                out->faults = arr;
                out->n_faults = 0;
            }
            for (size_t j = 0; !rc && j < n; j++) {
                if (eng) {
                    rc = parse_engine(d, v->items[j], &o->engines[j], err);
                    out->n_engines = j + 1;
                } else {
                    rc = parse_fault(d, v->items[j], &o->faults[j], err);
                    out->n_faults = j + 1;
                }
            }
        } else {
            return hs_ynode_error(d, k, HS_EINVAL, err, "sim: unknown field \"%s\"", key);
        }
        if (rc)
            return rc;
    }
    return HS_OK;
}

int sim_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *node, struct sim_config *out,
                     struct hs_err *err)
{
    sim_config_defaults(out);
    if (!node || hs_ynode_is_null(node))
        return HS_OK;
    if (node->type != HS_Y_MAP)
        return hs_ynode_error(doc, node, HS_EINVAL, err, "sim: expected a mapping");
    const struct hs_ynode *inner = hs_ynode_get(node, "sim");
    if (inner && node->n == 1)
        return sim_config_parse(doc, inner, out, err);
    struct owned *o = hs_calloc(1, sizeof(*o));
    if (!o)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    out->owned = o;
    int rc = parse_top(doc, node, out, o, err);
    if (rc)
        return rc;
    /* names referenced by faults are checked once the engines are known */
    for (size_t i = 0; i < out->n_faults; i++) {
        int e, r;
        if (sim__fault_target(out, out->faults[i].target, &e, &r) != HS_OK)
            return hs_err_set(err, HS_EINVAL, "sim: fault %zu: unknown target \"%s\"", i,
                              out->faults[i].target);
    }
    return HS_OK;
}
