import Foundation
import KhCore
import KhProcess
import KhSSH

/// One check's output on one node.
public struct CheckOutput: Sendable, Codable, Equatable {
    public var id: String
    public var command: String
    public var exitCode: Int32?
    /// stdout then stderr, as captured (at most 64 KiB each; the log has it all).
    public var output: String
    /// The evidence log of this check, relative to the run folder.
    public var log: String?

    public init(id: String, command: String, exitCode: Int32?, output: String, log: String?) {
        self.id = id
        self.command = command
        self.exitCode = exitCode
        self.output = output
        self.log = log
    }
}

/// What triage found on one server.
public struct NodeReport: Sendable, Codable, Equatable {
    public var server: String
    public var ipv4: String?
    public var status: String
    /// Connecting failed (the error as text) or nil.
    public var error: String?
    public var checks: [CheckOutput]
    public var kubeAPIPort: Int
    /// Whether the runner reached `ipv4:kubeAPIPort` over TCP (nil: not probed).
    public var kubeAPIReachableFromRunner: Bool?

    public init(
        server: String, ipv4: String?, status: String, error: String? = nil, checks: [CheckOutput] = [], kubeAPIPort: Int = 6443,
        kubeAPIReachableFromRunner: Bool? = nil
    ) {
        self.server = server
        self.ipv4 = ipv4
        self.status = status
        self.error = error
        self.checks = checks
        self.kubeAPIPort = kubeAPIPort
        self.kubeAPIReachableFromRunner = kubeAPIReachableFromRunner
    }
}

/// One triage of a scenario: why it ran, what each node said, what it means.
public struct TriageReport: Sendable, Codable, Equatable {
    /// `stall` (silent past the idle threshold) or `failure`.
    public var trigger: String
    public var at: Date
    public var nodes: [NodeReport]
    public var diagnoses: [Diagnosis]
    /// The Hetzner API could not list the servers (the error), or nil.
    public var error: String?

    public init(trigger: String, at: Date, nodes: [NodeReport], diagnoses: [Diagnosis], error: String? = nil) {
        self.trigger = trigger
        self.at = at
        self.nodes = nodes
        self.diagnoses = diagnoses
        self.error = error
    }
}

/// A session on a node: run shell commands, then close.
public struct NodeLink: Sendable {
    public var runner: any CommandRunner
    public var close: @Sendable () async -> Void

    public init(runner: any CommandRunner, close: @escaping @Sendable () async -> Void) {
        self.runner = runner
        self.close = close
    }
}

/// Opens sessions on nodes (live: KhSSH with the configured key only) and probes
/// TCP ports from the runner.
public struct NodeAccess: Sendable {
    public var connect: @Sendable (_ host: String) async throws -> NodeLink
    public var probe: @Sendable (_ host: String, _ port: Int, _ timeout: Duration) async -> Bool

    public init(
        connect: @escaping @Sendable (_ host: String) async throws -> NodeLink,
        probe: @escaping @Sendable (_ host: String, _ port: Int, _ timeout: Duration) async -> Bool
    ) {
        self.connect = connect
        self.probe = probe
    }

    /// SSH with exactly the configured key (IdentitiesOnly), user, port and host-key policy.
    public static func ssh(settings: SSHSettings, keyPath: String, knownHosts: String, onWarning: (@Sendable (String) -> Void)? = nil) -> NodeAccess {
        NodeAccess(
            connect: { host in
                let configuration = SSHConfiguration(
                    host: host, port: settings.port, user: settings.user, privateKeyPath: keyPath, knownHostsPath: knownHosts,
                    hostKeyPolicy: settings.hostKeyPolicy, connectTimeout: settings.connectTimeout.duration, onWarning: onWarning)
                let runner = SSHRunner(configuration: configuration)
                _ = try await runner.connection()
                return NodeLink(runner: runner, close: { await runner.close() })
            },
            probe: { host, port, timeout in await TCPProbe.canConnect(host: host, port: port, timeout: timeout) })
    }
}

/// Finds a scenario's servers through the Hetzner API, runs the checks on each over
/// SSH in parallel, keeps every output as evidence and recognises known failures.
public struct Triage: Sendable {
    public var inventory: any HetznerInventory
    public var access: NodeAccess
    public var settings: TriageSettings
    public var commandTimeout: Duration
    public var prefix: String
    public var runnerSource: String?
    public var redactor: Redactor?
    public var clock: KhClock

    public init(
        inventory: any HetznerInventory, access: NodeAccess, settings: TriageSettings, commandTimeout: Duration, prefix: String,
        redactor: Redactor?, clock: KhClock
    ) {
        self.inventory = inventory
        self.access = access
        self.settings = settings
        self.commandTimeout = commandTimeout
        self.prefix = prefix
        self.runnerSource = settings.runnerSource
        self.redactor = redactor
        self.clock = clock
    }

    /// The label selector of a scenario's servers.
    public static func selector(cluster: String) -> String { "cluster=\(cluster)" }

    /// Triage one scenario. `logPath(step)` names an evidence log for a check
    /// (absolute path, relative path) and `scenarioFiles` are its terraform texts.
    public func run(
        scenario: ScheduledScenario, cluster: String, trigger: String, attempt: Int, scenarioLog: String?, scenarioFiles: [String],
        logPath: @escaping @Sendable (String) -> (absolute: String, relative: String)
    ) async -> TriageReport {
        let at = clock.now()
        let servers: [HetznerServer]
        do {
            servers = try await inventory.servers(labelSelector: Self.selector(cluster: cluster)).filter { $0.name.hasPrefix(prefix) }
                .sorted { $0.name < $1.name }
        } catch {
            return TriageReport(trigger: trigger, at: at, nodes: [], diagnoses: [], error: "listing servers of \(cluster): \(error)")
        }
        let checks = settings.checks.filter { $0.distro == nil || $0.distro == scenario.distro }
        let nodes = await withTaskGroup(of: (Int, NodeReport).self) { group in
            var next = 0
            var reports: [(Int, NodeReport)] = []
            func add(_ index: Int) {
                let server = servers[index]
                group.addTask {
                    (index, await self.inspect(server, checks: checks, scenario: scenario.name, trigger: trigger, attempt: attempt, logPath: logPath))
                }
            }
            while next < servers.count && next < settings.parallelNodes {
                add(next)
                next += 1
            }
            while let report = await group.next() {
                reports.append(report)
                if next < servers.count {
                    add(next)
                    next += 1
                }
            }
            return reports.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let tail = scenarioLog.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }.map { String($0.suffix(64 << 10)) } ?? ""
        let diagnoses = KnownFailures.diagnose(
            KnownFailures.Input(
                distro: scenario.distro, nodes: nodes, scenarioLogTail: tail,
                firewallSource: KnownFailures.firewallSource(inScenarioFiles: scenarioFiles),
                runnerSource: runnerSource))
        return TriageReport(
            trigger: trigger, at: at, nodes: nodes, diagnoses: diagnoses,
            error: servers.isEmpty ? "no server labelled cluster=\(cluster) with prefix \(prefix)" : nil)
    }

    private func inspect(
        _ server: HetznerServer, checks: [TriageCheck], scenario: String, trigger: String, attempt: Int,
        logPath: @escaping @Sendable (String) -> (absolute: String, relative: String)
    ) async -> NodeReport {
        var report = NodeReport(server: server.name, ipv4: server.publicIPv4, status: server.status, kubeAPIPort: settings.kubeAPIPort)
        guard let ip = server.publicIPv4 else {
            report.error = "no public IPv4"
            return report
        }
        async let reachable = access.probe(ip, settings.kubeAPIPort, .seconds(3))
        let link: NodeLink
        do {
            link = try await access.connect(ip)
        } catch {
            report.error = "\(error)"
            report.kubeAPIReachableFromRunner = await reachable
            return report
        }
        let outputs = await withTaskGroup(of: (Int, CheckOutput).self) { group in
            for (index, check) in checks.enumerated() {
                group.addTask {
                    let step = "triage-\(scenario)-\(trigger)\(attempt > 1 ? "\(attempt)" : "")-\(server.name)-\(check.id)"
                    let paths = logPath(step)
                    do {
                        let result = try await link.runner.run(
                            Command("/bin/sh", ["-c", check.command]),
                            options: RunOptions(
                                timeout: self.commandTimeout, logPath: paths.absolute, captureLimit: 64 << 10, keep: .tail, redactor: self.redactor))
                        var text = result.stdoutText
                        if !result.stderrText.isEmpty { text += (text.isEmpty || text.hasSuffix("\n") ? "" : "\n") + result.stderrText }
                        if result.timedOut { text += "\n[kh: timed out after \(self.commandTimeout.humanDescription)]" }
                        return (
                            index, CheckOutput(id: check.id, command: check.command, exitCode: result.exitCode, output: text, log: paths.relative)
                        )
                    } catch {
                        return (index, CheckOutput(id: check.id, command: check.command, exitCode: nil, output: "[kh: \(error)]", log: nil))
                    }
                }
            }
            var all: [(Int, CheckOutput)] = []
            for await item in group { all.append(item) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        await link.close()
        report.checks = outputs
        report.kubeAPIReachableFromRunner = await reachable
        return report
    }
}

/// A TCP connect with a deadline (non-blocking connect + poll), IPv4 only.
public enum TCPProbe {
    /// Whether `host:port` accepts a TCP connection within `timeout`.
    public static func canConnect(host: String, port: Int, timeout: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: connectNow(host: host, port: port, timeout: timeout)) }
        }
    }

    static func connectNow(host: String, port: Int, timeout: Duration) -> Bool {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let code = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if code == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, Int32(timeout.seconds * 1000)) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error == 0
    }
}
