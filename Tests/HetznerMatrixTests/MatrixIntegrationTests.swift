import Foundation
import HetznerMatrix
import KhCore
import KhPluginAPI
import KhProcess
import KhSSH
import KhTestSupport
import Synchronization
import Testing

/// The matrix through the workflow with real terraform (null provider from the testbed's
/// offline mirror), a real sshd as the scenarios' node, and an in-memory Hetzner inventory.
/// Captured console output.
final class Lines: Sendable {
    let text = Mutex<[String]>([])
}

@Suite("matrix with real terraform and sshd", .serialized)
struct MatrixIntegrationTests {
    static func scenario(_ dir: TemporaryDirectory, _ name: String, _ script: String, extra: String = "") throws {
        try dir.write(
            "harness/scenarios_v3/\(name)/main.tf",
            """
            \(extra)
            resource "null_resource" "node" {
              provisioner "local-exec" {
                command = <<-EOT
                \(script)
                EOT
              }
            }
            """)
    }

    static func context(_ dir: TemporaryDirectory, config yaml: String, environment: [String: String]) throws -> (CommandContext, Lines) {
        let lines = Lines()
        let redactor = Redactor()
        let console = Console(redactor: redactor) { _, text in lines.text.withLock { $0.append(text) } }
        let config = try ConfigFile.parse(yaml, path: dir.path + "/kh.yaml", redactor: redactor)
        let context = CommandContext(
            console: console, config: config, redactor: redactor, runner: LocalRunner(environment: environment), environment: environment,
            evidenceRoot: dir.path + "/runs", commandLine: ["kh", "stabilize", "run"], workingDirectory: dir.path)
        return (context, lines)
    }

    @Test("pass, fail and stall: triage over SSH while the apply is silent, known failures diagnosed, evidence kept")
    func matrix() async throws {
        let testbed = try Testbed.load()
        let sshd = try await SSHServer.start()
        let dir = TemporaryDirectory("kh-matrix")
        try dir.write("module/main.tf", "")
        try Self.scenario(dir, "s1-k3s-basic", "echo creating servers; sleep 0.3; echo done")
        try Self.scenario(
            dir, "s2-k3s-api", "echo waiting for kube API; echo 'Error: dial tcp 127.0.0.1:1: connect: connection refused' >&2; exit 1",
            extra: "locals {\n  firewall_kube_api_source = [\"203.0.113.7/32\"]\n}")
        try Self.scenario(dir, "s3-leapmicro-stall", "echo booting node; sleep 30")
        let token = "hcloud-test-token-\(UInt32.random(in: 0...UInt32.max))"
        let environment = testbed.processEnvironment.merging(["HCLOUD_TOKEN": token]) { $1 }
        let yaml = """
            stabilize:
              module_dir: module
              harness_dir: harness
              scenarios: [s1-k3s-basic, s2-k3s-api, {name: s3-leapmicro-stall, idle_timeout: 1500ms, apply_timeout: 6s}]
              concurrency: 3
              timeouts: {apply: 60s, idle: 30s, init: 60s}
              ssh:
                key: \(sshd.clientKeyPath)
                user: \(sshd.user)
                port: \(sshd.port)
                host_key_policy: strict
                known_hosts: \(sshd.knownHostsPath)
              triage:
                kube_api_port: 1
                runner_source: 198.51.100.4/32
                checks:
                  - {id: system-state, command: "echo degraded"}
                  - {id: journal-boot, command: "echo 'sshd[812]: User root not allowed because account is locked'; echo token=\(token)"}
                  - {id: kube-api-inside, command: "echo ok"}
                  - {id: rke2-config-dir, command: "ls -lah /nonexistent/rke2", distro: rke2}
            """
        let (context, lines) = try Self.context(dir, config: yaml, environment: environment)
        let config = try context.section("stabilize", as: StabilizeConfig.self)
        let inventory = FakeInventory(servers: [
            HetznerServer(id: 1, name: "khv3-s2-k3s-api-control-0", labels: ["cluster": "khv3-s2-k3s-api"], publicIPv4: "127.0.0.1"),
            HetznerServer(id: 2, name: "khv3-s3-leapmicro-stall-control-0", labels: ["cluster": "khv3-s3-leapmicro-stall"], publicIPv4: "127.0.0.1"),
            HetznerServer(id: 3, name: "other-s3", labels: ["cluster": "khv3-s3-leapmicro-stall"], publicIPv4: "127.0.0.1"),
        ])
        var services = StabilizeServices.live
        services.inventory = InventoryFactory { _, t, _ in
            #expect(t == token)
            return inventory
        }
        var workflow = StabilizeWorkflow(context: context, config: config, services: services)
        try await workflow.preflight([.scenarios, .terraform, .sshKey, .api], scenarios: config.scenarioNames)
        let flow = workflow
        let started = ContinuousClock.now
        var markdownPath = ""
        let code = try await context.withEvidence { run in
            let pass = await flow.runMatrix(run: run, names: config.scenarioNames, concurrency: 3, keepGoing: false, label: "run", attempt: 1)
            var summary = StabilizeSummary(runID: run.runID, command: "kh stabilize run", startedAt: run.manifest.startedAt, evidence: run.directory)
            summary.passes = [pass]
            markdownPath = try flow.publish(summary, run: run, code: pass.allPassed ? .success : .checkFailed)
            return (pass.allPassed ? .success : .checkFailed, "")
        }
        #expect(code == .checkFailed)
        // The stall's own apply deadline (6 s) ended it, long before its `sleep 30` would have; the
        // bound leaves room for a loaded machine (terraform's start-up shares two cores with other suites).
        #expect(ContinuousClock.now - started < .seconds(28))
        let latest = try #require(try ResultsFolder(directory: workflow.paths.results, fileSystem: LocalFileSystem(), redactor: Redactor()).latest())
        let results = Dictionary(uniqueKeysWithValues: latest.summary.finalResults.map { ($0.name, $0) })
        let pass = try #require(results["s1-k3s-basic"])
        #expect(pass.status == .passed && pass.triage.isEmpty)
        let logText = try String(contentsOfFile: try #require(pass.log), encoding: .utf8)
        #expect(logText.contains("creating servers") && logText.contains("terraform"))

        let failed = try #require(results["s2-k3s-api"])
        #expect(failed.status == .failed && failed.phase == "apply")
        #expect(failed.triage.map(\.trigger) == ["failure"])
        #expect(failed.triage.first?.nodes.map(\.server) == ["khv3-s2-k3s-api-control-0"])
        #expect(failed.triage.first?.nodes.first?.kubeAPIReachableFromRunner == false)
        #expect(failed.diagnoses.map(\.id).contains(KnownFailures.firewallID))
        #expect(failed.diagnoses.first { $0.id == KnownFailures.firewallID }?.evidence.contains("203.0.113.7/32") == true)

        let stalled = try #require(results["s3-leapmicro-stall"])
        #expect(stalled.status == .timedOut)
        #expect(!stalled.stalls.isEmpty)
        #expect(stalled.triage.first?.trigger == "stall")
        // The server named without the prefix is not touched.
        #expect(stalled.triage.first?.nodes.map(\.server) == ["khv3-s3-leapmicro-stall-control-0"])
        #expect(stalled.diagnoses.map(\.id).contains(KnownFailures.rootLockedID))
        // The triage ran while the apply was still going: before the deadline.
        let triageAt = try #require(stalled.triage.first?.at)
        let startedAt = try #require(stalled.startedAt)
        #expect(triageAt.timeIntervalSince(startedAt) < stalled.durationSeconds - 1)
        // Every check's output is evidence; the token is redacted there.
        let check = try #require(stalled.triage.first?.nodes.first?.checks.first { $0.id == "journal-boot" })
        let checkLog = latest.summary.evidence + "/" + (try #require(check.log))
        let checkText = try String(contentsOfFile: checkLog, encoding: .utf8)
        #expect(checkText.contains("account is locked"))
        #expect(!checkText.contains(token) && checkText.contains("[redacted:HCLOUD_TOKEN]"))
        // The rke2-only check did not run on k3s scenarios.
        #expect(stalled.triage.first?.nodes.first?.checks.contains { $0.id == "rke2-config-dir" } == false)

        let markdown = try String(contentsOfFile: markdownPath, encoding: .utf8)
        #expect(markdown.contains("fix path: Leap Micro snapshot locks root"))
        #expect(markdown.contains("firewall source mismatch"))
        #expect(FileManager.default.fileExists(atPath: workflow.paths.results + "/junit-\(latest.summary.runID).xml"))
        #expect(lines.text.withLock { $0 }.joined().contains("silent for"))
        #expect(inventory.calls.contains("servers cluster=khv3-s3-leapmicro-stall"))
        // Nothing of the stalled apply survives its deadline (its whole group was killed).
        #expect(ProcTable.matching("sleep 30").isEmpty)
        _ = sshd
    }

    @Test("bad input is refused before anything runs")
    func badInput() async throws {
        let dir = TemporaryDirectory("kh-matrix-bad")
        try dir.write("harness/scenarios_v3/s1/main.tf", "")
        let base = "stabilize:\n  module_dir: m\n  harness_dir: harness\n  scenarios: [s1, s9]\n"
        let env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin", "HOME": dir.path]
        let inventory = FakeInventory(failAccess: "connection refused")
        var services = StabilizeServices.live
        services.inventory = InventoryFactory { _, _, _ in inventory }
        func workflow(_ yaml: String, env: [String: String]) throws -> StabilizeWorkflow {
            let (context, _) = try Self.context(dir, config: yaml, environment: env)
            return StabilizeWorkflow(context: context, config: try context.section("stabilize", as: StabilizeConfig.self), services: services)
        }
        var w = try workflow(base, env: env)
        var error = await #expect(throws: KhError.self) { try await w.preflight([.scenarios], scenarios: ["s1", "s9"]) }
        #expect(error?.message.contains("scenario s9") == true && error?.exitCode == .usage)
        #expect(throws: KhError.self) { try w.selectScenarios("s1,s7") }
        #expect(try w.selectScenarios("s9, s1") == ["s1", "s9"])
        w = try workflow(base + "  terraform: no-such-terraform\n", env: env)
        error = await #expect(throws: KhError.self) { try await w.preflight([.terraform]) }
        #expect(error?.exitCode == .blocked)
        w = try workflow(base, env: env)
        error = await #expect(throws: KhError.self) { try await w.preflight([.sshKey]) }
        #expect(error?.message.contains("stabilize.ssh.key") == true)
        error = await #expect(throws: KhError.self) { try await w.preflight([.api]) }
        #expect(error?.message.contains("HCLOUD_TOKEN") == true && error?.exitCode == .blocked)
        w = try workflow(base, env: env.merging(["HCLOUD_TOKEN": "abcdefgh-token"]) { $1 })
        error = await #expect(throws: KhError.self) { try await w.preflight([.api]) }
        #expect(error?.exitCode == .external && error?.message.contains("connection refused") == true)
        #expect(inventory.calls == ["checkAccess"])
    }
}
