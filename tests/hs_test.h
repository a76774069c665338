/*
 * hs_test.h - what every cmocka test file includes: cmocka itself (which
 * needs these system headers first) and a few helpers.
 */
#ifndef HS_TEST_H
#define HS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Directory for a test's files: a fresh mkdtemp under TMPDIR (or /tmp).
 * Caller removes it with hs_test_rmdir. */
char *hs_test_tmpdir(const char *tag);
void hs_test_rmdir(const char *path);

#endif
