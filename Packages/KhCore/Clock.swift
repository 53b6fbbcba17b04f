import Foundation

/// Wall-clock time and sleeping, injectable: `.live` in the product, a fixed or
/// stepping clock in tests (`KhTestSupport.TestClock`).
public struct KhClock: Sendable {
    /// The current wall-clock time.
    public var now: @Sendable () -> Date
    /// Sleeps for a duration (throws on task cancellation).
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(now: @escaping @Sendable () -> Date, sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.now = now
        self.sleep = sleep
    }

    /// The system clock.
    public static let live = KhClock(now: { Date() }, sleep: { try await Task.sleep(for: $0) })
}

extension Duration {
    /// The duration in seconds as a Double.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    /// A short human form: `850ms`, `12.3s`, `4m05s`, `2h10m`.
    public var humanDescription: String {
        let total = seconds
        if total < 1 { return "\(Int((total * 1000).rounded()))ms" }
        if total < 60 { return String(format: "%.1fs", total) }
        let whole = Int(total.rounded())
        if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
        return String(format: "%dh%02dm", whole / 3600, (whole % 3600) / 60)
    }
}

/// A duration written the way runbooks write them: `90s`, `45m`, `1h30m`, `500ms`,
/// or a bare number of seconds. Decodes from config and parses from flags.
public struct KhDuration: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// The value.
    public var duration: Duration

    public init(_ duration: Duration) { self.duration = duration }

    /// Parses `90s`, `45m`, `1h30m`, `500ms`, `2d` or a bare number of seconds; nil otherwise.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds >= 0 {
            duration = .milliseconds(Int64((seconds * 1000).rounded()))
            return
        }
        var total: Int64 = 0
        var number = ""
        var unit = ""
        var sawAny = false
        func flush() -> Bool {
            guard let value = Double(number), value >= 0 else { return false }
            let factor: Double
            switch unit {
            case "ms": factor = 1
            case "s": factor = 1000
            case "m": factor = 60_000
            case "h": factor = 3_600_000
            case "d": factor = 86_400_000
            default: return false
            }
            total += Int64((value * factor).rounded())
            number = ""
            unit = ""
            sawAny = true
            return true
        }
        for ch in trimmed {
            if ch.isNumber || ch == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(ch)
            } else if ch.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(ch)
            } else {
                return nil
            }
        }
        guard !number.isEmpty, flush(), sawAny else { return nil }
        duration = .milliseconds(total)
    }

    /// What a parse error says was expected.
    public static let expected = "a duration such as 90s, 45m, 1h30m or 500ms"

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            guard seconds >= 0 else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "expected \(Self.expected), found \(seconds)"))
            }
            duration = .milliseconds(Int64((seconds * 1000).rounded()))
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = KhDuration(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected \(Self.expected), found \"\(text)\""))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        let ms = Int64((duration.seconds * 1000).rounded())
        if ms % 3_600_000 == 0, ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0, ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }

    public static func < (lhs: KhDuration, rhs: KhDuration) -> Bool { lhs.duration < rhs.duration }
}
