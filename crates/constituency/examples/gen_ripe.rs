//! Writes a realistic RIPE split set (300 000 inetnum, 50 000 inet6num, 30 000 aut-num, 40 000
//! organisation, 40 000 role objects; `--scale F` multiplies every count) into DIR, for the
//! import measurement of docs/constituency.md:
//!
//! ```sh
//! cargo run --release -p pharos-constituency --example gen_ripe -- /tmp/ripe
//! cargo run --release -p pharos-constituency --example import_ripe -- /tmp/ripe /tmp/ripe.db
//! ```

use std::path::PathBuf;

use pharos_constituency::{GenSpec, generate_ripe};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: gen_ripe DIR [--scale F]")?);
    let mut scale = 1.0f64;
    if let Some(flag) = args.next() {
        if flag != "--scale" {
            return Err(
                format!("unknown argument {flag:?}: usage: gen_ripe DIR [--scale F]").into(),
            );
        }
        scale = args.next().ok_or("--scale needs a number")?.parse()?;
    }
    let r = GenSpec::realistic();
    let n = |v: u32| ((f64::from(v) * scale) as u32).max(1);
    let spec = GenSpec {
        inetnum: n(r.inetnum),
        inet6num: n(r.inet6num),
        autnum: n(r.autnum),
        organisation: n(r.organisation),
        role: n(r.role),
        seed: r.seed,
    };
    std::fs::create_dir_all(&dir)?;
    let t = std::time::Instant::now();
    let sum = generate_ripe(&dir, &spec)?;
    println!(
        "{}: {spec:?}, {} MB in {:.1} s",
        dir.display(),
        sum.bytes / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
