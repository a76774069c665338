/*
 * internal.h - the UTF-8 decoder and code-point classes shared by the quality
 * scorers (module-internal: nobody outside src/quality includes this).
 *
 * Threading: pure functions.
 */
#ifndef HS_QUALITY_INTERNAL_H
#define HS_QUALITY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the code point at s[*i] (len bytes in all) into *cp and advances
 * *i past it.  Returns false for an invalid sequence (stray continuation
 * byte, overlong form, surrogate, above U+10FFFF, truncated): then *cp is
 * U+FFFD and *i advances by one byte.
 */
bool qual__utf8_decode(const unsigned char *s, size_t len, size_t *i, uint32_t *cp);
static inline bool qual__utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
    if (s[*i] < 0x80) { /* the common case, kept inline */
        *cp = s[(*i)++];
        return true;
    }
    return qual__utf8_decode(s, len, i, cp);
}

/* Script of a letter (enum qual_script), QUAL_SCRIPT_NONE for anything
 * that is not a letter of a tracked script (digits, punctuation, symbols). */
int qual__script_of(uint32_t cp);

/* True for code points that separate words: ASCII space and punctuation,
 * Latin-1 punctuation, general and CJK punctuation, full-width punctuation. */
bool qual__is_separator(uint32_t cp);

/* True for a character that forms a word by itself (Han, kana). */
bool qual__is_ideograph(uint32_t cp);

#endif
