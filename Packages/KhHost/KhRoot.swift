import ArgumentParser
import KhCore
import KhPluginAPI
import Synchronization

/// `kh`: the root command. Its subcommands are kh's own (`plugins`, `doctor`,
/// `completion`) and, grouped under a heading each, the installed plugins' commands.
public struct KhRoot: AsyncParsableCommand {
    /// Built once, on first use after the plugins are installed: ArgumentParser reads
    /// it many times while parsing, and start-up time is measured (make bench).
    public static var configuration: CommandConfiguration { cachedConfiguration.value }

    private static let cachedConfiguration = LazyConfiguration()

    static func makeConfiguration() -> CommandConfiguration {
        CommandConfiguration(
            commandName: "kh",
            abstract: "Runbooks for Kubernetes platforms as deterministic, time-bounded commands that leave evidence.",
            discussion: discussion,
            version: KhVersion.current,
            subcommands: [Plugins.self, Doctor.self, Completion.self],
            groupedSubcommands: PluginRegistry.plugins.map { plugin in
                CommandGroup(name: plugin.id, subcommands: plugin.commands)
            })
    }

    static var discussion: String {
        """
        Every command takes --config, --output text|json, --evidence-dir, -v, -q and \
        --no-color; commands that change things also take --dry-run and --yes.

        ENVIRONMENT:
          KH_CONFIG        config file (default: ./kh.yaml,
                           then $XDG_CONFIG_HOME/kh/config.yaml)
          KH_OUTPUT        text or json
          KH_EVIDENCE_DIR  where run folders go (default ./.kh/runs)
          NO_COLOR         set and non-empty: no colors
          kh FOO ARGS runs kh-FOO ARGS from PATH with the same KH_* variables, plus
          KH_BIN (this kh) and KH_VERSION.

        EXIT CODES:
        \(KhExitCode.table)
        """
    }

    public init() {}
}

extension KhRoot {
    /// `kh plugins`: the plugins built into this kh and the `kh-*` executables on PATH.
    struct Plugins: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plugins", abstract: "List installed plugins and external kh-* commands.")

        @OptionGroup var global: GlobalOptions

        struct Listing: Codable, Equatable {
            static let currentSchemaVersion = 1
            var schemaVersion = currentSchemaVersion
            var kh: String
            var plugins: [Entry]
            var external: [External]

            struct Entry: Codable, Equatable {
                var id: String
                var version: String
                var summary: String
                var module: String
                var configSection: String?
                var commands: [String]
            }

            struct External: Codable, Equatable {
                var command: String
                var path: String
            }
        }

        static func listing(environment: [String: String]) -> Listing {
            let entries = PluginRegistry.plugins.map { plugin in
                Listing.Entry(
                    id: plugin.id, version: plugin.version, summary: plugin.summary, module: PluginRegistry.moduleName(of: plugin),
                    configSection: plugin.configSection, commands: plugin.commands.map { $0._commandName })
            }
            let external = ExternalCommands.list(path: environment["PATH"] ?? "").map { Listing.External(command: $0.name, path: $0.path) }
            return Listing(kh: KhVersion.current, plugins: entries, external: external)
        }

        func run() async throws {
            let context = try global.makeContext()
            let listing = Self.listing(environment: context.environment)
            let console = context.console
            if console.format == .json {
                try console.json(listing)
                return
            }
            if listing.plugins.isEmpty {
                console.result("no plugins installed")
            }
            for plugin in listing.plugins {
                console.result("\(console.style(plugin.id, .bold)) \(plugin.version)  \(plugin.summary)")
                console.result("  commands: \(plugin.commands.map { "kh \($0)" }.joined(separator: ", "))")
                if let section = plugin.configSection { console.result("  config section: \(section):") }
            }
            if !listing.external.isEmpty {
                console.result("external commands on PATH:")
                for item in listing.external { console.result("  kh \(item.command)  (\(item.path))") }
            }
        }
    }

    /// `kh completion SHELL`: the completion script swift-argument-parser generates.
    struct Completion: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "completion", abstract: "Print a shell completion script.",
            discussion: "bash: kh completion bash > /etc/bash_completion.d/kh   zsh: kh completion zsh > \"${fpath[1]}/_kh\"")

        @Argument(help: "bash, zsh or fish.") var shell: String

        func validate() throws {
            guard CompletionShell(rawValue: shell) != nil else {
                throw ValidationError("SHELL: expected bash, zsh or fish, got \"\(shell)\"")
            }
        }

        func run() throws {
            print(KhRoot.completionScript(for: CompletionShell(rawValue: shell)!), terminator: "")
        }
    }
}

/// A value computed once, thread-safely.
final class LazyConfiguration: Sendable {
    private let storage = Mutex<CommandConfiguration?>(nil)
    var value: CommandConfiguration {
        storage.withLock { stored in
            if let stored { return stored }
            let made = KhRoot.makeConfiguration()
            stored = made
            return made
        }
    }
}
