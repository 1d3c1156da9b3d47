-- The append-only event log. position is the global order; (stream_id, version) the order
-- within a stream. Appenders serialise on a transaction advisory lock (see events/postgres.rs),
-- so positions become visible in order and a reader by position never skips an event.
create table event (
    position       bigint   generated always as identity primary key,
    stream_id      text     not null,
    version        bigint   not null check (version > 0),
    event_id       uuid     not null unique,
    event_type     text     not null,
    schema_version smallint not null check (schema_version > 0),
    recorded_at    bigint   not null,
    payload        bytea    not null,
    hash           bytea    not null,
    unique (stream_id, version)
);

create function event_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'the event log is append-only: % refused', tg_op;
end
$$;

create trigger event_no_update_or_delete before update or delete on event
    for each row execute function event_append_only();

create trigger event_no_truncate before truncate on event
    for each statement execute function event_append_only();
