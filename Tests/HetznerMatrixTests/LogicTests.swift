import Foundation
import FoundationXML
import HetznerMatrix
import KhCore
import KhProcess
import KhTestSupport
import Testing

@Suite("stabilize config")
struct ConfigTests {
    @Test("defaults follow the runbook")
    func defaults() throws {
        let config = try ConfigFile.empty().section("stabilize", as: StabilizeConfig.self)
        #expect(
            config.scenarioNames == [
                "s1-k3s-basic", "s2-rke2-basic", "s3-k3s-autoscaler", "s4-rke2-autoscaler", "s5-leapmultiarch", "s6-mixed-os", "s7-kubeapi-join-lb",
            ])
        #expect(config.prefix == "khv3-")
        #expect(config.git.branch == "staging" && config.git.tagPattern == "v*")
        #expect(config.ssh.key == "~/.ssh/id_ed25519" && config.ssh.user == "root" && config.ssh.hostKeyPolicy == .off)
        #expect(config.scenario(named: "s2-rke2-basic")?.distro == "rke2")
        #expect(
            config.snapshots.filter(\.required).map(\.name) == ["leapmicro-k3s-x86", "leapmicro-k3s-arm", "leapmicro-rke2-x86", "leapmicro-rke2-arm"])
        #expect(config.snapshots.filter { !$0.required }.map(\.name) == ["microos-x86", "microos-arm"])
        #expect(config.upgrade.baselines == ["k3s": "s1-k3s-basic", "rke2": "s2-rke2-basic"])
        let paths = ResolvedPaths(config: config, configFile: nil, workingDirectory: "/w", home: "/home/k")
        #expect(paths.scenarios == "/home/k/Code/kube-test/scenarios_v3")
        #expect(paths.sshKey == "/home/k/.ssh/id_ed25519")
        #expect(paths.knownHosts == "/dev/null")
        #expect(paths.lock == "/home/k/Code/kube-test/.kh-stabilize.lock")
    }

    @Test("scenarios as names or mappings; paths relative to the config file")
    func custom() throws {
        let yaml = """
            stabilize:
              module_dir: mod
              harness_dir: /h
              scenarios: [a-k3s, {name: b-rke2, tier: 2, apply_timeout: 90s}]
              timeouts: {idle: 3s}
            """
        let config = try ConfigFile.parse(yaml, path: "/etc/kh/kh.yaml").section("stabilize", as: StabilizeConfig.self)
        #expect(config.scenarios.map(\.tier) == [1, 2])
        #expect(config.scenarios[1].distro == "rke2")
        #expect(config.scenarios[1].applyTimeout == KhDuration(.seconds(90)))
        #expect(config.timeouts.idle == KhDuration(.seconds(3)))
        let paths = ResolvedPaths(config: config, configFile: "/etc/kh/kh.yaml", workingDirectory: "/w", home: "/root")
        #expect(paths.module == "/etc/kh/mod")
        #expect(paths.scenario("a-k3s") == "/h/scenarios_v3/a-k3s")
    }

    @Test("bad values name the field and what was expected")
    func bad() throws {
        let cases: [(String, String)] = [
            ("stabilize:\n  concurrency: 0\n", "stabilize.concurrency"),
            ("stabilize:\n  scenarios: [a, a]\n", "listed twice"),
            ("stabilize:\n  ssh: {host_key_policy: maybe}\n", "expected strict, accept-new or off"),
            ("stabilize:\n  timeouts: {apply: soon}\n", "stabilize.timeouts.apply"),
            ("stabilize:\n  prefx: x\n", "did you mean \"prefix\""),
            ("stabilize:\n  scenarios: [\"../etc\"]\n", "expected a scenario folder name"),
            ("stabilize:\n  hcloud: {endpoint: ftp://x}\n", "expected an http(s) URL"),
        ]
        for (yaml, needle) in cases {
            let error = #expect(throws: ConfigError.self) {
                try ConfigFile.parse(yaml, path: "kh.yaml").section("stabilize", as: StabilizeConfig.self)
            }
            #expect(error?.message.contains(needle) == true, "\(yaml) -> \(error?.message ?? "no error")")
        }
    }
}

@Suite("known failures")
struct KnownFailureTests {
    static func node(_ checks: [(String, Int32, String)], reachable: Bool? = nil) -> NodeReport {
        NodeReport(
            server: "khv3-s1-control-0", ipv4: "127.0.1.3", status: "running",
            checks: checks.map { CheckOutput(id: $0.0, command: $0.0, exitCode: $0.1, output: $0.2, log: nil) }, kubeAPIReachableFromRunner: reachable
        )
    }

    static func input(_ nodes: [NodeReport], distro: String = "k3s", log: String = "", firewall: String? = nil) -> KnownFailures.Input {
        KnownFailures.Input(distro: distro, nodes: nodes, scenarioLogTail: log, firewallSource: firewall, runnerSource: "198.51.100.4/32")
    }

    @Test("root account locked: from the journal, from passwd -S, from the scenario log")
    func rootLocked() {
        let journal = Self.node([("journal-boot", 0, "Jan 1 sshd[812]: User root not allowed because account is locked\n")])
        let found = KnownFailures.diagnose(Self.input([journal]))
        #expect(found.map(\.id) == [KnownFailures.rootLockedID])
        #expect(found[0].evidence.contains("account is locked") && found[0].fixPath.contains("transactional-update"))
        #expect(
            KnownFailures.diagnose(Self.input([Self.node([("root-account", 0, "root L 2024-01-01 0 99999 7 -1")])])).map(\.id) == [
                KnownFailures.rootLockedID
            ])
        #expect(KnownFailures.diagnose(Self.input([Self.node([("root-account", 0, "root P 2024-01-01 0 99999 7 -1")])])).isEmpty)
        #expect(KnownFailures.diagnose(Self.input([], log: "err| User root not allowed because account is locked")).first?.node == nil)
    }

    @Test("firewall source mismatch: healthy inside, unreachable from the runner")
    func firewall() {
        let inside = Self.node([("kube-api-inside", 0, "ok")], reachable: false)
        let found = KnownFailures.diagnose(Self.input([inside], firewall: "[\"203.0.113.7/32\"]"))
        #expect(found.map(\.id) == [KnownFailures.firewallID])
        #expect(found[0].evidence.contains("203.0.113.7/32") && found[0].evidence.contains("198.51.100.4/32"))
        // Reachable from the runner, or unhealthy inside: not this failure.
        #expect(KnownFailures.diagnose(Self.input([Self.node([("kube-api-inside", 0, "ok")], reachable: true)])).isEmpty)
        #expect(KnownFailures.diagnose(Self.input([Self.node([("kube-api-inside", 7, "")], reachable: false)])).isEmpty)
        #expect(KnownFailures.firewallSource(inScenarioFiles: ["a = 1\n  firewall_kube_api_source = [\"1.2.3.4/32\"]\n"]) == "[\"1.2.3.4/32\"]")
    }

    @Test("RKE2 config path: missing folder, missing file, unit pointing elsewhere; only on rke2")
    func rke2() {
        let missing = Self.node([("rke2-config-dir", 2, "ls: cannot access '/etc/rancher/rke2': No such file or directory")])
        #expect(KnownFailures.diagnose(Self.input([missing], distro: "rke2")).map(\.id) == [KnownFailures.rke2ConfigID])
        #expect(KnownFailures.diagnose(Self.input([missing], distro: "k3s")).isEmpty)
        let elsewhere = Self.node([
            ("rke2-config-dir", 0, "total 0"), ("rke2-config", 0, "token: x"),
            ("rke2-server-unit", 0, "[Service]\nExecStart=/usr/local/bin/rke2 server --config /var/lib/rke2/config.yaml"),
        ])
        let found = KnownFailures.diagnose(Self.input([elsewhere], distro: "rke2"))
        #expect(found.first?.evidence.contains("/var/lib/rke2/config.yaml") == true)
        let fine = Self.node([
            ("rke2-config-dir", 0, "config.yaml"), ("rke2-config", 0, "token: x"), ("rke2-server-unit", 0, "ExecStart=/usr/local/bin/rke2 server"),
        ])
        #expect(KnownFailures.diagnose(Self.input([fine], distro: "rke2")).isEmpty)
    }
}

@Suite("summaries")
struct SummaryTests {
    static func summary() -> StabilizeSummary {
        var summary = StabilizeSummary(
            runID: "20261121-200000", command: "kh stabilize run", startedAt: Date(timeIntervalSince1970: 1_790_000_000), evidence: "/e")
        let diagnosis = Diagnosis(
            id: KnownFailures.rootLockedID, title: "root locked", node: "khv3-n", evidence: "User root <not> allowed", fixPath: "packer")
        let triage = TriageReport(trigger: "stall", at: Date(timeIntervalSince1970: 1_790_000_010), nodes: [], diagnoses: [diagnosis])
        summary.passes = [
            MatrixPass(
                label: "run",
                results: [
                    ScenarioResult(name: "s1", tier: 1, status: .passed, durationSeconds: 2, log: "/e/logs/s1.log", message: "apply exit 0"),
                    ScenarioResult(
                        name: "s2", tier: 1, status: .timedOut, durationSeconds: 9, log: "/e/logs/s2.log", message: "apply timed out & killed",
                        triage: [triage]),
                    ScenarioResult(name: "s3", tier: 2, status: .skipped, message: "not run"),
                ])
        ]
        return summary
    }

    @Test("Markdown shows results, log paths, triage and each diagnosis's fix path")
    func markdown() {
        let text = SummaryRenderer.markdown(Self.summary())
        #expect(text.contains("| s2 | 1 | TIMEOUT | 9.0s | `/e/logs/s2.log` |"))
        #expect(text.contains("- matrix: 1/3 passed; failed: s2"))
        #expect(text.contains("**root locked** on `khv3-n`") && text.contains("fix path: packer"))
    }

    @Test("JUnit counts failures and skips and escapes XML")
    func junit() throws {
        let xml = SummaryRenderer.junit(Self.summary())
        #expect(xml.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""))
        #expect(xml.contains("message=\"apply timed out &amp; killed\" type=\"timed-out\""))
        #expect(xml.contains("User root &lt;not&gt; allowed"))
        #expect(XMLParser(data: Data(xml.utf8)).parse(), "JUnit output is well-formed XML")
    }

    @Test("the results folder keeps the latest summary; --failed reads its failures")
    func latest() throws {
        let dir = TemporaryDirectory()
        let folder = ResultsFolder(directory: dir.path + "/results", fileSystem: LocalFileSystem(), redactor: Redactor())
        var older = Self.summary()
        older.runID = "20261120-100000"
        older.passes[0].results[0].status = .failed
        try folder.write(older)
        let path = try folder.write(Self.summary())
        #expect(path.hasSuffix("summary-20261121-200000.md"))
        let latest = try #require(try folder.latest())
        #expect(latest.summary.runID == "20261121-200000")
        #expect(latest.summary.failedScenarios == ["s2"])
        #expect(FileManager.default.fileExists(atPath: dir.path + "/results/junit-20261121-200000.xml"))
    }

    @Test("plan counts: a replace is an add and a destroy; server destroys are flagged")
    func planCounts() throws {
        let json = """
            {"format_version":"1.2","resource_changes":[
              {"address":"module.kh.hcloud_server.control[0]","type":"hcloud_server","change":{"actions":["delete","create"]}},
              {"address":"module.kh.hcloud_firewall.k8s","type":"hcloud_firewall","change":{"actions":["update"]}},
              {"address":"module.kh.null_resource.x","type":"null_resource","change":{"actions":["create"]}},
              {"address":"module.kh.hcloud_network.n","type":"hcloud_network","change":{"actions":["no-op"]}}]}
            """
        let counts = try PlanCounts.parse(Data(json.utf8), serverTypes: ["hcloud_server"])
        #expect(counts.adds == 2 && counts.changes == 1 && counts.destroys == 1)
        #expect(counts.serverDestroys == ["module.kh.hcloud_server.control[0]"])
    }
}

@Suite("run lock")
struct LockTests {
    @Test("a live owner blocks; a stale lock (same PID, other start time) is replaced")
    func lock() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/lock"
        let me = getpid()
        let starts: [Int32: UInt64] = [me: 100, 4242: 7]
        let inspector = ProcessInspector(startTime: { starts[$0] }, stateHolders: { _ in [] }, groupIsAlive: { _ in false }, signal: { _, _ in })
        let lock = RunLock(path: path, inspector: inspector, fileSystem: LocalFileSystem())
        try lock.write(RunLockRecord(pid: 4242, startTime: 7, runID: "r1", command: "kh stabilize", startedAt: Date()))
        let error = #expect(throws: KhError.self) { try lock.acquire(runID: "r2", command: "kh", at: Date()) }
        #expect(error?.exitCode == .blocked && error?.message.contains("pid 4242") == true)
        // The same PID with another start time is a recycled PID: stale.
        try lock.write(RunLockRecord(pid: 4242, startTime: 8, runID: "r1", command: "kh stabilize", startedAt: Date()))
        let record = try lock.acquire(runID: "r2", command: "kh", at: Date())
        #expect(record.pid == me && record.startTime == 100)
        lock.release()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("the live inspector reads this process's start time and sees who holds a state folder")
    func proc() async throws {
        let dir = TemporaryDirectory()
        #expect(ProcessInspector.live.startTime(getpid()) != nil)
        #expect(ProcessInspector.live.startTime(999_999_999) == nil)
        try dir.write("terraform.tfstate", "{}")
        #expect(ProcessInspector.live.stateHolders(dir.path).isEmpty)
        let runner = LocalRunner()
        let task = Task {
            try await runner.run(
                Command("/bin/sh", ["-c", "exec 3<terraform.tfstate; sleep 5"], workingDirectory: dir.path),
                options: RunOptions(timeout: .seconds(10)))
        }
        var holders: [Int32] = []
        for _ in 0..<50 where holders.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            holders = ProcessInspector.live.stateHolders(dir.path)
        }
        #expect(!holders.isEmpty)
        task.cancel()
        _ = try? await task.value
    }
}
