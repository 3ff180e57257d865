//! The DDoS detector's learned rates (baseline mode) in `<data_dir>/baselines.json`, so that a
//! restart does not start a day of learning over.
//!
//! Contract:
//! - [`load`] reads the file if there is one; an unreadable or invalid file is logged and
//!   skipped (detection starts without learned rates), never a start-up failure.
//! - [`save`] writes the detector's learned rates to a temporary file, syncs it and renames it
//!   over the old one, so a crash leaves the old or the new list, never half of one. Nothing is
//!   written while there is nothing learned and no file yet.
//! - The detection stage saves every [`SAVE_EVERY`] and when it stops.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use pharos_detect::ddos::{DdosDetector, LearnedHost};

/// How often the detection stage writes the learned rates.
pub const SAVE_EVERY: Duration = Duration::from_secs(300);

/// The file name in the data directory.
pub const FILE: &str = "baselines.json";

/// Gives `ddos` the learned rates saved in `path`, if any; returns how many hosts it took.
pub fn load(ddos: &mut DdosDetector, path: &Path) -> usize {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the learned rates; baseline hosts learn anew");
            return 0;
        }
    };
    match serde_json::from_slice::<Vec<LearnedHost>>(&text) {
        Ok(list) => {
            let n = ddos.restore_learned(&list);
            tracing::info!(hosts = n, of = list.len(), path = %path.display(), "learned rates restored");
            n
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the learned rates file is not valid; baseline hosts learn anew (it is replaced at the next save)");
            0
        }
    }
}

/// Writes the learned rates of `ddos` to `path` (atomically); errors are logged.
pub fn save(ddos: &DdosDetector, path: &Path) {
    let list = ddos.learned();
    if list.is_empty() && !path.exists() {
        return;
    }
    if let Err(e) = write_atomically(path, &list) {
        metrics::counter!("pharos_detect_baseline_save_failures_total").increment(1);
        tracing::warn!(path = %path.display(), error = %e, "cannot save the learned rates; kept in memory, retried at the next save");
    }
}

fn write_atomically(path: &Path, list: &[LearnedHost]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    serde_json::to_writer(&mut f, list)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_detect::config::DdosConfig;

    fn detector() -> DdosDetector {
        let cfg: DdosConfig = toml::from_str(
            "networks = [\"198.51.100.0/24\"]\n[baseline]\nenabled = true\nlearning = \"1m\"\n",
        )
        .unwrap();
        DdosDetector::new(cfg).unwrap()
    }

    #[test]
    fn saved_rates_load_into_a_new_detector_and_bad_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let mut d = detector();
        // Nothing learned, no file: nothing written.
        save(&d, &path);
        assert!(!path.exists());
        let list = vec![LearnedHost {
            addr: "198.51.100.7".parse().unwrap(),
            first_seen_ms: 1_700_000_000_000,
            rates: [("udp".to_string(), [100.0, 50_000.0, 3.0])]
                .into_iter()
                .collect(),
        }];
        assert_eq!(d.restore_learned(&list), 1);
        save(&d, &path);
        assert!(!dir.path().join("baselines.json.tmp").exists());
        let mut again = detector();
        assert_eq!(load(&mut again, &path), 1);
        assert_eq!(again.learned(), list);
        // A truncated file: skipped, not fatal.
        std::fs::write(&path, b"[{\"addr\": \"198.51").unwrap();
        assert_eq!(load(&mut detector(), &path), 0);
        assert_eq!(load(&mut detector(), &dir.path().join("absent.json")), 0);
    }
}
