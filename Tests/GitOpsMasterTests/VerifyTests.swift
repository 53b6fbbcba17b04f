import Foundation
import KhCore
import KhHTTP
import KhKube
import KhProcess
import KhTestSupport
import Testing

@testable import GitOpsMaster

/// The four verification levels against the emulated API (level 1) and a loopback HTTP
/// peer (the Kargo emulation, levels 2 and 3), stopping at the first failing level.
@Suite("kh gitops verify: four levels and the V4 report", .serialized)
struct VerifyTests {
    @Test("L1 passes on pods, CRDs and secrets; L2 fails on Prometheus targets; L3 and L4 are SKIPPED; the V4 report is exact")
    func stopsAtFirstFailure() async throws {
        let p = try await Pipeline()
        let kargo = try await KargoEmulator(version: "v1.9.0", testbed: p.testbed)
        let app = p.env.appNamespace!
        try await p.upsert(
            (1...2).map { i in
                [
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": ["name": .string("web-\(i)"), "namespace": .string(app), "labels": ["app": "web"]],
                    "spec": ["containers": [["name": "web", "image": "nginx"]]],
                    "status": ["phase": "Running", "conditions": [["type": "Ready", "status": "True"]]],
                ]
            } + [
                [
                    "apiVersion": "v1", "kind": "Secret", "metadata": ["name": "web-tls", "namespace": .string(app)], "type": "Opaque",
                    "data": ["k": "dg=="],
                ]
            ])
        var matrix = StageVerification(
            infrastructure: .init(
                pods: [.init(namespace: app, selector: "app=web", expected: 2)], crds: ["stages.kargo.akuity.io"],
                secrets: [.init(namespace: app, name: "web-tls")]),
            serviceHealth: .init(
                health: [.init(url: kargo.url.absoluteString + "/v1beta1/system/server-version", status: 401)],
                prometheus: .init(url: kargo.url.absoluteString + "/no-prometheus", minActive: 1)),
            ingressAuth: .init(ingresses: [.init(host: "web.${DOMAIN}")]),
            functional: .init(commands: [.init(name: "true", run: ["true"])]))
        let http = HTTPClient(configuration: .init(timeout: .seconds(10), retry: .none))
        let verifier = Verifier(cluster: p.cluster(), http: http, runner: LocalRunner())
        let report = await verifier.verify(stage: "web", matrix: matrix)
        #expect(report.failedLevel == 2 && report.levels.map(\.status) == [.pass, .fail, .skipped, .skipped])
        let text = Report.verification(report)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(Array(lines.prefix(3)) == ["VERIFICATION REPORT", "===================", "Stage: web"])
        #expect(lines[3].hasPrefix("Timestamp: ") && lines[4] == "")
        #expect(lines[5] == "Level 1 (Infrastructure): PASS")
        #expect(lines[6] == "  [x] Pods running: 2/2 (\(app) app=web)")
        #expect(lines[7] == "  [x] CRDs installed: stages.kargo.akuity.io")
        #expect(lines[8] == "  [x] Secrets present: \(app)/web-tls")
        #expect(lines.contains("Level 2 (Service Health): FAIL"))
        #expect(lines.contains("  [x] Health endpoints responding"))
        #expect(lines.contains { $0.hasPrefix("  [ ] Prometheus targets: 0 active") && $0.hasSuffix(" FAILED") })
        #expect(lines.contains("Level 3 (Ingress & Auth): SKIPPED") && lines.contains("Level 4 (Functional): SKIPPED"))
        #expect(lines.contains("Overall: FAIL at Level 2") && lines.contains { $0.hasPrefix("Action Required: check Prometheus") })

        // Level 1 failing: three pods expected, a secret missing; levels 2–4 skipped.
        matrix.infrastructure.pods[0].expected = 3
        matrix.infrastructure.secrets.append(.init(namespace: app, name: "db-credentials"))
        let l1 = await verifier.verify(stage: "web", matrix: matrix)
        #expect(l1.failedLevel == 1 && l1.levels.dropFirst().allSatisfy { $0.status == .skipped })
        let l1Text = Report.verification(l1)
        #expect(l1Text.contains("  [ ] Pods running: 2/3 (\(app) app=web) FAILED"))
        #expect(l1Text.contains("  [ ] Secrets present: \(app)/db-credentials FAILED"))

        // --level 1 with a passing level 1: PASS, the rest skipped.
        matrix.infrastructure.pods[0].expected = 2
        matrix.infrastructure.secrets.removeLast()
        let only = await verifier.verify(stage: "web", matrix: matrix, maxLevel: 1)
        #expect(only.overall == .pass && only.levels[1].status == .skipped)
        #expect(Report.verification(only).contains("Overall: PASS\nAction Required: None"))
    }

    @Test("L3 checks the ingress host; L4 runs functional commands and reports their exit")
    func ingressAndFunctional() async throws {
        let p = try await Pipeline()
        try await p.upsert([
            [
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": ["name": "web", "namespace": .string(p.env.appNamespace!)],
                "spec": ["rules": [["host": .string("web.\(p.env.domain!)")]]],
            ]
        ])
        let matrix = StageVerification(
            ingressAuth: .init(ingresses: [.init(host: "web.${DOMAIN}")]),
            functional: .init(commands: [.init(name: "smoke", run: ["sh", "-c", "echo broken >&2; exit 3"])]))
        let verifier = Verifier(cluster: p.cluster(), http: HTTPClient(configuration: .init(retry: .none)), runner: LocalRunner())
        let report = await verifier.verify(stage: "web", matrix: matrix)
        #expect(report.levels[0].status == .skipped && report.levels[1].status == .skipped, "unconfigured levels are skipped")
        #expect(report.levels[2].status == .pass && report.levels[2].checks.first?.text.contains("web.\(p.env.domain!)") == true)
        #expect(report.failedLevel == 4 && report.levels[3].checks.first?.text == "smoke: exit 3: broken")
    }
}
