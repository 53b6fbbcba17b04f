import Foundation
import HetznerMatrix
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// `kh stabilize clean` through the built binary: a private Hetzner API emulator holding a
/// prefixed, labelled cluster (server with an attached volume, placement group, network,
/// firewall, load balancer, ssh key) and decoys; real terraform (null provider from the
/// testbed mirror) with a scenario in state; state locks stale and held by a live process;
/// the run lock live, then stale.
@Suite("kh stabilize clean (binary, emulator, terraform)", .serialized)
struct CleanCommandTests {
    static let prefixed: [(collection: String, name: String)] = [
        ("servers", "khv3-s1-k3s-basic-control-0"), ("volumes", "khv3-s1-k3s-basic-data"), ("placement_groups", "khv3-s1-k3s-basic-pg"),
        ("load_balancers", "khv3-s1-k3s-basic-lb"), ("firewalls", "khv3-s1-k3s-basic-fw"), ("networks", "khv3-s1-k3s-basic-net"),
        ("ssh_keys", "khv3-s1-k3s-basic-key"),
    ]

    /// The cluster of scenario s1 (labels of the runbook: cluster=, provisioner=terraform, hcloud/node-group) and two decoys.
    static func populate(_ emulator: PrivateEmulator) async throws -> (serverID: Int, volumeID: Int) {
        let cluster: JSONValue = ["cluster": "khv3-s1-k3s-basic"]
        let key = try await emulator.create(
            "/ssh_keys", "ssh_key",
            [
                "name": "khv3-s1-k3s-basic-key", "labels": cluster,
                "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEYyfkDzTnqSAOWVjzpUG2qhjuXIWdWicFvVmRKGSavL kh-test",
            ])
        let group = try await emulator.create(
            "/placement_groups", "placement_group", ["name": "khv3-s1-k3s-basic-pg", "type": "spread", "labels": ["provisioner": "terraform"]])
        let network = try await emulator.create(
            "/networks", "network",
            [
                "name": "khv3-s1-k3s-basic-net", "ip_range": "10.0.0.0/16", "labels": cluster,
                "subnets": [["type": "cloud", "network_zone": "eu-central", "ip_range": "10.0.1.0/24"]],
            ])
        let firewall = try await emulator.create("/firewalls", "firewall", ["name": "khv3-s1-k3s-basic-fw", "labels": cluster])
        let server = try await emulator.create(
            "/servers", "server",
            [
                "name": "khv3-s1-k3s-basic-control-0", "server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1", "labels": cluster,
                "ssh_keys": [.number(Double(key))], "placement_group": .number(Double(group)), "networks": [.number(Double(network))],
                "firewalls": [["firewall": .number(Double(firewall))]],
            ])
        let volume = try await emulator.create(
            "/volumes", "volume", ["name": "khv3-s1-k3s-basic-data", "size": 10, "server": .number(Double(server)), "labels": cluster])
        _ = try await emulator.create(
            "/load_balancers", "load_balancer",
            [
                "name": "khv3-s1-k3s-basic-lb", "load_balancer_type": "lb11", "location": "fsn1", "network": .number(Double(network)),
                "labels": ["hcloud/node-group": "agents"],
            ])
        // Decoys: another prefix with the same labels; the same prefix with other labels.
        _ = try await emulator.create(
            "/servers", "server", ["name": "other-s1-k3s-basic-control-0", "server_type": "cx22", "image": "ubuntu-24.04", "labels": cluster])
        _ = try await emulator.create(
            "/servers", "server", ["name": "khv3-unrelated", "server_type": "cx22", "image": "ubuntu-24.04", "labels": ["team": "web"]])
        return (server, volume)
    }

    static func writeRunLock(_ path: String, pid: Int32, startTime: UInt64) throws {
        let record = RunLockRecord(pid: pid, startTime: startTime, runID: "20250101-000000", command: "kh stabilize run", startedAt: Date())
        try KhJSON.encoder(pretty: true).encode(record).write(to: URL(fileURLWithPath: path))
    }

    @Test("dry run lists and deletes nothing; a live run lock refuses; --yes reaps in dependency order, keeps decoys and held locks")
    func clean() async throws {
        let testbed = try Testbed.load()
        let emulator = try PrivateEmulator()
        let (serverID, volumeID) = try await Self.populate(emulator)
        let dir = TemporaryDirectory("kh-stab-clean")
        let config = try await stateHarness(dir, endpoint: emulator.endpoint, testbed: testbed)
        let scenarios = (dir.path as NSString).standardizingPath + "/harness/scenarios_v3"
        let stale = scenarios + "/s2-rke2-basic/.terraform.tfstate.lock.info"
        let held = scenarios + "/s3-k3s-held/.terraform.tfstate.lock.info"
        // A live process whose working folder is s3's state folder holds that state.
        let holder = try Background(["/bin/sleep", "600"], cwd: scenarios + "/s3-k3s-held")
        defer { holder.stop() }
        // And one whose open file descriptor is that state's lock file (working folder elsewhere).
        let heldByFD = try dir.write("harness/scenarios_v3/s4-fd/.terraform.tfstate.lock.info", #"{"ID":"fd"}"#)
        let fdHolder = try Background(["/bin/bash", "-c", "exec 3<\"$0\"; exec /bin/sleep 600", heldByFD], cwd: dir.path)
        defer { fdHolder.stop() }
        let heldFD = scenarios + "/s4-fd/.terraform.tfstate.lock.info"
        #expect(eventually(10) { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(fdHolder.pid)/fd"))?.contains("3") == true })
        let kh = KhBinary(testbed: testbed, extra: ["HCLOUD_TOKEN": emulator.token])
        try await emulator.clearRequestLog()

        // 1. Dry run (the default): lists every prefixed, labelled resource and the locks; nothing changes.
        let dry = try await kh.run(["stabilize", "clean", "--config", config])
        #expect(dry.exitCode == 0, "\(dry.stdoutText)\n\(dry.stderrText)")
        let out = dry.stdoutText
        #expect(out.contains("dry run: nothing changed"))
        for (kind, name) in [
            ("server", "khv3-s1-k3s-basic-control-0"), ("volume", "khv3-s1-k3s-basic-data"), ("placement_group", "khv3-s1-k3s-basic-pg"),
            ("load_balancer", "khv3-s1-k3s-basic-lb"), ("firewall", "khv3-s1-k3s-basic-fw"), ("network", "khv3-s1-k3s-basic-net"),
            ("ssh_key", "khv3-s1-k3s-basic-key"),
        ] {
            #expect(out.range(of: "would delete \(kind) [0-9]+ \(name)", options: .regularExpression) != nil, "\(kind) \(name) not listed:\n\(out)")
        }
        #expect(out.contains("would delete server \(serverID) ") && out.contains("would delete volume \(volumeID) "))
        #expect(!out.contains("other-s1-k3s-basic-control-0") && !out.contains("khv3-unrelated"))
        #expect(out.contains("would remove stale lock \(stale)"))
        #expect(out.contains("kept lock held by a live process: \(held) (pid \(holder.pid))"))
        #expect(out.contains("kept lock held by a live process: \(heldFD) (pid \(fdHolder.pid))"), "\(out)")
        #expect(out.contains("destroy s1-k3s-basic: would run terraform destroy"))
        #expect(!out.contains(emulator.token) && !dry.stderrText.contains(emulator.token))
        // Nothing was deleted or detached: only GETs reached the API.
        let dryRequests = try await emulator.requestLog()
        #expect(!dryRequests.isEmpty && dryRequests.allSatisfy { $0.method == "GET" }, "\(dryRequests)")
        for (collection, name) in Self.prefixed { #expect(try await emulator.names(collection).contains(name), "\(name) gone after a dry run") }
        #expect(FileManager.default.fileExists(atPath: stale) && FileManager.default.fileExists(atPath: held))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/destroyed-s1"))

        // 2. Another run is live (its PID and start time in the lock): refused with exit 3, nothing touched.
        let lockPath = dir.path + "/harness/.kh-stabilize.lock"
        let other = try Background(["/bin/sleep", "600"], cwd: dir.path)
        defer { other.stop() }
        let otherStart = try #require(Proc.startTime(other.pid))
        try Self.writeRunLock(lockPath, pid: other.pid, startTime: otherStart)
        try await emulator.clearRequestLog()
        let refused = try await kh.run(["stabilize", "clean", "--config", config, "--yes"])
        #expect(refused.exitCode == KhExitCode.blocked.rawValue, "\(refused.stdoutText)\n\(refused.stderrText)")
        #expect(refused.stderrText.contains("another kh stabilize run is live: pid \(other.pid)"))
        #expect(try await emulator.requestLog().allSatisfy { $0.method == "GET" })
        #expect(FileManager.default.fileExists(atPath: stale) && !FileManager.default.fileExists(atPath: dir.path + "/destroyed-s1"))
        #expect(Proc.isAlive(other.pid), "clean must never kill the other run")

        // 3. The run lock is stale (its PID is gone): replaced, and released at the end.
        other.stop()
        #expect(!Proc.isAlive(other.pid))
        try Self.writeRunLock(lockPath, pid: other.pid, startTime: otherStart)
        try await emulator.clearRequestLog()
        let yes = try await kh.run(["stabilize", "clean", "--config", config, "--yes"])
        // The held state lock is kept, so the cleanup is not clean… only when something is left; the reap itself is.
        #expect(yes.exitCode == 0, "\(yes.stdoutText)\n\(yes.stderrText)")
        #expect(yes.stdoutText.contains("confirmed: no khv3-* resource left"))
        #expect(yes.stdoutText.contains("removed stale lock \(stale)"))
        #expect(yes.stdoutText.contains("kept lock held by a live process: \(held)"))
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: held) && FileManager.default.fileExists(atPath: heldFD))
        #expect(!FileManager.default.fileExists(atPath: lockPath), "the stale run lock was neither replaced nor released")
        #expect(Proc.isAlive(holder.pid))
        // terraform destroy ran for the scenario with state.
        #expect((try? String(contentsOfFile: dir.path + "/destroyed-s1", encoding: .utf8))?.contains("destroyed") == true)
        for (collection, name) in Self.prefixed { #expect(try await !emulator.names(collection).contains(name), "\(name) left over") }
        let servers = try await emulator.names("servers")
        #expect(servers == ["other-s1-k3s-basic-control-0", "khv3-unrelated"])

        // Dependency order, as the API saw it: detach the volume, then servers, placement groups,
        // load balancers, firewalls, networks, ssh keys, and the volume last.
        let mutations = try await emulator.requestLog().filter { $0.method != "GET" }.map { "\($0.method) \($0.path)" }
        func position(_ prefix: String) -> Int? { mutations.firstIndex { $0.hasPrefix(prefix) } }
        let order = [
            "POST /volumes/\(volumeID)/actions/detach", "DELETE /servers/", "DELETE /placement_groups/", "DELETE /load_balancers/",
            "DELETE /firewalls/", "DELETE /networks/", "DELETE /ssh_keys/", "DELETE /volumes/",
        ].map { (step: $0, at: position($0)) }
        for step in order { #expect(step.at != nil, "no \(step.step) in \(mutations)") }
        let positions = order.compactMap(\.at)
        #expect(positions == positions.sorted(), "deletion order: \(mutations)")
        #expect(mutations.filter { $0.hasPrefix("DELETE /servers/") } == ["DELETE /servers/\(serverID)"])

        // Evidence: the cleanup record says nothing is left.
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/runs").sorted()
        let records = try String(contentsOfFile: dir.path + "/runs/\(try #require(runs.last))/records.jsonl", encoding: .utf8)
        #expect(records.contains(#""kind":"cleanup""#) && records.contains("no khv3-* resource left"))
    }
}
