import CLibSSH2
import Foundation
import Glibc
import KhCore

/// Connecting: TCP with a deadline, SSH handshake, host-key check, public-key
/// authentication. Runs on the connection's thread; every wait polls the socket and
/// the wake pipe (for cancellation) until the one deadline.
struct Connector {
    let configuration: SSHConfiguration
    let deadline: ContinuousClock.Instant
    /// Readable when the caller gave up (task cancelled).
    let wakeFD: Int32
    let isCancelled: () -> Bool

    private var host: String { configuration.host }
    private var port: Int { configuration.port }

    func error(_ kind: SSHError.Kind, _ call: String, code: Int32? = nil, errno: Int32? = nil, _ detail: String) -> SSHError {
        SSHError(kind: kind, call: call, libssh2Code: code, systemErrno: errno, detail: detail, host: host, port: port)
    }

    private func libssh2Error(_ kind: SSHError.Kind, _ call: String, _ session: SessionHandle) -> SSHError {
        let (code, message) = session.lastError
        return error(kind, call, code: code, message)
    }

    private var remainingMilliseconds: Int32 {
        let left = deadline - .now
        guard left > .zero else { return 0 }
        return Int32(min((left.seconds * 1000).rounded(.up), 3_600_000))
    }

    private var timeoutText: String { "deadline of \(configuration.connectTimeout.humanDescription) passed" }

    /// Waits until `fd` is ready for `events`, the deadline passes (throws timeout) or
    /// the caller cancels (throws CancellationError).
    private func wait(_ fd: Int32, events: Int16, call: String) throws {
        while true {
            if isCancelled() { throw CancellationError() }
            let ms = remainingMilliseconds
            if ms == 0 { throw error(.timeout, call, timeoutText) }
            var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, ms)
            if ready < 0 {
                if errno == EINTR { continue }
                throw error(.connect, "poll", errno: errno, String(cString: strerror(errno)))
            }
            if fds[1].revents != 0 && isCancelled() { throw CancellationError() }
            if fds[0].revents != 0 { return }
        }
    }

    /// Waits for the direction libssh2 is blocked on.
    private func wait(_ session: SessionHandle, call: String) throws {
        var events: Int16 = 0
        if session.blockedInbound { events |= Int16(POLLIN) }
        if session.blockedOutbound { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        try wait(session.socket.fd, events: events, call: call)
    }

    /// Non-blocking TCP connect to each resolved address in turn, within the deadline.
    func connectSocket() throws -> SocketHandle {
        guard (1...65535).contains(port) else { throw error(.configuration, "connect", "port \(port) is out of range") }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let list else {
            throw error(.connect, "getaddrinfo", String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(list) }
        var lastError = error(.connect, "connect", "no address for \(host)")
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                lastError = error(.connect, "socket", errno: errno, String(cString: strerror(errno)))
                continue
            }
            let socketHandle = SocketHandle(fd: fd)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return socketHandle }
            guard errno == EINPROGRESS else {
                let code = errno
                lastError = error(.connect, "connect", errno: code, String(cString: strerror(code)))
                continue
            }
            try wait(fd, events: Int16(POLLOUT), call: "connect")
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError == 0 { return socketHandle }
            lastError = error(.connect, "connect", errno: soError, String(cString: strerror(soError)))
        }
        throw lastError
    }

    /// Handshake, host-key check and authentication on a connected socket.
    func establish(_ socket: SocketHandle) throws -> (SessionHandle, SSHHostKey) {
        guard let session = SessionHandle(socket: socket) else {
            throw error(.handshake, "libssh2_session_init", "libssh2 could not create a session")
        }
        while true {
            let rc = libssh2_session_handshake(session.pointer, socket.fd)
            if rc == 0 { break }
            guard rc == LIBSSH2_ERROR_EAGAIN else { throw libssh2Error(.handshake, "libssh2_session_handshake", session) }
            try wait(session, call: "libssh2_session_handshake")
        }
        let hostKey = try verifyHostKey(session)
        try authenticate(session)
        return (session, hostKey)
    }

    // MARK: host key

    static func keyTypeName(_ type: Int32) -> String {
        switch type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: "ssh-rsa"
        case LIBSSH2_HOSTKEY_TYPE_DSS: "ssh-dss"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: "ecdsa-sha2-nistp256"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: "ecdsa-sha2-nistp384"
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: "ecdsa-sha2-nistp521"
        case LIBSSH2_HOSTKEY_TYPE_ED25519: "ssh-ed25519"
        default: "unknown key type \(type)"
        }
    }

    /// `SHA256:` + unpadded base64, as OpenSSH prints fingerprints.
    static func fingerprint(sha256: Data) -> String {
        var text = sha256.base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return "SHA256:" + text
    }

    private func verifyHostKey(_ session: SessionHandle) throws -> SSHHostKey {
        var length = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session.pointer, &length, &type), length > 0 else {
            throw libssh2Error(.handshake, "libssh2_session_hostkey", session)
        }
        let blob = Data(bytes: raw, count: length)
        guard let hash = libssh2_hostkey_hash(session.pointer, LIBSSH2_HOSTKEY_HASH_SHA256) else {
            throw libssh2Error(.handshake, "libssh2_hostkey_hash", session)
        }
        let key = SSHHostKey(
            type: Self.keyTypeName(type), fingerprint: Self.fingerprint(sha256: Data(bytes: hash, count: 32)),
            base64: blob.base64EncodedString())
        let name = configuration.knownHostsName
        let file = configuration.knownHostsPath

        if configuration.hostKeyPolicy == .off {
            configuration.onWarning?("host-key checking is off: accepting \(name) \(key) without verification")
            return key
        }
        guard let known = KnownHostsHandle(session: session) else {
            throw libssh2Error(.knownHosts, "libssh2_knownhost_init", session)
        }
        let fileExists = FileManager.default.fileExists(atPath: file)
        if fileExists {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw error(.knownHosts, "read known_hosts", "\(file) cannot be read")
            }
            // Line by line: one line libssh2 cannot parse (a certificate authority, a
            // key type it lacks) must not hide the others.
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
                _ = libssh2_knownhost_readline(known.pointer, trimmed, trimmed.utf8.count, LIBSSH2_KNOWNHOST_FILE_OPENSSH)
            }
        }
        let bits = kh_ssh2_knownhost_key_bits(type)
        var entry: UnsafeMutablePointer<libssh2_knownhost>?
        let check = libssh2_knownhost_checkp(known.pointer, host, Int32(port), raw, length, kh_ssh2_knownhost_plain_raw(bits), &entry)
        switch check {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH:
            return key
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            throw error(
                .hostKeyChanged, "host key check",
                "host key for \(name) has CHANGED: the server offers \(key), which differs from the \(key.type) key recorded in \(file)")
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
            guard configuration.hostKeyPolicy == .acceptNew else {
                throw error(
                    .hostKeyUnknown, "host key check",
                    "host key for \(name) (\(key)) is not in \(file)\(fileExists ? "" : " (the file does not exist)") and the host-key policy is strict"
                )
            }
            try record(key.knownHostsLine(for: name) + "\n", in: file)
            configuration.onWarning?("permanently added \(name) (\(key)) to \(file)")
            return key
        default:
            throw libssh2Error(.knownHosts, "libssh2_knownhost_checkp", session)
        }
    }

    /// Appends a line to known_hosts (creating it 0600, and its folder 0700).
    private func record(_ line: String, in file: String) throws {
        let directory = (file as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw self.error(.knownHosts, "create \(directory)", "\(error)")
            }
        }
        let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw error(.knownHosts, "open known_hosts", errno: errno, "\(file): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // A file that does not end with a newline gets one first.
        var info = stat()
        if fstat(fd, &info) == 0, info.st_size > 0 {
            var last: UInt8 = 0
            if pread(fd, &last, 1, info.st_size - 1) == 1, last != 0x0A { _ = write(fd, "\n", 1) }
        }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { KhCore.writeAll(fd, $0) }
        guard written == 0 else {
            throw error(.knownHosts, "write known_hosts", errno: written, "\(file): \(String(cString: strerror(written)))")
        }
    }

    // MARK: authentication

    private func authenticate(_ session: SessionHandle) throws {
        let privateKey = configuration.privateKeyPath
        guard access(privateKey, R_OK) == 0 else {
            throw error(.configuration, "read private key", errno: errno, "\(privateKey): \(String(cString: strerror(errno)))")
        }
        var publicKey = configuration.publicKeyPath
        if publicKey == nil, access(privateKey + ".pub", R_OK) == 0 { publicKey = privateKey + ".pub" }
        let user = configuration.user
        while true {
            let rc = kh_ssh2_userauth_publickey_fromfile(
                session.pointer, user, UInt32(user.utf8.count), publicKey, privateKey, configuration.passphrase)
            if rc == 0 { return }
            guard rc == LIBSSH2_ERROR_EAGAIN else {
                let (code, message) = session.lastError
                throw error(
                    .authentication, "libssh2_userauth_publickey_fromfile", code: code,
                    "\(user)@\(host) did not accept the key \(privateKey): \(message)")
            }
            try wait(session, call: "libssh2_userauth_publickey_fromfile")
        }
    }
}
