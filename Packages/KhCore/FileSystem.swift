import Foundation

/// The file operations kh's logic needs, behind a protocol so tests can use an
/// in-memory fake (`KhTestSupport.InMemoryFileSystem`) and integration tests the disk.
public protocol FileSystem: Sendable {
    /// Creates a directory and its parents; no error when it exists.
    func createDirectory(_ path: String) throws
    /// Writes the whole file or nothing: a temporary file in the same directory, then rename.
    func writeAtomically(_ data: Data, to path: String) throws
    /// The file's bytes.
    func read(_ path: String) throws -> Data
    /// Whether anything exists at the path.
    func exists(_ path: String) -> Bool
    /// Whether a directory exists at the path.
    func isDirectory(_ path: String) -> Bool
    /// The names of a directory's entries, sorted.
    func list(_ path: String) throws -> [String]
    /// Removes a file or a directory tree; no error when nothing is there.
    func remove(_ path: String) throws
}

/// An I/O failure with the path and the system's message.
public struct FileSystemError: KhReportableError {
    public var path: String
    public var operation: String
    public var reason: String
    public var exitCode: KhExitCode { .external }
    public var message: String { "\(operation) \(path): \(reason)" }

    public init(path: String, operation: String, reason: String) {
        self.path = path
        self.operation = operation
        self.reason = reason
    }

    static func errno(_ path: String, _ operation: String, _ code: Int32 = Glibc.errno) -> FileSystemError {
        FileSystemError(path: path, operation: operation, reason: String(cString: strerror(code)))
    }
}

/// The real file system.
public struct LocalFileSystem: FileSystem {
    public init() {}

    public func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FileSystemError(path: path, operation: "create directory", reason: error.localizedDescription)
        }
    }

    public func writeAtomically(_ data: Data, to path: String) throws {
        try AtomicFile.write(data, to: path)
    }

    public func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileSystemError(path: path, operation: "read", reason: exists(path) ? "permission denied or not a file" : "no such file")
        }
        return data
    }

    public func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    public func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    public func list(_ path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw FileSystemError(path: path, operation: "list", reason: error.localizedDescription)
        }
    }

    public func remove(_ path: String) throws {
        guard exists(path) else { return }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw FileSystemError(path: path, operation: "remove", reason: error.localizedDescription)
        }
    }
}

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
/// Returns 0, or the errno of the write that failed.
@discardableResult
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
    var offset = 0
    while offset < bytes.count {
        let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += n
    }
    return 0
}

/// Whole-or-nothing file writes: temp file beside the target, fsync, rename.
public enum AtomicFile {
    /// Writes `data` to `path` so that a reader sees the old content or the new, never a part.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temp = (directory.isEmpty ? "." : directory) + "/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileSystemError.errno(temp, "create") }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        let failed = data.withUnsafeBytes { writeAll(fd, $0) }
        if failed != 0 {
            close(fd)
            throw FileSystemError.errno(temp, "write", failed)
        }
        if fsync(fd) != 0 {
            let code = errno
            close(fd)
            throw FileSystemError.errno(temp, "fsync", code)
        }
        close(fd)
        guard rename(temp, path) == 0 else { throw FileSystemError.errno(path, "rename") }
        ok = true
    }
}
