-- The rooms keep their recent client ids themselves (the idempotency window), so the log needs
-- no index of event ids: drop migration 6's tables and functions. The event table is not
-- touched. Runs with the other migrations, in one transaction.
do $$
declare
    run record;
begin
    for run in select tablename from pg_tables
               where schemaname = current_schema() and tablename like 'event\_id\_run\_%'
    loop
        execute format('drop table %I', run.tablename);
    end loop;
end
$$;

drop function if exists event_id_find(uuid[], bigint[], uuid[]);
drop function if exists event_id_stored(boolean, bigint);
drop function if exists event_id_check(bigint);
drop table if exists event_id_run;
drop table if exists event_id_young;
drop table if exists event_id_state;
