/*
 * chunk.c - Gorilla-style XOR chunks: delta-of-delta timestamps and XOR'd
 * float64 values in one bit stream.
 *
 * A chunk holds up to TSDB_CHUNK_MAX_SAMPLES samples with strictly
 * increasing timestamps.  Values are stored as raw bit patterns, so every
 * float64 (NaN payloads, signed zeros, infinities, the stale marker)
 * round-trips exactly.  Timestamp arithmetic wraps in uint64, so any two
 * increasing int64 timestamps encode, however far apart.
 *
 * Invariants: the encoder's buffer is zero beyond 'nbits' (bits are OR'd
 * in); a chunk, once cut, is immutable.  The decoder checks every read
 * against the length and every timestamp for strict increase: corrupt
 * bytes end the iteration with HS_ECORRUPT, never an out-of-bounds read.
 * Byte layout: docs/formats/chunks.md.
 */
#include "tsdb/internal.h"

#include <string.h>

/* ---- bit writer ------------------------------------------------------------- */

static int reserve(struct tsdb__chunk_enc *e, size_t more_bits)
{
    size_t need = (e->nbits + more_bits + 7) / 8;
    if (need <= e->cap)
        return HS_OK;
    size_t cap = e->cap ? e->cap + e->cap / 2 : 32;
    if (cap < need)
        cap = need;
    if (cap > UINT32_MAX)
        return HS_ETOOBIG;
    uint8_t *nb = hs_realloc(e->buf, cap);
    if (nb == NULL)
        return HS_ENOMEM;
    memset(nb + e->cap, 0, cap - e->cap);
    e->buf = nb;
    e->cap = (uint32_t)cap;
    return HS_OK;
}

/* Writes the low 'nb' bits of 'v' (1..64), most significant first. */
static void put_bits(struct tsdb__chunk_enc *e, uint64_t v, int nb)
{
    while (nb > 0) {
        uint32_t byte = e->nbits >> 3;
        int room = 8 - (int)(e->nbits & 7);
        int take = nb < room ? nb : room;
        uint64_t bits = (v >> (nb - take)) & ((1u << take) - 1);
        e->buf[byte] |= (uint8_t)(bits << (room - take));
        nb -= take;
        e->nbits += (uint32_t)take;
    }
}

/* Delta-of-delta buckets: prefix bits, then a two's complement payload. */
static void put_dod(struct tsdb__chunk_enc *e, int64_t dod)
{
    if (dod == 0) {
        put_bits(e, 0, 1);
    } else if (dod >= -64 && dod <= 63) {
        put_bits(e, 0x2, 2);
        put_bits(e, (uint64_t)dod, 7);
    } else if (dod >= -8192 && dod <= 8191) {
        put_bits(e, 0x6, 3);
        put_bits(e, (uint64_t)dod, 14);
    } else if (dod >= -(1 << 19) && dod <= (1 << 19) - 1) {
        put_bits(e, 0xe, 4);
        put_bits(e, (uint64_t)dod, 20);
    } else if (dod >= INT32_MIN && dod <= INT32_MAX) {
        put_bits(e, 0x1e, 5);
        put_bits(e, (uint64_t)dod, 32);
    } else {
        put_bits(e, 0x1f, 5);
        put_bits(e, (uint64_t)dod, 64);
    }
}

static void put_value(struct tsdb__chunk_enc *e, uint64_t v)
{
    uint64_t x = v ^ e->v;
    if (x == 0) {
        put_bits(e, 0, 1);
        return;
    }
    int lead = __builtin_clzll(x), trail = __builtin_ctzll(x);
    if (lead > 31)
        lead = 31;
    if (e->leading != 0xff && lead >= e->leading && trail >= e->trailing) {
        int sig = 64 - e->leading - e->trailing;
        put_bits(e, 0x2, 2);
        put_bits(e, x >> e->trailing, sig);
        return;
    }
    int sig = 64 - lead - trail;
    put_bits(e, 0x3, 2);
    put_bits(e, (uint64_t)lead, 5);
    put_bits(e, (uint64_t)(sig & 63), 6); /* 64 is written as 0 */
    put_bits(e, x >> trail, sig);
    e->leading = (uint8_t)lead;
    e->trailing = (uint8_t)trail;
}

int tsdb__chunk_append(struct tsdb__chunk_enc *e, int64_t t, uint64_t v)
{
    if (e->n > 0 && t <= e->t)
        return HS_EINVAL;
    if (e->n == UINT16_MAX)
        return HS_ETOOBIG;
    /* Worst case: 5 + 64 bits of timestamp, 2 + 11 + 64 of value. */
    int rc = reserve(e, e->n == 0 ? 16 + 128 : 160);
    if (rc != HS_OK)
        return rc;
    if (e->n == 0) {
        e->nbits = 16;
        put_bits(e, (uint64_t)t, 64);
        put_bits(e, v, 64);
        e->leading = 0xff;
        e->trailing = 0;
        e->delta = 0;
    } else {
        uint64_t delta = (uint64_t)t - (uint64_t)e->t;
        int64_t dod = (int64_t)(delta - (uint64_t)e->delta);
        put_dod(e, dod);
        put_value(e, v);
        e->delta = (int64_t)delta;
    }
    e->t = t;
    e->v = v;
    e->n++;
    e->buf[0] = (uint8_t)(e->n >> 8);
    e->buf[1] = (uint8_t)e->n;
    return HS_OK;
}

void tsdb__chunk_enc_cleanup(struct tsdb__chunk_enc *e)
{
    hs_free(e->buf);
    memset(e, 0, sizeof(*e));
}

uint8_t *tsdb__chunk_enc_detach(struct tsdb__chunk_enc *e, size_t *len)
{
    size_t n = tsdb__chunk_len(e);
    uint8_t *p = e->buf;
    if (n > 0 && n < e->cap) {
        uint8_t *q = hs_realloc(p, n);
        if (q != NULL) /* keeping the larger buffer is fine when shrinking fails */
            p = q;
    }
    *len = n;
    memset(e, 0, sizeof(*e));
    return p;
}

/* ---- decoder ---------------------------------------------------------------------- */

unsigned tsdb_chunk_num_samples(const uint8_t *p, size_t len)
{
    if (p == NULL || len < 2)
        return 0;
    return ((unsigned)p[0] << 8) | p[1];
}

void tsdb_chunk_iter_init(struct tsdb_chunk_iter *it, const uint8_t *p, size_t len)
{
    memset(it, 0, sizeof(*it));
    it->p = p;
    it->nbits = len > SIZE_MAX / 8 ? SIZE_MAX : len * 8;
    if (len == 1)
        it->err = HS_ECORRUPT;
    it->n = (uint16_t)tsdb_chunk_num_samples(p, len);
    it->pos = 16;
    it->leading = 0xff;
}

/* The next bits of the stream left-aligned in *w, at least 57 of them
 * valid, when eight whole bytes remain from the current one; false near
 * the end (the callers then go bit by bit). */
static inline bool peek(const struct tsdb_chunk_iter *it, uint64_t *w)
{
    size_t first = it->pos >> 3;
    if (it->pos > it->nbits || first + 8 > (it->nbits >> 3))
        return false;
    uint64_t x;
    memcpy(&x, it->p + first, sizeof(x));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    *w = x << (it->pos & 7);
    return true;
}

/* Reads 'nb' bits (0..64); false past the end.  Up to 56 bits come from one
 * load where peek can; the rest bit group by bit group. */
static bool get_bits(struct tsdb_chunk_iter *it, int nb, uint64_t *out)
{
    if ((size_t)nb > it->nbits - it->pos || it->pos > it->nbits)
        return false;
    uint64_t w;
    if (nb > 0 && nb <= 56 && peek(it, &w)) {
        *out = w >> (64 - nb);
        it->pos += (size_t)nb;
        return true;
    }
    uint64_t v = 0;
    while (nb > 0) {
        size_t byte = it->pos >> 3;
        int off = (int)(it->pos & 7);
        int room = 8 - off;
        int take = nb < room ? nb : room;
        uint64_t bits = ((unsigned)it->p[byte] >> (room - take)) & ((1u << take) - 1);
        v = take == 64 ? bits : (v << take) | bits;
        nb -= take;
        it->pos += (size_t)take;
    }
    *out = v;
    return true;
}

static bool get_bit(struct tsdb_chunk_iter *it, unsigned *bit)
{
    if (it->pos >= it->nbits)
        return false;
    *bit = ((unsigned)it->p[it->pos >> 3] >> (7 - (it->pos & 7))) & 1;
    it->pos++;
    return true;
}

static int64_t sign_extend(uint64_t v, int nb)
{
    if (nb == 64)
        return (int64_t)v;
    uint64_t m = 1ULL << (nb - 1);
    return (int64_t)((v ^ m) - m);
}

static bool get_dod(struct tsdb_chunk_iter *it, int64_t *dod)
{
    static const int widths[5] = {7, 14, 20, 32, 64};
    unsigned bit;
    int ones = 0;
    uint64_t w;
    if (peek(it, &w)) {
        /* the control bits at once: up to five ones, then a zero unless five */
        ones = w == ~UINT64_C(0) ? 64 : __builtin_clzll(~w);
        if (ones > 5)
            ones = 5;
        it->pos += (size_t)ones + (ones < 5);
        if (ones == 0) {
            *dod = 0;
            return true;
        }
        int nb = widths[ones - 1];
        uint64_t v;
        if (!get_bits(it, nb, &v))
            return false;
        *dod = sign_extend(v, nb);
        return true;
    }
    while (ones < 5) {
        if (!get_bit(it, &bit))
            return false;
        if (bit == 0)
            break;
        ones++;
    }
    if (ones == 0) {
        *dod = 0;
        return true;
    }
    int nb = widths[ones - 1];
    uint64_t v;
    if (!get_bits(it, nb, &v))
        return false;
    *dod = sign_extend(v, nb);
    return true;
}

static bool get_value(struct tsdb_chunk_iter *it)
{
    unsigned bit;
    uint64_t w;
    if (peek(it, &w)) {
        /* '0' same value; '10' the last window; '11' + 5 bits leading + 6 bits
         * significant: a new window */
        if ((w >> 63) == 0) {
            it->pos++;
            return true;
        }
        if (((w >> 62) & 1) == 1) {
            uint64_t lead = (w << 2) >> 59, sig = (w << 7) >> 58;
            if (sig == 0)
                sig = 64;
            if (lead + sig > 64)
                return false;
            it->leading = (uint8_t)lead;
            it->trailing = (uint8_t)(64 - lead - sig);
            it->pos += 13;
        } else {
            if (it->leading == 0xff)
                return false; /* window reuse before any window */
            it->pos += 2;
        }
        int nsig = 64 - it->leading - it->trailing;
        uint64_t x;
        if (!get_bits(it, nsig, &x))
            return false;
        it->v ^= it->trailing == 64 ? 0 : x << it->trailing;
        return true;
    }
    if (!get_bit(it, &bit))
        return false;
    if (bit == 0)
        return true; /* same value */
    if (!get_bit(it, &bit))
        return false;
    if (bit == 1) {
        uint64_t lead, sig;
        if (!get_bits(it, 5, &lead) || !get_bits(it, 6, &sig))
            return false;
        if (sig == 0)
            sig = 64;
        if (lead + sig > 64)
            return false;
        it->leading = (uint8_t)lead;
        it->trailing = (uint8_t)(64 - lead - sig);
    } else if (it->leading == 0xff) {
        return false; /* window reuse before any window */
    }
    int sig = 64 - it->leading - it->trailing;
    uint64_t x;
    if (!get_bits(it, sig, &x))
        return false;
    it->v ^= it->trailing == 64 ? 0 : x << it->trailing;
    return true;
}

bool tsdb_chunk_iter_next(struct tsdb_chunk_iter *it)
{
    if (it->err != HS_OK || it->i >= it->n)
        return false;
    if (it->i == 0) {
        uint64_t t, v;
        if (!get_bits(it, 64, &t) || !get_bits(it, 64, &v))
            goto corrupt;
        it->t = (int64_t)t;
        it->v = v;
    } else {
        int64_t dod;
        if (!get_dod(it, &dod))
            goto corrupt;
        uint64_t delta = (uint64_t)it->delta + (uint64_t)dod;
        int64_t t = (int64_t)((uint64_t)it->t + delta);
        if (t <= it->t)
            goto corrupt;
        if (!get_value(it))
            goto corrupt;
        it->delta = (int64_t)delta;
        it->t = t;
    }
    it->i++;
    return true;
corrupt:
    it->err = HS_ECORRUPT;
    return false;
}
