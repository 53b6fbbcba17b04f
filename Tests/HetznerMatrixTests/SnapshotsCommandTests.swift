import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// `kh stabilize snapshots` through the built binary against a private Hetzner API emulator:
/// snapshots made with `create_image` (labels, the server's architecture), and a `packer`
/// stand-in on PATH that records its arguments and, for one build, makes the snapshot.
@Suite("kh stabilize snapshots (binary, emulator, packer stand-in)", .serialized)
struct SnapshotsCommandTests {
    /// A snapshot of a fresh server of `type` (cx22 = x86, cax11 = arm) with labels; the server is deleted again.
    static func snapshot(_ emulator: PrivateEmulator, type: String, description: String, labels: JSONValue) async throws -> Int {
        let server = try await emulator.create(
            "/servers", "server",
            ["name": .string("packer-\(UInt32.random(in: 0...UInt32.max))"), "server_type": .string(type), "image": "ubuntu-24.04"])
        let image = try await emulator.create(
            "/servers/\(server)/actions/create_image", "image", ["type": "snapshot", "description": .string(description), "labels": labels])
        try await emulator.call(.delete, "/servers/\(server)")
        return image
    }

    @Test("matched by label and architecture; a missing required one exits 3, an optional one warns; --build runs exactly the missing builds")
    func snapshots() async throws {
        let testbed = try Testbed.load()
        let emulator = try PrivateEmulator()
        let k3sX86 = try await Self.snapshot(
            emulator, type: "cx22", description: "Leap Micro k3s x86", labels: ["leapmicro-snapshot": "yes", "kube-hetzner/k8s-distro": "k3s"])
        let rke2Arm = try await Self.snapshot(
            emulator, type: "cax11", description: "Leap Micro rke2 arm", labels: ["leapmicro-snapshot": "yes", "kube-hetzner/k8s-distro": "rke2"])
        // Decoys: the k3s labels on arm without leapmicro-snapshot=yes; a MicroOS snapshot on arm only.
        let decoy = try await Self.snapshot(
            emulator, type: "cax11", description: "old k3s arm", labels: ["leapmicro-snapshot": "no", "kube-hetzner/k8s-distro": "k3s"])
        _ = try await Self.snapshot(emulator, type: "cax11", description: "MicroOS arm", labels: ["microos-snapshot": "yes"])

        let dir = TemporaryDirectory("kh-stab-snapshots")
        try FileManager.default.createDirectory(atPath: dir.path + "/harness/scenarios_v3", withIntermediateDirectories: true)
        let calls = dir.path + "/packer-calls"
        // The packer stand-in: records its working folder and arguments; `build k3s-arm` makes that snapshot as packer would.
        try dir.write(
            "bin/packer",
            """
            #!/usr/bin/env bash
            set -euo pipefail
            echo "$(pwd) $*" >>\(calls)
            [[ -n ${HCLOUD_TOKEN:-} ]] || { echo "no HCLOUD_TOKEN" >&2; exit 1; }
            if [[ "$*" == "build k3s-arm" ]]; then
              auth="Authorization: Bearer $HCLOUD_TOKEN"
              id=$(curl -fsS -X POST -H "$auth" -H 'Content-Type: application/json' \\
                --data '{"name":"packer-k3s-arm","server_type":"cax11","image":"ubuntu-24.04"}' "$PACKER_TEST_ENDPOINT/servers" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["server"]["id"])')
              curl -fsS -X POST -H "$auth" -H 'Content-Type: application/json' \\
                --data '{"type":"snapshot","description":"Leap Micro k3s arm (built)","labels":{"leapmicro-snapshot":"yes","kube-hetzner/k8s-distro":"k3s"}}' \\
                "$PACKER_TEST_ENDPOINT/servers/$id/actions/create_image" >/dev/null
              curl -fsS -X DELETE -H "$auth" "$PACKER_TEST_ENDPOINT/servers/$id" >/dev/null
            fi
            echo "packer $* done"
            """, executable: true)
        let leap = "leapmicro-snapshot=yes,kube-hetzner/k8s-distro"
        let config = try dir.write(
            "kh.yaml",
            """
            kh:
              evidence_dir: \(dir.path)/runs
            stabilize:
              module_dir: module
              harness_dir: harness
              scenarios: [s1-k3s-basic]
              hcloud:
                endpoint: \(emulator.endpoint)
              snapshots:
                - {name: k3s-x86, label_selector: "\(leap)=k3s", architecture: x86, required: true, build: [[packer, build, k3s-x86]]}
                - {name: k3s-arm, label_selector: "\(leap)=k3s", architecture: arm, required: true,
                   build: [[packer, init, leap.pkr.hcl], [packer, build, k3s-arm]]}
                - {name: rke2-arm, label_selector: "\(leap)=rke2", architecture: arm, required: true,
                   build: [[packer, init, leap.pkr.hcl], [packer, build, rke2-arm]]}
                - {name: microos-x86, label_selector: "microos-snapshot=yes", architecture: x86, required: false,
                   build: [[packer, build, microos-x86]]}
            """)
        let path = dir.path + "/bin:" + (testbed.processEnvironment["PATH"] ?? "/usr/bin:/bin")
        let kh = KhBinary(testbed: testbed, extra: ["HCLOUD_TOKEN": emulator.token, "PATH": path, "PACKER_TEST_ENDPOINT": emulator.endpoint])

        // 1. The list: k3s arm (required) is missing, the decoy does not count; MicroOS x86 (optional) only warns.
        let list = try await kh.run(["stabilize", "snapshots", "--config", config])
        #expect(list.exitCode == KhExitCode.blocked.rawValue, "\(list.stdoutText)\n\(list.stderrText)")
        let lines = list.stdoutText.split(separator: "\n").map(String.init)
        func line(_ name: String) -> String { lines.first { $0.hasPrefix(name + " ") } ?? "" }
        #expect(line("k3s-x86").contains("\(k3sX86) Leap Micro k3s x86"), "\(lines)")
        #expect(line("k3s-arm").hasSuffix("MISSING") && !line("k3s-arm").contains("\(decoy)"), "\(lines)")
        #expect(line("rke2-arm").contains("\(rke2Arm) Leap Micro rke2 arm"), "\(lines)")
        #expect(line("microos-x86").hasSuffix("missing (optional)"), "\(lines)")
        #expect(!FileManager.default.fileExists(atPath: calls), "packer ran without --build")
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/runs").sorted()
        let records = try String(contentsOfFile: dir.path + "/runs/\(try #require(runs.last))/records.jsonl", encoding: .utf8)
        let recordLines = records.split(separator: "\n")
        #expect(recordLines.contains { $0.contains(#""name":"k3s-arm""#) && $0.contains(#""status":"fail""#) })
        #expect(recordLines.contains { $0.contains(#""name":"microos-x86""#) && $0.contains(#""status":"warn""#) })

        // 2. --build: exactly the missing ones' commands, each distinct command once, in the harness folder;
        // the built k3s arm snapshot is then found, and only the optional one is still missing (exit 0).
        let build = try await kh.run(["stabilize", "snapshots", "--config", config, "--build"])
        #expect(build.exitCode == 0, "\(build.stdoutText)\n\(build.stderrText)")
        let harness = (dir.path as NSString).standardizingPath + "/harness"
        let recorded = try String(contentsOfFile: calls, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(recorded == ["\(harness) init leap.pkr.hcl", "\(harness) build k3s-arm", "\(harness) build microos-x86"])
        let built = build.stdoutText.split(separator: "\n").map(String.init)
        #expect(built.first { $0.hasPrefix("k3s-arm ") }?.contains("Leap Micro k3s arm (built)") == true, "\(built)")
        #expect(built.first { $0.hasPrefix("microos-x86 ") }?.hasSuffix("missing (optional)") == true, "\(built)")
        #expect(!build.stdoutText.contains(emulator.token) && !build.stderrText.contains(emulator.token))
    }
}
