//! Errors of the codec and of the RFC 6545 content checks.

/// Why an input was refused. Every variant after the input-level ones names the element path
/// (`/RID/RIDPolicy/ReportSchema/XMLDocument/IODEF-Document/Incident/...`, with `[n]` when an
/// element has same-named siblings).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input is larger than [`Limits::max_bytes`](crate::Limits::max_bytes).
    #[error("document is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The input is not UTF-8 (or declares another encoding).
    #[error("document is not UTF-8: {what} at byte {offset}")]
    Encoding {
        /// What is wrong.
        what: String,
        /// Byte offset of the problem.
        offset: usize,
    },
    /// A `<!DOCTYPE`: DTDs (and with them entity definitions) are refused outright.
    #[error("{path}: DOCTYPE declarations are refused (no DTDs, no entity definitions)")]
    Doctype {
        /// Where the DOCTYPE was.
        path: String,
    },
    /// An entity reference other than the five predefined ones and character references.
    #[error(
        "{path}: entity reference &{name}; is refused: only &lt; &gt; &amp; &quot; &apos; and character references are allowed"
    )]
    Entity {
        /// Where.
        path: String,
        /// The entity name.
        name: String,
    },
    /// Not well-formed XML.
    #[error("{path}: malformed XML at byte {offset}: {what}")]
    Syntax {
        /// Innermost open element.
        path: String,
        /// Byte offset where the reader stopped.
        offset: usize,
        /// The reader's complaint.
        what: String,
    },
    /// A configured limit was exceeded.
    #[error("{path}: {what} exceeds the limit of {limit}")]
    Limit {
        /// Where.
        path: String,
        /// Which limit (`nesting depth`, `element count`, `attribute length`, ...).
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// An element that has no place here (wrong name or namespace).
    #[error("{path}: unexpected element {found}; expected {expected}")]
    Unexpected {
        /// Path of the unexpected element.
        path: String,
        /// `{namespace}name` found.
        found: String,
        /// What may appear here.
        expected: String,
    },
    /// Non-whitespace text where only elements may appear.
    #[error("{path}: unexpected text {text:?}")]
    UnexpectedText {
        /// Where.
        path: String,
        /// The start of the text.
        text: String,
    },
    /// A required element or attribute is missing.
    #[error("{path}: missing {what}")]
    Missing {
        /// The parent element.
        path: String,
        /// What is missing (`attribute lang`, `element IncidentID`).
        what: String,
    },
    /// An element that may appear once appears again.
    #[error("{path}: {what} may appear only once")]
    Duplicate {
        /// Path of the second occurrence.
        path: String,
        /// The element.
        what: String,
    },
    /// An attribute or element value outside its type.
    #[error("{path}: {what} = {value:?}: expected {expected}")]
    Invalid {
        /// The element.
        path: String,
        /// `attribute MsgType` or `text`.
        what: String,
        /// The value found (cut to 80 characters).
        value: String,
        /// What was expected.
        expected: String,
    },
}

/// Why a well-formed message does not carry what RFC 6545 §6 requires for its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg_type} message lacks what RFC 6545 §6 requires: {}", problems.join("; "))]
pub struct CheckError {
    /// The message type (`RID` when there is no RIDPolicy).
    pub msg_type: String,
    /// Every problem found, each naming the element.
    pub problems: Vec<String>,
}

/// Why an IODEF document does not describe a DDoS event Pharos can represent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The document has no incident.
    #[error("the IODEF document has no Incident")]
    NoIncident,
    /// The incident has neither StartTime nor DetectTime (a DDoS event needs a start).
    #[error("incident {0}: no StartTime or DetectTime to take the attack's start from")]
    NoStartTime(String),
}
