/*
 * file.c - whole-file reads, crash-safe whole-file writes, directories.
 *
 * hs_write_file_atomic writes to "<path>.tmp.<pid>", fsyncs it, renames it
 * over the target and fsyncs the directory, so after a crash the file is
 * either the old or the new version, never a mix.
 */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *hs_read_file(const char *path, size_t max_bytes, size_t *len, struct hs_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hs_err_set(err, errno == ENOENT ? HS_ENOTFOUND : HS_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct hs_buf b;
    hs_buf_init(&b, max_bytes);
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            hs_err_set(err, HS_EIO, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        int rc = hs_buf_append(&b, chunk, (size_t)n);
        if (rc != HS_OK) {
            hs_err_set(err, rc, "%s: %s", path,
                       rc == HS_ETOOBIG ? "file is larger than allowed" : "out of memory");
            goto fail;
        }
    }
    close(fd);
    return hs_buf_detach(&b, len);
fail:
    close(fd);
    hs_buf_cleanup(&b);
    return NULL;
}

int hs_fsync_dir(const char *dir, struct hs_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return hs_err_set(err, HS_EIO, "%s: %s", dir, strerror(errno));
    int rc = HS_OK;
    if (fsync(fd) != 0)
        rc = hs_err_set(err, HS_EIO, "fsync %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int hs_write_file_atomic(const char *path, const void *data, size_t len, struct hs_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return hs_err_set(err, HS_EIO, "%s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return hs_err_set(err, HS_EIO, "write %s: %s", tmp, strerror(e));
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return hs_err_set(err, HS_EIO, "fsync %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return hs_err_set(err, HS_EIO, "rename %s: %s", path, strerror(e));
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return hs_fsync_dir(dir, err);
}

int hs_mkdir_p(const char *path, struct hs_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return hs_err_set(err, HS_EINVAL, "%s: path too long", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return hs_err_set(err, HS_EIO, "mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return hs_err_set(err, HS_EIO, "mkdir %s: %s", tmp, strerror(errno));
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return hs_err_set(err, HS_EIO, "%s: not a directory", tmp);
    return HS_OK;
}
