-- The unique index on event ids leaves the log's file. Event ids are hashes, so every append
-- landed on a random leaf of that index, and once the index outgrew a commit group each
-- appended event wrote a 4 KiB index page of its own. The ids are now indexed in a file of
-- their own beside the log (`events-ids.db`), filled in large sorted batches and checked
-- together with the ids appended since (events/src/sqlite_ids.rs). SQLite cannot drop a
-- table constraint, so the table is copied without it; positions are kept.
create table event_next (
    position       integer primary key,
    stream_id      text    not null,
    version        integer not null check (version > 0),
    event_id       blob    not null,
    event_type     text    not null,
    schema_version integer not null check (schema_version > 0),
    recorded_at    integer not null,
    payload        blob    not null,
    hash           blob    not null,
    unique (stream_id, version)
);

insert into event_next (position, stream_id, version, event_id, event_type, schema_version,
                        recorded_at, payload, hash)
    select position, stream_id, version, event_id, event_type, schema_version, recorded_at,
           payload, hash
    from event order by position;

drop table event;

alter table event_next rename to event;

create trigger event_no_update before update on event
begin
    select raise(abort, 'the event log is append-only: update refused');
end;

create trigger event_no_delete before delete on event
begin
    select raise(abort, 'the event log is append-only: delete refused');
end;
