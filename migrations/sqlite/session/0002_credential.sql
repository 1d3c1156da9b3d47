-- Password hashes (argon2id PHC strings), changed in place: a credential is not a fact of the
-- chat and never enters the log. An erased user's row is deleted.
create table credential (
    user_id       text    primary key,
    password_hash text    not null,
    updated_at    integer not null
);
