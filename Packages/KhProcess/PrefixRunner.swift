import KhCore

/// Runs commands through a command prefix the user gives, such as an
/// `ssh_command` of `MISE_ENV=test mise run server:ssh` or `ssh -i key admin@node1`.
///
/// The prefix is a shell fragment: it is run by `/bin/sh -c`, so it may set
/// variables and use the user's own wrappers. How the command is handed to it
/// depends on ``Mode``:
/// - ``Mode/remoteShell`` (default, for anything ending in `ssh`): the prefix gets
///   **one** argument, the whole command line quoted for a POSIX shell, because ssh
///   joins its arguments with spaces and the remote shell parses them again.
///   Arguments therefore arrive unchanged however many spaces, quotes or `$` they hold.
/// - ``Mode/arguments``: each argument is passed as its own word (for local
///   wrappers such as `env FOO=1`, `sudo -u ops`, `nice`).
public struct PrefixRunner: CommandRunner {
    /// How the command reaches the prefix.
    public enum Mode: String, Sendable, Codable {
        /// One shell-quoted string, parsed again on the far side (ssh).
        case remoteShell = "remote-shell"
        /// Separate, quoted words (local wrappers).
        case arguments
    }

    /// The prefix, as the user wrote it.
    public var prefix: String
    public var mode: Mode
    /// Where the prefix itself runs (usually a ``LocalRunner``).
    public var base: any CommandRunner

    public init(prefix: String, mode: Mode = .remoteShell, base: any CommandRunner = LocalRunner()) {
        self.prefix = prefix
        self.mode = mode
        self.base = base
    }

    public var location: String { "prefix \(Shell.quote(prefix))" }

    /// The `/bin/sh -c` script that runs `command` through the prefix.
    public func script(for command: Command) -> String {
        switch mode {
        case .remoteShell:
            return prefix + " " + Shell.quote(Shell.commandLine(for: command))
        case .arguments:
            return prefix + " " + Shell.join([command.executable] + command.arguments)
        }
    }

    public func run(_ command: Command, options: RunOptions) async throws -> CommandResult {
        var local = Command("/bin/sh", ["-c", script(for: command)])
        if mode == .arguments {
            local.environment = command.environment
            local.inheritEnvironment = command.inheritEnvironment
            local.workingDirectory = command.workingDirectory
        }
        var result = try await base.run(local, options: options)
        result.command = command
        return result
    }
}
