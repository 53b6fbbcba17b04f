// hcloud: reaping 200 servers in kh's Hetzner Cloud API emulator with HCloudReaper (deletes with
// 16 in flight, actions polled in batches) against a baseline that deletes each server and polls
// its action in turn. Both use the same client settings; API calls are counted by the emulator.
import Foundation
import KhCore
import KhHCloud
import KhHTTP

let hcloudBenchmark = RuntimeBenchmark(name: "hcloud: reap 200 servers, batched vs one by one") {
    await HCloudBench.run()
}

enum HCloudBench {
    static let servers = 200
    static let callGoal = 210
    static let name = hcloudBenchmark.name

    static func row(_ note: String) -> [Row] { [Row(name: name, kh: "-", baseline: note, ratio: "-", goal: "<= 210 calls", met: nil)] }

    /// Tools/testbed/hcloud-emulator/server.py beside this file's folder (or under the working directory).
    static var emulatorScript: String {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let path = here.appendingPathComponent("testbed/hcloud-emulator/server.py").path
        if FileManager.default.fileExists(atPath: path) { return path }
        return FileManager.default.currentDirectoryPath + "/Tools/testbed/hcloud-emulator/server.py"
    }

    static func run() async -> [Row] {
        guard let python = which("python3") else { return row("python3 not installed") }
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let tokenFile = NSTemporaryDirectory() + "kh-bench-hcloud-\(getpid()).token"
        guard FileManager.default.createFile(atPath: tokenFile, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600]) else {
            return row("could not write \(tokenFile)")
        }
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        guard
            let server = BenchServer(argv: [
                python, "-B", emulatorScript, "--port", "0", "--token-file", tokenFile, "--ready-line", "--action-delay", "0.05",
            ])
        else { return row("the emulator did not start (\(emulatorScript))") }
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let control = HTTPClient(configuration: .init(timeout: .seconds(30), retry: .none, authentication: .bearer(token)))
        do {
            let configuration = HCloudConfiguration(
                endpoint: URL(string: base + "/v1")!, token: Secret(name: "HCLOUD_TOKEN", value: token), concurrency: 16,
                actionDeadline: .seconds(120), pollInitialInterval: .milliseconds(50), pollMaxInterval: .milliseconds(500))
            let client = try HCloudClient(configuration: configuration)
            let scope = HCloudReaper.Scope(labelSelectors: ["cluster=khv3"], namePrefix: "khv3-", kinds: [.server])
            let reaper = try HCloudReaper(client: client, scope: scope)

            // kh: plan + execute over 200 servers (and a decoy with another prefix).
            try await seed(client, control: control, base: base)
            let khTime = try await time {
                let report = try await reaper.execute(try await reaper.plan())
                guard report.succeeded, report.items.count == servers else {
                    throw KhError.external("reap: \(report.items.count) items, \(report.failures.count) failed")
                }
            }
            let (khCalls, khLimited) = try await log(control, base: base)
            guard try await reaper.remaining().isEmpty else { return row("servers left after the reap") }

            // Baseline: list, then for each server in turn DELETE and poll its action until it ends.
            try await seed(client, control: control, base: base)
            let baseTime = try await time {
                for target in try await client.servers(labelSelector: "cluster=khv3") where target.name.hasPrefix("khv3-") {
                    let action = try await client.deleteServer(id: target.id)
                    var pause = configuration.pollInitialInterval
                    while true {
                        try await Task.sleep(for: pause)
                        if try await !client.action(id: action.id).isRunning { break }
                        pause = min(configuration.pollMaxInterval, pause * 1.5)
                    }
                }
            }
            let (baseCalls, baseLimited) = try await log(control, base: base)
            let speedUp = baseTime / khTime
            return [
                Row(
                    name: name + ": API calls", kh: "\(khCalls) calls", baseline: "\(baseCalls) calls", ratio: "429s: \(khLimited) / \(baseLimited)",
                    goal: "<= \(callGoal), no 429", met: khCalls <= callGoal && khLimited == 0),
                Row(
                    name: name + ": wall time", kh: ms(khTime), baseline: "one by one " + ms(baseTime),
                    ratio: String(format: "%.1fx faster", speedUp),
                    goal: ">= 5x", met: speedUp >= 5),
            ]
        } catch {
            return row("failed: \(error)")
        }
    }

    /// Resets the emulator, creates 200 `khv3-` servers and one decoy, then clears the request log.
    static func seed(_ client: HCloudClient, control: HTTPClient, base: String) async throws {
        _ = try await control.send(HTTPRequest(.post, URL(string: base + "/__emulator/reset")!)).requireSuccess()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for index in stride(from: worker, to: servers, by: 16) {
                        _ = try await client.createServer(
                            HCloudServerCreate(name: "khv3-s\(index)", serverType: "cx22", image: "ubuntu-24.04", labels: ["cluster": "khv3"]))
                    }
                }
            }
            try await group.waitForAll()
        }
        _ = try await client.createServer(HCloudServerCreate(name: "prod-1", serverType: "cx22", image: "debian-12", labels: ["cluster": "khv3"]))
        try await Task.sleep(for: .milliseconds(100))  // create actions end
        _ = try await control.send(HTTPRequest(.delete, URL(string: base + "/__emulator/requests")!)).requireSuccess()
    }

    /// API calls the emulator logged and 429s it sent since the last clear.
    static func log(_ control: HTTPClient, base: String) async throws -> (calls: Int, limited: Int) {
        let value = try await control.getJSON(URL(string: base + "/__emulator/requests?bodies=0")!, as: JSONValue.self)
        guard case .number(let total)? = value["total"], case .number(let limited)? = value["rate_limited"] else {
            throw KhError.external("the emulator's request log has no total")
        }
        return (Int(total), Int(limited))
    }
}
