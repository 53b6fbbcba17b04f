// reliability: `kh reliability audit` of 10,000 objects (Jobs and CodeRun custom
// resources) from the testbed's emulated API and from manifests, wall time and peak
// memory, against baselines measured in the same run:
//   cluster:   `kubectl get … -o json | jq` counting Jobs without a deadline and CodeRuns without a Job;
//   manifests: a Python + PyYAML one-liner doing the same deadline count (jq cannot read YAML).
import Foundation
import KhCore

let reliabilityBenchmark = RuntimeBenchmark(name: "reliability: audit of 10,000 Jobs + CodeRuns") {
    await ReliabilityBench.run()
}

enum ReliabilityBench {
    static let objects = 10_000
    static let rounds = 3

    static func note(_ name: String, _ text: String) -> Row { Row(name: name, kh: "-", baseline: text, ratio: "-", goal: "report", met: nil) }

    static func run() async -> [Row] {
        let work = NSTemporaryDirectory() + "kh-bench-reliability-\(getpid())"
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        return [manifests(work)] + (await cluster(work))
    }

    /// Jobs: every other one without activeDeadlineSeconds. CodeRuns: every other one with a Job name.
    static func job(_ index: Int, namespace: String) -> String {
        let deadline = index % 2 == 0 ? "\n  activeDeadlineSeconds: 3600" : ""
        return """
            apiVersion: batch/v1
            kind: Job
            metadata:
              name: agent-\(index)
              namespace: \(namespace)
            spec:\(deadline)
              backoffLimit: 0
              ttlSecondsAfterFinished: 3600
              template:
                spec:
                  restartPolicy: Never
                  containers:
                    - name: agent
                      image: ghcr.io/example/agent:1.0
                      args: ["--task", "\(index)"]
            """
    }

    static func row(_ name: String, kh: [Sample], baseline: [Sample], baselineName: String) -> Row {
        let khTime = median(kh.map(\.seconds))
        let baseTime = median(baseline.map(\.seconds))
        let khRSS = kh.map(\.maxRSSKiB).max() ?? 0
        let baseRSS = baseline.map(\.maxRSSKiB).max() ?? 0
        let ok = kh.allSatisfy { $0.status == 0 } && baseline.allSatisfy { $0.status == 0 }
        guard ok else { return note(name, "a run failed (kh \(kh.map(\.status)), baseline \(baseline.map(\.status)))") }
        return Row(
            name: name, kh: "\(ms(khTime)), \(khRSS / 1024) MiB", baseline: "\(baselineName): \(ms(baseTime)), \(baseRSS / 1024) MiB",
            ratio: String(format: "%.2fx time, %.2fx memory", khTime / baseTime, Double(khRSS) / Double(max(1, baseRSS))),
            // Issue 7 asks for the comparison (time and peak memory) and sets no goal.
            goal: "report", met: nil)
    }

    static func manifests(_ work: String) -> Row {
        let name = "reliability: audit 10,000 Jobs from manifests"
        guard let python = which("python3") else { return note(name, "python3 not installed") }
        let dir = work + "/manifests"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for file in 0..<20 {
            let text = (0..<(objects / 20)).map { job(file * (objects / 20) + $0, namespace: "agents") }.joined(separator: "\n---\n")
            try? AtomicFile.write(Data(text.utf8), to: dir + "/jobs-\(file).yaml")
        }
        let script = """
            import glob, sys, yaml
            loader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
            n = 0
            for f in glob.glob(sys.argv[1] + '/*.yaml'):
                for d in yaml.load_all(open(f), Loader=loader):
                    if d and d.get('kind') == 'Job' and 'activeDeadlineSeconds' not in (d.get('spec') or {}):
                        n += 1
            print(n)
            """
        let kh = [khPath, "reliability", "audit", "--manifests", dir, "--format", "json", "--fail-on", "never", "--evidence-dir", work + "/runs"]
        let baseline = [python, "-c", script, dir]
        var khSamples: [Sample] = []
        var baseSamples: [Sample] = []
        for _ in 0..<rounds {
            khSamples.append(measure(kh))
            baseSamples.append(measure(baseline))
        }
        return row(name, kh: khSamples, baseline: baseSamples, baselineName: "python+PyYAML (C loader if present)")
    }

    /// Loads 5,000 Jobs and 5,000 CodeRuns into the testbed's emulator (admin upsert), then
    /// audits them with kh and with kubectl | jq.
    static func cluster(_ work: String) async -> [Row] {
        let name = "reliability: audit 10,000 Jobs + CodeRuns from the emulated API"
        guard let env = testbedEnvironment() else { return [note(name, "testbed not up (make testbed-up)")] }
        guard let kubeconfig = env["KUBECONFIG"], let server = env["KH_TESTBED_KUBE_SERVER"], let ca = env["KH_TESTBED_KUBE_CA"],
            let tokenFile = env["KH_TESTBED_KUBE_TOKEN_FILE"], let crds = env["KH_TESTBED_KUBE_CRDS"],
            let token = try? String(contentsOfFile: tokenFile, encoding: .utf8)
        else { return [note(name, ".testbed/env is incomplete")] }
        guard let kubectl = which("kubectl"), let jq = which("jq"), let curl = which("curl") else {
            return [note(name, "kubectl, jq or curl missing (make deps)")]
        }
        let namespace = "bench-reliability-\(getpid())"
        // CRD, namespace, then the objects in one admin upsert.
        let header = work + "/auth-header"
        try? AtomicFile.write(Data("Authorization: Bearer \(token.trimmingCharacters(in: .whitespacesAndNewlines))\n".utf8), to: header, mode: 0o600)
        var items: [String] = []
        for index in 0..<(objects / 2) {
            let deadline = index % 2 == 0 ? "\"activeDeadlineSeconds\":3600," : ""
            items.append(
                "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"agent-\(index)\",\"namespace\":\"\(namespace)\"},"
                    + "\"spec\":{\(deadline)\"backoffLimit\":0,\"ttlSecondsAfterFinished\":3600,\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
                    + "\"containers\":[{\"name\":\"agent\",\"image\":\"ghcr.io/example/agent:1.0\"}]}}},"
                    + "\"status\":{\"succeeded\":1,\"startTime\":\"2026-01-01T00:00:00Z\",\"completionTime\":\"2026-01-01T00:05:00Z\"}}")
            let job = index % 2 == 0 ? ",\"status\":{\"phase\":\"Running\",\"jobName\":\"agent-\(index)\"}" : ""
            items.append(
                "{\"apiVersion\":\"agents.example.com/v1\",\"kind\":\"CodeRun\",\"metadata\":{\"name\":\"task-\(index)\",\"namespace\":\"\(namespace)\"},"
                    + "\"spec\":{\"agent\":\"rex\"}\(job)}")
        }
        try? AtomicFile.write(
            Data("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\(items.joined(separator: ","))]}".utf8), to: work + "/objects.json")
        try? AtomicFile.write(
            Data("apiVersion: v1\nkind: Namespace\nmetadata: {name: \(namespace)}\n".utf8), to: work + "/ns.yaml")
        let setup: [[String]] = [
            [kubectl, "--kubeconfig", kubeconfig, "apply", "-f", crds + "/agents.yaml"],
            [kubectl, "--kubeconfig", kubeconfig, "wait", "--for=condition=Established", "crd/coderuns.agents.example.com", "--timeout=30s"],
            [kubectl, "--kubeconfig", kubeconfig, "apply", "-f", work + "/ns.yaml"],
            [
                curl, "-fsS", "--max-time", "300", "-o", "/dev/null", "--cacert", ca, "-X", "POST", "-H", "@" + header, "-H",
                "Content-Type: application/json", "--data-binary", "@" + work + "/objects.json", server + "/_emulator/objects",
            ],
        ]
        for argv in setup where measure(argv).status != 0 {
            return [note(name, "could not load the objects (\(argv[0]) \(argv.dropFirst(3).prefix(2).joined(separator: " ")))")]
        }
        // The objects stay in their own namespace until `make testbed-down`: deleting 10,000
        // objects takes the emulator minutes.
        let config = work + "/kh.yaml"
        try? AtomicFile.write(
            Data(
                """
                reliability:
                  kubeconfig: \(kubeconfig)
                  kube_timeout: 300s
                  namespaces: [\(namespace)]
                  custom_resources:
                    - {kind: CodeRun, resource: coderuns.agents.example.com, job_field: status.jobName}
                  reconcile: {threshold: 5}

                """.utf8), to: config)
        let kh = [
            khPath, "reliability", "audit", "--config", config, "--only", "job-active-deadline", "--only", "custom-resource-no-job",
            "--format", "json", "--fail-on", "never", "--evidence-dir", work + "/runs",
        ]
        let pipeline = """
            \(kubectl) --kubeconfig \(kubeconfig) get jobs.batch -n \(namespace) -o json | \(jq) '[.items[] | select(.spec.activeDeadlineSeconds == null and .spec.template.spec.activeDeadlineSeconds == null)] | length' && \
            \(kubectl) --kubeconfig \(kubeconfig) get coderuns.agents.example.com -n \(namespace) -o json | \(jq) '[.items[] | select((.status.jobName // "") == "")] | length'
            """
        let baseline = ["/bin/sh", "-c", pipeline]
        var khSamples: [Sample] = []
        var baseSamples: [Sample] = []
        for _ in 0..<rounds {
            khSamples.append(measure(kh))
            baseSamples.append(measure(baseline))
        }
        return [row(name, kh: khSamples, baseline: baseSamples, baselineName: "kubectl get -o json | jq")]
    }
}
