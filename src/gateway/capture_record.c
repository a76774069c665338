/*
 * capture_record.c - one capture line (spec/gateway.md §8.1): canonical
 * serialisation, parsing, and the helpers both need (base64, UTF-8
 * validation, RFC 3339 times, UUIDs, path components).
 *
 * The canonical form is what makes records round-trip byte for byte:
 * compact JSON, keys in the documented order, minimal string escapes, '/'
 * and non-ASCII as they are.  Parsing uses jansson for the structure; the
 * "holoscope" extension object is kept as its original bytes (found by a
 * small scanner over the already-validated line) so a rewrite never
 * changes its numbers.
 */
#include "gateway/capture.h"

#include <jansson.h>

#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- small helpers ------------------------------------------------------------ */

void capture_record_init(struct capture_record *r)
{
    memset(r, 0, sizeof(*r));
    r->ttft_s = NAN;
    r->ttft_visible_s = NAN;
    r->tpot_s = NAN;
    r->e2e_s = NAN;
    r->input_tokens = -1;
    r->output_tokens = -1;
    r->sampling_percentage = NAN;
}

void capture_path_component(const char *s, char *out, size_t out_len)
{
    size_t n = 0;
    if (out_len == 0)
        return;
    for (; s != NULL && s[n] != '\0' && n + 1 < out_len; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[n] = ok ? c : '_';
    }
    out[n] = '\0';
    if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
        if (out_len >= 2) {
            out[0] = '_';
            out[1] = '\0';
        }
    }
}

void capture_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        /* No entropy yet (early boot): unique enough for file and event ids. */
        int64_t t[2] = {hs_mono_ns(), hs_now_ms()};
        uint64_t h1 = hs_hash64(t, sizeof(t), (uint64_t)(uintptr_t)out);
        uint64_t h2 = hs_hash64(t, sizeof(t), h1);
        memcpy(b, &h1, 8);
        memcpy(b + 8, &h2, 8);
    }
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

bool capture_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int capture_base64_encode(const char *s, size_t len, struct hs_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = hs_buf_reserve(out, (len + 2) / 3 * 4);
    for (size_t i = 0; i < len && rc == HS_OK; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        char q[4] = {b64chars[(v >> 18) & 63], b64chars[(v >> 12) & 63],
                     i + 1 < len ? b64chars[(v >> 6) & 63] : '=',
                     i + 2 < len ? b64chars[v & 63] : '='};
        rc = hs_buf_append(out, q, 4);
    }
    return rc;
}

/* Strict standard base64 with padding; returns the decoded length or -1. */
static long base64_decode(const char *s, size_t len, char *out)
{
    size_t n, bad;
    if (len % 4 != 0 || hs_base64_decode(s, len, out, &n, &bad) != HS_OK)
        return -1;
    return (long)n;
}

static bool ascii_ieq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

/* JSON for application/json and +json, CSV for text/csv, else BASE64. */
const char *capture_encoding_for(const char *content_type)
{
    if (content_type == NULL)
        return "BASE64";
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    if (ascii_ieq(content_type, n, "application/json"))
        return "JSON";
    if (n >= 5 && ascii_ieq(content_type + n - 5, 5, "+json"))
        return "JSON";
    if (ascii_ieq(content_type, n, "text/csv"))
        return "CSV";
    return "BASE64";
}

/* ---- writing -------------------------------------------------------------------- */

static int put_str(struct hs_buf *b, const char *s, size_t n)
{
    int rc = hs_buf_putc(b, '"');
    if (rc == HS_OK)
        rc = redact_json_escape(s, n, b);
    if (rc == HS_OK)
        rc = hs_buf_putc(b, '"');
    return rc;
}

static int put_key_str(struct hs_buf *b, const char *key, const char *s)
{
    int rc = hs_buf_printf(b, "\"%s\":", key);
    return rc == HS_OK ? put_str(b, s, strlen(s)) : rc;
}

static int put_payload(struct hs_buf *b, const char *mode, const char *ctype, const char *enc,
                       const char *data, size_t len)
{
    if (enc == NULL)
        enc = capture_encoding_for(ctype);
    bool is_text = strcmp(enc, "BASE64") != 0;
    if (is_text && !capture_utf8_valid(data, len))
        enc = "BASE64", is_text = false;
    int rc = hs_buf_puts(b, "{");
    if (rc == HS_OK && ctype != NULL)
        rc = put_key_str(b, "observedContentType", ctype);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, "%s\"mode\":\"%s\",\"data\":\"", ctype != NULL ? "," : "", mode);
    if (rc == HS_OK)
        rc = is_text ? redact_json_escape(data != NULL ? data : "", len, b)
                     : capture_base64_encode(data, len, b);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, "\",\"encoding\":\"%s\"}", enc);
    return rc;
}

static int put_num(struct hs_buf *b, const char *key, double v)
{
    if (isnan(v) || isinf(v))
        return HS_OK;
    char t[32];
    hs_format_double(v, t, sizeof(t));
    return hs_buf_printf(b, ",\"%s\":%s", key, t);
}

static int put_opt_str(struct hs_buf *b, const char *key, const char *s)
{
    if (s == NULL)
        return HS_OK;
    int rc = hs_buf_putc(b, ',');
    return rc == HS_OK ? put_key_str(b, key, s) : rc;
}

static int put_extension(struct hs_buf *b, const struct capture_record *r)
{
    if (r->extension_json != NULL)
        return hs_buf_printf(b, ",\"holoscope\":%s", r->extension_json);
    int rc = hs_buf_puts(b, ",\"holoscope\":{\"v\":1");
    if (rc == HS_OK)
        rc = put_opt_str(b, "request_id", r->request_id);
    if (rc == HS_OK)
        rc = put_opt_str(b, "trace_id", r->trace_id);
    if (rc == HS_OK)
        rc = put_opt_str(b, "model", r->model);
    if (rc == HS_OK)
        rc = put_opt_str(b, "route", r->route);
    if (rc == HS_OK)
        rc = put_opt_str(b, "upstream", r->upstream);
    if (rc == HS_OK)
        rc = put_opt_str(b, "operation", r->operation);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, ",\"stream\":%s", r->stream ? "true" : "false");
    if (rc == HS_OK && r->stream)
        rc = hs_buf_printf(b, ",\"stream_output\":\"%s\"",
                           r->stream_output == CAPTURE_STREAM_RAW ? "raw" : "assembled");
    if (rc == HS_OK && r->n > 0)
        rc = hs_buf_printf(b, ",\"n\":%d", r->n);
    if (rc == HS_OK && r->http_status > 0)
        rc = hs_buf_printf(b, ",\"http_status\":%d", r->http_status);
    if (rc == HS_OK)
        rc = put_opt_str(b, "outcome", r->outcome);
    if (rc == HS_OK)
        rc = put_opt_str(b, "error_type", r->error_type);
    if (rc == HS_OK)
        rc = put_num(b, "ttft_s", r->ttft_s);
    if (rc == HS_OK)
        rc = put_num(b, "ttft_visible_s", r->ttft_visible_s);
    if (rc == HS_OK)
        rc = put_num(b, "tpot_s", r->tpot_s);
    if (rc == HS_OK)
        rc = put_num(b, "e2e_s", r->e2e_s);
    if (rc == HS_OK && r->input_tokens >= 0)
        rc = hs_buf_printf(b, ",\"input_tokens\":%lld", (long long)r->input_tokens);
    if (rc == HS_OK && r->output_tokens >= 0)
        rc = hs_buf_printf(b, ",\"output_tokens\":%lld", (long long)r->output_tokens);
    if (rc == HS_OK)
        rc = put_opt_str(b, "usage_source", r->usage_source);
    if (rc == HS_OK && r->nfinish_reasons > 0) {
        rc = hs_buf_puts(b, ",\"finish_reasons\":[");
        for (size_t i = 0; i < r->nfinish_reasons && rc == HS_OK; i++) {
            const char *f = r->finish_reasons[i] != NULL ? r->finish_reasons[i] : "unknown";
            if (i > 0)
                rc = hs_buf_putc(b, ',');
            if (rc == HS_OK)
                rc = put_str(b, f, strlen(f));
        }
        if (rc == HS_OK)
            rc = hs_buf_putc(b, ']');
    }
    if (rc == HS_OK)
        rc = put_num(b, "sampling_percentage", r->sampling_percentage);
    if (rc == HS_OK && r->extension_extra != NULL && r->extension_extra[0] != '\0')
        rc = hs_buf_printf(b, ",%s", r->extension_extra);
    if (rc == HS_OK)
        rc = hs_buf_putc(b, '}');
    return rc;
}

int capture_record_format(const struct capture_record *r, bool extensions, struct hs_buf *out)
{
    size_t mark = out->len;
    int rc = hs_buf_puts(out, "{\"captureData\":{");
    if (rc == HS_OK && r->has_input)
        rc = hs_buf_puts(out, "\"endpointInput\":");
    if (rc == HS_OK && r->has_input)
        rc = put_payload(out, "INPUT", r->input_content_type, r->input_encoding, r->input,
                         r->input_len);
    if (rc == HS_OK && r->has_input && r->has_output)
        rc = hs_buf_putc(out, ',');
    if (rc == HS_OK && r->has_output)
        rc = hs_buf_puts(out, "\"endpointOutput\":");
    if (rc == HS_OK && r->has_output)
        rc = put_payload(out, "OUTPUT", r->output_content_type, r->output_encoding, r->output,
                         r->output_len);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "},\"eventMetadata\":{");
    if (rc == HS_OK)
        rc = put_key_str(out, "eventId", r->event_id != NULL ? r->event_id : "");
    if (rc == HS_OK)
        rc = put_opt_str(out, "inferenceId", r->inference_id);
    if (rc == HS_OK)
        rc = put_opt_str(out, "inferenceTime", r->inference_time != NULL ? r->inference_time : "");
    if (rc == HS_OK)
        rc = put_opt_str(out, "customAttributes", r->custom_attributes);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "},\"eventVersion\":\"0\"");
    if (rc == HS_OK && extensions)
        rc = put_extension(out, r);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "}\n");
    if (rc != HS_OK) {
        out->len = mark;
        if (out->p != NULL)
            out->p[mark] = '\0';
    }
    return rc;
}

int capture_format_time(int64_t t_ms, char out[32])
{
    time_t t = (time_t)(t_ms >= 0 ? t_ms / 1000 : (t_ms - 999) / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        memcpy(out, "1970-01-01T00:00:00Z", 21);
        return HS_EINVAL;
    }
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return HS_OK;
}

/* ---- parsing -------------------------------------------------------------------- */

static int dig(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return HS_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return HS_OK;
}

int capture_parse_time(const char *s, int64_t *t_ms)
{
    int y, mo, d, h, mi, se;
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return HS_EINVAL;
    if (dig(s, 4, &y) || dig(s + 5, 2, &mo) || dig(s + 8, 2, &d) || dig(s + 11, 2, &h) ||
        dig(s + 14, 2, &mi) || dig(s + 17, 2, &se))
        return HS_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return HS_EINVAL;
    const char *p = s + 19;
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return HS_EINVAL;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (strlen(p) != 6 || p[3] != ':' || dig(p + 1, 2, &oh) || dig(p + 4, 2, &om))
            return HS_EINVAL;
        off_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return HS_EINVAL;
    }
    if (*p != '\0')
        return HS_EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    time_t t = timegm(&tm);
    *t_ms = ((int64_t)t - off_s) * 1000 + ms;
    return HS_OK;
}

/* Byte range of the value of top-level key 'key' in the object text s;
 * the text is known to be valid JSON. */
static bool find_top_value(const char *s, size_t len, const char *key, size_t *vs, size_t *ve)
{
    size_t klen = strlen(key);
    int depth = 0;
    bool expect_key = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            size_t start = i + 1;
            for (i = start; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            if (depth == 1 && expect_key && i - start == klen &&
                memcmp(s + start, key, klen) == 0) {
                size_t j = i + 1;
                while (j < len &&
                       (s[j] == ' ' || s[j] == ':' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r'))
                    j++;
                /* skip one value */
                size_t k = j;
                int d = 0;
                for (; k < len; k++) {
                    char e = s[k];
                    if (e == '"') {
                        for (k++; k < len && s[k] != '"'; k++)
                            if (s[k] == '\\')
                                k++;
                        if (d == 0) {
                            k++;
                            break;
                        }
                    } else if (e == '{' || e == '[') {
                        d++;
                    } else if (e == '}' || e == ']') {
                        if (d == 0)
                            break;
                        if (--d == 0) {
                            k++;
                            break;
                        }
                    } else if (d == 0 && e == ',') {
                        break;
                    }
                }
                while (k > j && (s[k - 1] == ' ' || s[k - 1] == '\n' || s[k - 1] == '\r' ||
                                 s[k - 1] == '\t'))
                    k--;
                *vs = j;
                *ve = k;
                return true;
            }
            expect_key = false;
        } else if (c == '{' || c == '[') {
            depth++;
            expect_key = c == '{' && depth == 1;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',' && depth == 1) {
            expect_key = true;
        }
    }
    return false;
}

struct pctx {
    struct hs_arena *a;
    struct hs_err *err;
};

static const char *dup_str(struct pctx *p, json_t *v)
{
    const char *s = hs_arena_strndup(p->a, json_string_value(v), json_string_length(v));
    return s;
}

static int get_str(struct pctx *p, json_t *obj, const char *key, const char *where, bool required,
                   const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return hs_err_set(p->err, HS_EINVAL, "%s.%s: missing", where, key);
        *out = NULL;
        return HS_OK;
    }
    if (!json_is_string(v))
        return hs_err_set(p->err, HS_EINVAL, "%s.%s: expected a string", where, key);
    *out = dup_str(p, v);
    return *out != NULL ? HS_OK : hs_err_set(p->err, HS_ENOMEM, "out of memory");
}

static int parse_payload(struct pctx *p, json_t *obj, const char *where, const char **ctype,
                         const char **enc, const char **data, size_t *len)
{
    if (!json_is_object(obj))
        return hs_err_set(p->err, HS_EINVAL, "%s: expected an object", where);
    const char *raw;
    int rc = get_str(p, obj, "observedContentType", where, false, ctype);
    if (rc == HS_OK)
        rc = get_str(p, obj, "encoding", where, false, enc);
    if (rc == HS_OK)
        rc = get_str(p, obj, "data", where, true, &raw);
    if (rc != HS_OK)
        return rc;
    size_t rawlen = json_string_length(json_object_get(obj, "data"));
    if (*enc == NULL)
        *enc = capture_encoding_for(*ctype);
    if (strcmp(*enc, "BASE64") != 0) {
        if (strcmp(*enc, "JSON") != 0 && strcmp(*enc, "CSV") != 0)
            return hs_err_set(p->err, HS_EINVAL, "%s.encoding: unknown \"%s\"", where, *enc);
        *data = raw;
        *len = rawlen;
        return HS_OK;
    }
    char *dec = hs_arena_alloc(p->a, rawlen / 4 * 3 + 1);
    if (dec == NULL)
        return hs_err_set(p->err, HS_ENOMEM, "out of memory");
    long n = base64_decode(raw, rawlen, dec);
    if (n < 0)
        return hs_err_set(p->err, HS_EINVAL, "%s.data: invalid base64", where);
    dec[n] = '\0';
    *data = dec;
    *len = (size_t)n;
    return HS_OK;
}

static double get_num(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void parse_extension(struct pctx *p, json_t *h, struct capture_record *r)
{
    const char *s;
    if (get_str(p, h, "request_id", "holoscope", false, &s) == HS_OK)
        r->request_id = s;
    if (get_str(p, h, "trace_id", "holoscope", false, &s) == HS_OK)
        r->trace_id = s;
    if (get_str(p, h, "model", "holoscope", false, &s) == HS_OK)
        r->model = s;
    if (get_str(p, h, "route", "holoscope", false, &s) == HS_OK)
        r->route = s;
    if (get_str(p, h, "upstream", "holoscope", false, &s) == HS_OK)
        r->upstream = s;
    if (get_str(p, h, "operation", "holoscope", false, &s) == HS_OK)
        r->operation = s;
    if (get_str(p, h, "outcome", "holoscope", false, &s) == HS_OK)
        r->outcome = s;
    if (get_str(p, h, "error_type", "holoscope", false, &s) == HS_OK)
        r->error_type = s;
    if (get_str(p, h, "usage_source", "holoscope", false, &s) == HS_OK)
        r->usage_source = s;
    r->stream = json_is_true(json_object_get(h, "stream"));
    if (get_str(p, h, "stream_output", "holoscope", false, &s) == HS_OK && s != NULL)
        r->stream_output = strcmp(s, "raw") == 0 ? CAPTURE_STREAM_RAW : CAPTURE_STREAM_ASSEMBLED;
    double v = get_num(h, "n");
    r->n = isnan(v) ? 0 : (int)v;
    v = get_num(h, "http_status");
    r->http_status = isnan(v) ? 0 : (int)v;
    r->ttft_s = get_num(h, "ttft_s");
    r->ttft_visible_s = get_num(h, "ttft_visible_s");
    r->tpot_s = get_num(h, "tpot_s");
    r->e2e_s = get_num(h, "e2e_s");
    r->sampling_percentage = get_num(h, "sampling_percentage");
    v = get_num(h, "input_tokens");
    r->input_tokens = isnan(v) ? -1 : (int64_t)v;
    v = get_num(h, "output_tokens");
    r->output_tokens = isnan(v) ? -1 : (int64_t)v;
    json_t *fr = json_object_get(h, "finish_reasons");
    size_t nfr = json_is_array(fr) ? json_array_size(fr) : 0;
    if (nfr > 0 && nfr < 4096) {
        const char **v2 = hs_arena_alloc(p->a, nfr * sizeof(*v2));
        size_t k = 0;
        for (size_t i = 0; v2 != NULL && i < nfr; i++) {
            json_t *e = json_array_get(fr, i);
            if (json_is_string(e))
                v2[k++] = dup_str(p, e);
        }
        r->finish_reasons = v2;
        r->nfinish_reasons = v2 != NULL ? k : 0;
    }
}

static int parse_tree(struct pctx *p, json_t *root, const char *line, size_t len,
                      struct capture_record *r)
{
    if (!json_is_object(root))
        return hs_err_set(p->err, HS_EINVAL, "record: expected an object");
    json_t *cd = json_object_get(root, "captureData");
    if (!json_is_object(cd))
        return hs_err_set(p->err, HS_EINVAL, "captureData: expected an object");
    int rc = HS_OK;
    json_t *in = json_object_get(cd, "endpointInput"), *out = json_object_get(cd, "endpointOutput");
    if (in != NULL && !json_is_null(in)) {
        r->has_input = true;
        rc = parse_payload(p, in, "captureData.endpointInput", &r->input_content_type,
                           &r->input_encoding, &r->input, &r->input_len);
    }
    if (rc == HS_OK && out != NULL && !json_is_null(out)) {
        r->has_output = true;
        rc = parse_payload(p, out, "captureData.endpointOutput", &r->output_content_type,
                           &r->output_encoding, &r->output, &r->output_len);
    }
    json_t *em = json_object_get(root, "eventMetadata");
    if (rc == HS_OK && !json_is_object(em))
        return hs_err_set(p->err, HS_EINVAL, "eventMetadata: expected an object");
    if (rc == HS_OK)
        rc = get_str(p, em, "eventId", "eventMetadata", false, &r->event_id);
    if (rc == HS_OK)
        rc = get_str(p, em, "inferenceId", "eventMetadata", false, &r->inference_id);
    if (rc == HS_OK)
        rc = get_str(p, em, "inferenceTime", "eventMetadata", true, &r->inference_time);
    if (rc == HS_OK)
        rc = get_str(p, em, "customAttributes", "eventMetadata", false, &r->custom_attributes);
    if (rc == HS_OK && capture_parse_time(r->inference_time, &r->t_recv_ms) != HS_OK)
        return hs_err_set(p->err, HS_EINVAL, "eventMetadata.inferenceTime: not RFC 3339: \"%s\"",
                          r->inference_time);
    if (rc != HS_OK)
        return rc;
    json_t *h = json_object_get(root, "holoscope");
    size_t vs, ve;
    if (json_is_object(h) && find_top_value(line, len, "holoscope", &vs, &ve)) {
        r->extension_json = hs_arena_strndup(p->a, line + vs, ve - vs);
        if (r->extension_json == NULL)
            return hs_err_set(p->err, HS_ENOMEM, "out of memory");
        parse_extension(p, h, r);
    }
    return HS_OK;
}

int capture_record_parse(const char *line, size_t len, struct hs_arena *a,
                         struct capture_record *out, struct hs_err *err)
{
    capture_record_init(out);
    json_error_t je;
    json_t *root = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return hs_err_setpos(err, HS_EPARSE, (size_t)je.position, "capture record: %s at byte %d",
                             je.text, je.position);
    struct pctx p = {a, err};
    int rc = parse_tree(&p, root, line, len, out);
    json_decref(root);
    return rc;
}
