//! Stored event payloads read back by `events::codec::decode`: whatever the type name, schema
//! version and bytes (a corrupt or hostile row in the log), decoding must answer `Ok` or a
//! `DecodeError` and never panic or allocate without bound.
//!
//! Input layout, so that seeds are easy to write by hand: byte 0 picks the type name from
//! [`TYPES`], byte 1 is the schema version, the rest is the payload.
//!
//! On `Ok`, the event must survive today's encoding: encode it, decode that, get it back.
#![no_main]

use events::codec;
use libfuzzer_sys::fuzz_target;

/// Every type the log holds, plus names it must refuse.
const TYPES: [&str; 8] = [
    "UserNameClaimed",
    "UserRegistered",
    "RoomCreated",
    "MemberJoined",
    "MessagePosted",
    "messageposted",
    "MessagePosted\0",
    "",
];

fuzz_target!(|data: &[u8]| {
    let [kind, version, bytes @ ..] = data else {
        return;
    };
    let event_type = TYPES[usize::from(*kind) % TYPES.len()];
    let Ok(event) = codec::decode(event_type, u16::from(*version), bytes) else {
        return;
    };
    assert_eq!(event.type_name(), event_type);
    let (name, current, encoded) = codec::encode(&event);
    assert_eq!(name, event_type);
    let again = codec::decode(name, current, &encoded).expect("today's encoding decodes");
    assert_eq!(again, event);
});
