import EKSKarpenterInstall
import Foundation
import KhCore
import KhKube
import KhTestSupport
import Testing

/// Every test against the private kube emulator (real kubectl), the helm stand-in and
/// the testbed's moto lives in this one serialized suite: the emulator is reset per test.
@Suite("kh install against the emulated API, the helm stand-in and moto", .serialized, .kubeEmulator)
struct InstallTests {}

extension InstallTests {
    // MARK: the runbook's before/after table

    @Test("no nodes: phase 3 stops at once with blocked_phase NO_NODES_AVAILABLE, next fix foundation, helm never asked")
    func noNodes() async throws {
        let bed = try await Bed()
        try await bed.deployment("coredns", namespace: "kube-system", replicas: 2, ready: 0, label: "kube-dns")
        let (result, run, output) = try await bed.run([.compute], config: bed.config())
        #expect(result.status == .blockedPhase)
        #expect(result.exitCode == .blocked)
        #expect(result.blockers.map(\.code).contains("NO_NODES_AVAILABLE"))
        #expect(result.next == .init(action: .fix, phase: .foundation))
        #expect(bed.helmCallArgs.isEmpty, "helm must not be called when the platform is unhealthy")
        let doc = try bed.document(run, .compute)
        #expect(doc.at("ok")?.bool == false)
        #expect(doc.at("evidence.platform.nodesTotal")?.number == 0)
        #expect(doc.at("evidence.platform.platformHealthy")?.bool == false)
        #expect(doc.at("evidence.karpenter.scriptRan")?.bool == false)
        #expect((doc.at("commands")?.array ?? []).contains { $0["command"]?.stringValue?.contains("get nodes") == true })
        #expect(output.stderr.contains("platform health"))
    }

    @Test("nodes but none Ready: NO_READY_NODES; CoreDNS not Ready: PHASE1_INCOMPLETE; both blocked_phase")
    func notReadyNodesAndCoreDNS() async throws {
        let bed = try await Bed()
        try await bed.node("ip-10-0-1-1.ec2.internal", ready: false)
        try await bed.deployment("coredns", namespace: "kube-system", replicas: 2, ready: 0, label: "kube-dns")
        let (result, run, _) = try await bed.run([.compute], config: bed.config())
        #expect(result.status == .blockedPhase)
        #expect(Set(result.blockers.map(\.code)) == ["NO_READY_NODES", "PHASE1_INCOMPLETE"])
        #expect(result.blockers.first { $0.code == "PHASE1_INCOMPLETE" }?.message.contains("0/2 ready replicas") == true)
        let doc = try bed.document(run, .compute)
        #expect(doc.at("evidence.platform.nodesTotal")?.number == 1)
        #expect(doc.at("evidence.platform.nodesReady")?.number == 0)
        #expect(doc.at("evidence.platform.corednsReady")?.bool == false)
        #expect(bed.helmCallArgs.isEmpty)
    }

    @Test("failed Helm release, repair succeeds: upgrade --install --wait --timeout 10m --atomic (Helm 3), controller Ready, ok")
    func failedReleaseRepaired() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmRelease("failed", revision: 2)
        let (result, run, _) = try await bed.run([.compute], config: bed.config())
        #expect(result.status == .ok, "\(result.text)")
        #expect(result.exitCode == .success)
        #expect(result.next == .init(action: .continue, phase: nil))
        let upgrade = try #require(bed.helmUpgrades.first)
        #expect(bed.helmUpgrades.count == 1)
        #expect(Array(upgrade.prefix(4)) == ["upgrade", "--install", "karpenter", "oci://public.ecr.aws/karpenter/karpenter"])
        for expected in [
            ["--version", "1.8.3"], ["--namespace", "kube-system"], ["--timeout", "10m"], ["--set", "settings.clusterName=\(bed.cluster)"],
        ] {
            #expect(upgrade.indices.contains { upgrade[$0...].starts(with: expected) }, "missing \(expected) in \(upgrade)")
        }
        #expect(upgrade.contains("--wait") && upgrade.contains("--atomic") && !upgrade.contains("--rollback-on-failure"))
        let doc = try bed.document(run, .compute)
        let k = try #require(doc.at("evidence.karpenter"))
        #expect(k.at("existed")?.bool == true)
        #expect(k.at("needsRepair")?.bool == true)
        #expect(k.at("repairAttempted")?.bool == true)
        #expect(k.at("repairSucceeded")?.bool == true)
        #expect(k.at("scriptRan")?.bool == true)
        #expect(k.at("installed")?.bool == true)
        #expect(k.at("controllerReady")?.bool == true)
        #expect(k.at("initialStatus")?.stringValue == "failed")
        #expect(k.at("release.status")?.stringValue == "deployed")
        #expect(k.at("release.revision")?.number == 3)
        #expect(k.at("release.exists")?.bool == true)
        #expect(k.at("version")?.stringValue == "1.8.3")
        #expect(k.at("namespace")?.stringValue == "kube-system")
        let commands = doc.at("commands")?.array ?? []
        #expect(commands.contains { $0["command"]?.stringValue?.contains("upgrade --install") == true && $0["ok"]?.bool == true })
        // The log of the phase holds helm's output.
        let log = try String(contentsOfFile: run.directory + "/logs/phase3.log", encoding: .utf8)
        #expect(log.contains("has been upgraded"))
    }

    @Test("failed Helm release, repair fails: error KARPENTER_REPAIR_FAILED with helm's message, exit 4, controller not Ready")
    func failedReleaseRepairFails() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmRelease("failed", revision: 2, plan: .init(outcome: "fail", ready: false, message: "timed out waiting for the condition"))
        let (result, run, _) = try await bed.run([.compute], config: bed.config())
        #expect(result.status == .error)
        #expect(result.exitCode == .external)
        #expect(result.next == .init(action: .stop, phase: nil))
        let repair = try #require(result.blockers.first { $0.code == "KARPENTER_REPAIR_FAILED" })
        #expect(repair.message.contains("timed out waiting for the condition"))
        #expect(result.blockers.contains { $0.code == "KARPENTER_CONTROLLER_NOT_READY" })
        let doc = try bed.document(run, .compute)
        #expect(doc.at("evidence.karpenter.repairAttempted")?.bool == true)
        #expect(doc.at("evidence.karpenter.repairSucceeded")?.bool == false)
        #expect(doc.at("evidence.karpenter.installed")?.bool == false)
        #expect(doc.at("evidence.karpenter.release.status")?.stringValue == "failed")
        #expect(doc.at("ok")?.bool == false)
    }

    @Test("Pending controller pods: their FailedScheduling events are in the blocker message and the evidence")
    func pendingPodsEvents() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmRelease("deployed", revision: 1)
        try await bed.deployment("karpenter", namespace: "kube-system", replicas: 2, ready: 0)
        let event = "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available"
        try await bed.pendingControllerPod("karpenter-7d9f8c6b5-abcde", event: event)
        try await bed.pendingControllerPod("karpenter-7d9f8c6b5-fghij", event: event)
        let (result, run, _) = try await bed.run([.compute], config: bed.config())
        #expect(result.status == .error)
        #expect(result.exitCode == .checkFailed)
        let blocker = try #require(result.blockers.first { $0.code == "KARPENTER_CONTROLLER_NOT_READY" })
        #expect(blocker.message.contains("2 controller pod(s) Pending"))
        #expect(blocker.message.contains("karpenter-7d9f8c6b5-abcde"))
        #expect(blocker.message.contains("FailedScheduling"))
        #expect(blocker.message.contains("2 Insufficient cpu"))
        let doc = try bed.document(run, .compute)
        let pods = doc.at("evidence.karpenter.pendingPods")?.array ?? []
        #expect(pods.count == 2)
        #expect(pods.first?["events"]?.stringValue?.contains("Insufficient cpu") == true)
        #expect(doc.at("evidence.karpenter.action")?.stringValue == "skip")
        #expect(bed.helmUpgrades.isEmpty, "a deployed release is not reinstalled")
    }

    @Test("controller not Ready (no pods): phase 3 is not ok; --force marks it complete, recorded as forced with the blocker as a warning")
    func controllerNotReadyAndForce() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmRelease("deployed", revision: 4)
        try await bed.deployment("karpenter", namespace: "kube-system", replicas: 2, ready: 1)
        let (result, _, _) = try await bed.run([.compute], config: bed.config())
        #expect(result.status == .error)
        #expect(result.blockers.map(\.code) == ["KARPENTER_CONTROLLER_NOT_READY"])
        #expect(result.blockers[0].message.contains("no Pending controller pods found"))

        let (forced, run, _) = try await bed.run([.compute], config: bed.config(), force: true)
        #expect(forced.status == .ok)
        #expect(forced.blockers.isEmpty)
        #expect(forced.warnings.contains { $0.contains("forced past KARPENTER_CONTROLLER_NOT_READY") })
        let doc = try bed.document(run, .compute)
        #expect(doc.at("forced")?.bool == true)
        #expect(doc.at("evidence.karpenter.controllerReady")?.bool == false)
        // A forced phase is never taken as done by a later resumed run.
        let prior = PriorEvidence.done(root: bed.evidenceRoot, cluster: bed.cluster, excluding: "", fileSystem: LocalFileSystem())
        #expect(prior[.compute] == nil)
    }

    @Test("--force does not pass the platform gate")
    func forceKeepsPlatformGate() async throws {
        let bed = try await Bed()
        let (result, _, _) = try await bed.run([.compute], config: bed.config(), force: true)
        #expect(result.status == .blockedPhase)
        #expect(result.blockers.contains { $0.code == "NO_NODES_AVAILABLE" })
    }

    @Test("happy path: deployed release and Ready controller: ok, no helm upgrade, revision recorded")
    func happyPath() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform(nodes: 3)
        try bed.helmRelease("deployed", revision: 7)
        try await bed.deployment("karpenter", namespace: "kube-system", replicas: 2, ready: 2)
        let (result, run, _) = try await bed.run([.compute], config: bed.config())
        #expect(result.status == .ok)
        #expect(result.exitCode == .success)
        #expect(bed.helmUpgrades.isEmpty)
        let doc = try bed.document(run, .compute)
        #expect(doc.at("evidence.platform.nodesReady")?.number == 3)
        #expect(doc.at("evidence.platform.corednsReplicas.ready")?.number == 2)
        #expect(doc.at("evidence.karpenter.release.revision")?.number == 7)
        #expect(doc.at("evidence.karpenter.action")?.stringValue == "skip")
        #expect(doc.at("evidence.karpenter.controllerReady")?.bool == true)
        #expect(doc.at("evidence.karpenter.scriptRan")?.bool == false)
        let records = try String(contentsOfFile: run.directory + "/records.jsonl", encoding: .utf8)
        #expect(records.contains(#""kind":"phase""#) && records.contains(#""name":"phase3""#))
    }

    // MARK: beyond the table

    @Test("no release: fresh install with Helm 4 spells --rollback-on-failure; the stand-in makes the controller Ready")
    func freshInstallHelm4() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmPlan(.init(), version: "v4.0.5+g1b6053d")
        var config = bed.config()
        config.karpenter.version = "1.8.4"
        config.karpenter.values = ["replicas": "1"]
        let (result, run, _) = try await bed.run([.compute], config: config)
        #expect(result.status == .ok, "\(result.text)")
        let upgrade = try #require(bed.helmUpgrades.first)
        #expect(upgrade.contains("--rollback-on-failure") && !upgrade.contains("--atomic"))
        #expect(upgrade.contains("replicas=1") && upgrade.contains("1.8.4"))
        let doc = try bed.document(run, .compute)
        #expect(doc.at("evidence.karpenter.existed")?.bool == false)
        #expect(doc.at("evidence.karpenter.action")?.stringValue == "install")
        #expect(doc.at("evidence.karpenter.repairAttempted")?.bool == false)
        #expect(doc.at("evidence.karpenter.helmVersion")?.stringValue == "v4.0.5+g1b6053d")
        #expect(doc.at("evidence.karpenter.release.revision")?.number == 1)
    }

    @Test("fresh install that fails with rollback: KARPENTER_SETUP_FAILED, release gone, exit 4")
    func freshInstallFails() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmPlan(.init(outcome: "fail", ready: false, message: "failed pre-install: timed out"))
        let (result, run, _) = try await bed.run([.compute], config: bed.config())
        #expect(result.exitCode == .external)
        let blocker = try #require(result.blockers.first { $0.code == "KARPENTER_SETUP_FAILED" })
        #expect(blocker.message.contains("uninstalled due to atomic"))
        let doc = try bed.document(run, .compute)
        #expect(doc.at("evidence.karpenter.release.exists")?.bool == false)
    }

    @Test("a pending-upgrade release older than the threshold is stuck: HELM_RELEASE_STUCK with a rollback remedy, no upgrade attempted")
    func stuckPending() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmRelease("pending-upgrade", revision: 5, age: 3 * 3600)
        let (result, run, _) = try await bed.run([.compute], config: bed.config())
        #expect(result.status == .error)
        let blocker = try #require(result.blockers.first)
        #expect(blocker.code == "HELM_RELEASE_STUCK")
        #expect(blocker.remediation?.contains("helm rollback karpenter") == true)
        #expect(bed.helmUpgrades.isEmpty)
        let doc = try bed.document(run, .compute)
        #expect(doc.at("evidence.karpenter.stuck")?.bool == true)
        #expect((doc.at("evidence.karpenter.pendingAgeSeconds")?.number ?? 0) > 3 * 3600 - 60)
    }

    @Test("a young pending-install is waited on (polled) until the threshold, then reported stuck with an uninstall remedy")
    func youngPendingWaitsThenStuck() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmRelease("pending-install", revision: 1, age: 0)
        let (result, _, output) = try await bed.run([.compute], config: bed.config { $0.thresholds.pendingStuckAfter = KhDuration(.seconds(1)) })
        #expect(result.blockers.first?.code == "HELM_RELEASE_STUCK")
        #expect(result.blockers.first?.remediation?.contains("helm uninstall") == true)
        #expect(output.stderr.contains("waiting for it to settle"))
        #expect(bed.helmCallArgs.filter { $0.first == "status" }.count >= 2, "the release was polled while pending")
    }

    @Test("dry run: a failed release is reported, not repaired (KARPENTER_NOT_INSTALLED)")
    func dryRunDoesNotRepair() async throws {
        let bed = try await Bed()
        try await bed.healthyPlatform()
        try bed.helmRelease("failed")
        let (result, run, _) = try await bed.run([.compute], config: bed.config(), dryRun: true)
        #expect(result.blockers.first?.code == "KARPENTER_NOT_INSTALLED")
        #expect(bed.helmUpgrades.isEmpty)
        #expect(try bed.document(run, .compute).at("verifiedOnly")?.bool == true)
    }
}

@Suite("Helm release classification and output parsing")
struct HelmLogicTests {
    let now = Date(timeIntervalSince1970: 1_790_000_000)

    func release(_ status: String, age: TimeInterval?) -> HelmRelease {
        HelmRelease(
            name: "karpenter", namespace: "kube-system", statusText: status, revision: 3, chartVersion: "1.8.3", appVersion: "1.8.3",
            lastDeployed: age.map { now.addingTimeInterval(-$0) })
    }

    @Test("every Helm status maps to one action; pending ones by age against the threshold")
    func classification() {
        let limit = Duration.seconds(600)
        let expected: [(String, ReleaseAction, ReleaseAction)] = [
            ("deployed", .skip, .skip), ("failed", .repair, .repair), ("unknown", .repair, .repair), ("superseded", .repair, .repair),
            ("uninstalled", .install, .install), ("pending-install", .wait, .stuck), ("pending-upgrade", .wait, .stuck),
            ("pending-rollback", .wait, .stuck), ("uninstalling", .wait, .stuck), ("something-new", .repair, .repair),
        ]
        for (status, young, old) in expected {
            #expect(ReleaseAction.classify(release(status, age: 60), now: now, stuckAfter: limit) == young, "\(status) young")
            #expect(ReleaseAction.classify(release(status, age: 601), now: now, stuckAfter: limit) == old, "\(status) old")
        }
        #expect(ReleaseAction.classify(nil, now: now, stuckAfter: limit) == .install)
        #expect(ReleaseAction.classify(release("pending-upgrade", age: nil), now: now, stuckAfter: limit) == .stuck)
        #expect(Set(HelmReleaseStatus.allCases.map(\.rawValue)).count == 9)
    }

    @Test("the rollback flag follows the Helm major version; --timeout in Go's duration syntax")
    func flags() throws {
        #expect(HelmVersion(short: "v3.14.4+g81c902a")?.rollbackFlag == "--atomic")
        #expect(HelmVersion(short: "v4.0.5+g1b6053d\n")?.rollbackFlag == "--rollback-on-failure")
        #expect(HelmVersion(short: "garbage") == nil)
        #expect(LiveHelm.goDuration(.seconds(600)) == "10m")
        #expect(LiveHelm.goDuration(.seconds(3725)) == "1h2m5s")
        #expect(LiveHelm.goDuration(.seconds(45)) == "45s")
    }

    @Test("helm status and list JSON decode (revision as int and as string, Go time in list)")
    func parsing() throws {
        let status =
            #"{"name":"karpenter","info":{"first_deployed":"2026-01-24T10:00:00.123456789Z","last_deployed":"2026-01-24T11:00:00.5+01:00","deleted":"","description":"Upgrade complete","status":"pending-upgrade","notes":""},"chart":{"metadata":{"name":"karpenter","version":"1.8.3","appVersion":"1.8.3"}},"manifest":"","version":4,"namespace":"kube-system"}"#
        let r = try HelmJSON.status(Data(status.utf8))
        #expect(r.status == .pendingUpgrade && r.revision == 4 && r.chartVersion == "1.8.3")
        #expect(r.lastDeployed == Timestamp.parse("2026-01-24T10:00:00.5Z"))
        let list =
            #"[{"name":"karpenter","namespace":"kube-system","revision":"12","updated":"2026-01-24 10:00:00.25 +0000 UTC","status":"failed","chart":"karpenter-1.8.3","app_version":"1.8.3"}]"#
        let entries = try HelmJSON.list(Data(list.utf8), namespace: "kube-system")
        #expect(entries.first?.revision == 12 && entries.first?.status == .failed && entries.first?.chartVersion == "1.8.3")
        #expect(entries.first?.lastDeployed == Timestamp.parse("2026-01-24T10:00:00.25Z"))
    }

    @Test("the Events section of kubectl describe, last 15 lines")
    func eventsSection() {
        let describe =
            "Name: x\nStatus: Pending\nEvents:\n  Type     Reason            Age   From               Message\n  ----     ------            ----  ----               -------\n  Warning  FailedScheduling  5m    default-scheduler  0/2 nodes are available\n"
        let events = ClusterProbe.eventsSection(describe)
        #expect(events.hasPrefix("Type"))
        #expect(events.contains("FailedScheduling  5m    default-scheduler  0/2 nodes are available"))
        #expect(ClusterProbe.eventsSection("Events:  <none>\n") == "<none>")
        #expect(ClusterProbe.eventsSection("no events here") == "")
    }

    @Test("InstallResult: blocked_phase for dependency codes, exit 1 for unmet gates, 4 for tool failures")
    func resultMapping() {
        func outcome(_ codes: [BlockerCode]) -> PhaseOutcome {
            PhaseOutcome(phase: .compute, ok: codes.isEmpty, evidence: .null, blockers: codes.map { Blocker($0, "x") })
        }
        let blocked = InstallResult.after(outcome([.noReadyNodes]), evidence: [:], resumed: [], last: .verify)
        #expect(blocked.status == .blockedPhase && blocked.exitCode == .blocked && blocked.next == .init(action: .fix, phase: .foundation))
        let gate = InstallResult.after(outcome([.controllerNotReady]), evidence: [:], resumed: [], last: .verify)
        #expect(gate.status == .error && gate.exitCode == .checkFailed && gate.next.action == .stop)
        let tool = InstallResult.after(outcome([.karpenterRepairFailed, .controllerNotReady]), evidence: [:], resumed: [], last: .verify)
        #expect(tool.exitCode == .external)
        let ok = InstallResult.after(outcome([]), evidence: [:], resumed: [], last: .verify)
        #expect(ok.status == .ok && ok.next == .init(action: .continue, phase: .verify))
        let missing = InstallResult.after(
            PhaseOutcome(phase: .verify, ok: false, evidence: .null, blockers: [Blocker(.karpenterNotInstalled, "x")]), evidence: [:], resumed: [],
            last: .verify)
        #expect(missing.next == .init(action: .fix, phase: .compute))
    }
}
