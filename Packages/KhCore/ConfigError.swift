/// A configuration problem, located: file, line, column, the field's path and
/// what was expected. Exit code 2.
public struct ConfigError: KhReportableError, Equatable {
    /// The config file, or `<none>` for built-in defaults.
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// 1-based column, when known.
    public var column: Int?
    /// The field's dotted path, such as `stabilize.scenarios[2].timeout`.
    public var field: String
    /// What was wrong and what was expected.
    public var problem: String
    /// Further problems found in the same file (unknown keys are all reported at once).
    public var more: [ConfigError]

    public init(file: String, line: Int?, column: Int?, field: String, problem: String, more: [ConfigError] = []) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.problem = problem
        self.more = more
    }

    public var exitCode: KhExitCode { .usage }

    /// `kh.yaml:12:5: stabilize.timeout: expected a duration such as 90s, found "abc"`.
    public var location: String {
        var text = file
        if let line { text += ":\(line)" }
        if let column { text += ":\(column)" }
        return text
    }

    public var message: String {
        let head = field.isEmpty ? "\(location): \(problem)" : "\(location): \(field): \(problem)"
        return ([head] + more.map(\.message)).joined(separator: "\n")
    }
}
