//! What the server does per message to count it and to rate-limit it allocates nothing once
//! warm: the counters, the latency histograms, a refusal's count, and the per-user limit.

use chatroom::metrics::{self, METRICS};
use chatroom::ratelimit::Buckets;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting this thread's allocations.
struct Counting;

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's guarantees for `layout` are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn one_message(limit: &Buckets) {
    assert!(limit.take("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
    METRICS.appends.inc();
    METRICS.events_appended.inc_by(3);
    METRICS.append_latency.observe(Duration::from_micros(900));
    METRICS.messages_acked.inc();
    METRICS.ack_latency.observe(Duration::from_micros(1500));
    METRICS.deliveries.inc();
    METRICS.socket_workers.inc();
    METRICS.socket_workers.dec();
    metrics::rejected("rate_limited");
    metrics::rejected_status(axum::http::StatusCode::TOO_MANY_REQUESTS);
}

#[test]
fn counting_and_limiting_a_message_allocates_nothing() {
    let limit = Buckets::new(1e9, 1e9);
    // The first time makes the statics, the user's key and the refusals' entries.
    one_message(&limit);
    let before = allocations();
    for _ in 0..10_000 {
        one_message(&limit);
    }
    assert_eq!(allocations() - before, 0, "allocations for 10,000 messages");
}
