/*
 * fuzz_chunk.c - random bytes as an XOR chunk: iteration never reads out
 * of bounds, never loops forever, and only ever yields increasing
 * timestamps.  Seeds: corpus/chunk/.
 */
#include "tsdb/tsdb.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tsdb_chunk_iter it;
    tsdb_chunk_iter_init(&it, data, size);
    unsigned n = 0;
    int64_t last = INT64_MIN;
    while (tsdb_chunk_iter_next(&it)) {
        if (n > 0 && it.t <= last)
            abort();
        last = it.t;
        n++;
    }
    if (n > tsdb_chunk_num_samples(data, size))
        abort();
    return 0;
}
