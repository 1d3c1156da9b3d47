-- Read tables kept by the projection workers, with each projection's checkpoint.
create table projection_checkpoint (
    projection text   primary key,
    position   bigint not null
);

create table "user" (
    id            text   primary key,
    name          text   not null,
    name_lower    text   not null unique,
    password_hash text   not null,
    avatar_image  text   not null default '',
    created_at    bigint not null
);

create table room (
    id           text   primary key,
    name         text   not null,
    description  text   not null,
    owner        text   not null,
    avatar_image text   not null,
    room_hash_id text   not null unique,
    create_time  bigint not null,
    update_time  bigint not null,
    member_count bigint not null default 0,
    last_seq     bigint not null default 0
);

create table room_member (
    room_id   text   not null,
    user_id   text   not null,
    joined_at bigint not null,
    primary key (room_id, user_id)
);
create index room_member_by_user on room_member (user_id);

create table room_record (
    room_id    text   not null,
    seq        bigint not null check (seq > 0),
    message_id text   not null,
    user_id    text   not null,
    message    text   not null,
    time       bigint not null,
    event_id   bytea  not null,
    position   bigint not null,
    primary key (room_id, seq)
);
