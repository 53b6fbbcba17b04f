import Foundation
import KhCore
import KhSSH

/// The `stabilize:` section: every path, scenario, prefix, label, key, branch and
/// timeout of the kube-hetzner stabilization loop. Defaults follow the runbook.
public struct StabilizeConfig: Decodable, Sendable, Equatable {
    /// The kube-hetzner module repository (the runbook's `kube-hetzner`).
    public var moduleDir: String
    /// The test harness (the runbook's `kube-test`).
    public var harnessDir: String
    /// The scenario folders' parent (`<harness>/scenarios_v3` by default).
    public var scenariosDir: String?
    /// Where `summary-<RUN_ID>.md`, `.json` and `junit-<RUN_ID>.xml` go (the scenarios folder by default).
    public var resultsDir: String?
    /// The lock file of a live `kh stabilize` run (`<harness>/.kh-stabilize.lock` by default).
    public var lockFile: String?
    /// The matrix, in order from simple to complex.
    public var scenarios: [ScenarioConfig]
    /// Every kh-made Hetzner resource's name starts with this.
    public var prefix: String
    /// Branch and tags of the module repository.
    public var git: GitSettings
    /// How kh reaches the nodes.
    public var ssh: SSHSettings
    /// Deadlines and the idle (stall) threshold.
    public var timeouts: Timeouts
    /// How many scenarios run at once.
    public var concurrency: Int
    /// The Hetzner Cloud API.
    public var hcloud: HCloudSettings
    /// Label selectors of leftovers `clean` reaps (each checked against ``prefix``).
    public var reapSelectors: [String]
    /// The snapshot images the scenarios need.
    public var snapshots: [SnapshotSpec]
    /// The checks run on every node of a stalled or failed scenario.
    public var triage: TriageSettings
    /// The upgrade path test.
    public var upgrade: UpgradeSettings
    /// `terraform` executable.
    public var terraform: String
    /// `terraform init -upgrade` in the harness folder during `gates`.
    public var harnessInit: Bool

    enum CodingKeys: String, CodingKey {
        case moduleDir = "module_dir", harnessDir = "harness_dir", scenariosDir = "scenarios_dir", resultsDir = "results_dir"
        case lockFile = "lock_file", scenarios, prefix, git, ssh, timeouts, concurrency, hcloud
        case reapSelectors = "reap_selectors", snapshots, triage, upgrade, terraform
        case harnessInit = "harness_init"
    }

    /// The runbook's seven scenarios, simple to complex.
    public static let defaultScenarioNames = [
        "s1-k3s-basic", "s2-rke2-basic", "s3-k3s-autoscaler", "s4-rke2-autoscaler", "s5-leapmultiarch", "s6-mixed-os", "s7-kubeapi-join-lb",
    ]

    /// All defaults.
    public init() {
        moduleDir = "~/Code/kube-hetzner"
        harnessDir = "~/Code/kube-test"
        scenarios = Self.defaultScenarioNames.map { ScenarioConfig(name: $0) }
        prefix = "khv3-"
        git = GitSettings()
        ssh = SSHSettings()
        timeouts = Timeouts()
        concurrency = 1
        hcloud = HCloudSettings()
        reapSelectors = ["provisioner=terraform", "hcloud/node-group"]
        snapshots = SnapshotSpec.defaults
        triage = TriageSettings()
        upgrade = UpgradeSettings()
        terraform = "terraform"
        harnessInit = true
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        moduleDir = try c.decodeIfPresent(String.self, forKey: .moduleDir) ?? moduleDir
        harnessDir = try c.decodeIfPresent(String.self, forKey: .harnessDir) ?? harnessDir
        scenariosDir = try c.decodeIfPresent(String.self, forKey: .scenariosDir)
        resultsDir = try c.decodeIfPresent(String.self, forKey: .resultsDir)
        lockFile = try c.decodeIfPresent(String.self, forKey: .lockFile)
        scenarios = try c.decodeIfPresent([ScenarioConfig].self, forKey: .scenarios) ?? scenarios
        prefix = try c.decodeIfPresent(String.self, forKey: .prefix) ?? prefix
        git = try c.decodeIfPresent(GitSettings.self, forKey: .git) ?? git
        ssh = try c.decodeIfPresent(SSHSettings.self, forKey: .ssh) ?? ssh
        timeouts = try c.decodeIfPresent(Timeouts.self, forKey: .timeouts) ?? timeouts
        concurrency = try c.decodeIfPresent(Int.self, forKey: .concurrency) ?? concurrency
        hcloud = try c.decodeIfPresent(HCloudSettings.self, forKey: .hcloud) ?? hcloud
        reapSelectors = try c.decodeIfPresent([String].self, forKey: .reapSelectors) ?? reapSelectors
        snapshots = try c.decodeIfPresent([SnapshotSpec].self, forKey: .snapshots) ?? snapshots
        triage = try c.decodeIfPresent(TriageSettings.self, forKey: .triage) ?? triage
        upgrade = try c.decodeIfPresent(UpgradeSettings.self, forKey: .upgrade) ?? upgrade
        terraform = try c.decodeIfPresent(String.self, forKey: .terraform) ?? terraform
        harnessInit = try c.decodeIfPresent(Bool.self, forKey: .harnessInit) ?? harnessInit
        guard concurrency >= 1 else { throw invalid(c, .concurrency, "expected an integer of at least 1, found \(concurrency)") }
        guard !prefix.isEmpty else { throw invalid(c, .prefix, "expected a non-empty name prefix such as khv3-") }
        guard !scenarios.isEmpty else { throw invalid(c, .scenarios, "expected at least one scenario") }
        var seen = Set<String>()
        for scenario in scenarios where !seen.insert(scenario.name).inserted {
            throw invalid(c, .scenarios, "scenario \"\(scenario.name)\" is listed twice")
        }
    }

    private func invalid(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys, _ text: String) -> DecodingError {
        DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: text)
    }

    /// The scenario names in order.
    public var scenarioNames: [String] { scenarios.map(\.name) }

    /// The scenario called `name`.
    public func scenario(named name: String) -> ScenarioConfig? { scenarios.first { $0.name == name } }
}

/// One matrix scenario: a folder under the scenarios folder.
public struct ScenarioConfig: Decodable, Sendable, Equatable {
    /// The folder name (`s1-k3s-basic`).
    public var name: String
    /// Escalation tier: every scenario of tier n runs before tier n+1; a failed tier stops escalation.
    public var tier: Int
    /// `k3s` or `rke2` (from the name when not given): picks the RKE2 checks.
    public var distro: String
    /// The `cluster=` label value of its servers (prefix + name by default).
    public var cluster: String?
    /// Overrides of the apply deadline and idle threshold.
    public var applyTimeout: KhDuration?
    public var idleTimeout: KhDuration?

    enum CodingKeys: String, CodingKey {
        case name, tier, distro, cluster
        case applyTimeout = "apply_timeout", idleTimeout = "idle_timeout"
    }

    public init(name: String, tier: Int = 1, distro: String? = nil, cluster: String? = nil) {
        self.name = name
        self.tier = tier
        self.distro = distro ?? (name.contains("rke2") ? "rke2" : "k3s")
        self.cluster = cluster
    }

    /// A scenario is a bare name or a mapping.
    public init(from decoder: any Decoder) throws {
        if let name = try? decoder.singleValueContainer().decode(String.self) {
            self.init(name: name)
        } else {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let name = try c.decode(String.self, forKey: .name)
            self.init(
                name: name, tier: try c.decodeIfPresent(Int.self, forKey: .tier) ?? 1, distro: try c.decodeIfPresent(String.self, forKey: .distro),
                cluster: try c.decodeIfPresent(String.self, forKey: .cluster))
            applyTimeout = try c.decodeIfPresent(KhDuration.self, forKey: .applyTimeout)
            idleTimeout = try c.decodeIfPresent(KhDuration.self, forKey: .idleTimeout)
            guard tier >= 1 else {
                throw DecodingError.dataCorruptedError(forKey: .tier, in: c, debugDescription: "expected an integer of at least 1, found \(tier)")
            }
            guard ["k3s", "rke2"].contains(distro) else {
                throw DecodingError.dataCorruptedError(forKey: .distro, in: c, debugDescription: "expected k3s or rke2, found \"\(distro)\"")
            }
        }
        guard name.range(of: #"^[A-Za-z0-9][A-Za-z0-9._-]*$"#, options: .regularExpression) != nil else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "expected a scenario folder name (letters, digits, . _ -), found \"\(name)\"")
            )
        }
    }
}

/// The module repository's branch, remote and release tags.
public struct GitSettings: Decodable, Sendable, Equatable {
    public var branch = "staging"
    public var remote = "origin"
    public var tagPattern = "v*"
    /// Fetch the remote during gates (off for a repository without one).
    public var fetch = true
    public var timeout = KhDuration(.seconds(300))

    enum CodingKeys: String, CodingKey { case branch, remote, tagPattern = "tag_pattern", fetch, timeout }

    public init() {}
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        branch = try c.decodeIfPresent(String.self, forKey: .branch) ?? branch
        remote = try c.decodeIfPresent(String.self, forKey: .remote) ?? remote
        tagPattern = try c.decodeIfPresent(String.self, forKey: .tagPattern) ?? tagPattern
        fetch = try c.decodeIfPresent(Bool.self, forKey: .fetch) ?? fetch
        timeout = try c.decodeIfPresent(KhDuration.self, forKey: .timeout) ?? timeout
    }
}

/// SSH to the nodes: one key only (IdentitiesOnly), the runbook's host-key handling.
public struct SSHSettings: Decodable, Sendable, Equatable {
    public var key = "~/.ssh/id_ed25519"
    public var user = "root"
    public var port = 22
    /// `off` is the runbook's `StrictHostKeyChecking=no` + `UserKnownHostsFile=/dev/null` (throwaway nodes).
    public var hostKeyPolicy = HostKeyPolicy.off
    public var knownHosts: String?
    public var connectTimeout = KhDuration(.seconds(15))
    /// Each check's deadline on a node.
    public var commandTimeout = KhDuration(.seconds(60))

    enum CodingKeys: String, CodingKey {
        case key, user, port, hostKeyPolicy = "host_key_policy", knownHosts = "known_hosts", connectTimeout = "connect_timeout"
        case commandTimeout = "command_timeout"
    }

    public init() {}
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decodeIfPresent(String.self, forKey: .key) ?? key
        user = try c.decodeIfPresent(String.self, forKey: .user) ?? user
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? port
        if let text = try c.decodeIfPresent(String.self, forKey: .hostKeyPolicy) {
            guard let policy = HostKeyPolicy(rawValue: text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .hostKeyPolicy, in: c, debugDescription: "expected strict, accept-new or off, found \"\(text)\"")
            }
            hostKeyPolicy = policy
        }
        knownHosts = try c.decodeIfPresent(String.self, forKey: .knownHosts)
        connectTimeout = try c.decodeIfPresent(KhDuration.self, forKey: .connectTimeout) ?? connectTimeout
        commandTimeout = try c.decodeIfPresent(KhDuration.self, forKey: .commandTimeout) ?? commandTimeout
        guard (1...65535).contains(port) else {
            throw DecodingError.dataCorruptedError(forKey: .port, in: c, debugDescription: "expected a TCP port 1-65535, found \(port)")
        }
    }
}

/// Deadlines of every step and the idle threshold that triggers triage.
public struct Timeouts: Decodable, Sendable, Equatable {
    public var initialize = KhDuration(.seconds(600))
    public var apply = KhDuration(.seconds(3600))
    public var idle = KhDuration(.seconds(600))
    public var destroy = KhDuration(.seconds(1200))
    public var plan = KhDuration(.seconds(900))
    public var gates = KhDuration(.seconds(300))
    public var packer = KhDuration(.seconds(3600))

    enum CodingKeys: String, CodingKey { case initialize = "init", apply, idle, destroy, plan, gates, packer }

    public init() {}
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        initialize = try c.decodeIfPresent(KhDuration.self, forKey: .initialize) ?? initialize
        apply = try c.decodeIfPresent(KhDuration.self, forKey: .apply) ?? apply
        idle = try c.decodeIfPresent(KhDuration.self, forKey: .idle) ?? idle
        destroy = try c.decodeIfPresent(KhDuration.self, forKey: .destroy) ?? destroy
        plan = try c.decodeIfPresent(KhDuration.self, forKey: .plan) ?? plan
        gates = try c.decodeIfPresent(KhDuration.self, forKey: .gates) ?? gates
        packer = try c.decodeIfPresent(KhDuration.self, forKey: .packer) ?? packer
    }
}

/// The Hetzner Cloud API: endpoint and token (`HCLOUD_TOKEN` when not in config).
public struct HCloudSettings: Decodable, Sendable, Equatable {
    public var endpoint = "https://api.hetzner.cloud/v1"
    public var token: Secret?
    public var timeout = KhDuration(.seconds(30))

    enum CodingKeys: String, CodingKey { case endpoint, token, timeout }

    public init() {}
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        endpoint = try c.decodeIfPresent(String.self, forKey: .endpoint) ?? endpoint
        token = try c.decodeIfPresent(Secret.self, forKey: .token)
        timeout = try c.decodeIfPresent(KhDuration.self, forKey: .timeout) ?? timeout
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
            throw DecodingError.dataCorruptedError(forKey: .endpoint, in: c, debugDescription: "expected an http(s) URL, found \"\(endpoint)\"")
        }
    }
}

/// One snapshot image the scenarios need, found by labels and architecture.
public struct SnapshotSpec: Decodable, Sendable, Equatable {
    public var name: String
    public var labelSelector: String
    /// `x86` or `arm`.
    public var architecture: String
    public var required: Bool
    /// Commands (argv lists) that build it, run in the harness folder by `snapshots --build`.
    public var build: [[String]]

    enum CodingKeys: String, CodingKey { case name, labelSelector = "label_selector", architecture, required, build }

    public init(name: String, labelSelector: String, architecture: String, required: Bool, build: [[String]]) {
        self.name = name
        self.labelSelector = labelSelector
        self.architecture = architecture
        self.required = required
        self.build = build
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        labelSelector = try c.decode(String.self, forKey: .labelSelector)
        architecture = try c.decode(String.self, forKey: .architecture)
        required = try c.decodeIfPresent(Bool.self, forKey: .required) ?? true
        build = try c.decodeIfPresent([[String]].self, forKey: .build) ?? []
        guard ["x86", "arm"].contains(architecture) else {
            throw DecodingError.dataCorruptedError(forKey: .architecture, in: c, debugDescription: "expected x86 or arm, found \"\(architecture)\"")
        }
    }

    /// Leap Micro k3s and rke2 on x86 and arm (required), MicroOS x86 and arm (optional).
    public static var defaults: [SnapshotSpec] {
        let leap = "hcloud-leapmicro-snapshots.pkr.hcl"
        let microos = "hcloud-microos-snapshots.pkr.hcl"
        var specs: [SnapshotSpec] = []
        for distro in ["k3s", "rke2"] {
            for arch in ["x86", "arm"] {
                specs.append(
                    SnapshotSpec(
                        name: "leapmicro-\(distro)-\(arch)", labelSelector: "leapmicro-snapshot=yes,kube-hetzner/k8s-distro=\(distro)",
                        architecture: arch, required: true,
                        build: [["packer", "init", leap], ["packer", "build", "-var", "selinux_package_to_install=\(distro)", leap]]))
            }
        }
        for arch in ["x86", "arm"] {
            specs.append(
                SnapshotSpec(
                    name: "microos-\(arch)", labelSelector: "microos-snapshot=yes", architecture: arch, required: false,
                    build: [["packer", "init", microos], ["packer", "build", microos]]))
        }
        return specs
    }
}

/// One triage check: a shell command run on a node.
public struct TriageCheck: Decodable, Sendable, Equatable {
    public var id: String
    public var command: String
    /// Only on scenarios of this distro (`rke2`), or on every scenario when nil.
    public var distro: String?

    enum CodingKeys: String, CodingKey { case id, command, distro }

    public init(id: String, command: String, distro: String? = nil) {
        self.id = id
        self.command = command
        self.distro = distro
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        command = try c.decode(String.self, forKey: .command)
        distro = try c.decodeIfPresent(String.self, forKey: .distro)
    }

    /// The runbook's core checks, the RKE2 checks, the root-account check and the kube API from inside.
    public static let defaults: [TriageCheck] = [
        TriageCheck(id: "system-state", command: "systemctl is-system-running"),
        TriageCheck(id: "cloud-init-status", command: "cloud-init status --long || true"),
        TriageCheck(id: "journal-boot", command: "journalctl -u cloud-init -u cloud-config -u sshd --no-pager -n 200"),
        TriageCheck(id: "journal-kube", command: "journalctl -u k3s -u k3s-agent -u rke2-server -u rke2-agent --no-pager -n 300"),
        TriageCheck(id: "root-account", command: "passwd -S root"),
        TriageCheck(id: "kube-api-inside", command: "curl -sk --max-time 5 https://127.0.0.1:6443/readyz"),
        TriageCheck(id: "rke2-config-dir", command: "ls -lah /etc/rancher/rke2", distro: "rke2"),
        TriageCheck(id: "rke2-config", command: "cat /etc/rancher/rke2/config.yaml", distro: "rke2"),
        TriageCheck(id: "rke2-server-unit", command: "systemctl cat rke2-server", distro: "rke2"),
        TriageCheck(id: "rke2-agent-unit", command: "systemctl cat rke2-agent", distro: "rke2"),
    ]
}

/// When and how nodes are inspected.
public struct TriageSettings: Decodable, Sendable, Equatable {
    public var enabled = true
    public var checks = TriageCheck.defaults
    /// The kube API port probed from the runner.
    public var kubeAPIPort = 6443
    /// The runner's public source (CIDR) compared with `firewall_kube_api_source`; optional.
    public var runnerSource: String?
    /// Nodes inspected at once per scenario.
    public var parallelNodes = 8

    enum CodingKeys: String, CodingKey {
        case enabled, checks, kubeAPIPort = "kube_api_port", runnerSource = "runner_source", parallelNodes = "parallel_nodes"
    }

    public init() {}
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? enabled
        checks = try c.decodeIfPresent([TriageCheck].self, forKey: .checks) ?? checks
        kubeAPIPort = try c.decodeIfPresent(Int.self, forKey: .kubeAPIPort) ?? kubeAPIPort
        runnerSource = try c.decodeIfPresent(String.self, forKey: .runnerSource)
        parallelNodes = max(1, try c.decodeIfPresent(Int.self, forKey: .parallelNodes) ?? parallelNodes)
    }
}

/// The upgrade path test: latest tag → working tree, per distro.
public struct UpgradeSettings: Decodable, Sendable, Equatable {
    /// The known-good scenario copied for each distro.
    public var baselines: [String: String] = ["k3s": "s1-k3s-basic", "rke2": "s2-rke2-basic"]
    /// Where the tag's worktree goes (`<dir>/kube-hetzner-<tag>`).
    public var worktreeDir = "/tmp"
    /// The scenario file holding the module source.
    public var mainFile = "main.tf"
    /// Resource types whose planned destroy is flagged.
    public var serverResourceTypes = ["hcloud_server"]

    enum CodingKeys: String, CodingKey {
        case baselines, worktreeDir = "worktree_dir", mainFile = "main_file", serverResourceTypes = "server_resource_types"
    }

    public init() {}
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        baselines = try c.decodeIfPresent([String: String].self, forKey: .baselines) ?? baselines
        worktreeDir = try c.decodeIfPresent(String.self, forKey: .worktreeDir) ?? worktreeDir
        mainFile = try c.decodeIfPresent(String.self, forKey: .mainFile) ?? mainFile
        serverResourceTypes = try c.decodeIfPresent([String].self, forKey: .serverResourceTypes) ?? serverResourceTypes
    }
}

/// The config with every path made absolute (relative paths are relative to the
/// config file's folder; `~` is the home folder).
public struct ResolvedPaths: Sendable, Equatable {
    public var module: String
    public var harness: String
    public var scenarios: String
    public var results: String
    public var lock: String
    public var sshKey: String
    public var knownHosts: String
    public var worktrees: String

    public init(config: StabilizeConfig, configFile: String?, workingDirectory: String, home: String) {
        let base = configFile.map { ($0 as NSString).deletingLastPathComponent } ?? workingDirectory
        func abs(_ path: String, relativeTo root: String) -> String {
            var p = path
            if p == "~" { p = home } else if p.hasPrefix("~/") { p = home + p.dropFirst(1) }
            if !p.hasPrefix("/") { p = (root.isEmpty ? workingDirectory : root) + "/" + p }
            return (p as NSString).standardizingPath
        }
        let baseAbs = abs(base.isEmpty ? "." : base, relativeTo: workingDirectory)
        module = abs(config.moduleDir, relativeTo: baseAbs)
        harness = abs(config.harnessDir, relativeTo: baseAbs)
        scenarios = abs(config.scenariosDir ?? "scenarios_v3", relativeTo: config.scenariosDir == nil ? harness : baseAbs)
        results = config.resultsDir.map { abs($0, relativeTo: baseAbs) } ?? scenarios
        lock = config.lockFile.map { abs($0, relativeTo: baseAbs) } ?? harness + "/.kh-stabilize.lock"
        sshKey = abs(config.ssh.key, relativeTo: baseAbs)
        knownHosts =
            config.ssh.knownHosts.map { abs($0, relativeTo: baseAbs) }
            ?? (config.ssh.hostKeyPolicy == .off ? "/dev/null" : home + "/.ssh/known_hosts")
        worktrees = abs(config.upgrade.worktreeDir, relativeTo: baseAbs)
    }

    /// A scenario's folder.
    public func scenario(_ name: String) -> String { scenarios + "/" + name }
}
