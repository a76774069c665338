/*
 * hs_test_util.h - definitions of the helpers declared in hs_test.h.
 * Include it from exactly one place per test executable (the test file).
 */
#ifndef HS_TEST_UTIL_H
#define HS_TEST_UTIL_H

#include "hs_test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *hs_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/hs-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static int hs_test_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void hs_test_rmdir(const char *path)
{
    if (path != NULL)
        nftw(path, hs_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
