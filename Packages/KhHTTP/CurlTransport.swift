import CCurl
import Foundation
import KhCore
import Synchronization

/// The live ``HTTPTransport``: libcurl's multi interface driven by one thread.
///
/// Requests from any task are queued, and one dedicated thread owns the `CURLM*`
/// handle and every `CURL*` easy handle: it adds transfers (at most
/// ``Options/maxConcurrent`` at once), runs them with `curl_multi_perform`, waits
/// in `curl_multi_poll`, and resumes each caller when its transfer ends. Other
/// threads only queue work and call `curl_multi_wakeup`, which libcurl allows.
/// Connections are kept alive and reused between requests to the same host.
///
/// Every transfer sets `CURLOPT_NOSIGNAL`, a connect and a total deadline, limits
/// protocols to HTTP and HTTPS, and caps the body size. Cancelling the calling task
/// aborts its transfer. The thread starts with the first request and ends when the
/// transport is released. Redirects are not followed: a 3xx is returned as it is.
public final class CurlTransport: HTTPTransport {
    /// Settings of the transport itself (per-request settings live on ``HTTPRequest``).
    public struct Options: Sendable {
        /// Transfers running at once; more wait in a queue.
        public var maxConcurrent: Int
        /// Connections to one host at once (0: no limit).
        public var maxConnectionsPerHost: Int
        /// Ask for gzip/deflate and decode it (`CURLOPT_ACCEPT_ENCODING`).
        public var acceptCompressed: Bool
        /// A CA bundle to verify servers against, instead of the system's.
        public var caBundlePath: String?
        /// Connect deadline for a request that sets none.
        public var defaultConnectTimeout: Duration
        /// Deadline for a whole attempt of a request that sets none.
        public var defaultTimeout: Duration
        /// Body cap for a request that sets none.
        public var defaultMaxResponseBytes: Int
        /// Connect every request to this unix socket instead of the URL's host and port
        /// (`CURLOPT_UNIX_SOCKET_PATH`; the URL still names the path and the Host header).
        public var unixSocketPath: String?
        /// A CA bundle given as PEM bytes (`CURLOPT_CAINFO_BLOB`), instead of the system's
        /// and in addition to nothing else: set this or ``caBundlePath``.
        public var caBundle: Data?
        /// A client certificate (PEM) for mutual TLS: a file, or the bytes (`CURLOPT_SSLCERT_BLOB`).
        public var clientCertificatePath: String?
        public var clientCertificate: Data?
        /// The client certificate's private key (PEM): a file, or the bytes (`CURLOPT_SSLKEY_BLOB`).
        /// The bytes are handed to libcurl only; nothing prints them.
        public var clientKeyPath: String?
        public var clientKey: Data?
        /// Skip verifying the server's certificate and name (`CURLOPT_SSL_VERIFYPEER` and
        /// `CURLOPT_SSL_VERIFYHOST` off), as kubeconfig's `insecure-skip-tls-verify`.
        public var insecure: Bool
        /// `HOST:PORT:CONNECT-HOST:CONNECT-PORT` entries (`CURLOPT_CONNECT_TO`): connect elsewhere
        /// than the URL names while TLS checks (and SNI) use the URL's host.
        public var connectTo: [String]
        /// Hosts never reached through a proxy from the environment (`CURLOPT_NOPROXY`; `*`: none).
        public var noProxy: String?

        public init(
            maxConcurrent: Int = 64, maxConnectionsPerHost: Int = 0, acceptCompressed: Bool = true, caBundlePath: String? = nil,
            defaultConnectTimeout: Duration = .seconds(10), defaultTimeout: Duration = .seconds(60), defaultMaxResponseBytes: Int = 64 << 20,
            unixSocketPath: String? = nil
        ) {
            self.maxConcurrent = max(1, maxConcurrent)
            self.maxConnectionsPerHost = max(0, maxConnectionsPerHost)
            self.acceptCompressed = acceptCompressed
            self.caBundlePath = caBundlePath
            self.defaultConnectTimeout = defaultConnectTimeout
            self.defaultTimeout = defaultTimeout
            self.defaultMaxResponseBytes = defaultMaxResponseBytes
            self.unixSocketPath = unixSocketPath
            self.insecure = false
            self.connectTo = []
        }
    }

    let engine: CurlEngine

    /// A transport; its thread starts with the first request.
    public init(options: Options = Options()) {
        engine = CurlEngine(options: options)
    }

    deinit { engine.shutdown() }

    /// Why libcurl cannot be used (not installed, too old, failed to initialise), or `nil`
    /// when it is loaded and initialised. Loads it when this is the first use.
    public static var loadProblem: String? { CurlGlobal.failure }

    /// libcurl's version string, e.g. `libcurl/7.88.1 OpenSSL/3.0.15 zlib/1.2.13 …`.
    public static var libcurlVersion: String {
        if let failure = CurlGlobal.failure { return "unavailable (\(failure))" }
        return String(cString: curl_version())
    }

    /// Queues the request for the transfer thread and waits for its end (see ``HTTPTransport/send(_:)``).
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let job = CurlJob(request: request)
        let engine = self.engine
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                if job.attach(continuation) { engine.submit(job) }
            }
        } onCancel: {
            if job.cancel() { engine.cancel(job) }
        }
    }
}

/// Loading libcurl (it is not linked: see Packages/CKhLazy) and `curl_global_init`, once
/// per process, before any handle is made.
enum CurlGlobal {
    /// Why libcurl cannot be used, or `nil`.
    static let failure: String? = {
        if let why = kh_curl_load() { return String(cString: why) }
        let code = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        return code == CURLE_OK ? nil : "curl_global_init: " + String(cString: curl_easy_strerror(code))
    }()
}

/// One request on its way through the engine, and the caller waiting for it.
final class CurlJob: Sendable {
    enum State {
        case new
        case waiting(CheckedContinuation<HTTPResponse, any Error>)
        case cancelledEarly
        case finished
    }

    let request: HTTPRequest
    let submittedAt = ContinuousClock.now
    private let state = Mutex<State>(.new)

    init(request: HTTPRequest) { self.request = request }

    /// Stores the continuation; false when the task was cancelled first (then the
    /// continuation has been resumed with `CancellationError`).
    func attach(_ continuation: CheckedContinuation<HTTPResponse, any Error>) -> Bool {
        let cancelled = state.withLock { (state: inout State) -> Bool in
            if case .cancelledEarly = state {
                state = .finished
                return true
            }
            state = .waiting(continuation)
            return false
        }
        if cancelled { continuation.resume(throwing: CancellationError()) }
        return !cancelled
    }

    /// Marks the job cancelled; true when the engine holds it and must abort it.
    func cancel() -> Bool {
        state.withLock { (state: inout State) -> Bool in
            switch state {
            case .new:
                state = .cancelledEarly
                return false
            case .waiting: return true
            case .cancelledEarly, .finished: return false
            }
        }
    }

    /// Resumes the caller once; later calls do nothing.
    func finish(_ result: Result<HTTPResponse, any Error>) {
        let continuation = state.withLock { (state: inout State) -> CheckedContinuation<HTTPResponse, any Error>? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .finished
            return continuation
        }
        continuation?.resume(with: result)
    }
}

/// The queue between callers and the transfer thread, and the thread's loop.
final class CurlEngine: Sendable {
    private struct Inbox {
        var submitted: [CurlJob] = []
        var cancelled: [CurlJob] = []
        var shuttingDown = false
        var threadStarted = false
    }

    let options: CurlTransport.Options
    private let multi: CurlMulti?
    private let inbox = Mutex(Inbox())

    init(options: CurlTransport.Options) {
        self.options = options
        multi = CurlGlobal.failure == nil ? CurlMulti() : nil
        if let multi {
            _ = kh_curl_multi_setopt_long(multi.handle, CURLMOPT_MAX_HOST_CONNECTIONS, options.maxConnectionsPerHost)
            _ = kh_curl_multi_setopt_long(multi.handle, CURLMOPT_MAXCONNECTS, max(options.maxConcurrent, 8))
        }
    }

    /// Queues a job and wakes the thread (starting it on first use).
    func submit(_ job: CurlJob) {
        guard let multi else {
            let error =
                CurlGlobal.failure.map { HTTPError(curlSetup: job.request, call: "dlopen", code: nil, detail: $0, kind: .libraryUnavailable) }
                ?? HTTPError(curlSetup: job.request, call: "curl_multi_init", code: nil, detail: "libcurl could not make a multi handle")
            job.finish(.failure(error))
            return
        }
        let (accepted, start) = inbox.withLock { (inbox: inout Inbox) -> (Bool, Bool) in
            guard !inbox.shuttingDown else { return (false, false) }
            inbox.submitted.append(job)
            let start = !inbox.threadStarted
            inbox.threadStarted = true
            return (true, start)
        }
        guard accepted else {
            job.finish(
                .failure(
                    HTTPError(curlSetup: job.request, call: "CurlTransport.send", code: nil, detail: "the transport was shut down", kind: .shutdown)))
            return
        }
        if start {
            let thread = Thread { [self] in self.loop() }
            thread.name = "kh.http.curl"
            thread.start()
        }
        multi.wakeup()
    }

    /// Asks the thread to abort a job's transfer and resume its caller with `CancellationError`.
    func cancel(_ job: CurlJob) {
        inbox.withLock { $0.cancelled.append(job) }
        multi?.wakeup()
    }

    /// Fails what is queued or running and ends the thread.
    func shutdown() {
        let running = inbox.withLock { (inbox: inout Inbox) -> Bool in
            inbox.shuttingDown = true
            return inbox.threadStarted
        }
        if running { multi?.wakeup() }
    }

    /// The transfer thread. Owns every easy handle; the only thread that drives `multi`.
    private func loop() {
        guard let multi else { return }
        var queue: [CurlJob] = []
        var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]

        func fail(_ transfer: CurlTransfer, _ error: any Error) {
            multi.remove(transfer.easy)
            active[transfer.easy.handle] = nil
            transfer.job.finish(.failure(error))
        }

        while true {
            let (submitted, cancelled, stopping) = inbox.withLock { (inbox: inout Inbox) in
                defer {
                    inbox.submitted.removeAll()
                    inbox.cancelled.removeAll()
                }
                return (inbox.submitted, inbox.cancelled, inbox.shuttingDown)
            }
            queue.append(contentsOf: submitted)
            for job in cancelled {
                if let transfer = active.values.first(where: { $0.job === job }) {
                    fail(transfer, CancellationError())
                } else {
                    queue.removeAll { $0 === job }
                    job.finish(.failure(CancellationError()))
                }
            }
            if stopping {
                for transfer in Array(active.values) {
                    fail(
                        transfer,
                        HTTPError(
                            curlSetup: transfer.job.request, call: "CurlTransport", code: nil, detail: "the transport was shut down", kind: .shutdown)
                    )
                }
                for job in queue {
                    job.finish(
                        .failure(
                            HTTPError(
                                curlSetup: job.request, call: "CurlTransport", code: nil, detail: "the transport was shut down", kind: .shutdown)))
                }
                return
            }

            // Admit queued jobs while there is room.
            while active.count < options.maxConcurrent, !queue.isEmpty {
                let job = queue.removeFirst()
                do {
                    let easy = try CurlEasy(job.request, options: options)
                    let code = curl_multi_add_handle(multi.handle, easy.handle)
                    guard code == CURLM_OK else {
                        throw HTTPError(
                            curlSetup: job.request, call: "curl_multi_add_handle", code: Int32(code.rawValue),
                            detail: String(cString: curl_multi_strerror(code)))
                    }
                    active[easy.handle] = CurlTransfer(job: job, easy: easy, admittedAt: .now)
                } catch {
                    job.finish(.failure(error))
                }
            }

            var running: Int32 = 0
            let performed = curl_multi_perform(multi.handle, &running)
            if performed != CURLM_OK {
                let detail = String(cString: curl_multi_strerror(performed))
                for transfer in Array(active.values) {
                    fail(
                        transfer,
                        HTTPError(
                            curlSetup: transfer.job.request, call: "curl_multi_perform", code: Int32(performed.rawValue), detail: detail,
                            kind: .transfer))
                }
            }

            // Finished transfers.
            var left: Int32 = 0
            while let message = curl_multi_info_read(multi.handle, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle, let transfer = active[handle] else { continue }
                let result = kh_curl_msg_result(message)
                multi.remove(transfer.easy)
                active[handle] = nil
                transfer.job.finish(transfer.outcome(result))
            }

            // Slots freed up while jobs wait: admit them before waiting on anything.
            if !queue.isEmpty && active.count < options.maxConcurrent { continue }

            // Wait for sockets, curl's timers, or a wakeup.
            let waitMs: Int32 = active.isEmpty ? 60_000 : 1_000
            var ready: Int32 = 0
            _ = curl_multi_poll(multi.handle, nil, 0, waitMs, &ready)
        }
    }
}

/// A running transfer: the job, its easy handle and when it left the queue.
struct CurlTransfer {
    let job: CurlJob
    let easy: CurlEasy
    let admittedAt: ContinuousClock.Instant

    /// The response, or the error, once the transfer ended with `code`.
    func outcome(_ code: CURLcode) -> Result<HTTPResponse, any Error> {
        let request = job.request
        var timing = HTTPTiming(queued: admittedAt - job.submittedAt)
        timing.nameLookup = easy.microseconds(CURLINFO_NAMELOOKUP_TIME_T)
        timing.connect = easy.microseconds(CURLINFO_CONNECT_TIME_T)
        timing.firstByte = easy.microseconds(CURLINFO_STARTTRANSFER_TIME_T)
        timing.total = easy.microseconds(CURLINFO_TOTAL_TIME_T)
        guard code == CURLE_OK else {
            let kind: HTTPError.Kind
            switch code {
            case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .dns
            case CURLE_COULDNT_CONNECT: kind = .connect
            case CURLE_OPERATION_TIMEDOUT: kind = timing.connect == .zero && !easy.connected ? .connectTimeout : .timeout
            case CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE: kind = .connectionLost
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE: kind = .tls
            case CURLE_FILESIZE_EXCEEDED: kind = .responseTooLarge
            case CURLE_WRITE_ERROR where easy.sink.overflowed: kind = .responseTooLarge
            default: kind = .transfer
            }
            var detail = easy.errorMessage(code)
            if kind == .responseTooLarge { detail += " (limit \(easy.sink.limit) bytes)" }
            let error = HTTPError(
                kind: kind, method: request.method, url: request.url.absoluteString, call: "curl transfer", curlCode: Int32(code.rawValue),
                detail: detail)
            return .failure(error.scrubbing(request.authentication?.secrets ?? []))
        }
        let response = HTTPResponse(
            request: request, status: easy.long(CURLINFO_RESPONSE_CODE), headers: HTTPHeaders(easy.sink.headers), body: easy.sink.body, timing: timing
        )
        return .success(response)
    }
}

/// Owns the `CURLM*` handle. `wakeup()` may be called from any thread (libcurl allows
/// it); every other use happens on the engine's thread.
final class CurlMulti: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    init?() {
        guard let handle = curl_multi_init() else { return nil }
        self.handle = handle
    }

    deinit { curl_multi_cleanup(handle) }

    func wakeup() { _ = curl_multi_wakeup(handle) }

    func remove(_ easy: CurlEasy) { _ = curl_multi_remove_handle(handle, easy.handle) }
}

/// Where a transfer's callbacks write: the body (up to a cap) and the header fields
/// of the last response (a 100 Continue or redirect starts a new set).
final class ResponseSink {
    let limit: Int
    var body = Data()
    var headers: [(name: String, value: String)] = []
    var overflowed = false

    init(limit: Int) { self.limit = limit }

    func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.count + bytes.count <= limit else {
            overflowed = true
            return false
        }
        body.append(contentsOf: bytes)
        return true
    }

    func headerLine(_ bytes: UnsafeRawBufferPointer) {
        var count = bytes.count
        while count > 0, bytes[count - 1] == 0x0A || bytes[count - 1] == 0x0D { count -= 1 }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<count]), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            headers.removeAll()
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            headers.append((name: name, value: value))
        }
    }
}

/// Owns one `CURL*` easy handle, its header list, error buffer and callback sink.
/// Made, used and freed on the engine's thread.
final class CurlEasy {
    let handle: UnsafeMutableRawPointer
    let sink: ResponseSink
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var connectToList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let request: HTTPRequest

    init(_ request: HTTPRequest, options: CurlTransport.Options) throws {
        guard let handle = curl_easy_init() else {
            throw HTTPError(curlSetup: request, call: "curl_easy_init", code: nil, detail: "libcurl could not make an easy handle")
        }
        self.handle = handle
        self.request = request
        let size = Int(kh_curl_error_size())
        errorBuffer = .allocate(capacity: size)
        errorBuffer.initialize(repeating: 0, count: size)
        sink = ResponseSink(limit: request.maxResponseBytes ?? options.defaultMaxResponseBytes)
        try configure(options)
    }

    deinit {
        curl_easy_cleanup(handle)
        if let headerList { curl_slist_free_all(headerList) }
        if let connectToList { curl_slist_free_all(connectToList) }
        errorBuffer.deallocate()
    }

    /// True when the connection had been made (for telling a connect deadline from a total one).
    var connected: Bool { microseconds(CURLINFO_CONNECT_TIME_T) > .zero || microseconds(CURLINFO_STARTTRANSFER_TIME_T) > .zero }

    private func check(_ code: CURLcode, _ option: String) throws {
        guard code == CURLE_OK else {
            throw HTTPError(curlSetup: request, call: "curl_easy_setopt(\(option))", code: Int32(code.rawValue), detail: errorMessage(code))
        }
    }

    private func set(_ option: CURLoption, _ name: String, _ value: Int) throws {
        try check(kh_curl_easy_setopt_long(handle, option, value), name)
    }

    private func set(_ option: CURLoption, _ name: String, _ value: String) throws {
        try check(kh_curl_easy_setopt_string(handle, option, value), name)
    }

    private static func milliseconds(_ duration: Duration) -> Int { max(1, Int((duration.seconds * 1000).rounded(.up))) }

    private func configure(_ options: CurlTransport.Options) throws {
        try set(CURLOPT_URL, "CURLOPT_URL", request.url.absoluteString)
        try set(CURLOPT_NOSIGNAL, "CURLOPT_NOSIGNAL", 1)
        try set(CURLOPT_PROTOCOLS_STR, "CURLOPT_PROTOCOLS_STR", "http,https")
        try set(CURLOPT_REDIR_PROTOCOLS_STR, "CURLOPT_REDIR_PROTOCOLS_STR", "http,https")
        try set(CURLOPT_CONNECTTIMEOUT_MS, "CURLOPT_CONNECTTIMEOUT_MS", Self.milliseconds(request.connectTimeout ?? options.defaultConnectTimeout))
        try set(CURLOPT_TIMEOUT_MS, "CURLOPT_TIMEOUT_MS", Self.milliseconds(request.timeout ?? options.defaultTimeout))
        try check(kh_curl_easy_setopt_off_t(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(sink.limit)), "CURLOPT_MAXFILESIZE_LARGE")
        try check(kh_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer), "CURLOPT_ERRORBUFFER")
        if options.acceptCompressed { try set(CURLOPT_ACCEPT_ENCODING, "CURLOPT_ACCEPT_ENCODING", "") }
        if let path = options.caBundlePath { try set(CURLOPT_CAINFO, "CURLOPT_CAINFO", path) }
        if let path = options.unixSocketPath { try set(CURLOPT_UNIX_SOCKET_PATH, "CURLOPT_UNIX_SOCKET_PATH", path) }
        try configureTLS(options)

        // Callbacks get the sink through an unretained pointer: this object keeps it alive
        // for as long as the handle exists.
        let box = Unmanaged.passUnretained(sink).toOpaque()
        try check(
            kh_curl_easy_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, user in
                let sink = Unmanaged<ResponseSink>.fromOpaque(user!).takeUnretainedValue()
                let total = size * count
                guard total > 0, let data else { return 0 }
                return sink.appendBody(UnsafeRawBufferPointer(start: data, count: total)) ? total : 0
            }, "CURLOPT_WRITEFUNCTION")
        try check(kh_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, box), "CURLOPT_WRITEDATA")
        try check(
            kh_curl_easy_setopt_write_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, user in
                let sink = Unmanaged<ResponseSink>.fromOpaque(user!).takeUnretainedValue()
                let total = size * count
                if let data, total > 0 { sink.headerLine(UnsafeRawBufferPointer(start: data, count: total)) }
                return total
            }, "CURLOPT_HEADERFUNCTION")
        try check(kh_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, box), "CURLOPT_HEADERDATA")

        // Method and body.
        var headers = request.headers
        let method = request.method
        let body = request.body ?? ([.post, .put, .patch].contains(method) ? Data() : nil)
        if method == .head {
            try set(CURLOPT_NOBODY, "CURLOPT_NOBODY", 1)
        } else if method != .get || body != nil {
            if method != .post { try set(CURLOPT_CUSTOMREQUEST, "CURLOPT_CUSTOMREQUEST", method.rawValue) }
        }
        if let body, method != .head {
            try check(kh_curl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "CURLOPT_POSTFIELDSIZE_LARGE")
            // COPYPOSTFIELDS copies the bytes now, so the Data need not outlive this call.
            let copied = body.withUnsafeBytes { bytes -> CURLcode in
                guard let base = bytes.baseAddress, !bytes.isEmpty else {
                    return kh_curl_easy_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, "")
                }
                return kh_curl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base))
            }
            try check(copied, "CURLOPT_COPYPOSTFIELDS")
            if !headers.contains("Content-Type") {
                // An empty value removes the form type curl would add for a body.
                headers.set("Content-Type", body.isEmpty ? "" : "application/octet-stream")
            }
            if !headers.contains("Expect") { headers.set("Expect", "") }
        }

        // Credentials: added here, never stored in the request's headers.
        switch request.authentication {
        case .bearer(let token)?:
            headers.remove("Authorization")
            token.withValue { headers.add("Authorization", "Bearer " + $0) }
        case .awsSigV4(let credentials, let region, let service)?:
            try set(CURLOPT_AWS_SIGV4, "CURLOPT_AWS_SIGV4", "aws:amz:\(region):\(service)")
            try credentials.secretAccessKey.withValue { secret in
                try set(CURLOPT_USERPWD, "CURLOPT_USERPWD", credentials.accessKeyID + ":" + secret)
            }
            if let token = credentials.sessionToken {
                headers.remove("X-Amz-Security-Token")
                token.withValue { headers.add("X-Amz-Security-Token", $0) }
            }
        case .basic(let username, let password)?:
            headers.remove("Authorization")
            password.withValue { headers.add("Authorization", "Basic " + Data((username + ":" + $0).utf8).base64EncodedString()) }
        case nil:
            break
        }

        // User-Agent through curl's own option: libcurl 7.88 signs every header of the
        // list, and AWS's own SigV4 verifiers (botocore, as moto uses) never sign
        // User-Agent, so a listed one would break the signature there.
        if let agent = headers["User-Agent"], !agent.isEmpty {
            headers.remove("User-Agent")
            try set(CURLOPT_USERAGENT, "CURLOPT_USERAGENT", agent)
        }
        let signing: Bool
        if case .awsSigV4? = request.authentication { signing = true } else { signing = false }
        for field in headers {
            // "Name:" removes a header curl adds itself; "Name;" sends it empty. libcurl
            // 7.88 signs removal lines as empty headers it then does not send, so a
            // signed request keeps curl's own headers rather than a broken signature.
            let line: String
            if field.value.isEmpty, Self.curlOwnHeaders.contains(field.name.lowercased()) {
                if signing { continue }
                line = "\(field.name):"
            } else {
                line = field.value.isEmpty ? "\(field.name);" : "\(field.name): \(field.value)"
            }
            guard let appended = curl_slist_append(headerList, line) else {
                throw HTTPError(curlSetup: request, call: "curl_slist_append", code: nil, detail: "out of memory")
            }
            headerList = appended
        }
        if let headerList { try check(kh_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList), "CURLOPT_HTTPHEADER") }
    }

    /// The TLS material and connection options of ``CurlTransport/Options`` beyond the CA file.
    private func configureTLS(_ options: CurlTransport.Options) throws {
        if let data = options.caBundle { try setBlob(CURLOPT_CAINFO_BLOB, "CURLOPT_CAINFO_BLOB", data) }
        if let path = options.clientCertificatePath { try set(CURLOPT_SSLCERT, "CURLOPT_SSLCERT", path) }
        if let data = options.clientCertificate { try setBlob(CURLOPT_SSLCERT_BLOB, "CURLOPT_SSLCERT_BLOB", data) }
        if let path = options.clientKeyPath { try set(CURLOPT_SSLKEY, "CURLOPT_SSLKEY", path) }
        if let data = options.clientKey { try setBlob(CURLOPT_SSLKEY_BLOB, "CURLOPT_SSLKEY_BLOB", data) }
        if options.insecure {
            try set(CURLOPT_SSL_VERIFYPEER, "CURLOPT_SSL_VERIFYPEER", 0)
            try set(CURLOPT_SSL_VERIFYHOST, "CURLOPT_SSL_VERIFYHOST", 0)
        }
        if let hosts = options.noProxy { try set(CURLOPT_NOPROXY, "CURLOPT_NOPROXY", hosts) }
        for entry in options.connectTo {
            guard let appended = curl_slist_append(connectToList, entry) else {
                throw HTTPError(curlSetup: request, call: "curl_slist_append", code: nil, detail: "out of memory")
            }
            connectToList = appended
        }
        if let connectToList { try check(kh_curl_easy_setopt_slist(handle, CURLOPT_CONNECT_TO, connectToList), "CURLOPT_CONNECT_TO") }
    }

    /// A `struct curl_blob` option; libcurl copies the bytes (`CURL_BLOB_COPY`) before it returns.
    private func setBlob(_ option: CURLoption, _ name: String, _ data: Data) throws {
        var bytes = [UInt8](data)
        let code = bytes.withUnsafeMutableBytes { buffer -> CURLcode in
            var blob = curl_blob(data: buffer.baseAddress, len: buffer.count, flags: UInt32(CURL_BLOB_COPY))
            return withUnsafeMutablePointer(to: &blob) { kh_curl_easy_setopt_pointer(handle, option, $0) }
        }
        // The copy of key material in this process's memory goes as soon as libcurl has its own.
        for i in bytes.indices { bytes[i] = 0 }
        try check(code, name)
    }

    /// Headers curl adds on its own, which an empty value removes.
    private static let curlOwnHeaders: Set<String> = ["content-type", "expect", "accept", "user-agent", "host", "transfer-encoding"]

    /// curl's message for `code`: the error buffer when it wrote one, else `curl_easy_strerror`.
    func errorMessage(_ code: CURLcode) -> String {
        let buffer = String(cString: errorBuffer)
        return buffer.isEmpty ? String(cString: curl_easy_strerror(code)) : buffer
    }

    func long(_ info: CURLINFO) -> Int {
        var value = 0
        _ = kh_curl_easy_getinfo_long(handle, info, &value)
        return value
    }

    func microseconds(_ info: CURLINFO) -> Duration {
        var value: curl_off_t = 0
        _ = kh_curl_easy_getinfo_off_t(handle, info, &value)
        return .microseconds(Int64(value))
    }
}

extension HTTPError {
    /// A libcurl setup failure for `request`.
    init(curlSetup request: HTTPRequest, call: String, code: Int32?, detail: String, kind: Kind = .setup) {
        self.init(kind: kind, method: request.method, url: request.url.absoluteString, call: call, curlCode: code, detail: detail)
    }
}
