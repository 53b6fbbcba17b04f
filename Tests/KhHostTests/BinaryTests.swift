import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// Runs the built `kh` binary with a controlled environment.
struct KhBinary {
    var environment: [String: String]

    init(path extra: [String] = [], environment: [String: String] = [:]) {
        let base = ProcessInfo.processInfo.environment
        var env: [String: String] = [
            "PATH": (extra + ["/usr/local/bin", "/usr/bin", "/bin"]).joined(separator: ":"),
            "HOME": base["HOME"] ?? "/root", "COLUMNS": "80", "NO_COLOR": "1", "LANG": "C.UTF-8",
        ]
        env.merge(environment) { $1 }
        self.environment = env
    }

    func run(_ arguments: [String], cwd: String? = nil, timeout: Duration = .seconds(60)) async throws -> CommandResult {
        try await LocalRunner(environment: environment).run(
            Command(BuiltProducts.kh, arguments, workingDirectory: cwd), options: RunOptions(timeout: timeout))
    }
}

enum Golden {
    static var directory: String { BuiltProducts.repositoryRoot + "/Tests/KhHostTests/Golden" }

    /// Compares with the golden file; `UPDATE_GOLDEN=1` rewrites it instead.
    static func check(_ actual: String, _ name: String) throws {
        let path = directory + "/" + name
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try actual.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        #expect(actual == expected, "output differs from \(name); run `make golden` after an intended change")
    }
}

@Suite("kh binary: help, plugins, dispatch")
struct BinaryTests {
    @Test("golden: kh --help")
    func helpGolden() async throws {
        let result = try await KhBinary().run(["--help"])
        #expect(result.exitCode == 0)
        try Golden.check(result.stdoutText, "help.txt")
    }

    @Test("golden: kh plugins --output json")
    func pluginsGolden() async throws {
        let result = try await KhBinary().run(["plugins", "--output", "json"])
        #expect(result.exitCode == 0)
        try Golden.check(result.stdoutText, "plugins.json")
    }

    @Test("golden: kh doctor --help")
    func doctorHelpGolden() async throws {
        let result = try await KhBinary().run(["doctor", "--help"])
        #expect(result.exitCode == 0)
        try Golden.check(result.stdoutText, "doctor-help.txt")
    }

    @Test("every folder under Plugins/ is a registered plugin, and ids are unique")
    func pluginsFolderRegistered() async throws {
        let root = BuiltProducts.repositoryRoot
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/Plugins")) ?? [])
            .filter { FileManager.default.fileExists(atPath: root + "/Plugins/" + $0 + "/.", isDirectory: nil) }
            .filter {
                var d: ObjCBool = false; return FileManager.default.fileExists(atPath: root + "/Plugins/" + $0, isDirectory: &d) && d.boolValue
            }
        let result = try await KhBinary().run(["plugins", "--output", "json"])
        let listing = try JSONDecoder().decode(JSONValue.self, from: result.stdout)
        guard case .array(let plugins)? = listing["plugins"] else {
            Issue.record("no plugins array in \(result.stdoutText)")
            return
        }
        let modules = Set(plugins.compactMap { $0["module"]?.stringValue })
        for folder in folders {
            #expect(modules.contains(folder), "Plugins/\(folder) is not registered in Tools/kh/InstalledPlugins.swift")
        }
        let ids = plugins.compactMap { $0["id"]?.stringValue }
        #expect(Set(ids).count == ids.count, "duplicate plugin ids: \(ids)")
        let manifest = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
        for folder in folders {
            #expect(manifest.contains("path: \"Plugins/\(folder)\""), "Plugins/\(folder) has no target with an explicit path in Package.swift")
        }
    }

    @Test("an unknown verb runs kh-<verb> from PATH with arguments, KH_* variables and its exit code")
    func externalDispatch() async throws {
        let dir = TemporaryDirectory()
        try dir.write(
            "bin/kh-hello",
            """
            #!/bin/sh
            for a in "$@"; do printf '[%s]' "$a"; done
            echo
            echo "output=$KH_OUTPUT config=$KH_CONFIG version=$KH_VERSION"
            test -x "$KH_BIN" && echo "bin ok"
            exit 7
            """, executable: true)
        let result = try await KhBinary(path: [dir.path + "/bin"]).run(["--output", "json", "--config=/x.yaml", "hello", "a", "b c", "--flag"])
        #expect(result.exitCode == 7, "\(result.stderrText)")
        #expect(result.stdoutText == "[a][b c][--flag]\noutput=json config=/x.yaml version=\(KhVersion.current)\nbin ok\n")
        let listed = try await KhBinary(path: [dir.path + "/bin"]).run(["plugins"])
        #expect(listed.stdoutText.contains("kh hello  (\(dir.path)/bin/kh-hello)"))
    }

    @Test("an unknown verb with no kh-<verb> is a usage error (exit 2) with a suggestion")
    func unknownVerb() async throws {
        let result = try await KhBinary().run(["docter"])
        #expect(result.exitCode == 2)
        #expect(result.stderrText.contains("'docter' is not a kh command and no kh-docter was found on PATH"))
        #expect(result.stderrText.contains("did you mean `kh doctor`?"))
    }

    @Test("bad flag values are usage errors (exit 2) naming the flag")
    func badFlag() async throws {
        let result = try await KhBinary().run(["doctor", "--output", "xml"])
        #expect(result.exitCode == 2)
        #expect(result.stderrText.contains("'--output <format>'"))
        let both = try await KhBinary().run(["doctor", "-v", "-q"])
        #expect(both.exitCode == 2)
        #expect(both.stderrText.contains("--verbose and --quiet cannot be used together"))
        let env = try await KhBinary(environment: ["KH_OUTPUT": "yaml"]).run(["plugins"])
        #expect(env.exitCode == 2)
        #expect(env.stderrText.contains("KH_OUTPUT=yaml: expected text or json"))
    }

    @Test("a config error points at file, line and column (exit 2)")
    func configError() async throws {
        let dir = TemporaryDirectory()
        try dir.write("kh.yaml", "kh:\n  evidence_dir: ./ev\n  secret_envs: [A]\nstabilise:\n  x: 1\n")
        let result = try await KhBinary().run(["plugins"], cwd: dir.path)
        #expect(result.exitCode == 2)
        #expect(result.stderrText.contains("kh.yaml:4:1: stabilise: unknown section"), "\(result.stderrText)")
        try dir.write("kh.yaml", "kh:\n  evidence_dir: ./ev\n  secret_envs: [A]\n")
        let second = try await KhBinary().run(["doctor", "--evidence-dir", dir.path + "/ev"], cwd: dir.path)
        #expect(second.exitCode == 2)
        #expect(second.stdoutText.contains(#"kh.yaml:3:3: kh.secret_envs: unknown key (did you mean "secret_env"?)"#), "\(second.stdoutText)")
        let missing = try await KhBinary().run(["plugins", "--config", dir.path + "/nope.yaml"])
        #expect(missing.exitCode == 2)
        #expect(missing.stderrText.contains("--config \(dir.path)/nope.yaml: config file not found"))
    }

    @Test("completion scripts come from swift-argument-parser and know kh's commands")
    func completion() async throws {
        for shell in ["bash", "zsh", "fish"] {
            let result = try await KhBinary().run(["completion", shell])
            #expect(result.exitCode == 0)
            #expect(result.stdoutText.contains("doctor"))
        }
        #expect(try await KhBinary().run(["completion", "tcsh"]).exitCode == 2)
    }
}

@Suite("kh doctor end to end")
struct DoctorTests {
    /// A bin folder with fake tools, so results do not depend on the machine.
    static func fakeTools(_ dir: TemporaryDirectory, extra: [String: String] = [:]) throws -> String {
        var tools = [
            "git": "echo 'git version 2.39.5'",
            "kubectl": #"echo '{"clientVersion": {"gitVersion": "v1.32.4"}}'"#,
            "terraform": #"echo '{"terraform_version": "1.2.0"}'"#,
        ]
        tools.merge(extra) { $1 }
        for (name, body) in tools { try dir.write("bin/\(name)", "#!/bin/sh\n\(body)\n", executable: true) }
        return dir.path + "/bin"
    }

    @Test("required tools missing fail with exit 3; versions, minimums and evidence are reported")
    func requiredMissing() async throws {
        let dir = TemporaryDirectory()
        let bin = try Self.fakeTools(dir)
        var kh = KhBinary(path: [bin])
        kh.environment["PATH"] = bin  // only the fakes: ssh, helm, aws… are missing
        let result = try await kh.run(["doctor", "--output", "json", "--require", "helm,git", "--evidence-dir", dir.path + "/ev"], cwd: dir.path)
        #expect(result.exitCode == 3, "\(result.stderrText)")
        let report = try JSONDecoder().decode(JSONValue.self, from: result.stdout)
        guard case .array(let checks)? = report["checks"] else {
            Issue.record("no checks")
            return
        }
        func check(_ name: String) -> JSONValue? { checks.first { $0["name"]?.stringValue == name } }
        #expect(check("tool:git")?["status"] == "pass")
        #expect(check("tool:git")?["version"] == "2.39.5")
        #expect(check("tool:kubectl")?["version"] == "1.32.4")
        #expect(check("tool:terraform")?["status"] == "warn")  // older than 1.5
        #expect(check("tool:helm")?["status"] == "fail")
        #expect(check("tool:ssh")?["status"] == "warn")
        #expect(report["exitCode"] == 3)
        let evidence = try #require(report["evidence"]?.stringValue)
        let manifest = try KhJSON.decoder().decode(RunManifest.self, from: Data(contentsOf: URL(fileURLWithPath: evidence + "/run.json")))
        #expect(manifest.status == .blocked && manifest.exitCode == 3)
        #expect(FileManager.default.fileExists(atPath: evidence + "/logs/tool-git.log"))
        #expect(FileManager.default.fileExists(atPath: evidence + "/summary.md"))
    }

    @Test("secrets are reported as set, and never reach stdout, logs, records or summary")
    func secretsRedacted() async throws {
        let dir = TemporaryDirectory()
        let token = "hc-" + UUID().uuidString
        let bin = try Self.fakeTools(dir, extra: ["git": #"echo "leaking $HCLOUD_TOKEN""#])
        let kh = KhBinary(path: [bin], environment: ["HCLOUD_TOKEN": token])
        let result = try await kh.run(["doctor", "--evidence-dir", dir.path + "/ev"], cwd: dir.path)
        #expect(result.stdoutText.contains("secret:HCLOUD_TOKEN"))
        #expect(result.stdoutText.contains("[redacted:HCLOUD_TOKEN]"))
        #expect(!result.stdoutText.contains(token) && !result.stderrText.contains(token))
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/ev")
        let run = dir.path + "/ev/" + runs[0]
        for file in ["run.json", "records.jsonl", "summary.md", "logs/tool-git.log"] {
            let text = try String(contentsOfFile: run + "/" + file, encoding: .utf8)
            #expect(!text.contains(token), "\(file) leaks the token")
        }
        #expect(try String(contentsOfFile: run + "/logs/tool-git.log", encoding: .utf8).contains("leaking [redacted:HCLOUD_TOKEN]"))
    }

    @Test("SIGINT to a running kh leaves no child alive and run.json marked interrupted")
    func sigint() async throws {
        let dir = TemporaryDirectory()
        let pids = dir.path + "/pids"
        // The fake kubectl hangs with a grandchild, recording both pids.
        let bin = try Self.fakeTools(dir, extra: ["kubectl": "echo $$ >> \(pids); /bin/sleep 100 & echo $! >> \(pids); /bin/sleep 101"])
        func started() -> [pid_t] {
            ((try? String(contentsOfFile: pids, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int32($0) }
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltProducts.kh)
        process.arguments = ["doctor", "--timeout", "60s", "--evidence-dir", dir.path + "/ev"]
        process.environment = KhBinary(path: [bin]).environment
        process.currentDirectoryURL = URL(fileURLWithPath: dir.path)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let stderr = Pipe()
        process.standardError = stderr
        try process.run()
        // Wait (bounded) until kh has started the hanging tool.
        let until = ContinuousClock.now + .seconds(20)
        while started().count < 2 && ContinuousClock.now < until { try await Task.sleep(for: .milliseconds(50)) }
        let children = started()
        #expect(children.count == 2, "the fake kubectl never started")
        #expect(children.allSatisfy(ProcessTable.isAlive))
        kill(process.processIdentifier, SIGINT)
        let exitBy = ContinuousClock.now + .seconds(15)
        while process.isRunning && ContinuousClock.now < exitBy { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("kh did not exit within 15 s of SIGINT")
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        #expect(!children.contains(where: ProcessTable.isAlive), "children survived SIGINT")
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/ev")
        #expect(runs.count == 1)
        let manifest = try KhJSON.decoder().decode(
            RunManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir.path + "/ev/\(runs[0])/run.json")))
        #expect(manifest.status == .interrupted)
        #expect(manifest.exitCode == 130)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/ev/\(runs[0])/summary.md"))
        let log = try String(contentsOfFile: dir.path + "/ev/\(runs[0])/logs/tool-kubectl.log", encoding: .utf8)
        #expect(log.contains("kh | started:"))
        #expect(log.contains("killed by SIGTERM"), "\(log)")
        let said = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said.contains("SIGINT received"))
    }
}
