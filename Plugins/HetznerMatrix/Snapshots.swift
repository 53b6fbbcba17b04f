import ArgumentParser
import KhCore
import KhPluginAPI

extension Stabilize {
    /// `kh stabilize snapshots`: the expected snapshot images, found or missing.
    struct Snapshots: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "snapshots",
            abstract: "List snapshot images by label and architecture against the expected set; --build builds the missing ones.")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Run the configured packer commands for missing snapshots, then list again.")
        var build = false

        func run() async throws {
            var workflow = try Setup.workflow(global)
            try await workflow.preflight(build ? [.harness, .api] : [.api])
            let flow = workflow
            let build = self.build
            let code = try await flow.context.withEvidence { run in
                let statuses = try await flow.snapshots(run: run, build: build)
                for s in statuses {
                    try run.record(
                        EvidenceRecord(
                            kind: "snapshot", name: s.name, status: s.found.isEmpty ? (s.required ? .fail : .warn) : .pass,
                            message: s.found.isEmpty ? "missing" : s.found.map { "\($0.id) \($0.description)" }.joined(separator: ", ")))
                }
                if flow.console.format == .json {
                    try flow.console.json(statuses)
                } else {
                    for s in statuses {
                        let state =
                            s.found.isEmpty
                            ? (s.required ? "MISSING" : "missing (optional)") : s.found.map { "\($0.id) \($0.description)" }.joined(separator: ", ")
                        flow.console.result(
                            "\(s.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(s.architecture.padding(toLength: 4, withPad: " ", startingAt: 0)) \(state)"
                        )
                    }
                }
                let missing = statuses.filter { $0.required && $0.found.isEmpty }
                return (
                    missing.isEmpty ? .success : .blocked,
                    missing.isEmpty ? "required snapshots present" : "missing: \(missing.map(\.name).joined(separator: ", "))"
                )
            }
            try Setup.exit(code)
        }
    }
}
