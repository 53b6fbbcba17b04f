import Foundation
import KhCore
import KhPluginAPI

/// Runs phases, writes their evidence documents, and resumes from earlier runs.
public enum InstallOrchestrator {
    /// Runs one phase (dry run or re-verification with `verifyOnly`).
    public static func run(_ phase: InstallPhase, settings: InstallSettings, deps: InstallDependencies, verifyOnly: Bool) async -> PhaseOutcome {
        _ = deps.ledger.drain()
        switch phase {
        case .foundation: return await InstallPhases.foundation(settings: settings, deps: deps, verifyOnly: verifyOnly)
        case .prerequisites: return await InstallPhases.prerequisites(settings: settings, deps: deps, verifyOnly: verifyOnly)
        case .compute: return await InstallPhases.compute(settings: settings, deps: deps, verifyOnly: verifyOnly)
        case .verify: return await InstallPhases.verifyProvisioning(settings: settings, deps: deps, verifyOnly: verifyOnly)
        }
    }

    /// Runs `phases` in order inside the evidence run: a phase whose latest evidence (in
    /// an earlier run folder for the same cluster) says done is re-verified without
    /// changes; only when that fails is it redone. Stops at the first phase not ok.
    public static func execute(
        phases: [InstallPhase], settings: InstallSettings, deps: InstallDependencies, run: EvidenceRun, evidenceRoot: String,
        fileSystem: any FileSystem, dryRun: Bool, resume: Bool
    ) async throws -> InstallResult {
        let prior = resume ? PriorEvidence.done(root: evidenceRoot, cluster: settings.clusterName, excluding: run.runID, fileSystem: fileSystem) : [:]
        var evidence: [String: JSONValue] = [:]
        var resumed: [InstallPhase] = []
        var last: PhaseOutcome?
        for phase in phases {
            var deps = deps
            deps.kubectl.logPath = run.logPath(for: phase.command)
            deps.helm = deps.helm.logging(to: run.logPath(for: phase.command))
            let started = deps.clock.now()
            var outcome: PhaseOutcome
            if let from = prior[phase], !dryRun {
                deps.console.progress("\(phase.command): done in run \(from); re-verifying")
                outcome = await Self.run(phase, settings: settings, deps: deps, verifyOnly: true)
                if outcome.ok {
                    resumed.append(phase)
                    // First: what the run did with this phase; the phase's own notes follow.
                    outcome.warnings.insert("re-verified: done in run \(from), not redone", at: 0)
                } else {
                    deps.console.progress(
                        "\(phase.command): re-verification failed (\(outcome.blockers.map(\.code).joined(separator: ", "))); redoing")
                    outcome = await Self.run(phase, settings: settings, deps: deps, verifyOnly: false)
                }
            } else {
                deps.console.progress("\(phase.command) (\(phase.rawValue))\(dryRun ? ": dry run" : "")")
                outcome = await Self.run(phase, settings: settings, deps: deps, verifyOnly: dryRun)
            }
            try write(
                outcome, settings: settings, run: run, started: started, ended: deps.clock.now(), fileSystem: fileSystem, redactor: deps.redactor)
            evidence[phase.rawValue] = outcome.evidence
            last = outcome
            if !outcome.ok { break }
        }
        guard let last else { throw KhError.internalError("no phase to run") }
        let result = InstallResult.after(last, evidence: evidence, resumed: resumed, last: phases.last ?? last.phase)
        let data = try KhJSON.encoder(pretty: true).encode(result)
        try fileSystem.writeAtomically(deps.redactor.redact(data) + Data("\n".utf8), to: run.directory + "/install-result.json")
        try run.record(
            EvidenceRecord(
                kind: "install-result", name: "install", status: result.status == .ok ? .pass : .fail,
                message: "\(result.status.rawValue) at \(result.phase.command); next: \(result.next.action.rawValue)"
                    + (result.next.phase.map { " \($0.command)" } ?? "")))
        return result
    }

    /// Writes `phaseN-<name>.json` and one record per phase and per blocker.
    static func write(
        _ outcome: PhaseOutcome, settings: InstallSettings, run: EvidenceRun, started: Date, ended: Date, fileSystem: any FileSystem,
        redactor: Redactor
    ) throws {
        let document = PhaseDocument(
            phase: outcome.phase, command: outcome.phase.command, ok: outcome.ok, cluster: settings.clusterName, region: settings.region,
            startedAt: started, endedAt: ended, verifiedOnly: outcome.verifiedOnly, forced: outcome.forced, evidence: outcome.evidence,
            blockers: outcome.blockers, warnings: outcome.warnings, commands: outcome.commands)
        let data = try KhJSON.encoder(pretty: true).encode(document)
        try fileSystem.writeAtomically(redactor.redact(data) + Data("\n".utf8), to: run.directory + "/" + outcome.phase.evidenceFile)
        try run.record(
            EvidenceRecord(
                kind: "phase", name: outcome.phase.command, status: outcome.ok ? (outcome.forced ? .warn : .pass) : .fail,
                message: outcome.ok
                    ? (outcome.verifiedOnly ? "verified" : "done") + (outcome.forced ? " (forced)" : "")
                    : outcome.blockers.map(\.code).joined(separator: ", "),
                durationSeconds: ended.timeIntervalSince(started), log: run.relativeLogPath(for: outcome.phase.command),
                data: ["file": .string(outcome.phase.evidenceFile), "commands": .number(Double(outcome.commands.count))]))
        for blocker in outcome.blockers {
            try run.record(EvidenceRecord(kind: "blocker", name: blocker.code, status: .fail, message: blocker.message))
        }
    }
}

/// Reads earlier runs' phase documents.
public enum PriorEvidence {
    /// For each phase, the run whose latest document for `cluster` says ok (newest first;
    /// a later failed document for the phase means not done).
    public static func done(root: String, cluster: String, excluding: String, fileSystem: any FileSystem) -> [InstallPhase: String] {
        guard let runs = try? fileSystem.list(root) else { return [:] }
        var decided: [InstallPhase: String?] = [:]
        for runID in runs.sorted(by: >) where runID != excluding {
            for phase in InstallPhase.allCases where decided[phase] == nil {
                let path = "\(root)/\(runID)/\(phase.evidenceFile)"
                guard fileSystem.exists(path), let data = try? fileSystem.read(path),
                    let document = try? KhJSON.decoder().decode(PhaseDocument.self, from: data), document.cluster == cluster
                else { continue }
                decided[phase] = document.ok && !document.forced ? runID : .some(nil)
            }
        }
        return decided.compactMapValues { $0 }
    }
}
