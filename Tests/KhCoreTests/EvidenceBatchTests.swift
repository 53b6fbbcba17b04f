import Foundation
import KhCore
import KhTestSupport
import Testing

@Suite("Evidence records appended in one write")
struct EvidenceBatchTests {
    @Test("record(contentsOf:) numbers the records after the earlier ones, redacts them and writes records.jsonl once")
    func batch() throws {
        let fs = InMemoryFileSystem()
        let clock = TestClock()
        let redactor = Redactor()
        redactor.register(name: "TOKEN", value: "s3cret-token-value")
        let run = try EvidenceRun.start(root: "/ev", command: ["kh"], version: "1", clock: clock.clock, fileSystem: fs, redactor: redactor)
        try run.record(EvidenceRecord(kind: "check", name: "first", status: .pass))
        let path = "/ev/\(run.runID)/records.jsonl"
        let before = try fs.read(path)
        let stamped = try run.record(contentsOf: [
            EvidenceRecord(kind: "gather", name: "a", status: .pass, message: "sent s3cret-token-value"),
            EvidenceRecord(kind: "gather", name: "b", status: .fail),
        ])
        #expect(stamped.map(\.seq) == [2, 3])
        let text = String(decoding: try fs.read(path), as: UTF8.self)
        #expect(try fs.read(path) != before)
        let records = try text.split(separator: "\n").map { try KhJSON.decoder().decode(EvidenceRecord.self, from: Data($0.utf8)) }
        #expect(records.map(\.name) == ["first", "a", "b"] && records.map(\.seq) == [1, 2, 3])
        #expect(!text.contains("s3cret-token-value"))
        #expect(try run.record(contentsOf: []).isEmpty && run.records.count == 3)
    }
}
