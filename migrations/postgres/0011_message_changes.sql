-- Messages that change (issue 31): each record keeps the room's version at its latest change,
-- the message it answers, the time of its latest edit and how many edits it had; who reacted
-- to it with what, in the order of reacting (`since`: the position of the reaction that brought
-- the symbol, kept while anyone still reacts with it, orders the symbols); and the texts it had before (for its author's
-- export), scrubbed with it on erasure and retention. Rows written before this migration know
-- no version: the table is emptied and its projection, back at checkpoint 0, fills it again
-- from the log at the next start (texts past retention stay placeholders from the first sweep).
alter table room_record add column version bigint not null default 0;
alter table room_record add column reply_to bigint;
alter table room_record add column edited_at bigint;
alter table room_record add column edits bigint not null default 0;

create table room_reaction (
    room_id  text   not null,
    seq      bigint not null,
    emoji    text   not null,
    user_id  text   not null,
    position bigint not null,
    since    bigint not null,
    primary key (room_id, seq, emoji, user_id)
);

create table room_record_version (
    room_id text   not null,
    seq     bigint not null,
    edit    bigint not null,
    user_id text   not null,
    message text   not null,
    time    bigint not null,
    primary key (room_id, seq, edit)
);
create index room_record_version_by_user on room_record_version (user_id);

truncate room_record;
drop table if exists room_record__rebuild;
delete from projection_checkpoint where projection in ('room_record', 'room_record__rebuild');
