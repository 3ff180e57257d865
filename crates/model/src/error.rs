//! Errors of the model codecs.

/// Why a YANG-JSON or XML document is not a valid message; `path` names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ModelError {
    /// Schema path of the offending node, e.g. `i2nsf-event/i2nsf-system-detection-alarm/usage`.
    pub path: String,
    /// What is wrong and, where possible, what was expected.
    pub reason: String,
}

impl ModelError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
