import Foundation
import KhCore

// Kargo (kargo.akuity.io/v1alpha1), Argo CD (argoproj.io/v1alpha1), Argo Rollouts
// analysis and Argo Workflows, shaped as their controllers write them. Kargo ≥ 1.5
// reports Stage state in conditions (Ready, Healthy, Verified, Promoting,
// Reconciling); the old `status.phase` is still read when present.

public struct KargoProject: KubeResource, Equatable {
    public static let resource = "projects.kargo.akuity.io"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var status: Status?
    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]?
        public var phase: String?
    }
}

public struct FreightOrigin: Codable, Sendable, Equatable, Hashable {
    public var kind: String
    public var name: String
}

public struct Warehouse: KubeResource, Equatable {
    public static let resource = "warehouses.kargo.akuity.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var interval: String?
        public var freightCreationPolicy: String?
        public var subscriptions: [Subscription]?
    }

    public struct Subscription: Codable, Sendable, Equatable {
        public var git: Repo?
        public var image: Repo?
        public var chart: Repo?
    }

    public struct Repo: Codable, Sendable, Equatable {
        public var repoURL: String?
        public var branch: String?
        public var name: String?
    }

    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]?
        public var lastFreightID: String?
        public var lastHandledRefresh: String?
        public var observedGeneration: Int64?
    }
}

public struct GitCommitRef: Codable, Sendable, Equatable {
    public var repoURL: String?
    public var id: String?
    public var branch: String?
    public var tag: String?
    public var message: String?
}

public struct ImageRef: Codable, Sendable, Equatable {
    public var repoURL: String?
    public var tag: String?
    public var digest: String?
}

public struct ChartRef: Codable, Sendable, Equatable {
    public var repoURL: String?
    public var name: String?
    public var version: String?
}

public struct Freight: KubeResource, Equatable {
    public static let resource = "freights.kargo.akuity.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var alias: String?
    public var origin: FreightOrigin?
    public var commits: [GitCommitRef]?
    public var images: [ImageRef]?
    public var charts: [ChartRef]?
    public var status: Status?

    public struct Status: Codable, Sendable, Equatable {
        /// Stage name → when it was verified there.
        public var verifiedIn: [String: Verified]?
        /// Stage name → approval.
        public var approvedFor: [String: Verified]?
        public var currentlyIn: [String: Verified]?
    }

    public struct Verified: Codable, Sendable, Equatable {
        public var verifiedAt: Date?
        public var longestSoak: String?
    }

    /// The alias when set, else the name.
    public var displayName: String { alias ?? metadata.name }
}

public struct FreightReference: Codable, Sendable, Equatable {
    public var name: String?
    public var origin: FreightOrigin?
    public var commits: [GitCommitRef]?
    public var images: [ImageRef]?
    public var charts: [ChartRef]?
}

public struct Stage: KubeResource, Equatable {
    public static let resource = "stages.kargo.akuity.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var shard: String?
        public var requestedFreight: [FreightRequest]?
        public var promotionTemplate: PromotionTemplate?
        public var verification: Verification?
    }

    public struct FreightRequest: Codable, Sendable, Equatable {
        public var origin: FreightOrigin
        public var sources: Sources?
        public struct Sources: Codable, Sendable, Equatable {
            public var direct: Bool?
            public var stages: [String]?
            public var verifiedFor: String?
        }
    }

    public struct PromotionTemplate: Codable, Sendable, Equatable {
        public var spec: TemplateSpec?
        public struct TemplateSpec: Codable, Sendable, Equatable {
            public var steps: [Step]?
        }
        public struct Step: Codable, Sendable, Equatable {
            public var uses: String?
            public var `as`: String?
            public var retry: Retry?
            /// The step's configuration as written (`argocd-update`: `apps: [{name, namespace}]`).
            public var config: JSONValue?
        }
        public struct Retry: Codable, Sendable, Equatable {
            public var timeout: String?
            public var errorThreshold: Int?
        }
    }

    public struct Verification: Codable, Sendable, Equatable {
        public var analysisTemplates: [Named]?
        public struct Named: Codable, Sendable, Equatable { public var name: String }
    }

    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]?
        /// Kargo < 1.5 only.
        public var phase: String?
        public var message: String?
        public var freightSummary: String?
        public var freightHistory: [FreightCollection]?
        public var health: Health?
        public var currentPromotion: PromotionReference?
        public var lastPromotion: PromotionReference?
        public var lastHandledRefresh: String?
        public var observedGeneration: Int64?
    }

    public struct FreightCollection: Codable, Sendable, Equatable {
        public var id: String?
        /// Origin ("Warehouse/name") → freight.
        public var items: [String: FreightReference]?
        public var verificationHistory: [VerificationInfo]?
    }

    public struct VerificationInfo: Codable, Sendable, Equatable {
        public var id: String?
        public var phase: String?
        public var message: String?
        public var startTime: Date?
        public var finishTime: Date?
        public var analysisRun: AnalysisRunRef?
        public struct AnalysisRunRef: Codable, Sendable, Equatable {
            public var namespace: String?
            public var name: String?
            public var phase: String?
        }
    }

    public struct Health: Codable, Sendable, Equatable {
        public var status: String?
        public var issues: [String]?
    }

    public struct PromotionReference: Codable, Sendable, Equatable {
        public var name: String
        public var freight: FreightReference?
        public var status: Promotion.Status?
        public var finishedAt: Date?
    }

    /// Conditions, or none.
    public var conditions: [Condition] { status?.conditions ?? [] }
    /// The freight deployed now (first entry of the history).
    public var currentFreight: [FreightReference] {
        guard let items = status?.freightHistory?.first?.items else { return [] }
        return items.keys.sorted().compactMap { items[$0] }
    }
    /// The most recent verification of the current freight.
    public var currentVerification: VerificationInfo? { status?.freightHistory?.first?.verificationHistory?.first }
}

public struct Promotion: KubeResource, Equatable {
    public static let resource = "promotions.kargo.akuity.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var stage: String
        public var freight: String
    }

    public struct Status: Codable, Sendable, Equatable {
        /// Pending, Running, Succeeded, Failed, Errored, Aborted.
        public var phase: String?
        public var message: String?
        public var finishedAt: Date?
        public var currentStep: Int?
        public var freight: FreightReference?
        /// Per-step bookkeeping the controller writes (errors counted against `errorThreshold`).
        public var stepExecutionMetadata: [StepExecution]?
    }

    /// One step's execution record in a Promotion's status.
    public struct StepExecution: Codable, Sendable, Equatable {
        public var alias: String?
        public var startedAt: Date?
        public var finishedAt: Date?
        public var errorCount: Int?
        /// Pending, Running, Succeeded, Failed, Errored, Aborted, Skipped.
        public var status: String?
        public var message: String?
    }

    /// A phase after which nothing more happens.
    public var isTerminal: Bool { ["Succeeded", "Failed", "Errored", "Aborted"].contains(status?.phase ?? "") }
}

public struct ArgoApplication: KubeResource, Equatable {
    public static let resource = "applications.argoproj.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?
    /// An operation requested but not yet taken up by the controller (`kubectl patch … -p '{"operation": null}'` clears it).
    public var operation: JSONValue?

    public struct Spec: Codable, Sendable, Equatable {
        public var project: String?
        public var source: Source?
        public var sources: [Source]?
        public var destination: Destination?
        public var syncPolicy: SyncPolicy?
    }

    public struct Source: Codable, Sendable, Equatable {
        public var repoURL: String?
        public var path: String?
        public var targetRevision: String?
        public var chart: String?
    }

    public struct Destination: Codable, Sendable, Equatable {
        public var server: String?
        public var name: String?
        public var namespace: String?
    }

    public struct SyncPolicy: Codable, Sendable, Equatable {
        public var automated: Automated?
        public struct Automated: Codable, Sendable, Equatable {
            public var prune: Bool?
            public var selfHeal: Bool?
        }
    }

    public struct Status: Codable, Sendable, Equatable {
        public var sync: Sync?
        public var health: HealthStatus?
        public var operationState: OperationState?
        public var reconciledAt: Date?
        public var conditions: [AppCondition]?
    }

    public struct Sync: Codable, Sendable, Equatable {
        /// Synced, OutOfSync, Unknown.
        public var status: String?
        public var revision: String?
        public var revisions: [String]?
    }

    public struct HealthStatus: Codable, Sendable, Equatable {
        /// Healthy, Progressing, Degraded, Suspended, Missing, Unknown.
        public var status: String?
        public var message: String?
    }

    public struct OperationState: Codable, Sendable, Equatable {
        /// Running, Succeeded, Failed, Error, Terminating.
        public var phase: String?
        public var message: String?
        public var startedAt: Date?
        public var finishedAt: Date?
    }

    public struct AppCondition: Codable, Sendable, Equatable {
        public var type: String
        public var message: String?
        public var lastTransitionTime: Date?
    }

    /// Health can be trusted only once the app was reconciled after its last
    /// operation finished (a stale `operationState` otherwise misleads).
    public var healthIsFresh: Bool {
        guard let finished = status?.operationState?.finishedAt else { return status?.reconciledAt != nil }
        guard let reconciled = status?.reconciledAt else { return false }
        return reconciled >= finished
    }
}

public struct ArgoApplicationSet: KubeResource, Equatable {
    public static let resource = "applicationsets.argoproj.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var status: Status?
    public struct Status: Codable, Sendable, Equatable { public var conditions: [ArgoApplication.AppCondition]? }
}

public struct AnalysisTemplate: KubeResource, Equatable {
    public static let resource = "analysistemplates.argoproj.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public struct Spec: Codable, Sendable, Equatable {
        public var metrics: [Metric]?
        public var args: [Arg]?
    }
    public struct Metric: Codable, Sendable, Equatable {
        public var name: String
        public var failureLimit: Int?
        public var interval: String?
    }
    public struct Arg: Codable, Sendable, Equatable {
        public var name: String
        public var value: String?
    }
}

public struct AnalysisRun: KubeResource, Equatable {
    public static let resource = "analysisruns.argoproj.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: AnalysisTemplate.Spec?
    public var status: Status?

    public struct Status: Codable, Sendable, Equatable {
        /// Pending, Running, Successful, Failed, Error, Inconclusive.
        public var phase: String?
        public var message: String?
        public var startedAt: Date?
        public var metricResults: [MetricResult]?
    }

    public struct MetricResult: Codable, Sendable, Equatable {
        public var name: String
        public var phase: String?
        public var message: String?
        public var failed: Int?
        public var error: Int?
        public var measurements: [Measurement]?
    }

    /// One measurement of a metric; the job provider records `job-name` in its metadata.
    public struct Measurement: Codable, Sendable, Equatable {
        public var phase: String?
        public var message: String?
        public var metadata: [String: String]?
    }
}

public struct RetryStrategy: Codable, Sendable, Equatable {
    /// An int or a string expression in Argo Workflows.
    public var limit: FlexibleString?
    public var retryPolicy: String?
    public var backoff: Backoff?
    public struct Backoff: Codable, Sendable, Equatable {
        public var duration: String?
        public var factor: FlexibleString?
        public var maxDuration: String?
    }
}

/// A field that may be written as a number or a string (`limit: 3` or `limit: "3"`).
public struct FlexibleString: Codable, Sendable, Equatable {
    public var value: String
    public init(_ value: String) { self.value = value }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let number = try? c.decode(Int64.self) {
            value = String(number)
        } else if let number = try? c.decode(Double.self) {
            value = String(number)
        } else {
            value = try c.decode(String.self)
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }
}

public struct WorkflowTemplateSpec: Codable, Sendable, Equatable {
    public var entrypoint: String?
    public var activeDeadlineSeconds: FlexibleString?
    public var retryStrategy: RetryStrategy?
    public var templates: [Template]?

    public struct Template: Codable, Sendable, Equatable {
        public var name: String
        public var retryStrategy: RetryStrategy?
        public var activeDeadlineSeconds: FlexibleString?
        public var container: Pod.Container?
    }
}

public struct Workflow: KubeResource, Equatable {
    public static let resource = "workflows.argoproj.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: WorkflowTemplateSpec?
    public var status: Status?
    public struct Status: Codable, Sendable, Equatable {
        /// Pending, Running, Succeeded, Failed, Error.
        public var phase: String?
        public var message: String?
        public var startedAt: Date?
        public var finishedAt: Date?
    }
}

public struct WorkflowTemplate: KubeResource, Equatable {
    public static let resource = "workflowtemplates.argoproj.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: WorkflowTemplateSpec?
}
