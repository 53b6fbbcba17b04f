import ArgumentParser
import Foundation
import KhCore
import KhKube

/// The runbook's risk levels (D7).
public enum Risk: String, Codable, Sendable, Comparable, CaseIterable {
    case low = "LOW"
    case medium = "MEDIUM"
    case high = "HIGH"

    public static func < (a: Risk, b: Risk) -> Bool { a.order < b.order }
    var order: Int {
        switch self {
        case .low: 0
        case .medium: 1
        case .high: 2
        }
    }

    /// The legend the D7 block prints under the risk level.
    public static let legend = [
        "LOW = Safe to apply, easily reversible",
        "MEDIUM = Requires careful execution, may cause brief disruption",
        "HIGH = Nuclear option, will cause temporary pipeline disruption",
    ]
}

/// The rows of the runbook's D6 table.
public enum FixPattern: String, CaseIterable, Codable, Sendable {
    case poisonedStage = "poisoned-stage"
    case stalePromotions = "stale-promotions"
    case verificationRBAC = "verification-rbac"
    case retryConfig = "retry-config"
    case refreshStage = "refresh-stage"
    case refreshWarehouse = "refresh-warehouse"
    case clearOperation = "clear-operation"
    case crdOrdering = "crd-ordering"
    case nuclear = "nuclear"

    /// The D6 "Problem" column.
    public var problem: String {
        switch self {
        case .poisonedStage: "Poisoned stage state"
        case .stalePromotions: "Stale errored promotions"
        case .verificationRBAC: "Verification RBAC"
        case .retryConfig: "Transient sync failure"
        case .refreshStage: "Force stage refresh"
        case .refreshWarehouse: "Force warehouse refresh"
        case .clearOperation: "ArgoCD app stuck syncing"
        case .crdOrdering: "CRD ordering issue"
        case .nuclear: "All else fails"
        }
    }

    /// The D6 "When to Use" column.
    public var whenToUse: String {
        switch self {
        case .poisonedStage: "lastPromotion stuck on manual/errored promotion"
        case .stalePromotions: "Auto-promotion says \"already exists for freight\""
        case .verificationRBAC: "AnalysisRun Job fails with \"forbidden\""
        case .retryConfig: "ArgoCD repo-server restarts, connection refused"
        case .refreshStage: "Stage not reconciling, stale status"
        case .refreshWarehouse: "New commits not detected as freight"
        case .clearOperation: "operationState stuck, blocking new syncs"
        case .crdOrdering: "\"no matches for kind\" errors during sync"
        case .nuclear: "Multiple overlapping issues, unclear root cause"
        }
    }

    public var risk: Risk {
        switch self {
        case .refreshStage, .refreshWarehouse: .low
        case .stalePromotions, .verificationRBAC, .retryConfig, .clearOperation, .crdOrdering: .medium
        case .poisonedStage, .nuclear: .high
        }
    }

    /// What the pattern needs: a stage, a warehouse, an app.
    public var needsStage: Bool { [.poisonedStage, .stalePromotions, .retryConfig, .refreshStage, .nuclear].contains(self) }
}

/// One command of a fix, as run and as shown.
public struct PlannedCommand: Codable, Sendable, Equatable {
    /// kubectl's arguments.
    public var arguments: [String]
    /// What a person would type.
    public var display: String
    /// A manifest applied with `-f` (shown in the dry run).
    public var manifest: String?
}

/// A fix, ready to show (dry run) or run.
public struct FixPlan: Codable, Sendable, Equatable {
    public var pattern: FixPattern
    public var problem: String
    public var whenToUse: String
    public var risk: Risk
    public var commands: [PlannedCommand]
    /// Run after the fix; its output must satisfy ``expect``.
    public var verification: PlannedCommand
    /// What the verification output must contain (empty: must be empty; nil: only exit 0).
    public var expect: Expectation
    /// A change no command can make (edit git): shown, not run.
    public var manual: String?
    public var notes: [String]

    public enum Expectation: Codable, Sendable, Equatable {
        case exitZero
        case contains(String)
        case empty
        case notContains(String)
    }
}

/// Parameters of a fix beyond the pattern.
public struct FixParameters: Sendable {
    public var stage: String?
    public var warehouse: String?
    public var app: String?
    public var freight: String?
    /// RBAC rules to add: (API group, resource).
    public var rbacResources: [(group: String, resource: String)] = []
    /// The stage object (retry-config needs its steps).
    public var stageObject: Stage?
    /// The verification ClusterRole as it is now (verification-rbac).
    public var clusterRole: JSONValue?
    /// The app type the retry values come from (S4).
    public var appType: AppType?
    public var now: Date

    public init(stage: String? = nil, warehouse: String? = nil, app: String? = nil, freight: String? = nil, now: Date = Date()) {
        self.stage = stage
        self.warehouse = warehouse
        self.app = app
        self.freight = freight
        self.now = now
    }
}

/// The runbook's S4 app-type table: retry timeout and error threshold by complexity.
public enum AppType: String, CaseIterable, Codable, Sendable {
    case simple, medium, heavy, veryHeavy = "very-heavy"

    public var timeout: String {
        switch self {
        case .simple: "3m"
        case .medium: "5m"
        case .heavy, .veryHeavy: "10m"
        }
    }

    public var errorThreshold: Int {
        switch self {
        case .simple, .medium: 2
        case .heavy, .veryHeavy: 3
        }
    }

    public var rationale: String {
        switch self {
        case .simple: "Fast sync, few resources"
        case .medium: "CRD installation takes time"
        case .heavy: "Huge chart, repo-server OOM risk"
        case .veryHeavy: "PVC binding + large statefulset"
        }
    }

    /// A guess from app names: kube-prometheus-stack is heavy, loki very heavy, ESO/Crossplane medium.
    public static func guess(apps: [String], stage: String, heavyStages: [String]) -> AppType {
        let names = apps.map { $0.lowercased() }
        if names.contains(where: { $0.contains("loki") }) { return .veryHeavy }
        if heavyStages.contains(stage) || names.contains(where: { $0.contains("prometheus") || $0.contains("monitoring") }) { return .heavy }
        if names.contains(where: { $0.contains("external-secrets") || $0.contains("eso") || $0.contains("crossplane") }) { return .medium }
        return .simple
    }
}

/// Turns a D6 row into exact commands for this environment.
public enum FixPlanner {
    /// The refresh annotation value: `$(date +%s)` at planning time.
    static func stamp(_ now: Date) -> String { String(Int64(now.timeIntervalSince1970)) }

    public static func plan(_ pattern: FixPattern, _ p: FixParameters, cluster: Cluster) throws -> FixPlan {
        let env = cluster.environment
        let ns = env.kargoNamespace
        func cmd(_ args: [String], manifest: String? = nil) -> PlannedCommand {
            PlannedCommand(arguments: args, display: cluster.display(args), manifest: manifest)
        }
        func need(_ value: String?, _ what: String) throws -> String {
            guard let value, !value.isEmpty else { throw KhError.usage("fix \(pattern.rawValue): \(what) is required") }
            return value
        }
        var notes: [String] = []
        var manual: String?
        let commands: [PlannedCommand]
        let verification: PlannedCommand
        let expect: FixPlan.Expectation
        switch pattern {
        case .poisonedStage:
            let stage = try need(p.stage, "STAGE")
            commands = [cmd(["delete", "stage", stage, "-n", ns])]
            verification = cmd(["get", "stage", stage, "-n", ns, "--ignore-not-found", "-o", "jsonpath={.status.lastPromotion.name}"])
            expect = .exitZero
            notes.append("Argo CD recreates the Stage from git; with selfHeal this can take up to 3 minutes (Gotcha 6).")
        case .stalePromotions:
            let selector: String
            if let freight = p.freight {
                selector = "kargo.akuity.io/freight=\(freight)"
            } else {
                selector = "kargo.akuity.io/stage=\(try need(p.stage, "STAGE (or --freight)"))"
            }
            commands = [cmd(["delete", "promotions", "-n", ns, "-l", selector])]
            verification = cmd(["get", "promotions", "-n", ns, "-l", selector, "-o", "name"])
            expect = .empty
        case .verificationRBAC:
            guard !p.rbacResources.isEmpty else {
                throw KhError.usage(
                    "fix verification-rbac: name the missing permissions with --resource RESOURCE[.GROUP] (from the \"forbidden\" job log)")
            }
            let name = cluster.config.verificationServiceAccount
            let manifest = try rbacManifest(name: name, existing: p.clusterRole, adding: p.rbacResources, serviceAccountNamespace: ns)
            commands = [cmd(["apply", "-f", "kargo-verification-clusterrole.yaml"], manifest: manifest)]
            verification = cmd(["get", "clusterrole", name, "-o", "jsonpath={.rules[*].resources}"])
            expect = .contains(p.rbacResources.last!.resource)
        case .retryConfig:
            let stage = try need(p.stage, "STAGE")
            guard let object = p.stageObject else { throw KhError.usage("fix retry-config: stage \(stage) not found in \(ns)") }
            let type = p.appType ?? .heavy
            let steps = object.spec?.promotionTemplate?.spec?.steps ?? []
            var ops: [String] = []
            for (index, step) in steps.enumerated() where step.uses == "argocd-update" {
                ops.append(
                    #"{"op":"add","path":"/spec/promotionTemplate/spec/steps/\#(index)/retry","value":{"timeout":"\#(type.timeout)","errorThreshold":\#(type.errorThreshold)}}"#
                )
            }
            guard !ops.isEmpty else { throw KhError.failed("fix retry-config: stage \(stage) has no argocd-update step to add retry to") }
            commands = [cmd(["patch", "stage", stage, "-n", ns, "--type", "json", "-p", "[" + ops.joined(separator: ",") + "]"])]
            verification = cmd(["get", "stage", stage, "-n", ns, "-o", "jsonpath={.spec.promotionTemplate.spec.steps[*].retry}"])
            expect = .contains(type.timeout)
            notes.append(
                "Also add `retry: {timeout: \(type.timeout), errorThreshold: \(type.errorThreshold)}` to the stage in git, or Argo CD reverts this patch."
            )
        case .refreshStage:
            let stage = try need(p.stage, "STAGE")
            let value = stamp(p.now)
            commands = [cmd(["annotate", "stage", stage, "-n", ns, "--overwrite", "kargo.akuity.io/refresh=\(value)"])]
            verification = cmd(["get", "stage", stage, "-n", ns, "-o", #"jsonpath={.metadata.annotations.kargo\.akuity\.io/refresh}"#])
            expect = .contains(value)
        case .refreshWarehouse:
            let warehouse = try need(p.warehouse ?? env.warehouse, "--warehouse (or warehouse_name in .gitops-config.yaml)")
            let value = stamp(p.now)
            commands = [cmd(["annotate", "warehouse", warehouse, "-n", ns, "--overwrite", "kargo.akuity.io/refresh=\(value)"])]
            verification = cmd(["get", "warehouse", warehouse, "-n", ns, "-o", #"jsonpath={.metadata.annotations.kargo\.akuity\.io/refresh}"#])
            expect = .contains(value)
            notes.append("An empty commit makes no freight: Kargo compares tree hashes (Gotcha 5).")
        case .clearOperation:
            let app = try need(p.app, "--app")
            commands = [cmd(["patch", "app", app, "-n", env.argocdNamespace, "--type", "merge", "-p", #"{"operation": null}"#])]
            verification = cmd(["get", "app", app, "-n", env.argocdNamespace, "-o", "jsonpath={.operation}"])
            expect = .empty
        case .crdOrdering:
            let app = p.app ?? "<app>"
            commands = []
            manual =
                "Move \(app) (the app whose sync fails with \"no matches for kind\") to a later stage in git (operators -> platform), so the CRDs it needs are installed first."
            verification = cmd(["get", "app", app, "-n", env.argocdNamespace, "-o", "jsonpath={.status.operationState.message}"])
            expect = .notContains("no matches for kind")
        case .nuclear:
            let stage = try need(p.stage, "STAGE")
            commands = [cmd(["delete", "stage", stage, "-n", ns]), cmd(["delete", "promotions", "-n", ns, "--all"])]
            verification = cmd(["get", "promotions", "-n", ns, "-o", "name"])
            expect = .empty
            notes.append(
                "Wait for Argo CD to recreate the Stage from its Helm templates (up to 3 minutes with selfHeal, Gotcha 6); new freight then auto-promotes through a clean state."
            )
        }
        return FixPlan(
            pattern: pattern, problem: pattern.problem, whenToUse: pattern.whenToUse, risk: pattern.risk, commands: commands,
            verification: verification, expect: expect, manual: manual, notes: notes)
    }

    /// The verification ClusterRole with rules added (get/list on each resource), as JSON (valid YAML).
    static func rbacManifest(name: String, existing: JSONValue?, adding: [(group: String, resource: String)], serviceAccountNamespace: String) throws
        -> String
    {
        var rules: [JSONValue] = []
        if case .array(let current)? = existing?["rules"] { rules = current }
        for (group, resource) in adding {
            rules.append(["apiGroups": [.string(group)], "resources": [.string(resource)], "verbs": ["get", "list", "watch"]])
        }
        var labels: JSONValue = ["app": "kargo-verification"]
        if case .object(let current)? = existing?["metadata"]?["labels"] {
            var merged = current
            merged["app"] = "kargo-verification"
            labels = .object(merged)
        }
        let role: JSONValue = [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": ["name": .string(name), "labels": labels], "rules": .array(rules),
        ]
        return String(decoding: try KhJSON.encoder(pretty: true).encode(role), as: UTF8.self) + "\n"
    }

    /// Parses `resource[.group]` (`ingresses.networking.k8s.io`, `pods`).
    public static func parseResource(_ text: String) -> (group: String, resource: String) {
        guard let dot = text.firstIndex(of: ".") else { return ("", text) }
        return (String(text[text.index(after: dot)...]), String(text[..<dot]))
    }

    /// Whether the verification output meets the expectation.
    public static func satisfied(_ expect: FixPlan.Expectation, output: String) -> Bool {
        let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
        switch expect {
        case .exitZero: return true
        case .contains(let s): return text.contains(s)
        case .empty: return text.isEmpty
        case .notContains(let s): return !text.contains(s)
        }
    }
}

extension FixPattern: ExpressibleByArgument {}
extension AppType: ExpressibleByArgument {}

/// What running a fix did.
public struct FixResult: Codable, Sendable, Equatable {
    public var plan: FixPlan
    /// Each command and its output.
    public var ran: [String]
    public var verificationOutput: String
    public var verified: Bool
}

/// Runs a plan's commands, then its verification command.
public enum FixRunner {
    /// Fetches what a pattern needs from the cluster, then plans it.
    public static func prepare(_ pattern: FixPattern, _ parameters: FixParameters, cluster: Cluster) async throws -> FixPlan {
        var p = parameters
        if pattern == .retryConfig, let stage = p.stage {
            p.stageObject = try await cluster.kubectl.getIfPresent(Stage.self, name: stage, namespace: cluster.environment.kargoNamespace)
            if p.appType == nil, let object = p.stageObject {
                p.appType = AppType.guess(apps: object.argocdApps.map(\.name), stage: stage, heavyStages: cluster.config.heavyStages)
                if p.appType == .simple || p.appType == .medium {
                    // D6's row for transient sync failures: timeout 10m, errorThreshold 3.
                    p.appType = .heavy
                }
            }
        }
        if pattern == .verificationRBAC {
            let name = cluster.config.verificationServiceAccount
            do {
                p.clusterRole = try await cluster.json(["get", "clusterrole", name, "-o", "json"], as: JSONValue.self)
            } catch let error as KubeError where error.kind == .notFound {
                p.clusterRole = nil
            }
        }
        return try FixPlanner.plan(pattern, p, cluster: cluster)
    }

    public static func apply(_ plan: FixPlan, cluster: Cluster) async throws -> FixResult {
        var ran: [String] = []
        for command in plan.commands {
            let output: String
            if let manifest = command.manifest {
                output = try await cluster.kubectl.apply(yaml: manifest)
            } else {
                output = try await cluster.text(command.arguments)
            }
            ran.append("\(command.display)\n\(output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let output = try await cluster.text(plan.verification.arguments)
        return FixResult(plan: plan, ran: ran, verificationOutput: output, verified: FixPlanner.satisfied(plan.expect, output: output))
    }
}
