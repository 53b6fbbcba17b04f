import Foundation
import KhCore
import Yams

/// The YAML `kh gitops setup stage` writes: the runbook's S2 Stage template (retry from
/// the S4 table), the ApplicationSet with the authorized-stage annotation and no
/// auto-sync, the S3 AnalysisTemplate, and the verification ServiceAccount and RBAC.
public enum Scaffold {
    public struct Request: Sendable {
        public var stage: String
        public var upstream: [String]
        public var apps: [String]
        public var appType: AppType
        public var appNamespace: String
        public init(stage: String, upstream: [String], apps: [String], appType: AppType, appNamespace: String) {
            self.stage = stage
            self.upstream = upstream
            self.apps = apps
            self.appType = appType
            self.appNamespace = appNamespace
        }
    }

    static func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }

    /// The documents, in apply order.
    public static func documents(_ r: Request, env: GitOpsEnvironment, serviceAccount: String) -> [(name: String, yaml: String)] {
        let ns = env.kargoNamespace
        let warehouse = env.warehouse ?? "platform-apps"
        let sources = r.upstream.isEmpty ? "        direct: true\n" : "        stages:\n" + r.upstream.map { "          - \(q($0))\n" }.joined()
        var steps = ""
        for app in r.apps {
            steps += """
                      - uses: argocd-update
                        config:
                          apps:
                            - name: \(q(app))
                              namespace: \(q(env.argocdNamespace))
                        retry:
                          timeout: \(r.appType.timeout)
                          errorThreshold: \(r.appType.errorThreshold)

                """
        }
        let stage = """
            apiVersion: kargo.akuity.io/v1alpha1
            kind: Stage
            metadata:
              name: \(q(r.stage))
              namespace: \(q(ns))
            spec:
              requestedFreight:
                - origin:
                    kind: Warehouse
                    name: \(q(warehouse))
                  sources:
            \(sources)  promotionTemplate:
                spec:
                  steps:
            \(steps)  verification:
                analysisTemplates:
                  - name: \(q(r.stage + "-health"))

            """
        let elements = r.apps.map { "          - app: \(q($0))\n" }.joined()
        let appSet = """
            apiVersion: argoproj.io/v1alpha1
            kind: ApplicationSet
            metadata:
              name: \(q(r.stage))
              namespace: \(q(env.argocdControllerNamespace))
            spec:
              generators:
                - list:
                    elements:
            \(elements)  template:
                metadata:
                  name: "{{app}}"
                  namespace: \(q(env.argocdNamespace))
                  annotations:
                    kargo.akuity.io/authorized-stage: \(q(env.kargoProject + ":" + r.stage))
                spec:
                  project: default
                  source:
                    repoURL: "https://git.example.invalid/CHANGE-ME/gitops.git"
                    path: "apps/{{app}}"
                    targetRevision: HEAD
                  destination:
                    server: https://kubernetes.default.svc
                    namespace: \(q(r.appNamespace))
                  # No syncPolicy.automated: Kargo controls this stage's syncs.
                  syncPolicy:
                    syncOptions:
                      - CreateNamespace=true

            """
        let analysis = """
            apiVersion: argoproj.io/v1alpha1
            kind: AnalysisTemplate
            metadata:
              name: \(q(r.stage + "-health"))
              namespace: \(q(ns))
            spec:
              metrics:
                - name: pods-running
                  provider:
                    job:
                      spec:
                        backoffLimit: 1
                        template:
                          spec:
                            serviceAccountName: \(q(serviceAccount))
                            restartPolicy: Never
                            containers:
                              - name: verify
                                image: alpine/k8s:1.30.0
                                command: ["/bin/bash", "-c"]
                                args:
                                  - |
                                    # Level 1: Check pods
                                    kubectl get pods -n \(r.appNamespace) --no-headers | grep -v Running && exit 1
                                    echo "All checks passed"
                                    exit 0

            """
        let rbac = """
            apiVersion: v1
            kind: ServiceAccount
            metadata:
              name: \(q(serviceAccount))
              namespace: \(q(ns))
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata:
              name: \(q(serviceAccount))
              labels:
                app: kargo-verification
            rules:
              - apiGroups: [""]
                resources: ["pods", "services", "configmaps"]
                verbs: ["get", "list"]
              - apiGroups: ["apps"]
                resources: ["deployments", "statefulsets"]
                verbs: ["get", "list"]
              - apiGroups: ["argoproj.io"]
                resources: ["applications"]
                verbs: ["get", "list"]
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata:
              name: \(q(serviceAccount))
            roleRef:
              apiGroup: rbac.authorization.k8s.io
              kind: ClusterRole
              name: \(q(serviceAccount))
            subjects:
              - kind: ServiceAccount
                name: \(q(serviceAccount))
                namespace: \(q(ns))

            """
        return [
            ("\(r.stage)-rbac.yaml", rbac), ("\(r.stage)-analysistemplate.yaml", analysis), ("\(r.stage)-applicationset.yaml", appSet),
            ("\(r.stage)-stage.yaml", stage),
        ]
    }
}

/// One finding of `kh gitops lint`.
public struct LintFinding: Codable, Sendable, Equatable {
    /// `S2.3`, `anti-pattern`, …
    public var rule: String
    public var object: String
    public var message: String
    public var severity: CheckStatus
}

/// The S2 checklist and the setup-mode anti-patterns over manifests or cluster objects.
public enum Linter {
    /// Reads every YAML document under a directory (recursively) as JSON values.
    public static func load(directory: String) throws -> [(source: String, object: JSONValue)] {
        var out: [(String, JSONValue)] = []
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: directory) else { throw KhError.usage("\(directory): not a readable directory") }
        for case let path as String in walker where path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
            let full = directory + "/" + path
            let text = try String(contentsOfFile: full, encoding: .utf8)
            do {
                for document in try Yams.load_all(yaml: text) {
                    guard let value = JSONValue(yaml: document), value != .null else { continue }
                    if case .array(let items)? = value["items"] {
                        for item in items { out.append((path, item)) }
                    } else {
                        out.append((path, value))
                    }
                }
            } catch {
                throw ConfigError(file: full, line: nil, column: nil, field: "", problem: "not valid YAML: \(error)")
            }
        }
        return out
    }

    static func name(_ o: JSONValue) -> String { "\(o["kind"]?.stringValue ?? "?")/\(o["metadata"]?["name"]?.stringValue ?? "?")" }

    /// Checks the objects. `foundation` is exempt from the auto-sync rule (Gotcha 8).
    public static func lint(_ objects: [(source: String, object: JSONValue)], foundation: String, serviceAccount: String) -> [LintFinding] {
        var findings: [LintFinding] = []
        let kinds = { (kind: String) in objects.filter { $0.object["kind"]?.stringValue == kind } }
        let stages = kinds("Stage")
        let templates = Set(kinds("AnalysisTemplate").compactMap { $0.object["metadata"]?["name"]?.stringValue })
        let serviceAccounts = Set(kinds("ServiceAccount").compactMap { $0.object["metadata"]?["name"]?.stringValue })
        var controlledApps: [String: String] = [:]
        for (source, stage) in stages {
            let stageName = stage["metadata"]?["name"]?.stringValue ?? "?"
            let object = "\(source): Stage/\(stageName)"
            if case .array(let requested)? = stage["spec"]?["requestedFreight"], !requested.isEmpty {
            } else {
                findings.append(
                    LintFinding(rule: "S2.1", object: object, message: "no requestedFreight: the stage has no dependency", severity: .fail))
            }
            var steps: [JSONValue] = []
            if case .array(let s)? = stage["spec"]?["promotionTemplate"]?["spec"]?["steps"] { steps = s }
            let updates = steps.filter { $0["uses"]?.stringValue == "argocd-update" }
            if updates.isEmpty {
                findings.append(LintFinding(rule: "S2.2", object: object, message: "no argocd-update step in promotionTemplate", severity: .warn))
            }
            for (index, step) in updates.enumerated() {
                if case .array(let apps)? = step["config"]?["apps"] {
                    for app in apps { if let n = app["name"]?.stringValue { controlledApps[n] = stageName } }
                }
                if step["retry"] == nil {
                    findings.append(
                        LintFinding(
                            rule: "S2.3 / anti-pattern", object: object,
                            message:
                                "argocd-update step \(index + 1) has no retry config: WILL FAIL on transient errors (add retry: {timeout: 10m, errorThreshold: 3})",
                            severity: .fail))
                }
            }
            if case .array(let refs)? = stage["spec"]?["verification"]?["analysisTemplates"], !refs.isEmpty {
                for ref in refs {
                    if let n = ref["name"]?.stringValue, !templates.isEmpty || !objects.isEmpty, !templates.contains(n) {
                        findings.append(
                            LintFinding(rule: "S2.6", object: object, message: "AnalysisTemplate \(n) is referenced but not defined", severity: .fail)
                        )
                    }
                }
            } else if stageName != foundation {
                findings.append(LintFinding(rule: "S2.6", object: object, message: "no verification.analysisTemplates", severity: .warn))
            }
        }
        if !stages.isEmpty && !serviceAccounts.contains(serviceAccount) {
            findings.append(
                LintFinding(
                    rule: "S2.7", object: "ServiceAccount/\(serviceAccount)",
                    message: "no verification ServiceAccount (and RBAC) for verification Jobs", severity: .warn))
        }
        // Applications and ApplicationSet templates.
        for (source, o) in objects {
            let kind = o["kind"]?.stringValue
            let app: JSONValue?
            switch kind {
            case "Application": app = o
            case "ApplicationSet": app = o["spec"]?["template"]
            default: app = nil
            }
            guard let app else { continue }
            let appName = app["metadata"]?["name"]?.stringValue ?? o["metadata"]?["name"]?.stringValue ?? "?"
            let annotation = app["metadata"]?["annotations"]?["kargo.akuity.io/authorized-stage"]?.stringValue
            let stage = controlledApps[appName] ?? annotation.map { String($0.split(separator: ":").last ?? "") }
            let controlled = stage != nil && stage != foundation
            if controlledApps[appName] != nil && annotation == nil {
                findings.append(
                    LintFinding(
                        rule: "S2.5 / anti-pattern", object: "\(source): \(name(o))",
                        message: "missing kargo.akuity.io/authorized-stage annotation: promotion will be rejected", severity: .fail))
            }
            if kind == "ApplicationSet" && annotation == nil && controlledApps.isEmpty {
                findings.append(
                    LintFinding(
                        rule: "S2.5", object: "\(source): \(name(o))", message: "template has no kargo.akuity.io/authorized-stage annotation",
                        severity: .warn))
            }
            if controlled, app["spec"]?["syncPolicy"]?["automated"] != nil {
                findings.append(
                    LintFinding(
                        rule: "S2.4 / anti-pattern", object: "\(source): \(name(o))",
                        message: "auto-sync on a Kargo-controlled stage (\(stage ?? "?")): CONFLICTS WITH KARGO", severity: .fail))
            }
        }
        // Promotions as manifests or made by hand.
        for (source, o) in kinds("Promotion") {
            let n = o["metadata"]?["name"]?.stringValue ?? "?"
            let stage = o["spec"]?["stage"]?.stringValue ?? ""
            if source != "cluster" || !PromotionNames.isGenerated(n, stage: stage) {
                findings.append(
                    LintFinding(
                        rule: "anti-pattern", object: "\(source): Promotion/\(n)",
                        message: "Promotion created via kubectl (Gotcha 1): use the Kargo UI, CLI, API (kh gitops promote) or auto-promotion",
                        severity: .fail))
            }
        }
        return findings
    }
}

extension JSONValue {
    /// A value from Yams' `load_all` output.
    init?(yaml: Any) {
        switch yaml {
        case let s as String: self = .string(s)
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .number(Double(i))
        case let d as Double: self = .number(d)
        case let a as [Any]: self = .array(a.compactMap { JSONValue(yaml: $0) })
        case let m as [String: Any]:
            var out: [String: JSONValue] = [:]
            for (k, v) in m { out[k] = JSONValue(yaml: v) ?? .null }
            self = .object(out)
        case let m as [AnyHashable: Any]:
            var out: [String: JSONValue] = [:]
            for (k, v) in m { out["\(k)"] = JSONValue(yaml: v) ?? .null }
            self = .object(out)
        case is NSNull: self = .null
        default:
            if let date = yaml as? Date { self = .string(Timestamp.iso8601(date)) } else { self = .string("\(yaml)") }
        }
    }
}
