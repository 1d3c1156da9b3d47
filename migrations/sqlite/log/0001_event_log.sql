-- The append-only event log. position is the global order; (stream_id, version) the order
-- within a stream. Triggers make the database itself refuse to change or remove an event.
create table event (
    position       integer primary key,
    stream_id      text    not null,
    version        integer not null check (version > 0),
    event_id       blob    not null unique,
    event_type     text    not null,
    schema_version integer not null check (schema_version > 0),
    recorded_at    integer not null,
    payload        blob    not null,
    hash           blob    not null,
    unique (stream_id, version)
);

create trigger event_no_update before update on event
begin
    select raise(abort, 'the event log is append-only: update refused');
end;

create trigger event_no_delete before delete on event
begin
    select raise(abort, 'the event log is append-only: delete refused');
end;
