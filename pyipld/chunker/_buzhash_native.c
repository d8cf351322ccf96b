/* boxo's buzhash cut search (chunker/buzhash.go NextBytes), for pyipld.chunker._native.
 * Same contract as _numba_kernels._buzhash_scan: chunk ends in buf[0:n] into ends, returns
 * their count; without eof, stops while fewer than max bytes remain after a chunk start. */
#include <stdint.h>

static inline uint32_t rotl1(uint32_t x) { return (x << 1) | (x >> 31); }

long pyipld_buzhash_decide(const uint8_t *buf, long n, int eof, const uint32_t *table, long min_size,
                           long max_size, uint32_t mask, int64_t *ends) {
    long count = 0, start = 0;
    while (start < n && (eof || n - start >= max_size)) {
        long avail = n - start < max_size ? n - start : max_size;
        if (avail < min_size) {
            start += avail;
        } else {
            uint32_t state = 0;
            long i;
            for (i = start + min_size - 32; i < start + min_size; i++)
                state = rotl1(state) ^ table[buf[i]];
            i = start + min_size - 32;
            long last = start + avail - 33; /* boxo: max := b.n + n - 32 - 1 */
            while (i <= last && (state & mask) != 0) {
                /* the outgoing byte needs no rotation: rotating a 32-bit value by 32 is the identity */
                state = rotl1(state) ^ table[buf[i]] ^ table[buf[i + 32]];
                i++;
            }
            start = i + 32;
        }
        ends[count++] = start;
    }
    return count;
}
