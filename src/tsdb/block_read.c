/*
 * block_read.c - opens a block directory read-only and answers lookups.
 *
 * The index and every chunk segment are mmapped.  Open does all the
 * checking up front: the CRC32C of the table of contents and of every
 * index section, then a full parse of the symbol table, every series entry
 * (label symbols in range and sorted, every chunk reference inside its
 * segment with its record fitting), the postings offset table (sorted) and
 * every postings list (ascending, in range).  After a successful open the
 * block is immutable, so lookups take no lock and may run on any number of
 * threads; only chunk CRCs are left to read time (tsdb__block_chunk).
 * Byte layouts: docs/formats/block.md.
 */
#include "tsdb/block.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_MAGIC  0x48534958u /* "HSIX" */
#define CHUNKS_MAGIC 0x4853434bu /* "HSCK" */
#define TOMB_MAGIC   0x48535442u /* "HSTB" */
#define HDR_BYTES    8
#define TOC_BYTES    68
#define MAX_SEGMENTS 999999

struct seg {
    const uint8_t *p;
    size_t len;
    char path[PATH_MAX + 32];
};

struct pentry {
    uint32_t name, value; /* symbol numbers */
    uint64_t off;         /* list offset within the postings section */
};

struct tsdb__block {
    char dir[PATH_MAX];
    char index_path[PATH_MAX];
    struct tsdb__block_meta meta;
    const uint8_t *idx; /* mapped index */
    size_t idx_len;
    struct seg *segs; /* segs[i] is chunks/<i+1> */
    size_t n_segs;
    const char **syms; /* NUL-terminated, in the mapped index */
    size_t n_syms;
    uint64_t *series_off; /* index offset of each series entry */
    size_t n_series;
    size_t series_end;
    int64_t base_time; /* first chunk mints are stored relative to it */
    struct pentry *pt; /* sorted by (name, value) text */
    size_t n_pt;
    size_t post_off, post_len; /* postings section */
    struct tsdb__block_tombstone *tombs;
    size_t n_tombs;
};

static int corrupt(struct hs_err *err, const char *path, size_t off, const char *what)
{
    return hs_err_setpos(err, HS_ECORRUPT, off, "%s: %s at offset %zu", path, what, off);
}

/* ---- mapping ------------------------------------------------------------- */

static int map_file(const char *path, size_t min_len, const uint8_t **p, size_t *len,
                    struct hs_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hs_err_set(err, errno == ENOENT ? HS_ECORRUPT : HS_EIO, "%s: %s", path,
                          strerror(errno));
    struct stat st;
    int rc = HS_OK;
    if (fstat(fd, &st) != 0) {
        rc = hs_err_set(err, HS_EIO, "%s: %s", path, strerror(errno));
    } else if ((uint64_t)st.st_size < min_len) {
        rc = hs_err_setpos(err, HS_ECORRUPT, 0, "%s: file is %lld bytes, shorter than %zu", path,
                           (long long)st.st_size, min_len);
    } else {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            rc = hs_err_set(err, HS_EIO, "mmap %s: %s", path, strerror(errno));
        } else {
            *p = m;
            *len = (size_t)st.st_size;
        }
    }
    close(fd);
    return rc;
}

static int map_segments(struct tsdb__block *b, struct hs_err *err)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof(dir), "%s/chunks", b->dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return hs_err_set(err, HS_ECORRUPT, "%s: %s", dir, strerror(errno));
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t v;
        if (strlen(e->d_name) == 6 && hs_parse_u64(e->d_name, &v) == HS_OK && v >= 1 &&
            v <= MAX_SEGMENTS)
            n = HS_MAX(n, (size_t)v);
    }
    closedir(d);
    b->segs = hs_calloc(n ? n : 1, sizeof(*b->segs));
    if (b->segs == NULL)
        return hs_err_set(err, HS_ENOMEM, "%s: out of memory", dir);
    for (size_t i = 0; i < n; i++) {
        struct seg *s = &b->segs[i];
        snprintf(s->path, sizeof(s->path), "%s/%06zu", dir, i + 1);
        int rc = map_file(s->path, HDR_BYTES, &s->p, &s->len, err);
        if (rc != HS_OK)
            return rc;
        b->n_segs = i + 1;
        if (tsdb__block_get_be32(s->p) != CHUNKS_MAGIC || s->p[4] != TSDB__BLOCK_VERSION)
            return corrupt(err, s->path, 0, "bad magic or version");
    }
    return HS_OK;
}

/* ---- chunk records -------------------------------------------------------- */

/* Locates chunk 'ref': its segment, the offset of its data and its length. */
static int chunk_locate(const struct tsdb__block *b, uint64_t ref, const struct seg **sp,
                        size_t *data_off, uint32_t *len, struct hs_err *err)
{
    uint64_t sn = ref >> 32;
    size_t off = (size_t)(ref & 0xffffffffu);
    if (sn < 1 || sn > b->n_segs)
        return hs_err_set(err, HS_ECORRUPT, "%s: chunk reference %llu names missing segment %llu",
                          b->index_path, (unsigned long long)ref, (unsigned long long)sn);
    const struct seg *s = &b->segs[sn - 1];
    uint64_t l;
    size_t p = off;
    if (off < HDR_BYTES || tsdb__block_get_uvarint(s->p, s->len, &p, &l) != HS_OK ||
        l > TSDB__BLOCK_MAX_CHUNK_BYTES || p + 1 + l + 4 > s->len)
        return corrupt(err, s->path, off, "chunk record out of bounds or truncated");
    *sp = s;
    *data_off = p; /* the encoding byte */
    *len = (uint32_t)l;
    return HS_OK;
}

int tsdb__block_chunk(const struct tsdb__block *b, struct tsdb__chunk_meta *m, struct hs_err *err)
{
    const struct seg *s = NULL;
    size_t p = 0;
    uint32_t len = 0;
    int rc = chunk_locate(b, m->ref, &s, &p, &len, err);
    if (rc != HS_OK)
        return rc;
    uint32_t want = tsdb__block_get_be32(s->p + p + 1 + len);
    if (hs_crc32c(0, s->p + p, (size_t)len + 1) != want)
        return corrupt(err, s->path, (size_t)(m->ref & 0xffffffffu), "chunk checksum mismatch");
    m->encoding = s->p[p];
    m->data = s->p + p + 1;
    m->len = len;
    return HS_OK;
}

/* ---- index sections ----------------------------------------------------------- */

static int check_sections(struct tsdb__block *b, uint64_t toc[8], struct hs_err *err)
{
    const uint8_t *p = b->idx;
    size_t toc_at = b->idx_len - TOC_BYTES;
    if (tsdb__block_get_be32(p) != INDEX_MAGIC || p[4] != TSDB__BLOCK_VERSION)
        return corrupt(err, b->index_path, 0, "bad magic or version");
    if (hs_crc32c(0, p + toc_at, 64) != tsdb__block_get_be32(p + toc_at + 64))
        return corrupt(err, b->index_path, toc_at, "table of contents checksum mismatch");
    static const char *names[4] = {"series", "symbols", "postings", "postings offset table"};
    uint64_t prev_end = HDR_BYTES;
    for (int i = 0; i < 4; i++) {
        toc[2 * i] = tsdb__block_get_be64(p + toc_at + 16 * i);
        toc[2 * i + 1] = tsdb__block_get_be64(p + toc_at + 16 * i + 8);
        uint64_t off = toc[2 * i], len = toc[2 * i + 1];
        if (off != prev_end || len > toc_at || off + len + 4 > toc_at)
            return corrupt(err, b->index_path, toc_at + 16 * (size_t)i, "bad section bounds");
        if (hs_crc32c(0, p + off, len) != tsdb__block_get_be32(p + off + len)) {
            char what[80];
            snprintf(what, sizeof(what), "%s section checksum mismatch", names[i]);
            return corrupt(err, b->index_path, off, what);
        }
        prev_end = off + len + 4;
    }
    if (prev_end != toc_at)
        return corrupt(err, b->index_path, prev_end,
                       "unexpected bytes before the table of contents");
    return HS_OK;
}

static int parse_symbols(struct tsdb__block *b, size_t off, size_t end, struct hs_err *err)
{
    const uint8_t *p = b->idx;
    uint64_t n;
    if (tsdb__block_get_uvarint(p, end, &off, &n) != HS_OK || n > end - off)
        return corrupt(err, b->index_path, off, "bad symbol count");
    b->syms = hs_reallocarray(NULL, n ? n : 1, sizeof(*b->syms));
    if (b->syms == NULL)
        return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        size_t at = off;
        if (tsdb__block_get_uvarint(p, end, &off, &len) != HS_OK || len >= end - off ||
            p[off + len] != 0 || memchr(p + off, 0, len) != NULL)
            return corrupt(err, b->index_path, at, "bad symbol");
        b->syms[i] = (const char *)p + off;
        off += len + 1;
    }
    b->n_syms = n;
    if (off != end)
        return corrupt(err, b->index_path, off, "trailing bytes in symbol table");
    return HS_OK;
}

/*
 * Parses the series entry at *off (advanced past it).  With 'a' NULL it
 * only validates; otherwise fills labels and metas allocated in 'a'.
 */
static int parse_series(const struct tsdb__block *b, size_t *off, struct hs_arena *a,
                        struct hs_labels *ls, struct tsdb__chunk_meta **cm, size_t *ncm,
                        struct hs_err *err)
{
    const uint8_t *p = b->idx;
    size_t end = b->series_end, at = *off;
    uint64_t nl, nc;
    if (tsdb__block_get_uvarint(p, end, off, &nl) != HS_OK || nl == 0 ||
        nl > TSDB__BLOCK_MAX_LABELS)
        return corrupt(err, b->index_path, at, "bad label count in series");
    if (a != NULL && ls != NULL) {
        ls->n = nl;
        ls->v = hs_arena_alloc(a, nl * sizeof(*ls->v));
        if (ls->v == NULL)
            return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
    }
    const char *prev = NULL;
    for (uint64_t i = 0; i < nl; i++) {
        uint64_t nm, v;
        if (tsdb__block_get_uvarint(p, end, off, &nm) != HS_OK || nm >= b->n_syms ||
            tsdb__block_get_uvarint(p, end, off, &v) != HS_OK || v >= b->n_syms ||
            (prev != NULL && strcmp(prev, b->syms[nm]) >= 0))
            return corrupt(err, b->index_path, at, "bad label in series");
        prev = b->syms[nm];
        if (a != NULL && ls != NULL)
            ls->v[i] = (struct hs_label){b->syms[nm], b->syms[v]};
    }
    if (tsdb__block_get_uvarint(p, end, off, &nc) != HS_OK || nc > end - *off)
        return corrupt(err, b->index_path, at, "bad chunk count in series");
    struct tsdb__chunk_meta *out = NULL;
    if (a != NULL && cm != NULL && nc > 0) {
        out = hs_arena_alloc(a, nc * sizeof(*out));
        if (out == NULL)
            return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
    }
    int64_t prev_maxt = b->base_time;
    uint64_t prev_ref = 0;
    for (uint64_t i = 0; i < nc; i++) {
        int64_t dmint, mint, maxt;
        uint64_t span, ns, dref, ref;
        if (tsdb__block_get_varint(p, end, off, &dmint) != HS_OK ||
            tsdb__block_get_uvarint(p, end, off, &span) != HS_OK ||
            tsdb__block_get_uvarint(p, end, off, &ns) != HS_OK || ns > UINT32_MAX || *off >= end)
            return corrupt(err, b->index_path, at, "bad chunk meta in series");
        uint8_t enc = p[(*off)++];
        /* Wrapping sums, the inverse of the writer's wrapping differences. */
        mint = (int64_t)((uint64_t)prev_maxt + (uint64_t)dmint);
        maxt = (int64_t)((uint64_t)mint + span);
        if (tsdb__block_get_uvarint(p, end, off, &dref) != HS_OK || maxt < mint ||
            __builtin_add_overflow(prev_ref, dref, &ref))
            return corrupt(err, b->index_path, at, "bad chunk meta in series");
        if (a == NULL) {
            const struct seg *s;
            size_t dp;
            uint32_t len;
            int rc = chunk_locate(b, ref, &s, &dp, &len, err);
            if (rc != HS_OK)
                return rc;
        }
        if (out != NULL)
            out[i] = (struct tsdb__chunk_meta){mint, maxt, (uint32_t)ns, enc, NULL, 0, ref};
        prev_maxt = maxt;
        prev_ref = ref;
    }
    if (cm != NULL)
        *cm = out;
    if (ncm != NULL)
        *ncm = nc;
    return HS_OK;
}

static int parse_all_series(struct tsdb__block *b, size_t off, size_t end, struct hs_err *err)
{
    b->series_end = end;
    size_t cap = 0;
    if (off < end && tsdb__block_get_varint(b->idx, end, &off, &b->base_time) != HS_OK)
        return corrupt(err, b->index_path, off, "bad base time of the series section");
    while (off < end) {
        if (b->n_series == cap) {
            cap = cap ? cap * 2 : 1024;
            uint64_t *n = hs_reallocarray(b->series_off, cap, sizeof(*n));
            if (n == NULL)
                return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
            b->series_off = n;
        }
        if (b->n_series == UINT32_MAX)
            return corrupt(err, b->index_path, off, "too many series");
        b->series_off[b->n_series++] = off;
        int rc = parse_series(b, &off, NULL, NULL, NULL, NULL, err);
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

static int pentry_cmp(const struct tsdb__block *b, const struct pentry *x, const struct pentry *y)
{
    int c = strcmp(b->syms[x->name], b->syms[y->name]);
    return c ? c : strcmp(b->syms[x->value], b->syms[y->value]);
}

/* Decodes (or with out NULL, validates) the postings list at 'rel'. */
static int read_list(const struct tsdb__block *b, uint64_t rel, struct tsdb__block_postings *out,
                     struct hs_err *err)
{
    const uint8_t *p = b->idx;
    size_t end = b->post_off + b->post_len, off = b->post_off + (size_t)rel;
    uint64_t n, prev = 0;
    if (rel >= b->post_len || tsdb__block_get_uvarint(p, end, &off, &n) != HS_OK || n == 0 ||
        n > end - off || n > b->n_series)
        return corrupt(err, b->index_path, b->post_off + (size_t)rel, "bad postings list");
    if (out != NULL) {
        out->refs = hs_reallocarray(NULL, n, sizeof(*out->refs));
        out->n = 0;
        if (out->refs == NULL)
            return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t d;
        size_t at = off;
        if (tsdb__block_get_uvarint(p, end, &off, &d) != HS_OK || (i > 0 && d == 0) ||
            d >= b->n_series || prev + d >= b->n_series) {
            if (out != NULL)
                tsdb__block_postings_cleanup(out);
            return corrupt(err, b->index_path, at, "bad postings entry");
        }
        prev += d;
        if (out != NULL)
            out->refs[out->n++] = prev;
    }
    return HS_OK;
}

static int parse_offset_table(struct tsdb__block *b, size_t off, size_t end, struct hs_err *err)
{
    const uint8_t *p = b->idx;
    uint64_t n;
    if (tsdb__block_get_uvarint(p, end, &off, &n) != HS_OK || n > end - off)
        return corrupt(err, b->index_path, off, "bad postings offset table count");
    b->pt = hs_reallocarray(NULL, n ? n : 1, sizeof(*b->pt));
    if (b->pt == NULL)
        return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t nm, v, rel;
        size_t at = off;
        if (tsdb__block_get_uvarint(p, end, &off, &nm) != HS_OK || nm >= b->n_syms ||
            tsdb__block_get_uvarint(p, end, &off, &v) != HS_OK || v >= b->n_syms ||
            tsdb__block_get_uvarint(p, end, &off, &rel) != HS_OK || rel >= b->post_len)
            return corrupt(err, b->index_path, at, "bad postings offset entry");
        b->pt[i] = (struct pentry){(uint32_t)nm, (uint32_t)v, rel};
        if (i > 0 && pentry_cmp(b, &b->pt[i - 1], &b->pt[i]) >= 0)
            return corrupt(err, b->index_path, at, "postings offset table out of order");
        b->n_pt = i + 1;
        int rc = read_list(b, rel, NULL, err);
        if (rc != HS_OK)
            return rc;
    }
    if (off != end)
        return corrupt(err, b->index_path, off, "trailing bytes in postings offset table");
    return HS_OK;
}

/* ---- tombstones ----------------------------------------------------------------- */

static int cmp_tomb(const void *x, const void *y)
{
    const struct tsdb__block_tombstone *a = x, *b = y;
    if (a->series_ref != b->series_ref)
        return a->series_ref < b->series_ref ? -1 : 1;
    return (a->mint > b->mint) - (a->mint < b->mint);
}

static int read_tombstones(struct tsdb__block *b, struct hs_err *err)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/tombstones", b->dir);
    size_t len;
    struct hs_err e2 = {0};
    uint8_t *p = (uint8_t *)hs_read_file(path, (size_t)1 << 30, &len, &e2);
    if (p == NULL) {
        if (e2.code == HS_ENOTFOUND)
            return HS_OK;
        return hs_err_set(err, e2.code == HS_ETOOBIG ? HS_ECORRUPT : e2.code, "%s", e2.msg);
    }
    int rc = HS_OK;
    uint64_t n;
    size_t off = HDR_BYTES;
    if (len < HDR_BYTES + 4 || tsdb__block_get_be32(p) != TOMB_MAGIC ||
        p[4] != TSDB__BLOCK_VERSION) {
        rc = corrupt(err, path, 0, "bad magic, version or size");
        goto out;
    }
    size_t end = len - 4;
    if (hs_crc32c(0, p + HDR_BYTES, end - HDR_BYTES) != tsdb__block_get_be32(p + end)) {
        rc = corrupt(err, path, end, "checksum mismatch");
        goto out;
    }
    if (tsdb__block_get_uvarint(p, end, &off, &n) != HS_OK || n > end - off) {
        rc = corrupt(err, path, HDR_BYTES, "bad tombstone count");
        goto out;
    }
    b->tombs = hs_reallocarray(NULL, n ? n : 1, sizeof(*b->tombs));
    if (b->tombs == NULL) {
        rc = hs_err_set(err, HS_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) {
        struct tsdb__block_tombstone *t = &b->tombs[i];
        size_t at = off;
        if (tsdb__block_get_uvarint(p, end, &off, &t->series_ref) != HS_OK ||
            t->series_ref >= b->n_series ||
            tsdb__block_get_varint(p, end, &off, &t->mint) != HS_OK ||
            tsdb__block_get_varint(p, end, &off, &t->maxt) != HS_OK || t->maxt < t->mint) {
            rc = corrupt(err, path, at, "bad tombstone");
            goto out;
        }
    }
    b->n_tombs = n;
    qsort(b->tombs, n, sizeof(*b->tombs), cmp_tomb);
out:
    hs_free(p);
    return rc;
}

/* ---- open / close ----------------------------------------------------------------- */

static int open_index(struct tsdb__block *b, struct hs_err *err)
{
    int rc = map_file(b->index_path, HDR_BYTES + TOC_BYTES, &b->idx, &b->idx_len, err);
    if (rc != HS_OK)
        return rc;
    uint64_t toc[8];
    rc = check_sections(b, toc, err);
    if (rc == HS_OK)
        rc = parse_symbols(b, (size_t)toc[2], (size_t)(toc[2] + toc[3]), err);
    b->post_off = (size_t)toc[4];
    b->post_len = (size_t)toc[5];
    if (rc == HS_OK)
        rc = parse_all_series(b, (size_t)toc[0], (size_t)(toc[0] + toc[1]), err);
    if (rc == HS_OK)
        rc = parse_offset_table(b, (size_t)toc[6], (size_t)(toc[6] + toc[7]), err);
    return rc;
}

int tsdb__block_open(const char *block_dir, struct tsdb__block **out, struct hs_err *err)
{
    *out = NULL;
    struct tsdb__block *b = hs_calloc(1, sizeof(*b));
    if (b == NULL)
        return hs_err_set(err, HS_ENOMEM, "%s: out of memory", block_dir);
    int rc = HS_OK;
    if (snprintf(b->dir, sizeof(b->dir), "%s", block_dir) >= (int)sizeof(b->dir) ||
        snprintf(b->index_path, sizeof(b->index_path), "%s/index", block_dir) >=
            (int)sizeof(b->index_path)) {
        rc = hs_err_set(err, HS_EINVAL, "%s: path too long", block_dir);
        goto out;
    }
    rc = tsdb__block_meta_read(block_dir, &b->meta, err);
    if (rc == HS_ENOTFOUND)
        rc = hs_err_set(err, HS_ECORRUPT, "%s/meta.json: missing", block_dir);
    if (rc == HS_OK)
        rc = map_segments(b, err);
    if (rc == HS_OK)
        rc = open_index(b, err);
    if (rc == HS_OK && b->n_series != b->meta.num_series)
        rc = hs_err_set(err, HS_ECORRUPT, "%s: index holds %zu series, meta.json says %llu",
                        b->index_path, b->n_series, (unsigned long long)b->meta.num_series);
    if (rc == HS_OK)
        rc = read_tombstones(b, err);
out:
    if (rc != HS_OK) {
        tsdb__block_close(b);
        return rc;
    }
    b->meta.size_bytes = tsdb__block_dir_size(block_dir);
    *out = b;
    return HS_OK;
}

void tsdb__block_close(struct tsdb__block *b)
{
    if (b == NULL)
        return;
    if (b->idx != NULL)
        munmap((void *)b->idx, b->idx_len);
    for (size_t i = 0; i < b->n_segs; i++)
        munmap((void *)b->segs[i].p, b->segs[i].len);
    hs_free(b->segs);
    hs_free(b->syms);
    hs_free(b->series_off);
    hs_free(b->pt);
    hs_free(b->tombs);
    tsdb__block_meta_cleanup(&b->meta);
    hs_free(b);
}

const struct tsdb__block_meta *tsdb__block_meta_of(const struct tsdb__block *b)
{
    return &b->meta;
}

const char *tsdb__block_dir(const struct tsdb__block *b)
{
    return b->dir;
}

size_t tsdb__block_series_count(const struct tsdb__block *b)
{
    return b->n_series;
}

const struct tsdb__block_tombstone *tsdb__block_tombstones(const struct tsdb__block *b, size_t *n)
{
    *n = b->n_tombs;
    return b->tombs;
}

/* ---- label lookups -------------------------------------------------------------- */

/* First offset-table entry whose name is >= 'name' (value >= 'value' if not NULL). */
static size_t pt_lower(const struct tsdb__block *b, const char *name, const char *value)
{
    size_t lo = 0, hi = b->n_pt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(b->syms[b->pt[mid].name], name);
        if (c == 0 && value != NULL)
            c = strcmp(b->syms[b->pt[mid].value], value);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int tsdb__block_label_names(const struct tsdb__block *b, struct hs_arena *a, const char ***names,
                            size_t *n, struct hs_err *err)
{
    size_t k = 0;
    for (size_t i = 0; i < b->n_pt; i++)
        if (i == 0 || b->pt[i].name != b->pt[i - 1].name)
            k++;
    const char **v = hs_arena_alloc(a, (k ? k : 1) * sizeof(*v));
    if (v == NULL)
        return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
    k = 0;
    for (size_t i = 0; i < b->n_pt; i++)
        if (i == 0 || b->pt[i].name != b->pt[i - 1].name)
            v[k++] = b->syms[b->pt[i].name];
    *names = v;
    *n = k;
    return HS_OK;
}

int tsdb__block_label_values(const struct tsdb__block *b, const char *name, struct hs_arena *a,
                             const char ***values, size_t *n, struct hs_err *err)
{
    size_t lo = pt_lower(b, name, NULL), hi = lo;
    while (hi < b->n_pt && strcmp(b->syms[b->pt[hi].name], name) == 0)
        hi++;
    const char **v = hs_arena_alloc(a, (hi > lo ? hi - lo : 1) * sizeof(*v));
    if (v == NULL)
        return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
    for (size_t i = lo; i < hi; i++)
        v[i - lo] = b->syms[b->pt[i].value];
    *values = v;
    *n = hi - lo;
    return HS_OK;
}

/* ---- postings --------------------------------------------------------------------- */

void tsdb__block_postings_cleanup(struct tsdb__block_postings *p)
{
    hs_free(p->refs);
    p->refs = NULL;
    p->n = 0;
}

int tsdb__block_postings_get(const struct tsdb__block *b, const char *name, const char *value,
                             struct tsdb__block_postings *out, struct hs_err *err)
{
    out->refs = NULL;
    out->n = 0;
    size_t i = pt_lower(b, name, value);
    if (i == b->n_pt || strcmp(b->syms[b->pt[i].name], name) != 0 ||
        strcmp(b->syms[b->pt[i].value], value) != 0)
        return HS_OK;
    return read_list(b, b->pt[i].off, out, err);
}

int tsdb__block_postings_all(const struct tsdb__block *b, struct tsdb__block_postings *out,
                             struct hs_err *err)
{
    out->n = 0;
    out->refs = hs_reallocarray(NULL, b->n_series ? b->n_series : 1, sizeof(*out->refs));
    if (out->refs == NULL)
        return hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
    for (size_t i = 0; i < b->n_series; i++)
        out->refs[out->n++] = i;
    return HS_OK;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

int tsdb__block_postings_matching(const struct tsdb__block *b, const char *name,
                                  tsdb__block_value_pred *pred, void *ctx,
                                  struct tsdb__block_postings *out, struct hs_err *err)
{
    out->refs = NULL;
    out->n = 0;
    size_t cap = 0;
    for (size_t i = pt_lower(b, name, NULL);
         i < b->n_pt && strcmp(b->syms[b->pt[i].name], name) == 0; i++) {
        if (!pred(ctx, b->syms[b->pt[i].value]))
            continue;
        struct tsdb__block_postings l;
        int rc = read_list(b, b->pt[i].off, &l, err);
        if (rc == HS_OK && out->n + l.n > cap) {
            cap = HS_MAX(cap * 2, out->n + l.n);
            uint64_t *n = hs_reallocarray(out->refs, cap, sizeof(*n));
            if (n == NULL) {
                tsdb__block_postings_cleanup(&l);
                rc = hs_err_set(err, HS_ENOMEM, "%s: out of memory", b->index_path);
            } else {
                out->refs = n;
            }
        }
        if (rc != HS_OK) {
            tsdb__block_postings_cleanup(out);
            return rc;
        }
        memcpy(out->refs + out->n, l.refs, l.n * sizeof(*l.refs));
        out->n += l.n;
        tsdb__block_postings_cleanup(&l);
    }
    /* A series has one value per name, so the lists are disjoint: sorting suffices. */
    if (out->n > 1)
        qsort(out->refs, out->n, sizeof(*out->refs), cmp_u64);
    return HS_OK;
}

enum setop { OP_AND, OP_OR, OP_ANDNOT };

static int set_op(const struct tsdb__block_postings *a, const struct tsdb__block_postings *b,
                  enum setop op, struct tsdb__block_postings *out)
{
    size_t cap = op == OP_OR ? a->n + b->n : a->n;
    out->n = 0;
    out->refs = hs_reallocarray(NULL, cap ? cap : 1, sizeof(*out->refs));
    if (out->refs == NULL)
        return HS_ENOMEM;
    size_t i = 0, j = 0;
    while (i < a->n && j < b->n) {
        if (a->refs[i] < b->refs[j]) {
            if (op != OP_AND)
                out->refs[out->n++] = a->refs[i];
            i++;
        } else if (a->refs[i] > b->refs[j]) {
            if (op == OP_OR)
                out->refs[out->n++] = b->refs[j];
            j++;
        } else {
            if (op != OP_ANDNOT)
                out->refs[out->n++] = a->refs[i];
            i++;
            j++;
        }
    }
    for (; op != OP_AND && i < a->n; i++)
        out->refs[out->n++] = a->refs[i];
    for (; op == OP_OR && j < b->n; j++)
        out->refs[out->n++] = b->refs[j];
    return HS_OK;
}

int tsdb__block_postings_intersect(const struct tsdb__block_postings *a,
                                   const struct tsdb__block_postings *b,
                                   struct tsdb__block_postings *out)
{
    return set_op(a, b, OP_AND, out);
}

int tsdb__block_postings_union(const struct tsdb__block_postings *a,
                               const struct tsdb__block_postings *b,
                               struct tsdb__block_postings *out)
{
    return set_op(a, b, OP_OR, out);
}

int tsdb__block_postings_subtract(const struct tsdb__block_postings *a,
                                  const struct tsdb__block_postings *b,
                                  struct tsdb__block_postings *out)
{
    return set_op(a, b, OP_ANDNOT, out);
}

/* ---- series ------------------------------------------------------------------------ */

int tsdb__block_series(const struct tsdb__block *b, uint64_t ref, struct hs_arena *a,
                       struct hs_labels *labels, struct tsdb__chunk_meta **chunks, size_t *n_chunks,
                       struct hs_err *err)
{
    if (ref >= b->n_series)
        return hs_err_set(err, HS_ENOTFOUND, "%s: no series %llu", b->index_path,
                          (unsigned long long)ref);
    size_t off = (size_t)b->series_off[ref];
    struct hs_labels ls;
    struct tsdb__chunk_meta *cm = NULL;
    size_t n = 0;
    int rc = parse_series(b, &off, a, &ls, &cm, &n, err);
    if (rc != HS_OK)
        return rc;
    if (labels != NULL)
        *labels = ls;
    if (chunks != NULL)
        *chunks = cm;
    if (n_chunks != NULL)
        *n_chunks = n;
    return HS_OK;
}
