/* Optional CommP accelerator for pyipld (loaded with ctypes; see _commp_accel.py).
 *
 * CommP hashes every 64-byte pair of tree nodes with SHA-256 and clears the two
 * top bits of the digest's last byte (sha256-trunc254-padded).  A 64-byte
 * message is two SHA-256 blocks, and the second one (0x80, zeros, bit length
 * 512) is the same for every node, so its message schedule is precomputed.
 * On x86-64 CPUs with the SHA extensions the compression uses them; elsewhere
 * a portable C compression is used.  Functions never allocate and never call
 * back into Python, so ctypes releases the GIL around them and threads scale.
 *
 * Written for pyipld from FIPS 180-4 (SHA-256) and the Intel SHA extensions
 * reference (constants and round macros in ../_sha256_shani.h, shared with the
 * two-lane kernel); fr32 follows shared/spec/commp.md section 3.
 */
#include "../_sha256_shani.h"

/* W[t] + K[t] of the constant second block of a 64-byte message. */
static uint32_t PAD_WK[64];
static int pad_ready = 0;

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void init_pad(void) {
    uint32_t w[64];
    int t;
    if (pad_ready) return;
    memset(w, 0, sizeof w);
    w[0] = 0x80000000u;
    w[15] = 512;
    for (t = 16; t < 64; t++) {
        uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    for (t = 0; t < 64; t++) PAD_WK[t] = w[t] + K256[t];
    pad_ready = 1;
}

/* ---- portable compression --------------------------------------------- */

static void rounds_portable(uint32_t st[8], const uint32_t wk[64]) {
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    int t;
    for (t = 0; t < 64; t++) {
        uint32_t s1 = ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + s1 + ch + wk[t];
        uint32_t s0 = ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22);
        uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + s0 + mj;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

static void node_portable(const uint8_t *in, uint8_t *out) {
    uint32_t w[64], st[8];
    int t;
    for (t = 0; t < 16; t++)
        w[t] = ((uint32_t)in[4 * t] << 24) | ((uint32_t)in[4 * t + 1] << 16) | ((uint32_t)in[4 * t + 2] << 8) |
               (uint32_t)in[4 * t + 3];
    for (t = 16; t < 64; t++) {
        uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    for (t = 0; t < 64; t++) w[t] += K256[t];
    memcpy(st, IV256, sizeof st);
    rounds_portable(st, w);
    rounds_portable(st, PAD_WK);
    for (t = 0; t < 8; t++) {
        out[4 * t] = (uint8_t)(st[t] >> 24);
        out[4 * t + 1] = (uint8_t)(st[t] >> 16);
        out[4 * t + 2] = (uint8_t)(st[t] >> 8);
        out[4 * t + 3] = (uint8_t)st[t];
    }
    out[31] &= 0x3f;
}

/* ---- x86-64 SHA extensions -------------------------------------------- */

#ifdef PYIPLD_SHANI

SHANI static void node_shani(const uint8_t *in, uint8_t *out) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i s0, s1, save0, save1, tmp, w0, w1, w2, w3;
    int i;
    /* IV as ABEF / CDGH. */
    tmp = _mm_loadu_si128((const __m128i *)&IV256[0]);
    s1 = _mm_loadu_si128((const __m128i *)&IV256[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);
    s1 = _mm_shuffle_epi32(s1, 0x1B);
    s0 = _mm_alignr_epi8(tmp, s1, 8);
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);
    save0 = s0;
    save1 = s1;

    w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 0)), bswap);
    w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 16)), bswap);
    w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 32)), bswap);
    w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 48)), bswap);
    QROUND(s0, s1, _mm_add_epi32(w0, _mm_loadu_si128((const __m128i *)&K256[0])));
    QROUND(s0, s1, _mm_add_epi32(w1, _mm_loadu_si128((const __m128i *)&K256[4])));
    QROUND(s0, s1, _mm_add_epi32(w2, _mm_loadu_si128((const __m128i *)&K256[8])));
    QROUND(s0, s1, _mm_add_epi32(w3, _mm_loadu_si128((const __m128i *)&K256[12])));
    for (i = 16; i < 64; i += 16) {
        /* W[t..t+3] = msg2(msg1(W[t-16..], W[t-12..]) + W[t-7..t-4], W[t-4..t-1]) */
        w0 = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4)), w3);
        QROUND(s0, s1, _mm_add_epi32(w0, _mm_loadu_si128((const __m128i *)&K256[i])));
        w1 = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w1, w2), _mm_alignr_epi8(w0, w3, 4)), w0);
        QROUND(s0, s1, _mm_add_epi32(w1, _mm_loadu_si128((const __m128i *)&K256[i + 4])));
        w2 = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w2, w3), _mm_alignr_epi8(w1, w0, 4)), w1);
        QROUND(s0, s1, _mm_add_epi32(w2, _mm_loadu_si128((const __m128i *)&K256[i + 8])));
        w3 = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w3, w0), _mm_alignr_epi8(w2, w1, 4)), w2);
        QROUND(s0, s1, _mm_add_epi32(w3, _mm_loadu_si128((const __m128i *)&K256[i + 12])));
    }
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
    save0 = s0;
    save1 = s1;
    /* Second block: constant schedule. */
    for (i = 0; i < 64; i += 4) QROUND(s0, s1, _mm_loadu_si128((const __m128i *)&PAD_WK[i]));
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
    /* ABEF / CDGH back to ABCD / EFGH, then big-endian bytes. */
    tmp = _mm_shuffle_epi32(s0, 0x1B);
    s1 = _mm_shuffle_epi32(s1, 0xB1);
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);
    s1 = _mm_alignr_epi8(s1, tmp, 8);
    _mm_storeu_si128((__m128i *)(out + 0), _mm_shuffle_epi8(s0, bswap));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(s1, bswap));
    out[31] &= 0x3f;
}

SHANI static void node2_shani(const uint8_t *in0, const uint8_t *in1, uint8_t *out0, uint8_t *out1) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i a0, b0, a1, b1, sa, sb, tmp, k;
    __m128i x0, x1, x2, x3, y0, y1, y2, y3;
    int i;
    tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&IV256[0]), 0xB1);
    b0 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&IV256[4]), 0x1B);
    a0 = _mm_alignr_epi8(tmp, b0, 8);
    b0 = _mm_blend_epi16(b0, tmp, 0xF0);
    a1 = a0;
    b1 = b0;
    sa = a0;
    sb = b0;
    x0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in0 + 0)), bswap);
    x1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in0 + 16)), bswap);
    x2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in0 + 32)), bswap);
    x3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in0 + 48)), bswap);
    y0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in1 + 0)), bswap);
    y1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in1 + 16)), bswap);
    y2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in1 + 32)), bswap);
    y3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in1 + 48)), bswap);
    k = _mm_loadu_si128((const __m128i *)&K256[0]);
    QROUND2(a0, b0, a1, b1, _mm_add_epi32(x0, k), _mm_add_epi32(y0, k));
    k = _mm_loadu_si128((const __m128i *)&K256[4]);
    QROUND2(a0, b0, a1, b1, _mm_add_epi32(x1, k), _mm_add_epi32(y1, k));
    k = _mm_loadu_si128((const __m128i *)&K256[8]);
    QROUND2(a0, b0, a1, b1, _mm_add_epi32(x2, k), _mm_add_epi32(y2, k));
    k = _mm_loadu_si128((const __m128i *)&K256[12]);
    QROUND2(a0, b0, a1, b1, _mm_add_epi32(x3, k), _mm_add_epi32(y3, k));
    for (i = 16; i < 64; i += 16) {
        x0 = SCHED(x0, x1, x2, x3);
        y0 = SCHED(y0, y1, y2, y3);
        k = _mm_loadu_si128((const __m128i *)&K256[i]);
        QROUND2(a0, b0, a1, b1, _mm_add_epi32(x0, k), _mm_add_epi32(y0, k));
        x1 = SCHED(x1, x2, x3, x0);
        y1 = SCHED(y1, y2, y3, y0);
        k = _mm_loadu_si128((const __m128i *)&K256[i + 4]);
        QROUND2(a0, b0, a1, b1, _mm_add_epi32(x1, k), _mm_add_epi32(y1, k));
        x2 = SCHED(x2, x3, x0, x1);
        y2 = SCHED(y2, y3, y0, y1);
        k = _mm_loadu_si128((const __m128i *)&K256[i + 8]);
        QROUND2(a0, b0, a1, b1, _mm_add_epi32(x2, k), _mm_add_epi32(y2, k));
        x3 = SCHED(x3, x0, x1, x2);
        y3 = SCHED(y3, y0, y1, y2);
        k = _mm_loadu_si128((const __m128i *)&K256[i + 12]);
        QROUND2(a0, b0, a1, b1, _mm_add_epi32(x3, k), _mm_add_epi32(y3, k));
    }
    a0 = _mm_add_epi32(a0, sa);
    b0 = _mm_add_epi32(b0, sb);
    a1 = _mm_add_epi32(a1, sa);
    b1 = _mm_add_epi32(b1, sb);
    x0 = a0; x1 = b0; y0 = a1; y1 = b1; /* saved states for the second block */
    for (i = 0; i < 64; i += 4) {
        k = _mm_loadu_si128((const __m128i *)&PAD_WK[i]);
        QROUND2(a0, b0, a1, b1, k, k);
    }
    a0 = _mm_add_epi32(a0, x0);
    b0 = _mm_add_epi32(b0, x1);
    a1 = _mm_add_epi32(a1, y0);
    b1 = _mm_add_epi32(b1, y1);
    tmp = _mm_shuffle_epi32(a0, 0x1B);
    b0 = _mm_shuffle_epi32(b0, 0xB1);
    a0 = _mm_blend_epi16(tmp, b0, 0xF0);
    b0 = _mm_alignr_epi8(b0, tmp, 8);
    tmp = _mm_shuffle_epi32(a1, 0x1B);
    b1 = _mm_shuffle_epi32(b1, 0xB1);
    a1 = _mm_blend_epi16(tmp, b1, 0xF0);
    b1 = _mm_alignr_epi8(b1, tmp, 8);
    _mm_storeu_si128((__m128i *)(out0 + 0), _mm_shuffle_epi8(a0, bswap));
    _mm_storeu_si128((__m128i *)(out0 + 16), _mm_shuffle_epi8(b0, bswap));
    _mm_storeu_si128((__m128i *)(out1 + 0), _mm_shuffle_epi8(a1, bswap));
    _mm_storeu_si128((__m128i *)(out1 + 16), _mm_shuffle_epi8(b1, bswap));
    out0[31] &= 0x3f;
    out1[31] &= 0x3f;
}
#endif

typedef void (*node_fn)(const uint8_t *, uint8_t *);
typedef void (*node2_fn)(const uint8_t *, const uint8_t *, uint8_t *, uint8_t *);
static node_fn NODE = 0;

static void node2_generic(const uint8_t *in0, const uint8_t *in1, uint8_t *out0, uint8_t *out1) {
    uint8_t t0[32], t1[32]; /* inputs may overlap outputs: hash both before storing */
    NODE(in0, t0);
    NODE(in1, t1);
    memcpy(out0, t0, 32);
    memcpy(out1, t1, 32);
}

static node2_fn NODE2 = node2_generic;

static void setup(void) {
    if (NODE) return;
    init_pad();
#ifdef PYIPLD_SHANI
    if (cpu_has_sha()) {
        NODE = node_shani;
        NODE2 = node2_shani;
        return;
    }
#endif
    NODE = node_portable;
}

/* 1 when the SHA extensions are used, 0 for the portable compression. */
int pyipld_commp_uses_shani(int force_portable) {
    setup();
    if (force_portable) {
        NODE = node_portable;
        NODE2 = node2_generic;
    }
    return NODE != node_portable;
}

/* out[32*i..] = node(in[64*i..64*i+64]) for i < n_pairs.  out may equal in. */
/* In place is fine: pair i is read before nodes i, i+1 are stored, and later
 * pairs lie beyond what has been stored. */
static void hash_pairs2(const uint8_t *in, size_t n_pairs, uint8_t *out) {
    size_t i;
    uint8_t tmp[32];
    for (i = 0; i + 1 < n_pairs; i += 2) NODE2(in + 64 * i, in + 64 * i + 64, out + 32 * i, out + 32 * i + 32);
    if (i < n_pairs) {
        NODE(in + 64 * i, tmp);
        memcpy(out + 32 * i, tmp, 32);
    }
}

void pyipld_commp_hash_pairs(const uint8_t *in, size_t n_pairs, uint8_t *out) {
    setup();
    hash_pairs2(in, n_pairs, out);
}

/* fr32: 127 bytes -> four 32-byte leaves (254 bits each, top 2 bits zero).
 * Piece k > 0 starts at input bit 254k = byte 32k - 1, bit 8 - 2k. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static void fr32_quad(const uint8_t *in, uint8_t *out) {
    uint8_t buf[136];
    uint64_t o;
    int k, j;
    memcpy(buf, in, 127);
    memset(buf + 127, 0, 9);
    for (k = 0; k < 4; k++) {
        const uint8_t *base = k ? buf + 32 * k - 1 : buf;
        unsigned sh = k ? 8u - 2u * (unsigned)k : 0u;
        for (j = 0; j < 4; j++) {
            uint64_t lo, hi;
            memcpy(&lo, base + 8 * j, 8);
            memcpy(&hi, base + 8 * j + 8, 8);
            o = sh ? (lo >> sh) | (hi << (64 - sh)) : lo;
            if (j == 3) o &= 0x3fffffffffffffffULL;
            memcpy(out + 32 * k + 8 * j, &o, 8);
        }
    }
}
#else
static void fr32_quad(const uint8_t *in, uint8_t *out) {
    int j;
    memcpy(out, in, 31);
    out[31] = in[31] & 0x3f;
    for (j = 0; j < 32; j++) out[32 + j] = (uint8_t)((in[31 + j] >> 6) | (in[32 + j] << 2));
    out[63] &= 0x3f;
    for (j = 0; j < 32; j++) out[64 + j] = (uint8_t)((in[63 + j] >> 4) | (in[64 + j] << 4));
    out[95] &= 0x3f;
    for (j = 0; j < 31; j++) out[96 + j] = (uint8_t)((in[95 + j] >> 2) | (in[96 + j] << 6));
    out[127] = in[126] >> 2;
}
#endif

void pyipld_commp_fr32(const uint8_t *in, size_t n_quads, uint8_t *out) {
    size_t i;
    for (i = 0; i < n_quads; i++) fr32_quad(in + 127 * i, out + 128 * i);
}

/* Root (32 bytes) of the subtree over 2**log2_quads fr32 quads of `in`
 * (127 << log2_quads bytes).  Quads are expanded 16 at a time (64 leaves, 2 KiB)
 * and reduced level by level two nodes at a time; group roots go onto a stack.
 * Returns 0, or -1 if log2_quads is too large. */
#define GROUP_LOG2 4
int pyipld_commp_subtree(const uint8_t *in, unsigned log2_quads, uint8_t *out) {
    uint8_t stack[64][32];
    uint8_t have[64];
    uint8_t buf[128 << GROUP_LOG2], pair[64], node[32];
    size_t g, n_groups, n, group_quads;
    unsigned lvl, q, glog;
    if (log2_quads > 40) return -1;
    setup();
    memset(have, 0, sizeof have);
    glog = log2_quads < GROUP_LOG2 ? log2_quads : GROUP_LOG2;
    group_quads = (size_t)1 << glog;
    n_groups = (size_t)1 << (log2_quads - glog);
    for (g = 0; g < n_groups; g++) {
        for (q = 0; q < group_quads; q++) fr32_quad(in + 127 * (g * group_quads + q), buf + 128 * q);
        for (n = 4 * group_quads; n > 1; n /= 2) hash_pairs2(buf, n / 2, buf);
        memcpy(node, buf, 32);
        lvl = 0; /* level relative to a group root */
        while (have[lvl]) {
            memcpy(pair, stack[lvl], 32);
            memcpy(pair + 32, node, 32);
            NODE(pair, node);
            have[lvl] = 0;
            lvl++;
        }
        memcpy(stack[lvl], node, 32);
        have[lvl] = 1;
    }
    memcpy(out, stack[log2_quads - glog], 32);
    return 0;
}
