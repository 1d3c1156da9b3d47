-- Read tables kept by the projection workers. Each projection stores the last global
-- position it applied in projection_checkpoint, in the same transaction as its rows.
create table projection_checkpoint (
    projection text    primary key,
    position   integer not null
);

create table user (
    id            text    primary key,
    name          text    not null,
    name_lower    text    not null unique,
    password_hash text    not null,
    avatar_image  text    not null default '',
    created_at    integer not null
);

create table room (
    id           text    primary key,
    name         text    not null,
    description  text    not null,
    owner        text    not null,
    avatar_image text    not null,
    room_hash_id text    not null unique,
    create_time  integer not null,
    update_time  integer not null,
    member_count integer not null default 0,
    last_seq     integer not null default 0
);

create table room_member (
    room_id   text    not null,
    user_id   text    not null,
    joined_at integer not null,
    primary key (room_id, user_id)
);
create index room_member_by_user on room_member (user_id);

create table room_record (
    room_id    text    not null,
    seq        integer not null check (seq > 0),
    message_id text    not null,
    user_id    text    not null,
    message    text    not null,
    time       integer not null,
    event_id   blob    not null,
    position   integer not null,
    primary key (room_id, seq)
);
