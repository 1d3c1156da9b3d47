-- The log's Ed25519 signing key (src/signing.rs), beside the key store: its 32-byte seed,
-- made by the first process that starts. One row; checkpoints name it by key id.
create table log_signing_key (
    id         smallint primary key check (id = 1),
    seed       bytea    not null,
    created_at bigint   not null
);
