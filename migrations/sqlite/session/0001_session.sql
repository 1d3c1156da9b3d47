-- Login sessions are not facts of the chat and are not rebuilt from the log: a token is
-- stored only as the SHA-256 of its bytes.
create table session (
    token_hash blob    primary key,
    user_id    text    not null,
    created_at integer not null,
    expires_at integer not null,
    revoked    integer not null default 0
);
create index session_by_user on session (user_id);
