-- Message search (GET /api/room/{id}/search): the text lower-cased with white space folded,
-- written by the room_record projection. Rows written before this migration hold '' until
-- `chatroom projections rebuild room_record` fills them from the log.
alter table room_record add column search_text text not null default '';
