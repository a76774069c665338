/*
 * parse_gzip.c - inflating a gzip-encoded scrape body (Content-Encoding:
 * gzip) before it is parsed.  The output has a ceiling, so a small body
 * that inflates to gigabytes fails with HS_ETOOBIG instead of eating
 * memory; trailing garbage after the gzip member is an error.
 */
#include "scrape/scrape.h"

#include <zlib.h>

#include <string.h>

int scrape_body_gunzip(const char *in, size_t len, size_t max_bytes, struct hs_buf *out,
                       struct hs_err *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return hs_err_set(err, HS_ENOMEM, "gzip: cannot start the decoder");
    size_t start = out->len;
    int rc = HS_OK, zr = Z_OK;
    zs.next_in = (Bytef *)(uintptr_t)in;
    size_t left = len;
    while (zr != Z_STREAM_END) {
        if (zs.avail_in == 0) {
            if (left == 0) {
                rc = hs_err_setpos(err, HS_EPARSE, len, "gzip: truncated body");
                goto out;
            }
            zs.avail_in = (uInt)HS_MIN(left, (size_t)1 << 30);
            left -= zs.avail_in;
        }
        /* One byte beyond the ceiling tells "exactly at" from "past". */
        size_t room = 64 * 1024;
        if (max_bytes != 0)
            room = HS_MIN(room, max_bytes - (out->len - start) + 1);
        if (out->max != 0 && out->len < out->max)
            room = HS_MIN(room, out->max - out->len);
        if ((rc = hs_buf_reserve(out, room)) < 0) {
            rc = hs_err_set(err, rc, "gzip: output buffer: %s", hs_strerror(rc));
            goto out;
        }
        zs.next_out = (Bytef *)out->p + out->len;
        zs.avail_out = (uInt)room;
        zr = inflate(&zs, Z_NO_FLUSH);
        out->len += room - zs.avail_out;
        out->p[out->len] = '\0';
        if (max_bytes != 0 && out->len - start > max_bytes) {
            rc = hs_err_set(err, HS_ETOOBIG, "gzip: body inflates past %zu bytes", max_bytes);
            goto out;
        }
        if (zr == Z_BUF_ERROR && zs.avail_in == 0 && left == 0) {
            rc = hs_err_setpos(err, HS_EPARSE, len, "gzip: truncated body");
            goto out;
        }
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            rc = hs_err_setpos(err, zr == Z_MEM_ERROR ? HS_ENOMEM : HS_EPARSE,
                               len - left - zs.avail_in, "gzip: %s",
                               zs.msg ? zs.msg : "corrupt data");
            goto out;
        }
    }
    if (zs.avail_in != 0 || left != 0)
        rc = hs_err_setpos(err, HS_EPARSE, len - left - zs.avail_in,
                           "gzip: data after the end of the stream");
out:
    if (rc < 0) {
        out->len = start;
        if (out->p != NULL)
            out->p[start] = '\0';
    }
    inflateEnd(&zs);
    return rc;
}
