-- Rooms people govern (issue 30): each member's role and mute, the room's settings, its bans,
-- its extra invites, and every code it ever had. Members already here keep their rows: each
-- room's owner becomes 'owner', everyone else 'member'. A room's member count is the count of
-- its member rows (a ban says nothing of whether the user was a member, so a stored count
-- could not follow it). The new tables are filled from the log by their projections, whose
-- checkpoints start at 0.
alter table room add column archived boolean not null default false;
alter table room add column retention_days bigint;
alter table room drop column member_count;

alter table room_member add column role text not null default 'member';
alter table room_member add column muted_until bigint;
update room_member m set role = 'owner'
from room r where r.id = m.room_id and r.owner = m.user_id;

create table room_ban (
    room_id   text   not null,
    user_id   text   not null,
    until     bigint,
    banned_by text   not null,
    banned_at bigint not null,
    primary key (room_id, user_id)
);

create table room_invite (
    room_id    text    not null,
    invite_id  text    not null,
    code       text    not null,
    code_hash  bytea   not null,
    max_uses   bigint,
    uses       bigint  not null default 0,
    expires_at bigint,
    created_by text    not null,
    created_at bigint  not null,
    revoked    boolean not null default false,
    primary key (room_id, invite_id)
);

create table room_code (
    code_hash bytea primary key,
    room_id   text  not null,
    invite_id text
);

-- A shadow table of a rebuild begun before this migration has the old shape: start over.
drop table if exists room__rebuild;
drop table if exists room_member__rebuild;
delete from projection_checkpoint where projection in ('room__rebuild', 'room_member__rebuild');
