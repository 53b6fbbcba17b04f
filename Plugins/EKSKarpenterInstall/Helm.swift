import Foundation
import KhCore
import KhProcess

/// Every status a Helm release can have (Helm 3 and 4 `release.Status`).
public enum HelmReleaseStatus: String, Codable, Sendable, CaseIterable {
    case unknown, deployed, uninstalled, superseded, failed, uninstalling
    case pendingInstall = "pending-install"
    case pendingUpgrade = "pending-upgrade"
    case pendingRollback = "pending-rollback"

    /// An operation holds the release (Helm refuses another one meanwhile).
    public var isPending: Bool { [.pendingInstall, .pendingUpgrade, .pendingRollback, .uninstalling].contains(self) }
}

/// The release as `helm status -o json` and `helm list -o json` describe it.
public struct HelmRelease: Sendable, Equatable {
    public var name: String
    public var namespace: String
    /// The raw status text (kept even when kh does not know it).
    public var statusText: String
    public var revision: Int
    public var chartVersion: String?
    public var appVersion: String?
    /// `info.last_deployed`: when the last operation on the release started.
    public var lastDeployed: Date?

    public init(
        name: String, namespace: String, statusText: String, revision: Int, chartVersion: String? = nil, appVersion: String? = nil,
        lastDeployed: Date? = nil
    ) {
        self.name = name
        self.namespace = namespace
        self.statusText = statusText
        self.revision = revision
        self.chartVersion = chartVersion
        self.appVersion = appVersion
        self.lastDeployed = lastDeployed
    }

    public var status: HelmReleaseStatus { HelmReleaseStatus(rawValue: statusText) ?? .unknown }
}

/// What `helm upgrade --install` is asked to do.
public struct HelmUpgradeRequest: Sendable, Equatable {
    public var release: String
    public var chart: String
    public var version: String
    public var namespace: String
    public var values: [(String, String)]
    public var timeout: Duration
    public var rollbackOnFailure: Bool

    public static func == (a: HelmUpgradeRequest, b: HelmUpgradeRequest) -> Bool {
        a.release == b.release && a.chart == b.chart && a.version == b.version && a.namespace == b.namespace
            && a.values.map { "\($0)=\($1)" } == b.values.map { "\($0)=\($1)" } && a.timeout == b.timeout
            && a.rollbackOnFailure == b.rollbackOnFailure
    }
}

/// How a helm command ended.
public struct HelmOutcome: Sendable, Equatable {
    public var ok: Bool
    /// `exit 1`, `timed out after 10m`.
    public var summary: String
    /// The last lines helm printed on stderr (its error).
    public var message: String
}

/// The installed Helm's version, from `helm version --short` (`v3.14.4+g81c902a`).
public struct HelmVersion: Sendable, Equatable {
    public var raw: String
    public var major: Int

    public init?(short: String) {
        let text = short.trimmingCharacters(in: .whitespacesAndNewlines)
        let digits = text.drop { $0 == "v" }.prefix { $0.isNumber }
        guard let major = Int(digits) else { return nil }
        self.raw = text
        self.major = major
    }

    /// The flag that rolls a failed install or upgrade back: `--atomic` up to Helm 3,
    /// `--rollback-on-failure` from Helm 4 (where `install` no longer knows `--atomic`).
    public var rollbackFlag: String { major >= 4 ? "--rollback-on-failure" : "--atomic" }
}

/// kh's access to Helm. The live implementation runs the `helm` binary; tests run the
/// same implementation against a stand-in executable.
public protocol HelmClient: Sendable {
    /// `helm version --short`.
    func version() async throws -> HelmVersion
    /// `helm status RELEASE -n NS -o json`; nil when no such release exists.
    func status(release: String, namespace: String) async throws -> HelmRelease?
    /// `helm list -n NS -a -o json`: releases in every state.
    func list(namespace: String) async throws -> [HelmRelease]
    /// `helm upgrade --install … --wait --timeout T` plus the rollback flag of `version`.
    func upgradeInstall(_ request: HelmUpgradeRequest, version: HelmVersion) async throws -> HelmOutcome
    /// The same client, logging helm's output lines to `path`.
    func logging(to path: String?) -> any HelmClient
}

/// A helm command that could not run or answered something unreadable.
public struct HelmError: KhReportableError {
    public var command: String
    public var detail: String
    public var missing: Bool
    public var exitCode: KhExitCode { missing ? .blocked : .external }
    public var message: String { "`\(command)`: \(detail)" }
    public var hint: String? { missing ? "install helm (3 or 4) or put it on PATH" : nil }
}

/// The `helm` binary, run through a ``CommandRunner`` (stdin closed, deadline, own group).
public struct LiveHelm: HelmClient {
    public var runner: any CommandRunner
    public var executable: String
    public var kubeconfig: String?
    public var context: String?
    public var redactor: Redactor?
    public var logPath: String?
    /// Deadline of the quick calls (version, status, list).
    public var timeout: Duration

    public init(
        runner: any CommandRunner, executable: String = "helm", kubeconfig: String? = nil, context: String? = nil, redactor: Redactor? = nil,
        logPath: String? = nil, timeout: Duration = .seconds(60)
    ) {
        self.runner = runner
        self.executable = executable
        self.kubeconfig = kubeconfig
        self.context = context
        self.redactor = redactor
        self.logPath = logPath
        self.timeout = timeout
    }

    public func logging(to path: String?) -> any HelmClient {
        var copy = self
        copy.logPath = path
        return copy
    }

    var connection: [String] {
        var args: [String] = []
        if let kubeconfig { args += ["--kubeconfig", kubeconfig] }
        if let context { args += ["--kube-context", context] }
        return args
    }

    func run(_ arguments: [String], timeout: Duration) async throws -> CommandResult {
        let command = Command(executable, arguments)
        do {
            return try await runner.run(
                command, options: RunOptions(timeout: timeout, killGrace: .seconds(10), logPath: logPath, redactor: redactor))
        } catch let error as ProcessError where error.kind == .notFound {
            throw HelmError(command: command.displayString, detail: "helm not found: \(error.message)", missing: true)
        }
    }

    public func version() async throws -> HelmVersion {
        let result = try await run(["version", "--short"], timeout: timeout)
        guard result.succeeded, let version = HelmVersion(short: result.stdoutText) else {
            throw HelmError(
                command: "helm version --short", detail: "\(result.termination): \(result.stdoutText)\(result.stderrText)", missing: false)
        }
        return version
    }

    public func status(release: String, namespace: String) async throws -> HelmRelease? {
        let args = ["status", release, "-n", namespace, "-o", "json"] + connection
        let result = try await run(args, timeout: timeout)
        if !result.succeeded {
            if result.stderrText.contains("not found") { return nil }
            throw HelmError(command: Shell.join(["helm"] + args), detail: "\(result.termination): \(lastLines(result.stderrText))", missing: false)
        }
        do {
            return try HelmJSON.status(result.stdout)
        } catch {
            throw HelmError(command: Shell.join(["helm"] + args), detail: "unreadable output: \(error)", missing: false)
        }
    }

    public func list(namespace: String) async throws -> [HelmRelease] {
        let args = ["list", "-n", namespace, "-a", "-o", "json"] + connection
        let result = try await run(args, timeout: timeout)
        guard result.succeeded else {
            throw HelmError(command: Shell.join(["helm"] + args), detail: "\(result.termination): \(lastLines(result.stderrText))", missing: false)
        }
        do {
            return try HelmJSON.list(result.stdout, namespace: namespace)
        } catch {
            throw HelmError(command: Shell.join(["helm"] + args), detail: "unreadable output: \(error)", missing: false)
        }
    }

    /// The arguments of `helm upgrade --install` for a request.
    public static func upgradeArguments(_ request: HelmUpgradeRequest, version: HelmVersion) -> [String] {
        var args = [
            "upgrade", "--install", request.release, request.chart, "--version", request.version, "--namespace", request.namespace,
            "--create-namespace",
        ]
        for (key, value) in request.values { args += ["--set", "\(key)=\(value)"] }
        args += ["--wait", "--timeout", goDuration(request.timeout)]
        if request.rollbackOnFailure { args.append(version.rollbackFlag) }
        return args
    }

    public func upgradeInstall(_ request: HelmUpgradeRequest, version: HelmVersion) async throws -> HelmOutcome {
        let args = Self.upgradeArguments(request, version: version) + connection
        // Helm's own --timeout bounds the wait; kh's deadline is a minute beyond it.
        let result = try await run(args, timeout: request.timeout + .seconds(60))
        let summary = result.timedOut ? "timed out after \(result.duration.humanDescription)" : "\(result.termination)"
        return HelmOutcome(
            ok: result.succeeded, summary: summary, message: lastLines(result.stderrText.isEmpty ? result.stdoutText : result.stderrText))
    }

    func lastLines(_ text: String, count: Int = 5) -> String {
        text.split(separator: "\n").suffix(count).joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `10m`, `90s`, `1h2m3s`: Go's duration syntax, as helm's --timeout reads it.
    public static func goDuration(_ duration: Duration) -> String {
        let total = Int(duration.seconds.rounded(.up))
        let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60)
        var text = ""
        if h > 0 { text += "\(h)h" }
        if m > 0 { text += "\(m)m" }
        if s > 0 || text.isEmpty { text += "\(s)s" }
        return text
    }
}

/// Helm's documented JSON output.
public enum HelmJSON {
    struct Status: Decodable {
        var name: String
        var namespace: String?
        var version: Int?
        var info: Info?
        var chart: Chart?
        struct Info: Decodable {
            var status: String?
            var last_deployed: String?
            var first_deployed: String?
        }
        struct Chart: Decodable {
            var metadata: Metadata?
            struct Metadata: Decodable {
                var version: String?
                var appVersion: String?
            }
        }
    }

    struct ListEntry: Decodable {
        var name: String
        var namespace: String?
        var revision: String?
        var status: String?
        var chart: String?
        var app_version: String?
        var updated: String?
    }

    /// `helm status -o json`.
    public static func status(_ data: Data) throws -> HelmRelease {
        let s = try JSONDecoder().decode(Status.self, from: data)
        return HelmRelease(
            name: s.name, namespace: s.namespace ?? "", statusText: s.info?.status ?? "unknown", revision: s.version ?? 0,
            chartVersion: s.chart?.metadata?.version, appVersion: s.chart?.metadata?.appVersion,
            lastDeployed: (s.info?.last_deployed).flatMap(Timestamp.parse))
    }

    /// `helm list -o json` (revision is a string there; the chart is `name-version`).
    public static func list(_ data: Data, namespace: String) throws -> [HelmRelease] {
        let entries = try JSONDecoder().decode([ListEntry].self, from: data)
        return entries.map { e in
            let chartVersion = e.chart.flatMap { chart in chart.split(separator: "-").last.map(String.init) }
            return HelmRelease(
                name: e.name, namespace: e.namespace ?? namespace, statusText: e.status ?? "unknown", revision: Int(e.revision ?? "") ?? 0,
                chartVersion: chartVersion, appVersion: e.app_version, lastDeployed: e.updated.flatMap(goTime))
        }
    }

    /// Go's `time.Time.String()` as `helm list` prints `updated`: `2026-01-24 10:00:00.123456789 +0000 UTC`.
    public static func goTime(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count >= 3 else { return Timestamp.parse(text) }
        let offset = String(parts[2])
        guard offset.count == 5 else { return nil }
        let iso = "\(parts[0])T\(parts[1])\(offset.prefix(3)):\(offset.suffix(2))"
        return Timestamp.parse(iso)
    }
}
