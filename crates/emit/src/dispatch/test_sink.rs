//! A sink for the dispatcher's tests: records what it is offered and answers from a script.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sink::{Sink, SinkConfig, SinkSpec};
use crate::{Item, SinkConfigError, SinkError};

/// What the test sink answers to one delivery.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Acknowledge.
    Ok,
    /// `SinkError::Retry`.
    Retry,
    /// `SinkError::Rejected`.
    Reject,
}

/// What a [`TestSink`] was offered and acknowledged, and what it answers next.
#[derive(Debug, Default)]
pub struct State {
    /// Seqs of every delivery offered, in order, with the answer given.
    pub offered: Vec<(Vec<u64>, &'static str)>,
    /// Seqs acknowledged, in order.
    pub acked: Vec<u64>,
    /// Answers to give next; `Ok` once empty.
    pub script: VecDeque<Answer>,
}

/// A shared, scripted sink (tests only).
#[derive(Debug, Clone, Default)]
pub struct TestSink(Arc<Mutex<State>>);

impl PartialEq for TestSink {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl TestSink {
    /// A sink that gives `script`'s answers in order, then `Ok`.
    pub fn with_script(script: impl IntoIterator<Item = Answer>) -> Self {
        let s = Self::default();
        s.0.lock().unwrap().script = script.into_iter().collect();
        s
    }

    /// Seqs acknowledged so far, in order.
    pub fn acked(&self) -> Vec<u64> {
        self.0.lock().unwrap().acked.clone()
    }

    /// Every delivery offered so far with the answer given.
    pub fn offered(&self) -> Vec<(Vec<u64>, &'static str)> {
        self.0.lock().unwrap().offered.clone()
    }

    /// A subscription sink spec delivering to this sink.
    pub fn spec(&self) -> SinkSpec {
        SinkSpec::new(self.clone())
    }
}

/// Written as an empty table: the test sink is never read back from a file or a request.
impl serde::Serialize for TestSink {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

/// The test sink's configuration is the sink itself (a shared handle): not in the registry, so
/// only tests can make a spec of it.
impl SinkConfig for TestSink {
    const KIND: &'static str = "test";
    const KEYS: &'static [&'static str] = &[];
    type Sink = TestSink;

    fn build(&self) -> Result<TestSink, SinkConfigError> {
        Ok(self.clone())
    }

    fn confine(&mut self, _allow_hosts: &[String]) -> Result<(), String> {
        Ok(())
    }
}

impl Sink for TestSink {
    fn describe(&self) -> String {
        "test".into()
    }

    async fn deliver(&mut self, items: &[Item]) -> Result<(), SinkError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let mut st = self.0.lock().unwrap();
        let seqs: Vec<u64> = items.iter().map(|i| i.seq).collect();
        match st.script.pop_front().unwrap_or(Answer::Ok) {
            Answer::Ok => {
                st.offered.push((seqs.clone(), "ok"));
                st.acked.extend(seqs);
                Ok(())
            }
            Answer::Retry => {
                st.offered.push((seqs, "retry"));
                Err(SinkError::Retry("receiver down".into()))
            }
            Answer::Reject => {
                st.offered.push((seqs, "reject"));
                Err(SinkError::Rejected("HTTP 400".into()))
            }
        }
    }
}
