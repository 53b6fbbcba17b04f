import AgentReliability
import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Synchronization
import Testing

@Suite("kh reliability watch")
struct WatchTests {
    static func finding(_ name: String) -> Finding {
        Finding(
            rule: Rule.jobHung, object: ObjectRef(kind: "Job", namespace: "agents", name: name), message: "active for 2h", fix: "spec: {}",
            detail: "hung")
    }

    @Test("findings are reported once when they appear and once when they clear; the state is the open set only")
    func dedupe() {
        let watcher = Watcher()
        let now = Date()
        #expect(watcher.update([Self.finding("a"), Self.finding("b")], at: now, iteration: 1).map(\.event) == [.appeared, .appeared])
        #expect(watcher.update([Self.finding("b"), Self.finding("a")], at: now, iteration: 2).isEmpty)
        let changes = watcher.update([Self.finding("b"), Self.finding("c")], at: now, iteration: 3)
        #expect(changes.map(\.event) == [.appeared, .cleared])
        #expect(changes.map { $0.finding?.object.name } == ["c", "a"])
        // Ten thousand rounds of churn: memory holds the open findings only.
        for round in 0..<10_000 { _ = watcher.update([Self.finding("x\(round % 7)")], at: now, iteration: round) }
        #expect(watcher.current.count == 1)
    }

    @Test("against the emulator: ConfigMap findings appear, clear once fixed, reach the webhook despite a 503")
    func clusterWithWebhook() async throws {
        let fixture = try await ClusterFixture.make()
        let hooks = try await GitHubEmulator(data: "{}", token: nil)
        try await hooks.post("/_emulator/hooks/watch/fail?count=1")
        let work = TemporaryDirectory("kh-watch")
        let config = try work.write("kh.yaml", fixture.config() + "\n  watch:\n    webhook: \(hooks.url)/_hooks/watch\n    webhook_attempts: 3\n")
        var env = ProcessInfo.processInfo.environment.merging(fixture.testbed.environment) { $1 }
        env["KH_WEBHOOK_TOKEN"] = "whk-secret-token-123456"
        env["NO_COLOR"] = "1"
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        let runner = LocalRunner(environment: env)
        let watch = Task {
            defer { continuation.finish() }
            return try await runner.run(
                Command(
                    BuiltProducts.kh,
                    [
                        "reliability", "watch", "--config", config, "--only", "required-configmap", "--interval", "4s", "--iterations", "2",
                        "--evidence-dir", work.path + "/runs",
                    ], workingDirectory: work.path),
                options: RunOptions(
                    timeout: .seconds(120), killGrace: .seconds(2),
                    onLine: { line in if line.stream == .stdout { continuation.yield(line.text) } }))
        }
        var lines: [String] = []
        var fixed = false
        for await line in stream {
            lines.append(line)
            if lines.count == 2 && !fixed {
                fixed = true
                // Between the rounds, the ConfigMaps are fixed (ArgoCD's sync at 19:58).
                try await fixture.kubectl.apply(
                    yaml: """
                        apiVersion: v1
                        kind: ConfigMap
                        metadata: {name: controller-agent-templates-codex, namespace: \(fixture.platform)}
                        data: {container.sh.hbs: "exec codex"}
                        ---
                        apiVersion: v1
                        kind: ConfigMap
                        metadata: {name: controller-agent-templates-cursor, namespace: \(fixture.platform)}
                        data: {container.sh.hbs: "exec cursor"}
                        """)
            }
            if lines.count == 4 { break }
        }
        let result = try await watch.value
        #expect(result.exitCode == 0, "\(result.stderrText)")
        let events = try lines.map { try KhJSON.decoder().decode(WatchEvent.self, from: Data($0.utf8)) }
        #expect(events.map(\.event) == [.appeared, .appeared, .cleared, .cleared])
        #expect(events.map(\.iteration) == [1, 1, 2, 2])
        #expect(Set(events.compactMap { $0.finding?.object.name }) == ["controller-agent-templates-codex", "controller-agent-templates-cursor"])
        #expect(result.stdoutText.split(separator: "\n").count == 4, "nothing reported twice")

        let posted = try await hooks.get("/_emulator/hooks/watch").arrayValue ?? []
        #expect(posted.count == 4, "the first POST got a 503 and was retried")
        #expect(posted.allSatisfy { $0["bearer"]?.boolValue == true })
        #expect(posted.compactMap { $0.at(["body", "event"])?.stringValue } == ["appeared", "appeared", "cleared", "cleared"])
        #expect(!result.stdoutText.contains("whk-secret-token-123456") && !result.stderrText.contains("whk-secret-token-123456"))
    }

    @Test("SIGINT stops a watch with no iteration limit: exit 130, only whole JSON lines")
    func interrupted() async throws {
        let work = TemporaryDirectory("kh-watch-int")
        let repo = fixturesDirectory + "/agents-repo"
        let out = work.path + "/out.jsonl"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.kh)
        process.arguments = [
            "reliability", "watch", "--config", repo + "/kh.yaml", "--manifests", repo, "--interval", "1s", "--evidence-dir", work.path + "/runs",
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = FileHandle.nullDevice
        try process.run()
        try await eventually("the first round") { ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").count >= 10 }
        kill(process.processIdentifier, SIGINT)
        #expect(try await KhBinary.wait(process) == 130)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 10, "10 findings appeared once, none again")
        for line in lines { #expect((try? KhJSON.decoder().decode(WatchEvent.self, from: Data(line.utf8))) != nil) }
    }
}
