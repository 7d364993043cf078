//! Errors with a file:line for every finding, so one load reports all the
//! problems it can see instead of the first only.

use crate::model::{Span, Warning, WarningKind};

/// Findings kept per load, each of errors and warnings: enough to act on,
/// and a file of a million bad lines cannot grow memory with them.
pub const MAX_FINDINGS: usize = 1000;

/// One problem found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    /// What was wrong and what was expected instead.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: error: {}", self.span, self.message)
    }
}

/// One or more problems; nothing of a configuration that has any is applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub errors: Vec<Diagnostic>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    pub fn single(span: Span, message: impl Into<String>) -> Self {
        ConfigError {
            errors: vec![Diagnostic {
                span,
                message: message.into(),
            }],
        }
    }

    /// The first problem (errors are kept in file order).
    pub fn first(&self) -> Option<&Diagnostic> {
        self.errors.first()
    }
}

/// Collects errors while reading on, so all of them are reported at once.
#[derive(Default, Debug)]
pub(crate) struct Errors(pub(crate) Vec<Diagnostic>);

impl Errors {
    pub(crate) fn push(&mut self, span: &Span, message: impl Into<String>) {
        match self.0.len() {
            n if n < MAX_FINDINGS => self.0.push(Diagnostic {
                span: span.clone(),
                message: message.into(),
            }),
            // One last entry says the list was cut; later ones are dropped.
            MAX_FINDINGS => self.0.push(Diagnostic {
                span: span.clone(),
                message: format!("more than {MAX_FINDINGS} errors: the rest are not listed"),
            }),
            _ => {}
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { errors: self.0 })
        }
    }
}

/// Adds a warning unless [`MAX_FINDINGS`] are already kept; the entry past
/// the cap says the rest were dropped.
pub(crate) fn push_warning(warnings: &mut Vec<Warning>, w: Warning) {
    match warnings.len() {
        n if n < MAX_FINDINGS => warnings.push(w),
        // The summary takes the worst kind of what it hides, so `--check`'s
        // exit status still tells whether anything was repaired.
        MAX_FINDINGS => warnings.push(Warning {
            span: w.span,
            message: format!("more than {MAX_FINDINGS} warnings: the rest are not listed"),
            kind: w.kind,
        }),
        _ => {
            if let Some(last) = warnings.last_mut() {
                if w.kind == WarningKind::Repaired {
                    last.kind = WarningKind::Repaired;
                }
            }
        }
    }
}
