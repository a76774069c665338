/*
 * ui.c - the dashboard's asset table and its HTTP handlers.
 *
 * The files come from hs_embed(ui ui_assets ...) in CMakeLists.txt: the
 * files of src/ui/assets/ plus uPlot's minified script and stylesheet from
 * node_modules.  They are served by their base name.  ui_new hashes each file
 * with hs_hash64 (48 bits shown, enough to tell builds apart), gzips it
 * once, and rewrites every "assets/NAME" reference in index.html to
 * "assets/HASHED", so browsers may cache hashed files forever while the page
 * itself is revalidated on every load.
 *
 * Invariant: after ui_new returns, the table is never written again.
 */
#include "ui/ui.h"

#include "http/http.h"

#include <zlib.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The layout written by cmake/embed_gen.cmake. */
struct hs_embedded_file {
    const char *path;
    const unsigned char *data;
    size_t len;
};
extern const struct hs_embedded_file hs_embed_ui_assets[];

#define UI_HASH_HEX 12

struct ui_slot {
    struct ui_asset a; /* what callers see; strings below */
    char *name;
    char *hashed_name;
    char etag[UI_HASH_HEX + 3];
    unsigned char *owned_data; /* rewritten index.html, else NULL (data is embedded) */
    unsigned char *gz;
};

struct ui {
    struct ui_slot *slots;
    size_t n;
    size_t index; /* slot of index.html */
};

static const char *const CACHE_IMMUTABLE = "public, max-age=31536000, immutable";
static const char *const CACHE_REVALIDATE = "no-cache";
static const char NOT_FOUND_BODY[] = "404 page not found\n";

static const char *content_type_of(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".json", "application/json"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(types); i++)
        if (hs_has_suffix(name, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

static int gzip_bytes(const unsigned char *in, size_t len, unsigned char **out, size_t *out_len,
                      struct hs_err *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return hs_err_set(err, HS_ENOMEM, "ui: zlib deflateInit2 failed");
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *buf = hs_malloc(cap);
    if (buf == NULL) {
        deflateEnd(&z);
        return hs_err_set(err, HS_ENOMEM, "ui: out of memory");
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int zrc = deflate(&z, Z_FINISH);
    size_t n = z.total_out;
    deflateEnd(&z);
    if (zrc != Z_STREAM_END) {
        hs_free(buf);
        return hs_err_set(err, HS_EIO, "ui: gzip failed (zlib %d)", zrc);
    }
    *out = buf;
    *out_len = n;
    return HS_OK;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* "app.js" + "3f09..." -> "app.3f09....js"; a name without '.' gets ".HASH". */
static char *hashed_name_of(const char *name, const char *hex)
{
    const char *dot = strchr(name, '.');
    size_t stem = dot ? (size_t)(dot - name) : strlen(name);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    if (hs_buf_append(&b, name, stem) != HS_OK ||
        hs_buf_printf(&b, ".%s%s", hex, dot ? dot : "") != HS_OK) {
        hs_buf_cleanup(&b);
        return NULL;
    }
    return hs_buf_detach(&b, NULL);
}

static int slot_fill(struct ui_slot *s, const char *name, const unsigned char *data, size_t len,
                     bool is_index, struct hs_err *err)
{
    char hex[UI_HASH_HEX + 1];
    uint64_t h = hs_hash64(data, len, 0x686f6c6f);
    for (int i = 0; i < UI_HASH_HEX; i++)
        hex[i] = "0123456789abcdef"[(h >> (60 - 4 * i)) & 15];
    hex[UI_HASH_HEX] = 0;
    s->name = hs_strdup(name);
    s->hashed_name = is_index ? hs_strdup(name) : hashed_name_of(name, hex);
    if (s->name == NULL || s->hashed_name == NULL)
        return hs_err_set(err, HS_ENOMEM, "ui: out of memory");
    s->etag[0] = '"';
    memcpy(s->etag + 1, hex, UI_HASH_HEX);
    s->etag[UI_HASH_HEX + 1] = '"';
    s->etag[UI_HASH_HEX + 2] = 0;
    size_t gz_len = 0;
    int rc = gzip_bytes(data, len, &s->gz, &gz_len, err);
    if (rc != HS_OK)
        return rc;
    s->a = (struct ui_asset){s->name, s->hashed_name, content_type_of(name), s->etag, data, len,
                             s->gz,   gz_len};
    return HS_OK;
}

/* Rewrites "assets/NAME" to "assets/HASHED" for every asset but the page.
 * Only quoted references (after " or ') are rewritten, so "app.js" never
 * matches inside "myapp.js". */
static int rewrite_index(struct ui *u, const unsigned char *src, size_t len, struct hs_buf *out)
{
    size_t i = 0;
    while (i < len) {
        bool done = false;
        if ((src[i] == '"' || src[i] == '\'') && i + 8 < len &&
            memcmp(src + i + 1, "assets/", 7) == 0) {
            const char *ref = (const char *)src + i + 8;
            size_t left = len - i - 8;
            for (size_t k = 0; k < u->n && !done; k++) {
                const char *nm = u->slots[k].name;
                size_t nl = strlen(nm);
                if (k == u->index || nl >= left || memcmp(ref, nm, nl) != 0 ||
                    (ref[nl] != '"' && ref[nl] != '\''))
                    continue;
                if (hs_buf_append(out, src + i, 8) != HS_OK ||
                    hs_buf_puts(out, u->slots[k].hashed_name) != HS_OK)
                    return HS_ENOMEM;
                i += 8 + nl;
                done = true;
            }
        }
        if (!done) {
            if (hs_buf_putc(out, (char)src[i]) != HS_OK)
                return HS_ENOMEM;
            i++;
        }
    }
    return HS_OK;
}

struct ui *ui_new(struct hs_err *err)
{
    size_t n = 0;
    const struct hs_embedded_file *index = NULL;
    for (const struct hs_embedded_file *f = hs_embed_ui_assets; f->path; f++) {
        n++;
        if (hs_streq(base_name(f->path), "index.html"))
            index = f;
    }
    if (index == NULL) {
        hs_err_set(err, HS_EINVAL, "ui: the embedded assets have no index.html");
        return NULL;
    }
    struct ui *u = hs_calloc(1, sizeof *u);
    if (u == NULL || (u->slots = hs_calloc(n, sizeof *u->slots)) == NULL) {
        hs_free(u);
        hs_err_set(err, HS_ENOMEM, "ui: out of memory");
        return NULL;
    }
    int rc = HS_OK;
    struct hs_buf page;
    hs_buf_init(&page, 0);
    /* Assets first, so that their hashed names exist when the page is rewritten. */
    for (const struct hs_embedded_file *f = hs_embed_ui_assets; f->path && rc == HS_OK; f++) {
        if (f == index)
            continue;
        rc = slot_fill(&u->slots[u->n], base_name(f->path), f->data, f->len, false, err);
        u->n++;
    }
    if (rc == HS_OK) {
        u->index = u->n;
        u->n++;
        if (rewrite_index(u, index->data, index->len, &page) != HS_OK) {
            rc = hs_err_set(err, HS_ENOMEM, "ui: out of memory");
        } else {
            struct ui_slot *s = &u->slots[u->index];
            size_t page_len = 0;
            s->owned_data = (unsigned char *)hs_buf_detach(&page, &page_len);
            rc = s->owned_data ? slot_fill(s, "index.html", s->owned_data, page_len, true, err)
                               : hs_err_set(err, HS_ENOMEM, "ui: out of memory");
        }
    }
    hs_buf_cleanup(&page);
    if (rc != HS_OK) {
        ui_free(u);
        return NULL;
    }
    return u;
}

void ui_free(struct ui *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->n; i++) {
        hs_free(u->slots[i].name);
        hs_free(u->slots[i].hashed_name);
        hs_free(u->slots[i].owned_data);
        hs_free(u->slots[i].gz);
    }
    hs_free(u->slots);
    hs_free(u);
}

size_t ui_asset_count(const struct ui *u)
{
    return u->n;
}

const struct ui_asset *ui_asset_at(const struct ui *u, size_t i)
{
    return i < u->n ? &u->slots[i].a : NULL;
}

const struct ui_asset *ui_asset_find(const struct ui *u, const char *name)
{
    for (size_t i = 0; i < u->n; i++)
        if (hs_streq(u->slots[i].name, name) || hs_streq(u->slots[i].hashed_name, name))
            return &u->slots[i].a;
    return NULL;
}

/* True when the Accept-Encoding value lists gzip (or *) without q=0. */
static bool accepts_gzip(const char *ae)
{
    if (ae == NULL)
        return false;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t tl = (size_t)(p - tok);
        bool is_gzip = (tl == 4 && strncasecmp(tok, "gzip", 4) == 0) || (tl == 1 && *tok == '*');
        bool q_zero = false;
        while (*p && *p != ',') {
            if (*p == 'q' && p[1] == '=')
                q_zero = strtod(p + 2, NULL) <= 0.0;
            p++;
        }
        if (is_gzip && !q_zero)
            return true;
    }
    return false;
}

/* True when the If-None-Match list names 'etag' (weak forms compare equal). */
static bool etag_matches(const char *inm, const char *etag)
{
    if (inm == NULL)
        return false;
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (strncmp(p, etag, el) == 0 && (p[el] == 0 || p[el] == ',' || p[el] == ' '))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

void ui_resolve(const struct ui *u, const char *path, const char *accept_encoding,
                const char *if_none_match, struct ui_response *out)
{
    memset(out, 0, sizeof *out);
    const struct ui_asset *a = NULL;
    bool is_hashed = false;
    if (path != NULL && strlen(path) <= UI_MAX_PATH_BYTES) {
        if (hs_streq(path, "/") || hs_streq(path, "/index.html")) {
            a = &u->slots[u->index].a;
        } else if (hs_has_prefix(path, "/assets/") && strchr(path + 8, '/') == NULL) {
            a = ui_asset_find(u, path + 8);
            if (a == &u->slots[u->index].a)
                a = NULL; /* the page lives at "/" only */
            is_hashed = a != NULL && hs_streq(a->hashed_name, path + 8);
        }
    }
    if (a == NULL) {
        out->status = 404;
        out->content_type = "text/plain; charset=utf-8";
        out->body = NOT_FOUND_BODY;
        out->len = sizeof NOT_FOUND_BODY - 1;
        return;
    }
    out->cache_control = is_hashed ? CACHE_IMMUTABLE : CACHE_REVALIDATE;
    out->etag = a->etag;
    if (etag_matches(if_none_match, a->etag)) {
        out->status = 304;
        return;
    }
    out->status = 200;
    out->content_type = a->content_type;
    out->is_gzip = accepts_gzip(accept_encoding);
    out->body = out->is_gzip ? (const void *)a->gz : (const void *)a->data;
    out->len = out->is_gzip ? a->gz_len : a->len;
}

static void handle(struct http_request *r, void *arg)
{
    struct ui *u = arg;
    struct ui_response res;
    ui_resolve(u, http_request_path(r), http_request_header(r, "Accept-Encoding"),
               http_request_header(r, "If-None-Match"), &res);
    int rc = HS_OK;
    if (res.status != 404) {
        rc = http_response_header(r, "Vary", "Accept-Encoding");
        if (rc == HS_OK)
            rc = http_response_header(r, "Cache-Control", res.cache_control);
        if (rc == HS_OK)
            rc = http_response_header(r, "ETag", res.etag);
        if (rc == HS_OK)
            rc = http_response_header(r, "X-Content-Type-Options", "nosniff");
    }
    if (rc == HS_OK && res.is_gzip)
        rc = http_response_header(r, "Content-Encoding", "gzip");
    if (rc != HS_OK) {
        http_respond_error(r, 500, "ui: out of memory");
        return;
    }
    http_respond(r, res.status, res.content_type, res.body, res.len);
}

int ui_register(struct http_server *s, struct ui *u, struct hs_err *err)
{
    static const char *const paths[] = {"/", "/index.html", "/assets/*"};
    for (size_t i = 0; i < HS_ARRAY_LEN(paths); i++) {
        int rc = http_server_route(s, "GET", paths[i], "ui", handle, u);
        if (rc != HS_OK)
            return hs_err_set(err, rc, "ui: cannot add route %s: %s", paths[i], hs_strerror(rc));
    }
    return HS_OK;
}
