// Typed wrappers for what Swift cannot import from libssh2.h (variadic functions,
// function-like macros). Imported by the one wrapper module (KhSSH) only.
#ifndef KH_CLIBSSH2_SHIM_H
#define KH_CLIBSSH2_SHIM_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <libssh2.h>

/// Counters a session's receive callback updates (see kh_ssh2_session_init).
typedef struct {
    /// Bytes libssh2 has taken off the socket since the session started.
    uint64_t received;
} kh_ssh2_counters;

/// The receive callback: recv(2) as libssh2 does it, counting bytes, so an event loop
/// can tell whether a call pulled packets off the socket (and queued them for other
/// channels) even when the call itself returned EAGAIN.
static inline ssize_t kh_ssh2_counting_recv(libssh2_socket_t fd, void *buffer, size_t length, int flags, void **abstract) {
    ssize_t n = recv(fd, buffer, length, flags);
    if (n < 0) return -errno;
    if (abstract != NULL && *abstract != NULL) ((kh_ssh2_counters *)*abstract)->received += (uint64_t)n;
    return n;
}

/// libssh2_session_init() with `counters` as the session's abstract pointer and the
/// counting receive callback installed.
static inline LIBSSH2_SESSION *kh_ssh2_session_init(kh_ssh2_counters *counters) {
    LIBSSH2_SESSION *session = libssh2_session_init_ex(NULL, NULL, NULL, counters);
    if (session != NULL) {
        libssh2_session_callback_set(session, LIBSSH2_CALLBACK_RECV, (void *)kh_ssh2_counting_recv);
    }
    return session;
}

/// libssh2_session_disconnect().
static inline int kh_ssh2_session_disconnect(LIBSSH2_SESSION *session, const char *description) {
    return libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, description, "");
}

/// libssh2_userauth_publickey_fromfile() with an explicit user name length.
static inline int kh_ssh2_userauth_publickey_fromfile(
    LIBSSH2_SESSION *session, const char *user, unsigned int user_length, const char *public_key, const char *private_key,
    const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(session, user, user_length, public_key, private_key, passphrase);
}

/// libssh2_channel_open_session().
static inline LIBSSH2_CHANNEL *kh_ssh2_channel_open_session(LIBSSH2_SESSION *session) {
    return libssh2_channel_open_session(session);
}

/// libssh2_channel_exec() with an explicit command length (bytes).
static inline int kh_ssh2_channel_exec(LIBSSH2_CHANNEL *channel, const char *command, unsigned int length) {
    return libssh2_channel_process_startup(channel, "exec", sizeof("exec") - 1, command, length);
}

/// libssh2_channel_read(): the stdout stream.
static inline ssize_t kh_ssh2_channel_read(LIBSSH2_CHANNEL *channel, char *buffer, size_t length) {
    return libssh2_channel_read_ex(channel, 0, buffer, length);
}

/// libssh2_channel_read_stderr(): the stderr stream.
static inline ssize_t kh_ssh2_channel_read_stderr(LIBSSH2_CHANNEL *channel, char *buffer, size_t length) {
    return libssh2_channel_read_ex(channel, SSH_EXTENDED_DATA_STDERR, buffer, length);
}

/// libssh2_channel_write(): the remote command's stdin.
static inline ssize_t kh_ssh2_channel_write(LIBSSH2_CHANNEL *channel, const char *buffer, size_t length) {
    return libssh2_channel_write_ex(channel, 0, buffer, length);
}

/// Whether the session's last EAGAIN waits for the socket to become readable.
static inline int kh_ssh2_blocked_inbound(LIBSSH2_SESSION *session) {
    return (libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_INBOUND) != 0;
}

/// Whether the session's last EAGAIN waits for the socket to become writable
/// (a packet is half sent: the same call must be repeated before any other).
static inline int kh_ssh2_blocked_outbound(LIBSSH2_SESSION *session) {
    return (libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
}

/// The known-hosts key-type bits for a host key type (LIBSSH2_HOSTKEY_TYPE_*), or 0.
static inline int kh_ssh2_knownhost_key_bits(int hostkey_type) {
    switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
#ifdef LIBSSH2_KNOWNHOST_KEY_ECDSA_256
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
#endif
#ifdef LIBSSH2_KNOWNHOST_KEY_ED25519
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
#endif
    default: return 0;
    }
}

/// The flags for libssh2_knownhost_checkp/addc with a plain host name and a raw key.
static inline int kh_ssh2_knownhost_plain_raw(int key_bits) {
    return LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_bits;
}

/// The key-type bits of a known-hosts entry.
static inline int kh_ssh2_knownhost_entry_key_bits(const struct libssh2_knownhost *entry) {
    return entry->typemask & LIBSSH2_KNOWNHOST_KEY_MASK;
}

/// Loads libssh2 on first use (Packages/CKhLazy): dlopen, then dlsym of every function kh
/// calls, once per process. NULL when it is usable, else why not (naming the shared object
/// and the Debian package). KhSSH calls it before any other libssh2 function.
const char *kh_ssh2_load(void);

#endif
