import Foundation

/// Sends one attempt of a request: the side effect behind ``HTTPClient``.
///
/// ``CurlTransport`` (libcurl) is the live one; tests substitute a fake to drive the
/// client's retry logic without a network.
public protocol HTTPTransport: Sendable {
    /// Performs one attempt and returns the response, whatever its status. Throws
    /// ``HTTPError`` when no response came (connection, DNS, deadline), and
    /// `CancellationError` when the task was cancelled. Never retries.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}
