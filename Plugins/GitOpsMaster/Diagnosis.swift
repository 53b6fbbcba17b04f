import Foundation
import KhCore
import KhKube

/// One step of the recommended fix.
public struct FixStep: Codable, Sendable, Equatable {
    /// What to do, with the exact command when there is one.
    public var action: String
    public var command: String?
}

/// A D5 gotcha that applies to this stage.
public struct GotchaFinding: Codable, Sendable, Equatable {
    /// The runbook's gotcha number (1–8).
    public var gotcha: Int
    public var title: String
    public var detail: String
}

/// The D7 diagnosis of one stage.
public struct Diagnosis: Codable, Sendable, Equatable {
    public var stage: String
    public var phase: String
    public var health: String
    /// True when the stage is fine ("Problem is elsewhere").
    public var fine: Bool
    /// The decision-tree path taken, e.g. `LastPromotionErrored/manual-promotion`.
    public var branch: String
    public var rootCause: String
    /// What command output showed it: `<command>: <what it showed>`.
    public var evidence: [String]
    /// Actions, then the verification command last.
    public var fix: [FixStep]
    public var verification: String
    /// The D6 row `kh gitops fix` applies, if any.
    public var fixPattern: FixPattern?
    public var risk: Risk
    public var gotchas: [GotchaFinding]
    /// Controller log lines about this stage that match the runbook's messages.
    public var controllerLog: [String]
}

/// The stage's apps, from its `argocd-update` steps.
public struct StageApp: Sendable, Equatable, Hashable {
    public var name: String
    public var namespace: String?
}

extension Stage {
    /// Apps its promotion template updates (`argocd-update` → `config.apps`).
    public var argocdApps: [StageApp] {
        var out: [StageApp] = []
        for step in spec?.promotionTemplate?.spec?.steps ?? [] where step.uses == "argocd-update" {
            if case .array(let apps)? = step.config?["apps"] {
                for app in apps {
                    if let name = app["name"]?.stringValue { out.append(StageApp(name: name, namespace: app["namespace"]?.stringValue)) }
                }
            }
        }
        return out
    }

    /// Upstream stages (requested freight sources), in order.
    public var upstreamStages: [String] { (spec?.requestedFreight ?? []).flatMap { $0.sources?.stages ?? [] } }
    /// Warehouses it takes freight from directly.
    public var directWarehouses: [String] {
        (spec?.requestedFreight ?? []).filter { $0.sources?.direct == true && $0.origin.kind == "Warehouse" }.map(\.origin.name)
    }
    /// Every origin warehouse of its requested freight.
    public var originWarehouses: [String] { (spec?.requestedFreight ?? []).filter { $0.origin.kind == "Warehouse" }.map(\.origin.name) }
}

/// Kargo's own promotion names: `<stage>.<ULID>.<first 7 of freight>`; anything else
/// was created by hand (Gotcha 1).
public enum PromotionNames {
    public static func isGenerated(_ name: String, stage: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3 else { return false }
        let ulid = parts[parts.count - 2]
        let short = parts[parts.count - 1]
        let prefix = parts.dropLast(2).joined(separator: ".")
        // A ULID: 26 characters of (Crockford) base 32, lower-cased by Kargo.
        return prefix == stage && ulid.count == 26 && ulid.lowercased().allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
            && (1...40).contains(short.count) && short.allSatisfy(\.isHexDigit)
    }
}

/// The D4 decision tree and the D5 gotchas over a snapshot. Pure: the same snapshot
/// and clock give the same diagnosis.
public struct Diagnoser: Sendable {
    public var cluster: Cluster
    public var snapshot: PipelineSnapshot
    public var now: Date

    public init(cluster: Cluster, snapshot: PipelineSnapshot, now: Date) {
        self.cluster = cluster
        self.snapshot = snapshot
        self.now = now
    }

    var env: GitOpsEnvironment { cluster.environment }
    var ns: String { env.kargoNamespace }
    func show(_ args: [String]) -> String { cluster.display(args) }

    /// The phase the runbook's step 1 reads: `status.phase` when present (Kargo < 1.5),
    /// otherwise derived from the conditions Kargo ≥ 1.5 writes.
    public static func phase(of stage: Stage) -> String {
        if let phase = stage.status?.phase, !phase.isEmpty { return phase }
        let c = stage.conditions
        if c.isTrue("Promoting") { return "Promoting" }
        if let ready = c.first("Ready"), ready.status == "False" {
            switch ready.reason ?? "" {
            case "NoFreight": return "NotApplicable"
            case "LastPromotionErrored", "VerificationFailed", "ReconcileError", "Unhealthy": return "Failed"
            default: return "NotReady"
            }
        }
        if c.isTrue("Verified") { return "Verified" }
        if c.first("Verified")?.status == "False" { return "Failed" }
        if c.isTrue("Healthy") { return "Healthy" }
        if c.first("Healthy")?.status == "False" { return "Unhealthy" }
        return c.isEmpty ? "Unknown" : "NotVerified"
    }

    /// The reason the runbook's step 2 branches on: an active promotion first, then the
    /// first condition that is not True (Ready, Verified, Healthy), then `conditions[0]`.
    public static func reason(of stage: Stage) -> String? {
        let c = stage.conditions
        if let promoting = c.first("Promoting"), promoting.isTrue { return promoting.reason.flatMap { $0.isEmpty ? nil : $0 } ?? "ActivePromotion" }
        for type in ["Ready", "Verified", "Healthy"] {
            if let condition = c.first(type), condition.status != "True", let reason = condition.reason, !reason.isEmpty, reason != "Pending" {
                return reason
            }
        }
        if let reconciling = c.first("Reconciling"), let reason = reconciling.reason, reason == "ReconcileError" { return reason }
        return c.first?.reason
    }

    /// The stage is fine: Verified (or Healthy with nothing saying verification failed).
    public static func isFine(_ stage: Stage) -> Bool {
        let phase = phase(of: stage)
        if phase == "Verified" { return true }
        if phase == "Healthy" { return stage.conditions.first("Verified")?.status != "False" }
        return false
    }

    func healthLine(_ stage: Stage) -> String {
        var parts: [String] = []
        if let h = stage.status?.health?.status {
            parts.append(h)
        } else if let c = stage.conditions.first("Healthy") {
            parts.append(c.isTrue ? "Healthy" : "\(c.status == "False" ? "Unhealthy" : "Unknown")\(c.reason.map { " (\($0))" } ?? "")")
        } else {
            parts.append("Unknown")
        }
        let apps = apps(of: stage)
        if !apps.isEmpty {
            let good = apps.filter { $0.status?.sync?.status == "Synced" && $0.status?.health?.status == "Healthy" }.count
            parts.append("apps \(good)/\(apps.count) Synced+Healthy")
        }
        return parts.joined(separator: ", ")
    }

    func apps(of stage: Stage) -> [ArgoApplication] {
        let wanted = stage.argocdApps
        return snapshot.apps.filter { app in
            wanted.contains { $0.name == app.metadata.name && ($0.namespace == nil || $0.namespace == app.metadata.namespace) }
        }
    }

    func promotion(named name: String) -> Promotion? { snapshot.promotions.first { $0.metadata.name == name } }

    func stamp(_ date: Date?) -> String { date.map(Timestamp.iso8601) ?? "?" }

    /// Diagnoses every stage that is not fine (or the one named).
    public func diagnoseAll(only: String? = nil) throws -> [Diagnosis] {
        if let only {
            guard let stage = snapshot.stages.first(where: { $0.metadata.name == only }) else {
                throw KhError.usage(
                    "stage \(only) not found in \(ns)",
                    hint: "stages there: \(snapshot.stages.map(\.metadata.name).sorted().joined(separator: ", "))")
            }
            return [diagnose(stage)]
        }
        return snapshot.stages.sorted { $0.metadata.name < $1.metadata.name }.map(diagnose)
    }

    /// The decision tree for one stage.
    public func diagnose(_ stage: Stage) -> Diagnosis {
        let name = stage.metadata.name
        let getStage = show(["get", "stages", "-n", ns, "-o", "wide"])
        var d = Diagnosis(
            stage: name, phase: Self.phase(of: stage), health: healthLine(stage), fine: false, branch: "", rootCause: "", evidence: [], fix: [],
            verification: show(["get", "stage", name, "-n", ns, "-o", "jsonpath={.status.conditions}"]), fixPattern: nil, risk: .low,
            gotchas: gotchas(stage), controllerLog: logLines(for: name))
        let conditionText = stage.conditions.map { "\($0.type)=\($0.status)\($0.reason.map { " (\($0))" } ?? "")" }.joined(separator: ", ")

        // Step 1.
        if Self.isFine(stage) {
            d.fine = true
            d.branch = "fine"
            d.rootCause = "Stage is fine (\(d.phase)). Problem is elsewhere."
            d.evidence = ["\(getStage): \(name) \(conditionText.isEmpty ? "phase \(d.phase)" : conditionText)"]
            d.fix = [FixStep(action: "No fix needed for this stage; check the other stages and the Argo CD apps (`kh gitops status`).", command: nil)]
            return d
        }
        d.evidence.append("\(getStage): \(name) \(conditionText.isEmpty ? "phase \(d.phase)" : conditionText)")

        // Step 2.
        let reason = Self.reason(of: stage) ?? ""
        switch reason {
        case "LastPromotionErrored":
            lastPromotionErrored(stage, &d)
        case "NoFreight":
            noFreight(stage, &d)
        case "VerificationFailed":
            verificationFailed(stage, &d)
        case "ReconcileError":
            d.branch = "ReconcileError"
            let message = stage.conditions.first { $0.reason == "ReconcileError" }?.message ?? ""
            d.rootCause = "Kargo failed to reconcile the stage (usually transient)\(message.isEmpty ? "" : ": \(message)")"
            setFix(&d, .refreshStage, stage: name)
        case "ActivePromotion":
            activePromotion(stage, &d)
        default:
            d.branch = reason.isEmpty ? "no-reason" : "other:\(reason)"
            d.rootCause = "Stage is \(d.phase)\(reason.isEmpty ? " and no condition gives a reason" : " with reason \(reason)"); see controller logs"
            setFix(&d, .refreshStage, stage: name)
        }

        // Step 3: controller logs decide when step 2 could not, and add evidence always.
        controllerLogs(
            stage, &d,
            decide: d.branch.hasPrefix("other") || d.branch == "no-reason" || d.branch == "ActivePromotion/stuck"
                || d.branch == "NoFreight/freight-exists")

        // Controller health (D1 group 3) as evidence.
        let notRunning = snapshot.kargoPods.filter { !$0.isReady }
        if snapshot.answered("3-controller-health") && (snapshot.kargoPods.isEmpty || !notRunning.isEmpty) {
            d.evidence.append(
                "\(show(["get", "pods", "-n", env.kargoControllerNamespace, "-l", "app.kubernetes.io/name=kargo"])): "
                    + (snapshot.kargoPods.isEmpty
                        ? "no Kargo controller pod" : "not ready: \(notRunning.map(\.metadata.name).joined(separator: ", "))"))
        }
        if d.fixPattern == nil && d.fix.isEmpty { setFix(&d, .refreshStage, stage: name) }
        return d
    }

    func setFix(
        _ d: inout Diagnosis, _ pattern: FixPattern, stage: String, extra: [FixStep] = [], app: String? = nil, freight: String? = nil,
        resources: [(group: String, resource: String)] = []
    ) {
        d.fixPattern = pattern
        d.risk = max(d.risk, pattern.risk)
        var params = FixParameters(stage: stage, warehouse: warehouse(forStage: stage), app: app, freight: freight, now: now)
        params.rbacResources = resources
        params.stageObject = snapshot.stages.first { $0.metadata.name == stage }
        params.clusterRole = nil
        let kh =
            "kh gitops fix \(pattern.rawValue)" + (pattern.needsStage ? " \(stage)" : "") + (app.map { " --app \($0)" } ?? "")
            + (freight.map { " --freight \($0)" } ?? "")
            + resources.map { " --resource \($0.resource)\($0.group.isEmpty ? "" : ".\($0.group)")" }.joined()
        if let plan = try? FixPlanner.plan(pattern, params, cluster: cluster) {
            d.fix = extra
            if let manual = plan.manual { d.fix.append(FixStep(action: manual, command: nil)) }
            for command in plan.commands {
                d.fix.append(
                    FixStep(
                        action: "\(pattern.problem): \(command.display)" + (command.manifest != nil ? " (manifest: `\(kh) --dry-run`)" : ""),
                        command: command.display))
            }
            d.fix[d.fix.isEmpty ? 0 : d.fix.count - 1].action += "  [or: \(kh)]"
            d.verification = plan.verification.display
        } else {
            d.fix = extra + [FixStep(action: "\(pattern.problem): \(kh)", command: kh)]
        }
    }

    func warehouse(forStage name: String) -> String? {
        snapshot.stages.first { $0.metadata.name == name }?.originWarehouses.first ?? env.warehouse
    }

    // MARK: branches

    func lastPromotionErrored(_ stage: Stage, _ d: inout Diagnosis, via: String = "LastPromotionErrored") {
        let name = stage.metadata.name
        guard let last = stage.status?.lastPromotion else {
            d.branch = "\(via)/no-last-promotion"
            d.rootCause = "The last promotion errored but the stage records no lastPromotion"
            d.evidence.append("\(show(["get", "stage", name, "-n", ns, "-o", "jsonpath={.status.lastPromotion}"])): empty")
            setFix(&d, .refreshStage, stage: name)
            return
        }
        d.evidence.append(
            "\(show(["get", "stage", name, "-n", ns, "-o", "jsonpath={.status.lastPromotion.name}"])): \(last.name) (\(last.status?.phase ?? "no phase"))"
        )
        if !PromotionNames.isGenerated(last.name, stage: name) {
            d.branch = "\(via)/manual-promotion"
            d.rootCause = "lastPromotion \(last.name) has a non-generated name (created via kubectl): it poisons the stage state machine"
            d.evidence.append("promotion name \(last.name) is not <stage>.<ULID>.<freight> as Kargo names its promotions (Gotcha 1)")
            setFix(&d, .poisonedStage, stage: name)
            return
        }
        let promotion = promotion(named: last.name)
        let messages = ([promotion?.status?.message, last.status?.message] + (promotion?.status?.stepExecutionMetadata ?? []).map(\.message))
            .compactMap { $0 }.filter { !$0.isEmpty }
        let message = messages.first ?? stage.conditions.first("Ready")?.message ?? ""
        d.evidence.append(
            "\(show(["get", "promotion", last.name, "-n", ns, "-o", "jsonpath={.status.message}"])): \(message.isEmpty ? "no message" : message)")
        if message.contains("connection refused") && message.contains(":8081") {
            d.branch = "\(via)/repo-server-connection-refused"
            d.rootCause = "Promotion step failed: Argo CD repo-server refused connections on :8081 (restart/OOM) and the step has no retry"
            let restarts = snapshot.repoServerPods.map { pod in
                "\(pod.metadata.name) restarts=\((pod.status?.containerStatuses ?? []).map { $0.restartCount ?? 0 }.reduce(0, +)) ready=\(pod.isReady)"
            }
            if !restarts.isEmpty {
                d.evidence.append(
                    "\(show(["get", "pods", "-n", env.argocdControllerNamespace, "-l", "app.kubernetes.io/name=argocd-repo-server"])): \(restarts.joined(separator: "; "))"
                )
            }
            setFix(&d, .retryConfig, stage: name)
        } else if message.contains("sync tasks failed") {
            syncTasksFailed(stage, &d, via: via, freight: last.freight?.name ?? promotion?.spec?.freight)
        } else {
            d.branch = "\(via)/other"
            d.rootCause = "Promotion \(last.name) errored: \(message.isEmpty ? "no message recorded" : message)"
            setFix(
                &d, .refreshWarehouse, stage: name,
                extra: [
                    FixStep(
                        action: "Fix the root cause above in git, then push a commit that changes files (an empty commit makes no freight, Gotcha 5)",
                        command: nil)
                ])
        }
    }

    func syncTasksFailed(_ stage: Stage, _ d: inout Diagnosis, via: String, freight: String?) {
        let name = stage.metadata.name
        let apps = apps(of: stage)
        var failing: [ArgoApplication] = []
        var stale: [ArgoApplication] = []
        for app in apps {
            let op = app.status?.operationState
            let opArgs = [
                "get", "app", app.metadata.name, "-n", app.metadata.namespace ?? env.argocdNamespace, "-o",
                "jsonpath={.status.operationState.finishedAt}",
            ]
            d.evidence.append(
                "\(show(opArgs)): \(stamp(op?.finishedAt)) (phase \(op?.phase ?? "none"), reconciledAt \(stamp(app.status?.reconciledAt)), sync \(app.status?.sync?.status ?? "?"), health \(app.status?.health?.status ?? "?"))"
            )
            guard let phase = op?.phase, ["Failed", "Error"].contains(phase) else { continue }
            if app.healthIsFresh && app.status?.health?.status == "Healthy" && app.status?.sync?.status == "Synced" {
                stale.append(app)
            } else {
                failing.append(app)
            }
        }
        if let app = failing.first {
            d.branch = "\(via)/sync-tasks-failed"
            let message = app.status?.operationState?.message ?? ""
            d.rootCause = "Argo CD app \(app.metadata.name) sync failed at \(stamp(app.status?.operationState?.finishedAt)): \(message)"
            if message.contains("no matches for kind") {
                setFix(&d, .crdOrdering, stage: name, app: app.metadata.name)
            } else if app.status?.operationState?.phase == "Running" || app.operation != nil {
                setFix(&d, .clearOperation, stage: name, app: app.metadata.name)
            } else {
                setFix(
                    &d, .refreshWarehouse, stage: name,
                    extra: [
                        FixStep(action: "Fix the failing manifests of \(app.metadata.name) in git and push a commit that changes files", command: nil)
                    ])
            }
        } else if !stale.isEmpty {
            d.branch = "\(via)/sync-tasks-failed-stale"
            d.rootCause =
                "The promotion errored on a sync failure that is stale: \(stale.map(\.metadata.name).joined(separator: ", ")) reconciled after it finished and is Synced+Healthy now"
            let promote = "kh gitops promote --stage \(name)" + (freight.map { " --freight \($0)" } ?? " --latest") + " --wait"
            d.fixPattern = nil
            d.risk = .medium
            d.fix = [FixStep(action: "Promote the freight again through the Kargo API: \(promote)", command: promote)]
        } else {
            d.branch = "\(via)/sync-tasks-failed-no-app"
            d.rootCause = "The promotion reports failed sync tasks but no app of the stage shows a failed operation now"
            setFix(&d, .refreshStage, stage: name)
        }
    }

    func noFreight(_ stage: Stage, _ d: inout Diagnosis) {
        let name = stage.metadata.name
        let history = stage.status?.freightHistory ?? []
        d.evidence.append(
            "\(show(["get", "stage", name, "-n", ns, "-o", "jsonpath={.status.freightHistory}"])): \(history.isEmpty ? "empty" : "\(history.count) entries")"
        )
        if !history.isEmpty {
            d.branch = "NoFreight/stale-history"
            lastPromotionErrored(stage, &d, via: "NoFreight/stale-history")
            d.rootCause = "freightHistory is stale (lastPromotion stuck, blocking freight tracking): " + d.rootCause
            return
        }
        let warehouses = stage.originWarehouses
        let freight = snapshot.freight.filter { f in warehouses.isEmpty || warehouses.contains(f.origin?.name ?? "") }
        d.evidence.append(
            "\(show(["get", "freight", "-n", ns, "--sort-by=.metadata.creationTimestamp"])): \(freight.count) freight from \(warehouses.joined(separator: ", "))"
        )
        if freight.isEmpty {
            d.branch = "NoFreight/no-freight"
            let warehouse = warehouses.first ?? env.warehouse ?? "?"
            let object = snapshot.warehouses.first { $0.metadata.name == warehouse }
            let subs = (object?.spec?.subscriptions ?? []).map(Self.describe)
            let conditions = (object?.status?.conditions ?? []).map { "\($0.type)=\($0.status)\($0.message.map { ": \($0)" } ?? "")" }
            d.evidence.append(
                "\(show(["get", "warehouse", warehouse, "-n", ns, "-o", "yaml"])): "
                    + (object == nil ? "not found" : "subscriptions [\(subs.joined(separator: ", "))] \(conditions.joined(separator: "; "))"))
            d.rootCause = "No successful promotion ever ran and warehouse \(warehouse) has created no freight: its subscription is misconfigured"
            setFix(
                &d, .refreshWarehouse, stage: name,
                extra: [FixStep(action: "Check warehouse \(warehouse)'s subscriptions (repo URL, branch, credentials) in git", command: nil)])
        } else {
            d.branch = "NoFreight/freight-exists"
            let latest = freight.last!
            d.rootCause =
                "Freight exists (latest \(latest.displayName)) but was never promoted to \(name): the stage has no auto-promotion and needs a manual promotion"
            let promote = "kh gitops promote --stage \(name) --freight \(latest.metadata.name) --wait"
            d.fixPattern = nil
            d.risk = .medium
            d.fix = [FixStep(action: "Promote through the Kargo API (never a kubectl-created Promotion): \(promote)", command: promote)]
        }
    }

    func verificationFailed(_ stage: Stage, _ d: inout Diagnosis) {
        let name = stage.metadata.name
        let runs = Verification.runs(of: stage, in: snapshot.analysisRuns)
        let listRuns = show(["get", "analysisruns", "-n", ns, "--sort-by=.metadata.creationTimestamp"])
        guard let run = runs.last else {
            d.branch = "VerificationFailed/no-analysisrun"
            let templates = (stage.spec?.verification?.analysisTemplates ?? []).map(\.name)
            let missing = templates.filter { t in !snapshot.analysisTemplates.contains { $0.metadata.name == t } }
            d.evidence.append("\(listRuns): no AnalysisRun for \(name)")
            d.evidence.append(
                "\(show(["get", "analysistemplates", "-n", ns])): stage wants [\(templates.joined(separator: ", "))]"
                    + (missing.isEmpty ? "" : ", missing [\(missing.joined(separator: ", "))]"))
            d.rootCause =
                "No AnalysisRun exists: the verification ServiceAccount or AnalysisTemplate is misconfigured"
                + (missing.isEmpty ? "" : " (template \(missing.joined(separator: ", ")) not found)")
            d.risk = .medium
            d.fixPattern = nil
            d.fix = [
                FixStep(
                    action:
                        "Create the AnalysisTemplate and verification ServiceAccount/RBAC: kh gitops setup stage \(name) --upstream <upstream> --app <app> (then apply)",
                    command: nil)
            ]
            d.verification = listRuns
            return
        }
        d.evidence.append("\(listRuns): \(run.metadata.name) \(run.status?.phase ?? "?")\(run.status?.message.map { ": \($0)" } ?? "")")
        guard ["Failed", "Error", "Inconclusive"].contains(run.status?.phase ?? "") else {
            d.branch = "VerificationFailed/analysis-\(run.status?.phase ?? "pending")"
            d.rootCause = "Verification is still \(run.status?.phase ?? "pending") (\(run.metadata.name))"
            setFix(&d, .refreshStage, stage: name)
            return
        }
        let jobs = Verification.jobs(of: run, in: snapshot.jobs)
        var logs = ""
        for job in jobs {
            let text = snapshot.jobLogs[job] ?? ""
            let last = text.split(separator: "\n").last(where: { !$0.isEmpty }).map(String.init) ?? "no output"
            d.evidence.append("\(show(["logs", "job/\(job)", "-n", ns])): \(firstMatch(text, ["forbidden"]) ?? last)")
            logs += text + "\n"
        }
        if jobs.isEmpty {
            d.branch = "VerificationFailed/no-job"
            d.rootCause = "AnalysisRun \(run.metadata.name) failed and no verification Job is left to read (Gotcha 4: its message is not the cause)"
            d.risk = .medium
            d.fix = [FixStep(action: "Re-run verification and read the job's logs: kubectl logs job/<analysisrun-job> -n \(ns)", command: nil)]
            d.verification = listRuns
            return
        }
        if let line = firstMatch(logs, ["forbidden"]) {
            d.branch = "VerificationFailed/rbac-forbidden"
            let missing = Self.forbiddenResources(logs)
            d.rootCause = "Verification Job lacks RBAC permissions (\"forbidden\"): \(line)"
            setFix(&d, .verificationRBAC, stage: name, resources: missing.isEmpty ? [("", "<resource>")] : missing)
        } else if let line = firstMatch(logs, ["http://", "https://", "HTTP", "curl", "wget", "status code", "connection refused", "timed out"]) {
            d.branch = "VerificationFailed/http-check"
            d.rootCause = "Verification HTTP check failed: \(line)"
            let appNS = env.appNamespace ?? "<app-namespace>"
            d.risk = .medium
            d.fixPattern = nil
            d.fix = [
                FixStep(
                    action: "Check the service, ingress and SSO the check calls: \(show(["get", "svc,ingress", "-n", appNS]))",
                    command: show(["get", "svc,ingress", "-n", appNS]))
            ]
            d.verification = listRuns
        } else {
            d.branch = "VerificationFailed/pod-check"
            let line = logs.split(separator: "\n").last(where: { !$0.isEmpty }).map(String.init) ?? "no output"
            d.rootCause = "Verification pod check failed: \(line)"
            let appNS = env.appNamespace ?? "<app-namespace>"
            d.risk = .medium
            d.fixPattern = nil
            d.fix = [
                FixStep(
                    action: "Check the namespace and pod selectors the check uses: \(show(["get", "pods", "-n", appNS, "--show-labels"]))",
                    command: show(["get", "pods", "-n", appNS, "--show-labels"]))
            ]
            d.verification = listRuns
        }
    }

    func activePromotion(_ stage: Stage, _ d: inout Diagnosis) {
        let name = stage.metadata.name
        let current = stage.status?.currentPromotion?.name ?? stage.conditions.first("Promoting")?.message ?? "?"
        let promotion = promotion(named: current)
        // When the stage started promoting: the Promoting condition's transition, else the first step's start, else the object's creation.
        let started =
            stage.conditions.first("Promoting")?.lastTransitionTime ?? promotion?.status?.stepExecutionMetadata?.first?.startedAt
            ?? promotion?.metadata.creationTimestamp
        let age = started.map { now.timeIntervalSince($0) } ?? 0
        d.evidence.append(
            "\(show(["get", "promotions", "-n", ns, "-l", "kargo.akuity.io/stage=\(name)", "--sort-by=.metadata.creationTimestamp", "-o", "wide"])): \(current) \(promotion?.status?.phase ?? "?") since \(stamp(started)) (\(Int(age / 60)) min)"
        )
        if age > cluster.config.stuckPromotionAfter.duration.seconds {
            d.branch = "ActivePromotion/stuck"
            d.rootCause =
                "Promotion \(current) has been running for \(Int(age / 60)) min (> \(Int(cluster.config.stuckPromotionAfter.duration.seconds / 60)) min): likely stuck"
            d.risk = .medium
            setFix(&d, .refreshStage, stage: name)
        } else {
            d.branch = "ActivePromotion/running"
            d.rootCause = "A promotion is currently running (\(current), \(Int(age / 60)) min): wait for it"
            d.risk = .low
            d.fixPattern = nil
            let watch = show([
                "get", "promotions", "-n", ns, "-l", "kargo.akuity.io/stage=\(name)", "--sort-by=.metadata.creationTimestamp", "-o", "wide",
            ])
            d.fix = [FixStep(action: "Wait; watch it with: \(watch)", command: watch)]
            d.verification = watch
        }
    }

    static func describe(_ s: Warehouse.Subscription) -> String {
        if let git = s.git { return "git \(git.repoURL ?? "?")@\(git.branch ?? "default")" }
        if let image = s.image { return "image \(image.repoURL ?? "?")" }
        if let chart = s.chart { return "chart \(chart.repoURL ?? "?")" }
        return "?"
    }

    // MARK: step 3

    /// The runbook's controller log messages.
    public static let logMessages = [
        "Promotion already exists for Freight", "current Freight needs to be verified", "Stage has not passed health checks",
        "error reconciling Stage",
    ]

    func logLines(for stage: String) -> [String] {
        guard let log = snapshot.controllerLog else { return [] }
        return log.split(separator: "\n").map(String.init).filter { line in
            Self.mentions(line, stage) && Self.logMessages.contains { line.contains($0) }
        }
    }

    /// `grep <stage-name>`, but as a whole word: stage `b` is not in "be verified".
    static func mentions(_ line: String, _ name: String) -> Bool {
        let word = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        var search = line.startIndex..<line.endIndex
        while let range = line.range(of: name, range: search) {
            let before = range.lowerBound == line.startIndex ? nil : line[line.index(before: range.lowerBound)]
            let after = range.upperBound == line.endIndex ? nil : line[range.upperBound]
            if !(before.map(word.contains) ?? false) && !(after.map(word.contains) ?? false) { return true }
            search = range.upperBound..<line.endIndex
        }
        return false
    }

    func controllerLogs(_ stage: Stage, _ d: inout Diagnosis, decide: Bool) {
        let name = stage.metadata.name
        let grep = show(["logs", "-n", env.kargoControllerNamespace, "deploy/kargo-controller", "--tail=200"]) + " | grep \(name)"
        let lines = d.controllerLog
        guard let line = lines.last else {
            if decide && snapshot.controllerLog != nil { d.evidence.append("\(grep): no known message") }
            if snapshot.controllerLog == nil { d.evidence.append("\(grep): controller logs unavailable") }
            return
        }
        d.evidence.append("\(grep): \(line)")
        guard decide else { return }
        if let hit = lines.last(where: { $0.contains("Promotion already exists for Freight") }) {
            d.branch = "controller-log/promotion-already-exists"
            let freight = Self.freightName(in: hit)
            d.rootCause = "Auto-promotion is blocked: a promotion already exists for freight \(freight ?? "?")"
            setFix(&d, .stalePromotions, stage: name, freight: freight)
        } else if lines.contains(where: { $0.contains("current Freight needs to be verified") }) {
            d.branch = "controller-log/needs-verification"
            d.rootCause = "Verification is blocking new promotions (current freight needs to be verified)"
            var v = d
            verificationFailed(stage, &v)
            d.evidence = v.evidence
            d.fix = v.fix
            d.fixPattern = v.fixPattern
            d.risk = v.risk
            d.verification = v.verification
            d.rootCause += "; " + v.rootCause
        } else if lines.contains(where: { $0.contains("Stage has not passed health checks") }) {
            d.branch = "controller-log/health-gate"
            let bad = apps(of: stage).filter { $0.status?.health?.status != "Healthy" }
            d.rootCause =
                "Health gate is blocking verification: "
                + (bad.isEmpty
                    ? "Kargo's health check has not passed"
                    : "unhealthy apps \(bad.map { "\($0.metadata.name) (\($0.status?.health?.status ?? "?"))" }.joined(separator: ", "))")
            let appsCmd = show(["get", "applications", "-n", env.argocdNamespace])
            d.evidence.append(
                "\(appsCmd): \(bad.isEmpty ? "all apps Healthy" : bad.map { "\($0.metadata.name) \($0.status?.sync?.status ?? "?")/\($0.status?.health?.status ?? "?")" }.joined(separator: ", "))"
            )
            d.fixPattern = nil
            d.risk = .medium
            d.fix = [FixStep(action: "Check Argo CD app health for all apps in this stage: \(appsCmd)", command: appsCmd)]
            d.verification = appsCmd
        } else if let hit = lines.last(where: { $0.contains("error reconciling Stage") }) {
            d.branch = "controller-log/error-reconciling"
            d.rootCause = "Kargo controller: \(hit.trimmingCharacters(in: .whitespaces))"
            setFix(&d, .refreshStage, stage: name)
        }
    }

    static func freightName(in line: String) -> String? {
        for pattern in [#"freight[=:]\"?([0-9a-f]{7,64})"#, #"Freight \\?\"?([0-9a-f]{7,64})"#] {
            if let range = line.range(of: pattern, options: [.regularExpression, .caseInsensitive]) {
                let match = String(line[range])
                if let hex = match.range(of: "[0-9a-f]{7,64}", options: .regularExpression) { return String(match[hex]) }
            }
        }
        return nil
    }

    /// `… cannot list resource "ingresses" in API group "networking.k8s.io" …` → (group, resource).
    public static func forbiddenResources(_ text: String) -> [(group: String, resource: String)] {
        var out: [(String, String)] = []
        let pattern = #"resource \"([a-z0-9.-]+)\" in API group \"([a-z0-9.-]*)\""#
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        let ns = text as NSString
        for match in regex.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            let resource = ns.substring(with: match.range(at: 1))
            let group = ns.substring(with: match.range(at: 2))
            if !out.contains(where: { $0.0 == group && $0.1 == resource }) { out.append((group, resource)) }
        }
        return out.map { (group: $0.0, resource: $0.1) }
    }

    func firstMatch(_ text: String, _ needles: [String]) -> String? {
        text.split(separator: "\n").map(String.init).first { line in needles.contains { line.contains($0) } }
    }

    // MARK: D5

    /// Every D5 gotcha that applies to this stage.
    public func gotchas(_ stage: Stage) -> [GotchaFinding] {
        let name = stage.metadata.name
        var out: [GotchaFinding] = []
        // 1: promotions with hand-made names.
        let manual = snapshot.promotions.filter { ($0.spec?.stage ?? $0.metadata.labels?["kargo.akuity.io/stage"]) == name }
            .filter { !PromotionNames.isGenerated($0.metadata.name, stage: name) }.map(\.metadata.name)
        if !manual.isEmpty {
            out.append(
                GotchaFinding(
                    gotcha: 1, title: "Never create Promotions via kubectl",
                    detail:
                        "manually named promotions \(manual.joined(separator: ", ")): they don't set currentPromotion and break lexicographic sorting"
                ))
        }
        let apps = apps(of: stage)
        for app in apps {
            let op = app.status?.operationState
            // 2: stale operationState.
            if let phase = op?.phase, ["Failed", "Error"].contains(phase), let finished = op?.finishedAt {
                if app.healthIsFresh {
                    out.append(
                        GotchaFinding(
                            gotcha: 2, title: "Stale ArgoCD operationState",
                            detail:
                                "\(app.metadata.name): operationState \(phase) finished \(stamp(finished)) but reconciledAt \(stamp(app.status?.reconciledAt)) is later: current health \(app.status?.health?.status ?? "?") is what counts"
                        ))
                } else {
                    out.append(
                        GotchaFinding(
                            gotcha: 2, title: "Stale ArgoCD operationState",
                            detail:
                                "\(app.metadata.name): reconciledAt \(stamp(app.status?.reconciledAt)) is before the operation finished (\(stamp(finished))): health \(app.status?.health?.status ?? "?") is not to be trusted yet"
                        ))
                }
            }
            // 3: the 10-second health delay.
            if let finished = op?.finishedAt, op?.phase == "Succeeded", now.timeIntervalSince(finished) >= 0,
                now.timeIntervalSince(finished) < cluster.config.healthDelay.duration.seconds, !stage.conditions.isTrue("Healthy")
            {
                out.append(
                    GotchaFinding(
                        gotcha: 3, title: "10-Second Health Delay",
                        detail:
                            "\(app.metadata.name) finished syncing \(Int(now.timeIntervalSince(finished))) s ago: Kargo waits \(Int(cluster.config.healthDelay.duration.seconds)) s before trusting health"
                    ))
            }
            // 6: selfHeal is not immediate.
            if app.spec?.syncPolicy?.automated?.selfHeal == true, app.status?.health?.status == "Missing" {
                out.append(
                    GotchaFinding(
                        gotcha: 6, title: "selfHeal vs Immediate Recreation",
                        detail:
                            "\(app.metadata.name) is Missing with selfHeal on: Argo CD recreates deleted resources on its next reconcile (every 3 minutes by default)"
                    ))
            }
        }
        // 4: RBAC failures in verification job logs.
        for run in Verification.runs(of: stage, in: snapshot.analysisRuns) where ["Failed", "Error"].contains(run.status?.phase ?? "") {
            for job in Verification.jobs(of: run, in: snapshot.jobs) {
                if let line = firstMatch(snapshot.jobLogs[job] ?? "", ["forbidden"]) {
                    out.append(
                        GotchaFinding(
                            gotcha: 4, title: "Verification RBAC is Silent",
                            detail: "AnalysisRun \(run.metadata.name) shows \(run.status?.phase ?? "?"); job \(job) logs: \(line)"))
                }
            }
        }
        // 5: empty commits make no freight.
        for warehouseName in stage.originWarehouses {
            guard let warehouse = snapshot.warehouses.first(where: { $0.metadata.name == warehouseName }),
                let requested = warehouse.metadata.annotations?["kargo.akuity.io/refresh"], requested == warehouse.status?.lastHandledRefresh,
                let seconds = Double(requested)
            else { continue }
            let refreshedAt = Date(timeIntervalSince1970: seconds)
            let newest = snapshot.freight.filter { $0.origin?.name == warehouseName }.compactMap(\.metadata.creationTimestamp).max()
            if newest.map({ $0 < refreshedAt }) ?? true {
                out.append(
                    GotchaFinding(
                        gotcha: 5, title: "Empty Git Commits Don't Create Freight",
                        detail:
                            "warehouse \(warehouseName) handled the refresh of \(stamp(refreshedAt)) and made no new freight (newest \(stamp(newest))): Kargo compares tree hashes, so an empty commit makes none; touch a file"
                    ))
            }
        }
        // 7: heavy stages need retry.
        let appNames = stage.argocdApps.map(\.name)
        let type = AppType.guess(apps: appNames, stage: name, heavyStages: cluster.config.heavyStages)
        if type == .heavy || type == .veryHeavy {
            let weak = (stage.spec?.promotionTemplate?.spec?.steps ?? []).filter { step in
                step.uses == "argocd-update"
                    && ((step.retry?.errorThreshold ?? 1) < 3
                        || (step.retry?.timeout.flatMap(KhDuration.init(parsing:))?.duration ?? .zero) < .seconds(600))
            }
            if !weak.isEmpty {
                out.append(
                    GotchaFinding(
                        gotcha: 7, title: "Monitoring Stage is Heavy",
                        detail: "\(name) deploys heavy charts but \(weak.count) argocd-update step(s) lack `retry: {timeout: 10m, errorThreshold: 3}`"
                    ))
            }
        }
        // 8: the foundation stage must not be Kargo-controlled.
        let selfManaged = appNames.filter { n in ["argocd", "argo-cd", "kargo"].contains { n.lowercased().contains($0) } }
        if name == cluster.config.foundationStage || !selfManaged.isEmpty, !stage.argocdApps.isEmpty {
            out.append(
                GotchaFinding(
                    gotcha: 8, title: "Foundation Stage Chicken-and-Egg",
                    detail:
                        "\(name) promotes \(selfManaged.isEmpty ? appNames.joined(separator: ", ") : selfManaged.joined(separator: ", ")) through Kargo: Kargo can't promote itself; the foundation should use Argo CD auto-sync"
                ))
        }
        return out
    }
}
