import Foundation
import KhCore
import KhKube

/// The runbook's mandatory output formats.
public enum Report {
    /// D7, exactly: the DIAGNOSIS block with evidence lines and the risk legend.
    public static func diagnosis(_ d: Diagnosis) -> String {
        var lines = [
            "DIAGNOSIS",
            "=========",
            "Stage: \(d.stage)",
            "Phase: \(d.phase)",
            "Health: \(d.health)",
            "",
            "Root Cause: \(d.rootCause)",
        ]
        let evidence =
            d.evidence + d.gotchas.map { "Gotcha \($0.gotcha) (\($0.title)): \($0.detail)" }
            + d.controllerLog.filter { line in
                !d.evidence.contains { $0.hasSuffix(line) }
            }.map { "controller log: \($0)" }
        lines.append("Evidence: \(evidence.first ?? "none")")
        for line in evidence.dropFirst() { lines.append("          \(line)") }
        lines.append("")
        lines.append("Recommended Fix:")
        var n = 0
        for step in d.fix {
            n += 1
            lines.append("  \(n). \(step.action)")
        }
        lines.append("  \(n + 1). \(d.verification)")
        lines.append("")
        lines.append("Risk Level: \(d.risk.rawValue)")
        for legend in Risk.legend { lines.append("  \(legend)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// V4, exactly.
    public static func verification(_ r: VerificationReport) -> String {
        var lines = [
            "VERIFICATION REPORT",
            "===================",
            "Stage: \(r.stage)",
            "Timestamp: \(Timestamp.iso8601(r.timestamp))",
            "",
        ]
        for level in r.levels {
            lines.append("Level \(level.level) (\(level.title)): \(level.status.rawValue)")
            if level.status == .skipped {
                lines.append("  ...")
            }
            for check in level.checks {
                lines.append("  [\(check.passed ? "x" : " ")] \(check.text)\(check.passed ? "" : " FAILED")")
            }
            lines.append("")
        }
        if let failed = r.failedLevel {
            lines.append("Overall: FAIL at Level \(failed)")
        } else {
            lines.append("Overall: PASS")
        }
        lines.append("Action Required: \(r.actionRequired)")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One stage in the pipeline chain of `kh gitops status`.
public struct StageStatus: Codable, Sendable, Equatable {
    public var name: String
    public var upstream: [String]
    public var warehouses: [String]
    public var ready: String
    public var healthy: String
    public var verified: String
    public var phase: String
    public var currentFreight: String?
    public var lastPromotion: String?
    public var lastPromotionPhase: String?
    public var apps: [AppStatus]
    public var depth: Int
}

/// An Argo CD app of a stage.
public struct AppStatus: Codable, Sendable, Equatable {
    public var name: String
    public var sync: String
    public var health: String
    /// Health is trustworthy: reconciled after the last operation finished.
    public var healthFresh: Bool
    public var operation: String?
}

/// The pipeline: warehouse → stages, each with its conditions, freight, promotion and apps.
public struct PipelineStatus: Codable, Sendable, Equatable {
    public var project: String
    public var namespace: String
    public var warehouses: [String]
    public var stages: [StageStatus]

    public static func build(_ snapshot: PipelineSnapshot, environment: GitOpsEnvironment) -> PipelineStatus {
        let byName = Dictionary(snapshot.stages.map { ($0.metadata.name, $0) }, uniquingKeysWith: { a, _ in a })
        var depth: [String: Int] = [:]
        func depthOf(_ name: String, _ seen: Set<String> = []) -> Int {
            if let d = depth[name] { return d }
            guard let stage = byName[name], !seen.contains(name) else { return 0 }
            let up = stage.upstreamStages.filter { byName[$0] != nil }
            let d = up.isEmpty ? 0 : (up.map { depthOf($0, seen.union([name])) }.max() ?? 0) + 1
            depth[name] = d
            return d
        }
        let ordered = snapshot.stages.sorted { (depthOf($0.metadata.name), $0.metadata.name) < (depthOf($1.metadata.name), $1.metadata.name) }
        func cond(_ s: Stage, _ type: String) -> String {
            guard let c = s.conditions.first(type) else { return "-" }
            return c.status + (c.reason.map { $0.isEmpty ? "" : " (\($0))" } ?? "")
        }
        let stages = ordered.map { s -> StageStatus in
            let wanted = s.argocdApps
            let apps = wanted.map { want -> AppStatus in
                let app = snapshot.apps.first { $0.metadata.name == want.name && (want.namespace == nil || $0.metadata.namespace == want.namespace) }
                return AppStatus(
                    name: want.name, sync: app?.status?.sync?.status ?? (app == nil ? "Missing" : "Unknown"),
                    health: app?.status?.health?.status ?? "Unknown", healthFresh: app?.healthIsFresh ?? false,
                    operation: app?.status?.operationState?.phase)
            }
            let freight = s.currentFreight.compactMap { ref -> String? in
                guard let name = ref.name else { return nil }
                return snapshot.freight.first { $0.metadata.name == name }?.displayName ?? name
            }
            return StageStatus(
                name: s.metadata.name, upstream: s.upstreamStages, warehouses: s.directWarehouses, ready: cond(s, "Ready"),
                healthy: cond(s, "Healthy"),
                verified: cond(s, "Verified"), phase: Diagnoser.phase(of: s), currentFreight: freight.isEmpty ? nil : freight.joined(separator: ", "),
                lastPromotion: s.status?.lastPromotion?.name, lastPromotionPhase: s.status?.lastPromotion?.status?.phase, apps: apps,
                depth: depthOf(s.metadata.name))
        }
        let warehouses = Set(snapshot.warehouses.map(\.metadata.name) + snapshot.stages.flatMap(\.directWarehouses)).sorted()
        return PipelineStatus(project: environment.kargoProject, namespace: environment.kargoNamespace, warehouses: warehouses, stages: stages)
    }

    /// The chain as text.
    public func render() -> String {
        var lines = ["Pipeline \(project) (namespace \(namespace))"]
        for warehouse in warehouses { lines.append("Warehouse \(warehouse)") }
        for stage in stages {
            let indent = String(repeating: "  ", count: stage.depth + 1)
            let from = stage.upstream.isEmpty ? stage.warehouses.map { "warehouse \($0)" } : stage.upstream
            lines.append("\(indent)└─ \(stage.name) (from \(from.joined(separator: ", "))) \(stage.phase)")
            lines.append("\(indent)   Ready: \(stage.ready)  Healthy: \(stage.healthy)  Verified: \(stage.verified)")
            lines.append(
                "\(indent)   Freight: \(stage.currentFreight ?? "none")  Last promotion: \(stage.lastPromotion.map { "\($0) (\(stage.lastPromotionPhase ?? "?"))" } ?? "none")"
            )
            for app in stage.apps {
                lines.append(
                    "\(indent)   app \(app.name): \(app.sync)/\(app.health)\(app.healthFresh ? "" : " (health not fresh)")\(app.operation.map { " last operation \($0)" } ?? "")"
                )
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
