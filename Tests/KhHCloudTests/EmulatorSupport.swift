import Foundation
import KhCore
import KhHTTP
import KhTestSupport
import Synchronization
import Testing

@testable import KhHCloud

/// A private instance of the testbed's Hetzner Cloud API emulator for this test process: the
/// testbed's python and emulator folder (from `.testbed/env`), its own free port and token, and
/// `--exit-with-parent` so it ends with the test process. Private, so that resets, rate limits
/// and faults of these suites never meet other suites using the testbed's shared instance.
final class EmulatorInstance: @unchecked Sendable {
    let endpoint: URL
    let base: URL
    let token: String
    let info: HCloudEmulatorInfo
    var directory: TemporaryDirectory { instance.directory }
    private let instance: PrivateHCloudEmulator
    private let control: HTTPClient

    private static let shared = Mutex<EmulatorInstance?>(nil)

    /// The one instance of this process (started on first use).
    static func get() throws -> EmulatorInstance {
        try shared.withLock { current in
            if let current { return current }
            let made = try EmulatorInstance()
            current = made
            return made
        }
    }

    private init() throws {
        instance = try PrivateHCloudEmulator(label: "kh-hcloud-emulator")
        info = instance.info
        token = instance.token
        base = instance.base
        endpoint = instance.endpoint
        control = HTTPClient(configuration: .init(timeout: .seconds(20), retry: .none, authentication: .bearer(token)))
    }

    /// A client for this emulator (its own redactor, which the token is registered with).
    func client(concurrency: Int = 16, redactor: Redactor = Redactor(), perPage: Int = 50, actionDeadline: Duration = .seconds(30)) throws
        -> HCloudClient
    {
        let configuration = HCloudConfiguration(
            endpoint: endpoint, token: Secret(name: "HCLOUD_TOKEN", value: token), perPage: perPage, concurrency: concurrency,
            actionDeadline: actionDeadline, pollInitialInterval: .milliseconds(50), pollMaxInterval: .milliseconds(500))
        return try HCloudClient(configuration: configuration, redactor: redactor)
    }

    // MARK: control API

    @discardableResult
    func call(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        let url = URL(string: base.absoluteString + "/__emulator" + path)!
        let request = try body.map { try HTTPRequest.json(method, url, body: $0) } ?? HTTPRequest(method, url)
        return try await control.send(request).requireSuccess().decode(JSONValue.self)
    }

    func reset() async throws { try await call(.post, "/reset") }

    func setRateLimit(limit: Int, remaining: Int, refillPerSecond: Double) async throws {
        try await call(
            .post, "/rate_limit",
            ["limit": .number(Double(limit)), "remaining": .number(Double(remaining)), "refill_per_second": .number(refillPerSecond)])
    }

    func setActionDelay(_ seconds: Double) async throws {
        try await call(.post, "/config", ["action_delay": .number(seconds)])
    }

    func addFault(_ fault: JSONValue) async throws { try await call(.post, "/faults", fault) }

    /// The request log: (counts per `METHOD route`, 429s sent, entries).
    func requests() async throws -> (counts: [String: Int], rateLimited: Int, entries: [JSONValue]) {
        let log = try await call(.get, "/requests?bodies=0")
        var counts: [String: Int] = [:]
        if case .object(let raw)? = log["counts"] {
            for (key, value) in raw { if case .number(let n) = value { counts[key] = Int(n) } }
        }
        var limited = 0
        if case .number(let n)? = log["rate_limited"] { limited = Int(n) }
        var entries: [JSONValue] = []
        if case .array(let list)? = log["requests"] { entries = list }
        return (counts, limited, entries)
    }

    /// Runs validate.py over the requests logged since `since` whose User-Agent is kh's:
    /// their query parameters and bodies (strict) against the official spec. Returns its output.
    func validateKhRequests() throws -> (status: Int32, output: String) {
        let run = Process()
        run.executableURL = URL(fileURLWithPath: info.python)
        run.arguments = [
            "-B", info.directory + "/validate.py", "--endpoint", endpoint.absoluteString, "--token-file", directory.path + "/token",
            "--requests", "--responses", "--user-agent", "kh/", "--spec", info.spec,
        ]
        let pipe = Pipe()
        run.standardOutput = pipe
        run.standardError = pipe
        run.standardInput = FileHandle.nullDevice
        try run.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        run.waitUntilExit()
        return (run.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// Counts of the request log for one route, e.g. `GET /servers`.
extension Dictionary where Key == String, Value == Int {
    func count(_ key: String) -> Int { self[key] ?? 0 }
}

let testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEYyfkDzTnqSAOWVjzpUG2qhjuXIWdWicFvVmRKGSavL kh-test"

/// A distinct valid public key per index (the emulator refuses duplicate fingerprints).
func publicKey(_ index: Int) -> String {
    testPublicKey.replacingOccurrences(of: "AAAAIEYy", with: "AAAAI" + String(format: "%03d", index))
}
