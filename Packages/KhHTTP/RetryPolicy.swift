import Foundation
import KhCore

/// When and how long ``HTTPClient`` waits before trying a request again.
///
/// Only idempotent methods (``HTTPMethod/isIdempotent``) are retried, on the error
/// kinds in ``retryableErrors`` and the statuses in ``retryableStatuses``. The wait is
/// what the server asked for (`Retry-After` in seconds or as an HTTP date, else
/// `RateLimit-Reset` on a 429) when it asked, else a capped exponential backoff with
/// jitter. Attempts are capped by ``maxAttempts``, a server's wait by ``maxServerDelay``,
/// and the whole affair (attempts and waits) by ``maxTotal``: when the next wait would
/// pass it, the last outcome is returned as it is.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts in all, the first included (1: never retry).
    public var maxAttempts: Int
    /// Backoff before the second attempt.
    public var initialDelay: Duration
    /// Backoff grows by this factor per attempt.
    public var multiplier: Double
    /// Backoff never exceeds this.
    public var maxDelay: Duration
    /// Fraction of the backoff taken off at random (0: none, 0.5: between half and all of it).
    public var jitter: Double
    /// Time budget for all attempts and waits together.
    public var maxTotal: Duration
    /// The longest `Retry-After` / `RateLimit-Reset` wait honoured; a longer one ends the retries.
    public var maxServerDelay: Duration
    /// Failures worth another attempt.
    public var retryableErrors: Set<HTTPError.Kind>
    /// Statuses worth another attempt.
    public var retryableStatuses: Set<Int>

    /// 429 and every 5xx except 501 (not implemented), 505 (version not supported) and 511.
    public static let defaultStatuses: Set<Int> = Set([429] + Array(500...599)).subtracting([501, 505, 511])
    /// Failures before or while the connection is used: the request can be sent again.
    public static let defaultErrors: Set<HTTPError.Kind> = [.connect, .connectTimeout, .connectionLost]

    public init(
        maxAttempts: Int = 4, initialDelay: Duration = .milliseconds(250), multiplier: Double = 2, maxDelay: Duration = .seconds(8),
        jitter: Double = 0.5, maxTotal: Duration = .seconds(120), maxServerDelay: Duration = .seconds(60),
        retryableErrors: Set<HTTPError.Kind> = RetryPolicy.defaultErrors, retryableStatuses: Set<Int> = RetryPolicy.defaultStatuses
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialDelay = initialDelay
        self.multiplier = max(1, multiplier)
        self.maxDelay = maxDelay
        self.jitter = min(1, max(0, jitter))
        self.maxTotal = maxTotal
        self.maxServerDelay = maxServerDelay
        self.retryableErrors = retryableErrors
        self.retryableStatuses = retryableStatuses
    }

    /// Four attempts, 250 ms doubling to at most 8 s, half of it jitter, 2 minutes in all.
    public static let `default` = RetryPolicy()
    /// One attempt.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// What to do after an attempt.
    public enum Decision: Sendable, Equatable {
        /// Wait this long, then send again; `reason` says why (for logs).
        case retry(after: Duration, reason: String)
        /// Stop here; `reason` says why when a retry was considered.
        case stop(reason: String?)
    }

    /// The backoff after `attempt` attempts failed (1-based), with `random` in [0, 1).
    public func backoff(afterAttempt attempt: Int, random: Double) -> Duration {
        let exponent = Double(max(0, attempt - 1))
        let raw = initialDelay.seconds * pow(multiplier, exponent)
        let capped = min(raw, maxDelay.seconds)
        let jittered = capped * (1 - jitter * min(max(random, 0), 1))
        return .milliseconds(Int64((jittered * 1000).rounded()))
    }

    /// Decides about one outcome: `attempt` attempts made so far, `elapsed` since the first began.
    public func decide(
        method: HTTPMethod, attempt: Int, elapsed: Duration, outcome: Result<HTTPResponse, HTTPError>, now: Date, random: Double
    ) -> Decision {
        let reason: String
        var serverDelay: Duration?
        switch outcome {
        case .success(let response):
            guard retryableStatuses.contains(response.status) else { return .stop(reason: nil) }
            reason = "HTTP \(response.status)"
            serverDelay = Self.serverDelay(status: response.status, headers: response.headers, now: now)
        case .failure(let error):
            guard retryableErrors.contains(error.kind) else { return .stop(reason: nil) }
            reason = "\(error.kind)"
        }
        guard method.isIdempotent else { return .stop(reason: "\(reason): \(method) is not idempotent, not retried") }
        guard attempt < maxAttempts else { return .stop(reason: "\(reason): \(maxAttempts) attempts made") }
        if let serverDelay, serverDelay > maxServerDelay {
            return .stop(reason: "\(reason): the server asks to wait \(serverDelay.humanDescription), more than \(maxServerDelay.humanDescription)")
        }
        let delay = serverDelay ?? backoff(afterAttempt: attempt, random: random)
        guard elapsed + delay <= maxTotal else {
            return .stop(reason: "\(reason): waiting \(delay.humanDescription) more would pass the \(maxTotal.humanDescription) budget")
        }
        return .retry(after: delay, reason: serverDelay == nil ? reason : "\(reason), server asked to wait \(delay.humanDescription)")
    }

    /// The wait a server asked for: `Retry-After` (delta seconds or HTTP date), else on a
    /// 429 (or when the budget is exhausted) the `RateLimit-Reset` time.
    public static func serverDelay(status: Int, headers: HTTPHeaders, now: Date) -> Duration? {
        if let value = headers["Retry-After"], let delay = retryAfter(value, now: now) { return delay }
        if let budget = RateLimit(headers: headers, at: now), status == 429 || budget.isExhausted {
            return budget.resetIn(now: now)
        }
        return nil
    }

    /// Parses a `Retry-After` value: seconds, or an HTTP date (IMF-fixdate, RFC 850 or
    /// asctime) relative to `now`. A date in the past means zero.
    public static func retryAfter(_ value: String, now: Date) -> Duration? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite {
            return .milliseconds(Int64((seconds * 1000).rounded()))
        }
        guard let date = HTTPDate.parse(trimmed) else { return nil }
        return .milliseconds(Int64((max(0, date.timeIntervalSince(now)) * 1000).rounded(.up)))
    }
}

/// HTTP dates (RFC 9110 §5.6.7).
public enum HTTPDate {
    private static let formats = ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"]

    /// Parses the three forms a server may send; nil for anything else.
    public static func parse(_ text: String) -> Date? {
        let collapsed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        for format in formats {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            if let date = formatter.date(from: collapsed) { return date }
        }
        return nil
    }

    /// The IMF-fixdate form: `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func format(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
