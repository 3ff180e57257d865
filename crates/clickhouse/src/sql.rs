//! The nfdump filter language ([`pharos_flows::filter`]) compiled to a ClickHouse `WHERE`
//! condition over the `flows` table, with the same meaning as [`pharos_flows::filter::matches`].
//!
//! Contract: for every [`Expr`], [`compile`] gives a condition true on exactly the rows whose
//! flow `matches` (a property test compares the two engines). Every value is a number or a
//! hexadecimal address produced here, never text from the filter, so no input reaches the SQL
//! unescaped. Every predicate of the language compiles today; [`CompileError`] exists for
//! predicates a future version adds before this module learns them, and names the predicate.
//!
//! Mapping (addresses are `FixedString(16)`, the family is a bit of `flags`):
//! - `host A`: the 16 bytes equal and the family bit says A's family (`host 10.0.0.1` does not
//!   match a stored `::ffff:10.0.0.1` that arrived as IPv6).
//! - `net P`: the bytes lie between the first and last address of P (memcmp order, so the
//!   sorting key's address column prunes), family as for `host`.
//! - absent values are 0 in their columns: `as`, `if` add `!= 0`; `vlan` tests its presence bit.
//! - `flags`, `icmp-type`, `icmp-code` imply their protocol, as the reference does.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use pharos_flows::filter::{CmpOp, Expr, Family, IfSide, Pred, Side};
use pharos_model::flow::flags;

/// A filter that cannot be compiled to SQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the filter predicate \"{predicate}\" cannot run against ClickHouse: {reason}; run this query \
     against the Parquet archive, or rewrite the filter without it"
)]
pub struct CompileError {
    /// The predicate, printed in the filter language.
    pub predicate: String,
    /// Why.
    pub reason: String,
}

/// The SQL condition of `e` (parenthesised, safe to combine with `AND`).
pub fn compile(e: &Expr) -> Result<String, CompileError> {
    let mut out = String::new();
    expr(e, &mut out)?;
    Ok(out)
}

fn expr(e: &Expr, out: &mut String) -> Result<(), CompileError> {
    match e {
        Expr::Any => out.push('1'),
        Expr::Pred(p) => pred(p, out)?,
        Expr::Not(x) => {
            out.push_str("(NOT ");
            expr(x, out)?;
            out.push(')');
        }
        Expr::And(v) | Expr::Or(v) if v.is_empty() => {
            out.push(if matches!(e, Expr::And(_)) { '1' } else { '0' });
        }
        Expr::And(v) | Expr::Or(v) => {
            let sep = if matches!(e, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            out.push('(');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                expr(x, out)?;
            }
            out.push(')');
        }
    }
    Ok(())
}

fn op_sql(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "!=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

/// `toFixedString(unhex('...'), 16)` of 16 stored bytes.
pub(crate) fn addr_literal(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(64);
    s.push_str("toFixedString(unhex('");
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
    s.push_str("'), 16)");
    s
}

fn stored(a: &IpAddr) -> ([u8; 16], bool) {
    pharos_model::flow::addr_to_bytes(a)
}

/// `(cond(src) OR cond(dst))` as the side asks; `cond` gets the column prefix `src`/`dst`.
fn sided(side: Side, out: &mut String, cond: impl Fn(&str) -> String) {
    match side {
        Side::Src => out.push_str(&cond("src")),
        Side::Dst => out.push_str(&cond("dst")),
        Side::Either => {
            let _ = write!(out, "({} OR {})", cond("src"), cond("dst"));
        }
    }
}

fn family_bit(side: &str) -> u8 {
    if side == "src" {
        flags::SRC_V4
    } else {
        flags::DST_V4
    }
}

fn family_test(side: &str, v4: bool) -> String {
    format!(
        "bitAnd(flags, {}) {} 0",
        family_bit(side),
        if v4 { "!=" } else { "=" }
    )
}

fn pred(p: &Pred, out: &mut String) -> Result<(), CompileError> {
    match *p {
        Pred::Proto(v) => {
            let _ = write!(out, "(proto = {v})");
        }
        Pred::Host { side, addr } => {
            let (b, v4) = stored(&addr);
            let lit = addr_literal(&b);
            sided(side, out, |s| {
                format!("({s}_addr = {lit} AND {})", family_test(s, v4))
            });
        }
        Pred::Net { side, net } => {
            let (lo, hi, v4) = net_range(&net);
            let (lo, hi) = (addr_literal(&lo), addr_literal(&hi));
            sided(side, out, |s| {
                format!(
                    "({s}_addr >= {lo} AND {s}_addr <= {hi} AND {})",
                    family_test(s, v4)
                )
            });
        }
        Pred::Port { side, op, value } => {
            let op = op_sql(op);
            sided(side, out, |s| format!("({s}_port {op} {value})"));
        }
        Pred::As { side, op, value } => {
            let op = op_sql(op);
            sided(side, out, |s| {
                format!("({s}_as != 0 AND {s}_as {op} {value})")
            });
        }
        Pred::Interface { side, index } => {
            let one = |c: &str| format!("({c} != 0 AND {c} = {index})");
            match side {
                IfSide::In => out.push_str(&one("in_if")),
                IfSide::Out => out.push_str(&one("out_if")),
                IfSide::Either => {
                    let _ = write!(out, "({} OR {})", one("in_if"), one("out_if"));
                }
            }
        }
        Pred::Vlan(v) => {
            let _ = write!(out, "(bitAnd(flags, {}) != 0 AND vlan = {v})", flags::VLAN);
        }
        Pred::Bytes { op, value } => {
            let _ = write!(out, "(bytes {} {value})", op_sql(op));
        }
        Pred::Packets { op, value } => {
            let _ = write!(out, "(packets {} {value})", op_sql(op));
        }
        Pred::Flags(mask) => {
            let _ = write!(out, "(proto = 6 AND bitAnd(tcp_flags, {mask}) = {mask})");
        }
        Pred::Tos { op, value } => {
            let _ = write!(out, "(tos {} {value})", op_sql(op));
        }
        Pred::IcmpType { op, value } => {
            let _ = write!(
                out,
                "(proto IN (1, 58) AND icmp_type {} {value})",
                op_sql(op)
            );
        }
        Pred::IcmpCode { op, value } => {
            let _ = write!(
                out,
                "(proto IN (1, 58) AND icmp_code {} {value})",
                op_sql(op)
            );
        }
        Pred::Family(f) => {
            let both = flags::SRC_V4 | flags::DST_V4;
            let want = if f == Family::V4 { both } else { 0 };
            let _ = write!(out, "(bitAnd(flags, {both}) = {want})");
        }
    }
    Ok(())
}

/// The first and last stored address of a prefix, and whether it is IPv4.
pub(crate) fn net_range(net: &IpNet) -> ([u8; 16], [u8; 16], bool) {
    let (lo, hi) = (net.network(), net.broadcast());
    let (lo, v4) = stored(&lo);
    let (hi, _) = stored(&hi);
    (lo, hi, v4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_flows::filter::parse;

    #[test]
    fn every_predicate_compiles_to_a_condition() {
        for f in [
            "proto udp and dst port 53",
            "src net 10.0.0.0/8 and bytes > 1m",
            "flags S and not flags A",
            "host 2001:db8::1 or in if 3 or vlan 100",
            "as 64496 and icmp-type 8 and icmp-code 0 and tos > 0 and ipv4 and packets < 3",
            "not any",
        ] {
            let sql = compile(&parse(f).unwrap()).unwrap();
            assert!(!sql.is_empty(), "{f}");
            assert_eq!(
                sql.matches('(').count(),
                sql.matches(')').count(),
                "{f}: {sql}"
            );
        }
        let sql = compile(&parse("dst net 10.0.0.0/8").unwrap()).unwrap();
        assert_eq!(
            sql,
            "(dst_addr >= toFixedString(unhex('00000000000000000000FFFF0A000000'), 16) AND \
             dst_addr <= toFixedString(unhex('00000000000000000000FFFF0AFFFFFF'), 16) AND \
             bitAnd(flags, 4) != 0)"
        );
    }
}
