import Foundation
import KhCore
import KhKube
import KhProcess
import KhTestSupport
import Testing

@testable import GitOpsMaster

/// The D4 decision tree and the D5 gotchas, one fixture per branch and per gotcha,
/// against the emulated Kubernetes API with real kubectl. Each test has namespaces of
/// its own.
@Suite("kh gitops diagnose: decision tree and gotchas against the emulated API", .serialized)
struct DiagnoseTests {
    static let f1 = "0f3a2c9d1b7e4f6a8c5d2e1f0a9b8c7d6e5f4a3b"
    static let f2 = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
    typealias P = Pipeline

    @Test("a Verified stage is fine, the D7 block is exact, and the old status.phase is read", arguments: ["kubectl", "alt"])
    func verifiedStageIsFine(client: String) async throws {
        let executable = client == "alt" ? try Testbed.load().require("KH_TESTBED_KUBECTL_ALT") : client
        let p = try await Pipeline(kubectl: executable)
        try await p.upsert([
            p.stage(
                "prod", apps: ["web-prod"], conditions: P.verified,
                lastPromotion: ["name": .string(P.generated("prod", Self.f1)), "status": ["phase": "Succeeded"]], freightHistory: p.history(Self.f1)),
            p.stage("legacy", apps: [], conditions: [], phase: "Verified"),
            p.app("web-prod", reconciledAt: P.ago(60)),
        ])
        let d = try await p.diagnose("prod")
        #expect(d.fine && d.branch == "fine" && d.phase == "Verified")
        let text = Report.diagnosis(d)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(Array(lines.prefix(5)) == ["DIAGNOSIS", "=========", "Stage: prod", "Phase: Verified", "Health: Healthy, apps 1/1 Synced+Healthy"])
        #expect(
            lines[5] == "" && lines[6].hasPrefix("Root Cause: Stage is fine")
                && lines[7].hasPrefix("Evidence: kubectl get stages -n \(p.ns) -o wide: prod Ready=True"))
        #expect(lines.contains("Recommended Fix:") && lines.contains("Risk Level: LOW"))
        #expect(
            Array(lines.suffix(4)) == [
                "  LOW = Safe to apply, easily reversible", "  MEDIUM = Requires careful execution, may cause brief disruption",
                "  HIGH = Nuclear option, will cause temporary pipeline disruption", "",
            ])
        let legacy = try await p.diagnose("legacy")
        #expect(legacy.fine && legacy.phase == "Verified")
    }

    @Test("LastPromotionErrored with a hand-named lastPromotion: delete the Stage CR (HIGH)")
    func manualPromotion() async throws {
        let p = try await Pipeline()
        try await p.upsert([
            p.stage(
                "test", apps: ["web-test"], conditions: [P.condition("Ready", "False", "LastPromotionErrored", "sync tasks failed")],
                lastPromotion: ["name": "manual-promo", "status": ["phase": "Errored", "message": "sync tasks failed"]]),
            p.promotion("manual-promo", stage: "test", freight: Self.f1, phase: "Errored", message: "sync tasks failed"),
            p.app("web-test"),
        ])
        let d = try await p.diagnose("test")
        #expect(d.branch == "LastPromotionErrored/manual-promotion" && d.risk == .high && d.fixPattern == .poisonedStage)
        #expect(d.fix.first?.command == "kubectl delete stage test -n \(p.ns)")
        #expect(d.gotchas.contains { $0.gotcha == 1 && $0.detail.contains("manual-promo") })
        #expect(d.phase == "Failed")
        #expect(Report.diagnosis(d).contains("Risk Level: HIGH"))
    }

    @Test("LastPromotionErrored, connection refused :8081: add retry config")
    func connectionRefused() async throws {
        let p = try await Pipeline()
        let name = P.generated("monitoring", Self.f1)
        try await p.upsert([
            p.stage(
                "monitoring", apps: ["kube-prometheus-stack"], retry: false, conditions: [P.condition("Ready", "False", "LastPromotionErrored")],
                lastPromotion: ["name": .string(name), "status": ["phase": "Errored"]]),
            p.promotion(
                name, stage: "monitoring", freight: Self.f1, phase: "Errored",
                message: "error syncing Application: rpc error: code = Unavailable desc = dial tcp 10.0.0.5:8081: connect: connection refused"),
            p.app("kube-prometheus-stack"),
        ])
        let d = try await p.diagnose("monitoring")
        #expect(d.branch == "LastPromotionErrored/repo-server-connection-refused" && d.fixPattern == .retryConfig && d.risk == .medium)
        #expect(d.fix.first?.command?.contains(#"/retry","value":{"timeout":"10m","errorThreshold":3}"#) == true)
        // Gotcha 7: a heavy stage without retry.
        #expect(d.gotchas.contains { $0.gotcha == 7 })
    }

    @Test("LastPromotionErrored, sync tasks failed: a failing app, and a stale operationState (Gotcha 2)")
    func syncTasksFailed() async throws {
        let p = try await Pipeline()
        let name = P.generated("test", Self.f1)
        let other = P.generated("uat", Self.f1)
        try await p.upsert([
            p.stage(
                "test", apps: ["web-test"], conditions: [P.condition("Ready", "False", "LastPromotionErrored")],
                lastPromotion: ["name": .string(name), "status": ["phase": "Errored", "message": "sync tasks failed"]]),
            p.promotion(
                name, stage: "test", freight: Self.f1, phase: "Errored",
                message: "one or more synchronization tasks completed unsuccessfully (sync tasks failed)"),
            // reconciledAt before finishedAt: the failure is current.
            p.app(
                "web-test", sync: "OutOfSync", health: "Degraded", opPhase: "Failed", opMessage: "Deployment.apps \"web\" is invalid",
                finishedAt: "2024-05-01T10:03:00Z", reconciledAt: "2024-05-01T10:02:00Z"),
            p.stage(
                "uat", upstream: ["test"], apps: ["web-uat"], conditions: [P.condition("Ready", "False", "LastPromotionErrored")],
                lastPromotion: ["name": .string(other), "status": ["phase": "Errored", "message": "sync tasks failed"]]),
            p.promotion(other, stage: "uat", freight: Self.f1, phase: "Errored", message: "sync tasks failed"),
            // reconciled after the failure and healthy now: the error is stale.
            p.app("web-uat", opPhase: "Failed", opMessage: "old failure", finishedAt: "2024-05-01T07:00:00Z", reconciledAt: "2024-05-01T10:00:00Z"),
        ])
        let failing = try await p.diagnose("test")
        #expect(failing.branch == "LastPromotionErrored/sync-tasks-failed", "\(failing.branch)")
        #expect(failing.rootCause.contains("web-test") && failing.rootCause.contains("invalid"))
        #expect(failing.evidence.contains { $0.contains("jsonpath={.status.operationState.finishedAt}") && $0.contains("2024-05-01T10:03:00") })
        let stale = try await p.diagnose("uat")
        #expect(stale.branch == "LastPromotionErrored/sync-tasks-failed-stale", "\(stale.branch)")
        #expect(stale.fix.first?.command == "kh gitops promote --stage uat --freight \(Self.f1) --wait")
        #expect(stale.gotchas.contains { $0.gotcha == 2 && $0.detail.contains("web-uat") && $0.detail.contains("is later") })
    }

    @Test("LastPromotionErrored, another error: fix the root cause, push a change, refresh the warehouse")
    func otherError() async throws {
        let p = try await Pipeline()
        let name = P.generated("test", Self.f1)
        try await p.upsert([
            p.stage(
                "test", apps: ["web-test"], conditions: [P.condition("Ready", "False", "LastPromotionErrored")],
                lastPromotion: ["name": .string(name), "status": ["phase": "Errored"]]),
            p.promotion(name, stage: "test", freight: Self.f1, phase: "Errored", message: "step \"git-push\" failed: authentication required"),
            p.app("web-test"), p.warehouse(),
        ])
        let d = try await p.diagnose("test")
        #expect(d.branch == "LastPromotionErrored/other" && d.fixPattern == .refreshWarehouse && d.rootCause.contains("authentication required"))
        #expect(
            d.fix.contains { $0.command?.hasPrefix("kubectl annotate warehouse platform -n \(p.ns) --overwrite kargo.akuity.io/refresh=") == true })
    }

    @Test("NoFreight: no freight (warehouse misconfigured, Gotcha 5 after a refresh), freight never promoted, stale history")
    func noFreight() async throws {
        let p = try await Pipeline()
        let refresh = String(Int(Date().timeIntervalSince1970) - 30)
        try await p.upsert([
            p.warehouse(refresh: refresh, handled: refresh),
            p.stage("test", apps: ["web-test"], conditions: [P.condition("Ready", "False", "NoFreight", "no freight")]),
            p.app("web-test"),
        ])
        let none = try await p.diagnose("test")
        #expect(none.branch == "NoFreight/no-freight" && none.rootCause.contains("subscription is misconfigured"))
        #expect(none.evidence.contains { $0.contains("get warehouse platform") && $0.contains("git https://git.example.invalid/gitops.git@main") })
        #expect(none.gotchas.contains { $0.gotcha == 5 })

        try await p.upsert([p.freight(Self.f1, alias: "wonky-wombat", created: P.ago(3600))])
        let exists = try await p.diagnose("test")
        #expect(exists.branch == "NoFreight/freight-exists", "\(exists.branch)")
        #expect(exists.fix.first?.command == "kh gitops promote --stage test --freight \(Self.f1) --wait")

        let name = P.generated("test", Self.f2)
        try await p.upsert([
            p.stage(
                "test", apps: ["web-test"], conditions: [P.condition("Ready", "False", "NoFreight")],
                lastPromotion: ["name": "retry-by-hand", "status": ["phase": "Errored"]], freightHistory: p.history(Self.f1)),
            p.promotion(name, stage: "test", freight: Self.f2, phase: "Errored"),
        ])
        let stale = try await p.diagnose("test")
        #expect(stale.branch == "NoFreight/stale-history/manual-promotion" && stale.fixPattern == .poisonedStage, "\(stale.branch)")
    }

    @Test("VerificationFailed: RBAC forbidden in job logs (Gotcha 4), HTTP check, pod check, no AnalysisRun")
    func verificationFailed() async throws {
        let p = try await Pipeline()
        let failedVerification = [
            P.condition("Ready", "False", "VerificationFailed"), P.condition("Healthy", "True", "Healthy"),
            P.condition("Verified", "False", "VerificationFailed"),
        ]
        try await p.upsert([
            p.stage("prod", apps: ["web-prod"], verification: ["prod-health"], conditions: failedVerification, freightHistory: p.history(Self.f1)),
            p.app("web-prod"),
            p.analysisRun("prod.run1", stage: "prod", phase: "Failed", job: "verify-prod-1"),
        ])
        try await p.verificationJob(
            "verify-prod-1",
            log:
                "checking ingress\nError from server (Forbidden): ingresses.networking.k8s.io is forbidden: User \"system:serviceaccount:\(p.ns):kargo-verification\" cannot list resource \"ingresses\" in API group \"networking.k8s.io\" in the namespace \"web\"\n"
        )
        let rbac = try await p.diagnose("prod")
        #expect(rbac.branch == "VerificationFailed/rbac-forbidden" && rbac.fixPattern == .verificationRBAC, "\(rbac.branch)")
        #expect(rbac.evidence.contains { $0.hasPrefix("kubectl logs job/verify-prod-1 -n \(p.ns): ") && $0.contains("forbidden") })
        #expect(rbac.gotchas.contains { $0.gotcha == 4 })
        #expect(rbac.fix.contains { $0.action.contains("--resource ingresses.networking.k8s.io") })

        try await p.upsert([p.analysisRun("prod.run2", stage: "prod", phase: "Failed", job: "verify-prod-2")])
        try await p.verificationJob("verify-prod-2", log: "curl: (22) The requested URL returned error: 502 https://web.example.invalid/healthz\n")
        let http = try await p.diagnose("prod")
        #expect(http.branch == "VerificationFailed/http-check", "\(http.branch)")

        try await p.upsert([p.analysisRun("prod.run3", stage: "prod", phase: "Failed", job: "verify-prod-3")])
        try await p.verificationJob("verify-prod-3", log: "web-7d9f Pending\n1 pod not Running\n")
        let pods = try await p.diagnose("prod")
        #expect(pods.branch == "VerificationFailed/pod-check" && pods.rootCause.contains("1 pod not Running"), "\(pods.branch)")

        try await p.upsert([p.stage("uat", apps: ["web-prod"], verification: ["uat-health"], conditions: failedVerification)])
        let none = try await p.diagnose("uat")
        #expect(none.branch == "VerificationFailed/no-analysisrun" && none.rootCause.contains("uat-health"))
    }

    @Test("ReconcileError: force a stage refresh (LOW)")
    func reconcileError() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("test", conditions: [P.condition("Ready", "False", "ReconcileError", "conflict")])])
        let d = try await p.diagnose("test")
        #expect(d.branch == "ReconcileError" && d.fixPattern == .refreshStage && d.risk == .low)
        #expect(d.fix.first?.command?.hasPrefix("kubectl annotate stage test -n \(p.ns) --overwrite kargo.akuity.io/refresh=") == true)
    }

    @Test("ActivePromotion: running for 3 minutes (wait) and for 40 minutes (likely stuck: controller logs decide)")
    func activePromotion() async throws {
        let p = try await Pipeline()
        let now = Date()
        let young = P.generated("test", Self.f1)
        let old = P.generated("uat", Self.f1)
        try await p.upsert([
            p.stage(
                "test",
                conditions: [
                    P.condition("Promoting", "True", "ActivePromotion", at: P.ago(180, from: now)), P.condition("Ready", "False", "ActivePromotion"),
                ],
                currentPromotion: ["name": .string(young)]),
            p.promotion(young, stage: "test", freight: Self.f1, phase: "Running", created: P.ago(180, from: now)),
            p.stage(
                "uat", upstream: ["test"], conditions: [P.condition("Promoting", "True", "ActivePromotion", at: P.ago(2400, from: now))],
                currentPromotion: ["name": .string(old)]),
            p.promotion(old, stage: "uat", freight: Self.f1, phase: "Running", created: P.ago(2400, from: now)),
        ])
        try await p.controller(
            log: "level=info msg=\"reconciling\" stage=test\nlevel=error msg=\"Promotion already exists for Freight\" stage=uat freight=\(Self.f1)\n")
        let running = try await p.diagnose("test", now: now)
        #expect(running.branch == "ActivePromotion/running" && running.risk == .low)
        let stuck = try await p.diagnose("uat", now: now)
        #expect(stuck.branch == "controller-log/promotion-already-exists", "\(stuck.branch)")
        #expect(
            stuck.fixPattern == .stalePromotions
                && stuck.fix.first?.command == "kubectl delete promotions -n \(p.ns) -l kargo.akuity.io/freight=\(Self.f1)")
        #expect(stuck.evidence.contains { $0.contains("(40 min)") })
    }

    @Test("controller logs: needs verification, health gate, error reconciling Stage")
    func controllerLogs() async throws {
        let p = try await Pipeline()
        try await p.upsert([
            p.stage("a", apps: ["web-a"], conditions: [P.condition("Ready", "False", "Mystery")]),
            p.stage("b", apps: ["web-b"], conditions: [P.condition("Ready", "False", "Mystery")]),
            p.stage("c", conditions: [P.condition("Ready", "False", "Mystery")]),
            p.app("web-a"), p.app("web-b", health: "Degraded"),
            p.analysisRun("a.run", stage: "a", phase: "Failed", job: "verify-a"),
        ])
        try await p.verificationJob("verify-a", log: "pods are not Running\n")
        try await p.controller(
            log: """
                level=info msg="current Freight needs to be verified" stage=a
                level=info msg="Stage has not passed health checks" stage=b
                level=error msg="error reconciling Stage" stage=c error="Operation cannot be fulfilled"
                """)
        #expect(try await p.diagnose("a").branch == "controller-log/needs-verification")
        let b = try await p.diagnose("b")
        #expect(b.branch == "controller-log/health-gate" && b.rootCause.contains("web-b (Degraded)"))
        let c = try await p.diagnose("c")
        #expect(c.branch == "controller-log/error-reconciling" && c.rootCause.contains("Operation cannot be fulfilled"))
    }

    @Test("gotchas: 10-second health delay, selfHeal delay, foundation managed by Kargo")
    func otherGotchas() async throws {
        let p = try await Pipeline()
        let now = Date()
        try await p.upsert([
            p.stage(
                "operators", apps: ["eso"], conditions: [P.condition("Ready", "False", "Unhealthy"), P.condition("Healthy", "Unknown", "Pending")]),
            p.app("eso", opPhase: "Succeeded", finishedAt: P.ago(4, from: now), reconciledAt: P.ago(1, from: now)),
            p.stage(
                "platform", apps: ["db"], conditions: [P.condition("Ready", "False", "Unhealthy"), P.condition("Healthy", "False", "Unhealthy")]),
            p.app("db", sync: "OutOfSync", health: "Missing", selfHeal: true),
            p.stage("foundation", apps: ["argocd", "kargo"], conditions: P.verified),
            p.app("argocd"), p.app("kargo"),
        ])
        #expect(try await p.diagnose("operators", now: now).gotchas.contains { $0.gotcha == 3 })
        #expect(try await p.diagnose("platform", now: now).gotchas.contains { $0.gotcha == 6 })
        #expect(try await p.diagnose("foundation", now: now).gotchas.contains { $0.gotcha == 8 })
    }

    @Test("D1 goes straight to the API server (kh's own client from the kubeconfig): every group answers")
    func direct() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("test", apps: ["web"], conditions: P.verified), p.app("web")])
        try await p.controller(log: "level=info msg=\"reconciling\"\n")
        let snapshot = await Gatherer.gather(p.cluster())
        let names = snapshot.groups.map { $0.name }
        #expect(names == ["0-api-direct", "1-kargo-state", "2-argocd-state", "3-controller-health", "4-recent-events", "5-controller-logs"])
        #expect(snapshot.readPath == ReadPath(used: .apiDirect, notUsed: []))
        #expect(snapshot.groups[0].commands.first?.contains("context kh-testbed, user kh-testbed, token") == true, "\(snapshot.groups[0])")
        #expect(snapshot.groups[1].commands.allSatisfy { $0.hasPrefix("GET /api") && !$0.contains("proxy") }, "\(snapshot.groups[1])")
        let failed = snapshot.groups.filter { !$0.ok }
        #expect(failed.isEmpty, "groups failed: \(failed)")
        #expect(snapshot.stages.map { $0.metadata.name } == ["test"] && snapshot.apps.map { $0.metadata.name } == ["web"])
        #expect(snapshot.kargoPods.count == 1 && snapshot.controllerLog?.contains("reconciling") == true)
    }

    @Test("the three ways of reading D1 give the same D7 block and JSON")
    func samePerPath() async throws {
        let p = try await Pipeline()
        let now = Date()
        try await p.upsert([
            p.stage("test", apps: ["web"], conditions: [P.condition("Ready", "False", "ReconcileError", "error reconciling")]),
            p.app("web", sync: "OutOfSync", health: "Degraded"),
        ])
        try await p.controller(log: "level=error msg=\"error reconciling Stage\" stage=test\n")
        var outputs: [ReadPath.Way: String] = [:]
        let configs: [(ReadPath.Way, (inout GitOpsConfig) -> Void)] = [
            (.apiDirect, { _ in }), (.kubectlProxy, { $0.apiDirect = false }),
            (
                .kubectl,
                {
                    $0.apiDirect = false
                    $0.apiProxy = false
                }
            ),
        ]
        for (way, configure) in configs {
            let cluster = p.cluster(configure)
            let snapshot = await Gatherer.gather(cluster)
            #expect(snapshot.readPath.used == way, "\(snapshot.readPath)")
            let diagnoses = try Diagnoser(cluster: cluster, snapshot: snapshot, now: now).diagnoseAll()
            outputs[way] =
                diagnoses.map(Report.diagnosis).joined(separator: "\n") + String(decoding: try KhJSON.encoder().encode(diagnoses), as: UTF8.self)
        }
        #expect(outputs[.apiDirect]?.contains("DIAGNOSIS") == true)
        #expect(outputs[.apiDirect] == outputs[.kubectlProxy] && outputs[.kubectlProxy] == outputs[.kubectl], "\(outputs)")
    }

    @Test("a kubeconfig user kh cannot use itself (exec plugin): D1 goes through kubectl proxy and the evidence says why")
    func execUserFallsBackToProxy() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("test", conditions: P.verified)])
        let dir = TemporaryDirectory()
        let token = try String(contentsOfFile: try p.testbed.require("KH_TESTBED_KUBE_TOKEN_FILE"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // A real exec credential plugin, as kubectl runs it.
        let plugin = try dir.write(
            "credential",
            "#!/bin/sh\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\"}}' \"$(cat \(Shell.quote(try p.testbed.require("KH_TESTBED_KUBE_TOKEN_FILE"))))\"\n",
            executable: true)
        let kubeconfig = try dir.write(
            "kubeconfig",
            """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "\(p.server)", certificate-authority: "\(try p.testbed.require("KH_TESTBED_KUBE_CA"))"}}]
            users: [{name: plugin-user, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: "\(plugin)", interactiveMode: Never}}}]
            contexts: [{name: exec, context: {cluster: c, user: plugin-user}}]
            current-context: exec

            """)
        #expect(!token.isEmpty)
        var cluster = p.cluster()
        cluster.kubectl.kubeconfig = kubeconfig
        let snapshot = await Gatherer.gather(cluster)
        #expect(snapshot.readPath.used == .kubectlProxy, "\(snapshot.readPath)")
        #expect(snapshot.readPath.notUsed.count == 1)
        #expect(snapshot.readPath.notUsed.first?.contains("user \"plugin-user\": `exec` credentials") == true, "\(snapshot.readPath)")
        #expect(snapshot.groups.first?.name == "0-api-proxy" && snapshot.answered("1-kargo-state"), "\(snapshot.groups)")
        #expect(snapshot.stages.map { $0.metadata.name } == ["test"])
    }

    @Test("when no direct read reaches the server (a CA bundle OpenSSL rejects, Go skips), D1 goes through kubectl proxy")
    func directUnreachableFallsBack() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("test", conditions: P.verified)])
        let dir = TemporaryDirectory()
        // A malformed PEM block before the real CA: kubectl skips it, libcurl refuses the file.
        let bundle = try dir.write(
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\nMIIBbroken\n-----END CERTIFICATE-----\n"
                + (try String(contentsOfFile: try p.testbed.require("KH_TESTBED_KUBE_CA"), encoding: .utf8)))
        let kubeconfig = try dir.write(
            "kubeconfig",
            """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "\(p.server)", certificate-authority: "\(bundle)"}}]
            users: [{name: u, user: {tokenFile: "\(try p.testbed.require("KH_TESTBED_KUBE_TOKEN_FILE"))"}}]
            contexts: [{name: c, context: {cluster: c, user: u}}]
            current-context: c

            """)
        var cluster = p.cluster()
        cluster.kubectl.kubeconfig = kubeconfig
        let snapshot = await Gatherer.gather(cluster)
        #expect(snapshot.readPath.used == .kubectlProxy, "\(snapshot.readPath)")
        let reason = try #require(snapshot.readPath.notUsed.first)
        #expect(reason.hasPrefix("api-direct: every D1 group failed to reach the server") && reason.contains("TLS"), "\(reason)")
        #expect(snapshot.groups.first?.name == "0-api-proxy" && snapshot.stages.map { $0.metadata.name } == ["test"], "\(snapshot.groups)")
    }

    @Test("a wrapper configured as kubectl keeps D1 off the direct path; kubectl by any path does not")
    func wrapperNotDirect() async throws {
        let p = try await Pipeline()
        func reason(_ executable: String) -> String? {
            APIDirect.unusable(Cluster(kubectl: Kubectl(executable: executable), environment: p.env, config: GitOpsConfig()))
        }
        #expect(reason("/usr/local/bin/kubectl-oidc-login")?.contains("a wrapper") == true)
        #expect(reason("kubectl") == nil)
        #expect(reason("/opt/k8s/1.31/bin/kubectl") == nil)
    }

    @Test("D1 goes through one kubectl proxy (api_direct: false): every group answers with the same data")
    func throughProxy() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("test", apps: ["web"], conditions: P.verified), p.app("web")])
        try await p.controller(log: "level=info msg=\"reconciling\"\n")
        let snapshot = await Gatherer.gather(p.cluster { $0.apiDirect = false })
        let names = snapshot.groups.map { $0.name }
        #expect(names == ["0-api-proxy", "1-kargo-state", "2-argocd-state", "3-controller-health", "4-recent-events", "5-controller-logs"])
        #expect(snapshot.readPath == ReadPath(used: .kubectlProxy, notUsed: ["api-direct: api_direct: false"]))
        let failed = snapshot.groups.filter { !$0.ok }
        #expect(failed.isEmpty, "groups failed: \(failed)")
        let stages = snapshot.stages.map { $0.metadata.name }
        let apps = snapshot.apps.map { $0.metadata.name }
        #expect(stages == ["test"] && apps == ["web"])
        #expect(snapshot.kargoPods.count == 1 && snapshot.controllerLog?.contains("reconciling") == true)
    }

    @Test("a kubectl proxy that cannot start: D1 falls back to one kubectl call per group")
    func proxyFallback() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("test", conditions: P.verified)])
        let dir = TemporaryDirectory()
        let broken = try dir.write(
            "kubectl",
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = proxy ] && { echo 'error: proxy refused' >&2; exit 1; }; done\nexec kubectl \"$@\"\n",
            executable: true)
        var cluster = p.cluster { $0.apiDirect = false }
        cluster.kubectl.executable = broken
        let snapshot = await Gatherer.gather(cluster)
        let proxy = try #require(snapshot.groups.first)
        #expect(proxy.name == "0-api-proxy" && !proxy.ok && proxy.error?.contains("proxy refused") == true, "\(proxy)")
        #expect(snapshot.readPath.used == .kubectl && snapshot.readPath.notUsed.last?.contains("proxy refused") == true, "\(snapshot.readPath)")
        let stages = snapshot.stages.map { $0.metadata.name }
        #expect(snapshot.answered("1-kargo-state") && stages == ["test"])
        #expect(snapshot.groups.first { $0.name == "1-kargo-state" }?.commands.first?.hasPrefix("kubectl get") == true)
    }

    @Test("through the proxy each group keeps its own deadline: a hung request is cut off, the others still answer")
    func proxyGroupDeadline() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("test", conditions: P.verified)])
        let dir = TemporaryDirectory()
        // A stand-in for `kubectl proxy` on the unix socket that hangs on the Deployment
        // read (the controller-logs group) and answers the rest with `kubectl get --raw`.
        let proxy = try dir.write(
            "kubectl",
            """
            #!/usr/bin/env python3
            import http.server, os, socketserver, subprocess, sys, time
            args = sys.argv[1:]
            if "proxy" not in args:
                os.execvp("kubectl", ["kubectl"] + args)
            connection = args[:args.index("proxy")]
            path = args[args.index("--unix-socket") + 1]
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    if "/deployments/" in self.path:
                        time.sleep(30)
                    out = subprocess.run(["kubectl", *connection, "get", "--raw", self.path], capture_output=True)
                    body = out.stdout if out.returncode == 0 else out.stderr
                    self.send_response(200 if out.returncode == 0 else 500)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
                daemon_threads = True
                request_queue_size = 64
            server = Server(path, Handler)
            print("Starting to serve on " + path, flush=True)
            server.serve_forever()

            """, executable: true)
        var cluster = p.cluster {
            $0.gatherTimeout = KhDuration(.seconds(3))
            $0.apiDirect = false
        }
        cluster.kubectl.executable = proxy
        let start = Date()
        let snapshot = await Gatherer.gather(cluster)
        #expect(Date().timeIntervalSince(start) < 15)
        #expect(snapshot.answered("0-api-proxy") && snapshot.answered("1-kargo-state") && snapshot.answered("2-argocd-state"), "\(snapshot.groups)")
        let stages = snapshot.stages.map { $0.metadata.name }
        #expect(stages == ["test"])
        #expect(!snapshot.answered("5-controller-logs"))
        #expect(snapshot.groups.first { $0.name == "5-controller-logs" }?.error?.contains("3") == true)
    }

    @Test("each D1 group keeps its own deadline: a stalled kubectl is cut off, the others still answer")
    func groupDeadline() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("test", conditions: P.verified)])
        let dir = TemporaryDirectory()
        // A kubectl that hangs on `logs` only.
        let slow = try dir.write(
            "kubectl", "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = logs ] && exec sleep 30; done\nexec kubectl \"$@\"\n", executable: true)
        var cluster = p.cluster {
            $0.gatherTimeout = KhDuration(.seconds(3))
            $0.apiProxy = false
            $0.apiDirect = false
        }
        cluster.kubectl.executable = slow
        let start = Date()
        let snapshot = await Gatherer.gather(cluster)
        #expect(Date().timeIntervalSince(start) < 15)
        #expect(snapshot.answered("1-kargo-state") && !snapshot.answered("5-controller-logs"))
        #expect(snapshot.groups.first { $0.name == "5-controller-logs" }?.error?.contains("3") == true)
    }
}
