/*
 * test_gpumap.c - the /proc side of the GPU <-> model join on a fake proc
 * tree: the pid listening on a port (net/tcp and tcp6 LISTEN sockets, fd
 * links) and whether a GPU process descends from it (ppid chain, a comm
 * with spaces and parentheses included).  The whole join over real sockets
 * and a fake NVML is tests/e2e/test_gpu_model_join.py.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "collect/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void put(const char *root, const char *rel, const char *text)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mkdir_in(const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void link_fd(const char *root, const char *rel, const char *target)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    assert_int_equal(symlink(target, path), 0);
}

static const char *TCP =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        "
    "0 4242 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        "
    "0 5555 1 0000000000000000 20 4 30 10 -1\n";
static const char *TCP6 =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000  1000        0 7777 1 0000000000000000 100 0 0 10 "
    "0\n";

static void listener_pid_and_descendants_come_from_the_proc_tree(void **state)
{
    (void)state;
    char *root = hs_test_tmpdir("gpumap");
    put(root, "net/tcp", TCP);
    put(root, "net/tcp6", TCP6);
    put(root, "100/stat", "100 (vllm (api) server) S 1 100 100 0 -1 4194560 0 0\n");
    put(root, "101/stat", "101 (EngineCore_0) S 100 100 100 0 -1 4194560 0 0\n");
    put(root, "102/stat", "102 (TP worker 1) S 101 100 100 0 -1 4194560 0 0\n");
    put(root, "300/stat", "300 (other) S 1 300 300 0 -1 4194560 0 0\n");
    put(root, "400/stat", "400 (sglang) S 1 400 400 0 -1 4194560 0 0\n");
    mkdir_in(root, "100/fd");
    mkdir_in(root, "300/fd");
    mkdir_in(root, "400/fd");
    link_fd(root, "100/fd/0", "/dev/null");
    link_fd(root, "100/fd/7", "socket:[4242]");
    link_fd(root, "300/fd/3", "socket:[5555]"); /* a connection to the port, not a listener */
    link_fd(root, "400/fd/9", "socket:[7777]");
    uint32_t pid = 0;
    assert_true(collect__listen_pid(root, 8080, &pid));
    assert_int_equal(pid, 100);
    assert_true(collect__listen_pid(root, 9090, &pid)); /* a tcp6 listener */
    assert_int_equal(pid, 400);
    assert_false(collect__listen_pid(root, 41394, &pid)); /* 0xA1B2: not listening */
    assert_false(collect__listen_pid(root, 1, &pid));
    assert_true(collect__descends(root, 100, 100));
    assert_true(collect__descends(root, 102, 100)); /* grandchild */
    assert_false(collect__descends(root, 300, 100));
    assert_false(collect__descends(root, 999, 100)); /* gone */
    hs_test_rmdir(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listener_pid_and_descendants_come_from_the_proc_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
