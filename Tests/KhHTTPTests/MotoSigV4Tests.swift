import Foundation
import KhCore
import KhTestSupport
import Testing

@testable import KhHTTP

/// `moto` in server mode on 127.0.0.1 with signature checks on: an IAM user with an
/// allow-all policy and an access key, and a role that user may assume, are made
/// while moto still accepts anything; then `/moto-api/reset-auth` turns on SigV4
/// verification for every later request.
final class MotoServer: Sendable {
    @TaskLocal static var current: MotoServer?

    static let account = "123456789012"
    static let userName = "kh-tester"
    static let roleName = "kh-role"

    let process: ServerProcess
    let port: Int
    /// The IAM user's access key.
    let user: AWSCredentials
    let redactor = Redactor()
    private let directory: TemporaryDirectory

    var url: URL { URL(string: "http://127.0.0.1:\(port)/")! }

    init() async throws {
        // moto must be installed: fail loudly, never skip.
        let check = try ServerProcess(
            ["python3", "-c", "import moto, moto.server; print(moto.__version__)"],
            logPath: NSTemporaryDirectory() + "/kh-moto-check-\(getpid()).log",
            captureStdout: true)
        let version = try? check.readLine(deadline: .seconds(30))
        let checkLog = check.log
        check.stop()
        guard let version, !version.isEmpty else {
            let reason = checkLog.split(separator: "\n").last.map(String.init) ?? "no output"
            throw KhError.blocked(
                "moto is not installed for python3 (`import moto` failed: \(reason)); "
                    + "install it with `make deps` or `python3 -m pip install 'moto[server]==5.2.1'`")
        }

        directory = TemporaryDirectory("kh-moto")
        var started: (ServerProcess, Int)?
        var lastError = ""
        for _ in 0..<3 where started == nil {
            let port = closedPort()
            let process = try ServerProcess(
                ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], logPath: directory.path + "/moto.log", captureStdout: false)
            if try await Self.waitReady(port: port, process: process, deadline: .seconds(30)) {
                started = (process, port)
            } else {
                lastError = process.log
                process.stop()
            }
        }
        guard let (process, port) = started else { throw KhError.external("moto did not start on 127.0.0.1 within 30 s: \(lastError)") }
        self.process = process
        self.port = port

        // Setup, before signatures are checked (any credentials pass).
        let setup = HTTPClient(
            configuration: .init(
                retry: .none,
                authentication: .awsSigV4(
                    AWSCredentials(accessKeyID: "AKIASETUPSETUPSETUP0", secretAccessKey: "setup-secret"), region: "us-east-1", service: "iam")))
        let endpoint = URL(string: "http://127.0.0.1:\(port)/")!
        func iam(_ fields: KeyValuePairs<String, String>) async throws -> String {
            try await setup.send(HTTPRequest.form(endpoint, fields: fields)).requireSuccess().text
        }
        let allowAll = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        let trust =
            #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::\#(Self.account):user/\#(Self.userName)"},"Action":"sts:AssumeRole"}]}"#
        _ = try await iam(["Action": "CreateUser", "UserName": Self.userName, "Version": "2010-05-08"])
        _ = try await iam([
            "Action": "PutUserPolicy", "UserName": Self.userName, "PolicyName": "all", "PolicyDocument": allowAll, "Version": "2010-05-08",
        ])
        _ = try await iam(["Action": "CreateRole", "RoleName": Self.roleName, "AssumeRolePolicyDocument": trust, "Version": "2010-05-08"])
        let key = try await iam(["Action": "CreateAccessKey", "UserName": Self.userName, "Version": "2010-05-08"])
        let id = try #require(xmlValue("AccessKeyId", in: key))
        let secret = try #require(xmlValue("SecretAccessKey", in: key))
        user = AWSCredentials(accessKeyID: id, secretAccessKey: secret, redactor: redactor)

        // From here on moto checks every signature.
        let reset = try await setup.send(
            HTTPRequest(.post, endpoint.appendingPathComponent("moto-api/reset-auth"), headers: ["Content-Type": "text/plain"], body: Data("0".utf8)))
        guard reset.status == 200 else { throw KhError.external("moto reset-auth answered \(reset.status): \(reset.text)") }
    }

    func stop() { process.stop() }

    private static func waitReady(port: Int, process: ServerProcess, deadline: Duration) async throws -> Bool {
        let client = HTTPClient(configuration: .init(connectTimeout: .milliseconds(500), timeout: .seconds(2), retry: .none))
        let until = ContinuousClock.now + deadline
        while ContinuousClock.now < until {
            guard process.isAlive else { return false }
            if let response = try? await client.send(HTTPRequest(.get, URL(string: "http://127.0.0.1:\(port)/moto-api/")!)), response.status == 200 {
                return true
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// A client signing for `service` with `credentials` (the user's by default).
    func client(service: String, credentials: AWSCredentials? = nil) -> HTTPClient {
        HTTPClient(
            configuration: .init(retry: .none, authentication: .awsSigV4(credentials ?? user, region: "us-east-1", service: service)),
            redactor: redactor)
    }
}

/// The text of the first `<tag>…</tag>`.
func xmlValue(_ tag: String, in xml: String) -> String? {
    guard let open = xml.range(of: "<\(tag)>"), let close = xml.range(of: "</\(tag)>", range: open.upperBound..<xml.endIndex) else { return nil }
    return String(xml[open.upperBound..<close.lowerBound])
}

struct MotoServerTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try await MotoServer()
        defer { server.stop() }
        try await MotoServer.$current.withValue(server) { try await function() }
    }
}

extension Trait where Self == MotoServerTrait {
    /// moto on 127.0.0.1 with SigV4 verification on, for the suite (``MotoServer/current``).
    static var moto: Self { MotoServerTrait() }
}

@Suite("AWS SigV4 (CURLOPT_AWS_SIGV4) accepted by moto", .moto)
struct MotoSigV4Tests {
    let moto: MotoServer

    init() throws {
        moto = try #require(MotoServer.current, "the moto trait did not run")
    }

    private var callerIdentity: HTTPRequest {
        HTTPRequest.form(moto.url, fields: ["Action": "GetCallerIdentity", "Version": "2011-06-15"])
    }

    @Test("STS GetCallerIdentity signed with the user's key answers 200 with the user's ARN")
    func getCallerIdentity() async throws {
        let response = try await moto.client(service: "sts").send(callerIdentity)
        #expect(response.status == 200, "\(response.text)")
        #expect(xmlValue("Arn", in: response.text) == "arn:aws:iam::\(MotoServer.account):user/\(MotoServer.userName)")
        #expect(xmlValue("Account", in: response.text) == MotoServer.account)
    }

    @Test("a wrong secret is refused with SignatureDoesNotMatch, and the error never shows a secret")
    func wrongSecret() async throws {
        let wrong = moto.user.secretAccessKey.withValue { String($0.reversed()) }
        let credentials = AWSCredentials(accessKeyID: moto.user.accessKeyID, secretAccessKey: wrong, redactor: moto.redactor)
        let response = try await moto.client(service: "sts", credentials: credentials).send(callerIdentity)
        #expect(response.status == 403)
        #expect(xmlValue("Code", in: response.text) == "SignatureDoesNotMatch")
        let error = #expect(throws: HTTPError.self) { try response.requireSuccess() }
        #expect(error?.kind == .status(403))
        let secret = moto.user.secretAccessKey.withValue { $0 }
        for text in [error.map { "\($0)" } ?? "", String(reflecting: response.request), "\(credentials)"] {
            #expect(!text.contains(wrong) && !text.contains(secret))
        }
    }

    @Test("an unknown access key is refused with InvalidClientTokenId")
    func unknownKey() async throws {
        let credentials = AWSCredentials(accessKeyID: "AKIANOSUCHKEY0000000", secretAccessKey: "no-such-secret-value")
        let response = try await moto.client(service: "sts", credentials: credentials).send(callerIdentity)
        #expect(response.status == 403)
        #expect(xmlValue("Code", in: response.text) == "InvalidClientTokenId")
    }

    @Test("SQS (JSON protocol): CreateQueue, then ListQueues finds it")
    func sqsJSON() async throws {
        struct Created: Decodable { var QueueUrl: String }
        struct Listed: Decodable { var QueueUrls: [String]? }
        let client = moto.client(service: "sqs")
        let name = "kh-\(UUID().uuidString.prefix(8).lowercased())"
        func headers(_ action: String) -> HTTPHeaders { ["Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.\(action)"] }
        let created: Created = try await client.sendJSON(.post, moto.url, body: ["QueueName": name], headers: headers("CreateQueue"))
        #expect(created.QueueUrl.hasSuffix("/\(MotoServer.account)/\(name)"))
        let listed: Listed = try await client.sendJSON(.post, moto.url, body: ["QueueNamePrefix": name], headers: headers("ListQueues"))
        #expect(listed.QueueUrls == [created.QueueUrl])
    }

    @Test("temporary credentials: AssumeRole, then GetCallerIdentity with X-Amz-Security-Token; a wrong token is refused")
    func sessionToken() async throws {
        let assume = HTTPRequest.form(
            moto.url,
            fields: [
                "Action": "AssumeRole", "RoleArn": "arn:aws:iam::\(MotoServer.account):role/\(MotoServer.roleName)", "RoleSessionName": "kh-session",
                "Version": "2011-06-15",
            ])
        let assumed = try await moto.client(service: "sts").send(assume).requireSuccess().text
        let id = try #require(xmlValue("AccessKeyId", in: assumed))
        let secret = try #require(xmlValue("SecretAccessKey", in: assumed))
        let token = try #require(xmlValue("SessionToken", in: assumed))
        #expect(id.hasPrefix("ASIA"))

        let temporary = AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token, redactor: moto.redactor)
        let response = try await moto.client(service: "sts", credentials: temporary).send(callerIdentity)
        #expect(response.status == 200, "\(response.text)")
        #expect(xmlValue("Arn", in: response.text) == "arn:aws:sts::\(MotoServer.account):assumed-role/\(MotoServer.roleName)/kh-session")
        #expect(!"\(temporary)".contains(token))

        let forged = AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: "x" + token)
        let refused = try await moto.client(service: "sts", credentials: forged).send(callerIdentity)
        #expect(refused.status == 403)
        #expect(xmlValue("Code", in: refused.text) == "InvalidClientTokenId")
    }
}
