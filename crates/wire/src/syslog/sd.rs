//! RFC 5424 STRUCTURED-DATA: `1*("[" SD-ID *(SP PARAM-NAME "=" DQUOTE PARAM-VALUE DQUOTE) "]")`.
//! Validation while parsing, then borrowed iteration; values are unescaped only when asked.

use std::borrow::Cow;

/// One `[id name="value" ...]` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdElement<'a> {
    /// SD-ID, e.g. `timeQuality` or `exampleSDID@32473`.
    pub id: &'a str,
    params: &'a str,
}

impl<'a> SdElement<'a> {
    /// The element's parameters in order.
    pub fn params(&self) -> SdParams<'a> {
        SdParams { rest: self.params }
    }
    /// The (unescaped) value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params().find(|p| p.name == name).map(|p| p.value())
    }
}

/// One `name="value"` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdParam<'a> {
    /// PARAM-NAME.
    pub name: &'a str,
    /// PARAM-VALUE as sent, with its backslash escapes.
    pub raw_value: &'a str,
}

impl<'a> SdParam<'a> {
    /// The value with `\"`, `\\` and `\]` unescaped (other backslashes are kept, as RFC 5424 says).
    pub fn value(&self) -> Cow<'a, str> {
        if !self.raw_value.contains('\\') {
            return Cow::Borrowed(self.raw_value);
        }
        let mut out = String::with_capacity(self.raw_value.len());
        let mut chars = self.raw_value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some(n @ ('"' | '\\' | ']')) => out.push(n),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }
}

/// Iterator over the elements of a structured-data text; stops at the first malformed byte.
#[derive(Debug, Clone)]
pub struct SdElements<'a> {
    rest: &'a str,
}

impl<'a> SdElements<'a> {
    /// Elements of `sd` (e.g. `[a x="1"][b]`); an empty or NILVALUE text has none.
    pub fn new(sd: &'a str) -> Self {
        Self { rest: sd }
    }
}

impl<'a> Iterator for SdElements<'a> {
    type Item = SdElement<'a>;
    fn next(&mut self) -> Option<SdElement<'a>> {
        let (el, used, _) = element(self.rest)?;
        self.rest = self.rest.get(used..).unwrap_or("");
        Some(el)
    }
}

/// Iterator over the parameters of one element.
#[derive(Debug, Clone)]
pub struct SdParams<'a> {
    rest: &'a str,
}

impl<'a> Iterator for SdParams<'a> {
    type Item = SdParam<'a>;
    fn next(&mut self) -> Option<SdParam<'a>> {
        let (p, used, _) = param(self.rest)?;
        self.rest = self.rest.get(used..).unwrap_or("");
        Some(p)
    }
}

fn is_name_byte(c: u8) -> bool {
    (33..=126).contains(&c) && !matches!(c, b'=' | b']' | b'"')
}

/// A name at the start of `b`: its length (0 if none) and whether it exceeds 32 bytes.
fn name_len(b: &[u8]) -> usize {
    b.iter().take_while(|c| is_name_byte(**c)).count()
}

/// ` name="value"` at the start of `s`: the param, bytes used, lenient flag.
fn param(s: &str) -> Option<(SdParam<'_>, usize, bool)> {
    let b = s.as_bytes();
    let mut lenient = false;
    let mut i = 0;
    if b.first() != Some(&b' ') {
        return None;
    }
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    if i > 1 {
        lenient = true;
    }
    let n0 = i;
    let n = name_len(&b[i..]);
    if n == 0 {
        return None;
    }
    if n > 32 {
        lenient = true;
    }
    i += n;
    let name = &s[n0..i];
    while b.get(i) == Some(&b' ') {
        i += 1;
        lenient = true;
    }
    if b.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    while b.get(i) == Some(&b' ') {
        i += 1;
        lenient = true;
    }
    if b.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    let v0 = i;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => break,
            _ => i += 1,
        }
    }
    // `i` is at an ASCII '"'; `v0` after an ASCII '"': both char boundaries.
    let raw_value = s.get(v0..i)?;
    Some((SdParam { name, raw_value }, i + 1, lenient))
}

/// `[id params]` at the start of `s`: the element, bytes used, lenient flag.
fn element(s: &str) -> Option<(SdElement<'_>, usize, bool)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let n = name_len(&b[1..]);
    if n == 0 {
        return None;
    }
    let mut lenient = n > 32;
    let id = &s[1..1 + n];
    let mut i = 1 + n;
    let p0 = i;
    loop {
        match b.get(i)? {
            b']' => break,
            b' ' => {
                // Trailing spaces before `]` are tolerated.
                let sp = b[i..].iter().take_while(|c| **c == b' ').count();
                if b.get(i + sp) == Some(&b']') {
                    lenient = true;
                    i += sp;
                    continue;
                }
                let (_, used, l) = param(s.get(i..)?)?;
                lenient |= l;
                i += used;
            }
            _ => return None,
        }
    }
    Some((
        SdElement {
            id,
            params: s.get(p0..i)?,
        },
        i + 1,
        lenient,
    ))
}

/// Validates the structured data at the start of `s`; returns its length and whether a tolerated
/// deviation was seen. `Err` when the first element is malformed or an element is unterminated.
pub(super) fn validate(s: &str) -> Result<(usize, bool), ()> {
    let mut used = 0;
    let mut lenient = false;
    loop {
        match s.get(used..).and_then(element) {
            Some((_, n, l)) => {
                used += n;
                lenient |= l;
            }
            None if used > 0 && !s[used..].starts_with('[') => return Ok((used, lenient)),
            None => return Err(()),
        }
    }
}
