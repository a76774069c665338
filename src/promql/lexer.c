/*
 * lexer.c - the PromQL tokenizer.
 *
 * Follows the token rules of Prometheus 3's lexer so that the same queries
 * are accepted and the same lexical errors are reported:
 *   - numbers: decimal, with '.', exponent and '_' digit separators, hex
 *     0x..., Inf and NaN in any case;
 *   - durations: <digits>[.digits]<unit> pairs, units y w d h m s ms
 *     (validity of the unit order is checked by promql__parse_duration);
 *   - strings in "", '' (Go escapes, checked here) and `` (raw);
 *   - identifiers may contain ':' outside braces; keywords are matched case
 *     insensitively; fill/fill_left/fill_right are keywords only before '(';
 *   - inside [...] only duration arithmetic is lexed (':' separates range and
 *     step of a subquery).
 * Invariant: tokens never overlap and positions only grow.
 */
#include "promql/lexer.h"

#include "core/core.h"

#include <stdio.h>
#include <string.h>

struct keyword {
    const char *name;
    int type;
};

/* Words recognised outside braces (lower case). */
static const struct keyword keywords[] = {
    {"and", PROMQL_T_LAND},
    {"or", PROMQL_T_LOR},
    {"unless", PROMQL_T_LUNLESS},
    {"atan2", PROMQL_T_ATAN2},
    {"sum", PROMQL_T_SUM},
    {"avg", PROMQL_T_AVG},
    {"count", PROMQL_T_COUNT},
    {"min", PROMQL_T_MIN},
    {"max", PROMQL_T_MAX},
    {"group", PROMQL_T_GROUP},
    {"stddev", PROMQL_T_STDDEV},
    {"stdvar", PROMQL_T_STDVAR},
    {"topk", PROMQL_T_TOPK},
    {"bottomk", PROMQL_T_BOTTOMK},
    {"count_values", PROMQL_T_COUNT_VALUES},
    {"quantile", PROMQL_T_QUANTILE},
    {"limitk", PROMQL_T_LIMITK},
    {"limit_ratio", PROMQL_T_LIMIT_RATIO},
    {"offset", PROMQL_T_OFFSET},
    {"smoothed", PROMQL_T_SMOOTHED},
    {"anchored", PROMQL_T_ANCHORED},
    {"by", PROMQL_T_BY},
    {"without", PROMQL_T_WITHOUT},
    {"on", PROMQL_T_ON},
    {"ignoring", PROMQL_T_IGNORING},
    {"group_left", PROMQL_T_GROUP_LEFT},
    {"group_right", PROMQL_T_GROUP_RIGHT},
    {"fill", PROMQL_T_FILL},
    {"fill_left", PROMQL_T_FILL_LEFT},
    {"fill_right", PROMQL_T_FILL_RIGHT},
    {"bool", PROMQL_T_BOOL},
    {"start", PROMQL_T_START},
    {"end", PROMQL_T_END},
    {"step", PROMQL_T_STEP},
    {"range", PROMQL_T_RANGE},
    {"max_of", PROMQL_T_MAX_OF},
    {"min_of", PROMQL_T_MIN_OF},
    {"inf", PROMQL_T_NUMBER},
    {"nan", PROMQL_T_NUMBER},
};

/* Fixed spellings of punctuation and operators, for messages. */
static const char *punct_name(int type)
{
    switch (type) {
    case PROMQL_T_LPAREN:
        return "(";
    case PROMQL_T_RPAREN:
        return ")";
    case PROMQL_T_LBRACE:
        return "{";
    case PROMQL_T_RBRACE:
        return "}";
    case PROMQL_T_LBRACKET:
        return "[";
    case PROMQL_T_RBRACKET:
        return "]";
    case PROMQL_T_COMMA:
        return ",";
    case PROMQL_T_ASSIGN:
        return "=";
    case PROMQL_T_COLON:
        return ":";
    default:
        return NULL;
    }
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int peek(const struct promql__lexer *lx)
{
    return lx->pos < lx->len ? (unsigned char)lx->src[lx->pos] : -1;
}

static int peek_at(const struct promql__lexer *lx, size_t off)
{
    return lx->pos + off < lx->len ? (unsigned char)lx->src[lx->pos + off] : -1;
}

static bool accept(struct promql__lexer *lx, const char *set)
{
    int c = peek(lx);
    if (c > 0 && strchr(set, c) != NULL) {
        lx->pos++;
        return true;
    }
    return false;
}

static bool peek_in(const struct promql__lexer *lx, const char *set)
{
    int c = peek(lx);
    return c > 0 && strchr(set, c) != NULL;
}

void promql__lexer_init(struct promql__lexer *lx, const char *src, size_t len)
{
    memset(lx, 0, sizeof(*lx));
    lx->src = src;
    lx->len = len;
}

static void emit(struct promql__token *tok, int type, size_t start, size_t end)
{
    tok->type = type;
    tok->pos = start;
    tok->len = end - start;
}

static void fail(struct promql__lexer *lx, struct promql__token *tok, size_t start, const char *fmt,
                 ...) HS_PRINTF(4, 5);

static void fail(struct promql__lexer *lx, struct promql__token *tok, size_t start, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lx->err, sizeof(lx->err), fmt, ap);
    va_end(ap);
    emit(tok, PROMQL_T_ERROR, start, start);
    lx->done = true;
}

/* Formats a byte as Go's %q of a rune would, for messages. */
static void quote_char(int c, char *out, size_t n)
{
    if (c == '\'' || c == '\\')
        snprintf(out, n, "'\\%c'", c);
    else if (c >= 0x20 && c < 0x7f)
        snprintf(out, n, "'%c'", c);
    else if (c == '\n')
        snprintf(out, n, "'\\n'");
    else if (c == '\t')
        snprintf(out, n, "'\\t'");
    else if (c < 0)
        snprintf(out, n, "EOF");
    else
        snprintf(out, n, "'\\x%02x'", c);
}

/* Decodes one UTF-8 sequence at s[0,n); returns its length or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, c = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, c = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
        return 0;
    *cp = c;
    return len;
}

bool promql__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        size_t l = utf8_len(p + i, n - i, &cp);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

/*
 * Scans a number as Prometheus' scanNumber: [0x][.]digits with '.', 'e' and
 * '_' rules; true when a complete number ends here (not followed by an
 * alphanumeric).  On false, lx->pos is where scanning stopped.
 */
static bool scan_number(struct promql__lexer *lx)
{
    size_t start = lx->pos;
    const char *digits = "0123456789";
    bool hex = false;
    if (peek(lx) == '0' && (peek_at(lx, 1) == 'x' || peek_at(lx, 1) == 'X')) {
        lx->pos += 2;
        accept(lx, "_");
        digits = "0123456789abcdefABCDEF";
        hex = true;
    }
    accept(lx, ".");
    accept(lx, digits);
    bool dot = false, expo = false;
    for (;;) {
        int c = peek(lx);
        if (c <= 0) /* end of input, or a NUL byte (never part of a number) */
            break;
        bool is_d = strchr(digits, c) != NULL;
        if (!is_d && c != '.' && c != '_' && c != 'e' && c != 'E')
            break;
        if (c == '.') {
            if (dot) {
                lx->pos++;
                return false;
            }
            lx->pos++;
            dot = true;
            if (accept(lx, "_."))
                return false;
            if (hex)
                return false;
            continue;
        }
        if ((c == 'e' || c == 'E') && !is_d) {
            if (expo) {
                lx->pos++;
                return false;
            }
            lx->pos++;
            expo = true;
            accept(lx, "+-");
            if (accept(lx, "._eE") || peek(lx) < 0)
                return false;
            continue;
        }
        if (c == '_') {
            lx->pos++;
            if (accept(lx, "._eE") || peek(lx) < 0)
                return false;
            continue;
        }
        while (peek_in(lx, digits))
            lx->pos++;
    }
    if (lx->pos == start)
        return false;
    return !is_alnum(peek(lx));
}

/* After a number prefix: unit letters and more <digits><unit> pairs. */
static bool accept_duration_rest(struct promql__lexer *lx)
{
    if (!accept(lx, "smhdwy"))
        return false;
    accept(lx, "s");
    while (accept(lx, "0123456789")) {
        while (accept(lx, "0123456789"))
            ;
        if (!accept(lx, "smhdw"))
            return false;
        accept(lx, "s");
    }
    if (is_alnum(peek(lx))) {
        lx->pos++;
        return false;
    }
    return true;
}

static void lex_number(struct promql__lexer *lx, struct promql__token *tok)
{
    size_t start = lx->pos;
    if (scan_number(lx)) {
        emit(tok, PROMQL_T_NUMBER, start, lx->pos);
        return;
    }
    if (accept_duration_rest(lx)) {
        emit(tok, PROMQL_T_DURATION, start, lx->pos);
        return;
    }
    fail(lx, tok, start, "bad number or duration syntax: \"%.*s\"", (int)(lx->pos - start),
         lx->src + start);
}

/* Checks the escape after a backslash at lx->pos (already past '\\'). */
static bool lex_escape(struct promql__lexer *lx, int quote, struct promql__token *tok, size_t start)
{
    int c = peek(lx);
    int n = 0;
    uint32_t base = 0, max = 0;
    if (c < 0) {
        fail(lx, tok, start, "escape sequence not terminated");
        return false;
    }
    lx->pos++;
    switch (c) {
    case 'a':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case 'v':
    case '\\':
        return true;
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        n = 3, base = 8, max = 255;
        lx->pos--;
        break;
    case 'x':
        n = 2, base = 16, max = 255;
        break;
    case 'u':
        n = 4, base = 16, max = 0x10ffff;
        break;
    case 'U':
        n = 8, base = 16, max = 0x10ffff;
        break;
    default:
        if (c == quote)
            return true;
        if (c >= 0x20 && c < 0x7f)
            fail(lx, tok, start, "unknown escape sequence U+%04X '%c'", (unsigned)c, c);
        else
            fail(lx, tok, start, "unknown escape sequence U+%04X", (unsigned)c);
        return false;
    }
    uint32_t x = 0;
    for (int i = 0; i < n; i++) {
        int d = peek(lx);
        uint32_t v = 16;
        if (is_digit(d))
            v = (uint32_t)(d - '0');
        else if (d >= 'a' && d <= 'f')
            v = (uint32_t)(d - 'a' + 10);
        else if (d >= 'A' && d <= 'F')
            v = (uint32_t)(d - 'A' + 10);
        if (v >= base) {
            if (d < 0)
                fail(lx, tok, start, "escape sequence not terminated");
            else if (d >= 0x20 && d < 0x7f)
                fail(lx, tok, start, "illegal character U+%04X '%c' in escape sequence",
                     (unsigned)d, d);
            else
                fail(lx, tok, start, "illegal character U+%04X in escape sequence", (unsigned)d);
            return false;
        }
        x = x * base + v;
        lx->pos++;
    }
    if (x > max || (x >= 0xd800 && x < 0xe000)) {
        fail(lx, tok, start, "escape sequence is an invalid Unicode code point");
        return false;
    }
    return true;
}

static void lex_string(struct promql__lexer *lx, struct promql__token *tok, int quote)
{
    size_t start = lx->pos - 1;
    for (;;) {
        int c = peek(lx);
        if (c < 0 || (c == '\n' && quote != '`')) {
            fail(lx, tok, start,
                 quote == '`' ? "unterminated raw string" : "unterminated quoted string");
            return;
        }
        if (c == quote) {
            lx->pos++;
            break;
        }
        if (c == '\\' && quote != '`') {
            lx->pos++;
            if (!lex_escape(lx, quote, tok, start))
                return;
            continue;
        }
        uint32_t cp;
        size_t l = utf8_len((const unsigned char *)lx->src + lx->pos, lx->len - lx->pos, &cp);
        if (l == 0) {
            fail(lx, tok, start, "invalid UTF-8 rune");
            return;
        }
        lx->pos += l;
    }
    emit(tok, PROMQL_T_STRING, start, lx->pos);
}

static int keyword_lookup(const char *s, size_t n)
{
    char low[16];
    if (n >= sizeof(low))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    low[n] = '\0';
    for (size_t i = 0; i < HS_ARRAY_LEN(keywords); i++) {
        if (strcmp(keywords[i].name, low) == 0)
            return keywords[i].type;
    }
    return -1;
}

static bool followed_by_lparen(const struct promql__lexer *lx)
{
    size_t p = lx->pos;
    while (p < lx->len && is_space((unsigned char)lx->src[p]))
        p++;
    return p < lx->len && lx->src[p] == '(';
}

static void lex_word(struct promql__lexer *lx, struct promql__token *tok)
{
    size_t start = lx->pos;
    bool colon = false;
    while (is_alnum(peek(lx)) || peek(lx) == ':') {
        colon |= peek(lx) == ':';
        lx->pos++;
    }
    int kw = keyword_lookup(lx->src + start, lx->pos - start);
    if (kw >= 0) {
        if ((kw == PROMQL_T_FILL || kw == PROMQL_T_FILL_LEFT || kw == PROMQL_T_FILL_RIGHT) &&
            !followed_by_lparen(lx))
            kw = PROMQL_T_IDENT;
        emit(tok, kw, start, lx->pos);
        return;
    }
    emit(tok, colon ? PROMQL_T_METRIC_IDENT : PROMQL_T_IDENT, start, lx->pos);
}

static void skip_comment(struct promql__lexer *lx)
{
    while (lx->pos < lx->len && lx->src[lx->pos] != '\n' && lx->src[lx->pos] != '\r')
        lx->pos++;
}

static void lex_braces(struct promql__lexer *lx, struct promql__token *tok)
{
    size_t start = lx->pos;
    int c = peek(lx);
    if (c < 0) {
        fail(lx, tok, start, "unexpected end of input inside braces");
        return;
    }
    if (is_alpha(c)) {
        while (is_alnum(peek(lx)))
            lx->pos++;
        emit(tok, PROMQL_T_IDENT, start, lx->pos);
        return;
    }
    lx->pos++;
    char q[16];
    switch (c) {
    case ',':
        emit(tok, PROMQL_T_COMMA, start, lx->pos);
        return;
    case '"':
    case '\'':
    case '`':
        lex_string(lx, tok, c);
        return;
    case '=':
        if (accept(lx, "~"))
            emit(tok, PROMQL_T_EQL_REGEX, start, lx->pos);
        else
            emit(tok, PROMQL_T_ASSIGN, start, lx->pos);
        return;
    case '!':
        if (accept(lx, "~")) {
            emit(tok, PROMQL_T_NEQ_REGEX, start, lx->pos);
        } else if (accept(lx, "=")) {
            emit(tok, PROMQL_T_NEQ, start, lx->pos);
        } else {
            quote_char(peek(lx), q, sizeof(q));
            fail(lx, tok, start, "unexpected character after '!' inside braces: %s", q);
        }
        return;
    case '{':
        fail(lx, tok, start, "unexpected left brace '{'");
        return;
    case '}':
        lx->brace_open = false;
        emit(tok, PROMQL_T_RBRACE, start, lx->pos);
        return;
    default:
        quote_char(c, q, sizeof(q));
        fail(lx, tok, start, "unexpected character inside braces: %s", q);
        return;
    }
}

/* Scans step/range/max_of/min_of (any case) at lx->pos; false (nothing
 * consumed) for any other word. */
static bool duration_keyword(struct promql__lexer *lx, struct promql__token *tok)
{
    size_t start = lx->pos, end = lx->pos;
    while (end < lx->len && is_alpha((unsigned char)lx->src[end]))
        end++;
    int kw = keyword_lookup(lx->src + start, end - start);
    if (kw == PROMQL_T_STEP || kw == PROMQL_T_RANGE || kw == PROMQL_T_MAX_OF ||
        kw == PROMQL_T_MIN_OF) {
        lx->pos = end;
        emit(tok, kw, start, end);
        return true;
    }
    return false;
}

static void lex_brackets(struct promql__lexer *lx, struct promql__token *tok)
{
    size_t start = lx->pos;
    int c = peek(lx);
    char q[16];
    if (c < 0) {
        fail(lx, tok, start, "unexpected end of input in duration expression");
        return;
    }
    if (is_digit(c) || (c == '.' && is_digit(peek_at(lx, 1)))) {
        /* After a number Prometheus' lexer goes back to its statement state
         * (still inside the brackets); the messages differ there. */
        lx->in_dur_expr = false;
        lx->got_duration = true;
        lex_number(lx, tok);
        return;
    }
    if (is_alpha(c)) {
        if (duration_keyword(lx, tok))
            return;
        quote_char(c, q, sizeof(q));
        fail(lx, tok, start, "unexpected character in duration expression: %s", q);
        return;
    }
    lx->pos++;
    int type;
    switch (c) {
    case ']':
        lx->bracket_open = false;
        lx->in_dur_expr = false;
        lx->got_colon = false;
        type = PROMQL_T_RBRACKET;
        break;
    case ':':
        if (!lx->got_duration) {
            fail(lx, tok, lx->pos, "unexpected colon before duration in duration expression");
            return;
        }
        if (lx->got_colon) {
            fail(lx, tok, lx->pos, "unexpected repeated colon in duration expression");
            return;
        }
        lx->got_colon = true;
        type = PROMQL_T_COLON;
        break;
    case '(':
        lx->paren_depth++;
        type = PROMQL_T_LPAREN;
        break;
    case ')':
        if (--lx->paren_depth < 0) {
            fail(lx, tok, lx->pos, "unexpected right parenthesis ')'");
            return;
        }
        type = PROMQL_T_RPAREN;
        break;
    case '+':
        type = PROMQL_T_ADD;
        break;
    case '-':
        type = PROMQL_T_SUB;
        break;
    case '*':
        type = PROMQL_T_MUL;
        break;
    case '/':
        type = PROMQL_T_DIV;
        break;
    case '%':
        type = PROMQL_T_MOD;
        break;
    case '^':
        type = PROMQL_T_POW;
        break;
    case ',':
        type = PROMQL_T_COMMA;
        break;
    default:
        quote_char(c, q, sizeof(q));
        fail(lx, tok, start, "unexpected character in duration expression: %s", q);
        return;
    }
    emit(tok, type, start, lx->pos);
}

static void lex_two(struct promql__lexer *lx, struct promql__token *tok, size_t start, int next,
                    int both, int single)
{
    if (accept(lx, (char[]){(char)next, 0}))
        emit(tok, both, start, lx->pos);
    else
        emit(tok, single, start, lx->pos);
}

static void lex_statement(struct promql__lexer *lx, struct promql__token *tok)
{
    size_t start = lx->pos;
    int c = peek(lx);
    char q[16];
    if (c < 0) {
        if (lx->paren_depth != 0)
            fail(lx, tok, start, "unclosed left parenthesis");
        else if (lx->bracket_open)
            fail(lx, tok, start, "unclosed left bracket");
        else
            emit(tok, PROMQL_T_EOF, start, start), lx->done = true;
        return;
    }
    if (is_digit(c) || (c == '.' && is_digit(peek_at(lx, 1)))) {
        lex_number(lx, tok);
        return;
    }
    if ((is_alpha(c) || c == ':') && lx->bracket_open) {
        if (c == ':') {
            if (lx->got_colon) {
                fail(lx, tok, start, "unexpected colon ':'");
                return;
            }
            lx->pos++;
            lx->got_colon = true;
            emit(tok, PROMQL_T_COLON, start, lx->pos);
            return;
        }
        if (duration_keyword(lx, tok))
            return;
        quote_char(c, q, sizeof(q));
        fail(lx, tok, start, "unexpected character: %s, expected ':'", q);
        return;
    }
    if (is_alpha(c) || c == ':') {
        lex_word(lx, tok);
        return;
    }
    lx->pos++;
    switch (c) {
    case ',':
        emit(tok, PROMQL_T_COMMA, start, lx->pos);
        return;
    case '*':
        emit(tok, PROMQL_T_MUL, start, lx->pos);
        return;
    case '/':
        emit(tok, PROMQL_T_DIV, start, lx->pos);
        return;
    case '%':
        emit(tok, PROMQL_T_MOD, start, lx->pos);
        return;
    case '+':
        emit(tok, PROMQL_T_ADD, start, lx->pos);
        return;
    case '-':
        emit(tok, PROMQL_T_SUB, start, lx->pos);
        return;
    case '^':
        emit(tok, PROMQL_T_POW, start, lx->pos);
        return;
    case '@':
        emit(tok, PROMQL_T_AT, start, lx->pos);
        return;
    case '=':
        if (peek(lx) == '~') {
            fail(lx, tok, start, "unexpected character after '=': '~'");
            return;
        }
        lex_two(lx, tok, start, '=', PROMQL_T_EQLC, PROMQL_T_ASSIGN);
        return;
    case '!':
        if (!accept(lx, "=")) {
            quote_char(peek(lx), q, sizeof(q));
            fail(lx, tok, start, "unexpected character after '!': %s", q);
            return;
        }
        emit(tok, PROMQL_T_NEQ, start, lx->pos);
        return;
    case '<':
        lex_two(lx, tok, start, '=', PROMQL_T_LTE, PROMQL_T_LSS);
        return;
    case '>':
        lex_two(lx, tok, start, '=', PROMQL_T_GTE, PROMQL_T_GTR);
        return;
    case '"':
    case '\'':
    case '`':
        lex_string(lx, tok, c);
        return;
    case '(':
        lx->paren_depth++;
        emit(tok, PROMQL_T_LPAREN, start, lx->pos);
        return;
    case ')':
        if (--lx->paren_depth < 0) {
            fail(lx, tok, lx->pos, "unexpected right parenthesis ')'");
            return;
        }
        emit(tok, PROMQL_T_RPAREN, start, lx->pos);
        return;
    case '{':
        lx->brace_open = true;
        emit(tok, PROMQL_T_LBRACE, start, lx->pos);
        return;
    case '[':
        if (lx->bracket_open) {
            fail(lx, tok, start, "unexpected left bracket '['");
            return;
        }
        lx->bracket_open = true;
        lx->in_dur_expr = true;
        lx->got_colon = false;
        emit(tok, PROMQL_T_LBRACKET, start, lx->pos);
        return;
    case ']':
        if (!lx->bracket_open) {
            fail(lx, tok, start, "unexpected right bracket ']'");
            return;
        }
        lx->bracket_open = false;
        lx->got_colon = false;
        emit(tok, PROMQL_T_RBRACKET, start, lx->pos);
        return;
    default:
        if (c >= 0x80) {
            uint32_t cp;
            size_t l = utf8_len((const unsigned char *)lx->src + start, lx->len - start, &cp);
            if (l > 0) {
                fail(lx, tok, start, "unexpected character: '%.*s'", (int)l, lx->src + start);
                return;
            }
        }
        quote_char(c, q, sizeof(q));
        fail(lx, tok, start, "unexpected character: %s", q);
        return;
    }
}

void promql__lexer_next(struct promql__lexer *lx, struct promql__token *tok)
{
    if (lx->done) {
        emit(tok, PROMQL_T_EOF, lx->len, lx->len);
        return;
    }
    for (;;) {
        while (lx->pos < lx->len && is_space((unsigned char)lx->src[lx->pos]))
            lx->pos++;
        if (lx->pos < lx->len && lx->src[lx->pos] == '#' && !lx->in_dur_expr) {
            skip_comment(lx);
            continue;
        }
        break;
    }
    if (lx->brace_open)
        lex_braces(lx, tok);
    else if (lx->in_dur_expr)
        lex_brackets(lx, tok);
    else
        lex_statement(lx, tok);
}

/* Go's %q of a string, truncated to 'max_runes' runes when max_runes > 0. */
static void go_quote(const char *s, size_t n, char *out, size_t out_len)
{
    size_t o = 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 < out_len)                                                                       \
            out[o++] = (ch);                                                                       \
    } while (0)
    PUT('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c == '\n') {
            PUT('\\');
            PUT('n');
        } else if (c == '\t') {
            PUT('\\');
            PUT('t');
        } else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            snprintf(hex, sizeof(hex), "\\x%02x", c);
            for (char *h = hex; *h; h++)
                PUT(*h);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
#undef PUT
    out[o < out_len ? o : out_len - 1] = '\0';
}

void promql__tok_describe(const char *src, const struct promql__token *tok, char *out,
                          size_t out_len)
{
    const char *text = src + tok->pos;
    int len = (int)tok->len;
    const char *p = punct_name(tok->type);
    if (out_len == 0)
        return;
    if (tok->type == PROMQL_T_EOF) {
        snprintf(out, out_len, "end of input");
    } else if (p != NULL) {
        snprintf(out, out_len, "\"%s\"", p);
    } else if (PROMQL_T_IS_OP(tok->type)) {
        snprintf(out, out_len, "<op:%.*s>", len, text);
    } else if (PROMQL_T_IS_AGG(tok->type)) {
        snprintf(out, out_len, "<aggr:%.*s>", len, text);
    } else if (PROMQL_T_IS_KW(tok->type)) {
        snprintf(out, out_len, "<%.*s>", len, text);
    } else if (tok->type >= PROMQL_T_START) {
        char q[96];
        go_quote(text, HS_MIN(tok->len, 64), q, sizeof(q));
        snprintf(out, out_len, "%s", q);
    } else {
        const char *what = "identifier";
        switch (tok->type) {
        case PROMQL_T_METRIC_IDENT:
            what = "metric identifier";
            break;
        case PROMQL_T_NUMBER:
            what = "number";
            break;
        case PROMQL_T_DURATION:
            what = "duration";
            break;
        case PROMQL_T_STRING:
            what = "string";
            break;
        case PROMQL_T_ERROR:
            what = "error";
            break;
        default:
            break;
        }
        /* Go prints long values as %.10q... (ten runes, then an ellipsis);
         * identifiers are printed whole. */
        char q[160];
        size_t n = tok->len;
        bool cut = false;
        if (tok->type != PROMQL_T_IDENT && tok->type != PROMQL_T_METRIC_IDENT) {
            size_t runes = 0, i = 0;
            while (i < n && runes < 10) {
                i++;
                while (i < n && ((unsigned char)text[i] & 0xc0) == 0x80)
                    i++;
                runes++;
            }
            cut = i < n;
            n = i;
        }
        if (n > 100)
            n = 100;
        go_quote(text, n, q, sizeof(q));
        snprintf(out, out_len, "%s %s%s", what, q, cut ? "..." : "");
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends code point cp as UTF-8. */
static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

bool promql__unquote(const char *s, size_t n, char *out, size_t *out_len)
{
    if (n < 2 || s[0] != s[n - 1] || (s[0] != '"' && s[0] != '\'' && s[0] != '`'))
        return false;
    char q = s[0];
    size_t o = 0;
    if (q == '`') {
        memcpy(out, s + 1, n - 2);
        *out_len = n - 2;
        return memchr(s + 1, '`', n - 2) == NULL;
    }
    for (size_t i = 1; i < n - 1;) {
        char c = s[i];
        if (c == q || c == '\n')
            return false;
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        if (++i >= n - 1)
            return false;
        c = s[i++];
        int digits = 0, base = 16;
        switch (c) {
        case 'a':
            out[o++] = '\a';
            continue;
        case 'b':
            out[o++] = '\b';
            continue;
        case 'f':
            out[o++] = '\f';
            continue;
        case 'n':
            out[o++] = '\n';
            continue;
        case 'r':
            out[o++] = '\r';
            continue;
        case 't':
            out[o++] = '\t';
            continue;
        case 'v':
            out[o++] = '\v';
            continue;
        case '\\':
            out[o++] = '\\';
            continue;
        case 'x':
            digits = 2;
            break;
        case 'u':
            digits = 4;
            break;
        case 'U':
            digits = 8;
            break;
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
            digits = 3, base = 8, i--;
            break;
        default:
            if (c != q)
                return false;
            out[o++] = c;
            continue;
        }
        uint32_t v = 0;
        for (int d = 0; d < digits; d++) {
            if (i >= n - 1)
                return false;
            int h = hexval(s[i++]);
            if (h < 0 || h >= base)
                return false;
            v = v * (uint32_t)base + (uint32_t)h;
        }
        if (c == 'x' || base == 8) {
            if (v > 255)
                return false;
            out[o++] = (char)v; /* a raw byte, as Go does */
        } else {
            if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
                return false;
            o += put_utf8(out + o, v);
        }
    }
    *out_len = o;
    return true;
}
