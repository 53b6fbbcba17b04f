import CLibSSH2
import Foundation

// Owners of libssh2's C handles. None is Sendable: each lives on the one thread of
// the connection that made it (see EventLoop). Ownership runs channel → session →
// socket, so a session is freed after its channels and the socket after its session.

/// Loading libssh2 (it is not linked: see Packages/CKhLazy) and `libssh2_init(0)`, once per process.
enum LibSSH2 {
    /// Why libssh2 cannot be loaded, else `libssh2_init`'s status.
    private static let status: Result<Int32, LoadFailure> = {
        if let why = kh_ssh2_load() { return .failure(LoadFailure(message: String(cString: why))) }
        return .success(libssh2_init(0))
    }()

    struct LoadFailure: Error { var message: String }

    /// Why libssh2 cannot be used, or `nil` (see ``SSHLibrary/loadProblem``).
    static var problem: String? {
        switch status {
        case .failure(let failure): failure.message
        case .success(let code): code == 0 ? nil : "libssh2_init failed (libssh2 error \(code))"
        }
    }

    static func initialize(host: String, port: Int) throws {
        switch status {
        case .failure(let failure):
            throw SSHError(kind: .libraryUnavailable, call: "dlopen", libssh2Code: nil, detail: failure.message, host: host, port: port)
        case .success(let code) where code != 0:
            throw SSHError(
                kind: .configuration, call: "libssh2_init", libssh2Code: code, detail: "libssh2 could not be initialised", host: host, port: port)
        case .success:
            return
        }
    }

    /// True for errors after which the session cannot be used any more.
    static func isFatal(_ code: Int32) -> Bool {
        switch code {
        case LIBSSH2_ERROR_SOCKET_NONE, LIBSSH2_ERROR_BANNER_RECV, LIBSSH2_ERROR_BANNER_SEND, LIBSSH2_ERROR_INVALID_MAC,
            LIBSSH2_ERROR_KEX_FAILURE, LIBSSH2_ERROR_ALLOC, LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE,
            LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_DECRYPT, LIBSSH2_ERROR_SOCKET_DISCONNECT, LIBSSH2_ERROR_PROTO,
            LIBSSH2_ERROR_SOCKET_TIMEOUT, LIBSSH2_ERROR_BAD_USE, LIBSSH2_ERROR_OUT_OF_BOUNDARY, LIBSSH2_ERROR_SOCKET_RECV,
            LIBSSH2_ERROR_ENCRYPT, LIBSSH2_ERROR_BAD_SOCKET, LIBSSH2_ERROR_ZLIB, LIBSSH2_ERROR_COMPRESS:
            true
        default:
            false
        }
    }
}

/// A TCP socket, closed in deinit.
final class SocketHandle {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }
}

/// A `LIBSSH2_SESSION*` on a socket, freed in deinit (after a shutdown of the socket,
/// so that freeing cannot wait for the peer).
final class SessionHandle {
    let pointer: OpaquePointer
    let socket: SocketHandle
    private let counters: UnsafeMutablePointer<kh_ssh2_counters>

    init?(socket: SocketHandle) {
        counters = .allocate(capacity: 1)
        counters.initialize(to: kh_ssh2_counters(received: 0))
        guard let pointer = kh_ssh2_session_init(counters) else {
            counters.deallocate()
            return nil
        }
        self.pointer = pointer
        self.socket = socket
        libssh2_session_set_blocking(pointer, 0)
    }

    deinit {
        shutdown(socket.fd, Int32(SHUT_RDWR))
        var attempts = 0
        while libssh2_session_free(pointer) == LIBSSH2_ERROR_EAGAIN && attempts < 100 { attempts += 1 }
        counters.deallocate()
    }

    /// Bytes taken off the socket so far.
    var received: UInt64 { counters.pointee.received }

    /// libssh2's last error code and message.
    var lastError: (code: Int32, message: String) {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        let code = libssh2_session_last_error(pointer, &message, &length, 0)
        let text = message.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(length)), as: UTF8.self) } ?? ""
        return (code, text.isEmpty ? "libssh2 error \(code)" : text)
    }

    var blockedOutbound: Bool { kh_ssh2_blocked_outbound(pointer) != 0 }
    var blockedInbound: Bool { kh_ssh2_blocked_inbound(pointer) != 0 }
}

/// A `LIBSSH2_CHANNEL*`. The event loop frees it with ``free()`` (non-blocking, repeated
/// until done); deinit makes one last attempt and otherwise leaves it to
/// `libssh2_session_free`.
final class ChannelHandle {
    private(set) var pointer: OpaquePointer?
    let session: SessionHandle

    init(pointer: OpaquePointer, session: SessionHandle) {
        self.pointer = pointer
        self.session = session
    }

    /// `libssh2_channel_free`; EAGAIN keeps the handle, anything else releases it.
    func free() -> Int32 {
        guard let pointer else { return 0 }
        let rc = libssh2_channel_free(pointer)
        if rc != LIBSSH2_ERROR_EAGAIN { self.pointer = nil }
        return rc
    }

    deinit {
        if let pointer { _ = libssh2_channel_free(pointer) }
    }
}

/// A `LIBSSH2_KNOWNHOSTS*`, freed in deinit.
final class KnownHostsHandle {
    let pointer: OpaquePointer
    let session: SessionHandle

    init?(session: SessionHandle) {
        guard let pointer = libssh2_knownhost_init(session.pointer) else { return nil }
        self.pointer = pointer
        self.session = session
    }

    deinit { libssh2_knownhost_free(pointer) }
}
