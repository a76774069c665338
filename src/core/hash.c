/*
 * hash.c - a 64-bit multiply-mix hash and CRC32C.
 *
 * hs_hash64 reads 8 bytes at a time, folds each word in with a 128-bit
 * multiply and finishes with an avalanche step.  Its output is part of
 * on-disk formats, so it must never change.
 *
 * hs_crc32c (Castagnoli polynomial, reflected 0x82F63B78) uses the SSE4.2
 * crc32 instruction when the CPU has it and an 8-way sliced table otherwise;
 * both give identical results.
 */
#include "core/core.h"

#include <pthread.h>
#include <string.h>

#define K0 0xa0761d6478bd642full
#define K1 0xe7037ed1a0b428dbull
#define K2 0x8ebc6af09c88c6e3ull

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint64_t hs_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ mix(seed ^ K0, K1) ^ (uint64_t)len;
    while (len >= 16) {
        h = mix(load64(p) ^ K1, load64(p + 8) ^ h);
        p += 16;
        len -= 16;
    }
    if (len >= 8) {
        h = mix(load64(p) ^ K1, h ^ K2);
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    if (len)
        memcpy(&tail, p, len);
    h = mix(tail ^ K2, h ^ K0);
    return mix(h ^ K1, h ^ K2 ^ (uint64_t)len);
}

/* ---- CRC32C ---- */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t len)
{
    pthread_once(&table_once, table_init);
    while (len >= 8) {
        uint64_t w = load64(p) ^ crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
              table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                         size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        c = __builtin_ia32_crc32di(c, load64(p));
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t hs_crc32c(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc_hw(crc, data, len);
#endif
    return ~crc_sw(crc, data, len);
}
