import ArgumentParser
import Foundation
import KhCore
import KhGit
import KhHTTP
import KhPluginAPI
import KhProcess
import KhSSH

extension KhRoot {
    /// `kh doctor`: are the tools, config and secrets kh needs in place?
    struct Doctor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "doctor", abstract: "Check the external tools, the config file and the secrets kh uses.",
            discussion: """
                Each line is PASS, WARN, FAIL or INFO. A required tool that is missing fails \
                (exit 3); an invalid config fails (exit 2). Secrets are reported as set or not \
                set, never shown. Every run leaves evidence (one record per line, the version \
                commands' logs).
                """)

        @OptionGroup var global: GlobalOptions

        @Option(
            name: .long,
            help: ArgumentHelp("Tools that must be present (comma-separated or repeated); also kh.require in config.", valueName: "tool"))
        var require: [String] = []

        @Option(name: .long, help: ArgumentHelp("Deadline for each version command.", valueName: "duration"))
        var timeout: KhDuration = KhDuration(.seconds(10))

        /// One line of the report.
        struct Check: Codable, Equatable, Sendable {
            var name: String
            var status: CheckStatus
            var message: String
            var version: String?
            var path: String?
            var required: Bool?
        }

        /// The `--output json` document.
        struct Report: Codable, Sendable {
            static let currentSchemaVersion = 1
            var schemaVersion = currentSchemaVersion
            var checks: [Check]
            var counts: [String: Int]
            var evidence: String
            var exitCode: Int32
        }

        var requiredTools: [String] {
            require.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        }

        func run() async throws {
            let context = try global.makeContext(tolerateConfigErrors: true)
            let console = context.console
            var report: Report?
            let code = try await context.withEvidence { run in
                let tools = Self.tools(required: Set(requiredTools + context.core.require))
                var checks = await Self.checkTools(tools, context: context, run: run, timeout: timeout.duration)
                checks += Self.checkLibraries()
                checks.append(Self.checkConfig(context))
                checks += Self.checkSecrets(context)
                for check in checks {
                    try run.record(
                        EvidenceRecord(
                            kind: "check", name: check.name, status: check.status, message: check.message,
                            log: check.name.hasPrefix("tool:") && check.path != nil ? run.relativeLogPath(for: check.name) : nil,
                            data: try JSONValue(encoding: check)))
                }
                let configFailed = checks.contains { $0.name == "config" && $0.status == .fail }
                let toolFailed = checks.contains { ($0.name.hasPrefix("tool:") || $0.name.hasPrefix("library:")) && $0.status == .fail }
                let code: KhExitCode = configFailed ? .usage : toolFailed ? .blocked : .success
                var counts: [String: Int] = [:]
                for check in checks { counts[check.status.rawValue, default: 0] += 1 }
                report = Report(checks: checks, counts: counts, evidence: run.directory, exitCode: code.rawValue)
                let line = ["pass", "warn", "fail"].map { "\(counts[$0] ?? 0) \($0)" }.joined(separator: ", ")
                return (code, line)
            }
            guard let report else { return }
            if console.format == .json {
                try console.json(report)
            } else {
                let width = report.checks.map(\.name.count).max() ?? 10
                for check in report.checks {
                    let color: Style =
                        switch check.status {
                        case .pass: .green
                        case .warn: .yellow
                        case .fail, .error: .red
                        default: .dim
                        }
                    console.result(
                        "\(console.style(check.status.label, color)) \(check.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(check.message)"
                    )
                }
                console.result(["pass", "warn", "fail"].map { "\(report.counts[$0] ?? 0) \($0)" }.joined(separator: ", "))
            }
            if code != .success { throw ExitCode(code.rawValue) }
        }

        /// The C libraries kh loads on first use (libgit2, libssh2, libcurl): each is loaded
        /// now and its version shown; one that cannot be loaded fails (exit 3), with the
        /// shared object, what the loader said and the Debian package.
        static func checkLibraries() -> [Check] {
            let libraries: [(name: String, problem: () -> String?, version: () -> String)] = [
                ("libgit2", { GitLibrary.loadProblem }, { GitLibrary.version }),
                ("libssh2", { SSHLibrary.loadProblem }, { SSHLibrary.version }),
                ("libcurl", { CurlTransport.loadProblem }, { CurlTransport.libcurlVersion }),
            ]
            return libraries.map { library in
                if let problem = library.problem() {
                    return Check(name: "library:\(library.name)", status: .fail, message: problem, required: true)
                }
                let version = library.version()
                return Check(name: "library:\(library.name)", status: .pass, message: version, version: version, required: true)
            }
        }

        /// The tools to check: kh's known list plus what plugins declare, with the
        /// required ones marked.
        static func tools(required: Set<String>) -> [ToolRequirement] {
            var byName: [String: ToolRequirement] = [:]
            var order: [String] = []
            for tool in ToolRequirement.known + PluginRegistry.plugins.flatMap({ $0.tools }) {
                if var existing = byName[tool.name] {
                    existing.required = existing.required || tool.required
                    byName[tool.name] = existing
                } else {
                    byName[tool.name] = tool
                    order.append(tool.name)
                }
            }
            for name in required where byName[name] == nil {
                byName[name] = ToolRequirement(
                    name: name, versionArguments: ["--version"], versionPattern: #"v?(\d+\.\d+[.\d]*)"#, purpose: "required by --require")
                order.append(name)
            }
            return order.map { name in
                let tool = byName[name]!
                return required.contains(name) ? tool.requiring() : tool
            }
        }

        /// Finds and versions every tool, all at once, each with a deadline.
        static func checkTools(_ tools: [ToolRequirement], context: CommandContext, run: EvidenceRun, timeout: Duration) async -> [Check] {
            await withTaskGroup(of: (Int, Check).self) { group in
                for (index, tool) in tools.enumerated() {
                    group.addTask {
                        (index, await checkTool(tool, context: context, run: run, timeout: timeout))
                    }
                }
                var results: [(Int, Check)] = []
                for await result in group { results.append(result) }
                return results.sorted { $0.0 < $1.0 }.map(\.1)
            }
        }

        static func checkTool(_ tool: ToolRequirement, context: CommandContext, run: EvidenceRun, timeout: Duration) async -> Check {
            let name = "tool:\(tool.name)"
            let missingStatus: CheckStatus = tool.required ? .fail : .warn
            let path: String
            do {
                path = try LocalRunner.resolve(tool.name, path: context.environment["PATH"] ?? "")
            } catch {
                let why = tool.required ? "required" : "optional"
                return Check(name: name, status: missingStatus, message: "not found on PATH (\(why): \(tool.purpose))", required: tool.required)
            }
            let result: CommandResult
            do {
                result = try await context.runner.run(
                    Command(path, tool.versionArguments),
                    options: RunOptions(
                        timeout: timeout, killGrace: .seconds(2), logPath: run.logPath(for: name), captureLimit: 1 << 20, redactor: context.redactor))
            } catch {
                return Check(name: name, status: missingStatus, message: "\(error)", path: path, required: tool.required)
            }
            context.console.verbose("\(Command(path, tool.versionArguments).displayString): \(result.summary)")
            if result.timedOut {
                return Check(
                    name: name, status: missingStatus, message: "`\(([tool.name] + tool.versionArguments).joined(separator: " "))` \(result.summary)",
                    path: path,
                    required: tool.required)
            }
            let text = result.stdoutText + "\n" + result.stderrText
            let version = firstCapture(tool.versionPattern, in: text)
            guard result.succeeded || version != nil else {
                return Check(
                    name: name, status: missingStatus, message: "version command failed: \(result.summary)", path: path, required: tool.required)
            }
            guard let version else {
                let said = text.split(separator: "\n").first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(String.init) ?? "nothing"
                return Check(
                    name: name, status: .warn, message: "found at \(path), version not recognised in: \(said)", path: path, required: tool.required)
            }
            if let minimum = tool.minimumVersion, compareVersions(version, minimum) < 0 {
                return Check(
                    name: name, status: .warn, message: "\(version) at \(path) is older than \(minimum)", version: version, path: path,
                    required: tool.required)
            }
            return Check(name: name, status: .pass, message: "\(version)  \(path)", version: version, path: path, required: tool.required)
        }

        static func checkConfig(_ context: CommandContext) -> Check {
            if let problem = context.configProblem {
                return Check(name: "config", status: .fail, message: problem.message)
            }
            guard let path = context.config.path else {
                return Check(name: "config", status: .info, message: "no config file (./kh.yaml, $XDG_CONFIG_HOME/kh/config.yaml): defaults apply")
            }
            for plugin in PluginRegistry.plugins {
                do {
                    try plugin.validateConfig(context.config)
                } catch {
                    return Check(name: "config", status: .fail, message: "\(error)")
                }
            }
            let sections = context.config.sectionNames
            return Check(
                name: "config", status: .pass,
                message: "\(path) is valid" + (sections.isEmpty ? "" : " (sections: \(sections.joined(separator: ", ")))"))
        }

        static func checkSecrets(_ context: CommandContext) -> [Check] {
            CommandContext.secretEnvironmentNames(core: context.core).map { name in
                let set = !(context.environment[name] ?? "").isEmpty
                return Check(name: "secret:\(name)", status: .info, message: set ? "set (redacted everywhere)" : "not set")
            }
        }

        static func firstCapture(_ pattern: String, in text: String) -> String? {
            guard let regex = try? NSRegularExpression(pattern: pattern),
                let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), match.numberOfRanges > 1,
                let range = Range(match.range(at: 1), in: text)
            else { return nil }
            return String(text[range])
        }

        /// Compares dotted numeric versions (`1.32.4` vs `1.26`); suffixes are ignored.
        static func compareVersions(_ a: String, _ b: String) -> Int {
            func parts(_ v: String) -> [Int] {
                v.split(separator: ".").map { Int($0.prefix { $0.isNumber }) ?? 0 }
            }
            let x = parts(a), y = parts(b)
            for i in 0..<max(x.count, y.count) {
                let l = i < x.count ? x[i] : 0, r = i < y.count ? y[i] : 0
                if l != r { return l < r ? -1 : 1 }
            }
            return 0
        }
    }
}
