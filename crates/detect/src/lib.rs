//! Pharos analysis stage: turns flows and notifications into the events an operator acts on.
