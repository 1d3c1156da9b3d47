-- Login sessions: not facts of the chat, not rebuilt from the log; only a token's SHA-256 is
-- stored.
create table session (
    token_hash bytea   primary key,
    user_id    text    not null,
    created_at bigint  not null,
    expires_at bigint  not null,
    revoked    boolean not null default false
);
create index session_by_user on session (user_id);
