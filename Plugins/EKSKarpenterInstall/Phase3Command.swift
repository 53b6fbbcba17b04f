import ArgumentParser
import KhPluginAPI

extension Install {
    struct Phase3: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "phase3",
            abstract: "Compute: platform gate, Helm release repair/install/skip, controller must be Ready.",
            discussion: """
                Stops with blocked_phase (exit 3) when the cluster has no nodes, no Ready nodes, or CoreDNS is not Ready. \
                A failed release is repaired with helm upgrade --install --wait --timeout 10m and rollback on failure; \
                a missing one is installed; a deployed one is kept. The phase is ok only when the controller is Ready.
                """)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: InstallOptions
        @OptionGroup var mutation: MutationOptions
        @Flag(help: "Mark the phase complete even when the controller is not Ready (recorded as forced; other gates still apply).")
        var force = false
        func run() async throws {
            try await InstallCommandSupport.execute(phases: [.compute], global: global, options: options, mutation: mutation, force: force)
        }
    }
}
