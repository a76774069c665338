/*
 * lexer.h - the PromQL tokenizer, shared by parser.c and its tests only.
 * Internal to src/promql/.
 *
 * The lexer is pulled one token at a time.  Like Prometheus' lexer it keeps
 * a little state: inside {...} keywords are plain identifiers and ':' is not
 * part of a name; inside [...] only durations, numbers, arithmetic, ':' and
 * the duration keywords step/range/min_of/max_of are tokens.  Comments
 * (# to end of line) are skipped.  A lexical error is returned as a
 * PROMQL_T_ERROR token whose message is in lx->err.
 *
 * Threading: a lexer belongs to one thread.
 */
#ifndef HS_PROMQL_LEXER_H
#define HS_PROMQL_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Token types.  The groups (operators, aggregators, keywords,
 * preprocessors) are contiguous ranges; see the PROMQL_T_IS_* helpers. */
enum promql__tok {
    PROMQL_T_EOF = 0,
    PROMQL_T_ERROR,
    PROMQL_T_IDENT,        /* foo, label names inside braces */
    PROMQL_T_METRIC_IDENT, /* an identifier containing ':' */
    PROMQL_T_NUMBER,       /* 1, 1.5e3, 0x1f, Inf, NaN */
    PROMQL_T_DURATION,     /* 5m, 1h30m, 250ms */
    PROMQL_T_STRING,       /* "..", '..', `..` (quotes included in the text) */
    PROMQL_T_LPAREN,
    PROMQL_T_RPAREN,
    PROMQL_T_LBRACE,
    PROMQL_T_RBRACE,
    PROMQL_T_LBRACKET,
    PROMQL_T_RBRACKET,
    PROMQL_T_COMMA,
    PROMQL_T_ASSIGN, /* = */
    PROMQL_T_COLON,
    /* operators */
    PROMQL_T_OPS_START,
    PROMQL_T_ADD,
    PROMQL_T_SUB,
    PROMQL_T_MUL,
    PROMQL_T_DIV,
    PROMQL_T_MOD,
    PROMQL_T_POW,
    PROMQL_T_EQLC, /* == */
    PROMQL_T_NEQ,  /* != */
    PROMQL_T_LSS,
    PROMQL_T_LTE,
    PROMQL_T_GTR,
    PROMQL_T_GTE,
    PROMQL_T_EQL_REGEX, /* =~ */
    PROMQL_T_NEQ_REGEX, /* !~ */
    PROMQL_T_AT,
    PROMQL_T_LAND,
    PROMQL_T_LOR,
    PROMQL_T_LUNLESS,
    PROMQL_T_ATAN2,
    PROMQL_T_OPS_END,
    /* aggregators */
    PROMQL_T_AGG_START,
    PROMQL_T_AVG,
    PROMQL_T_BOTTOMK,
    PROMQL_T_COUNT,
    PROMQL_T_COUNT_VALUES,
    PROMQL_T_GROUP,
    PROMQL_T_MAX,
    PROMQL_T_MIN,
    PROMQL_T_QUANTILE,
    PROMQL_T_STDDEV,
    PROMQL_T_STDVAR,
    PROMQL_T_SUM,
    PROMQL_T_TOPK,
    PROMQL_T_LIMITK,
    PROMQL_T_LIMIT_RATIO,
    PROMQL_T_AGG_END,
    /* keywords */
    PROMQL_T_KW_START,
    PROMQL_T_BOOL,
    PROMQL_T_BY,
    PROMQL_T_GROUP_LEFT,
    PROMQL_T_GROUP_RIGHT,
    PROMQL_T_FILL,
    PROMQL_T_FILL_LEFT,
    PROMQL_T_FILL_RIGHT,
    PROMQL_T_IGNORING,
    PROMQL_T_OFFSET,
    PROMQL_T_SMOOTHED,
    PROMQL_T_ANCHORED,
    PROMQL_T_ON,
    PROMQL_T_WITHOUT,
    PROMQL_T_KW_END,
    /* preprocessors: start() end() and the duration keywords */
    PROMQL_T_START,
    PROMQL_T_END,
    PROMQL_T_STEP,
    PROMQL_T_RANGE,
    PROMQL_T_MAX_OF,
    PROMQL_T_MIN_OF
};

#define PROMQL_T_IS_OP(t)  ((t) > PROMQL_T_OPS_START && (t) < PROMQL_T_OPS_END)
#define PROMQL_T_IS_AGG(t) ((t) > PROMQL_T_AGG_START && (t) < PROMQL_T_AGG_END)
#define PROMQL_T_IS_KW(t)  ((t) > PROMQL_T_KW_START && (t) < PROMQL_T_KW_END)

/* One token: its text is src[pos, pos+len). */
struct promql__token {
    int type;   /* enum promql__tok */
    size_t pos; /* byte offset of the first character */
    size_t len; /* length in bytes */
};

struct promql__lexer {
    const char *src;   /* the query; borrowed */
    size_t len;        /* its length */
    size_t pos;        /* next byte to read */
    int paren_depth;   /* open '(' minus ')' */
    bool brace_open;   /* inside {...} */
    bool bracket_open; /* inside [...] */
    bool in_dur_expr;  /* inside [...] before its first number (duration-expression state) */
    bool got_colon;    /* a ':' was seen inside the current [...] */
    bool got_duration; /* a number was seen inside brackets (never reset, as Prometheus) */
    bool done;         /* EOF or an error was returned; only EOF follows */
    char err[160];     /* message of the last PROMQL_T_ERROR token */
};

/* Starts lexing src[0, len).  'src' is borrowed for the lexer's lifetime. */
void promql__lexer_init(struct promql__lexer *lx, const char *src, size_t len);

/* Reads the next token into *tok.  After EOF or ERROR, returns EOF forever.
 * An ERROR token's pos is where the bad token started; lx->err says why. */
void promql__lexer_next(struct promql__lexer *lx, struct promql__token *tok);

/*
 * Describes a token as Prometheus does in "unexpected ..." messages:
 * `end of input`, `"("`, `<op:+>`, `<aggr:sum>`, `<by>`, `identifier "foo"`,
 * `number "1"`, `string "\"abc\""`.  Writes a NUL-terminated text into out.
 */
void promql__tok_describe(const char *src, const struct promql__token *tok, char *out,
                          size_t out_len);

/*
 * Unquotes a string token's text (quotes included) with Go's rules: escapes
 * \a \b \f \n \r \t \v \\ \' \" \xHH \ooo \uHHHH \UHHHHHHHH in '' and "",
 * none in ``.  Writes into out (needs n bytes; the result is never longer
 * than the input) and sets *out_len.  Returns false on a malformed string.
 */
bool promql__unquote(const char *s, size_t n, char *out, size_t *out_len);

/* True when s[0,n) is well-formed UTF-8 (no surrogates, no overlong forms). */
bool promql__utf8_valid(const char *s, size_t n);

#endif
