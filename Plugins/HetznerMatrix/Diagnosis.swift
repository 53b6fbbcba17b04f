import Foundation

/// A known failure of the runbook, recognised in triage evidence, with its fix path.
public struct Diagnosis: Sendable, Codable, Equatable {
    /// `root-account-locked`, `firewall-source-mismatch`, `rke2-config-path`.
    public var id: String
    public var title: String
    /// The node it was seen on (nil: from the scenario log or the runner).
    public var node: String?
    /// The line of evidence that gave it away.
    public var evidence: String
    /// Where the fix belongs.
    public var fixPath: String

    public init(id: String, title: String, node: String?, evidence: String, fixPath: String) {
        self.id = id
        self.title = title
        self.node = node
        self.evidence = evidence
        self.fixPath = fixPath
    }
}

/// The known high-frequency failures of the runbook, recognised from triage output.
public enum KnownFailures {
    public static let rootLockedID = "root-account-locked"
    public static let firewallID = "firewall-source-mismatch"
    public static let rke2ConfigID = "rke2-config-path"

    /// The runbook's symptom line on Leap Micro.
    static let rootLockedSymptom = "User root not allowed because account is locked"

    /// What to look at: every node's check outputs, the scenario log tail, the firewall
    /// source configured in the scenario, the runner's source.
    public struct Input: Sendable {
        public var distro: String
        public var nodes: [NodeReport]
        public var scenarioLogTail: String
        public var firewallSource: String?
        public var runnerSource: String?

        public init(distro: String, nodes: [NodeReport], scenarioLogTail: String, firewallSource: String?, runnerSource: String?) {
            self.distro = distro
            self.nodes = nodes
            self.scenarioLogTail = scenarioLogTail
            self.firewallSource = firewallSource
            self.runnerSource = runnerSource
        }
    }

    /// Every known failure the input shows, at most once each.
    public static func diagnose(_ input: Input) -> [Diagnosis] {
        var found: [Diagnosis] = []
        if let root = rootLocked(input) { found.append(root) }
        if let firewall = firewallMismatch(input) { found.append(firewall) }
        if let rke2 = rke2ConfigPath(input) { found.append(rke2) }
        return found
    }

    static func rootLocked(_ input: Input) -> Diagnosis? {
        let fix =
            "Leap Micro snapshot locks root: unlock it in the packer transactional-update stage of the snapshot build "
            + "(hcloud-leapmicro-snapshots.pkr.hcl), rebuild the snapshots (`kh stabilize snapshots --build`), rerun; "
            + "do not patch nodes by hand (volatile one-off edits are lost)."
        func make(_ node: String?, _ line: String) -> Diagnosis {
            Diagnosis(id: rootLockedID, title: "root SSH login refused: account locked (Leap Micro)", node: node, evidence: line, fixPath: fix)
        }
        for node in input.nodes {
            for check in node.checks {
                if let line = firstLine(in: check.output, containing: rootLockedSymptom) { return make(node.server, line) }
                if check.id == "root-account", let line = check.output.split(separator: "\n").first(where: { isLockedStatus(String($0)) }) {
                    return make(node.server, String(line))
                }
            }
            if let error = node.error, error.contains(rootLockedSymptom) { return make(node.server, error) }
        }
        if let line = firstLine(in: input.scenarioLogTail, containing: rootLockedSymptom) { return make(nil, line) }
        return nil
    }

    /// `passwd -S root` prints `root L …` or `root LK …` for a locked account.
    static func isLockedStatus(_ line: String) -> Bool {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        return fields.count >= 2 && fields[0] == "root" && (fields[1] == "L" || fields[1] == "LK")
    }

    static func firewallMismatch(_ input: Input) -> Diagnosis? {
        for node in input.nodes {
            guard let inside = node.checks.first(where: { $0.id == "kube-api-inside" }), inside.exitCode == 0,
                inside.output.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("ok"), node.kubeAPIReachableFromRunner == false
            else { continue }
            var evidence =
                "kube API healthy inside \(node.server) (readyz: ok) but \(node.ipv4 ?? "?"):\(node.kubeAPIPort) unreachable from the runner"
            if let source = input.firewallSource { evidence += "; firewall_kube_api_source = \(source)" }
            if let runner = input.runnerSource { evidence += "; runner source \(runner)" }
            return Diagnosis(
                id: firewallID, title: "kube API unreachable from the runner while healthy inside (firewall source mismatch)", node: node.server,
                evidence: evidence,
                fixPath:
                    "Compare the runner's public source with firewall_kube_api_source; use an explicit allowed source in test-only "
                    + "scenarios, then revert any broad (0.0.0.0/0) override once the root cause is fixed.")
        }
        return nil
    }

    static func rke2ConfigPath(_ input: Input) -> Diagnosis? {
        guard input.distro == "rke2" else { return nil }
        let fix =
            "The module must write persistent RKE2 config under /etc/rancher/rke2 (config.yaml); fix the module scripts that write "
            + "to a non-persistent or other path, then rerun the scenario."
        for node in input.nodes {
            let checks = Dictionary(node.checks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            if let dir = checks["rke2-config-dir"], dir.exitCode != 0 {
                return Diagnosis(
                    id: rke2ConfigID, title: "RKE2 config not under /etc/rancher/rke2", node: node.server,
                    evidence: "ls -lah /etc/rancher/rke2: " + (firstNonEmptyLine(dir.output) ?? "exit \(dir.exitCode.map(String.init) ?? "?")"),
                    fixPath: fix)
            }
            if let config = checks["rke2-config"], config.exitCode != 0 {
                return Diagnosis(
                    id: rke2ConfigID, title: "RKE2 config not under /etc/rancher/rke2", node: node.server,
                    evidence: "cat /etc/rancher/rke2/config.yaml: " + (firstNonEmptyLine(config.output) ?? "missing"), fixPath: fix)
            }
            for unit in ["rke2-server-unit", "rke2-agent-unit"] {
                guard let check = checks[unit] else { continue }
                if let path = configFlagPath(check.output), !path.hasPrefix("/etc/rancher/rke2/") {
                    return Diagnosis(
                        id: rke2ConfigID, title: "RKE2 config not under /etc/rancher/rke2", node: node.server,
                        evidence: "systemctl cat \(unit.replacingOccurrences(of: "-unit", with: "")): --config \(path)", fixPath: fix)
                }
            }
        }
        return nil
    }

    /// The value of a `--config PATH` / `--config=PATH` flag in unit text.
    static func configFlagPath(_ text: String) -> String? {
        guard let range = text.range(of: #"--config[= ]+(\S+)"#, options: .regularExpression) else { return nil }
        let match = String(text[range])
        return match.replacingOccurrences(of: #"^--config[= ]+"#, with: "", options: .regularExpression)
    }

    static func firstLine(in text: String, containing needle: String) -> String? {
        text.split(separator: "\n").first { $0.contains(needle) }.map { String($0).trimmingCharacters(in: .whitespaces) }
    }

    static func firstNonEmptyLine(_ text: String) -> String? {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
    }

    /// `firewall_kube_api_source = ["1.2.3.4/32"]` in the scenario's terraform files.
    public static func firewallSource(inScenarioFiles texts: [String]) -> String? {
        for text in texts {
            for line in text.split(separator: "\n") where line.contains("firewall_kube_api_source") {
                let parts = line.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { return parts[1].trimmingCharacters(in: .whitespaces) }
            }
        }
        return nil
    }
}
