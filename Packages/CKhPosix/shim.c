#define _GNU_SOURCE
#include "CKhPosix.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int kh_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
             const char *cwd, int stdin_fd, int stdout_fd, int stderr_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    int rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&actions); return rc; }

    if ((rc = posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0)) != 0) goto out;
    if ((rc = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1)) != 0) goto out;
    if ((rc = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2)) != 0) goto out;
    if (cwd != NULL && (rc = posix_spawn_file_actions_addchdir_np(&actions, cwd)) != 0) goto out;

    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if ((rc = posix_spawnattr_setsigmask(&attr, &none)) != 0) goto out;
    if ((rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0) goto out;
    if ((rc = posix_spawnattr_setpgroup(&attr, 0)) != 0) goto out;
    if ((rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF)) != 0) goto out;
    rc = posix_spawn(pid, path, &actions, &attr, argv, envp);
out:
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    return rc;
}

int kh_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int kh_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int kh_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

int kh_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int kh_epoll_add(int epoll_fd, int fd) {
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
}

int kh_epoll_remove(int epoll_fd, int fd) { return epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL); }

int kh_epoll_wait(int epoll_fd, int *fds, int max, int timeout_ms) {
    struct epoll_event events[8];
    if (max > 8) max = 8;
    int n = epoll_wait(epoll_fd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) fds[i] = events[i].data.fd;
    return n;
}

int kh_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

const void *kh_memmem(const void *haystack, size_t haystack_len,
                      const void *needle, size_t needle_len) {
    return memmem(haystack, haystack_len, needle, needle_len);
}

int kh_wifexited(int status) { return WIFEXITED(status); }
int kh_wexitstatus(int status) { return WEXITSTATUS(status); }
int kh_wifsignaled(int status) { return WIFSIGNALED(status); }
int kh_wtermsig(int status) { return WTERMSIG(status); }

size_t kh_tag_lines(unsigned char *dst, size_t room, const unsigned char *src, size_t len,
                    unsigned int tag, size_t max_line, size_t *written) {
    size_t in = 0, out = 0;
    while (in < len && room - out > 5 + 16) {
        unsigned char *d = dst + out + 5;
        const unsigned char *s = src + in;
        size_t limit = len - in;  // bytes to look at, the newline included
        if (limit > max_line + 1) limit = max_line + 1;
        if (limit > room - out - 5 - 16) limit = room - out - 5 - 16;
        size_t k = 0;
        int found = 0;
#if defined(__SSE2__)
        const __m128i newline = _mm_set1_epi8('\n');
        for (; k + 16 <= limit; k += 16) {
            __m128i block = _mm_loadu_si128((const __m128i *)(s + k));
            _mm_storeu_si128((__m128i *)(d + k), block);  // may run past the line: within the spare 16 bytes
            unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(block, newline));
            if (mask != 0) {
                k += (size_t)__builtin_ctz(mask);
                found = 1;
                break;
            }
        }
        for (; !found && k < limit; k++) {
            d[k] = s[k];
            if (s[k] == '\n') {
                found = 1;
                break;
            }
        }
#else
        const unsigned char *hit = memchr(s, '\n', limit);
        if (hit != NULL) {
            k = (size_t)(hit - s);
            memcpy(d, s, k + 1);
            found = 1;
        }
#endif
        if (!found) break;
        memcpy(dst + out, &tag, 4);
        dst[out + 4] = ' ';
        in += k + 1;
        out += 5 + k + 1;
    }
    *written = out;
    return in;
}
