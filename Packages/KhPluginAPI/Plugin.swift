import ArgumentParser
import KhCore
import Synchronization

/// A kh plugin: a library target under `Plugins/` exposing one type that conforms.
///
/// The host lists installed plugins in one file (`Tools/kh/InstalledPlugins.swift`);
/// `kh --help` shows each plugin's commands under its own heading and `kh plugins`
/// lists them. See docs/architecture.md, "Writing a plugin".
public protocol KhPlugin {
    /// A unique, lower-case id: `hetzner-matrix`.
    static var id: String { get }
    /// One line saying what the plugin automates.
    static var summary: String { get }
    /// The plugin's version (semantic versioning).
    static var version: String { get }
    /// Its top-level commands (`kh stabilize`, `kh gitops`, …).
    static var commands: [any ParsableCommand.Type] { get }
    /// The config section it owns (`stabilize`), if any.
    static var configSection: String? { get }
    /// Decodes its section from the config, throwing ``ConfigError`` for anything wrong.
    /// `kh doctor` calls it to validate the whole file.
    static func validateConfig(_ config: ConfigFile) throws
    /// External tools it can use; `kh doctor` checks them.
    static var tools: [ToolRequirement] { get }
    /// Environment variables that hold its secrets; always redacted.
    static var secretEnvironment: [String] { get }
}

extension KhPlugin {
    public static var configSection: String? { nil }
    public static func validateConfig(_ config: ConfigFile) throws {}
    public static var tools: [ToolRequirement] { [] }
    public static var secretEnvironment: [String] { [] }
    public static var version: String { KhVersion.current }
}

/// An external tool kh can run, how to ask its version, and whether it is required.
public struct ToolRequirement: Sendable, Hashable {
    /// The executable name looked up on PATH.
    public var name: String
    /// Arguments that print its version.
    public var versionArguments: [String]
    /// A regular expression whose first capture group is the version.
    public var versionPattern: String
    /// Older than this is a warning.
    public var minimumVersion: String?
    /// Missing is a failure (exit 3) rather than a warning.
    public var required: Bool
    /// Who uses it and for what (`kh stabilize: terraform apply`).
    public var purpose: String

    public init(
        name: String, versionArguments: [String], versionPattern: String, minimumVersion: String? = nil, required: Bool = false,
        purpose: String
    ) {
        self.name = name
        self.versionArguments = versionArguments
        self.versionPattern = versionPattern
        self.minimumVersion = minimumVersion
        self.required = required
        self.purpose = purpose
    }

    /// The same tool marked required.
    public func requiring(_ purpose: String? = nil) -> ToolRequirement {
        var copy = self
        copy.required = true
        if let purpose { copy.purpose = purpose }
        return copy
    }

    /// The tools of the runbooks kh automates.
    public static let known: [ToolRequirement] = [
        ToolRequirement(
            name: "git", versionArguments: ["--version"], versionPattern: #"git version (\d+\.\d+[.\d]*)"#, purpose: "module repositories"),
        ToolRequirement(
            name: "kubectl", versionArguments: ["version", "--client", "-o", "json"], versionPattern: #""gitVersion":\s*"v?([^"]+)""#,
            minimumVersion: "1.26", purpose: "Kubernetes access (gitops, install, reliability)"),
        ToolRequirement(
            name: "terraform", versionArguments: ["version", "-json"], versionPattern: #""terraform_version":\s*"([^"]+)""#,
            minimumVersion: "1.5", purpose: "kube-hetzner scenarios (stabilize)"),
        ToolRequirement(
            name: "ssh", versionArguments: ["-V"], versionPattern: #"OpenSSH_([0-9][^\s,]*)"#, purpose: "node triage, ssh_command prefixes"),
        ToolRequirement(name: "aws", versionArguments: ["--version"], versionPattern: #"aws-cli/(\S+)"#, purpose: "EKS install"),
        ToolRequirement(
            name: "helm", versionArguments: ["version", "--short"], versionPattern: #"v?(\d+\.\d+\.\d+[^\s+]*)"#, purpose: "Karpenter chart (install)"
        ),
        ToolRequirement(
            name: "hcloud", versionArguments: ["version"], versionPattern: #"hcloud v?(\d+\.\d+[.\d]*)"#,
            purpose: "Hetzner Cloud CLI (stabilize clean, snapshots)"),
        ToolRequirement(
            name: "promtool", versionArguments: ["--version"], versionPattern: #"promtool, version (\S+)"#,
            purpose: "alert rules (reliability alerts)"),
    ]
}

/// The plugins this kh binary was built with.
public enum PluginRegistry {
    /// Plugin types are static, immutable descriptions: sharing them is safe.
    private struct List: @unchecked Sendable { var types: [any KhPlugin.Type] }
    private static let installed = Mutex(List(types: []))

    /// Sets the installed plugins, once, at start-up; checks their ids.
    public static func install(_ plugins: [any KhPlugin.Type]) throws {
        try validate(plugins)
        let list = List(types: plugins)
        installed.withLock { $0 = list }
    }

    /// The installed plugins, in registration order.
    public static var plugins: [any KhPlugin.Type] { installed.withLock { $0 }.types }

    /// Every config section name an installed plugin (or kh itself) owns.
    public static var knownSections: Set<String> {
        Set([ConfigFile.coreSection] + plugins.compactMap { $0.configSection })
    }

    /// Ids must be unique, non-empty, lower-case words joined by `-`; sections unique too.
    /// Runs at every start-up: no regular expression (ICU) and no reflection unless it fails.
    public static func validate(_ plugins: [any KhPlugin.Type]) throws {
        func name(_ index: Int) -> String { String(reflecting: plugins[index]) }
        var ids: [String: Int] = [:]
        var sections: [String: Int] = [:]
        for (index, plugin) in plugins.enumerated() {
            guard isValidID(plugin.id) else {
                throw KhError.internalError("plugin \(name(index)) has an invalid id \"\(plugin.id)\": expected lower-case words joined by '-'")
            }
            if let other = ids[plugin.id] {
                throw KhError.internalError("plugins \(name(other)) and \(name(index)) share the id \"\(plugin.id)\"")
            }
            ids[plugin.id] = index
            if let section = plugin.configSection {
                if section == ConfigFile.coreSection || sections[section] != nil {
                    let owner = sections[section].map(name) ?? "kh"
                    throw KhError.internalError("plugin \(name(index)) claims config section \"\(section)\", already owned by \(owner)")
                }
                sections[section] = index
            }
        }
    }

    /// `^[a-z][a-z0-9]*(-[a-z0-9]+)*$`: lower-case words of letters and digits joined by single `-`,
    /// starting with a letter.
    package static func isValidID(_ id: String) -> Bool {
        var previous: UInt8 = UInt8(ascii: "-")
        for (offset, byte) in id.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): break
            case UInt8(ascii: "0")...UInt8(ascii: "9"): if offset == 0 { return false }
            case UInt8(ascii: "-"): if previous == UInt8(ascii: "-") { return false }
            default: return false
            }
            previous = byte
        }
        return !id.isEmpty && previous != UInt8(ascii: "-")
    }

    /// The module a plugin type lives in (its folder under `Plugins/`).
    public static func moduleName(of plugin: any KhPlugin.Type) -> String {
        String(String(reflecting: plugin).split(separator: ".").first ?? "")
    }
}
