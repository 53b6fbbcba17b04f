/// The exit codes every kh command uses. The table is printed by `kh help exit-codes`
/// and in the README; scripts may rely on it.
public enum KhExitCode: Int32, CaseIterable, Sendable, Codable {
    /// Everything asked for was done and every check passed.
    case success = 0
    /// A check, scenario or verification ran and failed.
    case checkFailed = 1
    /// Bad usage or configuration: a flag, argument or config field is wrong.
    case usage = 2
    /// Blocked by an unmet dependency (a missing tool, an earlier phase not done).
    case blocked = 3
    /// An external tool or API failed (could not start, answered with an error, timed out).
    case external = 4
    /// A bug in kh itself.
    case internalError = 5
    /// Interrupted by SIGINT or SIGTERM; children were killed and evidence flushed.
    case interrupted = 130

    /// One line saying what the code means.
    public var meaning: String {
        switch self {
        case .success: "success"
        case .checkFailed: "a check, scenario or verification failed"
        case .usage: "usage or configuration error"
        case .blocked: "blocked by an unmet dependency"
        case .external: "an external tool or API failed"
        case .internalError: "internal error (a bug in kh)"
        case .interrupted: "interrupted (SIGINT/SIGTERM)"
        }
    }

    /// The table as text, one code per line.
    public static var table: String {
        allCases.map { code in
            let number = String(code.rawValue)
            return "  " + number + String(repeating: " ", count: max(1, 5 - number.count)) + code.meaning
        }.joined(separator: "\n")
    }
}

/// An error kh reports to a person: what went wrong, what to do, and the exit code.
///
/// Every error type of the runtime conforms, so the host can print one clear line
/// and exit with the documented code.
public protocol KhReportableError: Error, CustomStringConvertible, Sendable {
    /// The exit code this error maps to.
    var exitCode: KhExitCode { get }
    /// One line naming the thing that failed (file, field, flag, command) and why.
    var message: String { get }
    /// An optional next step for the reader.
    var hint: String? { get }
}

extension KhReportableError {
    public var hint: String? { nil }
    public var description: String { message }
}

/// The general-purpose typed error of kh.
public struct KhError: KhReportableError, Equatable {
    public var exitCode: KhExitCode
    public var message: String
    public var hint: String?

    public init(_ exitCode: KhExitCode, _ message: String, hint: String? = nil) {
        self.exitCode = exitCode
        self.message = message
        self.hint = hint
    }

    /// Bad usage: a flag or argument is wrong (exit 2).
    public static func usage(_ message: String, hint: String? = nil) -> KhError { .init(.usage, message, hint: hint) }
    /// Blocked by an unmet dependency (exit 3).
    public static func blocked(_ message: String, hint: String? = nil) -> KhError { .init(.blocked, message, hint: hint) }
    /// An external tool or API failed (exit 4).
    public static func external(_ message: String, hint: String? = nil) -> KhError { .init(.external, message, hint: hint) }
    /// A check failed (exit 1).
    public static func failed(_ message: String, hint: String? = nil) -> KhError { .init(.checkFailed, message, hint: hint) }
    /// A bug in kh (exit 5).
    public static func internalError(_ message: String) -> KhError { .init(.internalError, message) }
}

/// The code a failed run exits with when a command only has a list of outcomes:
/// the most severe wins (interrupted > blocked > external > usage > failed).
public func worstExitCode(_ codes: some Sequence<KhExitCode>) -> KhExitCode {
    let order: [KhExitCode] = [.success, .checkFailed, .usage, .external, .blocked, .internalError, .interrupted]
    return codes.max { order.firstIndex(of: $0)! < order.firstIndex(of: $1)! } ?? .success
}

/// kh's version, printed by `kh --version` and recorded in every `run.json`.
public enum KhVersion {
    public static let current = "0.1.0"
}
