-- Version 3: the API tokens and the subscriptions, shared by the nodes of a cluster (the tables
-- a single node keeps in <data_dir>/auth.db and <data_dir>/subscriptions.db, same columns).
--
-- pharos_tokens: only the SHA-256 of a secret is stored (never the secret); times are seconds
-- since the epoch. pharos_subscription_specs: API-created subscriptions as JSON text, sink
-- secrets included (grant SELECT on it only to Pharos). pharos_subscription_positions: every
-- subscription's delivery position and counters (feed seqs of pharos_changes).

CREATE TABLE pharos_tokens (
    name text PRIMARY KEY,
    hash bytea NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
    role text NOT NULL,
    created bigint NOT NULL,
    expires bigint,
    revoked boolean NOT NULL DEFAULT false,
    last_used bigint,
    nsf text
);

CREATE TABLE pharos_subscription_specs (
    name text PRIMARY KEY,
    spec text NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE pharos_subscription_positions (
    name text PRIMARY KEY,
    seq bigint NOT NULL,
    delivered bigint NOT NULL,
    failed bigint NOT NULL,
    dropped bigint NOT NULL,
    expired bigint NOT NULL DEFAULT 0,
    expired_upto bigint NOT NULL DEFAULT 0
);
