/* SHA-256 with the x86 SHA extensions: what pyipld's native kernels share (included by
 * _sha256x2_native.c and filecoin/_commp_native.c; built by _native_build.py).
 *
 * K256/IV256 are FIPS 180-4's constants.  Where the SHA-NI intrinsics exist (x86-64, GCC or
 * clang) PYIPLD_SHANI is defined, with: SHANI (the target attribute), cpu_has_sha() (CPUID:
 * SSE4.1, SSSE3 and SHA), QROUND (four rounds of one message, state halves ABEF/CDGH), QROUND2
 * (four rounds of two messages interleaved: sha256rnds2 has a latency of several cycles but
 * issues every cycle) and SCHED (four words of the message schedule).
 *
 * Written for pyipld from FIPS 180-4 and the Intel SHA extensions reference.
 */
#ifndef PYIPLD_SHA256_SHANI_H
#define PYIPLD_SHA256_SHANI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t IV256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PYIPLD_SHANI 1
#include <cpuid.h>
#include <immintrin.h>

#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

static int cpu_has_sha(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 19)) || !(c & (1u << 9))) return 0; /* SSE4.1, SSSE3 */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* SHA */
}

/* Four rounds: a/b hold ABEF/CDGH; wk = W[t..t+3] + K[t..t+3]. */
#define QROUND(a, b, wk)                          \
    do {                                          \
        __m128i m_ = (wk);                        \
        b = _mm_sha256rnds2_epu32(b, a, m_);      \
        m_ = _mm_shuffle_epi32(m_, 0x0E);         \
        a = _mm_sha256rnds2_epu32(a, b, m_);      \
    } while (0)

/* Four rounds of two independent messages, interleaved. */
#define QROUND2(a0, b0, a1, b1, wk0, wk1)          \
    do {                                           \
        __m128i m0_ = (wk0), m1_ = (wk1);          \
        b0 = _mm_sha256rnds2_epu32(b0, a0, m0_);   \
        b1 = _mm_sha256rnds2_epu32(b1, a1, m1_);   \
        m0_ = _mm_shuffle_epi32(m0_, 0x0E);        \
        m1_ = _mm_shuffle_epi32(m1_, 0x0E);        \
        a0 = _mm_sha256rnds2_epu32(a0, b0, m0_);   \
        a1 = _mm_sha256rnds2_epu32(a1, b1, m1_);   \
    } while (0)

/* The next four words of the message schedule from the previous sixteen. */
#define SCHED(w0, w1, w2, w3) \
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4)), w3)

#endif /* x86-64 */
#endif /* PYIPLD_SHA256_SHANI_H */
