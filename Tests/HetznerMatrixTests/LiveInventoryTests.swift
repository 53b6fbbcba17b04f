import Foundation
import HetznerMatrix
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// The live inventory (KhHCloud under LiveInventory) against a private Hetzner API emulator,
/// and the token and API checks of the commands, which come before anything is touched.
@Suite("live Hetzner inventory over KhHCloud (emulator)", .serialized)
struct LiveInventoryTests {
    @Test("servers by label selector carry the emulator's names, labels and public IPv4; snapshots by architecture")
    func servers() async throws {
        let emulator = try PrivateEmulator()
        var made: [Int] = []
        for (name, labels) in [
            ("khv3-s1-control-0", ["cluster": "khv3-s1", "role": "control"]), ("khv3-s1-agent-0", ["cluster": "khv3-s1", "role": "agent"]),
            ("khv3-s2-control-0", ["cluster": "khv3-s2"]), ("unlabelled", [:]),
        ] as [(String, [String: String])] {
            made.append(
                try await emulator.create(
                    "/servers", "server",
                    [
                        "name": .string(name), "server_type": "cx22", "image": "ubuntu-24.04",
                        "labels": .object(labels.mapValues { .string($0) }),
                    ]))
        }
        let inventory = try InventoryFactory.live.make(emulator.endpoint, emulator.token, .seconds(20))
        try await inventory.checkAccess()

        let found = try await inventory.servers(labelSelector: "cluster=khv3-s1")
        #expect(Set(found.map(\.name)) == ["khv3-s1-control-0", "khv3-s1-agent-0"])
        // Each one as the emulator itself has it (GET /servers/{id}, read without KhHCloud).
        for server in found {
            let raw = try await emulator.call(.get, "/servers/\(server.id)")["server"]
            #expect(raw?["name"]?.stringValue == server.name)
            guard case .object(let labels)? = raw?["labels"] else {
                Issue.record("no labels for \(server.name)")
                continue
            }
            #expect(labels.mapValues(\.stringValue) == server.labels.mapValues { Optional($0) })
            let ipv4 = raw?["public_net"]?["ipv4"]?["ip"]?.stringValue
            #expect(
                ipv4 != nil && server.publicIPv4 == ipv4, "\(server.name): \(String(describing: server.publicIPv4)) vs \(String(describing: ipv4))")
            #expect(server.status == raw?["status"]?.stringValue)
        }
        #expect(Set(found.compactMap(\.publicIPv4)).count == 2, "two servers, two addresses")
        #expect(try await inventory.servers(labelSelector: "cluster=khv3-s1,role=agent").map(\.name) == ["khv3-s1-agent-0"])
        #expect(try await inventory.servers(labelSelector: "cluster=khv3-s9").isEmpty)

        // Snapshots: the label selector and the architecture both filter.
        let x86Image = try await emulator.create(
            "/servers/\(made[0])/actions/create_image", "image", ["type": "snapshot", "description": "k3s x86", "labels": ["k": "v"]])
        let arm = try await emulator.create("/servers", "server", ["name": "arm", "server_type": "cax11", "image": "ubuntu-24.04"])
        let armImage = try await emulator.create(
            "/servers/\(arm)/actions/create_image", "image", ["type": "snapshot", "description": "k3s arm", "labels": ["k": "v"]])
        #expect(try await inventory.snapshots(labelSelector: "k=v", architecture: "x86").map(\.id) == [Int64(x86Image)])
        #expect(try await inventory.snapshots(labelSelector: "k=v", architecture: "arm").map(\.id) == [Int64(armImage)])
        #expect(try await inventory.snapshots(labelSelector: "k=v", architecture: "arm").first?.architecture == "arm")
        #expect(try await inventory.snapshots(labelSelector: "k=w", architecture: nil).isEmpty)

        // A refused token is a clear error, not an empty list.
        let wrong = try InventoryFactory.live.make(emulator.endpoint, "not-the-token", .seconds(20))
        await #expect(throws: (any Error).self) { try await wrong.checkAccess() }
        await #expect(throws: (any Error).self) { _ = try await wrong.servers(labelSelector: "cluster=khv3-s1") }
    }

    @Test("no token (exit 3), an unreachable API or a refused token (exit 4): before any state lock, destroy or API mutation")
    func refusedBeforeTouching() async throws {
        let testbed = try Testbed.load()
        let emulator = try PrivateEmulator()
        let server = try await emulator.create(
            "/servers", "server",
            ["name": "khv3-s1-k3s-basic-control-0", "server_type": "cx22", "image": "ubuntu-24.04", "labels": ["cluster": "khv3-s1-k3s-basic"]])
        let dir = TemporaryDirectory("kh-stab-refuse")
        let config = try await stateHarness(dir, endpoint: emulator.endpoint, testbed: testbed)
        let text = try String(contentsOfFile: config, encoding: .utf8)
        // Port 1 on loopback: nothing listens there.
        let unreachable = try dir.write("unreachable.yaml", text.replacingOccurrences(of: emulator.endpoint, with: "http://127.0.0.1:1/v1"))
        let scenarios = dir.path + "/harness/scenarios_v3"
        let state = try Data(contentsOf: URL(fileURLWithPath: scenarios + "/s1-k3s-basic/terraform.tfstate"))
        func untouched(_ label: String) async throws {
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/destroyed-s1"), "\(label): terraform destroy ran")
            #expect(try Data(contentsOf: URL(fileURLWithPath: scenarios + "/s1-k3s-basic/terraform.tfstate")) == state, "\(label): state changed")
            for lock in ["s2-rke2-basic", "s3-k3s-held"] {
                #expect(FileManager.default.fileExists(atPath: "\(scenarios)/\(lock)/.terraform.tfstate.lock.info"), "\(label): \(lock) lock removed")
            }
            #expect(try await emulator.names("servers").contains("khv3-s1-k3s-basic-control-0"), "\(label): server \(server) deleted")
            #expect(try await emulator.requestLog().allSatisfy { $0.method == "GET" || $0.path.hasPrefix("/__emulator") }, "\(label)")
        }
        try await emulator.clearRequestLog()

        let noToken = try await KhBinary(testbed: testbed).run(["stabilize", "clean", "--config", config, "--yes"])
        #expect(noToken.exitCode == KhExitCode.blocked.rawValue, "\(noToken.stdoutText)\n\(noToken.stderrText)")
        #expect(noToken.stderrText.contains("no Hetzner Cloud token: HCLOUD_TOKEN is not set"))
        #expect(try await emulator.requestLog().filter { !$0.path.hasPrefix("/__emulator") }.isEmpty, "the API was called without a token")
        try await untouched("no token")

        let down = try await KhBinary(testbed: testbed, extra: ["HCLOUD_TOKEN": emulator.token]).run(
            ["stabilize", "clean", "--config", unreachable, "--yes"])
        #expect(down.exitCode == KhExitCode.external.rawValue, "\(down.stdoutText)\n\(down.stderrText)")
        #expect(down.stderrText.contains("Hetzner Cloud API at http://127.0.0.1:1/v1"), "\(down.stderrText)")
        #expect(!down.stderrText.contains(emulator.token))
        try await untouched("unreachable API")

        let refused = try await KhBinary(testbed: testbed, extra: ["HCLOUD_TOKEN": "wrong-token-0123456789"]).run(
            ["stabilize", "clean", "--config", config, "--yes"])
        #expect(refused.exitCode == KhExitCode.external.rawValue, "\(refused.stdoutText)\n\(refused.stderrText)")
        #expect(refused.stderrText.contains("Hetzner Cloud API at \(emulator.endpoint)") && !refused.stderrText.contains("wrong-token-0123456789"))
        try await untouched("refused token")
    }
}
