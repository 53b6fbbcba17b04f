import Foundation
import KhCore
import KhProcess
import Synchronization

/// The four phases of the install, in order.
public enum InstallPhase: String, Codable, Sendable, CaseIterable, Comparable {
    case foundation, prerequisites, compute, verify

    /// `phase1` … `phase4`, as the commands are named.
    public var command: String { "phase\(number)" }
    public var number: Int { (Self.allCases.firstIndex(of: self) ?? 0) + 1 }
    /// The evidence file of this phase in a run folder.
    public var evidenceFile: String { "\(command)-\(rawValue).json" }
    public var next: InstallPhase? { Self.allCases.first { $0.number == number + 1 } }

    public static func < (a: InstallPhase, b: InstallPhase) -> Bool { a.number < b.number }
}

/// Why a phase cannot be done: a stable code and a message a person can act on.
public struct Blocker: Codable, Sendable, Equatable {
    public var code: String
    public var message: String
    /// What to do about it, when kh knows.
    public var remediation: String?

    public init(_ code: BlockerCode, _ message: String, remediation: String? = nil) {
        self.code = code.rawValue
        self.message = message
        self.remediation = remediation
    }
}

/// Every blocker code kh writes (docs/install.md lists them with their meaning).
public enum BlockerCode: String, Sendable, CaseIterable {
    // input
    case missingClusterName = "MISSING_CLUSTER_NAME"
    case missingRegion = "MISSING_REGION"
    case missingCredentials = "MISSING_CREDENTIALS"
    // phase 1
    case clusterNotFound = "CLUSTER_NOT_FOUND"
    case clusterCreateFailed = "CLUSTER_CREATE_FAILED"
    case clusterNotActive = "CLUSTER_NOT_ACTIVE"
    case nodegroupCreateFailed = "NODEGROUP_CREATE_FAILED"
    case kubeconfigUpdateFailed = "KUBECONFIG_UPDATE_FAILED"
    case noNodesCreated = "NO_NODES_CREATED"
    case nodesNotReady = "NODES_NOT_READY"
    // phase 2
    case iamRoleFailed = "IAM_ROLE_FAILED"
    case iamPolicyAttachFailed = "IAM_POLICY_ATTACH_FAILED"
    case instanceProfileFailed = "INSTANCE_PROFILE_FAILED"
    case interruptionQueueFailed = "INTERRUPTION_QUEUE_FAILED"
    case interruptionQueuePolicyFailed = "INTERRUPTION_QUEUE_POLICY_FAILED"
    case interruptionRuleFailed = "INTERRUPTION_RULE_FAILED"
    case podIdentityAssociationFailed = "POD_IDENTITY_ASSOCIATION_FAILED"
    case discoveryTagsFailed = "DISCOVERY_TAGS_FAILED"
    case noDiscoveryTargets = "NO_DISCOVERY_TARGETS"
    case prerequisiteMissing = "PREREQUISITE_MISSING"
    // phase 3 (the runbook's)
    case noNodesAvailable = "NO_NODES_AVAILABLE"
    case noReadyNodes = "NO_READY_NODES"
    case phase1Incomplete = "PHASE1_INCOMPLETE"
    case karpenterSetupFailed = "KARPENTER_SETUP_FAILED"
    case karpenterRepairFailed = "KARPENTER_REPAIR_FAILED"
    case controllerNotReady = "KARPENTER_CONTROLLER_NOT_READY"
    case helmReleaseStuck = "HELM_RELEASE_STUCK"
    case helmReleaseBusy = "HELM_RELEASE_BUSY"
    case helmUnavailable = "HELM_UNAVAILABLE"
    // phase 4
    case karpenterNotInstalled = "KARPENTER_NOT_INSTALLED"
    case nodeClassApplyFailed = "NODECLASS_APPLY_FAILED"
    case noNodeClaim = "NO_NODECLAIM"
    // any phase
    case kubernetesUnreachable = "KUBERNETES_UNREACHABLE"
    case awsAPIFailed = "AWS_API_FAILED"

    /// Codes meaning an earlier phase is not done: the run is `blocked_phase`, not an error.
    public static let dependency: Set<String> = [
        noNodesAvailable.rawValue, noReadyNodes.rawValue, phase1Incomplete.rawValue, clusterNotFound.rawValue,
        prerequisiteMissing.rawValue, karpenterNotInstalled.rawValue,
    ]

    /// Codes of a gate that was checked and not met (exit 1) rather than a tool or API failure (exit 4).
    public static let checkFailures: Set<String> = [
        controllerNotReady.rawValue, noNodesCreated.rawValue, nodesNotReady.rawValue, noNodeClaim.rawValue, clusterNotActive.rawValue,
        noDiscoveryTargets.rawValue,
    ]

    /// The phase that must be fixed for a dependency blocker.
    public static func phaseToFix(_ code: String) -> InstallPhase? {
        switch code {
        case noNodesAvailable.rawValue, noReadyNodes.rawValue, phase1Incomplete.rawValue, clusterNotFound.rawValue: .foundation
        case prerequisiteMissing.rawValue: .prerequisites
        case karpenterNotInstalled.rawValue: .compute
        default: nil
        }
    }
}

/// One command or API call a phase made, and how it ended.
public struct CommandRecord: Codable, Sendable, Equatable {
    /// The command line (secrets redacted) or `aws <service> <Action> …`.
    public var command: String
    /// `exit 0`, `exit 1`, `HTTP 200`, `timed out`, `not found`.
    public var outcome: String
    public var ok: Bool
    public var durationSeconds: Double
}

/// Collects every command and API call of a phase, for its evidence.
public final class CommandLedger: Sendable {
    private let entries = Mutex<[CommandRecord]>([])
    public init() {}
    public func add(_ record: CommandRecord) { entries.withLock { $0.append(record) } }
    /// The records since the last drain, emptied.
    public func drain() -> [CommandRecord] {
        entries.withLock { all in
            defer { all = [] }; return all
        }
    }
    public var all: [CommandRecord] { entries.withLock { $0 } }
}

/// A runner that records every command it runs in a ledger (the commands of a phase's evidence).
public struct RecordingRunner: CommandRunner {
    public var base: any CommandRunner
    public var ledger: CommandLedger
    public var redactor: Redactor?

    public init(base: any CommandRunner, ledger: CommandLedger, redactor: Redactor?) {
        self.base = base
        self.ledger = ledger
        self.redactor = redactor
    }

    public var location: String { base.location }

    public func run(_ command: Command, options: RunOptions) async throws -> CommandResult {
        let display = redactor?.redactArguments([command.executable] + command.arguments).joined(separator: " ") ?? command.displayString
        do {
            let result = try await base.run(command, options: options)
            let outcome = result.timedOut ? "timed out after \(result.duration.humanDescription)" : "\(result.termination)"
            ledger.add(CommandRecord(command: display, outcome: outcome, ok: result.succeeded, durationSeconds: result.duration.seconds))
            return result
        } catch {
            ledger.add(CommandRecord(command: display, outcome: "could not start: \(error)", ok: false, durationSeconds: 0))
            throw error
        }
    }
}

/// The outcome of one phase.
public struct PhaseOutcome: Sendable {
    public var phase: InstallPhase
    public var ok: Bool
    /// The phase's own evidence (the runbook's fields).
    public var evidence: JSONValue
    public var blockers: [Blocker]
    /// Notes that do not block (a forced gate, a skipped step).
    public var warnings: [String]
    public var commands: [CommandRecord]
    /// The phase only re-verified what an earlier run did.
    public var verifiedOnly: Bool
    /// `--force` overrode a gate.
    public var forced: Bool

    public init(
        phase: InstallPhase, ok: Bool, evidence: JSONValue, blockers: [Blocker] = [], warnings: [String] = [], commands: [CommandRecord] = [],
        verifiedOnly: Bool = false, forced: Bool = false
    ) {
        self.phase = phase
        self.ok = ok
        self.evidence = evidence
        self.blockers = blockers
        self.warnings = warnings
        self.commands = commands
        self.verifiedOnly = verifiedOnly
        self.forced = forced
    }

    /// A dependency blocker makes the run `blocked_phase`.
    public var isDependencyIssue: Bool { blockers.contains { BlockerCode.dependency.contains($0.code) } }
}

/// The document written per phase: `phaseN-<name>.json` in the run folder.
public struct PhaseDocument: Codable, Sendable {
    public static let currentSchemaVersion = 1
    public var schemaVersion = PhaseDocument.currentSchemaVersion
    public var phase: InstallPhase
    public var command: String
    public var ok: Bool
    public var cluster: String
    public var region: String?
    public var startedAt: Date
    public var endedAt: Date
    public var verifiedOnly: Bool
    public var forced: Bool
    public var evidence: JSONValue
    public var blockers: [Blocker]
    public var warnings: [String]
    public var commands: [CommandRecord]
}

/// What `kh install all` (and each phase command) reports: the runbook's InstallResult.
public struct InstallResult: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case ok, blockedPhase = "blocked_phase", error }
    public enum Action: String, Codable, Sendable { case `continue`, fix, stop }
    public struct Next: Codable, Sendable, Equatable {
        public var action: Action
        public var phase: InstallPhase?
        public init(action: Action, phase: InstallPhase?) {
            self.action = action
            self.phase = phase
        }
    }

    public var status: Status
    /// The phase the run ended in (the last one run).
    public var phase: InstallPhase
    /// Each phase's evidence by phase name.
    public var evidence: [String: JSONValue]
    public var blockers: [Blocker]
    public var warnings: [String]
    public var next: Next
    /// Phases re-verified from an earlier run's evidence rather than redone.
    public var resumed: [InstallPhase]

    /// 0 ok, 3 blocked_phase; errors: 1 when a gate was checked and not met, else 4.
    public var exitCode: KhExitCode {
        switch status {
        case .ok: return .success
        case .blockedPhase: return .blocked
        case .error:
            return blockers.allSatisfy { BlockerCode.checkFailures.contains($0.code) } && !blockers.isEmpty ? .checkFailed : .external
        }
    }

    /// The result after `outcome`, the last phase run (`evidence` holds every phase run).
    public static func after(_ outcome: PhaseOutcome, evidence: [String: JSONValue], resumed: [InstallPhase], last: InstallPhase) -> InstallResult {
        if outcome.ok {
            let nextPhase = outcome.phase == last ? nil : outcome.phase.next
            return InstallResult(
                status: .ok, phase: outcome.phase, evidence: evidence, blockers: outcome.blockers, warnings: outcome.warnings,
                next: Next(action: .continue, phase: nextPhase), resumed: resumed)
        }
        if outcome.isDependencyIssue {
            let fix = outcome.blockers.compactMap { BlockerCode.phaseToFix($0.code) }.min() ?? .foundation
            return InstallResult(
                status: .blockedPhase, phase: outcome.phase, evidence: evidence, blockers: outcome.blockers, warnings: outcome.warnings,
                next: Next(action: .fix, phase: fix), resumed: resumed)
        }
        return InstallResult(
            status: .error, phase: outcome.phase, evidence: evidence, blockers: outcome.blockers, warnings: outcome.warnings,
            next: Next(action: .stop, phase: nil), resumed: resumed)
    }

    /// Text for people.
    public var text: String {
        var lines = ["status: \(status.rawValue)", "phase: \(phase.rawValue) (\(phase.command))"]
        if !resumed.isEmpty { lines.append("re-verified from earlier evidence: " + resumed.map(\.command).joined(separator: ", ")) }
        for blocker in blockers {
            lines.append("blocker \(blocker.code): \(blocker.message)")
            if let remediation = blocker.remediation { lines.append("  fix: \(remediation)") }
        }
        for warning in warnings { lines.append("warning: \(warning)") }
        lines.append("next: \(next.action.rawValue)" + (next.phase.map { " \($0.rawValue) (\($0.command))" } ?? ""))
        return lines.joined(separator: "\n")
    }
}
