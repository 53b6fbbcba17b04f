import Foundation
import KhCore
import KhHTTP
import KhKube
import KhProcess

/// A Kargo API call failed (exit 4), or Kargo refused the promotion (the server's message kept).
public struct KargoAPIError: KhReportableError {
    public var call: String
    public var status: Int?
    public var detail: String
    public var exitCode: KhExitCode { .external }
    public var message: String { "Kargo API \(call)\(status.map { " answered \($0)" } ?? " failed"): \(detail)" }
}

/// Which API a promotion went through.
public enum PromotionChannel: String, Codable, Sendable {
    case rest, connect, cli
}

/// The Kargo API: REST (`/v1beta1/...`, Kargo ≥ 1.9), Connect (`/akuity.io.kargo.service.v1alpha1.KargoService/...`,
/// JSON, older servers) or the `kargo` CLI. Promotions are never created with kubectl.
public struct KargoAPI: Sendable {
    public static let connectService = "/akuity.io.kargo.service.v1alpha1.KargoService/"
    /// The first Kargo version that serves the REST API kh uses.
    public static let restSince = SemVer(1, 9, 0)

    public var baseURL: URL?
    public var config: KargoAPIConfig
    public var token: String?
    public var http: HTTPClient
    public var runner: any CommandRunner

    public init(baseURL: URL?, config: KargoAPIConfig, token: String?, http: HTTPClient, runner: any CommandRunner) {
        self.baseURL = baseURL
        self.config = config
        self.token = token
        self.http = http
        self.runner = runner
    }

    func url(_ path: String) throws -> URL {
        guard let baseURL, let url = URL(string: baseURL.absoluteString.trimmingCharacters(in: ["/"]) + path) else {
            throw KhError.usage(
                "gitops.kargo_api.url is not set and no domain is known", hint: "set gitops.kargo_api.url (e.g. https://kargo.example.com)")
        }
        return url
    }

    var headers: HTTPHeaders {
        var h: HTTPHeaders = ["Accept": "application/json"]
        if let token { h.set("Authorization", "Bearer " + token) }
        return h
    }

    func send(_ method: HTTPMethod, _ path: String, body: JSONValue?, extra: HTTPHeaders = [:]) async throws -> HTTPResponse {
        let target = try url(path)
        var headers = self.headers.merging(extra)
        var data: Data?
        if let body {
            data = try KhJSON.encoder().encode(body)
            headers.set("Content-Type", "application/json")
        }
        do {
            return try await http.send(HTTPRequest(method, target, headers: headers, body: data, timeout: config.timeout.duration))
        } catch let error as HTTPError {
            throw KargoAPIError(call: "\(method) \(path)", status: nil, detail: error.message)
        }
    }

    /// The server's version and the API kh will use (REST on ≥ 1.9, else Connect).
    public func negotiate() async throws -> (channel: PromotionChannel, version: String?) {
        switch config.protocol {
        case .rest: return (.rest, nil)
        case .connect: return (.connect, nil)
        case .cli: return (.cli, nil)
        case .auto: break
        }
        let rest = try await send(.get, "/v1beta1/system/server-version", body: nil)
        if rest.isSuccess, let info = try? KhJSON.decoder().decode(JSONValue.self, from: rest.body), let version = info["version"]?.stringValue {
            let parsed = SemVer(parsing: version)
            return (parsed.map { $0 >= Self.restSince } ?? true ? .rest : .connect, version)
        }
        let connect = try await send(.post, Self.connectService + "GetVersionInfo", body: [:], extra: ["Connect-Protocol-Version": "1"])
        if connect.isSuccess, let info = try? KhJSON.decoder().decode(JSONValue.self, from: connect.body) {
            return (.connect, info["versionInfo"]?["version"]?.stringValue)
        }
        throw KargoAPIError(call: "server version", status: connect.status, detail: Self.errorText(connect.body))
    }

    /// Asks Kargo to promote `freight` (a name) or `alias` to `stage`; returns the Promotion Kargo created.
    public func promote(project: String, stage: String, freight: String?, alias: String?, channel: PromotionChannel) async throws -> Promotion {
        switch channel {
        case .rest:
            var body: [String: JSONValue] = [:]
            if let freight { body["freight"] = .string(freight) } else if let alias { body["freightAlias"] = .string(alias) }
            let path = "/v1beta1/projects/\(Self.segment(project))/stages/\(Self.segment(stage))/promotions"
            let response = try await send(.post, path, body: .object(body))
            guard response.isSuccess else {
                throw KargoAPIError(call: "POST \(path)", status: response.status, detail: Self.errorText(response.body))
            }
            return try decodePromotion(response.body, call: "POST \(path)")
        case .connect:
            var body: [String: JSONValue] = ["project": .string(project), "stage": .string(stage)]
            if let freight { body["freight"] = .string(freight) } else if let alias { body["freightAlias"] = .string(alias) }
            let path = Self.connectService + "PromoteToStage"
            let response = try await send(.post, path, body: .object(body), extra: ["Connect-Protocol-Version": "1"])
            guard response.isSuccess else {
                throw KargoAPIError(call: "POST \(path)", status: response.status, detail: Self.errorText(response.body))
            }
            guard let wrapper = try? KhJSON.decoder().decode(JSONValue.self, from: response.body), let promotion = wrapper["promotion"] else {
                throw KargoAPIError(call: "POST \(path)", status: response.status, detail: "no promotion in the answer")
            }
            return try decodePromotion(try KhJSON.encoder().encode(promotion), call: "POST \(path)")
        case .cli:
            var args = ["promote", "--project", project, "--stage", stage, "-o", "json"]
            if let freight { args += ["--freight", freight] } else if let alias { args += ["--freight-alias", alias] }
            let result = try await runner.run(Command(config.cli, args), options: RunOptions(timeout: config.timeout.duration))
            guard result.succeeded else {
                throw KargoAPIError(
                    call: Shell.join([config.cli] + args), status: nil,
                    detail: result.timedOut ? "timed out" : result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            return try decodePromotion(result.stdout, call: Shell.join([config.cli] + args))
        }
    }

    func decodePromotion(_ data: Data, call: String) throws -> Promotion {
        do {
            return try KhJSON.decoder().decode(Promotion.self, from: data)
        } catch {
            throw KargoAPIError(call: call, status: nil, detail: "unreadable Promotion: \(error)")
        }
    }

    /// The message of a REST (`{"error": …}`) or Connect (`{"code": …, "message": …}`) error body.
    static func errorText(_ body: Data) -> String {
        if let json = try? KhJSON.decoder().decode(JSONValue.self, from: body) {
            if let error = json["error"]?.stringValue { return error }
            if let message = json["message"]?.stringValue { return (json["code"]?.stringValue.map { "\($0): " } ?? "") + message }
        }
        return String(decoding: body.prefix(300), as: UTF8.self)
    }

    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}

/// A `major.minor.patch` version (`v1.9.0-rc.1` → 1.9.0).
public struct SemVer: Comparable, Sendable, Equatable {
    public var major: Int
    public var minor: Int
    public var patch: Int
    public init(_ major: Int, _ minor: Int, _ patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }
    public init?(parsing text: String) {
        let core = text.drop { $0 == "v" }.split(whereSeparator: { $0 == "-" || $0 == "+" }).first ?? ""
        let parts = core.split(separator: ".").map { Int($0) }
        guard parts.count >= 2, let major = parts[0], let minor = parts[1] else { return nil }
        self.init(major, minor, parts.count > 2 ? (parts[2] ?? 0) : 0)
    }
    public static func < (a: SemVer, b: SemVer) -> Bool { (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch) }
}
