/*
 * capture_cmd.c - `holoscope capture analyze FILE...`: scores every record
 * of capture files (Amazon SageMaker Data Capture JSON Lines, spec
 * gateway.md §8) with the quality module and prints a per-model summary:
 * records, mean composite score and its recent 10th percentile, failures
 * per check, and drift of the score and the output length.
 *
 * Files are read in chunks and split into lines here (a line may be as
 * large as --max-line-bytes); directories are walked for *.jsonl files
 * (the capture layout <root>/<endpoint>/<variant>/YYYY/MM/DD/HH/), in name
 * order, so records arrive in time order and the first ones form the drift
 * baseline.  A record's model is the "holoscope" block's route when there
 * is one, else the request's "model".  BASE64 payloads are decoded and
 * text/event-stream outputs joined by qual_extract_response.
 */
#include "cli/internal.h"

#include "quality/quality.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char cli_help_capture[] =
    "NAME\n"
    "       holoscope capture - analyse captured requests\n"
    "\n"
    "SYNOPSIS\n"
    "       holoscope capture analyze [--json] [--records] [--weights SPEC]\n"
    "                                 [--reference N] [--recent N] [--min-recent N]\n"
    "                                 [--max-line-bytes SIZE] PATH...\n"
    "\n"
    "DESCRIPTION\n"
    "       analyze PATH...\n"
    "              Reads capture files in the Amazon SageMaker Data Capture JSON\n"
    "              Lines format, as written by the gateway or by SageMaker itself\n"
    "              (JSON, CSV and BASE64 payloads; raw text/event-stream outputs\n"
    "              are decoded and their deltas joined).  A PATH that is a\n"
    "              directory is searched recursively for *.jsonl files.  Every\n"
    "              record is scored by the quality checks:\n"
    "\n"
    "              empty       no visible output\n"
    "              truncation  finish_reason length\n"
    "              repetition  looping text (repeated word trigrams or byte runs)\n"
    "              refusal     \"I can't help with that\" in twelve languages\n"
    "              language    the answer's script differs from the prompt's\n"
    "              json        JSON was asked for and the output is not JSON\n"
    "              length      output tokens 4x away from the model's running median\n"
    "              encoding    invalid UTF-8, control characters, U+FFFD\n"
    "\n"
    "              and a composite score in [0, 1]: the product over the checks\n"
    "              that ran of (1 - weight * (1 - score)).  Embeddings and error\n"
    "              responses are counted as unscored.  The summary has one row per\n"
    "              model: scored records, mean score (all records) and its 10th\n"
    "              percentile over the recent window (P10_RECENT),\n"
    "              failures per check, and drift (PSI and the Kolmogorov-Smirnov\n"
    "              statistic of the score and of the output length, the most\n"
    "              recent records against the first ones; \"-\" until both windows\n"
    "              hold enough records).\n"
    "\n"
    "OPTIONS\n"
    "       --json\n"
    "              Print the summary as one JSON object instead of a table.\n"
    "\n"
    "       --records\n"
    "              Also print every record's score and failed checks (text: one\n"
    "              line each, FILE:LINE MODEL SCORE FAILED; JSON: a\n"
    "              \"record_scores\" array of {file, line, model, quality}).\n"
    "\n"
    "       --weights CHECK=W[,CHECK=W...]\n"
    "              Weights in [0, 1] of the composite score.  Defaults: empty=1,\n"
    "              truncation=0.6, repetition=0.8, refusal=0.9, language=0.6,\n"
    "              json=0.8, length=0.3, encoding=0.7.\n"
    "\n"
    "       --reference N, --recent N, --min-recent N\n"
    "              Drift windows: the first N records of a model form the\n"
    "              baseline (default 500), the last N the recent window (default\n"
    "              200), reported once it holds --min-recent records (default 50).\n"
    "\n"
    "       --max-line-bytes SIZE\n"
    "              Longest record accepted (default 64MiB); longer lines are\n"
    "              reported and skipped.\n"
    "\n"
    "EXIT STATUS\n"
    "       0 when every record was read, 1 when a file could not be read or a\n"
    "       record was malformed (each reported as FILE:LINE: message on stderr;\n"
    "       the summary is still printed), 2 on a usage error.\n"
    "\n"
    "EXAMPLES\n"
    "       holoscope capture analyze ./captures/llama-3.1-8b-instruct\n"
    "       holoscope capture analyze --json --recent 100 day1.jsonl day2.jsonl\n";

/* Paths collected from a directory walk; bounded so a huge tree fails
 * cleanly instead of exhausting memory. */
#define MAX_FILES 100000
#define MAX_DEPTH 16

struct analyze {
    bool is_json;
    bool is_records;
    uint64_t max_line;
    struct qual_tracker *tracker;
    uint64_t files, records, unscored, errors;
    struct hs_buf records_json; /* --json --records: the array's items */
    bool has_record_item;
};

/* ---- base64 (RFC 4648, padding optional on input) ------------------------- */

/* Decodes s[0..n) into 'a'; NULL with *bad_at set on a bad character
 * (SIZE_MAX: out of memory). */
static char *b64_decode(const char *s, size_t n, struct hs_arena *a, size_t *out_len,
                        size_t *bad_at)
{
    char *out = hs_arena_alloc(a, n / 4 * 3 + 4);
    if (out == NULL) {
        *bad_at = SIZE_MAX;
        return NULL;
    }
    if (hs_base64_decode(s, n, out, out_len, bad_at) != HS_OK)
        return NULL;
    out[*out_len] = '\0';
    return out;
}

/* ---- one record ---------------------------------------------------------------- */

/* The payload of captureData.<key>: decoded bytes in 'a'.  *is_sse is set
 * for text/event-stream.  HS_ENOTFOUND when the key is absent. */
static int payload(const json_t *cd, const char *key, struct hs_arena *a, const char **out,
                   size_t *out_len, bool *is_sse, struct hs_err *err)
{
    const json_t *ep = json_object_get(cd, key);
    if (ep == NULL)
        return HS_ENOTFOUND;
    const json_t *data = json_object_get(ep, "data");
    if (!json_is_string(data))
        return hs_err_set(err, HS_EINVAL, "captureData.%s.data: expected a string", key);
    const char *enc = json_string_value(json_object_get(ep, "encoding"));
    const char *ct = json_string_value(json_object_get(ep, "observedContentType"));
    *is_sse = ct != NULL && hs_has_prefix(ct, "text/event-stream");
    const char *s = json_string_value(data);
    size_t n = json_string_length(data);
    if (enc != NULL && strcmp(enc, "BASE64") == 0) {
        size_t bad = 0;
        *out = b64_decode(s, n, a, out_len, &bad);
        if (*out == NULL && bad == SIZE_MAX)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        if (*out == NULL)
            return hs_err_set(err, HS_EINVAL, "captureData.%s.data: invalid base64 at offset %zu",
                              key, bad);
        return HS_OK;
    }
    *out = s;
    *out_len = n;
    return HS_OK;
}

/* Fills 'in' from one parsed capture record; strings in 'a' or in 'rec'. */
static int record_input(const json_t *rec, struct hs_arena *a, struct qual_input *in,
                        struct hs_err *err)
{
    if (!json_is_object(rec))
        return hs_err_set(err, HS_EINVAL, "expected a JSON object");
    const json_t *cd = json_object_get(rec, "captureData");
    if (!json_is_object(cd))
        return hs_err_set(err, HS_EINVAL, "captureData: expected an object");
    const json_t *ext = json_object_get(rec, "holoscope");
    qual_input_init(in);
    in->model = json_string_value(json_object_get(ext, "route"));
    const char *body;
    size_t len;
    bool is_sse;
    int rc = payload(cd, "endpointInput", a, &body, &len, &is_sse, err);
    if (rc == HS_OK)
        rc = qual_extract_request(body, len, a, in, err);
    if (rc != HS_OK && rc != HS_ENOTFOUND)
        return rc;
    rc = payload(cd, "endpointOutput", a, &body, &len, &is_sse, err);
    if (rc == HS_ENOTFOUND) {
        in->is_scorable = false; /* input-only capture: nothing to score */
        return HS_OK;
    }
    if (rc == HS_OK)
        rc = qual_extract_response(body, len, is_sse, a, in, err);
    if (rc != HS_OK)
        return rc;
    const json_t *tok = json_object_get(ext, "output_tokens");
    if (json_is_integer(tok) && json_integer_value(tok) >= 0 && in->output_tokens < 0)
        in->output_tokens = json_integer_value(tok);
    return HS_OK;
}

static void print_failed(FILE *out, const struct qual_scores *s)
{
    bool any = false;
    for (int k = 0; k < QUAL_CHECK_COUNT; k++) {
        if (s->failed_mask & (1u << k)) {
            fprintf(out, "%s%s", any ? "," : "", qual_check_name(k));
            any = true;
        }
    }
    if (!any)
        fputs("-", out);
}

static int add_record_json(struct analyze *an, const char *path, uint64_t line,
                           const struct qual_input *in, const struct qual_scores *s)
{
    struct hs_buf *b = &an->records_json;
    int rc = hs_buf_puts(b, an->has_record_item ? ",\n    {\"file\":" : "\n    {\"file\":");
    an->has_record_item = true;
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, path, strlen(path));
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"line\":%llu,\"model\":", (unsigned long long)line);
    const char *model = in->model ? in->model : "unknown";
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, model, strlen(model));
    if (rc == HS_OK && in->is_scorable) {
        rc = hs_buf_puts(b, ",\"quality\":");
        if (rc == HS_OK)
            rc = qual_scores_json(s, b);
    } else if (rc == HS_OK) {
        rc = hs_buf_puts(b, ",\"quality\":null");
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(b, '}');
    return rc;
}

static void analyze_line(struct analyze *an, const char *path, uint64_t lineno, const char *p,
                         size_t n)
{
    struct hs_err err;
    hs_err_clear(&err);
    json_error_t jerr;
    json_t *rec = json_loadb(p, n, 0, &jerr);
    if (rec == NULL) {
        fprintf(stderr, "%s:%llu:%d: %s\n", path, (unsigned long long)lineno, jerr.column,
                jerr.text);
        an->errors++;
        return;
    }
    struct hs_arena a;
    hs_arena_init(&a, 16384, 0);
    struct qual_input in;
    struct qual_scores s;
    int rc = record_input(rec, &a, &in, &err);
    if (rc == HS_OK)
        rc = qual_tracker_observe(an->tracker, &in, &s, &err);
    if (rc != HS_OK) {
        fprintf(stderr, "%s:%llu: %s\n", path, (unsigned long long)lineno, err.msg);
        an->errors++;
        goto out;
    }
    an->records++;
    if (!in.is_scorable)
        an->unscored++;
    if (an->is_records && an->is_json) {
        if (add_record_json(an, path, lineno, &in, &s) != HS_OK) {
            fprintf(stderr, "%s:%llu: out of memory\n", path, (unsigned long long)lineno);
            an->errors++;
        }
    } else if (an->is_records) {
        printf("%s:%llu %s ", path, (unsigned long long)lineno, in.model ? in.model : "unknown");
        if (in.is_scorable) {
            printf("%.3f ", s.composite);
            print_failed(stdout, &s);
            putchar('\n');
        } else {
            puts("unscored");
        }
    }
out:
    hs_arena_cleanup(&a);
    json_decref(rec);
}

/* ---- files ----------------------------------------------------------------------- */

static int analyze_file(struct analyze *an, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        an->errors++;
        return HS_EIO;
    }
    an->files++;
    struct hs_buf line;
    hs_buf_init(&line, 0);
    char chunk[65536];
    uint64_t lineno = 0;
    bool is_skipping = false; /* inside an over-long line */
    int rc = HS_OK;
    size_t got;
    while (rc == HS_OK && (got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        size_t i = 0;
        while (i < got) {
            char *nl = memchr(chunk + i, '\n', got - i);
            size_t take = nl ? (size_t)(nl - (chunk + i)) : got - i;
            if (!is_skipping && line.len + take > an->max_line) {
                fprintf(stderr, "%s:%llu: record longer than %llu bytes, skipped\n", path,
                        (unsigned long long)lineno + 1, (unsigned long long)an->max_line);
                an->errors++;
                is_skipping = true;
                hs_buf_reset(&line);
            }
            if (!is_skipping && take > 0 && (rc = hs_buf_append(&line, chunk + i, take)) != HS_OK)
                break;
            i += take;
            if (nl == NULL)
                break;
            i++;
            lineno++;
            if (!is_skipping && line.len > 0)
                analyze_line(an, path, lineno, line.p, line.len);
            is_skipping = false;
            hs_buf_reset(&line);
        }
    }
    if (rc == HS_OK && ferror(f)) {
        fprintf(stderr, "%s: read error\n", path);
        an->errors++;
        rc = HS_EIO;
    } else if (rc != HS_OK) {
        fprintf(stderr, "%s: out of memory\n", path);
        an->errors++;
    } else if (!is_skipping && line.len > 0) {
        analyze_line(an, path, lineno + 1, line.p, line.len); /* no final newline */
    }
    hs_buf_cleanup(&line);
    fclose(f);
    return rc;
}

struct path_list {
    char **v;
    size_t n, cap;
};

static int path_add(struct path_list *l, const char *p)
{
    if (l->n >= MAX_FILES)
        return HS_ETOOBIG;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = hs_reallocarray(l->v, cap, sizeof(*v));
        if (v == NULL)
            return HS_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = hs_strdup(p);
    if (l->v[l->n] == NULL)
        return HS_ENOMEM;
    l->n++;
    return HS_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the *.jsonl files under 'dir', recursively.  Dot files are skipped:
 * the writer's open ".NAME.part" files are not complete yet. */
static int walk_dir(struct path_list *l, const char *dir, int depth)
{
    if (depth > MAX_DEPTH)
        return HS_OK;
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return HS_EIO;
    }
    int rc = HS_OK;
    struct dirent *e;
    while (rc == HS_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *p = hs_malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (p == NULL) {
            rc = HS_ENOMEM;
            break;
        }
        snprintf(p, strlen(dir) + strlen(e->d_name) + 2, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rc = walk_dir(l, p, depth + 1);
        else if (hs_has_suffix(e->d_name, ".jsonl"))
            rc = path_add(l, p);
        hs_free(p);
    }
    closedir(d);
    return rc;
}

/* ---- output ------------------------------------------------------------------------- */

static void fmt_num(double v, int prec, char *out, size_t n)
{
    if (isnan(v))
        snprintf(out, n, "-");
    else
        snprintf(out, n, "%.*f", prec, v);
}

static void print_table(struct analyze *an)
{
    size_t nm = qual_tracker_models(an->tracker);
    int width = 5; /* the MODEL column fits the longest name */
    for (size_t i = 0; i < nm; i++) {
        struct qual_model_summary s;
        if (qual_tracker_summary(an->tracker, i, &s) == HS_OK && (int)strlen(s.model) > width)
            width = (int)HS_MIN(strlen(s.model), 200);
    }
    printf("%-*s %7s %6s %10s", width, "MODEL", "RECORDS", "MEAN", "P10_RECENT");
    static const char *const abbrev[QUAL_CHECK_COUNT] = {"EMPTY", "TRUNC", "REPEAT", "REFUSE",
                                                         "LANG",  "JSON",  "LENGTH", "ENC"};
    for (int k = 0; k < QUAL_CHECK_COUNT; k++)
        printf(" %6s", abbrev[k]);
    printf(" %9s %8s %9s %8s\n", "PSI_SCORE", "KS_SCORE", "PSI_TOKEN", "KS_TOKEN");
    for (size_t i = 0; i < nm; i++) {
        struct qual_model_summary s;
        if (qual_tracker_summary(an->tracker, i, &s) != HS_OK)
            continue;
        char mean[16], p10[16], d[4][16];
        fmt_num(s.score_mean, 3, mean, sizeof(mean));
        fmt_num(s.score_p10, 3, p10, sizeof(p10));
        fmt_num(s.drift[QUAL_SIGNAL_SCORE].psi, 3, d[0], sizeof(d[0]));
        fmt_num(s.drift[QUAL_SIGNAL_SCORE].ks, 3, d[1], sizeof(d[1]));
        fmt_num(s.drift[QUAL_SIGNAL_OUTPUT_TOKENS].psi, 3, d[2], sizeof(d[2]));
        fmt_num(s.drift[QUAL_SIGNAL_OUTPUT_TOKENS].ks, 3, d[3], sizeof(d[3]));
        printf("%-*s %7llu %6s %10s", width, s.model, (unsigned long long)s.count, mean, p10);
        for (int k = 0; k < QUAL_CHECK_COUNT; k++)
            printf(" %6llu", (unsigned long long)s.fails[k]);
        printf(" %9s %8s %9s %8s\n", d[0], d[1], d[2], d[3]);
    }
    printf("\n%llu file(s), %llu record(s), %llu unscored (embeddings, errors, input only), "
           "%llu error(s)\n",
           (unsigned long long)an->files, (unsigned long long)an->records,
           (unsigned long long)an->unscored, (unsigned long long)an->errors);
}

static int json_num(struct hs_buf *b, double v)
{
    if (isnan(v) || isinf(v))
        return hs_buf_puts(b, "null");
    char num[32];
    hs_format_double(round(v * 1e4) / 1e4, num, sizeof(num)); /* 4 decimals are plenty */
    return hs_buf_puts(b, num);
}

static int model_json(struct hs_buf *b, const struct qual_model_summary *s)
{
    int rc = hs_buf_puts(b, "{\"model\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(b, s->model, strlen(s->model));
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"records\":%llu,\"score_mean\":", (unsigned long long)s->count);
    if (rc == HS_OK)
        rc = json_num(b, s->score_mean);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"score_p10\":");
    if (rc == HS_OK)
        rc = json_num(b, s->score_p10);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"median_output_tokens\":");
    if (rc == HS_OK)
        rc = json_num(b, s->median_tokens);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, ",\"checks\":{");
    for (int k = 0; rc == HS_OK && k < QUAL_CHECK_COUNT; k++)
        rc = hs_buf_printf(b, "%s\"%s\":{\"pass\":%llu,\"fail\":%llu}", k ? "," : "",
                           qual_check_name(k), (unsigned long long)s->passes[k],
                           (unsigned long long)s->fails[k]);
    if (rc == HS_OK)
        rc = hs_buf_puts(b, "},\"drift\":{");
    for (int g = 0; rc == HS_OK && g < QUAL_SIGNAL_COUNT; g++) {
        const struct qual_drift *d = &s->drift[g];
        rc = hs_buf_printf(b, "%s\"%s\":{\"psi\":", g ? "," : "", qual_signal_name(g));
        if (rc == HS_OK)
            rc = json_num(b, d->psi);
        if (rc == HS_OK)
            rc = hs_buf_puts(b, ",\"ks\":");
        if (rc == HS_OK)
            rc = json_num(b, d->ks);
        if (rc == HS_OK)
            rc = hs_buf_printf(b, ",\"n_reference\":%zu,\"n_recent\":%zu}", d->n_reference,
                               d->n_recent);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(b, "}}");
    return rc;
}

static int print_json(struct analyze *an)
{
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = hs_buf_printf(&b,
                           "{\"files\":%llu,\"records\":%llu,\"unscored\":%llu,\"errors\":%llu,"
                           "\n  \"models\":[",
                           (unsigned long long)an->files, (unsigned long long)an->records,
                           (unsigned long long)an->unscored, (unsigned long long)an->errors);
    size_t nm = qual_tracker_models(an->tracker);
    for (size_t i = 0; rc == HS_OK && i < nm; i++) {
        struct qual_model_summary s;
        if (qual_tracker_summary(an->tracker, i, &s) != HS_OK)
            continue;
        rc = hs_buf_puts(&b, i ? ",\n    " : "\n    ");
        if (rc == HS_OK)
            rc = model_json(&b, &s);
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(&b, "]");
    if (rc == HS_OK && an->is_records) {
        rc = hs_buf_puts(&b, ",\n  \"record_scores\":[");
        if (rc == HS_OK && an->records_json.len > 0)
            rc = hs_buf_append(&b, an->records_json.p, an->records_json.len);
        if (rc == HS_OK)
            rc = hs_buf_puts(&b, "]");
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(&b, "}\n");
    if (rc == HS_OK)
        fwrite(b.p, 1, b.len, stdout);
    else
        fprintf(stderr, "holoscope capture analyze: out of memory\n");
    hs_buf_cleanup(&b);
    return rc;
}

/* ---- command ---------------------------------------------------------------------------- */

static int parse_size_opt(const char *name, const char *v, size_t *out)
{
    uint64_t n;
    if (v == NULL || hs_parse_u64(v, &n) != HS_OK || n < 1 || n > 100000) {
        fprintf(stderr, "holoscope capture analyze: %s: expected a number in 1..100000\n", name);
        return CLI_EXIT_USAGE;
    }
    *out = (size_t)n;
    return CLI_EXIT_OK;
}

static int parse_opts(int argc, char **argv, struct analyze *an, struct qual_config *c,
                      int *first_path)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int st = CLI_EXIT_OK;
        if (strcmp(o, "--") == 0) {
            i++;
            break;
        } else if (strcmp(o, "--json") == 0) {
            an->is_json = true;
            continue;
        } else if (strcmp(o, "--records") == 0) {
            an->is_records = true;
            continue;
        } else if (strcmp(o, "--weights") == 0) {
            struct hs_err err;
            hs_err_clear(&err);
            if (v == NULL || qual_config_parse_weights(c, v, &err) != HS_OK) {
                fprintf(stderr, "holoscope capture analyze: --weights: %s\n",
                        v ? err.msg : "missing value");
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(o, "--reference") == 0) {
            st = parse_size_opt(o, v, &c->reference_size);
        } else if (strcmp(o, "--recent") == 0) {
            st = parse_size_opt(o, v, &c->recent_size);
        } else if (strcmp(o, "--min-recent") == 0) {
            st = parse_size_opt(o, v, &c->min_recent);
        } else if (strcmp(o, "--max-line-bytes") == 0) {
            if (v == NULL || hs_parse_bytes(v, &an->max_line) != HS_OK || an->max_line == 0) {
                fprintf(stderr, "holoscope capture analyze: --max-line-bytes: expected a size "
                                "such as 64MiB\n");
                return CLI_EXIT_USAGE;
            }
        } else {
            fprintf(stderr,
                    "holoscope capture analyze: unknown option \"%s\" (see holoscope capture "
                    "--help)\n",
                    o);
            return CLI_EXIT_USAGE;
        }
        if (st != CLI_EXIT_OK)
            return st;
        i++; /* the option's value */
    }
    if (c->min_recent > c->recent_size)
        c->min_recent = c->recent_size;
    *first_path = i;
    return CLI_EXIT_OK;
}

static int capture_analyze(int argc, char **argv)
{
    struct analyze an = {.max_line = 64u << 20};
    struct qual_config c;
    qual_config_defaults(&c);
    int first;
    int st = parse_opts(argc, argv, &an, &c, &first);
    if (st != CLI_EXIT_OK)
        return st;
    if (first >= argc) {
        fprintf(stderr, "holoscope capture analyze: missing PATH (see holoscope capture --help)\n");
        return CLI_EXIT_USAGE;
    }
    struct hs_err err;
    hs_err_clear(&err);
    an.tracker = qual_tracker_new(&c, &err);
    if (an.tracker == NULL) {
        fprintf(stderr, "holoscope capture analyze: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    hs_buf_init(&an.records_json, 0);
    struct path_list files = {0};
    int rc = HS_OK;
    for (int i = first; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            size_t from = files.n;
            int wrc = walk_dir(&files, argv[i], 0);
            if (wrc != HS_OK)
                an.errors++;
            if (wrc == HS_ENOMEM || wrc == HS_ETOOBIG) {
                rc = wrc;
                break;
            }
            qsort(files.v + from, files.n - from, sizeof(char *), cmp_str);
        } else if ((rc = path_add(&files, argv[i])) != HS_OK) {
            break;
        }
    }
    if (rc != HS_OK)
        fprintf(stderr, "holoscope capture analyze: %s\n",
                rc == HS_ETOOBIG ? "more than 100000 files" : "out of memory");
    for (size_t i = 0; rc == HS_OK && i < files.n; i++)
        HS_IGNORE_RESULT(analyze_file(&an, files.v[i]));
    if (rc == HS_OK)
        rc = an.is_json ? print_json(&an) : (print_table(&an), HS_OK);
    for (size_t i = 0; i < files.n; i++)
        hs_free(files.v[i]);
    hs_free(files.v);
    hs_buf_cleanup(&an.records_json);
    qual_tracker_free(an.tracker);
    return (rc != HS_OK || an.errors > 0) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

int cli_cmd_capture(int argc, char **argv, char **envp)
{
    (void)envp;
    if (cli_wants_help(argc, argv)) {
        fputs(cli_help_capture, stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        fprintf(stderr, "holoscope capture: missing subcommand (see holoscope capture --help)\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "analyze") == 0 || strcmp(argv[1], "analyse") == 0)
        return capture_analyze(argc - 1, argv + 1);
    fprintf(stderr, "holoscope capture: unknown subcommand \"%s\" (see holoscope capture --help)\n",
            argv[1]);
    return CLI_EXIT_USAGE;
}
