//! The conformance suite on the in-memory store.

events::conformance_tests!(std::sync::Arc::new(events::MemoryStore::new()));
