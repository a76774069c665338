/*
 * ui.h - the dashboard: HTML, CSS and JavaScript (with uPlot for charts)
 * embedded into the binary at build time and served at "/" and "/assets/".
 *
 * At start-up ui_new builds the asset table once: every embedded file gets a
 * content-hashed name ("app.3f09a1c2b4d5.js"), a strong ETag and a gzip copy
 * (zlib, level 9); index.html is rewritten to reference the hashed names.
 * Hashed assets are answered with "Cache-Control: public, max-age=31536000,
 * immutable"; index.html (and the plain, unhashed asset names, kept for
 * hand-written links) with "Cache-Control: no-cache" so a new binary is
 * picked up at the next load.  Nothing is read from disk at run time.
 *
 * The dashboard itself talks only to holoscope's HTTP API (/api/v1/...).
 *
 * Threading: ui_new/ui_free on any thread; the table is immutable afterwards,
 * so ui_resolve may be called from any thread; ui_register and the handlers
 * it installs run on the HTTP server's loop thread.
 */
#ifndef HS_UI_H
#define HS_UI_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>

struct http_server;
struct ui;

/* Longest request path ui_resolve looks up; longer ones are 404. */
#define UI_MAX_PATH_BYTES 256

/* One served file.  Every pointer is owned by the struct ui it came from and
 * valid until ui_free. */
struct ui_asset {
    const char *name;          /* plain name, "app.js" (index.html for the page) */
    const char *hashed_name;   /* "app.3f09a1c2b4d5.js"; equal to name for index.html */
    const char *content_type;  /* "text/javascript; charset=utf-8", ... */
    const char *etag;          /* strong ETag with its quotes: "\"3f09a1c2b4d5\"" */
    const unsigned char *data; /* identity bytes */
    size_t len;
    const unsigned char *gz; /* gzip of data */
    size_t gz_len;
};

/* What to send for one request: status, headers and a body borrowed from the
 * asset table (or a static string for errors). */
struct ui_response {
    int status;                /* 200, 304 or 404 */
    const char *content_type;  /* NULL for 304 */
    const char *cache_control; /* NULL for 404 */
    const char *etag;          /* NULL for 404 */
    bool is_gzip;              /* body is gzip: send Content-Encoding: gzip */
    const void *body;          /* borrowed; NULL for 304 */
    size_t len;
};

/*
 * Builds the asset table from the embedded files: hashes, gzip copies and the
 * rewritten index.html.  Returns NULL with err set when out of memory, when
 * zlib fails, or when the embedded set has no index.html.  Caller frees with
 * ui_free.
 */
struct ui *ui_new(struct hs_err *err);
/* Frees the table; NULL is allowed.  Not while a server still routes to it. */
void ui_free(struct ui *u);

/* Number of assets and the i-th one (index.html included); NULL past the end. */
size_t ui_asset_count(const struct ui *u);
const struct ui_asset *ui_asset_at(const struct ui *u, size_t i);
/* The asset whose plain or hashed name is 'name' ("app.js"); NULL if none. */
const struct ui_asset *ui_asset_find(const struct ui *u, const char *name);

/*
 * Decides the answer to GET 'path' ("/", "/index.html", "/assets/NAME").
 * 'accept_encoding' and 'if_none_match' are the request's headers (NULL when
 * absent): gzip is chosen when the client lists it (and not with q=0), 304
 * when If-None-Match names the asset's ETag (or is "*").  Unknown paths give
 * a 404 with a short plain-text body.  Never fails; 'out' is always filled.
 */
void ui_resolve(const struct ui *u, const char *path, const char *accept_encoding,
                const char *if_none_match, struct ui_response *out);

/*
 * Routes GET "/", "/index.html" and "/assets/" + "*" on 's' to the dashboard.
 * Exact routes only below "/": "/api", "/metrics" and "/-/" are not shadowed.
 * 'u' is borrowed and must outlive the server's routes.  Returns HS_OK,
 * or HS_ENOMEM / HS_EINVAL from http_server_route with err set.
 */
HS_MUST_CHECK int ui_register(struct http_server *s, struct ui *u, struct hs_err *err);

#endif
