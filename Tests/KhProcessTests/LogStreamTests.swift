import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// The log a stream makes, whatever the chunking of the child's output: the fast path
/// (nothing to redact, no line callback) and the line-by-line path must write the same.
@Suite("Log lines across chunk boundaries")
struct LogStreamTests {
    /// Lines of varied lengths (empty, short, long, one over the 64 KiB split).
    static func sampleLines() -> [String] {
        var lines: [String] = []
        for i in 0..<3_000 { lines.append(String(repeating: "abcdefghij", count: i % 13) + "line \(i)") }
        lines.insert("", at: 17)
        lines.insert(String(repeating: "x", count: 300_000), at: 1_500)
        lines.append("secret-value-123456 in the last line")
        return lines
    }

    /// Feeds `text` in chunks of the given sizes (cycled) and returns the log's lines without
    /// their time and stream tag (kh's own notes dropped).
    func logged(_ text: [UInt8], chunks: [Int], redactor: Redactor?, wantLines: Bool) throws -> [String] {
        let dir = TemporaryDirectory()
        let path = dir.path + "/step.log"
        let log = try LogWriter(path: path, redactor: redactor)
        var state = StreamState(stream: .stdout, fd: -1, limit: 1 << 20, keep: .tail)
        var offset = 0
        var index = 0
        text.withUnsafeBytes { all in
            while offset < all.count {
                let size = min(chunks[index % chunks.count], all.count - offset)
                index += 1
                let chunk = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + size)])
                state.consume(chunk, log: log, redaction: redactor?.snapshot, wantLines: wantLines) { _ in }
                offset += size
            }
        }
        state.flushPartial(log: log, redaction: redactor?.snapshot, onLine: nil)
        log.close()
        let content = try String(contentsOfFile: path, encoding: .utf8)
        let lines = content.split(separator: "\n", omittingEmptySubsequences: false).dropLast().filter { !$0.contains("Z kh | ") }
        #expect(lines.first?.range(of: #"^\d\d:\d\d:\d\d\.\d{3} out\| "#, options: .regularExpression) != nil, "the first line has a time")
        return lines.map { line in
            // `HH:MM:SS.mmm out| ` when the time changed since the last line, else `out| `.
            if line.hasPrefix("out| ") { return String(line.dropFirst(5)) }
            #expect(line.range(of: #"^\d\d:\d\d:\d\d\.\d{3} out\| "#, options: .regularExpression) != nil, "\(line.prefix(40))")
            return String(line.dropFirst(18))
        }
    }

    /// What the log holds for `lines`: lines over 64 KiB split in 64 KiB pieces.
    static func expected(_ lines: [String]) -> [String] {
        lines.flatMap { line -> [String] in
            let bytes = Array(line.utf8)
            guard bytes.count > StreamState.maxLine else { return [line] }
            return stride(from: 0, to: bytes.count, by: StreamState.maxLine).map {
                String(decoding: bytes[$0..<min($0 + StreamState.maxLine, bytes.count)], as: UTF8.self)
            }
        }
    }

    @Test(
        "every line once, whole and in order, for chunk sizes that cut lines anywhere",
        arguments: [[1], [7, 3, 100], [4096], [65_536, 17], [1 << 20]])
    func chunkings(_ chunks: [Int]) throws {
        let lines = Self.sampleLines()
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        let fast = try logged(text, chunks: chunks, redactor: nil, wantLines: false)
        let slow = try logged(text, chunks: chunks, redactor: nil, wantLines: true)
        let expected = Self.expected(lines)
        #expect(fast.count == expected.count)
        #expect(fast == expected)
        #expect(slow == fast)
    }

    @Test("a line starts with the time only when it changed: once for a burst, on each line of a slow child")
    func timeWhenChanged() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/step.log"
        let log = try LogWriter(path: path, redactor: nil)
        var out = StreamState(stream: .stdout, fd: -1, limit: 1 << 20, keep: .tail)
        var err = StreamState(stream: .stderr, fd: -1, limit: 1 << 20, keep: .tail)
        func feed(_ state: inout StreamState, _ text: String) {
            Array(text.utf8).withUnsafeBytes { state.consume($0, log: log, redaction: nil, wantLines: false) { _ in } }
        }
        log.header("started")
        feed(&out, "a\nb\nc\n")
        feed(&err, "warning\n")
        usleep(5_000)
        feed(&out, "d\n")
        usleep(5_000)
        feed(&out, "e\n")
        log.close()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let time = #"^\d\d:\d\d:\d\d\.\d{3} "#
        #expect(lines.count == 7, "\(lines)")
        #expect(lines[0].range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z kh \| started$"#, options: .regularExpression) != nil)
        #expect(lines[1].range(of: time + #"out\| a$"#, options: .regularExpression) != nil, "\(lines)")
        #expect(Array(lines[2...3]) == ["out| b", "out| c"])
        #expect(lines[4] == "err| warning" || lines[4].range(of: time + #"err\| warning$"#, options: .regularExpression) != nil)
        #expect(lines[5].range(of: time + #"out\| d$"#, options: .regularExpression) != nil, "\(lines)")
        #expect(lines[6].range(of: time + #"out\| e$"#, options: .regularExpression) != nil, "\(lines)")
    }

    @Test("a burst of chunks gets at most one time per millisecond on both paths")
    func burstTimes() throws {
        for wantLines in [false, true] {
            let dir = TemporaryDirectory()
            let path = dir.path + "/step.log"
            let log = try LogWriter(path: path, redactor: nil)
            var out = StreamState(stream: .stdout, fd: -1, limit: 1 << 20, keep: .tail)
            let started = ContinuousClock.now
            for index in 0..<500 {
                Array("line \(index)\nsecond \(index)\n".utf8).withUnsafeBytes {
                    out.consume($0, log: log, redaction: nil, wantLines: wantLines) { _ in }
                }
            }
            let elapsed = ContinuousClock.now - started
            log.close()
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            let stamped = lines.filter { $0.range(of: #"^\d\d:\d\d:\d\d\.\d{3} out\| "#, options: .regularExpression) != nil }.count
            let milliseconds = Int((elapsed / .milliseconds(1)).rounded(.up))
            #expect(lines.count == 1_000)
            #expect(stamped >= 1 && stamped <= milliseconds + 1, "\(stamped) times in \(milliseconds) ms (wantLines \(wantLines))")
        }
    }

    @Test("with a secret registered the lines go through redaction and still match")
    func redacted() throws {
        let lines = Self.sampleLines()
        let text = Array((lines.joined(separator: "\n") + "\n").utf8)
        let redactor = Redactor()
        redactor.register(name: "TOKEN", value: "secret-value-123456")
        let out = try logged(text, chunks: [4096, 333], redactor: redactor, wantLines: false)
        #expect(out.last == "[redacted:TOKEN] in the last line")
        #expect(Array(out.dropLast()) == Array(Self.expected(lines).dropLast()))
    }
}
