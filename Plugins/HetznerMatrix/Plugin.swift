import ArgumentParser
import KhCore
import KhPluginAPI

/// The hetzner-matrix plugin: `kh stabilize` (the kube-hetzner stabilization loop)
/// and `kh matrix status`.
public enum HetznerMatrixPlugin: KhPlugin {
    public static let id = "hetzner-matrix"
    public static let summary = "kube-hetzner stabilization loop: gates, clean, snapshots, matrix with SSH triage, upgrade path"
    public static var commands: [any ParsableCommand.Type] { [Stabilize.self, Matrix.self] }
    public static let configSection: String? = "stabilize"
    public static func validateConfig(_ config: ConfigFile) throws {
        _ = try config.section("stabilize", as: StabilizeConfig.self)
    }
    public static var tools: [ToolRequirement] {
        ToolRequirement.known.filter { ["terraform", "hcloud", "git"].contains($0.name) }.map {
            $0.name == "terraform" ? $0.requiring("kh stabilize: terraform init/apply/destroy of the scenarios") : $0
        }
    }
    public static var secretEnvironment: [String] { ["HCLOUD_TOKEN"] }
}

/// Shared set-up of the stabilize commands.
enum Setup {
    static func workflow(_ global: GlobalOptions) throws -> StabilizeWorkflow {
        let context = try global.makeContext()
        let config = try context.section("stabilize", as: StabilizeConfig.self)
        return StabilizeWorkflow(context: context, config: config)
    }

    /// Exit with the code unless it is success.
    static func exit(_ code: KhExitCode) throws {
        if code != .success { throw ExitCode(code.rawValue) }
    }
}
