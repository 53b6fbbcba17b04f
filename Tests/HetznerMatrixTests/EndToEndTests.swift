import Foundation
import HetznerMatrix
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// The demo harness through the built `kh` binary: the emulated Hetzner API, real
/// terraform, sshd nodes on loopback IPv4s, real git. Needs the testbed's Hetzner API
/// emulator (KH_TESTBED_HCLOUD_ENDPOINT in .testbed/env); without it the test is
/// skipped with that reason.
@Suite("kh stabilize end to end on the demo harness", .serialized)
struct EndToEndTests {
    static var hasEmulator: Bool {
        ((try? Testbed.load())?.environment["KH_TESTBED_HCLOUD_ENDPOINT"]).map { !$0.isEmpty } ?? false
    }

    @Test(
        "the loop: failure diagnosed, stall triaged, upgrade recorded, cleanup proven",
        .enabled(if: hasEmulator, "the testbed has no Hetzner API emulator (KH_TESTBED_HCLOUD_ENDPOINT): run make testbed-up"))
    func loop() async throws {
        let testbed = try Testbed.load()
        let dir = TemporaryDirectory("kh-e2e")
        let demo = URL(fileURLWithPath: dir.path + "/demo").standardizedFileURL.path
        var env = testbed.processEnvironment
        env["HCLOUD_TOKEN"] = try testbed.require("KH_TESTBED_HCLOUD_TOKEN")
        env["HCLOUD_ENDPOINT"] = try testbed.require("KH_TESTBED_HCLOUD_ENDPOINT")
        env["NO_COLOR"] = "1"
        let runner = LocalRunner(environment: env)
        let setup = try await runner.run(
            Command("bash", [BuiltProducts.repositoryRoot + "/Tools/scripts/stabilize-demo/setup.sh", demo]),
            options: RunOptions(timeout: .seconds(120)))
        #expect(setup.succeeded, "\(setup.stderrText)")
        defer { Self.stopNodes(demo) }
        let result = try await runner.run(
            Command(BuiltProducts.kh, ["stabilize", "--config", demo + "/kh.yaml", "--yes"]), options: RunOptions(timeout: .seconds(600)))
        #expect(result.exitCode == 1, "\(result.stdoutText)\n\(result.stderrText.suffix(3000))")
        #expect(result.stdoutText.contains("diagnosis: kube API unreachable from the runner"))
        #expect(result.stdoutText.contains("diagnosis: root SSH login refused: account locked"))
        #expect(!result.stdoutText.contains(env["HCLOUD_TOKEN"]!) && !result.stderrText.contains(env["HCLOUD_TOKEN"]!))

        let status = try await runner.run(
            Command(BuiltProducts.kh, ["matrix", "status", "--config", demo + "/kh.yaml", "--output", "json"]),
            options: RunOptions(timeout: .seconds(30)))
        #expect(status.exitCode == 1)
        let summary = try KhJSON.decoder().decode(StabilizeSummary.self, from: status.stdout)
        let final = Dictionary(uniqueKeysWithValues: summary.finalResults.map { ($0.name, $0) })
        #expect(final["s1-k3s-basic"]?.status == .passed && final["s2-rke2-basic"]?.status == .passed)
        #expect(final["s3-k3s-kubeapi"]?.diagnoses.map(\.id) == [KnownFailures.firewallID])
        #expect(final["s4-leapmicro-stall"]?.status == .timedOut)
        #expect(final["s4-leapmicro-stall"]?.triage.first?.trigger == "stall")
        #expect(final["s4-leapmicro-stall"]?.diagnoses.map(\.id) == [KnownFailures.rootLockedID])
        #expect(summary.passes.map(\.label) == ["full run", "targeted rerun of failures"])
        #expect(summary.gates?.allSatisfy { $0.status == .pass } == true)
        #expect(summary.snapshots?.filter(\.required).allSatisfy { !$0.found.isEmpty } == true)
        #expect(summary.upgrades?.map(\.status) == [.pass, .pass])
        #expect(summary.upgrades?.first?.adds == 1)
        #expect(summary.cleanup?.remaining == [] && summary.cleanup?.isClean == true)
        #expect(summary.filesChanged?.files == [])
        // The tag's worktree is gone again.
        #expect(!FileManager.default.fileExists(atPath: demo + "/worktrees/kube-hetzner-v1.1.0"))
        let markdown = try String(contentsOfFile: demo + "/harness/scenarios_v3/summary-\(summary.runID).md", encoding: .utf8)
        #expect(markdown.contains("confirmed: no prefixed resource is left"))
        #expect(markdown.contains("fix path: Leap Micro snapshot locks root"))
    }

    static func stopNodes(_ demo: String) {
        let nodes = (try? FileManager.default.contentsOfDirectory(atPath: demo + "/nodes")) ?? []
        for node in nodes {
            guard let text = try? String(contentsOfFile: "\(demo)/nodes/\(node)/sshd.pid", encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), ProcTable.matching("\(demo)/nodes/\(node)/").contains(pid)
            else { continue }
            kill(pid, SIGTERM)
        }
    }
}
