import ArgumentParser
import KhPluginAPI

extension Install {
    struct Phase2: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "phase2",
            abstract: "Prerequisites: node and controller IAM roles, instance profile, interruption queue, discovery tags.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: InstallOptions
        @OptionGroup var mutation: MutationOptions
        func run() async throws {
            try await InstallCommandSupport.execute(phases: [.prerequisites], global: global, options: options, mutation: mutation)
        }
    }
}
