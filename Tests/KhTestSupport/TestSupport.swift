import Foundation
import KhCore
import KhProcess
import Synchronization

/// A temporary directory removed when the value is released.
public final class TemporaryDirectory: Sendable {
    public let path: String

    /// - Parameter removeAtExit: also remove it when the test process exits, for a
    ///   directory held by a process-wide value that is never released.
    public init(_ label: String = "kh-test", removeAtExit: Bool = false) {
        let template = NSTemporaryDirectory() + "/\(label).XXXXXX"
        var bytes = Array(template.utf8CString)
        let made = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: bytes.map { UInt8(bitPattern: $0) } + [])
            .trimmingCharacters(in: CharacterSet(charactersIn: "\0"))
        if removeAtExit { Self.removeAtExit(path) }
    }

    private static let atExit = Mutex<[String]?>(nil)

    private static func removeAtExit(_ path: String) {
        atExit.withLock { paths in
            if paths == nil {
                atexit {
                    for path in TemporaryDirectory.atExit.withLock({ $0 ?? [] }) { try? FileManager.default.removeItem(atPath: path) }
                }
            }
            paths = (paths ?? []) + [path]
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes a file (creating folders) and returns its path.
    @discardableResult
    public func write(_ name: String, _ text: String, executable: Bool = false) throws -> String {
        let file = path + "/" + name
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Atomic (O_CLOEXEC temp file + rename): a script is never open for writing
        // while a test in parallel spawns a child, so exec cannot fail with ETXTBSY.
        try AtomicFile.write(Data(text.utf8), to: file, mode: executable ? 0o755 : 0o644)
        return file
    }

    public func read(_ name: String) throws -> String {
        try String(contentsOfFile: path + "/" + name, encoding: .utf8)
    }
}

/// Processes: see ``ProcessTable`` (KhProcess); tests also look processes up by a marker.
public enum ProcTable {
    public static func members(ofGroup pgid: pid_t) -> [pid_t] { ProcessTable.liveMembers(ofGroup: pgid) }

    /// Live processes whose command line contains `marker`.
    public static func matching(_ marker: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let text = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return text.contains(marker) && ProcessTable.isAlive(pid)
        }
    }
}

/// A clock tests control: `now` is fixed until advanced; `sleep` advances it.
public final class TestClock: Sendable {
    private let current: Mutex<Date>
    public init(_ start: Date = Date(timeIntervalSince1970: 1_790_000_000)) { current = Mutex(start) }
    public func advance(_ seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    public var clock: KhClock {
        KhClock(now: { self.current.withLock { $0 } }, sleep: { duration in self.advance(duration.seconds) })
    }
}

/// A file system in memory, for logic tests that must not touch the disk.
public final class InMemoryFileSystem: FileSystem {
    private let files = Mutex<[String: Data]>([:])
    private let directories = Mutex<Set<String>>(["/"])

    public init() {}

    public func createDirectory(_ path: String) throws {
        var parts: [String] = []
        for component in path.split(separator: "/") {
            parts.append(String(component))
            let dir = "/" + parts.joined(separator: "/")
            _ = directories.withLock { $0.insert(dir) }
        }
    }

    public func writeAtomically(_ data: Data, to path: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        guard isDirectory(parent) else { throw FileSystemError(path: path, operation: "write", reason: "no such directory \(parent)") }
        files.withLock { $0[path] = data }
    }

    public func read(_ path: String) throws -> Data {
        guard let data = files.withLock({ $0[path] }) else { throw FileSystemError(path: path, operation: "read", reason: "no such file") }
        return data
    }

    public func exists(_ path: String) -> Bool { files.withLock { $0[path] != nil } || isDirectory(path) }
    public func isDirectory(_ path: String) -> Bool { directories.withLock { $0.contains(path) } }

    public func list(_ path: String) throws -> [String] {
        let prefix = path.hasSuffix("/") ? path : path + "/"
        let all = files.withLock { Array($0.keys) } + directories.withLock { Array($0) }
        return Set(all.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).split(separator: "/").first ?? "") })
            .filter { !$0.isEmpty }.sorted()
    }

    public func remove(_ path: String) throws {
        files.withLock { $0 = $0.filter { !$0.key.hasPrefix(path) } }
        directories.withLock { $0 = $0.filter { !$0.hasPrefix(path) } }
    }
}

/// A runner that answers from a table, for logic tests; records what it was asked.
public final class FakeCommandRunner: CommandRunner {
    public typealias Responder = @Sendable (Command) throws -> CommandResult
    private let responder: Responder
    private let calls = Mutex<[Command]>([])

    public init(_ responder: @escaping Responder) { self.responder = responder }

    public var location: String { "fake" }
    public var commands: [Command] { calls.withLock { $0 } }

    public func run(_ command: Command, options: RunOptions) async throws -> CommandResult {
        calls.withLock { $0.append(command) }
        return try responder(command)
    }
}

/// Where the package's built products are, for end-to-end tests of the binary.
public enum BuiltProducts {
    /// The repository root (the folder with Package.swift).
    public static var repositoryRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.path + "/Package.swift") { return url.path }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }

    /// The built `kh` executable beside the test bundle, or `KH_BINARY`.
    public static var kh: String {
        if let explicit = ProcessInfo.processInfo.environment["KH_BINARY"] { return explicit }
        let bundle = Bundle.main.bundleURL
        for dir in [bundle, bundle.deletingLastPathComponent()] {
            let candidate = dir.path + "/kh"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        // swift test puts products in .build/<triple>/debug; the test binary runs from there.
        let args0 = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [args0, args0.deletingLastPathComponent(), args0.deletingLastPathComponent().deletingLastPathComponent()] {
            let candidate = dir.path + "/kh"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        fatalError("the kh binary was not found next to the tests; run `swift build` first or set KH_BINARY")
    }
}
