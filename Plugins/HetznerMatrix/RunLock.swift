import Foundation
import KhCore
import KhProcess

/// Process facts from /proc, behind closures so tests can fake them.
public struct ProcessInspector: Sendable {
    /// A process's start time (clock ticks since boot, field 22 of `/proc/PID/stat`), nil when it is gone or a zombie.
    public var startTime: @Sendable (_ pid: Int32) -> UInt64?
    /// Live processes that hold a terraform state folder: a file of it open
    /// (`terraform.tfstate`, `.terraform.tfstate.lock.info`), their working folder in it,
    /// or `-chdir=FOLDER` on their command line.
    public var stateHolders: @Sendable (_ directory: String) -> [Int32]
    /// Whether any live process is in the group.
    public var groupIsAlive: @Sendable (_ pgid: Int32) -> Bool
    /// Sends a signal to a process (pid > 0) or a group (pid < 0).
    public var signal: @Sendable (_ pid: Int32, _ signal: Int32) -> Void

    public init(
        startTime: @escaping @Sendable (Int32) -> UInt64?, stateHolders: @escaping @Sendable (String) -> [Int32],
        groupIsAlive: @escaping @Sendable (Int32) -> Bool, signal: @escaping @Sendable (Int32, Int32) -> Void
    ) {
        self.startTime = startTime
        self.stateHolders = stateHolders
        self.groupIsAlive = groupIsAlive
        self.signal = signal
    }

    /// The real /proc.
    public static let live = ProcessInspector(
        startTime: { pid in
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else {
                return nil
            }
            let fields = text[text.index(close, offsetBy: 2)...].split(separator: " ")
            // fields[0] is the state (field 3); the start time is field 22.
            guard fields.count > 19, let state = fields[0].first, state != "Z", state != "X" else { return nil }
            return UInt64(fields[19])
        },
        stateHolders: { directory in
            let dir = (directory as NSString).standardizingPath
            let watched = [dir + "/terraform.tfstate", dir + "/.terraform.tfstate.lock.info"]
            let me = getpid()
            let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter { $0 != me }
            return pids.filter { pid in
                guard ProcessTable.isAlive(pid) else { return false }
                if let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd"), cwd == dir || cwd.hasPrefix(dir + "/") {
                    return true
                }
                if let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") {
                    let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                    if args.contains("-chdir=\(dir)") || args.contains("-chdir=\(dir)/") { return true }
                }
                let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
                return fds.contains { fd in
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")).map(watched.contains) ?? false
                }
            }
        },
        groupIsAlive: { ProcessTable.groupIsAlive($0) },
        signal: { pid, signal in _ = kill(pid, signal) })
}

/// The lock file of a live `kh stabilize` run: who (PID and start time, so a recycled
/// PID is not mistaken for it), which run, and the process groups it has started.
public struct RunLockRecord: Sendable, Codable, Equatable {
    public var pid: Int32
    public var startTime: UInt64
    public var runID: String
    public var command: String
    public var startedAt: Date
    /// Process groups of the children alive now (terraform, packer …), refreshed while it runs.
    public var groups: [Int32]

    public init(pid: Int32, startTime: UInt64, runID: String, command: String, startedAt: Date, groups: [Int32] = []) {
        self.pid = pid
        self.startTime = startTime
        self.runID = runID
        self.command = command
        self.startedAt = startedAt
        self.groups = groups
    }
}

/// Taking, refreshing and releasing the run lock. Liveness is checked through /proc
/// (PID and start time), never by process name.
public struct RunLock: Sendable {
    public var path: String
    public var inspector: ProcessInspector
    public var fileSystem: any FileSystem

    public init(path: String, inspector: ProcessInspector, fileSystem: any FileSystem) {
        self.path = path
        self.inspector = inspector
        self.fileSystem = fileSystem
    }

    /// The recorded run, if the file exists and parses.
    public func read() -> RunLockRecord? {
        guard let data = try? fileSystem.read(path) else { return nil }
        return try? KhJSON.decoder().decode(RunLockRecord.self, from: data)
    }

    /// Whether the recorded process is the one still running (same PID, same start time).
    public func isLive(_ record: RunLockRecord) -> Bool {
        inspector.startTime(record.pid) == record.startTime
    }

    /// The live run holding the lock, other than this process.
    public func liveOwner() -> RunLockRecord? {
        guard let record = read(), record.pid != getpid(), isLive(record) else { return nil }
        return record
    }

    /// Refuses (exit 3) while another run is live; otherwise takes the lock (a stale one is replaced).
    public func acquire(runID: String, command: String, at: Date) throws -> RunLockRecord {
        if let owner = liveOwner() {
            throw KhError.blocked(
                "another kh stabilize run is live: pid \(owner.pid), run \(owner.runID), started \(Timestamp.iso8601(owner.startedAt)) (lock \(path))",
                hint: "wait for it, or stop it with `kh stabilize abort --yes`")
        }
        let me = getpid()
        guard let start = inspector.startTime(me) else { throw KhError.internalError("cannot read /proc/\(me)/stat for the run lock") }
        let record = RunLockRecord(pid: me, startTime: start, runID: runID, command: command, startedAt: at)
        try write(record)
        return record
    }

    /// Rewrites the record (groups refreshed).
    public func write(_ record: RunLockRecord) throws {
        try fileSystem.createDirectory((path as NSString).deletingLastPathComponent)
        try fileSystem.writeAtomically(try KhJSON.encoder(pretty: true).encode(record), to: path)
    }

    /// Removes the lock if it is this process's.
    public func release() {
        if let record = read(), record.pid == getpid() { try? fileSystem.remove(path) }
    }

    /// Holds the lock while `body` runs, refreshing the recorded process groups every
    /// half second from ``ChildProcesses``; releases it at the end, whatever happens.
    public func holding<T: Sendable>(runID: String, command: String, at: Date, _ body: () async throws -> T) async throws -> T {
        let record = try acquire(runID: runID, command: command, at: at)
        let lock = self
        let refresher = Task.detached {
            var current = record
            while !Task.isCancelled {
                let groups = ChildProcesses.shared.activeGroups
                if groups != current.groups {
                    current.groups = groups
                    try? lock.write(current)
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        defer {
            refresher.cancel()
            release()
        }
        return try await body()
    }
}
