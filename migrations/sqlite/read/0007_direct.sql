-- Direct rooms and blocks (issue 32). A direct room's row names its two people (`direct_a`,
-- `direct_b`, in the order of their ids; null for a group room): its name is the other one's,
-- read when it is shown. Its `owner` is '' and its `room_hash_id` 'direct:<id>' (the column
-- is unique and no code looks like that); the server answers null and "" for them. Who blocks
-- whom: kept by the projection of users (blocks are events of their streams); no log written
-- before this migration holds a block.
alter table room add column direct_a text;
alter table room add column direct_b text;

create table user_block (
    blocker_id text    not null,
    blocked_id text    not null,
    blocked_at integer not null,
    primary key (blocker_id, blocked_id)
);
create index user_block_blocked on user_block (blocked_id);

-- A rebuild begun before this migration has the old shape (or lacks `user_block`): start over.
drop table if exists room__rebuild;
drop table if exists user__rebuild;
delete from projection_checkpoint where projection in ('room__rebuild', 'user__rebuild');
