import CKhPosix
import Foundation
import KhCore

/// Streams a child's output to a log file, one line per output line, secrets redacted:
///
///     2026-11-21T19:59:27.411Z kh | started: kubectl version --client -o json (pid 19184, …)
///     19:59:27.498 out| {"clientVersion": …}
///     err| a warning printed in the same millisecond
///
/// Each output line is tagged with its stream (`out|`, `err|`) and, when the UTC time of
/// day (to the millisecond) differs from the last one written, starts with it: a line
/// without a time has the time of the last one above it. kh's own notes (`kh |`: start,
/// deadline, kills, exit, and one at each new UTC day) carry the full date and time, so a
/// line's date is that of the last note above it. A child printing a line every few
/// milliseconds gets a time on every line; one printing thousands a millisecond gets one
/// time per millisecond, so the log stays about the size of the output (writing the log is
/// most of kh's cost for such a child, see docs/benchmarks.md). Lines are copied once into
/// a raw 256 KiB buffer that is written in large blocks, and flushed at least every
/// 200 ms while the child is quiet so `tail -f` stays live.
package final class LogWriter: @unchecked Sendable {
    private let fd: Int32
    private static let capacity = 256 << 10
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: LogWriter.capacity, alignment: 16)
    private var used = 0
    /// `23:14:05.123 ` (13 bytes) of the current chunk.
    private static let timeLength = 13
    private let timePrefix = UnsafeMutableRawPointer.allocate(byteCount: LogWriter.timeLength, alignment: 8)
    /// `out| ` and `err| `.
    private static let tagLength = 5
    /// The time of day of the current chunk in milliseconds, and of the last time written
    /// (-1: the next line gets one).
    private var chunkMillisecond = -1
    private var writtenMillisecond = -1
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
            timePrefix.deallocate()
            throw FileSystemError(path: path, operation: "open log", reason: String(cString: strerror(errno)))
        }
        self.redactor = redactor
    }

    deinit {
        buffer.deallocate()
        timePrefix.deallocate()
    }

    package var hasPending: Bool { used > 0 }

    /// Takes the time once for a chunk of output: every line in it gets this time. The
    /// first chunk of a new UTC day is preceded by a `kh |` note with the full date.
    package func beginChunk() {
        stampNow()
        if writtenDay != -1 && stampDay != writtenDay { note("new UTC day") }
        let bytes = time + [UInt8(ascii: " ")]
        bytes.withUnsafeBytes { timePrefix.copyMemory(from: $0.baseAddress!, byteCount: Self.timeLength) }
    }

    /// Reads the clock into `date`, `time` and `chunkMillisecond` (formatting the date and
    /// second only when the second changed).
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
        chunkMillisecond = (second % 86_400) * 1000 + ms
        time = secondText
        time.append(UInt8(48 + ms / 100))
        time.append(UInt8(48 + (ms / 10) % 10))
        time.append(UInt8(48 + ms % 10))
    }

    /// `2026-11-21T23:14:05.123Z kh | TEXT` into the buffer; the next output line gets a time.
    private func note(_ text: String) {
        let line = date + time + Array("Z kh | ".utf8) + Array((redactor?.redact(text) ?? text).utf8) + [0x0A]
        line.withUnsafeBytes { put($0) }
        writtenDay = stampDay
        writtenMillisecond = -1
    }

    /// The `out|` or `err|` of a stream's tag as one 4-byte word (the space follows).
    @inline(__always)
    private static func tag(_ stream: OutputStream) -> UInt32 {
        UInt32(littleEndian: stream == .stdout ? 0x7C74_756F : 0x7C72_7265)  // "out|", "err|"
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

    /// The time (when it changed since the last one written) and the stream tag of a
    /// line, into the buffer at `out`; returns how many bytes.
    @inline(__always)
    private func prefix(at out: UnsafeMutableRawPointer, stream: OutputStream) -> Int {
        var length = 0
        if chunkMillisecond != writtenMillisecond {
            out.copyMemory(from: timePrefix, byteCount: Self.timeLength)
            writtenMillisecond = chunkMillisecond
            length = Self.timeLength
        }
        out.storeBytes(of: Self.tag(stream), toByteOffset: length, as: UInt32.self)
        out.storeBytes(of: UInt8(ascii: " "), toByteOffset: length + 4, as: UInt8.self)
        return length + Self.tagLength
    }

    @inline(__always)
    package func line(_ bytes: UnsafeRawBufferPointer, stream: OutputStream, redaction: RedactionSnapshot?) {
        if used + Self.timeLength + Self.tagLength > Self.capacity { flush() }
        used += prefix(at: buffer + used, stream: stream)
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

    /// Every complete line of `chunk` (up to its last newline), when nothing needs
    /// redacting, straight into the buffer through `kh_tag_lines`, which finds each newline
    /// and copies the line in one pass. The chunk's time, when due, goes before the first
    /// line (and is taken back if the chunk holds no complete line). Stops before a line
    /// longer than `maxLine` (the caller splits it). Returns how many bytes of `chunk` it
    /// took (0 when it holds no newline).
    package func completeLines(_ chunk: UnsafeRawBufferPointer, stream: OutputStream, maxLine: Int) -> Int {
        guard let base = chunk.baseAddress else { return 0 }
        // kh_tag_lines stops for lack of room only when less than a longest line (plus its
        // tag and 16 spare bytes) is left; otherwise it stopped at a long or open line.
        let roomForAnyLine = maxLine + 1 + Self.tagLength + 16
        let tag = Self.tag(stream)
        var start = 0
        while start < chunk.count {
            let timeDue = chunkMillisecond != writtenMillisecond
            if Self.capacity - used <= roomForAnyLine + Self.timeLength { flush() }
            if timeDue {
                (buffer + used).copyMemory(from: timePrefix, byteCount: Self.timeLength)
                used += Self.timeLength
            }
            var written = 0
            let taken = kh_tag_lines(
                buffer.assumingMemoryBound(to: UInt8.self) + used, Self.capacity - used,
                base.assumingMemoryBound(to: UInt8.self) + start, chunk.count - start, tag, maxLine, &written)
            if timeDue {
                if taken == 0 { used -= Self.timeLength } else { writtenMillisecond = chunkMillisecond }
            }
            used += written
            start += taken
            if Self.capacity - used > roomForAnyLine + Self.timeLength { break }
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
