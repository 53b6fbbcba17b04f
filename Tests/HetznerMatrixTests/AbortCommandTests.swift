import Foundation
import HetznerMatrix
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// `kh stabilize abort` against a live `kh stabilize run` (the built binary, in the
/// background) whose second scenario's apply stalls in real terraform.
@Suite("kh stabilize abort (binary, terraform, /proc)", .serialized)
struct AbortCommandTests {
    @Test("stops the live run by its recorded process groups, destroys every scenario, clears the locks; the run says interrupted")
    func abort() async throws {
        let testbed = try Testbed.load()
        let emulator = try PrivateEmulator()
        let dir = TemporaryDirectory("kh-stab-abort")
        let marker = "kh-stall-\(UInt32.random(in: 0...UInt32.max))"
        try dir.write("module/main.tf", "")
        try dir.write(
            "harness/scenarios_v3/s1-k3s-basic/main.tf",
            """
            resource "null_resource" "node" {
              provisioner "local-exec" {
                command = "echo up"
              }
              provisioner "local-exec" {
                when    = destroy
                command = "echo destroyed > \(dir.path)/destroyed-s1"
              }
            }
            """)
        try dir.write("harness/scenarios_v3/s2-rke2-stall/\(marker).sh", "echo stalling\nsleep 600\n", executable: true)
        try dir.write(
            "harness/scenarios_v3/s2-rke2-stall/main.tf",
            """
            resource "null_resource" "node" {
              provisioner "local-exec" {
                command = "bash ${path.module}/\(marker).sh"
              }
            }
            """)
        let config = try dir.write(
            "kh.yaml",
            """
            kh:
              evidence_dir: \(dir.path)/runs
            stabilize:
              module_dir: module
              harness_dir: harness
              scenarios: [s1-k3s-basic, s2-rke2-stall]
              concurrency: 1
              hcloud:
                endpoint: \(emulator.endpoint)
              timeouts: {init: 120s, apply: 600s, idle: 600s, destroy: 120s}
              triage:
                enabled: false
            """)
        let kh = KhBinary(testbed: testbed, extra: ["HCLOUD_TOKEN": emulator.token])
        let scenarios = dir.path + "/harness/scenarios_v3"
        let lockPath = dir.path + "/harness/.kh-stabilize.lock"
        let running = try Background(
            [BuiltProducts.kh, "stabilize", "run", "--config", config], cwd: dir.path, environment: kh.environment, stdout: dir.path + "/run.out")
        defer { running.stop() }

        // Bounded wait until the stalled apply is running and the lock records its process group.
        var record: RunLockRecord?
        let stalled = eventually(180) {
            guard let data = FileManager.default.contents(atPath: lockPath),
                let read = try? KhJSON.decoder().decode(RunLockRecord.self, from: data), !read.groups.isEmpty,
                !Proc.matching("\(marker).sh").isEmpty
            else { return false }
            record = read
            return running.process.isRunning
        }
        let output = { (try? String(contentsOfFile: dir.path + "/run.out", encoding: .utf8)) ?? "" }
        #expect(stalled, "the run never reached its stalled apply: \(output())")
        let lock = try #require(record)
        #expect(lock.pid == running.pid)
        let stallPIDs = Proc.matching("\(marker).sh")
        // The stalled script is in one of the recorded groups.
        #expect(stallPIDs.allSatisfy { pid in lock.groups.contains { Proc.members(ofGroup: $0).contains(pid) } })
        #expect(FileManager.default.fileExists(atPath: scenarios + "/s1-k3s-basic/terraform.tfstate"))

        // --dry-run only says what it would do: the run goes on.
        let dry = try await kh.run(["stabilize", "abort", "--config", config, "--dry-run"])
        #expect(dry.exitCode == 0, "\(dry.stdoutText)\n\(dry.stderrText)")
        #expect(dry.stdoutText.contains("would stop run \(lock.runID) (pid \(lock.pid), live: true"), "\(dry.stdoutText)")
        #expect(dry.stdoutText.contains("would destroy s1-k3s-basic"))
        #expect(running.process.isRunning && !Proc.matching("\(marker).sh").isEmpty)

        let abort = try await kh.run(["stabilize", "abort", "--config", config, "--yes"])
        #expect(abort.exitCode == 0, "\(abort.stdoutText)\n\(abort.stderrText)")
        #expect(abort.stdoutText.contains("stopped run \(lock.runID) (pid \(lock.pid))"), "\(abort.stdoutText)")

        // The run is gone, and so is every process of its recorded groups (checked in /proc).
        let code = running.wait(seconds: 30)
        #expect(code != nil, "the run survived abort")
        #expect(!Proc.isAlive(lock.pid))
        for group in lock.groups { #expect(Proc.members(ofGroup: group).isEmpty, "process group \(group) still has \(Proc.members(ofGroup: group))") }
        #expect(Proc.matching("\(marker).sh").isEmpty && stallPIDs.allSatisfy { !Proc.isAlive($0) })

        // Every scenario destroyed, no state lock and no run lock left.
        #expect((try? String(contentsOfFile: dir.path + "/destroyed-s1", encoding: .utf8))?.contains("destroyed") == true, "s1 not destroyed")
        #expect(abort.stdoutText.contains("PASS  destroy s1-k3s-basic"), "\(abort.stdoutText)")
        for scenario in ["s1-k3s-basic", "s2-rke2-stall"] {
            #expect(!FileManager.default.fileExists(atPath: "\(scenarios)/\(scenario)/.terraform.tfstate.lock.info"), "\(scenario) state lock left")
            if let state = FileManager.default.contents(atPath: "\(scenarios)/\(scenario)/terraform.tfstate") {
                let parsed = try JSONSerialization.jsonObject(with: state) as? [String: Any]
                #expect((parsed?["resources"] as? [Any])?.isEmpty ?? true, "\(scenario) still has resources in state")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: lockPath))

        // The aborted run's evidence says it was interrupted; the abort's says what it stopped.
        let manifestData = try Data(contentsOf: URL(fileURLWithPath: "\(dir.path)/runs/\(lock.runID)/run.json"))
        let manifest = try KhJSON.decoder().decode(RunManifest.self, from: manifestData)
        #expect(manifest.status == .interrupted && manifest.exitCode == KhExitCode.interrupted.rawValue, "\(manifest)")
        #expect(code == KhExitCode.interrupted.rawValue, "run exit: \(String(describing: code))\n\(output())")
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/runs").filter { $0 != lock.runID }
        let abortRecords = try runs.map { try String(contentsOfFile: "\(dir.path)/runs/\($0)/records.jsonl", encoding: .utf8) }.joined()
        #expect(abortRecords.contains(#""kind":"abort""#) && abortRecords.contains("stopped run \(lock.runID)"))

        // A stale run lock (its PID is gone): abort says so and clears it.
        let stale = RunLockRecord(pid: lock.pid, startTime: lock.startTime, runID: "20250101-000000", command: "kh stabilize run", startedAt: Date())
        try KhJSON.encoder(pretty: true).encode(stale).write(to: URL(fileURLWithPath: lockPath))
        let again = try await kh.run(["stabilize", "abort", "--config", config, "--yes"])
        #expect(again.exitCode == 0, "\(again.stdoutText)\n\(again.stderrText)")
        #expect(again.stdoutText.contains("lock of run 20250101-000000 was stale (pid \(lock.pid) is gone)"), "\(again.stdoutText)")
        #expect(!FileManager.default.fileExists(atPath: lockPath))
    }
}
