import Foundation
import KhCore

/// Streams a child's output to a log file: one line per output line, prefixed with
/// a UTC timestamp and the stream (`out|`, `err|`, and `kh |` for kh's own notes),
/// secrets redacted. Buffered, written in large blocks, flushed at least every
/// 200 ms while the child is quiet so `tail -f` stays live.
final class LogWriter: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var stamp: [UInt8] = []
    private var stampSecond: Int = -1
    private var secondPrefix: [UInt8] = []
    private let redactor: Redactor?
    private static let flushAt = 512 * 1024
    private static let tags: [OutputStream: [UInt8]] = [.stdout: Array(" out| ".utf8), .stderr: Array(" err| ".utf8)]

    init(path: String, redactor: Redactor?) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try LocalFileSystem().createDirectory(directory) }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FileSystemError(path: path, operation: "open log", reason: String(cString: strerror(errno)))
        }
        self.redactor = redactor
        buffer.reserveCapacity(Self.flushAt + 128 * 1024)
    }

    var hasPending: Bool { !buffer.isEmpty }

    /// Takes the time once for a chunk of output: every line in it gets this stamp.
    func beginChunk() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let second = ts.tv_sec
        if second != stampSecond {
            stampSecond = second
            var t = time_t(second)
            var parts = tm()
            gmtime_r(&t, &parts)
            let text = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
            secondPrefix = Array(text.utf8)
        }
        let ms = Int(ts.tv_nsec / 1_000_000)
        stamp = secondPrefix
        stamp.append(UInt8(48 + ms / 100))
        stamp.append(UInt8(48 + (ms / 10) % 10))
        stamp.append(UInt8(48 + ms % 10))
        stamp.append(UInt8(ascii: "Z"))
    }

    @inline(__always)
    func line(_ bytes: UnsafeRawBufferPointer, stream: OutputStream, redaction: RedactionSnapshot?) {
        buffer.append(contentsOf: stamp)
        buffer.append(contentsOf: Self.tags[stream]!)
        if let redaction {
            redaction.append(bytes, to: &buffer)
        } else {
            buffer.append(contentsOf: bytes)
        }
        buffer.append(0x0A)
        if buffer.count >= Self.flushAt { flush() }
    }

    /// A note of kh's own (start, deadline, kill, exit), written at once.
    func header(_ text: String) {
        beginChunk()
        buffer.append(contentsOf: stamp)
        buffer.append(contentsOf: Array(" kh | ".utf8))
        buffer.append(contentsOf: Array((redactor?.redact(text) ?? text).utf8))
        buffer.append(0x0A)
        flush()
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() {
        flush()
        Glibc.close(fd)
    }
}
