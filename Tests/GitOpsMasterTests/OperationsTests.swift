import Foundation
import KhCore
import KhKube
import KhProcess
import KhTestSupport
import Testing
import Yams

@testable import GitOpsMaster

/// Fix patterns change the emulated objects as the real commands would; setup's YAML
/// parses and applies; lint finds the S2 and anti-pattern problems; the environment
/// file is read exactly in the runbook's format.
@Suite("kh gitops fix, setup, lint and the environment file", .serialized)
struct OperationsTests {
    static let f1 = "0f3a2c9d1b7e4f6a8c5d2e1f0a9b8c7d6e5f4a3b"
    typealias P = Pipeline

    @Test("every D6 pattern with a command changes the emulated objects, and its verification command confirms it")
    func fixPatterns() async throws {
        let p = try await Pipeline()
        let promo = P.generated("test", Self.f1)
        try await p.upsert([
            p.warehouse(),
            p.stage("test", apps: ["web-test"], retry: false, conditions: [P.condition("Ready", "False", "ReconcileError")]),
            p.stage("prod", conditions: [P.condition("Ready", "False", "LastPromotionErrored")]),
            p.promotion(promo, stage: "test", freight: Self.f1, phase: "Errored"),
            p.promotion("manual-promo", stage: "prod", freight: Self.f1, phase: "Errored"),
            p.app("web-test"),
        ])
        try await p.kubectl.patch(
            ArgoApplication.resource, name: "web-test", namespace: p.env.argocdNamespace, #"{"operation":{"sync":{"revision":"main"}}}"#)
        let cluster = p.cluster()
        func fix(_ pattern: FixPattern, _ params: FixParameters) async throws -> FixResult {
            let plan = try await FixRunner.prepare(pattern, params, cluster: cluster)
            return try await FixRunner.apply(plan, cluster: cluster)
        }
        let now = Date()
        let refreshed = try await fix(.refreshStage, FixParameters(stage: "test", now: now))
        #expect(refreshed.verified && refreshed.plan.risk == .low)
        #expect(
            try await p.kubectl.get(Stage.self, name: "test", namespace: p.ns).metadata.annotations?["kargo.akuity.io/refresh"]
                == String(Int64(now.timeIntervalSince1970)))
        #expect(try await fix(.refreshWarehouse, FixParameters(warehouse: "platform", now: now)).verified)

        var retry = FixParameters(stage: "test")
        retry.appType = .heavy
        #expect(try await fix(.retryConfig, retry).verified)
        let step = try #require(try await p.kubectl.get(Stage.self, name: "test", namespace: p.ns).spec?.promotionTemplate?.spec?.steps?.first)
        #expect(step.retry?.timeout == "10m" && step.retry?.errorThreshold == 3)

        #expect(try await fix(.clearOperation, FixParameters(app: "web-test")).verified)
        #expect(try await p.kubectl.get(ArgoApplication.self, name: "web-test", namespace: p.env.argocdNamespace).operation == nil)

        #expect(try await fix(.stalePromotions, FixParameters(stage: "test")).verified)
        #expect(try await p.kubectl.getIfPresent(Promotion.self, name: promo, namespace: p.ns) == nil)
        #expect(try await p.kubectl.getIfPresent(Promotion.self, name: "manual-promo", namespace: p.ns) != nil)

        let role = "kargo-verification-\(p.id)"
        let rbacCluster = p.cluster { $0.verificationServiceAccount = role }
        var rbac = FixParameters()
        rbac.rbacResources = [("networking.k8s.io", "ingresses")]
        let rbacPlan = try await FixRunner.prepare(.verificationRBAC, rbac, cluster: rbacCluster)
        #expect(try await FixRunner.apply(rbacPlan, cluster: rbacCluster).verified)
        let applied = try await rbacCluster.json(["get", "clusterrole", role, "-o", "json"], as: JSONValue.self)
        #expect("\(applied["rules"] ?? .null)".contains("ingresses"))

        #expect(try await fix(.poisonedStage, FixParameters(stage: "prod")).verified)
        #expect(try await p.kubectl.getIfPresent(Stage.self, name: "prod", namespace: p.ns) == nil)
        #expect(try await fix(.nuclear, FixParameters(stage: "test")).verified)
        #expect(try await p.kubectl.list(Promotion.self, in: .named(p.ns)).isEmpty)
        #expect(try await p.kubectl.getIfPresent(Stage.self, name: "test", namespace: p.ns) == nil)

        let manual = try FixPlanner.plan(.crdOrdering, FixParameters(app: "crossplane-providers"), cluster: cluster)
        #expect(manual.commands.isEmpty && manual.manual?.contains("later stage") == true)
    }

    @Test("the kh binary: fix --dry-run shows exact commands and risk; HIGH risk without --yes is refused (exit 2)")
    func fixBinary() async throws {
        let p = try await Pipeline()
        try await p.upsert([p.stage("prod", conditions: P.verified)])
        let dir = TemporaryDirectory()
        _ = try dir.write(".gitops-config.yaml", p.env.runbookConfig.render())
        let runner = LocalRunner(environment: p.testbed.processEnvironment)
        func kh(_ args: [String]) async throws -> CommandResult {
            var command = Command(BuiltProducts.kh, ["gitops"] + args + ["--evidence-dir", dir.path + "/runs"])
            command.workingDirectory = dir.path
            return try await runner.run(command, options: RunOptions(timeout: .seconds(60)))
        }
        let dry = try await kh(["fix", "poisoned-stage", "prod", "--dry-run"])
        #expect(dry.exitCode == 0 && dry.stdoutText.contains("Risk Level: HIGH") && dry.stdoutText.contains("kubectl delete stage prod -n \(p.ns)"))
        let refused = try await kh(["fix", "poisoned-stage", "prod"])
        #expect(refused.exitCode == 2 && refused.stderrText.contains("--yes"), "\(refused.stderrText)")
        #expect(try await p.kubectl.getIfPresent(Stage.self, name: "prod", namespace: p.ns) != nil)
        let diagnose = try await kh(["diagnose", "prod", "--output", "json"])
        #expect(diagnose.exitCode == 0)
        let decoded = try JSONDecoder().decode([Diagnosis].self, from: diagnose.stdout)
        #expect(decoded.first?.fine == true)
    }

    @Test("setup stage writes YAML that parses, applies to the emulated API, and lints clean")
    func setupAppliesAndLints() async throws {
        let p = try await Pipeline()
        var env = p.env
        env.warehouse = "platform"
        let docs = Scaffold.documents(
            Scaffold.Request(
                stage: "monitoring", upstream: ["operators"], apps: ["kube-prometheus-stack"], appType: .heavy,
                appNamespace: p.env.monitoringNamespace),
            env: env, serviceAccount: "kargo-verification-\(p.id)")
        let dir = TemporaryDirectory()
        for (name, yaml) in docs {
            var count = 0
            for _ in try Yams.load_all(yaml: yaml) { count += 1 }
            #expect(count >= 1)
            _ = try dir.write(name, yaml)
            try await p.kubectl.apply(yaml: yaml)
        }
        let stage = try await p.kubectl.get(Stage.self, name: "monitoring", namespace: p.ns)
        let retry = stage.spec?.promotionTemplate?.spec?.steps?.first?.retry
        #expect(retry?.timeout == "10m" && retry?.errorThreshold == 3)
        #expect(stage.upstreamStages == ["operators"] && stage.argocdApps.map(\.name) == ["kube-prometheus-stack"])
        #expect(
            try await p.kubectl.get(AnalysisTemplate.self, name: "monitoring-health", namespace: p.ns).spec?.metrics?.first?.name == "pods-running")
        let findings = Linter.lint(try Linter.load(directory: dir.path), foundation: "foundation", serviceAccount: "kargo-verification-\(p.id)")
        #expect(findings.filter { $0.severity == .fail }.isEmpty, "\(findings)")
    }

    @Test("lint finds missing retry, missing authorized-stage, auto-sync on a Kargo stage and kubectl-made promotions")
    func lintFindings() throws {
        let dir = TemporaryDirectory()
        _ = try dir.write(
            "pipeline.yaml",
            """
            apiVersion: kargo.akuity.io/v1alpha1
            kind: Stage
            metadata: {name: platform, namespace: kargo-x}
            spec:
              requestedFreight: [{origin: {kind: Warehouse, name: w}, sources: {stages: [monitoring]}}]
              promotionTemplate:
                spec:
                  steps:
                  - uses: argocd-update
                    config: {apps: [{name: db, namespace: infra}]}
            ---
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {name: db, namespace: infra}
            spec:
              syncPolicy: {automated: {prune: true, selfHeal: true}}
            ---
            apiVersion: kargo.akuity.io/v1alpha1
            kind: Promotion
            metadata: {name: retry-platform, namespace: kargo-x}
            spec: {stage: platform, freight: abc}
            """)
        let findings = Linter.lint(try Linter.load(directory: dir.path), foundation: "foundation", serviceAccount: "kargo-verification")
        let rules = findings.map(\.rule)
        #expect(rules.contains("S2.3 / anti-pattern"))
        #expect(rules.contains("S2.5 / anti-pattern"))
        #expect(rules.contains("S2.4 / anti-pattern"))
        #expect(rules.contains("anti-pattern") && findings.contains { $0.object.contains("Promotion/retry-platform") })
        #expect(rules.contains("S2.6") && rules.contains("S2.7"))
    }

    @Test(".gitops-config.yaml: the runbook's ten keys; an unknown key names file, line and key; nothing found is exit 2 with the template")
    func environmentFile() throws {
        let text = """
            ssh_command: "MISE_ENV=test mise run server:ssh"   # How to reach the cluster
            kargo_namespace: "kargo-my-project-test"
            kargo_controller_namespace: "kargo"
            argocd_namespace: "infra"
            argocd_controller_namespace: "argocd"
            monitoring_namespace: "monitoring"
            app_namespace: "my-app-test"
            domain: "example.com"
            kargo_project: "my-project"
            warehouse_name: "platform-apps"
            """
        let file = try RunbookConfig.parse(text, path: ".gitops-config.yaml")
        let env = try EnvironmentLoader.resolve(file: file, path: ".gitops-config.yaml", discovery: nil)
        #expect(
            env.sshCommand == "MISE_ENV=test mise run server:ssh" && env.kargoNamespace == "kargo-my-project-test" && env.kargoProject == "my-project"
        )
        #expect(env.domain == "example.com" && env.warehouse == "platform-apps" && env.appNamespace == "my-app-test")
        #expect(try RunbookConfig.parse(file.render(), path: "x") == file)
        let bad = #expect(throws: ConfigError.self) {
            _ = try RunbookConfig.parse("kargo_namespace: a\nargocd_namepsace: b\n", path: "/w/.gitops-config.yaml")
        }
        #expect(bad?.line == 2 && bad?.field == "argocd_namepsace" && bad?.problem.contains("argocd_namespace") == true, "\(String(describing: bad))")
        let list = #expect(throws: ConfigError.self) { _ = try RunbookConfig.parse("domain: [a, b]\n", path: "f") }
        #expect(list?.problem.contains("expected a string") == true)
        let missing = #expect(throws: EnvironmentError.self) {
            _ = try EnvironmentLoader.resolve(file: nil, path: "/w/.gitops-config.yaml", discovery: DiscoveryReport())
        }
        #expect(missing?.exitCode == .usage && missing?.hint?.contains("I need your cluster details to proceed:") == true)
        // Discovery: the Kargo namespace is where the stages are; the project defaults to it.
        var found = DiscoveryReport()
        found.stages = ["kargo-a/test", "kargo-b/x", "kargo-a/prod"]
        found.argocdNamespace = "infra"
        found.warehouses = ["platform"]
        let discovered = try EnvironmentLoader.resolve(file: nil, path: "f", discovery: found)
        #expect(discovered.kargoNamespace == "kargo-a" && discovered.kargoProject == "kargo-a" && discovered.warehouse == "platform")
        #expect(
            discovered.kargoControllerNamespace == "kargo" && discovered.argocdControllerNamespace == "argocd" && discovered.source == "discovered")
    }

    @Test(
        "discover against the emulated API through the ssh_command prefix (a local wrapper), and the kh binary exits 2 with the template when nothing is found"
    )
    func discovery() async throws {
        let p = try await Pipeline()
        try await p.upsert([
            ["apiVersion": "kargo.akuity.io/v1alpha1", "kind": "Project", "metadata": ["name": .string(p.ns)]],
            p.warehouse(), p.stage("test", conditions: P.verified), p.app("web"),
        ])
        let dir = TemporaryDirectory()
        let wrapper = try dir.write("remote", "#!/bin/sh\nexec /bin/sh -c \"$1\"\n", executable: true)
        let kubectl = Connection.kubectl(
            config: GitOpsConfig(), sshCommand: wrapper, runner: LocalRunner(environment: p.testbed.processEnvironment), redactor: nil)
        let report = await EnvironmentLoader.discover(kubectl: kubectl, sshCommand: wrapper)
        #expect(report.projects.contains(p.ns) && report.stages.contains("\(p.ns)/test") && report.directKubectl)
        #expect(report.argocdNamespace != nil)

        // Nothing reachable: the template, exit 2.
        var environment = p.testbed.processEnvironment
        environment["KUBECONFIG"] = dir.path + "/nothing"
        var command = Command(BuiltProducts.kh, ["gitops", "status", "--evidence-dir", dir.path + "/runs"])
        command.workingDirectory = dir.path
        let result = try await LocalRunner(environment: environment).run(command, options: RunOptions(timeout: .seconds(60)))
        #expect(result.exitCode == 2, "\(result.stderrText)")
        #expect(result.stderrText.contains("I need your cluster details to proceed:"))
    }

    @Test("status: the chain warehouse → stages in dependency order with conditions, freight, last promotion and apps; discover --write")
    func statusChain() async throws {
        let p = try await Pipeline()
        let promo = P.generated("test", Self.f1)
        try await p.upsert([
            p.warehouse(), p.freight(Self.f1, alias: "wonky-wombat", verifiedIn: ["test"]),
            p.stage("prod", upstream: ["uat"], apps: ["web-prod"], conditions: [P.condition("Ready", "False", "NoFreight")]),
            p.stage("uat", upstream: ["test"], apps: ["web-uat"], conditions: [P.condition("Promoting", "True", "ActivePromotion")]),
            p.stage(
                "test", apps: ["web-test"], conditions: P.verified, lastPromotion: ["name": .string(promo), "status": ["phase": "Succeeded"]],
                freightHistory: p.history(Self.f1)),
            p.app("web-test", reconciledAt: P.ago(10)), p.app("web-uat", sync: "OutOfSync", health: "Progressing"),
        ])
        let snapshot = await Gatherer.gather(p.cluster())
        let status = PipelineStatus.build(snapshot, environment: p.env)
        #expect(status.stages.map(\.name) == ["test", "uat", "prod"] && status.stages.map(\.depth) == [0, 1, 2])
        #expect(status.warehouses == ["platform"])
        let test = status.stages[0]
        #expect(test.verified == "True (Verified)" && test.currentFreight == "wonky-wombat" && test.lastPromotion == promo)
        #expect(test.apps == [AppStatus(name: "web-test", sync: "Synced", health: "Healthy", healthFresh: true, operation: nil)])
        #expect(status.stages[1].phase == "Promoting" && status.stages[1].apps.first?.sync == "OutOfSync")
        #expect(status.stages[2].phase == "NotApplicable" && status.stages[2].apps.first?.sync == "Missing")
        let text = status.render()
        #expect(text.contains("Warehouse platform") && text.contains("└─ uat (from test) Promoting"))

        // discover --write: the runbook's file, written atomically, read back the same.
        let dir = TemporaryDirectory()
        _ = try await p.kubectl.run(["get", "ns"])
        var environment = p.testbed.processEnvironment
        environment["KH_EVIDENCE_DIR"] = dir.path + "/runs"
        var command = Command(BuiltProducts.kh, ["gitops", "discover", "--write"])
        command.workingDirectory = dir.path
        let result = try await LocalRunner(environment: environment).run(command, options: RunOptions(timeout: .seconds(60)))
        #expect(result.exitCode == 0, "\(result.stderrText)")
        let written = try RunbookConfig.parse(try dir.read(".gitops-config.yaml"), path: ".gitops-config.yaml")
        #expect(written.kargoNamespace != nil && written.argocdNamespace != nil && written.kargoControllerNamespace == "kargo")
        var again = Command(BuiltProducts.kh, ["gitops", "discover", "--write"])
        again.workingDirectory = dir.path
        let refused = try await LocalRunner(environment: environment).run(again, options: RunOptions(timeout: .seconds(60)))
        #expect(refused.exitCode == 2 && refused.stderrText.contains("--force"))
    }
}
