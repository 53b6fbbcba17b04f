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
                // All at once: one write of records.jsonl instead of one per record.
                let records = try diagnoses.map {
                    EvidenceRecord(
                        kind: "diagnosis", name: $0.stage, status: $0.fine ? .pass : .fail, message: $0.rootCause, data: try JSONValue(encoding: $0))
                }
                try run.record(contentsOf: snapshot.evidenceRecords + records)
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
