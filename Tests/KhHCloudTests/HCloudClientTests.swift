import Foundation
import KhCore
import KhHTTP
import KhTestSupport
import Testing

@testable import KhHCloud

/// KhHCloud against kh's Hetzner Cloud API emulator (a private instance started from the
/// testbed's files). Serialized: each test resets the emulator.
@Suite("KhHCloud against the Hetzner Cloud API emulator", .serialized)
struct HCloudEmulatorTests {
    let emulator: EmulatorInstance

    init() async throws {
        emulator = try EmulatorInstance.get()
        try await emulator.reset()
    }

    @Test("lists follow pagination at per_page 50 over more than 50 items, with label selectors and name")
    func paginationAndSelectors() async throws {
        let client = try emulator.client()
        for index in 0..<120 {
            var labels = ["cluster": index % 2 == 0 ? "khv3" : "other"]
            if index % 3 == 0 { labels["hcloud/node-group"] = "pool-a" }
            _ = try await client.create(HCloudSSHKey.self, HCloudSSHKeyCreate(name: "key-\(index)", publicKey: publicKey(index), labels: labels))
        }
        try await emulator.call(.delete, "/requests")
        let all = try await client.list(HCloudSSHKey.self)
        #expect(all.count == 120)
        #expect(Set(all.map(\.name)).count == 120)
        let log = try await emulator.requests()
        #expect(log.counts.count("GET /ssh_keys") == 3, "120 items at 50 per page are 3 requests")
        #expect(try await client.list(HCloudSSHKey.self, labelSelector: "cluster=khv3").count == 60)
        #expect(try await client.list(HCloudSSHKey.self, labelSelector: "cluster!=khv3").count == 60)
        #expect(try await client.list(HCloudSSHKey.self, labelSelector: "cluster=khv3,hcloud/node-group=pool-a").count == 20)
        #expect(try await client.list(HCloudSSHKey.self, labelSelector: "!hcloud/node-group").count == 80)
        #expect(try await client.list(HCloudSSHKey.self, labelSelector: "hcloud/node-group in (pool-a,pool-b)").count == 40)
        #expect(try await client.list(HCloudSSHKey.self, labelSelector: "cluster notin (khv3)").count == 60)
        let named = try await client.list(HCloudSSHKey.self, name: "key-7")
        #expect(named.map(\.name) == ["key-7"])
        #expect(named.first?.labels == ["cluster": "other"])
    }

    @Test("servers: create with labels, ssh keys, placement group and network; public and private IPs; typed fields")
    func servers() async throws {
        let client = try emulator.client()
        let key = try await client.create(HCloudSSHKey.self, HCloudSSHKeyCreate(name: "khv3-key", publicKey: testPublicKey)).resource
        let group = try await client.create(HCloudPlacementGroup.self, HCloudPlacementGroupCreate(name: "khv3-pg")).resource
        let network = try await client.create(HCloudNetwork.self, HCloudNetworkCreate(name: "khv3-net", ipRange: "10.0.0.0/16")).resource
        let created = try await client.createServer(
            HCloudServerCreate(
                name: "khv3-cp-0", serverType: "cax11", image: "ubuntu-24.04", location: "fsn1", labels: ["cluster": "khv3"],
                sshKeys: [String(key.id)], placementGroup: group.id, networks: [network.id]))
        #expect(created.resource.status == "initializing")
        #expect(created.action?.command == "create_server")
        let actions = try await client.waitForActions([created.action!.id] + created.nextActions.map(\.id))
        #expect(actions.allSatisfy { $0.succeeded })
        let server = try await client.get(HCloudServer.self, id: created.resource.id)
        #expect(server.status == "running")
        #expect(server.publicIPv4 == "127.0.1.1")
        #expect(server.privateIPs == ["10.0.0.2"])
        #expect(server.serverType?.architecture == "arm")
        #expect(server.image?.architecture == "arm")
        #expect(server.placementGroup?.id == group.id)
        #expect(server.labels == ["cluster": "khv3"])
        #expect(server.created != nil)
        let off = try await client.serverAction(id: server.id, .poweroff)
        _ = try await client.waitForActions([off.id])
        #expect(try await client.servers(status: ["off"]).map(\.id) == [server.id])
        let deleted = try await client.deleteServer(id: server.id)
        #expect(deleted.command == "delete_server")
        #expect(try await client.servers().isEmpty)
    }

    @Test("snapshots: create_image with labels, image list by type, architecture and label selector")
    func snapshots() async throws {
        let client = try emulator.client()
        let x86 = try await client.createServer(HCloudServerCreate(name: "builder-x86", serverType: "cx22", image: "ubuntu-24.04")).resource
        let arm = try await client.createServer(HCloudServerCreate(name: "builder-arm", serverType: "cax11", image: "ubuntu-24.04")).resource
        let one = try await client.createImage(serverID: x86.id, description: "k3s x86", labels: ["microos-snapshot": "yes", "distro": "k3s"])
        let two = try await client.createImage(serverID: arm.id, description: "k3s arm", labels: ["microos-snapshot": "yes", "distro": "k3s"])
        #expect(one.image.status == "creating")
        _ = try await client.waitForActions([one.action.id, two.action.id])
        let snapshots = try await client.images(type: "snapshot", labelSelector: "microos-snapshot=yes")
        #expect(snapshots.map(\.description) == ["k3s x86", "k3s arm"])
        #expect(snapshots.map(\.architecture) == ["x86", "arm"])
        #expect(snapshots.allSatisfy { $0.status == "available" && $0.type == "snapshot" && $0.labels["distro"] == "k3s" })
        #expect(try await client.images(type: "snapshot", architecture: "arm").map(\.id) == [two.image.id])
        let system = try await client.images(type: "system")
        #expect(!system.isEmpty && system.allSatisfy { $0.type == "system" && $0.name != nil })
    }

    @Test("errors in Hetzner's shape map to typed errors with kh exit codes")
    func errorMapping() async throws {
        let client = try emulator.client()
        let missing = await #expect(throws: HCloudError.self) { try await client.get(HCloudServer.self, id: 424_242) }
        #expect(missing?.kind == .notFound)
        #expect(missing?.code == "not_found")
        #expect(missing?.exitCode == .external)
        #expect(missing?.message.contains("GET /servers/424242") == true)
        let selector = await #expect(throws: HCloudError.self) { try await client.servers(labelSelector: "a in (b") }
        #expect(selector?.kind == .invalidInput)
        #expect(selector?.exitCode == .usage)
        _ = try await client.create(HCloudFirewall.self, HCloudFirewallCreate(name: "fw"))
        let duplicate = await #expect(throws: HCloudError.self) { try await client.create(HCloudFirewall.self, HCloudFirewallCreate(name: "fw")) }
        #expect(duplicate?.kind == .conflict)
        #expect(duplicate?.code == "uniqueness_error")
        try await emulator.addFault(["method": "GET", "path": "/networks", "status": 503, "code": "unavailable", "count": 10])
        let unavailable = await #expect(throws: HCloudError.self) { try await client.list(HCloudNetwork.self) }
        #expect(unavailable?.kind == .server)
        #expect(unavailable?.status == 503)
        try await emulator.call(.delete, "/faults")
        // A closed port: the API is unreachable (exit 4), with a hint naming HCLOUD_ENDPOINT.
        let closed = try HCloudClient(
            configuration: HCloudConfiguration(
                endpoint: URL(string: "http://127.0.0.1:9/v1")!, token: Secret(name: "HCLOUD_TOKEN", value: emulator.token),
                requestTimeout: .seconds(5)))
        let unreachable = await #expect(throws: HCloudError.self) { try await closed.servers() }
        #expect(unreachable?.kind == .unreachable)
        #expect(unreachable?.exitCode == .external)
        #expect(unreachable?.hint?.contains("HCLOUD_ENDPOINT") == true)
    }

    @Test("401: a refused token is unauthorized (exit 4) and no message carries the token")
    func unauthorized() async throws {
        let redactor = Redactor()
        let secret = "wrong-token-" + emulator.token.prefix(16)
        let client = try HCloudClient(
            configuration: HCloudConfiguration(endpoint: emulator.endpoint, token: Secret(name: "HCLOUD_TOKEN", value: secret)),
            redactor: redactor)
        let error = await #expect(throws: HCloudError.self) { try await client.servers() }
        #expect(error?.kind == .unauthorized)
        #expect(error?.exitCode == .external)
        #expect(error?.status == 401)
        let text = [error?.message ?? "", error?.hint ?? "", String(describing: error), String(reflecting: client.configuration)].joined(
            separator: "\n")
        #expect(!text.contains(secret))
        #expect(!text.contains(emulator.token))
        #expect(text.contains("unauthorized"))
        #expect(redactor.registeredNames == ["HCLOUD_TOKEN"])
        #expect(redactor.redact("Bearer \(secret)") == "Bearer [redacted:HCLOUD_TOKEN]")
    }

    @Test("a missing token is a usage error before any request")
    func missingToken() async throws {
        let before = try await emulator.requests().entries.count
        let error = #expect(throws: HCloudError.self) {
            _ = try HCloudConfiguration.resolve(environment: ["HCLOUD_ENDPOINT": emulator.endpoint.absoluteString])
        }
        #expect(error?.kind == .missingToken)
        #expect(error?.exitCode == .usage)
        #expect(error?.hint?.contains("HCLOUD_TOKEN") == true)
        let empty = #expect(throws: HCloudError.self) {
            _ = try HCloudClient(configuration: HCloudConfiguration(endpoint: emulator.endpoint, token: Secret(name: "HCLOUD_TOKEN", value: "")))
        }
        #expect(empty?.kind == .missingToken)
        let badEndpoint = #expect(throws: HCloudError.self) {
            _ = try HCloudConfiguration.resolve(endpoint: "ftp://example", environment: ["HCLOUD_TOKEN": "x"])
        }
        #expect(badEndpoint?.kind == .configuration)
        let resolved = try HCloudConfiguration.resolve(environment: ["HCLOUD_TOKEN": "abc", "HCLOUD_ENDPOINT": emulator.endpoint.absoluteString])
        #expect(resolved.endpoint == emulator.endpoint)
        #expect(resolved.token.name == "HCLOUD_TOKEN")
        #expect(try HCloudConfiguration.resolve(environment: ["HCLOUD_TOKEN": "abc"]).endpoint == HCloudConfiguration.defaultEndpoint)
        #expect(try await emulator.requests().entries.count == before, "no request was sent")
    }

    @Test("the rate-limit budget: no 429 while budget remains, the requests wait for the refill")
    func budgetIsRespected() async throws {
        try await emulator.setRateLimit(limit: 20, remaining: 8, refillPerSecond: 10)
        let client = try emulator.client(concurrency: 16)
        // 30 requests in flight at once against 8 left: kh must pace itself instead of taking 429s.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<30 { group.addTask { _ = try await client.list(HCloudServer.self) } }
            try await group.waitForAll()
        }
        let log = try await emulator.requests()
        #expect(log.rateLimited == 0)
        #expect(log.counts.count("GET /servers") == 30)
        #expect(client.rateLimitedCount == 0)
        #expect(client.rateLimit?.limit == 20)
    }

    @Test("a 429 is backed off and the request retried (POST too), then succeeds")
    func backoffOn429() async throws {
        try await emulator.setRateLimit(limit: 4, remaining: 0, refillPerSecond: 4)
        let client = try emulator.client()
        let created = try await client.create(HCloudSSHKey.self, HCloudSSHKeyCreate(name: "after-429", publicKey: testPublicKey))
        #expect(created.resource.name == "after-429")
        let log = try await emulator.requests()
        #expect(log.rateLimited >= 1)
        #expect(client.rateLimitedCount == log.rateLimited)
        #expect(log.counts.count("POST /ssh_keys") == 1 + log.rateLimited)
        #expect(try await client.list(HCloudSSHKey.self).count == 1, "created exactly once")
        // A budget that never refills within the allowed wait ends in a rate-limited error (exit 4).
        try await emulator.setRateLimit(limit: 4, remaining: 0, refillPerSecond: 0.001)
        let strict = try HCloudClient(
            configuration: HCloudConfiguration(
                endpoint: emulator.endpoint, token: Secret(name: "HCLOUD_TOKEN", value: emulator.token), maxRateLimitWait: .seconds(2),
                maxRateLimitRetries: 2))
        let error = await #expect(throws: HCloudError.self) { try await strict.servers() }
        #expect(error?.kind == .rateLimited)
        #expect(error?.exitCode == .external)
    }

    @Test("actions are polled in batches: one GET /actions for many pending actions, bounded by a deadline")
    func batchedActions() async throws {
        let client = try emulator.client(concurrency: 8)
        try await emulator.setActionDelay(0.4)
        var ids: [Int] = []
        for index in 0..<60 {
            let server = try await client.createServer(HCloudServerCreate(name: "batch-\(index)", serverType: "cx22", image: "debian-12"))
            ids.append(server.action!.id)
        }
        try await emulator.call(.delete, "/requests")
        let finished = try await client.waitForActions(ids)
        #expect(finished.map(\.id) == ids)
        #expect(finished.allSatisfy { $0.succeeded })
        let log = try await emulator.requests()
        let polls = log.counts.count("GET /actions")
        #expect(polls >= 2, "60 ids need two requests per round")
        #expect(polls <= 2 * 8, "a few rounds of two batched requests, not one request per action")
        #expect(log.counts.count("GET /actions/(\\d+)") == 0)
        // A failing action is returned with its error; an action that never ends hits the deadline.
        try await emulator.setActionDelay(0)
        try await emulator.addFault(["kind": "action", "command": "delete_server", "count": 1, "code": "server_error", "message": "injected"])
        let servers = try await client.servers()
        let failing = try await client.deleteServer(id: servers[0].id)
        let result = try await client.waitForActions([failing.id])
        #expect(result.first?.status == "error")
        #expect(result.first?.error?.message == "injected")
        try await emulator.setActionDelay(60)
        let slow = try await client.deleteServer(id: servers[1].id)
        let deadline = await #expect(throws: HCloudError.self) { try await client.waitForActions([slow.id], deadline: .milliseconds(600)) }
        #expect(deadline?.kind == .deadline)
        #expect(deadline?.message.contains(String(slow.id)) == true)
    }

    @Test("every request the client sends fits the official spec (parameters and bodies, strictly)")
    func requestsFitTheSpec() async throws {
        let client = try emulator.client()
        try await emulator.call(.delete, "/requests")
        let key = try await client.create(HCloudSSHKey.self, HCloudSSHKeyCreate(name: "k", publicKey: testPublicKey, labels: ["a": "b"])).resource
        let group = try await client.create(HCloudPlacementGroup.self, HCloudPlacementGroupCreate(name: "pg")).resource
        let network = try await client.create(HCloudNetwork.self, HCloudNetworkCreate(name: "n", ipRange: "10.0.0.0/16")).resource
        let firewall = try await client.create(HCloudFirewall.self, HCloudFirewallCreate(name: "fw", labels: ["cluster": "x"])).resource
        let server = try await client.createServer(
            HCloudServerCreate(
                name: "s", serverType: "cx22", image: "ubuntu-24.04", location: "nbg1", labels: ["cluster": "x"], sshKeys: [key.name],
                placementGroup: group.id, networks: [network.id], firewalls: [firewall.id], userData: "#cloud-config\n", startAfterCreate: true))
        let volume = try await client.create(HCloudVolume.self, HCloudVolumeCreate(name: "v", size: 10, labels: [:], server: server.resource.id))
        _ = try await client.create(HCloudLoadBalancer.self, HCloudLoadBalancerCreate(name: "lb", labels: ["cluster": "x"], network: network.id))
        _ = try await client.waitForActions([server.action!.id, volume.action!.id])
        _ = try await client.action(id: server.action!.id)
        _ = try await client.servers(labelSelector: "cluster=x", name: "s", status: ["running"])
        _ = try await client.images(type: "snapshot", architecture: "x86", labelSelector: "a")
        _ = try await client.createImage(serverID: server.resource.id, description: "snap", labels: ["a": "b"])
        _ = try await client.serverAction(id: server.resource.id, .shutdown)
        _ = try await client.detachVolume(id: volume.resource.id)
        _ = try await client.attachVolume(id: volume.resource.id, server: server.resource.id)
        _ = try await client.get(HCloudVolume.self, id: volume.resource.id)
        for type in [HCloudFirewall.self, HCloudLoadBalancer.self, HCloudNetwork.self, HCloudPlacementGroup.self] as [any HCloudResource.Type] {
            _ = try await list(type, client)
        }
        _ = try await client.deleteServer(id: server.resource.id)
        try await client.delete(.sshKey, id: key.id)
        let (status, output) = try emulator.validateKhRequests()
        #expect(status == 0, "\(output)")
        #expect(output.contains(" passed, 0 failed"))
    }

    private func list(_ type: any HCloudResource.Type, _ client: HCloudClient) async throws -> Int {
        try await client.list(type).count
    }
}
