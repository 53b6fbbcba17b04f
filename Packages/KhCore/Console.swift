import Foundation
import Synchronization

/// How results are printed on stdout.
public enum OutputFormat: String, Sendable, CaseIterable, Codable {
    /// Human text.
    case text
    /// One JSON document (or JSON lines for streams).
    case json
}

/// How much progress and diagnostics go to stderr.
public enum Verbosity: Int, Sendable, Comparable {
    case quiet = 0, normal = 1, verbose = 2, debug = 3
    public static func < (a: Verbosity, b: Verbosity) -> Bool { a.rawValue < b.rawValue }
}

/// ANSI styles, used only when color is on.
public enum Style: String, Sendable {
    case bold = "1", dim = "2", red = "31", green = "32", yellow = "33", blue = "34", cyan = "36"
}

/// Where kh's output goes: results to stdout, progress and diagnostics to stderr,
/// every line through the redactor, color only on a terminal without `NO_COLOR`.
public final class Console: Sendable {
    /// The two streams.
    public enum Stream: Sendable { case stdout, stderr }

    /// Text or JSON results.
    public let format: OutputFormat
    /// Quiet, normal, verbose or debug.
    public let verbosity: Verbosity
    /// Whether stdout / stderr get ANSI colors.
    public let colorStdout: Bool
    public let colorStderr: Bool
    /// Applied to everything written.
    public let redactor: Redactor
    private let sink: @Sendable (Stream, String) -> Void
    private let lock = Mutex(())

    /// A console over custom writers (tests capture output this way).
    public init(
        format: OutputFormat = .text, verbosity: Verbosity = .normal, colorStdout: Bool = false, colorStderr: Bool = false,
        redactor: Redactor = Redactor(), sink: @escaping @Sendable (Stream, String) -> Void
    ) {
        self.format = format
        self.verbosity = verbosity
        self.colorStdout = colorStdout
        self.colorStderr = colorStderr
        self.redactor = redactor
        self.sink = sink
    }

    /// The process's stdout and stderr; color when each is a terminal, `noColor` is
    /// false, and `NO_COLOR` is unset or empty (https://no-color.org).
    public static func live(
        format: OutputFormat, verbosity: Verbosity, noColor: Bool, redactor: Redactor,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> Console {
        let colorAllowed = !noColor && (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
        return Console(
            format: format, verbosity: verbosity, colorStdout: colorAllowed && isatty(1) == 1, colorStderr: colorAllowed && isatty(2) == 1,
            redactor: redactor,
            sink: { stream, text in
                let fd: Int32 = stream == .stdout ? 1 : 2
                var text = text
                _ = text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
            })
    }

    /// Writes text as is (after redaction).
    public func write(_ text: String, to stream: Stream) {
        let clean = redactor.redact(text)
        lock.withLock { _ in sink(stream, clean) }
    }

    /// A result line on stdout.
    public func result(_ line: String = "") { write(line + "\n", to: .stdout) }

    /// A JSON document on stdout (pretty, sorted keys).
    public func json(_ value: some Encodable) throws {
        let data = try KhJSON.encoder(pretty: true).encode(value)
        write(String(decoding: data, as: UTF8.self) + "\n", to: .stdout)
    }

    /// Progress on stderr, unless quiet.
    public func progress(_ line: String) {
        guard verbosity >= .normal else { return }
        write(line + "\n", to: .stderr)
    }

    /// Detail on stderr with -v.
    public func verbose(_ line: String) {
        guard verbosity >= .verbose else { return }
        write(style("  \(line)", .dim, stream: .stderr) + "\n", to: .stderr)
    }

    /// A warning on stderr, even when quiet.
    public func warning(_ line: String) {
        write(style("warning:", .yellow, stream: .stderr) + " \(line)\n", to: .stderr)
    }

    /// An error on stderr, even when quiet.
    public func error(_ line: String) {
        write(style("error:", .red, stream: .stderr) + " \(line)\n", to: .stderr)
    }

    /// Text wrapped in a style when that stream has color.
    public func style(_ text: String, _ style: Style, stream: Stream = .stdout) -> String {
        let on = stream == .stdout ? colorStdout : colorStderr
        return on ? "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m" : text
    }
}
