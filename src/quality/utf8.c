/*
 * utf8.c - a strict UTF-8 decoder (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) and the code-point classes the
 * scorers need: which script a letter belongs to, what separates words,
 * which characters are words by themselves.  Ranges are the Unicode blocks
 * of each script; they are coarse on purpose (the language check only has
 * to tell Latin from Cyrillic from CJK, not languages apart).
 */
#include "quality/internal.h"
#include "quality/quality.h"

bool qual__utf8_decode(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
    size_t p = *i;
    unsigned char c = s[p];
    if (c < 0x80) {
        *cp = c;
        *i = p + 1;
        return true;
    }
    size_t need;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1Fu;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0Fu;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07u;
        min = 0x10000;
    } else {
        goto bad;
    }
    if (len - p - 1 < need)
        goto bad;
    for (size_t k = 1; k <= need; k++) {
        unsigned char cc = s[p + k];
        if ((cc & 0xC0) != 0x80)
            goto bad;
        v = (v << 6) | (cc & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        goto bad;
    *cp = v;
    *i = p + need + 1;
    return true;
bad:
    *cp = 0xFFFD;
    *i = p + 1;
    return false;
}

bool qual__is_ideograph(uint32_t cp)
{
    return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0xFF66 && cp <= 0xFF9D) || (cp >= 0x20000 && cp <= 0x2FFFF);
}

int qual__script_of(uint32_t cp)
{
    if (cp < 0x80)
        return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ? QUAL_SCRIPT_LATIN : QUAL_SCRIPT_NONE;
    if ((cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x1E00 && cp <= 0x1EFF))
        return QUAL_SCRIPT_LATIN;
    if ((cp >= 0x370 && cp <= 0x3FF) || (cp >= 0x1F00 && cp <= 0x1FFF))
        return QUAL_SCRIPT_GREEK;
    if (cp >= 0x400 && cp <= 0x52F)
        return QUAL_SCRIPT_CYRILLIC;
    if (cp >= 0x5D0 && cp <= 0x5F2)
        return QUAL_SCRIPT_HEBREW;
    if ((cp >= 0x620 && cp <= 0x64A) || (cp >= 0x66E && cp <= 0x6D3) ||
        (cp >= 0x750 && cp <= 0x77F) || (cp >= 0xFB50 && cp <= 0xFDFF) ||
        (cp >= 0xFE70 && cp <= 0xFEFF))
        return QUAL_SCRIPT_ARABIC;
    if (cp >= 0x904 && cp <= 0x97F)
        return QUAL_SCRIPT_DEVANAGARI;
    if (cp >= 0xE01 && cp <= 0xE5B)
        return QUAL_SCRIPT_THAI;
    if ((cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0x1100 && cp <= 0x11FF) ||
        (cp >= 0x3130 && cp <= 0x318F))
        return QUAL_SCRIPT_HANGUL;
    if (qual__is_ideograph(cp))
        return QUAL_SCRIPT_CJK;
    return QUAL_SCRIPT_NONE;
}

bool qual__is_separator(uint32_t cp)
{
    if (cp < 0x80) {
        bool alnum = ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= '0' && cp <= '9');
        return !alnum && cp != '\'' && cp != '_';
    }
    return (cp >= 0x80 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 ||
           (cp >= 0x2000 && cp <= 0x206F) || (cp >= 0x3000 && cp <= 0x303F) ||
           (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
           (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) || cp == 0x60C ||
           cp == 0x61B || cp == 0x61F || cp == 0x6D4 || cp == 0xFEFF;
}
