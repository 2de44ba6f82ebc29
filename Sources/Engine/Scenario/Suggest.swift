// "did you mean ...?" for a misspelt name, verb, option or key.

public enum Suggest {
    /// The closest candidate within edit distance 2 (1 for words of up to three letters, where
    /// two edits would make `rss` look like `ram`), if any.
    public static func closest(to word: String, among candidates: [String]) -> String? {
        let limit = word.count <= 3 ? 1 : 2
        var best: (name: String, distance: Int)?
        for candidate in candidates where candidate != word {
            let d = distance(word, candidate)
            if d <= limit, d < candidate.count, d < (best?.distance ?? .max) { best = (candidate, d) }
        }
        return best?.name
    }

    /// `did you mean 'x'? ` to put in front of a hint, or nothing.
    public static func prefix(_ word: String, among candidates: [String]) -> String {
        closest(to: word, among: candidates).map { "did you mean '\($0)'? " } ?? ""
    }

    /// Edit distance counting an insertion, a deletion, a substitution or a swap of two
    /// neighbours (`iotbl` → `iotlb`) as one edit; case-sensitive, on Characters.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var before = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], before[j - 2] + 1)
                }
            }
            (before, previous, current) = (previous, current, before)
        }
        return previous[b.count]
    }
}
