import ArgumentParser
import KhCore
import KhPluginAPI

/// The agent-reliability plugin: `kh reliability …`, the safeguards of the
/// stuck-agent-jobs post-mortem (docs/reliability.md).
public enum AgentReliabilityPlugin: KhPlugin {
    public static let id = "agent-reliability"
    public static let summary = "safeguards for agent-job platforms: deadlines, required ConfigMaps, stalled resources, alerts"
    public static var commands: [any ParsableCommand.Type] { [Reliability.self] }
    public static let configSection: String? = "reliability"

    public static func validateConfig(_ config: ConfigFile) throws {
        _ = try config.section("reliability", as: ReliabilityConfig.self)
    }

    public static var tools: [ToolRequirement] {
        ToolRequirement.known.filter { ["kubectl", "promtool"].contains($0.name) }
    }

    public static var secretEnvironment: [String] { ["GITHUB_TOKEN", "GH_TOKEN", "KH_WEBHOOK_TOKEN"] }
}

/// `kh reliability`: the command group.
public struct Reliability: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "reliability",
        abstract: "Agent-job platform safeguards: deadlock-proof exec, audits, watch, alert rules, timelines, review loops.",
        discussion: """
            Exit codes: 0 nothing found at the --fail-on severity, 1 findings (or a flagged gap or loop), 2 usage or \
            config error, 3 kubectl or promtool missing, 4 an API failed, 130 interrupted. \
            `exec` passes the child's exit code on; 124 = deadline passed, 123 = killed for silence (idle timeout). \
            See docs/reliability.md.
            """,
        subcommands: [Exec.self, Audit.self, Watch.self, Alerts.self, Timeline.self, Reviews.self])

    public init() {}
}
