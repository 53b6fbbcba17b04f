import Foundation

// Karpenter v1: NodePool and NodeClaim (karpenter.sh), EC2NodeClass (karpenter.k8s.aws).

public struct NodePool: KubeResource, Equatable {
    public static let resource = "nodepools.karpenter.sh"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var template: Template?
        public var limits: [String: String]?
        public var disruption: Disruption?
        public var weight: Int?
    }

    public struct Template: Codable, Sendable, Equatable {
        public var spec: TemplateSpec?
    }

    public struct TemplateSpec: Codable, Sendable, Equatable {
        public var nodeClassRef: NodeClassRef?
        public var requirements: [Requirement]?
        public var expireAfter: String?
    }

    public struct NodeClassRef: Codable, Sendable, Equatable {
        public var group: String?
        public var kind: String?
        public var name: String
    }

    public struct Requirement: Codable, Sendable, Equatable {
        public var key: String
        public var `operator`: String
        public var values: [String]?
    }

    public struct Disruption: Codable, Sendable, Equatable {
        public var consolidationPolicy: String?
        public var consolidateAfter: String?
    }

    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]?
        public var resources: [String: String]?
    }
}

public struct NodeClaim: KubeResource, Equatable {
    public static let resource = "nodeclaims.karpenter.sh"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var nodeClassRef: NodePool.NodeClassRef?
        public var requirements: [NodePool.Requirement]?
    }

    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]?
        public var nodeName: String?
        public var providerID: String?
        public var imageID: String?
    }

    /// Launched, Registered and Initialized conditions, in that order of progress.
    public var isInitialized: Bool { status?.conditions?.isTrue("Initialized") ?? false }
}

public struct EC2NodeClass: KubeResource, Equatable {
    public static let resource = "ec2nodeclasses.karpenter.k8s.aws"
    public static let namespaced = false
    public var metadata: ObjectMeta
    public var spec: Spec?
    public var status: Status?

    public struct Spec: Codable, Sendable, Equatable {
        public var role: String?
        public var instanceProfile: String?
        public var amiFamily: String?
        public var amiSelectorTerms: [SelectorTerm]?
        public var subnetSelectorTerms: [SelectorTerm]?
        public var securityGroupSelectorTerms: [SelectorTerm]?
    }

    public struct SelectorTerm: Codable, Sendable, Equatable {
        public var tags: [String: String]?
        public var id: String?
        public var alias: String?
        public var name: String?
    }

    public struct Status: Codable, Sendable, Equatable {
        public var conditions: [Condition]?
        public var instanceProfile: String?
    }
}
