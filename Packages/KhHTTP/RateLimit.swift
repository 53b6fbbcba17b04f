import Foundation

/// A rate-limit budget as a server announced it in `RateLimit-Limit`,
/// `RateLimit-Remaining` and `RateLimit-Reset` (or the `X-RateLimit-*` variants).
///
/// `RateLimit-Reset` is read as seconds from now (the IETF draft). A value above
/// 1 000 000 000 is read as a Unix time instead, as GitHub and others send it in
/// `X-RateLimit-Reset`. Values like `100, 100;w=60` use their first number.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// Requests allowed in the window.
    public var limit: Int?
    /// Requests left in the window.
    public var remaining: Int?
    /// When the window resets.
    public var resetAt: Date?
    /// When the headers were received.
    public var observedAt: Date

    public init(limit: Int? = nil, remaining: Int? = nil, resetAt: Date? = nil, observedAt: Date) {
        self.limit = limit
        self.remaining = remaining
        self.resetAt = resetAt
        self.observedAt = observedAt
    }

    /// Reads the budget from response headers received at `date`; nil when none of
    /// the headers is present.
    public init?(headers: HTTPHeaders, at date: Date) {
        func number(_ name: String) -> Double? {
            guard let raw = headers[name] ?? headers["X-" + name] else { return nil }
            let first = raw.split(whereSeparator: { $0 == "," || $0 == ";" }).first.map(String.init) ?? raw
            return Double(first.trimmingCharacters(in: .whitespaces))
        }
        let limit = number("RateLimit-Limit")
        let remaining = number("RateLimit-Remaining")
        let reset = number("RateLimit-Reset")
        guard limit != nil || remaining != nil || reset != nil else { return nil }
        self.limit = limit.map { Int($0) }
        self.remaining = remaining.map { Int($0) }
        self.observedAt = date
        if let reset, reset >= 0 {
            resetAt = reset > 1_000_000_000 ? Date(timeIntervalSince1970: reset) : date.addingTimeInterval(reset)
        }
    }

    /// True when the server said no request is left in this window.
    public var isExhausted: Bool { remaining.map { $0 <= 0 } ?? false }

    /// Time until the reset, from `now` (zero once passed); nil when unknown.
    public func resetIn(now: Date) -> Duration? {
        guard let resetAt else { return nil }
        return .milliseconds(Int64((max(0, resetAt.timeIntervalSince(now)) * 1000).rounded(.up)))
    }

    public var description: String {
        let left = remaining.map(String.init) ?? "?"
        let of = limit.map(String.init) ?? "?"
        let reset =
            resetAt.map { ", resets in \(Duration.milliseconds(Int64(max(0, $0.timeIntervalSince(observedAt)) * 1000)).humanDescription)" } ?? ""
        return "\(left)/\(of) requests left\(reset)"
    }
}
