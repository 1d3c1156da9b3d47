-- The key store (events/src/keys.rs): one key per subject of personal data, the server's
-- secret for name hashes, and legal holds. Not append-only: destroying a key is a delete.
-- key_epoch counts destructions, so that every process forgets the keys it keeps in memory.
create table subject_key (
    subject    text   primary key,
    user_id    text,
    room_id    text,
    period     bigint,
    key        bytea  not null,
    created_at bigint not null
);
create index subject_key_by_user on subject_key (user_id);
create index subject_key_by_period on subject_key (period);

create table key_secret (
    name  text  primary key,
    value bytea not null
);

create table legal_hold (
    id         text   primary key,
    room_id    text,
    user_id    text,
    reason     text   not null,
    created_at bigint not null
);

create table key_epoch (
    epoch bigint not null
);
insert into key_epoch values (0);
