import ArgumentParser
import KhCore
import KhPluginAPI

/// The eks-karpenter-install plugin: `kh install phase1|phase2|phase3|phase4|all|status`.
public enum EKSKarpenterInstallPlugin: KhPlugin {
    public static let id = "eks-karpenter-install"
    public static let summary = "phased EKS + Karpenter install with platform gates, Helm repair, strict completion and evidence"
    public static var commands: [any ParsableCommand.Type] { [Install.self] }
    public static let configSection: String? = "install"
    public static func validateConfig(_ config: ConfigFile) throws {
        _ = try config.section("install", as: InstallConfig.self)
    }
    public static var tools: [ToolRequirement] {
        ToolRequirement.known.filter { ["kubectl", "helm", "aws"].contains($0.name) }
            + [
                ToolRequirement(
                    name: "eksctl", versionArguments: ["version"], versionPattern: #"(\d+\.\d+\.\d+)"#,
                    purpose: "EKS cluster creation (install phase1)")
            ]
    }
}
