import Foundation
import KhCore

/// `kh-<name>` executables on PATH, run for unknown verbs the way git and kubectl do.
public enum ExternalCommands {
    /// An executable found on PATH.
    public struct Found: Sendable, Equatable {
        public var name: String
        public var path: String
    }

    /// Every `kh-*` executable on PATH (first one wins for each name), sorted.
    public static func list(path: String) -> [Found] {
        var seen: [String: String] = [:]
        for dir in path.split(separator: ":").map(String.init) {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for entry in entries.sorted() where entry.hasPrefix("kh-") && entry.count > 3 {
                let full = dir + "/" + entry
                let name = String(entry.dropFirst(3))
                if seen[name] == nil, FileManager.default.isExecutableFile(atPath: full) { seen[name] = full }
            }
        }
        return seen.map { Found(name: $0.key, path: $0.value) }.sorted { $0.name < $1.name }
    }

    /// The path of `kh-<verb>` on PATH, if any.
    public static func find(_ verb: String, path: String) -> String? {
        for dir in path.split(separator: ":").map(String.init) {
            let full = dir + "/kh-" + verb
            if FileManager.default.isExecutableFile(atPath: full) { return full }
        }
        return nil
    }

    /// Global flags given before the verb (`kh --output json foo`), turned into the
    /// KH_* variables an external command reads. Returns the variables and the rest.
    public static func leadingGlobals(_ arguments: [String]) throws -> (environment: [String: String], rest: [String]) {
        var env: [String: String] = [:]
        var index = 0
        let valued = ["--config": "KH_CONFIG", "--output": "KH_OUTPUT", "--evidence-dir": "KH_EVIDENCE_DIR"]
        while index < arguments.count, arguments[index].hasPrefix("-") {
            let argument = arguments[index]
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            if let variable = valued[parts[0]] {
                if parts.count == 2 {
                    env[variable] = parts[1]
                } else {
                    guard index + 1 < arguments.count else { throw KhError.usage("\(argument): expected a value") }
                    index += 1
                    env[variable] = arguments[index]
                }
            } else if argument == "-q" || argument == "--quiet" {
                env["KH_QUIET"] = "1"
            } else if argument == "-v" || argument == "--verbose" {
                env["KH_VERBOSE"] = String((Int(env["KH_VERBOSE"] ?? "0") ?? 0) + 1)
            } else if argument == "--no-color" {
                env["NO_COLOR"] = "1"
            } else {
                return ([:], arguments)
            }
            index += 1
        }
        if let output = env["KH_OUTPUT"], OutputFormat(rawValue: output) == nil {
            throw KhError.usage("--output \(output): expected text or json")
        }
        return (env, Array(arguments[index...]))
    }

    /// Replaces this process with the external command (signals restored to default
    /// first, since ignored signals survive exec). Returns only on failure.
    public static func exec(_ path: String, arguments: [String], environment: [String: String]) -> KhError {
        for sig in [SIGINT, SIGTERM, SIGPIPE] { signal(sig, SIG_DFL) }
        let argv = [path] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = envp.map { strdup($0) } + [nil]
        execve(path, &cArgs, &cEnv)
        let reason = String(cString: strerror(errno))
        for p in cArgs + cEnv { free(p) }
        return KhError.external("\(path): exec failed: \(reason)")
    }
}
