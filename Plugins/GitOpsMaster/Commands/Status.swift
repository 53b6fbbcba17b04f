import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI

extension Gitops {
    /// `kh gitops status`: the pipeline chain warehouse → stages.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "The pipeline from the warehouse through its stages: conditions, freight, last promotion, apps' sync and health.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let runtime = try Runtime(global)
            let context = runtime.context
            let cluster = try await runtime.cluster()
            let code = try await context.withEvidence { run in
                let snapshot = await Gatherer.gather(cluster, clock: context.clock)
                try run.record(contentsOf: snapshot.evidenceRecords)
                guard snapshot.answered("1-kargo-state") else {
                    let error = snapshot.groups.first { $0.name == "1-kargo-state" }?.error ?? "no answer"
                    throw KhError.external("cannot read the Kargo stages: \(error)")
                }
                let status = PipelineStatus.build(snapshot, environment: cluster.environment)
                if context.console.format == .json { try context.console.json(status) } else { context.console.write(status.render(), to: .stdout) }
                let bad = status.stages.filter { !["Verified", "Healthy"].contains($0.phase) }
                return (
                    bad.isEmpty ? .success : .checkFailed, bad.isEmpty ? "all stages fine" : "not fine: \(bad.map(\.name).joined(separator: ", "))"
                )
            }
            try Runtime.exit(code)
        }
    }
}
