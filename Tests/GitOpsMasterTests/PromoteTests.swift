import Foundation
import KhCore
import KhKube
import KhProcess
import KhTestSupport
import Testing

@testable import GitOpsMaster

/// Promotion through the Kargo API emulation (REST on 1.9, Connect on 1.6), which
/// creates the Promotion in the kube emulator; a task plays Kargo's and Argo CD's
/// controllers by writing status as they would.
@Suite("kh gitops promote: P1 checks, Kargo REST and Connect, --wait", .serialized)
struct PromoteTests {
    static let f1 = "0f3a2c9d1b7e4f6a8c5d2e1f0a9b8c7d6e5f4a3b"
    static let f2 = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
    typealias P = Pipeline

    /// warehouse → test (direct) → uat; f1 verified in test, f2 not.
    static func seed(_ p: Pipeline) async throws {
        try await p.upsert([
            p.warehouse(),
            p.freight(Self.f1, alias: "wonky-wombat", verifiedIn: ["test"]),
            p.freight(Self.f2, alias: "brave-badger"),
            p.stage("test", apps: ["web-test"], conditions: P.verified, freightHistory: p.history(Self.f1)),
            p.stage("uat", upstream: ["test"], apps: ["web-uat"], conditions: [P.condition("Ready", "False", "NoFreight")]),
            p.app("web-test", reconciledAt: P.ago(30)), p.app("web-uat", reconciledAt: P.ago(30)),
        ])
    }

    /// Plays the controllers: promotion Running → `final`; on success Argo CD syncs the app and Kargo verifies the stage.
    static func drive(_ p: Pipeline, stage: String, app: String, final: String, message: String? = nil) async throws {
        let ns = p.ns
        let promotion = try await waitForPromotion(p, stage: stage)
        try await p.kubectl.patch(Promotion.resource, name: promotion, namespace: ns, #"{"status":{"phase":"Running"}}"#, subresource: "status")
        try await Task.sleep(for: .milliseconds(600))
        let finished = Timestamp.iso8601(Date())
        let status: JSONValue = ["status": ["phase": .string(final), "message": .string(message ?? ""), "finishedAt": .string(finished)]]
        try await p.kubectl.patch(
            Promotion.resource, name: promotion, namespace: ns, String(decoding: try KhJSON.encoder().encode(status), as: UTF8.self),
            subresource: "status")
        guard final == "Succeeded" else { return }
        // Argo CD syncs (Applications have no status subresource: their status is patched like any field).
        let synced = p.app(app, opPhase: "Succeeded", finishedAt: finished, reconciledAt: Timestamp.iso8601(Date().addingTimeInterval(1)))
        let patch: JSONValue = ["status": synced["status"]!]
        try await p.kubectl.patch(
            ArgoApplication.resource, name: app, namespace: p.env.argocdNamespace, String(decoding: try KhJSON.encoder().encode(patch), as: UTF8.self)
        )
        try await Task.sleep(for: .milliseconds(600))
        try await p.upsert([
            p.stage(
                stage, upstream: ["test"], apps: [app], conditions: P.verified,
                lastPromotion: ["name": .string(promotion), "status": ["phase": "Succeeded"]], freightHistory: p.history(Self.f1))
        ])
    }

    static func waitForPromotion(_ p: Pipeline, stage: String) async throws -> String {
        for _ in 0..<100 {
            if let found = try await p.kubectl.list(Promotion.self, in: .named(p.ns), labelSelector: "kargo.akuity.io/stage=\(stage)").first {
                return found.metadata.name
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw KhError.failed("no promotion for \(stage) appeared")
    }

    @Test("REST on Kargo 1.9: pre-checks pass, the promotion is created by the API, --wait follows it to Succeeded and Verified")
    func restSucceeded() async throws {
        let p = try await Pipeline()
        try await Self.seed(p)
        let kargo = try await KargoEmulator(version: "v1.9.0", testbed: p.testbed)
        let cluster = p.cluster()
        let report = try await Promoter.precheck(cluster: cluster, stage: "uat", selector: .latest)
        #expect(!report.blocked && report.freight == Self.f1, "\(report.checks)")
        let api = kargo.api()
        let (channel, version) = try await api.negotiate()
        #expect(channel == .rest && version == "v1.9.0")
        let promotion = try await api.promote(project: p.env.kargoProject, stage: "uat", freight: Self.f1, alias: nil, channel: channel)
        #expect(PromotionNames.isGenerated(promotion.metadata.name, stage: "uat"))
        #expect(promotion.spec?.freight == Self.f1 && promotion.metadata.namespace == p.ns)
        let controller = Task { try await Self.drive(p, stage: "uat", app: "web-uat", final: "Succeeded") }
        let outcome = try await Promoter.wait(
            cluster: cluster, promotion: promotion.metadata.name, stage: "uat", freight: Self.f1, timeout: .seconds(30), interval: .milliseconds(200),
            clock: .live, progress: { _ in })
        try await controller.value
        #expect(outcome.succeeded, "\(outcome)")
        #expect(outcome.timeline.contains { $0.contains("promotion \(promotion.metadata.name): Succeeded") })
        #expect(outcome.timeline.contains { $0.contains("web-uat=Synced+Healthy") })
    }

    @Test("Connect on Kargo 1.6 by alias; a Failed and an Errored promotion end the wait without success")
    func connectFailedAndErrored() async throws {
        let p = try await Pipeline()
        try await Self.seed(p)
        let kargo = try await KargoEmulator(version: "v1.6.2", testbed: p.testbed)
        let api = kargo.api()
        let (channel, version) = try await api.negotiate()
        #expect(channel == .connect && version == "v1.6.2")
        let cluster = p.cluster()
        for final in ["Failed", "Errored"] {
            let promotion = try await api.promote(project: p.env.kargoProject, stage: "uat", freight: nil, alias: "wonky-wombat", channel: .connect)
            #expect(promotion.spec?.freight == Self.f1)
            let controller = Task {
                let ns = p.ns
                try await p.kubectl.patch(
                    Promotion.resource, name: promotion.metadata.name, namespace: ns,
                    #"{"status":{"phase":"\#(final)","message":"step argocd-update: sync failed"}}"#, subresource: "status")
            }
            let outcome = try await Promoter.wait(
                cluster: cluster, promotion: promotion.metadata.name, stage: "uat", freight: Self.f1, timeout: .seconds(20),
                interval: .milliseconds(200),
                clock: .live, progress: { _ in })
            try await controller.value
            #expect(!outcome.succeeded && outcome.promotionPhase == final && outcome.failure?.contains("sync failed") == true, "\(outcome)")
        }
    }

    @Test("Kargo's refusals: freight not available to the stage (400), unknown alias (404), a wrong token (401), on both APIs")
    func apiErrors() async throws {
        let p = try await Pipeline()
        try await Self.seed(p)
        for (version, channel) in [("v1.9.0", PromotionChannel.rest), ("v1.5.0", .connect)] {
            let kargo = try await KargoEmulator(version: version, testbed: p.testbed)
            let api = kargo.api()
            let unavailable = await #expect(throws: KargoAPIError.self) {
                _ = try await api.promote(project: p.env.kargoProject, stage: "uat", freight: Self.f2, alias: nil, channel: channel)
            }
            #expect(
                unavailable?.status == 400 && unavailable?.detail.contains("is not available to Stage \"uat\"") == true,
                "\(String(describing: unavailable))")
            let missing = await #expect(throws: KargoAPIError.self) {
                _ = try await api.promote(project: p.env.kargoProject, stage: "uat", freight: nil, alias: "no-such", channel: channel)
            }
            #expect(missing?.status == 404 && missing?.detail.contains("alias \"no-such\" not found") == true)
            let denied = await #expect(throws: KargoAPIError.self) {
                _ = try await kargo.api(token: "wrong").promote(
                    project: p.env.kargoProject, stage: "uat", freight: Self.f1, alias: nil, channel: channel)
            }
            #expect(denied?.status == 401)
            #expect(try await p.kubectl.list(Promotion.self, in: .named(p.ns)).isEmpty)
        }
    }

    @Test("DO NOT PROMOTE: a running promotion, an errored one for this freight, an unverified upstream, a syncing app")
    func doNotPromote() async throws {
        let p = try await Pipeline()
        try await Self.seed(p)
        let cluster = p.cluster()
        let unverified = try await Promoter.precheck(cluster: cluster, stage: "uat", selector: .name(Self.f2))
        #expect(unverified.blocked && unverified.checks.contains { !$0.passed && $0.rule.contains("upstream stage is NOT Verified") })
        try await p.upsert([
            p.promotion(P.generated("uat", Self.f1), stage: "uat", freight: Self.f1, phase: "Errored", message: "boom"),
            p.promotion("uat.01j9z3k4m5n6p7q8r9s0t1v2w4.9e8d7c6", stage: "uat", freight: Self.f2, phase: "Running"),
        ])
        try await p.kubectl.patch(
            ArgoApplication.resource, name: "web-uat", namespace: p.env.argocdNamespace, #"{"status":{"operationState":{"phase":"Running"}}}"#)
        let report = try await Promoter.precheck(cluster: cluster, stage: "uat", selector: .alias("wonky-wombat"))
        let failed = report.checks.filter { !$0.passed }.map(\.rule)
        #expect(failed.contains { $0.contains("Running promotion") })
        #expect(failed.contains { $0.contains("Errored promotion for this freight") })
        #expect(failed.contains { $0.contains("currently syncing") })
        #expect(!failed.contains { $0.contains("upstream") })
    }

    @Test("the kh binary: promote --wait exits 0 only on Succeeded+Verified, 1 on Failed, 3 when blocked; no Promotion is created by kubectl")
    func binary() async throws {
        let p = try await Pipeline()
        try await Self.seed(p)
        let kargo = try await KargoEmulator(version: "v1.9.0", testbed: p.testbed)
        let dir = TemporaryDirectory()
        _ = try dir.write(".gitops-config.yaml", p.env.runbookConfig.render())
        _ = try dir.write(
            "kh.yaml",
            "gitops:\n  kargo_api: {url: \"\(kargo.url.absoluteString)\"}\n  promote: {wait_timeout: 40s, poll_interval: 300ms}\n")
        var environment = p.testbed.processEnvironment
        environment["KARGO_API_TOKEN"] = kargo.token
        let runner = LocalRunner(environment: environment)
        func kh(_ args: [String]) async throws -> CommandResult {
            var command = Command(BuiltProducts.kh, ["gitops", "promote"] + args + ["--evidence-dir", dir.path + "/runs"])
            command.workingDirectory = dir.path
            return try await runner.run(command, options: RunOptions(timeout: .seconds(90)))
        }
        let controller = Task { try await Self.drive(p, stage: "uat", app: "web-uat", final: "Succeeded") }
        let ok = try await kh(["--stage", "uat", "--freight", Self.f1, "--wait", "--yes"])
        try await controller.value
        #expect(ok.exitCode == 0, "\(ok.stdoutText)\n\(ok.stderrText)")
        #expect(ok.stdoutText.contains("Succeeded; uat is Verified"))
        #expect(!ok.stdoutText.contains(kargo.token) && !ok.stderrText.contains(kargo.token))

        // Back to NoFreight; a promotion that fails exits 1.
        try await p.upsert([p.stage("uat", upstream: ["test"], apps: ["web-uat"], conditions: [P.condition("Ready", "False", "NoFreight")])])
        for promotion in try await p.kubectl.list(Promotion.self, in: .named(p.ns)) {
            try await p.kubectl.delete(Promotion.resource, name: promotion.metadata.name, namespace: p.ns)
        }
        let failing = Task { try await Self.drive(p, stage: "uat", app: "web-uat", final: "Failed", message: "step 1 failed") }
        let failed = try await kh(["--stage", "uat", "--alias", "wonky-wombat", "--wait", "--yes"])
        try await failing.value
        #expect(failed.exitCode == 1, "\(failed.stdoutText)\n\(failed.stderrText)")
        #expect(failed.stdoutText.contains("Promotion did not complete"))

        // The failed promotion for this freight now blocks (exit 3), before any API call.
        let blocked = try await kh(["--stage", "uat", "--freight", Self.f1, "--yes"])
        #expect(blocked.exitCode == 3 && blocked.stdoutText.contains("DO NOT PROMOTE"), "\(blocked.stdoutText)")
    }
}
