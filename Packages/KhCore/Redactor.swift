import Foundation
import Synchronization

/// Replaces registered secret values wherever kh writes text: logs, evidence
/// records, summaries, stdout and stderr.
///
/// Secrets are registered by name (an environment variable or a config field) and
/// replaced with `[redacted:NAME]`. Values shorter than ``minimumLength`` are not
/// registered: replacing a two-letter value would shred every log without hiding
/// anything worth hiding.
public final class Redactor: Sendable {
    /// Values shorter than this are ignored by ``register(name:value:)``.
    public static let minimumLength = 6

    /// Environment variables that always hold secrets when set.
    public static let wellKnownSecretEnvironment: [String] = [
        "HCLOUD_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "ARGOCD_AUTH_TOKEN", "KARGO_TOKEN", "KUBE_TOKEN", "KH_WEBHOOK_TOKEN",
    ]

    struct Entry: Sendable {
        let name: String
        let value: [UInt8]
        let replacement: [UInt8]
    }

    private let entries = Mutex<[Entry]>([])

    public init() {}

    /// Registers a secret value under a name. Registering the same value again is a no-op.
    public func register(name: String, value: String) {
        guard value.utf8.count >= Self.minimumLength else { return }
        var variants = [value]
        // The JSON-escaped form, so records that escape quotes or backslashes are covered too.
        if let data = try? JSONEncoder().encode(value), let escaped = String(data: data, encoding: .utf8) {
            let inner = String(escaped.dropFirst().dropLast())
            if inner != value { variants.append(inner) }
        }
        entries.withLock { list in
            for variant in variants where !list.contains(where: { $0.value == Array(variant.utf8) }) {
                list.append(Entry(name: name, value: Array(variant.utf8), replacement: Array("[redacted:\(name)]".utf8)))
            }
            // Longest first, so a secret that contains another is replaced whole.
            list.sort { $0.value.count > $1.value.count }
        }
    }

    /// Registers every variable in `names` that is set in `environment`.
    public func registerEnvironment(_ names: [String], from environment: [String: String]) {
        for name in names {
            if let value = environment[name], !value.isEmpty { register(name: name, value: value) }
        }
    }

    /// The names registered so far (never the values).
    public var registeredNames: [String] { entries.withLock { Array(Set($0.map(\.name))).sorted() } }

    /// True when no secret is registered: callers may skip redaction entirely.
    public var isEmpty: Bool { entries.withLock { $0.isEmpty } }

    /// The text with every registered value replaced.
    public func redact(_ text: String) -> String {
        let list = entries.withLock { $0 }
        guard !list.isEmpty else { return text }
        var bytes = Array(text.utf8)
        guard Self.replaceAll(in: &bytes, list) else { return text }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Data with every registered value replaced.
    public func redact(_ data: Data) -> Data {
        let list = entries.withLock { $0 }
        guard !list.isEmpty else { return data }
        var bytes = [UInt8](data)
        guard Self.replaceAll(in: &bytes, list) else { return data }
        return Data(bytes)
    }

    /// A consistent copy of the registered values for a hot loop: take one per
    /// chunk of output, not one per line.
    public var snapshot: RedactionSnapshot { RedactionSnapshot(entries: entries.withLock { $0 }) }

    /// A command line with secret values replaced, and the value after a flag whose
    /// name says it holds a secret (`--token`, `--password`, `--secret`) masked.
    public func redactArguments(_ arguments: [String]) -> [String] {
        var result: [String] = []
        var maskNext = false
        for argument in arguments {
            if maskNext {
                result.append("[redacted]")
                maskNext = false
                continue
            }
            let lower = argument.lowercased()
            let secretFlag = lower.hasPrefix("-") && ["token", "password", "secret"].contains { lower.contains($0) }
            if secretFlag, let eq = argument.firstIndex(of: "=") {
                result.append(String(argument[...eq]) + "[redacted]")
            } else {
                result.append(redact(argument))
                maskNext = secretFlag
            }
        }
        return result
    }

    static func find(_ needle: [UInt8], in hay: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard needle.count <= hay.count - start, let first = needle.first, let base = hay.baseAddress else { return nil }
        var index = start
        let last = hay.count - needle.count
        while index <= last {
            guard let hit = memchr(base + index, Int32(first), last - index + 1) else { return nil }
            let offset = base.distance(to: UnsafeRawPointer(hit))
            let matches = needle.withUnsafeBytes { memcmp(base + offset, $0.baseAddress!, needle.count) == 0 }
            if matches { return offset }
            index = offset + 1
        }
        return nil
    }

    static func replaceAll(in bytes: inout [UInt8], _ list: [Entry]) -> Bool {
        var changed = false
        for entry in list {
            var output: [UInt8] = []
            var cursor = 0
            var found = false
            bytes.withUnsafeBytes { hay in
                while let hit = find(entry.value, in: hay, from: cursor) {
                    found = true
                    output.append(contentsOf: hay[cursor..<hit])
                    output.append(contentsOf: entry.replacement)
                    cursor = hit + entry.value.count
                }
                if found { output.append(contentsOf: hay[cursor...]) }
            }
            if found {
                bytes = output
                changed = true
            }
        }
        return changed
    }
}

/// The values of a ``Redactor`` at one moment, for redacting many lines cheaply.
public struct RedactionSnapshot: Sendable {
    let entries: [Redactor.Entry]

    /// True when there is nothing to redact.
    public var isEmpty: Bool { entries.isEmpty }

    /// Appends `line` to `output` with every registered value replaced.
    /// No allocation when nothing matches.
    @inline(__always)
    public func append(_ line: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        if entries.isEmpty || !entries.contains(where: { Redactor.find($0.value, in: line, from: 0) != nil }) {
            output.append(contentsOf: line)
            return
        }
        var bytes = Array(line)
        _ = Redactor.replaceAll(in: &bytes, entries)
        output.append(contentsOf: bytes)
    }
}
