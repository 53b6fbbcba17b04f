import ArgumentParser
import KhCore
import KhPluginAPI

extension Install {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Karpenter version and namespace, controller readiness, nodes, Helm release status and revision.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: InstallOptions
        func run() async throws {
            let context = try global.makeContext()
            let config = try context.section("install", as: InstallConfig.self)
            let settings = try InstallSettings.resolve(
                config: config, options: options, environment: context.environment, configPath: context.config.path)
            let deps = InstallDependencies.live(context: context, settings: settings)
            let report = try await InstallStatusReport.gather(settings: settings, deps: deps)
            if context.console.format == .json {
                try context.console.json(report)
            } else {
                context.console.result(report.text)
            }
        }
    }
}
