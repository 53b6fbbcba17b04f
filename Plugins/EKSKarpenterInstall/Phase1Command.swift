import ArgumentParser
import KhPluginAPI

extension Install {
    struct Phase1: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "phase1",
            abstract: "Foundation: the EKS cluster exists (or is created), kubeconfig updated, nodes registered and Ready.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: InstallOptions
        @OptionGroup var mutation: MutationOptions
        func run() async throws {
            try await InstallCommandSupport.execute(phases: [.foundation], global: global, options: options, mutation: mutation)
        }
    }
}
