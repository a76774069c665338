/*
 * block_meta.c - what every block file shares: ULIDs, meta.json, varints
 * and big-endian integers, and directory removal.
 *
 * meta.json is written by hand (hs_buf) and read with jansson; it carries no
 * checksum, so the reader checks every field's type and range instead.
 * Byte layouts and the meta.json schema: docs/formats/block.md.
 */
#include "tsdb/block.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* ---- integers --------------------------------------------------------- */

size_t tsdb__block_put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t tsdb__block_put_varint(uint8_t *p, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    return tsdb__block_put_uvarint(p, u);
}

int tsdb__block_get_uvarint(const uint8_t *p, size_t end, size_t *off, uint64_t *v)
{
    uint64_t x = 0;
    size_t i = *off;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (i >= end)
            return HS_ECORRUPT;
        uint8_t c = p[i++];
        if (shift == 63 && c > 1)
            return HS_ECORRUPT;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *off = i;
            *v = x;
            return HS_OK;
        }
    }
    return HS_ECORRUPT;
}

int tsdb__block_get_varint(const uint8_t *p, size_t end, size_t *off, int64_t *v)
{
    uint64_t u;
    int rc = tsdb__block_get_uvarint(p, end, off, &u);
    if (rc == HS_OK)
        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return rc;
}

void tsdb__block_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t tsdb__block_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void tsdb__block_put_be64(uint8_t *p, uint64_t v)
{
    tsdb__block_put_be32(p, (uint32_t)(v >> 32));
    tsdb__block_put_be32(p + 4, (uint32_t)v);
}

uint64_t tsdb__block_get_be64(const uint8_t *p)
{
    return (uint64_t)tsdb__block_get_be32(p) << 32 | tsdb__block_get_be32(p + 4);
}

/* ---- ULIDs ------------------------------------------------------------- */

int tsdb__block_ulid_new(int64_t t_ms, char out[TSDB__ULID_LEN + 1], struct hs_err *err)
{
    uint8_t b[16];
    uint64_t t = (uint64_t)t_ms & 0xffffffffffffULL;
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(t >> (40 - 8 * i));
    size_t got = 0;
    while (got < 10) {
        ssize_t r = getrandom(b + 6 + got, 10 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return hs_err_set(err, HS_EIO, "getrandom: %s", strerror(errno));
        got += (size_t)r;
    }
    /* 128 bits as 26 groups of 5 bits, the first group holding 3 bits. */
    for (int i = 0; i < TSDB__ULID_LEN; i++) {
        int bit = 128 - 5 * (TSDB__ULID_LEN - i); /* index of the group's top bit; -2 first */
        unsigned v = 0;
        for (int k = 0; k < 5; k++) {
            int pos = bit + k;
            v <<= 1;
            if (pos >= 0)
                v |= (b[pos / 8] >> (7 - pos % 8)) & 1u;
        }
        out[i] = crockford[v];
    }
    out[TSDB__ULID_LEN] = '\0';
    return HS_OK;
}

static int crockford_value(char c)
{
    const char *p = c ? strchr(crockford, c) : NULL;
    return p ? (int)(p - crockford) : -1;
}

bool tsdb__block_ulid_valid(const char *s)
{
    if (s == NULL || strlen(s) != TSDB__ULID_LEN)
        return false;
    for (int i = 0; i < TSDB__ULID_LEN; i++)
        if (crockford_value(s[i]) < 0)
            return false;
    return crockford_value(s[0]) <= 7; /* the first character holds 3 bits */
}

int64_t tsdb__block_ulid_time(const char *s)
{
    uint64_t t = 0;
    for (int i = 0; i < 10; i++) /* 10 chars = 50 bits, the top 2 zero */
        t = t << 5 | (uint64_t)crockford_value(s[i]);
    return (int64_t)t;
}

/* ---- meta.json ----------------------------------------------------------- */

void tsdb__block_meta_cleanup(struct tsdb__block_meta *m)
{
    if (m == NULL)
        return;
    hs_free(m->sources);
    memset(m, 0, sizeof(*m));
}

int tsdb__block_meta_copy(struct tsdb__block_meta *dst, const struct tsdb__block_meta *src)
{
    *dst = *src;
    dst->sources = NULL;
    if (src->n_sources > 0) {
        dst->sources = hs_reallocarray(NULL, src->n_sources, sizeof(*src->sources));
        if (dst->sources == NULL) {
            memset(dst, 0, sizeof(*dst));
            return HS_ENOMEM;
        }
        memcpy(dst->sources, src->sources, src->n_sources * sizeof(*src->sources));
    }
    return HS_OK;
}

void tsdb__block_metas_free(struct tsdb__block_meta *m, size_t n)
{
    for (size_t i = 0; m != NULL && i < n; i++)
        tsdb__block_meta_cleanup(&m[i]);
    hs_free(m);
}

static int meta_format(const struct tsdb__block_meta *m, struct hs_buf *b)
{
    int rc = hs_buf_printf(b,
                           "{\n  \"ulid\": \"%s\",\n  \"minTime\": %lld,\n  \"maxTime\": %lld,\n"
                           "  \"stats\": {\n    \"numSamples\": %llu,\n    \"numSeries\": %llu,\n"
                           "    \"numChunks\": %llu,\n    \"numTombstones\": %llu\n  },\n"
                           "  \"compaction\": {\n    \"level\": %d,\n    \"sources\": [",
                           m->ulid, (long long)m->min_time, (long long)m->max_time,
                           (unsigned long long)m->num_samples, (unsigned long long)m->num_series,
                           (unsigned long long)m->num_chunks, (unsigned long long)m->num_tombstones,
                           m->level);
    for (size_t i = 0; rc == HS_OK && i < m->n_sources; i++)
        rc = hs_buf_printf(b, "%s\n      \"%s\"", i ? "," : "", m->sources[i]);
    if (rc == HS_OK)
        rc = hs_buf_printf(b, "%s]\n  },\n  \"version\": %d\n}\n", m->n_sources ? "\n    " : "",
                           m->version);
    return rc;
}

int tsdb__block_meta_write(const char *block_dir, const struct tsdb__block_meta *m,
                           struct hs_err *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/meta.json", block_dir) >= (int)sizeof(path))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", block_dir);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    int rc = meta_format(m, &b);
    if (rc != HS_OK)
        rc = hs_err_set(err, rc, "%s: out of memory", path);
    else
        rc = hs_write_file_atomic(path, b.p, b.len, err);
    hs_buf_cleanup(&b);
    return rc;
}

static bool json_i64(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

static bool json_u64(json_t *o, const char *key, uint64_t *out)
{
    int64_t v;
    if (!json_i64(o, key, &v) || v < 0)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* Fills m from the parsed document; returns the name of the bad field or NULL. */
static const char *meta_from_json(json_t *root, struct tsdb__block_meta *m, int *rc)
{
    *rc = HS_ECORRUPT;
    json_t *ulid = json_object_get(root, "ulid");
    if (!json_is_string(ulid) || !tsdb__block_ulid_valid(json_string_value(ulid)))
        return "ulid";
    memcpy(m->ulid, json_string_value(ulid), TSDB__ULID_LEN + 1);
    if (!json_i64(root, "minTime", &m->min_time))
        return "minTime";
    if (!json_i64(root, "maxTime", &m->max_time) || m->max_time < m->min_time)
        return "maxTime";
    json_t *st = json_object_get(root, "stats");
    if (!json_is_object(st))
        return "stats";
    if (!json_u64(st, "numSamples", &m->num_samples))
        return "stats.numSamples";
    if (!json_u64(st, "numSeries", &m->num_series))
        return "stats.numSeries";
    if (!json_u64(st, "numChunks", &m->num_chunks))
        return "stats.numChunks";
    if (json_object_get(st, "numTombstones") && !json_u64(st, "numTombstones", &m->num_tombstones))
        return "stats.numTombstones";
    json_t *c = json_object_get(root, "compaction");
    int64_t level;
    if (!json_is_object(c))
        return "compaction";
    if (!json_i64(c, "level", &level) || level < 1 || level > 1000)
        return "compaction.level";
    m->level = (int)level;
    json_t *src = json_object_get(c, "sources");
    if (!json_is_array(src) || json_array_size(src) > TSDB__BLOCK_MAX_SOURCES)
        return "compaction.sources";
    size_t ns = json_array_size(src);
    if (ns > 0) {
        m->sources = hs_reallocarray(NULL, ns, sizeof(*m->sources));
        if (m->sources == NULL) {
            *rc = HS_ENOMEM;
            return "compaction.sources";
        }
    }
    for (size_t i = 0; i < ns; i++) {
        json_t *s = json_array_get(src, i);
        if (!json_is_string(s) || !tsdb__block_ulid_valid(json_string_value(s)))
            return "compaction.sources";
        memcpy(m->sources[i], json_string_value(s), TSDB__ULID_LEN + 1);
        m->n_sources = i + 1;
    }
    int64_t version;
    if (!json_i64(root, "version", &version) || version != TSDB__BLOCK_VERSION)
        return "version";
    m->version = (int)version;
    *rc = HS_OK;
    return NULL;
}

int tsdb__block_meta_read(const char *block_dir, struct tsdb__block_meta *m, struct hs_err *err)
{
    memset(m, 0, sizeof(*m));
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/meta.json", block_dir) >= (int)sizeof(path))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", block_dir);
    size_t len;
    struct hs_err e2 = {0};
    char *text = hs_read_file(path, TSDB__BLOCK_META_MAX_BYTES, &len, &e2);
    if (text == NULL) {
        int code = e2.code == HS_ETOOBIG ? HS_ECORRUPT : e2.code;
        return hs_err_set(err, code, "%s", e2.msg);
    }
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    hs_free(text);
    if (root == NULL)
        return hs_err_setpos(err, HS_ECORRUPT, (size_t)(je.position > 0 ? je.position : 0),
                             "%s: invalid JSON at offset %d: %s", path, je.position, je.text);
    int rc = HS_ECORRUPT;
    const char *bad = json_is_object(root) ? meta_from_json(root, m, &rc) : "document";
    json_decref(root);
    if (bad != NULL) {
        tsdb__block_meta_cleanup(m);
        if (rc == HS_ENOMEM)
            return hs_err_set(err, rc, "%s: out of memory", path);
        return hs_err_set(err, HS_ECORRUPT, "%s: missing or invalid %s", path, bad);
    }
    return HS_OK;
}

/* ---- directories ----------------------------------------------------------- */

int tsdb__block_remove_all(const char *path, struct hs_err *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? HS_OK : hs_err_set(err, HS_EIO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d == NULL)
            return hs_err_set(err, HS_EIO, "opendir %s: %s", path, strerror(errno));
        struct dirent *e;
        int rc = HS_OK;
        while (rc == HS_OK && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[PATH_MAX];
            if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
                rc = hs_err_set(err, HS_EINVAL, "%s: path too long", path);
            else
                rc = tsdb__block_remove_all(sub, err);
        }
        closedir(d);
        if (rc != HS_OK)
            return rc;
        if (rmdir(path) != 0)
            return hs_err_set(err, HS_EIO, "rmdir %s: %s", path, strerror(errno));
        return HS_OK;
    }
    if (unlink(path) != 0)
        return hs_err_set(err, HS_EIO, "unlink %s: %s", path, strerror(errno));
    return HS_OK;
}

uint64_t tsdb__block_dir_size(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISDIR(st.st_mode))
        return S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < (int)sizeof(sub))
            total += tsdb__block_dir_size(sub);
    }
    closedir(d);
    return total;
}
