//! The flow filter language: nfdump-compatible filters (`proto udp and dst port 53`,
//! `src net 10.0.0.0/8 and bytes > 1m`, `flags S and not flags A`) parsed into a plain AST, printed
//! back in canonical form, and evaluated row by row.
//!
//! Contract:
//! - [`parse`] never panics, on any input. It reads at most [`MAX_INPUT_LEN`] bytes of text and
//!   accepts filters whose canonical form (below) is at most [`MAX_FILTER_LEN`] bytes long and
//!   that nest at most [`MAX_DEPTH`] parentheses and `not`s; anything else is a [`FilterError`]
//!   with the 1-based line and column of the mistake and a message naming what was expected there.
//! - The canonical form is `e.to_string()` ([`Display`](fmt::Display)). `parse(&e.to_string()) ==
//!   Ok(e)` for every `e` that [`parse`] returns (the length limit is on the canonical form, so it
//!   cannot be exceeded by printing, and printing never nests deeper than the text it came from),
//!   and for every hand-built `e` of the same shape and limits: `And`/`Or` with two or more
//!   operands, `Flags` non-zero, `Net` prefixes without host bits, `Vlan` at most 4095.
//! - [`matches`] is the reference semantics (the oracle for the vectorised engine):
//!   - Addresses match by family, as [`IpNet::contains`] decides: `host 10.0.0.1` and
//!     `net 10.0.0.0/8` match IPv4 addresses only, `host ::ffff:10.0.0.1` IPv6 addresses only.
//!   - A predicate without `src`/`dst` matches when the source or the destination field matches
//!     (`port != 80` is true when either port differs from 80; `not port 80` when neither is 80).
//!   - Fields the flow model records as unknown are absent: an AS number or interface index of 0,
//!     a VLAN id the exporter did not send. A predicate on an absent field is false (`as < 100`
//!     and `as 0` never match a flow without AS numbers); only `not` turns that into true.
//!   - `flags LETTERS` is true for TCP flows with all these flags set (as nfdump: the predicate
//!     implies `proto tcp`); `icmp-type`/`icmp-code` imply `proto icmp or proto icmp6`.
//!   - `ipv4`/`ipv6` are true when both addresses are of that family.
//!   - An empty filter (only blanks and `#` comments) is `any`.
//!
//! Grammar (keywords case-insensitive; `not` binds tighter than `and`, `and` tighter than `or`):
//!
//! ```text
//! filter := or?
//! or     := and (("or" | "||") and)*
//! and    := unary (("and" | "&&") unary)*
//! unary  := ("not" | "!") unary | "(" or ")" | term
//! term   := "any" | "ip" | "ipv4" | "inet" | "ipv6" | "inet6"
//!         | "proto" (NAME | N)                      tcp udp icmp icmp6 gre esp ah ...; 0-255
//!         | side? ("host" | "ip") ADDR              IPv4 or IPv6 address
//!         | side? "net" (ADDR "/" LEN | IPV4 MASK)  10.0.0.0/8, 172.16/12, 10.0.0.0 255.0.0.0
//!         | side? "port" op? N                      0-65535
//!         | side? "as" op? N                        0-4294967295
//!         | ("in" | "out")? "if" N                  interface index (no side: either)
//!         | "vlan" N                                0-4095
//!         | "in"? ("bytes" | "packets") op? COUNT   1500, 0x5dc, 10k, 1m, 4g, 2t (powers of 1000)
//!         | "flags" LETTERS                         F S R P A U E C, X = FSRPAU
//!         | "tos" op? N | "icmp-type" op? N | "icmp-code" op? N
//! side   := "src" | "dst"
//! op     := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "eq" | "ne" | "lt" | "le" | "gt" | "ge"
//! ```
//!
//! Numbers are decimal or `0x` hexadecimal. Differences from nfdump: `&&`, `||`, `!=`/`ne` and a
//! bare `ip` (same as `any`) are accepted; host names are never resolved; `src vlan`/`dst vlan`
//! are refused because a Pharos flow keeps one VLAN id; `X` adds FSRPAU to the other letters
//! instead of replacing them; flag letters may be lower case; AS number 0 and interface index 0
//! mean unknown and match nothing (nfdump compares them as plain values, so there `as 0` finds
//! flows without AS numbers; here that is `not as > 0`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use pharos_model::flow::{FlowBatch, FlowRecord};
use pharos_model::text::is_unsafe_char;

#[cfg(test)]
pub(crate) mod tests;

/// Longest filter accepted, in bytes of its canonical form (comments, extra blanks and redundant
/// parentheses do not count; `1k` counts as `1000`).
pub const MAX_FILTER_LEN: usize = 4096;
/// Longest filter text read at all, in bytes: bounds the work done on untrusted input before the
/// canonical length is known.
pub const MAX_INPUT_LEN: usize = 4 * MAX_FILTER_LEN;
/// Deepest nesting accepted: parentheses and `not`s on the way from the top to a term.
pub const MAX_DEPTH: usize = 64;

/// A filter expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// Matches every flow (`any`, a bare `ip`, the empty filter).
    Any,
    /// One predicate on the fields of a flow.
    Pred(Pred),
    /// True when the operand is false.
    Not(Box<Expr>),
    /// True when every operand is true (true when empty). [`parse`] produces two or more.
    And(Vec<Expr>),
    /// True when some operand is true (false when empty). [`parse`] produces two or more.
    Or(Vec<Expr>),
}

/// One predicate on the fields of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pred {
    /// `proto tcp`, `proto 47`: the IP protocol number.
    Proto(u8),
    /// `src host 192.0.2.1`: the address equals, family included.
    Host {
        /// Which address.
        side: Side,
        /// The address.
        addr: IpAddr,
    },
    /// `dst net 10.0.0.0/8`: the address lies in the prefix (same family).
    Net {
        /// Which address.
        side: Side,
        /// The prefix, without host bits.
        net: IpNet,
    },
    /// `src port > 1023`.
    Port {
        /// Which port.
        side: Side,
        /// The comparison.
        op: CmpOp,
        /// The right-hand side.
        value: u16,
    },
    /// `dst as 64496`; an AS number of 0 is unknown and never matches.
    As {
        /// Which AS number.
        side: Side,
        /// The comparison.
        op: CmpOp,
        /// The right-hand side.
        value: u32,
    },
    /// `in if 3`: the SNMP interface index equals; an index of 0 is unknown and never matches.
    Interface {
        /// Which interface.
        side: IfSide,
        /// The interface index.
        index: u32,
    },
    /// `vlan 100`: the VLAN id equals (flows without a VLAN id never match).
    Vlan(u16),
    /// `bytes > 1000000`: the (sampling-renormalised) byte count.
    Bytes {
        /// The comparison.
        op: CmpOp,
        /// The right-hand side.
        value: u64,
    },
    /// `packets < 3`: the (sampling-renormalised) packet count.
    Packets {
        /// The comparison.
        op: CmpOp,
        /// The right-hand side.
        value: u64,
    },
    /// `flags SA`: a TCP flow with all of these TCP flag bits set.
    Flags(u8),
    /// `tos 184`: the type of service byte.
    Tos {
        /// The comparison.
        op: CmpOp,
        /// The right-hand side.
        value: u8,
    },
    /// `icmp-type 8`: an ICMP or ICMPv6 flow with this type.
    IcmpType {
        /// The comparison.
        op: CmpOp,
        /// The right-hand side.
        value: u8,
    },
    /// `icmp-code 3`: an ICMP or ICMPv6 flow with this code.
    IcmpCode {
        /// The comparison.
        op: CmpOp,
        /// The right-hand side.
        value: u8,
    },
    /// `ipv4` / `ipv6`: both addresses are of this family.
    Family(Family),
}

/// Which of a flow's two addresses, ports or AS numbers a predicate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// `src`.
    Src,
    /// `dst`.
    Dst,
    /// No qualifier: the source or the destination.
    Either,
}

/// Which interface `if` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IfSide {
    /// `in if`: the input interface.
    In,
    /// `out if`: the output interface.
    Out,
    /// `if`: the input or the output interface.
    Either,
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// A numeric comparison, field on the left: `port > 1023` is `src_port > 1023 || dst_port > 1023`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`, `==`, `eq`, or no operator.
    Eq,
    /// `!=`, `ne`.
    Ne,
    /// `<`, `lt`.
    Lt,
    /// `<=`, `le`.
    Le,
    /// `>`, `gt`.
    Gt,
    /// `>=`, `ge`.
    Ge,
}

impl CmpOp {
    /// `field op value`.
    #[inline]
    pub fn test<T: Ord>(self, field: T, value: T) -> bool {
        match self {
            CmpOp::Eq => field == value,
            CmpOp::Ne => field != value,
            CmpOp::Lt => field < value,
            CmpOp::Le => field <= value,
            CmpOp::Gt => field > value,
            CmpOp::Ge => field >= value,
        }
    }

    /// The operator as printed (`=` prints as nothing: `port 80`).
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// Protocol names, the canonical (printed) name of each number first.
const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("ipv6", 41),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmp6", 58),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("l2tp", 115),
    ("sctp", 132),
    // aliases
    ("ipencap", 4),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
];

/// TCP flag letters and their bits, in printing order.
const FLAG_LETTERS: &[(char, u8)] = &[
    ('F', 0x01),
    ('S', 0x02),
    ('R', 0x04),
    ('P', 0x08),
    ('A', 0x10),
    ('U', 0x20),
    ('E', 0x40),
    ('C', 0x80),
];

/// Words that start a term, for "did you mean" suggestions.
const TERM_WORDS: &[&str] = &[
    "any",
    "ip",
    "ipv4",
    "inet",
    "ipv6",
    "inet6",
    "proto",
    "host",
    "net",
    "port",
    "as",
    "src",
    "dst",
    "in",
    "out",
    "if",
    "vlan",
    "bytes",
    "packets",
    "flags",
    "tos",
    "icmp-type",
    "icmp-code",
    "not",
];

/// The name the filter language gives IP protocol `n` (`tcp`, `udp`, `icmp6`...), if any: the
/// one tables print (upper-cased, as nfdump) and filters accept.
pub fn protocol_name(n: u8) -> Option<&'static str> {
    PROTOCOLS.iter().find(|(_, p)| *p == n).map(|(s, _)| *s)
}

// ---------------------------------------------------------------------------------------------
// Canonical printing

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Src => "src ",
            Side::Dst => "dst ",
            Side::Either => "",
        })
    }
}

/// ` > 5` or ` 5` for `=`.
struct OpValue<T>(CmpOp, T);

impl<T: fmt::Display> fmt::Display for OpValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            CmpOp::Eq => write!(f, " {}", self.1),
            op => write!(f, " {} {}", op.symbol(), self.1),
        }
    }
}

impl fmt::Display for Pred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Pred::Proto(p) => match protocol_name(p) {
                Some(name) => write!(f, "proto {name}"),
                None => write!(f, "proto {p}"),
            },
            Pred::Host { side, addr } => write!(f, "{side}host {addr}"),
            Pred::Net { side, net } => write!(f, "{side}net {net}"),
            Pred::Port { side, op, value } => write!(f, "{side}port{}", OpValue(op, value)),
            Pred::As { side, op, value } => write!(f, "{side}as{}", OpValue(op, value)),
            Pred::Interface { side, index } => match side {
                IfSide::In => write!(f, "in if {index}"),
                IfSide::Out => write!(f, "out if {index}"),
                IfSide::Either => write!(f, "if {index}"),
            },
            Pred::Vlan(v) => write!(f, "vlan {v}"),
            Pred::Bytes { op, value } => write!(f, "bytes{}", OpValue(op, value)),
            Pred::Packets { op, value } => write!(f, "packets{}", OpValue(op, value)),
            Pred::Flags(mask) => {
                f.write_str("flags ")?;
                for (letter, bit) in FLAG_LETTERS {
                    if mask & bit != 0 {
                        write!(f, "{letter}")?;
                    }
                }
                Ok(())
            }
            Pred::Tos { op, value } => write!(f, "tos{}", OpValue(op, value)),
            Pred::IcmpType { op, value } => write!(f, "icmp-type{}", OpValue(op, value)),
            Pred::IcmpCode { op, value } => write!(f, "icmp-code{}", OpValue(op, value)),
            Pred::Family(Family::V4) => f.write_str("ipv4"),
            Pred::Family(Family::V6) => f.write_str("ipv6"),
        }
    }
}

impl Expr {
    /// Writes `self` as an operand of an `and` (`in_and`) or `or`, parenthesised where the
    /// parser would otherwise group differently.
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, in_and: bool) -> fmt::Result {
        let parens = match self {
            Expr::And(v) => in_and && v.len() >= 2,
            Expr::Or(v) => v.len() >= 2,
            _ => false,
        };
        if parens {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }

    fn fmt_list(f: &mut fmt::Formatter<'_>, items: &[Expr], is_and: bool) -> fmt::Result {
        let sep = if is_and { " and " } else { " or " };
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            e.fmt_operand(f, is_and)?;
        }
        Ok(())
    }
}

/// The canonical filter string: lower-case keywords, single spaces, protocol names, plain decimal
/// numbers, parentheses only where needed. An empty `And` prints as `any`, an empty `Or` as
/// `not any`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Any => f.write_str("any"),
            Expr::Pred(p) => write!(f, "{p}"),
            Expr::Not(e) => {
                f.write_str("not ")?;
                match **e {
                    Expr::And(ref v) | Expr::Or(ref v) if v.len() >= 2 => write!(f, "({e})"),
                    _ => write!(f, "{e}"),
                }
            }
            Expr::And(v) if v.is_empty() => f.write_str("any"),
            Expr::Or(v) if v.is_empty() => f.write_str("not any"),
            Expr::And(v) => Expr::fmt_list(f, v, true),
            Expr::Or(v) => Expr::fmt_list(f, v, false),
        }
    }
}

impl std::str::FromStr for Expr {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A filter that cannot be parsed: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", place(.line, .column))]
pub struct FilterError {
    /// 1-based line of the mistake (filters may span lines).
    pub line: usize,
    /// 1-based column of the mistake, in characters.
    pub column: usize,
    /// What was expected and what was found, e.g.
    /// `expected a port number (0-65535) after "port", found "http"`.
    pub message: String,
}

fn place(line: &usize, column: &usize) -> String {
    if *line <= 1 {
        format!("column {column}: ")
    } else {
        format!("line {line}, column {column}: ")
    }
}

impl FilterError {
    /// An error at byte offset `pos` of `src` (clamped to the text, rounded down to a character).
    fn at(src: &str, pos: usize, message: String) -> Self {
        let mut pos = pos.min(src.len());
        while !src.is_char_boundary(pos) {
            pos -= 1;
        }
        let before = &src[..pos];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Self {
            line,
            column,
            message,
        }
    }

    /// The line of `input` that holds the mistake, and under it a caret at the column:
    ///
    /// ```text
    /// proto tcp and port http
    ///                    ^
    /// ```
    ///
    /// Tabs are kept so the caret lines up; other control characters and the invisible
    /// characters that reorder or hide text ([`is_unsafe_char`]) print as spaces, so a filter
    /// pasted from untrusted text cannot rewrite the terminal.
    pub fn render(&self, input: &str) -> String {
        let text = input
            .split('\n')
            .nth(self.line.saturating_sub(1))
            .unwrap_or("");
        let text = text.strip_suffix('\r').unwrap_or(text);
        let mut out = String::with_capacity(2 * text.len() + 2);
        out.extend(text.chars().map(|c| match c {
            '\t' => '\t',
            c if is_unsafe_char(c) => ' ',
            c => c,
        }));
        out.push('\n');
        let before = self.column.saturating_sub(1);
        let mut pad = 0;
        for c in text.chars().take(before) {
            out.push(if c == '\t' { '\t' } else { ' ' });
            pad += 1;
        }
        // Past the end of the line (an error at the end of the filter): one more column at most.
        if pad < before {
            out.push(' ');
        }
        out.push('^');
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Word(&'a str),
    LParen,
    RParen,
    AndAnd,
    OrOr,
    Bang,
    Op(CmpOp),
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    tok: Tok<'a>,
    /// Byte range in the source.
    start: usize,
    end: usize,
}

impl Token<'_> {
    fn text<'s>(&self, src: &'s str) -> &'s str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '!' | '&' | '|' | '=' | '<' | '>' | '#')
}

fn lex(src: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(c) = src[i..].chars().next() {
        let next = src[i + c.len_utf8()..].chars().next();
        let (tok, len) = match (c, next) {
            ('#', _) => {
                i = src[i..].find('\n').map_or(src.len(), |n| i + n);
                continue;
            }
            (c, _) if c.is_whitespace() => {
                i += c.len_utf8();
                continue;
            }
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('&', Some('&')) => (Tok::AndAnd, 2),
            ('|', Some('|')) => (Tok::OrOr, 2),
            ('&' | '|', _) => {
                return Err(FilterError::at(
                    src,
                    i,
                    format!(
                        "expected \"{c}{c}\" or \"{}\", found \"{c}\"",
                        if c == '&' { "and" } else { "or" }
                    ),
                ));
            }
            ('!', Some('=')) => (Tok::Op(CmpOp::Ne), 2),
            ('!', _) => (Tok::Bang, 1),
            ('=', Some('=')) => (Tok::Op(CmpOp::Eq), 2),
            ('=', _) => (Tok::Op(CmpOp::Eq), 1),
            ('<', Some('=')) => (Tok::Op(CmpOp::Le), 2),
            ('<', _) => (Tok::Op(CmpOp::Lt), 1),
            ('>', Some('=')) => (Tok::Op(CmpOp::Ge), 2),
            ('>', _) => (Tok::Op(CmpOp::Gt), 1),
            _ => {
                let rest = &src[i..];
                let len = rest.find(is_separator).unwrap_or(rest.len());
                (Tok::Word(&rest[..len]), len)
            }
        };
        toks.push(Token {
            tok,
            start: i,
            end: i + len,
        });
        i += len;
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Parses a filter. Never panics; see the module documentation for the grammar and limits.
pub fn parse(src: &str) -> Result<Expr, FilterError> {
    if src.len() > MAX_INPUT_LEN {
        return Err(FilterError::at(
            src,
            MAX_INPUT_LEN,
            format!(
                "filter text is {} bytes long; at most {MAX_INPUT_LEN} bytes are accepted",
                src.len()
            ),
        ));
    }
    let toks = lex(src)?;
    if toks.is_empty() {
        return Ok(Expr::Any);
    }
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.peek().is_some() {
        return Err(p.expected("\"and\", \"or\" or the end of the filter", None));
    }
    let canonical = e.to_string().len();
    if canonical > MAX_FILTER_LEN {
        return Err(FilterError::at(
            src,
            0,
            format!(
                "filter is too long: {canonical} bytes in canonical form (as printed back); at \
                 most {MAX_FILTER_LEN} bytes are accepted"
            ),
        ));
    }
    Ok(e)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token<'a>>,
    pos: usize,
    depth: usize,
}

/// The only item of a one-item list, or `make(items)`.
fn single_or(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        items.pop().unwrap_or(Expr::Any)
    } else {
        make(items)
    }
}

fn eq_kw(word: &str, kw: &str) -> bool {
    word.eq_ignore_ascii_case(kw)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn peek_word(&self) -> Option<&'a str> {
        match self.peek()?.tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn at_kw(&self, kw: &str) -> bool {
        self.peek_word().is_some_and(|w| eq_kw(w, kw))
    }

    /// Byte offset of the next token, or the end of the source.
    fn here(&self) -> usize {
        self.peek().map_or(self.src.len(), |t| t.start)
    }

    /// The next token as quoted in messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the filter".to_string(),
            Some(t) => quote(t.text(self.src)),
        }
    }

    /// The source text of tokens `from..self.pos`, single-spaced, for "after ..." in messages.
    fn context(&self, from: usize) -> String {
        let mut s = String::new();
        for t in self.toks.get(from..self.pos).unwrap_or(&[]) {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(t.text(self.src));
        }
        s
    }

    /// `expected WHAT [after "CONTEXT"], found NEXT`, at the next token.
    fn expected(&self, what: &str, after: Option<&str>) -> FilterError {
        let after = after.map_or(String::new(), |a| format!(" after {}", quote(a)));
        FilterError::at(
            self.src,
            self.here(),
            format!("expected {what}{after}, found {}", self.found()),
        )
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(FilterError::at(
                self.src,
                self.here(),
                format!(
                    "filter nests deeper than {MAX_DEPTH} levels of parentheses and \"not\"; \
                     simplify it"
                ),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.and()?];
        while let Some(t) = self.peek() {
            match t.tok {
                Tok::OrOr => {}
                Tok::Word(w) if eq_kw(w, "or") => {}
                _ => break,
            }
            self.pos += 1;
            self.require_operand(t)?;
            items.push(self.and()?);
        }
        Ok(single_or(items, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.unary()?];
        while let Some(t) = self.peek() {
            match t.tok {
                Tok::AndAnd => {}
                Tok::Word(w) if eq_kw(w, "and") => {}
                _ => break,
            }
            self.pos += 1;
            self.require_operand(t)?;
            items.push(self.unary()?);
        }
        Ok(single_or(items, Expr::And))
    }

    /// After `and`/`or`/`not`: a missing operand is reported as such.
    fn require_operand(&self, op: Token<'a>) -> Result<(), FilterError> {
        let missing = match self.peek() {
            None => true,
            Some(t) => match t.tok {
                Tok::RParen | Tok::AndAnd | Tok::OrOr | Tok::Op(_) => true,
                Tok::Word(w) => eq_kw(w, "and") || eq_kw(w, "or"),
                Tok::LParen | Tok::Bang => false,
            },
        };
        if missing {
            Err(self.expected("a filter term", Some(op.text(self.src))))
        } else {
            Ok(())
        }
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let Some(t) = self.peek() else {
            return Err(self.expected("a filter term", None));
        };
        match t.tok {
            Tok::Bang => {}
            Tok::Word(w) if eq_kw(w, "not") => {}
            Tok::LParen => {
                self.enter()?;
                self.pos += 1;
                let inner = self.or()?;
                if !matches!(self.peek().map(|t| t.tok), Some(Tok::RParen)) {
                    let open = FilterError::at(self.src, t.start, String::new());
                    return Err(self.expected(
                        &format!(
                            "\"and\", \"or\" or \")\" to close the \"(\" at column {}",
                            open.column
                        ),
                        None,
                    ));
                }
                self.pos += 1;
                self.depth -= 1;
                return Ok(inner);
            }
            _ => return self.term(),
        }
        self.enter()?;
        self.pos += 1;
        self.require_operand(t)?;
        let inner = self.unary()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn term(&mut self) -> Result<Expr, FilterError> {
        let start = self.pos;
        let Some(word) = self.peek_word() else {
            return Err(self.expected("a filter term", None));
        };
        let kw = word.to_ascii_lowercase();
        self.pos += 1;
        let pred = match kw.as_str() {
            "any" => return Ok(Expr::Any),
            "ip" => {
                // A bare `ip` is `any`; `ip ADDR` is `host ADDR`.
                match self.peek_word() {
                    Some(w) if !["and", "or", "not"].iter().any(|k| eq_kw(w, k)) => {
                        let addr = self.addr(start)?;
                        Pred::Host {
                            side: Side::Either,
                            addr,
                        }
                    }
                    _ => return Ok(Expr::Any),
                }
            }
            "ipv4" | "inet" => Pred::Family(Family::V4),
            "ipv6" | "inet6" => Pred::Family(Family::V6),
            "proto" => Pred::Proto(self.proto(start)?),
            "src" | "dst" => {
                let side = if kw == "src" { Side::Src } else { Side::Dst };
                let Some(sub) = self.peek_word().map(str::to_ascii_lowercase) else {
                    return Err(self.expected(
                        "\"host\", \"net\", \"port\" or \"as\"",
                        Some(&self.context(start)),
                    ));
                };
                match sub.as_str() {
                    "host" | "ip" | "net" | "port" | "as" => {
                        self.pos += 1;
                        self.sided(&sub, side, start)?
                    }
                    "vlan" => {
                        return Err(FilterError::at(
                            self.src,
                            self.here(),
                            format!(
                                "\"{kw} vlan\" is not supported: a Pharos flow keeps one VLAN id; \
                                 use \"vlan N\""
                            ),
                        ));
                    }
                    _ => {
                        return Err(self.expected(
                            "\"host\", \"net\", \"port\" or \"as\"",
                            Some(&self.context(start)),
                        ));
                    }
                }
            }
            "host" | "net" | "port" | "as" => self.sided(&kw, Side::Either, start)?,
            "if" => Pred::Interface {
                side: IfSide::Either,
                index: self.interface(start)?,
            },
            "in" | "out" => {
                let side = if kw == "in" { IfSide::In } else { IfSide::Out };
                if self.at_kw("if") {
                    self.pos += 1;
                    Pred::Interface {
                        side,
                        index: self.interface(start)?,
                    }
                } else if side == IfSide::In && (self.at_kw("bytes") || self.at_kw("packets")) {
                    let bytes = self.at_kw("bytes");
                    self.pos += 1;
                    self.counter(bytes, start)?
                } else {
                    let what = if side == IfSide::In {
                        "\"if\", \"bytes\" or \"packets\""
                    } else {
                        "\"if\""
                    };
                    return Err(self.expected(what, Some(&self.context(start))));
                }
            }
            "vlan" => {
                let v = self.number(start, "a VLAN id (0-4095)", 4095)?;
                Pred::Vlan(v as u16)
            }
            "bytes" => self.counter(true, start)?,
            "packets" => self.counter(false, start)?,
            "flags" => Pred::Flags(self.flags(start)?),
            "tos" => {
                let op = self.op();
                let value = self.number(start, "a TOS value (0-255)", 255)? as u8;
                Pred::Tos { op, value }
            }
            "icmp-type" => {
                let op = self.op();
                let value = self.number(start, "an ICMP type (0-255)", 255)? as u8;
                Pred::IcmpType { op, value }
            }
            "icmp-code" => {
                let op = self.op();
                let value = self.number(start, "an ICMP code (0-255)", 255)? as u8;
                Pred::IcmpCode { op, value }
            }
            _ => {
                self.pos = start;
                return Err(self.unknown_term(word));
            }
        };
        Ok(Expr::Pred(pred))
    }

    fn unknown_term(&self, word: &str) -> FilterError {
        if eq_kw(word, "and") || eq_kw(word, "or") {
            return self.expected("a filter term", None);
        }
        let mut e = self.expected(
            "a filter term (proto, host, net, port, as, if, vlan, bytes, packets, flags, tos, \
             any, not, \"(\")",
            None,
        );
        if word.parse::<IpAddr>().is_ok() {
            e.message
                .push_str(&format!("; did you mean \"host {word}\"?"));
        } else if let Some(s) = suggest(word) {
            e.message.push_str(&format!("; did you mean \"{s}\"?"));
        }
        e
    }

    /// `host`, `ip`, `net`, `port` or `as` (already consumed) with a side.
    fn sided(&mut self, kw: &str, side: Side, start: usize) -> Result<Pred, FilterError> {
        Ok(match kw {
            "host" | "ip" => Pred::Host {
                side,
                addr: self.addr(start)?,
            },
            "net" => Pred::Net {
                side,
                net: self.net(start)?,
            },
            "port" => {
                let op = self.op();
                let value = self.number(start, "a port number (0-65535)", 65535)? as u16;
                Pred::Port { side, op, value }
            }
            _ => {
                let op = self.op();
                let value = self.number(start, "an AS number (0-4294967295)", u32::MAX.into())?;
                Pred::As {
                    side,
                    op,
                    value: value as u32,
                }
            }
        })
    }

    /// An optional comparison operator; `=` when there is none.
    fn op(&mut self) -> CmpOp {
        let op = match self.peek().map(|t| t.tok) {
            Some(Tok::Op(op)) => op,
            Some(Tok::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "eq" => CmpOp::Eq,
                "ne" => CmpOp::Ne,
                "lt" => CmpOp::Lt,
                "le" => CmpOp::Le,
                "gt" => CmpOp::Gt,
                "ge" => CmpOp::Ge,
                _ => return CmpOp::Eq,
            },
            _ => return CmpOp::Eq,
        };
        self.pos += 1;
        op
    }

    /// A plain number (decimal or 0x hex) at most `max`.
    fn number(&mut self, start: usize, what: &str, max: u64) -> Result<u64, FilterError> {
        match self.peek_word().and_then(parse_u64) {
            Some(n) if n <= max => {
                self.pos += 1;
                Ok(n)
            }
            _ => Err(self.expected(what, Some(&self.context(start)))),
        }
    }

    fn interface(&mut self, start: usize) -> Result<u32, FilterError> {
        let n = self.number(start, "an interface index (0-4294967295)", u32::MAX.into())?;
        Ok(n as u32)
    }

    /// `bytes`/`packets` (already consumed): an operator and a count with an optional k/m/g/t.
    fn counter(&mut self, bytes: bool, start: usize) -> Result<Pred, FilterError> {
        let op = self.op();
        let what = if bytes {
            "a byte count like 1500, 10k, 1m or 4g"
        } else {
            "a packet count like 10, 5k or 1m"
        };
        let Some(value) = self.peek_word().and_then(parse_scaled) else {
            return Err(self.expected(what, Some(&self.context(start))));
        };
        self.pos += 1;
        Ok(if bytes {
            Pred::Bytes { op, value }
        } else {
            Pred::Packets { op, value }
        })
    }

    fn proto(&mut self, start: usize) -> Result<u8, FilterError> {
        let word = self.peek_word().unwrap_or("");
        let named = PROTOCOLS
            .iter()
            .find(|(name, _)| eq_kw(word, name))
            .map(|(_, n)| *n);
        match named.or_else(|| parse_u64(word).and_then(|n| u8::try_from(n).ok())) {
            Some(p) => {
                self.pos += 1;
                Ok(p)
            }
            None => Err(self.expected(
                "a protocol name (tcp, udp, icmp, icmp6, gre, esp, ah, sctp, ...) or number \
                 (0-255)",
                Some(&self.context(start)),
            )),
        }
    }

    fn addr(&mut self, start: usize) -> Result<IpAddr, FilterError> {
        let word = self.peek_word();
        if let Some(a) = word.and_then(|w| w.parse::<IpAddr>().ok()) {
            self.pos += 1;
            return Ok(a);
        }
        let mut e = self.expected("an IPv4 or IPv6 address", Some(&self.context(start)));
        if let Some(w) = word
            && w.bytes().any(|b| b.is_ascii_alphabetic())
            && !w.contains(':')
        {
            e.message.push_str(" (host names are not resolved)");
        }
        Err(e)
    }

    /// `net` (already consumed): `ADDR/LEN`, a partial IPv4 `172.16/12`, or `IPV4 NETMASK`.
    fn net(&mut self, start: usize) -> Result<IpNet, FilterError> {
        let what = "a network like 10.0.0.0/8, 2001:db8::/32 or 10.0.0.0 255.0.0.0";
        let Some(tok) = self.peek() else {
            return Err(self.expected(what, Some(&self.context(start))));
        };
        let Tok::Word(word) = tok.tok else {
            return Err(self.expected(what, Some(&self.context(start))));
        };
        if let Some((addr_s, len_s)) = word.split_once('/') {
            let addr = match addr_s.parse::<IpAddr>() {
                Ok(a) => a,
                Err(_) => match parse_v4_partial(addr_s) {
                    Some(a) => IpAddr::V4(a),
                    None => return Err(self.expected(what, Some(&self.context(start)))),
                },
            };
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len_at = tok.start + addr_s.len() + 1;
            let len = match parse_u64(len_s) {
                Some(n) if n <= max => n as u8,
                _ => {
                    let found = if len_s.is_empty() {
                        "nothing".to_string()
                    } else {
                        quote(len_s)
                    };
                    return Err(FilterError::at(
                        self.src,
                        len_at,
                        format!(
                            "expected a prefix length (0-{max}) after {}, found {found}",
                            quote(&format!("{addr_s}/"))
                        ),
                    ));
                }
            };
            self.pos += 1;
            // As nfdump: host bits are masked off (`net 10.1.2.3/8` is `net 10.0.0.0/8`).
            return IpNet::new(addr, len)
                .map(|n| n.trunc())
                .map_err(|_| self.expected(what, Some(&self.context(start))));
        }
        let Ok(addr) = word.parse::<Ipv4Addr>() else {
            return Err(self.expected(what, Some(&self.context(start))));
        };
        self.pos += 1;
        let mask = self.peek_word().and_then(|w| w.parse::<Ipv4Addr>().ok());
        let bits = mask.map(u32::from);
        match bits {
            Some(b) if b.leading_ones() + b.trailing_zeros() == 32 => {
                self.pos += 1;
                IpNet::new(IpAddr::V4(addr), b.leading_ones() as u8)
                    .map(|n| n.trunc())
                    .map_err(|_| self.expected(what, Some(&self.context(start))))
            }
            Some(_) => Err(self.expected(
                "a contiguous netmask like 255.255.0.0",
                Some(&self.context(start)),
            )),
            None => Err(self.expected(
                "a netmask like 255.255.255.0 (or write the network as 10.0.0.0/24)",
                Some(&self.context(start)),
            )),
        }
    }

    /// `flags` (already consumed): letters F S R P A U E C X, any case and order.
    fn flags(&mut self, start: usize) -> Result<u8, FilterError> {
        let what = "TCP flag letters (F S R P A U E C, or X for all of FSRPAU)";
        let Some(tok) = self.peek() else {
            return Err(self.expected(what, Some(&self.context(start))));
        };
        let Tok::Word(word) = tok.tok else {
            return Err(self.expected(what, Some(&self.context(start))));
        };
        let mut mask = 0u8;
        for (i, c) in word.char_indices() {
            let up = c.to_ascii_uppercase();
            let bit = if up == 'X' {
                0x3f
            } else if let Some((_, b)) = FLAG_LETTERS.iter().find(|(l, _)| *l == up) {
                *b
            } else {
                return Err(FilterError::at(
                    self.src,
                    tok.start + i,
                    format!(
                        "expected {what} after {}, found {}",
                        quote(&self.context(start)),
                        quote(&c.to_string())
                    ),
                ));
            };
            mask |= bit;
        }
        self.pos += 1;
        Ok(mask)
    }
}

/// `"text"` with control characters escaped, long texts cut.
fn quote(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}", format!("{cut}..."))
    } else {
        format!("{s:?}")
    }
}

/// Decimal digits or `0x` + hex digits; no sign, no overflow.
fn parse_u64(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// A number with an optional scale suffix k, m, g or t (powers of 1000, as nfdump).
fn parse_scaled(s: &str) -> Option<u64> {
    let scale = match s.as_bytes().last()? {
        b'k' | b'K' => 1_000,
        b'm' | b'M' => 1_000_000,
        b'g' | b'G' => 1_000_000_000,
        b't' | b'T' => 1_000_000_000_000,
        _ => return parse_u64(s),
    };
    let digits = &s[..s.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// An IPv4 address of one to four dotted decimal parts, missing parts zero (`172.16` =
/// `172.16.0.0`), as nfdump accepts before a prefix length.
fn parse_v4_partial(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    for (n, part) in s.split('.').enumerate() {
        let valid = part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit());
        *octets.get_mut(n)? = if valid {
            part.parse().ok()?
        } else {
            return None;
        };
    }
    Some(Ipv4Addr::from(octets))
}

/// The term keyword closest to `word` (edit distance at most 2), if any.
fn suggest(word: &str) -> Option<&'static str> {
    if word.len() < 2 || word.len() > 16 {
        return None;
    }
    let w = word.to_ascii_lowercase();
    TERM_WORDS
        .iter()
        .map(|k| (edit_distance(&w, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------------------------
// Reference evaluator

fn on_side<T: Copy>(side: Side, src: T, dst: T, f: impl Fn(T) -> bool) -> bool {
    match side {
        Side::Src => f(src),
        Side::Dst => f(dst),
        Side::Either => f(src) || f(dst),
    }
}

const PROTO_TCP: u8 = 6;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMP6: u8 = 58;

impl Pred {
    /// Whether one flow satisfies this predicate (see the module documentation).
    pub fn matches(&self, f: &FlowRecord) -> bool {
        match *self {
            Pred::Proto(p) => f.proto == p,
            Pred::Host { side, addr } => on_side(side, f.src_addr, f.dst_addr, |a| a == addr),
            Pred::Net { side, net } => on_side(side, f.src_addr, f.dst_addr, |a| net.contains(&a)),
            Pred::Port { side, op, value } => {
                on_side(side, f.src_port, f.dst_port, |p| op.test(p, value))
            }
            Pred::As { side, op, value } => {
                on_side(side, f.src_as, f.dst_as, |a| a != 0 && op.test(a, value))
            }
            Pred::Interface { side, index } => {
                let is = |i: u32| i != 0 && i == index;
                match side {
                    IfSide::In => is(f.in_if),
                    IfSide::Out => is(f.out_if),
                    IfSide::Either => is(f.in_if) || is(f.out_if),
                }
            }
            Pred::Vlan(v) => f.vlan == Some(v),
            Pred::Bytes { op, value } => op.test(f.bytes, value),
            Pred::Packets { op, value } => op.test(f.packets, value),
            Pred::Flags(mask) => f.proto == PROTO_TCP && f.tcp_flags & mask == mask,
            Pred::Tos { op, value } => op.test(f.tos, value),
            Pred::IcmpType { op, value } => {
                matches!(f.proto, PROTO_ICMP | PROTO_ICMP6) && op.test(f.icmp_type, value)
            }
            Pred::IcmpCode { op, value } => {
                matches!(f.proto, PROTO_ICMP | PROTO_ICMP6) && op.test(f.icmp_code, value)
            }
            Pred::Family(Family::V4) => f.src_addr.is_ipv4() && f.dst_addr.is_ipv4(),
            Pred::Family(Family::V6) => f.src_addr.is_ipv6() && f.dst_addr.is_ipv6(),
        }
    }
}

/// Whether one flow satisfies the filter: the reference semantics, one row at a time.
pub fn matches(expr: &Expr, flow: &FlowRecord) -> bool {
    match expr {
        Expr::Any => true,
        Expr::Pred(p) => p.matches(flow),
        Expr::Not(e) => !matches(e, flow),
        Expr::And(v) => v.iter().all(|e| matches(e, flow)),
        Expr::Or(v) => v.iter().any(|e| matches(e, flow)),
    }
}

/// Whether row `i` of `batch` satisfies the filter (the row as [`FlowBatch::get`] returns it).
/// Panics when `i >= batch.len()`, like slice indexing.
pub fn matches_row(expr: &Expr, batch: &FlowBatch, i: usize) -> bool {
    matches(expr, &batch.get(i))
}
