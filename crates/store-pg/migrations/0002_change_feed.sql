-- Version 2: the change feed.
--
-- One row per insert, in-place update and state change (change 0 created, 1 updated, 2 state;
-- at_ns when), written in the transaction of the change. `seq` is not a sequence: the writer
-- takes it from pharos_store_head.last_seq while it holds that row's lock, so seqs are assigned
-- and committed in the same order and a reader that sees seq N sees every seq below N
-- (a bigserial would let a later seq commit first, and a reader could skip the earlier one).
-- Retention deletes the rows of the messages it deletes. A database migrated from version 1
-- starts with an empty feed.

ALTER TABLE pharos_store_head ADD COLUMN last_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE pharos_changes (
    seq bigint PRIMARY KEY,
    message_id bigint NOT NULL,
    change smallint NOT NULL,
    at_ns bigint NOT NULL
);
CREATE INDEX pharos_changes_message ON pharos_changes (message_id);
