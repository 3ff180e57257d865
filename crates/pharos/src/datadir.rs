//! The data directory's lock and the database files in it.
//!
//! Contract: one process at a time holds [`DataDirLock`] on a data directory: `pharos run` for its
//! whole life, `pharos restore` while it replaces the files. The lock is a `flock` on
//! `<data_dir>/pharos.lock`, a file that holds the holder's PID for people and for the refusal
//! message; the kernel releases it when the holder dies in any way (SIGKILL, crash), so a stale
//! file never blocks a restart. Readers (`pharos flows`, `pharos token list`, `pharos backup`)
//! do not take the lock: SQLite and the flow archive's write-then-rename keep what they read
//! consistent while a daemon writes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "pharos.lock";

/// The SQLite databases of a data directory, in the order they are backed up and checkpointed:
/// the message store, the NSF inventory, the API tokens, the subscriptions, the RID state table,
/// the notice delivery table and the constituency registry (each at its default place; `[rid]
/// state` or `[constituency] db` elsewhere is not included). Absent files are skipped.
pub const DATABASES: [&str; 7] = [
    "messages.db",
    "nsfs.db",
    "auth.db",
    "subscriptions.db",
    "rid.db",
    "notices.db",
    "constituency.db",
];

/// The exclusive lock on a data directory; released (and its file removed) when dropped, and by
/// the kernel when the process dies.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates the data directory `dir` if needed and takes its lock, or says which process holds
    /// it. Nothing else in `dir` is touched.
    pub fn acquire(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the data directory {} ([store] data_dir); check permissions",
                dir.display()
            )
        })?;
        let path = dir.join(LOCK_FILE);
        // A holder removes the file at exit while still holding the lock; a process that opened
        // the old file just before then locks a file nobody else will open. So after locking,
        // the file at `path` must still be the one locked, else try again.
        for _ in 0..100 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| {
                    format!(
                        "cannot open the lock file {}; check the permissions of the data directory",
                        path.display()
                    )
                })?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    let holder = match text.trim().parse::<u32>() {
                        Ok(pid) => format!("pid {pid}"),
                        Err(_) => "another process (starting; no pid written yet)".to_string(),
                    };
                    anyhow::bail!(
                        "data directory {} in use by {holder} (it holds {}); stop that pharos first, or give this one another [store] data_dir",
                        dir.display(),
                        path.display()
                    );
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
            let same = match std::fs::metadata(&path) {
                Ok(now) => {
                    let held = file.metadata()?;
                    now.dev() == held.dev() && now.ino() == held.ino()
                }
                Err(_) => false,
            };
            if !same {
                continue;
            }
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(format!("{}\n", std::process::id()).as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write the PID into {}", path.display()))?;
            return Ok(Self { file, path });
        }
        anyhow::bail!(
            "cannot lock {}: the file keeps being replaced; is a pharos starting and stopping in a loop?",
            path.display()
        )
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        // Removed while still locked (see `acquire`), so no one else can hold a lock on it now.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Copies the write-ahead log of the SQLite database at `path` into the database file and empties
/// it (`PRAGMA wal_checkpoint(TRUNCATE)`), so the file alone holds every committed transaction.
/// Does nothing when the database does not exist. Returns whether the checkpoint completed (it
/// does not when a reader holds an old snapshot; the next one catches up).
pub fn checkpoint_file(path: &Path) -> anyhow::Result<bool> {
    use rusqlite::OpenFlags;
    if !path.exists() {
        return Ok(true);
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .with_context(|| format!("checkpointing {}", path.display()))?;
    Ok(busy == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_names_the_holder_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let held = DataDirLock::acquire(&dir).unwrap();
        let pid = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        let e = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            e.contains(&format!("in use by pid {}", std::process::id())),
            "{e}"
        );
        drop(held);
        assert!(!dir.join(LOCK_FILE).exists());
        let again = DataDirLock::acquire(&dir).unwrap();
        drop(again);
    }

    #[test]
    fn a_stale_lock_file_of_a_dead_process_does_not_block() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(LOCK_FILE), "999999\n").unwrap();
        let lock = DataDirLock::acquire(tmp.path()).unwrap();
        let pid = std::fs::read_to_string(tmp.path().join(LOCK_FILE)).unwrap();
        assert_eq!(pid, format!("{}\n", std::process::id()));
        drop(lock);
    }
}
