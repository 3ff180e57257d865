-- Version 1: the messages, their indexed copies and their addresses.
--
-- `doc` (YANG-JSON, exactly the text pharos_model::json::encode_string wrote, as SQLite stores it)
-- is the source of truth; the other columns are copies made for filtering and ordering. Times are
-- ns since the Unix epoch (clamped to the i64 range), so filters and paging cursors mean exactly
-- what they mean on SQLite; severity is 0 (info) ..= 4 (critical); state is 0 open,
-- 1 acknowledged, 2 closed, NULL for logs and counters; text_lc is the message text lower-cased
-- by Rust's str::to_lowercase (the same folding as SQLite's copy).
-- `pharos_store_head` is one row: the newest id ever assigned, so ids are never reused after
-- retention; writers lock it first (SELECT ... FOR UPDATE), which orders them.

CREATE TABLE pharos_store_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id bigint NOT NULL
);
INSERT INTO pharos_store_head (one, last_id) VALUES (true, 0);

CREATE TABLE pharos_messages (
    id bigint PRIMARY KEY,
    event_ns bigint NOT NULL,
    receive_ns bigint NOT NULL,
    kind text NOT NULL,
    severity smallint NOT NULL,
    nsf text NOT NULL,
    rule text,
    text_lc text,
    state smallint,
    state_changed_ns bigint,
    end_ns bigint,
    acked_by text,
    acked_ns bigint,
    ack_comment text,
    doc json NOT NULL
);
-- Every index ends in (event_ns, id), the order of every page, so a filtered page is an ordered
-- walk of one index that stops after the page.
CREATE INDEX pharos_messages_time ON pharos_messages (event_ns, id);
CREATE INDEX pharos_messages_kind_severity_time
    ON pharos_messages (kind, severity, event_ns, id);
CREATE INDEX pharos_messages_nsf_time ON pharos_messages (nsf, event_ns, id);
CREATE INDEX pharos_messages_rule_time ON pharos_messages (rule, event_ns, id)
    WHERE rule IS NOT NULL;
CREATE INDEX pharos_messages_state_time ON pharos_messages (state, event_ns, id)
    WHERE state IS NOT NULL;

-- Every (role, address) a message names: role 0 source, 1 destination; addresses are host
-- addresses (/32, /128), so a prefix filter `addr <<= cidr` is one range of the B-tree, and
-- families never mix (inet orders by family first; an IPv4-mapped IPv6 address is IPv6).
CREATE TABLE pharos_message_addrs (
    message_id bigint NOT NULL,
    role smallint NOT NULL,
    addr inet NOT NULL,
    event_ns bigint NOT NULL,
    PRIMARY KEY (message_id, role, addr)
);
CREATE INDEX pharos_message_addrs_addr_time ON pharos_message_addrs (addr, event_ns);
