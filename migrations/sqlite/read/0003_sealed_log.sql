-- Log format 2: user names come sealed from the log and no password hash is kept here (they
-- live in the credentials table of sessions.db). An erased user's row keeps its id, reads as
-- "Deleted user" and holds no name_lower, so the name can be registered again. The old table
-- is kept as user_format_1 (a server refuses an old log before it migrates this database;
-- `chatroom upgrade` starts new read tables).
alter table user rename to user_format_1;
create table user (
    id           text    primary key,
    name         text    not null,
    name_lower   text    unique,
    avatar_image text    not null default '',
    created_at   integer not null,
    erased_at    integer
);
delete from projection_checkpoint where projection in ('user', 'user__rebuild');
-- A message whose text is gone (its author erased, or past retention) is a placeholder.
alter table room_record add column deleted integer not null default 0;
