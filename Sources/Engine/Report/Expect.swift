// `expect TARGET KEY=VALUE ...`: the script checks itself against the state.

public struct ExpectFailure: Sendable, Equatable {
    public var location: SourceLocation
    public var statement: String
    public var message: String
}

extension Engine {
    /// Checks one expect statement; returns a failure per clause that does not hold.
    public func check(_ target: ExpectTarget, _ clauses: [ExpectClause], last: StepRecord?, statement: Statement) -> [ExpectFailure] {
        var failures: [ExpectFailure] = []
        for clause in clauses {
            let got = measure(target, clause.key, last: last)
            let targetName = Engine.describe(target)
            switch got {
            case let .failure(err):
                failures.append(ExpectFailure(location: clause.location, statement: statement.text, message: "\(targetName) \(clause.key): \(err.message)"))
            case let .success(value):
                if !Engine.matches(value, clause.value) {
                    failures.append(ExpectFailure(location: clause.location, statement: statement.text,
                                                  message: "\(targetName) \(clause.key) is \(value.text), expected \(Engine.describe(clause.value))"))
                }
            }
        }
        return failures
    }

    static func describe(_ t: ExpectTarget) -> String {
        switch t {
        case .machine: "machine"
        case .last: "last"
        case let .name(n): n
        case let .buffer(b): "\(b.process).\(b.buffer)"
        }
    }

    static func describe(_ v: ExpectValue) -> String {
        switch v {
        case let .integer(i): String(i)
        case let .bool(b): b ? "true" : "false"
        case let .word(w): w
        }
    }

    static func matches(_ got: Measured, _ want: ExpectValue) -> Bool {
        switch (got, want) {
        case let (.integer(a), .integer(b)): a == b
        case let (.bool(a), .bool(b)): a == b
        case let (.word(a), .word(b)): (a ?? "null").lowercased() == b.lowercased()
        case let (.bool(a), .word(b)): (a ? "true" : "false") == b.lowercased()
        default: false
        }
    }

    func measure(_ target: ExpectTarget, _ key: String, last: StepRecord?) -> Result<Measured, MeasureErrorBox> {
        func read<S>(_ keys: [ExpectKey<S>], _ subject: @autoclosure () -> S) -> Result<Measured, MeasureErrorBox> {
            guard let k = ExpectKeys.find(keys, key) else { return .failure(MeasureErrorBox("not measured yet")) }
            return .success(k.measure(subject()))
        }
        switch target {
        case .machine:
            return read(ExpectKeys.machine, state)
        case .last:
            guard let last else { return .failure(MeasureErrorBox("no step has run yet")) }
            return read(ExpectKeys.last, last)
        case let .name(name):
            if let d = state.deviceIndex(named: name) {
                guard let k = ExpectKeys.find(ExpectKeys.device, key) else { return .failure(MeasureErrorBox("not measured for devices")) }
                return .success(k.measure(state.devices[d]))
            }
            guard let p = state.processIndex(named: name) else {
                return .failure(MeasureErrorBox("no process or device named \(name) exists"))
            }
            return read(ExpectKeys.process, state.processes[p].meta)
        case let .buffer(ref):
            guard let p = state.processIndex(named: ref.process) else { return .failure(MeasureErrorBox("no process named \(ref.process)")) }
            guard let b = state.processes[p].meta.buffer(named: ref.buffer) else {
                return .failure(MeasureErrorBox("\(ref.process) has no buffer named \(ref.buffer) now"))
            }
            return read(ExpectKeys.buffer, BufferSubject(buffer: b, stats: state.bufferStats(p, b)))
        }
    }
}

struct MeasureErrorBox: Error {
    var message: String
    init(_ m: String) { message = m }
}
