import ArgumentParser
import Foundation
import KhCore
import KhProcess
import Logging

/// kh's own settings: the `kh:` section of the config file.
public struct CoreConfig: Decodable, Sendable, Equatable {
    /// Where run folders go, unless `--evidence-dir` or `KH_EVIDENCE_DIR` says otherwise.
    public var evidenceDir: String?
    /// More environment variables whose values are secrets.
    public var secretEnv: [String]
    /// Tools `kh doctor` must find (missing = exit 3).
    public var require: [String]

    enum CodingKeys: String, CodingKey {
        case evidenceDir = "evidence_dir"
        case secretEnv = "secret_env"
        case require
    }

    public init(evidenceDir: String? = nil, secretEnv: [String] = [], require: [String] = []) {
        self.evidenceDir = evidenceDir
        self.secretEnv = secretEnv
        self.require = require
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        evidenceDir = try c.decodeIfPresent(String.self, forKey: .evidenceDir)
        secretEnv = try c.decodeIfPresent([String].self, forKey: .secretEnv) ?? []
        require = try c.decodeIfPresent([String].self, forKey: .require) ?? []
    }
}

/// Everything a command needs from the world, built once from the global options:
/// console, config, redactor, command runner, clock, file system, evidence.
/// Tests build one directly with fakes.
public struct CommandContext: Sendable {
    public var console: Console
    public var config: ConfigFile
    /// Set instead of throwing when the context was made with `tolerateConfigErrors`.
    public var configProblem: ConfigError?
    public var core: CoreConfig
    public var redactor: Redactor
    public var runner: any CommandRunner
    public var clock: KhClock
    public var fileSystem: any FileSystem
    public var environment: [String: String]
    public var evidenceRoot: String
    public var commandLine: [String]
    public var workingDirectory: String
    public var logger: Logger

    public init(
        console: Console, config: ConfigFile, configProblem: ConfigError? = nil, core: CoreConfig = CoreConfig(), redactor: Redactor,
        runner: any CommandRunner, clock: KhClock = .live, fileSystem: any FileSystem = LocalFileSystem(), environment: [String: String],
        evidenceRoot: String, commandLine: [String], workingDirectory: String
    ) {
        self.console = console
        self.config = config
        self.configProblem = configProblem
        self.core = core
        self.redactor = redactor
        self.runner = runner
        self.clock = clock
        self.fileSystem = fileSystem
        self.environment = environment
        self.evidenceRoot = evidenceRoot
        self.commandLine = commandLine
        self.workingDirectory = workingDirectory
        let console = console
        self.logger = Logger(label: "kh") { label in ConsoleLogHandler(label: label, console: console) }
    }

    /// Decodes a plugin's config section (defaults when absent).
    public func section<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        try config.section(name, as: type)
    }

    /// Starts a run folder for this command.
    public func startEvidence() throws -> EvidenceRun {
        try EvidenceRun.start(
            root: evidenceRoot, command: commandLine, version: KhVersion.current, clock: clock, fileSystem: fileSystem, redactor: redactor,
            workingDirectory: workingDirectory)
    }

    /// Runs `body` inside a run folder: the run ends with the exit code `body`
    /// returns, or with the code of the error it throws (then rethrown). The folder
    /// is named on stderr.
    public func withEvidence(_ body: (EvidenceRun) async throws -> (KhExitCode, String)) async throws -> KhExitCode {
        let run = try startEvidence()
        do {
            let (code, result) = try await body(run)
            try run.finish(exitCode: code, result: result)
            console.progress("evidence: \(run.directory)")
            return code
        } catch {
            let code = (error as? any KhReportableError)?.exitCode ?? (error is CancellationError ? .interrupted : .internalError)
            try? run.finish(exitCode: code, result: "\(error)")
            console.progress("evidence: \(run.directory)")
            throw error
        }
    }

    /// Every environment variable kh treats as a secret, for this config.
    public static func secretEnvironmentNames(core: CoreConfig) -> [String] {
        var names = Redactor.wellKnownSecretEnvironment + core.secretEnv
        for plugin in PluginRegistry.plugins { names += plugin.secretEnvironment }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}

extension GlobalOptions {
    /// Builds the context from these options and the process environment: output,
    /// config (unknown sections are errors), secrets registered, evidence root.
    public func makeContext(
        tolerateConfigErrors: Bool = false, environment: [String: String] = ProcessInfo.processInfo.environment,
        runner: (any CommandRunner)? = nil, fileSystem: any FileSystem = LocalFileSystem(), clock: KhClock = .live,
        commandLine: [String] = CommandLine.arguments
    ) throws -> CommandContext {
        let cwd = FileManager.default.currentDirectoryPath
        let redactor = Redactor()
        redactor.registerEnvironment(Redactor.wellKnownSecretEnvironment, from: environment)
        let format = try outputFormat(environment: environment)
        let console = Console.live(format: format, verbosity: verbosity, noColor: noColor, redactor: redactor, environment: environment)
        var config = ConfigFile.empty(redactor: redactor)
        var core = CoreConfig()
        var problem: ConfigError?
        do {
            if let path = try configPath(environment: environment, fileSystem: fileSystem, workingDirectory: cwd) {
                config = try ConfigFile.load(path: path, fileSystem: fileSystem, redactor: redactor)
                try config.checkSections(known: PluginRegistry.knownSections)
                core = try config.section(ConfigFile.coreSection, as: CoreConfig.self)
            }
        } catch let error as ConfigError {
            guard tolerateConfigErrors else { throw error }
            problem = error
        }
        redactor.registerEnvironment(CommandContext.secretEnvironmentNames(core: core), from: environment)
        let root = evidenceDir ?? environment["KH_EVIDENCE_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? core.evidenceDir ?? (cwd + "/.kh/runs")
        let absoluteRoot = root.hasPrefix("/") ? root : cwd + "/" + root
        return CommandContext(
            console: console, config: config, configProblem: problem, core: core, redactor: redactor,
            runner: runner ?? LocalRunner(environment: environment), clock: clock, fileSystem: fileSystem, environment: environment,
            evidenceRoot: absoluteRoot, commandLine: ["kh"] + commandLine.dropFirst(), workingDirectory: cwd)
    }
}
