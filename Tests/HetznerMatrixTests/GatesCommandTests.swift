import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// `kh stabilize gates` through the built binary on real git repositories (a bare `origin`,
/// the module clone, a second clone that pushes) and real terraform.
@Suite("kh stabilize gates (binary, git, terraform)", .serialized)
struct GatesCommandTests {
    static let unformatted = "variable \"cluster_name\" {\ntype=string\n    default=\"khv3\"\n}\n"

    @discardableResult
    static func git(_ dir: String, _ args: [String]) async throws -> String {
        try await tool(
            "git", ["-c", "user.name=t", "-c", "user.email=t@kh.invalid"] + args, in: dir,
            environment: ["GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"])
    }

    static func commit(_ clone: String, file: String, text: String, message: String) async throws {
        try text.write(toFile: clone + "/" + file, atomically: true, encoding: .utf8)
        try await Self.git(clone, ["add", "-A"])
        try await Self.git(clone, ["commit", "-qm", message])
    }

    @Test("fmt fails naming the file, --fix rewrites it, fast-forward moves HEAD, a diverged branch is refused and left alone")
    func gates() async throws {
        let testbed = try Testbed.load()
        let dir = TemporaryDirectory("kh-stab-gates")
        let seed = dir.path + "/seed"
        let module = dir.path + "/module"
        let pusher = dir.path + "/pusher"
        try FileManager.default.createDirectory(atPath: seed, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path + "/harness/scenarios_v3", withIntermediateDirectories: true)
        try await Self.git(seed, ["init", "-q", "-b", "staging"])
        try ".terraform/\n.terraform.lock.hcl\n".write(toFile: seed + "/.gitignore", atomically: true, encoding: .utf8)
        try await Self.commit(seed, file: "variables.tf", text: Self.unformatted, message: "module")
        try await Self.git(dir.path, ["clone", "-q", "--bare", seed, dir.path + "/module.git"])
        try await Self.git(dir.path, ["clone", "-q", "-b", "staging", dir.path + "/module.git", module])
        try await Self.git(dir.path, ["clone", "-q", "-b", "staging", dir.path + "/module.git", pusher])
        // origin moves ahead of the module clone.
        try await Self.commit(pusher, file: "outputs.tf", text: "output \"cluster\" {\n  value = var.cluster_name\n}\n", message: "outputs")
        try await Self.git(pusher, ["push", "-q", "origin", "staging"])
        let pushed = try await Self.git(pusher, ["rev-parse", "HEAD"])
        let config = try dir.write(
            "kh.yaml",
            """
            kh:
              evidence_dir: \(dir.path)/runs
            stabilize:
              module_dir: module
              harness_dir: harness
              scenarios: [s1-k3s-basic]
            """)
        let kh = KhBinary(testbed: testbed)

        // 1. Fast-forward to origin; fmt -check fails and names the file; nothing is rewritten.
        let first = try await kh.run(["stabilize", "gates", "--config", config])
        #expect(first.exitCode == 1, "\(first.stdoutText)\n\(first.stderrText)")
        #expect(first.stdoutText.contains("PASS  git sync staging: on staging; fast-forwarded"), "\(first.stdoutText)")
        #expect(first.stdoutText.contains("FAIL  terraform fmt: not formatted: variables.tf (`--fix` rewrites)"), "\(first.stdoutText)")
        #expect(first.stdoutText.contains("PASS  terraform validate: valid"), "\(first.stdoutText)")
        #expect(try await Self.git(module, ["rev-parse", "HEAD"]) == pushed)
        #expect(try await Self.git(module, ["rev-parse", "--abbrev-ref", "HEAD"]) == "staging")
        #expect(FileManager.default.fileExists(atPath: module + "/outputs.tf"))
        #expect(try String(contentsOfFile: module + "/variables.tf", encoding: .utf8) == Self.unformatted)

        // 2. --fix rewrites it; terraform's own check then passes.
        let fixed = try await kh.run(["stabilize", "gates", "--config", config, "--fix"])
        #expect(fixed.exitCode == 0, "\(fixed.stdoutText)\n\(fixed.stderrText)")
        #expect(fixed.stdoutText.contains("terraform fmt: rewrote variables.tf"), "\(fixed.stdoutText)")
        let check = try await LocalRunner(environment: testbed.processEnvironment).run(
            Command("terraform", ["fmt", "-check", "-recursive"], workingDirectory: module), options: RunOptions(timeout: .seconds(60)))
        #expect(check.exitCode == 0, "terraform fmt -check after --fix: \(check.stdoutText)")
        #expect(try String(contentsOfFile: module + "/variables.tf", encoding: .utf8).contains("  type    = string"))

        // 3. Local and origin diverge: refused with a clear error; HEAD, branch and tree untouched.
        try await Self.git(module, ["commit", "-qam", "terraform fmt"])
        try await Self.commit(pusher, file: "notes.txt", text: "upstream only\n", message: "upstream")
        try await Self.git(pusher, ["push", "-q", "origin", "staging"])
        let localHead = try await Self.git(module, ["rev-parse", "HEAD"])
        let statusBefore = try await Self.git(module, ["status", "--porcelain", "--ignored"])
        let refused = try await kh.run(["stabilize", "gates", "--config", config])
        #expect(refused.exitCode == 1, "\(refused.stdoutText)\n\(refused.stderrText)")
        #expect(
            refused.stdoutText.contains("FAIL  git sync staging: cannot fast-forward branch staging") && refused.stdoutText.contains("diverged"),
            "\(refused.stdoutText)")
        #expect(refused.stdoutText.contains("kh only fast-forwards"))
        #expect(try await Self.git(module, ["rev-parse", "HEAD"]) == localHead)
        #expect(try await Self.git(module, ["rev-parse", "--abbrev-ref", "HEAD"]) == "staging")
        #expect(try await Self.git(module, ["status", "--porcelain", "--ignored"]) == statusBefore)
        #expect(!FileManager.default.fileExists(atPath: module + "/notes.txt"))
        // The gate's failure is in the evidence.
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/runs").sorted()
        let records = try String(contentsOfFile: dir.path + "/runs/\(try #require(runs.last))/records.jsonl", encoding: .utf8)
        #expect(records.contains(#""kind":"gate""#) && records.contains("cannot fast-forward branch staging"))
    }
}
