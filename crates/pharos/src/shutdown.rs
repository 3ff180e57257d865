//! The one stop signal of `pharos run`, and the list of started stages it stops.
//!
//! Contract:
//! - [`Shutdown`] is asked once ([`Shutdown::trigger`], by SIGTERM or SIGINT or by a start-up
//!   error); later asks change nothing. Async tasks await [`Shutdown::stopped`], threads poll
//!   [`Shutdown::is_stopped`]; both see the same signal.
//! - [`Topology`] stops its stages in the reverse order of their start, each stop awaited to the
//!   end (its threads and tasks joined) before the next begins, with one log line per stage: a
//!   stage stops only after every stage that feeds it (started after it) has stopped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The daemon's stop signal: cheap to clone, every clone sees the same signal.
#[derive(Clone, Debug)]
pub struct Shutdown(Arc<tokio::sync::watch::Sender<Option<&'static str>>>);

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not yet given.
    pub fn new() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(None).0))
    }

    /// Asks everything to stop, saying why (`"SIGTERM"`); `false` when a stop was already asked
    /// (the first reason stays).
    pub fn trigger(&self, why: &'static str) -> bool {
        self.0.send_if_modified(|v| {
            if v.is_some() {
                return false;
            }
            *v = Some(why);
            true
        })
    }

    /// Why the stop was asked, if it was.
    pub fn reason(&self) -> Option<&'static str> {
        *self.0.borrow()
    }

    /// Whether the stop was asked (for threads, which poll).
    pub fn is_stopped(&self) -> bool {
        self.reason().is_some()
    }

    /// Waits until the stop is asked and says why.
    pub async fn stopped(&self) -> &'static str {
        let mut rx = self.0.subscribe();
        let why = rx.wait_for(Option::is_some).await.ok().and_then(|v| *v);
        match why {
            Some(why) => why,
            // The sender lives as long as `self`: not reached.
            None => std::future::pending().await,
        }
    }
}

/// How a started stage stops (awaited once, in reverse order of start).
type StopFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The started stages of the daemon, in start order, with how each one stops.
pub struct Topology {
    shutdown: Shutdown,
    stages: Vec<(&'static str, StopFuture)>,
}

impl Topology {
    /// An empty topology stopped by `shutdown`.
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            shutdown,
            stages: Vec::new(),
        }
    }

    /// The signal that stops this topology.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Registers a started stage: `stop` runs (after the signal, once every stage started later
    /// has stopped) and must return when the stage has finished its work and its threads ended.
    pub fn add(&mut self, name: &'static str, stop: impl Future<Output = ()> + Send + 'static) {
        self.stages.push((name, Box::pin(stop)));
    }

    /// Spawns `task` (a loop that runs until the daemon stops) as the stage `name`: it ends at
    /// its next await after the signal, and the stage's stop waits for it.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.task(task);
        self.add(name, async move {
            let _ = handle.await;
        });
    }

    /// Spawns `task`, ended at its next await after the signal, without registering it (for a
    /// stage whose stop does more than wait for the task).
    pub fn task(
        &self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                _ = shutdown.stopped() => {}
            }
        })
    }

    /// Gives the signal (when not given yet) and stops every stage, the last started first, each
    /// one awaited to the end.
    pub async fn stop(mut self) {
        self.shutdown.trigger("stop");
        while let Some((name, stop)) = self.stages.pop() {
            stop.await;
            tracing::info!("stopped: {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stages_stop_in_reverse_order_of_start_after_the_one_signal() {
        let shutdown = Shutdown::new();
        let mut topo = Topology::new(shutdown.clone());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        for name in ["first", "second", "third"] {
            let o = order.clone();
            topo.add(name, async move { o.lock().unwrap().push(name) });
        }
        let o = order.clone();
        let sd = shutdown.clone();
        topo.spawn("loop", async move {
            sd.stopped().await;
            o.lock().unwrap().push("loop");
        });
        assert!(!shutdown.is_stopped());
        assert!(shutdown.trigger("SIGTERM"));
        assert!(!shutdown.trigger("SIGINT"), "the first reason stays");
        assert_eq!(shutdown.reason(), Some("SIGTERM"));
        assert_eq!(shutdown.stopped().await, "SIGTERM");
        topo.stop().await;
        let got = order.lock().unwrap().clone();
        // The spawned loop is ended by the signal (it may not reach its own line).
        let got: Vec<_> = got.into_iter().filter(|n| *n != "loop").collect();
        assert_eq!(got, ["third", "second", "first"]);
    }

    #[test]
    fn a_thread_sees_the_signal_by_polling() {
        let shutdown = Shutdown::new();
        let sd = shutdown.clone();
        let t = std::thread::spawn(move || {
            while !sd.is_stopped() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            sd.reason()
        });
        shutdown.trigger("SIGINT");
        assert_eq!(t.join().unwrap(), Some("SIGINT"));
    }
}
