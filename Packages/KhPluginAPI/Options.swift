import ArgumentParser
import Foundation
import KhCore

extension OutputFormat: ExpressibleByArgument {}

extension KhDuration: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

/// The options every kh command takes. Environment variables supply defaults:
/// `KH_CONFIG`, `KH_OUTPUT`, `KH_EVIDENCE_DIR`; `NO_COLOR` turns color off.
public struct GlobalOptions: ParsableArguments, Sendable {
    @Option(
        name: .long,
        help: ArgumentHelp("Config file.", discussion: "Default: $KH_CONFIG, ./kh.yaml, then $XDG_CONFIG_HOME/kh/config.yaml.", valueName: "path"))
    public var config: String?

    @Option(name: .long, help: ArgumentHelp("Result format on stdout: text or json (default: $KH_OUTPUT or text).", valueName: "format"))
    public var output: OutputFormat?

    @Option(
        name: .customLong("evidence-dir"),
        help: ArgumentHelp("Where run folders go (default: $KH_EVIDENCE_DIR, kh.evidence_dir, ./.kh/runs).", valueName: "dir"))
    public var evidenceDir: String?

    @Flag(name: .shortAndLong, help: "More detail on stderr (repeat for debug).")
    public var verbose: Int

    @Flag(name: .shortAndLong, help: "Only errors and warnings on stderr.")
    public var quiet = false

    @Flag(name: .customLong("no-color"), help: "No ANSI colors (also: NO_COLOR set and non-empty).")
    public var noColor = false

    public init() {}

    public func validate() throws {
        if verbose > 0 && quiet { throw ValidationError("--verbose and --quiet cannot be used together") }
        if let dir = evidenceDir, dir.isEmpty { throw ValidationError("--evidence-dir: expected a directory path, got an empty string") }
    }

    /// The output format after flags and `KH_OUTPUT`.
    public func outputFormat(environment: [String: String]) throws -> OutputFormat {
        if let output { return output }
        if let value = environment["KH_OUTPUT"], !value.isEmpty {
            guard let format = OutputFormat(rawValue: value) else {
                throw KhError.usage("KH_OUTPUT=\(value): expected text or json")
            }
            return format
        }
        return .text
    }

    /// Verbosity from -q / -v / -vv.
    public var verbosity: Verbosity {
        if quiet { return .quiet }
        switch verbose {
        case 0: return .normal
        case 1: return .verbose
        default: return .debug
        }
    }

    /// The config file to read: `--config` (must exist), `KH_CONFIG` (must exist),
    /// `./kh.yaml`, `$XDG_CONFIG_HOME/kh/config.yaml`; nil when none exists.
    public func configPath(environment: [String: String], fileSystem: any FileSystem, workingDirectory: String) throws -> String? {
        if let explicit = config ?? environment["KH_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard fileSystem.exists(explicit) else {
                let origin = config != nil ? "--config" : "KH_CONFIG"
                throw KhError.usage("\(origin) \(explicit): config file not found")
            }
            return explicit
        }
        let local = workingDirectory + "/kh.yaml"
        if fileSystem.exists(local) { return local }
        let xdg = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((environment["HOME"] ?? "") + "/.config")
        let user = xdg + "/kh/config.yaml"
        if fileSystem.exists(user) { return user }
        return nil
    }
}

/// The options of every command that changes something.
public struct MutationOptions: ParsableArguments, Sendable {
    @Flag(name: .customLong("dry-run"), help: "Show what would change, change nothing.")
    public var dryRun = false

    @Flag(name: .long, help: "Change without asking (required when stdin is not a terminal).")
    public var yes = false

    public init() {}

    public func validate() throws {
        if dryRun && yes { throw ValidationError("--dry-run and --yes cannot be used together") }
    }

    /// What a mutating command may do now.
    public enum Decision: Sendable, Equatable {
        /// Only show what would change.
        case dryRun
        /// Go ahead.
        case proceed
    }

    /// Decides whether to change things: `--dry-run` shows only; `--yes` proceeds;
    /// otherwise a terminal is asked, and without a terminal kh refuses (exit 2).
    public func authorize(
        _ action: String, console: Console, stdinIsTerminal: Bool = isatty(0) == 1, readAnswer: () -> String? = { readLine() }
    ) throws -> Decision {
        if dryRun { return .dryRun }
        if yes { return .proceed }
        guard stdinIsTerminal else {
            throw KhError.usage(
                "refusing to \(action) without --yes: stdin is not a terminal",
                hint: "re-run with --yes to proceed, or --dry-run to see what would change")
        }
        console.write("\(action)? [y/N] ", to: .stderr)
        let answer = (readAnswer() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        guard answer == "y" || answer == "yes" else {
            throw KhError(.checkFailed, "not confirmed: nothing was changed")
        }
        return .proceed
    }
}
