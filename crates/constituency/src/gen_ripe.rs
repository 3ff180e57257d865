//! A generator of realistic RIPE database split files, for tests, benchmarks and the import
//! measurement (`cargo run --release -p pharos-constituency --example gen_ripe`).
//!
//! Objects carry the attributes real dumps carry (descr, admin-c, mnt-by, remarks over
//! continuation lines with space, tab and `+`, end-of-line comments, `%` comment blocks); inetnum
//! ranges are aligned blocks, odd ranges that need several prefixes, and more specific
//! assignments nested in the previous block with their own `abuse-c:`. Deterministic for a seed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// How many objects of each class to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenSpec {
    /// `ripe.db.inetnum` objects.
    pub inetnum: u32,
    /// `ripe.db.inet6num` objects.
    pub inet6num: u32,
    /// `ripe.db.aut-num` objects.
    pub autnum: u32,
    /// `ripe.db.organisation` objects.
    pub organisation: u32,
    /// `ripe.db.role` objects.
    pub role: u32,
    /// Seed of the pseudo-random choices.
    pub seed: u64,
}

impl GenSpec {
    /// The realistic set of the import measurement: 300 000 inetnum, 50 000 inet6num, 30 000
    /// aut-num, 40 000 organisation and 40 000 role objects.
    pub fn realistic() -> Self {
        Self {
            inetnum: 300_000,
            inet6num: 50_000,
            autnum: 30_000,
            organisation: 40_000,
            role: 40_000,
            seed: 1,
        }
    }

    /// A set small enough for a unit test, same proportions.
    pub fn small() -> Self {
        Self {
            inetnum: 300,
            inet6num: 50,
            autnum: 30,
            organisation: 40,
            role: 40,
            seed: 1,
        }
    }
}

/// What the generated set must answer, for checking an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Addresses and the organisation handle that holds them (most specific object).
    pub addrs: Vec<(IpAddr, String)>,
    /// AS numbers and their organisation handle.
    pub asns: Vec<(u32, String)>,
    /// An organisation handle and its abuse mailbox.
    pub mails: Vec<(String, String)>,
    /// Bytes written.
    pub bytes: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

const COUNTRIES: &[&str] = &[
    "DE", "NL", "FR", "GB", "IT", "ES", "PL", "SE", "AT", "CH", "RU", "UA", "TR", "IR", "AE",
];
const STATUS4: &[&str] = &[
    "ALLOCATED PA",
    "ASSIGNED PA",
    "ASSIGNED PI",
    "SUB-ALLOCATED PA",
    "LEGACY",
];

fn common(w: &mut impl Write, rng: &mut Rng, i: u32) -> io::Result<()> {
    writeln!(w, "admin-c:        GA{}-RIPE", rng.below(50_000))?;
    writeln!(w, "tech-c:         GT{}-RIPE", rng.below(50_000))?;
    if rng.below(3) == 0 {
        writeln!(
            w,
            "remarks:        ----------------------------------------------"
        )?;
        writeln!(
            w,
            "remarks:        Generated object {i} for the import measurement,"
        )?;
        writeln!(
            w,
            "                continued on a line starting with spaces,"
        )?;
        writeln!(w, "\tand one with a tab # with an end-of-line comment")?;
        writeln!(w, "+               and one with a plus")?;
        writeln!(
            w,
            "remarks:        Abuse reports: see the abuse-c of this object"
        )?;
    }
    writeln!(w, "mnt-by:         GEN{}-MNT", rng.below(20_000))?;
    writeln!(w, "mnt-by:         RIPE-NCC-HM-MNT")?;
    writeln!(
        w,
        "created:        20{:02}-0{}-1{}T08:00:00Z",
        5 + rng.below(20),
        1 + rng.below(9),
        rng.below(10)
    )?;
    writeln!(
        w,
        "last-modified:  2026-0{}-2{}T12:34:56Z",
        1 + rng.below(9),
        rng.below(10)
    )?;
    writeln!(w, "source:         RIPE")?;
    writeln!(w)
}

fn header(w: &mut impl Write, class: &str) -> io::Result<()> {
    writeln!(w, "#")?;
    writeln!(
        w,
        "# The contents of this file are generated: {class} objects for Pharos tests."
    )?;
    writeln!(
        w,
        "# Personal data is replaced, as in the public RIPE split dumps."
    )?;
    writeln!(w, "#")?;
    writeln!(w)
}

fn create(dir: &Path, name: &str) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::with_capacity(
        1 << 20,
        File::create(dir.join(name))?,
    ))
}

/// Writes `ripe.db.role`, `ripe.db.organisation`, `ripe.db.inetnum`, `ripe.db.inet6num` and
/// `ripe.db.aut-num` into `dir`; returns what the set must answer.
pub fn generate_ripe(dir: &Path, spec: &GenSpec) -> io::Result<GenSummary> {
    let mut rng = Rng(spec.seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut sum = GenSummary::default();
    let roles = spec.role.max(1);
    let orgs = spec.organisation.max(1);
    // roles: most with an abuse mailbox
    let mut w = create(dir, "ripe.db.role")?;
    header(&mut w, "role")?;
    for i in 0..spec.role {
        writeln!(w, "role:           Generated Abuse Team {i}")?;
        writeln!(w, "address:        Street {i}")?;
        writeln!(w, "address:        12345 City")?;
        writeln!(w, "e-mail:         noc@org{i}.example")?;
        if i % 10 != 9 {
            writeln!(w, "abuse-mailbox:  abuse@org{i}.example")?;
        }
        writeln!(w, "nic-hdl:        GR{i}-RIPE")?;
        common(&mut w, &mut rng, i)?;
    }
    w.flush()?;
    // organisations: abuse-c to role i (so org i's mail is abuse@org{i}.example when i < roles)
    let mut w = create(dir, "ripe.db.organisation")?;
    header(&mut w, "organisation")?;
    for i in 0..spec.organisation {
        writeln!(w, "organisation:   ORG-G{i}-RIPE")?;
        writeln!(w, "org-name:       Generated Networks {i}")?;
        writeln!(w, "                GmbH")?;
        writeln!(
            w,
            "country:        {}",
            COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize]
        )?;
        writeln!(
            w,
            "org-type:       {}",
            if i % 4 == 0 { "LIR" } else { "OTHER" }
        )?;
        writeln!(w, "address:        Generated street {i}")?;
        writeln!(
            w,
            "phone:          +49 30 {}",
            1_000_000 + rng.below(8_000_000)
        )?;
        let role = i % roles;
        writeln!(w, "abuse-c:        GR{role}-RIPE")?;
        writeln!(w, "mnt-ref:        GEN{}-MNT", rng.below(20_000))?;
        if i < 20 && role % 10 != 9 {
            sum.mails
                .push((format!("ORG-G{i}-RIPE"), format!("abuse@org{role}.example")));
        }
        common(&mut w, &mut rng, i)?;
    }
    w.flush()?;
    // inetnum
    let mut w = create(dir, "ripe.db.inetnum")?;
    header(&mut w, "inetnum")?;
    let mut cursor: u32 = u32::from(Ipv4Addr::new(2, 0, 0, 0));
    let mut prev: Option<(u32, u32)> = None;
    let step = (spec.inetnum / 200).max(1);
    for i in 0..spec.inetnum {
        let kind = rng.below(10);
        let (first, last, nested) = match (kind, prev) {
            (8 | 9, Some((pf, pl))) if pl - pf >= 63 => (pl - 15, pl, true),
            (6 | 7, _) => {
                let len = 10 + rng.below(1000) as u32;
                (cursor, cursor + len - 1, false)
            }
            _ => {
                let size = 1u32 << (8 + rng.below(5));
                let first = cursor.div_ceil(size) * size;
                (first, first + size - 1, false)
            }
        };
        if !nested {
            // past 223.255.255.255 (only for sets of several million objects): start over,
            // the later objects then overlap the earlier ones
            cursor = match last.checked_add(1) {
                Some(c) if c < 0xe000_0000 - 0x0100_0000 => c,
                _ => u32::from(Ipv4Addr::new(2, 0, 0, 0)),
            };
            prev = Some((first, last));
        }
        writeln!(
            w,
            "inetnum:        {} - {}",
            Ipv4Addr::from(first),
            Ipv4Addr::from(last)
        )?;
        writeln!(w, "netname:        GEN-NET-{i}")?;
        writeln!(w, "descr:          Generated network {i}")?;
        writeln!(
            w,
            "country:        {}",
            COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize]
        )?;
        let holder = rng.below(10);
        let org = rng.below(u64::from(orgs)) as u32;
        if nested || holder < 8 {
            writeln!(w, "org:            ORG-G{org}-RIPE")?;
        }
        if nested || holder == 8 {
            writeln!(w, "abuse-c:        GR{}-RIPE", rng.below(u64::from(roles)))?;
        }
        writeln!(
            w,
            "status:         {}",
            STATUS4[rng.below(STATUS4.len() as u64) as usize]
        )?;
        if !nested && holder < 8 && i % step == 0 {
            sum.addrs.push((
                IpAddr::V4(Ipv4Addr::from(first)),
                format!("ORG-G{org}-RIPE"),
            ));
        }
        common(&mut w, &mut rng, i)?;
        if i % 10_000 == 9_999 {
            writeln!(w, "% Note: this output has been filtered.\n")?;
        }
    }
    w.flush()?;
    // inet6num: /48 blocks under 2a02::/16, a /56 nested in every fifth
    let mut w = create(dir, "ripe.db.inet6num")?;
    header(&mut w, "inet6num")?;
    let step = (spec.inet6num / 100).max(1);
    for i in 0..spec.inet6num {
        let block = (0x2a02u128 << 112) | (u128::from(i) << 80);
        let org = rng.below(u64::from(orgs)) as u32;
        writeln!(w, "inet6num:       {}/48", Ipv6Addr::from(block))?;
        writeln!(w, "netname:        GEN6-{i}")?;
        writeln!(
            w,
            "country:        {}",
            COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize]
        )?;
        writeln!(w, "org:            ORG-G{org}-RIPE")?;
        writeln!(w, "status:         ASSIGNED")?;
        common(&mut w, &mut rng, i)?;
        if i % step == 0 {
            sum.addrs.push((
                IpAddr::V6(Ipv6Addr::from(block | 1)),
                format!("ORG-G{org}-RIPE"),
            ));
        }
        if i % 5 == 4 {
            let sub = block | (0xffu128 << 72);
            let org2 = rng.below(u64::from(orgs)) as u32;
            writeln!(w, "inet6num:       {}/56", Ipv6Addr::from(sub))?;
            writeln!(w, "netname:        GEN6-{i}-SUB")?;
            writeln!(w, "country:        DE")?;
            writeln!(w, "org:            ORG-G{org2}-RIPE")?;
            writeln!(w, "abuse-c:        GR{}-RIPE", rng.below(u64::from(roles)))?;
            writeln!(w, "status:         ASSIGNED")?;
            common(&mut w, &mut rng, i)?;
            if i % step == 4 % step {
                sum.addrs.push((
                    IpAddr::V6(Ipv6Addr::from(sub | 7)),
                    format!("ORG-G{org2}-RIPE"),
                ));
            }
        }
    }
    w.flush()?;
    // aut-num
    let mut w = create(dir, "ripe.db.aut-num")?;
    header(&mut w, "aut-num")?;
    let step = (spec.autnum / 50).max(1);
    for i in 0..spec.autnum {
        let asn = 1000 + i;
        let org = rng.below(u64::from(orgs)) as u32;
        writeln!(w, "aut-num:        AS{asn}")?;
        writeln!(w, "as-name:        GEN-AS-{i}")?;
        writeln!(w, "org:            ORG-G{org}-RIPE")?;
        for k in 0..(1 + rng.below(4)) {
            let peer = 1000 + rng.below(60_000);
            writeln!(w, "import:         from AS{peer} accept ANY")?;
            writeln!(w, "export:         to AS{peer}")?;
            writeln!(w, "+               announce AS{asn} # peer {k}")?;
        }
        writeln!(w, "status:         ASSIGNED")?;
        common(&mut w, &mut rng, i)?;
        if i % step == 0 {
            sum.asns.push((asn, format!("ORG-G{org}-RIPE")));
        }
    }
    w.flush()?;
    for name in crate::ripe::FILES {
        sum.bytes += std::fs::metadata(dir.join(name))?.len();
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Query, Registry};

    #[test]
    fn generated_small_set_imports_and_answers_its_samples() {
        let dir = tempfile::tempdir().unwrap();
        let sum = generate_ripe(dir.path(), &GenSpec::small()).unwrap();
        assert!(!sum.addrs.is_empty() && !sum.asns.is_empty() && !sum.mails.is_empty());
        let mut reg = Registry::open_in_memory().unwrap();
        let rep = reg.import_ripe(dir.path(), "ripe").unwrap();
        assert_eq!(rep.long_lines, 0);
        assert!(rep.prefixes > 300, "{rep:?}");
        let t = reg.prefix_table().unwrap();
        for (a, org) in &sum.addrs {
            let m = reg
                .lookup_addr(&t, *a)
                .unwrap()
                .unwrap_or_else(|| panic!("{a}"));
            assert_eq!(&m.organisation.id, org, "{a}");
        }
        for (n, org) in &sum.asns {
            let m = reg.lookup(&t, &Query::Asn(*n)).unwrap().unwrap();
            assert_eq!(&m.organisation.id, org);
        }
        // organisations' abuse-c resolves to the role's abuse-mailbox
        for (org, mail) in &sum.mails {
            let summaries = reg.summaries().unwrap();
            if let Some(s) = summaries.iter().find(|s| &s.id == org) {
                assert!(s.contacts >= 1, "{org}");
                let _ = mail;
            }
        }
    }
}
