-- Direct rooms and blocks (issue 32). A direct room's row names its two people (`direct_a`,
-- `direct_b`, in the order of their ids; null for a group room): its name is the other one's,
-- read when it is shown. Its `owner` is '' and its `room_hash_id` 'direct:<id>' (the column
-- is unique and no code looks like that); the server answers null and "" for them. Who blocks
-- whom: filled from the log by its projection, whose checkpoint starts at 0.
alter table room add column direct_a text;
alter table room add column direct_b text;

create table user_block (
    blocker_id text    not null,
    blocked_id text    not null,
    blocked_at bigint not null,
    primary key (blocker_id, blocked_id)
);
create index user_block_blocked on user_block (blocked_id);

-- A shadow table of a rebuild begun before this migration has the old shape: start over.
drop table if exists room__rebuild;
delete from projection_checkpoint where projection = 'room__rebuild';
