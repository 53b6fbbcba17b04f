import Foundation
import KhCore
import KhTestSupport
import Testing

@Suite("Evidence run folders")
struct EvidenceTests {
    @Test("run.json is written at start as running, and at the end with result and counts")
    func lifecycle() throws {
        let fs = InMemoryFileSystem()
        let clock = TestClock()
        let run = try EvidenceRun.start(
            root: "/ev", command: ["kh", "doctor"], version: "9.9.9", clock: clock.clock, fileSystem: fs, redactor: Redactor(),
            workingDirectory: "/w")
        #expect(run.runID == Timestamp.runID(clock.clock.now()))
        let started = try KhJSON.decoder().decode(RunManifest.self, from: fs.read("/ev/\(run.runID)/run.json"))
        #expect(started.status == .running && started.endedAt == nil && started.schemaVersion == 1)
        #expect(fs.isDirectory("/ev/\(run.runID)/logs"))

        clock.advance(2)
        try run.record(EvidenceRecord(kind: "check", name: "a", status: .pass))
        try run.record(EvidenceRecord(kind: "check", name: "b", status: .fail, message: "broke", log: run.relativeLogPath(for: "b/step 1")))
        clock.advance(3)
        try run.finish(exitCode: .checkFailed, result: "1 failed")

        let manifest = try KhJSON.decoder().decode(RunManifest.self, from: fs.read("/ev/\(run.runID)/run.json"))
        #expect(manifest.status == .failed && manifest.exitCode == 1 && manifest.result == "1 failed")
        #expect(manifest.counts == ["pass": 1, "fail": 1])
        #expect(manifest.endedAt!.timeIntervalSince(manifest.startedAt) == 5)
        let lines = String(decoding: try fs.read("/ev/\(run.runID)/records.jsonl"), as: UTF8.self).split(separator: "\n")
        let records = try lines.map { try KhJSON.decoder().decode(EvidenceRecord.self, from: Data($0.utf8)) }
        #expect(records.map(\.seq) == [1, 2] && records[1].log == "logs/b-step-1.log")
        let summary = String(decoding: try fs.read("/ev/\(run.runID)/summary.md"), as: UTF8.self)
        #expect(summary.contains("status: **failed** (exit 1)"))
        #expect(summary.contains("| 2 | fail | check | b | broke | [logs/b-step-1.log](logs/b-step-1.log) |"))
        // A second finish changes nothing.
        try run.finish(exitCode: .success)
        #expect(try KhJSON.decoder().decode(RunManifest.self, from: fs.read("/ev/\(run.runID)/run.json")).status == .failed)
    }

    @Test("two runs in the same second get distinct folders")
    func collision() throws {
        let fs = InMemoryFileSystem()
        let clock = TestClock()
        let a = try EvidenceRun.start(root: "/ev", command: ["kh"], version: "1", clock: clock.clock, fileSystem: fs, redactor: Redactor())
        let b = try EvidenceRun.start(root: "/ev", command: ["kh"], version: "1", clock: clock.clock, fileSystem: fs, redactor: Redactor())
        #expect(b.runID == a.runID + "-2")
    }

    @Test("a token is redacted from the command line, records and summary on disk")
    func redaction() throws {
        let dir = TemporaryDirectory()
        let redactor = Redactor()
        let token = "hcloud-token-0123456789"
        redactor.register(name: "HCLOUD_TOKEN", value: token)
        let run = try EvidenceRun.start(root: dir.path, command: ["kh", "x", "--note", token], version: "1", redactor: redactor)
        try run.record(
            EvidenceRecord(kind: "step", name: "api", status: .info, message: "GET with \(token)", data: ["header": .string("Bearer \(token)")]))
        try run.finish(exitCode: .success, summary: "# done\nused \(token)\n")
        for file in ["run.json", "records.jsonl", "summary.md"] {
            let text = try String(contentsOfFile: run.directory + "/" + file, encoding: .utf8)
            #expect(!text.contains(token), "\(file) leaks the token")
            #expect(text.contains("[redacted:HCLOUD_TOKEN]"), "\(file)")
        }
    }

    @Test("atomic writes leave no temporary files and replace whole")
    func atomic() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/f.json"
        try AtomicFile.write(Data("old".utf8), to: path)
        try AtomicFile.write(Data("new".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["f.json"])
        #expect(throws: FileSystemError.self) { try AtomicFile.write(Data(), to: dir.path + "/missing/f") }
    }

    @Test("exit codes map to run statuses and the worst wins")
    func exitCodes() {
        #expect(RunStatus(exitCode: .blocked) == .blocked)
        #expect(RunStatus(exitCode: .interrupted) == .interrupted)
        #expect(worstExitCode([.success, .checkFailed, .blocked]) == .blocked)
        #expect(worstExitCode([KhExitCode]()) == .success)
        #expect(KhExitCode.table.contains("130  interrupted"))
    }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test("what kh writes reads back equal; Kubernetes' forms parse")
    func roundTrip() throws {
        for seconds in [1_790_000_000.0, 1_790_000_000.123, 1_790_000_000.5, 1_790_000_000.999] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(Timestamp.parse(Timestamp.iso8601(date)) == date)
        }
        #expect(Timestamp.parse("2026-11-21T19:41:03Z")?.timeIntervalSince1970 == 1_795_290_063)
        #expect(Timestamp.parse("2026-11-21T19:41:03.000001Z") != nil)
        #expect(Timestamp.parse("2026-11-21T20:41:03+01:00")?.timeIntervalSince1970 == 1_795_290_063)
        #expect(Timestamp.parse("yesterday") == nil)
        #expect(Timestamp.runID(Date(timeIntervalSince1970: 1_795_290_063)) == "20261121-194103")
    }
}
