/*
 * core.h - the base every holoscope module stands on: error values,
 * allocation, arenas, growable buffers, string cursors, number parsing and
 * formatting, time, hashing, label sets, structured logging and the YAML
 * document tree the configuration is read from.
 *
 * core depends on no other holoscope module.
 *
 * Threading: every function is safe to call from any thread on distinct
 * objects; objects themselves (arenas, buffers, label sets) are not locked.
 * The log sink is the one shared object and serialises its own writes.
 */
#ifndef HS_CORE_H
#define HS_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HS_MUST_CHECK __attribute__((warn_unused_result))
/* Discards the result of an HS_MUST_CHECK call on purpose (a (void) cast
 * does not silence gcc's warn_unused_result). */
#define HS_IGNORE_RESULT(expr)                                                                     \
    do {                                                                                           \
        if (expr) {                                                                                \
        }                                                                                          \
    } while (0)
#define HS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HS_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define HS_MAX(a, b)    ((a) > (b) ? (a) : (b))

/* ---- errors ------------------------------------------------------------ */

enum hs_code {
    HS_OK = 0,
    HS_ENOMEM = -1,    /* an allocation failed; the object is unchanged */
    HS_EINVAL = -2,    /* invalid argument or value */
    HS_EPARSE = -3,    /* malformed input; err->pos says where */
    HS_ETOOBIG = -4,   /* input beyond a configured ceiling */
    HS_EIO = -5,       /* operating-system I/O error */
    HS_ECORRUPT = -6,  /* stored data failed a checksum or structural check */
    HS_EAGAIN = -7,    /* not enough input yet; call again with more */
    HS_ETIMEDOUT = -8, /* a deadline passed */
    HS_ECLOSED = -9,   /* the peer or object is closed */
    HS_ENOTFOUND = -10 /* the named thing does not exist */
};

/*
 * Error detail.  Functions take 'struct hs_err *err' last; it may be NULL.
 * 'pos' is a byte offset into the input when there is one, 'line' and 'col'
 * (1-based, 0 when unknown) a position in a text file.
 */
struct hs_err {
    int code;
    size_t pos;
    int line;
    int col;
    char msg[512];
};

const char *hs_strerror(int code);
/* Fills 'err' (if not NULL) and returns 'code', so callers can
 * 'return hs_err_set(err, HS_EINVAL, "bad %s", x);'. */
int hs_err_set(struct hs_err *err, int code, const char *fmt, ...) HS_PRINTF(3, 4);
/* As hs_err_set with a byte position. */
int hs_err_setpos(struct hs_err *err, int code, size_t pos, const char *fmt, ...) HS_PRINTF(4, 5);
void hs_err_clear(struct hs_err *err);

/* ---- allocation --------------------------------------------------------
 * All allocation goes through these so tests can fail any of them:
 * hs_alloc_fail_after(n) makes the (n+1)-th following call fail (n = 0: the
 * next one); hs_alloc_fail_after(-1) turns failure injection off.  The
 * injection counter is process-wide and meant for single-threaded tests.
 */
void *hs_malloc(size_t n);
void *hs_calloc(size_t count, size_t size);
void *hs_realloc(void *p, size_t n);
/* realloc of count*size with overflow check. */
void *hs_reallocarray(void *p, size_t count, size_t size);
void hs_free(void *p);
char *hs_strdup(const char *s);
char *hs_strndup(const char *s, size_t n);
void hs_alloc_fail_after(long n);
/* Number of allocation calls made since start (for fault-injection loops). */
unsigned long hs_alloc_calls(void);

/* ---- arena --------------------------------------------------------------
 * Bump allocator for short-lived work (a request, a query, a scrape).
 * Memory is released all at once by hs_arena_reset (kept for reuse) or
 * hs_arena_cleanup.  Cleanup callbacks run in reverse order of
 * registration on reset and cleanup (for fds and temp files).
 */
struct hs_arena_block;
struct hs_arena_cleanup_item;
struct hs_arena {
    struct hs_arena_block *head;            /* current block, linked to older ones */
    struct hs_arena_cleanup_item *cleanups; /* LIFO */
    size_t block_size;                      /* default size of a new block */
    size_t used_bytes;                      /* bytes handed out since the last reset */
    size_t max_bytes;                       /* ceiling; 0 = none */
};
void hs_arena_init(struct hs_arena *a, size_t block_size, size_t max_bytes);
void hs_arena_cleanup(struct hs_arena *a);
void hs_arena_reset(struct hs_arena *a);
/* Returns 16-byte aligned memory or NULL (out of memory or past max_bytes). */
void *hs_arena_alloc(struct hs_arena *a, size_t n);
void *hs_arena_calloc(struct hs_arena *a, size_t n);
char *hs_arena_strndup(struct hs_arena *a, const char *s, size_t n);
char *hs_arena_printf(struct hs_arena *a, const char *fmt, ...) HS_PRINTF(2, 3);
HS_MUST_CHECK int hs_arena_on_cleanup(struct hs_arena *a, void (*fn)(void *), void *arg);

/* ---- growable byte buffer -----------------------------------------------
 * Always NUL-terminated when p != NULL.  'max' (0 = unlimited) is the
 * ceiling: growing past it fails with HS_ETOOBIG and leaves the buffer as
 * it was.
 */
struct hs_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
};
void hs_buf_init(struct hs_buf *b, size_t max);
void hs_buf_cleanup(struct hs_buf *b);
void hs_buf_reset(struct hs_buf *b); /* len = 0, memory kept */
HS_MUST_CHECK int hs_buf_reserve(struct hs_buf *b, size_t extra);
HS_MUST_CHECK int hs_buf_append(struct hs_buf *b, const void *data, size_t n);
HS_MUST_CHECK int hs_buf_puts(struct hs_buf *b, const char *s);
HS_MUST_CHECK int hs_buf_putc(struct hs_buf *b, char c);
HS_MUST_CHECK int hs_buf_printf(struct hs_buf *b, const char *fmt, ...) HS_PRINTF(2, 3);
HS_MUST_CHECK int hs_buf_vprintf(struct hs_buf *b, const char *fmt, va_list ap);
/* Appends 's' as a JSON string literal, quotes included. */
HS_MUST_CHECK int hs_buf_json_str(struct hs_buf *b, const char *s, size_t n);
/* Takes the memory out of the buffer; caller frees with hs_free. */
char *hs_buf_detach(struct hs_buf *b, size_t *len);

/* ---- strings and parsing -------------------------------------------------
 * Cursor parsers: on success they advance *s and return HS_OK; on failure
 * *s is unchanged.
 */
struct hs_str {
    const char *p;
    size_t len;
};
#define HS_STR(lit) ((struct hs_str){(lit), sizeof(lit) - 1})
bool hs_str_eq(struct hs_str a, const char *b);
bool hs_streq(const char *a, const char *b);
bool hs_has_prefix(const char *s, const char *prefix);
bool hs_has_suffix(const char *s, const char *suffix);

/* Writes the UTF-8 encoding of code point 'cp' (<= 0x10FFFF) to out; returns
 * its length, 1 to 4. */
size_t hs_utf8_encode(uint32_t cp, char out[4]);
/* Decodes standard base64 (RFC 4648; the trailing '=' padding may be left
 * out) of s[0..n) into out, which has room for n / 4 * 3 + 3 bytes; sets
 * *out_len.  HS_EPARSE with *bad_at (the offset) on a character outside the
 * alphabet or data after padding. */
HS_MUST_CHECK int hs_base64_decode(const char *s, size_t n, char *out, size_t *out_len,
                                   size_t *bad_at);

/* Whole-string parsers: all of 's' must be consumed. */
HS_MUST_CHECK int hs_parse_i64(const char *s, int64_t *out);
HS_MUST_CHECK int hs_parse_u64(const char *s, uint64_t *out);
/* Accepts what strtod accepts plus Prometheus spellings (NaN, +Inf, -Inf,
 * Inf in any case). */
HS_MUST_CHECK int hs_parse_double(const char *s, double *out);
/* Prometheus durations: "1h30m", "90s", "250ms", "2d", "1w", "1y"; a bare
 * number is seconds.  Result in milliseconds, >= 0. */
HS_MUST_CHECK int hs_parse_duration_ms(const char *s, int64_t *out_ms);
/* Sizes: "512", "64KB", "16MiB", "1GB" (KB/MB/GB/TB are powers of 1024 as in
 * Prometheus' retention.size). */
HS_MUST_CHECK int hs_parse_bytes(const char *s, uint64_t *out);
/* Formats a duration the way Prometheus prints one ("1h30m", "0s"). */
void hs_format_duration(int64_t ms, char *out, size_t out_len);

/* Shortest text that parses back to exactly 'v' ("NaN", "+Inf", "-Inf" for
 * the specials), in the %g style.  'out' needs 32 bytes. */
size_t hs_format_double(double v, char *out, size_t out_len);
/* The shortest decimal digits that read back to |v| (v finite and not 0),
 * as Go's strconv finds them: the digits in 'd' (NUL-terminated, no
 * trailing zeros; 'dlen' >= 32) and the decimal point after *dp digits
 * (|v| = 0.d x 10^dp).  Exact arithmetic for the common range, printf and
 * strtod beyond it. */
void hs_shortest_digits(double v, char *d, size_t dlen, int *dp);

/* ---- time ---------------------------------------------------------------- */
int64_t hs_now_ms(void);     /* wall clock, ms since the epoch */
int64_t hs_mono_ns(void);    /* monotonic clock, ns */
double hs_now_seconds(void); /* wall clock, seconds with fraction */

/* ---- hashing ---------------------------------------------------------------
 * 64-bit non-cryptographic hash, stable across runs and platforms of the same
 * endianness (used in on-disk formats: never change it).
 */
uint64_t hs_hash64(const void *data, size_t len, uint64_t seed);
uint32_t hs_crc32c(uint32_t crc, const void *data, size_t len);

/* ---- label sets -------------------------------------------------------------
 * A label set is an array of name/value pairs sorted by name, names unique.
 * The strings are not owned by the struct unless it came from hs_labels_dup,
 * which packs everything into one allocation freed by hs_labels_free.
 */
struct hs_label {
    const char *name;
    const char *value;
};
struct hs_labels {
    size_t n;
    struct hs_label *v;
};
void hs_labels_sort(struct hs_labels *ls);
const char *hs_labels_get(const struct hs_labels *ls, const char *name);
int hs_labels_cmp(const struct hs_labels *a, const struct hs_labels *b);
uint64_t hs_labels_hash(const struct hs_labels *ls);
/* Checks names are valid, unique and sorted. */
bool hs_labels_valid(const struct hs_labels *ls);
/* One allocation holding the array and every string; NULL on ENOMEM. */
struct hs_labels *hs_labels_dup(const struct hs_labels *ls);
void hs_labels_free(struct hs_labels *ls);
/* Appends {a="b", c="d"}, with __name__ printed in front when present. */
HS_MUST_CHECK int hs_labels_format(const struct hs_labels *ls, struct hs_buf *out);
/* Label and metric name rules of the Prometheus data model (legacy charset). */
bool hs_label_name_valid(const char *s, size_t n);
bool hs_metric_name_valid(const char *s, size_t n);

/* ---- logging -------------------------------------------------------------
 * One event per line, logfmt or JSON.  Fields are typed values built with the
 * HS_L* macros:
 *   hs_log(HS_LOG_INFO, "listening", HS_LSTR("addr", addr), HS_LINT("port", p));
 * The sink is process-global (see docs/ARCHITECTURE.md, Globals).
 */
enum hs_log_level { HS_LOG_DEBUG = 0, HS_LOG_INFO = 1, HS_LOG_WARN = 2, HS_LOG_ERROR = 3 };
enum hs_log_format { HS_LOG_LOGFMT = 0, HS_LOG_JSON = 1 };
enum hs_log_ftype { HS_LF_END = 0, HS_LF_STR, HS_LF_INT, HS_LF_F64, HS_LF_BOOL };
struct hs_log_field {
    const char *key;
    int type; /* enum hs_log_ftype */
    const char *s;
    int64_t i;
    double d;
};
#define HS_LSTR(k, v)      ((struct hs_log_field){(k), HS_LF_STR, (v), 0, 0})
#define HS_LINT(k, v)      ((struct hs_log_field){(k), HS_LF_INT, NULL, (int64_t)(v), 0})
#define HS_LF64(k, v)      ((struct hs_log_field){(k), HS_LF_F64, NULL, 0, (double)(v)})
#define HS_LBOOL(k, v)     ((struct hs_log_field){(k), HS_LF_BOOL, NULL, (v) ? 1 : 0, 0})
#define HS_LEND            ((struct hs_log_field){NULL, HS_LF_END, NULL, 0, 0})
#define hs_log(level, ...) hs_log_emit((level), __VA_ARGS__, HS_LEND)
void hs_log_emit(int level, const char *msg, ...);
/* Configure the sink: minimum level, format, output (NULL = stderr). */
void hs_log_setup(int level, int format, FILE *out);
bool hs_log_enabled(int level);
HS_MUST_CHECK int hs_log_level_parse(const char *s, int *level);
HS_MUST_CHECK int hs_log_format_parse(const char *s, int *format);

/* ---- YAML document tree ----------------------------------------------------
 * The configuration and rule files are read into this tree (libyaml does the
 * parsing); every node keeps its line and column so errors can name them.
 * Anchors and aliases are resolved; merge keys are not supported.
 */
enum hs_ynode_type { HS_Y_SCALAR = 1, HS_Y_SEQ, HS_Y_MAP };
struct hs_ynode {
    int type;                /* enum hs_ynode_type */
    int line, col;           /* 1-based position in the file */
    char *tag;               /* explicit tag or NULL */
    bool is_quoted;          /* scalar was quoted: never null/bool/number by implicit typing */
    char *scalar;            /* HS_Y_SCALAR: the text */
    size_t n;                /* HS_Y_SEQ / HS_Y_MAP: number of items / pairs */
    struct hs_ynode **items; /* HS_Y_SEQ: items; HS_Y_MAP: key0, val0, key1, val1, ... */
};
struct hs_ydoc {
    char *path;            /* file name used in messages */
    struct hs_ynode *root; /* NULL for an empty document */
    struct hs_arena arena; /* owns every node */
};
/* Parses 'len' bytes; 'path' is only used in messages.  On error fills err
 * with line/col and a message "FILE:LINE:COL: ..." and returns NULL. */
struct hs_ydoc *hs_ydoc_parse(const char *text, size_t len, const char *path, struct hs_err *err);
struct hs_ydoc *hs_ydoc_load(const char *path, struct hs_err *err);
void hs_ydoc_free(struct hs_ydoc *doc);
/* Map lookup; NULL when absent or when 'map' is not a map. */
struct hs_ynode *hs_ynode_get(const struct hs_ynode *map, const char *key);
bool hs_ynode_is_null(const struct hs_ynode *n);
/* Typed readers that fail with "FILE:LINE:COL: KEY: expected ..." */
HS_MUST_CHECK int hs_ynode_str(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                               const char **out, struct hs_err *err);
HS_MUST_CHECK int hs_ynode_bool(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                                bool *out, struct hs_err *err);
HS_MUST_CHECK int hs_ynode_i64(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                               int64_t *out, struct hs_err *err);
HS_MUST_CHECK int hs_ynode_f64(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                               double *out, struct hs_err *err);
HS_MUST_CHECK int hs_ynode_duration(const struct hs_ydoc *d, const struct hs_ynode *n,
                                    const char *what, int64_t *out_ms, struct hs_err *err);
HS_MUST_CHECK int hs_ynode_bytes(const struct hs_ydoc *d, const struct hs_ynode *n,
                                 const char *what, uint64_t *out, struct hs_err *err);
/* Sets err to "FILE:LINE:COL: <message>" at node n. */
int hs_ynode_error(const struct hs_ydoc *d, const struct hs_ynode *n, int code, struct hs_err *err,
                   const char *fmt, ...) HS_PRINTF(5, 6);

/* ---- files ------------------------------------------------------------------ */
/* Reads a whole file (at most max_bytes; 0 = no limit). Caller frees with hs_free. */
char *hs_read_file(const char *path, size_t max_bytes, size_t *len, struct hs_err *err);
/* Writes via temp file + fsync + rename + fsync(dir). */
HS_MUST_CHECK int hs_write_file_atomic(const char *path, const void *data, size_t len,
                                       struct hs_err *err);
/* mkdir -p */
HS_MUST_CHECK int hs_mkdir_p(const char *path, struct hs_err *err);
HS_MUST_CHECK int hs_fsync_dir(const char *dir, struct hs_err *err);

#endif
