use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn ok(s: &str) -> Expr {
    parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}\n{}", e.render(s)))
}

fn p(pred: Pred) -> Expr {
    Expr::Pred(pred)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn port(side: Side, op: CmpOp, value: u16) -> Expr {
    p(Pred::Port { side, op, value })
}

fn host(side: Side, a: &str) -> Expr {
    p(Pred::Host { side, addr: ip(a) })
}

fn netp(side: Side, n: &str) -> Expr {
    p(Pred::Net { side, net: net(n) })
}

const TCP: Expr = Expr::Pred(Pred::Proto(6));
const UDP: Expr = Expr::Pred(Pred::Proto(17));

use CmpOp::*;
use Side::*;

// ---------------------------------------------------------------------------------------------
// Parsing: every form

#[test]
fn proto_accepts_names_in_any_case_and_numbers_0_to_255() {
    for (s, n) in [
        ("proto tcp", 6),
        ("proto UDP", 17),
        ("PROTO Icmp", 1),
        ("proto icmp6", 58),
        ("proto ipv6-icmp", 58),
        ("proto icmpv6", 58),
        ("proto gre", 47),
        ("proto esp", 50),
        ("proto ah", 51),
        ("proto sctp", 132),
        ("proto ipv6", 41),
        ("proto 0", 0),
        ("proto 255", 255),
        ("proto 0x11", 17),
    ] {
        assert_eq!(ok(s), p(Pred::Proto(n)), "{s}");
    }
}

#[test]
fn host_and_ip_take_ipv4_and_ipv6_addresses_with_optional_side() {
    for (s, e) in [
        ("host 192.0.2.1", host(Either, "192.0.2.1")),
        ("src host 192.0.2.1", host(Src, "192.0.2.1")),
        ("dst host 2001:db8::1", host(Dst, "2001:db8::1")),
        ("ip 10.0.0.1", host(Either, "10.0.0.1")),
        ("src ip ::ffff:10.0.0.1", host(Src, "::ffff:10.0.0.1")),
        ("DST IP fe80::1", host(Dst, "fe80::1")),
        ("host 0.0.0.0", host(Either, "0.0.0.0")),
        ("host 255.255.255.255", host(Either, "255.255.255.255")),
        ("host ::", host(Either, "::")),
        (
            "host ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            host(Either, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ),
    ] {
        assert_eq!(ok(s), e, "{s}");
    }
    assert!(ok("host ::ffff:10.0.0.1") != ok("host 10.0.0.1"));
}

#[test]
fn net_takes_prefix_lengths_partial_ipv4_and_netmasks() {
    for (s, e) in [
        ("net 10.0.0.0/8", netp(Either, "10.0.0.0/8")),
        ("src net 0.0.0.0/0", netp(Src, "0.0.0.0/0")),
        ("dst net 192.0.2.1/32", netp(Dst, "192.0.2.1/32")),
        ("net 2001:db8::/32", netp(Either, "2001:db8::/32")),
        ("net ::/0", netp(Either, "::/0")),
        ("net 2001:db8::1/128", netp(Either, "2001:db8::1/128")),
        ("net ::ffff:0:0/96", netp(Either, "::ffff:0:0/96")),
        ("net 172.16/12", netp(Either, "172.16.0.0/12")),
        ("net 10/8", netp(Either, "10.0.0.0/8")),
        ("net 192.168.1/24", netp(Either, "192.168.1.0/24")),
        // host bits are masked off, as nfdump does
        ("net 10.1.2.3/8", netp(Either, "10.0.0.0/8")),
        ("net 2001:db8::1/32", netp(Either, "2001:db8::/32")),
        ("net 10.0.0.0 255.0.0.0", netp(Either, "10.0.0.0/8")),
        (
            "src net 192.168.1.0 255.255.255.0",
            netp(Src, "192.168.1.0/24"),
        ),
        ("net 0.0.0.0 0.0.0.0", netp(Either, "0.0.0.0/0")),
        ("dst net 10.9.8.7 255.255.255.255", netp(Dst, "10.9.8.7/32")),
        ("net 10.9.8.7 255.255.0.0", netp(Either, "10.9.0.0/16")),
        ("net 10.0.0.0/0x8", netp(Either, "10.0.0.0/8")),
    ] {
        assert_eq!(ok(s), e, "{s}");
    }
}

#[test]
fn port_takes_every_comparison_operator_and_edge_values() {
    for (s, e) in [
        ("port 80", port(Either, Eq, 80)),
        ("src port 0", port(Src, Eq, 0)),
        ("dst port 65535", port(Dst, Eq, 65535)),
        ("port > 1023", port(Either, Gt, 1023)),
        ("port>1023", port(Either, Gt, 1023)),
        ("port >= 1024", port(Either, Ge, 1024)),
        ("port < 1024", port(Either, Lt, 1024)),
        ("port <= 1023", port(Either, Le, 1023)),
        ("port = 53", port(Either, Eq, 53)),
        ("port == 53", port(Either, Eq, 53)),
        ("port != 80", port(Either, Ne, 80)),
        ("port eq 1", port(Either, Eq, 1)),
        ("port ne 6", port(Either, Ne, 6)),
        ("port gt 2", port(Either, Gt, 2)),
        ("port lt 3", port(Either, Lt, 3)),
        ("port ge 4", port(Either, Ge, 4)),
        ("port le 5", port(Either, Le, 5)),
        ("port GT 7", port(Either, Gt, 7)),
        ("src port > 65534", port(Src, Gt, 65534)),
        ("port 0x50", port(Either, Eq, 80)),
        ("port 0xffff", port(Either, Eq, 65535)),
    ] {
        assert_eq!(ok(s), e, "{s}");
    }
}

#[test]
fn as_interface_vlan_tos_icmp_and_family_terms() {
    for (s, e) in [
        (
            "as 64496",
            p(Pred::As {
                side: Either,
                op: Eq,
                value: 64496,
            }),
        ),
        (
            "src as 0",
            p(Pred::As {
                side: Src,
                op: Eq,
                value: 0,
            }),
        ),
        (
            "dst as 4294967295",
            p(Pred::As {
                side: Dst,
                op: Eq,
                value: u32::MAX,
            }),
        ),
        (
            "as > 64511",
            p(Pred::As {
                side: Either,
                op: Gt,
                value: 64511,
            }),
        ),
        (
            "src as != 13335",
            p(Pred::As {
                side: Src,
                op: Ne,
                value: 13335,
            }),
        ),
        (
            "in if 3",
            p(Pred::Interface {
                side: IfSide::In,
                index: 3,
            }),
        ),
        (
            "OUT IF 4294967295",
            p(Pred::Interface {
                side: IfSide::Out,
                index: u32::MAX,
            }),
        ),
        (
            "if 0",
            p(Pred::Interface {
                side: IfSide::Either,
                index: 0,
            }),
        ),
        ("vlan 0", p(Pred::Vlan(0))),
        ("vlan 4095", p(Pred::Vlan(4095))),
        ("tos 184", p(Pred::Tos { op: Eq, value: 184 })),
        ("tos > 0", p(Pred::Tos { op: Gt, value: 0 })),
        ("icmp-type 8", p(Pred::IcmpType { op: Eq, value: 8 })),
        ("icmp-code >= 255", p(Pred::IcmpCode { op: Ge, value: 255 })),
        ("ipv4", p(Pred::Family(Family::V4))),
        ("inet", p(Pred::Family(Family::V4))),
        ("IPv6", p(Pred::Family(Family::V6))),
        ("inet6", p(Pred::Family(Family::V6))),
    ] {
        assert_eq!(ok(s), e, "{s}");
    }
}

#[test]
fn bytes_and_packets_take_k_m_g_t_suffixes_as_powers_of_1000() {
    let bytes = |op, value| p(Pred::Bytes { op, value });
    let packets = |op, value| p(Pred::Packets { op, value });
    for (s, e) in [
        ("bytes > 1m", bytes(Gt, 1_000_000)),
        ("bytes > 4g", bytes(Gt, 4_000_000_000)),
        ("bytes > 4G", bytes(Gt, 4_000_000_000)),
        ("bytes < 10k", bytes(Lt, 10_000)),
        ("bytes 1500", bytes(Eq, 1500)),
        ("bytes > 2t", bytes(Gt, 2_000_000_000_000)),
        ("bytes > 0x10", bytes(Gt, 16)),
        ("bytes = 18446744073709551615", bytes(Eq, u64::MAX)),
        ("in bytes > 5", bytes(Gt, 5)),
        ("bytes 0", bytes(Eq, 0)),
        ("packets >= 2", packets(Ge, 2)),
        ("packets > 1K", packets(Gt, 1000)),
        ("in packets < 3M", packets(Lt, 3_000_000)),
    ] {
        assert_eq!(ok(s), e, "{s}");
    }
}

#[test]
fn flags_letters_mean_all_of_them_set_in_any_case_and_order() {
    for (s, m) in [
        ("flags S", 0x02),
        ("flags SA", 0x12),
        ("flags AS", 0x12),
        ("flags sa", 0x12),
        ("flags F", 0x01),
        ("flags R", 0x04),
        ("flags P", 0x08),
        ("flags U", 0x20),
        ("flags X", 0x3f),
        ("flags EC", 0xc0),
        ("flags FSRPAUEC", 0xff),
        ("flags XEC", 0xff),
    ] {
        assert_eq!(ok(s), p(Pred::Flags(m)), "{s}");
    }
}

#[test]
fn any_bare_ip_and_the_empty_filter_match_everything() {
    for s in ["any", "ANY", "ip", "", "   ", "# only a comment", "\n\t\n"] {
        assert_eq!(ok(s), Expr::Any, "{s:?}");
    }
    assert_eq!(
        ok("ip and port 80"),
        Expr::And(vec![Expr::Any, port(Either, Eq, 80)])
    );
}

#[test]
fn not_binds_tighter_than_and_and_and_tighter_than_or() {
    let a = port(Either, Eq, 1);
    let b = port(Either, Eq, 2);
    let c = port(Either, Eq, 3);
    let cases = [
        (
            "port 1 or port 2 and port 3",
            Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()])]),
        ),
        (
            "port 1 and port 2 or port 3",
            Expr::Or(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()]),
        ),
        (
            "not port 1 and port 2",
            Expr::And(vec![not(a.clone()), b.clone()]),
        ),
        (
            "!port 1 || port 2",
            Expr::Or(vec![not(a.clone()), b.clone()]),
        ),
        ("not not port 1", not(not(a.clone()))),
        ("! ! port 1", not(not(a.clone()))),
        (
            "(port 1 or port 2) and port 3",
            Expr::And(vec![Expr::Or(vec![a.clone(), b.clone()]), c.clone()]),
        ),
        (
            "port 1 and port 2 and port 3",
            Expr::And(vec![a.clone(), b.clone(), c.clone()]),
        ),
        (
            "port 1 && port 2 && port 3",
            Expr::And(vec![a.clone(), b.clone(), c.clone()]),
        ),
        (
            "port 1 and (port 2 and port 3)",
            Expr::And(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()])]),
        ),
        (
            "port 1 or port 2 or port 3",
            Expr::Or(vec![a.clone(), b.clone(), c.clone()]),
        ),
        (
            "not (port 1 or port 2)",
            not(Expr::Or(vec![a.clone(), b.clone()])),
        ),
        ("((port 1))", a.clone()),
        (
            "Port 1 AND Port 2 Or Not Any",
            Expr::Or(vec![Expr::And(vec![a.clone(), b.clone()]), not(Expr::Any)]),
        ),
    ];
    for (s, e) in cases {
        assert_eq!(ok(s), e, "{s}");
    }
}

#[test]
fn typical_analyst_filters_parse() {
    assert_eq!(
        ok("proto udp and dst port 53 and bytes > 1000"),
        Expr::And(vec![
            UDP,
            port(Dst, Eq, 53),
            p(Pred::Bytes {
                op: Gt,
                value: 1000
            })
        ])
    );
    assert_eq!(
        ok("flags S and not flags A"),
        Expr::And(vec![p(Pred::Flags(0x02)), not(p(Pred::Flags(0x10)))])
    );
    assert_eq!(
        ok("proto tcp # web traffic\n  and (port 80 or port 443)"),
        Expr::And(vec![
            TCP,
            Expr::Or(vec![port(Either, Eq, 80), port(Either, Eq, 443)])
        ])
    );
    assert_eq!(
        ok("src net 10.0.0.0/8 and not dst net 10.0.0.0/8"),
        Expr::And(vec![netp(Src, "10.0.0.0/8"), not(netp(Dst, "10.0.0.0/8"))])
    );
    assert_eq!(
        "dst host 198.51.100.10".parse::<Expr>(),
        Ok(host(Dst, "198.51.100.10"))
    );
}

// ---------------------------------------------------------------------------------------------
// Canonical printing

#[test]
fn display_prints_the_canonical_form() {
    for (s, canonical) in [
        ("PROTO 6", "proto tcp"),
        ("proto 253", "proto 253"),
        ("proto ipv6-icmp", "proto icmp6"),
        ("port = 80", "port 80"),
        ("src port gt 1023", "src port > 1023"),
        ("port ne 1", "port != 1"),
        ("as le 7", "as <= 7"),
        ("bytes > 1m", "bytes > 1000000"),
        ("in bytes > 1k", "bytes > 1000"),
        ("flags as", "flags SA"),
        ("flags X", "flags FSRPAU"),
        ("net 10.1.2.3/8", "net 10.0.0.0/8"),
        ("net 192.168.0.0 255.255.0.0", "net 192.168.0.0/16"),
        ("net 2001:DB8:0:0::/32", "net 2001:db8::/32"),
        ("ip 10.0.0.1", "host 10.0.0.1"),
        ("src ip ::ffff:10.0.0.1", "src host ::ffff:10.0.0.1"),
        ("ip", "any"),
        ("", "any"),
        ("inet6", "ipv6"),
        ("IN IF 3", "in if 3"),
        ("if 3", "if 3"),
        ("icmp-type = 8", "icmp-type 8"),
        ("((port 80))", "port 80"),
        ("port 1 || port 2 && port 3", "port 1 or port 2 and port 3"),
        (
            "(port 1 or port 2) and port 3",
            "(port 1 or port 2) and port 3",
        ),
        (
            "(port 1 and port 2) and port 3",
            "(port 1 and port 2) and port 3",
        ),
        (
            "(port 1 and port 2) or port 3",
            "port 1 and port 2 or port 3",
        ),
        (
            "(port 1 or port 2) or port 3",
            "(port 1 or port 2) or port 3",
        ),
        ("!(port 1 or port 2)", "not (port 1 or port 2)"),
        ("! ! port 1", "not not port 1"),
        ("not (port 1)", "not port 1"),
    ] {
        let e = ok(s);
        assert_eq!(e.to_string(), canonical, "{s}");
        assert_eq!(ok(canonical), e, "{s}");
    }
}

#[test]
fn empty_and_or_print_as_constants() {
    assert_eq!(Expr::And(vec![]).to_string(), "any");
    assert_eq!(Expr::Or(vec![]).to_string(), "not any");
    assert_eq!(Expr::And(vec![TCP]).to_string(), "proto tcp");
}

// ---------------------------------------------------------------------------------------------
// Errors

#[track_caller]
fn err(s: &str) -> FilterError {
    match parse(s) {
        Ok(e) => panic!("{s:?} should not parse, got {e}"),
        Err(e) => e,
    }
}

#[test]
fn errors_name_the_column_and_what_was_expected() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "port http",
            6,
            r#"expected a port number (0-65535) after "port", found "http""#,
        ),
        (
            "proto tcp and dst port http",
            24,
            r#"expected a port number (0-65535) after "dst port", found "http""#,
        ),
        ("port 65536", 6, r#"after "port", found "65536""#),
        ("src port > -1", 12, r#"after "src port >", found "-1""#),
        ("port <> 80", 7, r#"after "port <", found ">""#),
        ("port", 5, "found the end of the filter"),
        (
            "proto foo",
            7,
            r#"expected a protocol name (tcp, udp, icmp, icmp6, gre, esp, ah, sctp, ...) or number (0-255) after "proto", found "foo""#,
        ),
        ("proto 256", 7, r#"found "256""#),
        (
            "host example.com",
            6,
            r#"expected an IPv4 or IPv6 address after "host", found "example.com" (host names are not resolved)"#,
        ),
        (
            "src host 10.0.0.256",
            10,
            r#"after "src host", found "10.0.0.256""#,
        ),
        ("host 2001:db8::g", 6, "expected an IPv4 or IPv6 address"),
        (
            "net 10.0.0.0/33",
            14,
            r#"expected a prefix length (0-32) after "10.0.0.0/", found "33""#,
        ),
        (
            "net 2001:db8::/129",
            16,
            r#"expected a prefix length (0-128) after "2001:db8::/", found "129""#,
        ),
        ("net 10.0.0.0/", 14, "found nothing"),
        (
            "net 10.0.0.0",
            13,
            "expected a netmask like 255.255.255.0 (or write the network as 10.0.0.0/24) after \"net 10.0.0.0\", found the end of the filter",
        ),
        (
            "net 10.0.0.0 255.0.255.0",
            14,
            "expected a contiguous netmask",
        ),
        ("net 10.0.0.0.0/8", 5, "expected a network like 10.0.0.0/8"),
        ("net 2001:db8:: ffff::", 5, "expected a network"),
        (
            "flags SZ",
            8,
            r#"expected TCP flag letters (F S R P A U E C, or X for all of FSRPAU) after "flags", found "Z""#,
        ),
        ("flags", 6, "found the end of the filter"),
        ("flags 2", 7, r#"found "2""#),
        (
            "vlan 4096",
            6,
            r#"expected a VLAN id (0-4095) after "vlan", found "4096""#,
        ),
        (
            "src vlan 4",
            5,
            "\"src vlan\" is not supported: a Pharos flow keeps one VLAN id; use \"vlan N\"",
        ),
        (
            "src proto tcp",
            5,
            r#"expected "host", "net", "port" or "as" after "src", found "proto""#,
        ),
        ("dst", 4, "found the end of the filter"),
        (
            "out bytes > 5",
            5,
            r#"expected "if" after "out", found "bytes""#,
        ),
        (
            "in 3",
            4,
            r#"expected "if", "bytes" or "packets" after "in""#,
        ),
        (
            "in if x",
            7,
            r#"expected an interface index (0-4294967295) after "in if", found "x""#,
        ),
        (
            "as -1",
            4,
            r#"expected an AS number (0-4294967295) after "as", found "-1""#,
        ),
        ("as 4294967296", 4, "found \"4294967296\""),
        (
            "bytes > 1x",
            9,
            r#"expected a byte count like 1500, 10k, 1m or 4g after "bytes >", found "1x""#,
        ),
        ("bytes > 99999999999999999999", 9, "expected a byte count"),
        ("bytes > 18446744073709552k", 9, "expected a byte count"),
        ("packets k", 9, "expected a packet count"),
        ("tos 256", 5, "expected a TOS value (0-255)"),
        ("icmp-type x", 11, "expected an ICMP type (0-255)"),
        ("prot tcp", 1, r#"found "prot"; did you mean "proto"?"#),
        ("10.0.0.1", 1, r#"did you mean "host 10.0.0.1"?"#),
        (
            "frobnicate",
            1,
            "expected a filter term (proto, host, net, port",
        ),
        (
            "proto tcp and",
            14,
            r#"expected a filter term after "and", found the end of the filter"#,
        ),
        (
            "proto tcp or or port 80",
            14,
            r#"expected a filter term after "or", found "or""#,
        ),
        (
            "proto tcp && || port 80",
            14,
            r#"expected a filter term after "&&", found "||""#,
        ),
        ("and port 80", 1, r#"expected a filter term, found "and""#),
        (
            "(port 80",
            9,
            r#"expected "and", "or" or ")" to close the "(" at column 1, found the end of the filter"#,
        ),
        (
            "proto tcp and ((port 80) or port 443",
            37,
            r#"to close the "(" at column 15"#,
        ),
        (
            "port 80)",
            8,
            r#"expected "and", "or" or the end of the filter, found ")""#,
        ),
        (
            "port 80 port 81",
            9,
            r#"expected "and", "or" or the end of the filter, found "port""#,
        ),
        (
            "not",
            4,
            r#"expected a filter term after "not", found the end of the filter"#,
        ),
        ("not )", 5, r#"after "not", found ")""#),
        ("()", 2, r#"expected a filter term, found ")""#),
        (
            "port 80 & port 81",
            9,
            r#"expected "&&" or "and", found "&""#,
        ),
        (
            "port 80 | port 81",
            9,
            r#"expected "||" or "or", found "|""#,
        ),
        ("proto tcp and pört 80", 15, r#"found "pört""#),
        ("port = = 80", 8, r#"after "port =", found "=""#),
    ];
    for (input, column, message) in cases {
        let e = err(input);
        assert_eq!((e.line, e.column), (1, *column), "{input:?}: {e}");
        assert!(
            e.message.contains(message),
            "{input:?}: {:?} lacks {message:?}",
            e.message
        );
        assert_eq!(e.to_string(), format!("column {}: {}", e.column, e.message));
    }
}

#[test]
fn error_on_a_later_line_names_line_and_column() {
    let s = "proto tcp\nand port http";
    let e = err(s);
    assert_eq!((e.line, e.column), (2, 10));
    assert!(
        e.to_string()
            .starts_with("line 2, column 10: expected a port number"),
        "{e}"
    );
    assert_eq!(e.render(s), "and port http\n         ^");
}

#[test]
fn render_puts_a_caret_under_the_column() {
    let s = "proto tcp and port http";
    let e = err(s);
    assert_eq!(e.column, 20);
    assert_eq!(e.render(s), "proto tcp and port http\n                   ^");
    // at the end of the filter: one past the last character
    let s = "proto tcp and";
    assert_eq!(err(s).render(s), "proto tcp and\n             ^");
    // tabs are kept so the caret lines up; control characters become spaces
    let s = "port\thttp";
    assert_eq!(err(s).render(s), "port\thttp\n    \t^");
    let s = "port\u{1b}";
    assert_eq!(err(s).render(s), "port \n^");
    // nonsense positions do not panic
    let e = FilterError {
        line: 99,
        column: usize::MAX,
        message: String::new(),
    };
    assert_eq!(e.render("port 80"), "\n ^");
}

// ---------------------------------------------------------------------------------------------
// Limits

#[test]
fn filters_longer_than_the_limits_are_refused() {
    // blanks and comments count towards the text limit only
    let padded = format!("port 80 #{}", " ".repeat(MAX_INPUT_LEN - 9));
    assert_eq!(padded.len(), MAX_INPUT_LEN);
    assert_eq!(ok(&padded), port(Either, Eq, 80));
    let e = err(&format!("{padded} "));
    assert_eq!(e.column, MAX_INPUT_LEN + 1);
    assert_eq!(
        e.message,
        "filter text is 16385 bytes long; at most 16384 bytes are accepted"
    );
    // multi-byte characters at the limit do not split
    let e = err(&"é".repeat(MAX_INPUT_LEN));
    assert_eq!(e.column, MAX_INPUT_LEN / 2 + 1);

    // the filter itself is measured in canonical form: 4096 bytes pass, 4097 do not
    let term = "port 1 or "; // 10 bytes each
    let at_limit = format!("{}bytes > 10000000", term.repeat(408)); // 4080 + 16
    assert_eq!(ok(&at_limit).to_string().len(), MAX_FILTER_LEN);
    let over = format!("{}bytes > 100000000", term.repeat(408));
    let e = err(&over);
    assert_eq!((e.line, e.column), (1, 1));
    assert_eq!(
        e.message,
        "filter is too long: 4097 bytes in canonical form (as printed back); at most 4096 bytes \
         are accepted"
    );
    // a compact text whose canonical form is too long is refused, so printing cannot exceed it
    let compact = "bytes>1t||".repeat(300) + "any";
    assert!(compact.len() < MAX_FILTER_LEN);
    assert!(
        err(&compact)
            .message
            .starts_with("filter is too long: 7503 bytes")
    );
}

#[test]
fn long_flat_chains_within_the_limit_parse_flat() {
    let s = vec!["port 1"; 400].join(" or ");
    assert!(s.len() <= MAX_FILTER_LEN);
    match ok(&s) {
        Expr::Or(v) => assert_eq!(v.len(), 400),
        e => panic!("{e}"),
    }
    let s = vec!["any"; 500].join("&&");
    assert!(s.len() <= MAX_FILTER_LEN);
    assert!(matches!(ok(&s), Expr::And(v) if v.len() == 500));
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let parens = |n: usize| format!("{}port 80{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(ok(&parens(MAX_DEPTH)), port(Either, Eq, 80));
    let e = err(&parens(MAX_DEPTH + 1));
    assert_eq!(e.column, MAX_DEPTH + 1);
    assert_eq!(
        e.message,
        "filter nests deeper than 64 levels of parentheses and \"not\"; simplify it"
    );

    let nots = |n: usize| format!("{}port 80", "not ".repeat(n));
    assert!(ok(&nots(MAX_DEPTH)).to_string().starts_with("not not"));
    assert_eq!(err(&nots(MAX_DEPTH + 1)).column, 4 * MAX_DEPTH + 1);
    assert_eq!(err(&"!".repeat(3000)).column, MAX_DEPTH + 1);

    // parentheses and not count together
    let mixed = format!("{}port 80{}", "not (".repeat(32), ")".repeat(32));
    assert!(parse(&mixed).is_ok());
    let mixed = format!("{}port 80{}", "not (".repeat(33), ")".repeat(33));
    assert!(err(&mixed).message.contains("nests deeper"));
    // unbalanced deep input is an error, not a stack overflow
    assert!(parse(&"(".repeat(MAX_INPUT_LEN)).is_err());
}

// ---------------------------------------------------------------------------------------------
// Evaluation on a hand-built batch

fn flow(src: &str, sport: u16, dst: &str, dport: u16, proto: u8) -> FlowRecord {
    FlowRecord {
        src_addr: ip(src),
        dst_addr: ip(dst),
        src_port: sport,
        dst_port: dport,
        proto,
        packets: 1,
        bytes: 60,
        ..FlowRecord::default()
    }
}

fn sample_batch() -> FlowBatch {
    let rows = [
        // 0: TCP SYN, IPv4, dst AS only, interfaces 1 -> 2
        FlowRecord {
            tcp_flags: 0x02,
            dst_as: 64496,
            in_if: 1,
            out_if: 2,
            ..flow("10.0.0.1", 51000, "192.0.2.10", 80, 6)
        },
        // 1: TCP SYN-ACK back, big, src AS only, VLAN 100
        FlowRecord {
            tcp_flags: 0x12,
            src_as: 64496,
            bytes: 1_500_000,
            packets: 1000,
            vlan: Some(100),
            ..flow("192.0.2.10", 80, "10.0.0.1", 51000, 6)
        },
        // 2: UDP DNS query, TOS 184
        FlowRecord {
            tos: 184,
            bytes: 80,
            ..flow("10.0.0.2", 5353, "198.51.100.53", 53, 17)
        },
        // 3: ICMP echo request
        FlowRecord {
            icmp_type: 8,
            ..flow("10.0.0.3", 0, "192.0.2.1", 0, 1)
        },
        // 4: IPv6 TCP FIN-PSH-ACK, 5 GB, both AS numbers
        FlowRecord {
            tcp_flags: 0x19,
            bytes: 5_000_000_000,
            packets: 4_000_000,
            src_as: 13335,
            dst_as: 64500,
            ..flow("2001:db8::1", 443, "2001:db8:1::2", 60000, 6)
        },
        // 5: ICMPv6 echo request, VLAN 0
        FlowRecord {
            icmp_type: 128,
            vlan: Some(0),
            ..flow("2001:db8::1", 0, "2001:db8::2", 0, 58)
        },
        // 6: GRE from an IPv4-mapped IPv6 address to an IPv4 address
        flow("::ffff:10.0.0.1", 0, "10.0.0.9", 0, 47),
        // 7: UDP with port 0 and 65535, output interface only
        FlowRecord {
            out_if: 7,
            ..flow("203.0.113.5", 0, "203.0.113.6", 65535, 17)
        },
    ];
    let mut b = FlowBatch::new();
    b.extend_records(&rows);
    b
}

#[test]
fn reference_evaluator_matches_the_expected_rows() {
    let b = sample_batch();
    let all: Vec<usize> = (0..b.len()).collect();
    let cases: &[(&str, &[usize])] = &[
        ("any", &all),
        ("not any", &[]),
        ("proto tcp", &[0, 1, 4]),
        ("proto udp and dst port 53", &[2]),
        ("flags S and not flags A", &[0]),
        ("flags SA", &[1]),
        ("flags S", &[0, 1]),
        ("flags FPA", &[4]),
        ("not flags A", &[0, 2, 3, 5, 6, 7]),
        ("host 10.0.0.1", &[0, 1]),
        ("src host 10.0.0.1", &[0]),
        ("host ::ffff:10.0.0.1", &[6]),
        ("src net 10.0.0.0/8", &[0, 2, 3]),
        ("net 10.0.0.0/8", &[0, 1, 2, 3, 6]),
        ("net 10.0.0.0 255.0.0.0", &[0, 1, 2, 3, 6]),
        ("net 0.0.0.0/0", &[0, 1, 2, 3, 6, 7]),
        ("net ::/0", &[4, 5, 6]),
        ("dst net 2001:db8:1::/48", &[4]),
        ("net 2001:db8::2/128", &[5]),
        ("net 192.0.2.10/32", &[0, 1]),
        ("port 80", &[0, 1]),
        ("src port 80", &[1]),
        ("port > 50000", &[0, 1, 4, 7]),
        ("port 65535", &[7]),
        ("port != 0", &[0, 1, 2, 4, 7]),
        ("not port 0", &[0, 1, 2, 4]),
        ("src port 0", &[3, 5, 6, 7]),
        ("as 64496", &[0, 1]),
        ("as < 100000", &[0, 1, 4]),
        ("as 0", &[]),
        ("src as 0", &[]),
        ("src as < 1", &[]),
        ("not as > 0", &[2, 3, 5, 6, 7]),
        ("dst as >= 64496", &[0, 4]),
        ("dst as >= 64500", &[4]),
        ("as != 64496", &[4]),
        ("in if 1", &[0]),
        ("out if 2", &[0]),
        ("if 2", &[0]),
        ("if 7", &[7]),
        ("in if 0", &[]),
        ("vlan 100", &[1]),
        ("vlan 0", &[5]),
        ("not vlan 100", &[0, 2, 3, 4, 5, 6, 7]),
        ("bytes > 1m", &[1, 4]),
        ("bytes > 4g", &[4]),
        ("bytes <= 60", &[0, 3, 5, 6, 7]),
        ("packets >= 1000", &[1, 4]),
        ("packets > 1k", &[4]),
        ("tos 184", &[2]),
        ("tos > 0", &[2]),
        ("icmp-type 8", &[3]),
        ("icmp-type 128", &[5]),
        ("icmp-code 0", &[3, 5]),
        ("ipv4", &[0, 1, 2, 3, 7]),
        ("ipv6", &[4, 5]),
        ("proto tcp and (port 80 or port 443)", &[0, 1, 4]),
        ("proto gre or proto icmp6", &[5, 6]),
        ("not (proto tcp or proto udp)", &[3, 5, 6]),
        ("src net 10.0.0.0/8 and not dst net 10.0.0.0/8", &[0, 2, 3]),
    ];
    for (filter, want) in cases {
        let e = ok(filter);
        let got: Vec<usize> = (0..b.len()).filter(|&i| matches_row(&e, &b, i)).collect();
        assert_eq!(&got, want, "{filter}");
        for i in 0..b.len() {
            assert_eq!(matches(&e, &b.get(i)), matches_row(&e, &b, i));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

fn arb_side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Src), Just(Dst), Just(Either)]
}

fn arb_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![Just(Eq), Just(Ne), Just(Lt), Just(Le), Just(Gt), Just(Ge)]
}

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
        any::<u128>().prop_map(|a| IpAddr::V6(a.into())),
        any::<u32>().prop_map(|a| IpAddr::V6(std::net::Ipv4Addr::from(a).to_ipv6_mapped())),
        prop::sample::select(vec![
            ip("0.0.0.0"),
            ip("255.255.255.255"),
            ip("::"),
            ip("::1"),
            ip("::1.2.3.4"),
            ip("10.0.0.1"),
            ip("2001:db8::1"),
        ]),
    ]
}

fn arb_net() -> impl Strategy<Value = IpNet> {
    (arb_addr(), 0u8..=128).prop_map(|(a, len)| {
        let max = if a.is_ipv4() { 32 } else { 128 };
        IpNet::new(a, len % (max + 1)).unwrap().trunc()
    })
}

fn arb_pred() -> impl Strategy<Value = Pred> {
    prop_oneof![
        any::<u8>().prop_map(Pred::Proto),
        (arb_side(), arb_addr()).prop_map(|(side, addr)| Pred::Host { side, addr }),
        (arb_side(), arb_net()).prop_map(|(side, net)| Pred::Net { side, net }),
        (arb_side(), arb_op(), any::<u16>()).prop_map(|(side, op, value)| Pred::Port {
            side,
            op,
            value
        }),
        (arb_side(), arb_op(), any::<u32>()).prop_map(|(side, op, value)| Pred::As {
            side,
            op,
            value
        }),
        (
            prop_oneof![Just(IfSide::In), Just(IfSide::Out), Just(IfSide::Either)],
            any::<u32>()
        )
            .prop_map(|(side, index)| Pred::Interface { side, index }),
        (0u16..=4095).prop_map(Pred::Vlan),
        (arb_op(), any::<u64>()).prop_map(|(op, value)| Pred::Bytes { op, value }),
        (arb_op(), any::<u64>()).prop_map(|(op, value)| Pred::Packets { op, value }),
        (1u8..=255).prop_map(Pred::Flags),
        (arb_op(), any::<u8>()).prop_map(|(op, value)| Pred::Tos { op, value }),
        (arb_op(), any::<u8>()).prop_map(|(op, value)| Pred::IcmpType { op, value }),
        (arb_op(), any::<u8>()).prop_map(|(op, value)| Pred::IcmpCode { op, value }),
        prop_oneof![Just(Family::V4), Just(Family::V6)].prop_map(Pred::Family),
    ]
}

pub(crate) fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![1 => Just(Expr::Any), 12 => arb_pred().prop_map(Expr::Pred)];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
            prop::collection::vec(inner, 2..5).prop_map(Expr::Or),
        ]
    })
}

/// Words and symbols of the language, some wrong, for token soups.
const VOCABULARY: &[&str] = &[
    "proto",
    "tcp",
    "udp",
    "icmp6",
    "src",
    "dst",
    "host",
    "ip",
    "net",
    "port",
    "as",
    "if",
    "in",
    "out",
    "vlan",
    "bytes",
    "packets",
    "flags",
    "SA",
    "X",
    "sz",
    "tos",
    "icmp-type",
    "icmp-code",
    "ipv4",
    "ipv6",
    "any",
    "and",
    "or",
    "not",
    "AND",
    "!",
    "(",
    ")",
    "&&",
    "||",
    "&",
    "|",
    ">",
    "<=",
    "=",
    "==",
    "!=",
    "gt",
    "80",
    "0",
    "65535",
    "65536",
    "4294967296",
    "1k",
    "4g",
    "0x1f",
    "10.0.0.1",
    "10.0.0.0/8",
    "172.16/12",
    "10.0.0.0/33",
    "2001:db8::/32",
    "::1",
    "::ffff:1.2.3.4",
    "255.0.0.0",
    "255.0.255.0",
    "#",
    "\n",
    "\t",
    "x",
    "ä",
    "/",
    "",
];

fn arb_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(VOCABULARY), prop::bool::ANY), 0..24).prop_map(
        |words| {
            let mut s = String::new();
            for (w, space) in words {
                s.push_str(w);
                if space {
                    s.push(' ');
                }
            }
            s
        },
    )
}

pub(crate) fn arb_flow() -> impl Strategy<Value = FlowRecord> {
    let addr = prop_oneof![
        3 => prop::sample::select(vec![
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            ip("192.0.2.1"),
            ip("0.0.0.0"),
            ip("2001:db8::1"),
            ip("::ffff:10.0.0.1"),
        ]),
        1 => arb_addr(),
    ];
    let port = prop_oneof![
        prop::sample::select(vec![0u16, 53, 80, 443, 1023, 1024, 65535]),
        any::<u16>()
    ];
    let asn = prop_oneof![Just(0u32), Just(64496), any::<u32>()];
    let ifx = prop_oneof![Just(0u32), Just(1), any::<u32>()];
    let proto = prop_oneof![prop::sample::select(vec![1u8, 6, 17, 47, 58]), any::<u8>()];
    let count = prop_oneof![
        prop::sample::select(vec![0u64, 1, 1000, 1_000_000]),
        any::<u64>()
    ];
    (
        (
            addr.clone(),
            addr,
            port.clone(),
            port,
            proto,
            any::<u8>(),
            any::<u8>(),
        ),
        (
            asn.clone(),
            asn,
            ifx.clone(),
            ifx,
            prop::option::of(0u16..=4095),
        ),
        (count.clone(), count, any::<u8>(), any::<u8>()),
    )
        .prop_map(
            |(
                (src_addr, dst_addr, src_port, dst_port, proto, tcp_flags, tos),
                (src_as, dst_as, in_if, out_if, vlan),
                (bytes, packets, icmp_type, icmp_code),
            )| FlowRecord {
                src_addr,
                dst_addr,
                src_port,
                dst_port,
                proto,
                tcp_flags,
                tos,
                src_as,
                dst_as,
                in_if,
                out_if,
                vlan,
                bytes,
                packets,
                icmp_type,
                icmp_code,
                ..FlowRecord::default()
            },
        )
}

/// `pred` with its side replaced, when it has one.
fn with_side(pred: Pred, s: Side) -> Option<Pred> {
    Some(match pred {
        Pred::Host { addr, .. } => Pred::Host { side: s, addr },
        Pred::Net { net, .. } => Pred::Net { side: s, net },
        Pred::Port { op, value, .. } => Pred::Port { side: s, op, value },
        Pred::As { op, value, .. } => Pred::As { side: s, op, value },
        _ => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn display_then_parse_round_trips(e in arb_expr()) {
        let s = e.to_string();
        prop_assert_eq!(parse(&s), Ok(e), "{}", s);
    }

    #[test]
    fn token_soup_never_panics_and_round_trips_when_it_parses(s in arb_soup()) {
        match parse(&s) {
            Ok(e) => {
                let printed = e.to_string();
                prop_assert_eq!(parse(&printed), Ok(e), "{:?} printed as {:?}", s, printed);
            }
            Err(e) => {
                prop_assert!(e.line >= 1 && e.column >= 1);
                prop_assert!(e.message.starts_with("expected") || e.message.contains("not supported")
                    || e.message.starts_with("filter "), "{}", e.message);
                let _ = e.render(&s);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        if let Ok(e) = parse(&s) {
            prop_assert_eq!(parse(&e.to_string()), Ok(e));
        } else if let Err(e) = parse(&s) {
            let _ = e.render(&s);
        }
    }

    #[test]
    fn either_side_is_source_or_destination(pred in arb_pred(), f in arb_flow()) {
        if let (Some(src), Some(dst), Some(either)) =
            (with_side(pred, Src), with_side(pred, Dst), with_side(pred, Either))
        {
            prop_assert_eq!(either.matches(&f), src.matches(&f) || dst.matches(&f));
        }
    }

    #[test]
    fn absent_fields_match_no_predicate_on_them(pred in arb_pred(), f in arb_flow()) {
        let f = FlowRecord { src_as: 0, dst_as: 0, in_if: 0, out_if: 0, vlan: None, ..f };
        if matches!(pred, Pred::As { .. } | Pred::Interface { .. } | Pred::Vlan(_)) {
            prop_assert!(!pred.matches(&f));
            prop_assert!(matches(&not(Expr::Pred(pred)), &f));
        }
    }

    #[test]
    fn evaluation_follows_boolean_laws(a in arb_expr(), b in arb_expr(), f in arb_flow()) {
        let (ma, mb) = (matches(&a, &f), matches(&b, &f));
        prop_assert_eq!(matches(&not(a.clone()), &f), !ma);
        prop_assert_eq!(matches(&Expr::And(vec![a.clone(), b.clone()]), &f), ma && mb);
        prop_assert_eq!(matches(&Expr::Or(vec![a.clone(), b.clone()]), &f), ma || mb);
        // the canonical text evaluates the same
        prop_assert_eq!(matches(&parse(&a.to_string()).unwrap(), &f), ma);
    }

    #[test]
    fn batch_rows_evaluate_like_their_records(e in arb_expr(), flows in prop::collection::vec(arb_flow(), 1..8)) {
        let mut b = FlowBatch::new();
        b.extend_records(&flows);
        for (i, f) in flows.iter().enumerate() {
            prop_assert_eq!(matches_row(&e, &b, i), matches(&e, f));
        }
    }
}

#[test]
fn errors_and_their_rendering_never_carry_terminal_controls() {
    use pharos_model::text::is_unsafe_char;
    for s in [
        "port \u{1b}[2Jhttp",
        "proto \u{202e}pct",
        "host 10.0.0.1\u{200b}",
        "flags S\u{7}",
        "\u{9b}31m any",
        "net 10.0.0.0/\u{2066}8",
    ] {
        let e = parse(s).unwrap_err();
        let shown = format!("{e}\n{}", e.render(s));
        assert!(
            !shown.chars().any(|c| c != '\n' && is_unsafe_char(c)),
            "{s:?} gave {shown:?}"
        );
    }
}

#[test]
fn protocol_names_are_the_canonical_filter_names() {
    assert_eq!(protocol_name(6), Some("tcp"));
    assert_eq!(protocol_name(58), Some("icmp6"));
    assert_eq!(protocol_name(253), None);
}
