import Foundation
import KhCore

/// What to do with the server's host key.
public enum HostKeyPolicy: String, Sendable, Codable, CaseIterable {
    /// The key must already be in the known_hosts file (`StrictHostKeyChecking yes`).
    case strict
    /// An unknown host's key is recorded in known_hosts; a changed key is rejected
    /// (`StrictHostKeyChecking accept-new`).
    case acceptNew = "accept-new"
    /// No check at all; every connection warns through ``SSHConfiguration/onWarning``.
    /// Only for throwaway hosts whose key cannot be known.
    case off
}

/// Where and how to connect: host, user, the one key to offer, known_hosts and policy.
///
/// Only the given private key is offered (OpenSSH's `IdentitiesOnly yes`): no agent,
/// no password, no other keys. The passphrase never appears in `description`,
/// errors or logs.
public struct SSHConfiguration: Sendable, CustomStringConvertible {
    /// The host name or address to connect to.
    public var host: String
    /// The TCP port (22 by default).
    public var port: Int
    /// The remote user to log in as.
    public var user: String
    /// The private key file (OpenSSH or PEM format; ed25519, ECDSA or RSA).
    public var privateKeyPath: String
    /// The public key file; nil uses `privateKeyPath + ".pub"` when it exists and
    /// otherwise lets libssh2 derive the public key from the private key.
    public var publicKeyPath: String?
    /// The private key's passphrase, if it has one.
    public var passphrase: String?
    /// The known_hosts file to check (and, with ``HostKeyPolicy/acceptNew``, to append to).
    public var knownHostsPath: String
    /// How the server's host key is checked.
    public var hostKeyPolicy: HostKeyPolicy
    /// The deadline for TCP connect, SSH handshake and authentication together.
    public var connectTimeout: Duration
    /// How many channels may be open at once on one connection: the server's
    /// `MaxSessions` (OpenSSH's default is 10). One is kept for kill requests; more
    /// commands wait for a free channel. kh lowers it when the server refuses a channel.
    public var maxChannels: Int
    /// Warnings that are not errors (host-key checking off), for the caller's logger.
    public var onWarning: (@Sendable (String) -> Void)?

    /// A configuration; see the properties for each field.
    public init(
        host: String, port: Int = 22, user: String, privateKeyPath: String, publicKeyPath: String? = nil, passphrase: String? = nil,
        knownHostsPath: String = SSHConfiguration.defaultKnownHostsPath, hostKeyPolicy: HostKeyPolicy = .strict,
        connectTimeout: Duration = .seconds(15), maxChannels: Int = 10, onWarning: (@Sendable (String) -> Void)? = nil
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.privateKeyPath = privateKeyPath
        self.publicKeyPath = publicKeyPath
        self.passphrase = passphrase
        self.knownHostsPath = knownHostsPath
        self.hostKeyPolicy = hostKeyPolicy
        self.connectTimeout = connectTimeout
        self.maxChannels = maxChannels
        self.onWarning = onWarning
    }

    /// `~/.ssh/known_hosts`.
    public static var defaultKnownHostsPath: String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return home + "/.ssh/known_hosts"
    }

    /// `user@host:port`.
    public var destination: String { "\(user)@\(host):\(port)" }

    /// The name known_hosts uses for this host: `host`, or `[host]:port` off port 22.
    public var knownHostsName: String { port == 22 ? host : "[\(host)]:\(port)" }

    /// Host, user, key path, known_hosts and policy; never the passphrase.
    public var description: String {
        "ssh \(destination) key \(privateKeyPath)\(passphrase == nil ? "" : " (with passphrase)") "
            + "known_hosts \(knownHostsPath) host-key policy \(hostKeyPolicy.rawValue)"
    }
}

/// A server's host key, as seen during the handshake.
public struct SSHHostKey: Sendable, Equatable, CustomStringConvertible {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
    public var type: String
    /// `SHA256:` and the unpadded base64 of the key's SHA-256, as OpenSSH prints it.
    public var fingerprint: String
    /// The key blob, base64 (the second field of a known_hosts line).
    public var base64: String

    /// `ssh-ed25519 SHA256:…`
    public var description: String { "\(type) \(fingerprint)" }

    /// A known_hosts line for `name` (`host` or `[host]:port`).
    public func knownHostsLine(for name: String) -> String { "\(name) \(type) \(base64)" }
}
