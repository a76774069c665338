/*
 * fuzz_wal_replay.c - random bytes as a WAL segment (or checkpoint):
 * replay into an empty head never crashes, never leaks, and stops at the
 * first bad record.  Seeds: corpus/wal_replay/ (real segments and a
 * checkpoint).
 */
#include "tsdb/internal.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tsdb *db = calloc(1, sizeof(*db));
    if (db == NULL)
        return 0;
    tsdb_options_defaults(&db->opt);
    db->opt.ooo_window_ms = 60000;
    db->wal.fd = -1;
    if (tsdb__head_init(&db->head) != HS_OK) {
        free(db);
        return 0;
    }
    db->replaying = true;
    bool corrupt;
    int fatal;
    size_t good = tsdb__wal_replay_buf(db, data, size, &corrupt, &fatal);
    if (good > size || (!corrupt && fatal == HS_OK && good != size))
        abort();
    tsdb__head_gc(db, NULL, 0);
    tsdb__head_cleanup(db);
    free(db);
    return 0;
}
