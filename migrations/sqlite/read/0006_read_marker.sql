-- Read markers (issue 32): how far each member has read each room. State beside the log, not a
-- projection: written in place by the server (forward only), kept when the projections'
-- tables are rebuilt, and removed with the user on erasure.
create table read_marker (
    user_id       text    not null,
    room_id       text    not null,
    last_read_seq integer not null check (last_read_seq >= 0),
    primary key (user_id, room_id)
);
