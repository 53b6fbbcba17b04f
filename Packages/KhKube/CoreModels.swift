import Foundation

// Typed models of the Kubernetes objects kh reads. Every field is optional unless
// the API guarantees it, and unknown fields are ignored, so objects written by any
// controller version decode. Secrets decode metadata and type only: their data is
// never read into memory.

/// `metadata` of every object.
public struct ObjectMeta: Codable, Sendable, Equatable {
    public var name: String
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var creationTimestamp: Date?
    public var deletionTimestamp: Date?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var ownerReferences: [OwnerReference]?
    public var finalizers: [String]?

    public init(name: String, namespace: String? = nil) {
        self.name = name
        self.namespace = namespace
    }
}

public struct OwnerReference: Codable, Sendable, Equatable {
    public var apiVersion: String?
    public var kind: String
    public var name: String
    public var uid: String?
    public var controller: Bool?
}

/// A status condition (metav1.Condition and the older core shapes).
public struct Condition: Codable, Sendable, Equatable {
    public var type: String
    /// `True`, `False` or `Unknown`.
    public var status: String
    public var reason: String?
    public var message: String?
    public var lastTransitionTime: Date?
    public var lastUpdateTime: Date?
    public var lastHeartbeatTime: Date?
    public var observedGeneration: Int64?

    public init(type: String, status: String, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }

    /// `status == "True"`.
    public var isTrue: Bool { status == "True" }
}

extension Array where Element == Condition {
    /// The condition of a type, if present.
    public func first(_ type: String) -> Condition? { first { $0.type == type } }
    /// Whether the condition of a type is present and True.
    public func isTrue(_ type: String) -> Bool { first(type)?.isTrue ?? false }
}

/// A reference to another object (events' `involvedObject`).
public struct ObjectReference: Codable, Sendable, Equatable {
    public var kind: String?
    public var namespace: String?
    public var name: String?
    public var uid: String?
    public var apiVersion: String?
    public var fieldPath: String?
}

public struct Namespace: KubeResource, Equatable {
    public static let resource = "namespaces"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var status: Status?
    public struct Status: Codable, Sendable, Equatable { public var phase: String? }
}

public struct Node: KubeResource, Equatable {
    public static let resource = "nodes"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var unschedulable: Bool?
        public var providerID: String?
        public var taints: [Taint]?
    }

    public struct Taint: Codable, Sendable, Equatable {
        public var key: String
        public var value: String?
        public var effect: String
    }

    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]?
        public var capacity: [String: String]?
        public var allocatable: [String: String]?
        public var nodeInfo: NodeInfo?
        public var addresses: [Address]?
    }

    public struct NodeInfo: Codable, Sendable, Equatable {
        public var kubeletVersion: String?
        public var osImage: String?
        public var architecture: String?
        public var containerRuntimeVersion: String?
    }

    public struct Address: Codable, Sendable, Equatable {
        public var type: String
        public var address: String
    }

    /// The Ready condition is True.
    public var isReady: Bool { status?.conditions?.isTrue("Ready") ?? false }
}

public struct Pod: KubeResource, Equatable {
    public static let resource = "pods"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var nodeName: String?
        public var serviceAccountName: String?
        public var containers: [Container]?
        public var initContainers: [Container]?
        public var restartPolicy: String?
        public var activeDeadlineSeconds: Int64?
    }

    public struct Container: Codable, Sendable, Equatable {
        public var name: String
        public var image: String?
        public var command: [String]?
        public var args: [String]?
    }

    public struct Status: Codable, Sendable, Equatable {
        /// Pending, Running, Succeeded, Failed, Unknown.
        public var phase: String?
        public var reason: String?
        public var message: String?
        public var conditions: [Condition]?
        public var startTime: Date?
        public var containerStatuses: [ContainerStatus]?
        public var initContainerStatuses: [ContainerStatus]?
    }

    public struct ContainerStatus: Codable, Sendable, Equatable {
        public var name: String
        public var ready: Bool?
        public var restartCount: Int?
        public var image: String?
        public var state: ContainerState?
        public var lastState: ContainerState?
    }

    public struct ContainerState: Codable, Sendable, Equatable {
        public var waiting: Detail?
        public var running: Running?
        public var terminated: Terminated?
        public struct Detail: Codable, Sendable, Equatable {
            public var reason: String?
            public var message: String?
        }
        public struct Running: Codable, Sendable, Equatable { public var startedAt: Date? }
        public struct Terminated: Codable, Sendable, Equatable {
            public var exitCode: Int32?
            public var reason: String?
            public var message: String?
            public var startedAt: Date?
            public var finishedAt: Date?
        }
    }

    /// The Ready condition is True.
    public var isReady: Bool { status?.conditions?.isTrue("Ready") ?? false }
}

/// The replica counts Deployments and ReplicaSets share.
public struct ReplicaStatus: Codable, Sendable, Equatable {
    public var replicas: Int?
    public var readyReplicas: Int?
    public var availableReplicas: Int?
    public var updatedReplicas: Int?
    public var observedGeneration: Int64?
    public var conditions: [Condition]?
}

public struct LabelSelector: Codable, Sendable, Equatable {
    public var matchLabels: [String: String]?
}

public struct Deployment: KubeResource, Equatable {
    public static let resource = "deployments.apps"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: ReplicaStatus?

    public struct Spec: Codable, Sendable, Equatable {
        public var replicas: Int?
        public var selector: LabelSelector?
    }

    /// Every desired replica is ready and the rollout is observed.
    public var isReady: Bool {
        let desired = spec?.replicas ?? 1
        return (status?.readyReplicas ?? 0) >= desired && (status?.updatedReplicas ?? 0) >= desired
            && (status?.observedGeneration ?? 0) >= (metadata.generation ?? 0)
    }
}

public struct ReplicaSet: KubeResource, Equatable {
    public static let resource = "replicasets.apps"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Deployment.Spec?
    public var status: ReplicaStatus?
}

public struct Event: KubeResource, Equatable {
    public static let resource = "events"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var involvedObject: ObjectReference?
    public var reason: String?
    public var message: String?
    /// Normal or Warning.
    public var type: String?
    public var count: Int?
    public var firstTimestamp: Date?
    public var lastTimestamp: Date?
    public var eventTime: Date?
    public var source: Source?
    public struct Source: Codable, Sendable, Equatable {
        public var component: String?
        public var host: String?
    }

    /// The latest time the event was seen.
    public var lastSeen: Date? { lastTimestamp ?? eventTime ?? firstTimestamp ?? metadata.creationTimestamp }
}

public struct ConfigMap: KubeResource, Equatable {
    public static let resource = "configmaps"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var data: [String: String]?
}

/// A Secret's metadata and type. The data is deliberately not decoded.
public struct SecretMetadata: KubeResource, Equatable {
    public static let resource = "secrets"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var type: String?
    /// The keys present in data (their values are dropped while decoding).
    public var keys: [String]

    enum CodingKeys: String, CodingKey { case metadata, type, data }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try c.decode(ObjectMeta.self, forKey: .metadata)
        type = try c.decodeIfPresent(String.self, forKey: .type)
        let data = try c.decodeIfPresent([String: Ignored].self, forKey: .data) ?? [:]
        keys = data.keys.sorted()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(metadata, forKey: .metadata)
        try c.encodeIfPresent(type, forKey: .type)
    }

    struct Ignored: Decodable {
        init(from decoder: any Decoder) throws {}
    }
}

public struct Job: KubeResource, Equatable {
    public static let resource = "jobs.batch"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var activeDeadlineSeconds: Int64?
        public var backoffLimit: Int?
        public var ttlSecondsAfterFinished: Int?
        public var parallelism: Int?
        public var completions: Int?
        public var suspend: Bool?
        public var template: PodTemplate?
    }

    public struct Status: Codable, Sendable, Equatable {
        public var active: Int?
        public var succeeded: Int?
        public var failed: Int?
        public var ready: Int?
        public var startTime: Date?
        public var completionTime: Date?
        public var conditions: [Condition]?
    }

    /// Complete or Failed.
    public var isFinished: Bool {
        let conditions = status?.conditions ?? []
        return conditions.isTrue("Complete") || conditions.isTrue("Failed")
    }
}

public struct PodTemplate: Codable, Sendable, Equatable {
    public var metadata: PartialMeta?
    public var spec: Pod.Spec?
}

/// Metadata in templates (no name required).
public struct PartialMeta: Codable, Sendable, Equatable {
    public var name: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
}

public struct CronJob: KubeResource, Equatable {
    public static let resource = "cronjobs.batch"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var schedule: String
        public var suspend: Bool?
        public var concurrencyPolicy: String?
        public var jobTemplate: JobTemplate?
    }

    public struct JobTemplate: Codable, Sendable, Equatable {
        public var metadata: PartialMeta?
        public var spec: Job.Spec?
    }

    public struct Status: Codable, Sendable, Equatable {
        public var lastScheduleTime: Date?
        public var lastSuccessfulTime: Date?
        public var active: [ObjectReference]?
    }
}

public struct Ingress: KubeResource, Equatable {
    public static let resource = "ingresses.networking.k8s.io"
    public static let namespaced = true
    public var metadata: ObjectMeta
    public var spec: Spec?

    public struct Spec: Codable, Sendable, Equatable {
        public var ingressClassName: String?
        public var rules: [Rule]?
        public var tls: [TLS]?
    }

    public struct Rule: Codable, Sendable, Equatable { public var host: String? }
    public struct TLS: Codable, Sendable, Equatable {
        public var hosts: [String]?
        public var secretName: String?
    }

    /// Every host named by the rules.
    public var hosts: [String] { spec?.rules?.compactMap(\.host) ?? [] }
}

public struct CustomResourceDefinition: KubeResource, Equatable {
    public static let resource = "customresourcedefinitions.apiextensions.k8s.io"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]?
    }

    /// The Established condition is True: the API serves the kind.
    public var isEstablished: Bool { status?.conditions?.isTrue("Established") ?? false }

    public struct Spec: Codable, Sendable, Equatable {
        public var group: String
        public var names: Names
        public var scope: String?
        public var versions: [Version]?
    }

    public struct Names: Codable, Sendable, Equatable {
        public var kind: String
        public var plural: String
        public var singular: String?
        public var shortNames: [String]?
    }

    public struct Version: Codable, Sendable, Equatable {
        public var name: String
        public var served: Bool?
        public var storage: Bool?
    }
}
