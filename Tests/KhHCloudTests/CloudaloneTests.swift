import Foundation
import KhCore
import KhTestSupport
import Testing

@testable import KhHCloud

/// KhHCloud against PyPI's `cloudalone==0.2.0`, a second, independent emulation of the Hetzner
/// Cloud API, for what it covers: servers, images, SSH keys, actions (it drops labels and has no
/// label selectors, networks, firewalls, load balancers, volumes or placement groups). The testbed
/// starts it (Tools/testbed/testbed.sh); when it could not be installed this fails, naming the log.
@Suite("KhHCloud against cloudalone 0.2.0", .serialized)
struct CloudaloneTests {
    let client: HCloudClient

    init() throws {
        let testbed = try Testbed.load()
        if let failed = testbed.environment["KH_TESTBED_CLOUDALONE_FAILED"] {
            let reason = (try? String(contentsOfFile: failed, encoding: .utf8)) ?? failed
            throw CloudaloneMissing(message: "cloudalone is not available in the testbed: \(reason)")
        }
        let endpoint = try testbed.require("KH_TESTBED_CLOUDALONE_ENDPOINT")
        let configuration = try HCloudConfiguration.resolve(
            environment: ["HCLOUD_TOKEN": try testbed.require("KH_TESTBED_CLOUDALONE_TOKEN"), "HCLOUD_ENDPOINT": endpoint])
        client = try HCloudClient(configuration: configuration)
    }

    @Test("servers: create, wait for the actions in a batch, get, list by name, delete")
    func servers() async throws {
        let name = "khv3-ca-\(UInt32.random(in: 0...UInt32.max))"
        let created = try await client.createServer(HCloudServerCreate(name: name, serverType: "small", image: "debian-13"))
        let ids = [created.action?.id].compactMap { $0 } + created.nextActions.map(\.id)
        #expect(!ids.isEmpty)
        let actions = try await client.waitForActions(ids, deadline: .seconds(30))
        #expect(actions.allSatisfy { $0.succeeded }, "\(actions)")
        let server = try await client.get(HCloudServer.self, id: created.resource.id)
        #expect(server.name == name)
        #expect(server.status == "running")
        #expect(server.serverType?.name == "small")
        #expect(try await client.servers(name: name).map(\.id) == [server.id])
        let deleted = try await client.deleteServer(id: server.id)
        #expect(deleted.command == "delete_server")
        let done = try await client.waitForActions([deleted.id], deadline: .seconds(30))
        #expect(done.first?.succeeded == true)
        let gone = await #expect(throws: HCloudError.self) { _ = try await client.get(HCloudServer.self, id: server.id) }
        #expect(gone?.kind == .notFound)
    }

    @Test("images and SSH keys; many servers listed over pages; errors in Hetzner's shape")
    func imagesKeysAndPages() async throws {
        let images = try await client.images(type: "system")
        #expect(images.contains { $0.name == "debian-13" && $0.architecture == "x86" })
        let keyName = "kh-ca-\(UInt32.random(in: 0...UInt32.max))"
        let key = try await client.create(HCloudSSHKey.self, HCloudSSHKeyCreate(name: keyName, publicKey: testPublicKey))
        #expect(try await client.list(HCloudSSHKey.self, name: keyName).map(\.id) == [key.resource.id])
        try await client.delete(.sshKey, id: key.resource.id)
        let prefix = "kh-page-\(UInt32.random(in: 0...UInt32.max))-"
        var ids: [Int] = []
        for index in 0..<55 {
            ids.append(
                try await client.createServer(HCloudServerCreate(name: prefix + String(index), serverType: "small", image: "debian-13")).resource.id)
        }
        let listed = try await client.servers().filter { $0.name.hasPrefix(prefix) }
        #expect(listed.count == 55, "pagination past 50")
        let deletions = try await withThrowingTaskGroup(of: Int.self) { group in
            for id in ids { group.addTask { try await client.deleteServer(id: id).id } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        let finished = try await client.waitForActions(deletions, deadline: .seconds(60))
        #expect(finished.count == 55)
        #expect(finished.allSatisfy { $0.succeeded })
        let missing = await #expect(throws: HCloudError.self) { try await client.delete(.sshKey, id: 987_654) }
        #expect(missing?.kind == .notFound)
        let bad = await #expect(throws: HCloudError.self) {
            _ = try await client.createServer(HCloudServerCreate(name: "x", serverType: "no-such-type", image: "debian-13"))
        }
        #expect(bad?.kind == .invalidInput)
    }

    @Test("a wrong token is unauthorized (exit 4)")
    func unauthorized() async throws {
        var configuration = client.configuration
        configuration.token = Secret(name: "HCLOUD_TOKEN", value: "not-the-token")
        let wrong = try HCloudClient(configuration: configuration)
        let error = await #expect(throws: HCloudError.self) { _ = try await wrong.servers() }
        #expect(error?.kind == .unauthorized)
        #expect(error?.exitCode == .external)
        #expect(error?.message.contains("not-the-token") == false)
    }
}

struct CloudaloneMissing: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
