import Foundation
import KhCore
import KhHTTP
import KhProcess
import KhTestSupport
import Testing

@testable import KhKube

/// Kubeconfig resolution from fixture files (no server needed): the KUBECONFIG list merge,
/// `--kubeconfig`, `~/.kube/config`, relative paths, and the errors kubectl would give.
@Suite("KubeConfigLoader resolves kubeconfig files like kubectl")
struct KubeConfigTests {
    static let fileA = """
        apiVersion: v1
        kind: Config
        current-context: a
        clusters:
        - name: x
          cluster: {server: "https://a.example.invalid:6443", certificate-authority: ca.crt}
        users:
        - name: u1
          user: {token: token-from-file-a}
        contexts:
        - name: a
          context: {cluster: x, user: u1, namespace: team-a}

        """

    static let fileB = """
        apiVersion: v1
        kind: Config
        current-context: b
        clusters:
        - name: x
          cluster: {server: "https://b-shadowed.example.invalid:6443"}
        - name: y
          cluster: {server: "https://b.example.invalid", insecure-skip-tls-verify: true, tls-server-name: api.b.example.invalid}
        users:
        - name: u1
          user: {token: token-from-file-b-shadowed}
        - name: basic
          user: {username: admin, password: pa55word-b}
        - name: plugin
          user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: aws, interactiveMode: Never}}
        - name: provider
          user: {auth-provider: {name: oidc}}
        contexts:
        - name: a
          context: {cluster: y, user: basic}
        - name: b
          context: {cluster: y, user: basic}
        - name: exec
          context: {cluster: x, user: plugin}
        - name: oidc
          context: {cluster: x, user: provider}

        """

    let dir = TemporaryDirectory()

    func files() throws -> (String, String) {
        try dir.write("a/ca.crt", "not parsed here\n")
        return (try dir.write("a/config", Self.fileA), try dir.write("b/config", Self.fileB))
    }

    @Test("$KUBECONFIG is a merged list: the first file that sets current-context or a name wins; missing files are skipped")
    func merge() throws {
        let (a, b) = try files()
        let list = [dir.path + "/missing", a, "", b].joined(separator: ":")
        let redactor = Redactor()
        let current = try KubeConfigLoader.resolve(kubeconfig: nil, context: nil, environment: ["KUBECONFIG": list], redactor: redactor)
        #expect(current.context == "a" && current.cluster == "x" && current.user == "u1" && current.namespace == "team-a")
        #expect(current.server.absoluteString == "https://a.example.invalid:6443")
        #expect(current.files == [a, b])
        // A relative path is relative to the file that names it.
        #expect(current.tls.caFile == dir.path + "/a/ca.crt")
        guard case .bearer(let token)? = current.authentication else {
            Issue.record("expected a token, got \(String(describing: current.authentication))")
            return
        }
        #expect(token.withValue { $0 } == "token-from-file-a")
        #expect(!redactor.redact("sent token-from-file-a").contains("token-from-file-a"))
        #expect(!current.summary.contains("token-from-file-a"))

        let other = try KubeConfigLoader.resolve(kubeconfig: nil, context: "b", environment: ["KUBECONFIG": list], redactor: redactor)
        #expect(other.cluster == "y" && other.tls.insecure && other.tls.serverName == "api.b.example.invalid")
        guard case .basic(let username, let password)? = other.authentication else {
            Issue.record("expected basic credentials, got \(String(describing: other.authentication))")
            return
        }
        #expect(username == "admin" && password.withValue { $0 } == "pa55word-b")
        #expect(!redactor.redact("pa55word-b").contains("pa55word-b"))
    }

    @Test("--kubeconfig is the only file read; without it and $KUBECONFIG, ~/.kube/config")
    func precedence() throws {
        let (a, b) = try files()
        let flag = try KubeConfigLoader.resolve(kubeconfig: b, context: nil, environment: ["KUBECONFIG": a])
        #expect(flag.context == "b" && flag.files == [b])
        try dir.write("home/.kube/config", Self.fileA)
        try dir.write("home/.kube/ca.crt", "not parsed here\n")
        let home = try KubeConfigLoader.resolve(kubeconfig: nil, context: nil, environment: ["HOME": dir.path + "/home"])
        #expect(home.files == [dir.path + "/home/.kube/config"] && home.context == "a")
        #expect(throws: KubeConfigError.self) {
            try KubeConfigLoader.resolve(kubeconfig: dir.path + "/nope", context: nil, environment: [:])
        }
    }

    @Test("a missing context is a clear error naming the files and the context")
    func missingContext() throws {
        let (a, b) = try files()
        do {
            _ = try KubeConfigLoader.resolve(kubeconfig: nil, context: "staging", environment: ["KUBECONFIG": "\(a):\(b)"])
            Issue.record("resolved a context that does not exist")
        } catch let error as KubeConfigError {
            #expect(!error.unsupported)
            #expect(error.message == "kubeconfig \(a):\(b): context \"staging\" does not exist", "\(error.message)")
            #expect(error.exitCode == .usage)
        }
    }

    @Test("an exec or auth-provider user makes the direct client not usable, with the reason")
    func unsupportedUsers() throws {
        let (_, b) = try files()
        for (context, field) in [("exec", "exec"), ("oidc", "auth-provider")] {
            do {
                _ = try KubeConfigLoader.resolve(kubeconfig: b, context: context, environment: [:])
                Issue.record("context \(context) resolved")
            } catch let error as KubeConfigError {
                #expect(error.unsupported)
                #expect(error.message.contains("user \"\(context == "exec" ? "plugin" : "provider")\": `\(field)` credentials"), "\(error.message)")
            }
        }
    }
}

/// ``KubeAPI`` against the testbed's kube emulator (HTTPS, a token, the testbed CA),
/// cross-checked with real kubectl reading the same objects.
@Suite("KubeAPI against the emulated API, cross-checked with kubectl", .serialized)
struct KubeAPIEmulatorTests {
    let testbed: Testbed
    let server: String
    let ca: String
    let token: String
    let dir = TemporaryDirectory()

    init() throws {
        testbed = try Testbed.load()
        server = try testbed.require("KH_TESTBED_KUBE_SERVER")
        ca = try testbed.require("KH_TESTBED_KUBE_CA")
        token = try String(contentsOfFile: try testbed.require("KH_TESTBED_KUBE_TOKEN_FILE"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A kubeconfig for the emulator with the given cluster and user fields (flow style).
    func kubeconfig(cluster: String, user: String, server: String? = nil) throws -> String {
        let name = "kubeconfig-\(UUID().uuidString.prefix(8))"
        return try dir.write(
            name,
            """
            apiVersion: v1
            kind: Config
            clusters: [{name: emu, cluster: {server: "\(server ?? self.server)", \(cluster)}}]
            users: [{name: me, user: {\(user)}}]
            contexts: [{name: emu, context: {cluster: emu, user: me}}]
            current-context: emu

            """)
    }

    func api(_ kubeconfig: String, redactor: Redactor? = nil) throws -> KubeAPI {
        KubeAPI(
            connection: try KubeConfigLoader.resolve(kubeconfig: kubeconfig, context: nil, environment: [:], redactor: redactor),
            timeout: .seconds(20), redactor: redactor)
    }

    var tokenUser: String { "token: \(token)" }

    /// Items without `apiVersion` and `kind` (kubectl fills those in on each item of a list).
    static func comparable(_ items: [JSONValue]) -> [JSONValue] {
        items.map { item in
            guard case .object(var fields) = item else { return item }
            fields["apiVersion"] = nil
            fields["kind"] = nil
            return .object(fields)
        }.sorted { ($0["metadata"]?["name"]?.stringValue ?? "") < ($1["metadata"]?["name"]?.stringValue ?? "") }
    }

    /// Expects `GET /api/v1/namespaces` to fail with `kind` and `text` in the detail.
    static func failure(of api: KubeAPI, _ kind: KubeError.Kind, _ text: String, _ ifNot: String) async throws -> KubeError? {
        do {
            _ = try await api.get("/api/v1/namespaces")
            Issue.record(Comment(rawValue: ifNot))
            return nil
        } catch let error as KubeError {
            #expect(error.kind == kind && error.detail.contains(text), "\(error)")
            return error
        }
    }

    @Test("reads the same objects as `kubectl get -o json` (core, CRD, label and field selectors)")
    func crossCheck() async throws {
        let kubectl = Kubectl(
            runner: LocalRunner(environment: testbed.processEnvironment), kubeconfig: try testbed.require("KUBECONFIG"), timeout: .seconds(30))
        let crds = try testbed.require("KH_TESTBED_KUBE_CRDS")
        try await kubectl.apply(yaml: try String(contentsOfFile: crds + "/kargo.yaml", encoding: .utf8))
        _ = try await kubectl.wait(for: CustomResourceDefinition.self, name: "stages.kargo.akuity.io", timeout: .seconds(20)) { $0.isEstablished }
        let ns = "kubeapi-\(UUID().uuidString.lowercased().prefix(8))"
        try await kubectl.apply(
            yaml: """
                apiVersion: v1
                kind: Namespace
                metadata: {name: \(ns)}
                ---
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: one, namespace: \(ns), labels: {tier: web}}
                data: {a: "1"}
                ---
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: two, namespace: \(ns), labels: {tier: db}}
                data: {b: "2"}
                ---
                apiVersion: kargo.akuity.io/v1alpha1
                kind: Stage
                metadata: {name: test, namespace: \(ns)}
                spec: {requestedFreight: [{origin: {kind: Warehouse, name: w}, sources: {direct: true}}]}

                """)
        defer { _ = try? LocalRunnerSync.run(["kubectl", "--kubeconfig", kubectl.kubeconfig!, "delete", "namespace", ns, "--wait=false"]) }
        let api = try api(try kubeconfig(cluster: "certificate-authority: \"\(ca)\"", user: tokenUser))
        let cases: [([String], String, [(String, String)])] = [
            (["get", "configmaps", "-n", ns], "/api/v1/namespaces/\(ns)/configmaps", []),
            (["get", "configmaps", "-n", ns, "-l", "tier=web"], "/api/v1/namespaces/\(ns)/configmaps", [("labelSelector", "tier=web")]),
            (
                ["get", "configmaps", "-n", ns, "--field-selector", "metadata.name=two"], "/api/v1/namespaces/\(ns)/configmaps",
                [("fieldSelector", "metadata.name=two")]
            ),
            (["get", "stages.kargo.akuity.io", "-n", ns], "/apis/kargo.akuity.io/v1alpha1/namespaces/\(ns)/stages", []),
        ]
        for (args, path, query) in cases {
            let viaKubectl = try KhJSON.decoder().decode(KubeList<JSONValue>.self, from: try await kubectl.run(args + ["-o", "json"])).items
            let viaAPI: [JSONValue] = try await api.items(path, query: query)
            #expect(!viaAPI.isEmpty, "\(path)")
            #expect(Self.comparable(viaAPI) == Self.comparable(viaKubectl), "\(args.joined(separator: " "))")
        }
        let one: ConfigMap = try await api.object("/api/v1/namespaces/\(ns)/configmaps/one")
        #expect(one.data?["a"] == "1")
        do {
            let _: ConfigMap = try await api.object("/api/v1/namespaces/\(ns)/configmaps/nope")
            Issue.record("read a ConfigMap that does not exist")
        } catch let error as KubeError {
            #expect(error.kind == .notFound && error.command == "GET /api/v1/namespaces/\(ns)/configmaps/nope", "\(error)")
        }
    }

    @Test("certificate-authority-data works as the CA file does; insecure-skip-tls-verify skips the check")
    func caDataAndFile() async throws {
        let pem = try Data(contentsOf: URL(fileURLWithPath: ca))
        for cluster in [
            "certificate-authority: \"\(ca)\"", "certificate-authority-data: \(pem.base64EncodedString())", "insecure-skip-tls-verify: true",
        ] {
            let api = try api(try kubeconfig(cluster: cluster, user: tokenUser))
            let namespaces: [JSONValue] = try await api.items("/api/v1/namespaces")
            #expect(namespaces.contains { $0["metadata"]?["name"]?.stringValue == "default" }, "\(cluster)")
        }
    }

    @Test("a CA that did not sign the server's certificate fails with a TLS error")
    func wrongCA() async throws {
        // Another CA, made here with openssl.
        let key = dir.path + "/other-ca.key"
        let cert = dir.path + "/other-ca.crt"
        let made = try await LocalRunner().run(
            Command(
                "openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=other",
                ]),
            options: RunOptions(timeout: .seconds(20)))
        #expect(made.exitCode == 0, "\(made.stderrText)")
        for cluster in [
            "certificate-authority: \"\(cert)\"",
            "certificate-authority-data: \(try Data(contentsOf: URL(fileURLWithPath: cert)).base64EncodedString())",
        ] {
            let api = try api(try kubeconfig(cluster: cluster, user: tokenUser))
            _ = try await Self.failure(of: api, .unreachable, "TLS failed", "a server certificate from another CA was accepted")
        }
    }

    @Test("tls-server-name: the certificate is checked against it, the connection goes to the server")
    func tlsServerName() async throws {
        let good = try api(try kubeconfig(cluster: "certificate-authority: \"\(ca)\", tls-server-name: localhost", user: tokenUser))
        _ = try await good.get("/api/v1/namespaces")
        let bad = try api(try kubeconfig(cluster: "certificate-authority: \"\(ca)\", tls-server-name: other.example.invalid", user: tokenUser))
        _ = try await Self.failure(of: bad, .unreachable, "TLS failed", "a certificate for 127.0.0.1/localhost passed as other.example.invalid")
    }

    @Test("a wrong token is unauthorized; the token never shows in the error")
    func wrongToken() async throws {
        let redactor = Redactor()
        let wrong = "wrong-\(UUID().uuidString)"
        let api = try api(try kubeconfig(cluster: "certificate-authority: \"\(ca)\"", user: "token: \(wrong)"), redactor: redactor)
        let error = try await Self.failure(of: api, .unauthorized, "401", "a wrong token was accepted")
        #expect(error.map { !$0.message.contains(wrong) } == true && !redactor.redact(wrong).contains(wrong))
        // The same through tokenFile, with the right token.
        let file = try dir.write("token", token + "\n")
        let right = try self.api(try kubeconfig(cluster: "certificate-authority: \"\(ca)\"", user: "tokenFile: \"\(file)\""))
        _ = try await right.get("/api/v1/namespaces")
    }

    @Test("24 GETs at once over one client all answer")
    func concurrentReads() async throws {
        let api = try api(try kubeconfig(cluster: "certificate-authority: \"\(ca)\"", user: tokenUser))
        let responses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<24 { group.addTask { try await api.get("/api/v1/namespaces").count } }
            var sizes: [Int] = []
            for try await size in group { sizes.append(size) }
            return sizes
        }
        #expect(responses.count == 24 && responses.allSatisfy { $0 > 0 })
    }
}

/// Client certificates against a real TLS peer that demands one: `openssl s_server -Verify 1
/// -www` (the emulator itself only takes tokens), with the testbed's server certificate and
/// a client CA made here.
@Suite("KubeAPI with a client certificate, against openssl s_server")
struct KubeAPIClientCertificateTests {
    let dir = TemporaryDirectory()

    func openssl(_ arguments: [String]) async throws {
        let result = try await LocalRunner().run(Command("openssl", arguments), options: RunOptions(timeout: .seconds(20)))
        guard result.exitCode == 0 else { throw SetupError("openssl \(arguments.first ?? ""): \(result.stderrText)") }
    }

    @Test("client-certificate(-data) and client-key(-data) are presented; without them the server refuses")
    func clientCertificate() async throws {
        let testbed = try Testbed.load()
        let tls = try testbed.require("KH_TESTBED_DIR") + "/kube/tls"
        let d = dir.path
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try await openssl(
            ["req", "-x509"] + ec + ["-keyout", "\(d)/client-ca.key", "-out", "\(d)/client-ca.crt", "-days", "1", "-subj", "/CN=client-ca"])
        try await openssl(["req"] + ec + ["-keyout", "\(d)/client.key", "-out", "\(d)/client.csr", "-subj", "/CN=kh-client"])
        try await openssl([
            "x509", "-req", "-in", "\(d)/client.csr", "-CA", "\(d)/client-ca.crt", "-CAkey", "\(d)/client-ca.key", "-CAcreateserial", "-out",
            "\(d)/client.crt", "-days", "1",
        ])
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = [
            "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", "\(tls)/server.crt", "-key", "\(tls)/server.key", "-CAfile",
            "\(d)/client-ca.crt", "-Verify", "1", "-www",
        ]
        let output = Pipe()
        server.standardOutput = output
        server.standardError = FileHandle.nullDevice
        server.standardInput = FileHandle.nullDevice
        try server.run()
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        // "ACCEPT 127.0.0.1:PORT" once it listens.
        var seen = ""
        func acceptLine() -> Substring? { seen.split(separator: "\n").first { $0.hasPrefix("ACCEPT ") && seen.contains($0 + "\n") } }
        while acceptLine() == nil, seen.count < 4096, let chunk = try output.fileHandleForReading.read(upToCount: 1), !chunk.isEmpty {
            seen += String(decoding: chunk, as: UTF8.self)
        }
        guard let port = acceptLine()?.split(separator: ":").last.map(String.init), Int(port) != nil else {
            throw SetupError("openssl s_server did not say its port: \(seen)")
        }
        let base64 = { (file: String) in try Data(contentsOf: URL(fileURLWithPath: "\(d)/\(file)")).base64EncodedString() }
        let users = [
            ("files", "client-certificate: \"\(d)/client.crt\", client-key: \"\(d)/client.key\"", true),
            ("data", "client-certificate-data: \(try base64("client.crt")), client-key-data: \(try base64("client.key"))", true),
            ("none", "username: nobody, password: not-a-certificate", false),
        ]
        for (label, user, accepted) in users {
            let config = try dir.write(
                "kubeconfig-\(label)",
                """
                apiVersion: v1
                kind: Config
                clusters: [{name: s, cluster: {server: "https://127.0.0.1:\(port)", certificate-authority: "\(tls)/ca.crt"}}]
                users: [{name: u, user: {\(user)}}]
                contexts: [{name: s, context: {cluster: s, user: u}}]
                current-context: s

                """)
            let redactor = Redactor()
            let connection = try KubeConfigLoader.resolve(kubeconfig: config, context: nil, environment: [:], redactor: redactor)
            let api = KubeAPI(connection: connection, timeout: .seconds(10), redactor: redactor)
            do {
                let page = String(decoding: try await api.get("/"), as: UTF8.self)
                #expect(accepted, "\(label): the server answered without a client certificate")
                #expect(page.contains("<HTML>"), "\(label): \(page.prefix(200))")
            } catch let error as KubeError {
                #expect(!accepted, "\(label): \(error)")
                #expect(error.kind == .unreachable, "\(label): \(error)")
            }
            if label == "data" {
                let key = try base64("client.key")
                #expect(connection.summary.contains("client certificate") && !connection.summary.contains(key))
                #expect(!redactor.redact(key).contains(key))
            }
        }
    }
}

/// Runs a command to completion from synchronous code (cleanup in `defer`).
enum LocalRunnerSync {
    static func run(_ argv: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
    }
}
