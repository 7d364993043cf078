//! Errors with a file:line for every finding, so one load reports all the
//! problems it can see instead of the first only.

use crate::model::Span;

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
        self.0.push(Diagnostic {
            span: span.clone(),
            message: message.into(),
        });
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
