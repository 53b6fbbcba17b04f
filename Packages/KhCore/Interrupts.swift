import Dispatch
import Foundation
import Synchronization

/// SIGINT and SIGTERM handling for the whole process.
///
/// kh's children run in process groups of their own, so a Ctrl-C at the terminal
/// reaches kh only. ``install()`` turns both signals into an orderly stop: every
/// registered handler runs (KhProcess kills its child groups first, evidence is
/// flushed next), then the process exits with 130. A second signal during that
/// stop exits at once.
public enum Interrupts {
    /// When a handler runs: lower first.
    public enum Stage: Int, Sendable, Comparable {
        /// Kill child process groups and wait for their output to drain.
        case killChildren = 0
        /// Write `run.json` as interrupted, flush records and summary.
        case flushEvidence = 1
        public static func < (a: Stage, b: Stage) -> Bool { a.rawValue < b.rawValue }
    }

    /// A registration; pass it to ``unregister(_:)``.
    public struct Token: Sendable, Hashable { let id: UInt64 }

    struct Handler: Sendable {
        let id: UInt64
        let stage: Stage
        let run: @Sendable (Int32) -> Void
    }

    struct State: Sendable {
        var nextID: UInt64 = 1
        var handlers: [Handler] = []
        var installed = false
        var stopping = false
        var exitOverride: (@Sendable (Int32) -> Void)?
    }

    private static let state = Mutex(State())
    private nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []
    private static let queue = DispatchQueue(label: "kh.interrupts")

    /// Registers a handler to run on SIGINT/SIGTERM, at a stage.
    @discardableResult
    public static func register(stage: Stage, _ run: @escaping @Sendable (Int32) -> Void) -> Token {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.handlers.append(Handler(id: id, stage: stage, run: run))
            return Token(id: id)
        }
    }

    /// Removes a handler.
    public static func unregister(_ token: Token) {
        state.withLock { $0.handlers.removeAll { $0.id == token.id } }
    }

    /// Whether an interrupt is being handled now.
    public static var isStopping: Bool { state.withLock { $0.stopping } }

    /// Installs the SIGINT/SIGTERM handlers (idempotent) and ignores SIGPIPE, so a
    /// closed stdout (`kh … | head`) is an error on write rather than a silent death.
    public static func install() {
        let first = state.withLock { state in
            defer { state.installed = true }
            return !state.installed
        }
        guard first else { return }
        signal(SIGPIPE, SIG_IGN)
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { handle(sig) }
            source.resume()
            sources.append(source)
        }
    }

    /// Exits with `code` as a command ends, unless an interrupt is being handled: then the
    /// interrupt's handlers finish and exit with 130 (a command that ends because its
    /// children were killed must not exit first with its own code, before the evidence is
    /// flushed). If they have not exited within `grace`, exits with 130 itself.
    public static func exitAfterCommand(_ code: Int32, grace: TimeInterval = 60) {
        guard isStopping else { exit(code) }
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { exit(KhExitCode.interrupted.rawValue) }
    }

    /// Runs the handlers as a signal would, then exits with 130. Exposed for tests
    /// of handler ordering through `exitOverride`.
    static func handle(_ signal: Int32) {
        let (handlers, again, exitOverride) = state.withLock { state -> ([Handler], Bool, (@Sendable (Int32) -> Void)?) in
            let again = state.stopping
            state.stopping = true
            return (state.handlers.sorted { $0.stage < $1.stage }, again, state.exitOverride)
        }
        if again {
            // A second Ctrl-C: no more waiting.
            FileHandle.standardError.write(Data("kh: interrupted again, exiting now\n".utf8))
            _exit(KhExitCode.interrupted.rawValue)
        }
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        FileHandle.standardError.write(Data("kh: \(name) received: stopping children and flushing evidence\n".utf8))
        // Handlers run off the signal queue so a second signal can still be seen.
        Thread.detachNewThread {
            for handler in handlers { handler.run(signal) }
            if let exitOverride { exitOverride(KhExitCode.interrupted.rawValue) } else { exit(KhExitCode.interrupted.rawValue) }
        }
    }
}
