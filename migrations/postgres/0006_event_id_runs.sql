-- The event-id index apart from the log (see events/src/postgres_ids.rs). A unique index on
-- event.event_id is a tree over every id ever appended, with random keys: once it outgrows
-- memory each append reads and dirties a page of it, and the cost per message grows with the
-- history. Instead:
-- - every id goes first to a small young table with a unique index, written by the append's
--   own insert (a statement trigger did the same for 13 % more of the database's time);
-- - a full young table is renamed into a run, a table that never changes again; runs of one
--   level are merged into one of the next;
-- - every process keeps a Bloom filter of each run in memory (stored in event_id_run), so a new
--   id is proven absent without reading a run; a run without a usable filter is probed by the
--   database in the append's transaction.
-- Every change to the set of runs or their filters happens under the appenders' advisory lock
-- and moves event_id_state.generation; an append whose process saw another generation fails
-- (SQLSTATE CR001) and is tried again after the process reads the runs again.
create table event_id_young (
    event_id uuid   primary key,
    position bigint not null
);

create table event_id_run (
    run           bigint  primary key,
    level         integer not null,
    ids           bigint  not null,
    filter_format integer,
    filter        bytea
);

create table event_id_state (
    one        boolean primary key check (one),
    generation bigint  not null,
    next_run   bigint  not null,
    -- The first position the young table may hold: its size, estimated from the log's head.
    young_from bigint  not null
);

-- Fails the append's transaction when the process saw another generation of the runs
-- (CR001).
create function event_id_check(seen bigint) returns void language plpgsql as $$
begin
    if (select generation from event_id_state where one) is distinct from seen then
        raise exception 'the event-id runs changed since generation %', seen
            using errcode = 'CR001';
    end if;
end
$$;

-- Fails the append's transaction when `hit`: an id of the append is stored in run `run` (each
-- probe of a run is a statement of its own, prepared once per connection).
create function event_id_stored(hit boolean, run bigint) returns void language plpgsql as $$
begin
    if hit then
        raise exception 'an event id of the append is stored (run %)', run
            using errcode = 'unique_violation';
    end if;
end
$$;

-- The positions of the events stored under `ids` in the young table, and under `run_ids[i]` in
-- run `runs[i]` (the runs whose filters may hold that id, or that have no filter).
create function event_id_find(ids uuid[], runs bigint[], run_ids uuid[])
returns table (found bigint) language plpgsql stable as $$
declare
    r bigint;
begin
    return query select y.position from event_id_young y where y.event_id = any(ids);
    for r in select distinct u.run from unnest(runs) as u(run) loop
        return query execute
            format('select position from event_id_run_%s where event_id = any($1)', r)
            using array(select p.id from unnest(runs, run_ids) as p(run, id) where p.run = r);
    end loop;
end
$$;

-- The ids already in the log become run 1 (its level and filter are set by the first process
-- that opens the log).
do $$
begin
    if exists (select 1 from event) then
        create table event_id_run_1 as select event_id, position from event;
        alter table event_id_run_1 add primary key (event_id);
        insert into event_id_run (run, level, ids) values (1, 0, (select count(*) from event_id_run_1));
    end if;
end
$$;

insert into event_id_state (one, generation, next_run, young_from)
    values (true, 1, 2, (select coalesce(max(position), 0) + 1 from event));

alter table event drop constraint event_event_id_key;
