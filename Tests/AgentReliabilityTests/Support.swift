import Foundation
import KhCore
import KhProcess
import KhTestSupport

/// Runs the built kh binary.
enum KhBinary {
    struct Outcome {
        var code: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs kh with stdin on /dev/null (through LocalRunner), within a deadline.
    static func run(
        _ arguments: [String], in directory: String, environment: [String: String] = [:], timeout: Duration = .seconds(120)
    ) async throws -> Outcome {
        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        env["NO_COLOR"] = "1"
        env.removeValue(forKey: "KH_CONFIG")
        let result = try await LocalRunner(environment: env).run(
            Command(BuiltProducts.kh, arguments, workingDirectory: directory), options: RunOptions(timeout: timeout, killGrace: .seconds(2)))
        let code: Int32
        switch result.termination {
        case .exited(let value): code = value
        case .signaled(let signal): code = 128 + signal
        }
        return Outcome(code: code, stdout: result.stdoutText, stderr: result.stderrText)
    }

    /// Starts kh as a Foundation process whose stdin is a pipe the caller holds open.
    static func start(_ arguments: [String], in directory: String, stdin: Pipe) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.kh)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        process.environment = env
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits for a process to end, at most `timeout`; kills it (and fails) after that.
    static func wait(_ process: Process, timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                throw TestFailure("kh did not exit within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }
}

/// Polls until `condition` holds, at most `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(30), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { throw TestFailure("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The directory of this test target's fixtures.
let fixturesDirectory = BuiltProducts.repositoryRoot + "/Tests/AgentReliabilityTests/Fixtures"

/// A unique marker for a test's processes (found in /proc by command line).
func uniqueMarker() -> String { "36\(Int.random(in: 10_000...99_999)).\(Int.random(in: 100...999))" }
