import Foundation
import KhCore
import KhTestSupport
import Synchronization
import Testing

@testable import KhHCloud

extension HCloudEmulatorTests {
    /// A kube-hetzner-like project: two clusters' worth of resources plus decoys.
    struct Seeded {
        var servers: [HCloudServer] = []
        var decoyServers: [Int] = []
        var otherPrefix: Int = 0
        var volumeAttached: Int = 0
    }

    func seed(_ client: HCloudClient) async throws -> Seeded {
        var seeded = Seeded()
        let cluster = ["cluster": "khv3", "provisioner": "terraform"]
        let key = try await client.create(HCloudSSHKey.self, HCloudSSHKeyCreate(name: "khv3-key", publicKey: testPublicKey, labels: cluster))
        let network = try await client.create(HCloudNetwork.self, HCloudNetworkCreate(name: "khv3-net", ipRange: "10.0.0.0/16", labels: cluster))
        let group = try await client.create(HCloudPlacementGroup.self, HCloudPlacementGroupCreate(name: "khv3-pg", labels: cluster))
        let firewall = try await client.create(HCloudFirewall.self, HCloudFirewallCreate(name: "khv3-fw", labels: cluster))
        for index in 0..<3 {
            let server = try await client.createServer(
                HCloudServerCreate(
                    name: "khv3-s1-cp-\(index)", serverType: "cx22", image: "ubuntu-24.04", labels: cluster, sshKeys: [String(key.resource.id)],
                    placementGroup: group.resource.id, networks: [network.resource.id], firewalls: [firewall.resource.id]))
            seeded.servers.append(server.resource)
        }
        // An autoscaled node: only the autoscaler's label.
        let autoscaled = try await client.createServer(
            HCloudServerCreate(name: "khv3-s3-pool-a-x1", serverType: "cax11", image: "ubuntu-24.04", labels: ["hcloud/node-group": "pool-a"]))
        seeded.servers.append(autoscaled.resource)
        let volume = try await client.create(
            HCloudVolume.self, HCloudVolumeCreate(name: "khv3-data", size: 10, labels: cluster, server: seeded.servers[0].id))
        seeded.volumeAttached = volume.resource.id
        _ = try await client.create(
            HCloudLoadBalancer.self, HCloudLoadBalancerCreate(name: "khv3-lb", labels: cluster, network: network.resource.id))
        // Decoys: the cluster's labels but another prefix (never deleted), and the prefix without the labels.
        let other = try await client.createServer(HCloudServerCreate(name: "prod-web-1", serverType: "cx22", image: "debian-12", labels: cluster))
        seeded.otherPrefix = other.resource.id
        let unlabeled = try await client.createServer(
            HCloudServerCreate(name: "khv3-manual", serverType: "cx22", image: "debian-12", labels: ["cluster": "someone-else"]))
        seeded.decoyServers = [other.resource.id, unlabeled.resource.id]
        _ = try await client.create(HCloudSSHKey.self, HCloudSSHKeyCreate(name: "personal", publicKey: publicKey(7), labels: cluster))
        return seeded
    }

    @Test("reaper: plan is a dry run in dependency order; decoys are skipped or out of scope; execute deletes; remaining proves it")
    func reaper() async throws {
        let client = try emulator.client()
        let seeded = try await seed(client)
        let scope = HCloudReaper.Scope(labelSelectors: ["cluster=khv3", "provisioner=terraform", "hcloud/node-group"], namePrefix: "khv3-")
        let reaper = try HCloudReaper(client: client, scope: scope)

        let plan = try await reaper.plan()
        #expect(
            plan.items.map(\.kind) == [.server, .server, .server, .server, .placementGroup, .loadBalancer, .firewall, .network, .sshKey, .volume])
        #expect(plan.items.allSatisfy { $0.outcome == .planned && $0.name.hasPrefix("khv3-") })
        #expect(plan.detachments.map(\.id) == [seeded.volumeAttached])
        #expect(plan.detachments.first?.attachedTo == seeded.servers[0].id)
        #expect(Set(plan.skipped.map(\.name)) == ["prod-web-1", "personal"])
        #expect(plan.skipped.allSatisfy { $0.outcome == .skipped && $0.detail?.contains("khv3-") == true })
        #expect(!plan.items.contains { $0.name == "khv3-manual" }, "the prefix alone is not enough")
        #expect(try await client.servers().count == 6, "the plan deleted nothing")

        let seen = ItemLog()
        let report = try await reaper.execute(plan) { seen.add($0) }
        #expect(report.succeeded, "\(report.failures)")
        #expect(report.items.allSatisfy { $0.outcome == .deleted })
        #expect(report.items.first { $0.kind == .volume }?.detail?.contains("detached from server \(seeded.servers[0].id)") == true)
        #expect(seen.items.count == plan.items.count)
        #expect(try await reaper.remaining().isEmpty)
        // The decoys are all still there.
        let left = try await client.servers()
        #expect(Set(left.map(\.id)) == Set(seeded.decoyServers))
        #expect(try await client.list(HCloudSSHKey.self).map(\.name) == ["personal"])

        // Dependency order was kept: each kind's deletes came after the previous kind's.
        let order = try await emulator.requests().entries.compactMap { entry -> String? in
            guard case .string("DELETE")? = entry["method"], case .string(let route)? = entry["route"] else {
                if case .string("POST")? = entry["method"], case .string(let route)? = entry["route"], route.hasSuffix("detach") { return "detach" }
                return nil
            }
            return route.components(separatedBy: "/")[1]
        }
        var compressed: [String] = []
        for step in order where compressed.last != step { compressed.append(step) }
        #expect(compressed == ["detach", "servers", "placement_groups", "load_balancers", "firewalls", "networks", "ssh_keys", "volumes"])
    }

    @Test("reaper: a failed deletion is reported per item, later steps go on, remaining shows what is left")
    func reaperFailures() async throws {
        let client = try emulator.client()
        _ = try await seed(client)
        try await emulator.addFault(["kind": "action", "command": "delete_server", "count": 1, "code": "server_error", "message": "injected"])
        // More 500s than KhHTTP's retries of an idempotent DELETE (4 attempts).
        try await emulator.addFault(["method": "DELETE", "path": "/firewalls", "status": 500, "code": "server_error", "count": 10])
        let reaper = try HCloudReaper(client: client, scope: .init(labelSelectors: ["cluster=khv3"], namePrefix: "khv3-"))
        let plan = try await reaper.plan()
        let report = try await reaper.execute(plan)
        #expect(!report.succeeded)
        let failed = report.failures
        #expect(failed.contains { $0.kind == .server && $0.detail?.contains("injected") == true })
        #expect(failed.contains { $0.kind == .firewall && $0.detail?.contains("500") == true })
        #expect(report.items.contains { $0.kind == .sshKey && $0.outcome == .deleted }, "later steps still ran")
        let remaining = try await reaper.remaining()
        #expect(remaining.contains { $0.kind == .firewall && $0.outcome == .remaining })
        // A second reap finishes the job.
        try await emulator.call(.delete, "/faults")
        let again = try await reaper.execute(try await reaper.plan())
        #expect(again.succeeded, "\(again.failures)")
        #expect(try await reaper.remaining().isEmpty)
    }

    @Test("reaper: refuses an empty prefix or no selector")
    func reaperScopeIsRequired() throws {
        let client = try emulator.client()
        #expect(throws: HCloudError.self) { _ = try HCloudReaper(client: client, scope: .init(labelSelectors: ["cluster=khv3"], namePrefix: "")) }
        #expect(throws: HCloudError.self) { _ = try HCloudReaper(client: client, scope: .init(labelSelectors: [], namePrefix: "khv3-")) }
    }

    @Test("the emulator's own checks: behaviour, every response against the spec, and the official hcloud CLI")
    func emulatorSelfTest() throws {
        let info = emulator.info
        let run = Process()
        run.executableURL = URL(fileURLWithPath: info.python)
        run.arguments = ["-B", info.directory + "/test_emulator.py"]
        run.environment = ProcessInfo.processInfo.environment.merging(["KH_HCLOUD_SPEC": info.spec]) { $1 }
        let pipe = Pipe()
        run.standardOutput = pipe
        run.standardError = pipe
        run.standardInput = FileHandle.nullDevice
        try run.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        run.waitUntilExit()
        #expect(run.terminationStatus == 0, "\(output)")
        #expect(output.contains("\nOK"))
    }
}

final class ItemLog: Sendable {
    private let stored = Mutex<[HCloudReaper.Item]>([])
    func add(_ item: HCloudReaper.Item) { stored.withLock { $0.append(item) } }
    var items: [HCloudReaper.Item] { stored.withLock { $0 } }
}
