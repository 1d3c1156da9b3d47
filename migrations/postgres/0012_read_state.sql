-- Read markers and presence (issue 32). `read_marker`: how far each member has read each
-- room; state beside the log, not a projection: written in place by the server (forward only),
-- kept when the projections' tables are rebuilt, and removed with the user on erasure.
-- `presence_node`: each running process's heartbeat (database time), and the version of the
-- set of users it has sockets of; `presence_user`: that set. A process that starts reads who
-- is online from them; a node whose heartbeat is old is dropped with its users.
create table read_marker (
    user_id       text   not null,
    room_id       text   not null,
    last_read_seq bigint not null check (last_read_seq >= 0),
    primary key (user_id, room_id)
);

create table presence_node (
    node    text        primary key,
    seen_at timestamptz not null,
    version bigint      not null
);

create table presence_user (
    node    text not null references presence_node (node) on delete cascade,
    user_id text not null,
    primary key (node, user_id)
);
