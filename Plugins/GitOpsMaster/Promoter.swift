import Foundation
import KhCore
import KhKube

/// Which freight to promote.
public enum FreightSelector: Sendable, Equatable {
    case name(String)
    case alias(String)
    case latest
}

/// One P1 pre-check (or DO-NOT-PROMOTE rule) and what it saw.
public struct Precheck: Codable, Sendable, Equatable {
    public var rule: String
    public var command: String
    public var passed: Bool
    public var detail: String
}

/// The P1 pre-checks.
public struct PrecheckReport: Codable, Sendable, Equatable {
    public var stage: String
    /// The freight's name once resolved.
    public var freight: String?
    public var alias: String?
    public var checks: [Precheck]
    public var blocked: Bool { checks.contains { !$0.passed } }
}

/// What `--wait` saw.
public struct WaitOutcome: Codable, Sendable, Equatable {
    public var promotion: String
    public var promotionPhase: String?
    public var promotionMessage: String?
    public var appsSyncedHealthy: Bool
    public var stageVerified: Bool
    public var timeline: [String]
    public var failure: String?
    public var succeeded: Bool { failure == nil && promotionPhase == "Succeeded" && stageVerified }
}

/// P1 (pre-checks), P3 (monitoring) of the runbook's promote mode.
public enum Promoter {
    /// Runs the P1 checks and the DO-NOT-PROMOTE rules against the cluster (reads in parallel).
    public static func precheck(cluster: Cluster, stage: String, selector: FreightSelector) async throws -> PrecheckReport {
        let ns = cluster.environment.kargoNamespace
        let stagesArgs = ["get", "stages", "-n", ns, "-o", "wide"]
        let freightArgs = ["get", "freight", "-n", ns, "--sort-by=.metadata.creationTimestamp"]
        let promotionsArgs = ["get", "promotions", "-n", ns, "-l", "kargo.akuity.io/stage=\(stage)", "--sort-by=.metadata.creationTimestamp"]
        async let stages = cluster.items(["get", Stage.resource, "-n", ns, "-o", "json"], as: Stage.self)
        async let freight = cluster.items(
            ["get", Freight.resource, "-n", ns, "--sort-by=.metadata.creationTimestamp", "-o", "json"], as: Freight.self)
        async let promotions = cluster.items(
            ["get", Promotion.resource, "-n", ns, "-l", "kargo.akuity.io/stage=\(stage)", "--sort-by=.metadata.creationTimestamp", "-o", "json"],
            as: Promotion.self)
        async let apps = cluster.items(
            ["get", ArgoApplication.resource, "-n", cluster.environment.argocdNamespace, "-o", "json"], as: ArgoApplication.self)
        let (allStages, allFreight, stagePromotions, allApps) = try await (stages, freight, promotions, apps)

        var checks: [Precheck] = []
        guard let target = allStages.first(where: { $0.metadata.name == stage }) else {
            checks.append(
                Precheck(
                    rule: "1. pipeline state", command: cluster.display(stagesArgs), passed: false,
                    detail: "stage \(stage) not found (stages: \(allStages.map(\.metadata.name).sorted().joined(separator: ", ")))"))
            return PrecheckReport(stage: stage, freight: nil, alias: nil, checks: checks)
        }
        checks.append(
            Precheck(
                rule: "1. pipeline state", command: cluster.display(stagesArgs), passed: true,
                detail: allStages.sorted { $0.metadata.name < $1.metadata.name }.map { "\($0.metadata.name)=\(Diagnoser.phase(of: $0))" }.joined(
                    separator: " ")))

        // 2. available freight.
        let origins = Set(target.originWarehouses)
        let candidates = allFreight.filter { origins.isEmpty || origins.contains($0.origin?.name ?? "") }
        let upstream = target.upstreamStages
        func available(_ f: Freight) -> Bool {
            if !target.directWarehouses.isEmpty && target.directWarehouses.contains(f.origin?.name ?? "") { return true }
            return upstream.contains { f.status?.verifiedIn?[$0] != nil } || f.status?.approvedFor?[stage] != nil
        }
        let chosen: Freight?
        switch selector {
        case .name(let name): chosen = allFreight.first { $0.metadata.name == name }
        case .alias(let alias):
            chosen = allFreight.first { $0.alias == alias || $0.metadata.labels?["kargo.akuity.io/alias"] == alias }
        case .latest:
            chosen = candidates.filter(available).max {
                ($0.metadata.creationTimestamp ?? .distantPast, $0.metadata.name) < ($1.metadata.creationTimestamp ?? .distantPast, $1.metadata.name)
            }
        }
        let wanted: String
        switch selector {
        case .name(let n): wanted = n
        case .alias(let a): wanted = "alias \(a)"
        case .latest: wanted = "the latest available freight"
        }
        guard let chosen else {
            checks.append(
                Precheck(
                    rule: "2. available freight", command: cluster.display(freightArgs), passed: false,
                    detail: "\(wanted) not found among \(allFreight.count) freight"))
            return PrecheckReport(stage: stage, freight: nil, alias: nil, checks: checks)
        }
        checks.append(
            Precheck(
                rule: "2. available freight", command: cluster.display(freightArgs), passed: true,
                detail: "\(chosen.metadata.name)\(chosen.alias.map { " (\($0))" } ?? "") from \(chosen.origin?.name ?? "?")"))

        // 3. pending/running promotions; errored promotions for this freight.
        let active = stagePromotions.filter { ["Running", "Pending", ""].contains($0.status?.phase ?? "") && !$0.isTerminal }
        checks.append(
            Precheck(
                rule: "DO NOT PROMOTE: target stage has a Running promotion (wait for it)", command: cluster.display(promotionsArgs),
                passed: active.isEmpty,
                detail: active.isEmpty
                    ? "none running" : active.map { "\($0.metadata.name) \($0.status?.phase ?? "Pending")" }.joined(separator: ", ")))
        let errored = stagePromotions.filter { $0.spec?.freight == chosen.metadata.name && ["Errored", "Failed"].contains($0.status?.phase ?? "") }
        checks.append(
            Precheck(
                rule: "DO NOT PROMOTE: target stage has an Errored promotion for this freight (fix first, see D4)",
                command: cluster.display(promotionsArgs), passed: errored.isEmpty,
                detail: errored.isEmpty
                    ? "no errored promotion for \(chosen.metadata.name)"
                    : errored.map { "\($0.metadata.name) \($0.status?.phase ?? "?"): \($0.status?.message ?? "")" }.joined(separator: ", ")))

        // 4. upstream verified for this freight.
        if upstream.isEmpty {
            checks.append(
                Precheck(
                    rule: "DO NOT PROMOTE: upstream stage is NOT Verified for this freight", command: cluster.display(freightArgs), passed: true,
                    detail: "\(stage) takes freight directly from \(target.directWarehouses.joined(separator: ", "))"))
        } else {
            for up in upstream {
                let args = ["get", "stage", up, "-n", ns, "-o", "jsonpath={.status.lastVerification}"]
                let verified = chosen.status?.verifiedIn?[up] != nil
                let upStage = allStages.first { $0.metadata.name == up }
                checks.append(
                    Precheck(
                        rule: "DO NOT PROMOTE: upstream stage is NOT Verified for this freight", command: cluster.display(args), passed: verified,
                        detail: verified
                            ? "\(chosen.metadata.name) verified in \(up)"
                            : "\(chosen.metadata.name) is not verified in \(up) (\(up) is \(upStage.map(Diagnoser.phase(of:)) ?? "missing"))"))
            }
        }

        // 5. Argo CD apps of the target stage syncing now.
        let stageApps = target.argocdApps
        let syncing = allApps.filter { app in
            stageApps.contains { $0.name == app.metadata.name } && (app.status?.operationState?.phase == "Running" || app.operation != nil)
        }
        checks.append(
            Precheck(
                rule: "DO NOT PROMOTE: ArgoCD apps in target stage are currently syncing",
                command: cluster.display(["get", "applications", "-n", cluster.environment.argocdNamespace]), passed: syncing.isEmpty,
                detail: syncing.isEmpty ? "no app of \(stage) is syncing" : "syncing: \(syncing.map(\.metadata.name).joined(separator: ", "))"))
        return PrecheckReport(stage: stage, freight: chosen.metadata.name, alias: chosen.alias, checks: checks)
    }

    /// P3: follows the promotion (Pending → Running → Succeeded), then the apps
    /// (Synced+Healthy, health fresh), then the stage (Verified) — one deadline for all.
    public static func wait(
        cluster: Cluster, promotion: String, stage: String, freight: String, timeout: Duration, interval: Duration, clock: KhClock,
        progress: @Sendable (String) -> Void
    ) async throws -> WaitOutcome {
        let ns = cluster.environment.kargoNamespace
        let start = clock.now()
        var outcome = WaitOutcome(promotion: promotion, appsSyncedHealthy: false, stageVerified: false, timeline: [])
        func note(_ line: String) {
            let at = Int(clock.now().timeIntervalSince(start))
            outcome.timeline.append("+\(at)s \(line)")
            progress(line)
        }
        func remaining() -> Double { timeout.seconds - clock.now().timeIntervalSince(start) }
        func pause() async throws { try await clock.sleep(min(interval, .milliseconds(Int64(max(0, remaining()) * 1000)))) }

        // Promotion phase.
        var lastPhase = ""
        while true {
            let current = try await cluster.kubectl.getIfPresent(Promotion.self, name: promotion, namespace: ns)
            let phase = current?.status?.phase ?? (current == nil ? "Missing" : "Pending")
            if phase != lastPhase {
                note("promotion \(promotion): \(phase)\(current?.status?.message.map { " (\($0))" } ?? "")")
                lastPhase = phase
            }
            outcome.promotionPhase = phase
            outcome.promotionMessage = current?.status?.message
            if let current, current.isTerminal {
                if phase != "Succeeded" {
                    outcome.failure = "promotion \(promotion) \(phase): \(current.status?.message ?? "no message")"
                    return outcome
                }
                break
            }
            if remaining() <= 0 {
                outcome.failure = "promotion \(promotion) still \(phase) after \(timeout.humanDescription)"
                return outcome
            }
            try await pause()
        }

        // Argo CD sync and health of the stage's apps.
        let stageObject = try await cluster.kubectl.getIfPresent(Stage.self, name: stage, namespace: ns)
        let wanted = stageObject?.argocdApps ?? []
        var lastApps = ""
        while !wanted.isEmpty {
            let apps = try await cluster.items(
                ["get", ArgoApplication.resource, "-n", cluster.environment.argocdNamespace, "-o", "json"], as: ArgoApplication.self)
            let mine = wanted.map { want in apps.first { $0.metadata.name == want.name } }
            let states = zip(wanted, mine).map { want, app in
                "\(want.name)=\(app?.status?.sync?.status ?? "Missing")+\(app?.status?.health?.status ?? "Unknown")\(app?.healthIsFresh == false ? "(stale)" : "")"
            }
            let line = states.joined(separator: " ")
            if line != lastApps {
                note("apps: \(line)")
                lastApps = line
            }
            if mine.allSatisfy({ $0?.status?.sync?.status == "Synced" && $0?.status?.health?.status == "Healthy" && $0?.healthIsFresh == true }) {
                outcome.appsSyncedHealthy = true
                break
            }
            if remaining() <= 0 {
                outcome.failure = "apps not Synced+Healthy after \(timeout.humanDescription): \(line)"
                return outcome
            }
            try await pause()
        }
        if wanted.isEmpty { outcome.appsSyncedHealthy = true }

        // Stage conditions to Verified, with this freight current.
        var lastStage = ""
        while true {
            guard let object = try await cluster.kubectl.getIfPresent(Stage.self, name: stage, namespace: ns) else {
                outcome.failure = "stage \(stage) disappeared"
                return outcome
            }
            let phase = Diagnoser.phase(of: object)
            let current = object.currentFreight.contains { $0.name == freight }
            let line = "\(phase)\(current ? "" : " (freight \(String(freight.prefix(7))) not current yet)")"
            if line != lastStage {
                note("stage \(stage): \(line)")
                lastStage = line
            }
            let verified = object.conditions.first("Verified")
            if current && (verified?.isTrue == true || object.status?.phase == "Verified") {
                outcome.stageVerified = true
                return outcome
            }
            if current, verified?.status == "False", (verified?.reason ?? "").contains("Fail") {
                outcome.failure = "stage \(stage) verification failed: \(verified?.message ?? verified?.reason ?? "")"
                return outcome
            }
            if remaining() <= 0 {
                outcome.failure = "stage \(stage) not Verified after \(timeout.humanDescription): \(line)"
                return outcome
            }
            try await pause()
        }
    }
}
