import ArgumentParser
import KhPluginAPI

extension Install {
    struct All: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "all",
            abstract: "Every phase in order; a phase an earlier run finished is re-verified, not redone.",
            discussion:
                "Prints the InstallResult (status ok | blocked_phase | error, phase, evidence, blockers, next). Exit 0, 3 for blocked_phase, 1 or 4 for errors."
        )
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: InstallOptions
        @OptionGroup var mutation: MutationOptions
        @Flag(help: "Phase 3: mark complete even when the controller is not Ready (recorded as forced).")
        var force = false
        @Flag(name: .customLong("no-resume"), help: "Redo every phase, ignoring earlier runs' evidence.")
        var noResume = false
        func run() async throws {
            try await InstallCommandSupport.execute(
                phases: InstallPhase.allCases, global: global, options: options, mutation: mutation, force: force, resume: !noResume)
        }
    }
}
