import Foundation
import KhCore

/// Streams a child's output to a log file: one line per output line, prefixed with the
/// UTC time of day and the stream (`23:14:05.123 out| `, `err| `), secrets redacted; kh's
/// own notes (`kh |`: start, deadline, kills, exit) carry the full UTC date and time, and
/// a note marks each new UTC day, so every line's date is the last full date above it.
/// (The short prefix is 18 bytes instead of 30: writing the log is what costs most when a
/// child prints a lot, see docs/benchmarks.md.) Lines are copied once into a raw 256 KiB
/// buffer that is written in large blocks, and flushed at least every 200 ms while the
/// child is quiet so `tail -f` stays live.
package final class LogWriter: @unchecked Sendable {
    private let fd: Int32
    private static let capacity = 256 << 10
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: LogWriter.capacity, alignment: 16)
    private var used = 0
    /// `23:14:05.123 out| ` and the `err| ` variant, made once per chunk into fixed
    /// buffers, so the per-line copy touches no array (no retain, no bounds check).
    private static let prefixLength = 18
    private let outPrefix = UnsafeMutableRawPointer.allocate(byteCount: LogWriter.prefixLength, alignment: 8)
    private let errPrefix = UnsafeMutableRawPointer.allocate(byteCount: LogWriter.prefixLength, alignment: 8)
    /// `2026-11-21T` of the current chunk.
    private var date: [UInt8] = []
    /// `23:14:05.123` of the current chunk.
    private var time: [UInt8] = []
    private var stampSecond: Int = -1
    private var stampDay: Int = -1
    /// The day of the last full date written (a `kh |` note), -1 before the first.
    private var writtenDay: Int = -1
    private var secondText: [UInt8] = []
    private let redactor: Redactor?
    private var scratch: [UInt8] = []

    package init(path: String, redactor: Redactor?) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try LocalFileSystem().createDirectory(directory) }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            buffer.deallocate()
            outPrefix.deallocate()
            errPrefix.deallocate()
            throw FileSystemError(path: path, operation: "open log", reason: String(cString: strerror(errno)))
        }
        self.redactor = redactor
    }

    deinit {
        buffer.deallocate()
        outPrefix.deallocate()
        errPrefix.deallocate()
    }

    package var hasPending: Bool { used > 0 }

    /// Takes the time once for a chunk of output: every line in it gets this stamp. The
    /// first chunk of a new UTC day is preceded by a `kh |` note with the full date.
    package func beginChunk() {
        stampNow()
        if writtenDay != -1 && stampDay != writtenDay { note("new UTC day") }
        for (target, tag) in [(outPrefix, " out| "), (errPrefix, " err| ")] {
            let bytes = time + Array(tag.utf8)
            precondition(bytes.count == Self.prefixLength)
            bytes.withUnsafeBytes { target.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        }
    }

    /// Reads the clock into `date` and `time` (formatting only when the second changed).
    private func stampNow() {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let second = ts.tv_sec
        if second != stampSecond {
            stampSecond = second
            stampDay = second / 86_400
            var t = time_t(second)
            var parts = tm()
            gmtime_r(&t, &parts)
            date = Array(
                String(format: "%04d-%02d-%02dT", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday)).utf8)
            secondText = Array(String(format: "%02d:%02d:%02d.", Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec)).utf8)
        }
        let ms = Int(ts.tv_nsec / 1_000_000)
        time = secondText
        time.append(UInt8(48 + ms / 100))
        time.append(UInt8(48 + (ms / 10) % 10))
        time.append(UInt8(48 + ms % 10))
    }

    /// `2026-11-21T23:14:05.123Z kh | TEXT` into the buffer.
    private func note(_ text: String) {
        let line = date + time + Array("Z kh | ".utf8) + Array((redactor?.redact(text) ?? text).utf8) + [0x0A]
        line.withUnsafeBytes { put($0) }
        writtenDay = stampDay
    }

    @inline(__always)
    private func put(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        if used + bytes.count > Self.capacity {
            flush()
            if bytes.count > Self.capacity {
                KhCore.writeAll(fd, bytes)
                return
            }
        }
        (buffer + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        used += bytes.count
    }

    @inline(__always)
    package func line(_ bytes: UnsafeRawBufferPointer, stream: OutputStream, redaction: RedactionSnapshot?) {
        put(UnsafeRawBufferPointer(start: stream == .stdout ? outPrefix : errPrefix, count: Self.prefixLength))
        if let redaction, !redaction.isEmpty {
            scratch.removeAll(keepingCapacity: true)
            redaction.append(bytes, to: &scratch)
            scratch.withUnsafeBytes { put($0) }
        } else {
            put(bytes)
        }
        if used == Self.capacity { flush() }
        buffer.storeBytes(of: 0x0A, toByteOffset: used, as: UInt8.self)
        used += 1
    }

    /// Every complete line of `chunk` (up to its last newline) with this chunk's prefix,
    /// when nothing needs redacting: one scan and two copies a line, straight into the
    /// buffer. Stops before a line longer than `maxLine` (the caller splits it). Returns
    /// how many bytes of `chunk` it took (0 when it holds no newline).
    package func completeLines(_ chunk: UnsafeRawBufferPointer, stream: OutputStream, maxLine: Int) -> Int {
        guard let base = chunk.baseAddress else { return 0 }
        let prefix = UnsafeRawPointer(stream == .stdout ? outPrefix : errPrefix)
        // The 18-byte prefix as two 8-byte words and one 2-byte word (no memmove call a line).
        let p0 = prefix.loadUnaligned(as: UInt64.self)
        let p1 = prefix.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let p2 = prefix.loadUnaligned(fromByteOffset: 16, as: UInt16.self)
        var start = 0
        while start < chunk.count, let hit = memchr(base + start, 0x0A, chunk.count - start) {
            let end = base.distance(to: UnsafeRawPointer(hit))
            let length = end - start
            if length > maxLine { break }
            let needed = Self.prefixLength + length + 1
            if used + needed > Self.capacity { flush() }
            let out = buffer + used
            out.storeBytes(of: p0, as: UInt64.self)
            out.storeBytes(of: p1, toByteOffset: 8, as: UInt64.self)
            out.storeBytes(of: p2, toByteOffset: 16, as: UInt16.self)
            (out + Self.prefixLength).copyMemory(from: base + start, byteCount: length)
            out.storeBytes(of: 0x0A, toByteOffset: Self.prefixLength + length, as: UInt8.self)
            used += needed
            start = end + 1
        }
        return start
    }

    /// A note of kh's own (start, deadline, kill, exit), with the full date, written at once.
    package func header(_ text: String) {
        stampNow()
        note(text)
        flush()
    }

    package func flush() {
        guard used > 0 else { return }
        KhCore.writeAll(fd, UnsafeRawBufferPointer(start: buffer, count: used))
        used = 0
    }

    package func close() {
        flush()
        Glibc.close(fd)
    }
}
