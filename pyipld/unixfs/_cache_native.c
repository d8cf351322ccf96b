/* Optional accelerator of the import cache's directory records (loaded with ctypes; see _cache_native.py).
 *
 * pyipld_stat_listing: lstat (fstatat AT_SYMLINK_NOFOLLOW, relative to one open directory) each
 * name of a listing and write the 56-byte little-endian record that
 * pyipld.unixfs.cache.pack_stat writes for the same stat: mode, mtime and ctime nanoseconds,
 * zero (u32 each); inode, device (u64); size, mtime and ctime seconds (i64). A directory's record
 * is its type bits alone. Also one kind byte per name: d f l, o for anything else.
 *
 * pyipld_list_names: a directory's entry names as os.scandir gives them (readdir order, no . and
 * .., dot-names left out unless asked for), each NUL-terminated.
 *
 * pyipld_read_listing: both at once for a cached re-import's read-ahead: one open of the
 * directory, its names sorted by raw bytes (strcmp: unsigned bytes, a prefix first, as Python
 * sorts bytes), then each lstat'ed relative to it.
 *
 * pyipld_index_entries: the kind byte and the offset of each entry of a directory record's
 * packed entries (pyipld.unixfs.cache._ENTRY: kind, CID length, tsize, data size; the CID).
 *
 * None calls back into Python; only pyipld_read_listing allocates (and frees before it returns).
 * Written for pyipld.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_BYTES 56

static void put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* lstat each of n NUL-terminated names relative to fd into its record and kind: 0 or errno. */
static int stat_names(int fd, const char *names, long n, unsigned char *out, unsigned char *kinds) {
    const char *name = names;
    for (long i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno ? errno : EIO;
        unsigned char *r = out + i * RECORD_BYTES;
        memset(r, 0, RECORD_BYTES);
        if (S_ISDIR(st.st_mode)) {
            put_le(r, S_IFDIR, 4);
            kinds[i] = 'd';
        } else {
            put_le(r, (uint32_t)st.st_mode, 4);
            put_le(r + 4, (uint32_t)st.st_mtim.tv_nsec, 4);
            put_le(r + 8, (uint32_t)st.st_ctim.tv_nsec, 4);
            put_le(r + 16, (uint64_t)st.st_ino, 8);
            put_le(r + 24, (uint64_t)st.st_dev, 8);
            put_le(r + 32, (uint64_t)(int64_t)st.st_size, 8);
            put_le(r + 40, (uint64_t)(int64_t)st.st_mtim.tv_sec, 8);
            put_le(r + 48, (uint64_t)(int64_t)st.st_ctim.tv_sec, 8);
            kinds[i] = S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l' : 'o';
        }
        name += strlen(name) + 1;
    }
    return 0;
}

/* Returns 0, or the errno of the first failure (the caller then does it all in Python). */
int pyipld_stat_listing(const char *dir, const char *names, long n, unsigned char *out, unsigned char *kinds) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno ? errno : EIO;
    int err = stat_names(fd, names, n, out, kinds);
    close(fd);
    return err;
}

/* Append d's names (readdir order, scandir's filter) to buf: the bytes they need (those that
 * fit in cap are written), or -errno. *count (when not NULL) gets how many there are. */
static long read_names(DIR *d, int hidden, char *buf, long cap, long *count) {
    long used = 0, n = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] == '.' && (!hidden || name[1] == 0 || (name[1] == '.' && name[2] == 0))) {
            errno = 0;
            continue;
        }
        long len = (long)strlen(name) + 1;
        if (used + len <= cap) memcpy(buf + used, name, (size_t)len);
        used += len;
        n++;
        errno = 0;
    }
    if (count != NULL) *count = n;
    return errno ? -errno : used;
}

/* Returns the bytes all names need (those that fit in cap are written), or -errno. */
long pyipld_list_names(const char *dir, int hidden, char *buf, long cap) {
    DIR *d = opendir(dir);
    if (d == NULL) return -(errno ? errno : EIO);
    long used = read_names(d, hidden, buf, cap, NULL);
    closedir(d);
    return used;
}

static int by_bytes(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* names (cap bytes) gets the sorted NUL-terminated names, out and kinds (max_n entries) their
 * records and kinds; *used and *count what they take. Returns 0; -1 when a buffer is too small
 * (*used, *count: what is needed); -2 when the names were read but an lstat failed; or the
 * errno of a failed listing. */
int pyipld_read_listing(const char *dir, int hidden, char *names, long cap, long max_n, unsigned char *out,
                        unsigned char *kinds, long *used, long *count) {
    DIR *d = opendir(dir);
    if (d == NULL) return errno ? errno : EIO;
    long raw_cap = cap, n = 0, need;
    char *raw = NULL;
    for (;;) {  /* read into a scratch buffer: the sorted names are then copied into names */
        raw = malloc((size_t)raw_cap);
        if (raw == NULL) { closedir(d); return ENOMEM; }
        need = read_names(d, hidden, raw, raw_cap, &n);
        if (need < 0 || need <= raw_cap) break;
        free(raw);
        raw_cap = need + need / 8;  /* grew meanwhile: read it again, with room */
        rewinddir(d);
    }
    if (need < 0) { free(raw); closedir(d); return (int)-need; }
    *used = need;
    *count = n;
    if (need > cap || n > max_n) { free(raw); closedir(d); return -1; }
    const char **order = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    if (order == NULL) { free(raw); closedir(d); return ENOMEM; }
    const char *p = raw;
    for (long i = 0; i < n; i++) { order[i] = p; p += strlen(p) + 1; }
    qsort(order, (size_t)n, sizeof(char *), by_bytes);
    char *q = names;
    for (long i = 0; i < n; i++) {
        size_t len = strlen(order[i]) + 1;
        memcpy(q, order[i], len);
        q += len;
    }
    free(order);
    free(raw);
    int err = stat_names(dirfd(d), names, n, out, kinds);
    closedir(d);
    return err ? -2 : 0;
}

/* Returns 0, or -1 when blob is not exactly n well-formed entries. */
int pyipld_index_entries(const unsigned char *blob, long len, long n, unsigned char *kinds, int64_t *offsets) {
    long pos = 0;
    for (long i = 0; i < n; i++) {
        if (pos + 18 > len) return -1;
        unsigned char kind = blob[pos];
        if (kind != 'd' && kind != 'f' && kind != 'l') return -1;
        long cid_len = blob[pos + 1];
        if (pos + 18 + cid_len > len) return -1;
        kinds[i] = kind;
        offsets[i] = pos;
        pos += 18 + cid_len;
    }
    return pos == len ? 0 : -1;
}
