/*
 * fuzz_log.c - the decoder of cluster log entries (cluster/cluster.h):
 * what every node reads off the stream.  Whatever decodes must encode
 * again, and one round trip later the encoding must not change.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cluster/cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pdqm_log_ops d;
    if (pdqm_log_decode(data, size, &d, NULL) != PDQM_OK)
        return 0;
    uint8_t *one = NULL, *two = NULL;
    size_t one_len = 0, two_len = 0;
    if (pdqm_log_encode(d.ops, d.n_ops, &one, &one_len, NULL) == PDQM_OK) {
        pdqm_log_ops again;
        if (pdqm_log_decode(one, one_len, &again, NULL) != PDQM_OK)
            __builtin_trap();   /* what we write, we read */
        if (pdqm_log_encode(again.ops, again.n_ops, &two, &two_len, NULL) != PDQM_OK ||
            two_len != one_len || memcmp(one, two, one_len) != 0)
            __builtin_trap();   /* and it reads back the same */
        pdqm_log_ops_free(&again);
    }
    free(one);
    free(two);
    pdqm_log_ops_free(&d);
    return 0;
}
