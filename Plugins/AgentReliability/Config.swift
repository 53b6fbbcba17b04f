import Foundation
import KhCore

/// The `reliability:` section of the config file. Every key is optional; the
/// defaults are the post-mortem's numbers (docs/reliability.md lists them).
public struct ReliabilityConfig: Decodable, Sendable, Equatable {
    /// The kubectl executable.
    public var kubectl: String
    /// `--kubeconfig` for kubectl (default: kubectl's own lookup).
    public var kubeconfig: String?
    /// `--context` for kubectl.
    public var context: String?
    /// The deadline of each kubectl call.
    public var kubeTimeout: KhDuration
    /// Namespaces the cluster audit reads; empty means all namespaces.
    public var namespaces: [String]
    /// ConfigMaps a controller needs before it can do anything.
    public var requiredConfigMaps: [RequiredConfigMaps]
    /// What Jobs and job templates must carry, and when an active Job is hung.
    public var jobs: JobPolicy
    /// Custom kinds that embed a Job spec (the path names where).
    public var jobTemplates: [JobTemplateKind]
    /// Custom resources that should lead to a Job (CodeRun and the like).
    public var customResources: [CustomResourceKind]
    /// Argo Workflows retry and wait bounds.
    public var workflows: WorkflowPolicy
    /// Controllers failing the same reconcile again and again.
    public var reconcile: ReconcilePolicy
    /// Gap thresholds of `kh reliability timeline`.
    public var timeline: TimelinePolicy
    /// Prometheus rules of `kh reliability alerts`.
    public var alerts: AlertPolicy
    /// `kh reliability watch`.
    public var watch: WatchPolicy
    /// `kh reliability reviews`.
    public var reviews: ReviewPolicy

    enum CodingKeys: String, CodingKey {
        case kubectl, kubeconfig, context, namespaces, jobs, workflows, reconcile, timeline, alerts, watch, reviews
        case kubeTimeout = "kube_timeout"
        case requiredConfigMaps = "required_configmaps"
        case jobTemplates = "job_templates"
        case customResources = "custom_resources"
    }

    public init() {
        kubectl = "kubectl"
        kubeTimeout = KhDuration(.seconds(60))
        namespaces = []
        requiredConfigMaps = []
        jobs = JobPolicy()
        jobTemplates = []
        customResources = []
        workflows = WorkflowPolicy()
        reconcile = ReconcilePolicy()
        timeline = TimelinePolicy()
        alerts = AlertPolicy()
        watch = WatchPolicy()
        reviews = ReviewPolicy()
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kubectl = try c.decodeIfPresent(String.self, forKey: .kubectl) ?? kubectl
        kubeconfig = try c.decodeIfPresent(String.self, forKey: .kubeconfig)
        context = try c.decodeIfPresent(String.self, forKey: .context)
        kubeTimeout = try c.decodeIfPresent(KhDuration.self, forKey: .kubeTimeout) ?? kubeTimeout
        namespaces = try c.decodeIfPresent([String].self, forKey: .namespaces) ?? []
        requiredConfigMaps = try c.decodeIfPresent([RequiredConfigMaps].self, forKey: .requiredConfigMaps) ?? []
        jobs = try c.decodeIfPresent(JobPolicy.self, forKey: .jobs) ?? jobs
        jobTemplates = try c.decodeIfPresent([JobTemplateKind].self, forKey: .jobTemplates) ?? []
        customResources = try c.decodeIfPresent([CustomResourceKind].self, forKey: .customResources) ?? []
        workflows = try c.decodeIfPresent(WorkflowPolicy.self, forKey: .workflows) ?? workflows
        reconcile = try c.decodeIfPresent(ReconcilePolicy.self, forKey: .reconcile) ?? reconcile
        timeline = try c.decodeIfPresent(TimelinePolicy.self, forKey: .timeline) ?? timeline
        alerts = try c.decodeIfPresent(AlertPolicy.self, forKey: .alerts) ?? alerts
        watch = try c.decodeIfPresent(WatchPolicy.self, forKey: .watch) ?? watch
        reviews = try c.decodeIfPresent(ReviewPolicy.self, forKey: .reviews) ?? reviews
    }
}

/// Required ConfigMaps of one namespace.
public struct RequiredConfigMaps: Decodable, Sendable, Equatable {
    public var namespace: String
    public var names: [String]
    /// Keys each of them must hold (optional).
    public var keys: [String]

    enum CodingKeys: String, CodingKey { case namespace, names, keys }

    public init(namespace: String, names: [String], keys: [String] = []) {
        self.namespace = namespace
        self.names = names
        self.keys = keys
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        namespace = try c.decode(String.self, forKey: .namespace)
        names = try c.decode([String].self, forKey: .names)
        keys = try c.decodeIfPresent([String].self, forKey: .keys) ?? []
    }
}

/// What every Job spec must carry.
public struct JobPolicy: Decodable, Sendable, Equatable {
    /// A Job without `activeDeadlineSeconds` can run forever (the six-hour hang).
    public var requireActiveDeadline: Bool
    /// `backoffLimit` unset means six retries by default.
    public var requireBackoffLimit: Bool
    /// Without `ttlSecondsAfterFinished` finished Jobs pile up.
    public var requireTTL: Bool
    /// A deadline longer than this is reported too (optional).
    public var maxActiveDeadline: KhDuration?
    /// An active Job older than this is hung.
    public var hangAfter: KhDuration
    /// The deadline the fix snippets suggest.
    public var recommendedDeadline: KhDuration
    /// The backoffLimit the fix snippets suggest.
    public var recommendedBackoffLimit: Int
    /// The TTL the fix snippets suggest.
    public var recommendedTTL: KhDuration

    enum CodingKeys: String, CodingKey {
        case requireActiveDeadline = "require_active_deadline"
        case requireBackoffLimit = "require_backoff_limit"
        case requireTTL = "require_ttl"
        case maxActiveDeadline = "max_active_deadline"
        case hangAfter = "hang_after"
        case recommendedDeadline = "recommended_deadline"
        case recommendedBackoffLimit = "recommended_backoff_limit"
        case recommendedTTL = "recommended_ttl"
    }

    public init() {
        requireActiveDeadline = true
        requireBackoffLimit = true
        requireTTL = true
        hangAfter = KhDuration(.seconds(3600))
        recommendedDeadline = KhDuration(.seconds(3600))
        recommendedBackoffLimit = 0
        recommendedTTL = KhDuration(.seconds(86400))
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requireActiveDeadline = try c.decodeIfPresent(Bool.self, forKey: .requireActiveDeadline) ?? requireActiveDeadline
        requireBackoffLimit = try c.decodeIfPresent(Bool.self, forKey: .requireBackoffLimit) ?? requireBackoffLimit
        requireTTL = try c.decodeIfPresent(Bool.self, forKey: .requireTTL) ?? requireTTL
        maxActiveDeadline = try c.decodeIfPresent(KhDuration.self, forKey: .maxActiveDeadline)
        hangAfter = try c.decodeIfPresent(KhDuration.self, forKey: .hangAfter) ?? hangAfter
        recommendedDeadline = try c.decodeIfPresent(KhDuration.self, forKey: .recommendedDeadline) ?? recommendedDeadline
        recommendedBackoffLimit = try c.decodeIfPresent(Int.self, forKey: .recommendedBackoffLimit) ?? recommendedBackoffLimit
        recommendedTTL = try c.decodeIfPresent(KhDuration.self, forKey: .recommendedTTL) ?? recommendedTTL
    }
}

/// A custom kind that embeds a Job spec: `kind: CodeRunTemplate`, `path: spec.job.spec`.
public struct JobTemplateKind: Decodable, Sendable, Equatable {
    public var kind: String
    /// Dotted path from the object's root to the embedded Job spec (the object holding
    /// `activeDeadlineSeconds`, `backoffLimit`, `template`).
    public var path: String
    /// What kubectl calls it (`coderuntemplates.agents.example.com`) for the cluster audit.
    public var resource: String?

    enum CodingKeys: String, CodingKey { case kind, path, resource }

    public init(kind: String, path: String, resource: String? = nil) {
        self.kind = kind
        self.path = path
        self.resource = resource
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(String.self, forKey: .kind)
        path = try c.decode(String.self, forKey: .path)
        resource = try c.decodeIfPresent(String.self, forKey: .resource)
    }
}

/// A custom kind whose objects should each get a Job soon after they are created.
public struct CustomResourceKind: Decodable, Sendable, Equatable {
    public var kind: String
    /// What kubectl calls it: `coderuns.agents.example.com`.
    public var resource: String
    /// An object older than this without a Job is stalled.
    public var jobWithin: KhDuration
    /// Dotted path of a status field naming the Job (`status.jobName`); set = Job created.
    public var jobField: String?
    /// A label on Jobs whose value is the object's name.
    public var jobLabel: String?
    /// Dotted path of the phase field (`status.phase`).
    public var phaseField: String?
    /// Phases after which no Job is expected any more.
    public var donePhases: [String]
    /// The metric-name prefix of kube-state-metrics' custom resource metrics for this kind.
    public var metricPrefix: String?
    /// The API version kube-state-metrics reads it at.
    public var version: String

    enum CodingKeys: String, CodingKey {
        case kind, resource, version
        case jobWithin = "job_within"
        case jobField = "job_field"
        case jobLabel = "job_label"
        case phaseField = "phase_field"
        case donePhases = "done_phases"
        case metricPrefix = "metric_prefix"
    }

    public init(
        kind: String, resource: String, jobWithin: KhDuration = KhDuration(.seconds(600)), jobField: String? = nil, jobLabel: String? = nil,
        phaseField: String? = "status.phase", donePhases: [String] = ["Succeeded", "Failed", "Completed"], metricPrefix: String? = nil
    ) {
        self.kind = kind
        self.resource = resource
        self.jobWithin = jobWithin
        self.jobField = jobField
        self.jobLabel = jobLabel
        self.phaseField = phaseField
        self.donePhases = donePhases
        self.metricPrefix = metricPrefix
        self.version = "v1"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(String.self, forKey: .kind)
        resource = try c.decode(String.self, forKey: .resource)
        jobWithin = try c.decodeIfPresent(KhDuration.self, forKey: .jobWithin) ?? KhDuration(.seconds(600))
        jobField = try c.decodeIfPresent(String.self, forKey: .jobField)
        jobLabel = try c.decodeIfPresent(String.self, forKey: .jobLabel)
        phaseField = try c.decodeIfPresent(String.self, forKey: .phaseField) ?? "status.phase"
        donePhases = try c.decodeIfPresent([String].self, forKey: .donePhases) ?? ["Succeeded", "Failed", "Completed"]
        metricPrefix = try c.decodeIfPresent(String.self, forKey: .metricPrefix)
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? "v1"
    }

    /// The API group: what follows the plural in ``resource`` (`agents.example.com`).
    public var group: String {
        guard let dot = resource.firstIndex(of: ".") else { return "" }
        return String(resource[resource.index(after: dot)...])
    }

    /// `kube_customresource_coderun` unless configured.
    public var effectiveMetricPrefix: String {
        metricPrefix ?? "kube_customresource_" + kind.lowercased().filter { $0.isLetter || $0.isNumber }
    }
}

/// Argo Workflows checks.
public struct WorkflowPolicy: Decodable, Sendable, Equatable {
    /// `retryStrategy` without `limit` retries forever.
    public var requireLimit: Bool
    /// `retryStrategy.backoff` without `maxDuration` has no overall bound.
    public var requireMaxDuration: Bool
    /// A `maxDuration` longer than this is reported too.
    public var maxDurationLimit: KhDuration?
    /// A resource step waiting on a success condition needs a bound.
    public var boundResourceWaits: Bool
    /// The retry limit the fix snippets suggest.
    public var recommendedLimit: Int
    /// The maxDuration the fix snippets suggest.
    public var recommendedMaxDuration: KhDuration

    enum CodingKeys: String, CodingKey {
        case requireLimit = "require_limit"
        case requireMaxDuration = "require_max_duration"
        case maxDurationLimit = "max_duration_limit"
        case boundResourceWaits = "bound_resource_waits"
        case recommendedLimit = "recommended_limit"
        case recommendedMaxDuration = "recommended_max_duration"
    }

    public init() {
        requireLimit = true
        requireMaxDuration = true
        boundResourceWaits = true
        recommendedLimit = 10
        recommendedMaxDuration = KhDuration(.seconds(600))
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requireLimit = try c.decodeIfPresent(Bool.self, forKey: .requireLimit) ?? requireLimit
        requireMaxDuration = try c.decodeIfPresent(Bool.self, forKey: .requireMaxDuration) ?? requireMaxDuration
        maxDurationLimit = try c.decodeIfPresent(KhDuration.self, forKey: .maxDurationLimit)
        boundResourceWaits = try c.decodeIfPresent(Bool.self, forKey: .boundResourceWaits) ?? boundResourceWaits
        recommendedLimit = try c.decodeIfPresent(Int.self, forKey: .recommendedLimit) ?? recommendedLimit
        recommendedMaxDuration = try c.decodeIfPresent(KhDuration.self, forKey: .recommendedMaxDuration) ?? recommendedMaxDuration
    }
}

/// Repeated reconcile failures, read from Warning events.
public struct ReconcilePolicy: Decodable, Sendable, Equatable {
    /// Consecutive Warning occurrences (events' `count` / `series.count` added up) at which a finding is raised.
    public var threshold: Int
    /// Only events last seen within this window count.
    public var window: KhDuration
    /// Only events reported by these components count (empty: all).
    public var components: [String]

    enum CodingKeys: String, CodingKey { case threshold, window, components }

    public init() {
        threshold = 5
        window = KhDuration(.seconds(3600))
        components = []
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        threshold = try c.decodeIfPresent(Int.self, forKey: .threshold) ?? threshold
        window = try c.decodeIfPresent(KhDuration.self, forKey: .window) ?? window
        components = try c.decodeIfPresent([String].self, forKey: .components) ?? []
    }
}

/// The gaps `kh reliability timeline` flags.
public struct TimelinePolicy: Decodable, Sendable, Equatable {
    /// Created → Job created (the post-mortem's 7.5 hours).
    public var jobCreatedWithin: KhDuration
    /// Job created → started.
    public var startedWithin: KhDuration
    /// Started → finished.
    public var finishedWithin: KhDuration

    enum CodingKeys: String, CodingKey {
        case jobCreatedWithin = "job_created_within"
        case startedWithin = "started_within"
        case finishedWithin = "finished_within"
    }

    public init() {
        jobCreatedWithin = KhDuration(.seconds(600))
        startedWithin = KhDuration(.seconds(300))
        finishedWithin = KhDuration(.seconds(3600))
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        jobCreatedWithin = try c.decodeIfPresent(KhDuration.self, forKey: .jobCreatedWithin) ?? jobCreatedWithin
        startedWithin = try c.decodeIfPresent(KhDuration.self, forKey: .startedWithin) ?? startedWithin
        finishedWithin = try c.decodeIfPresent(KhDuration.self, forKey: .finishedWithin) ?? finishedWithin
    }
}

/// Prometheus rule generation.
public struct AlertPolicy: Decodable, Sendable, Equatable {
    /// The rule group's name.
    public var group: String
    /// How long a condition must hold before an alert fires (`for:`).
    public var forDuration: KhDuration
    /// Labels added to every alert (`team: platform`).
    public var labels: [String: String]
    /// A runbook link added as an annotation.
    public var runbookURL: String?

    enum CodingKeys: String, CodingKey {
        case group, labels
        case forDuration = "for"
        case runbookURL = "runbook_url"
    }

    public init() {
        group = "kh-agent-reliability"
        forDuration = KhDuration(.seconds(300))
        labels = [:]
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        group = try c.decodeIfPresent(String.self, forKey: .group) ?? group
        forDuration = try c.decodeIfPresent(KhDuration.self, forKey: .forDuration) ?? forDuration
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        runbookURL = try c.decodeIfPresent(String.self, forKey: .runbookURL)
    }
}

/// `kh reliability watch`.
public struct WatchPolicy: Decodable, Sendable, Equatable {
    /// Time between audits.
    public var interval: KhDuration
    /// Where findings that appear or clear are POSTed (JSON), if anywhere.
    public var webhook: String?
    /// A bearer token for the webhook.
    public var webhookToken: Secret?
    /// Attempts per webhook POST (with backoff).
    public var webhookAttempts: Int

    enum CodingKeys: String, CodingKey {
        case interval, webhook
        case webhookToken = "webhook_token"
        case webhookAttempts = "webhook_attempts"
    }

    public init() {
        interval = KhDuration(.seconds(60))
        webhookAttempts = 3
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interval = try c.decodeIfPresent(KhDuration.self, forKey: .interval) ?? interval
        webhook = try c.decodeIfPresent(String.self, forKey: .webhook)
        webhookToken = try c.decodeIfPresent(Secret.self, forKey: .webhookToken)
        webhookAttempts = try c.decodeIfPresent(Int.self, forKey: .webhookAttempts) ?? webhookAttempts
    }
}

/// `kh reliability reviews`.
public struct ReviewPolicy: Decodable, Sendable, Equatable {
    /// The GitHub REST API root.
    public var apiURL: String
    /// More than this many reviews and comments by one author within ``window`` is a loop.
    public var max: Int
    /// The sliding window.
    public var window: KhDuration
    /// Pages read per listing at most (100 items each).
    public var maxPages: Int

    enum CodingKeys: String, CodingKey {
        case max, window
        case apiURL = "api_url"
        case maxPages = "max_pages"
    }

    public init() {
        apiURL = "https://api.github.com"
        max = 3
        window = KhDuration(.seconds(3600))
        maxPages = 50
    }

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiURL = try c.decodeIfPresent(String.self, forKey: .apiURL) ?? apiURL
        max = try c.decodeIfPresent(Int.self, forKey: .max) ?? max
        window = try c.decodeIfPresent(KhDuration.self, forKey: .window) ?? window
        maxPages = try c.decodeIfPresent(Int.self, forKey: .maxPages) ?? maxPages
    }
}
