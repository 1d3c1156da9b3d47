-- Log format 2: user names come sealed from the log and no password hash is kept here (they
-- live in the credential table). An erased user's row keeps its id, reads as "Deleted user"
-- and holds no name_lower, so the name can be registered again. The old table is kept as
-- user_format_1 (a server refuses an old log before it migrates; `chatroom upgrade` starts
-- new read tables).
alter table "user" rename to user_format_1;
alter index user_pkey rename to user_format_1_pkey;
alter index user_name_lower_key rename to user_format_1_name_lower_key;
create table "user" (
    id           text   primary key,
    name         text   not null,
    name_lower   text   unique,
    avatar_image text   not null default '',
    created_at   bigint not null,
    erased_at    bigint
);
delete from projection_checkpoint where projection in ('user', 'user__rebuild');
-- A message whose text is gone (its author erased, or past retention) is a placeholder.
alter table room_record add column deleted boolean not null default false;

-- Password hashes, changed in place (src/auth.rs).
create table credential (
    user_id       text   primary key,
    password_hash text   not null,
    updated_at    bigint not null
);
