import Foundation
import KhCore
import KhHTTP
import KhProcess
import KhTestSupport
import Testing

/// A private instance of the testbed's Hetzner Cloud API emulator (Tools/testbed/hcloud-emulator):
/// the testbed's python and emulator folder from `.testbed/env`, its own free port and token,
/// `--exit-with-parent`. Private so that its state and request log belong to one test only.
/// Tests talk to it with plain HTTP (KhHTTP), independently of KhHCloud, the client under test.
final class PrivateEmulator: @unchecked Sendable {
    let endpoint: String
    let base: String
    let token: String
    var directory: TemporaryDirectory { instance.directory }
    private let instance: PrivateHCloudEmulator
    private let http: HTTPClient

    init() throws {
        let pool = try Testbed.load().hcloudEmulator().ipv4Pool
        instance = try PrivateHCloudEmulator(label: "kh-stab-emulator", ipv4Pool: pool)
        token = instance.token
        base = instance.base.absoluteString
        endpoint = instance.endpoint.absoluteString
        http = HTTPClient(configuration: .init(timeout: .seconds(20), retry: .none, authentication: .bearer(token)))
    }

    /// One call; fails the test on a non-2xx answer.
    @discardableResult
    func call(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        let url = URL(string: (path.hasPrefix("/__emulator") ? base : endpoint) + path)!
        let request = try body.map { try HTTPRequest.json(method, url, body: $0) } ?? HTTPRequest(method, url)
        let response = try await http.send(request)
        if response.status == 204 { return .null }
        return try response.requireSuccess().decode(JSONValue.self)
    }

    /// Creates a resource and returns its id (`kind` is the JSON key of the answer: `server`, `volume` …).
    func create(_ path: String, _ kind: String, _ body: JSONValue) async throws -> Int {
        let answer = try await call(.post, path, body)
        guard case .number(let id)? = answer[kind]?["id"] else { throw SetupError("POST \(path): no \(kind).id in \(answer)") }
        return Int(id)
    }

    /// Names of every resource of a collection (`servers`, `volumes` …).
    func names(_ collection: String) async throws -> Set<String> {
        let answer = try await call(.get, "/\(collection)?per_page=50")
        guard case .array(let items)? = answer[collection] else { return [] }
        return Set(items.compactMap { $0["name"]?.stringValue })
    }

    /// `METHOD route` of every logged request, in order (the control API's log).
    func requestLog() async throws -> [(method: String, path: String)] {
        let log = try await call(.get, "/__emulator/requests?bodies=0")
        guard case .array(let list)? = log["requests"] else { return [] }
        return list.map { ($0["method"]?.stringValue ?? "", $0["path"]?.stringValue ?? "") }
    }

    func clearRequestLog() async throws { try await call(.delete, "/__emulator/requests") }
}

extension JSONValue {
    var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    var intValue: Int? { if case .number(let n) = self { return Int(n) } else { return nil } }
}

/// Runs the built `kh` binary.
struct KhBinary {
    var environment: [String: String]
    var runner: LocalRunner { LocalRunner(environment: environment) }

    init(testbed: Testbed, extra: [String: String] = [:]) {
        var env = testbed.processEnvironment
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "HCLOUD_TOKEN")
        env.removeValue(forKey: "HCLOUD_ENDPOINT")
        environment = env.merging(extra) { $1 }
    }

    func run(_ arguments: [String], timeout: Duration = .seconds(300)) async throws -> CommandResult {
        try await runner.run(Command(BuiltProducts.kh, arguments), options: RunOptions(timeout: timeout))
    }
}

/// Runs a command-line tool (git, terraform, sh) and fails the test when it fails.
@discardableResult
func tool(_ executable: String, _ arguments: [String], in directory: String, environment: [String: String] = [:], timeout: Duration = .seconds(120))
    async throws -> String
{
    let result = try await LocalRunner(environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }).run(
        Command(executable, arguments, workingDirectory: directory), options: RunOptions(timeout: timeout))
    #expect(result.succeeded, "\(executable) \(arguments): \(result.stderrText)")
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A background process started by a test (never by name): its PID, start time and process group.
final class Background: @unchecked Sendable {
    let process: Process

    /// Starts `argv` with `cwd` (stdin closed), in its own process group when `ownGroup`.
    init(_ argv: [String], cwd: String, environment: [String: String]? = nil, stdout: String? = nil) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: cwd)
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        if let stdout {
            _ = FileManager.default.createFile(atPath: stdout, contents: nil)
            let handle = FileHandle(forWritingAtPath: stdout)
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits for the process to end (bounded); its exit status, nil when it did not end in time.
    func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        _ = wait(seconds: 5)
    }
}

/// /proc facts, read the way the kernel shows them.
enum Proc {
    /// Fields after the command name of /proc/PID/stat (index 0 = state, 2 = pgrp, 19 = start time).
    static func stat(_ pid: Int32) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(close, offsetBy: 2)...].split(separator: " ")
    }

    static func startTime(_ pid: Int32) -> UInt64? { stat(pid).flatMap { UInt64($0[19]) } }

    /// PIDs of live (not zombie) processes in a process group.
    static func members(ofGroup group: Int32) -> [Int32] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        return pids.filter { pid in
            guard let fields = stat(pid), fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return false }
            return Int32(fields[2]) == group
        }
    }

    /// Whether a PID is a live process (not a zombie).
    static func isAlive(_ pid: Int32) -> Bool {
        guard let fields = stat(pid) else { return false }
        return fields[0] != "Z" && fields[0] != "X"
    }

    /// PIDs whose command line contains `marker`.
    static func matching(_ marker: String) -> [Int32] {
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        return pids.filter { pid in
            guard isAlive(pid), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(marker)
        }
    }
}

/// Polls `condition` until it holds or the deadline passes (a bounded wait, not an assertion on time).
func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.1)
    }
    return condition()
}

/// The harness: s1 applied with real terraform (its destroy provisioner leaves a marker),
/// s2 with a stale state lock, s3 with a state lock a live process holds.
func stateHarness(_ dir: TemporaryDirectory, endpoint: String, testbed: Testbed) async throws -> String {
    try dir.write("module/main.tf", "")
    try dir.write(
        "harness/scenarios_v3/s1-k3s-basic/main.tf",
        """
        resource "null_resource" "node" {
          provisioner "local-exec" {
            when    = destroy
            command = "echo destroyed > \(dir.path)/destroyed-s1"
          }
        }
        """)
    try dir.write("harness/scenarios_v3/s2-rke2-basic/main.tf", "")
    try dir.write("harness/scenarios_v3/s2-rke2-basic/.terraform.tfstate.lock.info", #"{"ID":"stale","Operation":"OperationTypeApply"}"#)
    try dir.write("harness/scenarios_v3/s3-k3s-held/main.tf", "")
    try dir.write("harness/scenarios_v3/s3-k3s-held/.terraform.tfstate.lock.info", #"{"ID":"held","Operation":"OperationTypeApply"}"#)
    let s1 = dir.path + "/harness/scenarios_v3/s1-k3s-basic"
    try await tool("terraform", ["init", "-input=false", "-no-color"], in: s1, environment: testbed.environment)
    try await tool("terraform", ["apply", "-auto-approve", "-input=false", "-no-color"], in: s1, environment: testbed.environment)
    return try dir.write(
        "kh.yaml",
        """
        kh:
          evidence_dir: \(dir.path)/runs
        stabilize:
          module_dir: module
          harness_dir: harness
          scenarios: [s1-k3s-basic, s2-rke2-basic, s3-k3s-held]
          hcloud:
            endpoint: \(endpoint)
          triage:
            enabled: false
        """)
}
