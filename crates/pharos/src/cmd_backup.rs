//! `pharos backup DIR` and `pharos restore DIR`: a consistent copy of a data directory, taken
//! while `pharos run` runs or not, and its way back.
//!
//! Contract:
//! - Each SQLite database (`messages.db`, `nsfs.db`, `auth.db`, `subscriptions.db`) is copied
//!   with SQLite's online backup API in one step, so the copy is one consistent snapshot of that
//!   database, taken without stopping the daemon's writes (WAL). The copies are in rollback-journal
//!   mode: each file alone is the whole database. The databases are snapshots of slightly different
//!   instants (one after the other), not one atomic snapshot of all four.
//! - The flow archive has no manifest: its finished Parquet segments are immutable once renamed
//!   into place, so they are hard-linked into the backup (copied when the backup is on another
//!   file system); temp files are skipped. A segment merged away while the backup walks its
//!   directory is replaced by the merged one, so no flow is missed.
//! - `reports/` and `baselines.json` are copied as they are (both are written by temp file and
//!   rename).
//! - A backup is complete when its `pharos-backup.json` exists: it is written last, and restore
//!   refuses a directory without it.
//! - Restore takes the data directory's lock (so no daemon runs or starts meanwhile), refuses a
//!   data directory that holds anything unless `--force` (then everything in it is removed first),
//!   and writes each file under a temp name before renaming it into place.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags};

use crate::config::Config;
use crate::datadir::{DATABASES, DataDirLock, LOCK_FILE};

/// The name of a backup's manifest, written last.
pub const MANIFEST: &str = "pharos-backup.json";

/// How long a database backup retries while its source is locked.
const BUSY_DEADLINE: Duration = Duration::from_secs(60);

/// `pharos backup` arguments.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// Directory to write the backup into; must not exist or be empty.
    pub dir: PathBuf,
    /// Configuration file whose [store] data_dir is backed up (default: ./pharos.toml if present).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Data directory to back up (overrides the configuration's [store] data_dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `pharos restore` arguments.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// A directory written by `pharos backup`.
    pub dir: PathBuf,
    /// Configuration file whose [store] data_dir is restored into (default: ./pharos.toml if present).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Data directory to restore into (overrides the configuration's [store] data_dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Replace the contents of a data directory that is not empty (they are deleted first).
    #[arg(long)]
    pub force: bool,
}

/// What a backup holds, written as its manifest.
#[derive(serde::Serialize, serde::Deserialize)]
struct Manifest {
    /// The Pharos version that wrote the backup.
    pharos_version: String,
    /// When the backup finished (RFC 3339).
    created: String,
    /// The data directory backed up.
    data_dir: PathBuf,
    /// The databases copied (file names).
    databases: Vec<String>,
    /// Finished flow segments under `flows/`.
    flow_segments: usize,
    /// Other files copied (`baselines.json`, `reports/...`), relative paths.
    files: Vec<PathBuf>,
}

fn data_dir(explicit: Option<&Path>, config: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = explicit {
        return Ok(d.to_path_buf());
    }
    Ok(Config::load(config)?.0.store.data_dir)
}

/// Runs `pharos backup`.
pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let src = data_dir(args.data_dir.as_deref(), args.config.as_deref())?;
    if !DATABASES.iter().any(|d| src.join(d).exists()) {
        anyhow::bail!(
            "no Pharos database in {} (looked for {}); give the daemon's data directory with --data-dir or --config",
            src.display(),
            DATABASES.join(", ")
        );
    }
    let dst = &args.dir;
    if std::fs::read_dir(dst).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!(
            "backup directory {} is not empty; give a new directory (e.g. one named by the date)",
            dst.display()
        );
    }
    std::fs::create_dir_all(dst)
        .with_context(|| format!("cannot create the backup directory {}", dst.display()))?;
    let mut databases = Vec::new();
    for name in DATABASES {
        let from = src.join(name);
        if !from.exists() {
            continue;
        }
        let pages = backup_database(&from, &dst.join(name))?;
        eprintln!("{name}: {pages} pages");
        databases.push(name.to_string());
    }
    let mut files = Vec::new();
    let baselines = crate::detect_stage::learned::FILE;
    if copy_if_present(&src.join(baselines), &dst.join(baselines))? {
        files.push(PathBuf::from(baselines));
    }
    copy_tree(
        &src.join("reports"),
        &dst.join("reports"),
        Path::new("reports"),
        &mut files,
    )?;
    let flows = link_segments(&src.join("flows"), &dst.join("flows"))?;
    if flows.segments > 0 {
        eprintln!(
            "flows/: {} segments {}",
            flows.segments,
            if flows.copied == 0 {
                "(hard-linked: copy the backup to another disk to keep it)"
            } else {
                "(copied)"
            }
        );
    }
    let manifest = Manifest {
        pharos_version: env!("CARGO_PKG_VERSION").to_string(),
        created: chrono::Utc::now().to_rfc3339(),
        data_dir: std::path::absolute(&src).unwrap_or(src.clone()),
        databases,
        flow_segments: flows.segments,
        files,
    };
    write_synced(
        &dst.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    sync_dir(dst);
    eprintln!("backup of {} written to {}", src.display(), dst.display());
    Ok(())
}

/// Copies the database at `from` into a new file `to` with SQLite's backup API, all pages in one
/// step (one read transaction: a consistent snapshot, while writers go on in WAL mode), then
/// switches the copy to rollback-journal mode so the file alone is the database. Returns the
/// number of pages.
fn backup_database(from: &Path, to: &Path) -> anyhow::Result<i32> {
    use rusqlite::backup::{Backup, StepResult};
    // Read-write without create: a read-only connection could not take part in the WAL index
    // when the daemon is stopped and no -shm exists.
    let src = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", from.display()))?;
    src.busy_timeout(Duration::from_secs(10))?;
    let mut dst =
        Connection::open(to).with_context(|| format!("cannot create {}", to.display()))?;
    let pages = {
        let b = Backup::new(&src, &mut dst)
            .with_context(|| format!("cannot start the backup of {}", from.display()))?;
        let deadline = Instant::now() + BUSY_DEADLINE;
        loop {
            match b
                .step(-1)
                .with_context(|| format!("backing up {}", from.display()))?
            {
                StepResult::Done => break,
                StepResult::More => {}
                _ if Instant::now() > deadline => anyhow::bail!(
                    "{} stayed locked for {} s; try again",
                    from.display(),
                    BUSY_DEADLINE.as_secs()
                ),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        b.progress().pagecount
    };
    let _: String = dst
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .with_context(|| format!("finishing {}", to.display()))?;
    dst.close()
        .map_err(|(_, e)| e)
        .with_context(|| format!("closing {}", to.display()))?;
    Ok(pages)
}

/// Copies `from` to `to` if `from` exists; returns whether it did.
fn copy_if_present(from: &Path, to: &Path) -> anyhow::Result<bool> {
    match std::fs::copy(from, to) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("copying {} to {}", from.display(), to.display())),
    }
}

/// Copies the regular files under `from` (if it exists) to the same places under `to`, noting
/// each as `rel`/... in `files`.
fn copy_tree(from: &Path, to: &Path, rel: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", from.display())),
    };
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let kind = e.file_type()?;
        if kind.is_dir() {
            copy_tree(&e.path(), &to.join(&name), &rel.join(&name), files)?;
        } else if kind.is_file() && copy_if_present(&e.path(), &to.join(&name))? {
            files.push(rel.join(&name));
        }
    }
    Ok(())
}

/// Finished flow segments placed into a backup.
#[derive(Default)]
struct Segments {
    segments: usize,
    /// How many had to be copied (the backup is on another file system).
    copied: usize,
}

/// Hard-links (or copies) every finished segment (`*.parquet`, not a `.` temp file) under `from`
/// into the same place under `to`. A segment that disappears while a directory is walked was
/// merged (or expired): the directory is listed again so the merged segment is taken too.
fn link_segments(from: &Path, to: &Path) -> anyhow::Result<Segments> {
    let mut out = Segments::default();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let dir = from.join(&rel);
        let mut done = std::collections::HashSet::new();
        for _round in 0..10 {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
            };
            let mut vanished = false;
            for e in entries {
                let e = e?;
                let name = e.file_name();
                let Ok(kind) = e.file_type() else { continue };
                if kind.is_dir() {
                    if done.insert(name.clone()) {
                        dirs.push(rel.join(&name));
                    }
                    continue;
                }
                let text = name.to_string_lossy();
                if !kind.is_file()
                    || text.starts_with('.')
                    || !text.ends_with(".parquet")
                    || done.contains(&name)
                {
                    continue;
                }
                let target_dir = to.join(&rel);
                std::fs::create_dir_all(&target_dir)
                    .with_context(|| format!("creating {}", target_dir.display()))?;
                match place(&e.path(), &target_dir.join(&name))? {
                    Placed::Linked => out.segments += 1,
                    Placed::Copied => {
                        out.segments += 1;
                        out.copied += 1;
                    }
                    Placed::Vanished => {
                        vanished = true;
                        continue;
                    }
                }
                done.insert(name);
            }
            if !vanished {
                break;
            }
        }
    }
    Ok(out)
}

enum Placed {
    Linked,
    Copied,
    Vanished,
}

/// Hard-links `from` as `to`, or copies it when a link is impossible (another file system).
fn place(from: &Path, to: &Path) -> anyhow::Result<Placed> {
    match std::fs::hard_link(from, to) {
        Ok(()) => return Ok(Placed::Linked),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Placed::Vanished),
        Err(_) => {}
    }
    match std::fs::copy(from, to) {
        Ok(_) => Ok(Placed::Copied),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let _ = std::fs::remove_file(to);
            Ok(Placed::Vanished)
        }
        Err(e) => Err(e).with_context(|| format!("copying {} to {}", from.display(), to.display())),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Makes the directory's entries durable (best effort: not every file system supports it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Runs `pharos restore`.
pub fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let from = &args.dir;
    let manifest: Manifest = {
        let path = from.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not a complete Pharos backup (no {MANIFEST}); give a directory written by `pharos backup`",
                from.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?
    };
    let dst = data_dir(args.data_dir.as_deref(), args.config.as_deref())?;
    let lock = DataDirLock::acquire(&dst).context("restore needs the daemon stopped")?;
    let present: Vec<String> = std::fs::read_dir(&dst)
        .with_context(|| format!("reading {}", dst.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK_FILE)
        .collect();
    if !present.is_empty() {
        if !args.force {
            anyhow::bail!(
                "data directory {} is not empty ({}); restore into an empty directory, or pass --force to delete its contents and replace them with the backup",
                dst.display(),
                present.join(", ")
            );
        }
        for name in &present {
            let p = dst.join(name);
            let r = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.with_context(|| format!("removing {} before the restore", p.display()))?;
        }
    }
    for name in &manifest.databases {
        restore_file(&from.join(name), &dst.join(name))?;
    }
    for rel in &manifest.files {
        let target = dst.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        restore_file(&from.join(rel), &target)?;
    }
    let flows = link_segments(&from.join("flows"), &dst.join("flows"))?;
    sync_dir(&dst);
    drop(lock);
    eprintln!(
        "restored the backup of {} ({}) into {}: {}, {} flow segments, {} other files",
        manifest.data_dir.display(),
        manifest.created,
        dst.display(),
        manifest.databases.join(", "),
        flows.segments,
        manifest.files.len()
    );
    Ok(())
}

/// Copies `from` to `to` through a temp file in `to`'s directory, synced, then renamed.
fn restore_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = to.with_file_name(format!(".{}.restore-tmp", name.unwrap_or_default()));
    std::fs::copy(from, &tmp).with_context(|| {
        format!(
            "copying {} into the data directory (the backup is incomplete?)",
            from.display()
        )
    })?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("renaming into {}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_backup_is_one_file_with_every_row_while_the_source_is_in_wal_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src.db");
        let c = Connection::open(&src).unwrap();
        let _: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        // The source connection stays open: the rows are in its WAL only.
        let dst = tmp.path().join("copy.db");
        backup_database(&src, &dst).unwrap();
        assert!(!tmp.path().join("copy.db-wal").exists());
        let alone = tmp.path().join("alone.db");
        std::fs::copy(&dst, &alone).unwrap();
        let n: i64 = Connection::open(&alone)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn segments_are_linked_and_temp_files_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("flows");
        std::fs::create_dir_all(from.join("2026/01/02/03")).unwrap();
        std::fs::write(from.join("2026/01/02/03/1-2.parquet"), b"x").unwrap();
        std::fs::write(from.join("2026/01/02/03/.3-4.parquet.tmp"), b"x").unwrap();
        let out = link_segments(&from, &tmp.path().join("b/flows")).unwrap();
        assert_eq!((out.segments, out.copied), (1, 0));
        assert!(
            tmp.path()
                .join("b/flows/2026/01/02/03/1-2.parquet")
                .exists()
        );
        assert!(
            !tmp.path()
                .join("b/flows/2026/01/02/03/.3-4.parquet.tmp")
                .exists()
        );
    }
}
