/// POSIX shell quoting.
public enum Shell {
    /// Characters that never need quoting.
    static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")

    /// One word, quoted so that a POSIX shell reads it back unchanged.
    public static func quote(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    /// Words joined into one command line, each quoted.
    public static func join(_ words: [String]) -> String { words.map(quote).joined(separator: " ") }

    /// A ``Command`` as one line for a POSIX shell on the far side of a transport
    /// (ssh, a prefix): `cd DIR && env [-i] K=V executable args…`, every word quoted.
    ///
    /// With `exec`, the shell replaces itself with the command (`… && exec env …`), so
    /// the command keeps the shell's process ID and its exit status or signal is the
    /// one the transport reports.
    public static func commandLine(for command: Command, exec: Bool = false) -> String {
        var words: [String] = []
        if let cwd = command.workingDirectory { words += ["cd", quote(cwd), "&&"] }
        if exec { words.append("exec") }
        if !command.environment.isEmpty || !command.inheritEnvironment {
            words.append("env")
            if !command.inheritEnvironment { words.append("-i") }
            words += command.environment.sorted { $0.key < $1.key }.map { quote("\($0.key)=\($0.value)") }
        }
        words += ([command.executable] + command.arguments).map(quote)
        return words.joined(separator: " ")
    }
}
