/* Optional two-lane SHA-256 for pyipld's leaf hashing and block verification (loaded with ctypes;
 * see _sha256x2.py).
 *
 * With the x86 SHA extensions one message runs at the latency of sha256rnds2; two independent
 * messages interleaved fill the gaps, so two blocks (e.g. two 256 KiB file leaves) hash in
 * about 0.6 of the time of one after the other (measured: 22.6 against 37.6 ns per 64-byte block
 * for hashlib/OpenSSL on the benchmark machine).  A message may be given as pieces (a dag-pb
 * leaf's header, file bytes and trailer): whole blocks are hashed where they lie, only a block
 * that straddles two pieces and the padding are gathered.  Functions never allocate and never
 * call back into Python, so ctypes releases the GIL around them.  Without SHA-NI (or off x86-64)
 * the entry points return -1 and the caller hashes with hashlib.
 *
 * Written for pyipld from FIPS 180-4 (SHA-256) and the Intel SHA extensions reference; the
 * constants and round macros are in _sha256_shani.h (shared with filecoin/_commp_native.c).
 */
#include "_sha256_shani.h"

#include <setjmp.h>
#include <pthread.h>
#include <signal.h>

#ifdef PYIPLD_SHANI

#define KK(i) _mm_loadu_si128((const __m128i *)&K256[i])
#define BSWAP_MASK _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)
#define LOAD(p, i) _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 16 * (i))), BSWAP_MASK)

SHANI static void blocks1(const uint8_t *in, size_t n, __m128i *pa, __m128i *pb) {
    __m128i a = *pa, b = *pb;
    for (; n; n--, in += 64) {
        __m128i sa = a, sb = b;
        __m128i x0 = LOAD(in, 0), x1 = LOAD(in, 1), x2 = LOAD(in, 2), x3 = LOAD(in, 3);
        int i;
        QROUND(a, b, _mm_add_epi32(x0, KK(0)));
        QROUND(a, b, _mm_add_epi32(x1, KK(4)));
        QROUND(a, b, _mm_add_epi32(x2, KK(8)));
        QROUND(a, b, _mm_add_epi32(x3, KK(12)));
        for (i = 16; i < 64; i += 16) {
            x0 = SCHED(x0, x1, x2, x3);
            QROUND(a, b, _mm_add_epi32(x0, KK(i)));
            x1 = SCHED(x1, x2, x3, x0);
            QROUND(a, b, _mm_add_epi32(x1, KK(i + 4)));
            x2 = SCHED(x2, x3, x0, x1);
            QROUND(a, b, _mm_add_epi32(x2, KK(i + 8)));
            x3 = SCHED(x3, x0, x1, x2);
            QROUND(a, b, _mm_add_epi32(x3, KK(i + 12)));
        }
        a = _mm_add_epi32(a, sa);
        b = _mm_add_epi32(b, sb);
    }
    *pa = a;
    *pb = b;
}

SHANI static void blocks2(const uint8_t *p, const uint8_t *q, size_t n, __m128i *s) {
    __m128i a0 = s[0], b0 = s[1], a1 = s[2], b1 = s[3], k;
    for (; n; n--, p += 64, q += 64) {
        __m128i sa0 = a0, sb0 = b0, sa1 = a1, sb1 = b1;
        __m128i x0 = LOAD(p, 0), x1 = LOAD(p, 1), x2 = LOAD(p, 2), x3 = LOAD(p, 3);
        __m128i y0 = LOAD(q, 0), y1 = LOAD(q, 1), y2 = LOAD(q, 2), y3 = LOAD(q, 3);
        int i;
        k = KK(0);
        QROUND2(a0, b0, a1, b1, _mm_add_epi32(x0, k), _mm_add_epi32(y0, k));
        k = KK(4);
        QROUND2(a0, b0, a1, b1, _mm_add_epi32(x1, k), _mm_add_epi32(y1, k));
        k = KK(8);
        QROUND2(a0, b0, a1, b1, _mm_add_epi32(x2, k), _mm_add_epi32(y2, k));
        k = KK(12);
        QROUND2(a0, b0, a1, b1, _mm_add_epi32(x3, k), _mm_add_epi32(y3, k));
        for (i = 16; i < 64; i += 16) {
            x0 = SCHED(x0, x1, x2, x3);
            y0 = SCHED(y0, y1, y2, y3);
            k = KK(i);
            QROUND2(a0, b0, a1, b1, _mm_add_epi32(x0, k), _mm_add_epi32(y0, k));
            x1 = SCHED(x1, x2, x3, x0);
            y1 = SCHED(y1, y2, y3, y0);
            k = KK(i + 4);
            QROUND2(a0, b0, a1, b1, _mm_add_epi32(x1, k), _mm_add_epi32(y1, k));
            x2 = SCHED(x2, x3, x0, x1);
            y2 = SCHED(y2, y3, y0, y1);
            k = KK(i + 8);
            QROUND2(a0, b0, a1, b1, _mm_add_epi32(x2, k), _mm_add_epi32(y2, k));
            x3 = SCHED(x3, x0, x1, x2);
            y3 = SCHED(y3, y0, y1, y2);
            k = KK(i + 12);
            QROUND2(a0, b0, a1, b1, _mm_add_epi32(x3, k), _mm_add_epi32(y3, k));
        }
        a0 = _mm_add_epi32(a0, sa0);
        b0 = _mm_add_epi32(b0, sb0);
        a1 = _mm_add_epi32(a1, sa1);
        b1 = _mm_add_epi32(b1, sb1);
    }
    s[0] = a0;
    s[1] = b0;
    s[2] = a1;
    s[3] = b1;
}

SHANI static void init_state(__m128i *a, __m128i *b) {
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&IV256[0]), 0xB1);
    *b = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&IV256[4]), 0x1B);
    *a = _mm_alignr_epi8(tmp, *b, 8);
    *b = _mm_blend_epi16(*b, tmp, 0xF0);
}

/* A message given as up to MAX_PARTS pieces (e.g. a dag-pb leaf's header, file bytes, trailer),
 * read as a stream of 64-byte blocks ending with the padding.  Whole blocks inside one piece are
 * hashed where they lie; a block that straddles pieces, and the padding, are gathered into buf. */
#define MAX_PARTS 4

typedef struct {
    const uint8_t *p[MAX_PARTS];
    size_t n[MAX_PARTS];
    int parts, i, padded;
    size_t off;
    uint64_t bits;
    uint8_t buf[128];
    int buf_n, buf_i; /* gathered blocks in buf, and how many of them are consumed */
} message;

static void msg_init(message *m, const uint8_t *const *ptr, const size_t *len, int parts) {
    int j;
    uint64_t total = 0;
    memset(m, 0, sizeof *m);
    m->parts = parts;
    for (j = 0; j < parts; j++) {
        m->p[j] = ptr[j];
        m->n[j] = len[j];
        total += len[j];
    }
    m->bits = total * 8;
}

/* The next run of whole blocks: their address, and how many (0 once the padding is consumed). */
static size_t msg_run(message *m, const uint8_t **at) {
    size_t k = 0, take;
    int j;
    if (m->buf_i < m->buf_n) {
        *at = m->buf + 64 * m->buf_i;
        return (size_t)(m->buf_n - m->buf_i);
    }
    while (m->i < m->parts && m->off == m->n[m->i]) {
        m->i++;
        m->off = 0;
    }
    if (m->i < m->parts && m->n[m->i] - m->off >= 64) {
        *at = m->p[m->i] + m->off;
        return (m->n[m->i] - m->off) / 64;
    }
    if (m->padded) return 0;
    while (k < 64 && m->i < m->parts) { /* the rest of this piece and the start of the next ones */
        take = m->n[m->i] - m->off;
        if (take > 64 - k) take = 64 - k;
        memcpy(m->buf + k, m->p[m->i] + m->off, take);
        k += take;
        m->off += take;
        if (m->off == m->n[m->i]) {
            m->i++;
            m->off = 0;
        }
    }
    m->buf_i = 0;
    m->buf_n = 1;
    if (k < 64) { /* the message ends in this block: 0x80, zeros, the bit length */
        memset(m->buf + k, 0, sizeof m->buf - k);
        m->buf[k] = 0x80;
        m->buf_n = k < 56 ? 1 : 2;
        for (j = 0; j < 8; j++) m->buf[64 * m->buf_n - 1 - j] = (uint8_t)(m->bits >> (8 * j));
        m->padded = 1;
    }
    *at = m->buf;
    return (size_t)m->buf_n;
}

static void msg_advance(message *m, size_t blocks) {
    if (m->buf_i < m->buf_n)
        m->buf_i += (int)blocks;
    else
        m->off += 64 * blocks;
}

SHANI static void store_digest(__m128i a, __m128i b, uint8_t *out) {
    __m128i tmp = _mm_shuffle_epi32(a, 0x1B);
    b = _mm_shuffle_epi32(b, 0xB1);
    a = _mm_blend_epi16(tmp, b, 0xF0);
    b = _mm_alignr_epi8(b, tmp, 8);
    _mm_storeu_si128((__m128i *)(out + 0), _mm_shuffle_epi8(a, BSWAP_MASK));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(b, BSWAP_MASK));
}

SHANI static void finish1(message *m, __m128i a, __m128i b, uint8_t *out) {
    const uint8_t *at;
    size_t n;
    while ((n = msg_run(m, &at)) != 0) {
        blocks1(at, n, &a, &b);
        msg_advance(m, n);
    }
    store_digest(a, b, out);
}

/* Two messages in the two lanes while both have blocks, then each one alone. */
SHANI static void hash2(message *x, message *y, uint8_t *out_x, uint8_t *out_y) {
    __m128i s[4];
    const uint8_t *px, *py;
    size_t nx, ny, n;
    init_state(&s[0], &s[1]);
    s[2] = s[0];
    s[3] = s[1];
    for (;;) {
        nx = msg_run(x, &px);
        ny = msg_run(y, &py);
        if (!nx || !ny) break;
        n = nx < ny ? nx : ny;
        blocks2(px, py, n, s);
        msg_advance(x, n);
        msg_advance(y, n);
    }
    finish1(x, s[0], s[1], out_x);
    finish1(y, s[2], s[3], out_y);
}

SHANI static void hash1(message *x, uint8_t *out) {
    __m128i a, b;
    init_state(&a, &b);
    finish1(x, a, b, out);
}

static int has_sha = -1;

int pyipld_sha256x2_available(void) {
    if (has_sha < 0) has_sha = cpu_has_sha();
    return has_sha;
}

/* SHA-256 of `count` messages of `parts` pieces each, two at a time, into out[32*i .. 32*i+32].
 * Piece j of message i is described at views + stride*(i*parts + j): its address at offset 0 and
 * its length (a size_t) at len_offset, so the caller can pass an array of CPython Py_buffer
 * structs as they are.  -1 without SHA-NI or with more than MAX_PARTS pieces a message. */
static void load_message(message *m, const uint8_t *views, size_t stride, size_t len_offset, size_t first,
                         int parts) {
    const uint8_t *ptr[MAX_PARTS];
    size_t len[MAX_PARTS];
    int j;
    for (j = 0; j < parts; j++) {
        const uint8_t *view = views + stride * (first + (size_t)j);
        memcpy(&ptr[j], view, sizeof ptr[j]);
        memcpy(&len[j], view + len_offset, sizeof len[j]);
    }
    msg_init(m, ptr, len, parts);
}

int pyipld_sha256_batch(size_t count, const uint8_t *views, size_t stride, size_t len_offset, int parts,
                        uint8_t *out) {
    message x, y;
    size_t i, p = (size_t)parts;
    if (!pyipld_sha256x2_available() || parts < 1 || parts > MAX_PARTS) return -1;
    for (i = 0; i + 1 < count; i += 2) {
        load_message(&x, views, stride, len_offset, i * p, parts);
        load_message(&y, views, stride, len_offset, (i + 1) * p, parts);
        hash2(&x, &y, out + 32 * i, out + 32 * (i + 1));
    }
    if (i < count) {
        load_message(&x, views, stride, len_offset, i * p, parts);
        hash1(&x, out + 32 * i);
    }
    return 0;
}

/* Hashing a mapped file: a file truncated by another process meanwhile turns the next read of
 * a page past its new end into SIGBUS, which would kill the interpreter.  The guarded entry
 * point runs the batch with a per-thread jump buffer set; the SIGBUS handler (installed once,
 * keeping the previous disposition) jumps back out of the hashing in that thread, and the
 * call returns -2: the caller reports the file as changed.  A SIGBUS anywhere else goes to the
 * previous handler (faulthandler's, say), or kills the process as it would have without us. */
static __thread sigjmp_buf *guard_jump;
static struct sigaction previous_sigbus;
static int sigbus_installed;

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    sigjmp_buf *jump = guard_jump;
    if (jump != NULL) {
        guard_jump = NULL;
        siglongjmp(*jump, 1);
    }
    if (previous_sigbus.sa_flags & SA_SIGINFO) {
        if (previous_sigbus.sa_sigaction != NULL) {
            previous_sigbus.sa_sigaction(sig, info, context);
            return;
        }
    } else if (previous_sigbus.sa_handler != SIG_DFL && previous_sigbus.sa_handler != SIG_IGN) {
        previous_sigbus.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL); /* the faulting access runs again and ends the process as before */
}

/* Install the handler (once, whichever thread comes first); 0 when in place. */
int pyipld_sigbus_guard_install(void) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct sigaction action;
    int rc = 0;
    pthread_mutex_lock(&lock);
    if (!sigbus_installed) { /* twice would make on_sigbus its own "previous" handler */
        memset(&action, 0, sizeof action);
        action.sa_sigaction = on_sigbus;
        action.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&action.sa_mask);
        if (sigaction(SIGBUS, &action, &previous_sigbus) == 0) sigbus_installed = 1;
        else rc = -1;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

/* 1 when on_sigbus is the process's SIGBUS handler now: a handler installed after ours (a later
 * faulthandler.enable(), another library) would see a guarded fault first and report it as fatal. */
int pyipld_sigbus_guard_active(void) {
    struct sigaction current;
    if (!sigbus_installed || sigaction(SIGBUS, NULL, &current) != 0) return 0;
    return (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_sigbus;
}

/* pyipld_sha256_batch with SIGBUS turned into -2 (see above); -3 when the handler is not (or no
 * longer) the one in place: the caller reads instead. */
int pyipld_sha256_batch_guarded(size_t count, const uint8_t *views, size_t stride, size_t len_offset, int parts,
                                uint8_t *out) {
    sigjmp_buf jump;
    int rc;
    if (!pyipld_sigbus_guard_active()) return -3;
    if (sigsetjmp(jump, 1) != 0) return -2; /* guard_jump was cleared by the handler */
    guard_jump = &jump;
    rc = pyipld_sha256_batch(count, views, stride, len_offset, parts, out);
    guard_jump = NULL;
    return rc;
}

#else

int pyipld_sha256x2_available(void) { return 0; }

int pyipld_sha256_batch(size_t count, const uint8_t *views, size_t stride, size_t len_offset, int parts,
                        uint8_t *out) {
    (void)count; (void)views; (void)stride; (void)len_offset; (void)parts; (void)out;
    return -1;
}

int pyipld_sigbus_guard_install(void) { return -1; }

int pyipld_sha256_batch_guarded(size_t count, const uint8_t *views, size_t stride, size_t len_offset, int parts,
                                uint8_t *out) {
    (void)count; (void)views; (void)stride; (void)len_offset; (void)parts; (void)out;
    return -3;
}

#endif
