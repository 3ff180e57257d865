//! The RID state table: incidents and messages, persistence across reopen, lookups.

mod common;

use pharos_rid::state::{
    Direction, IncidentFilter, NewMessage, SCHEMA_VERSION, StateError, StateTable, Status,
};
use pharos_rid::{AuthorizationStatus, IncidentId, Rid};

fn msg<'a>(peer: &'a str, rid: &'a Rid, body: &'a [u8]) -> NewMessage<'a> {
    NewMessage {
        peer,
        rid,
        body,
        callback_token: None,
        http_status: None,
    }
}

#[test]
fn state_table_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rid.sqlite");
    let trace = common::trace_request();
    let body = trace.emit();
    let (inc_id, msg_id) = {
        let t = StateTable::open(&path).unwrap();
        let r = t
            .record_incoming(NewMessage {
                http_status: Some(202),
                callback_token: Some("tok-1"),
                ..msg("peer-b", &trace, body.as_bytes())
            })
            .unwrap();
        assert!(r.new_incident);
        let inc = r.incident.unwrap();
        t.set_status(inc, Status::PendingApproval).unwrap();
        (inc, r.message)
    };
    let t = StateTable::open(&path).unwrap();
    let inc = t
        .incident(inc_id)
        .unwrap()
        .expect("the incident is still there");
    assert_eq!(inc.incident_id.name, "rid.as64500.example");
    assert_eq!(inc.incident_id.id, "DDOS-2026-000123");
    assert_eq!(inc.incident_id.instance.as_deref(), Some("1"));
    assert_eq!(inc.status, Status::PendingApproval);
    assert_eq!(inc.direction, Direction::In);
    assert_eq!(inc.origin_peer, "peer-b");
    assert_eq!(inc.peers, vec!["peer-b".to_string()]);
    assert_eq!(inc.msg_type, "TraceRequest");
    assert_eq!(inc.sp_path, vec!["rid.as64500.example".to_string()]);
    assert!(inc.updated >= inc.created);
    let msgs = t.messages(inc_id).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].id, msg_id);
    assert_eq!(msgs[0].body, body.as_bytes());
    assert_eq!(msgs[0].http_status, Some(202));
    assert_eq!(msgs[0].callback_token.as_deref(), Some("tok-1"));
    assert_eq!(msgs[0].direction, Direction::In);
    assert_eq!(msgs[0].msg_type, "TraceRequest");
    let user_version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(user_version, SCHEMA_VERSION);
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn messages_attach_to_their_incident_by_incident_id_or_callback_token() {
    let dir = tempfile::tempdir().unwrap();
    let t = StateTable::open(dir.path().join("s.db")).unwrap();
    let trace = common::trace_request();
    let out = t
        .record_outgoing(msg("rid-a", &trace, trace.emit().as_bytes()))
        .unwrap();
    let inc = out.incident.unwrap();
    assert_eq!(t.incident(inc).unwrap().unwrap().status, Status::Sent);
    t.set_message_result(out.message, 202, Some("deferred-7"))
        .unwrap();
    // The callback names the same IncidentID: same incident, second peer added.
    let ack = common::acknowledgement(AuthorizationStatus::Approved, None);
    let back = t
        .record_incoming(NewMessage {
            callback_token: Some("deferred-7"),
            http_status: Some(200),
            ..msg("rid-a2", &ack, ack.emit().as_bytes())
        })
        .unwrap();
    assert_eq!(back.incident, Some(inc));
    assert!(!back.new_incident);
    // A message without IncidentID but with the token attaches by token.
    let mut bare = common::acknowledgement(AuthorizationStatus::Approved, None);
    bare.policy.as_mut().unwrap().incident_id = None;
    let r = t
        .record_incoming(NewMessage {
            callback_token: Some("deferred-7"),
            ..msg("rid-a", &bare, b"<RID/>")
        })
        .unwrap();
    assert_eq!(r.incident, Some(inc));
    let r = t.record_incoming(msg("rid-a", &bare, b"<RID/>")).unwrap();
    assert_eq!(r.incident, None);
    let rec = t.incident_by_callback_token("deferred-7").unwrap().unwrap();
    assert_eq!(rec.id, inc);
    assert_eq!(rec.peers, vec!["rid-a".to_string(), "rid-a2".to_string()]);
    let by_token = t.messages_by_callback_token("deferred-7").unwrap();
    assert_eq!(by_token.len(), 3);
    assert_eq!(by_token[0].http_status, Some(202));
    assert_eq!(by_token[0].direction, Direction::Out);
    assert!(t.incident_by_callback_token("nope").unwrap().is_none());
    let by_iid = t
        .incident_by_incident_id(&common::incident_id())
        .unwrap()
        .unwrap();
    assert_eq!(by_iid.id, inc);
    // Another instance of the same incident number is another incident.
    let other = IncidentId {
        instance: Some("2".into()),
        ..common::incident_id()
    };
    assert!(t.incident_by_incident_id(&other).unwrap().is_none());
    assert_eq!(t.messages(inc).unwrap().len(), 3);
    assert!(matches!(
        t.set_status(9999, Status::Closed),
        Err(StateError::NoIncident(9999))
    ));
    assert!(matches!(
        t.set_message_result(9999, 200, None),
        Err(StateError::NoMessage(9999))
    ));
}

#[test]
fn open_incidents_are_counted_per_peer_and_filters_combine() {
    let dir = tempfile::tempdir().unwrap();
    let t = StateTable::open(dir.path().join("s.db")).unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let mut r = common::trace_request();
        r.policy.as_mut().unwrap().incident_id =
            Some(IncidentId::new("rid.as64500.example", format!("N-{n}")));
        let peer = if n < 2 { "peer-b" } else { "peer-c" };
        ids.push(
            t.record_incoming(msg(peer, &r, b"x"))
                .unwrap()
                .incident
                .unwrap(),
        );
    }
    let mut mine = common::trace_request();
    mine.policy.as_mut().unwrap().incident_id = Some(IncidentId::new("us", "1"));
    t.record_outgoing(msg("peer-b", &mine, b"y")).unwrap();
    assert_eq!(t.open_incidents_of("peer-b").unwrap(), 2);
    assert_eq!(t.open_incidents_of("peer-c").unwrap(), 1);
    assert_eq!(t.open_incidents_of("nobody").unwrap(), 0);
    t.set_status(ids[0], Status::Denied).unwrap();
    t.set_status(ids[1], Status::Approved).unwrap();
    assert_eq!(t.open_incidents_of("peer-b").unwrap(), 1);
    let all = t.list_incidents(&IncidentFilter::default()).unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let open_b = t
        .list_incidents(&IncidentFilter {
            peer: Some("peer-b".into()),
            open: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(open_b.len(), 2, "{open_b:?}");
    let finished = t
        .list_incidents(&IncidentFilter {
            open: Some(false),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        finished.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    let out = t
        .list_incidents(&IncidentFilter {
            direction: Some(Direction::Out),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status, Status::Sent);
    let approved = t
        .list_incidents(&IncidentFilter {
            status: Some(Status::Approved),
            limit: Some(5),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(approved.len(), 1);
    let limited = t
        .list_incidents(&IncidentFilter {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(limited.len(), 2);
    for s in Status::ALL {
        assert_eq!(Status::parse(s.as_str()), Some(s));
    }
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(StateTable::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let e = StateTable::open(&path).unwrap_err();
    assert!(matches!(e, StateError::NewerSchema { .. }), "{e}");
    assert!(e.to_string().contains("s.db"), "{e}");
    let e = StateTable::open(dir.path().join("missing/dir/s.db")).unwrap_err();
    assert!(e.to_string().contains("missing/dir"), "{e}");
}

#[test]
fn idle_open_incidents_expire_closed_with_a_reason_and_stop_counting() {
    let dir = tempfile::tempdir().unwrap();
    let t = StateTable::open(dir.path().join("rid.db")).unwrap();
    let trace = common::trace_request();
    let body = trace.emit();
    let open = t
        .record_incoming(msg("peer-b", &trace, body.as_bytes()))
        .unwrap()
        .incident
        .unwrap();
    assert_eq!(t.open_incidents_of("peer-b").unwrap(), 1);
    // Nothing is idle yet for a cutoff in the past.
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    assert!(t.expire_open(past).unwrap().is_empty());
    // A finished incident is left as it is.
    let mut other = trace.clone();
    other.policy.as_mut().unwrap().incident_id = Some(IncidentId::new("x", "done"));
    let done = t
        .record_incoming(msg("peer-b", &other, body.as_bytes()))
        .unwrap()
        .incident
        .unwrap();
    t.set_status(done, Status::Answered).unwrap();
    let later = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    let closed = t.expire_open(later).unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].id, open);
    let inc = t.incident(open).unwrap().unwrap();
    assert_eq!(inc.status, Status::Closed);
    assert_eq!(inc.reason.as_deref(), Some("expired"));
    assert_eq!(t.incident(done).unwrap().unwrap().status, Status::Answered);
    assert_eq!(t.open_incidents_of("peer-b").unwrap(), 0);
    // Once closed, nothing more to expire.
    assert!(t.expire_open(later).unwrap().is_empty());
}

#[test]
fn a_version_1_table_gains_the_close_reason_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rid.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE incidents (id INTEGER PRIMARY KEY, id_name TEXT NOT NULL, id_number TEXT NOT NULL, id_instance TEXT, origin_peer TEXT NOT NULL, direction TEXT NOT NULL, msg_type TEXT NOT NULL, status TEXT NOT NULL, sp_path TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
             CREATE TABLE incident_peers (incident INTEGER NOT NULL, peer TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (incident, peer));
             CREATE TABLE messages (id INTEGER PRIMARY KEY, incident INTEGER, direction TEXT NOT NULL, peer TEXT NOT NULL, msg_type TEXT NOT NULL, callback_token TEXT, http_status INTEGER, body BLOB NOT NULL, at_ms INTEGER NOT NULL);
             INSERT INTO incidents VALUES (1, 'a', '1', NULL, 'peer-b', 'in', 'TraceRequest', 'received', '', 1, 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let t = StateTable::open(&path).unwrap();
    let inc = t.incident(1).unwrap().unwrap();
    assert_eq!(inc.reason, None);
    let closed = t.expire_open(chrono::Utc::now()).unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(
        t.incident(1).unwrap().unwrap().reason.as_deref(),
        Some("expired")
    );
}
