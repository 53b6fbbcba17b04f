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
}
