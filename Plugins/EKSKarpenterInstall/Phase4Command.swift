import ArgumentParser
import KhPluginAPI

extension Install {
    struct Phase4: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "phase4",
            abstract: "Verify provisioning: apply NodePool and EC2NodeClass, scale a test deployment, wait for a NodeClaim, clean up.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: InstallOptions
        @OptionGroup var mutation: MutationOptions
        func run() async throws {
            try await InstallCommandSupport.execute(phases: [.verify], global: global, options: options, mutation: mutation)
        }
    }
}
