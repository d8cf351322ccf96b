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
 * pyipld_index_entries: the kind byte and the offset of each entry of a directory record's
 * packed entries (pyipld.unixfs.cache._ENTRY: kind, CID length, tsize, data size; the CID).
 *
 * Neither allocates nor calls back into Python. Written for pyipld.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_BYTES 56

static void put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Returns 0, or the errno of the first failure (the caller then does it all in Python). */
int pyipld_stat_listing(const char *dir, const char *names, long n, unsigned char *out, unsigned char *kinds) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno ? errno : EIO;
    const char *name = names;
    for (long i = 0; i < n; i++) {
        struct stat st;
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            int err = errno ? errno : EIO;
            close(fd);
            return err;
        }
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
    close(fd);
    return 0;
}

/* Returns the bytes all names need (those that fit in cap are written), or -errno. */
long pyipld_list_names(const char *dir, int hidden, char *buf, long cap) {
    DIR *d = opendir(dir);
    if (d == NULL) return -(errno ? errno : EIO);
    long used = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (n[0] == '.' && (!hidden || n[1] == 0 || (n[1] == '.' && n[2] == 0))) {
            errno = 0;
            continue;
        }
        long len = (long)strlen(n) + 1;
        if (used + len <= cap) memcpy(buf + used, n, (size_t)len);
        used += len;
        errno = 0;
    }
    int err = errno;
    closedir(d);
    return err ? -err : used;
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
