//! Imports a RIPE split set into a registry database and prints the time, the counts and the
//! peak resident memory of the process (VmHWM), then checks that lookups answer:
//!
//! ```sh
//! cargo run --release -p pharos-constituency --example import_ripe -- /tmp/ripe /tmp/ripe.db
//! ```

use std::path::PathBuf;

use pharos_constituency::Registry;

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: import_ripe DIR DB")?);
    let db = PathBuf::from(args.next().ok_or("usage: import_ripe DIR DB")?);
    let mut reg = Registry::open(&db)?;
    let t = std::time::Instant::now();
    let rep = reg.import_ripe(&dir, "ripe")?;
    let import = t.elapsed();
    println!(
        "import: {:.1} s, peak RSS so far {}",
        import.as_secs_f64(),
        vm_hwm()
    );
    println!(
        "  {} objects read, {} skipped, {} organisations, {} prefixes, {} AS numbers, {} contacts",
        rep.records, rep.skipped, rep.organisations, rep.prefixes, rep.asns, rep.contacts
    );
    for w in rep.warnings.iter().take(5) {
        println!("  warning: {w}");
    }
    let t = std::time::Instant::now();
    let table = reg.prefix_table()?;
    println!(
        "prefix table: {} prefixes, {} ranges ({} MB) loaded in {:.2} s, peak RSS {}",
        table.len(),
        table.ranges(),
        table.heap_bytes() / 1_000_000,
        t.elapsed().as_secs_f64(),
        vm_hwm()
    );
    Ok(())
}
