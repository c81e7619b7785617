// Idle expiry over an IndexedTable of rows with a deadline (sessions, address-only rows,
// redirected connections): one test for a stale row a lookup found, and one incremental sweep
// that walks a bounded number of rows from the table's saved cursor (RowStore.nextStaleRow),
// so no pause grows with the table. The caller removes what it is handed: its removal
// touches other tables and records events, which a loop inside the table could not do.

/// A row with an idle deadline.
protocol ExpiringRow: TableRow {
    /// NATTime nanoseconds at and after which the row is stale.
    var expires: UInt64 { get }
}

extension Session: ExpiringRow {}
extension AddressOnlyFlow: ExpiringRow {}
extension RedirectSession: ExpiringRow {}

extension IndexedTable where Row: ExpiringRow {
    /// Whether `row` (a lookup's answer: -1 for none) is there but stale at `now`.
    @inline(__always)
    func isStale(_ row: Int32, now: NATTime) -> Bool {
        row >= 0 && store.rows[Int(row)].expires <= now.nanoseconds
    }
}
