-- Room actor snapshots: the state a room's actor had after folding in its stream up to
-- `version`, so that starting it again reads only the events after that. Derived data: the
-- table can be emptied at any time, and a snapshot whose `hash` is not the hash of the event
-- at (`stream_id`, `version`) in the log is ignored.
create table snapshot (
    stream_id  text    primary key,
    version    bigint  not null check (version > 0),
    hash       bytea   not null,
    format     integer not null,
    state      bytea   not null,
    saved_at   bigint  not null
);
