// A fixed number of elements allocated once, owned by one value: not copyable, freed by its
// deinit. The core's tables, maps and pools keep their arrays in these (or are such an owner
// themselves), so nothing frees memory by hand.

struct FixedBuffer<Element: BitwiseCopyable>: ~Copyable {
    let base: UnsafeMutablePointer<Element>

    init(count: Int, repeating value: Element) {
        base = .allocate(capacity: count)
        base.initialize(repeating: value, count: count)
    }

    deinit { base.deallocate() }

    @inline(__always)
    subscript(i: Int) -> Element {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}
