import Foundation

/// A private instance of the testbed's Hetzner Cloud API emulator (Tools/testbed/hcloud-emulator),
/// started from the testbed's python and emulator folder (`.testbed/env`) on a free port with a
/// token of its own and `--exit-with-parent`, so it ends with the test process. Private, so its
/// state, request log, rate limits and faults belong to the suite that made it.
public final class PrivateHCloudEmulator: @unchecked Sendable {
    /// What `.testbed/env` says about the emulator (python, folder, spec).
    public let info: HCloudEmulatorInfo
    /// `http://127.0.0.1:PORT` (the control API is under `/__emulator`).
    public let base: URL
    /// `http://127.0.0.1:PORT/v1`, what `HCLOUD_ENDPOINT` takes.
    public let endpoint: URL
    /// The bearer token it accepts.
    public let token: String
    /// Its folder: the token file and `emulator.log`.
    public let directory: TemporaryDirectory
    private let process: Process

    /// Starts it and waits (at most `startDeadline`) until it wrote its port.
    /// `ipv4Pool` hands servers loopback addresses (the testbed's pool) so sshd "nodes" can bind to them.
    public init(label: String = "kh-hcloud-emulator", ipv4Pool: String? = nil, startDeadline: TimeInterval = 20) throws {
        info = try Testbed.load().hcloudEmulator()
        directory = TemporaryDirectory(label, removeAtExit: true)
        token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let tokenFile = try directory.write("token", token)
        let portFile = directory.path + "/port"
        process = Process()
        process.executableURL = URL(fileURLWithPath: info.python)
        process.arguments =
            ["-B", info.directory + "/server.py", "--port", "0", "--port-file", portFile, "--token-file", tokenFile, "--exit-with-parent"]
            + (ipv4Pool.map { ["--ipv4-pool", $0] } ?? [])
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: try directory.write("emulator.log", ""))
        try process.run()
        let deadline = Date().addingTimeInterval(startDeadline)
        var port = ""
        while port.isEmpty {
            guard Date() < deadline, process.isRunning else {
                process.terminate()
                throw TestbedError(message: "the hcloud emulator did not start: \((try? directory.read("emulator.log")) ?? "")")
            }
            Thread.sleep(forTimeInterval: 0.05)
            port = ((try? directory.read("port")) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        base = URL(string: "http://127.0.0.1:\(port)")!
        endpoint = base.appendingPathComponent("v1")
    }

    /// The file holding the token.
    public var tokenFile: String { directory.path + "/token" }

    deinit { process.terminate() }
}
