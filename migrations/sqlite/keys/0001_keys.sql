-- The key store (events/src/keys.rs): one key per subject of personal data, the server's
-- secret for name hashes, and legal holds. Not append-only: destroying a key is a delete.
create table subject_key (
    subject    text    primary key,
    user_id    text,
    room_id    text,
    period     integer,
    key        blob    not null,
    created_at integer not null
);
create index subject_key_by_user on subject_key (user_id);
create index subject_key_by_period on subject_key (period);

create table key_secret (
    name  text primary key,
    value blob not null
);

create table legal_hold (
    id         text    primary key,
    room_id    text,
    user_id    text,
    reason     text    not null,
    created_at integer not null
);
