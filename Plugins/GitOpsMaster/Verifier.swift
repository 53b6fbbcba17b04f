import Foundation
import KhCore
import KhHTTP
import KhKube
import KhProcess

/// PASS, FAIL or SKIPPED, as V4 prints them.
public enum LevelStatus: String, Codable, Sendable {
    case pass = "PASS"
    case fail = "FAIL"
    case skipped = "SKIPPED"
}

/// One `[x]` / `[ ]` line.
public struct CheckLine: Codable, Sendable, Equatable {
    public var text: String
    public var passed: Bool
}

/// One level's result.
public struct LevelResult: Codable, Sendable, Equatable {
    public var level: Int
    public var title: String
    public var status: LevelStatus
    public var checks: [CheckLine]
}

/// The V4 report.
public struct VerificationReport: Codable, Sendable, Equatable {
    public var stage: String
    public var timestamp: Date
    public var levels: [LevelResult]
    /// The first failing level, nil when none failed.
    public var failedLevel: Int?
    public var actionRequired: String
    public var overall: LevelStatus { failedLevel == nil ? .pass : .fail }
}

/// Runs the four levels of a stage's verification matrix, stopping at the first failing level.
public struct Verifier: Sendable {
    public var cluster: Cluster
    public var http: HTTPClient
    public var runner: any CommandRunner
    public var clock: KhClock

    public static let titles = [1: "Infrastructure", 2: "Service Health", 3: "Ingress & Auth", 4: "Functional"]

    public init(cluster: Cluster, http: HTTPClient, runner: any CommandRunner, clock: KhClock = .live) {
        self.cluster = cluster
        self.http = http
        self.runner = runner
        self.clock = clock
    }

    /// Verifies `stage` up to `maxLevel` (1–4).
    public func verify(stage: String, matrix: StageVerification, maxLevel: Int = 4) async -> VerificationReport {
        var levels: [LevelResult] = []
        var failed: Int?
        var actions: [String] = []
        var unconfigured: [Int] = []
        for level in 1...4 {
            let title = Self.titles[level]!
            if failed != nil || level > maxLevel {
                levels.append(LevelResult(level: level, title: title, status: .skipped, checks: []))
                continue
            }
            let (checks, action): ([CheckLine], [String])
            switch level {
            case 1: (checks, action) = await level1(matrix.infrastructure)
            case 2: (checks, action) = await level2(matrix.serviceHealth)
            case 3: (checks, action) = await level3(matrix.ingressAuth)
            default: (checks, action) = await level4(matrix.functional)
            }
            if checks.isEmpty {
                unconfigured.append(level)
                levels.append(LevelResult(level: level, title: title, status: .skipped, checks: []))
                continue
            }
            let ok = checks.allSatisfy(\.passed)
            levels.append(LevelResult(level: level, title: title, status: ok ? .pass : .fail, checks: checks))
            if !ok {
                failed = level
                actions += action
            }
        }
        var action = actions.isEmpty ? "None" : actions.joined(separator: "; ")
        if failed == nil && !unconfigured.isEmpty {
            action =
                "None (levels \(unconfigured.map(String.init).joined(separator: ", ")) have no checks in gitops.verification.\(stage): verification is incomplete)"
        }
        return VerificationReport(stage: stage, timestamp: clock.now(), levels: levels, failedLevel: failed, actionRequired: action)
    }

    func level1(_ l: StageVerification.Level1) async -> ([CheckLine], [String]) {
        var checks: [CheckLine] = []
        var actions: [String] = []
        for expectation in l.pods {
            var args = ["get", "pods", "-n", expectation.namespace, "-o", "json"]
            if let selector = expectation.selector { args += ["-l", selector] }
            let where_ = expectation.namespace + (expectation.selector.map { " \($0)" } ?? "")
            do {
                let pods = try await cluster.items(args, as: Pod.self)
                let running = pods.filter { $0.status?.phase == "Running" && $0.isReady }.count
                let ok = running >= expectation.expected
                checks.append(CheckLine(text: "Pods running: \(running)/\(expectation.expected) (\(where_))", passed: ok))
                if !ok { actions.append("start the missing pods in \(where_): \(cluster.display(["get", "pods", "-n", expectation.namespace]))") }
            } catch {
                checks.append(CheckLine(text: "Pods running: ?/\(expectation.expected) (\(where_)): \(Self.describe(error))", passed: false))
                actions.append("make \(cluster.display(args)) work")
            }
        }
        if !l.crds.isEmpty {
            var missing: [String] = []
            for crd in l.crds {
                if (try? await cluster.kubectl.getIfPresent(CustomResourceDefinition.self, name: crd)) == nil { missing.append(crd) }
            }
            checks.append(
                CheckLine(
                    text: missing.isEmpty
                        ? "CRDs installed: \(l.crds.joined(separator: ", "))" : "CRDs installed: \(missing.joined(separator: ", ")) missing",
                    passed: missing.isEmpty))
            if !missing.isEmpty { actions.append("install CRDs \(missing.joined(separator: ", "))") }
        }
        if !l.secrets.isEmpty {
            var missing: [String] = []
            for secret in l.secrets {
                if (try? await cluster.kubectl.getIfPresent(SecretMetadata.self, name: secret.name, namespace: secret.namespace)) == nil {
                    missing.append("\(secret.namespace)/\(secret.name)")
                }
            }
            checks.append(
                CheckLine(
                    text: missing.isEmpty
                        ? "Secrets present: \(l.secrets.map { "\($0.namespace)/\($0.name)" }.joined(separator: ", "))"
                        : "Secrets present: \(missing.joined(separator: ", "))",
                    passed: missing.isEmpty))
            if !missing.isEmpty { actions.append("create secrets \(missing.joined(separator: ", "))") }
        }
        return (checks, actions)
    }

    func level2(_ l: StageVerification.Level2) async -> ([CheckLine], [String]) {
        var checks: [CheckLine] = []
        var actions: [String] = []
        if !l.health.isEmpty {
            var bad: [String] = []
            for check in l.health {
                guard let url = URL(string: expand(check.url)) else {
                    bad.append("\(check.url) (not a URL)")
                    continue
                }
                do {
                    let response = try await http.send(HTTPRequest(.get, url), retry: RetryPolicy.none)
                    if response.status != check.status { bad.append("\(url.absoluteString) answered \(response.status), expected \(check.status)") }
                } catch {
                    bad.append("\(url.absoluteString): \(Self.describe(error))")
                }
            }
            checks.append(
                CheckLine(
                    text: bad.isEmpty ? "Health endpoints responding" : "Health endpoints responding: \(bad.joined(separator: "; "))",
                    passed: bad.isEmpty))
            if !bad.isEmpty { actions.append("fix the services behind \(bad.joined(separator: ", "))") }
        }
        if let prometheus = l.prometheus {
            var active = 0
            var problem: String?
            if let url = URL(string: expand(prometheus.url).trimmingCharacters(in: ["/"]) + "/api/v1/targets?state=active") {
                do {
                    let response = try await http.send(HTTPRequest(.get, url), retry: RetryPolicy.none)
                    if response.isSuccess, let body = try? KhJSON.decoder().decode(JSONValue.self, from: response.body),
                        case .array(let targets)? = body["data"]?["activeTargets"]
                    {
                        active =
                            targets.filter { t in
                                t["health"]?.stringValue == "up" && (prometheus.job == nil || t["labels"]?["job"]?.stringValue == prometheus.job)
                            }.count
                    } else {
                        problem = "answered \(response.status)"
                    }
                } catch {
                    problem = Self.describe(error)
                }
            } else {
                problem = "not a URL"
            }
            let ok = problem == nil && active >= prometheus.minActive
            checks.append(
                CheckLine(
                    text: "Prometheus targets: \(active) active\(prometheus.job.map { " (job \($0))" } ?? "")\(problem.map { ": \($0)" } ?? "")",
                    passed: ok))
            if !ok {
                actions.append("check Prometheus scrape targets in \(cluster.environment.monitoringNamespace) (ServiceMonitors, network policies)")
            }
        }
        return (checks, actions)
    }

    func level3(_ l: StageVerification.Level3) async -> ([CheckLine], [String]) {
        var checks: [CheckLine] = []
        var actions: [String] = []
        guard !l.ingresses.isEmpty else { return ([], []) }
        let ingresses = (try? await cluster.items(["get", "ingress", "-A", "-o", "json"], as: Ingress.self)) ?? []
        for check in l.ingresses {
            let host = expand(check.host)
            let found = ingresses.first { $0.hosts.contains(host) }
            checks.append(
                CheckLine(
                    text:
                        "Ingress host \(host)\(found.map { " (\($0.metadata.namespace ?? "")/\($0.metadata.name))" } ?? " not served by any ingress")",
                    passed: found != nil))
            if found == nil { actions.append("add an ingress rule for \(host)") }
            guard let expected = check.authRedirect else { continue }
            let target = expand(check.url ?? "https://\(host)/")
            guard let url = URL(string: target) else {
                checks.append(CheckLine(text: "Auth redirect: \(target) is not a URL", passed: false))
                continue
            }
            do {
                let response = try await http.send(HTTPRequest(.get, url), retry: RetryPolicy.none)
                let location = response.headers["Location"] ?? ""
                let ok = (300..<400).contains(response.status) && location.contains(expand(expected))
                checks.append(
                    CheckLine(
                        text: ok
                            ? "Auth redirect to \(location)"
                            : "Auth redirect: \(target) answered \(response.status)\(location.isEmpty ? "" : " → \(location)")", passed: ok))
                if !ok { actions.append("put \(host) behind the SSO (expected a redirect to \(expected))") }
            } catch {
                checks.append(CheckLine(text: "Auth redirect: \(target): \(Self.describe(error))", passed: false))
                actions.append("make \(target) reachable")
            }
        }
        return (checks, actions)
    }

    func level4(_ l: StageVerification.Level4) async -> ([CheckLine], [String]) {
        var checks: [CheckLine] = []
        var actions: [String] = []
        for command in l.commands {
            guard let executable = command.run.first else { continue }
            do {
                let result = try await runner.run(
                    Command(executable, Array(command.run.dropFirst()).map(expand)), options: RunOptions(timeout: command.timeout.duration))
                let ok = result.succeeded
                let tail = result.stderrText.split(separator: "\n").last.map(String.init) ?? ""
                checks.append(
                    CheckLine(
                        text: ok
                            ? command.name
                            : "\(command.name): \(result.timedOut ? "timed out" : "exit \(result.exitCode ?? -1)")\(tail.isEmpty ? "" : ": \(tail)")",
                        passed: ok))
                if !ok { actions.append("fix \(command.name) (\(Shell.join(command.run)))") }
            } catch {
                checks.append(CheckLine(text: "\(command.name): \(Self.describe(error))", passed: false))
                actions.append("make \(executable) runnable")
            }
        }
        return (checks, actions)
    }

    /// `${DOMAIN}`, `${APP_NS}`, `${MONITORING_NS}`, `${KARGO_NS}`, `${ARGOCD_NS}` replaced.
    func expand(_ text: String) -> String {
        let env = cluster.environment
        var out = text
        for (key, value) in [
            ("${DOMAIN}", env.domain), ("${APP_NS}", env.appNamespace), ("${MONITORING_NS}", env.monitoringNamespace),
            ("${KARGO_NS}", env.kargoNamespace),
            ("${ARGOCD_NS}", env.argocdNamespace),
        ] {
            if let value { out = out.replacingOccurrences(of: key, with: value) }
        }
        return out
    }

    static func describe(_ error: any Error) -> String { (error as? any KhReportableError)?.message ?? "\(error)" }
}
