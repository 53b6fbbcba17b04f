// Small typed wrappers over POSIX/Linux calls that Swift's Glibc module does not
// import (GNU extensions, raw syscalls). Imported by KhProcess only.
#ifndef CKHPOSIX_H
#define CKHPOSIX_H

#include <sys/types.h>
#include <stddef.h>

/// Spawns `path` with `argv`/`envp` in a new process group (pgid = pid), with
/// stdin, stdout and stderr bound to the given descriptors, every signal reset
/// to its default disposition and an empty signal mask, in `cwd` when non-NULL.
/// Returns 0 and sets *pid, or an errno value.
int kh_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
             const char *cwd, int stdin_fd, int stdout_fd, int stderr_fd);

/// pipe2(fds, O_CLOEXEC). Returns 0 or -1 with errno set.
int kh_pipe_cloexec(int fds[2]);

/// pidfd_open(pid, 0): a descriptor that polls readable when the process exits.
/// Returns the descriptor or -1 with errno set (ENOSYS on old kernels).
int kh_pidfd_open(pid_t pid);

/// F_SETPIPE_SZ; returns the new size or -1.
int kh_set_pipe_size(int fd, int size);

/// Sets O_NONBLOCK. Returns 0 or -1.
int kh_set_nonblocking(int fd);

/// memmem(3).
const void *kh_memmem(const void *haystack, size_t haystack_len,
                      const void *needle, size_t needle_len);

/// epoll_create1(EPOLL_CLOEXEC). Returns the descriptor or -1 with errno set.
int kh_epoll_create(void);

/// Watches `fd` for input (level-triggered), or stops watching it. Returns 0 or -1 with errno set.
int kh_epoll_add(int epoll_fd, int fd);
int kh_epoll_remove(int epoll_fd, int fd);

/// epoll_wait for at most `max` (<= 8) descriptors: fills `fds` with the ready ones.
/// Returns how many, 0 on timeout, or -1 with errno set.
int kh_epoll_wait(int epoll_fd, int *fds, int max, int timeout_ms);

/// Copies the complete lines at the start of src[0..<len] into dst, each preceded by the
/// 4 bytes of `tag` and a space: the runner's log of a chatty child. Stops before a line
/// longer than `max_line` bytes (newline excluded), before a line that does not fit in
/// `room` with 16 bytes to spare, and at the last line when it is open. Returns the bytes of
/// src taken; *written is the bytes of dst used. On x86-64 one pass both finds the newline
/// and copies (16 bytes a step); elsewhere memchr + memcpy.
size_t kh_tag_lines(unsigned char *dst, size_t room, const unsigned char *src, size_t len,
                    unsigned int tag, size_t max_line, size_t *written);

/// The exit status / signal decoding macros of <sys/wait.h>.
int kh_wifexited(int status);
int kh_wexitstatus(int status);
int kh_wifsignaled(int status);
int kh_wtermsig(int status);

#endif
