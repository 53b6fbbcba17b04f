import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI

extension Gitops {
    /// `kh gitops diagnose [STAGE]`: D1 in parallel, the D4 tree, the D5 gotchas, D7 out.
    struct Diagnose: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diagnose",
            abstract: "Gather the D1 groups in parallel, walk the D4 decision tree and print the D7 DIAGNOSIS block.",
            discussion: "Without STAGE every stage is diagnosed; a fine stage prints a short block. Exit 1 when a stage is not fine.")

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The stage to diagnose (default: every stage).") var stage: String?

        func validate() throws {
            if let stage, stage.isEmpty { throw ValidationError("STAGE: expected a stage name, got an empty string") }
        }

        func run() async throws {
            let runtime = try Runtime(global)
            let context = runtime.context
            let cluster = try await runtime.cluster()
            let code = try await context.withEvidence { run in
                let (diagnoses, snapshot) = try await Diagnose.diagnose(cluster: cluster, stage: stage, clock: context.clock)
                _ = try run.record(
                    EvidenceRecord(kind: "gather-path", name: snapshot.readPath.used.rawValue, status: .pass, message: snapshot.readPath.summary))
                for group in snapshot.groups {
                    _ = try run.record(
                        EvidenceRecord(
                            kind: "gather", name: group.name, status: group.ok ? .pass : .fail,
                            message: group.error ?? group.commands.joined(separator: "; "), durationSeconds: group.seconds))
                }
                for d in diagnoses {
                    _ = try run.record(
                        EvidenceRecord(
                            kind: "diagnosis", name: d.stage, status: d.fine ? .pass : .fail, message: d.rootCause, data: try JSONValue(encoding: d)))
                }
                if context.console.format == .json {
                    try context.console.json(diagnoses)
                } else {
                    context.console.write(diagnoses.map(Report.diagnosis).joined(separator: "\n"), to: .stdout)
                }
                let bad = diagnoses.filter { !$0.fine }
                return (
                    bad.isEmpty ? .success : .checkFailed,
                    bad.isEmpty ? "all stages fine" : bad.map { "\($0.stage): \($0.rootCause)" }.joined(separator: "; ")
                )
            }
            try Runtime.exit(code)
        }

        /// Gathers and diagnoses (the library entry point tests and the benchmark use).
        static func diagnose(cluster: Cluster, stage: String?, clock: KhClock) async throws -> ([Diagnosis], PipelineSnapshot) {
            let snapshot = await Gatherer.gather(cluster, clock: clock)
            guard snapshot.answered("1-kargo-state") else {
                let error = snapshot.groups.first { $0.name == "1-kargo-state" }?.error ?? "no answer"
                throw KhError.external("cannot read the Kargo stages: \(error)")
            }
            let diagnoser = Diagnoser(cluster: cluster, snapshot: snapshot, now: clock.now())
            return (try diagnoser.diagnoseAll(only: stage), snapshot)
        }
    }
}
