import Foundation
import KhCore
import KhKube

/// Phase 3 (compute) evidence: the runbook's `Phase3Evidence`, plus the Helm
/// classification kh made and why.
public struct Phase3Evidence: Codable, Sendable, Equatable {
    public struct Platform: Codable, Sendable, Equatable {
        public var nodesTotal = 0
        public var nodesReady = 0
        public var corednsReady = false
        public var corednsReplicas = PlatformHealth.Replicas(ready: 0, desired: 0)
        public var platformHealthy = false
    }
    public struct Release: Codable, Sendable, Equatable {
        public var exists = false
        public var status = "absent"
        public var revision = 0
    }
    public struct Karpenter: Codable, Sendable, Equatable {
        public var release = Release()
        public var existed = false
        public var installed = false
        public var needsRepair = false
        public var repairAttempted = false
        public var repairSucceeded = false
        public var version = ""
        public var namespace = ""
        public var controllerReady = false
        public var scriptRan = false
        public var pendingPods: [PendingPod] = []
        /// skip | repair | install | stuck: what the release state called for.
        public var action = ""
        /// The status first seen, before any wait or repair.
        public var initialStatus = "absent"
        /// Seconds since the release's last operation started, when pending.
        public var pendingAgeSeconds: Double?
        public var stuck = false
        public var helmVersion = ""
        /// The helm command's outcome and last lines, when one ran.
        public var helmOutcome: String?
    }
    public var platform = Platform()
    public var karpenter = Karpenter()
}

/// What the Helm release state calls for.
public enum ReleaseAction: String, Codable, Sendable {
    /// `deployed`: nothing to do but check the controller.
    case skip
    /// `failed`, `unknown`, or a latest revision left `superseded`: upgrade --install over it.
    case repair
    /// No release, or `uninstalled`: a fresh install.
    case install
    /// A pending operation younger than the threshold: wait for it.
    case wait
    /// A pending operation older than the threshold: Helm will refuse any upgrade.
    case stuck

    /// Classifies a release over every Helm status.
    public static func classify(_ release: HelmRelease?, now: Date, stuckAfter: Duration) -> ReleaseAction {
        guard let release else { return .install }
        switch release.status {
        case .deployed: return .skip
        case .failed, .unknown, .superseded: return .repair
        case .uninstalled: return .install
        case .pendingInstall, .pendingUpgrade, .pendingRollback, .uninstalling:
            guard let started = release.lastDeployed else { return .stuck }
            return now.timeIntervalSince(started) >= stuckAfter.seconds ? .stuck : .wait
        }
    }
}

extension InstallPhases {
    /// Phase 3, exactly as the runbook: platform gate, Helm release state, repair or
    /// install or skip, controller readiness gate, pending pods' events. `verify` runs
    /// no Helm change (dry run, or re-verification of an earlier run).
    public static func compute(settings: InstallSettings, deps: InstallDependencies, verifyOnly: Bool) async -> PhaseOutcome {
        var ev = Phase3Evidence()
        ev.karpenter.namespace = settings.karpenter.namespace
        ev.karpenter.version = settings.karpenter.version
        var blockers: [Blocker] = []
        var warnings: [String] = []
        let console = deps.console
        func done(_ ok: Bool, forced: Bool = false) -> PhaseOutcome {
            PhaseOutcome(
                phase: .compute, ok: ok, evidence: (try? JSONValue(encoding: ev)) ?? .null, blockers: blockers, warnings: warnings,
                commands: deps.ledger.drain(), verifiedOnly: verifyOnly, forced: forced)
        }
        let probe = ClusterProbe(kubectl: deps.kubectl)

        // STEP 1: platform health (nodes + CoreDNS); stop at once when unhealthy.
        console.progress("phase3: checking platform health (nodes, CoreDNS)")
        let health: PlatformHealth
        do {
            health = try await probe.platformHealth()
        } catch {
            blockers.append(Blocker(.kubernetesUnreachable, "could not read nodes or CoreDNS: \(error)", remediation: "check --kubeconfig/--context"))
            return done(false)
        }
        ev.platform = .init(
            nodesTotal: health.nodes.total, nodesReady: health.nodes.ready, corednsReady: health.coredns.ready,
            corednsReplicas: health.coredns.replicas, platformHealthy: health.healthy)
        guard health.healthy else {
            blockers = health.blockers
            return done(false)
        }

        // STEP 2: the Helm release state, over every status.
        let namespace = settings.karpenter.namespace
        let releaseName = settings.karpenter.release
        let helmVersion: HelmVersion
        var release: HelmRelease?
        do {
            helmVersion = try await deps.helm.version()
            ev.karpenter.helmVersion = helmVersion.raw
            release = try await deps.helm.status(release: releaseName, namespace: namespace)
        } catch {
            blockers.append(Blocker(.helmUnavailable, "helm could not be asked about release \(namespace)/\(releaseName): \(error)"))
            return done(false)
        }
        ev.karpenter.existed = release != nil
        ev.karpenter.initialStatus = release?.statusText ?? "absent"
        record(release, into: &ev)
        var action = ReleaseAction.classify(release, now: deps.clock.now(), stuckAfter: settings.thresholds.pendingStuckAfter.duration)
        if let started = release?.lastDeployed, release?.status.isPending == true {
            ev.karpenter.pendingAgeSeconds = (deps.clock.now().timeIntervalSince(started) * 10).rounded() / 10
        }
        // A pending operation younger than the threshold: poll until it ends or turns stuck.
        while action == .wait {
            console.progress("phase3: release \(releaseName) is \(release?.statusText ?? "?"); waiting for it to settle")
            do {
                try await deps.clock.sleep(settings.thresholds.pollInterval.duration)
                release = try await deps.helm.status(release: releaseName, namespace: namespace)
            } catch {
                blockers.append(Blocker(.helmUnavailable, "helm status \(releaseName) failed while waiting: \(error)"))
                return done(false)
            }
            record(release, into: &ev)
            action = ReleaseAction.classify(release, now: deps.clock.now(), stuckAfter: settings.thresholds.pendingStuckAfter.duration)
        }
        ev.karpenter.action = action.rawValue
        ev.karpenter.needsRepair = action == .repair
        if action == .stuck {
            ev.karpenter.stuck = true
            let status = release?.statusText ?? "pending"
            let fix: String
            switch release?.status {
            case .pendingInstall?:
                fix = "no revision was ever deployed: `helm uninstall \(releaseName) -n \(namespace)`, then re-run `kh install phase3`"
            case .uninstalling?:
                fix = "`helm uninstall \(releaseName) -n \(namespace) --no-hooks`, then re-run `kh install phase3`"
            default:
                fix =
                    "`helm history \(releaseName) -n \(namespace)`, then `helm rollback \(releaseName) <last deployed revision> -n \(namespace)`, then re-run"
            }
            let age = ev.karpenter.pendingAgeSeconds.map { "for \(Duration.seconds($0).humanDescription)" } ?? "with no start time"
            blockers.append(
                Blocker(
                    .helmReleaseStuck,
                    "Helm release \(namespace)/\(releaseName) is \(status) \(age), past the \(settings.thresholds.pendingStuckAfter) threshold: "
                        + "Helm refuses upgrades while it holds the release lock", remediation: fix))
            return done(false)
        }

        // STEP 3: repair, fresh install, or skip.
        if action != .skip {
            if verifyOnly {
                let what = action == .repair ? "needs repair (status \(release?.statusText ?? "?"))" : "is not installed"
                blockers.append(
                    Blocker(
                        .karpenterNotInstalled, "Karpenter release \(namespace)/\(releaseName) \(what); dry run: not changed",
                        remediation: "run `kh install phase3 --yes`"))
            } else {
                let request = HelmUpgradeRequest(
                    release: releaseName, chart: settings.karpenter.chart, version: settings.karpenter.version, namespace: namespace,
                    values: chartValues(settings), timeout: settings.karpenter.helmTimeout.duration, rollbackOnFailure: true)
                console.progress(
                    "phase3: \(action == .repair ? "repairing" : "installing") Karpenter \(settings.karpenter.version) (helm upgrade --install, --wait --timeout \(LiveHelm.goDuration(request.timeout)), \(helmVersion.rollbackFlag))"
                )
                ev.karpenter.scriptRan = true
                ev.karpenter.repairAttempted = action == .repair
                do {
                    let outcome = try await deps.helm.upgradeInstall(request, version: helmVersion)
                    ev.karpenter.helmOutcome = outcome.summary + (outcome.message.isEmpty ? "" : ": " + outcome.message)
                    if action == .repair { ev.karpenter.repairSucceeded = outcome.ok }
                    if !outcome.ok {
                        let code: BlockerCode = action == .repair ? .karpenterRepairFailed : .karpenterSetupFailed
                        blockers.append(
                            Blocker(
                                code, "helm upgrade --install \(releaseName) failed (\(outcome.summary)): \(outcome.message)",
                                remediation: "read the helm log in the run folder; `helm history \(releaseName) -n \(namespace)`"))
                    }
                } catch {
                    blockers.append(Blocker(action == .repair ? .karpenterRepairFailed : .karpenterSetupFailed, "helm could not run: \(error)"))
                }
                if let after = try? await deps.helm.status(release: releaseName, namespace: namespace) {
                    release = after
                    record(after, into: &ev)
                } else {
                    release = nil
                    record(nil, into: &ev)
                }
            }
        }
        ev.karpenter.installed = release?.status == .deployed
        if let version = release?.chartVersion { ev.karpenter.version = version }

        // STEP 4: the controller deployment must be Ready.
        let helmFailed = !blockers.isEmpty
        do {
            let wait = helmFailed || verifyOnly ? Duration.zero : settings.thresholds.controllerWait.duration
            console.progress("phase3: waiting up to \(wait.humanDescription) for deployment \(namespace)/\(settings.karpenter.controllerDeployment)")
            ev.karpenter.controllerReady = try await probe.waitForController(
                name: settings.karpenter.controllerDeployment, namespace: namespace, timeout: wait,
                interval: settings.thresholds.pollInterval.duration, clock: deps.clock)
        } catch {
            blockers.append(Blocker(.kubernetesUnreachable, "could not read the controller deployment: \(error)"))
            return done(false)
        }

        // STEP 5: not Ready: capture the Pending pods' events into the blocker.
        if !ev.karpenter.controllerReady {
            do {
                ev.karpenter.pendingPods = try await probe.pendingPods(selector: settings.karpenter.podSelector, namespace: namespace)
            } catch {
                warnings.append("could not list the controller pods: \(error)")
            }
            var message = "Karpenter controller deployment \(namespace)/\(settings.karpenter.controllerDeployment) is not Ready"
            if ev.karpenter.pendingPods.isEmpty {
                message += "; no Pending controller pods found"
            } else {
                message += "; \(ev.karpenter.pendingPods.count) controller pod(s) Pending:"
                for pod in ev.karpenter.pendingPods {
                    message +=
                        "\n  pod \(pod.name):\n"
                        + (pod.events.isEmpty ? "    (no events)" : pod.events.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
                }
            }
            blockers.append(
                Blocker(
                    .controllerNotReady, message,
                    remediation: "`kubectl -n \(namespace) describe pods -l \(settings.karpenter.podSelector)`; fix scheduling, then re-run phase 3"))
        }

        // FINAL: ok only when the controller is Ready; --force overrides that gate alone.
        if !ev.karpenter.controllerReady && settings.force && blockers.allSatisfy({ $0.code == BlockerCode.controllerNotReady.rawValue }) {
            warnings += blockers.map { "forced past \($0.code): \($0.message)" }
            blockers = []
            return done(true, forced: true)
        }
        return done(blockers.isEmpty && ev.karpenter.controllerReady)
    }

    static func record(_ release: HelmRelease?, into ev: inout Phase3Evidence) {
        ev.karpenter.release = .init(exists: release != nil, status: release?.statusText ?? "absent", revision: release?.revision ?? 0)
    }

    /// The chart values: the cluster name, the interruption queue, then the config's own.
    static func chartValues(_ settings: InstallSettings) -> [(String, String)] {
        var values: [(String, String)] = [
            ("settings.clusterName", settings.clusterName), ("settings.interruptionQueue", settings.queueName),
        ]
        for (key, value) in settings.karpenter.values.sorted(by: { $0.key < $1.key }) {
            values.removeAll { $0.0 == key }
            values.append((key, value))
        }
        return values
    }
}

/// The phases' entry points.
public enum InstallPhases {}
