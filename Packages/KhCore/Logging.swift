import Logging

/// A swift-log handler that writes through a ``Console`` (stderr, redacted,
/// filtered by verbosity), so library code can log with `Logger` as usual.
public struct ConsoleLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let console: Console
    let label: String

    public init(label: String, console: Console) {
        self.label = label
        self.console = console
        switch console.verbosity {
        case .quiet: logLevel = .error
        case .normal: logLevel = .notice
        case .verbose: logLevel = .info
        case .debug: logLevel = .trace
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let suffix = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let text = "\(event.message)\(suffix)"
        switch event.level {
        case .critical, .error: console.error(text)
        case .warning: console.warning(text)
        case .notice: console.progress(text)
        case .info, .debug, .trace: console.verbose(text)
        }
    }
}
