// SSH: 16 commands over one KhSSH session (parallel channels) against 16 runs of the
// OpenSSH client in a row, both against the same throwaway sshd on 127.0.0.1.
import Foundation
import KhProcess
import KhSSH

let sshBenchmark = RuntimeBenchmark(name: "ssh: 16 commands, one session vs 16 ssh CLI runs") {
    await SSHBench.run()
}

enum SSHBench {
    static let commands = 16
    static let passes = 5

    static func run() async -> [Row] {
        let name = "ssh: \(commands)x echo, one session vs \(commands) ssh CLI runs"
        guard let ssh = which("ssh") else {
            return [Row(name: name, kh: "-", baseline: "ssh not installed", ratio: "-", goal: ">= 5x", met: false)]
        }
        var rows: [Row] = []
        // Without the login shell's startup files (the transport alone), then with them
        // (this machine's ~/.bashrc as it is: each session pays for it).
        for startupFiles in [false, true] {
            let suffix = startupFiles ? " (login shell reads ~/.bashrc)" : ""
            do {
                let server = try await SSHTestServer.start(shellStartupFiles: startupFiles)
                defer { server.stop() }
                let result = try await compare(server: server, ssh: ssh, sequential: !startupFiles)
                let ratio = result.cli / result.parallel
                rows.append(
                    Row(
                        name: name + suffix, kh: ms(result.parallel), baseline: "ssh CLI " + ms(result.cli), ratio: String(format: "%.1fx", ratio),
                        goal: startupFiles ? "report" : ">= 5x", met: startupFiles ? nil : ratio >= 5))
                if let sequential = result.sequential {
                    rows.append(
                        Row(
                            name: "ssh: \(commands)x echo, one session, one channel at a time", kh: ms(sequential),
                            baseline: "ssh CLI " + ms(result.cli),
                            ratio: String(format: "%.1fx", result.cli / sequential), goal: "report", met: nil))
                }
            } catch {
                rows.append(Row(name: name + suffix, kh: "failed: \(error)", baseline: "-", ratio: "-", goal: ">= 5x", met: false))
            }
        }
        return rows
    }

    struct Result {
        var parallel: Double
        var sequential: Double?
        var cli: Double
    }

    /// Median wall time of each way, passes interleaved. The kh time includes the
    /// connect, handshake and authentication of its one session.
    static func compare(server: SSHTestServer, ssh: String, sequential: Bool) async throws -> Result {
        var parallelTimes: [Double] = []
        var sequentialTimes: [Double] = []
        var cliTimes: [Double] = []
        for pass in 0...passes {  // pass 0 warms up
            let parallel = try await time { try await khPass(server: server, parallel: true) }
            let oneByOne = sequential ? try await time { try await khPass(server: server, parallel: false) } : 0
            let cli = try cliPass(server: server, ssh: ssh)
            guard pass > 0 else { continue }
            parallelTimes.append(parallel)
            sequentialTimes.append(oneByOne)
            cliTimes.append(cli)
        }
        return Result(parallel: median(parallelTimes), sequential: sequential ? median(sequentialTimes) : nil, cli: median(cliTimes))
    }

    /// Connects, runs `echo i` for each i (all at once, or one after the other) and checks every answer.
    static func khPass(server: SSHTestServer, parallel: Bool) async throws {
        let connection = try await SSHConnection.connect(server.configuration(maxChannels: commands + 1))
        let options = RunOptions(timeout: .seconds(60))
        var outputs: [String] = []
        if parallel {
            outputs = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<commands {
                    group.addTask { try await connection.run(Command("echo", [String(index)]), options: options).stdoutText }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        } else {
            for index in 0..<commands {
                outputs.append(try await connection.run(Command("echo", [String(index)]), options: options).stdoutText)
            }
        }
        await connection.close()
        guard Set(outputs) == Set((0..<commands).map { "\($0)\n" }) else {
            throw SSHTestServerError(message: "kh-bench: unexpected output over ssh: \(outputs)")
        }
    }

    /// `ssh -i KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=… -p PORT user@127.0.0.1 echo i`, 16 times in a row.
    static func cliPass(server: SSHTestServer, ssh: String) throws -> Double {
        var total = 0.0
        for index in 0..<commands {
            let sample = measure([ssh] + server.sshArguments + ["echo", String(index)])
            guard sample.status == 0 else {
                throw SSHTestServerError(message: "kh-bench: ssh exited with status \(sample.status)")
            }
            total += sample.seconds
        }
        return total
    }
}
