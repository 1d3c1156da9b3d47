//! Decides, when the tests are built, which of them cannot run here, so that cargo reports
//! them as ignored with the reason rather than as passed: `cfg(no_test_postgres)` without
//! `CHATROOM_TEST_DATABASE_URL`, `cfg(no_test_eventstore)` without `EVENTSTORE_URL`,
//! `cfg(no_test_eventstore_to)` without `EVENTSTORE_TO_URL` (a second server). A test
//! that needs one carries `#[cfg_attr(no_test_postgres, ignore = "...")]`. The packages
//! `actors`, `projections` and `chatroom` use this same script.
//!
//! libtest can only ignore a test when it is built, hence a build script: cargo reruns it, and
//! rebuilds the package, when any of them changes.

fn main() {
    for (var, cfg) in [
        ("CHATROOM_TEST_DATABASE_URL", "no_test_postgres"),
        ("EVENTSTORE_URL", "no_test_eventstore"),
        ("EVENTSTORE_TO_URL", "no_test_eventstore_to"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
