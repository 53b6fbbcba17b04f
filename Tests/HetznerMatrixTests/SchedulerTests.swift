import Foundation
import HetznerMatrix
import KhCore
import Synchronization
import Testing

@Suite("Matrix scheduler")
struct SchedulerTests {
    static func scenarios(_ spec: [(String, Int)]) -> [ScheduledScenario] { spec.map { ScheduledScenario(name: $0.0, tier: $0.1) } }

    /// A recorder of start/end order with a configurable outcome per scenario.
    final class Recorder: Sendable {
        let events = Mutex<[String]>([])
        let running = Mutex<(now: Int, peak: Int)>((0, 0))
        let failing: Set<String>
        init(failing: Set<String> = []) { self.failing = failing }

        func execute(_ s: ScheduledScenario, sleep: Duration = .milliseconds(20)) async -> ScenarioResult {
            events.withLock { $0.append("start \(s.name)") }
            running.withLock {
                $0.now += 1
                $0.peak = max($0.peak, $0.now)
            }
            try? await Task.sleep(for: sleep)
            running.withLock { $0.now -= 1 }
            events.withLock { $0.append("end \(s.name)") }
            return ScenarioResult(name: s.name, tier: s.tier, status: failing.contains(s.name) ? .failed : .passed, message: "")
        }
    }

    @Test("runs in configured order, one at a time at concurrency 1")
    func sequential() async {
        let recorder = Recorder()
        let results = await MatrixScheduler(concurrency: 1, keepGoing: false).run(Self.scenarios([("a", 1), ("b", 1), ("c", 1)])) {
            await recorder.execute($0)
        }
        #expect(results.map(\.name) == ["a", "b", "c"])
        #expect(recorder.events.withLock { $0 } == ["start a", "end a", "start b", "end b", "start c", "end c"])
        #expect(recorder.running.withLock { $0.peak } == 1)
    }

    @Test("never more than N at once; results in configured order")
    func bounded() async {
        let recorder = Recorder()
        let names = (1...9).map { ("s\($0)", 1) }
        let results = await MatrixScheduler(concurrency: 3, keepGoing: false).run(Self.scenarios(names)) { await recorder.execute($0) }
        #expect(results.map(\.name) == names.map(\.0))
        #expect(recorder.running.withLock { $0.peak } <= 3)
        #expect(recorder.running.withLock { $0.peak } >= 2)
        // Starts follow the configured order.
        let starts = recorder.events.withLock { $0 }.filter { $0.hasPrefix("start") }
        #expect(starts == names.map { "start \($0.0)" })
    }

    @Test("a failing tier stops escalation; later tiers are skipped with a reason")
    func tiersStop() async {
        let recorder = Recorder(failing: ["b"])
        let results = await MatrixScheduler(concurrency: 2, keepGoing: false).run(Self.scenarios([("a", 1), ("b", 1), ("c", 2), ("d", 3)])) {
            await recorder.execute($0)
        }
        #expect(results.map(\.status) == [.passed, .failed, .skipped, .skipped])
        #expect(results[2].message.contains("tier 1 failed"))
        #expect(!recorder.events.withLock { $0 }.contains("start c"))
    }

    @Test("--keep-going runs every tier; a tier never starts before the previous ends")
    func keepGoing() async {
        let recorder = Recorder(failing: ["a"])
        let results = await MatrixScheduler(concurrency: 4, keepGoing: true).run(Self.scenarios([("c", 2), ("a", 1), ("b", 1)])) {
            await recorder.execute($0)
        }
        #expect(results.map(\.status) == [ScenarioStatus.passed, .failed, .passed])
        let events = recorder.events.withLock { $0 }
        let startC = events.firstIndex(of: "start c")!
        #expect(events.firstIndex(of: "end a")! < startC && events.firstIndex(of: "end b")! < startC)
    }

    @Test("the ideal makespan is greedy list scheduling per tier")
    func ideal() {
        let s = Self.scenarios([("a", 1), ("b", 1), ("c", 1), ("d", 2)])
        let durations = ["a": 3.0, "b": 1.0, "c": 1.0, "d": 2.0]
        #expect(MatrixScheduler.idealMakespan(s, durations: durations, concurrency: 2) == 3 + 2)
        #expect(MatrixScheduler.idealMakespan(s, durations: durations, concurrency: 1) == 5 + 2)
    }
}
