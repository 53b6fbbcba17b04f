import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI

/// The whole of kh's start-up: register plugins, hand unknown verbs to `kh-<verb>`,
/// parse, run, and turn every outcome into the documented exit code.
public enum KhMain {
    /// Runs kh with the installed plugins and exits.
    ///
    /// Everything up to and including parsing runs synchronously on the main thread, so
    /// `kh --help`, `kh --version`, usage errors and `kh completion` (the synchronous
    /// commands) never start Swift concurrency's thread pool or the signal sources' thread
    /// (about a millisecond of start-up); an (asynchronous) command installs the signal
    /// handling, then runs in a task while the main thread serves the main queue.
    public static func main(plugins: [any KhPlugin.Type], arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        let environment = ProcessInfo.processInfo.environment
        let redactor = Redactor()
        redactor.registerEnvironment(Redactor.wellKnownSecretEnvironment, from: environment)
        let console = Console.live(format: .text, verbosity: .normal, noColor: false, redactor: redactor, environment: environment)
        do {
            try PluginRegistry.install(plugins)
        } catch {
            report(error, console)
            exit(KhExitCode.internalError.rawValue)
        }

        if let code = dispatchExternal(arguments, environment: environment, console: console) { exit(code) }

        let command: any ParsableCommand
        do {
            command = try KhRoot.parseAsRoot(arguments)
        } catch {
            exit(handle(error, console: console))
        }
        guard command is any AsyncParsableCommand else {
            // Help, `kh completion`: print and exit; nothing to interrupt.
            do {
                var command = command
                try command.run()
                exit(KhExitCode.success.rawValue)
            } catch {
                exit(handle(error, console: console))
            }
        }
        Interrupts.install()
        let parsed = ParsedCommand(command: command)
        Task {
            let code: Int32
            do {
                try await parsed.run()
                code = KhExitCode.success.rawValue
            } catch {
                code = handle(error, console: console)
            }
            // After SIGINT/SIGTERM the interrupt's handlers exit, with 130, once evidence is flushed.
            Interrupts.exitAfterCommand(code)
        }
        dispatchMain()
    }

    /// A parsed command handed from the main thread to the task that runs it; nothing
    /// else touches it.
    private struct ParsedCommand: @unchecked Sendable {
        var command: any ParsableCommand

        func run() async throws {
            guard var asyncCommand = command as? any AsyncParsableCommand else { return }
            try await asyncCommand.run()
        }
    }

    /// Maps an error to its exit code, printing what a person needs.
    static func handle(_ error: any Error, console: Console) -> Int32 {
        if let reportable = error as? any KhReportableError {
            report(reportable, console)
            return reportable.exitCode.rawValue
        }
        if let code = error as? ExitCode { return code.rawValue }
        if error is CancellationError { return KhExitCode.interrupted.rawValue }
        if error is CleanExit {
            // --help, --version, help SUBCOMMAND: one message build, to stdout.
            console.write(KhRoot.fullMessage(for: error) + "\n", to: .stdout)
            return 0
        }
        let code = KhRoot.exitCode(for: error)
        if code == .success {
            console.write(KhRoot.fullMessage(for: error) + "\n", to: .stdout)
            return 0
        }
        if code == .validationFailure {
            console.write(KhRoot.fullMessage(for: error) + "\n", to: .stderr)
            return KhExitCode.usage.rawValue
        }
        console.error(KhRoot.message(for: error))
        return KhExitCode.internalError.rawValue
    }

    static func report(_ error: any Error, _ console: Console) {
        if let reportable = error as? any KhReportableError {
            console.error(reportable.message)
            if let hint = reportable.hint { console.write("hint: \(hint)\n", to: .stderr) }
        } else {
            console.error("\(error)")
        }
    }

    /// `kh [globals] VERB ARGS` where VERB is not a kh command: exec `kh-VERB ARGS`
    /// from PATH. Returns an exit code when it could not; nil when VERB is kh's own.
    static func dispatchExternal(_ arguments: [String], environment: [String: String], console: Console) -> Int32? {
        let leading: (environment: [String: String], rest: [String])
        do {
            leading = try ExternalCommands.leadingGlobals(arguments)
        } catch {
            report(error, console)
            return KhExitCode.usage.rawValue
        }
        guard let verb = leading.rest.first, !verb.hasPrefix("-") else { return nil }
        let known = KhRoot.configuration.subcommands.map { $0._commandName } + ["help"]
        guard !known.contains(verb) else { return nil }
        guard let path = ExternalCommands.find(verb, path: environment["PATH"] ?? "") else {
            let hint = suggestion(verb, among: known).map { "did you mean `kh \($0)`?" } ?? "see `kh --help`, or put an executable kh-\(verb) on PATH"
            report(KhError.usage("'\(verb)' is not a kh command and no kh-\(verb) was found on PATH", hint: hint), console)
            return KhExitCode.usage.rawValue
        }
        var env = environment.merging(leading.environment) { $1 }
        env["KH_BIN"] = (CommandLine.arguments.first.flatMap { URL(fileURLWithPath: $0).standardizedFileURL.path }) ?? "kh"
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { env["KH_BIN"] = exe }
        env["KH_VERSION"] = KhVersion.current
        let error = ExternalCommands.exec(path, arguments: Array(leading.rest.dropFirst()), environment: env)
        report(error, console)
        return KhExitCode.external.rawValue
    }

    static func suggestion(_ verb: String, among known: [String]) -> String? {
        closest(to: verb, among: known.filter { $0 != "help" })
    }
}
