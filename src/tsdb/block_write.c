/*
 * block_write.c - writes a block directory from a sorted stream of series.
 *
 * Chunk bytes go straight to chunks/NNNNNN segment files as series arrive;
 * the index's series section is streamed too (label names and values are
 * written as symbol numbers assigned in first-seen order, so the symbol
 * table can follow the series).  What stays in memory until the end is the
 * symbol table and the postings (4 bytes per label per series).
 *
 * Everything is written under <ULID>.tmp and renamed into place once every
 * file and directory is fsynced: a crash leaves a .tmp directory that the
 * next tsdb__block_scan_dir removes, never a half block under a real name.
 * Byte layouts: docs/formats/block.md.
 */
#include "tsdb/block.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_MAGIC  0x48534958u /* "HSIX" */
#define CHUNKS_MAGIC 0x4853434bu /* "HSCK" */
#define FW_BUF_BYTES (1u << 20)

/* Buffered file writer that keeps the CRC32C of the current section. */
struct fw {
    int fd;
    char path[PATH_MAX];
    uint8_t *buf;
    size_t len;
    uint64_t off; /* bytes written to the file so far, buffered included */
    uint32_t crc; /* running CRC32C since the last fw_crc_reset */
};

struct sym {
    const char *s;
    size_t len;
};

struct plist {
    uint32_t name, value; /* symbol numbers */
    uint32_t *refs;
    uint32_t n, cap;
};

struct writer {
    char tmp_dir[PATH_MAX];
    struct fw index;
    struct fw seg;
    bool seg_open;
    uint32_t seg_no;
    uint64_t seg_max;
    struct hs_arena strings; /* symbol text */
    struct sym *syms;
    size_t n_syms, cap_syms;
    uint32_t *sym_ht; /* open addressing: sym number + 1, 0 = empty */
    size_t sym_ht_cap;
    struct plist *pl;
    size_t n_pl, cap_pl;
    uint32_t *pl_ht; /* list index + 1 */
    size_t pl_ht_cap;
    struct hs_labels *prev; /* last series, for the order check */
    uint64_t n_series, n_chunks, n_samples;
    int64_t mint, maxt; /* over all chunks, inclusive */
    int64_t base_time;  /* first chunk's mint, at the start of the series section */
    bool has_range;     /* chunks must lie in [range_min, range_max) */
    int64_t range_min, range_max;
};

/* ---- buffered files ----------------------------------------------------- */

static int fw_open(struct fw *f, const char *path, struct hs_err *err)
{
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    if (snprintf(f->path, sizeof(f->path), "%s", path) >= (int)sizeof(f->path))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", path);
    f->buf = hs_malloc(FW_BUF_BYTES);
    if (f->buf == NULL)
        return hs_err_set(err, HS_ENOMEM, "%s: out of memory", path);
    f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd < 0)
        return hs_err_set(err, HS_EIO, "create %s: %s", path, strerror(errno));
    return HS_OK;
}

static int fw_flush(struct fw *f, struct hs_err *err)
{
    size_t done = 0;
    while (done < f->len) {
        ssize_t n = write(f->fd, f->buf + done, f->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hs_err_set(err, HS_EIO, "write %s: %s", f->path, strerror(errno));
        done += (size_t)n;
    }
    f->len = 0;
    return HS_OK;
}

static int fw_write(struct fw *f, const void *data, size_t n, struct hs_err *err)
{
    const uint8_t *p = data;
    f->crc = hs_crc32c(f->crc, p, n);
    f->off += n;
    while (n > 0) {
        if (f->len == FW_BUF_BYTES) {
            int rc = fw_flush(f, err);
            if (rc != HS_OK)
                return rc;
        }
        size_t k = HS_MIN(n, FW_BUF_BYTES - f->len);
        memcpy(f->buf + f->len, p, k);
        f->len += k;
        p += k;
        n -= k;
    }
    return HS_OK;
}

static int fw_uvarint(struct fw *f, uint64_t v, struct hs_err *err)
{
    uint8_t b[10];
    return fw_write(f, b, tsdb__block_put_uvarint(b, v), err);
}

static int fw_be32(struct fw *f, uint32_t v, struct hs_err *err)
{
    uint8_t b[4];
    tsdb__block_put_be32(b, v);
    return fw_write(f, b, 4, err);
}

/* Writes the CRC of the section just finished (not itself part of any CRC). */
static int fw_end_section(struct fw *f, struct hs_err *err)
{
    uint32_t crc = f->crc;
    int rc = fw_be32(f, crc, err);
    f->crc = 0;
    return rc;
}

/* Flush, fsync, close.  Safe on a never-opened or already closed fw. */
static int fw_close(struct fw *f, bool sync, struct hs_err *err)
{
    int rc = HS_OK;
    if (f->fd >= 0) {
        if (sync) {
            rc = fw_flush(f, err);
            if (rc == HS_OK && fsync(f->fd) != 0)
                rc = hs_err_set(err, HS_EIO, "fsync %s: %s", f->path, strerror(errno));
        }
        if (close(f->fd) != 0 && rc == HS_OK && sync)
            rc = hs_err_set(err, HS_EIO, "close %s: %s", f->path, strerror(errno));
        f->fd = -1;
    }
    hs_free(f->buf);
    f->buf = NULL;
    return rc;
}

/* ---- symbols and postings ----------------------------------------------- */

static int sym_grow(struct writer *w)
{
    size_t cap = w->sym_ht_cap ? w->sym_ht_cap * 2 : 1024;
    uint32_t *ht = hs_calloc(cap, sizeof(*ht));
    if (ht == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < w->sym_ht_cap; i++) {
        uint32_t id = w->sym_ht[i];
        if (id == 0)
            continue;
        const struct sym *s = &w->syms[id - 1];
        size_t h = hs_hash64(s->s, s->len, 0) & (cap - 1);
        while (ht[h] != 0)
            h = (h + 1) & (cap - 1);
        ht[h] = id;
    }
    hs_free(w->sym_ht);
    w->sym_ht = ht;
    w->sym_ht_cap = cap;
    return HS_OK;
}

static int sym_intern(struct writer *w, const char *s, uint32_t *id)
{
    size_t len = strlen(s);
    if ((w->n_syms + 1) * 2 > w->sym_ht_cap && sym_grow(w) != HS_OK)
        return HS_ENOMEM;
    size_t h = hs_hash64(s, len, 0) & (w->sym_ht_cap - 1);
    for (; w->sym_ht[h] != 0; h = (h + 1) & (w->sym_ht_cap - 1)) {
        const struct sym *x = &w->syms[w->sym_ht[h] - 1];
        if (x->len == len && memcmp(x->s, s, len) == 0) {
            *id = w->sym_ht[h] - 1;
            return HS_OK;
        }
    }
    if (w->n_syms == w->cap_syms) {
        size_t cap = w->cap_syms ? w->cap_syms * 2 : 256;
        struct sym *n = hs_reallocarray(w->syms, cap, sizeof(*n));
        if (n == NULL)
            return HS_ENOMEM;
        w->syms = n;
        w->cap_syms = cap;
    }
    char *copy = hs_arena_strndup(&w->strings, s, len);
    if (copy == NULL)
        return HS_ENOMEM;
    w->syms[w->n_syms] = (struct sym){copy, len};
    w->sym_ht[h] = (uint32_t)++w->n_syms;
    *id = (uint32_t)(w->n_syms - 1);
    return HS_OK;
}

static size_t pl_hash(uint32_t name, uint32_t value, size_t cap)
{
    uint64_t k = (uint64_t)name << 32 | value;
    return (size_t)(hs_hash64(&k, sizeof(k), 1) & (cap - 1));
}

static int pl_grow(struct writer *w)
{
    size_t cap = w->pl_ht_cap ? w->pl_ht_cap * 2 : 1024;
    uint32_t *ht = hs_calloc(cap, sizeof(*ht));
    if (ht == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < w->n_pl; i++) {
        size_t h = pl_hash(w->pl[i].name, w->pl[i].value, cap);
        while (ht[h] != 0)
            h = (h + 1) & (cap - 1);
        ht[h] = (uint32_t)i + 1;
    }
    hs_free(w->pl_ht);
    w->pl_ht = ht;
    w->pl_ht_cap = cap;
    return HS_OK;
}

static int pl_add(struct writer *w, uint32_t name, uint32_t value, uint32_t ref)
{
    if ((w->n_pl + 1) * 2 > w->pl_ht_cap && pl_grow(w) != HS_OK)
        return HS_ENOMEM;
    size_t h = pl_hash(name, value, w->pl_ht_cap);
    for (; w->pl_ht[h] != 0; h = (h + 1) & (w->pl_ht_cap - 1)) {
        struct plist *l = &w->pl[w->pl_ht[h] - 1];
        if (l->name == name && l->value == value)
            break;
    }
    if (w->pl_ht[h] == 0) {
        if (w->n_pl == w->cap_pl) {
            size_t cap = w->cap_pl ? w->cap_pl * 2 : 256;
            struct plist *n = hs_reallocarray(w->pl, cap, sizeof(*n));
            if (n == NULL)
                return HS_ENOMEM;
            w->pl = n;
            w->cap_pl = cap;
        }
        w->pl[w->n_pl] = (struct plist){name, value, NULL, 0, 0};
        w->pl_ht[h] = (uint32_t)++w->n_pl;
    }
    struct plist *l = &w->pl[w->pl_ht[h] - 1];
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 2;
        uint32_t *n = hs_reallocarray(l->refs, cap, sizeof(*n));
        if (n == NULL)
            return HS_ENOMEM;
        l->refs = n;
        l->cap = cap;
    }
    l->refs[l->n++] = ref;
    return HS_OK;
}

/* ---- chunks ---------------------------------------------------------------- */

static int seg_start(struct writer *w, struct hs_err *err)
{
    if (w->seg_open) {
        int rc = fw_close(&w->seg, true, err);
        w->seg_open = false;
        if (rc != HS_OK)
            return rc;
    }
    if (w->seg_no == 999999)
        return hs_err_set(err, HS_ETOOBIG, "%s: too many chunk segments", w->tmp_dir);
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/chunks/%06u", w->tmp_dir, w->seg_no + 1) >=
        (int)sizeof(path))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", w->tmp_dir);
    int rc = fw_open(&w->seg, path, err);
    if (rc != HS_OK) {
        fw_close(&w->seg, false, NULL);
        return rc;
    }
    w->seg_open = true;
    w->seg_no++;
    uint8_t hdr[8] = {0};
    tsdb__block_put_be32(hdr, CHUNKS_MAGIC);
    hdr[4] = TSDB__BLOCK_VERSION;
    return fw_write(&w->seg, hdr, sizeof(hdr), err);
}

/* Appends one chunk record; returns its reference in *ref. */
static int chunk_put(struct writer *w, const struct tsdb__chunk_meta *c, uint64_t *ref,
                     struct hs_err *err)
{
    uint8_t hdr[11];
    size_t hl = tsdb__block_put_uvarint(hdr, c->len);
    hdr[hl++] = c->encoding;
    uint64_t rec = hl + c->len + 4;
    if (!w->seg_open || (w->seg.off > 8 && w->seg.off + rec > w->seg_max)) {
        int rc = seg_start(w, err);
        if (rc != HS_OK)
            return rc;
    }
    if (w->seg.off > UINT32_MAX)
        return hs_err_set(err, HS_ETOOBIG, "%s: chunk segment over 4 GiB", w->seg.path);
    *ref = (uint64_t)w->seg_no << 32 | w->seg.off;
    w->seg.crc = 0;
    int rc = fw_write(&w->seg, hdr, hl, err);
    if (rc == HS_OK)
        rc = fw_write(&w->seg, c->data, c->len, err);
    /* The CRC covers the encoding byte and the data, not the length. */
    uint32_t crc = hs_crc32c(hs_crc32c(0, &c->encoding, 1), c->data, c->len);
    if (rc == HS_OK)
        rc = fw_be32(&w->seg, crc, err);
    return rc;
}

/* ---- series ----------------------------------------------------------------- */

static int check_series(struct writer *w, const struct hs_labels *ls,
                        const struct tsdb__chunk_meta *c, size_t n, struct hs_err *err)
{
    if (ls == NULL || ls->n == 0 || !hs_labels_valid(ls))
        return hs_err_set(err, HS_EINVAL, "block writer: series %llu has an invalid label set",
                          (unsigned long long)w->n_series);
    if (ls->n > TSDB__BLOCK_MAX_LABELS)
        return hs_err_set(err, HS_ETOOBIG, "block writer: series with %zu labels", ls->n);
    if (w->prev != NULL && hs_labels_cmp(w->prev, ls) >= 0)
        return hs_err_set(err, HS_EINVAL, "block writer: series %llu out of label order",
                          (unsigned long long)w->n_series);
    for (size_t i = 0; i < n; i++) {
        if (c[i].maxt < c[i].mint || (c[i].len > 0 && c[i].data == NULL) ||
            c[i].len > TSDB__BLOCK_MAX_CHUNK_BYTES)
            return hs_err_set(err, HS_EINVAL, "block writer: series %llu: invalid chunk %zu",
                              (unsigned long long)w->n_series, i);
        if (w->has_range && (c[i].mint < w->range_min || c[i].maxt >= w->range_max))
            return hs_err_set(err, HS_EINVAL,
                              "block writer: series %llu: chunk %zu [%lld, %lld] outside the "
                              "block range [%lld, %lld)",
                              (unsigned long long)w->n_series, i, (long long)c[i].mint,
                              (long long)c[i].maxt, (long long)w->range_min,
                              (long long)w->range_max);
    }
    return HS_OK;
}

static int series_put(struct writer *w, const struct hs_labels *ls,
                      const struct tsdb__chunk_meta *c, size_t n, struct hs_err *err)
{
    int rc = check_series(w, ls, c, n, err);
    if (rc != HS_OK)
        return rc;
    if (w->n_series == UINT32_MAX)
        return hs_err_set(err, HS_ETOOBIG, "block writer: too many series");
    struct hs_labels *copy = hs_labels_dup(ls);
    if (copy == NULL)
        return hs_err_set(err, HS_ENOMEM, "block writer: out of memory");
    hs_labels_free(w->prev);
    w->prev = copy;
    if (w->n_series == 0) {
        /* The section starts with a base time so first chunks store small deltas. */
        w->base_time = c[0].mint;
        uint8_t b[10];
        rc = fw_write(&w->index, b, tsdb__block_put_varint(b, w->base_time), err);
        if (rc != HS_OK)
            return rc;
    }
    uint32_t ref = (uint32_t)w->n_series;
    rc = fw_uvarint(&w->index, ls->n, err);
    for (size_t i = 0; rc == HS_OK && i < ls->n; i++) {
        uint32_t name, value;
        if (sym_intern(w, ls->v[i].name, &name) != HS_OK ||
            sym_intern(w, ls->v[i].value, &value) != HS_OK || pl_add(w, name, value, ref) != HS_OK)
            return hs_err_set(err, HS_ENOMEM, "block writer: out of memory");
        rc = fw_uvarint(&w->index, name, err);
        if (rc == HS_OK)
            rc = fw_uvarint(&w->index, value, err);
    }
    if (rc == HS_OK)
        rc = fw_uvarint(&w->index, n, err);
    /* Times as wrapping differences: the reader adds them back the same way. */
    int64_t prev_maxt = w->base_time;
    uint64_t prev_ref = 0;
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        uint64_t cref = 0;
        rc = chunk_put(w, &c[i], &cref, err);
        uint8_t b[48];
        size_t k = tsdb__block_put_varint(b, (int64_t)((uint64_t)c[i].mint - (uint64_t)prev_maxt));
        k += tsdb__block_put_uvarint(b + k, (uint64_t)c[i].maxt - (uint64_t)c[i].mint);
        k += tsdb__block_put_uvarint(b + k, c[i].num_samples);
        b[k++] = c[i].encoding;
        k += tsdb__block_put_uvarint(b + k, cref - prev_ref);
        if (rc == HS_OK)
            rc = fw_write(&w->index, b, k, err);
        prev_maxt = c[i].maxt;
        prev_ref = cref;
        w->mint = HS_MIN(w->mint, c[i].mint);
        w->maxt = HS_MAX(w->maxt, c[i].maxt);
        w->n_samples += c[i].num_samples;
    }
    w->n_series++;
    w->n_chunks += n;
    return rc;
}

/* ---- index tail: symbols, postings, offset table, TOC ------------------------ */

static int cmp_str(const struct sym *a, const struct sym *b)
{
    int c = memcmp(a->s, b->s, HS_MIN(a->len, b->len));
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int cmp_plist(const void *x, const void *y, void *ctx)
{
    const struct plist *a = x, *b = y;
    const struct sym *syms = ctx;
    int c = cmp_str(&syms[a->name], &syms[b->name]);
    return c ? c : cmp_str(&syms[a->value], &syms[b->value]);
}

static int write_tail(struct writer *w, uint64_t toc[8], struct hs_err *err)
{
    struct fw *f = &w->index;
    int rc;
    toc[2] = f->off; /* symbols */
    rc = fw_uvarint(f, w->n_syms, err);
    for (size_t i = 0; rc == HS_OK && i < w->n_syms; i++) {
        rc = fw_uvarint(f, w->syms[i].len, err);
        if (rc == HS_OK)
            rc = fw_write(f, w->syms[i].s, w->syms[i].len + 1, err); /* with the NUL */
    }
    toc[3] = f->off - toc[2];
    if (rc == HS_OK)
        rc = fw_end_section(f, err);
    /* Postings, in (name, value) string order so the offset table is sorted. */
    if (w->n_pl > 1)
        qsort_r(w->pl, w->n_pl, sizeof(*w->pl), cmp_plist, w->syms);
    uint64_t *offs = hs_reallocarray(NULL, w->n_pl ? w->n_pl : 1, sizeof(*offs));
    if (offs == NULL)
        return hs_err_set(err, HS_ENOMEM, "block writer: out of memory");
    toc[4] = f->off;
    for (size_t i = 0; rc == HS_OK && i < w->n_pl; i++) {
        offs[i] = f->off - toc[4];
        const struct plist *l = &w->pl[i];
        rc = fw_uvarint(f, l->n, err);
        for (uint32_t j = 0; rc == HS_OK && j < l->n; j++)
            rc = fw_uvarint(f, j ? l->refs[j] - l->refs[j - 1] : l->refs[0], err);
    }
    toc[5] = f->off - toc[4];
    if (rc == HS_OK)
        rc = fw_end_section(f, err);
    toc[6] = f->off;
    if (rc == HS_OK)
        rc = fw_uvarint(f, w->n_pl, err);
    for (size_t i = 0; rc == HS_OK && i < w->n_pl; i++) {
        rc = fw_uvarint(f, w->pl[i].name, err);
        if (rc == HS_OK)
            rc = fw_uvarint(f, w->pl[i].value, err);
        if (rc == HS_OK)
            rc = fw_uvarint(f, offs[i], err);
    }
    hs_free(offs);
    toc[7] = f->off - toc[6];
    if (rc == HS_OK)
        rc = fw_end_section(f, err);
    uint8_t t[68];
    for (int i = 0; i < 8; i++)
        tsdb__block_put_be64(t + 8 * i, toc[i]);
    tsdb__block_put_be32(t + 64, hs_crc32c(0, t, 64));
    if (rc == HS_OK)
        rc = fw_write(f, t, sizeof(t), err);
    return rc;
}

/* ---- meta and the whole write --------------------------------------------- */

static int cmp_ulid(const void *a, const void *b)
{
    return memcmp(a, b, TSDB__ULID_LEN);
}

static int build_meta(struct writer *w, const struct tsdb__block_write_opts *o,
                      struct tsdb__block_meta *m, const char *ulid, struct hs_err *err)
{
    memset(m, 0, sizeof(*m));
    memcpy(m->ulid, ulid, TSDB__ULID_LEN + 1);
    m->min_time = o->has_range ? o->min_time : w->mint;
    m->max_time = o->has_range ? o->max_time : (w->maxt < INT64_MAX ? w->maxt + 1 : INT64_MAX);
    m->num_samples = w->n_samples;
    m->num_series = w->n_series;
    m->num_chunks = w->n_chunks;
    m->level = o->level > 0 ? o->level : 1;
    m->version = TSDB__BLOCK_VERSION;
    size_t n = 0;
    for (size_t i = 0; i < o->n_parents; i++)
        n += o->parents[i].n_sources;
    if (n == 0) {
        n = 1;
        m->sources = hs_malloc(sizeof(*m->sources));
        if (m->sources == NULL)
            return hs_err_set(err, HS_ENOMEM, "block writer: out of memory");
        memcpy(m->sources[0], ulid, TSDB__ULID_LEN + 1);
        m->n_sources = 1;
        return HS_OK;
    }
    m->sources = hs_reallocarray(NULL, n, sizeof(*m->sources));
    if (m->sources == NULL)
        return hs_err_set(err, HS_ENOMEM, "block writer: out of memory");
    for (size_t i = 0; i < o->n_parents; i++)
        for (size_t j = 0; j < o->parents[i].n_sources; j++)
            memcpy(m->sources[m->n_sources++], o->parents[i].sources[j], TSDB__ULID_LEN + 1);
    qsort(m->sources, m->n_sources, sizeof(*m->sources), cmp_ulid);
    size_t k = 0;
    for (size_t i = 0; i < m->n_sources; i++)
        if (k == 0 || memcmp(m->sources[k - 1], m->sources[i], TSDB__ULID_LEN) != 0)
            memmove(m->sources[k++], m->sources[i], sizeof(*m->sources));
    m->n_sources = k;
    return HS_OK;
}

static void writer_free(struct writer *w)
{
    fw_close(&w->index, false, NULL);
    if (w->seg_open)
        fw_close(&w->seg, false, NULL);
    hs_arena_cleanup(&w->strings);
    hs_free(w->syms);
    hs_free(w->sym_ht);
    for (size_t i = 0; i < w->n_pl; i++)
        hs_free(w->pl[i].refs);
    hs_free(w->pl);
    hs_free(w->pl_ht);
    hs_labels_free(w->prev);
}

static int write_files(struct writer *w, tsdb__block_series_next_fn *next, void *ctx,
                       struct hs_err *err)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/chunks", w->tmp_dir);
    if (mkdir(path, 0755) != 0)
        return hs_err_set(err, HS_EIO, "mkdir %s: %s", path, strerror(errno));
    snprintf(path, sizeof(path), "%s/index", w->tmp_dir);
    int rc = fw_open(&w->index, path, err);
    uint8_t hdr[8] = {0};
    tsdb__block_put_be32(hdr, INDEX_MAGIC);
    hdr[4] = TSDB__BLOCK_VERSION;
    if (rc == HS_OK)
        rc = fw_write(&w->index, hdr, sizeof(hdr), err);
    w->index.crc = 0;
    uint64_t toc[8] = {w->index.off};
    while (rc == HS_OK) {
        const struct hs_labels *ls = NULL;
        const struct tsdb__chunk_meta *c = NULL;
        size_t n = 0;
        int more = next(ctx, &ls, &c, &n, err);
        if (more < 0)
            return more;
        if (more == 0)
            break;
        if (n > 0)
            rc = series_put(w, ls, c, n, err);
    }
    if (rc == HS_OK && w->n_series == 0)
        rc = hs_err_set(err, HS_EINVAL, "block writer: empty block");
    toc[1] = w->index.off - toc[0];
    if (rc == HS_OK)
        rc = fw_end_section(&w->index, err);
    if (rc == HS_OK)
        rc = write_tail(w, toc, err);
    if (rc == HS_OK)
        rc = fw_close(&w->index, true, err);
    if (rc == HS_OK && w->seg_open) {
        rc = fw_close(&w->seg, true, err);
        w->seg_open = false;
    }
    snprintf(path, sizeof(path), "%s/chunks", w->tmp_dir);
    if (rc == HS_OK)
        rc = hs_fsync_dir(path, err);
    return rc;
}

int tsdb__block_write(const char *data_dir, const struct tsdb__block_write_opts *o,
                      tsdb__block_series_next_fn *next, void *ctx,
                      struct tsdb__block_meta *meta_out, struct hs_err *err)
{
    static const struct tsdb__block_write_opts defaults = {0};
    if (o == NULL)
        o = &defaults;
    if (next == NULL || data_dir == NULL)
        return hs_err_set(err, HS_EINVAL, "block writer: no data dir or series source");
    char ulid[TSDB__ULID_LEN + 1];
    int rc = tsdb__block_ulid_new(o->now_ms ? o->now_ms : hs_now_ms(), ulid, err);
    if (rc != HS_OK)
        return rc;
    struct writer w = {0};
    w.index.fd = -1;
    w.seg.fd = -1;
    w.seg_max = o->segment_max_bytes ? o->segment_max_bytes : TSDB__BLOCK_SEGMENT_MAX_BYTES;
    w.mint = INT64_MAX;
    w.maxt = INT64_MIN;
    w.has_range = o->has_range;
    w.range_min = o->min_time;
    w.range_max = o->max_time;
    if (o->has_range && o->max_time <= o->min_time)
        return hs_err_set(err, HS_EINVAL, "block writer: empty block range");
    hs_arena_init(&w.strings, 64 * 1024, 0);
    char final_dir[PATH_MAX];
    struct tsdb__block_meta meta = {0};
    if (snprintf(w.tmp_dir, sizeof(w.tmp_dir), "%s/%s.tmp", data_dir, ulid) >=
            (int)sizeof(w.tmp_dir) ||
        snprintf(final_dir, sizeof(final_dir), "%s/%s", data_dir, ulid) >= (int)sizeof(final_dir)) {
        rc = hs_err_set(err, HS_EINVAL, "%s: path too long", data_dir);
        goto out;
    }
    if (mkdir(w.tmp_dir, 0755) != 0) {
        rc = hs_err_set(err, HS_EIO, "mkdir %s: %s", w.tmp_dir, strerror(errno));
        goto out;
    }
    rc = write_files(&w, next, ctx, err);
    if (rc == HS_OK)
        rc = build_meta(&w, o, &meta, ulid, err);
    if (rc == HS_OK)
        rc = tsdb__block_meta_write(w.tmp_dir, &meta, err);
    if (rc == HS_OK)
        rc = hs_fsync_dir(w.tmp_dir, err);
    if (rc == HS_OK && rename(w.tmp_dir, final_dir) != 0)
        rc = hs_err_set(err, HS_EIO, "rename %s: %s", w.tmp_dir, strerror(errno));
    if (rc == HS_OK)
        rc = hs_fsync_dir(data_dir, err);
out:
    writer_free(&w);
    if (rc != HS_OK) {
        struct hs_err e2 = {0};
        if (tsdb__block_remove_all(w.tmp_dir, &e2) != HS_OK)
            hs_log(HS_LOG_WARN, "cannot remove unfinished block", HS_LSTR("error", e2.msg));
        tsdb__block_meta_cleanup(&meta);
        return rc;
    }
    meta.size_bytes = tsdb__block_dir_size(final_dir);
    if (meta_out != NULL)
        *meta_out = meta;
    else
        tsdb__block_meta_cleanup(&meta);
    return HS_OK;
}

/* ---- tombstones -------------------------------------------------------------- */

#define TOMB_MAGIC 0x48535442u /* "HSTB" */

int tsdb__block_tombstones_write(const char *block_dir, const struct tsdb__block_tombstone *t,
                                 size_t n, struct hs_err *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/tombstones", block_dir) >= (int)sizeof(path))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", block_dir);
    struct tsdb__block_meta m;
    int rc = tsdb__block_meta_read(block_dir, &m, err);
    if (rc != HS_OK)
        return rc;
    struct hs_buf b;
    hs_buf_init(&b, 0);
    if (n == 0) {
        if (unlink(path) != 0 && errno != ENOENT)
            rc = hs_err_set(err, HS_EIO, "unlink %s: %s", path, strerror(errno));
        goto meta;
    }
    uint8_t hdr[8] = {0};
    tsdb__block_put_be32(hdr, TOMB_MAGIC);
    hdr[4] = TSDB__BLOCK_VERSION;
    rc = hs_buf_append(&b, hdr, sizeof(hdr));
    uint8_t v[10];
    if (rc == HS_OK)
        rc = hs_buf_append(&b, v, tsdb__block_put_uvarint(v, n));
    for (size_t i = 0; rc == HS_OK && i < n; i++) {
        uint8_t e[32];
        if (t[i].maxt < t[i].mint || t[i].series_ref >= m.num_series) {
            rc = hs_err_set(err, HS_EINVAL, "%s: tombstone %zu: bad series or range", path, i);
            goto out;
        }
        size_t k = tsdb__block_put_uvarint(e, t[i].series_ref);
        k += tsdb__block_put_varint(e + k, t[i].mint);
        k += tsdb__block_put_varint(e + k, t[i].maxt);
        rc = hs_buf_append(&b, e, k);
    }
    uint8_t crc[4];
    tsdb__block_put_be32(crc, b.p ? hs_crc32c(0, b.p + 8, b.len - 8) : 0);
    if (rc == HS_OK)
        rc = hs_buf_append(&b, crc, 4);
    if (rc != HS_OK) {
        rc = hs_err_set(err, rc, "%s: out of memory", path);
        goto out;
    }
    rc = hs_write_file_atomic(path, b.p, b.len, err);
meta:
    if (rc == HS_OK) {
        m.num_tombstones = n;
        rc = tsdb__block_meta_write(block_dir, &m, err);
    }
out:
    hs_buf_cleanup(&b);
    tsdb__block_meta_cleanup(&m);
    return rc;
}
