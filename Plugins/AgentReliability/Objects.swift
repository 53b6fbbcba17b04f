import Foundation
import KhCore
import Yams

/// One Kubernetes object as generic JSON, with where it came from (a manifest file
/// and line, or the cluster). The audit reads fields by path, so any kind, custom or
/// not, can be checked without a typed model.
public struct KubeObject: Sendable {
    public var json: JSONValue
    /// The manifest file (relative to the audited folder), when read from one.
    public var file: String?
    /// The line of the object's first field in that file (1-based).
    public var line: Int?

    public init(json: JSONValue, file: String? = nil, line: Int? = nil) {
        self.json = json
        self.file = file
        self.line = line
    }

    public var kind: String { json["kind"]?.stringValue ?? "" }
    public var apiVersion: String { json["apiVersion"]?.stringValue ?? "" }
    public var name: String { json.at(["metadata", "name"])?.stringValue ?? json.at(["metadata", "generateName"])?.stringValue ?? "" }
    public var namespace: String? { json.at(["metadata", "namespace"])?.stringValue }
    public var uid: String? { json.at(["metadata", "uid"])?.stringValue }
    public var labels: [String: String] {
        guard case .object(let map)? = json.at(["metadata", "labels"]) else { return [:] }
        return map.compactMapValues(\.stringValue)
    }
    public var creationTimestamp: Date? { json.at(["metadata", "creationTimestamp"])?.dateValue }

    /// `ownerReferences` as (kind, name, uid).
    public var owners: [(kind: String, name: String, uid: String?)] {
        (json.at(["metadata", "ownerReferences"])?.arrayValue ?? []).compactMap { ref in
            guard let kind = ref["kind"]?.stringValue, let name = ref["name"]?.stringValue else { return nil }
            return (kind, name, ref["uid"]?.stringValue)
        }
    }

    /// The object named for findings: kind, namespace, name, source.
    public var reference: ObjectRef {
        ObjectRef(kind: kind, apiVersion: apiVersion, namespace: namespace, name: name, file: file, line: line)
    }

    /// The API group of `apiVersion` (empty for the core group).
    public var group: String {
        let parts = apiVersion.split(separator: "/")
        return parts.count == 2 ? String(parts[0]) : ""
    }
}

/// A reference to the object a finding is about.
public struct ObjectRef: Codable, Sendable, Hashable {
    public var kind: String
    public var apiVersion: String?
    public var namespace: String?
    public var name: String
    public var file: String?
    public var line: Int?

    public init(kind: String, apiVersion: String? = nil, namespace: String? = nil, name: String, file: String? = nil, line: Int? = nil) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.namespace = namespace
        self.name = name
        self.file = file
        self.line = line
    }

    /// `Job agents/tess-123`.
    public var display: String { "\(kind) \(namespace.map { "\($0)/" } ?? "")\(name)" }
    /// `agents/Job/tess-123`: stable across sources, for keys.
    public var identity: String { "\(namespace ?? "")/\(kind)/\(name)" }
    /// `jobs/tess.yaml:12`, when from a manifest.
    public var location: String? { file.map { f in line.map { "\(f):\($0)" } ?? f } }
}

extension JSONValue {
    /// The value at a path of object keys (and array indexes written as numbers).
    public func at(_ path: [String]) -> JSONValue? {
        var current: JSONValue? = self
        for key in path {
            switch current {
            case .object(let map)?: current = map[key]
            case .array(let items)?:
                guard let index = Int(key), items.indices.contains(index) else { return nil }
                current = items[index]
            default: return nil
            }
        }
        return current
    }

    /// The value at a dotted path (`status.jobName`).
    public func at(dotted path: String) -> JSONValue? { at(JSONValue.splitPath(path)) }

    /// `spec.jobTemplate.spec` → `["spec", "jobTemplate", "spec"]`.
    public static func splitPath(_ path: String) -> [String] { path.split(separator: ".").map(String.init) }

    public var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let map) = self { return map }
        return nil
    }

    /// Numbers, and strings holding an integer (Helm often renders `"10"`).
    public var intValue: Int? {
        switch self {
        case .number(let value): return value.isFinite ? Int(value) : nil
        case .string(let text): return Int(text.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// An RFC 3339 timestamp string as a date.
    public var dateValue: Date? { stringValue.flatMap(Timestamp.parse) }

    /// Present and not null, empty string, empty list or empty mapping.
    public var isPresent: Bool {
        switch self {
        case .null: return false
        case .string(let text): return !text.isEmpty
        case .array(let items): return !items.isEmpty
        case .object(let map): return !map.isEmpty
        default: return true
        }
    }
}

/// Reading JSON and YAML into ``JSONValue``s, quickly.
public enum GenericJSON {
    /// Parses JSON bytes (through JSONSerialization, much faster than a Codable walk).
    public static func parse(_ data: Data) throws -> JSONValue {
        let object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        return convert(object)
    }

    static func convert(_ value: Any) -> JSONValue {
        switch value {
        case let map as [String: Any]:
            var out: [String: JSONValue] = [:]
            out.reserveCapacity(map.count)
            for (key, item) in map { out[key] = convert(item) }
            return .object(out)
        case let items as [Any]: return .array(items.map(convert))
        case let text as String: return .string(text)
        case let number as NSNumber:
            // JSONSerialization gives booleans as NSNumber of type "c".
            if String(cString: number.objCType) == "c" { return .bool(number.boolValue) }
            return .number(number.doubleValue)
        case is NSNull: return .null
        case let flag as Bool: return .bool(flag)
        case let int as Int: return .number(Double(int))
        case let double as Double: return .number(double)
        default: return .null
        }
    }

    /// A YAML node as JSON, following the node's resolved tags (quoted `"10"` stays a string).
    public static func convert(_ node: Yams.Node) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch scalar.tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return node.int.map { .number(Double($0)) } ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map(JSONValue.number) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var out: [String: JSONValue] = [:]
            for (key, value) in mapping {
                out[key.string ?? "\(key)"] = convert(value)
            }
            return .object(out)
        case .sequence(let sequence): return .array(sequence.map { convert($0) })
        case .alias: return .null
        }
    }
}

/// Kinds whose `items` hold objects: `List` and every `…List`.
func flattenLists(_ object: KubeObject) -> [KubeObject] {
    let kind = object.kind
    guard kind == "List" || kind.hasSuffix("List"), let items = object.json["items"]?.arrayValue else { return [object] }
    return items.flatMap { flattenLists(KubeObject(json: $0, file: object.file, line: object.line)) }
}

/// Reads every YAML and JSON manifest under a folder: multi-document files, `List`
/// kinds, Helm-rendered output (`# Source:` comments are comments). Unrendered Helm
/// chart templates (`templates/` beside a `Chart.yaml`) are skipped with a note.
public struct ManifestLoader: Sendable {
    /// What could not be read, and why (file: problem).
    public struct Problem: Sendable, Equatable, Codable {
        public var file: String
        public var problem: String
    }

    public init() {}

    /// Objects and problems of a folder (or a single file).
    public func load(_ root: String) throws -> (objects: [KubeObject], problems: [Problem]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else {
            throw KhError.usage("--manifests \(root): no such file or folder")
        }
        var files: [String] = []
        var problems: [Problem] = []
        if isDirectory.boolValue {
            collect(root, relative: "", into: &files, problems: &problems)
        } else {
            files = [""]
        }
        var objects: [KubeObject] = []
        for relative in files {
            let path = relative.isEmpty ? root : root + "/" + relative
            let display = relative.isEmpty ? (root as NSString).lastPathComponent : relative
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                problems.append(Problem(file: display, problem: "not readable as UTF-8 text"))
                continue
            }
            do {
                objects += try parse(text, file: display)
            } catch {
                problems.append(Problem(file: display, problem: "not valid YAML: \(error)"))
            }
        }
        return (objects, problems)
    }

    /// Objects of one YAML or JSON text.
    public func parse(_ text: String, file: String) throws -> [KubeObject] {
        if file.hasSuffix(".json") {
            let json = try GenericJSON.parse(Data(text.utf8))
            return flattenLists(KubeObject(json: json, file: file, line: 1)).filter { !$0.kind.isEmpty }
        }
        var objects: [KubeObject] = []
        var documents = try Yams.compose_all(yaml: text)
        while let node = documents.next() {
            guard case .mapping = node else { continue }
            let line = (node.mark?.line).map { $0 }
            let object = KubeObject(json: GenericJSON.convert(node), file: file, line: line)
            guard !object.kind.isEmpty else { continue }
            if case .sequence(let items)? = node["items"], object.kind == "List" || object.kind.hasSuffix("List") {
                for item in items where item.mapping != nil {
                    objects += flattenLists(KubeObject(json: GenericJSON.convert(item), file: file, line: item.mark?.line ?? line))
                }
            } else {
                objects.append(object)
            }
        }
        if let error = documents.error { throw error }
        return objects
    }

    private func collect(_ root: String, relative: String, into files: inout [String], problems: inout [Problem]) {
        let path = relative.isEmpty ? root : root + "/" + relative
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        let isChart = entries.contains("Chart.yaml")
        for name in entries.sorted() where !name.hasPrefix(".") {
            let child = relative.isEmpty ? name : relative + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + child, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                if isChart && (name == "templates" || name == "charts") {
                    problems.append(Problem(file: child, problem: "unrendered Helm chart templates skipped: audit `helm template` output instead"))
                    continue
                }
                collect(root, relative: child, into: &files, problems: &problems)
            } else if name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json") {
                if isChart && (name == "Chart.yaml" || name.hasPrefix("values")) { continue }
                files.append(child)
            }
        }
    }
}
