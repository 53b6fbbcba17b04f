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
