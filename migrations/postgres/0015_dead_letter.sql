-- Dead letters (issue 33): events a projection could not apply (undecodable, sealed bytes that
-- do not open, a change the tables refuse), parked with the error so that the projection goes
-- on with the next event. State beside the log, not a projection: `chatroom projections
-- retry` applies them again and removes those that apply. The error names no row values.
create table projection_dead_letter (
    projection text    not null,
    position   bigint  not null,
    stream     text    not null,
    version    bigint  not null,
    error      text    not null,
    parked_at  bigint  not null,
    primary key (projection, position)
);
