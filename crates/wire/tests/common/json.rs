//! A small JSON reader that keeps object members in order and keeps duplicate keys, as tshark
//! writes them.

/// A JSON value; numbers and literals are kept as their text.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Str(String),
    Lit(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    /// The first member named `k`.
    pub fn get(&self, k: &str) -> Option<&J> {
        match self {
            J::Obj(m) => m.iter().find(|(n, _)| n == k).map(|(_, v)| v),
            _ => None,
        }
    }
    /// The text of a string or literal.
    pub fn text(&self) -> Option<&str> {
        match self {
            J::Str(s) | J::Lit(s) => Some(s),
            _ => None,
        }
    }
    /// The text of member `k`.
    pub fn str_of(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(|v| v.text())
    }
    /// Members of an object (empty otherwise).
    pub fn members(&self) -> &[(String, J)] {
        match self {
            J::Obj(m) => m,
            _ => &[],
        }
    }
    /// Elements of an array (empty otherwise).
    pub fn elements(&self) -> &[J] {
        match self {
            J::Arr(a) => a,
            _ => &[],
        }
    }
}

/// Parses a JSON document.
pub fn parse(s: &str) -> Result<J, String> {
    let b = s.as_bytes();
    let mut p = 0;
    let v = value(b, &mut p)?;
    Ok(v)
}

fn ws(b: &[u8], p: &mut usize) {
    while *p < b.len() && b[*p].is_ascii_whitespace() {
        *p += 1;
    }
}

fn value(b: &[u8], p: &mut usize) -> Result<J, String> {
    ws(b, p);
    match b.get(*p) {
        Some(b'{') => {
            *p += 1;
            let mut m = Vec::new();
            loop {
                ws(b, p);
                if b.get(*p) == Some(&b'}') {
                    *p += 1;
                    return Ok(J::Obj(m));
                }
                let k = string(b, p)?;
                ws(b, p);
                if b.get(*p) != Some(&b':') {
                    return Err(format!("expected ':' at {p}"));
                }
                *p += 1;
                let v = value(b, p)?;
                m.push((k, v));
                ws(b, p);
                match b.get(*p) {
                    Some(b',') => *p += 1,
                    Some(b'}') => {}
                    _ => return Err(format!("expected ',' or '}}' at {p}")),
                }
            }
        }
        Some(b'[') => {
            *p += 1;
            let mut a = Vec::new();
            loop {
                ws(b, p);
                if b.get(*p) == Some(&b']') {
                    *p += 1;
                    return Ok(J::Arr(a));
                }
                a.push(value(b, p)?);
                ws(b, p);
                match b.get(*p) {
                    Some(b',') => *p += 1,
                    Some(b']') => {}
                    _ => return Err(format!("expected ',' or ']' at {p}")),
                }
            }
        }
        Some(b'"') => Ok(J::Str(string(b, p)?)),
        Some(_) => {
            let start = *p;
            while *p < b.len()
                && !matches!(b[*p], b',' | b'}' | b']')
                && !b[*p].is_ascii_whitespace()
            {
                *p += 1;
            }
            Ok(J::Lit(String::from_utf8_lossy(&b[start..*p]).into_owned()))
        }
        None => Err("unexpected end".into()),
    }
}

fn string(b: &[u8], p: &mut usize) -> Result<String, String> {
    if b.get(*p) != Some(&b'"') {
        return Err(format!("expected string at {p}"));
    }
    *p += 1;
    let mut out = Vec::new();
    while let Some(&c) = b.get(*p) {
        *p += 1;
        match c {
            b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
            b'\\' => {
                let e = *b.get(*p).ok_or("bad escape")?;
                *p += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'u' => {
                        let hex = std::str::from_utf8(b.get(*p..*p + 4).ok_or("bad \\u")?)
                            .map_err(|e| e.to_string())?;
                        let cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                        *p += 4;
                        let ch = char::from_u32(cp).unwrap_or('?');
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    x => out.push(x),
                }
            }
            x => out.push(x),
        }
    }
    Err("unterminated string".into())
}
